# syntax=docker/dockerfile:1
# Multi-stage build: a pinned Rust builder, then a distroless runtime with only the binary.
FROM rust:1.95.0-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
RUN cargo build --release --locked --bin akv-csi-provider

# The provider must create its socket in the hostPath shared with the CSI driver, which runs as
# root and owns that directory, so the image runs as root (the socket itself is owner-only 0600).
FROM gcr.io/distroless/cc-debian12:latest
LABEL org.opencontainers.image.title="akv-csi-provider" \
      org.opencontainers.image.description="Azure Key Vault provider for the Secrets Store CSI Driver" \
      org.opencontainers.image.licenses="MIT"
COPY --from=builder /src/target/release/akv-csi-provider /bin/akv-csi-provider
ENTRYPOINT ["/bin/akv-csi-provider"]
