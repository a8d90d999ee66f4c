//! Reading a few claims of the service-account JWT for error messages. The signature is not
//! checked (Entra does that); only `iss`, `sub` and `exp` are read and the token never leaves.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The claims we quote to humans: issuer and subject (what a federated credential must match).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub exp: Option<i64>,
}

/// The payload claims, or `None` when the token is not a JWT with a JSON payload.
pub fn claims(jwt: &str) -> Option<Claims> {
    let payload = jwt.split('.').nth(1)?;
    if payload.len() > 64 * 1024 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    // Only printable, bounded values are worth quoting.
    let clean =
        |v: Option<String>| v.filter(|s| s.len() <= 512 && !s.chars().any(char::is_control));
    Some(Claims {
        iss: clean(claims.iss),
        sub: clean(claims.sub),
        exp: claims.exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_iss_and_sub() {
        let payload = URL_SAFE_NO_PAD.encode(
            br#"{"iss":"https://oidc.example/","sub":"system:serviceaccount:ns:sa","exp":5}"#,
        );
        let c = claims(&format!("e30.{payload}.sig")).unwrap();
        assert_eq!(c.iss.as_deref(), Some("https://oidc.example/"));
        assert_eq!(c.sub.as_deref(), Some("system:serviceaccount:ns:sa"));
        assert_eq!(c.exp, Some(5));
        for bad in ["", "abc", "a.!!!.c", "a.e30", "a.bm90anNvbg.c"] {
            assert!(claims(bad).is_none_or(|c| c == Claims::default()), "{bad}");
        }
    }
}
