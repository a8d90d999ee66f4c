# Seeds for the h2front fuzz target: client byte streams (after the preface) as python-hyper's
# `h2` 4.x client writes them (its own HPACK encoder: Huffman, dynamic table, several streams),
# plus hand-made frames (padding, priority, CONTINUATION, size updates, errors). Each input's
# first byte is the chunk size the target feeds (+1). Needs `pip install h2`; run from anywhere:
# python3 fuzz/seeds_h2front.py
import hashlib, os, struct
import h2.config, h2.connection

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = f"{root}/fuzz/corpus/h2front"
os.makedirs(out, exist_ok=True)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

def put(chunk, stream):
    assert stream.startswith(PREFACE)
    data = bytes([chunk]) + stream[len(PREFACE):]
    open(f"{out}/seed-{hashlib.sha1(data).hexdigest()[:12]}", "wb").write(data)

def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload

def grpc_headers(authority, path="/v1alpha1.CSIDriverProvider/Mount", extra=()):
    h = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode())]
    if authority is not None:
        h.append((b":authority", authority))
    return h + [(b"content-type", b"application/grpc"), (b"user-agent", b"grpc-go/1.56.3"),
                (b"te", b"trailers"), (b"grpc-timeout", b"119999m")] + list(extra)

sock = b"/var/run/secrets-store-csi-providers/azure.sock"
for authority in [sock, sock.replace(b"/", b"%2F"), b"", b"localhost", b"\xff\xfe", None]:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding=None, validate_outbound_headers=False))
    conn.initiate_connection()
    for stream in (1, 3, 5):
        conn.send_headers(stream, grpc_headers(authority, extra=[(b"x-attempt", str(stream).encode())]),
                          priority_weight=16 if stream == 3 else None,
                          priority_depends_on=1 if stream == 3 else None)
        conn.send_data(stream, b"\0\0\0\0\x02\x0a\x00", end_stream=True)
    conn.ping(b"12345678")
    stream = conn.data_to_send()
    put(0, stream)
    put(200, stream)

# A header block over one frame: h2 splits it into HEADERS + CONTINUATION.
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
conn.initiate_connection()
conn.send_headers(1, grpc_headers(sock, extra=[(b"x-big", b"v" * 20000)]), end_stream=True)
put(63, conn.data_to_send())

# By hand: size update, padding + priority, a CONTINUATION, then index references.
def hstr(s):
    assert len(s) < 127
    return bytes([len(s)]) + s
block = b"\x3f\xe1\x1f" + b"\x83\x86" + b"\x44" + hstr(b"/grpc.health.v1.Health/Check") + b"\x41" + hstr(sock) + b"\x5f" + hstr(b"application/grpc")
half = len(block) // 2
settings = frame(0x4, 0, 0, b"")
padded = frame(0x1, 0x8 | 0x20, 1, bytes([4]) + b"\0\0\0\0\x0f" + block[:half] + b"\0" * 4)
seed = PREFACE + settings + padded + frame(0x9, 0x4, 1, block[half:]) + frame(0x0, 0x1, 1, b"\0" * 5)
seed += frame(0x1, 0x4 | 0x1, 3, b"\x83\x86\xbf\xbe\xbd")
put(4, seed)
# Errors the front must pass to h2 or turn into an undecodable block.
put(9, PREFACE + settings + frame(0x1, 0x4, 1, b"\x82\xbe"))              # index past the table
put(9, PREFACE + settings + frame(0x9, 0x4, 1, b"\x82"))                  # CONTINUATION alone
put(9, PREFACE + settings + frame(0x1, 0x8 | 0x4, 1, b"\x09\x82"))        # padding too long
put(9, PREFACE + settings + frame(0x1, 0, 1, b"\x82") + frame(0x0, 0, 1, b""))  # interleaved DATA
put(9, PREFACE + settings + frame(0x1, 0x4, 1, b"\x82\x3f\xe1\x1f"))      # late size update
put(9, PREFACE + settings + frame(0x1, 0x4, 1, b"\x41\x81\x00"))          # bad Huffman padding
