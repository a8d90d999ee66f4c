//! How long a server asked us to wait: `retry-after-ms` / `x-ms-retry-after-ms` (milliseconds,
//! Azure's own headers) or `Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3). One
//! parser for every caller: the per-host budget, Key Vault and Entra classification.

use std::time::{Duration, SystemTime};

use azure_core::http::headers::{HeaderName, Headers, RETRY_AFTER};

/// Longest wait we honour. A proxy answering `Retry-After: 86400` must not park a vault for a
/// day; Entra's throttling answers 60 s, and the Azure SDK for Go does not retry at all past
/// 60 s. Past the Mount's deadline the wait is reported instead of waited for anyway.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The wait `headers` ask for, measured from `now` (for an HTTP date), capped at
/// [`MAX_RETRY_AFTER`]; `None` when no header says anything usable.
pub fn retry_after(headers: &Headers, now: SystemTime) -> Option<Duration> {
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = headers
            .get_optional_str(&HeaderName::from_static(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms).min(MAX_RETRY_AFTER));
        }
    }
    let value = headers.get_optional_str(&RETRY_AFTER)?;
    parse_retry_after(value, now)
}

/// One `Retry-After` value: delay-seconds (a decimal fraction is accepted too) or an HTTP date
/// (IMF-fixdate, as every current server sends it); a date in the past means no wait.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64())));
    }
    let date = azure_core::time::parse_rfc7231(value).ok()?;
    let at = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(
        u64::try_from(date.unix_timestamp()).ok()?,
    ))?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_dates_and_milliseconds() {
        // Fri, 01 Jan 2021 00:00:00 GMT
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_609_459_200);
        assert_eq!(parse_retry_after("60", now), Some(Duration::from_secs(60)));
        assert_eq!(
            parse_retry_after(" 1.5 ", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Fri, 01 Jan 2021 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Thu, 31 Dec 2020 23:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        for bad in ["", "-1", "soon", "NaN", "inf"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }

        let mut headers = Headers::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(RETRY_AFTER, "7");
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        headers.insert(HeaderName::from_static("x-ms-retry-after-ms"), "250");
        assert_eq!(retry_after(&headers, now), Some(Duration::from_millis(250)));
    }
}
