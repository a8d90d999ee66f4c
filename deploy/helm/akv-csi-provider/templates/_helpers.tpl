{{/* Chart name, overridable with nameOverride. */}}
{{- define "akv-csi-provider.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: fullnameOverride, else the release name when it already
contains the chart name, else "<release>-<chart>". 63 characters at most (DNS label).
*/}}
{{- define "akv-csi-provider.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "name-version" for the helm.sh/chart label. */}}
{{- define "akv-csi-provider.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the DaemonSet's pods; never change them in an upgrade. */}}
{{- define "akv-csi-provider.selectorLabels" -}}
app.kubernetes.io/name: {{ include "akv-csi-provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object of the release. */}}
{{- define "akv-csi-provider.labels" -}}
helm.sh/chart: {{ include "akv-csi-provider.chart" . }}
{{ include "akv-csi-provider.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.linux.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: secrets-store-provider
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "akv-csi-provider.serviceAccountName" -}}
{{- default (include "akv-csi-provider.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "akv-csi-provider.image" -}}
{{- printf "%s:%s" .Values.linux.image.repository (.Values.linux.image.tag | default .Chart.AppVersion) }}
{{- end }}
