"""Validate everything under deploy/ offline; called by scripts/validate-deploy.sh.

1. Renders the Helm chart with the Helm v4 SDK (helm-python-sdk) twice: default values, and
   ci/all-flags-values.yaml (every flag non-default). Each render is checked against the chart's
   values.schema.json, `helm lint --strict`, and must pass every flag to the container.
2. Validates every rendered document and every document in deploy/manifests and
   deploy/examples with kubernetes-validate in strict mode (unknown fields are errors) against
   each Kubernetes version in K8S_VERSIONS.
3. SecretProviderClass is a CRD, absent from kubernetes-validate's built-in schemas: those
   documents are validated against SPC_SCHEMA below (the CRD's v1 shape, strict), and their
   parameters against README.md's parameter tables (keys, and the objects YAML whose array
   items are YAML strings). Any other kind without a schema is an error, not a warning.
4. deploy/manifests/akv-csi-provider.yaml must equal the chart's default render, minus Helm's
   own labels.

Silent on success (set VALIDATE_DEPLOY_VERBOSE=1 for a summary); every problem is printed and
the exit code is 1.
"""

from __future__ import annotations

import glob
import os
import sys

import helm_python as helm
import jsonschema
import kubernetes_validate.utils as kv
import yaml

CHART = "deploy/helm/akv-csi-provider"
ALL_FLAGS_VALUES = f"{CHART}/ci/all-flags-values.yaml"
PLAIN_MANIFEST = "deploy/manifests/akv-csi-provider.yaml"
RELEASE, NAMESPACE = "akv-csi-provider", "kube-system"
# The chart's kubeVersion floor and the newest version kubernetes-validate 1.37.0 knows.
K8S_VERSIONS = ["1.26.0", "1.37.0"]

# Every flag the chart must pass (README.md, "Flags"), with the value ci/all-flags-values.yaml sets.
ALL_FLAGS_ARGS = [
    "--endpoint=unix:///provider/azure.sock",
    "--construct-pem-chain=false",
    "--write-cert-and-key-in-separate-files=true",
    "--cloud-name=AzureStackCloud",
    "--log-format-json=true",
    "-v=3",
    "--healthz-port=9989",
    "--healthz-path=/livez",
    "--healthz-timeout=3s",
    "--metrics-backend=Prometheus",
    "--prometheus-port=9898",
    "--mount-timeout=45s",
    "--max-concurrent-reads=8",
    "--shutdown-grace=20s",
    "--socket-takeover=false",
    "--object-cache-ttl=2m",
    "--max-cached-identities=256",
    "--upstream-requests-per-second=50",
    "--upstream-burst=500",
    "--upstream-vault-share=1400",
    "--max-concurrent-requests-per-host=16",
    "--token-proxy-url=https://10.0.0.1:443",
    "--token-proxy-ca-file=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
    "--sni-name=aeaf29ip1hi5q38ebc3u4daum81u0unk52t5bg50j25234fmuj78g.ests.aks",
    "--azure-environment-filepath=/etc/azure/azurestackcloud.json",
    "--custom-user-agent=my-cluster",
    "--enable-profile=true",
    "--profile-port=7065",
]

# README.md, "SecretProviderClass parameters" and the object field table.
SPC_PARAMETERS = {
    "keyvaultName", "tenantID", "tenantId", "clientID", "usePodIdentity",
    "useVMManagedIdentity", "useAzureTokenProxy", "userAssignedIdentityID", "cloudName",
    "cloudEnvFileName", "objects",
}
OBJECT_FIELDS = {
    "objectName", "objectType", "objectAlias", "objectVersion", "objectVersionHistory",
    "objectFormat", "objectEncoding", "filePermission", "optional", "jsonPointer",
    "objectPart", "keyvaultName",
}
OBJECT_VALUES = {
    "objectType": {"secret", "key", "cert"},
    "objectFormat": {"pem", "pfx"},
    "objectEncoding": {"utf-8", "hex", "base64"},
    "optional": {"true", "false"},
    "objectPart": {"all", "key", "leaf", "chain", "ca"},
}

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# secrets-store.csi.x-k8s.io/v1 SecretProviderClass, as the driver's CRD defines it, strict.
SPC_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "secrets-store.csi.x-k8s.io/v1"},
        "kind": {"const": "SecretProviderClass"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": _STR_MAP,
                "annotations": _STR_MAP,
            },
        },
        "spec": {
            "type": "object",
            "required": ["provider", "parameters"],
            "additionalProperties": False,
            "properties": {
                "provider": {"const": "azure"},
                "parameters": _STR_MAP,
                "secretObjects": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["secretName", "type", "data"],
                        "additionalProperties": False,
                        "properties": {
                            "secretName": {"type": "string"},
                            "type": {"type": "string"},
                            "labels": _STR_MAP,
                            "annotations": _STR_MAP,
                            "data": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["objectName", "key"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "objectName": {"type": "string"},
                                        "key": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

problems: list[str] = []
counts = {"k8s": 0, "spc": 0}


def fail(msg: str) -> None:
    problems.append(msg)


def spc_problems(doc: dict) -> list[str]:
    out = [f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}"
           for e in jsonschema.Draft202012Validator(SPC_SCHEMA).iter_errors(doc)]
    params = (doc.get("spec") or {}).get("parameters") or {}
    if not isinstance(params, dict):
        return out
    out += [f"parameters.{k}: not a parameter in README.md" for k in params if k not in SPC_PARAMETERS]
    for key in ("keyvaultName", "objects"):
        if key not in params:
            out.append(f"parameters.{key}: required")
    if "tenantID" not in params and "tenantId" not in params:
        out.append("parameters.tenantID: required")
    try:
        objects = yaml.safe_load(params.get("objects", "")) or {}
    except yaml.YAMLError as e:
        return out + [f"parameters.objects: not YAML: {e}"]
    array = objects.get("array") if isinstance(objects, dict) else None
    if not isinstance(array, list) or not array:
        return out + ["parameters.objects: needs a non-empty `array:`"]
    for i, item in enumerate(array):
        where = f"parameters.objects array[{i}]"
        if not isinstance(item, str):
            out.append(f"{where}: must be a YAML string (`- |` block), got {type(item).__name__}")
            continue
        obj = yaml.safe_load(item)
        if not isinstance(obj, dict):
            out.append(f"{where}: the string is not a YAML mapping")
            continue
        out += [f"{where}.{k}: not an object field in README.md" for k in obj if k not in OBJECT_FIELDS]
        out += [f"{where}.{k}: required" for k in ("objectName", "objectType") if k not in obj]
        for field, allowed in OBJECT_VALUES.items():
            if field in obj and str(obj[field]).lower() not in allowed:
                out.append(f"{where}.{field}: {obj[field]!r} is not one of {sorted(allowed)}")
        if "filePermission" in obj and not isinstance(obj["filePermission"], str):
            out.append(f"{where}.filePermission: quote it (\"0400\"), or YAML reads it as a number")
    return out


def validate_docs(source: str, text: str) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as e:
        fail(f"{source}: not YAML: {e}")
        return []
    for doc in docs:
        name = f"{source}: {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        if doc.get("kind") == "SecretProviderClass":
            counts["spc"] += 1
            for p in spc_problems(doc):
                fail(f"{name}: {p}")
            continue
        counts["k8s"] += 1
        for version in K8S_VERSIONS:
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as e:
                path = ".".join(map(str, e.path))
                fail(f"{name}: Kubernetes {version}: {path}: {e.message}")
            except (kv.SchemaNotFoundError, kv.InvalidSchemaError) as e:
                fail(f"{name}: no schema to validate it against ({e.message})")
    return docs


def render(chart: helm.Chart, values: dict | None, source: str) -> dict[str, list[dict]]:
    try:
        chart.validate_schema(chart.merge_values(values))
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as e:
        fail(f"{source}: helm render: {e}")
        return {}
    lint = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.37.0")
    for m in lint["messages"]:
        # The optional driver subchart cannot be downloaded here (no chart repository reachable):
        # lint reports it missing whatever its condition says. Installing it needs
        # `helm dependency update` (deploy/README.md).
        if "missing these dependencies: secrets-store-csi-driver" in m["error"]:
            continue
        if m["severity"] >= 2:
            fail(f"{source}: helm lint: {m['path']}: {m['error']}")
    docs = {}
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            if not text.strip():
                fail(f"{source}: NOTES.txt rendered empty")
            continue
        docs[path] = validate_docs(f"{source} -> {path}", text)
    if not any(d.get("kind") == "DaemonSet" for ds in docs.values() for d in ds):
        fail(f"{source}: the render has no DaemonSet")
    return docs


def container_args(docs: dict[str, list[dict]]) -> list[str]:
    for ds in docs.values():
        for d in ds:
            if d.get("kind") == "DaemonSet":
                return d["spec"]["template"]["spec"]["containers"][0]["args"]
    return []


def strip_helm_labels(doc: dict) -> dict:
    def strip(meta: dict) -> None:
        labels = meta.get("labels") or {}
        labels.pop("helm.sh/chart", None)
        labels.pop("app.kubernetes.io/managed-by", None)
    strip(doc["metadata"])
    if doc.get("kind") == "DaemonSet":
        strip(doc["spec"]["template"]["metadata"])
    return doc


def main() -> int:
    with helm.Chart.load(CHART) as chart:
        default_docs = render(chart, None, "chart (default values)")
        with open(ALL_FLAGS_VALUES) as f:
            all_flags = yaml.safe_load(f)
        all_docs = render(chart, all_flags, f"chart ({ALL_FLAGS_VALUES})")

    args = container_args(all_docs)
    if args != ALL_FLAGS_ARGS:
        fail(f"chart ({ALL_FLAGS_VALUES}): container args\n  {args}\n  want\n  {ALL_FLAGS_ARGS}")
    defaults = container_args(default_docs)
    flags = {a.split("=", 1)[0] for a in ALL_FLAGS_ARGS} - {
        "--azure-environment-filepath", "--custom-user-agent", "--enable-profile", "--profile-port",
        "--sni-name"}
    missing = flags - {a.split("=", 1)[0] for a in defaults}
    if missing:
        fail(f"chart (default values): flags not passed: {sorted(missing)}")

    files = sorted(glob.glob("deploy/manifests/*.yaml") + glob.glob("deploy/examples/*.yaml"))
    plain = []
    for path in files:
        with open(path) as f:
            docs = validate_docs(path, f.read())
        if path == PLAIN_MANIFEST:
            plain = docs
    want = [strip_helm_labels(d) for ds in default_docs.values() for d in ds]
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    if sorted(plain, key=key) != sorted(want, key=key):
        fail(f"{PLAIN_MANIFEST} differs from the chart's default render (minus Helm's labels); "
             "copy the render there")

    if problems:
        print("validate-deploy: FAILED", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    if os.environ.get("VALIDATE_DEPLOY_VERBOSE"):
        print(f"validate-deploy: {counts['k8s']} Kubernetes documents valid (strict) against "
              f"{', '.join(K8S_VERSIONS)}; {counts['spc']} SecretProviderClasses valid; "
              f"{len(files)} files and 2 chart renders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
