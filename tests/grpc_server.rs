//! The provider over its real Unix socket, called the way the CSI driver calls it.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use akv_csi_provider::Config;
use akv_csi_provider::proto::MountRequest;
use akv_csi_provider::testkit::{KubeletAttributes, TestServer};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

const JWT: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpzYSJ9.c2ln";

fn spc() -> KubeletAttributes {
    KubeletAttributes::new("default", "app-0", "workload-identity-sa", "azure-kv")
        .param("keyvaultName", "kv-demo")
        .param("tenantID", "72f988bf-86f1-41af-91ab-2d7cd011db47")
        .param("clientID", "0d4c8f3e-5b7a-4c1e-9f2d-3a6b8c1d2e4f")
        .param(
            "objects",
            "array:\n  - |\n    objectName: secret1\n    objectType: secret\n",
        )
        .azure_token(JWT, "2026-11-22T17:18:32Z")
}

#[tokio::test]
async fn version_answers_like_the_reference() {
    let server = TestServer::start(Config::defaults()).await;
    let v = server.client().version().await.unwrap();
    assert_eq!(v.version, "v1alpha1");
    assert_eq!(v.runtime_name, "akv-csi-provider");
    assert_eq!(v.runtime_version, env!("CARGO_PKG_VERSION"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn health_service_reports_serving() {
    let server = TestServer::start(Config::defaults()).await;
    let client = server.client();
    assert_eq!(client.health("").await.unwrap(), ServingStatus::Serving);
    assert_eq!(
        client.health("v1alpha1.CSIDriverProvider").await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(
        client.health("nope").await.unwrap_err().code(),
        Code::NotFound
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn socket_is_owner_only() {
    let server = TestServer::start(Config::defaults()).await;
    let meta = std::fs::metadata(&server.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    server.stop().await.unwrap();
}

async fn mount_error(server: &TestServer, request: MountRequest) -> tonic::Status {
    match server.client().mount_raw(request).await {
        Ok(response) => panic!("expected an error, got {} files", response.files.len()),
        Err(status) => status,
    }
}

fn request(attributes: &BTreeMap<String, String>, secrets: &str, permission: &str) -> MountRequest {
    MountRequest {
        attributes: serde_json::to_string(attributes).unwrap(),
        secrets: secrets.into(),
        target_path: "/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/v/mount".into(),
        permission: permission.into(),
        current_object_version: vec![],
    }
}

#[tokio::test]
async fn bad_mounts_get_clear_errors_and_the_server_keeps_answering() {
    let server = TestServer::start(Config::defaults()).await;
    let good = spc().build();
    let cases: Vec<(&str, MountRequest, Code, &[&str])> = vec![
        (
            "attributes not JSON",
            MountRequest {
                attributes: "{oops".into(),
                ..request(&good, "null", "420")
            },
            Code::InvalidArgument,
            &["attributes", "line 1"],
        ),
        (
            "attributes not strings",
            MountRequest {
                attributes: r#"{"a":1}"#.into(),
                ..request(&good, "null", "420")
            },
            Code::InvalidArgument,
            &["attributes"],
        ),
        (
            "secrets not JSON",
            request(&good, "[\"x\"]", "420"),
            Code::InvalidArgument,
            &["secrets"],
        ),
        (
            "permission not a number",
            request(&good, "null", "0644"),
            Code::InvalidArgument,
            &["permission", "\"0644\""],
        ),
        (
            "permission too large",
            request(&good, "null", "4096"),
            Code::InvalidArgument,
            &["permission"],
        ),
        (
            "no token",
            request(
                &spc()
                    .without("csi.storage.k8s.io/serviceAccount.tokens")
                    .build(),
                "null",
                "420",
            ),
            Code::InvalidArgument,
            &["tokenRequests", "api://AzureADTokenExchange"],
        ),
        (
            "bad object",
            request(
                &spc()
                    .param(
                        "objects",
                        "array:\n  - |\n    objectName: db-pass\n    objectType: sekret\n",
                    )
                    .build(),
                "null",
                "420",
            ),
            Code::InvalidArgument,
            &["objects[0] (objectName \"db-pass\")", "objectType"],
        ),
        (
            "bad cloud",
            request(
                &spc().param("cloudName", "AzureCloud").build(),
                "null",
                "420",
            ),
            Code::InvalidArgument,
            &["cloudName", "AzureCloud"],
        ),
        (
            "stack env file missing",
            request(
                &spc()
                    .param("cloudName", "AzureStackCloud")
                    .param("cloudEnvFileName", "/nonexistent/env.json")
                    .build(),
                "null",
                "420",
            ),
            Code::InvalidArgument,
            &["AzureStackCloud", "/nonexistent/env.json"],
        ),
        (
            "vault unreachable (this test has no network)",
            request(&good, "null", "420"),
            Code::Unavailable,
            &[
                "objects[0] (objectName \"secret1\")",
                "kv-demo.vault.azure.net",
                "does not resolve",
            ],
        ),
    ];
    for (what, req, code, needles) in cases {
        let status = mount_error(&server, req).await;
        assert_eq!(status.code(), code, "{what}: {}", status.message());
        for needle in needles {
            assert!(
                status.message().contains(needle),
                "{what}: {:?} lacks {needle:?}",
                status.message()
            );
        }
        assert!(
            !status.message().contains(JWT) && !status.message().contains("eyJ"),
            "{what}: token in {:?}",
            status.message()
        );
        // Still answering after each failure.
        server.client().version().await.unwrap();
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_request_over_the_receive_limit_is_refused_and_harmless() {
    let server = TestServer::start(Config::defaults()).await;
    let huge = spc().param("padding", &"x".repeat(5 << 20)).build();
    let status = mount_error(&server, request(&huge, "null", "420")).await;
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    server.client().version().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn many_concurrent_calls() {
    let server = TestServer::start(Config::defaults()).await;
    let attrs = spc().build();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let client = server.client();
        let attrs = attrs.clone();
        calls.spawn(async move { client.mount(&attrs, None, "420").await });
    }
    while let Some(result) = calls.join_next().await {
        assert_eq!(result.unwrap().unwrap_err().code(), Code::Unavailable);
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn stop_removes_the_socket_and_reports_not_serving_first() {
    let server = TestServer::start(Config::defaults()).await;
    let socket = server.socket.clone();
    server.stop().await.unwrap();
    assert!(!socket.exists());
    tokio::time::sleep(Duration::from_millis(10)).await;
}
