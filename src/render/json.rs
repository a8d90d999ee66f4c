//! `jsonPointer` (our extension): RFC 6901 over a JSON secret value. A string is written raw;
//! anything else as compact JSON, byte for byte as stored apart from whitespace (numbers keep
//! their exact spelling). The document is walked as borrowed raw JSON, so no copy of the secret
//! is made except the extracted text, which is zeroized on drop.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use zeroize::Zeroizing;

use super::RenderError;

/// The text `pointer` selects in the JSON document `value`. `object` names the object in errors.
pub fn extract(value: &str, pointer: &str, object: &str) -> Result<Zeroizing<String>, RenderError> {
    let not_json = |e: serde_json::Error| RenderError::NotJson {
        object: object.to_owned(),
        kind: match e.classify() {
            serde_json::error::Category::Eof => "unexpected end",
            _ => "syntax error",
        },
        line: e.line(),
        column: e.column(),
    };
    let missing = || RenderError::PointerNotFound {
        object: object.to_owned(),
        pointer: pointer.to_owned(),
    };
    // Validates the whole document, not just the path to the target.
    let mut current: &RawValue = serde_json::from_str(value).map_err(not_json)?;
    if !pointer.is_empty() {
        let tokens = pointer.strip_prefix('/').ok_or_else(missing)?;
        for token in tokens.split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            current = step(current, &token).ok_or_else(missing)?;
        }
    }
    let raw = current.get();
    if raw.starts_with('"') {
        let text: String = serde_json::from_str(raw).map_err(not_json)?;
        Ok(Zeroizing::new(text))
    } else {
        Ok(compact(raw))
    }
}

/// One reference token: an object member, or an array index (`0`, or digits without a
/// leading zero).
fn step<'a>(current: &'a RawValue, token: &str) -> Option<&'a RawValue> {
    match current.get().as_bytes().first()? {
        b'{' => {
            let members: BTreeMap<String, &RawValue> = serde_json::from_str(current.get()).ok()?;
            members.get(token).copied()
        }
        b'[' => {
            let valid = token == "0"
                || (!token.is_empty()
                    && !token.starts_with('0')
                    && token.bytes().all(|b| b.is_ascii_digit()));
            if !valid {
                return None;
            }
            let index: usize = token.parse().ok()?;
            let items: Vec<&RawValue> = serde_json::from_str(current.get()).ok()?;
            items.get(index).copied()
        }
        _ => None,
    }
}

/// Removes insignificant whitespace from valid JSON text.
fn compact(raw: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(raw.len()));
    let (mut in_string, mut escaped) = (false, false);
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#" {
        "db": {"password": "p@ss\"word", "port": 5432, "big": 123456789012345678901234567890},
        "a/b": "slash", "m~n": "tilde", "": "empty key",
        "list": [ "zero", {"k" : [1, 2.50, true, null]} ],
        "unicode": "caf\u00e9"
    } "#;

    #[test]
    fn rfc6901_table() {
        let table: &[(&str, Option<&str>)] = &[
            ("/db/password", Some("p@ss\"word")),
            ("/db/port", Some("5432")),
            ("/db/big", Some("123456789012345678901234567890")),
            ("/a~1b", Some("slash")),
            ("/m~0n", Some("tilde")),
            ("/", Some("empty key")),
            ("/list/0", Some("zero")),
            ("/list/1", Some(r#"{"k":[1,2.50,true,null]}"#)),
            ("/list/1/k/3", Some("null")),
            ("/unicode", Some("café")),
            ("/list/01", None),
            ("/list/2", None),
            ("/list/-", None),
            ("/db/missing", None),
            ("/db/port/x", None),
            ("db", None),
        ];
        for (pointer, want) in table {
            let got = extract(DOC, pointer, "objects[0]");
            match want {
                Some(want) => {
                    assert_eq!(got.as_deref().map(String::as_str), Ok(*want), "{pointer}")
                }
                None => assert!(
                    matches!(got, Err(RenderError::PointerNotFound { .. })),
                    "{pointer}: {got:?}"
                ),
            }
        }
        assert_eq!(extract("[1, 2]", "", "o").unwrap().as_str(), "[1,2]");
    }

    #[test]
    fn not_json_reports_position_only() {
        for bad in [
            "hunter2",
            "{\"a\": hunter2}",
            "{\"a\": 1",
            "{\"a\":1} trailing",
        ] {
            let err = extract(bad, "/a", "objects[1]").unwrap_err();
            assert!(matches!(err, RenderError::NotJson { .. }), "{bad}: {err:?}");
            let msg = err.to_string();
            assert!(
                !msg.contains("hunter2") && msg.contains("objects[1]"),
                "{msg}"
            );
        }
    }
}
