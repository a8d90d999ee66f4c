//! The two HTTP endpoints operators point tools at: `/healthz` (liveness: does the gRPC server
//! answer a health check over its own socket?) and `/metrics` (Prometheus text). Each has its
//! own port; nothing else is served on either.

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tracing::{debug, warn};

/// What `/healthz` checks.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    /// The provider's gRPC socket.
    pub socket: PathBuf,
    /// URL path of the endpoint (`--healthz-path`).
    pub path: String,
    /// How long the gRPC server may take to answer (`--healthz-timeout`).
    pub timeout: Duration,
}

impl HealthCheck {
    /// `Ok` when `grpc.health.v1.Health/Check` answers SERVING over the socket in time.
    pub async fn probe(&self) -> Result<(), String> {
        let channel = crate::client::unix_channel(&self.socket);
        let mut client = HealthClient::new(channel);
        let call = client.check(HealthCheckRequest {
            service: String::new(),
        });
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(format!(
                "the gRPC server on {} did not answer a health check within {:?}",
                self.socket.display(),
                self.timeout
            )),
            Ok(Err(status)) => Err(format!(
                "the gRPC health check on {} failed: {:?} {}",
                self.socket.display(),
                status.code(),
                status.message()
            )),
            Ok(Ok(response)) => match response.into_inner().status() {
                ServingStatus::Serving => Ok(()),
                other => Err(format!("the gRPC server reports {}", other.as_str_name())),
            },
        }
    }
}

type Body = Full<Bytes>;

fn text(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Serves `/healthz` on `listener` until `shutdown`.
pub async fn serve_health(
    listener: TcpListener,
    check: HealthCheck,
    shutdown: impl Future<Output = ()> + Send,
) {
    let check = Arc::new(check);
    serve(
        listener,
        shutdown,
        move |req: Request<hyper::body::Incoming>| {
            let check = check.clone();
            async move {
                if req.uri().path() != check.path {
                    return text(StatusCode::NOT_FOUND, "not found\n".into());
                }
                match check.probe().await {
                    Ok(()) => text(StatusCode::OK, "ok\n".into()),
                    Err(reason) => {
                        warn!(%reason, "health check failed");
                        text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n"))
                    }
                }
            }
        },
    )
    .await;
}

/// Serves `/metrics` from `registry` on `listener` until `shutdown`.
pub async fn serve_metrics(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send,
) {
    serve(
        listener,
        shutdown,
        move |req: Request<hyper::body::Incoming>| {
            let registry = registry.clone();
            async move {
                if req.uri().path() != "/metrics" {
                    return text(StatusCode::NOT_FOUND, "not found\n".into());
                }
                let mut out = String::new();
                match prometheus_client::encoding::text::encode(&mut out, &registry) {
                    Ok(()) => Response::builder()
                        .status(StatusCode::OK)
                        .header(
                            hyper::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )
                        .body(Full::new(Bytes::from(out)))
                        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
                    Err(_) => text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "cannot encode metrics\n".into(),
                    ),
                }
            }
        },
    )
    .await;
}

async fn serve<F, Fut>(listener: TcpListener, shutdown: impl Future<Output = ()> + Send, handler: F)
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(60), connection).await;
        });
    }
}

/// Binds `port` on all interfaces with `SO_REUSEPORT` (and `SO_REUSEADDR`): with
/// `hostNetwork`, a surge rollout runs two provider pods on a node for a moment, and the new
/// one must bind the same health and metrics ports while the old one still holds them. The
/// kernel spreads connections between the two listeners; each process answers for itself, and
/// the old one's listener closes when it shuts down. A process that did not set the option
/// (the Go provider) still makes the bind fail.
pub fn bind(port: u16) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(std::net::SocketAddr::from(([0, 0, 0, 0], port)))?;
    socket.listen(1024)
}
