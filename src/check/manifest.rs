//! YAML manifests → the SecretProviderClasses in them. Every document is read (as kubectl
//! would); only `kind: SecretProviderClass` ones are kept, including items of a `kind: List`.

use serde_json::Value;

/// The API group of SecretProviderClass; `v1` and `v1alpha1` are both served by the driver.
pub const API_GROUP: &str = "secrets-store.csi.x-k8s.io";

/// One SecretProviderClass found in a manifest, before any validation.
#[derive(Debug, Clone)]
pub struct FoundSpc {
    /// 1-based position among the file's non-empty YAML documents.
    pub document: usize,
    /// Line where the document starts (1-based; 0 when unknown).
    pub line: u64,
    /// Position in `items` when the class sits inside a `kind: List`.
    pub item: Option<usize>,
    pub api_version: String,
    pub name: String,
    pub namespace: Option<String>,
    /// `spec.provider` as written (`None` when absent or not a string).
    pub provider: Option<String>,
    /// `spec.parameters` as written, if present.
    pub parameters: Option<Value>,
    /// `spec.secretObjects` as written, if present.
    pub secret_objects: Option<Value>,
}

/// Limits for manifests: generous for real clusters' YAML, still bounded (no alias bombs).
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 2_000_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_documents: 10_000,
            max_nodes: 1_000_000,
            max_total_scalar_bytes: 64 << 20,
        },
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::Error,
    }
}

/// Every SecretProviderClass in `text`, or why `text` is not YAML.
pub fn find_spcs(text: &str) -> Result<Vec<FoundSpc>, String> {
    let documents: Vec<serde_saphyr::Spanned<Value>> =
        serde_saphyr::from_multiple_with_options(text, yaml_options()).map_err(|e| {
            let text = e.to_string();
            format!(
                "not valid YAML: {}",
                text.strip_prefix("error: ").unwrap_or(&text)
            )
        })?;
    let mut found = Vec::new();
    for (i, doc) in documents.iter().enumerate() {
        let line = doc.referenced.line();
        let value = &doc.value;
        if str_field(value, "kind") == Some("List") {
            let items = value.get("items").and_then(Value::as_array);
            for (j, item) in items.into_iter().flatten().enumerate() {
                found.extend(as_spc(item, i + 1, line, Some(j)));
            }
        } else {
            found.extend(as_spc(value, i + 1, line, None));
        }
    }
    Ok(found)
}

fn as_spc(value: &Value, document: usize, line: u64, item: Option<usize>) -> Option<FoundSpc> {
    if str_field(value, "kind") != Some("SecretProviderClass") {
        return None;
    }
    let metadata = value.get("metadata");
    let meta = |key| metadata.and_then(|m| str_field(m, key)).map(str::to_owned);
    let spec = value.get("spec");
    let spec_field = |key| spec.and_then(|s| s.get(key)).cloned();
    Some(FoundSpc {
        document,
        line,
        item,
        api_version: str_field(value, "apiVersion").unwrap_or("").to_owned(),
        name: meta("name").unwrap_or_default(),
        namespace: meta("namespace"),
        provider: spec
            .and_then(|s| str_field(s, "provider"))
            .map(str::to_owned),
        parameters: spec_field("parameters"),
        secret_objects: spec_field("secretObjects"),
    })
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_classes_among_other_documents() {
        let text = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: 1}
---
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: a
  namespace: ns
spec:
  provider: azure
  parameters:
    keyvaultName: kv
    usePodIdentity: true
---
apiVersion: v1
kind: List
items:
  - kind: ConfigMap
  - kind: SecretProviderClass
    apiVersion: secrets-store.csi.x-k8s.io/v1alpha1
    metadata: {name: b}
    spec: {provider: vault}
";
        let found = find_spcs(text).unwrap();
        assert_eq!(found.len(), 2);
        let a = &found[0];
        assert_eq!((a.document, a.line, a.item), (2, 7, None));
        assert_eq!((a.name.as_str(), a.namespace.as_deref()), ("a", Some("ns")));
        assert_eq!(a.provider.as_deref(), Some("azure"));
        let params = a.parameters.as_ref().unwrap();
        assert_eq!(params["keyvaultName"], "kv");
        assert_eq!(params["usePodIdentity"], true);
        let b = &found[1];
        assert_eq!((b.document, b.item), (3, Some(1)));
        assert_eq!(b.api_version, "secrets-store.csi.x-k8s.io/v1alpha1");
        assert_eq!(b.provider.as_deref(), Some("vault"));
    }

    #[test]
    fn rejects_what_is_not_yaml() {
        assert!(find_spcs("a: [unclosed").is_err());
        assert!(find_spcs("a: 1\na: 2\n").is_err());
        assert!(find_spcs("").unwrap().is_empty());
        assert!(find_spcs("just a string").unwrap().is_empty());
    }
}
