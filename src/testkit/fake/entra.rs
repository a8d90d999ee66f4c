//! Fake token endpoints: Entra's `/{tenant}/oauth2/v2.0/token`, IMDS and NMI.

use std::sync::atomic::Ordering;

use hyper::StatusCode;
use serde_json::json;

use super::server::{Incoming2, Reply, fault, json};
use super::{EntraCall, State, Target};
use crate::auth::jwt;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn entra_error(status: StatusCode, error: &str, code: u32, description: String) -> Reply {
    Ok(json(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: 00000000-0000-0000-0000-000000000000 Correlation ID: 00000000-0000-0000-0000-000000000000 Timestamp: 2026-11-22 12:00:00Z"),
            "error_codes": [code],
            "timestamp": "2026-11-22 12:00:00Z",
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "00000000-0000-0000-0000-000000000000",
        }),
    ))
}

/// `POST {authority}{tenant}/oauth2/v2.0/token` (client credentials with an assertion or a secret).
pub(crate) fn token(state: &State, req: &Incoming2) -> Reply {
    state.counters.entra.fetch_add(1, Ordering::Relaxed);
    if let Some(reply) = fault(state, Target::Entra) {
        return reply;
    }
    let tenant = req
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    if req.method != hyper::Method::POST || !req.path.ends_with("/oauth2/v2.0/token") {
        return Ok(json(StatusCode::NOT_FOUND, &json!({"error": "not_found"})));
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let field = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let client_id = field("client_id").unwrap_or_default().to_owned();
    let scope = field("scope").unwrap_or_default().to_owned();
    if field("grant_type") != Some("client_credentials") {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.".into(),
        );
    }
    if !scope.ends_with("/.default") {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!("The provided value for scope {scope} is not valid."),
        );
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
        });
    }
    if tenant != super::TENANT && tenant != "adfs" {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!("Tenant '{tenant}' not found."),
        );
    }
    let dir = state.directory.lock().unwrap_or_else(|e| e.into_inner());
    let known = dir.federated.contains_key(&client_id) || dir.secrets.contains_key(&client_id);
    if !known {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    }
    match grant {
        "assertion" => {
            if field("client_assertion_type") != Some(ASSERTION_TYPE) {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    50027,
                    "Invalid client_assertion_type.".into(),
                );
            }
            let assertion = field("client_assertion").unwrap_or_default();
            let Some(claims) = jwt::claims(assertion) else {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client",
                    50027,
                    "JWT token is invalid or malformed.".into(),
                );
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            if claims.exp.is_some_and(|exp| exp < now) {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client",
                    700024,
                    "Client assertion is not within its valid time range.".into(),
                );
            }
            let iss = claims.iss.unwrap_or_default();
            let sub = claims.sub.unwrap_or_default();
            let ok = dir
                .federated
                .get(&client_id)
                .is_some_and(|creds| creds.iter().any(|(i, s)| *i == iss && *s == sub));
            if !ok {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    70021,
                    format!(
                        "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: 'api://AzureADTokenExchange'."
                    ),
                );
            }
        }
        _ => {
            let given = field("client_secret").unwrap_or_default();
            if dir.secrets.get(&client_id).is_none_or(|s| s != given) {
                return entra_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                    ),
                );
            }
        }
    }
    drop(dir);
    let lifetime = state.lifetime();
    let access_token = state.issue(&client_id, &scope);
    Ok(json(
        StatusCode::OK,
        &json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access_token}),
    ))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// IMDS: `GET /metadata/identity/oauth2/token?resource=…[&client_id=…]` with `Metadata: true`;
/// numbers are JSON strings, as the real IMDS writes them.
pub(crate) fn imds(state: &State, req: &Incoming2) -> Reply {
    state.counters.imds.fetch_add(1, Ordering::Relaxed);
    if let Some(reply) = fault(state, Target::Imds) {
        return reply;
    }
    if req.header("metadata") != Some("true") {
        return Ok(json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}),
        ));
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
        return Ok(json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": "Identity not found"}),
        ));
    }
    drop(dir);
    let principal = match &client_id {
        Some(id) => id.clone(),
        None => "vm-system-assigned".to_owned(),
    };
    let lifetime = state.lifetime();
    let token = state.issue(&principal, &format!("{resource}/.default"));
    Ok(json(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "client_id": principal,
            "expires_in": lifetime.to_string(),
            "expires_on": (now_secs() + lifetime).to_string(),
            "ext_expires_in": lifetime.to_string(),
            "not_before": now_secs().to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
    ))
}

/// NMI: `GET /host/token/?resource=…` with `podns` / `podname`; numbers are JSON numbers.
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
        return Ok(json(
            StatusCode::FORBIDDEN,
            &json!({"error": format!("no AzureIdentity found for pod {ns}/{pod}")}),
        ));
    };
    let lifetime = state.lifetime();
    let token = state.issue(&client, &format!("{resource}/.default"));
    Ok(json(
        StatusCode::OK,
        &json!({
            "token": {
                "access_token": token,
                "refresh_token": "",
                "expires_in": lifetime,
                "expires_on": now_secs() + lifetime,
                "not_before": now_secs(),
                "resource": resource,
                "token_type": "Bearer",
            },
            "clientid": client,
        }),
    ))
}
