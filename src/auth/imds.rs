//! The node's managed identity through IMDS, with our own small client instead of the SDK's
//! `ManagedIdentityCredential`: that one replaces the caller's retry options with its own loop
//! (up to 72 s on 404/410/429/5xx, past any Mount deadline) and turns every IMDS 400 into one
//! fixed text. Here each request is one GET; a refusal keeps IMDS's own status, `error`,
//! description and `Retry-After` ([`crate::http::TokenFailure`]), and the Mount's retry
//! scheduler decides about retries within its deadline. See `docs/upstream.md`.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{HttpClient, Method, Request, StatusCode, Url};
use serde::Deserialize;

use super::expiry::{Expiry, token_expiry};
use crate::http::token_endpoint::failure_error;

/// IMDS's managed-identity token endpoint (every Azure VM, link-local).
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// The API version the Go provider's SDK (azidentity) and the IMDS documentation use.
const API_VERSION: &str = "2018-02-01";

/// A credential that asks IMDS for the node's (system- or user-assigned) identity's token.
#[derive(Debug)]
pub struct ImdsCredential {
    http: Arc<dyn HttpClient>,
    /// Client ID of a user-assigned identity; `None` = system-assigned.
    client_id: Option<String>,
}

impl ImdsCredential {
    /// A credential for the node identity `client_id` (`None` = system-assigned).
    pub fn new(http: Arc<dyn HttpClient>, client_id: Option<String>) -> Self {
        ImdsCredential { http, client_id }
    }
}

#[derive(Deserialize)]
struct ImdsToken {
    access_token: String,
    #[serde(default)]
    expires_on: Option<Expiry>,
    #[serde(default)]
    expires_in: Option<Expiry>,
}

#[async_trait]
impl TokenCredential for ImdsCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let mut url = Url::parse(IMDS_ENDPOINT)?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("api-version", API_VERSION);
            query.append_pair("resource", resource);
            if let Some(id) = &self.client_id {
                query.append_pair("client_id", id);
            }
        }
        let mut request = Request::new(url, Method::Get);
        request.insert_header("metadata", "true");
        let response = self.http.execute_request(&request).await?;
        let (status, headers, body) = response.deconstruct();
        let body = body.collect().await?;
        if status != StatusCode::Ok {
            return Err(failure_error(status, headers, body.to_vec()));
        }
        let token: ImdsToken = serde_json::from_slice(&body).map_err(|_| {
            azure_core::Error::with_message(
                ErrorKind::DataConversion,
                "IMDS answered with a body that is not a token response",
            )
        })?;
        let expires_on = token_expiry(token.expires_on.as_ref(), token.expires_in.as_ref());
        Ok(AccessToken::new(
            Secret::new(token.access_token),
            expires_on,
        ))
    }
}
