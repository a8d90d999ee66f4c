//! What a failed Key Vault (or token) call means: a retry verdict, the wait the service asked
//! for, and the [`KvError`] to report. Key Vault's refusals are read from the raw answer the
//! SDK keeps (its own parse borrows `message` and fails on the `\r\n` real messages contain):
//! `error.code`, `error.innererror.code`, the message, and the `WWW-Authenticate` challenge,
//! so a firewall, a private-link-only vault, a tenant mismatch, RBAC and access policies each
//! get their own fix.

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use azure_core::http::headers::{HeaderName, Headers};

use super::KvError;
use super::retry::{Classified, Verdict, retry_after};
use crate::auth::{AuthError, auth_error};

/// Why Key Vault refused a request, as its answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// 403 `ForbiddenByRbac`: an RBAC vault, no role assignment allows the read.
    Rbac,
    /// 403 `AccessDenied`: an access-policy vault, no policy allows the read.
    AccessPolicy,
    /// 403 `ForbiddenByFirewall`: the vault's network rules refuse the caller's address.
    Firewall { client_address: Option<String> },
    /// 403 `ForbiddenByConnection`: public access is off and the call did not come through an
    /// approved private endpoint.
    PrivateLink,
    /// 401 `AKV10032: Invalid issuer`: the token is from another tenant than the vault's.
    TenantMismatch {
        /// The vault's tenant, from its challenge (`authorization="…/{tenant}"`).
        vault_tenant: Option<String>,
        /// The tenant that issued the token (`found https://sts.windows.net/{tenant}/`).
        token_tenant: Option<String>,
    },
    /// Another 401: the token was not accepted.
    Unauthenticated { detail: Option<String> },
    /// Another 403.
    Other { detail: Option<String> },
}

/// Sorts an SDK error into a retry verdict, the wait the server asked for, and the error to
/// report if retries run out.
pub fn classify(err: &azure_core::Error, version: Option<&str>) -> Classified<KvError> {
    use Classified as C;
    if let Some(refusal) = crate::http::budget::refusal(err) {
        use crate::http::budget::Refusal as R;
        let why = match refusal {
            R::TooLate { .. } => super::Refused::Deadline,
            R::Shed { .. } => super::Refused::Shed,
            R::RetryBudget { .. } => super::Refused::RetryBudget,
        };
        return C::fatal(KvError::Refused {
            why,
            wait: refusal.wait(),
        });
    }
    if let Some(auth) = auth_error(err) {
        let verdict = match auth {
            AuthError::Throttled { .. } => Verdict::Throttled,
            AuthError::Unavailable { .. } => Verdict::Backoff,
            AuthError::Rejected { .. } | AuthError::Setup { .. } | AuthError::NotSent { .. } => {
                Verdict::Fatal
            }
        };
        return C::retry(verdict, auth.retry_after(), KvError::Auth(auth.clone()));
    }
    if crate::http::is_body_too_large(err) {
        return C::fatal(KvError::TooLarge);
    }
    match err.kind() {
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let code = u16::from(*status);
            let answer = raw_response
                .as_deref()
                .map(|r| KvAnswer::read(r.headers(), r.body()))
                .unwrap_or_default();
            match *status {
                StatusCode::TooManyRequests => {
                    C::retry(Verdict::Throttled, retry_after(err), KvError::Throttled)
                }
                StatusCode::NotFound => C::fatal(KvError::NotFound),
                StatusCode::Unauthorized | StatusCode::Forbidden => {
                    if answer
                        .inner
                        .as_deref()
                        .is_some_and(|c| c.ends_with("Disabled"))
                    {
                        let version = version.unwrap_or("current").to_owned();
                        return C::fatal(KvError::Disabled { version });
                    }
                    C::fatal(KvError::Denied {
                        status: code,
                        code: answer.inner.clone().or_else(|| answer.code.clone()),
                        reason: answer.denial(code),
                    })
                }
                _ if code >= 500 || code == 408 => C::retry(
                    Verdict::Backoff,
                    retry_after(err),
                    KvError::Unavailable {
                        detail: format!(
                            "Key Vault answered HTTP {code}{}",
                            answer
                                .code
                                .as_deref()
                                .map(|c| format!(" ({c})"))
                                .unwrap_or_default()
                        ),
                    },
                ),
                _ => C::fatal(KvError::Malformed {
                    detail: format!(
                        "unexpected HTTP {code}{}",
                        answer
                            .code
                            .as_deref()
                            .or(error_code.as_deref())
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default()
                    ),
                }),
            }
        }
        ErrorKind::Connection | ErrorKind::Io => {
            if is_dns_failure(err) && !is_temporary(err) {
                return C::fatal(KvError::DnsFailure);
            }
            C::retry(
                Verdict::Backoff,
                None,
                KvError::Unavailable {
                    detail: format!("cannot reach Key Vault: {}", root_cause(err)),
                },
            )
        }
        ErrorKind::DataConversion => C::fatal(KvError::Malformed {
            detail: "the response is not a Key Vault JSON document".into(),
        }),
        _ => C::fatal(KvError::Unavailable {
            detail: root_cause(err),
        }),
    }
}

/// The parts of a Key Vault error answer that decide the fix.
#[derive(Debug, Default)]
struct KvAnswer {
    /// `error.code` (`Forbidden`, `Unauthorized`, `SecretNotFound`, …).
    code: Option<String>,
    /// `error.innererror.code` (`ForbiddenByRbac`, `SecretDisabled`, …).
    inner: Option<String>,
    /// `error.message`, whole (its lines are `\r\n`-separated).
    message: Option<String>,
    /// The tenant the challenge names.
    challenge_tenant: Option<String>,
}

impl KvAnswer {
    fn read(headers: &Headers, body: &[u8]) -> Self {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let text = |pointer: &str| {
            value
                .pointer(pointer)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        KvAnswer {
            code: text("/error/code"),
            inner: text("/error/innererror/code"),
            message: text("/error/message"),
            challenge_tenant: headers
                .get_optional_str(&HeaderName::from_static("www-authenticate"))
                .and_then(challenge_tenant),
        }
    }

    fn first_line(&self) -> Option<String> {
        self.message.as_deref().map(|m| {
            m.split(['\r', '\n'])
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect()
        })
    }

    fn denial(&self, status: u16) -> Denial {
        let message = self.message.as_deref().unwrap_or_default();
        match self.inner.as_deref() {
            Some("ForbiddenByRbac") => return Denial::Rbac,
            Some("AccessDenied") => return Denial::AccessPolicy,
            Some("ForbiddenByFirewall") => {
                return Denial::Firewall {
                    client_address: line_value(message, "Client address:"),
                };
            }
            Some("ForbiddenByConnection") => return Denial::PrivateLink,
            _ => {}
        }
        if message.contains("AKV10032") {
            return Denial::TenantMismatch {
                vault_tenant: self
                    .challenge_tenant
                    .clone()
                    .or_else(|| sts_tenant(message.split("found").next().unwrap_or_default())),
                token_tenant: message.split("found").nth(1).and_then(sts_tenant),
            };
        }
        if status == 401 {
            Denial::Unauthenticated {
                detail: self.first_line(),
            }
        } else {
            Denial::Other {
                detail: self.first_line(),
            }
        }
    }
}

/// The value after `label` on its line of a `\r\n`-separated Key Vault message (bounded,
/// printable only): `Client address: 203.0.113.7` → `203.0.113.7`.
fn line_value(message: &str, label: &str) -> Option<String> {
    let line = message
        .split(['\r', '\n'])
        .find_map(|l| l.trim().strip_prefix(label))?;
    let value: String = line
        .trim()
        .chars()
        .take_while(|c| !c.is_control())
        .take(100)
        .collect();
    (!value.is_empty()).then_some(value)
}

/// The tenant a Key Vault challenge names: the first path segment of its `authorization` (or
/// `authorization_uri`) URL, e.g. `Bearer authorization="https://login.windows.net/{tenant}",
/// resource="https://vault.azure.net"`; `None` for `common` and friends.
pub fn challenge_tenant(header: &str) -> Option<String> {
    let after = ["authorization=\"", "authorization_uri=\""]
        .iter()
        .find_map(|key| header.split(key).nth(1))?;
    let url = after.split('"').next()?;
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    path.split('/')
        .filter(|s| !s.is_empty())
        .skip(1)
        .find(|s| looks_like_tenant(s))
        .map(str::to_owned)
}

fn looks_like_tenant(s: &str) -> bool {
    !matches!(
        s.to_ascii_lowercase().as_str(),
        "common" | "organizations" | "consumers" | "oauth2" | "authorize" | "dstsv2"
    ) && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// The tenant of the first `https://sts.windows.net/{tenant}/` in `text`.
fn sts_tenant(text: &str) -> Option<String> {
    let rest = text.split("sts.windows.net/").nth(1)?;
    let tenant: String = rest
        .chars()
        .take_while(|c| *c != '/' && *c != ',')
        .collect();
    looks_like_tenant(&tenant).then_some(tenant)
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        last = e.to_string();
        source = e.source();
    }
    last.chars().take(200).collect()
}

/// A resolver that could not answer right now (EAI_AGAIN): worth retrying, not the user's typo.
fn is_temporary(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.to_string()
            .to_ascii_lowercase()
            .contains("temporary failure")
        {
            return true;
        }
        source = e.source();
    }
    false
}

fn is_dns_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("dns error")
            || text.contains("failed to lookup address")
            || text.contains("name or service not known")
        {
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
    fn challenges_name_the_vault_tenant() {
        for (header, want) in [
            (
                r#"Bearer authorization="https://login.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#,
                Some("72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ),
            (
                r#"Bearer authorization="https://uswest2-passive-dsts.dsts.core.windows.net/dstsv2/de763a21-49f7-4b08-a8e1-52c8fbc103b4", resource="https://foo.bar.core.windows.net""#,
                Some("de763a21-49f7-4b08-a8e1-52c8fbc103b4"),
            ),
            (
                r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="e30=""#,
                None,
            ),
            ("Bearer", None),
        ] {
            assert_eq!(challenge_tenant(header).as_deref(), want, "{header}");
        }
    }

    #[test]
    fn denials_by_inner_code_and_message() {
        let read = |body: &str| KvAnswer::read(&Headers::new(), body.as_bytes());
        let fw = read(
            r#"{"error":{"code":"Forbidden","message":"Client address is not authorized and caller is not a trusted service.\r\nClient address: 203.0.113.7\r\nCaller: appid=x\r\nVault: v;location=eastus","innererror":{"code":"ForbiddenByFirewall"}}}"#,
        );
        assert_eq!(
            fw.denial(403),
            Denial::Firewall {
                client_address: Some("203.0.113.7".into())
            }
        );
        let akv = read(
            r#"{"error":{"code":"Unauthorized","message":"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/aaaa/, https://sts.windows.net/bbbb/, found https://sts.windows.net/cccc/."}}"#,
        );
        assert_eq!(
            akv.denial(401),
            Denial::TenantMismatch {
                vault_tenant: Some("aaaa".into()),
                token_tenant: Some("cccc".into())
            }
        );
        assert_eq!(read("not json").denial(403), Denial::Other { detail: None });
    }
}
