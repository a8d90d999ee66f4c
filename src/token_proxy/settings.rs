//! The flags of identity binding's transport, checked: `--token-proxy-url`, `--sni-name`,
//! `--token-proxy-ca-file`, and where the API server is dialed at start.

use std::path::PathBuf;

use azure_core::http::Url;

/// `--token-proxy-url`'s default: the API server's service, where AKS serves the proxy.
pub const DEFAULT_URL: &str = "https://kubernetes.default.svc.cluster.local";
/// `--token-proxy-ca-file`'s default: where Kubernetes projects `kube-root-ca.crt`.
pub const DEFAULT_CA_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// How this process reaches the token proxy (from the flags).
#[derive(Debug, Clone)]
pub struct TokenProxySettings {
    /// The proxy's URL: `https`, a host, no user info, query or fragment.
    pub url: Url,
    /// `--sni-name`; `None` = detect at start.
    pub server_name: Option<String>,
    /// The cluster CA bundle the proxy (and the API server) are verified against.
    pub ca_file: PathBuf,
    /// Where the API server is dialed to read its certificate: the proxy URL's own port when it
    /// names one, else `$KUBERNETES_SERVICE_PORT`, else 443.
    pub detect_port: u16,
}

impl TokenProxySettings {
    /// The settings of a process started with no identity-binding flags.
    pub fn defaults() -> Self {
        TokenProxySettings {
            url: parse_url(DEFAULT_URL).unwrap_or_else(|e| unreachable!("default URL: {e}")),
            server_name: None,
            ca_file: PathBuf::from(DEFAULT_CA_FILE),
            detect_port: 443,
        }
    }

    /// The proxy URL's host without IPv6 brackets (for dialing and DNS).
    pub(super) fn host(&self) -> String {
        match self.url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => String::new(),
        }
    }

    pub(super) fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(443)
    }
}

/// Checks a `--token-proxy-url` value; empty means [`DEFAULT_URL`] (the Go provider's `""`).
pub fn parse_url(text: &str) -> Result<Url, String> {
    let text = text.trim();
    let text = if text.is_empty() { DEFAULT_URL } else { text };
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if url.scheme() != "https" {
        return Err(format!("{text:?} must use https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?} must not contain user information"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not contain a query or fragment"));
    }
    Ok(url)
}

/// Checks a `--sni-name` value: empty (detect) or a DNS name.
pub fn parse_server_name(text: &str) -> Result<String, String> {
    let text = text.trim().trim_end_matches('.').to_ascii_lowercase();
    if text.is_empty() {
        return Ok(text);
    }
    match rustls_pki_types::ServerName::try_from(text.as_str()) {
        Ok(rustls_pki_types::ServerName::DnsName(_)) => Ok(text),
        _ => Err(format!("{text:?} is not a DNS name")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        assert_eq!(
            parse_url("").unwrap().as_str(),
            "https://kubernetes.default.svc.cluster.local/"
        );
        assert_eq!(
            parse_url("https://proxy.example.com/base/").unwrap().path(),
            "/base/"
        );
        for bad in [
            "http://kubernetes.default.svc",
            "https://user:pw@host",
            "https://host/?q=1",
            "https://host/#f",
            "not a url",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_server_name(" A.ests.aks. ").unwrap(), "a.ests.aks");
        assert_eq!(parse_server_name("").unwrap(), "");
        assert!(parse_server_name("10.0.0.1").is_err());
        assert!(parse_server_name("bad name").is_err());
    }
}
