# syntax=docker/dockerfile:1
# akv-csi-provider image: a pinned Rust builder, then a distroless runtime holding only the binary.
#
#   docker build -t akv-csi-provider:dev \
#     --build-arg VERSION="$(git describe --tags --always)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" .
#
# CI does not build this image (no container engine there); it lints it with hadolint
# (scripts/validate-deploy.sh).

FROM rust:1.95.0-bookworm AS builder
WORKDIR /src
# Only what the release binary needs (see .dockerignore): the manifest, the lock file, the
# build script and the .proto it compiles (in pure Rust: no protoc), and the sources.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
# The registry and target directories are BuildKit caches, so a rebuild after a source change
# skips the dependency graph; the binary is copied out of the cache mount to /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin akv-csi-provider \
    && mkdir -p /out \
    && cp target/release/akv-csi-provider /out/akv-csi-provider

# Runtime: distroless cc (glibc, libgcc and the CA bundle the provider verifies Entra ID and Key
# Vault against; no shell, no package manager). The binary links glibc dynamically; TLS is rustls
# with aws-lc, compiled in, so no OpenSSL is needed. Builder and runtime are both Debian 12, so
# the glibc the binary was linked against is the one it runs with.
# distroless publishes only moving tags for cc-debian12; a release pins it by digest
# (gcr.io/distroless/cc-debian12@sha256:...) when it pushes the image.
# hadolint ignore=DL3007
FROM gcr.io/distroless/cc-debian12:latest
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="akv-csi-provider" \
      org.opencontainers.image.description="Azure Key Vault provider for the Secrets Store CSI Driver (drop-in replacement for the Go provider)" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:latest"
COPY --from=builder /out/akv-csi-provider /bin/akv-csi-provider
# Root on purpose, and only for this reason: the provider creates its socket in
# /var/run/secrets-store-csi-providers, a hostPath directory owned by root that the Secrets
# Store CSI Driver (itself root) dials. A non-root user cannot create a file there. The socket
# is created owner-only (0600), so only root on the node can talk to it. Everything else is
# taken away in the pod spec: read-only root filesystem, no capabilities, no privilege
# escalation, RuntimeDefault seccomp (deploy/helm/akv-csi-provider/values.yaml).
# hadolint ignore=DL3002
USER 0:0
ENTRYPOINT ["/bin/akv-csi-provider"]
