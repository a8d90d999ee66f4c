//! The example SecretProviderClasses shipped in deploy/examples are valid for the very parser
//! Mount uses: `akv-csi-provider check` accepts every one of them.

use std::process::Command;

#[test]
fn check_accepts_every_example() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_akv-csi-provider"))
        .arg("check")
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains(": invalid"), "{stdout}");
    assert!(
        stdout.contains("0 invalid") || !stdout.contains("invalid"),
        "{stdout}"
    );
}
