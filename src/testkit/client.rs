//! The HTTP client the provider uses in tests: the production builder's settings, trusting only
//! the test CA, resolving every Azure host name to the fake HTTPS server (and nothing else: no
//! test talks to the internet), and redirecting IMDS/NMI to the fake plain server.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::http::{AsyncRawResponse, HttpClient, Request};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::fake::FakeAzure;

/// Host suffixes the fake answers for. Names containing `nxdomain` never resolve.
const FAKE_SUFFIXES: &[&str] = &[
    ".vault.azure.net",
    ".vault.usgovcloudapi.net",
    ".vault.azure.cn",
    ".vault.microsoftazure.de",
    ".vault.stack.test",
    ".vault.local.azurestack.external",
];
const FAKE_HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.microsoftonline.de",
    "login.stack.test",
    "adfs.local.azurestack.external",
];

#[derive(Debug)]
struct FakeResolver {
    https: SocketAddr,
    /// Resolve nothing at all.
    offline: bool,
}

impl Resolve for FakeResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let known = !self.offline
            && !host.contains("nxdomain")
            && (FAKE_HOSTS.contains(&host.as_str())
                || FAKE_SUFFIXES.iter().any(|s| host.ends_with(s)));
        let addr = self.https;
        Box::pin(async move {
            if known {
                let addrs: Addrs = Box::new(std::iter::once(addr));
                Ok(addrs)
            } else {
                Err(format!("dns error: failed to lookup address information: {host}: Name or service not known").into())
            }
        })
    }
}

/// Sends IMDS (169.254.169.254) and NMI (localhost:2579) requests to the fake plain server.
#[derive(Debug)]
struct Redirecting {
    inner: reqwest::Client,
    plain: SocketAddr,
}

#[async_trait]
impl HttpClient for Redirecting {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let url = request.url();
        let redirect = url.scheme() == "http"
            && (url.host_str() == Some("169.254.169.254")
                || (url.host_str() == Some("localhost") && url.port() == Some(2579)));
        if redirect {
            let mut moved = request.clone();
            let target = moved.url_mut();
            let _ = target.set_host(Some(&self.plain.ip().to_string()));
            let _ = target.set_port(Some(self.plain.port()));
            return self.inner.execute_request(&moved).await;
        }
        self.inner.execute_request(request).await
    }
}

/// A client for tests that must never leave the machine: every name fails to resolve.
pub fn offline_client() -> Arc<dyn HttpClient> {
    let client = crate::http::base_builder()
        .tls_certs_only([])
        .dns_resolver(Arc::new(FakeResolver {
            https: SocketAddr::from(([127, 0, 0, 1], 9)),
            offline: true,
        }))
        .no_proxy()
        .build()
        .unwrap_or_else(|e| panic!("offline HTTP client: {e}"));
    Arc::new(client)
}

impl FakeAzure {
    /// The client to hand to [`crate::run_with_http`]: production settings, test trust, fake DNS.
    pub fn http_client(&self) -> Arc<dyn HttpClient> {
        fake_http_client(self.https_addr(), self.plain_addr(), self.ca_pem())
    }
}

/// A client for fakes that may run in another process: every Azure name resolves to `https`,
/// IMDS and NMI go to `plain`, and only `ca_pem` is trusted.
pub fn fake_http_client(https: SocketAddr, plain: SocketAddr, ca_pem: &str) -> Arc<dyn HttpClient> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
        .unwrap_or_else(|e| panic!("test CA: {e}"));
    let inner = crate::http::base_builder()
        .tls_certs_only([ca])
        .dns_resolver(Arc::new(FakeResolver {
            https,
            offline: false,
        }))
        .no_proxy()
        .build()
        .unwrap_or_else(|e| panic!("test HTTP client: {e}"));
    Arc::new(Redirecting { inner, plain })
}
