//! Deprecated AAD pod identity: the node's NMI daemon hands out a token for the pod named in
//! the `podns` / `podname` headers. Kept for SecretProviderClasses that still set
//! `usePodIdentity: "true"`.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{HttpClient, Method, Request, StatusCode, Url};
use serde::Deserialize;

use super::expiry::{Expiry, token_expiry};
use crate::http::token_endpoint::failure_error;

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
        let response = self.http.execute_request(&request).await?;
        let (status, headers, body) = response.deconstruct();
        let body = body.collect().await?;
        if status != StatusCode::Ok {
            // NMI answers with `http.Error`: the cause in plain text (kept for the message).
            return Err(failure_error(status, headers, body.to_vec()));
        }
        let parsed: NmiResponse = serde_json::from_slice(&body).map_err(|_| {
            azure_core::Error::with_message(
                ErrorKind::DataConversion,
                "NMI answered with a body that is not a token response",
            )
        })?;
        let expires_on = token_expiry(
            parsed.token.expires_on.as_ref(),
            parsed.token.expires_in.as_ref(),
        );
        Ok(AccessToken::new(
            Secret::new(parsed.token.access_token),
            expires_on,
        ))
    }
}
