//! The one HTTP stack every Entra and Key Vault call goes through: a pooled reqwest client
//! (rustls, HTTP/2) that trusts the system roots plus `SSL_CERT_FILE` / `SSL_CERT_DIR`, wrapped so
//! no response body is read past a fixed cap, and every token-endpoint answer read before the
//! SDK parses it ([`token_endpoint`]), every request paced by its host's [`budget`]. [`retry_after`] is the one `Retry-After` parser.

pub mod budget;
pub mod retry_after;
pub mod token_endpoint;

pub use budget::{BudgetClient, BudgetSettings, Budgets};
pub use token_endpoint::{TokenEndpointClient, TokenFailure, token_failure};

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::error::ErrorKind;
use azure_core::http::{AsyncRawResponse, HttpClient, Request};
use bytes::Bytes;
use futures_core::Stream;

/// No Entra or Key Vault document we read is anywhere near this; larger bodies are refused.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Bundles where Linux distributions keep the system's trusted roots (first found wins).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No trusted root certificate was found anywhere.
    #[error(
        "no trusted CA certificates found (looked in the system bundle, SSL_CERT_FILE and SSL_CERT_DIR)"
    )]
    NoRoots,
    /// The reqwest client could not be built.
    #[error("cannot build the HTTPS client: {0}")]
    Build(#[source] reqwest::Error),
}

/// Where trusted roots come from.
#[derive(Debug, Clone, Default)]
pub struct TrustSources {
    /// System bundle file, if any.
    pub system_bundle: Option<PathBuf>,
    /// `SSL_CERT_FILE`.
    pub cert_file: Option<PathBuf>,
    /// `SSL_CERT_DIR` entries.
    pub cert_dirs: Vec<PathBuf>,
}

impl TrustSources {
    /// The system bundle plus the OpenSSL/Go environment variables of this process.
    pub fn from_env() -> Self {
        TrustSources {
            system_bundle: SYSTEM_BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file()),
            cert_file: std::env::var_os("SSL_CERT_FILE").map(PathBuf::from),
            cert_dirs: std::env::var_os("SSL_CERT_DIR")
                .map(|dirs| {
                    std::env::split_paths(&dirs)
                        .filter(|p| !p.as_os_str().is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Every certificate from every source; unreadable sources are skipped with a warning.
    pub fn load(&self) -> Vec<reqwest::Certificate> {
        let mut files: Vec<PathBuf> = self
            .system_bundle
            .iter()
            .chain(&self.cert_file)
            .cloned()
            .collect();
        for dir in &self.cert_dirs {
            match std::fs::read_dir(dir) {
                Ok(entries) => {
                    files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()))
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot read SSL_CERT_DIR entry")
                }
            }
        }
        files.iter().flat_map(|f| read_bundle(f)).collect()
    }
}

fn read_bundle(path: &Path) -> Vec<reqwest::Certificate> {
    match std::fs::read(path) {
        Ok(bytes) => reqwest::Certificate::from_pem_bundle(&bytes).unwrap_or_default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read CA bundle");
            Vec::new()
        }
    }
}

/// The production client: pooled, HTTP/2 where offered, verified TLS with `trust` roots only.
pub fn production_client(trust: &TrustSources) -> Result<reqwest::Client, HttpError> {
    let roots = trust.load();
    if roots.is_empty() {
        return Err(HttpError::NoRoots);
    }
    base_builder()
        .tls_certs_only(roots)
        .build()
        .map_err(HttpError::Build)
}

/// Settings shared by the production client and the test kit's.
pub fn base_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("akv-csi-provider/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(32)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
}

/// Error raised while reading a body longer than [`MAX_BODY_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("response body larger than {limit} bytes")]
pub struct BodyTooLarge {
    /// The cap that was exceeded.
    pub limit: usize,
}

/// An [`HttpClient`] that refuses bodies over a cap, so a lying server cannot exhaust memory.
#[derive(Debug, Clone)]
pub struct CappedClient {
    inner: Arc<dyn HttpClient>,
    limit: usize,
}

impl CappedClient {
    /// Wraps `inner`, reading at most `limit` bytes of any body.
    pub fn new(inner: Arc<dyn HttpClient>, limit: usize) -> Self {
        CappedClient { inner, limit }
    }
}

#[async_trait]
impl HttpClient for CappedClient {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let response = self.inner.execute_request(request).await?;
        let declared = response
            .headers()
            .get_optional_str(&azure_core::http::headers::CONTENT_LENGTH)
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.limit as u64) {
            return Err(too_large(self.limit));
        }
        let (status, headers, body) = response.deconstruct();
        let capped = Capped {
            inner: Box::pin(body),
            seen: 0,
            limit: self.limit,
        };
        Ok(AsyncRawResponse::new(status, headers, Box::pin(capped)))
    }
}

fn too_large(limit: usize) -> azure_core::Error {
    azure_core::Error::with_error(
        ErrorKind::Io,
        BodyTooLarge { limit },
        "response body too large",
    )
}

struct Capped {
    inner: Pin<Box<dyn Stream<Item = azure_core::Result<Bytes>> + Send>>,
    seen: usize,
    limit: usize,
}

impl Stream for Capped {
    type Item = azure_core::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.seen > self.limit {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen = self.seen.saturating_add(chunk.len());
                if self.seen > self.limit {
                    Poll::Ready(Some(Err(too_large(self.limit))))
                } else {
                    Poll::Ready(Some(Ok(chunk)))
                }
            }
            other => other,
        }
    }
}

/// Whether `err` (or its cause) is a [`BodyTooLarge`].
pub fn is_body_too_large(err: &azure_core::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<BodyTooLarge>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_file_and_dir_roots() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen_free_ca_pem();
        std::fs::write(dir.path().join("one.pem"), &ca).unwrap();
        std::fs::write(dir.path().join("junk.txt"), b"not a certificate").unwrap();
        let file = dir.path().join("bundle.pem");
        std::fs::write(&file, format!("{ca}{ca}")).unwrap();
        let sources = TrustSources {
            system_bundle: None,
            cert_file: Some(file),
            cert_dirs: vec![dir.path().to_owned(), "/nonexistent".into()],
        };
        // bundle.pem (2) is read as the file and again from the directory, plus one.pem.
        assert_eq!(sources.load().len(), 5);
        assert!(matches!(
            production_client(&TrustSources::default()),
            Err(HttpError::NoRoots)
        ));
        assert!(production_client(&sources).is_ok());
    }

    /// A fixed self-signed CA (generated once with openssl; only its shape matters here).
    fn rcgen_free_ca_pem() -> String {
        include_str!("../../tests/fixtures/tls/test-ca.pem").to_owned()
    }
}
