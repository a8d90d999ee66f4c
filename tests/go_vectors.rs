//! The Go provider's own test vectors (`shared/research/reference-vectors/`, see its INDEX.md)
//! that are not rendering vectors (those are `reference_vectors.rs`): §7 the service-account
//! token maps, §8 the whole-mount validation cases (identity binding's too), §9 the table
//! vectors that reach a black box. Each goes through the provider's gRPC `Mount` over its socket. Where the provider
//! deliberately differs from the Go one (README, "Compatibility with the Go provider"), the test
//! asserts our documented behaviour and names the difference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use akv_csi_provider::Config;
use akv_csi_provider::proto::MountResponse;
use akv_csi_provider::spc::plan::Identity;
use akv_csi_provider::spc::{PlanDefaults, RawRequest, plan_request};
use akv_csi_provider::testkit::world::{CLIENT_ID, VAULT};
use akv_csi_provider::testkit::{KubeletAttributes, Stored, TENANT, World, objects_yaml};
use secrecy::ExposeSecret;
use serde_json::Value;
use tonic::Code;

fn vectors() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/research/reference-vectors");
    assert!(
        dir.join("INDEX.md").is_file(),
        "the Go provider's reference vectors are missing: expected {} (the shared research \
         folder beside the repository, which CI always has)",
        dir.display()
    );
    dir
}

fn vector(name: &str) -> String {
    let path = vectors().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn table(key_prefix: &str) -> Value {
    let all: Value = serde_json::from_str(&vector("table-vectors.json")).unwrap();
    all.as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with(key_prefix))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no table {key_prefix}"))
}

async fn world() -> World {
    World::start(Config::defaults()).await
}

fn expect(result: Result<MountResponse, tonic::Status>, code: Code, needles: &[&str]) -> String {
    let status = match result {
        Ok(r) => panic!("expected {code:?}, got {} files", r.files.len()),
        Err(s) => s,
    };
    assert_eq!(status.code(), code, "{}", status.message());
    for n in needles {
        assert!(
            status.message().contains(n),
            "{:?} lacks {n:?}",
            status.message()
        );
    }
    status.message().to_owned()
}

fn ok(result: Result<MountResponse, tonic::Status>) -> MountResponse {
    result.unwrap_or_else(|e| panic!("{:?}: {}", e.code(), e.message()))
}

// ---------------------------------------------------------------------------------------
// §7 Service-account token maps (Go: auth.ParseServiceAccountToken / ParseIdentityBindingToken)

/// The attributes of a workload-identity Mount whose token map is the vector `file`.
fn with_token_map(world: &World, file: &str) -> BTreeMap<String, String> {
    world
        .spc(&objects_yaml(&["objectName: s\nobjectType: secret"]))
        .param("csi.storage.k8s.io/serviceAccount.tokens", &vector(file))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s7_token_map_gives_exactly_the_expected_token() {
    let attrs_json = {
        let world = world().await;
        serde_json::to_string(&with_token_map(
            &world,
            "TestParseServiceAccountToken__saTokens.json",
        ))
        .unwrap()
    };
    // The parser a Mount uses takes exactly the Go test's expected token, byte for byte.
    let plan = plan_request(
        &RawRequest {
            attributes: &attrs_json,
            secrets: "null",
            permission: "420",
        },
        &PlanDefaults::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let Identity::WorkloadIdentity { token, .. } = &plan.identity else {
        panic!("not workload identity")
    };
    assert_eq!(
        token.jwt.expose_secret(),
        vector("TestParseServiceAccountToken__expectedToken.txt")
    );

    // Through Mount: the token expired in January 2022 (its expirationTimestamp and exp), so
    // the provider says so without asking Entra. (Go's parse test has no clock.)
    let world = world().await;
    let attrs = with_token_map(&world, "TestParseServiceAccountToken__saTokens.json");
    expect(
        world.client().mount(&attrs, None, "420").await,
        Code::Unauthenticated,
        &["service-account token", "has expired", CLIENT_ID],
    );
    assert_eq!(world.azure.counts().entra, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s7_token_map_errors() {
    let world = world().await;
    // Go: "service account tokens not found", "token for audience … not found": ours names the
    // CSIDriver setting that supplies the token.
    for file in [
        "TestParseServiceAccountTokenError__saTokens__empty-serviceaccount-tokens.txt",
        "TestParseServiceAccountTokenError__saTokens__token-for-audience-not-found.json",
    ] {
        expect(
            world
                .client()
                .mount(&with_token_map(&world, file), None, "420")
                .await,
            Code::InvalidArgument,
            &[
                "no service-account token for audience api://AzureADTokenExchange",
                "tokenRequests",
            ],
        );
    }
    // Go: "failed to unmarshal service account tokens": ours says where the JSON breaks,
    // never quoting it (it holds tokens).
    for (file, where_) in [
        (
            "TestParseServiceAccountTokenError__saTokens__invalid-serviceaccount-tokens.txt",
            "syntax error at line 1, column 1",
        ),
        (
            "TestParseServiceAccountTokenError__saTokens__token-value-has-wrong-json-type.json",
            "wrong value type at line 1",
        ),
    ] {
        let m = expect(
            world
                .client()
                .mount(&with_token_map(&world, file), None, "420")
                .await,
            Code::InvalidArgument,
            &["is not kubelet's token map", where_],
        );
        assert!(!m.contains("12345"), "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s7_identity_binding_token_maps() {
    // The exact token bytes are checked at the plan level (identity_binding_plan.rs) and the
    // proxy exchange end to end (identity_binding.rs); here each vector map through Mount on a
    // node without a token proxy configured.
    let world = world().await;
    let mount = |file: &'static str| {
        let attrs = world
            .spc(&objects_yaml(&["objectName: s\nobjectType: secret"]))
            .param("useAzureTokenProxy", "true")
            .param("csi.storage.k8s.io/serviceAccount.tokens", &vector(file))
            .build();
        let client = world.client();
        async move { client.mount(&attrs, None, "420").await }
    };
    // Accepted as identity binding (Go returns "identity-binding-token"): it needs the proxy.
    expect(
        mount("TestParseIdentityBindingToken__saTokens.json").await,
        Code::Unauthenticated,
        &["identity binding", "AKS token proxy", "--sni-name"],
    );
    assert_eq!(world.azure.counts().entra, 0);
    // Go: an error for each of these.
    expect(
        mount("TestParseIdentityBindingTokenError__saTokens__identity-binding-audience-not-found.json")
            .await,
        Code::InvalidArgument,
        &["no service-account token for audience api://AKSIdentityBinding", "tokenRequests"],
    );
    expect(
        mount("TestParseIdentityBindingTokenError__saTokens__empty-serviceaccount-tokens.txt")
            .await,
        Code::InvalidArgument,
        &[
            "no service-account tokens at all",
            "api://AKSIdentityBinding",
        ],
    );
    expect(
        mount("TestParseIdentityBindingTokenError__saTokens__invalid-serviceaccount-tokens.txt")
            .await,
        Code::InvalidArgument,
        &["is not kubelet's token map"],
    );
}

// ---------------------------------------------------------------------------------------
// §8 Whole-mount validation (Go: provider.GetSecretsStoreObjectContent)

/// Our answer to each Go case, by its `desc`: the code and what our message says about the
/// same problem. Ours reports every problem of the SecretProviderClass at once, in our own
/// words (README: "validation messages"), so a case without pod name also lists the other
/// missing parameters.
fn ours(desc: &str) -> (Code, &'static [&'static str]) {
    match desc {
        "pod name not provided" => (
            Code::InvalidArgument,
            &["parameter csi.storage.k8s.io/pod.name is required"],
        ),
        "pod namespace not provided" => (
            Code::InvalidArgument,
            &["parameter csi.storage.k8s.io/pod.namespace is required"],
        ),
        "keyvault name not provided" => (
            Code::InvalidArgument,
            &["parameter keyvaultName is required"],
        ),
        // The vector's parameters spell it `tenantId`, the deprecated alias; Go's text says
        // `tenantId`, ours names the parameter's current spelling.
        "tenantID not provided" => (Code::InvalidArgument, &["parameter tenantID is required"]),
        "usePodIdentity not a boolean as expected" => (
            Code::InvalidArgument,
            &["parameter usePodIdentity \"tru\" is not true or false"],
        ),
        "useVMManagedIdentity not a boolean as expected" => (
            Code::InvalidArgument,
            &["parameter useVMManagedIdentity \"tru\" is not true or false"],
        ),
        "invalid cloud name" => (
            Code::InvalidArgument,
            &["parameter cloudName \"AzureCloud1\" is not a known cloud"],
        ),
        // The environment file is read once the SecretProviderClass is valid; this case has
        // no identity and no objects, which are reported first (see the completed case below).
        "check azure cloud env file path is set" => {
            (Code::InvalidArgument, &["no identity selected", "objects"])
        }
        "objects array not set" => (Code::InvalidArgument, &["parameter objects is required"]),
        "objects not configured as an array" => (
            Code::InvalidArgument,
            &["parameter objects is not a YAML mapping with an `array`"],
        ),
        // README: "empty objects.array — no files, then an obscure driver error | INVALID_ARGUMENT".
        "objects array is empty" => (
            Code::InvalidArgument,
            &["parameter objects has no entries in `array`"],
        ),
        "invalid object format" => (
            Code::InvalidArgument,
            &[
                "objects[0] (objectName \"secret1\")",
                "objectFormat \"pkcs\" is not one of pem, pfx",
            ],
        ),
        "invalid object encoding" => (
            Code::InvalidArgument,
            &[
                "objects[0] (objectName \"secret1\")",
                "objectEncoding \"utf-16\" is not one of utf-8, hex, base64",
            ],
        ),
        // Go needs the network to fail; the fakes answer for tenant "tid" with Entra's recorded
        // AADSTS90002. Go's prefix names the object as ours does, in our form.
        "error fetching from keyvault" => (
            Code::Unauthenticated,
            &[
                "objects[0] (objectName \"secret1\") (secret in Key Vault testKV)",
                "AADSTS90002",
            ],
        ),
        other => panic!("no expectation for Go case {other:?}"),
    }
}

fn case_inputs(case: &Value) -> (BTreeMap<String, String>, Option<BTreeMap<String, String>>) {
    let params: BTreeMap<String, String> =
        serde_json::from_value(case["parameters"].clone()).unwrap_or_default();
    let secrets: Option<BTreeMap<String, String>> =
        serde_json::from_value(case["secrets"].clone()).ok();
    (params, secrets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_whole_mount_validation_cases() {
    let cases: Value =
        serde_json::from_str(&vector("TestGetSecretsStoreObjectContent__cases.json")).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 14);
    let world = world().await;
    for case in cases {
        let desc = case["desc"].as_str().unwrap();
        let (params, secrets) = case_inputs(case);
        let (code, needles) = ours(desc);
        let result = world.client().mount(&params, secrets.as_ref(), "420").await;
        let m = expect(result, code, needles);
        // Never the client secret the case passes.
        assert!(!m.contains("AADClientSecret"), "{desc}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_cloud_env_file_case_completed_reports_the_file() {
    // The "check azure cloud env file path is set" case with an identity and an object: the
    // missing file is reported (Go: "cloudName AzureStackCloud is not valid, error: open
    // /etc/kubernetes/akscustom.json: no such file or directory").
    let cases: Value =
        serde_json::from_str(&vector("TestGetSecretsStoreObjectContent__cases.json")).unwrap();
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["desc"] == "check azure cloud env file path is set")
        .unwrap();
    let (mut params, _) = case_inputs(case);
    params.insert("useVMManagedIdentity".into(), "true".into());
    params.insert(
        "objects".into(),
        objects_yaml(&["objectName: secret1\nobjectType: secret"]),
    );
    let world = world().await;
    expect(
        world.client().mount(&params, None, "420").await,
        Code::InvalidArgument,
        &[
            "cloudName AzureStackCloud",
            "cannot read the cloud environment file /etc/kubernetes/akscustom.json",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_identity_binding_cases() {
    let cases: Value =
        serde_json::from_str(&vector("TestGetSecretsStoreObjectContent__cases.json")).unwrap();
    let cases = cases["identityBindingCases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    let world = world().await;
    for case in cases {
        let test = case["test"].as_str().unwrap();
        let (params, secrets) = case_inputs(case);
        // Go's substring, then what ours says about the same problem.
        let needles: &[&str] = match test {
            // "clientID is required"
            "TestGetSecretsStoreObjectContent_IdentityBinding_MissingClientID" => {
                &["parameter clientID is required", "identity binding"]
            }
            // "failed to parse useAzureTokenProxy"
            "TestGetSecretsStoreObjectContent_IdentityBinding_InvalidParameter" => {
                &["parameter useAzureTokenProxy \"invalid-value\" is not true or false"]
            }
            // "service account tokens are required for identity binding"
            "TestGetSecretsStoreObjectContent_IdentityBinding_MissingServiceAccountToken" => &[
                "useAzureTokenProxy selects identity binding",
                "no service-account tokens",
            ],
            // "only one identity mode"
            "TestGetSecretsStoreObjectContent_MutualExclusivity" => {
                &["only one identity mode can be enabled at a time"]
            }
            other => panic!("no expectation for {other}"),
        };
        expect(
            world.client().mount(&params, secrets.as_ref(), "420").await,
            Code::InvalidArgument,
            needles,
        );
    }
}

// ---------------------------------------------------------------------------------------
// §9 Table vectors that reach a black box

fn spc(world: &World, objects: &[&str]) -> KubeletAttributes {
    world.spc(&objects_yaml(objects))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_get_content_bytes_for_secrets() {
    // getContentBytes: the secret rows (a cert's or key's bytes are rendered from Key Vault's
    // `cer` / JWK, which the Go row's free-form content cannot be; those rows do not reach a
    // black box).
    let world = world().await;
    for (i, row) in table("TestGetContentBytes")
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        if row["type"] != "secret" {
            continue;
        }
        let name = format!("content-{i}");
        world
            .azure
            .vault(VAULT)
            .secret(&name, row["content"].as_str().unwrap());
        let item = format!(
            "objectName: {name}\nobjectType: secret\nobjectEncoding: {:?}",
            row["encoding"].as_str().unwrap()
        );
        let result = world
            .client()
            .mount(&spc(&world, &[&item]).build(), None, "420")
            .await;
        match row.get("expectedBytes").and_then(Value::as_str) {
            Some(bytes) => assert_eq!(ok(result).files[0].contents, bytes.as_bytes(), "{row}"),
            // Go: "invalid objectEncoding. Should be utf-8, base64, or hex".
            None => {
                expect(
                    result,
                    Code::InvalidArgument,
                    &["objectEncoding \"NotAnEncoding\" is not one of utf-8, hex, base64"],
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_latest_n_versions() {
    let now = 1_800_000_000i64;
    let hours = |spec: &str| -> i64 {
        spec.strip_prefix("now+")
            .and_then(|h| h.strip_suffix('h'))
            .and_then(|h| h.parse::<i64>().ok())
            .unwrap()
    };
    for (i, row) in table("TestGetLatestNKeyVaultObjects")
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let world = world().await;
        let name = row["kvObject"]["objectName"].as_str().unwrap();
        for v in row["versions"].as_array().unwrap() {
            let id = v[0].as_str().unwrap();
            world.azure.vault(VAULT).add_with_id(
                name,
                id,
                now + hours(v[1].as_str().unwrap()) * 3600,
                Stored::Secret {
                    value: format!("value-{id}"),
                    content_type: None,
                    kid: None,
                },
            );
        }
        let mut item = format!(
            "objectName: {name}\nobjectType: secret\nobjectVersionHistory: {}",
            row["kvObject"]["objectVersionHistory"]
        );
        if let Some(v) = row["kvObject"]["objectVersion"].as_str() {
            item.push_str(&format!("\nobjectVersion: {v}"));
        }
        let r = ok(world
            .client()
            .mount(&spc(&world, &[&item]).build(), None, "420")
            .await);
        let got: Vec<(String, String)> = r
            .object_version
            .iter()
            .map(|v| {
                (
                    v.id.trim_start_matches("secret/").to_owned(),
                    v.version.clone(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = match row.get("expected") {
            Some(e) => serde_json::from_value(e.clone()).unwrap(),
            // The vector that is not in the Go tests: Go writes N+1 versions; README
            // "objectVersionHistory: exactly N".
            None => {
                let mut by_code: Vec<(String, String)> =
                    serde_json::from_value(row["expectedByCodeReading"].clone()).unwrap();
                by_code.truncate(2);
                by_code
            }
        };
        assert_eq!(got, expected, "row {i}: {}", row["desc"]);
        for (file, (path, version)) in r.files.iter().zip(&expected) {
            assert_eq!(&file.path, path);
            assert_eq!(file.contents, format!("value-{version}").as_bytes());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_trimmed_object_fields() {
    // formatKeyVaultObject trims every field; so does our parser.
    let world = world().await;
    world.azure.vault(VAULT).secret("secret1", "c2VjcmV0");
    let row = &table("TestFormatKeyVaultObject")[0]["in"];
    let item = format!(
        "objectName: {:?}\nobjectType: {:?}\nobjectEncoding: {:?}\nobjectVersion: {:?}",
        row["objectName"].as_str().unwrap(),
        row["objectType"].as_str().unwrap(),
        row["objectEncoding"].as_str().unwrap(),
        row["objectVersion"].as_str().unwrap(),
    );
    let r = ok(world
        .client()
        .mount(&spc(&world, &[&item]).build(), None, "420")
        .await);
    assert_eq!(
        (r.files[0].path.as_str(), &r.files[0].contents[..]),
        ("secret1", &b"secret"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_vault_url_per_cloud_and_invalid_names() {
    let vectors = table("TestGetVaultURL");
    let world = world().await;
    let name = vectors["valid"]["name"].as_str().unwrap();
    world
        .azure
        .vault(name)
        .grant(CLIENT_ID)
        .secret("s", "hello");
    for (cloud, url) in vectors["valid"]["byCloudName"].as_object().unwrap() {
        let suffix = url
            .as_str()
            .unwrap()
            .trim_start_matches(&format!("https://{name}."))
            .trim_end_matches('/');
        let mut attrs =
            spc(&world, &["objectName: s\nobjectType: secret"]).param("keyvaultName", name);
        if !cloud.is_empty() {
            attrs = attrs.param("cloudName", cloud);
        }
        let r = ok(world.client().mount(&attrs.build(), None, "420").await);
        assert_eq!(r.files[0].contents, b"hello", "{cloud}");
        // The token was for that cloud's vault resource, learned from the vault's challenge.
        let call = world.azure.entra_calls().pop().unwrap();
        assert_eq!(call.scope, format!("https://{suffix}/.default"), "{cloud}");
    }
    // Go: "Invalid vault name: …, must be between 3 and 24 chars" / "must match [-a-zA-Z0-9]{3,24}".
    for row in vectors["invalid"].as_array().unwrap() {
        let bad = row["name"].as_str().unwrap();
        let attrs = spc(&world, &["objectName: s\nobjectType: secret"])
            .param("keyvaultName", bad)
            .build();
        expect(
            world.client().mount(&attrs, None, "420").await,
            Code::InvalidArgument,
            &[&format!("keyvaultName {bad:?}"), "3-24"],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_get_curve() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let world = world().await;
    for row in table("TestGetCurve").as_array().unwrap() {
        let crv = row["crv"].as_str().unwrap();
        let alg = match crv {
            "P-256" | "P-256K" => &rcgen::PKCS_ECDSA_P256_SHA256,
            "P-384" => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ => &rcgen::PKCS_ECDSA_P521_SHA512,
        };
        use rcgen::PublicKeyData;
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let spki_der = key.subject_public_key_info();
        let point = &spki_der[spki_der.len() - key.der_bytes().len()..];
        let (x, y) = point[1..].split_at((point.len() - 1) / 2);
        let name = format!("key-{}", crv.to_ascii_lowercase());
        world.azure.vault(VAULT).add(
            &name,
            Stored::Key {
                jwk: serde_json::json!({
                    "kty": "EC", "crv": crv,
                    "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
                }),
            },
        );
        let item = format!("objectName: {name}\nobjectType: key");
        let result = world
            .client()
            .mount(&spc(&world, &[&item]).build(), None, "420")
            .await;
        if row["ok"] == true {
            let r = ok(result);
            let block = pem::parse(&r.files[0].contents).unwrap();
            assert_eq!(
                (block.tag(), block.contents()),
                ("PUBLIC KEY", &spki_der[..]),
                "{crv}"
            );
        } else {
            // Go: "curve P-256K is not supported".
            expect(
                result,
                Code::FailedPrecondition,
                &["P-256K", "not supported"],
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_validate_format_encoding_and_file_names() {
    let world = world().await;
    world.azure.vault(VAULT).secret("secret1", "value");
    let mount_item = |item: String| {
        let attrs = spc(&world, &[&item]).build();
        let client = world.client();
        async move { client.mount(&attrs, None, "420").await }
    };
    for row in table("TestValidateObjectFormat").as_array().unwrap() {
        let (format, ty) = (
            row["format"].as_str().unwrap(),
            row["type"].as_str().unwrap(),
        );
        let item = format!("objectName: secret1\nobjectType: {ty}\nobjectFormat: {format:?}");
        let result = mount_item(item).await;
        match row["err"].as_str() {
            // Go: "invalid objectFormat: pkcs, should be PEM or PFX".
            Some(e) if e.starts_with("invalid") => {
                expect(
                    result,
                    Code::InvalidArgument,
                    &["objectFormat \"pkcs\" is not one of pem, pfx"],
                );
            }
            // Go: "PFX format only supported for objectType: secret".
            Some(_) => {
                expect(
                    result,
                    Code::InvalidArgument,
                    &["objectFormat", "pfx", "secret"],
                );
            }
            // Valid: nothing to refuse about the format (the cert row has no such cert: 404).
            None => match result {
                Ok(_) => {}
                Err(s) => assert_eq!(s.code(), Code::NotFound, "{row}: {}", s.message()),
            },
        }
    }
    for row in table("TestValidateObjectEncoding").as_array().unwrap() {
        let (encoding, ty) = (
            row["encoding"].as_str().unwrap(),
            row["type"].as_str().unwrap(),
        );
        let item = format!("objectName: secret1\nobjectType: {ty}\nobjectEncoding: {encoding:?}");
        let result = mount_item(item).await;
        match row["err"].as_str() {
            Some(e) if e.starts_with("invalid") => {
                expect(
                    result,
                    Code::InvalidArgument,
                    &["objectEncoding \"utf-16\" is not one of utf-8, hex, base64"],
                );
            }
            // Go: "objectEncoding only supported for objectType: secret".
            Some(_) => {
                expect(result, Code::InvalidArgument, &["objectEncoding", "secret"]);
            }
            None => match result {
                Ok(_) => {}
                Err(s) => assert!(
                    matches!(s.code(), Code::NotFound | Code::FailedPrecondition),
                    "{row}: {}",
                    s.message()
                ),
            },
        }
    }
    for row in table("TestValidateFilePath").as_array().unwrap() {
        let file = row["fileName"].as_str().unwrap();
        // The Go test feeds GetFileName(): the alias, or the name when there is no alias.
        let item = if file.is_empty() {
            "objectName: \"\"\nobjectType: secret".to_owned()
        } else {
            format!("objectName: secret1\nobjectType: secret\nobjectAlias: {file:?}")
        };
        let result = mount_item(item).await;
        match row["err"].as_str() {
            None => {
                ok(result);
            }
            Some(_) => {
                expect(result, Code::InvalidArgument, &["objects[0]"]);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_file_permission() {
    let world = world().await;
    world.azure.vault(VAULT).secret("secret1", "value");
    for row in table("TestGetFilePermission (").as_array().unwrap() {
        let p = row["filePermission"].as_str().unwrap();
        let mut item = "objectName: secret1\nobjectType: secret".to_owned();
        if !p.is_empty() {
            item.push_str(&format!("\nfilePermission: {p:?}"));
        }
        let r = ok(world
            .client()
            .mount(&spc(&world, &[&item]).build(), None, "420")
            .await);
        assert_eq!(
            r.files[0].mode,
            row["expected_decimal"].as_i64().unwrap() as i32,
            "{p}"
        );
    }
    // Go: GetFilePermission errors ("file permission must be a valid octal number"), which
    // the Go provider then writes as mode 0; README: "invalid filePermission | silently mode 0
    // | INVALID_ARGUMENT naming the object".
    for row in table("TestGetFilePermissionError").as_array().unwrap() {
        let p = row["filePermission"].as_str().unwrap();
        let item = format!("objectName: secret1\nobjectType: secret\nfilePermission: {p:?}");
        expect(
            world
                .client()
                .mount(&spc(&world, &[&item]).build(), None, "420")
                .await,
            Code::InvalidArgument,
            &["objects[0]", "filePermission", p],
        );
    }
    let _ = TENANT;
}
