//! A fake of AKS's identity-binding token proxy, on the API server's address: HTTPS with the
//! cluster's own CA ([`crate::testkit::tls::make_cluster`]). To clients that send no server name
//! or another one it presents the API server's serving certificate (with the
//! `hcp-kubernetes.<cluster ID>.svc.cluster.local` name the provider computes the proxy's name
//! from); only under the expected server name does it present the proxy's certificate and answer
//! token requests. It checks the standard client-assertion form, the assertion's audience
//! (`api://AKSIdentityBinding`) and the cluster RBAC (`use-managed-identity` on
//! `cid.wi.aks.azure.com/<client ID>`), then issues a token the fake Key Vault accepts.
//!
//! Source notes. Entra's answers passed through (AADSTS70021 as `401 invalid_client`, the
//! `\r\n` before `Trace ID:`, 429 as plain text with `Retry-After`, 503 AADSTS90033) replay the
//! recorded shapes of `research/fidelity.md` (#1, #3, #17). **The RBAC-denied answer is
//! illustrative**: no recording of the proxy refusing a service account exists in public sources
//! (searched: the AKS identity-binding docs, azure-sdk-for-go #25908 and azure-sdk-for-net #55208
//! troubleshooting additions, the Go provider's identity-binding docs and issues), so it is kept
//! minimal, `403` with the body `forbidden`, and the provider relies on the status alone.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::server::{Body, Reply, json, raw, render_fault};
use super::{FakeAzure, State, Target};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The audience the proxy accepts.
pub const AUDIENCE: &str = "api://AKSIdentityBinding";

/// One token request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyCall {
    /// The TLS server name of the connection (`None`: the client sent none).
    pub server_name: Option<String>,
    /// The `Host` / `:authority` the request named.
    pub host: String,
    pub path: String,
    pub client_id: String,
    pub scope: String,
    /// The assertion's `aud` claim values.
    pub audiences: Vec<String>,
}

/// How the fake cluster looks.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The cluster ID in the API server's certificate; `None` = a cluster whose certificate
    /// has no `hcp-kubernetes.…` name (not AKS).
    pub cluster_id: Option<String>,
    /// The server name under which the proxy answers.
    pub server_name: String,
}

struct ProxyState {
    azure: Arc<State>,
    server_name: String,
    /// (client ID, namespace, service account) the cluster RBAC allows.
    allowed: Mutex<HashSet<(String, String, String)>>,
    /// Client IDs with an identity binding (AKS made their federated credential).
    bound: Mutex<HashSet<String>>,
    calls: Mutex<Vec<ProxyCall>>,
    /// The server name of every TLS connection, in order.
    handshakes: Mutex<Vec<Option<String>>>,
}

/// The fake token proxy. Cheap to clone.
#[derive(Clone)]
pub struct FakeTokenProxy {
    state: Arc<ProxyState>,
    addr: SocketAddr,
    ca_pem: String,
}

impl FakeAzure {
    /// Starts a fake token proxy for a cluster in this fake Azure (tokens it issues are good
    /// for the fake vaults).
    pub async fn start_token_proxy(&self, options: ClusterOptions) -> FakeTokenProxy {
        let mut api_names = vec![
            "kubernetes".to_owned(),
            "kubernetes.default.svc".to_owned(),
            "kubernetes.default.svc.cluster.local".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        if let Some(id) = &options.cluster_id {
            api_names.push(format!("hcp-kubernetes.{id}.svc.cluster.local"));
        }
        let pki = crate::testkit::tls::make_cluster(&options.server_name, &api_names);
        let state = Arc::new(ProxyState {
            azure: self.state.clone(),
            server_name: options.server_name,
            allowed: Mutex::new(HashSet::new()),
            bound: Mutex::new(HashSet::new()),
            calls: Mutex::new(Vec::new()),
            handshakes: Mutex::new(Vec::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind fake token proxy: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fake token proxy address: {e}"));
        tokio::spawn(serve(
            listener,
            TlsAcceptor::from(pki.server),
            state.clone(),
        ));
        FakeTokenProxy {
            state,
            addr,
            ca_pem: pki.ca_pem,
        }
    }
}

impl FakeTokenProxy {
    /// `--token-proxy-url` for this proxy (the API server's address, loopback).
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// The cluster CA (what kubelet projects as `kube-root-ca.crt`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Makes `client_id` usable through identity binding (`az aks identity-binding create`).
    pub fn bind_identity(&self, client_id: &str) -> &Self {
        lock(&self.state.bound).insert(client_id.to_owned());
        self
    }

    /// The cluster RBAC: lets `namespace/service_account` use `client_id` (a ClusterRole with
    /// `use-managed-identity` on `cid.wi.aks.azure.com/<client_id>` and its binding).
    pub fn allow(&self, client_id: &str, namespace: &str, service_account: &str) -> &Self {
        lock(&self.state.allowed).insert((
            client_id.to_owned(),
            namespace.to_owned(),
            service_account.to_owned(),
        ));
        self
    }

    /// Every token request received, in order.
    pub fn calls(&self) -> Vec<ProxyCall> {
        lock(&self.state.calls).clone()
    }

    /// The server name of every TLS connection accepted (detection dials included).
    pub fn handshakes(&self) -> Vec<Option<String>> {
        lock(&self.state.handshakes).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<ProxyState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, state) = (acceptor.clone(), state.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let sni = tls.get_ref().1.server_name().map(str::to_owned);
            lock(&state.handshakes).push(sni.clone());
            let service = hyper::service::service_fn(move |req| {
                let (state, sni) = (state.clone(), sni.clone());
                async move { handle(&state, sni, req).await }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// An Entra error body as recorded: `\r\n` before `Trace ID:`.
fn entra_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response<Body> {
    json(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: 8a1c7e2f-0d4b-4f3a-9c61-2e5b7d9f0a11\r\nCorrelation ID: 3f6d2b8e-7a14-4c9e-b5d0-1e8f4a6c2b73\r\nTimestamp: 2026-11-22 12:00:00Z"),
            "error_codes": [code],
            "timestamp": "2026-11-22 12:00:00Z",
            "trace_id": "8a1c7e2f-0d4b-4f3a-9c61-2e5b7d9f0a11",
            "correlation_id": "3f6d2b8e-7a14-4c9e-b5d0-1e8f4a6c2b73",
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

fn audiences(assertion: &str) -> Option<(Vec<String>, String)> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let aud = match &claims["aud"] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    Some((aud, claims["sub"].as_str().unwrap_or_default().to_owned()))
}

async fn handle(
    state: &ProxyState,
    sni: Option<String>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Reply {
    let host = req
        .uri()
        .host()
        .map(str::to_owned)
        .or_else(|| {
            req.headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if sni.as_deref() != Some(state.server_name.as_str()) {
        // A correct client never gets here (the certificate it was shown is not valid for the
        // proxy's name); it keeps a wrong name from passing a test by accident.
        return Ok(raw(StatusCode::NOT_FOUND, "text/plain", Bytes::new()));
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let (client_id, assertion) = (field("client_id").to_owned(), field("client_assertion"));
    let (audience, subject) = audiences(assertion).unwrap_or_default();
    lock(&state.calls).push(ProxyCall {
        server_name: sni,
        host,
        path: path.clone(),
        client_id: client_id.clone(),
        scope: field("scope").to_owned(),
        audiences: audience.clone(),
    });
    state
        .azure
        .counters
        .token_proxy
        .fetch_add(1, Ordering::Relaxed);
    if let Some(f) = state.azure.take_fault(Target::TokenProxy) {
        // Entra's own 429 and transient errors pass through: the recorded ones.
        return render_fault(Target::TokenProxy, f);
    }
    let tenant = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    if method != hyper::Method::POST || !path.ends_with("/oauth2/v2.0/token") {
        return Ok(raw(StatusCode::NOT_FOUND, "text/plain", Bytes::new()));
    }
    if field("grant_type") != "client_credentials"
        || field("client_assertion_type") != ASSERTION_TYPE
        || !field("scope").ends_with("/.default")
    {
        return Ok(entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the standard client-assertion parameters.",
        ));
    }
    if !audience.iter().any(|a| a == AUDIENCE) {
        return Ok(entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700212,
            &format!(
                "No matching federated identity record found for presented assertion audience '{}'.",
                audience.join(",")
            ),
        ));
    }
    if tenant != super::TENANT {
        return Ok(entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        ));
    }
    let mut parts = subject.splitn(4, ':');
    let (ns, sa) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("system"), Some("serviceaccount"), Some(ns), Some(sa)) => (ns, sa),
        _ => ("", ""),
    };
    let allowed = lock(&state.allowed).contains(&(client_id.clone(), ns.to_owned(), sa.to_owned()));
    if !allowed {
        // Illustrative (see the module docs): only the status is known to matter.
        return Ok(raw(
            StatusCode::FORBIDDEN,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"forbidden\n"),
        ));
    }
    if !lock(&state.bound).contains(&client_id) {
        let issuer = format!("https://ib.oic.prod-aks.azure.com/{tenant}/{client_id}");
        return Ok(entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            70021,
            &format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: 'api://AzureADTokenExchange'."
            ),
        ));
    }
    let lifetime = state.azure.lifetime();
    let token = state.azure.issue(&client_id, field("scope"));
    Ok(json(
        StatusCode::OK,
        &json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}),
    ))
}
