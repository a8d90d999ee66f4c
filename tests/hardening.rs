//! Faults, hostile parameters, load and lifecycle: each ends in the right gRPC code within the
//! deadline, with bounded memory, and never a partial set of files.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use akv_csi_provider::Config;
use akv_csi_provider::proto::MountRequest;
use akv_csi_provider::testkit::material::service_account_token;
use akv_csi_provider::testkit::world::{NAMESPACE, SERVICE_ACCOUNT, VAULT};
use akv_csi_provider::testkit::{Fault, Target, World, objects_yaml, status_kib};
use tonic::Code;

const ONE: &str = "objectName: s\nobjectType: secret";

async fn world(timeout: Duration) -> World {
    let mut config = Config::defaults();
    config.mount_timeout = timeout;
    let mut world = World::start(config).await;
    // The driver forwards kubelet's deadline; here it is this short.
    world.server.client_timeout = Some(timeout);
    world.azure.vault(VAULT).secret("s", "value");
    world
}

async fn expect(
    world: &World,
    attrs: &BTreeMap<String, String>,
    code: Code,
    within: Duration,
) -> String {
    let started = Instant::now();
    let status = world
        .client()
        .mount(attrs, None, "420")
        .await
        .expect_err("the Mount must fail");
    assert_eq!(status.code(), code, "{}", status.message());
    assert!(started.elapsed() < within, "took {:?}", started.elapsed());
    status.message().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_and_truncated_json_are_upstream_faults() {
    let world = world(Duration::from_secs(5)).await;
    let attrs = world.spc(&objects_yaml(&[ONE])).build();
    for fault in [Fault::Html, Fault::Truncated, Fault::Garbage] {
        world.azure.push_fault(Target::Vault, fault.clone());
        let m = expect(&world, &attrs, Code::Unavailable, Duration::from_secs(5)).await;
        assert!(m.contains("kv-demo"), "{fault:?}: {m}");
    }
    // The vault recovers: the next Mount works.
    assert_eq!(
        world
            .client()
            .mount(&attrs, None, "420")
            .await
            .unwrap()
            .files
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_faults() {
    let world = world(Duration::from_secs(3)).await;
    // A reset and a 5xx are retried.
    world.azure.push_fault(Target::Entra, Fault::Reset);
    world.azure.push_fault(Target::Entra, Fault::Status(502));
    let attrs = world.spc(&objects_yaml(&[ONE])).build();
    world.client().mount(&attrs, None, "420").await.unwrap();
    // Entra stalled mid-body: the deadline ends it.
    world.azure.push_fault(Target::Entra, Fault::Stall);
    let attrs = world.spc(&objects_yaml(&[ONE])).build();
    expect(
        &world,
        &attrs,
        Code::DeadlineExceeded,
        Duration::from_secs(6),
    )
    .await;
    // A storm of 429s from Entra past the deadline.
    world.azure.push_faults(
        Target::Entra,
        Fault::Throttle {
            retry_after_secs: 1,
        },
        50,
    );
    let attrs = world.spc(&objects_yaml(&[ONE])).build();
    let m = expect(
        &world,
        &attrs,
        Code::ResourceExhausted,
        Duration::from_secs(6),
    )
    .await;
    assert!(m.contains("throttling"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_service_account_tokens() {
    let world = world(Duration::from_secs(5)).await;
    for token in ["not-a-jwt", "a.b.c", "eyJ.eyJ.sig"] {
        let attrs = world.spc_with_token(&objects_yaml(&[ONE]), token).build();
        let m = expect(
            &world,
            &attrs,
            Code::Unauthenticated,
            Duration::from_secs(5),
        )
        .await;
        assert!(!m.contains(token) || token.len() < 4, "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_driver_limit_is_refused_not_sent() {
    let world = world(Duration::from_secs(10)).await;
    let big = "x".repeat(1536 * 1024);
    for name in ["big1", "big2", "big3"] {
        world.azure.vault(VAULT).secret(name, &big);
    }
    let attrs = world
        .spc(&objects_yaml(&[
            "objectName: big1\nobjectType: secret",
            "objectName: big2\nobjectType: secret",
            "objectName: big3\nobjectType: secret",
        ]))
        .build();
    let m = expect(
        &world,
        &attrs,
        Code::ResourceExhausted,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        m.contains("4 MiB") && m.contains("max-call-recv-msg-size"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_parameters_are_rejected_quickly() {
    let world = world(Duration::from_secs(5)).await;
    let started = Instant::now();
    let cases: Vec<(&str, BTreeMap<String, String>)> = vec![
        (
            "megabyte vault name",
            world
                .spc(&objects_yaml(&[ONE]))
                .param("keyvaultName", &"k".repeat(1 << 20))
                .build(),
        ),
        (
            "megabyte alias",
            world
                .spc(&objects_yaml(&[&format!(
                    "{ONE}\nobjectAlias: {}",
                    "a/".repeat(1 << 19)
                )]))
                .build(),
        ),
        ("thousands of objects", {
            let items: Vec<String> = (0..5000)
                .map(|i| format!("objectName: s{i}\nobjectType: secret"))
                .collect();
            let items: Vec<&str> = items.iter().map(String::as_str).collect();
            world.spc(&objects_yaml(&items)).build()
        }),
        (
            "deep YAML",
            world
                .spc(&format!(
                    "array: {}{}",
                    "[".repeat(100_000),
                    "]".repeat(100_000)
                ))
                .build(),
        ),
        (
            "NUL in alias",
            world
                .spc(&objects_yaml(&[&format!("{ONE}\nobjectAlias: \"a\\0b\"")]))
                .build(),
        ),
        (
            "backslash traversal",
            world
                .spc(&objects_yaml(&[&format!(
                    "{ONE}\nobjectAlias: '..\\\\..\\\\etc'"
                )]))
                .build(),
        ),
        (
            "absolute alias",
            world
                .spc(&objects_yaml(&[&format!(
                    "{ONE}\nobjectAlias: /etc/shadow"
                )]))
                .build(),
        ),
        (
            "dot-dot inside",
            world
                .spc(&objects_yaml(&[&format!("{ONE}\nobjectAlias: a/../../b")]))
                .build(),
        ),
    ];
    for (what, attrs) in cases {
        let status = world
            .client()
            .mount(&attrs, None, "420")
            .await
            .expect_err(what);
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{what}: {}",
            status.message()
        );
        assert!(
            status.message().len() < 4096,
            "{what}: a {}-byte message",
            status.message().len()
        );
    }
    // Wrong types everywhere in the request itself.
    for (attributes, secrets, permission) in [
        (r#"{"keyvaultName": {"nested": true}}"#, "null", "420"),
        (r#"["not", "a", "map"]"#, "null", "420"),
        ("{}", r#"{"clientid": 42}"#, "420"),
        ("{}", "null", "4.2e1"),
        ("\u{0}", "\u{0}", "\u{0}"),
    ] {
        let request = MountRequest {
            attributes: attributes.into(),
            secrets: secrets.into(),
            permission: permission.into(),
            target_path: "/x".into(),
            current_object_version: vec![],
        };
        let status = world
            .client()
            .mount_raw(request)
            .await
            .expect_err(attributes);
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{attributes}: {}",
            status.message()
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // And the server still serves.
    assert_eq!(
        world
            .client()
            .mount(&world.spc(&objects_yaml(&[ONE])).build(), None, "420")
            .await
            .unwrap()
            .files
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_mounts_without_an_error() {
    let mut config = Config::defaults();
    config.upstream_requests_per_second = 0;
    let world = World::start(config).await;
    for i in 0..3 {
        world.azure.vault(VAULT).secret(&format!("s{i}"), "value");
    }
    world.azure.set_latency(Duration::from_millis(5));
    let items = [
        "objectName: s0\nobjectType: secret",
        "objectName: s1\nobjectType: secret",
        "objectName: s2\nobjectType: secret",
    ];
    let before = status_kib(None, "VmRSS:");
    let driver = world.client();
    let tokens: Vec<String> = (0..100)
        .map(|_| service_account_token(NAMESPACE, SERVICE_ACCOUNT, 3600))
        .collect();
    let mut mounts = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let attrs = world
            .spc_with_token(&objects_yaml(&items), &tokens[i % 100])
            .build();
        let client = driver.clone();
        mounts.spawn(async move {
            client
                .mount(&attrs, None, "420")
                .await
                .map(|r| r.files.len())
        });
    }
    let mut ok = 0;
    while let Some(r) = mounts.join_next().await {
        match r.unwrap() {
            Ok(3) => ok += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ok, 1000);
    let counts = world.azure.counts();
    assert!(counts.entra <= 100, "{counts:?}");
    // Provider, fakes and 1,000 in-flight calls share this process; growth stays bounded.
    let grown = status_kib(None, "VmHWM:").saturating_sub(before);
    assert!(grown < 256 * 1024, "peak RSS grew by {grown} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_load_lets_in_flight_mounts_finish() {
    let world = world(Duration::from_secs(10)).await;
    world.azure.set_latency(Duration::from_millis(400));
    let attrs = world.spc(&objects_yaml(&[ONE])).build();
    let driver = world.client();
    let mut mounts = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let client = driver.clone();
        let attrs = attrs.clone();
        mounts.spawn(async move { client.mount(&attrs, None, "420").await });
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let socket = world.server.socket.clone();
    let World { server, azure } = world;
    let stopping = tokio::spawn(server.stop());
    while let Some(r) = mounts.join_next().await {
        assert_eq!(
            r.unwrap().expect("in-flight Mount completes").files.len(),
            1
        );
    }
    stopping.await.unwrap().unwrap();
    assert!(!socket.exists());
    drop(azure);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companion_files_obey_the_path_rules_too() {
    let mut config = Config::defaults();
    config.write_cert_and_key_in_separate_files = true;
    let world = World::start(config).await;
    let cert = akv_csi_provider::testkit::material::rsa_certificate();
    world.azure.vault(VAULT).certificate(
        "tls",
        &cert.pfx_base64,
        "application/x-pkcs12",
        &cert.leaf_der,
    );
    world.azure.vault(VAULT).secret("ca", "ca-bundle");
    // tls.crt is a file; another object wants tls.crt to be a directory.
    let attrs = world
        .spc(&objects_yaml(&[
            "objectName: tls\nobjectType: secret",
            "objectName: ca\nobjectType: secret\nobjectAlias: tls.crt/ca",
        ]))
        .build();
    let m = expect(
        &world,
        &attrs,
        Code::InvalidArgument,
        Duration::from_secs(10),
    )
    .await;
    assert!(m.contains("tls.crt"), "{m}");
    // A 255-byte alias is fine alone, but its .crt companion is too long for the driver.
    let long = "a".repeat(255);
    let attrs = world
        .spc(&objects_yaml(&[&format!(
            "objectName: tls\nobjectType: secret\nobjectAlias: {long}"
        )]))
        .build();
    let m = expect(
        &world,
        &attrs,
        Code::InvalidArgument,
        Duration::from_secs(10),
    )
    .await;
    assert!(m.contains("longer than 255"), "{m}");
}
