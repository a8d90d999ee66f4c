//! Accept loop and routing shared by the fakes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

use super::recorded::Recorded;
use super::{Fault, State, Target, entra, vault};

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Why a handler wants the request aborted instead of answered.
#[derive(Debug)]
pub(crate) struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault injected: reset")
    }
}

impl std::error::Error for Abort {}

pub(crate) type Reply = Result<Response<Body>, Abort>;

/// A request as the handlers see it: host, method, path, query, headers, body.
pub(crate) struct Incoming2 {
    pub host: String,
    pub method: hyper::Method,
    pub path: String,
    pub query: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Incoming2 {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }
}

/// Binds `addr` (a loopback port chosen by the OS for `127.0.0.1:0`) and serves until the
/// runtime ends; TLS when `tls` is given.
pub(crate) async fn spawn(
    state: Arc<State>,
    tls: Option<Arc<ServerConfig>>,
    addr: SocketAddr,
) -> SocketAddr {
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("bind fake server on {addr}: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("fake server address: {e}"));
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // As real front ends do: without it, Nagle's algorithm and delayed ACKs add ~40 ms
            // to responses that span several segments.
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                let builder = auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    addr
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Reply {
    let host = req
        .uri()
        .host()
        .map(str::to_owned)
        .or_else(|| {
            req.headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| h.split(':').next().unwrap_or_default().to_owned())
        })
        .unwrap_or_default();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let request = Incoming2 {
        host,
        method,
        path,
        query,
        headers,
        body,
    };
    let latency = *state.latency.lock().unwrap_or_else(|e| e.into_inner());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if request.path == "/_counts" {
        // For harnesses that run the fakes in another process.
        return Ok(json(StatusCode::OK, &state.report()));
    }
    if request.path.starts_with("/metadata/identity/oauth2/token") {
        return entra::imds(&state, &request);
    }
    if request.path.starts_with("/host/token") {
        return entra::nmi(&state, &request);
    }
    if request.host.starts_with("login.") || request.host.starts_with("adfs.") {
        return entra::token(&state, &request);
    }
    if request.host.contains(".vault.") {
        return vault::handle(&state, &request);
    }
    Ok(raw(
        StatusCode::NOT_FOUND,
        "text/plain",
        Bytes::from_static(b"no such fake host"),
    ))
}

/// The recorded answer a `Status(code)` fault serves for `target`: that service's own recorded
/// error for the status where the corpus has one, else its recorded transient error (or an
/// empty body, as IMDS and Key Vault 5xx captures are status-only) under `code`.
fn status_answer(target: Target, code: u16) -> Recorded {
    let name = match (target, code) {
        // The AKS token proxy passes Entra's answers through.
        (Target::Entra | Target::TokenProxy, _) => "entra/temporarily-unavailable-503",
        (Target::Vault, 500) => "keyvault/internal-error-500",
        (Target::Vault, _) => "keyvault/unavailable-503",
        (Target::Imds, 404) => "imds/updating-404",
        (Target::Imds, 410) => "imds/updating-410",
        (Target::Imds, 429) => "imds/throttled-429",
        (Target::Imds, _) => "imds/unknown-500",
        // NMI answers 503 when its own health check failed; no capture of the text was found.
        (Target::Nmi, _) => "keyvault/unavailable-503",
    };
    Recorded::get(name).with_status(code)
}

/// The recorded 429 of `target`, with the test's `Retry-After`.
fn throttle_answer(target: Target, retry_after_secs: u64) -> Recorded {
    let name = match target {
        Target::Entra | Target::TokenProxy => "entra/throttled-429",
        Target::Vault => "keyvault/throttled-429",
        Target::Imds | Target::Nmi => "imds/throttled-429",
    };
    Recorded::get(name).with_header("Retry-After", &retry_after_secs.to_string())
}

/// Applies the next queued fault for `target`, if any.
pub(crate) fn fault(state: &State, target: Target) -> Option<Reply> {
    Some(render_fault(target, state.take_fault(target)?))
}

/// The answer a fault stands for, as `target` would give it.
pub(crate) fn render_fault(target: Target, fault: Fault) -> Reply {
    match fault {
        Fault::Status(code) => Ok(status_answer(target, code).reply()),
        Fault::Throttle { retry_after_secs } => {
            Ok(throttle_answer(target, retry_after_secs).reply())
        }
        Fault::Replay(recorded) => Ok(recorded.reply()),
        Fault::Reset => Err(Abort),
        Fault::Html => Ok(raw(
            StatusCode::OK,
            "text/html",
            Bytes::from_static(b"<html><body>Proxy error</body></html>"),
        )),
        Fault::Truncated => Ok(raw(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(b"{\"value\":\"abc\",\"id\":\"https://kv"),
        )),
        Fault::Garbage => Ok(raw(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(b"{\"value\": <html>oops"),
        )),
        Fault::Huge(len) => {
            let mut body = Vec::with_capacity(len + 16);
            body.extend_from_slice(b"{\"value\":\"");
            body.resize(len.saturating_sub(2).max(10), b'a');
            body.extend_from_slice(b"\"}");
            Ok(raw(StatusCode::OK, "application/json", Bytes::from(body)))
        }
        Fault::Stall => {
            let first = futures_util::stream::iter([Ok::<_, Infallible>(Frame::data(
                Bytes::from_static(b"{\"value\":\""),
            ))]);
            let stream = futures_util::StreamExt::chain(first, futures_util::stream::pending());
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap_or_else(|e| panic!("stall response: {e}")))
        }
    }
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    raw(
        status,
        "application/json; charset=utf-8",
        Bytes::from(value.to_string()),
    )
}

/// A response with the given content type.
pub(crate) fn raw(status: StatusCode, content_type: &str, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body).boxed())
        .unwrap_or_else(|e| panic!("fake response: {e}"))
}
