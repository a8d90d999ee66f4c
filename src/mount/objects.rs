//! `objects`: a YAML mapping whose `array` holds YAML strings, each describing one Key Vault
//! object. Parsed with resource budgets (no billion laughs), validated field by field, and
//! checked as a whole so no two objects write the same path.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::params::{ParamError, parse_bool, shorten};
use super::plan::{ObjectEncoding, ObjectFormat, ObjectSpec, ObjectType, object_label};

/// More objects than any real SecretProviderClass; the response would not fit the driver's limit.
pub const MAX_OBJECTS: usize = 1000;
/// Most files one SecretProviderClass may write (objects × versions): far more than the
/// driver's 4 MiB response could carry, small enough to validate and read without strain.
pub const MAX_FILES: u64 = 5000;
/// Most versions one object may ask for with `objectVersionHistory`.
pub const MAX_HISTORY: u32 = 1000;
/// The driver rejects path elements over 255 bytes and paths over 4096 bytes.
const MAX_PATH_ELEMENT: usize = 255;
const MAX_PATH: usize = 4096;

#[derive(Deserialize)]
struct ObjectsDoc {
    array: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
struct RawObject {
    #[serde(rename = "objectName")]
    object_name: Option<String>,
    #[serde(rename = "objectType")]
    object_type: Option<String>,
    #[serde(rename = "objectAlias")]
    object_alias: Option<String>,
    #[serde(rename = "objectVersion")]
    object_version: Option<String>,
    #[serde(rename = "objectVersionHistory")]
    object_version_history: Option<String>,
    #[serde(rename = "objectFormat")]
    object_format: Option<String>,
    #[serde(rename = "objectEncoding")]
    object_encoding: Option<String>,
    #[serde(rename = "filePermission")]
    file_permission: Option<String>,
    optional: Option<String>,
    #[serde(rename = "jsonPointer")]
    json_pointer: Option<String>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_recorded_anchor_events: 10_000,
            max_recorded_anchor_bytes: 1 << 20,
            max_depth: 16,
            max_documents: 1,
            max_nodes: 100_000,
            max_total_scalar_bytes: 4 << 20,
        },
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::Error,
    }
}

/// One line of a YAML error, without the source snippet (pod events are single lines).
fn yaml_problem(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let line = text.lines().next().unwrap_or("invalid YAML").trim();
    line.chars().take(200).collect()
}

/// Parses and validates `objects`. `default_mode` is the request's `permission`.
/// Returns every problem found, not just the first.
pub fn parse_objects(
    text: &str,
    default_mode: u32,
    warnings: &mut Vec<String>,
) -> Result<Vec<ObjectSpec>, Vec<ParamError>> {
    let doc: ObjectsDoc =
        serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
            vec![ParamError::Objects(format!(
                "is not a YAML mapping with an `array` of YAML strings: {}",
                yaml_problem(&e)
            ))]
        })?;
    let items = doc.array.unwrap_or_default();
    if items.is_empty() {
        return Err(vec![ParamError::Objects(
            "has no entries in `array`: list at least one object".into(),
        )]);
    }
    if items.len() > MAX_OBJECTS {
        return Err(vec![ParamError::Objects(format!(
            "lists {} objects; at most {MAX_OBJECTS} are supported in one SecretProviderClass",
            items.len()
        ))]);
    }
    let mut errors = Vec::new();
    let mut specs = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match parse_one(index, item, default_mode, warnings) {
            Ok(spec) => specs.push(spec),
            Err(mut e) => errors.append(&mut e),
        }
    }
    let files: u64 = specs.iter().map(|s| u64::from(s.history.max(1))).sum();
    if errors.is_empty() && files > MAX_FILES {
        errors.push(ParamError::Objects(format!(
            "would write {files} files (objects × objectVersionHistory); at most {MAX_FILES} are supported"
        )));
    }
    if errors.is_empty() {
        check_paths_disjoint(&specs, &mut errors);
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}

fn parse_one(
    index: usize,
    item: &str,
    default_mode: u32,
    warnings: &mut Vec<String>,
) -> Result<ObjectSpec, Vec<ParamError>> {
    let raw: RawObject =
        serde_saphyr::from_str_with_options(item, yaml_options()).map_err(|e| {
            vec![ParamError::object(
                index,
                None,
                format!(
                    "is not a YAML mapping of object fields: {}",
                    yaml_problem(&e)
                ),
            )]
        })?;
    let name = trimmed(&raw.object_name);
    let mut errors = Vec::new();
    let mut err = |problem: String| errors.push(ParamError::object(index, name, problem));

    for key in raw.unknown.keys() {
        warnings.push(format!(
            "{}: unknown field {key:?} is ignored (field names are case-sensitive, e.g. objectAlias)",
            object_label(index, name)
        ));
    }

    match name {
        None => err("objectName is required".into()),
        Some(n) if !is_key_vault_name(n) => err(format!(
            "objectName {n:?} is not a Key Vault object name (1-127 characters of letters, digits and -)"
        )),
        Some(_) => {}
    }

    let object_type = match trimmed(&raw.object_type)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("secret") => Some(ObjectType::Secret),
        Some("key") => Some(ObjectType::Key),
        Some("cert") => Some(ObjectType::Cert),
        None => {
            err("objectType is required: use secret, key or cert".into());
            None
        }
        Some(other) => {
            err(format!(
                "objectType {other:?} is not one of secret, key, cert"
            ));
            None
        }
    };

    let format = match trimmed(&raw.object_format)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("pem") => ObjectFormat::Pem,
        Some("pfx") => ObjectFormat::Pfx,
        Some(other) => {
            err(format!("objectFormat {other:?} is not one of pem, pfx"));
            ObjectFormat::Pem
        }
    };
    if format == ObjectFormat::Pfx && object_type.is_some_and(|t| t != ObjectType::Secret) {
        err("objectFormat pfx is only supported for objectType secret (a certificate's PFX is read through its secret)".into());
    }

    let encoding = match trimmed(&raw.object_encoding) {
        None => ObjectEncoding::Utf8,
        Some(e) => {
            if object_type.is_some_and(|t| t != ObjectType::Secret) {
                err("objectEncoding is only supported for objectType secret".into());
            }
            match e.to_ascii_lowercase().as_str() {
                "utf-8" => ObjectEncoding::Utf8,
                "hex" => ObjectEncoding::Hex,
                "base64" => ObjectEncoding::Base64,
                other => {
                    err(format!(
                        "objectEncoding {other:?} is not one of utf-8, hex, base64"
                    ));
                    ObjectEncoding::Utf8
                }
            }
        }
    };

    let version = match trimmed(&raw.object_version) {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("latest") => None,
        Some(v) if v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Some(v.to_owned())
        }
        Some(v) => {
            err(format!(
                "objectVersion {:?} is not a Key Vault version id (letters and digits, e.g. 32 hex characters) or \"latest\"",
                shorten(v)
            ));
            None
        }
    };

    let history = match trimmed(&raw.object_version_history) {
        None => 1,
        Some(h) => match h.parse::<i64>() {
            Ok(n) if (0..=i64::from(MAX_HISTORY)).contains(&n) => n.max(1) as u32,
            Ok(n) if n < 0 => {
                err(format!("objectVersionHistory {n} must not be negative"));
                1
            }
            Ok(_) => {
                err(format!(
                    "objectVersionHistory must be at most {MAX_HISTORY}"
                ));
                1
            }
            Err(_) => {
                err(format!(
                    "objectVersionHistory {:?} is not a whole number",
                    shorten(h)
                ));
                1
            }
        },
    };

    let mode = match trimmed(&raw.file_permission) {
        None => default_mode,
        Some(p) => match parse_octal_mode(p) {
            Some(m) => m,
            None => {
                err(format!(
                    "filePermission {:?} is not an octal file mode up to 0777 (e.g. \"0400\")",
                    shorten(p)
                ));
                default_mode
            }
        },
    };

    let optional = match trimmed(&raw.optional) {
        None => false,
        Some(v) => parse_bool(v).unwrap_or_else(|| {
            err(format!("optional {:?} is not true or false", shorten(v)));
            false
        }),
    };

    let json_pointer = match trimmed(&raw.json_pointer) {
        None => None,
        Some(p) => {
            if object_type.is_some_and(|t| t != ObjectType::Secret) {
                err("jsonPointer is only supported for objectType secret".into());
            }
            if format == ObjectFormat::Pfx {
                err("jsonPointer cannot be combined with objectFormat pfx".into());
            }
            if let Err(problem) = validate_json_pointer(p) {
                err(format!("jsonPointer {:?} {problem}", shorten(p)));
            }
            Some(p.to_owned())
        }
    };

    let alias = trimmed(&raw.object_alias)
        .or(name)
        .unwrap_or_default()
        .to_owned();
    if trimmed(&raw.object_alias).is_some()
        && let Err(problem) = validate_relative_path(&alias)
    {
        err(format!("objectAlias {:?} {problem}", shorten(&alias)));
    }
    // With history, `alias/N` must also fit the driver's limits.
    if history > 1 && alias.len() + 1 + (history - 1).to_string().len() > MAX_PATH {
        err(format!(
            "objectAlias with objectVersionHistory makes paths longer than {MAX_PATH} bytes"
        ));
    }

    match (errors.is_empty(), name, object_type) {
        (true, Some(name), Some(object_type)) => Ok(ObjectSpec {
            index,
            name: name.to_owned(),
            object_type,
            alias,
            version,
            history,
            format,
            encoding,
            mode,
            optional,
            json_pointer,
        }),
        _ => Err(errors),
    }
}

fn trimmed(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn is_key_vault_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
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

/// A path the driver accepts and that stays inside the mount: relative, clean, no `..`,
/// no backslashes or control characters, elements ≤ 255 bytes, at most 4096 bytes.
pub fn validate_relative_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') {
        return Err("must be a relative path, not an absolute one".into());
    }
    if path.contains('\\') {
        return Err("must not contain a backslash (use / between directories)".into());
    }
    if path.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if path.len() > MAX_PATH {
        return Err(format!("is longer than {MAX_PATH} bytes"));
    }
    for element in path.split('/') {
        match element {
            "" => return Err("must not contain empty path elements (// or a trailing /)".into()),
            "." => return Err("must not contain a . path element".into()),
            ".." => {
                return Err(
                    "must not contain a .. path element (files stay inside the volume)".into(),
                );
            }
            e if e.len() > MAX_PATH_ELEMENT => {
                return Err(format!(
                    "has a path element longer than {MAX_PATH_ELEMENT} bytes"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// No two objects may write the same path, and no file may sit where another needs a directory.
fn check_paths_disjoint(specs: &[ObjectSpec], errors: &mut Vec<ParamError>) {
    let mut owners: BTreeMap<String, &ObjectSpec> = BTreeMap::new();
    for spec in specs {
        for path in spec.paths() {
            if let Some(first) = owners.get(&path) {
                errors.push(ParamError::object(
                    spec.index,
                    Some(&spec.name),
                    format!(
                        "writes {path:?}, which {} already writes: give one of them a different objectAlias",
                        first.label()
                    ),
                ));
            } else {
                owners.insert(path, spec);
            }
        }
    }
    let files: BTreeSet<&str> = owners.keys().map(String::as_str).collect();
    for (path, spec) in &owners {
        let mut prefix = path.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            if files.contains(parent) {
                errors.push(ParamError::object(
                    spec.index,
                    Some(&spec.name),
                    format!(
                        "writes {path:?} inside {parent:?}, which {} writes as a file",
                        owners[parent].label()
                    ),
                ));
            }
            prefix = parent;
        }
    }
}
