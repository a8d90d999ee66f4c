//! Fake token endpoints: Entra's `/{tenant}/oauth2/v2.0/token`, AD FS's `/adfs/oauth2/token`,
//! IMDS and NMI. Every answer is a recorded real one ([`Recorded`]) with the test's identifiers
//! (client, tenant, issuer, subject, token) in place of the recorded ones.

use std::sync::atomic::Ordering;

use hyper::StatusCode;

use super::recorded::Recorded;
use super::server::{Incoming2, Reply, fault, raw};
use super::{EntraCall, State, Target};
use crate::auth::jwt;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What the provider sent is not a request Entra would even look at (a bug in the provider).
/// Not an Entra shape on purpose: the test must fail loudly, not pass on an imitation.
fn provider_bug(what: &str) -> Reply {
    Ok(raw(
        StatusCode::BAD_REQUEST,
        "text/plain",
        bytes::Bytes::from(format!("fake Entra: the provider sent {what}")),
    ))
}

/// The recorded success, carrying `token` for `lifetime` seconds.
fn entra_success(token: &str, lifetime: u64) -> Reply {
    Ok(Recorded::get("entra/token-v2-success")
        .replace(
            r#""access_token":"access_token""#,
            &format!(r#""access_token":"{token}""#),
        )
        .replace(
            r#""expires_in":86399,"ext_expires_in":86399"#,
            &format!(r#""expires_in":{lifetime},"ext_expires_in":{lifetime}"#),
        )
        .reply())
}

/// `POST {authority}{tenant}/oauth2/v2.0/token` (client credentials with an assertion or a
/// secret), and AD FS's `POST /adfs/oauth2/token` (a secret, with `resource`).
pub(crate) fn token(state: &State, req: &Incoming2) -> Reply {
    state.counters.entra.fetch_add(1, Ordering::Relaxed);
    if let Some(reply) = fault(state, Target::Entra) {
        return reply;
    }
    let adfs = req.path.trim_end_matches('/') == "/adfs/oauth2/token";
    if req.method != hyper::Method::POST || !(adfs || req.path.ends_with("/oauth2/v2.0/token")) {
        return provider_bug(&format!("{} {}", req.method, req.path));
    }
    let tenant = if adfs {
        "adfs".to_owned()
    } else {
        req.path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let field = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let client_id = field("client_id").unwrap_or_default().to_owned();
    // AD FS takes the OAuth 1 `resource`; Entra v2 a `scope` ending in `/.default`.
    let scope = match (adfs, field("scope"), field("resource")) {
        (false, Some(scope), None) if scope.ends_with("/.default") => scope.to_owned(),
        (true, None, Some(resource)) => format!("{}/.default", resource.trim_end_matches('/')),
        _ => return provider_bug("a token request without a valid scope or resource"),
    };
    if field("grant_type") != Some("client_credentials") {
        return provider_bug("a grant_type other than client_credentials");
    }
    let grant = if field("client_assertion").is_some() {
        "assertion"
    } else {
        "secret"
    };
    {
        let mut dir = state.directory.lock().unwrap_or_else(|e| e.into_inner());
        dir.calls.push(EntraCall {
            tenant: tenant.clone(),
            client_id: client_id.clone(),
            scope: scope.clone(),
            grant,
            host: req.host.clone(),
            assertion_sha256: field("client_assertion").map(|a| {
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(a.as_bytes()))
            }),
        });
    }
    if tenant != super::TENANT && tenant != "adfs" {
        return Ok(Recorded::get("entra/aadsts90002-tenant-not-found-400")
            .replace(
                "00000000-0000-0000-0000-000000000000' not found",
                &format!("{tenant}' not found"),
            )
            .reply());
    }
    let dir = state.directory.lock().unwrap_or_else(|e| e.into_inner());
    let known = dir.federated.contains_key(&client_id) || dir.secrets.contains_key(&client_id);
    if !known {
        return Ok(Recorded::get("entra/aadsts700016-unknown-client-400")
            .replace(
                "identifier '00000000-0000-0000-0000-000000000000'",
                &format!("identifier '{client_id}'"),
            )
            .replace("directory 'Test Test'", &format!("directory '{tenant}'"))
            .reply());
    }
    match grant {
        "assertion" => {
            if field("client_assertion_type") != Some(ASSERTION_TYPE) {
                return provider_bug("a client assertion of another type");
            }
            let assertion = field("client_assertion").unwrap_or_default();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let Some(claims) = jwt::claims(assertion) else {
                return Ok(Recorded::get("entra/aadsts50027-malformed-jwt-400").reply());
            };
            if claims.exp.is_some_and(|exp| exp < now) {
                return Ok(Recorded::get("entra/aadsts700024-assertion-expired-401").reply());
            }
            let iss = claims.iss.unwrap_or_default();
            let sub = claims.sub.unwrap_or_default();
            let ok = dir
                .federated
                .get(&client_id)
                .is_some_and(|creds| creds.iter().any(|(i, s)| *i == iss && *s == sub));
            if !ok {
                return Ok(Recorded::get("entra/aadsts70021-no-federated-credential-401")
                    .replace(
                        "https://eastus.oic.prod-aks.azure.com/c90ea95b-aead-4931-b72e-f3e703fc342b/85ee619b-d637-4610-bacd-d4c64ff20348/",
                        &iss,
                    )
                    .replace("system:serviceaccount:external-secrets:external-secrets", &sub)
                    .reply());
            }
        }
        _ => {
            let given = field("client_secret").unwrap_or_default();
            if dir.secrets.get(&client_id).is_none_or(|s| s != given) {
                let recorded = if adfs {
                    "azurestack/adfs-invalid-client-400"
                } else {
                    "entra/aadsts7000215-invalid-secret-401"
                };
                return Ok(Recorded::get(recorded).reply());
            }
        }
    }
    drop(dir);
    let lifetime = state.lifetime();
    let access_token = state.issue(&client_id, &scope);
    if adfs {
        return Ok(Recorded::get("azurestack/adfs-token-success.composed")
            .replace("<access-token>", &access_token)
            .replace(
                r#""expires_in":"3599""#,
                &format!(r#""expires_in":"{lifetime}""#),
            )
            .reply());
    }
    entra_success(&access_token, lifetime)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// IMDS: `GET /metadata/identity/oauth2/token?api-version=…&resource=…[&client_id=…]` with
/// `Metadata: true`; the recorded documentation sample (numbers as JSON strings).
pub(crate) fn imds(state: &State, req: &Incoming2) -> Reply {
    state.counters.imds.fetch_add(1, Ordering::Relaxed);
    if let Some(reply) = fault(state, Target::Imds) {
        return reply;
    }
    if req.header("metadata") != Some("true") {
        return Ok(Recorded::get("imds/missing-metadata-header-400").reply());
    }
    let pairs = req.query_pairs();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let resource = get("resource").unwrap_or_default();
    let client_id = get("client_id");
    let dir = state.directory.lock().unwrap_or_else(|e| e.into_inner());
    if !dir.vm_identities.contains(&client_id) {
        return Ok(Recorded::get("imds/identity-not-found-400").reply());
    }
    drop(dir);
    let principal = match &client_id {
        Some(id) => id.clone(),
        None => "vm-system-assigned".to_owned(),
    };
    let lifetime = state.lifetime();
    let token = state.issue(&principal, &format!("{resource}/.default"));
    let now = now_secs();
    Ok(Recorded::get("imds/token-success")
        .replace("eyJ0eXAi...", &token)
        .replace(
            r#""expires_in": "3599""#,
            &format!(r#""expires_in": "{lifetime}""#),
        )
        .replace("1506484173", &(now + lifetime).to_string())
        .replace("1506480273", &now.to_string())
        .replace("https://management.azure.com/", &resource)
        .reply())
}

/// NMI: `GET /host/token/?resource=…` with `podns` / `podname`; the `msiResponse` shape of
/// aad-pod-identity (every number a JSON string), its `http.Error` texts for refusals.
pub(crate) fn nmi(state: &State, req: &Incoming2) -> Reply {
    state.counters.nmi.fetch_add(1, Ordering::Relaxed);
    if let Some(reply) = fault(state, Target::Nmi) {
        return reply;
    }
    let ns = req.header("podns").unwrap_or_default().to_owned();
    let pod = req.header("podname").unwrap_or_default().to_owned();
    let resource = req
        .query_pairs()
        .into_iter()
        .find(|(k, _)| k == "resource")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let client = state
        .directory
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pod_identities
        .get(&(ns.clone(), pod.clone()))
        .cloned();
    let Some(client) = client else {
        return Ok(Recorded::get("nmi/no-azure-identity-403").reply());
    };
    let lifetime = state.lifetime();
    let token = state.issue(&client, &format!("{resource}/.default"));
    let now = now_secs();
    Ok(Recorded::get("nmi/token-success.composed")
        .replace("<access-token>", &token)
        .replace(
            r#""expires_in":"86399""#,
            &format!(r#""expires_in":"{lifetime}""#),
        )
        .replace("<expires-on>", &(now + lifetime).to_string())
        .replace("<not-before>", &now.to_string())
        .replace("https://vault.azure.net", &resource)
        .replace("<client-id>", &client)
        .reply())
}
