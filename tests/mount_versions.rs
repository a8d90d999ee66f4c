//! Versions: pinned, history (paged listing, disabled skipped, exactly N), optional objects.

use akv_csi_provider::Config;
use akv_csi_provider::proto::MountResponse;
use akv_csi_provider::testkit::world::VAULT;
use akv_csi_provider::testkit::{Stored, World, objects_yaml};
use tonic::Code;

fn summary(r: &MountResponse) -> Vec<(String, String)> {
    r.files
        .iter()
        .map(|f| {
            (
                f.path.clone(),
                String::from_utf8_lossy(&f.contents).into_owned(),
            )
        })
        .collect()
}

fn versions(r: &MountResponse) -> Vec<(String, String)> {
    r.object_version
        .iter()
        .map(|v| (v.id.clone(), v.version.clone()))
        .collect()
}

async fn mount(world: &World, items: &[&str]) -> Result<MountResponse, tonic::Status> {
    world
        .client()
        .mount(&world.spc(&objects_yaml(items)).build(), None, "420")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_writes_exactly_n_enabled_versions_newest_first() {
    let world = World::start(Config::defaults()).await;
    let vault = world.azure.vault(VAULT);
    vault.page_size(2);
    let v: Vec<String> = (1..=5)
        .map(|i| vault.secret("rotating", &format!("value-{i}")))
        .collect();
    vault.set_enabled("secrets", "rotating", &v[3], false);

    let r = mount(
        &world,
        &["objectName: rotating\nobjectType: secret\nobjectVersionHistory: 3"],
    )
    .await
    .unwrap();
    assert_eq!(
        summary(&r),
        [
            ("rotating/0", "value-5"),
            ("rotating/1", "value-3"),
            ("rotating/2", "value-2")
        ]
        .map(|(p, c)| (p.to_owned(), c.to_owned()))
    );
    assert_eq!(
        versions(&r),
        [
            ("secret/rotating/0", &v[4]),
            ("secret/rotating/1", &v[2]),
            ("secret/rotating/2", &v[1])
        ]
        .map(|(id, ver)| (id.to_owned(), ver.clone()))
    );
    // Five versions, two per page: three listing pages, then three GETs.
    let counts = world.azure.counts();
    assert_eq!((counts.lists, counts.gets), (3, 3), "{counts:?}");

    // Starting at a pinned version.
    let pinned = format!(
        "objectName: rotating\nobjectType: secret\nobjectVersionHistory: 2\nobjectVersion: {}",
        v[2]
    );
    let r = mount(&world, &[&pinned]).await.unwrap();
    assert_eq!(
        summary(&r),
        [("rotating/0", "value-3"), ("rotating/1", "value-2")]
            .map(|(p, c)| (p.to_owned(), c.to_owned()))
    );

    // A pinned start that is disabled is FAILED_PRECONDITION naming it, not "not found".
    let disabled = format!(
        "objectName: rotating\nobjectType: secret\nobjectVersionHistory: 2\nobjectVersion: {}",
        v[3]
    );
    let e = mount(&world, &[&disabled]).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(
        e.message().contains(&v[3]) && e.message().contains("disabled"),
        "{}",
        e.message()
    );
    // Version ids compare case-insensitively (Key Vault's are lowercase hex).
    let upper = format!(
        "objectName: rotating\nobjectType: secret\nobjectVersionHistory: 1\nobjectVersion: {}",
        v[2].to_uppercase()
    );
    let _ = mount(&world, &[&upper]).await.unwrap();

    // Asking for more than exist writes what exists, never more than N.
    let r = mount(
        &world,
        &["objectName: rotating\nobjectType: secret\nobjectVersionHistory: 10"],
    )
    .await
    .unwrap();
    assert_eq!(r.files.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_with_no_enabled_version_is_failed_precondition() {
    let world = World::start(Config::defaults()).await;
    let vault = world.azure.vault(VAULT);
    let only = vault.secret("off", "x");
    vault.set_enabled("secrets", "off", &only, false);
    let e = mount(
        &world,
        &["objectName: off\nobjectType: secret\nobjectVersionHistory: 2"],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(
        e.message()
            .contains("no version of secret \"off\" is enabled"),
        "{}",
        e.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_of_keys_and_certificates() {
    let world = World::start(Config::defaults()).await;
    let vault = world.azure.vault(VAULT);
    let k1 = akv_csi_provider::testkit::material::ec_key(false, false);
    let k2 = akv_csi_provider::testkit::material::ec_key(false, false);
    vault.add(
        "k",
        Stored::Key {
            jwk: k1.jwk.clone(),
        },
    );
    vault.add(
        "k",
        Stored::Key {
            jwk: k2.jwk.clone(),
        },
    );
    let cert = akv_csi_provider::testkit::material::rsa_certificate();
    vault.certificate(
        "c",
        &cert.pfx_base64,
        "application/x-pkcs12",
        &cert.leaf_der,
    );
    vault.certificate(
        "c",
        &cert.pfx_base64,
        "application/x-pkcs12",
        &cert.leaf_der,
    );
    let r = mount(
        &world,
        &[
            "objectName: k\nobjectType: key\nobjectVersionHistory: 2",
            "objectName: c\nobjectType: cert\nobjectVersionHistory: 2",
        ],
    )
    .await
    .unwrap();
    let s = summary(&r);
    assert_eq!(s[0], ("k/0".to_owned(), k2.expected_pem()));
    assert_eq!(s[1], ("k/1".to_owned(), k1.expected_pem()));
    assert_eq!((s[2].0.as_str(), s[3].0.as_str()), ("c/0", "c/1"));
    assert!(s[2].1.starts_with("-----BEGIN CERTIFICATE-----\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_versions() {
    let world = World::start(Config::defaults()).await;
    let vault = world.azure.vault(VAULT);
    let old = vault.secret("s", "old");
    let new = vault.secret("s", "new");
    let r = mount(
        &world,
        &[&format!(
            "objectName: s\nobjectType: secret\nobjectVersion: {old}"
        )],
    )
    .await
    .unwrap();
    assert_eq!(summary(&r), [("s".to_owned(), "old".to_owned())]);
    assert_eq!(versions(&r), [("secret/s".to_owned(), old.clone())]);
    let r = mount(
        &world,
        &["objectName: s\nobjectType: secret\nobjectVersion: latest"],
    )
    .await
    .unwrap();
    assert_eq!(versions(&r), [("secret/s".to_owned(), new.clone())]);

    let missing = "0123456789abcdef0123456789abcdef";
    let e = mount(
        &world,
        &[&format!(
            "objectName: s\nobjectType: secret\nobjectVersion: {missing}"
        )],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{}", e.message());
    assert!(
        e.message().contains(missing) && e.message().contains("kv-demo"),
        "{}",
        e.message()
    );

    vault.set_enabled("secrets", "s", &old, false);
    let e = mount(
        &world,
        &[&format!(
            "objectName: s\nobjectType: secret\nobjectVersion: {old}"
        )],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(
        e.message().contains(&old) && e.message().contains("disabled"),
        "{}",
        e.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_objects_may_be_absent() {
    let world = World::start(Config::defaults()).await;
    let here = world.azure.vault(VAULT).secret("present", "yes");
    let r = mount(
        &world,
        &[
            "objectName: present\nobjectType: secret",
            "objectName: absent\nobjectType: secret\noptional: true",
        ],
    )
    .await
    .unwrap();
    assert_eq!(summary(&r), [("present".to_owned(), "yes".to_owned())]);
    assert_eq!(
        versions(&r),
        [
            ("secret/present".to_owned(), here),
            ("secret/absent".to_owned(), String::new())
        ]
    );

    // Only optional objects, all absent: success with no files, one version entry each.
    let r = mount(
        &world,
        &["objectName: absent\nobjectType: key\noptional: true"],
    )
    .await
    .unwrap();
    assert!(r.files.is_empty());
    assert_eq!(versions(&r), [("key/absent".to_owned(), String::new())]);

    // Without optional, the same absence fails the whole Mount with no files.
    let e = mount(
        &world,
        &[
            "objectName: present\nobjectType: secret",
            "objectName: absent\nobjectType: secret",
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message().contains("objects[1] (objectName \"absent\")")
            && e.message().contains("no secret named"),
        "{}",
        e.message()
    );
}
