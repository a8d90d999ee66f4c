#!/usr/bin/env bash
# grpcio (gRPC C-core, an HTTP/2 + HPACK stack independent of ours) against the real binary
# with the :authority values old drivers send: tests/grpcio/authority.py. Installs the pinned
# grpcio into target/grpcio-venv on first use; builds the debug binary if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/grpcio-venv
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import grpc" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "grpcio==1.85.1"
fi
cargo build --quiet --bin akv-csi-provider
"$venv/bin/python" tests/grpcio/authority.py target/debug/akv-csi-provider
