//! Replays every input kept in `fuzz/corpus/<target>/` (seeds, plus what `scripts/fuzz.sh`
//! found interesting) through the same function the `cargo fuzz` target runs, so CI checks the
//! fuzzers' findings without running a fuzzer. A panic here is a regression.

#[path = "../fuzz/targets_common.rs"]
mod targets_common;

use std::path::Path;

fn replay(target: &str) {
    let (_, run) = targets_common::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz target {target}"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    for file in files {
        let data = std::fs::read(&file).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target} panics on {}", file.display());
    }
}

macro_rules! corpus_tests {
    ($($target:ident),* $(,)?) => {
        $(#[test]
        fn $target() {
            replay(stringify!($target));
        })*

        #[test]
        fn every_target_has_a_replay_test() {
            let tested = [$(stringify!($target)),*];
            for (name, _) in targets_common::TARGETS {
                assert!(tested.contains(name), "{name} has no corpus test");
            }
        }
    };
}

corpus_tests!(
    plan,
    objects_yaml,
    token_map,
    render_secret,
    render_pkcs12,
    render_jwk,
    render_cert,
    keyvault_json,
    check,
    jwt_claims,
    env_file,
    h2front,
    token_failure,
);

/// The PKCS#12 seeds cover both encodings of the empty password (B.1 from the openssl
/// fixtures, B.2 in Key Vault's shape and others), and every seed opens.
#[test]
fn pkcs12_seeds_cover_both_password_forms() {
    use akv_csi_provider::render::pkcs12::{EmptyPassword, open};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/render_pkcs12");
    let mut forms = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = entry.expect("corpus entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("seed-") {
            continue;
        }
        let opened =
            open(&std::fs::read(&path).expect("seed")).unwrap_or_else(|e| panic!("{name}: {e}"));
        forms.push(opened.mac);
    }
    for form in EmptyPassword::BOTH {
        assert!(forms.contains(&Some(form)), "no {form} seed in {forms:?}");
    }
    assert!(forms.contains(&None), "no MAC-less seed");
}
