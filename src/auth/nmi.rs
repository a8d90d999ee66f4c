//! Deprecated AAD pod identity: the node's NMI daemon hands out a token for the pod named in
//! the `podns` / `podname` headers. Kept for SecretProviderClasses that still set
//! `usePodIdentity: "true"`.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{HttpClient, Method, Request, StatusCode, Url};
use azure_core::time::{Duration, OffsetDateTime};
use serde::Deserialize;

use super::expiry::Expiry;

/// Where NMI listens on every node (hostNetwork).
pub const NMI_ENDPOINT: &str = "http://localhost:2579/host/token/";

/// A credential that asks NMI for the pod's token.
#[derive(Debug)]
pub struct NmiCredential {
    http: Arc<dyn HttpClient>,
    namespace: String,
    pod: String,
}

impl NmiCredential {
    /// A credential for pod `namespace/pod`.
    pub fn new(http: Arc<dyn HttpClient>, namespace: &str, pod: &str) -> Self {
        NmiCredential {
            http,
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
        }
    }
}

#[derive(Deserialize)]
struct NmiResponse {
    token: NmiToken,
}

#[derive(Deserialize)]
struct NmiToken {
    access_token: String,
    #[serde(default)]
    expires_on: Option<Expiry>,
    #[serde(default)]
    expires_in: Option<Expiry>,
}

#[async_trait]
impl TokenCredential for NmiCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let mut url = Url::parse(NMI_ENDPOINT)?;
        url.query_pairs_mut().append_pair("resource", resource);
        let mut request = Request::new(url, Method::Get);
        request.insert_header("podns", self.namespace.clone());
        request.insert_header("podname", self.pod.clone());
        let response = self
            .http
            .execute_request(&request)
            .await?
            .try_into_raw_response()
            .await?;
        let status = response.status();
        if status != StatusCode::Ok {
            return Err(azure_core::Error::with_message(
                ErrorKind::HttpResponse {
                    status,
                    error_code: None,
                    raw_response: None,
                },
                format!("NMI answered HTTP {status}"),
            ));
        }
        let parsed: NmiResponse = serde_json::from_slice(response.body()).map_err(|_| {
            azure_core::Error::with_message(
                ErrorKind::DataConversion,
                "NMI answered with a body that is not a token response",
            )
        })?;
        let expires_on = parsed
            .token
            .expires_on
            .and_then(|e| e.as_i64())
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .or_else(|| {
                // Whatever answers on the port decides this number: clamp it, never overflow.
                let secs = parsed
                    .token
                    .expires_in
                    .and_then(|e| e.as_i64())?
                    .clamp(0, 86_400);
                OffsetDateTime::now_utc().checked_add(Duration::seconds(secs))
            })
            .unwrap_or_else(|| OffsetDateTime::now_utc() + Duration::minutes(5));
        Ok(AccessToken::new(
            Secret::new(parsed.token.access_token),
            expires_on,
        ))
    }
}
