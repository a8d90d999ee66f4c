//! `objects`: a YAML mapping whose `array` holds YAML strings, each describing one Key Vault
//! object. Parsed with resource budgets (no billion laughs), validated field by field (the
//! rules of each field are in `object_fields`, the driver's path rules in [`super::paths`]),
//! and checked as a whole so no two objects write the same path.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::object_fields as field;
use super::params::ParamError;
use super::plan::{ObjectSpec, object_label};

/// More objects than any real SecretProviderClass; the response would not fit the driver's limit.
pub const MAX_OBJECTS: usize = 1000;
/// Most files one SecretProviderClass may write (objects × versions): far more than the
/// driver's 4 MiB response could carry, small enough to validate and read without strain.
pub const MAX_FILES: u64 = 5000;
/// Most versions one object may ask for with `objectVersionHistory`.
pub const MAX_HISTORY: u32 = 1000;

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
    #[serde(rename = "objectPart")]
    object_part: Option<String>,
    #[serde(rename = "keyvaultName")]
    keyvault_name: Option<String>,
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

/// One `array` entry: its YAML, then each field's rule in turn; every problem names the object.
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
    for key in raw.unknown.keys() {
        warnings.push(format!(
            "{}: unknown field {key:?} is ignored (field names are case-sensitive, e.g. objectAlias)",
            object_label(index, name)
        ));
    }

    let mut problems = field::Problems::new();
    let p = &mut problems;
    field::object_name(name, p);
    let object_type = field::object_type(trimmed(&raw.object_type), p);
    let format_explicit = trimmed(&raw.object_format).is_some();
    let format = field::object_format(trimmed(&raw.object_format), object_type, p);
    let encoding = field::object_encoding(trimmed(&raw.object_encoding), object_type, p);
    let version = field::object_version(trimmed(&raw.object_version), p);
    let history = field::version_history(trimmed(&raw.object_version_history), p);
    let mode = field::file_permission(trimmed(&raw.file_permission), default_mode, p);
    let optional = field::optional(trimmed(&raw.optional), p);
    let json_pointer = field::json_pointer(trimmed(&raw.json_pointer), object_type, format, p);
    let part = field::object_part(
        trimmed(&raw.object_part),
        object_type,
        format,
        encoding,
        json_pointer.is_some(),
        p,
    );
    let vault = field::vault_name(trimmed(&raw.keyvault_name), p);
    let alias = field::object_alias(trimmed(&raw.object_alias), name, history, p);

    match (problems.is_empty(), name, object_type) {
        (true, Some(name), Some(object_type)) => Ok(ObjectSpec {
            index,
            name: name.to_owned(),
            object_type,
            alias,
            version,
            history,
            format,
            format_explicit,
            part,
            encoding,
            mode,
            optional,
            json_pointer,
            vault,
        }),
        _ => Err(problems
            .into_iter()
            .map(|problem| ParamError::object(index, name, problem))
            .collect()),
    }
}

fn trimmed(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
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
