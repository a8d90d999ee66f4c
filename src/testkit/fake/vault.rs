//! Fake Key Vault: the 401 challenge, bearer checks against the fake Entra's grants, access
//! control by principal, objects with versions, disabled versions and paged `versions` listings.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::StatusCode;
use serde_json::{Value, json};

use super::server::{Incoming2, Reply, fault, json};
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
    /// (collection, name) → versions, oldest first.
    objects: BTreeMap<(&'static str, String), Vec<Version>>,
    page_size: usize,
}

impl Vault {
    pub(crate) fn new() -> Self {
        Vault {
            readers: HashSet::new(),
            objects: BTreeMap::new(),
            page_size: 25,
        }
    }
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
        "recoverableDays": 90,
    })
}

fn kv_error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Reply {
    let mut error = json!({"code": code, "message": message});
    if let Some(inner) = inner {
        error["innererror"] = json!({"code": inner});
    }
    Ok(json(status, &json!({"error": error})))
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
                let mut response = json(
                    StatusCode::TOO_MANY_REQUESTS,
                    &json!({"error": {"code": "Throttled", "message": "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"}}),
                );
                response.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    hyper::header::HeaderValue::from_static("1"),
                );
                return Ok(response);
            }
        }
    }
    let (vault_name, suffix) = req.host.split_once('.').unwrap_or((req.host.as_str(), ""));
    let resource = format!("https://{suffix}");
    let Some(bearer) = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    else {
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
    let vaults = state.vaults.lock().unwrap_or_else(|e| e.into_inner());
    let Some(vault) = vaults.get(vault_name) else {
        // A vault name nobody created: Azure DNS would not resolve it; the test resolver
        // sends it here anyway, so answer like a vault the caller may not read.
        return kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The vault does not exist.",
            None,
        );
    };
    if !vault.readers.contains(&grant.principal) {
        return kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "Caller is not authorized to perform action on resource. Caller: appid={};Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'",
                grant.principal
            ),
            Some("ForbiddenByRbac"),
        );
    }
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let (collection, name, rest) = match segments.as_slice() {
        [c, n, rest @ ..] if ["secrets", "keys", "certificates"].contains(c) => (*c, *n, rest),
        _ => return kv_error(StatusCode::NOT_FOUND, "NotFound", "unknown path", None),
    };
    let not_found = || {
        let code = match collection {
            "secrets" => "SecretNotFound",
            "keys" => "KeyNotFound",
            _ => "CertificateNotFound",
        };
        kv_error(
            StatusCode::NOT_FOUND,
            code,
            &format!(
                "A {} with (name/id) {name} was not found in this key vault.",
                collection.trim_end_matches('s')
            ),
            None,
        )
    };
    let Some(versions) = vault
        .objects
        .get(&(collection_static(collection), name.to_owned()))
    else {
        return not_found();
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
            let page: Vec<Value> = versions
                .iter()
                .skip(skip)
                .take(vault.page_size)
                .map(|v| {
                    let id = format!("{base}/{collection}/{name}/{}", v.id);
                    match collection {
                        "keys" => json!({"kid": id, "attributes": attributes(v)}),
                        _ => json!({"id": id, "attributes": attributes(v)}),
                    }
                })
                .collect();
            let next = skip + vault.page_size;
            let next_link = (next < versions.len()).then(|| {
                format!("{base}:443/{collection}/{name}/versions?api-version=7.4&$skiptoken={next}&maxresults={}", vault.page_size)
            });
            Ok(json(
                StatusCode::OK,
                &json!({"value": page, "nextLink": next_link}),
            ))
        }
        [] | [_] => {
            state.counters.gets.fetch_add(1, Ordering::Relaxed);
            let wanted = rest.first().copied().filter(|v| !v.is_empty());
            let version = match wanted {
                None => versions.last(),
                Some(id) => versions.iter().find(|v| v.id == id),
            };
            let Some(version) = version else {
                return not_found();
            };
            if !version.enabled {
                let inner = match collection {
                    "secrets" => "SecretDisabled",
                    "keys" => "KeyDisabled",
                    _ => "CertificateDisabled",
                };
                return kv_error(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    &format!(
                        "Operation get is not allowed on a disabled {}.",
                        collection.trim_end_matches('s')
                    ),
                    Some(inner),
                );
            }
            let id = format!("{base}/{collection}/{name}/{}", version.id);
            let body = match &version.stored {
                Stored::Secret {
                    value,
                    content_type,
                    kid,
                } => {
                    let mut body =
                        json!({"value": value, "id": id, "attributes": attributes(version)});
                    if let Some(ct) = content_type {
                        body["contentType"] = json!(ct);
                    }
                    if let Some(kid) = kid {
                        body["kid"] = json!(kid);
                        body["managed"] = json!(true);
                    }
                    body
                }
                Stored::Key { jwk } => {
                    let mut key = jwk.clone();
                    key["kid"] = json!(id);
                    key["key_ops"] = json!(["sign", "verify"]);
                    json!({"key": key, "attributes": attributes(version)})
                }
                Stored::Cert { cer } => json!({
                    "id": id,
                    "kid": format!("{base}/keys/{name}/{}", version.id),
                    "sid": format!("{base}/secrets/{name}/{}", version.id),
                    "x5t": "dGVzdA",
                    "cer": STANDARD.encode(cer),
                    "attributes": attributes(version),
                }),
            };
            Ok(json(StatusCode::OK, &body))
        }
        _ => not_found(),
    }
}

fn collection_static(c: &str) -> &'static str {
    match c {
        "secrets" => "secrets",
        "keys" => "keys",
        _ => "certificates",
    }
}

fn challenge(resource: &str) -> hyper::Response<super::server::Body> {
    let mut response = json(
        StatusCode::UNAUTHORIZED,
        &json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}),
    );
    let value = format!(
        "Bearer authorization=\"https://login.microsoftonline.com/{TENANT}\", resource=\"{resource}\""
    );
    if let Ok(v) = value.parse() {
        response
            .headers_mut()
            .insert(hyper::header::WWW_AUTHENTICATE, v);
    }
    response
}
