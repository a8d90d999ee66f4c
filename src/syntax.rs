//! Value syntaxes every layer shares, kept below them all so none has to import another for
//! them: Go's spellings of booleans and durations (flags and SecretProviderClass values written
//! for the Go reference provider keep their meaning) and JSON errors told by position only.

use std::fmt;
use std::time::Duration;

/// Parses a boolean the way Go's `strconv.ParseBool` does, so flags and SecretProviderClass
/// parameters written for the reference keep their meaning.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean (use true or false)")),
    }
}

/// Parses a Go `time.Duration` string (`5s`, `1m30s`, `250ms`, `1.5h`).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (e.g. 5s, 500ms, 1m30s)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Where JSON decoding failed, without quoting the input (it may hold tokens or secrets).
#[derive(Debug)]
pub struct JsonProblem {
    category: &'static str,
    line: usize,
    column: usize,
}

impl JsonProblem {
    /// Summarises a serde_json error by category and position only.
    pub fn from_json_error(e: &serde_json::Error) -> Self {
        let category = match e.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "wrong value type",
            serde_json::error::Category::Eof => "unexpected end",
        };
        JsonProblem {
            category,
            line: e.line(),
            column: e.column(),
        }
    }
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}, column {}",
            self.category, self.line, self.column
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_bools() {
        for s in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(s), Ok(true), "{s}");
        }
        for s in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(s), Ok(false), "{s}");
        }
        for s in ["", "yes", "tRUE", " true"] {
            assert!(parse_go_bool(s).is_err(), "{s}");
        }
    }

    #[test]
    fn go_durations() {
        for (s, ms) in [
            ("5s", 5000),
            ("500ms", 500),
            ("1m30s", 90_000),
            ("1.5s", 1500),
            ("0", 0),
        ] {
            assert_eq!(
                parse_go_duration(s).unwrap(),
                Duration::from_millis(ms),
                "{s}"
            );
        }
        for s in ["", "5", "s", "5x", "-1s", "1..2s"] {
            assert!(parse_go_duration(s).is_err(), "{s}");
        }
    }
}
