//! One table row per SecretProviderClass rule of SPEC §3: valid spellings produce the expected
//! plan, violations produce an INVALID_ARGUMENT-class error that names the key or object.

use std::collections::BTreeMap;
use std::path::PathBuf;

use akv_csi_provider::cloud::CloudName;
use akv_csi_provider::spc::params::{self, PlanDefaults};
use akv_csi_provider::spc::plan::{
    CloudSelection, Identity, MountPlan, ObjectEncoding, ObjectFormat, ObjectType,
};
use akv_csi_provider::spc::request::{Attributes, Secrets};
use akv_csi_provider::spc::{RawRequest, plan_request};
use secrecy::ExposeSecret;

const TOKENS: &str = r#"{"api://AzureADTokenExchange":{"token":"eyJ.test.jwt","expirationTimestamp":"2026-11-22T17:18:32Z"}}"#;

fn object(fields: &str) -> String {
    // An `array` item is a YAML string holding a YAML mapping.
    let indented: String = fields.lines().map(|l| format!("    {l}\n")).collect();
    format!("  - |\n{indented}")
}

fn objects(items: &[&str]) -> String {
    let mut s = String::from("array:\n");
    for item in items {
        s.push_str(&object(item));
    }
    s
}

/// A valid workload-identity SecretProviderClass as kubelet would pass it.
fn base() -> BTreeMap<String, String> {
    [
        ("keyvaultName", "kv-demo"),
        ("tenantID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ("clientID", "0d4c8f3e-5b7a-4c1e-9f2d-3a6b8c1d2e4f"),
        ("csi.storage.k8s.io/pod.name", "app-0"),
        ("csi.storage.k8s.io/pod.namespace", "default"),
        ("csi.storage.k8s.io/serviceAccount.tokens", TOKENS),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain([(
        "objects".to_owned(),
        objects(&["objectName: secret1\nobjectType: secret"]),
    )])
    .collect()
}

fn with(
    mut attrs: BTreeMap<String, String>,
    changes: &[(&str, Option<&str>)],
) -> BTreeMap<String, String> {
    for (k, v) in changes {
        match v {
            Some(v) => attrs.insert((*k).to_owned(), (*v).to_owned()),
            None => attrs.remove(*k),
        };
    }
    attrs
}

fn with_objects(items: &[&str]) -> BTreeMap<String, String> {
    with(base(), &[("objects", Some(&objects(items)))])
}

fn plan_with(
    attrs: &BTreeMap<String, String>,
    secrets: &[(&str, &str)],
    defaults: &PlanDefaults,
) -> Result<MountPlan, String> {
    let attributes = Attributes::from_pairs(attrs.clone());
    let secrets = Secrets::from_pairs(secrets.iter().copied());
    params::parse(&attributes, &secrets, 0o644, defaults).map_err(|e| e.to_string())
}

fn plan(attrs: &BTreeMap<String, String>) -> MountPlan {
    plan_with(attrs, &[], &PlanDefaults::default())
        .unwrap_or_else(|e| panic!("expected a valid plan, got: {e}"))
}

fn rejects(attrs: &BTreeMap<String, String>, secrets: &[(&str, &str)], needles: &[&str]) {
    match plan_with(attrs, secrets, &PlanDefaults::default()) {
        Ok(_) => panic!("expected {needles:?} to be rejected"),
        Err(message) => {
            for needle in needles {
                assert!(
                    message.contains(needle),
                    "message {message:?} lacks {needle:?}"
                );
            }
            assert!(!message.contains("eyJ.test.jwt"), "token leaked: {message}");
        }
    }
}

#[test]
fn a_minimal_workload_identity_plan() {
    let p = plan(&base());
    assert_eq!(p.vault_name, "kv-demo");
    assert_eq!(p.tenant_id, "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_eq!(
        p.cloud,
        CloudSelection::WellKnown(CloudName::AzurePublicCloud)
    );
    assert_eq!(p.pod.name, "app-0");
    assert_eq!(p.pod.namespace, "default");
    match &p.identity {
        Identity::WorkloadIdentity { client_id, token } => {
            assert_eq!(client_id, "0d4c8f3e-5b7a-4c1e-9f2d-3a6b8c1d2e4f");
            assert_eq!(token.jwt.expose_secret(), "eyJ.test.jwt");
            assert!(token.expires_at.is_some());
        }
        other => panic!("{other:?}"),
    }
    let o = &p.objects[0];
    assert_eq!(
        (o.index, o.name.as_str(), o.alias.as_str()),
        (0, "secret1", "secret1")
    );
    assert_eq!(o.object_type, ObjectType::Secret);
    assert_eq!(
        (o.format, o.encoding),
        (ObjectFormat::Pem, ObjectEncoding::Utf8)
    );
    assert_eq!(
        (o.version.clone(), o.history, o.mode, o.optional),
        (None, 1, 0o644, false)
    );
    assert_eq!(o.json_pointer, None);
    assert_eq!(o.version_id(None), "secret/secret1");
    assert!(format!("{p:?}").contains("secret1") && !format!("{p:?}").contains("eyJ.test.jwt"));
}

#[test]
fn values_are_trimmed_and_tenant_alias_works() {
    let p = plan(&with(
        base(),
        &[
            ("keyvaultName", Some("  kv-demo \n")),
            ("tenantID", None),
            ("tenantId", Some(" t1 ")),
        ],
    ));
    assert_eq!(
        (p.vault_name.as_str(), p.tenant_id.as_str()),
        ("kv-demo", "t1")
    );
    // tenantID wins over the deprecated tenantId.
    let p = plan(&with(
        base(),
        &[("tenantID", Some("new")), ("tenantId", Some("old"))],
    ));
    assert_eq!(p.tenant_id, "new");
    // An empty tenantID falls back to tenantId.
    let p = plan(&with(
        base(),
        &[("tenantID", Some(" ")), ("tenantId", Some("old"))],
    ));
    assert_eq!(p.tenant_id, "old");
    assert_eq!(
        plan(&with(base(), &[("tenantID", Some("adfs"))])).tenant_id,
        "adfs"
    );
}

#[test]
fn unknown_keys_are_ignored() {
    plan(&with(
        base(),
        &[
            ("somethingElse", Some("x")),
            ("csi.storage.k8s.io/ephemeral", Some("true")),
        ],
    ));
}

#[test]
fn cloud_names() {
    for (given, want) in [
        ("AzurePublicCloud", CloudName::AzurePublicCloud),
        ("azureusgovernmentcloud", CloudName::AzureUSGovernmentCloud),
        ("AZURECHINACLOUD", CloudName::AzureChinaCloud),
        (" AzureGermanCloud ", CloudName::AzureGermanCloud),
    ] {
        assert_eq!(
            plan(&with(base(), &[("cloudName", Some(given))])).cloud,
            CloudSelection::WellKnown(want),
            "{given}"
        );
    }
    // Absent or empty → the process default.
    let defaults = PlanDefaults {
        cloud: CloudName::AzureChinaCloud,
        environment_file: None,
    };
    for attrs in [base(), with(base(), &[("cloudName", Some(""))])] {
        let p = plan_with(&attrs, &[], &defaults).unwrap();
        assert_eq!(
            p.cloud,
            CloudSelection::WellKnown(CloudName::AzureChinaCloud)
        );
    }
    for bad in ["AzureCloud", "public", "AzurePublicCloud2"] {
        rejects(
            &with(base(), &[("cloudName", Some(bad))]),
            &[],
            &["cloudName", bad, "AzurePublicCloud"],
        );
    }
}

#[test]
fn azure_stack_needs_an_environment_file() {
    let p = plan(&with(
        base(),
        &[
            ("cloudName", Some("AzureStackCloud")),
            (
                "cloudEnvFileName",
                Some("/etc/kubernetes/azurestackcloud.json"),
            ),
        ],
    ));
    assert_eq!(
        p.cloud,
        CloudSelection::Stack {
            env_file: PathBuf::from("/etc/kubernetes/azurestackcloud.json")
        }
    );
    let defaults = PlanDefaults {
        cloud: CloudName::AzurePublicCloud,
        environment_file: Some("/env.json".into()),
    };
    let p = plan_with(
        &with(base(), &[("cloudName", Some("azurestackcloud"))]),
        &[],
        &defaults,
    )
    .unwrap();
    assert_eq!(
        p.cloud,
        CloudSelection::Stack {
            env_file: PathBuf::from("/env.json")
        }
    );
    rejects(
        &with(base(), &[("cloudName", Some("AzureStackCloud"))]),
        &[],
        &["cloudEnvFileName", "AZURE_ENVIRONMENT_FILEPATH"],
    );
    // The process default can be Azure Stack too.
    let defaults = PlanDefaults {
        cloud: CloudName::AzureStackCloud,
        environment_file: None,
    };
    assert!(
        plan_with(&base(), &[], &defaults)
            .unwrap_err()
            .contains("cloudEnvFileName")
    );
}

#[test]
fn required_parameters() {
    for (key, needle) in [
        ("keyvaultName", "keyvaultName is required"),
        ("tenantID", "tenantID is required"),
        ("objects", "objects is required"),
        ("csi.storage.k8s.io/pod.name", "pod.name is required"),
        (
            "csi.storage.k8s.io/pod.namespace",
            "pod.namespace is required",
        ),
    ] {
        rejects(&with(base(), &[(key, None)]), &[], &[needle]);
        rejects(&with(base(), &[(key, Some("  "))]), &[], &[needle]);
    }
}

#[test]
fn vault_and_tenant_names() {
    for good in ["abc", "kv-demo-01", "ABCDEFGHIJKLMNOPQRSTUVWX"] {
        plan(&with(base(), &[("keyvaultName", Some(good))]));
    }
    for bad in [
        "ab",
        "ABCDEFGHIJKLMNOPQRSTUVWXY",
        "kv_demo",
        "https://kv.vault.azure.net",
        "kv.demo",
        "kv demo",
    ] {
        rejects(
            &with(base(), &[("keyvaultName", Some(bad))]),
            &[],
            &["keyvaultName", "3-24"],
        );
    }
    for bad in ["../x", "a/b", "t?x=1", "t#", "a b"] {
        rejects(
            &with(base(), &[("tenantID", Some(bad))]),
            &[],
            &["tenantID", "not a tenant ID"],
        );
    }
}

#[test]
fn identity_modes() {
    // Pod identity, every ParseBool spelling of true.
    for t in ["true", "True", "TRUE", "1", "t", "T"] {
        let p = plan(&with(
            base(),
            &[("clientID", None), ("usePodIdentity", Some(t))],
        ));
        assert!(matches!(p.identity, Identity::PodIdentity), "{t}");
    }
    // VM managed identity, system- and user-assigned.
    let p = plan(&with(
        base(),
        &[("clientID", None), ("useVMManagedIdentity", Some("true"))],
    ));
    assert!(matches!(
        p.identity,
        Identity::VmManagedIdentity {
            user_assigned_client_id: None
        }
    ));
    let p = plan(&with(
        base(),
        &[
            ("clientID", None),
            ("useVMManagedIdentity", Some("true")),
            ("userAssignedIdentityID", Some("uai")),
        ],
    ));
    assert!(
        matches!(p.identity, Identity::VmManagedIdentity { user_assigned_client_id: Some(ref id) } if id == "uai")
    );
    // False spellings leave workload identity in charge.
    for f in ["false", "0", "F", ""] {
        let p = plan(&with(
            base(),
            &[
                ("usePodIdentity", Some(f)),
                ("useVMManagedIdentity", Some(f)),
            ],
        ));
        assert!(
            matches!(p.identity, Identity::WorkloadIdentity { .. }),
            "{f}"
        );
    }
    // Service principal, keys case-insensitive.
    let sp = with(
        base(),
        &[
            ("clientID", None),
            ("csi.storage.k8s.io/serviceAccount.tokens", None),
        ],
    );
    let p = plan_with(
        &sp,
        &[("ClientID", "app-id"), ("CLIENTSECRET", "s3cret-value")],
        &PlanDefaults::default(),
    )
    .unwrap();
    match &p.identity {
        Identity::ServicePrincipal {
            client_id,
            client_secret,
        } => {
            assert_eq!(client_id, "app-id");
            assert_eq!(client_secret.expose_secret(), "s3cret-value");
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{p:?}").contains("s3cret-value"));
    assert!(p.identity.describe().contains("app-id") && !p.identity.describe().contains("s3cret"));
}

#[test]
fn identity_rules() {
    let no_wi = || with(base(), &[("clientID", None)]);
    rejects(
        &with(
            no_wi(),
            &[
                ("usePodIdentity", Some("true")),
                ("useVMManagedIdentity", Some("true")),
            ],
        ),
        &[],
        &["usePodIdentity", "useVMManagedIdentity", "choose one"],
    );
    rejects(
        &with(base(), &[("useVMManagedIdentity", Some("true"))]),
        &[],
        &["clientID", "useVMManagedIdentity", "choose one"],
    );
    rejects(
        &with(base(), &[("usePodIdentity", Some("true"))]),
        &[],
        &["clientID", "usePodIdentity"],
    );
    rejects(
        &with(base(), &[("usePodIdentity", Some("yes"))]),
        &[],
        &["usePodIdentity", "\"yes\" is not true or false"],
    );
    rejects(
        &with(base(), &[("useVMManagedIdentity", Some("on"))]),
        &[],
        &["useVMManagedIdentity"],
    );
    // clientID always demands the token, with the CSIDriver fix in the message.
    rejects(
        &with(
            base(),
            &[("csi.storage.k8s.io/serviceAccount.tokens", None)],
        ),
        &[],
        &["api://AzureADTokenExchange", "tokenRequests", "CSIDriver"],
    );
    rejects(
        &with(
            base(),
            &[(
                "csi.storage.k8s.io/serviceAccount.tokens",
                Some(r#"{"other":{"token":"x"}}"#),
            )],
        ),
        &[],
        &["tokenRequests"],
    );
    rejects(
        &with(
            base(),
            &[(
                "csi.storage.k8s.io/serviceAccount.tokens",
                Some("{not json"),
            )],
        ),
        &[],
        &["serviceAccount.tokens", "line 1"],
    );
    rejects(
        &with(base(), &[("clientID", Some("has space"))]),
        &[],
        &["clientID"],
    );
    // No identity at all.
    let bare = with(
        no_wi(),
        &[("csi.storage.k8s.io/serviceAccount.tokens", None)],
    );
    rejects(
        &bare,
        &[],
        &["no identity selected", "clientID", "nodePublishSecretRef"],
    );
    rejects(
        &bare,
        &[("clientid", "app-id")],
        &["clientid and clientsecret"],
    );
    rejects(
        &bare,
        &[("clientsecret", "s3cret-value")],
        &["clientid and clientsecret"],
    );
    rejects(
        &bare,
        &[("clientid", "app"), ("clientsecret", " ")],
        &["non-empty"],
    );
}

#[test]
fn token_map_is_looked_up_in_secrets_first() {
    let attrs = with(
        base(),
        &[("csi.storage.k8s.io/serviceAccount.tokens", None)],
    );
    let secrets = [("csi.storage.k8s.io/serviceAccount.tokens", TOKENS)];
    let p = plan_with(&attrs, &secrets, &PlanDefaults::default()).unwrap();
    assert!(matches!(p.identity, Identity::WorkloadIdentity { .. }));
}

#[test]
fn object_fields() {
    let p = plan(&with_objects(&[
        "objectName: s1\nobjectType: SECRET\nobjectVersion: latest",
        "objectName: s2\nobjectType: secret\nobjectVersion: 0123456789abcdef0123456789abcdef\nobjectAlias: dir/s2.txt",
        "objectName: k1\nobjectType: Key\nfilePermission: \"0400\"",
        "objectName: c1\nobjectType: cert\nobjectVersionHistory: 3\nfilePermission: 0640",
        "objectName: pfx\nobjectType: secret\nobjectFormat: PFX\nobjectEncoding: Base64\nobjectAlias: tls.pfx",
        "objectName: hex\nobjectType: secret\nobjectEncoding: HEX\noptional: true",
        "objectName: cfg\nobjectType: secret\njsonPointer: /db/password\nobjectAlias: db-pass\nfilePermission: '400'",
        "objectName: cfg\nobjectType: secret\njsonPointer: /db/user\nobjectAlias: db-user\nobjectVersionHistory: 1",
        "objectName: c2\nobjectType: cert\nobjectFormat: pem\nobjectVersionHistory: 0",
    ]));
    let o = &p.objects;
    assert_eq!(
        (o[0].object_type, o[0].version.as_deref()),
        (ObjectType::Secret, None)
    );
    assert_eq!(
        (o[1].version.as_deref(), o[1].alias.as_str()),
        (Some("0123456789abcdef0123456789abcdef"), "dir/s2.txt")
    );
    assert_eq!((o[2].object_type, o[2].mode), (ObjectType::Key, 0o400));
    assert_eq!((o[3].history, o[3].mode), (3, 0o640));
    assert_eq!(o[3].paths(), ["c1/0", "c1/1", "c1/2"]);
    assert_eq!(o[3].version_id(Some(2)), "cert/c1/2");
    assert_eq!(
        (o[4].format, o[4].encoding),
        (ObjectFormat::Pfx, ObjectEncoding::Base64)
    );
    assert_eq!((o[5].encoding, o[5].optional), (ObjectEncoding::Hex, true));
    assert_eq!(
        (o[6].json_pointer.as_deref(), o[6].mode),
        (Some("/db/password"), 0o400)
    );
    assert_eq!(
        (o[7].history, o[7].paths()),
        (1, vec!["db-user".to_owned()])
    );
    assert_eq!(o[8].history, 1);
    assert!(p.warnings.is_empty());
}

#[test]
fn unknown_object_fields_are_warnings() {
    let p = plan(&with_objects(&[
        "objectName: s1\nobjectType: secret\nobjectalias: x",
    ]));
    assert_eq!(p.objects[0].alias, "s1");
    assert!(
        p.warnings[0].contains("objectalias") && p.warnings[0].contains("objects[0]"),
        "{:?}",
        p.warnings
    );
}

#[test]
fn object_rules() {
    let cases: &[(&str, &[&str])] = &[
        (
            "objectType: secret",
            &["objects[0]", "objectName is required"],
        ),
        (
            "objectName: a_b\nobjectType: secret",
            &["objectName \"a_b\"", "Key Vault object name"],
        ),
        (
            "objectName: db-pass",
            &[
                "objects[0] (objectName \"db-pass\")",
                "objectType is required",
            ],
        ),
        (
            "objectName: db-pass\nobjectType: certificate",
            &["objectType \"certificate\"", "secret, key, cert"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectFormat: der",
            &["objectFormat \"der\""],
        ),
        (
            "objectName: c\nobjectType: cert\nobjectFormat: pfx",
            &["pfx is only supported for objectType secret"],
        ),
        (
            "objectName: c\nobjectType: key\nobjectFormat: PFX",
            &["pfx is only supported for objectType secret"],
        ),
        (
            "objectName: c\nobjectType: cert\nobjectEncoding: base64",
            &["objectEncoding is only supported for objectType secret"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectEncoding: utf16",
            &["objectEncoding \"utf16\""],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectVersion: ../../keys/x",
            &["objectVersion", "version id"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectVersion: 'a?b'",
            &["objectVersion"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectVersionHistory: -1",
            &["objectVersionHistory -1 must not be negative"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectVersionHistory: two",
            &["objectVersionHistory \"two\" is not a whole number"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectVersionHistory: 1.5",
            &["objectVersionHistory"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectVersionHistory: 100000",
            &["at most 1000"],
        ),
        (
            "objectName: c\nobjectType: secret\nfilePermission: \"0800\"",
            &["filePermission \"0800\"", "octal"],
        ),
        (
            "objectName: c\nobjectType: secret\nfilePermission: \"1777\"",
            &["filePermission"],
        ),
        (
            "objectName: c\nobjectType: secret\nfilePermission: rw-r--r--",
            &["filePermission"],
        ),
        (
            "objectName: c\nobjectType: secret\noptional: maybe",
            &["optional \"maybe\""],
        ),
        (
            "objectName: c\nobjectType: secret\njsonPointer: db/password",
            &["jsonPointer", "must start with /"],
        ),
        (
            "objectName: c\nobjectType: secret\njsonPointer: /a~2b",
            &["~0 or ~1"],
        ),
        (
            "objectName: c\nobjectType: key\njsonPointer: /a",
            &["jsonPointer is only supported for objectType secret"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectFormat: pfx\njsonPointer: /a",
            &["cannot be combined with objectFormat pfx"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectAlias: /etc/passwd",
            &["objectAlias \"/etc/passwd\"", "relative"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectAlias: ..",
            &[".. path element"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectAlias: a/../../b",
            &[".. path element"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectAlias: a//b",
            &["empty path elements"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectAlias: a/",
            &["empty path elements"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectAlias: ./a",
            &[". path element"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectAlias: 'a\\b'",
            &["backslash"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectAlias: \"a\\0b\"",
            &["control characters"],
        ),
        (
            "objectName: c\nobjectType: secret\nobjectAlias: [a, b]",
            &["objects[0]", "not a YAML mapping of object fields"],
        ),
        ("just a string", &["objects[0]", "not a YAML mapping"]),
    ];
    for (fields, needles) in cases {
        rejects(&with_objects(&[fields]), &[], needles);
    }
    let long = "x".repeat(256);
    rejects(
        &with_objects(&[&format!(
            "objectName: c\nobjectType: secret\nobjectAlias: {long}"
        )]),
        &[],
        &["longer than 255"],
    );
    let deep = vec!["d"; 2100].join("/");
    rejects(
        &with_objects(&[&format!(
            "objectName: c\nobjectType: secret\nobjectAlias: {deep}"
        )]),
        &[],
        &["longer than 4096"],
    );
}

/// The driver's atomic writer keeps `..data` and `..<timestamp>` in the volume and refuses any
/// path whose first element starts with `..` and is longer than 2; `.` is the volume itself
/// (research/driver.md §1.6). Refused up front, naming the rule.
#[test]
fn aliases_the_driver_writer_refuses() {
    let reserved = "must not start with \"..\": the Secrets Store CSI Driver's atomic writer";
    let volume = "must not be \".\", the volume's own directory";
    let cases: &[(&str, &str)] = &[
        ("..data", reserved),
        ("..data/tls.crt", reserved),
        ("..x/y", reserved),
        ("'...'", reserved),
        ("..2026_01_01_00_00_00.123", reserved),
        ("'.'", volume),
        (".", volume),
    ];
    for (alias, rule) in cases {
        let fields = format!("objectName: c\nobjectType: secret\nobjectAlias: {alias}");
        rejects(
            &with_objects(&[&fields]),
            &[],
            &["objects[0] (objectName \"c\"): objectAlias", rule],
        );
        // With history the alias is a directory; the rule is the same.
        let fields = format!("{fields}\nobjectVersionHistory: 2");
        rejects(&with_objects(&[&fields]), &[], &[rule]);
    }
    // `..` alone, and `..` later in the path, keep their own rule.
    rejects(
        &with_objects(&["objectName: c\nobjectType: secret\nobjectAlias: .."]),
        &[],
        &[".. path element"],
    );
    // What the driver accepts stays accepted: a single leading dot, `..` inside a name or past
    // the first element.
    for alias in [".data", ".hidden/x", "a..b", "a/..data", "dir/...", "x.."] {
        let p = plan(&with_objects(&[&format!(
            "objectName: c\nobjectType: secret\nobjectAlias: '{alias}'"
        )]));
        assert_eq!(p.objects[0].alias, alias);
    }
}

#[test]
fn every_problem_is_reported_with_its_object() {
    let message = plan_with(
        &with_objects(&[
            "objectName: ok\nobjectType: secret",
            "objectName: db-pass\nobjectType: sekret",
            "objectName: c\nobjectType: cert\nobjectFormat: pfx",
        ]),
        &[],
        &PlanDefaults::default(),
    )
    .unwrap_err();
    assert!(
        message.starts_with("invalid SecretProviderClass: "),
        "{message}"
    );
    assert!(
        message.contains("objects[1] (objectName \"db-pass\"): objectType \"sekret\""),
        "{message}"
    );
    assert!(
        message.contains("objects[2] (objectName \"c\")"),
        "{message}"
    );
    assert!(!message.contains("objects[0]"), "{message}");
}

#[test]
fn paths_must_be_distinct() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "objectName: a\nobjectType: secret",
                "objectName: a\nobjectType: key",
            ],
            &[
                "objects[1] (objectName \"a\")",
                "writes \"a\"",
                "objects[0] (objectName \"a\") already writes",
            ],
        ),
        (
            &[
                "objectName: a\nobjectType: secret",
                "objectName: b\nobjectType: secret\nobjectAlias: a",
            ],
            &["writes \"a\""],
        ),
        (
            &[
                "objectName: a\nobjectType: secret\nobjectVersionHistory: 2",
                "objectName: b\nobjectType: secret\nobjectAlias: a/1",
            ],
            &["writes \"a/1\""],
        ),
        (
            &[
                "objectName: a\nobjectType: secret",
                "objectName: b\nobjectType: secret\nobjectAlias: a/b",
            ],
            &["inside \"a\"", "as a file"],
        ),
        (
            &[
                "objectName: a\nobjectType: secret\nobjectVersionHistory: 2",
                "objectName: b\nobjectType: secret\nobjectAlias: a/0/x",
            ],
            &["inside \"a/0\""],
        ),
        (
            &[
                "objectName: cfg\nobjectType: secret\njsonPointer: /a",
                "objectName: cfg\nobjectType: secret\njsonPointer: /b",
            ],
            &["give one of them a different objectAlias"],
        ),
    ];
    for (items, needles) in cases {
        rejects(&with_objects(items), &[], needles);
    }
    // Distinct aliases for the same object are fine.
    plan(&with_objects(&[
        "objectName: cfg\nobjectType: secret\njsonPointer: /a\nobjectAlias: a",
        "objectName: cfg\nobjectType: secret\njsonPointer: /b\nobjectAlias: b",
    ]));
    plan(&with_objects(&[
        "objectName: a\nobjectType: secret\nobjectAlias: dir/a",
        "objectName: b\nobjectType: secret\nobjectAlias: dir/b",
    ]));
}

#[test]
fn objects_document_rules() {
    for (text, needle) in [
        ("array: []", "no entries"),
        ("array:", "no entries"),
        ("other: 1", "no entries"),
        ("- a\n- b", "not a YAML mapping"),
        (
            "array:\n  - objectName: a\n    objectType: secret",
            "not a YAML mapping with an `array` of YAML strings",
        ),
        ("array: [\"objectName: a\"\n", "not a YAML mapping"),
        (
            "array:\n  - |\n    objectName: a\n    objectName: b\n    objectType: secret",
            "objects[0]",
        ),
    ] {
        rejects(
            &with(base(), &[("objects", Some(text))]),
            &[],
            &["objects", needle],
        );
    }
    let many: Vec<String> = (0..1001)
        .map(|i| format!("objectName: s{i}\nobjectType: secret"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    rejects(&with_objects(&many), &[], &["1001 objects", "at most 1000"]);
    // 10 objects × 1,000 versions is 10,000 files: refused before any path is built.
    let history: Vec<String> = (0..10)
        .map(|i| format!("objectName: h{i}\nobjectType: secret\nobjectVersionHistory: 1000"))
        .collect();
    let history: Vec<&str> = history.iter().map(String::as_str).collect();
    rejects(
        &with_objects(&history),
        &[],
        &["10000 files", "at most 5000"],
    );
}

#[test]
fn hostile_yaml_is_rejected_quickly() {
    // Billion laughs: each level doubles ten times over.
    let mut lol = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().enumerate() {
        let prev = if i == 0 {
            "a".to_owned()
        } else {
            ["b", "c", "d", "e", "f", "g", "h"][i - 1].to_owned()
        };
        lol.push_str(&format!("{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    lol.push_str("array: *i\n");
    let deep = format!("array: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    let started = std::time::Instant::now();
    for text in [lol, deep] {
        rejects(
            &with(base(), &[("objects", Some(&text))]),
            &[],
            &["objects"],
        );
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn real_driver_payloads_decode() {
    let load = |name: &str| -> serde_json::Value {
        let path = format!(
            "{}/tests/fixtures/driver/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    let plan_of = |v: &serde_json::Value| {
        plan_request(
            &RawRequest {
                attributes: v["attributes"].as_str().unwrap(),
                secrets: v["secrets"].as_str().unwrap(),
                permission: v["permission"].as_str().unwrap(),
            },
            &PlanDefaults::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };

    for name in [
        "mount-workload-identity.json",
        "mount-tokens-in-secrets.json",
    ] {
        let p = plan_of(&load(name));
        assert!(
            matches!(p.identity, Identity::WorkloadIdentity { ref client_id, .. } if client_id == "0d4c8f3e-5b7a-4c1e-9f2d-3a6b8c1d2e4f"),
            "{name}"
        );
        assert_eq!(p.pod.name, "busybox-secrets-store-inline-wi");
        assert_eq!(
            p.pod.service_account.as_deref(),
            Some("workload-identity-sa")
        );
        assert_eq!(
            p.pod.secret_provider_class.as_deref(),
            Some("azure-kvname-wi")
        );
        assert_eq!(p.tenant_id, "72f988bf-86f1-41af-91ab-2d7cd011db47");
        assert_eq!(
            p.cloud,
            CloudSelection::WellKnown(CloudName::AzurePublicCloud)
        );
        let summary: Vec<_> = p
            .objects
            .iter()
            .map(|o| (o.name.as_str(), o.object_type, o.paths(), o.mode))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "secret1",
                    ObjectType::Secret,
                    vec!["secret1".to_owned()],
                    0o644
                ),
                ("key1", ObjectType::Key, vec!["key1".to_owned()], 0o644),
                (
                    "tls-cert",
                    ObjectType::Secret,
                    vec!["tls.pfx".to_owned()],
                    0o644
                ),
                (
                    "db-config",
                    ObjectType::Secret,
                    vec!["db-password".to_owned()],
                    0o400
                ),
                (
                    "app-cert",
                    ObjectType::Cert,
                    vec![
                        "app-cert/0".to_owned(),
                        "app-cert/1".to_owned(),
                        "app-cert/2".to_owned()
                    ],
                    0o644
                ),
            ]
        );
    }
    let p = plan_of(&load("mount-service-principal.json"));
    assert!(
        matches!(p.identity, Identity::ServicePrincipal { ref client_id, .. } if client_id == "8a1b2c3d-0000-4000-8000-000000000001")
    );
    let p = plan_of(&load("mount-vm-managed-identity.json"));
    assert!(matches!(
        p.identity,
        Identity::VmManagedIdentity {
            user_assigned_client_id: Some(_)
        }
    ));
    assert_eq!(
        p.cloud,
        CloudSelection::WellKnown(CloudName::AzureUSGovernmentCloud)
    );
}
