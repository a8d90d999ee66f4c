//! The test kit's fakes in a process of their own, for harnesses that run the real release
//! binary against them (`scripts/interop.sh`, the driver interop suite in `tests/interop/`).
//!
//! `cargo run --example fakes -- --out FILE [--https ADDR] [--plain ADDR,ADDR...]`
//!
//! Starts fake Entra ID and Key Vault (HTTPS with a CA made on the spot) on `--https`, fake
//! IMDS/NMI on each `--plain` address and a fake AKS token proxy on a loopback port; fills them
//! with one vault, `kv-demo`, and an identity of every kind that may read it; then writes `FILE`
//! (JSON, written whole then renamed into place) telling a harness what it needs: the
//! environment and flags that make the provider trust the fakes, the service-account tokens a
//! kubelet would send, the objects and the bytes each must become. It serves until SIGTERM or
//! SIGINT. Defaults are the real services' addresses (`127.0.0.1:443` for every Azure name,
//! `169.254.169.254:80` for IMDS, `127.0.0.1:2579` for NMI): the harness runs it in a network
//! namespace of its own, where it may bind them, with an `/etc/hosts` that sends the Azure names
//! to loopback. The release binary then reaches them with no test hook at all, only
//! `SSL_CERT_FILE` (its documented way to add a CA).

use std::net::SocketAddr;
use std::path::PathBuf;

use akv_csi_provider::testkit::material::{
    OIDC_ISSUER, ec_key, rsa_certificate, service_account_token_for,
};
use akv_csi_provider::testkit::world::{CLIENT_ID, NAMESPACE, SERVICE_ACCOUNT, VAULT};
use akv_csi_provider::testkit::{ClusterOptions, FakeAzure, Stored, TENANT};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

/// The service principal a `nodePublishSecretRef` names.
const SP_CLIENT_ID: &str = "5b3c1e0a-7d2f-4e8b-9a61-0c4d2f8e6b1a";
const SP_SECRET: &str = "sp-secret-value~not-a-real-one";
/// The node's user-assigned managed identity.
const VM_CLIENT_ID: &str = "8e2a4c6d-1f3b-4d5e-a7c9-2b4d6f8a0c1e";
/// The pod NMI hands an identity to (pod identity).
const POD_IDENTITY_POD: &str = "legacy-0";
const POD_CLIENT_ID: &str = "3c5e7a9b-2d4f-4a6c-8e0b-1d3f5a7c9e2b";
/// The AKS cluster the token proxy belongs to, and the TLS name the provider computes from it
/// (the pair tests/identity_binding.rs uses).
const CLUSTER_ID: &str = "696995ccb303450001b31a18";
const PROXY_SERVER_NAME: &str = "aeaf29ip1hi5q38ebc3u4daum81u0unk52t5bg50j25234fmuj78g.ests.aks";
/// Each big secret's size: three of them exceed the driver's 4 MiB limit, two fit under it.
const BIG_BYTES: usize = 1_900_000;
/// The bytes a big secret repeats.
const BIG_PATTERN: &str = "0123456789abcdefghijklmnopqrstuvwxyz";

struct Args {
    out: PathBuf,
    https: SocketAddr,
    plain: Vec<SocketAddr>,
}

fn parse_args() -> Result<Args, String> {
    let mut out = None;
    let mut https: SocketAddr = "127.0.0.1:443".parse().map_err(|e| format!("{e}"))?;
    let mut plain: Vec<SocketAddr> = vec![
        "169.254.169.254:80".parse().map_err(|e| format!("{e}"))?,
        "127.0.0.1:2579".parse().map_err(|e| format!("{e}"))?,
    ];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--https" => https = value()?.parse().map_err(|e| format!("--https: {e}"))?,
            "--plain" => {
                plain = value()?
                    .split(',')
                    .map(|a| a.parse().map_err(|e| format!("--plain {a}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let out = out.ok_or("--out FILE is required")?;
    Ok(Args { out, https, plain })
}

fn big_value(seed: usize) -> String {
    // Distinct per secret, so a file holding another's bytes is caught.
    let mut value = format!("big-{seed}:");
    while value.len() < BIG_BYTES {
        value.push_str(BIG_PATTERN);
    }
    value.truncate(BIG_BYTES);
    value
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("fakes: {e}");
            std::process::exit(2);
        }
    };
    let azure = FakeAzure::start_on(args.https, &args.plain).await;
    let subject = format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}");
    azure.federate(CLIENT_ID, OIDC_ISSUER, &subject);
    azure.add_service_principal(SP_CLIENT_ID, SP_SECRET);
    azure.add_vm_identity(Some(VM_CLIENT_ID));
    azure.add_pod_identity(NAMESPACE, POD_IDENTITY_POD, POD_CLIENT_ID);
    let proxy = azure
        .start_token_proxy(ClusterOptions {
            cluster_id: Some(CLUSTER_ID.to_owned()),
            server_name: PROXY_SERVER_NAME.to_owned(),
        })
        .await;
    proxy
        .bind_identity(CLIENT_ID)
        .allow(CLIENT_ID, NAMESPACE, SERVICE_ACCOUNT);

    let vault = azure.vault(VAULT);
    for principal in [CLIENT_ID, SP_CLIENT_ID, VM_CLIENT_ID, POD_CLIENT_ID] {
        vault.grant(principal);
    }
    // Non-ASCII and a newline: the bytes must arrive as stored.
    let password = "correct horse ✓ battery\nstaple";
    vault.secret("db-password", password);
    let cert = rsa_certificate();
    vault.certificate(
        "tls-cert",
        &cert.pfx_base64,
        "application/x-pkcs12",
        &cert.leaf_der,
    );
    vault.certificate(
        "tls-pem",
        cert.expected_pem,
        "application/x-pem-file",
        &cert.leaf_der,
    );
    let key = ec_key(false, false);
    vault.add(
        "signing-key",
        Stored::Key {
            jwk: key.jwk.clone(),
        },
    );
    let old_token = vault.secret("api-token", "token-v1");
    let new_token = vault.secret("api-token", "token-v2");
    let mut big = Vec::new();
    for i in 0..3 {
        let name = format!("big-{i}");
        let value = big_value(i);
        vault.secret(&name, &value);
        big.push(json!({"name": name, "value": STANDARD.encode(value.as_bytes())}));
    }

    let dir = args
        .out
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let ca_file = dir.join("fake-azure-ca.pem");
    let cluster_ca_file = dir.join("fake-cluster-ca.pem");
    write(&ca_file, azure.ca_pem().as_bytes());
    write(&cluster_ca_file, proxy.ca_pem().as_bytes());
    let pfx = STANDARD
        .decode(&cert.pfx_base64)
        .unwrap_or_else(|e| panic!("fixture PFX: {e}"));
    let b64 = |bytes: &[u8]| STANDARD.encode(bytes);
    let ttl = 6 * 3600;
    let hello = json!({
        "provider_env": {"SSL_CERT_FILE": ca_file},
        "provider_args": [
            format!("--token-proxy-url={}", proxy.url()),
            format!("--token-proxy-ca-file={}", cluster_ca_file.display()),
        ],
        "plain": azure.plain_addr().to_string(),
        "tenant": TENANT,
        "vault": VAULT,
        "namespace": NAMESPACE,
        "service_account": SERVICE_ACCOUNT,
        "workload_identity": {
            "client_id": CLIENT_ID,
            "token": service_account_token_for(NAMESPACE, SERVICE_ACCOUNT, ttl, "api://AzureADTokenExchange"),
        },
        "identity_binding": {
            "client_id": CLIENT_ID,
            "token": service_account_token_for(NAMESPACE, SERVICE_ACCOUNT, ttl, "api://AKSIdentityBinding"),
        },
        "service_principal": {"client_id": SP_CLIENT_ID, "client_secret": SP_SECRET},
        "vm_identity": {"client_id": VM_CLIENT_ID},
        "pod_identity": {"pod": POD_IDENTITY_POD, "client_id": POD_CLIENT_ID},
        // What each object must become, as base64 of the file's bytes.
        "expected": {
            "db-password": b64(password.as_bytes()),
            "tls-cert-leaf-der": b64(&cert.leaf_der),
            "tls-cert-pem": b64(cert.expected_pem.as_bytes()),
            "tls-cert-pfx": b64(&pfx),
            "signing-key-pem": b64(key.expected_pem().as_bytes()),
            "api-token/0": b64(b"token-v2"),
            "api-token/1": b64(b"token-v1"),
        },
        "versions": {"api-token": [new_token, old_token]},
        "big": big,
    });
    let tmp = args.out.with_extension("tmp");
    write(&tmp, hello.to_string().as_bytes());
    std::fs::rename(&tmp, &args.out)
        .unwrap_or_else(|e| panic!("rename {} -> {}: {e}", tmp.display(), args.out.display()));
    eprintln!(
        "fakes: serving (HTTPS {}, plain {:?}); wrote {}",
        azure.https_addr(),
        args.plain,
        args.out.display()
    );

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| panic!("SIGTERM handler: {e}"));
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn write(path: &std::path::Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
