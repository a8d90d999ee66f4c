//! The corpus of recorded real answers (`tests/fixtures/recorded/`, sources in its
//! `INDEX.md`), compiled in, and the one way the fakes answer: a recorded status, headers and
//! body, with at most the test's own identifiers substituted for the recorded ones.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Response;

use super::server::Body;

/// Every recorded answer: `(name, file bytes)`, name = path under `tests/fixtures/recorded/`
/// without `.http`.
pub const CORPUS: &[(&str, &[u8])] = &[
    (
        "azurestack/adfs-invalid-client-400",
        include_bytes!("../../../tests/fixtures/recorded/azurestack/adfs-invalid-client-400.http"),
    ),
    (
        "azurestack/adfs-token-success.composed",
        include_bytes!(
            "../../../tests/fixtures/recorded/azurestack/adfs-token-success.composed.http"
        ),
    ),
    (
        "entra/aadsts50027-malformed-jwt-400",
        include_bytes!("../../../tests/fixtures/recorded/entra/aadsts50027-malformed-jwt-400.http"),
    ),
    (
        "entra/aadsts700016-unknown-client-400",
        include_bytes!(
            "../../../tests/fixtures/recorded/entra/aadsts700016-unknown-client-400.http"
        ),
    ),
    (
        "entra/aadsts7000215-invalid-secret-401",
        include_bytes!(
            "../../../tests/fixtures/recorded/entra/aadsts7000215-invalid-secret-401.http"
        ),
    ),
    (
        "entra/aadsts7000222-expired-secret-401",
        include_bytes!(
            "../../../tests/fixtures/recorded/entra/aadsts7000222-expired-secret-401.http"
        ),
    ),
    (
        "entra/aadsts700024-assertion-expired-401",
        include_bytes!(
            "../../../tests/fixtures/recorded/entra/aadsts700024-assertion-expired-401.http"
        ),
    ),
    (
        "entra/aadsts700027-invalid-signature-401",
        include_bytes!(
            "../../../tests/fixtures/recorded/entra/aadsts700027-invalid-signature-401.http"
        ),
    ),
    (
        "entra/aadsts70021-no-federated-credential-401",
        include_bytes!(
            "../../../tests/fixtures/recorded/entra/aadsts70021-no-federated-credential-401.http"
        ),
    ),
    (
        "entra/aadsts700211-issuer-mismatch-401",
        include_bytes!(
            "../../../tests/fixtures/recorded/entra/aadsts700211-issuer-mismatch-401.http"
        ),
    ),
    (
        "entra/aadsts700213-subject-mismatch-401",
        include_bytes!(
            "../../../tests/fixtures/recorded/entra/aadsts700213-subject-mismatch-401.http"
        ),
    ),
    (
        "entra/aadsts7002138-subject-case-401",
        include_bytes!(
            "../../../tests/fixtures/recorded/entra/aadsts7002138-subject-case-401.http"
        ),
    ),
    (
        "entra/aadsts90002-tenant-not-found-400",
        include_bytes!(
            "../../../tests/fixtures/recorded/entra/aadsts90002-tenant-not-found-400.http"
        ),
    ),
    (
        "entra/aadsts900023-invalid-tenant-400",
        include_bytes!(
            "../../../tests/fixtures/recorded/entra/aadsts900023-invalid-tenant-400.http"
        ),
    ),
    (
        "entra/temporarily-unavailable-503",
        include_bytes!("../../../tests/fixtures/recorded/entra/temporarily-unavailable-503.http"),
    ),
    (
        "entra/throttled-429",
        include_bytes!("../../../tests/fixtures/recorded/entra/throttled-429.http"),
    ),
    (
        "entra/token-v2-success",
        include_bytes!("../../../tests/fixtures/recorded/entra/token-v2-success.http"),
    ),
    (
        "imds/identity-not-found-400",
        include_bytes!("../../../tests/fixtures/recorded/imds/identity-not-found-400.http"),
    ),
    (
        "imds/invalid-resource-400",
        include_bytes!("../../../tests/fixtures/recorded/imds/invalid-resource-400.http"),
    ),
    (
        "imds/invalid-resource-500011-400",
        include_bytes!("../../../tests/fixtures/recorded/imds/invalid-resource-500011-400.http"),
    ),
    (
        "imds/missing-metadata-header-400",
        include_bytes!("../../../tests/fixtures/recorded/imds/missing-metadata-header-400.http"),
    ),
    (
        "imds/throttled-429",
        include_bytes!("../../../tests/fixtures/recorded/imds/throttled-429.http"),
    ),
    (
        "imds/token-success",
        include_bytes!("../../../tests/fixtures/recorded/imds/token-success.http"),
    ),
    (
        "imds/unknown-500",
        include_bytes!("../../../tests/fixtures/recorded/imds/unknown-500.http"),
    ),
    (
        "imds/updating-404",
        include_bytes!("../../../tests/fixtures/recorded/imds/updating-404.http"),
    ),
    (
        "imds/updating-410",
        include_bytes!("../../../tests/fixtures/recorded/imds/updating-410.http"),
    ),
    (
        "keyvault/akv10032-invalid-issuer-401",
        include_bytes!(
            "../../../tests/fixtures/recorded/keyvault/akv10032-invalid-issuer-401.http"
        ),
    ),
    (
        "keyvault/certificate-policy-unknown-action.derived",
        include_bytes!(
            "../../../tests/fixtures/recorded/keyvault/certificate-policy-unknown-action.derived.http"
        ),
    ),
    (
        "keyvault/certificate-with-policy-7.4",
        include_bytes!(
            "../../../tests/fixtures/recorded/keyvault/certificate-with-policy-7.4.http"
        ),
    ),
    (
        "keyvault/challenge-401",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/challenge-401.http"),
    ),
    (
        "keyvault/forbidden-access-policy-403",
        include_bytes!(
            "../../../tests/fixtures/recorded/keyvault/forbidden-access-policy-403.http"
        ),
    ),
    (
        "keyvault/forbidden-firewall-403",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/forbidden-firewall-403.http"),
    ),
    (
        "keyvault/forbidden-firewall-nsp-403",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/forbidden-firewall-nsp-403.http"),
    ),
    (
        "keyvault/forbidden-private-link-403",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/forbidden-private-link-403.http"),
    ),
    (
        "keyvault/forbidden-rbac-403",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/forbidden-rbac-403.http"),
    ),
    (
        "keyvault/internal-error-500",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/internal-error-500.http"),
    ),
    (
        "keyvault/key-rsa-7.4",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/key-rsa-7.4.http"),
    ),
    (
        "keyvault/secret-7.4",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/secret-7.4.http"),
    ),
    (
        "keyvault/secret-disabled-403",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/secret-disabled-403.http"),
    ),
    (
        "keyvault/secret-not-found-404",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/secret-not-found-404.http"),
    ),
    (
        "keyvault/secret-versions-page-7.4",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/secret-versions-page-7.4.http"),
    ),
    (
        "keyvault/throttled-429",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/throttled-429.http"),
    ),
    (
        "keyvault/unavailable-503",
        include_bytes!("../../../tests/fixtures/recorded/keyvault/unavailable-503.http"),
    ),
    (
        "nmi/identity-not-assigned-404",
        include_bytes!("../../../tests/fixtures/recorded/nmi/identity-not-assigned-404.http"),
    ),
    (
        "nmi/no-azure-identity-403",
        include_bytes!("../../../tests/fixtures/recorded/nmi/no-azure-identity-403.http"),
    ),
    (
        "nmi/token-success.composed",
        include_bytes!("../../../tests/fixtures/recorded/nmi/token-success.composed.http"),
    ),
];

/// One recorded answer, as the service sent it (see the corpus index for each source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Its corpus name (e.g. `entra/throttled-429`).
    pub name: &'static str,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The corpus entry `name`. Panics on an unknown name (a test bug).
    pub fn get(name: &str) -> Recorded {
        let (name, bytes) = CORPUS
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no recorded answer {name:?} in tests/fixtures/recorded"));
        Recorded::parse(name, bytes)
    }

    /// Parses an `.http` file: a status line, header lines, a blank line, the body bytes as sent.
    pub fn parse(name: &'static str, bytes: &[u8]) -> Recorded {
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap_or_else(|| panic!("{name}: no blank line after the headers"));
        let head = std::str::from_utf8(&bytes[..split])
            .unwrap_or_else(|e| panic!("{name}: head is not UTF-8: {e}"));
        let body = bytes[split + 2..].to_vec();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{name}: bad status line"));
        let headers = lines
            .map(|l| {
                let (k, v) = l
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("{name}: bad header line {l:?}"));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        Recorded {
            name,
            status,
            headers,
            body,
        }
    }

    /// The same answer with the recorded text `from` replaced by `to` everywhere (body and
    /// headers): the test's identifiers in place of the recorded ones. Panics when `from` is
    /// not in the answer, so a substitution cannot silently stop applying.
    pub fn replace(mut self, from: &str, to: &str) -> Self {
        let mut found = false;
        for (_, v) in &mut self.headers {
            if v.contains(from) {
                *v = v.replace(from, to);
                found = true;
            }
        }
        let body = String::from_utf8_lossy(&self.body).into_owned();
        if body.contains(from) {
            self.body = body.replace(from, to).into_bytes();
            found = true;
        }
        assert!(
            found,
            "{}: {from:?} is not in the recorded answer",
            self.name
        );
        self
    }

    /// The same answer with another status (a fault's knob; the recorded body is kept).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The same answer with header `name` set to `value` (e.g. a test's `Retry-After`).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The body as JSON (for answers whose values the fake fills in).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON: {e}", self.name))
    }

    /// The same answer with `value` as its (JSON) body, re-serialized compactly.
    pub fn with_json(mut self, value: &serde_json::Value) -> Self {
        self.body = value.to_string().into_bytes();
        self
    }

    /// The HTTP response the fake sends.
    pub(crate) fn reply(&self) -> Response<Body> {
        let mut builder = Response::builder().status(self.status);
        for (k, v) in &self.headers {
            if k.eq_ignore_ascii_case("content-length")
                || k.eq_ignore_ascii_case("transfer-encoding")
            {
                continue;
            }
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder
            .body(Full::new(Bytes::from(self.body.clone())).boxed())
            .unwrap_or_else(|e| panic!("{}: cannot build the response: {e}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_parses() {
        for (name, bytes) in CORPUS {
            let r = Recorded::parse(name, bytes);
            assert!((100..600).contains(&r.status), "{name}");
        }
    }
}
