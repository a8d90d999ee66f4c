//! The plan rules of the object fields the Go provider never had (#16): `objectPart` and an
//! object's own `keyvaultName`; and that `objectFormat` written out is told apart from the
//! default (App Service certificates depend on it).

use akv_csi_provider::spc::params::{self, PlanDefaults};
use akv_csi_provider::spc::plan::{MountPlan, ObjectFormat, ObjectPart};
use akv_csi_provider::spc::request::{Attributes, Secrets};

const TOKENS: &str = r#"{"api://AzureADTokenExchange":{"token":"eyJ.test.jwt","expirationTimestamp":"2026-11-22T17:18:32Z"}}"#;

fn objects(items: &[&str]) -> String {
    let mut s = String::from("array:\n");
    for item in items {
        s.push_str("  - |\n");
        for line in item.lines() {
            s.push_str(&format!("    {line}\n"));
        }
    }
    s
}

fn parse(items: &[&str]) -> Result<MountPlan, String> {
    let objects = objects(items);
    let attributes = Attributes::from_pairs([
        ("keyvaultName", "kv-demo"),
        ("tenantID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ("clientID", "0d4c8f3e-5b7a-4c1e-9f2d-3a6b8c1d2e4f"),
        ("csi.storage.k8s.io/pod.name", "app-0"),
        ("csi.storage.k8s.io/pod.namespace", "default"),
        ("csi.storage.k8s.io/serviceAccount.tokens", TOKENS),
        ("objects", objects.as_str()),
    ]);
    params::parse(
        &attributes,
        &Secrets::default(),
        0o644,
        &PlanDefaults::default(),
    )
    .map_err(|e| e.to_string())
}

fn plan(items: &[&str]) -> MountPlan {
    parse(items).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn object_part_spellings() {
    for (text, part) in [
        ("all", ObjectPart::All),
        ("key", ObjectPart::Key),
        ("Leaf", ObjectPart::Leaf),
        ("CHAIN", ObjectPart::Chain),
        (" ca ", ObjectPart::Ca),
    ] {
        let p = plan(&[&format!(
            "objectName: tls\nobjectType: secret\nobjectPart: \"{text}\""
        )]);
        assert_eq!(p.objects[0].part, Some(part), "{text}");
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }
    let p = plan(&["objectName: tls\nobjectType: secret"]);
    assert_eq!(p.objects[0].part, None);
    // Blank is absent, like every other field.
    let p = plan(&["objectName: tls\nobjectType: secret\nobjectPart: \"\""]);
    assert_eq!(p.objects[0].part, None);
}

#[test]
fn object_part_where_there_are_no_parts_is_rejected() {
    let table: &[(&str, &str)] = &[
        (
            "objectName: k\nobjectType: key\nobjectPart: key",
            "objects[0] (objectName \"k\"): objectPart is only supported for objectType secret: a key",
        ),
        (
            "objectName: c\nobjectType: cert\nobjectPart: leaf",
            "objectType cert writes the leaf certificate alone; read the certificate's secret",
        ),
        (
            "objectName: s\nobjectType: secret\nobjectPart: key\nobjectFormat: PFX",
            "objectPart cannot be combined with objectFormat pfx",
        ),
        (
            "objectName: s\nobjectType: secret\nobjectPart: chain\nobjectEncoding: base64",
            "objectPart writes PEM text, which objectEncoding hex or base64 cannot decode",
        ),
        (
            "objectName: s\nobjectType: secret\nobjectPart: ca\njsonPointer: /a",
            "objectPart cannot be combined with jsonPointer",
        ),
        (
            "objectName: s\nobjectType: secret\nobjectPart: certificate",
            "objectPart \"certificate\" is not one of all, key, leaf, chain, ca",
        ),
    ];
    for (item, needle) in table {
        let err = parse(&[item]).unwrap_err();
        assert!(err.contains(needle), "{item}: {err}");
    }
    // utf-8 written out is the default, and fine.
    plan(&["objectName: s\nobjectType: secret\nobjectPart: key\nobjectEncoding: utf-8"]);
}

#[test]
fn object_format_written_out_is_told_apart_from_the_default() {
    let p = plan(&[
        "objectName: a\nobjectType: secret",
        "objectName: b\nobjectType: secret\nobjectFormat: pem",
        "objectName: c\nobjectType: secret\nobjectFormat: Pfx",
        "objectName: d\nobjectType: secret\nobjectFormat: \" \"",
    ]);
    let got: Vec<(ObjectFormat, bool, bool)> = p
        .objects
        .iter()
        .map(|o| (o.format, o.format_explicit, o.asks_for_bundle()))
        .collect();
    assert_eq!(
        got,
        [
            (ObjectFormat::Pem, false, false),
            (ObjectFormat::Pem, true, true),
            (ObjectFormat::Pfx, true, true),
            (ObjectFormat::Pem, false, false),
        ]
    );
    let p = plan(&["objectName: a\nobjectType: secret\nobjectPart: all"]);
    assert!(p.objects[0].asks_for_bundle());
}

#[test]
fn an_object_may_name_its_own_vault() {
    let p = plan(&[
        "objectName: a\nobjectType: secret",
        "objectName: a\nobjectType: secret\nobjectAlias: a2\nkeyvaultName: kv-other",
        "objectName: b\nobjectType: secret\nkeyvaultName: kv-demo",
        "objectName: c\nobjectType: secret\nkeyvaultName: kv-third\nobjectVersionHistory: 2",
    ]);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let vaults: Vec<&str> = p.objects.iter().map(|o| p.vault_of(o)).collect();
    assert_eq!(vaults, ["kv-demo", "kv-other", "kv-demo", "kv-third"]);
    assert_eq!(p.vaults(), ["kv-demo", "kv-other", "kv-third"]);
    // ObjectVersion ids keep same-named objects of two vaults apart.
    assert_eq!(p.objects[0].version_id(None), "secret/a");
    assert_eq!(p.objects[1].version_id(None), "secret/a@kv-other");
    assert_eq!(p.objects[2].version_id(None), "secret/b@kv-demo");
    assert_eq!(p.objects[3].version_id(Some(1)), "secret/c@kv-third/1");

    for (value, ok) in [
        ("ab", false),
        ("a-24-character-vault-nam", true),
        ("a-25-character-vault-name", false),
        ("kv.vault.azure.net", false),
        ("kv_under", false),
    ] {
        let r = parse(&[&format!(
            "objectName: a\nobjectType: secret\nkeyvaultName: {value}"
        )]);
        match (r, ok) {
            (Ok(_), true) => {}
            (Err(e), false) => assert!(
                e.contains(&format!(
                    "objects[0] (objectName \"a\"): keyvaultName {value:?} is not a vault name"
                )),
                "{e}"
            ),
            (r, _) => panic!("{value}: {:?}", r.map(|_| ())),
        }
    }
}

#[test]
fn the_same_path_from_two_vaults_is_still_a_conflict() {
    let err = parse(&[
        "objectName: a\nobjectType: secret",
        "objectName: a\nobjectType: secret\nkeyvaultName: kv-other",
    ])
    .unwrap_err();
    assert!(
        err.contains("writes \"a\", which objects[0] (objectName \"a\") already writes"),
        "{err}"
    );
}
