//! IMDS answers `expires_in` / `expires_on` as JSON strings, NMI as numbers: accept both.

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
}
