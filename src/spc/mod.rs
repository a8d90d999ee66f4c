//! The SecretProviderClass model and its parsing, at the bottom of the tree: a `MountRequest`'s
//! strings in, a validated [`MountPlan`] out, no I/O and nothing about how the plan is carried
//! out. Mount and the `check` command share it.
//!
//! - [`request`]: the JSON strings of a `MountRequest` → attributes, secrets, default mode;
//! - [`params`]: the parameters → a plan, with every rule of SPEC §3 and every problem named;
//! - [`objects`]: the `objects` YAML, one entry at a time, its per-field rules in
//!   `object_fields`, and the driver's path rules in [`paths`];
//! - [`tokens`]: kubelet's service-account token map;
//! - [`plan`]: the plan types everything downstream reads (identity, objects, cloud).
//!
//! Imports only [`crate::cloud`] (cloud names, endpoints) and [`crate::syntax`].

mod object_fields;
pub mod objects;
pub mod params;
pub mod paths;
pub mod plan;
pub mod request;
pub mod tokens;

pub use params::{ParamError, ParamErrors, PlanDefaults};
pub use plan::MountPlan;
pub use request::{RawRequest, RequestError};

/// Why a request could not become a plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The driver's request fields are not the JSON it always sends.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The SecretProviderClass breaks one or more rules.
    #[error(transparent)]
    Params(#[from] ParamErrors),
}

/// Decodes and validates a request into a plan. Shared by Mount and `check`; no I/O.
pub fn plan_request(raw: &RawRequest<'_>, defaults: &PlanDefaults) -> Result<MountPlan, PlanError> {
    let request = request::decode(raw.attributes, raw.secrets, raw.permission)?;
    Ok(params::parse(
        &request.attributes,
        &request.secrets,
        request.permission,
        defaults,
    )?)
}
