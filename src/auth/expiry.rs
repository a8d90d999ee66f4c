//! IMDS and NMI answer `expires_in` / `expires_on` as JSON strings, Entra as numbers: accept
//! both, and turn whatever a node-local endpoint says into a bounded expiry.

use azure_core::time::{Duration, OffsetDateTime};
use serde::Deserialize;

/// A number of seconds written either as a JSON number or a JSON string.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Expiry {
    Number(i64),
    Text(String),
}

impl Expiry {
    /// The value as an integer, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Expiry::Number(n) => Some(*n),
            Expiry::Text(s) => s.trim().parse().ok(),
        }
    }
}

/// When a token from `expires_on` (Unix seconds) or else `expires_in` (seconds from now)
/// expires; five minutes from now when neither says. Whatever answers on a node-local port
/// decides these numbers: `expires_in` is clamped to a day, nothing overflows.
pub fn token_expiry(expires_on: Option<&Expiry>, expires_in: Option<&Expiry>) -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    expires_on
        .and_then(Expiry::as_i64)
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .or_else(|| {
            let secs = expires_in.and_then(Expiry::as_i64)?.clamp(0, 86_400);
            now.checked_add(Duration::seconds(secs))
        })
        .unwrap_or_else(|| now + Duration::minutes(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings() {
        let n: Expiry = serde_json::from_str("3599").unwrap();
        let s: Expiry = serde_json::from_str("\"3599\"").unwrap();
        assert_eq!((n.as_i64(), s.as_i64()), (Some(3599), Some(3599)));
        assert_eq!(
            serde_json::from_str::<Expiry>("\"soon\"").unwrap().as_i64(),
            None
        );
    }

    #[test]
    fn expiry_prefers_expires_on_and_is_bounded() {
        let on = Expiry::Text("1506484173".into());
        assert_eq!(
            token_expiry(Some(&on), None).unix_timestamp(),
            1_506_484_173
        );
        let huge = Expiry::Number(i64::MAX);
        let t = token_expiry(None, Some(&huge));
        assert!(t <= OffsetDateTime::now_utc() + Duration::days(1) + Duration::seconds(5));
        let t = token_expiry(None, None);
        assert!(t > OffsetDateTime::now_utc());
    }
}
