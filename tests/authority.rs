//! Any `:authority` mounts (issue #11): driver v1.5.x sends the socket's path, which h2 alone
//! refuses. The client here encodes its header blocks the way driver v1.5's grpc-go does
//! (testkit `old_driver`), over the provider's real Unix socket, against the fakes.

use std::path::Path;

use akv_csi_provider::Config;
use akv_csi_provider::h2front::hpack::{DEFAULT_TABLE_SIZE, Decoder, encode_string};
use akv_csi_provider::h2front::inbound::PREFACE;
use akv_csi_provider::testkit::{DriverClient, World, objects_yaml};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio_stream::wrappers::UnixListenerStream;
use tonic_health::pb::health_check_response::ServingStatus;

const ITEMS: &[&str] = &[
    "objectName: db-password\nobjectType: secret",
    "objectName: api-key\nobjectType: secret",
];

async fn world() -> World {
    let world = World::start(Config::defaults()).await;
    let vault = world.azure.vault(akv_csi_provider::testkit::world::VAULT);
    vault.secret("db-password", "hunter2");
    vault.secret("api-key", "k-123");
    world
}

/// What a v1.5 driver, a URL-minded client, an empty default and v1.6 send, plus bytes that
/// are not even UTF-8 (h2 would close the whole connection on those).
fn authorities(socket: &Path) -> Vec<Option<Vec<u8>>> {
    let path = socket.to_str().unwrap().to_owned();
    vec![
        Some(path.clone().into_bytes()),
        Some(path.replace('/', "%2F").into_bytes()),
        Some(Vec::new()),
        Some(b"localhost".to_vec()),
        Some(b"\xff\xfe not utf-8".to_vec()),
        None,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_succeeds_whatever_the_authority() {
    let world = world().await;
    let attrs = world.spc(&objects_yaml(ITEMS)).build();
    for authority in authorities(&world.server.socket) {
        let shown = authority.as_deref().map(|a| a.escape_ascii().to_string());
        let client = DriverClient::with_authority(&world.server.socket, authority.as_deref());
        // Twice on one connection: the second request refers to the authority by its
        // dynamic-table index, as grpc-go's encoder does.
        for attempt in 0..2 {
            let response = client
                .mount(&attrs, None, "420")
                .await
                .unwrap_or_else(|e| panic!("authority {shown:?}, attempt {attempt}: {e}"));
            assert_eq!(response.files.len(), 2, "{shown:?}");
            assert_eq!(response.object_version.len(), 2, "{shown:?}");
            let password = response
                .files
                .iter()
                .find(|f| f.path == "db-password")
                .unwrap();
            assert_eq!(password.contents, b"hunter2");
        }
        assert_eq!(client.version().await.unwrap().version, "v1alpha1");
        assert_eq!(client.health("").await.unwrap(), ServingStatus::Serving);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_lived_connection_keeps_both_tables_in_step() {
    let world = world().await;
    let attrs = world.spc(&objects_yaml(ITEMS)).build();
    let socket = world.server.socket.to_str().unwrap().as_bytes().to_vec();
    let client = DriverClient::with_authority(&world.server.socket, Some(&socket));
    // A different grpc-timeout on every call: each is a new table entry, so the client's
    // 4 KiB table evicts old entries (the authority among them) many times over.
    for i in 0..150u64 {
        let client = client
            .clone()
            .with_timeout(Some(std::time::Duration::from_millis(120_000 - i)));
        let response = client
            .mount(&attrs, None, "420")
            .await
            .unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert_eq!(response.files.len(), 2);
    }
}

#[tokio::test]
async fn h2_without_the_front_refuses_the_path_authority() {
    // The control: the same client against a bare tonic server fails, so the tests above
    // exercise the bug and not a client that quietly sends localhost.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("azure.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(UnixListenerStream::new(listener)),
    );
    let path = socket.to_str().unwrap().as_bytes().to_vec();
    let old = DriverClient::with_authority(&socket, Some(&path));
    let status = old.health("").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
    let new = DriverClient::with_authority(&socket, Some(b"localhost"));
    assert_eq!(new.health("").await.unwrap(), ServingStatus::Serving);
}

/// Frames written by hand: HEADERS with padding and priority, a CONTINUATION, a dynamic table
/// size update, the socket path as a Huffman literal indexed into the table, then a second
/// stream that refers to it by index. h2 behind the front must answer both.
#[tokio::test]
async fn hand_written_frames_with_padding_priority_and_continuation() {
    let world = world().await;
    let socket = world.server.socket.clone();
    let mut conn = UnixStream::connect(&socket).await.unwrap();
    let path = socket.to_str().unwrap().as_bytes();

    let mut block = vec![0x3f, 0xe1, 0x1f]; // size update to 4096
    block.extend([0x83, 0x86]); // :method POST, :scheme http
    block.push(0x44); // :path, literal with incremental indexing
    encode_string(b"/grpc.health.v1.Health/Check", true, &mut block);
    block.push(0x41); // :authority, literal with incremental indexing
    encode_string(path, true, &mut block);
    block.push(0x5f); // content-type (static 31), literal with incremental indexing
    encode_string(b"application/grpc", true, &mut block);
    block.push(0x40);
    encode_string(b"te", false, &mut block);
    encode_string(b"trailers", true, &mut block);
    let (first, second) = block.split_at(block.len() / 2);

    let mut out = PREFACE.to_vec();
    frame(&mut out, 0x4, 0, 0, &[]); // SETTINGS
    // HEADERS, PADDED | PRIORITY, no END_HEADERS.
    let mut payload = vec![7];
    payload.extend([0, 0, 0, 0, 15]); // depends on stream 0, weight 16
    payload.extend_from_slice(first);
    payload.extend([0; 7]);
    frame(&mut out, 0x1, 0x8 | 0x20, 1, &payload);
    frame(&mut out, 0x9, 0x4, 1, second); // CONTINUATION, END_HEADERS
    frame(&mut out, 0x0, 0x1, 1, &[0, 0, 0, 0, 0]); // DATA: an empty HealthCheckRequest
    // Stream 3: everything by index now (62 = te, 63 = content-type, 64 = :authority,
    // 65 = :path).
    frame(&mut out, 0x1, 0x4, 3, &[0x83, 0x86, 0xc1, 0xc0, 0xbf, 0xbe]);
    frame(&mut out, 0x0, 0x1, 3, &[0, 0, 0, 0, 0]);
    conn.write_all(&out).await.unwrap();

    let mut decoder = Decoder::new(DEFAULT_TABLE_SIZE);
    let mut finished = Vec::new();
    while finished.len() < 2 {
        let mut head = [0u8; 9];
        conn.read_exact(&mut head).await.unwrap();
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0; len];
        conn.read_exact(&mut payload).await.unwrap();
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
        match head[3] {
            0x1 => {
                let mut fields = Vec::new();
                decoder.decode(&payload, usize::MAX, &mut fields).unwrap();
                if head[4] & 0x1 != 0 {
                    let status = fields.iter().find(|f| &f.name[..] == b"grpc-status");
                    assert_eq!(status.map(|f| &f.value[..]), Some(&b"0"[..]), "{fields:?}");
                    finished.push(stream);
                }
            }
            0x3 | 0x7 => panic!("stream reset or GOAWAY: {head:?} {payload:?}"),
            _ => {}
        }
    }
    finished.sort();
    assert_eq!(finished, [1, 3]);
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len();
    out.extend([(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend_from_slice(payload);
}

#[tokio::test]
async fn the_server_keeps_the_limits_the_front_assumes() {
    // The front re-frames and decodes with hyper's defaults (h2front::Limits::default()). If
    // the server ever advertised other limits, this fails and the front must be told.
    let world = world().await;
    let mut conn = UnixStream::connect(&world.server.socket).await.unwrap();
    let mut hello = PREFACE.to_vec();
    frame(&mut hello, 0x4, 0, 0, &[]);
    conn.write_all(&hello).await.unwrap();
    let mut head = [0u8; 9];
    conn.read_exact(&mut head).await.unwrap();
    assert_eq!(head[3], 0x4, "the server speaks first with SETTINGS");
    let len = usize::from(head[1]) << 8 | usize::from(head[2]);
    let mut payload = vec![0; len];
    conn.read_exact(&mut payload).await.unwrap();
    let limits = akv_csi_provider::h2front::Limits::default();
    for setting in payload.chunks(6) {
        let id = u16::from_be_bytes([setting[0], setting[1]]);
        let value = u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]) as usize;
        match id {
            0x1 => assert_eq!(value, limits.header_table_size, "HEADER_TABLE_SIZE"),
            0x5 => assert_eq!(value, limits.max_frame_size, "MAX_FRAME_SIZE"),
            0x6 => assert_eq!(value, limits.max_header_list_size, "MAX_HEADER_LIST_SIZE"),
            _ => {}
        }
    }
}
