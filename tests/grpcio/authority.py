"""An independent client (grpcio, gRPC C-core's HTTP/2 and HPACK) against the real binary,
with the `:authority` values old drivers and other clients send (issue #11).

Usage: python authority.py PROVIDER_BINARY
Starts the binary on a socket in a temporary directory, calls Version, grpc.health.v1 and a
Mount with invalid attributes (no network needed: the answer must be INVALID_ARGUMENT with
the provider's message, proof that the request reached the handler rather than being reset)
on one channel per authority, several calls per channel, then stops it.
"""
import os, signal, subprocess, sys, tempfile, time

import grpc

VERSION = "/v1alpha1.CSIDriverProvider/Version"
MOUNT = "/v1alpha1.CSIDriverProvider/Mount"
HEALTH = "/grpc.health.v1.Health/Check"


def field(number, value: bytes) -> bytes:
    """A length-delimited protobuf field (all we need: strings)."""
    key = bytes([number << 3 | 2])
    n, varint = len(value), b""
    while True:
        byte = n & 0x7F
        n >>= 7
        varint += bytes([byte | (0x80 if n else 0)])
        if not n:
            return key + varint + value


def main() -> int:
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        socket = os.path.join(tmp, "azure.sock")
        provider = subprocess.Popen(
            [binary, f"--endpoint=unix://{socket}", "--healthz-port=0", "--prometheus-port=0"],
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(200):
                if os.path.exists(socket):
                    break
                time.sleep(0.05)
            authorities = [socket, socket.replace("/", "%2F"), "localhost", "unix.sock:0:0"]
            failures = 0
            for authority in authorities:
                channel = grpc.insecure_channel(
                    f"unix:{socket}", options=[("grpc.default_authority", authority)]
                )
                version = channel.unary_unary(VERSION)
                mount = channel.unary_unary(MOUNT)
                health = channel.unary_unary(HEALTH)
                try:
                    for _ in range(3):
                        reply = version(field(1, b"v1alpha1"), timeout=10)
                        assert b"akv-csi-provider" in reply, reply
                        assert health(b"", timeout=10) == b"\x08\x01", "not SERVING"
                        try:
                            mount(field(1, b"{}") + field(2, b"null") + field(4, b"420"), timeout=120)
                            raise AssertionError("a Mount without parameters succeeded")
                        except grpc.RpcError as e:
                            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
                            assert "keyvaultName" in e.details() or "parameter" in e.details(), e.details()
                    print(f"ok   :authority {authority!r}")
                except Exception as e:  # noqa: BLE001 - report every authority
                    failures += 1
                    print(f"FAIL :authority {authority!r}: {e!r}")
                finally:
                    channel.close()
            print(f"{len(authorities) - failures} passed, {failures} failed")
            return 1 if failures else 0
        finally:
            provider.send_signal(signal.SIGTERM)
            provider.wait(timeout=40)


if __name__ == "__main__":
    sys.exit(main())
