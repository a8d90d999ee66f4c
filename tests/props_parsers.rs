//! Property tests for the fuzzed parsers (the same entry points as `fuzz/`), in the ordinary
//! test run: SecretProviderClass attribute maps and `objects` YAML drawn from a grammar of
//! valid and invalid values either plan soundly or name what is wrong; token maps never echo the
//! token; JSON Web Keys of any shape never panic and yield valid SPKI when they render.

#[path = "../fuzz/targets_common.rs"]
mod targets_common;

use akv_csi_provider::spc::ParamError;
use akv_csi_provider::spc::params::{self, PlanDefaults};
use akv_csi_provider::spc::request::{Attributes, Secrets};
use akv_csi_provider::spc::tokens::{AZURE_AUDIENCE, TOKENS_KEY, azure_token};
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// Mostly a valid spelling, sometimes an invalid one, rarely any short printable string.
fn pick(valid: &'static [&'static str], invalid: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        20 => proptest::sample::select(valid).prop_map(str::to_owned),
        2 => proptest::sample::select(invalid).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
    .boxed()
}

/// A field present `present` times in 10, its value from [`pick`].
fn field(
    name: &'static str,
    present: u32,
    valid: &'static [&'static str],
    invalid: &'static [&'static str],
) -> BoxedStrategy<Option<(String, String)>> {
    prop_oneof![
        10 - present => Just(None),
        present => pick(valid, invalid).prop_map(move |v| Some((name.to_owned(), v))),
    ]
    .boxed()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn object_item() -> impl Strategy<Value = String> {
    let bad_names: &'static [&'static str] =
        Box::leak(vec!["", "bad name", "a_b", leak("n".repeat(130))].into_boxed_slice());
    let bad_aliases: &'static [&'static str] = Box::leak(
        vec![
            "",
            "../up",
            "/abs",
            "a//b",
            "a/./b",
            ".",
            "..",
            "a/",
            "a\\b",
            "tab\there",
            leak("a".repeat(256)),
        ]
        .into_boxed_slice(),
    );
    (
        prop_oneof![
            12 => "[a-z][a-z0-9-]{0,10}".prop_map(|v| Some(("objectName".to_owned(), v))),
            1 => proptest::sample::select(bad_names)
                .prop_map(|v| Some(("objectName".to_owned(), v.to_owned()))),
        ],
        field(
            "objectType",
            10,
            // Mostly secrets: encoding, format and jsonPointer apply to secrets only.
            &[
                "secret", "secret", "secret", "secret", "secret", "key", "cert",
            ],
            &["Secret", "blob", ""],
        ),
        prop_oneof![
            5 => Just(None),
            4 => "[a-z]{1,6}(/[a-zé.]{1,6}){0,2}".prop_map(|v| Some(("objectAlias".to_owned(), v))),
            1 => proptest::sample::select(bad_aliases)
                .prop_map(|v| Some(("objectAlias".to_owned(), v.to_owned()))),
        ],
        field("objectVersion", 3, &["", "0123abcd"], &["x y", "../v"]),
        field(
            "objectVersionHistory",
            3,
            &["", "1", "3"],
            &["0", "-1", "1001", "x"],
        ),
        field("objectFormat", 3, &["", "pem", "pfx"], &["PFX", "der"]),
        field(
            "objectEncoding",
            3,
            &["", "utf-8", "hex", "base64"],
            &["rot13"],
        ),
        field(
            "filePermission",
            3,
            &["", "0644", "0o600", "777"],
            &["0999", "12345678"],
        ),
        field("optional", 3, &["", "true", "false"], &["maybe"]),
        field("jsonPointer", 2, &["/a", "/a~1b"], &["a", "/~2"]),
        proptest::option::weighted(0.1, ("[a-z]{1,8}", "\\PC{0,6}")),
    )
        .prop_map(|(a, b, c, d, e, f, g, h, i, j, unknown)| {
            let map: Map<String, Value> = [a, b, c, d, e, f, g, h, i, j, unknown]
                .into_iter()
                .flatten()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            // JSON is YAML: a flow mapping with JSON-escaped scalars.
            Value::Object(map).to_string()
        })
}

/// `objects`: mostly the real shape (a mapping whose `array` holds YAML strings), sometimes broken.
fn objects_yaml() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::collection::vec(object_item(), 1..4)
            .prop_map(|items| json!({ "array": items }).to_string()),
        1 => proptest::collection::vec(object_item(), 1..3)
            .prop_map(|items| json!({ "array": items.iter().map(|i| json!({"x": i})).collect::<Vec<_>>() }).to_string()),
        1 => Just(r#"{"array": []}"#.to_owned()),
        1 => "\\PC{0,40}",
    ]
}

fn attribute_map() -> impl Strategy<Value = Vec<(String, String)>> {
    let tokens = leak(
        json!({ AZURE_AUDIENCE: { "token": "eyJ.prop.jwt", "expirationTimestamp": "2026-11-22T17:18:32Z" } })
            .to_string(),
    );
    (
        field(
            "keyvaultName",
            9,
            &["kv-demo", "abc"],
            &["", "a", "bad_name!", "abcdefghijklmnopqrstuvwxyz"],
        ),
        field(
            "tenantID",
            9,
            &["72f988bf-86f1-41af-91ab-2d7cd011db47"],
            &["", "t/../x"],
        ),
        field(
            "cloudName",
            4,
            &["", "AzurePublicCloud", "azureusgovernmentcloud"],
            &["Mars", "AzureStackCloud"],
        ),
        field(
            "clientID",
            7,
            &["0d4c8f3e-5b7a-4c1e-9f2d-3a6b8c1d2e4f"],
            &[""],
        ),
        field("usePodIdentity", 2, &["false"], &["true", "yes"]),
        field(
            "useVMManagedIdentity",
            2,
            &["false", "true"],
            &["1", "maybe"],
        ),
        field("userAssignedIdentityID", 2, &["", "0d4c8f3e"], &[" "]),
        proptest::option::weighted(0.8, Just((TOKENS_KEY.to_owned(), tokens.to_owned()))),
        proptest::option::weighted(0.9, objects_yaml().prop_map(|o| ("objects".to_owned(), o))),
    )
        .prop_map(|(a, b, c, d, e, f, g, h, i)| {
            [a, b, c, d, e, f, g, h, i]
                .into_iter()
                .flatten()
                .chain([
                    ("csi.storage.k8s.io/pod.name".to_owned(), "app-0".to_owned()),
                    (
                        "csi.storage.k8s.io/pod.namespace".to_owned(),
                        "default".to_owned(),
                    ),
                ])
                .collect()
        })
}

/// Every error names what is wrong: a parameter, an object, the identity choice or the token.
fn assert_errors_name_their_cause(errors: &[ParamError]) {
    assert!(!errors.is_empty());
    for e in errors {
        let text = e.to_string();
        let named = match e {
            ParamError::Object { .. } => text.starts_with("objects["),
            ParamError::Missing { .. } | ParamError::Invalid { .. } | ParamError::Objects(_) => {
                text.starts_with("parameter ")
            }
            ParamError::Identity(_) => text.contains("identity") || text.contains("clientid"),
            ParamError::Token(_) => text.contains("token"),
        };
        assert!(
            named,
            "an error that names neither objects[ nor a parameter: {text}"
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn attribute_maps_plan_soundly_or_name_the_problem(attrs in attribute_map()) {
        let attributes = Attributes::from_pairs(attrs);
        match params::parse(&attributes, &Secrets::default(), 0o644, &PlanDefaults::default()) {
            Ok(plan) => targets_common::assert_plan_sound(&plan),
            Err(errors) => assert_errors_name_their_cause(&errors.0),
        }
    }

    #[test]
    fn objects_yaml_plans_soundly_or_names_the_problem(objects in objects_yaml()) {
        let attributes = Attributes::from_pairs(
            targets_common::BASE_ATTRIBUTES
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .chain([("objects".to_owned(), objects.clone())]),
        );
        match params::parse(&attributes, &Secrets::default(), 0o600, &PlanDefaults::default()) {
            Ok(plan) => {
                targets_common::assert_plan_sound(&plan);
                for spec in &plan.objects {
                    prop_assert!(spec.history >= 1);
                }
            }
            Err(errors) => assert_errors_name_their_cause(&errors.0),
        }
        // The fuzz target's body agrees.
        targets_common::objects_yaml(objects.as_bytes());
    }

    #[test]
    fn token_maps_never_echo_the_token(
        token in "eyJ[A-Za-z0-9_-]{12,40}",
        padding in "[ \t]{0,2}",
        audience in prop_oneof![Just(AZURE_AUDIENCE.to_owned()), Just("other".to_owned()), "\\PC{0,8}"],
        shape in 0u8..6,
        cut in any::<prop::sample::Index>(),
        in_secrets: bool,
    ) {
        let padded = format!("{padding}{token}{padding}");
        let map = match shape {
            0 => json!({ audience.clone(): { "token": padded, "expirationTimestamp": "2026-11-22T17:18:32Z" } }).to_string(),
            1 => json!({ audience.clone(): { "token": padded, "expirationTimestamp": 5 } }).to_string(),
            2 => json!({ audience.clone(): padded }).to_string(),
            3 => json!({ audience.clone(): { "token": [padded] } }).to_string(),
            4 => json!([{ audience.clone(): { "token": padded } }]).to_string(),
            _ => {
                // Truncated JSON: cut anywhere (on a char boundary).
                let full = json!({ audience.clone(): { "token": padded } }).to_string();
                let mut at = cut.index(full.len() + 1);
                while !full.is_char_boundary(at) {
                    at -= 1;
                }
                full[..at].to_owned()
            }
        };
        let (attributes, secrets) = if in_secrets {
            (Attributes::default(), Secrets::from_pairs([(TOKENS_KEY, map.as_str())]))
        } else {
            (Attributes::from_pairs([(TOKENS_KEY, map.as_str())]), Secrets::default())
        };
        match azure_token(&attributes, &secrets) {
            Ok(t) => {
                use secrecy::ExposeSecret;
                prop_assert_eq!(t.jwt.expose_secret(), token.as_str());
                prop_assert!(audience == AZURE_AUDIENCE);
                prop_assert!(format!("{t:?}").find(&token).is_none(), "Debug shows the token");
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert!(!text.contains(&token), "error echoes the token: {}", text);
            }
        }
        // Through the whole parameter parser too (workload identity selected).
        let mut attrs: Vec<(String, String)> = targets_common::BASE_ATTRIBUTES
            .iter()
            .filter(|(k, _)| *k != TOKENS_KEY)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        attrs.push(("objects".into(), "array:\n  - |\n    objectName: s\n    objectType: secret\n".into()));
        if !in_secrets {
            attrs.push((TOKENS_KEY.into(), map.clone()));
        }
        if let Err(errors) = params::parse(&Attributes::from_pairs(attrs), &secrets, 0o644, &PlanDefaults::default()) {
            prop_assert!(!errors.to_string().contains(&token));
        }
        targets_common::token_map(map.as_bytes());
    }

    #[test]
    fn jwks_never_panic(
        kty in pick(&["RSA", "RSA-HSM", "EC", "EC-HSM"], &["oct", ""]),
        crv in proptest::option::of(pick(&["P-256", "P-384", "P-521"], &["P-256K", ""])),
        members in proptest::collection::vec(
            (
                proptest::sample::select(&["n", "e", "x", "y"][..]),
                prop_oneof![
                    4 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
                    1 => proptest::collection::vec(any::<u8>(), 0..70).prop_map(|b| URL_SAFE.encode(b)),
                    1 => "\\PC{0,16}",
                ],
            ),
            0..5,
        ),
    ) {
        let mut jwk = Map::new();
        jwk.insert("kty".into(), Value::String(kty));
        if let Some(crv) = crv {
            jwk.insert("crv".into(), Value::String(crv));
        }
        for (name, value) in members {
            jwk.insert(name.to_owned(), Value::String(value));
        }
        // Renders, and any public key it yields is valid SPKI (checked inside).
        targets_common::render_jwk(Value::Object(jwk).to_string().as_bytes());
    }
}
