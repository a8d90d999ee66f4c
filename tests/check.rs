//! `akv-csi-provider check` as authors and CI run it: the real binary over fixture manifests.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_akv-csi-provider");
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/check");

fn fixture(name: &str) -> String {
    format!("{DIR}/{name}")
}

/// Runs `check` with `args`, feeding `stdin`; returns (exit code, stdout, stderr).
fn check(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("check")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    (
        status.code().unwrap(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

fn check_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let (code, out, _) = check(&all, "");
    (code, serde_json::from_str(&out).expect(&out))
}

fn has_line(text: &str, want: &str) -> bool {
    text.lines().any(|l| l.trim() == want)
}

#[test]
fn valid_manifest_lists_the_files_of_each_class() {
    let path = fixture("valid.yaml");
    let (code, out, err) = check(&[&path], "");
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        format!("{path}: document 2 (line 15): SecretProviderClass app/web-secrets: valid"),
        "vault my-vault (AzurePublicCloud), workload identity (clientID 00000000-0000-0000-0000-000000000002)".into(),
        "PATH         MODE  OBJECT              VERSION                           FORMAT".into(),
        "db-password  0644  secret/db-password  latest                            pem".into(),
        "tls.pfx      0400  secret/tls-cert     latest                            pfx, base64".into(),
        "signing-key  0644  key/signing-key     0123456789abcdef0123456789abcdef  pem".into(),
        format!("{path}: document 3 (line 49): SecretProviderClass legacy: valid"),
        "api-cert  0644  cert/api-cert  latest   pem".into(),
        "2 SecretProviderClasses checked: 2 valid, 0 invalid".into(),
    ] {
        assert!(has_line(&out, &want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains("Deployment"), "{out}");
    assert!(!out.contains("warning:"), "{out}");
}

#[test]
fn valid_manifest_as_json() {
    let (code, json) = check_json(&[&fixture("valid.yaml")]);
    assert_eq!(code, 0);
    let docs = json["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    let web = &docs[0];
    assert_eq!(web["valid"], true);
    assert_eq!(web["api_version"], "secrets-store.csi.x-k8s.io/v1");
    assert_eq!(
        (web["namespace"].as_str(), web["name"].as_str()),
        (Some("app"), Some("web-secrets"))
    );
    assert_eq!(web["problems"], Value::Array(vec![]));
    let files = web["files"].as_array().unwrap();
    let pfx = &files[1];
    assert_eq!(pfx["path"], "tls.pfx");
    assert_eq!(pfx["mode"], "0400");
    assert_eq!(pfx["object_type"], "secret");
    assert_eq!(pfx["object_name"], "tls-cert");
    assert_eq!(pfx["format"], "pfx");
    assert_eq!(pfx["encoding"], "base64");
    assert_eq!(files[2]["version"], "0123456789abcdef0123456789abcdef");
    assert_eq!(
        docs[1]["api_version"],
        "secrets-store.csi.x-k8s.io/v1alpha1"
    );
    assert_eq!(docs[1]["cloud"], "AzureUSGovernmentCloud");
    assert_eq!(json["unreadable"], Value::Array(vec![]));
}

#[test]
fn every_problem_is_reported_with_its_document_and_object() {
    let path = fixture("invalid.yaml");
    let (code, out, _) = check(&[&path], "");
    assert_eq!(code, 1, "{out}");
    for want in [
        format!("{path}: document 1 (line 2): SecretProviderClass app/typo: invalid"),
        r#"problem: objects[0] (objectName "db-password"): objectType "secrets" is not one of secret, key, cert"#.into(),
        r#"problem: objects[1] (objectName "api-key"): objectAlias "../../etc/passwd" must not contain a .. path element (files stay inside the volume)"#.into(),
        format!("{path}: document 2 (line 23): SecretProviderClass app/duplicate: invalid"),
        r#"problem: parameter useVMManagedIdentity is a boolean, but Kubernetes accepts only strings in spec.parameters: quote it (useVMManagedIdentity: "true")"#.into(),
        "problem: parameter keyvaultName is required: the name of the Key Vault (e.g. my-vault for https://my-vault.vault.azure.net)".into(),
        r#"problem: objects[1] (objectName "two"): writes "app.conf", which objects[0] (objectName "one") already writes: give one of them a different objectAlias"#.into(),
        "2 SecretProviderClasses checked: 0 valid, 2 invalid".into(),
    ] {
        assert!(has_line(&out, &want), "missing {want:?} in\n{out}");
    }
    // An invalid class lists no files.
    assert!(!out.contains("PATH"), "{out}");

    let (code, json) = check_json(&[&path]);
    assert_eq!(code, 1);
    let docs = json["documents"].as_array().unwrap();
    assert_eq!(docs[0]["valid"], false);
    assert_eq!(docs[0]["problems"].as_array().unwrap().len(), 2);
    assert_eq!(docs[1]["problems"].as_array().unwrap().len(), 3);
    assert_eq!(docs[1]["files"], Value::Array(vec![]));
}

#[test]
fn warnings_and_notes_keep_a_class_valid() {
    let (code, out, _) = check(&[&fixture("warnings.yaml")], "");
    assert_eq!(code, 0, "{out}");
    for want in [
        "warning: usePodIdentity selects AAD pod identity, which is deprecated upstream: move to workload identity (clientID)",
        r#"warning: secretObjects[0] (secretName "app-secrets") data[1]: objectName "db-pasword" matches no file this class writes (objectName here means the file name, i.e. the objectAlias): db-password, signing-cert/0, signing-cert/1, signing-cert/2"#,
        r#"note: objects[1] (objectName "signing-cert"): objectVersionHistory 3 lists the object's versions, which needs list permission besides get (RBAC: Key Vault Certificate User includes it; access policy: --certificate-permissions get list)"#,
        "signing-cert/2  0644  cert/signing-cert   latest~2  pem",
    ] {
        assert!(has_line(&out, want), "missing {want:?} in\n{out}");
    }
    assert!(
        !out.contains(r#"objectName "db-password" matches"#),
        "{out}"
    );
    let (_, json) = check_json(&[&fixture("warnings.yaml")]);
    assert_eq!(
        json["documents"][0]["warnings"].as_array().unwrap().len(),
        2
    );
    assert_eq!(json["documents"][0]["files"][3]["history_index"], 2);
}

#[test]
fn aliases_the_driver_writer_refuses_are_problems() {
    let spc = "\
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: reserved, namespace: app}
spec:
  provider: azure
  parameters:
    keyvaultName: my-vault
    tenantID: 00000000-0000-0000-0000-000000000001
    clientID: 00000000-0000-0000-0000-000000000002
    objects: |
      array:
        - |
          objectName: one
          objectType: secret
          objectAlias: ..data
        - |
          objectName: two
          objectType: secret
          objectAlias: ..x/y
        - |
          objectName: three
          objectType: secret
          objectAlias: '.'
        - |
          objectName: four
          objectType: secret
          objectAlias: a/..data
";
    let (code, out, err) = check(&["-"], spc);
    assert_eq!(code, 1, "{out}{err}");
    let reserved = "must not start with \"..\": the Secrets Store CSI Driver's atomic writer keeps its own ..data link and ..<timestamp> directories there and refuses such paths";
    for want in [
        "<stdin>: document 1 (line 1): SecretProviderClass app/reserved: invalid".to_owned(),
        format!(r#"problem: objects[0] (objectName "one"): objectAlias "..data" {reserved}"#),
        format!(r#"problem: objects[1] (objectName "two"): objectAlias "..x/y" {reserved}"#),
        r#"problem: objects[2] (objectName "three"): objectAlias "." must not be ".", the volume's own directory: the Secrets Store CSI Driver cannot write a file there"#.to_owned(),
    ] {
        assert!(has_line(&out, &want), "missing {want:?} in\n{out}");
    }
    // `a/..data` is a path the driver writes: not a problem.
    assert!(!out.contains("objects[3]"), "{out}");
}

#[test]
fn standard_input_and_the_service_principal_note() {
    let spc = "\
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: sp}
spec:
  provider: azure
  parameters:
    keyvaultName: my-vault
    tenantID: contoso.onmicrosoft.com
    objects: |
      array:
        - |
          objectName: db
          objectType: secret
          jsonPointer: /password
";
    let (code, out, err) = check(&["-"], spc);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        has_line(
            &out,
            "<stdin>: document 1 (line 1): SecretProviderClass sp: valid"
        ),
        "{out}"
    );
    assert!(
        has_line(
            &out,
            "vault my-vault (AzurePublicCloud), service principal (nodePublishSecretRef)"
        ),
        "{out}"
    );
    assert!(
        has_line(
            &out,
            "db    0644  secret/db  latest   pem, jsonPointer /password"
        ),
        "{out}"
    );
    assert!(out.contains("note: no clientID, useVMManagedIdentity or usePodIdentity: the service principal comes from the pod's volume nodePublishSecretRef"), "{out}");
    assert!(!out.contains("no identity selected"), "{out}");
}

#[test]
fn identity_binding_is_understood_with_what_the_cluster_must_provide() {
    let spc = |extra: &str| {
        format!(
            "\
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {{name: ib, namespace: apps}}
spec:
  provider: azure
  parameters:
    keyvaultName: my-vault
    tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47
    useAzureTokenProxy: \"true\"
{extra}    objects: |
      array:
        - |
          objectName: db
          objectType: secret
"
        )
    };
    let (code, out, err) = check(
        &["-"],
        &spc("    clientID: 5b0f3c1e-8d2a-4e6f-9a7b-1c3d5e7f9a0b\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        has_line(
            &out,
            "vault my-vault (AzurePublicCloud), identity binding (clientID 5b0f3c1e-8d2a-4e6f-9a7b-1c3d5e7f9a0b)"
        ),
        "{out}"
    );
    for needle in [
        "az aks identity-binding create",
        "use-managed-identity",
        "cid.wi.aks.azure.com",
        "api://AKSIdentityBinding",
        "--sni-name",
    ] {
        assert!(out.contains(needle), "{out} lacks {needle}");
    }
    // Without clientID, and with a second mode: invalid, each with its fix.
    let (code, out, _) = check(&["-"], &spc(""));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("clientID is required"), "{out}");
    let (code, out, _) = check(
        &["-"],
        &spc("    clientID: x\n    useVMManagedIdentity: \"true\"\n"),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("only one identity mode can be enabled at a time"),
        "{out}"
    );
}

#[test]
fn files_without_an_azure_class_pass_with_a_note() {
    let path = fixture("no-azure.yaml");
    let (code, out, _) = check(&[&path], "");
    assert_eq!(code, 0, "{out}");
    assert!(
        has_line(
            &out,
            &format!(
                "{path}: document 1 (line 1): SecretProviderClass vault-class: skipped (provider vault)"
            )
        ),
        "{out}"
    );
    assert!(
        has_line(
            &out,
            &format!("{path}: no SecretProviderClass with provider: azure found")
        ),
        "{out}"
    );
    let (code, json) = check_json(&[&path]);
    assert_eq!(code, 0);
    assert_eq!(json["without_azure_class"][0], path.as_str());
    assert_eq!(json["skipped"][0]["provider"], "vault");
}

#[test]
fn unreadable_input_exits_2_and_still_checks_the_rest() {
    let bad = fixture("not-yaml.yaml");
    let (code, out, err) = check(&[&bad, &fixture("invalid.yaml")], "");
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!("error: {bad}: not valid YAML: line 3 column 18")),
        "{err}"
    );
    assert!(
        out.contains("SecretProviderClass app/typo: invalid"),
        "{out}"
    );
    assert!(
        out.ends_with(
            "2 SecretProviderClasses checked: 0 valid, 2 invalid, 1 input(s) unreadable\n"
        ),
        "{out}"
    );

    let missing = fixture("does-not-exist.yaml");
    let (code, out, err) = check(&[&missing], "");
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains(&format!("error: {missing}: No such file")),
        "{err}"
    );

    let (code, json) = check_json(&[&missing, &fixture("valid.yaml")]);
    assert_eq!(code, 2);
    assert_eq!(json["unreadable"][0]["source"], missing.as_str());
    assert_eq!(json["documents"].as_array().unwrap().len(), 2);

    let (code, _, err) = check(&["-"], "kind: [");
    assert_eq!(code, 2);
    assert!(err.contains("error: <stdin>: not valid YAML"), "{err}");
}

#[test]
fn check_needs_a_file() {
    let (code, _, err) = check(&[], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("FILE"), "{err}");
}

#[test]
fn object_parts_and_vaults_are_listed_per_file() {
    let yaml = r#"apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: tls, namespace: web}
spec:
  provider: azure
  parameters:
    keyvaultName: app-vault
    tenantID: t
    clientID: 00000000-0000-0000-0000-000000000001
    objects: |
      array:
        - |
          objectName: db-password
          objectType: secret
        - |
          objectName: wildcard
          objectType: secret
          keyvaultName: shared-certs
          objectPart: key
          objectAlias: tls.key
        - |
          objectName: wildcard
          objectType: secret
          keyvaultName: shared-certs
          objectPart: chain
          objectAlias: tls.crt
"#;
    let (code, out, err) = check(&["-"], yaml);
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "vault app-vault (AzurePublicCloud), workload identity (clientID 00000000-0000-0000-0000-000000000001)",
        "PATH         MODE  VAULT         OBJECT              VERSION  FORMAT",
        "db-password  0644  app-vault     secret/db-password  latest   pem",
        "tls.key      0644  shared-certs  secret/wildcard     latest   pem, objectPart key",
        "tls.crt      0644  shared-certs  secret/wildcard     latest   pem, objectPart chain",
        "note: objects are read from 2 vaults (app-vault, shared-certs) with the one identity, tenant and cloud of the class: that identity needs read access on each of them",
    ] {
        assert!(has_line(&out, want), "{want:?} not in\n{out}");
    }
    let mut child = Command::new(BIN)
        .args(["check", "--output", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let json: Value = serde_json::from_slice(&child.wait_with_output().unwrap().stdout).unwrap();
    let files = &json["documents"][0]["files"];
    assert_eq!(files[0]["vault"], "app-vault");
    assert!(files[0].get("part").is_none(), "{files}");
    assert_eq!(files[1]["vault"], "shared-certs");
    assert_eq!(files[1]["part"], "key");
    assert_eq!(files[2]["part"], "chain");
}
