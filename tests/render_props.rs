//! Property tests: encodings round-trip, chain ordering recovers any stored order, jsonPointer
//! escapes, a PFX renders the same whichever form of the empty password keys it, and no input
//! bytes make `render` panic (the entry points are fuzz-friendly).

mod render_support;

use akv_csi_provider::keyvault::{Fetched, Jwk};
use akv_csi_provider::render::pkcs12::{
    self, EmptyPassword, Encryption, Layout, MacDigest, MacSpec, Profile,
};
use akv_csi_provider::render::{
    CONTENT_TYPE_PEM, CONTENT_TYPE_PKCS12, ChainLink, RenderOptions, order_chain, render,
};
use akv_csi_provider::spc::plan::{ObjectEncoding, ObjectFormat, ObjectType};
use base64::Engine as _;
use proptest::prelude::*;
use render_support::*;

fn all_options() -> [RenderOptions; 4] {
    [(true, true), (true, false), (false, true), (false, false)].map(|(c, w)| RenderOptions {
        construct_pem_chain: c,
        write_cert_and_key_in_separate_files: w,
    })
}

proptest! {
    #[test]
    fn hex_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..300), upper: bool) {
        let text = if upper { hex::encode_upper(&bytes) } else { hex::encode(&bytes) };
        let mut s = spec(ObjectType::Secret, "x");
        s.encoding = ObjectEncoding::Hex;
        let out = render(&s, &[secret(&text, None, false)], &RenderOptions::default()).unwrap();
        prop_assert_eq!(out.files[0].contents.to_vec(), bytes);
    }

    #[test]
    fn base64_round_trips_with_go_line_breaks(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        wrap in 1usize..100,
        crlf: bool,
    ) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let sep = if crlf { "\r\n" } else { "\n" };
        let text: Vec<String> = encoded
            .as_bytes()
            .chunks(wrap)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let mut s = spec(ObjectType::Secret, "x");
        s.encoding = ObjectEncoding::Base64;
        let out = render(&s, &[secret(&text.join(sep), None, false)], &RenderOptions::default())
            .unwrap();
        prop_assert_eq!(out.files[0].contents.to_vec(), bytes);
    }

    #[test]
    fn json_pointer_escapes(key in "[a-z~/]{0,8}", value in "\\PC{0,20}") {
        let doc = serde_json::json!({ "outer": { key.clone(): value.clone() } }).to_string();
        let pointer = format!("/outer/{}", key.replace('~', "~0").replace('/', "~1"));
        let mut s = spec(ObjectType::Secret, "x");
        s.json_pointer = Some(pointer);
        let out = render(&s, &[secret(&doc, None, false)], &RenderOptions::default()).unwrap();
        prop_assert_eq!(out.files[0].contents.to_vec(), value.into_bytes());
    }

    /// A linear chain in any stored order comes back leaf → root.
    #[test]
    fn chain_order_recovers_any_permutation(
        perm in (1usize..7).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle()),
        root_self_signed: bool,
    ) {
        let n = perm.len();
        // Chain order: link i is issued by link i+1; the last is the root.
        let chain: Vec<ChainLink> = (0..n)
            .map(|i| ChainLink {
                subject_key_id: Some(vec![i as u8 + 1]),
                authority_key_id: if i + 1 < n {
                    Some(vec![i as u8 + 2])
                } else if root_self_signed {
                    Some(vec![i as u8 + 1])
                } else {
                    None
                },
                public_key: vec![i as u8],
            })
            .collect();
        let stored: Vec<ChainLink> = perm.iter().map(|&i| chain[i].clone()).collect();
        let got = order_chain(&stored, &[]).unwrap();
        let want: Vec<usize> =
            (0..n).map(|i| perm.iter().position(|&p| p == i).unwrap()).collect();
        prop_assert_eq!(got, akv_csi_provider::render::Ordered::Complete(want));
    }

    /// Arbitrary key identifiers never panic; a complete order is a permutation of linked pairs.
    #[test]
    fn chain_order_is_total(
        links in proptest::collection::vec(
            (proptest::option::of(0u8..4), proptest::option::of(0u8..4), 0u8..3),
            0..7,
        ),
        key in proptest::option::of(0u8..3),
    ) {
        let links: Vec<ChainLink> = links
            .into_iter()
            .map(|(s, a, k)| ChainLink {
                subject_key_id: s.map(|b| vec![b]),
                authority_key_id: a.map(|b| vec![b]),
                public_key: vec![k],
            })
            .collect();
        let keys: Vec<Vec<u8>> = key.into_iter().map(|k| vec![k]).collect();
        let key_refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        if let Ok(akv_csi_provider::render::Ordered::Complete(order)) = order_chain(&links, &key_refs) {
            let mut sorted = order.clone();
            sorted.sort_unstable();
            prop_assert_eq!(sorted, (0..links.len()).collect::<Vec<_>>());
            for pair in order.windows(2) {
                prop_assert_eq!(
                    links[pair[0]].authority_key_id.as_ref(),
                    links[pair[1]].subject_key_id.as_ref()
                );
            }
        }
    }

    /// No secret value, content type, encoding or format makes render panic.
    #[test]
    fn secrets_never_panic(
        value in "\\PC{0,200}",
        content in prop_oneof![Just(None), Just(Some(CONTENT_TYPE_PEM)), Just(Some(CONTENT_TYPE_PKCS12)), Just(Some("x"))],
        kid: bool,
        encoding in prop_oneof![Just(ObjectEncoding::Utf8), Just(ObjectEncoding::Hex), Just(ObjectEncoding::Base64)],
        pfx: bool,
        pointer in proptest::option::of("(/[a-z0-9~]{0,3}){0,3}"),
    ) {
        let mut s = spec(ObjectType::Secret, "x");
        s.encoding = encoding;
        s.format = if pfx { ObjectFormat::Pfx } else { ObjectFormat::Pem };
        s.json_pointer = pointer;
        for o in all_options() {
            let _ = render(&s, &[secret(&value, content, kid)], &o);
        }
    }

    /// Arbitrary bytes as a PFX (base64 as Key Vault stores it) or as a cer never panic.
    #[test]
    fn binary_inputs_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for o in all_options() {
            let _ = render(&spec(ObjectType::Secret, "x"), &[secret(&b64(&bytes), Some(CONTENT_TYPE_PKCS12), true)], &o);
        }
        let cer = Fetched::Cert { id: String::new(), cer: bytes };
        let _ = render(&spec(ObjectType::Cert, "x"), &[cer], &RenderOptions::default());
    }

    /// Arbitrary JWK fields never panic.
    #[test]
    fn jwks_never_panic(
        kty in prop_oneof![Just("RSA"), Just("RSA-HSM"), Just("EC"), Just("EC-HSM"), Just("oct")],
        crv in prop_oneof![Just("P-256"), Just("P-384"), Just("P-521"), Just("P-256K")],
        fields in proptest::collection::vec(proptest::option::of("[A-Za-z0-9_=-]{0,100}"), 4),
    ) {
        let jwk = Jwk {
            kty: Some(kty.into()),
            crv: Some(crv.into()),
            n: fields[0].clone(),
            e: fields[1].clone(),
            x: fields[2].clone(),
            y: fields[3].clone(),
        };
        let fetched = Fetched::Key { id: String::new(), jwk };
        let _ = render(&spec(ObjectType::Key, "k"), &[fetched], &RenderOptions::default());
    }
}

fn encryption(choice: usize) -> Encryption {
    [
        Encryption::None,
        Encryption::Rc2_40 { iterations: 1 },
        Encryption::TripleDes { iterations: 1 },
        Encryption::Aes256Cbc { iterations: 1 },
    ][choice]
}

fn rendered(stored_b64: &str, o: &RenderOptions) -> Vec<(String, Vec<u8>, String, String)> {
    let out = render(
        &spec(ObjectType::Secret, "x"),
        &[secret(stored_b64, Some(CONTENT_TYPE_PKCS12), true)],
        o,
    )
    .unwrap();
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    out.files
        .iter()
        .zip(&out.versions)
        .map(|(f, v)| {
            (
                f.path.clone(),
                f.contents.to_vec(),
                v.id.clone(),
                v.version.clone(),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// The same key and certificates, bundled with any algorithms, MAC and layout, give
    /// byte-identical files whether the PFX is keyed with the B.1 empty password (as every PFX
    /// that opened before this provider read both forms) or the B.2 one (Key Vault's), and the
    /// same as p12-keystore's independent B.1 bundle of them.
    #[test]
    fn both_password_forms_render_identically(
        alg in prop_oneof![Just(Alg::Rsa), Just(Alg::P256), Just(Alg::P384)],
        perm in (1usize..=4).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle()),
        with_key: bool,
        keys in 0usize..4,
        certs in 0usize..4,
        mac in 0usize..3,
        keys_first: bool,
    ) {
        let chain = chain(alg, perm.len(), Ids::Full);
        let stored: Vec<Vec<u8>> = perm.iter().map(|&i| chain.certs[i].clone()).collect();
        let key = with_key.then_some(&chain.leaf_key[..]);
        let mac = [
            None,
            Some(MacSpec { digest: MacDigest::Sha1, iterations: 1, salt_len: 20, null_parameters: false }),
            Some(MacSpec { digest: MacDigest::Sha256, iterations: 1, salt_len: 8, null_parameters: true }),
        ][mac];
        let profile = |password| Profile {
            password,
            keys: encryption(keys),
            certs: encryption(certs),
            mac,
            layout: if keys_first { Layout::KeysFirst } else { Layout::CertsFirst },
        };
        let b1 = pfx_in(profile(EmptyPassword::Bmp), key, &stored);
        let b2 = pfx_in(profile(EmptyPassword::ZeroLength), key, &stored);
        let form = pkcs12::open(&b2).unwrap().mac;
        prop_assert_eq!(form, mac.map(|_| EmptyPassword::ZeroLength));
        let reference = pfx(key, &stored);
        for o in all_options() {
            let want = rendered(&b64(&reference), &o);
            prop_assert_eq!(&rendered(&b64(&b1), &o), &want);
            prop_assert_eq!(&rendered(&b64(&b2), &o), &want);
        }
    }
}

/// A corrupted PFX built from a real bundle (so decoding gets past the outer layers).
#[test]
fn corrupted_real_bundles_never_panic() {
    let c = chain(Alg::P256, 3, Ids::Full);
    let good = pfx(Some(&c.leaf_key), &c.certs);
    for i in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[i] ^= 0x5a;
        let _ = render(
            &spec(ObjectType::Secret, "x"),
            &[secret(&b64(&bad), Some(CONTENT_TYPE_PKCS12), true)],
            &RenderOptions::default(),
        );
    }
}
