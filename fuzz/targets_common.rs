//! The body of every fuzz target, one `fn(&[u8])` each, shared by the `cargo fuzz` binaries in
//! `fuzz/fuzz_targets/` and by `tests/fuzz_corpus.rs`, which replays `fuzz/corpus/<target>/` in
//! the ordinary test run. Each function must return normally for every input: a panic (or a
//! failed `assert!` on an invariant checked here) is a finding.
//!
//! Inputs are plain bytes so any corpus file replays the same way in both places. Targets that
//! need several fields split the input on NUL bytes.
#![allow(dead_code)] // each fuzz binary uses one function

use akv_csi_provider::check::{Input, check_inputs};
use akv_csi_provider::keyvault::{Fetched, Jwk, version_of};
use akv_csi_provider::render::{CONTENT_TYPE_PKCS12, RenderOptions, public_key_der, render};
use akv_csi_provider::spc::params::{self, PlanDefaults};
use akv_csi_provider::spc::plan::{
    MountPlan, ObjectEncoding, ObjectFormat, ObjectPart, ObjectSpec, ObjectType,
};
use akv_csi_provider::spc::request::{Attributes, Secrets};
use akv_csi_provider::spc::tokens::{TOKENS_KEY, azure_token};
use akv_csi_provider::spc::{RawRequest, plan_request};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use akv_csi_provider::h2front::inbound::PREFACE;
use akv_csi_provider::h2front::{Inbound, Limits, Repair};

/// One target's body.
pub type Target = fn(&[u8]);

/// Every target by name: the name is both the `cargo fuzz` binary and the corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("plan", plan),
    ("objects_yaml", objects_yaml),
    ("token_map", token_map),
    ("render_secret", render_secret),
    ("render_pkcs12", render_pkcs12),
    ("render_jwk", render_jwk),
    ("render_cert", render_cert),
    ("keyvault_json", keyvault_json),
    ("check", check),
    ("jwt_claims", jwt_claims),
    ("env_file", env_file),
    ("h2front", h2front),
    ("token_failure", token_failure),
];

/// A valid workload-identity SecretProviderClass as kubelet passes it, minus `objects`.
pub const BASE_ATTRIBUTES: &[(&str, &str)] = &[
    ("keyvaultName", "kv-demo"),
    ("tenantID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
    ("clientID", "0d4c8f3e-5b7a-4c1e-9f2d-3a6b8c1d2e4f"),
    ("csi.storage.k8s.io/pod.name", "app-0"),
    ("csi.storage.k8s.io/pod.namespace", "default"),
    (
        TOKENS_KEY,
        r#"{"api://AzureADTokenExchange":{"token":"eyJ.test.jwt","expirationTimestamp":"2026-11-22T17:18:32Z"}}"#,
    ),
];

/// The driver's file path rules, written independently of the parser's own check: relative,
/// clean (no empty, `.` or `..` elements), elements ≤ 255 bytes, whole path ≤ 4096 bytes, no NUL.
pub fn path_is_clean(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path.len() <= 4096
        && !path.contains('\0')
        && path
            .split('/')
            .all(|e| !e.is_empty() && e != "." && e != ".." && e.len() <= 255)
}

/// What every accepted plan must satisfy.
pub fn assert_plan_sound(plan: &MountPlan) {
    assert!(!plan.objects.is_empty(), "a plan without objects");
    assert!(!plan.vault_name.is_empty(), "a plan without a vault");
    let mut seen = std::collections::BTreeSet::new();
    for spec in &plan.objects {
        for path in spec.paths() {
            assert!(path_is_clean(&path), "unclean path {path:?}");
            assert!(seen.insert(path.clone()), "two objects write {path:?}");
        }
        assert!(spec.mode <= 0o777, "mode {:o}", spec.mode);
    }
    let _ = plan.identity.describe();
}

/// Splits `data` into exactly `n` fields at NUL bytes (missing fields are empty).
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = data
        .splitn(n, |b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    out.resize(n, String::new());
    out
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// `attributes` NUL `secrets` NUL `permission`, as the driver's three `MountRequest` strings.
pub fn plan(data: &[u8]) {
    let f = fields(data, 3);
    let raw = RawRequest {
        attributes: &f[0],
        secrets: &f[1],
        permission: &f[2],
    };
    match plan_request(&raw, &PlanDefaults::default()) {
        Ok(plan) => assert_plan_sound(&plan),
        Err(e) => drop(e.to_string()),
    }
}

/// The whole input as the `objects` parameter of an otherwise valid attribute set.
pub fn objects_yaml(data: &[u8]) {
    let objects = text(data);
    let attributes = Attributes::from_pairs(
        BASE_ATTRIBUTES
            .iter()
            .copied()
            .chain([("objects", objects.as_str())]),
    );
    match params::parse(
        &attributes,
        &Secrets::default(),
        0o644,
        &PlanDefaults::default(),
    ) {
        Ok(plan) => assert_plan_sound(&plan),
        Err(e) => drop(e.to_string()),
    }
}

/// The input as kubelet's token map, in the attributes and in the secrets.
pub fn token_map(data: &[u8]) {
    use secrecy::ExposeSecret;
    let map = text(data);
    let in_attributes = Attributes::from_pairs([(TOKENS_KEY, map.as_str())]);
    let in_secrets = Secrets::from_pairs([(TOKENS_KEY, map.as_str())]);
    for (attributes, secrets) in [
        (&in_attributes, &Secrets::default()),
        (&Attributes::default(), &in_secrets),
    ] {
        match azure_token(attributes, secrets) {
            Ok(token) => {
                let jwt = token.jwt.expose_secret();
                assert!(!jwt.is_empty() && jwt.trim() == jwt, "an untrimmed token");
                let _ = akv_csi_provider::auth::jwt::claims(jwt);
            }
            Err(e) => drop(e.to_string()),
        }
    }
}

fn spec(object_type: ObjectType, format: ObjectFormat, encoding: ObjectEncoding) -> ObjectSpec {
    ObjectSpec {
        index: 0,
        name: "fuzz".into(),
        object_type,
        alias: "out".into(),
        version: None,
        history: 1,
        format,
        format_explicit: format == ObjectFormat::Pfx,
        part: None,
        encoding,
        mode: 0o644,
        optional: false,
        json_pointer: None,
        vault: None,
    }
}

const PARTS: [ObjectPart; 5] = [
    ObjectPart::All,
    ObjectPart::Key,
    ObjectPart::Leaf,
    ObjectPart::Chain,
    ObjectPart::Ca,
];

const ENCODINGS: [ObjectEncoding; 3] = [
    ObjectEncoding::Utf8,
    ObjectEncoding::Hex,
    ObjectEncoding::Base64,
];

fn all_options() -> [RenderOptions; 4] {
    [(true, true), (true, false), (false, true), (false, false)].map(|(c, w)| RenderOptions {
        construct_pem_chain: c,
        write_cert_and_key_in_separate_files: w,
    })
}

/// Renders and checks what every successful render promises: one version entry per file.
fn render_checked(spec: &ObjectSpec, versions: &[Fetched], options: &RenderOptions) {
    match render(spec, versions, options) {
        Ok(out) => {
            assert_eq!(out.files.len(), out.versions.len());
            assert!(!out.files.is_empty(), "a render with no files");
            for f in &out.files {
                assert!(path_is_clean(&f.path), "unclean rendered path {:?}", f.path);
            }
        }
        Err(e) => drop(e.to_string()),
    }
}

/// A flags byte, then `value` NUL `contentType` NUL `kid` NUL `jsonPointer` of one secret.
/// Flags: bits 0-1 objectEncoding, bit 2 pfx, bit 3 chain, bit 4 separate files, bit 5 kid
/// present, bit 6 jsonPointer present, bit 7 the same version twice with history 2. Without a
/// jsonPointer the last field may name an `objectPart`, or be `pem` for an explicit objectFormat.
pub fn render_secret(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let f = fields(rest, 4);
    let encoding = ENCODINGS[usize::from(flags & 3) % 3];
    let format = if flags & 4 != 0 {
        ObjectFormat::Pfx
    } else {
        ObjectFormat::Pem
    };
    let mut s = spec(ObjectType::Secret, format, encoding);
    if flags & 64 != 0 {
        s.json_pointer = Some(f[3].clone());
    } else if f[3] == "pem" {
        s.format_explicit = true;
    } else {
        s.part = PARTS.iter().copied().find(|p| p.as_str() == f[3]);
    }
    let fetched = Fetched::Secret {
        id: "https://kv-demo.vault.azure.net/secrets/fuzz/0123abcd".into(),
        value: Zeroizing::new(f[0].clone()),
        content_type: (!f[1].is_empty()).then(|| f[1].clone()),
        kid: (flags & 32 != 0).then(|| f[2].clone()),
    };
    let options = RenderOptions {
        construct_pem_chain: flags & 8 != 0,
        write_cert_and_key_in_separate_files: flags & 16 != 0,
    };
    let versions = if flags & 128 != 0 {
        s.history = 2;
        vec![fetched.clone(), fetched]
    } else {
        vec![fetched]
    };
    render_checked(&s, &versions, &options);
}

/// The input as the PFX of a certificate-backed `application/x-pkcs12` secret (Key Vault stores
/// it base64-encoded), rendered as pem and pfx with every option combination.
pub fn render_pkcs12(data: &[u8]) {
    let fetched = [Fetched::Secret {
        id: "https://kv-demo.vault.azure.net/secrets/tls/0123abcd".into(),
        value: Zeroizing::new(STANDARD.encode(data)),
        content_type: Some(CONTENT_TYPE_PKCS12.into()),
        kid: Some("https://kv-demo.vault.azure.net/keys/tls/0123abcd".into()),
    }];
    for options in all_options() {
        render_checked(
            &spec(ObjectType::Secret, ObjectFormat::Pem, ObjectEncoding::Utf8),
            &fetched,
            &options,
        );
        for part in PARTS {
            let mut s = spec(ObjectType::Secret, ObjectFormat::Pem, ObjectEncoding::Utf8);
            s.part = Some(part);
            render_checked(&s, &fetched, &options);
        }
    }
    for encoding in [ObjectEncoding::Utf8, ObjectEncoding::Base64] {
        render_checked(
            &spec(ObjectType::Secret, ObjectFormat::Pfx, encoding),
            &fetched,
            &RenderOptions::default(),
        );
    }
}

/// The input as a JSON Web Key; when it yields a public key, that key must be valid SPKI DER.
pub fn render_jwk(data: &[u8]) {
    let Ok(jwk) = serde_json::from_slice::<Jwk>(data) else {
        return;
    };
    render_key(jwk);
}

fn render_key(jwk: Jwk) {
    if let Ok(der) = public_key_der(&jwk, "objects[0]") {
        assert!(
            spki::SubjectPublicKeyInfoRef::try_from(der.as_slice()).is_ok(),
            "public_key_der produced DER that is not SubjectPublicKeyInfo"
        );
    }
    let fetched = [Fetched::Key {
        id: "https://kv-demo.vault.azure.net/keys/k/0123abcd".into(),
        jwk,
    }];
    render_checked(
        &spec(ObjectType::Key, ObjectFormat::Pem, ObjectEncoding::Utf8),
        &fetched,
        &RenderOptions::default(),
    );
}

/// The input as a certificate's `cer`; the file must be exactly that DER in one PEM block.
pub fn render_cert(data: &[u8]) {
    let fetched = [Fetched::Cert {
        id: "https://kv-demo.vault.azure.net/certificates/c/0123abcd".into(),
        cer: data.to_vec(),
    }];
    let s = spec(ObjectType::Cert, ObjectFormat::Pem, ObjectEncoding::Utf8);
    if let Ok(out) = render(&s, &fetched, &RenderOptions::default()) {
        let block = pem::parse(&out.files[0].contents[..]).expect("rendered cert is PEM");
        assert_eq!(block.tag(), "CERTIFICATE");
        assert_eq!(block.contents(), data);
    }
}

/// The input as each Key Vault response body the provider reads, and for those that parse, the
/// extraction `keyvault::fetch_version` / `list_versions` does, then rendering.
pub fn keyvault_json(data: &[u8]) {
    use azure_security_keyvault_certificates::models as certs;
    use azure_security_keyvault_keys::models as keys;
    use azure_security_keyvault_secrets::models as secrets;

    use akv_csi_provider::keyvault::models;

    // Exactly what a Mount does with each model, then the renderer.
    if let Ok(secret) = serde_json::from_slice::<secrets::Secret>(data)
        && let Ok(fetched) = models::fetched_from_secret(secret)
    {
        let _ = version_of(fetched.id());
        let fetched = [fetched];
        for options in all_options() {
            render_checked(
                &spec(ObjectType::Secret, ObjectFormat::Pem, ObjectEncoding::Utf8),
                &fetched,
                &options,
            );
        }
    }
    if let Ok(key) = serde_json::from_slice::<keys::Key>(data)
        && let Ok(Fetched::Key { jwk, .. }) = models::fetched_from_key(key)
    {
        render_key(jwk);
    }
    if let Ok(fetched) = models::fetched_from_certificate_json(data) {
        render_checked(
            &spec(ObjectType::Cert, ObjectFormat::Pem, ObjectEncoding::Utf8),
            &[fetched],
            &RenderOptions::default(),
        );
    }
    // As list_versions: enabled versions with a creation time, newest first.
    let mut raw = Vec::new();
    if let Ok(page) = serde_json::from_slice::<secrets::ListSecretPropertiesResult>(data) {
        raw.extend(models::listed_secrets(page.value));
    }
    if let Ok(page) = serde_json::from_slice::<keys::ListKeyPropertiesResult>(data) {
        raw.extend(models::listed_keys(page.value));
    }
    if let Ok(page) = serde_json::from_slice::<certs::ListCertificatePropertiesResult>(data) {
        raw.extend(models::listed_certificates(page.value));
    }
    let listed = models::newest_first(raw);
    for (_, id, _) in &listed {
        let _ = version_of(id);
    }
}

/// The input as a manifest file given to `akv-csi-provider check`.
pub fn check(data: &[u8]) {
    let inputs = [Input {
        name: "fuzz.yaml".into(),
        content: Ok(text(data)),
    }];
    let report = check_inputs(&inputs, &PlanDefaults::default());
    let _ = report.exit_code();
    for doc in &report.documents {
        assert_eq!(doc.valid, doc.problems.is_empty());
        for file in &doc.files {
            assert!(path_is_clean(&file.path), "check lists {:?}", file.path);
        }
    }
    serde_json::to_string(&report).expect("a check report serialises");
}

/// The input as a whole JWT, and as the payload of one.
pub fn jwt_claims(data: &[u8]) {
    use akv_csi_provider::auth::jwt::claims;
    let _ = claims(&text(data));
    let _ = claims(&format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(data)));
}

/// The input as an Azure Stack environment file.
pub fn env_file(data: &[u8]) {
    if let Ok(endpoints) = akv_csi_provider::cloud::parse_environment(data) {
        assert!(endpoints.authority_host.starts_with("https://"));
        assert!(endpoints.authority_host.ends_with('/'));
        let _ = endpoints.vault_url("kv-demo");
        let _ = endpoints.key_vault_scope();
    }
}

/// A connection's client bytes after the preface, fed to the authority front in chunks of
/// (first byte + 1) bytes. The output must not depend on the chunking, nothing may be held
/// back at the end, and every block the front rewrote must decode (independent decoder,
/// loona-hpack) to what the client sent — when that decoder reads the client's block too —
/// with only an `:authority` h2 would refuse turned into `localhost`.
pub fn h2front(data: &[u8]) {
    let Some((&chunk, body)) = data.split_first() else {
        return;
    };
    let bytes = [&PREFACE[..], body].concat();
    let run = |chunk: usize| {
        let mut inbound = Inbound::new(Repair::new(), Limits::default());
        let mut out = Vec::new();
        for piece in bytes.chunks(chunk) {
            inbound.push(piece, &mut out);
        }
        inbound.finish(&mut out);
        assert_eq!(inbound.held(), 0, "bytes held back after the end");
        (out, inbound.rewritten())
    };
    let (out, rewritten) = run(usize::from(chunk) + 1);
    assert_eq!(
        run(bytes.len().max(1)).0,
        out,
        "the chunking changed the output"
    );

    let sent_blocks = header_blocks(&bytes);
    let out_blocks = header_blocks(&out);
    let rewritten = usize::try_from(rewritten).unwrap_or(usize::MAX);
    assert!(
        out_blocks.len() >= rewritten,
        "rewritten blocks missing from the output"
    );
    let mut client = loona_hpack::Decoder::new();
    client.set_max_allowed_table_size(4096);
    let mut server = loona_hpack::Decoder::new();
    for (sent, got) in sent_blocks.iter().zip(&out_blocks).take(rewritten) {
        let Ok(sent) = client.decode(sent) else {
            // A block the independent decoder refuses (it is stricter in places): its table
            // may now differ from the client's, so nothing after it can be compared.
            return;
        };
        let got = server
            .decode(got)
            .unwrap_or_else(|e| panic!("the front's block does not decode: {e:?}"));
        let meant: Vec<(Vec<u8>, Vec<u8>)> = sent
            .into_iter()
            .map(|(name, value)| {
                let refused =
                    name == b":authority" && http::uri::Authority::try_from(&value[..]).is_err();
                (
                    name,
                    if refused {
                        b"localhost".to_vec()
                    } else {
                        value
                    },
                )
            })
            .collect();
        assert_eq!(got, meant, "the front changed a header list");
    }
}

/// The header blocks of an HTTP/2 client stream (preface first), in order, up to the first
/// frame this simple reader cannot follow.
fn header_blocks(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut open: Option<Vec<u8>> = None;
    let mut pos = PREFACE.len();
    while let Some(head) = bytes.get(pos..pos + 9) {
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let Some(payload) = bytes.get(pos + 9..pos + 9 + len) else {
            break;
        };
        pos += 9 + len;
        let fragment = match (kind, open.is_some()) {
            (0x1, false) => {
                let mut p = payload;
                let mut pad = 0;
                if flags & 0x8 != 0 {
                    let Some((&n, rest)) = p.split_first() else {
                        break;
                    };
                    pad = usize::from(n);
                    p = rest;
                }
                if flags & 0x20 != 0 {
                    let Some(rest) = p.get(5..) else { break };
                    p = rest;
                }
                let Some(f) = p
                    .get(..p.len().saturating_sub(pad))
                    .filter(|_| pad <= p.len())
                else {
                    break;
                };
                f
            }
            (0x9, true) => payload,
            (0x9, false) | (_, true) => break,
            _ => continue,
        };
        let block = open.get_or_insert_with(Vec::new);
        block.extend_from_slice(fragment);
        if flags & 0x4 != 0 {
            blocks.extend(open.take());
        }
    }
    blocks
}

/// The input as a token endpoint's refusal body (Entra, AD FS, IMDS, NMI) under a few
/// statuses: whatever it is, the summary a pod message quotes is one bounded, printable line.
pub fn token_failure(data: &[u8]) {
    use akv_csi_provider::http::TokenFailure;
    for status in [400u16, 401, 429, 503] {
        let failure = TokenFailure::parse(status, None, data);
        let summary = failure.summary();
        assert!(summary.chars().count() < 1000, "{summary}");
        assert!(!summary.chars().any(char::is_control), "{summary:?}");
        if let Ok(text) = std::str::from_utf8(data) {
            let codes = akv_csi_provider::http::token_endpoint::aadsts_codes(text);
            assert!(codes.len() <= text.matches("AADSTS").count());
        }
    }
}
