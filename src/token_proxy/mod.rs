//! The transport of AKS identity binding (`useAzureTokenProxy`, SPEC §4): token requests meant
//! for Entra are sent to the cluster's token proxy (`--token-proxy-url`, by default the API
//! server's service name) under the TLS server name that routes them (`--sni-name`, by default
//! computed at start from the API server's certificate, [`sni`]), trusting only the cluster CA
//! file ([`trust`], re-read on every use). Key Vault never goes through here.
//!
//! [`TokenProxy`] is an [`HttpClient`]: the credential of an identity-binding plan uses it as its
//! transport, so the SDK's standard client-assertion request is what travels. The request keeps
//! its path and query (`{proxy}/{tenant}/oauth2/v2.0/token`); its URL host becomes the server
//! name, so the SNI, `Host` and `:authority` carry it (as the AKS docs' `curl --resolve` example
//! sends it), and the connection goes to the proxy host's addresses. Answers other than success
//! come back as a [`ProxyError::Answer`] with their status and cause, parsed here because the
//! SDK cannot read real Entra error bodies (DEPENDENCIES.md).
//!
//! This is configured per process from flags, never from environment variables, and holds no
//! token: each identity's credential (and its token cache) stays per identity in `auth`.
//!
//! Files: `settings` (the flags), `error` ([`ProxyError`], [`ProxyAnswer`]), [`sni`], [`trust`].
//! Imports [`crate::http`] (the client settings and the body cap).

mod error;
mod settings;
pub mod sni;
pub mod trust;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use azure_core::error::ErrorKind;
use azure_core::http::{AsyncRawResponse, HttpClient, Request, Url};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use error::error_chain;
use trust::{Roots, Trust};

pub use error::{ProxyAnswer, ProxyError, proxy_error};
pub use settings::{
    DEFAULT_CA_FILE, DEFAULT_URL, TokenProxySettings, parse_server_name, parse_url,
};

/// A failed server-name detection is tried again by a Mount that needs it after this long.
const REDETECT_AFTER: Duration = Duration::from_secs(60);
/// Bytes of an error answer kept for its message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// What is known about the server name.
#[derive(Debug, Clone)]
enum ServerNameState {
    Known(String),
    Failed { reason: String, at: Instant },
}

/// The client for the current roots and server name.
struct Connection {
    roots: Arc<Roots>,
    server_name: String,
    client: Arc<dyn HttpClient>,
}

/// The identity-binding transport. One per process; see the module docs.
pub struct TokenProxy {
    settings: TokenProxySettings,
    trust: Trust,
    /// Locked by the start-up detection until it ends, so early Mounts wait for it.
    server_name: Arc<tokio::sync::Mutex<Option<ServerNameState>>>,
    connection: Mutex<Option<Connection>>,
}

impl fmt::Debug for TokenProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProxy")
            .field("url", &self.settings.url.as_str())
            .field("ca_file", &self.settings.ca_file)
            .finish_non_exhaustive()
    }
}

impl TokenProxy {
    /// The transport for `settings`. Without `--sni-name`, starts computing the server name in
    /// the background (logging the outcome once); nothing here fails, and clusters without
    /// identity binding only see that one log line. Must be called inside a Tokio runtime.
    pub fn start(settings: TokenProxySettings) -> Arc<Self> {
        let known = settings.server_name.clone().map(ServerNameState::Known);
        let proxy = Arc::new(TokenProxy {
            trust: Trust::new(settings.ca_file.clone()),
            settings,
            server_name: Arc::new(tokio::sync::Mutex::new(known.clone())),
            connection: Mutex::new(None),
        });
        if known.is_none()
            && let Ok(mut guard) = proxy.server_name.clone().try_lock_owned()
        {
            let detector = proxy.clone();
            tokio::spawn(async move {
                let state = detector.detect().await;
                match &state {
                    ServerNameState::Known(name) => tracing::info!(
                        server_name = %name,
                        "identity binding: token proxy server name computed from the API server's certificate"
                    ),
                    ServerNameState::Failed { reason, .. } => tracing::info!(
                        %reason,
                        "identity binding is unavailable until --sni-name is set: the token proxy's \
                         server name could not be computed; only SecretProviderClasses with \
                         useAzureTokenProxy are affected"
                    ),
                }
                *guard = Some(state);
            });
        }
        proxy
    }

    async fn detect(&self) -> ServerNameState {
        let result = match self.trust.current().await {
            Ok(roots) => {
                sni::detect(
                    &self.settings.host(),
                    self.settings.detect_port,
                    &roots.certificates,
                )
                .await
            }
            Err(problem) => Err(format!(
                "the cluster CA file {} is unusable: {problem}",
                self.trust.path().display()
            )),
        };
        match result {
            Ok(name) => ServerNameState::Known(name),
            Err(reason) => ServerNameState::Failed {
                reason,
                at: Instant::now(),
            },
        }
    }

    /// The server name, waiting for the start-up detection; a failure older than a minute is
    /// retried once by whoever asks (single flight).
    pub async fn server_name(&self) -> Result<String, ProxyError> {
        let mut state = self.server_name.lock().await;
        match &*state {
            Some(ServerNameState::Known(name)) => return Ok(name.clone()),
            Some(ServerNameState::Failed { reason, at }) if at.elapsed() < REDETECT_AFTER => {
                return Err(ProxyError::NoServerName {
                    reason: reason.clone(),
                });
            }
            _ => {}
        }
        let fresh = self.detect().await;
        if let ServerNameState::Failed { reason, .. } = &fresh {
            tracing::debug!(%reason, "identity binding: server name detection failed again");
        }
        *state = Some(fresh.clone());
        match fresh {
            ServerNameState::Known(name) => Ok(name),
            ServerNameState::Failed { reason, .. } => Err(ProxyError::NoServerName { reason }),
        }
    }

    /// The client for the current CA file content and `server_name`, rebuilt when either changed.
    async fn client(&self, server_name: &str) -> Result<Arc<dyn HttpClient>, ProxyError> {
        let roots = self
            .trust
            .current()
            .await
            .map_err(|reason| ProxyError::Trust {
                path: self.trust.path().display().to_string(),
                reason,
            })?;
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = connection.as_ref()
            && c.server_name == server_name
            && c.roots.same_as(&roots)
        {
            return Ok(c.client.clone());
        }
        let client = self
            .build(&roots)
            .map_err(|cause| ProxyError::Unreachable {
                url: self.settings.url.to_string(),
                server_name: server_name.to_owned(),
                cause,
            })?;
        *connection = Some(Connection {
            roots,
            server_name: server_name.to_owned(),
            client: client.clone(),
        });
        Ok(client)
    }

    fn build(&self, roots: &Roots) -> Result<Arc<dyn HttpClient>, String> {
        let certificates = roots
            .certificates
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("a cluster CA certificate is unusable: {e}"))?;
        let client = crate::http::base_builder()
            .tls_certs_only(certificates)
            .https_only(true)
            // An in-cluster address: an egress proxy from HTTPS_PROXY cannot route to it.
            .no_proxy()
            .dns_resolver(Arc::new(ToProxyHost {
                host: self.settings.host(),
                port: self.settings.port(),
            }))
            .build()
            .map_err(|e| format!("cannot build the HTTPS client: {e}"))?;
        Ok(Arc::new(crate::http::CappedClient::new(
            Arc::new(client),
            crate::http::MAX_BODY_BYTES,
        )))
    }

    /// `{scheme}://{server name}:{proxy port}{proxy path}{request path}?{request query}`.
    fn rewrite(&self, original: &Url, server_name: &str) -> Result<Url, ProxyError> {
        let proxy = &self.settings.url;
        let path = format!(
            "{}/{}",
            proxy.path().trim_end_matches('/'),
            original.path().trim_start_matches('/')
        );
        let mut url = proxy.clone();
        let fail = |_| ProxyError::NoServerName {
            reason: format!("{server_name:?} is not a host name"),
        };
        url.set_host(Some(server_name)).map_err(fail)?;
        url.set_path(&path);
        url.set_query(original.query());
        Ok(url)
    }

    async fn send(&self, request: &Request) -> Result<AsyncRawResponse, ProxyError> {
        let server_name = self.server_name().await?;
        let client = self.client(&server_name).await?;
        let mut forwarded = request.clone();
        *forwarded.url_mut() = self.rewrite(request.url(), &server_name)?;
        let unreachable = |cause: String| ProxyError::Unreachable {
            url: self.settings.url.to_string(),
            server_name: server_name.clone(),
            cause,
        };
        let response = client
            .execute_request(&forwarded)
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = u16::from(response.status());
        let body = match response.try_into_raw_response().await {
            Ok(raw) => raw.body().to_vec(),
            Err(_) => Vec::new(),
        };
        let body = &body[..body.len().min(MAX_ERROR_BODY)];
        Err(ProxyError::Answer(ProxyAnswer::parse(status, body)))
    }
}

#[async_trait]
impl HttpClient for TokenProxy {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        self.send(request).await.map_err(|e| {
            let kind = match &e {
                ProxyError::Answer(a) => ErrorKind::HttpResponse {
                    status: a.status.into(),
                    error_code: (!a.codes.is_empty()).then(|| {
                        a.codes
                            .iter()
                            .map(i64::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    }),
                    raw_response: None,
                },
                ProxyError::Unreachable { .. } => ErrorKind::Io,
                ProxyError::NoServerName { .. } | ProxyError::Trust { .. } => ErrorKind::Credential,
            };
            let message = e.to_string();
            azure_core::Error::with_error(kind, e, message)
        })
    }
}

/// Resolves every name to the proxy host's addresses: the client only ever asks for the server
/// name, which is not in DNS, and must connect where the proxy listens.
#[derive(Debug)]
struct ToProxyHost {
    host: String,
    port: u16,
}

impl Resolve for ToProxyHost {
    fn resolve(&self, _name: Name) -> Resolving {
        let target = (self.host.clone(), self.port);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target).await?.collect();
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_keep_path_and_query_under_the_server_name() {
        let mut settings = TokenProxySettings::defaults();
        settings.url = parse_url("https://proxy.example.com:8443/base/").unwrap();
        settings.server_name = Some("a1.ests.aks".into());
        let proxy = TokenProxy::start(settings);
        let original =
            Url::parse("https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token?x=1").unwrap();
        assert_eq!(
            proxy.rewrite(&original, "a1.ests.aks").unwrap().as_str(),
            "https://a1.ests.aks:8443/base/tenant-1/oauth2/v2.0/token?x=1"
        );
        let bare = TokenProxy::start(TokenProxySettings {
            server_name: Some("a1.ests.aks".into()),
            ..TokenProxySettings::defaults()
        });
        assert_eq!(
            bare.rewrite(
                &Url::parse("https://login.microsoftonline.com/t/oauth2/v2.0/token").unwrap(),
                "a1.ests.aks"
            )
            .unwrap()
            .as_str(),
            "https://a1.ests.aks/t/oauth2/v2.0/token"
        );
        assert_eq!(bare.server_name().await.unwrap(), "a1.ests.aks");
    }
}
