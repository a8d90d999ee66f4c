//! One SecretProviderClass → its verdict, using the very parser Mount uses. What kubelet and the
//! pod add at mount time (pod name, the service-account token, nodePublishSecretRef data) is
//! filled in with placeholders, and notes say what the pod must then provide.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use super::manifest::{API_GROUP, FoundSpc};
use super::{FileEntry, SpcReport};
use crate::cloud::CloudName;
use crate::spc::plan::{Identity, MountPlan, ObjectEncoding, ObjectFormat, ObjectType};
use crate::spc::request::{Attributes, Secrets};
use crate::spc::tokens::{AZURE_AUDIENCE, IDENTITY_BINDING_AUDIENCE, TOKENS_KEY};
use crate::spc::{PlanDefaults, params};

/// The driver's default file mode (`permission` "420") when an object has no `filePermission`.
pub const DEFAULT_MODE: u32 = 0o644;

/// Stands in for the service principal's client ID: the real one comes from nodePublishSecretRef.
const PLACEHOLDER_CLIENT_ID: &str = "<clientid from nodePublishSecretRef>";
/// Stands in for `AZURE_ENVIRONMENT_FILEPATH`, which only the provider on the node knows.
const PLACEHOLDER_ENV_FILE: &str = "<AZURE_ENVIRONMENT_FILEPATH of the provider>";

/// Validates `spc` (already known to be `provider: azure`). `defaults` are `--cloud-name` etc.
pub fn check_spc(spc: &FoundSpc, source: &str, defaults: &PlanDefaults) -> SpcReport {
    let mut report = SpcReport {
        source: source.to_owned(),
        document: spc.document,
        line: spc.line,
        item: spc.item,
        api_version: spc.api_version.clone(),
        namespace: spc.namespace.clone(),
        name: spc.name.clone(),
        valid: false,
        vault: None,
        cloud: None,
        identity: None,
        files: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
        notes: Vec::new(),
    };
    if !matches!(
        spc.api_version.strip_prefix(API_GROUP),
        Some("/v1" | "/v1alpha1")
    ) {
        report.problems.push(format!(
            "apiVersion {:?} is not {API_GROUP}/v1 (or the older v1alpha1)",
            spc.api_version
        ));
    }
    if spc.name.is_empty() {
        report.problems.push("metadata.name is required".into());
    }
    if spc.provider.as_deref() != Some("azure") {
        report.problems.push(format!(
            "spec.provider {:?} must be spelled azure: the driver finds the provider's socket by this exact name",
            spc.provider.as_deref().unwrap_or_default()
        ));
    }

    let mut pairs = string_parameters(spc.parameters.as_ref(), &mut report.problems);
    let has = |key: &str| pairs.iter().any(|(k, v)| k == key && !v.trim().is_empty());
    if has("tenantId") {
        report.warnings.push(if has("tenantID") {
            "parameter tenantId is ignored: tenantID is also set and wins".into()
        } else {
            "parameter tenantId is a deprecated spelling: use tenantID".into()
        });
    }
    let cloud_env_file = has("cloudEnvFileName");
    // What kubelet adds at mount time; its keys override the class's, as in the driver.
    let pod_namespace = spc.namespace.as_deref().unwrap_or("<namespace>");
    let token_map = format!(
        r#"{{"{AZURE_AUDIENCE}":{{"token":"<token>"}},"{IDENTITY_BINDING_AUDIENCE}":{{"token":"<token>"}}}}"#
    );
    pairs.retain(|(k, _)| !k.starts_with("csi.storage.k8s.io/"));
    pairs.extend([
        ("csi.storage.k8s.io/pod.name".to_owned(), "<pod>".to_owned()),
        (
            "csi.storage.k8s.io/pod.namespace".to_owned(),
            pod_namespace.to_owned(),
        ),
        (
            "csi.storage.k8s.io/serviceAccount.name".to_owned(),
            "<service-account>".to_owned(),
        ),
        (TOKENS_KEY.to_owned(), token_map),
    ]);
    let attributes = Attributes::from_pairs(pairs);
    let secrets = Secrets::from_pairs([
        ("clientid", PLACEHOLDER_CLIENT_ID),
        ("clientsecret", "<clientsecret from nodePublishSecretRef>"),
    ]);
    let mut defaults = defaults.clone();
    let provider_env_file = defaults.environment_file.is_none();
    if provider_env_file {
        defaults.environment_file = Some(PathBuf::from(PLACEHOLDER_ENV_FILE));
    }

    match params::parse(&attributes, &secrets, DEFAULT_MODE, &defaults) {
        Ok(plan) => {
            describe_plan(&plan, cloud_env_file, provider_env_file, &mut report);
            check_secret_objects(spc.secret_objects.as_ref(), &mut report);
        }
        Err(errors) => {
            report
                .problems
                .extend(errors.0.iter().map(ToString::to_string));
        }
    }
    report.valid = report.problems.is_empty();
    if !report.valid {
        report.files.clear();
    }
    report
}

/// `spec.parameters` as `(key, value)` strings. Kubernetes only accepts strings there, so any
/// other value is a problem; scalars are still validated as their text.
fn string_parameters(
    parameters: Option<&Value>,
    problems: &mut Vec<String>,
) -> Vec<(String, String)> {
    let map = match parameters {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            problems.push("spec.parameters must be a mapping of strings".into());
            return Vec::new();
        }
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (key, value) in map {
        let (kind, text) = match value {
            Value::String(s) => {
                pairs.push((key.clone(), s.clone()));
                continue;
            }
            Value::Bool(b) => ("a boolean", b.to_string()),
            Value::Number(n) => ("a number", n.to_string()),
            Value::Null => ("empty (null)", String::new()),
            Value::Array(_) => ("a list", String::new()),
            Value::Object(_) => ("a mapping", String::new()),
        };
        let fix = if text.is_empty() {
            String::new()
        } else {
            format!(": quote it ({key}: \"{text}\")")
        };
        problems.push(format!(
            "parameter {key} is {kind}, but Kubernetes accepts only strings in spec.parameters{fix}"
        ));
        if !text.is_empty() {
            pairs.push((key.clone(), text));
        }
    }
    pairs
}

fn describe_plan(
    plan: &MountPlan,
    cloud_env_file: bool,
    provider_env_file: bool,
    report: &mut SpcReport,
) {
    report.vault = Some(plan.vault_name.clone());
    report.cloud = Some(plan.cloud.name().as_str().to_owned());
    report.warnings.extend(plan.warnings.iter().cloned());
    report.identity = Some(match &plan.identity {
        Identity::ServicePrincipal { .. } => {
            report.notes.push(
                "no clientID, useVMManagedIdentity or usePodIdentity: the service principal comes from \
                 the pod's volume nodePublishSecretRef, a secret with clientid and clientsecret keys \
                 (labelled secrets-store.csi.k8s.io/used=true)"
                    .into(),
            );
            "service principal (nodePublishSecretRef)".to_owned()
        }
        Identity::PodIdentity => {
            report.warnings.push(
                "usePodIdentity selects AAD pod identity, which is deprecated upstream: \
                 move to workload identity (clientID)"
                    .into(),
            );
            plan.identity.describe()
        }
        Identity::WorkloadIdentity { .. } => {
            report.notes.push(format!(
                "workload identity: the pod's service account needs a federated credential on this \
                 clientID, and the CSIDriver must request tokens for {AZURE_AUDIENCE}"
            ));
            plan.identity.describe()
        }
        Identity::VmManagedIdentity { .. } => plan.identity.describe(),
        Identity::IdentityBinding { client_id, .. } => {
            report.notes.push(format!(
                "identity binding (useAzureTokenProxy, AKS preview): the cluster needs an identity \
                 binding for the managed identity with client ID {client_id} (az aks \
                 identity-binding create), a ClusterRole allowing verb use-managed-identity on \
                 apiGroup cid.wi.aks.azure.com, resource {client_id}, bound to the pod's service \
                 account, and the CSIDriver must request tokens for {IDENTITY_BINDING_AUDIENCE}; \
                 the provider must reach the token proxy (--token-proxy-url, --sni-name)"
            ));
            plan.identity.describe()
        }
    });
    if plan.cloud.name() == CloudName::AzureStackCloud {
        if cloud_env_file {
            report.notes.push(
                "cloudEnvFileName names a file on the node; it is read at mount time, not checked here"
                    .into(),
            );
        } else if provider_env_file {
            report.notes.push(
                "AzureStackCloud without cloudEnvFileName: the provider must run with \
                 AZURE_ENVIRONMENT_FILEPATH (--azure-environment-filepath) set"
                    .into(),
            );
        }
    } else if cloud_env_file {
        report.warnings.push(format!(
            "cloudEnvFileName is ignored: it is only used with cloudName AzureStackCloud (the cloud is {})",
            plan.cloud.name().as_str()
        ));
    }
    let vaults = plan.vaults();
    if vaults.len() > 1 {
        report.notes.push(format!(
            "objects are read from {} vaults ({}) with the one identity, tenant and cloud of the \
             class: that identity needs read access on each of them",
            vaults.len(),
            vaults.join(", ")
        ));
    }
    for spec in &plan.objects {
        if spec.has_history() {
            let (what, role) = match spec.object_type {
                ObjectType::Secret => ("secret", "Key Vault Secrets User"),
                ObjectType::Key => ("key", "Key Vault Crypto User"),
                ObjectType::Cert => ("certificate", "Key Vault Certificate User"),
            };
            report.notes.push(format!(
                "{}: objectVersionHistory {} lists the object's versions, which needs list permission \
                 besides get (RBAC: {role} includes it; access policy: --{what}-permissions get list)",
                spec.label(),
                spec.history
            ));
        }
        let version = spec.version.clone().unwrap_or_else(|| "latest".into());
        for (i, path) in spec.paths().into_iter().enumerate() {
            report.files.push(FileEntry {
                path,
                mode: format!("{:04o}", spec.mode),
                object_index: spec.index,
                object_type: spec.object_type.as_str().to_owned(),
                object_name: spec.name.clone(),
                version: version.clone(),
                history_index: spec.has_history().then_some(i),
                format: match spec.format {
                    ObjectFormat::Pem => "pem",
                    ObjectFormat::Pfx => "pfx",
                }
                .to_owned(),
                encoding: match spec.encoding {
                    ObjectEncoding::Utf8 => "utf-8",
                    ObjectEncoding::Hex => "hex",
                    ObjectEncoding::Base64 => "base64",
                }
                .to_owned(),
                json_pointer: spec.json_pointer.clone(),
                part: spec.part.map(|p| p.as_str().to_owned()),
                optional: spec.optional,
                vault: plan.vault_of(spec).to_owned(),
            });
        }
    }
}

/// The driver syncs `secretObjects[].data[].objectName` from the mounted file of that path: a
/// name that matches no file makes the sync fail at mount time.
fn check_secret_objects(secret_objects: Option<&Value>, report: &mut SpcReport) {
    let Some(Value::Array(entries)) = secret_objects else {
        if secret_objects.is_some_and(|v| !v.is_null()) {
            report
                .problems
                .push("spec.secretObjects must be a list".into());
        }
        return;
    };
    let paths: BTreeSet<&str> = report.files.iter().map(|f| f.path.as_str()).collect();
    let mut warnings = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let secret = entry
            .get("secretName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let label = if secret.is_empty() {
            format!("secretObjects[{i}]")
        } else {
            format!("secretObjects[{i}] (secretName {secret:?})")
        };
        let data = entry.get("data").and_then(Value::as_array);
        for (j, item) in data.into_iter().flatten().enumerate() {
            let object = item.get("objectName").and_then(Value::as_str).unwrap_or("");
            if !paths.contains(object) {
                warnings.push(format!(
                    "{label} data[{j}]: objectName {object:?} matches no file this class writes \
                     (objectName here means the file name, i.e. the objectAlias): {}",
                    paths.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    report.warnings.extend(warnings);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::find_spcs;

    const OBJECTS: &str = "array:\n  - |\n    objectName: pass\n    objectType: secret\n";

    fn check(params: Value, extra_spec: &str) -> SpcReport {
        let text = format!(
            "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\n\
             metadata: {{name: c, namespace: ns}}\nspec:\n  provider: azure\n  parameters: {params}\n{extra_spec}"
        );
        let found = find_spcs(&text).unwrap();
        check_spc(&found[0], "t.yaml", &PlanDefaults::default())
    }

    fn base() -> serde_json::Map<String, Value> {
        serde_json::json!({"keyvaultName": "kv1", "tenantID": "t", "objects": OBJECTS})
            .as_object()
            .cloned()
            .unwrap()
    }

    fn with(pairs: Value) -> Value {
        let mut map = base();
        map.extend(pairs.as_object().cloned().unwrap());
        Value::Object(map)
    }

    #[test]
    fn service_principal_is_valid_with_a_note() {
        let r = check(with(serde_json::json!({})), "");
        assert!(r.valid, "{:?}", r.problems);
        assert_eq!(
            r.identity.as_deref(),
            Some("service principal (nodePublishSecretRef)")
        );
        assert!(r.notes[0].contains("nodePublishSecretRef"), "{:?}", r.notes);
        assert_eq!(r.files.len(), 1);
        assert_eq!(
            (r.files[0].path.as_str(), r.files[0].mode.as_str()),
            ("pass", "0644")
        );
    }

    #[test]
    fn non_string_parameters_are_problems() {
        let r = check(
            with(serde_json::json!({"useVMManagedIdentity": true, "x": [1]})),
            "",
        );
        assert!(!r.valid);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(
            r.problems.iter().any(|p| p.contains(
                "parameter useVMManagedIdentity is a boolean, but Kubernetes accepts only strings"
            ) && p.contains(r#"useVMManagedIdentity: "true""#)),
            "{:?}",
            r.problems
        );
        assert!(r.files.is_empty());
    }

    #[test]
    fn warnings_for_valid_but_suspicious_settings() {
        let r = check(
            with(
                serde_json::json!({"usePodIdentity": "true", "tenantId": "t2",
                                    "cloudEnvFileName": "/etc/env.json"}),
            ),
            "  secretObjects:\n    - secretName: s\n      data:\n        - {objectName: pass, key: a}\n        - {objectName: nope, key: b}\n",
        );
        assert!(r.valid, "{:?}", r.problems);
        let all = r.warnings.join("\n");
        assert!(all.contains("deprecated upstream"), "{all}");
        assert!(all.contains("tenantId is ignored"), "{all}");
        assert!(all.contains("cloudEnvFileName is ignored"), "{all}");
        assert!(
            all.contains(
                r#"secretObjects[0] (secretName "s") data[1]: objectName "nope" matches no file"#
            ),
            "{all}"
        );
        assert!(!all.contains(r#"objectName "pass""#), "{all}");
    }

    #[test]
    fn azure_stack_and_history_are_noted() {
        let objects =
            "array:\n  - |\n    objectName: c\n    objectType: cert\n    objectVersionHistory: 2\n";
        let r = check(
            with(
                serde_json::json!({"cloudName": "AzureStackCloud", "objects": objects,
                                    "useVMManagedIdentity": "true"}),
            ),
            "",
        );
        assert!(r.valid, "{:?}", r.problems);
        let notes = r.notes.join("\n");
        assert!(notes.contains("AZURE_ENVIRONMENT_FILEPATH"), "{notes}");
        assert!(
            notes.contains("--certificate-permissions get list"),
            "{notes}"
        );
        let paths: Vec<_> = r
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.history_index))
            .collect();
        assert_eq!(paths, [("c/0", Some(0)), ("c/1", Some(1))]);
    }

    #[test]
    fn header_problems() {
        let text =
            "apiVersion: example.com/v1\nkind: SecretProviderClass\nspec:\n  provider: Azure\n";
        let found = find_spcs(text).unwrap();
        let r = check_spc(&found[0], "t.yaml", &PlanDefaults::default());
        let all = r.problems.join("\n");
        assert!(all.contains(r#"apiVersion "example.com/v1""#), "{all}");
        assert!(all.contains("metadata.name is required"), "{all}");
        assert!(all.contains("must be spelled azure"), "{all}");
        assert!(all.contains("parameter keyvaultName is required"), "{all}");
    }
}
