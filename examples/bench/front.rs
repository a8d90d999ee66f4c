//! The authority front's cost: alone on a recorded-style byte stream, and end to end with a
//! v1.6-style client (`:authority` localhost, tonic's own HPACK) next to v1.5-style ones
//! (grpc-go's HPACK, authority localhost or the socket path).

use std::sync::Arc;
use std::time::{Duration, Instant};

use akv_csi_provider::h2front::hpack::Field;
use akv_csi_provider::h2front::inbound::PREFACE;
use akv_csi_provider::h2front::{Inbound, Limits, Repair};
use akv_csi_provider::testkit::DriverClient;
use akv_csi_provider::testkit::material::service_account_token;
use akv_csi_provider::testkit::old_driver::GoEncoder;
use akv_csi_provider::testkit::world::{NAMESPACE, SERVICE_ACCOUNT};
use bytes::Bytes;

use super::{Bench, LATENCY, cpu_time, median, ms, unlimited};

const SOCKET: &str = "/var/run/secrets-store-csi-providers/azure.sock";

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len();
    out.extend([(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// `n` Mount requests as driver v1.5's grpc-go writes them: HEADERS (its HPACK choices, a new
/// grpc-timeout each time) and a 3 KiB DATA frame.
fn grpc_go_stream(n: u32) -> Vec<u8> {
    let mut encoder = GoEncoder::default();
    let mut out = PREFACE.to_vec();
    frame(&mut out, 0x4, 0, 0, &[]);
    let body = vec![b'x'; 3 << 10];
    for i in 0..n {
        let timeout = format!("{}m", 119_999 - i % 50);
        let fields: [(&str, &[u8]); 8] = [
            (":method", b"POST"),
            (":scheme", b"http"),
            (":path", b"/v1alpha1.CSIDriverProvider/Mount"),
            (":authority", SOCKET.as_bytes()),
            ("content-type", b"application/grpc"),
            ("user-agent", b"grpc-go/1.56.3"),
            ("te", b"trailers"),
            ("grpc-timeout", timeout.as_bytes()),
        ];
        let mut block = Vec::new();
        for (name, value) in fields {
            let field = Field {
                name: Bytes::from_static(name.as_bytes()),
                value: Bytes::copy_from_slice(value),
                never_indexed: false,
            };
            encoder.encode(&field, &mut block);
        }
        let stream = 1 + 2 * i;
        frame(&mut out, 0x1, 0x4, stream, &block);
        frame(&mut out, 0x0, 0x1, stream, &body);
    }
    out
}

/// Builds one of the compared clients for a bench.
type MakeClient = fn(&Bench) -> DriverClient;

pub async fn front() {
    println!("## The authority front\n");
    let requests = 20_000;
    let stream = grpc_go_stream(requests);
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let mut inbound = Inbound::new(Repair::new(), Limits::default());
        let mut out = Vec::with_capacity(stream.len() * 2);
        let started = Instant::now();
        for chunk in stream.chunks(16 << 10) {
            inbound.push(chunk, &mut out);
        }
        best = best.min(started.elapsed());
        assert_eq!(inbound.recoder().replaced(), u64::from(requests));
    }
    println!(
        "The front alone on {requests} grpc-go-encoded Mount requests (socket path as `:authority`, 3 KiB body each): {:.2} µs per request, {:.0} MB/s.\n",
        best.as_secs_f64() * 1e6 / f64::from(requests),
        stream.len() as f64 / best.as_secs_f64() / 1e6
    );

    println!(
        "End to end, 10 objects: warm Mount median at {} ms per request (21 Mounts), and CPU per warm Mount at no injected latency (1,000 Mounts, 8 callers on one connection; CPU includes the calling client and, for the v1.5-style rows, its re-encoding pipe).\n",
        LATENCY.as_millis()
    );
    println!("| client | `:authority` | warm median | CPU per Mount |");
    println!("|---|---|---:|---:|");
    let rows: [(&str, &str, MakeClient); 3] = [
        ("v1.6-style (tonic's HPACK)", "`localhost`", |b| {
            b.server.client()
        }),
        ("v1.5-style (grpc-go's HPACK)", "`localhost`", |b| {
            DriverClient::with_authority(&b.server.socket, Some(b"localhost"))
        }),
        ("v1.5-style (grpc-go's HPACK)", "the socket path", |b| {
            let path = b
                .server
                .socket
                .to_str()
                .unwrap_or_default()
                .as_bytes()
                .to_vec();
            DriverClient::with_authority(&b.server.socket, Some(&path))
        }),
    ];
    for (client_name, authority, make) in rows {
        let latency = Bench::start(LATENCY, 10, 0, unlimited()).await;
        let token = service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600);
        let attrs = latency.attrs(10, &token);
        let client = make(&latency);
        client.mount(&attrs, None, "420").await.expect("warm-up");
        let mut warm = Vec::new();
        for _ in 0..21 {
            let started = Instant::now();
            client.mount(&attrs, None, "420").await.expect("warm mount");
            warm.push(started.elapsed());
        }
        latency.stop().await;

        let bench = Bench::start(Duration::ZERO, 10, 0, unlimited()).await;
        let attrs = Arc::new(bench.attrs(10, &token));
        let client = make(&bench);
        client.mount(&attrs, None, "420").await.expect("warm-up");
        let (total, workers) = (1000usize, 8usize);
        let cpu0 = cpu_time();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let client = client.clone();
            let attrs = attrs.clone();
            tasks.spawn(async move {
                for _ in 0..total / workers {
                    client.mount(&attrs, None, "420").await.expect("mount");
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let cpu = cpu_time() - cpu0;
        bench.stop().await;
        println!(
            "| {client_name} | {authority} | {} | {:.2} ms |",
            ms(median(warm)),
            cpu.as_secs_f64() * 1000.0 / total as f64
        );
    }
    println!();
}
