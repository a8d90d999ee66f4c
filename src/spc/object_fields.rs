//! The rules for each field of one `objects.array` entry. Each rule takes the field's trimmed
//! value (`None` = absent or blank) and the fields it depends on, and returns the validated
//! value, or a stand-in after noting the problem; `objects::parse_one` applies them in order
//! and names the object in every problem.

use super::objects::MAX_HISTORY;
use super::params::{parse_bool, shorten};
use super::paths::{MAX_PATH, validate_relative_path};
use super::plan::{ObjectEncoding, ObjectFormat, ObjectPart, ObjectType};

/// The problems found in one object so far, one sentence each (without the object's label).
pub type Problems = Vec<String>;

/// `objectName`: required, a Key Vault object name.
pub fn object_name(name: Option<&str>, problems: &mut Problems) {
    match name {
        None => problems.push("objectName is required".into()),
        Some(n) if !is_key_vault_name(n) => problems.push(format!(
            "objectName {n:?} is not a Key Vault object name (1-127 characters of letters, digits and -)"
        )),
        Some(_) => {}
    }
}

fn is_key_vault_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `objectType`: required; `secret`, `key` or `cert` in any case.
pub fn object_type(value: Option<&str>, problems: &mut Problems) -> Option<ObjectType> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        Some("secret") => Some(ObjectType::Secret),
        Some("key") => Some(ObjectType::Key),
        Some("cert") => Some(ObjectType::Cert),
        None => {
            problems.push("objectType is required: use secret, key or cert".into());
            None
        }
        Some(_) => {
            // Quote what the author wrote, not our lower-cased copy.
            let given = value.unwrap_or_default();
            problems.push(format!(
                "objectType {given:?} is not one of secret, key, cert"
            ));
            None
        }
    }
}

/// `objectFormat`: `pem` (the default) or `pfx`, which only a secret can be read as.
pub fn object_format(
    value: Option<&str>,
    object_type: Option<ObjectType>,
    problems: &mut Problems,
) -> ObjectFormat {
    let format = match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("pem") => ObjectFormat::Pem,
        Some("pfx") => ObjectFormat::Pfx,
        Some(_) => {
            let given = value.unwrap_or_default();
            problems.push(format!("objectFormat {given:?} is not one of pem, pfx"));
            ObjectFormat::Pem
        }
    };
    if format == ObjectFormat::Pfx && object_type.is_some_and(|t| t != ObjectType::Secret) {
        problems.push("objectFormat pfx is only supported for objectType secret (a certificate's PFX is read through its secret)".into());
    }
    format
}

/// `objectEncoding`: `utf-8` (the default), `hex` or `base64`, for secrets only.
pub fn object_encoding(
    value: Option<&str>,
    object_type: Option<ObjectType>,
    problems: &mut Problems,
) -> ObjectEncoding {
    let Some(e) = value else {
        return ObjectEncoding::Utf8;
    };
    if object_type.is_some_and(|t| t != ObjectType::Secret) {
        problems.push("objectEncoding is only supported for objectType secret".into());
    }
    match e.to_ascii_lowercase().as_str() {
        "utf-8" => ObjectEncoding::Utf8,
        "hex" => ObjectEncoding::Hex,
        "base64" => ObjectEncoding::Base64,
        _ => {
            problems.push(format!(
                "objectEncoding {e:?} is not one of utf-8, hex, base64"
            ));
            ObjectEncoding::Utf8
        }
    }
}

/// `objectVersion`: a Key Vault version id; absent or `latest` = the current version.
pub fn object_version(value: Option<&str>, problems: &mut Problems) -> Option<String> {
    match value {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("latest") => None,
        Some(v) if v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Some(v.to_owned())
        }
        Some(v) => {
            problems.push(format!(
                "objectVersion {:?} is not a Key Vault version id (letters and digits, e.g. 32 hex characters) or \"latest\"",
                shorten(v)
            ));
            None
        }
    }
}

/// `objectVersionHistory`: how many versions to write, 0 and 1 both meaning one file.
pub fn version_history(value: Option<&str>, problems: &mut Problems) -> u32 {
    let Some(h) = value else { return 1 };
    match h.parse::<i64>() {
        Ok(n) if (0..=i64::from(MAX_HISTORY)).contains(&n) => n.max(1) as u32,
        Ok(n) if n < 0 => {
            problems.push(format!("objectVersionHistory {n} must not be negative"));
            1
        }
        Ok(_) => {
            problems.push(format!(
                "objectVersionHistory must be at most {MAX_HISTORY}"
            ));
            1
        }
        Err(_) => {
            problems.push(format!(
                "objectVersionHistory {:?} is not a whole number",
                shorten(h)
            ));
            1
        }
    }
}

/// `filePermission`: an octal mode; absent = the request's `permission`.
pub fn file_permission(value: Option<&str>, default_mode: u32, problems: &mut Problems) -> u32 {
    let Some(p) = value else { return default_mode };
    parse_octal_mode(p).unwrap_or_else(|| {
        problems.push(format!(
            "filePermission {:?} is not an octal file mode up to 0777 (e.g. \"0400\")",
            shorten(p)
        ));
        default_mode
    })
}

/// `0400`, `400`, `0o400` (the reference parses base 8); at most 0777.
pub fn parse_octal_mode(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o777)
}

/// `optional` (our extension): a Go boolean; true = a 404 writes nothing instead of failing.
pub fn optional(value: Option<&str>, problems: &mut Problems) -> bool {
    let Some(v) = value else { return false };
    parse_bool(v).unwrap_or_else(|| {
        problems.push(format!("optional {:?} is not true or false", shorten(v)));
        false
    })
}

/// `jsonPointer` (our extension): an RFC 6901 pointer into a secret's JSON value, not with pfx.
pub fn json_pointer(
    value: Option<&str>,
    object_type: Option<ObjectType>,
    format: ObjectFormat,
    problems: &mut Problems,
) -> Option<String> {
    let p = value?;
    if object_type.is_some_and(|t| t != ObjectType::Secret) {
        problems.push("jsonPointer is only supported for objectType secret".into());
    }
    if format == ObjectFormat::Pfx {
        problems.push("jsonPointer cannot be combined with objectFormat pfx".into());
    }
    if let Err(problem) = validate_json_pointer(p) {
        problems.push(format!("jsonPointer {:?} {problem}", shorten(p)));
    }
    Some(p.to_owned())
}

/// RFC 6901: empty (the whole document) or `/`-separated tokens where `~` is only `~0` or `~1`.
fn validate_json_pointer(pointer: &str) -> Result<(), &'static str> {
    if !pointer.starts_with('/') {
        return Err("must start with / (RFC 6901), e.g. /db/password");
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err("has a ~ that is not ~0 or ~1 (RFC 6901 escapes)");
        }
    }
    Ok(())
}

/// `objectAlias`: the file (or, with history, directory) to write; absent = `objectName`.
/// Held to the driver's path rules, including the `alias/N` paths history adds.
pub fn object_alias(
    value: Option<&str>,
    name: Option<&str>,
    history: u32,
    problems: &mut Problems,
) -> String {
    let alias = value.or(name).unwrap_or_default().to_owned();
    if value.is_some()
        && let Err(problem) = validate_relative_path(&alias)
    {
        problems.push(format!("objectAlias {:?} {problem}", shorten(&alias)));
    }
    // With history, `alias/N` must also fit the driver's limits.
    if history > 1 && alias.len() + 1 + (history - 1).to_string().len() > MAX_PATH {
        problems.push(format!(
            "objectAlias with objectVersionHistory makes paths longer than {MAX_PATH} bytes"
        ));
    }
    alias
}

/// `objectPart` (our extension): which part of a certificate-backed secret's bundle to write.
/// Only a `secret` can back a certificate, and only its PEM form has parts; whether the secret
/// really backs a certificate is known only from Key Vault's answer (rendering checks that).
pub fn object_part(
    value: Option<&str>,
    object_type: Option<ObjectType>,
    format: ObjectFormat,
    encoding: ObjectEncoding,
    json_pointer: bool,
    problems: &mut Problems,
) -> Option<ObjectPart> {
    let p = value?;
    let part = match p.to_ascii_lowercase().as_str() {
        "all" => ObjectPart::All,
        "key" => ObjectPart::Key,
        "leaf" => ObjectPart::Leaf,
        "chain" => ObjectPart::Chain,
        "ca" => ObjectPart::Ca,
        _ => {
            problems.push(format!(
                "objectPart {:?} is not one of {}",
                shorten(p),
                ObjectPart::EXPECTED
            ));
            return None;
        }
    };
    match object_type {
        Some(ObjectType::Key) => problems.push(
            "objectPart is only supported for objectType secret: a key is written as its public \
             key alone"
                .into(),
        ),
        Some(ObjectType::Cert) => problems.push(
            "objectPart is only supported for objectType secret: objectType cert writes the leaf \
             certificate alone; read the certificate's secret (objectType secret, same \
             objectName) to get its key, chain or CA certificates"
                .into(),
        ),
        _ => {}
    }
    if format == ObjectFormat::Pfx {
        problems.push(
            "objectPart cannot be combined with objectFormat pfx: a PFX always holds the whole \
             bundle (use objectFormat pem, the default)"
                .into(),
        );
    }
    if encoding != ObjectEncoding::Utf8 {
        problems.push(
            "objectPart writes PEM text, which objectEncoding hex or base64 cannot decode; \
             remove objectEncoding"
                .into(),
        );
    }
    if json_pointer {
        problems.push(
            "objectPart cannot be combined with jsonPointer: parts are cut from certificate \
             bundles, pointers from JSON secrets"
                .into(),
        );
    }
    Some(part)
}

/// A Key Vault name: 3-24 letters, digits and hyphens (the class's `keyvaultName` and an
/// object's own).
pub fn is_vault_name(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `keyvaultName` inside an object (our extension): read this object from another vault, with
/// the class's identity, tenant and cloud.
pub fn vault_name(value: Option<&str>, problems: &mut Problems) -> Option<String> {
    let v = value?;
    if is_vault_name(v) {
        Some(v.to_owned())
    } else {
        problems.push(format!(
            "keyvaultName {:?} is not a vault name: use 3-24 letters, digits and hyphens (the \
             name, not the URL)",
            shorten(v)
        ));
        None
    }
}
