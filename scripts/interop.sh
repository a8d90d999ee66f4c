#!/usr/bin/env bash
# The Secrets Store CSI Driver's own client code (NewPluginClientBuilder, Get, Version,
# MountContent and its atomic writer) at v1.6.0 and v1.5.6 against the release binary and the
# test kit's fakes, each in its own process: tests/interop/ (harness/ + one Go module per driver
# version). The fakes take the real services' addresses (443 for login.microsoftonline.com and
# kv-demo.vault.azure.net, IMDS's 169.254.169.254:80, NMI's 127.0.0.1:2579) inside a network
# and mount namespace made here (unshare), with an /etc/hosts of its own, so the release binary
# runs unchanged; SSL_CERT_FILE makes it trust the fakes' CA. Needs go (>= 1.25.9), unshare and
# ip; Go modules come from the module proxy into the default module cache on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
modules=(driver-v1.6 driver-v1.5)

if [[ "${1:-}" != "--inside" ]]; then
    for tool in go unshare ip; do
        command -v "$tool" >/dev/null || { echo "interop: $tool not found" >&2; exit 1; }
    done
    # The provider as shipped (release, without the test kit); the fakes as `cargo test` builds
    # them (debug, feature testkit).
    cargo build --release --quiet --bin akv-csi-provider
    cargo build --quiet --example fakes
    for m in "${modules[@]}"; do
        # Downloads the modules and compiles the tests while the network is still there.
        (cd "tests/interop/$m" && go vet ./...)
    done
    # As root the namespaces are the host's own kind; otherwise a user namespace maps us to root.
    userns=()
    [[ $(id -u) == 0 ]] || userns=(--user --map-root-user)
    exec unshare "${userns[@]}" --net --mount -- bash "$0" --inside
fi

# Inside the new namespaces: loopback, IMDS's address, and the Azure names on loopback.
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
hosts=$(mktemp)
printf '127.0.0.1\tlocalhost login.microsoftonline.com kv-demo.vault.azure.net\n::1\tlocalhost\n' >"$hosts"
mount --bind "$hosts" /etc/hosts
export AKV_PROVIDER_BIN="$root/target/release/akv-csi-provider"
export AKV_FAKES_BIN="$root/target/debug/examples/fakes"
export GOPROXY=off GOFLAGS=-mod=readonly
for m in "${modules[@]}"; do
    (cd "tests/interop/$m" &&
        echo "-- interop: $m: $(go list -m sigs.k8s.io/secrets-store-csi-driver google.golang.org/grpc | tr '\n' ' ')" &&
        go test -count=1 -timeout 5m -v ./...)
done
