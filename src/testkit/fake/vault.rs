//! Fake Key Vault: the 401 challenge, bearer checks against the fake Entra's grants, access
//! control by principal, objects with versions, disabled versions and paged `versions` listings.
//! Every answer is a recorded one ([`Recorded`]: REST-spec example bodies for objects, captured
//! error bodies for refusals) with the test's values filled in.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::recorded::Recorded;
use super::server::{Incoming2, Reply, fault};
use super::{State, TENANT, Target};

/// One stored version's content.
#[derive(Debug, Clone)]
pub enum Stored {
    /// A secret; `kid` is set when it backs a certificate.
    Secret {
        value: String,
        content_type: Option<String>,
        kid: Option<String>,
    },
    /// A key: the JWK members (base64url strings), without `kid`.
    Key { jwk: Value },
    /// A certificate: the leaf's DER.
    Cert { cer: Vec<u8> },
}

impl Stored {
    fn collection(&self) -> &'static str {
        match self {
            Stored::Secret { .. } => "secrets",
            Stored::Key { .. } => "keys",
            Stored::Cert { .. } => "certificates",
        }
    }
}

#[derive(Debug, Clone)]
struct Version {
    id: String,
    created: i64,
    enabled: bool,
    stored: Stored,
}

pub(crate) struct Vault {
    /// Principals (client IDs) allowed to read.
    readers: HashSet<String>,
    /// Calls to this vault alone.
    counts: VaultCounts,
    /// When each request to this vault arrived, challenges included.
    arrivals: Vec<std::time::Instant>,
    /// (collection, name) → versions, oldest first.
    objects: BTreeMap<(&'static str, String), Vec<Version>>,
    page_size: usize,
}

impl Vault {
    pub(crate) fn new() -> Self {
        Vault {
            readers: HashSet::new(),
            counts: VaultCounts::default(),
            arrivals: Vec::new(),
            objects: BTreeMap::new(),
            page_size: 25,
        }
    }
}

/// Calls one vault received (the totals across vaults are in `Counts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VaultCounts {
    /// Unauthenticated requests answered with the 401 challenge.
    pub challenges: usize,
    /// Authorized object GETs.
    pub gets: usize,
}

/// Fills one fake vault.
pub struct VaultHandle {
    state: Arc<State>,
    name: String,
}

const BASE_TIME: i64 = 1_700_000_000;

impl VaultHandle {
    pub(crate) fn new(state: Arc<State>, name: &str) -> Self {
        VaultHandle {
            state,
            name: name.to_owned(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Vault) -> R) -> R {
        let mut vaults = self.state.vaults.lock().unwrap_or_else(|e| e.into_inner());
        let vault = vaults.entry(self.name.clone()).or_insert_with(Vault::new);
        f(vault)
    }

    /// Lets `principal` (a client ID, or `vm-system-assigned`) read everything.
    pub fn grant(&self, principal: &str) -> &Self {
        self.with(|v| v.readers.insert(principal.to_owned()));
        self
    }

    /// Page size of `versions` listings (small values exercise `nextLink`).
    pub fn page_size(&self, size: usize) -> &Self {
        self.with(|v| v.page_size = size.max(1));
        self
    }

    /// Adds a new version (the newest) and returns its version id.
    pub fn add(&self, name: &str, stored: Stored) -> String {
        self.add_version(name, stored, true)
    }

    /// Adds a new version that may be disabled; returns its version id.
    pub fn add_version(&self, name: &str, stored: Stored, enabled: bool) -> String {
        let n = self.state.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("{n:032x}");
        let collection = stored.collection();
        self.with(|v| {
            v.objects
                .entry((collection, name.to_owned()))
                .or_default()
                .push(Version {
                    id: id.clone(),
                    created: BASE_TIME + n as i64,
                    enabled,
                    stored,
                })
        });
        id
    }

    /// Adds a version with a given id (e.g. one a recorded answer names), created at `created`
    /// (Unix seconds).
    pub fn add_with_id(&self, name: &str, id: &str, created: i64, stored: Stored) {
        let collection = stored.collection();
        self.with(|v| {
            let versions = v.objects.entry((collection, name.to_owned())).or_default();
            versions.push(Version {
                id: id.to_owned(),
                created,
                enabled: true,
                stored,
            });
            // Versions are kept oldest first.
            versions.sort_by_key(|x| x.created);
        });
    }

    /// A plain secret version.
    pub fn secret(&self, name: &str, value: &str) -> String {
        self.add(
            name,
            Stored::Secret {
                value: value.to_owned(),
                content_type: None,
                kid: None,
            },
        )
    }

    /// A Key Vault certificate: the certificate object (`cer`), its backing secret (the bundle
    /// with `content_type`, `kid` set) and its key, all with the same version id. For
    /// `application/x-pkcs12`, Key Vault's own bundles are in the shape of
    /// [`crate::testkit::material::key_vault_pfx`] (the B.2 empty password); the
    /// `material::*_certificate()` helpers give them that way.
    pub fn certificate(&self, name: &str, bundle: &str, content_type: &str, cer: &[u8]) -> String {
        let version = self.add(name, Stored::Cert { cer: cer.to_vec() });
        let host = self.host();
        let kid = format!("https://{host}/keys/{name}/{version}");
        let stored = Stored::Secret {
            value: bundle.to_owned(),
            content_type: Some(content_type.to_owned()),
            kid: Some(kid),
        };
        self.with(|v| {
            v.objects
                .entry(("secrets", name.to_owned()))
                .or_default()
                .push(Version {
                    id: version.clone(),
                    created: BASE_TIME + i64::from_str_radix(&version, 16).unwrap_or_default(),
                    enabled: true,
                    stored,
                })
        });
        version
    }

    /// An App Service certificate as Key Vault holds it: a plain secret (no `kid`, no backing
    /// Key Vault certificate) with the PFX as base64 text and content type
    /// `application/x-pkcs12` — `az keyvault secret show` prints `"kid": null` for it (Go
    /// provider issue #1952, whose reporter checked exactly that; #273).
    pub fn app_service_certificate(&self, name: &str, pfx_base64: &str) -> String {
        self.add(
            name,
            Stored::Secret {
                value: pfx_base64.to_owned(),
                content_type: Some("application/x-pkcs12".to_owned()),
                kid: None,
            },
        )
    }

    /// Enables or disables one version.
    pub fn set_enabled(&self, collection: &str, name: &str, version: &str, enabled: bool) {
        self.with(|v| {
            for ((c, n), versions) in v.objects.iter_mut() {
                if *c == collection && n == name {
                    for ver in versions.iter_mut().filter(|x| x.id == version) {
                        ver.enabled = enabled;
                    }
                }
            }
        });
    }

    /// Calls this vault received so far.
    pub fn counts(&self) -> VaultCounts {
        self.with(|v| v.counts)
    }

    /// When each request to this vault arrived (challenges included), oldest first.
    pub fn arrivals(&self) -> Vec<std::time::Instant> {
        self.with(|v| v.arrivals.clone())
    }

    /// The vault's host name in the public cloud.
    pub fn host(&self) -> String {
        format!("{}.vault.azure.net", self.name)
    }
}

fn attributes(v: &Version) -> Value {
    json!({
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.created,
        "recoveryLevel": "Recoverable+Purgeable",
    })
}

/// The singular noun Key Vault uses in its messages for a collection.
fn noun(collection: &str) -> &'static str {
    match collection {
        "secrets" => "secret",
        "keys" => "key",
        _ => "certificate",
    }
}

/// The recorded 404 (`SecretNotFound`) for `name` (or `name/version`) in `collection`; for keys
/// and certificates the recorded secret answer with Key Vault's `KeyNotFound` /
/// `CertificateNotFound` code and noun (derived: no capture of those two was found).
fn not_found(collection: &str, what: &str) -> Reply {
    let recorded = Recorded::get("keyvault/secret-not-found-404")
        .replace("somesecret/0000000000000000000000000000", what);
    let recorded = match collection {
        "secrets" => recorded,
        "keys" => recorded
            .replace("SecretNotFound", "KeyNotFound")
            .replace("A secret with", "A key with")
            .replace("deleted this secret", "deleted this key"),
        _ => recorded
            .replace("SecretNotFound", "CertificateNotFound")
            .replace("A secret with", "A certificate with")
            .replace("deleted this secret", "deleted this certificate"),
    };
    Ok(recorded.reply())
}

/// The recorded 403 for a disabled secret; for keys and certificates with Key Vault's
/// `KeyDisabled` / `CertificateDisabled` and noun (derived).
fn disabled(collection: &str) -> Reply {
    let recorded = Recorded::get("keyvault/secret-disabled-403");
    let recorded = match collection {
        "secrets" => recorded,
        other => {
            let noun = noun(other);
            let code = format!("{}{}Disabled", noun[..1].to_uppercase(), &noun[1..]);
            recorded
                .replace("disabled secret", &format!("disabled {noun}"))
                .replace("SecretDisabled", &code)
        }
    };
    Ok(recorded.reply())
}

/// Handles one request to `{vault}.{suffix}`.
pub(crate) fn handle(state: &State, req: &Incoming2) -> Reply {
    state.counters.vault.fetch_add(1, Ordering::Relaxed);
    let limit = state.vault_rate_limit.load(Ordering::Relaxed);
    {
        // Every arrival counts, answered or throttled, as Key Vault counts transactions.
        let mut times = state.vault_times.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        times.push(now);
        if limit > 0 {
            let recent = times
                .iter()
                .rev()
                .take_while(|t| now.duration_since(**t).as_secs_f64() < 1.0)
                .count();
            if recent > limit {
                drop(times);
                state.counters.throttled.fetch_add(1, Ordering::Relaxed);
                return Ok(Recorded::get("keyvault/throttled-429")
                    .with_header("Retry-After", "1")
                    .reply());
            }
        }
    }
    let (vault_name, suffix) = req.host.split_once('.').unwrap_or((req.host.as_str(), ""));
    let resource = format!("https://{suffix}");
    let count = |f: fn(&mut VaultCounts)| {
        let mut vaults = state.vaults.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(vault) = vaults.get_mut(vault_name) {
            f(&mut vault.counts);
        }
    };
    if let Some(vault) = state
        .vaults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(vault_name)
    {
        vault.arrivals.push(std::time::Instant::now());
    }
    let Some(bearer) = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    else {
        count(|c| c.challenges += 1);
        state.counters.challenges.fetch_add(1, Ordering::Relaxed);
        return Ok(challenge(&resource));
    };
    let grant = state
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(bearer)
        .cloned();
    let Some(grant) = grant else {
        return Ok(challenge(&resource));
    };
    if grant
        .scope
        .trim_end_matches("/.default")
        .trim_end_matches('/')
        != resource
    {
        return Ok(challenge(&resource));
    }
    if let Some(reply) = fault(state, Target::Vault) {
        return reply;
    }
    let mut vaults = state.vaults.lock().unwrap_or_else(|e| e.into_inner());
    // A vault name nobody created: Azure DNS would not resolve it; the test resolver sends it
    // here anyway, so answer like an RBAC vault the caller may not read.
    let readable = vaults
        .get(vault_name)
        .is_some_and(|v| v.readers.contains(&grant.principal));
    if !readable {
        return Ok(Recorded::get("keyvault/forbidden-rbac-403")
            .replace(
                "appid=00000000-0000-0000-0000-0000000000000;",
                &format!("appid={};", grant.principal),
            )
            .reply());
    }
    let Some(vault) = vaults.get_mut(vault_name) else {
        return Ok(Recorded::get("keyvault/forbidden-rbac-403").reply());
    };
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let (collection, name, rest) = match segments.as_slice() {
        [c, n, rest @ ..] if ["secrets", "keys", "certificates"].contains(c) => (*c, *n, rest),
        _ => return not_found("secrets", req.path.trim_matches('/')),
    };
    let Some(versions) = vault
        .objects
        .get(&(collection_static(collection), name.to_owned()))
    else {
        return not_found(collection, name);
    };
    let base = format!("https://{}", req.host);
    match rest {
        ["versions"] => {
            state.counters.lists.fetch_add(1, Ordering::Relaxed);
            let skip: usize = req
                .query_pairs()
                .into_iter()
                .find(|(k, _)| k == "$skiptoken")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            // The recorded page's shape: items with an id (keys: kid) and attributes, and a
            // nextLink with the port, api-version 7.4, $skiptoken and maxresults.
            let recorded = Recorded::get("keyvault/secret-versions-page-7.4");
            let page: Vec<Value> = versions
                .iter()
                .skip(skip)
                .take(vault.page_size)
                .map(|v| {
                    let id = format!("{base}/{collection}/{name}/{}", v.id);
                    let mut attrs = attributes(v);
                    if let Some(a) = attrs.as_object_mut() {
                        a.remove("recoveryLevel");
                    }
                    match collection {
                        "keys" => json!({"kid": id, "attributes": attrs}),
                        _ => json!({"id": id, "attributes": attrs}),
                    }
                })
                .collect();
            let next = skip + vault.page_size;
            let next_link = (next < versions.len()).then(|| {
                format!("{base}:443/{collection}/{name}/versions?api-version=7.4&$skiptoken={next}&maxresults={}", vault.page_size)
            });
            let mut body = recorded.json();
            body["value"] = Value::from(page);
            body["nextLink"] = next_link.map(Value::from).unwrap_or(Value::Null);
            Ok(recorded.with_json(&body).reply())
        }
        [] | [_] => {
            state.counters.gets.fetch_add(1, Ordering::Relaxed);
            vault.counts.gets += 1;
            let wanted = rest.first().copied().filter(|v| !v.is_empty());
            let version = match wanted {
                None => versions.last(),
                Some(id) => versions.iter().find(|v| v.id == id),
            };
            let Some(version) = version else {
                return not_found(
                    collection,
                    &format!("{name}/{}", wanted.unwrap_or_default()),
                );
            };
            if !version.enabled {
                return disabled(collection);
            }
            let id = format!("{base}/{collection}/{name}/{}", version.id);
            let body = match &version.stored {
                Stored::Secret {
                    value,
                    content_type,
                    kid,
                } => {
                    let recorded = Recorded::get("keyvault/secret-7.4");
                    let mut body = recorded.json();
                    body["value"] = json!(value);
                    body["id"] = json!(id);
                    body["attributes"] = attributes(version);
                    if let Some(ct) = content_type {
                        body["contentType"] = json!(ct);
                    }
                    if let Some(kid) = kid {
                        body["kid"] = json!(kid);
                        body["managed"] = json!(true);
                    }
                    recorded.with_json(&body)
                }
                Stored::Key { jwk } => {
                    let recorded = Recorded::get("keyvault/key-rsa-7.4");
                    let mut body = recorded.json();
                    let key_ops = body["key"]["key_ops"].clone();
                    let mut key = jwk.clone();
                    key["kid"] = json!(id);
                    key["key_ops"] = key_ops;
                    body["key"] = key;
                    body["attributes"] = attributes(version);
                    recorded.with_json(&body)
                }
                Stored::Cert { cer } => {
                    // The recorded certificate keeps its `policy`: every certificate read
                    // parses a real policy.
                    let recorded = Recorded::get("keyvault/certificate-with-policy-7.4");
                    let mut body = recorded.json();
                    body["id"] = json!(id);
                    body["kid"] = json!(format!("{base}/keys/{name}/{}", version.id));
                    body["sid"] = json!(format!("{base}/secrets/{name}/{}", version.id));
                    body["cer"] = json!(STANDARD.encode(cer));
                    body["attributes"] = attributes(version);
                    body["policy"]["id"] = json!(format!("{base}/certificates/{name}/policy"));
                    recorded.with_json(&body)
                }
            };
            Ok(body.reply())
        }
        _ => not_found(collection, name),
    }
}

fn collection_static(c: &str) -> &'static str {
    match c {
        "secrets" => "secrets",
        "keys" => "keys",
        _ => "certificates",
    }
}

/// The recorded challenge, naming the fake's tenant (the real header names login.windows.net)
/// and the vault's resource.
fn challenge(resource: &str) -> hyper::Response<super::server::Body> {
    Recorded::get("keyvault/challenge-401")
        .replace("12345678-1234-1234-1234-123456789012", TENANT)
        .replace(
            r#"resource="https://vault.azure.net""#,
            &format!(r#"resource="{resource}""#),
        )
        .reply()
}
