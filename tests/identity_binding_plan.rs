//! Identity binding (`useAzureTokenProxy`) in the SecretProviderClass parser: every mode
//! combination, each missing piece with its own fix, and the Go provider's own vectors
//! (`shared/research/reference-vectors/`, INDEX.md §7 `TestParseIdentityBindingToken*` and §8
//! the identity-binding `TestGetSecretsStoreObjectContent` cases), read at test time, never
//! copied here.

use std::collections::BTreeMap;
use std::path::Path;

use akv_csi_provider::spc::params::{self, PlanDefaults};
use akv_csi_provider::spc::plan::Identity;
use akv_csi_provider::spc::request::{Attributes, Secrets};
use akv_csi_provider::spc::tokens::{self, TOKENS_KEY, TokenError};
use secrecy::ExposeSecret;

const BOTH_TOKENS: &str = r#"{"api://AKSIdentityBinding":{"token":"eyJ.ib.jwt","expirationTimestamp":"2099-01-01T00:00:00Z"},"api://AzureADTokenExchange":{"token":"eyJ.wi.jwt","expirationTimestamp":"2099-01-01T00:00:00Z"}}"#;

fn fixture(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/research/reference-vectors");
    assert!(
        dir.join("INDEX.md").is_file(),
        "the Go provider's reference vectors are missing: expected {} (the shared research \
         folder beside the repository, which CI always has)",
        dir.display()
    );
    let path = dir.join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn base() -> BTreeMap<String, String> {
    [
        ("keyvaultName", "kv-demo"),
        ("tenantID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ("clientID", "0d4c8f3e-5b7a-4c1e-9f2d-3a6b8c1d2e4f"),
        ("useAzureTokenProxy", "true"),
        ("csi.storage.k8s.io/pod.name", "app-0"),
        ("csi.storage.k8s.io/pod.namespace", "default"),
        (TOKENS_KEY, BOTH_TOKENS),
        (
            "objects",
            "array:\n  - |\n    objectName: secret1\n    objectType: secret\n",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn with(changes: &[(&str, Option<&str>)]) -> BTreeMap<String, String> {
    let mut attrs = base();
    for (k, v) in changes {
        match v {
            Some(v) => attrs.insert((*k).to_owned(), (*v).to_owned()),
            None => attrs.remove(*k),
        };
    }
    attrs
}

fn parse(attrs: &BTreeMap<String, String>, secrets: &[(&str, &str)]) -> Result<Identity, String> {
    params::parse(
        &Attributes::from_pairs(attrs.clone()),
        &Secrets::from_pairs(secrets.iter().copied()),
        0o644,
        &PlanDefaults::default(),
    )
    .map(|p| p.identity)
    .map_err(|e| e.to_string())
}

fn rejects(attrs: &BTreeMap<String, String>, needles: &[&str]) -> String {
    let message = parse(attrs, &[]).expect_err("expected a rejection");
    for needle in needles {
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
    assert!(!message.contains("eyJ."), "token leaked: {message}");
    message
}

#[test]
fn identity_binding_takes_its_own_audience() {
    match parse(&base(), &[]).unwrap() {
        Identity::IdentityBinding { client_id, token } => {
            assert_eq!(client_id, "0d4c8f3e-5b7a-4c1e-9f2d-3a6b8c1d2e4f");
            assert_eq!(token.jwt.expose_secret(), "eyJ.ib.jwt");
            assert!(token.expires_at.is_some());
        }
        other => panic!("{other:?}"),
    }
    // Every strconv.ParseBool spelling of true; false leaves workload identity in charge.
    for t in ["1", "t", "T", "TRUE", "true", "True", " true "] {
        assert!(matches!(
            parse(&with(&[("useAzureTokenProxy", Some(t))]), &[]),
            Ok(Identity::IdentityBinding { .. })
        ));
    }
    for f in ["0", "f", "F", "FALSE", "false", "False", ""] {
        match parse(&with(&[("useAzureTokenProxy", Some(f))]), &[]).unwrap() {
            Identity::WorkloadIdentity { token, .. } => {
                assert_eq!(token.jwt.expose_secret(), "eyJ.wi.jwt")
            }
            other => panic!("{f:?}: {other:?}"),
        }
    }
    // The token map may come in secrets (Kubernetes >= 1.35), which win.
    let attrs = with(&[(TOKENS_KEY, None)]);
    let from_secrets = parse(
        &attrs,
        &[(
            TOKENS_KEY,
            r#"{"api://AKSIdentityBinding":{"token":"eyJ.from.secrets"}}"#,
        )],
    )
    .unwrap();
    assert!(
        matches!(from_secrets, Identity::IdentityBinding { ref token, .. } if token.jwt.expose_secret() == "eyJ.from.secrets")
    );
    assert_eq!(from_secrets.mode(), "identity_binding");
    assert!(
        from_secrets
            .describe()
            .contains("identity binding (clientID 0d4c8f3e")
    );
    assert!(!format!("{from_secrets:?}").contains("eyJ.from.secrets"));
}

#[test]
fn every_combination_of_the_three_modes() {
    let modes = [
        "usePodIdentity",
        "useVMManagedIdentity",
        "useAzureTokenProxy",
    ];
    for mask in 0u8..8 {
        let on: Vec<&str> = (0..3)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| modes[i])
            .collect();
        let changes: Vec<(&str, Option<&str>)> = modes
            .iter()
            .map(|m| (*m, Some(if on.contains(m) { "true" } else { "false" })))
            .collect();
        let attrs = with(&changes);
        let result = parse(&attrs, &[]);
        match on.as_slice() {
            [] => assert!(matches!(result, Ok(Identity::WorkloadIdentity { .. }))),
            ["useAzureTokenProxy"] => {
                assert!(matches!(result, Ok(Identity::IdentityBinding { .. })))
            }
            // Pod or VM identity with clientID set: our "choose one identity" rule.
            [one] => {
                let m = result.unwrap_err();
                assert!(
                    m.contains("clientID") && m.contains(one) && m.contains("choose one"),
                    "{m}"
                );
            }
            several => {
                let m = result.unwrap_err();
                // The Go provider's words, then which ones are on.
                assert!(
                    m.contains("only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy"),
                    "{m}"
                );
                for mode in several {
                    assert!(m.contains(mode), "{m}");
                }
            }
        }
        // Without clientID, pod and VM identity stand alone; identity binding needs it.
        let result = parse(
            &{
                let mut a = attrs.clone();
                a.remove("clientID");
                a
            },
            &[],
        );
        match on.as_slice() {
            ["usePodIdentity"] => assert!(matches!(result, Ok(Identity::PodIdentity))),
            ["useVMManagedIdentity"] => {
                assert!(matches!(result, Ok(Identity::VmManagedIdentity { .. })))
            }
            ["useAzureTokenProxy"] => {
                let m = result.unwrap_err();
                assert!(
                    m.contains("clientID is required") && m.contains("identity-binding"),
                    "{m}"
                );
            }
            [] => assert!(result.unwrap_err().contains("no identity selected")),
            _ => assert!(result.unwrap_err().contains("only one identity mode")),
        }
    }
}

#[test]
fn each_missing_piece_names_its_fix() {
    rejects(
        &with(&[("clientID", None)]),
        &[
            "clientID is required",
            "useAzureTokenProxy",
            "az aks identity-binding create",
        ],
    );
    rejects(
        &with(&[(TOKENS_KEY, None)]),
        &[
            "no service-account tokens at all",
            "tokenRequests",
            "api://AKSIdentityBinding",
            "CSIDriver",
        ],
    );
    rejects(
        &with(&[(
            TOKENS_KEY,
            Some(r#"{"api://AzureADTokenExchange":{"token":"eyJ.wi.jwt"}}"#),
        )]),
        &[
            "no service-account token for audience api://AKSIdentityBinding",
            "only for api://AzureADTokenExchange",
            "secrets-store-csi-driver.tokenRequests",
        ],
    );
    rejects(
        &with(&[(
            TOKENS_KEY,
            Some(r#"{"api://AKSIdentityBinding":{"token":" "}}"#),
        )]),
        &["api://AKSIdentityBinding is empty"],
    );
    rejects(
        &with(&[(TOKENS_KEY, Some("{not json"))]),
        &["serviceAccount.tokens", "line 1"],
    );
    rejects(
        &with(&[("useAzureTokenProxy", Some("invalid-value"))]),
        &["useAzureTokenProxy", "not true or false"],
    );
}

#[test]
fn go_token_vectors() {
    let parse_ib = |map: &str| {
        tokens::identity_binding_token(
            &Attributes::from_pairs([(TOKENS_KEY, map)]),
            &Secrets::default(),
        )
    };
    let token = parse_ib(&fixture("TestParseIdentityBindingToken__saTokens.json")).unwrap();
    assert_eq!(
        token.jwt.expose_secret(),
        fixture("TestParseIdentityBindingToken__expectedToken.txt")
    );
    assert!(matches!(
        parse_ib(&fixture(
            "TestParseIdentityBindingTokenError__saTokens__identity-binding-audience-not-found.json"
        )),
        Err(TokenError::BindingAudienceMissing { .. })
    ));
    // Go's empty map is "no tokens" (an empty attribute is absent here).
    assert!(matches!(
        parse_ib(&fixture(
            "TestParseIdentityBindingTokenError__saTokens__empty-serviceaccount-tokens.txt"
        )),
        Err(TokenError::BindingNoTokens)
    ));
    assert!(matches!(
        parse_ib(&fixture(
            "TestParseIdentityBindingTokenError__saTokens__invalid-serviceaccount-tokens.txt"
        )),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn go_mount_vectors() {
    let all: serde_json::Value =
        serde_json::from_str(&fixture("TestGetSecretsStoreObjectContent__cases.json")).unwrap();
    let cases = all["identityBindingCases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["test"].as_str().unwrap();
        let attrs: BTreeMap<String, String> =
            serde_json::from_value(case["parameters"].clone()).unwrap();
        let go_says = case["expectedErrContains"].as_str().unwrap();
        // Where our words differ from Go's, what ours must say instead.
        let ours: &[&str] = match go_says {
            "clientID is required" => &["clientID is required"],
            "failed to parse useAzureTokenProxy" => &["useAzureTokenProxy", "not true or false"],
            "service account tokens are required for identity binding" => &[
                "useAzureTokenProxy selects identity binding",
                "no service-account tokens",
            ],
            "only one identity mode" => &["only one identity mode can be enabled at a time"],
            other => panic!("{name}: unexpected Go expectation {other:?}"),
        };
        let message = parse(&attrs, &[]).expect_err(name);
        for needle in ours {
            assert!(
                message.contains(needle),
                "{name}: {message:?} lacks {needle:?}"
            );
        }
    }
}
