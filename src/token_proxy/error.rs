//! What can go wrong on the way to the token proxy, and what it answered: the errors the
//! transport returns inside `azure_core::Error`, found again by [`proxy_error`].

use serde::Deserialize;

/// Why a token request could not go through the proxy, or what the proxy answered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// No server name: `--sni-name` is unset and detection failed.
    #[error("the AKS token proxy's TLS server name could not be computed at start ({reason})")]
    NoServerName { reason: String },
    /// The cluster CA file gave no roots yet.
    #[error("the cluster CA file {path} is unusable: {reason}")]
    Trust { path: String, reason: String },
    /// The proxy could not be reached (DNS, connection, TLS).
    #[error("cannot reach the AKS token proxy at {url} (TLS server name {server_name}): {cause}")]
    Unreachable {
        url: String,
        server_name: String,
        cause: String,
    },
    /// The proxy answered, but not with a token.
    #[error("the AKS token proxy answered HTTP {}", .0.status)]
    Answer(ProxyAnswer),
}

/// A non-success answer of the token proxy (its own, or Entra's passed through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAnswer {
    pub status: u16,
    /// Entra's `error` (e.g. `invalid_request`), when the body is Entra's JSON.
    pub error: Option<String>,
    /// Entra's `error_codes` (the AADSTS numbers).
    pub codes: Vec<i64>,
    /// Entra's `error_description` up to its first line break, or the first line of any other
    /// body; at most 400 characters. May be empty.
    pub cause: String,
}

impl ProxyAnswer {
    /// Reads an answer's body: Entra's error JSON when it is one, else its first line of text.
    pub fn parse(status: u16, body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct EntraError {
            error: Option<String>,
            error_description: Option<String>,
            #[serde(default)]
            error_codes: Vec<i64>,
        }
        let first_line = |text: &str| -> String {
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or_default()
                .chars()
                .take(400)
                .collect()
        };
        match serde_json::from_slice::<EntraError>(body) {
            Ok(e) => ProxyAnswer {
                status,
                error: e.error,
                codes: e.error_codes,
                cause: first_line(e.error_description.as_deref().unwrap_or_default()),
            },
            Err(_) => ProxyAnswer {
                status,
                error: None,
                codes: Vec::new(),
                cause: first_line(&String::from_utf8_lossy(body)),
            },
        }
    }
}

/// Finds the [`ProxyError`] an error from a proxied token request carries, if any.
pub fn proxy_error(err: &azure_core::Error) -> Option<&ProxyError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(found) = e.downcast_ref::<ProxyError>() {
            return Some(found);
        }
        source = e.source();
    }
    None
}

/// An error's causes on one line (TLS and DNS reasons sit deep in the chain), without the
/// wrappers that only repeat the URL.
pub(super) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let noise = |t: &str| {
        t.starts_with("failed to execute `reqwest` request")
            || t.starts_with("error sending request for url")
    };
    let mut parts: Vec<String> = Vec::new();
    let mut source = Some(err);
    while let Some(e) = source {
        let text = e.to_string();
        if !noise(&text) && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ").chars().take(400).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_keep_their_cause() {
        // Entra's shape as recorded (fidelity.md #3): the description's first line only.
        let entra = br#"{"error":"temporarily_unavailable","error_description":"AADSTS90033: A transient error has occurred. Please try again.\r\nTrace ID: 0000\r\nCorrelation ID: 1111","error_codes":[90033]}"#;
        let a = ProxyAnswer::parse(503, entra);
        assert_eq!(a.error.as_deref(), Some("temporarily_unavailable"));
        assert_eq!(a.codes, [90033]);
        assert_eq!(
            a.cause,
            "AADSTS90033: A transient error has occurred. Please try again."
        );
        // Entra's plain-text 429 (fidelity.md #1).
        let t = ProxyAnswer::parse(429, b"Too Many Requests");
        assert_eq!(
            (t.codes.is_empty(), t.cause.as_str()),
            (true, "Too Many Requests")
        );
        assert_eq!(ProxyAnswer::parse(403, b"").cause, "");
        assert_eq!(ProxyAnswer::parse(403, &[b'x'; 1000]).cause.len(), 400);
    }
}
