//! OAuth token endpoints (Entra ID, AD FS, and the identity endpoints that answer in their
//! shape: IMDS, NMI) as they really answer, read before `azure_identity` parses them.
//!
//! `azure_identity` 1.0 reads an Entra error with `error_description` borrowed as `&str`, which
//! fails on the `\r\n` every real Entra description contains, and it cannot read a plain-text
//! body (Entra's 429 `Too Many Requests`): both become a "malformed response" and lose the
//! status. [`TokenEndpointClient`] therefore turns every non-2xx answer of a token endpoint into
//! an `azure_core::Error` of kind `HttpResponse` that carries a [`TokenFailure`]: the status, the
//! OAuth `error`, `error_codes`, the first line of `error_description` (or of a text body) and
//! the `Retry-After` wait. The credential wraps it; `auth::failure` classifies it.
//!
//! It also sends AD FS requests where AD FS serves them: the SDK posts every client-credentials
//! request to `{authority}/{tenant}/oauth2/v2.0/token` with a v2 `scope`; for Azure Stack Hub's
//! AD FS (`tenantID: adfs`, authority `https://adfs.…/adfs/`) that is
//! `/adfs/oauth2/v2.0/token`, while AD FS serves the OAuth 1 form at `/adfs/oauth2/token` with a
//! `resource`. See `docs/upstream.md`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use azure_core::error::ErrorKind;
use azure_core::http::headers::Headers;
use azure_core::http::request::Body;
use azure_core::http::{AsyncRawResponse, HttpClient, Method, RawResponse, Request, StatusCode};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::retry_after::retry_after;

/// Longest text quoted from an answer.
const MAX_QUOTED_CHARS: usize = 400;

/// What a token endpoint said when it refused: everything a classifier needs, nothing secret
/// (no request data is kept, and Entra never echoes an assertion or a client secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFailure {
    /// The HTTP status.
    pub status: u16,
    /// The OAuth `error` field (`invalid_client`, `temporarily_unavailable`, …).
    pub error: Option<String>,
    /// Entra's `error_codes`, plus every `AADSTS<n>` the description names (exact numbers).
    pub codes: Vec<u64>,
    /// The first line of `error_description` (Entra puts `Trace ID:` … on the next lines).
    pub description: Option<String>,
    /// What the body was when it was not an OAuth error document.
    pub body: BodyKind,
    /// The wait the answer asked for (`Retry-After`, seconds or HTTP date).
    pub retry_after: Option<Duration>,
}

/// The body of a refusal, as far as it matters for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    /// An OAuth error document (`error` / `error_description`).
    OAuth,
    /// Any other JSON.
    OtherJson,
    /// Plain text (Entra's `Too Many Requests`, NMI's `http.Error` texts): its first line.
    Text(String),
    /// An HTML page (a proxy, a load balancer or a wrong URL).
    Html,
    /// Nothing.
    Empty,
}

impl TokenFailure {
    /// Reads a refusal's status, headers and body.
    pub fn from_answer(status: u16, headers: &Headers, body: &[u8]) -> Self {
        Self::parse(status, retry_after(headers, SystemTime::now()), body)
    }

    /// Reads a refusal's status and body, with the wait its headers asked for.
    pub fn parse(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct OAuthError {
            error: Option<String>,
            #[serde(default)]
            error_description: Option<String>,
            #[serde(default)]
            error_codes: Vec<u64>,
        }
        let trimmed = body.trim_ascii();
        let mut failure = TokenFailure {
            status,
            error: None,
            codes: Vec::new(),
            description: None,
            body: BodyKind::Empty,
            retry_after,
        };
        if trimmed.is_empty() {
            return failure;
        }
        if trimmed.starts_with(b"{") {
            match serde_json::from_slice::<OAuthError>(trimmed) {
                Ok(e) if e.error.is_some() || e.error_description.is_some() => {
                    failure.error = e.error.as_deref().map(quotable);
                    failure.description = e.error_description.as_deref().map(first_line);
                    failure.codes = e.error_codes;
                    if let Some(d) = &e.error_description {
                        for code in aadsts_codes(d) {
                            if !failure.codes.contains(&code) {
                                failure.codes.push(code);
                            }
                        }
                    }
                    failure.body = BodyKind::OAuth;
                }
                _ => failure.body = BodyKind::OtherJson,
            }
            return failure;
        }
        if trimmed.starts_with(b"<") {
            failure.body = BodyKind::Html;
            return failure;
        }
        failure.body = BodyKind::Text(first_line(&String::from_utf8_lossy(trimmed)));
        failure
    }

    /// Whether Entra named this AADSTS code (compared as a number, never as a substring).
    pub fn has_code(&self, code: u64) -> bool {
        self.codes.contains(&code)
    }

    /// What the endpoint said, for a message: `HTTP 401 invalid_client: AADSTS70021: …`.
    pub fn summary(&self) -> String {
        let mut out = format!("HTTP {}", self.status);
        if let Some(error) = &self.error {
            out.push(' ');
            out.push_str(error);
        }
        match (&self.description, &self.body) {
            (Some(d), _) => {
                out.push_str(": ");
                out.push_str(d);
            }
            (None, BodyKind::Text(t)) => {
                out.push_str(": ");
                out.push_str(&format!("{t:?}"));
            }
            (None, BodyKind::Html) => out.push_str(" with an HTML page"),
            (None, BodyKind::OtherJson) => {
                out.push_str(" with a JSON body that is not an OAuth error")
            }
            _ => {}
        }
        out
    }
}

impl fmt::Display for TokenFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

impl std::error::Error for TokenFailure {}

/// The [`TokenFailure`] an error carries, if any (walking its causes).
pub fn token_failure<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a TokenFailure> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(found) = e.downcast_ref::<TokenFailure>() {
            return Some(found);
        }
        source = e.source();
    }
    None
}

/// The error a client returns for a refusal: kind `HttpResponse` with the raw answer kept, and
/// the [`TokenFailure`] as its cause.
pub fn failure_error(status: StatusCode, headers: Headers, body: Vec<u8>) -> azure_core::Error {
    let failure = TokenFailure::from_answer(u16::from(status), &headers, &body);
    let message = failure.summary();
    let error_code = (!failure.codes.is_empty()).then(|| {
        failure
            .codes
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    });
    azure_core::Error::with_error(
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response: Some(Box::new(RawResponse::from_bytes(status, headers, body))),
        },
        failure,
        message,
    )
}

/// Every `AADSTS<digits>` in `text`, as numbers (`AADSTS700213` is 700213, never 70021).
pub fn aadsts_codes(text: &str) -> Vec<u64> {
    let mut codes = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("AADSTS") {
        rest = &rest[at + "AADSTS".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(code) = digits.parse::<u64>()
            && !codes.contains(&code)
        {
            codes.push(code);
        }
    }
    codes
}

/// The first line of `text`, control characters dropped, bounded.
fn first_line(text: &str) -> String {
    quotable(text.split(['\r', '\n']).next().unwrap_or_default().trim())
}

fn quotable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_QUOTED_CHARS)
        .collect()
}

/// An [`HttpClient`] that reads every token-endpoint answer before the SDK does (see the
/// module documentation). Other requests pass through untouched.
#[derive(Debug)]
pub struct TokenEndpointClient {
    inner: Arc<dyn HttpClient>,
}

impl TokenEndpointClient {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn HttpClient>) -> Self {
        TokenEndpointClient { inner }
    }
}

/// Whether `request` is an OAuth token request (a POST to `…/oauth2[/v2.0]/token`).
pub fn is_token_request(request: &Request) -> bool {
    let path = request.url().path().trim_end_matches('/');
    request.method() == Method::Post
        && (path.ends_with("/oauth2/v2.0/token") || path.ends_with("/oauth2/token"))
}

#[async_trait]
impl HttpClient for TokenEndpointClient {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        if !is_token_request(request) {
            return self.inner.execute_request(request).await;
        }
        let adfs = adfs_request(request);
        let response = self
            .inner
            .execute_request(adfs.as_ref().unwrap_or(request))
            .await?;
        let (status, headers, body) = response.deconstruct();
        let bytes = body.collect().await?;
        if status.is_success() {
            return Ok(AsyncRawResponse::from_bytes(
                status,
                headers,
                numeric_expiry(bytes.to_vec()),
            ));
        }
        Err(failure_error(status, headers, bytes.to_vec()))
    }
}

/// The path `azure_identity` builds for tenant `adfs` under an AD FS authority.
const ADFS_V2_PATH: &str = "/adfs/oauth2/v2.0/token";

/// The AD FS form of an SDK token request aimed at `/adfs/oauth2/v2.0/token`: the OAuth 1
/// endpoint `/adfs/oauth2/token`, with `resource` (the scope without `/.default`) in place of
/// `scope`. `None` for every other request.
pub fn adfs_request(request: &Request) -> Option<Request> {
    if !request
        .url()
        .path()
        .trim_end_matches('/')
        .eq_ignore_ascii_case(ADFS_V2_PATH)
    {
        return None;
    }
    let Body::Bytes(bytes) = request.body() else {
        return None;
    };
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in url::form_urlencoded::parse(bytes) {
        let value = Zeroizing::new(value.into_owned());
        if key == "scope" {
            let resource = value
                .split(' ')
                .next()
                .unwrap_or_default()
                .trim_end_matches("/.default");
            form.append_pair("resource", resource);
        } else {
            form.append_pair(&key, &value);
        }
    }
    let body = Zeroizing::new(form.finish());
    let mut moved = request.clone();
    moved.url_mut().set_path("/adfs/oauth2/token");
    moved.set_body(azure_core::Bytes::copy_from_slice(body.as_bytes()));
    Some(moved)
}

/// A success body whose `expires_in` is a JSON string (as IMDS and NMI write theirs) with the
/// number `azure_identity` requires; any other body unchanged.
fn numeric_expiry(body: Vec<u8>) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    let mut changed = false;
    for field in ["expires_in", "ext_expires_in"] {
        let seconds = value
            .get(field)
            .and_then(serde_json::Value::as_str)
            .and_then(|s| s.trim().parse::<i64>().ok());
        if let Some(seconds) = seconds {
            value[field] = serde_json::Value::from(seconds);
            changed = true;
        }
    }
    if !changed {
        return body;
    }
    serde_json::to_vec(&value).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::Url;

    #[test]
    fn reads_real_entra_refusals() {
        // external-secrets#2783 (the body as the issue shows it).
        let body = br#"{"error":"invalid_client","error_description":"AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: 'https://x/'.\r\nTrace ID: 72348f3f\r\nCorrelation ID: 21cae4b9\r\nTimestamp: 2023-10-13 19:07:11Z","error_codes":[70021]}"#;
        let f = TokenFailure::from_answer(401, &Headers::new(), body);
        assert_eq!(f.error.as_deref(), Some("invalid_client"));
        assert!(f.has_code(70021) && !f.has_code(7002));
        assert_eq!(
            f.description.as_deref(),
            Some(
                "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: 'https://x/'."
            )
        );
        let mut headers = Headers::new();
        headers.insert(azure_core::http::headers::RETRY_AFTER, "60");
        let f = TokenFailure::from_answer(429, &headers, b"Too Many Requests");
        assert_eq!(f.body, BodyKind::Text("Too Many Requests".into()));
        assert_eq!(f.retry_after, Some(Duration::from_secs(60)));
        assert_eq!(f.summary(), "HTTP 429: \"Too Many Requests\"");
        let f = TokenFailure::from_answer(404, &Headers::new(), b"<html>nope</html>");
        assert_eq!(f.body, BodyKind::Html);
    }

    #[test]
    fn codes_are_numbers_not_substrings() {
        assert_eq!(
            aadsts_codes("AADSTS700213: No matching … (see AADSTS7002138)"),
            vec![700213, 7002138]
        );
        assert!(aadsts_codes("no code").is_empty());
        assert!(aadsts_codes("AADSTS").is_empty());
    }

    #[test]
    fn adfs_requests_go_to_the_oauth1_endpoint_with_a_resource() {
        let mut request = Request::new(
            Url::parse("https://adfs.local.azurestack.external/adfs/oauth2/v2.0/token").unwrap(),
            Method::Post,
        );
        request.set_body(
            "client_id=c&client_secret=s%3D&grant_type=client_credentials&scope=https%3A%2F%2Fvault.local.azurestack.external%2F.default",
        );
        let moved = adfs_request(&request).unwrap();
        assert_eq!(moved.url().path(), "/adfs/oauth2/token");
        let Body::Bytes(body) = moved.body() else {
            panic!("body")
        };
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        assert!(form.contains(&(
            "resource".into(),
            "https://vault.local.azurestack.external".into()
        )));
        assert!(form.contains(&("client_secret".into(), "s=".into())));
        assert!(!form.iter().any(|(k, _)| k == "scope"));
        let entra = Request::new(
            Url::parse("https://login.microsoftonline.com/t/oauth2/v2.0/token").unwrap(),
            Method::Post,
        );
        assert!(adfs_request(&entra).is_none());
        assert!(is_token_request(&entra));
    }

    #[test]
    fn string_expiry_becomes_a_number() {
        let out = numeric_expiry(br#"{"access_token":"a","expires_in":"3599"}"#.to_vec());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["expires_in"], 3599);
        assert_eq!(numeric_expiry(b"not json".to_vec()), b"not json");
    }
}
