//! `objectEncoding`: the decoders of Go's `encoding/base64` (StdEncoding) and `encoding/hex`,
//! with their leniencies (base64 ignores `\r`/`\n` and non-zero trailing bits; hex takes
//! either case). Errors give the position of a fault, never the characters around it.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use super::RenderError;
use crate::spc::plan::ObjectEncoding;

/// Go's `base64.StdEncoding` (padded, not strict about trailing bits).
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// The spelling of an encoding in a SecretProviderClass, for messages.
pub(crate) fn name(encoding: ObjectEncoding) -> &'static str {
    match encoding {
        ObjectEncoding::Utf8 => "utf-8",
        ObjectEncoding::Hex => "hex",
        ObjectEncoding::Base64 => "base64",
    }
}

/// Decodes `text` per `objectEncoding`; `utf-8` writes it unchanged. `object` names the object
/// in errors.
pub fn decode(
    text: &str,
    encoding: ObjectEncoding,
    object: &str,
) -> Result<Zeroizing<Vec<u8>>, RenderError> {
    let error = |reason: String| RenderError::Decode {
        object: object.to_owned(),
        encoding: name(encoding),
        reason,
    };
    match encoding {
        ObjectEncoding::Utf8 => Ok(Zeroizing::new(text.as_bytes().to_vec())),
        ObjectEncoding::Hex => {
            if !text.len().is_multiple_of(2) {
                return Err(error(format!(
                    "hex text needs an even number of digits, this has {}",
                    text.len()
                )));
            }
            let mut out = Zeroizing::new(vec![0u8; text.len() / 2]);
            hex::decode_to_slice(text, &mut out[..]).map_err(|e| match e {
                hex::FromHexError::InvalidHexCharacter { index, .. } => {
                    error(format!("character {} is not a hex digit", index + 1))
                }
                other => error(other.to_string()),
            })?;
            Ok(out)
        }
        ObjectEncoding::Base64 => base64_std(text).map_err(error),
    }
}

/// Go's `base64.StdEncoding.DecodeString`. The error is a position, never input characters.
pub(crate) fn base64_std(text: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut compact = Zeroizing::new(Vec::with_capacity(text.len()));
    compact.extend(text.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
    let mut out = Zeroizing::new(vec![0u8; compact.len().div_ceil(4) * 3]);
    let len = GO_STD
        .decode_slice(&compact[..], &mut out[..])
        .map_err(|e| {
            use base64::{DecodeError, DecodeSliceError};
            match e {
                DecodeSliceError::DecodeError(DecodeError::InvalidByte(at, _))
                | DecodeSliceError::DecodeError(DecodeError::InvalidLastSymbol {
                    offset: at,
                    ..
                }) => {
                    format!("invalid base64 character at position {}", at + 1)
                }
                DecodeSliceError::DecodeError(DecodeError::InvalidLength(_)) => {
                    "the base64 text has an invalid length (truncated or missing '=' padding)"
                        .into()
                }
                DecodeSliceError::DecodeError(DecodeError::InvalidPadding) => {
                    "the base64 text has invalid '=' padding".into()
                }
                _ => "the base64 text is malformed".into(),
            }
        })?;
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str, e: ObjectEncoding) -> Result<Vec<u8>, RenderError> {
        decode(text, e, "objects[0]").map(|z| z.to_vec())
    }

    #[test]
    fn decodes_like_go() {
        use ObjectEncoding::*;
        let table: &[(&str, ObjectEncoding, Option<&[u8]>)] = &[
            ("héllo", Utf8, Some("héllo".as_bytes())),
            ("", Utf8, Some(b"")),
            ("", Hex, Some(b"")),
            ("", Base64, Some(b"")),
            ("00ff10", Hex, Some(&[0, 255, 16])),
            ("00FF10", Hex, Some(&[0, 255, 16])),
            ("0", Hex, None),
            ("zz", Hex, None),
            ("aGVsbG8=", Base64, Some(b"hello")),
            ("aGVs\r\nbG8=\n", Base64, Some(b"hello")),
            // Go's StdEncoding is not Strict: non-zero trailing bits are accepted.
            ("aGVsbG9=", Base64, Some(b"hello")),
            ("aGVsbG8", Base64, None),
            ("aGVsbG8==", Base64, None),
            ("aGV sbG8=", Base64, None),
            ("aGVsbG8_", Base64, None),
        ];
        for (text, enc, want) in table {
            let got = dec(text, *enc);
            match want {
                Some(want) => assert_eq!(got.as_deref().ok(), Some(*want), "{text:?} {enc:?}"),
                None => assert!(got.is_err(), "{text:?} {enc:?} should fail"),
            }
        }
    }

    #[test]
    fn errors_never_quote_the_value() {
        let err = dec("s3cr3t!!", ObjectEncoding::Hex)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t") && !err.contains('!'), "{err}");
        assert!(err.contains("objects[0]") && err.contains("hex"), "{err}");
        let err = dec("s3cr3t!!", ObjectEncoding::Base64)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t") && !err.contains("!!"), "{err}");
    }
}
