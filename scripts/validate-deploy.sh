#!/usr/bin/env bash
# Lints and validates the deployment files offline (CI runs it from .ci/run):
#   - hadolint on the Dockerfile (the image itself is not built: CI has no container engine);
#   - yamllint on deploy/ (the chart's templates excepted: they are Go templates);
#   - scripts/validate_deploy.py: renders the Helm chart with the Helm v4 SDK (default values and
#     ci/all-flags-values.yaml), helm lint --strict, values.schema.json, kubernetes-validate
#     --strict on every rendered document and every file in deploy/manifests and
#     deploy/examples, against Kubernetes 1.26 and 1.37. SecretProviderClass (a CRD, not in
#     kubernetes-validate's schemas) is checked against our own JSON schema of the CRD plus
#     README.md's parameter tables; it is not skipped.
# The tools are pinned in scripts/deploy-requirements.txt and installed once into
# target/deploy-venv; later runs reuse the venv and need no network. Quiet on success
# (VALIDATE_DEPLOY_VERBOSE=1 prints a summary); any problem is printed and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/deploy-venv
requirements=scripts/deploy-requirements.txt
stamp="$venv/.requirements"
python=${PYTHON:-python3}

want="$(cat "$requirements"; "$python" --version 2>&1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    rm -rf "$venv"
    mkdir -p target
    log=target/deploy-venv-install.log
    if ! { "$python" -m venv "$venv" &&
           "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input \
               -r "$requirements"; } >"$log" 2>&1; then
        echo "validate-deploy: installing the tools failed (see $log):" >&2
        cat "$log" >&2
        rm -rf "$venv"
        exit 1
    fi
    printf '%s' "$want" >"$stamp"
fi

# Each step prints only when it fails.
"$venv/bin/hadolint" --no-color --failure-threshold style Dockerfile ||
    { echo "validate-deploy: hadolint found problems in Dockerfile" >&2; exit 1; }

"$venv/bin/yamllint" --strict --format parsable -c scripts/yamllint.yaml \
    deploy/manifests deploy/examples \
    deploy/helm/akv-csi-provider/Chart.yaml deploy/helm/akv-csi-provider/values.yaml \
    deploy/helm/akv-csi-provider/ci ||
    { echo "validate-deploy: yamllint found problems in deploy/" >&2; exit 1; }

"$venv/bin/python" scripts/validate_deploy.py
