//! The CSIDriverProvider adapter: decode → mount → encode. This is the only place a
//! [`mount::Error`] becomes a gRPC status; the status message becomes the pod's FailedMount
//! event, so it is written for humans and never carries a secret.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;

use tonic::{Code, Request, Response, Status};
use tracing::{info, warn};
use zeroize::Zeroize;

use crate::auth::AuthError;
use crate::mount::{self, Mounter, RawRequest};
use crate::proto::csi_driver_provider_server::CsiDriverProvider;
use crate::proto::{
    File, MountRequest, MountResponse, ObjectVersion, VersionRequest, VersionResponse,
};
use crate::telemetry::metrics::{GrpcLabels, Metrics};

/// API version of the driver protocol.
pub const API_VERSION: &str = "v1alpha1";
/// `runtime_name` reported to the driver.
pub const RUNTIME_NAME: &str = "akv-csi-provider";

/// The gRPC service the driver calls.
#[derive(Debug, Clone)]
pub struct ProviderService {
    mounter: Arc<Mounter>,
    metrics: Metrics,
}

impl ProviderService {
    /// Wraps a mounter shared by every call.
    pub fn new(mounter: Arc<Mounter>, metrics: Metrics) -> Self {
        ProviderService { mounter, metrics }
    }
}

/// Trailer that tells grpc-go and grpcio not to retry (a negative pushback).
pub const RETRY_PUSHBACK: &str = "grpc-retry-pushback-ms";

/// Maps a Mount failure to the status the driver sees (SPEC §7).
///
/// The driver's service config retries `UNAVAILABLE` (3 attempts in all) and tonic's error
/// replies are trailers-only, so grpc-go would send the same Mount again ~1 s later. By the
/// time we answer `UNAVAILABLE` or `RESOURCE_EXHAUSTED` we have already retried within the
/// Mount's deadline, so the status says `grpc-retry-pushback-ms: -1`: do not retry (kubelet
/// retries the whole NodePublishVolume with its own backoff).
pub fn status_of(err: &mount::Error) -> Status {
    use crate::keyvault::KvError as K;
    use crate::render::RenderError as R;
    use mount::Error as E;
    let auth_code = |a: &AuthError| match a {
        AuthError::Rejected { .. } | AuthError::Setup { .. } => Code::Unauthenticated,
        AuthError::Throttled { .. } | AuthError::NotSent { .. } => Code::ResourceExhausted,
        AuthError::Unavailable { .. } => Code::Unavailable,
    };
    let code = match err {
        E::Request(_)
        | E::Params(_)
        | E::CloudEnvironment(_)
        | E::PathConflict { .. }
        | E::RenderedPath { .. } => Code::InvalidArgument,
        E::Auth { source, .. } => auth_code(source),
        E::Object { source, .. } => match source {
            K::Auth(a) => auth_code(a),
            K::Denied { .. } => Code::PermissionDenied,
            K::NotFound => Code::NotFound,
            K::Disabled { .. } | K::NoEnabledVersion => Code::FailedPrecondition,
            K::Throttled | K::TooLarge | K::Refused { .. } => Code::ResourceExhausted,
            K::Unavailable { .. } | K::DnsFailure | K::Malformed { .. } => Code::Unavailable,
            K::DeadlineExceeded => Code::DeadlineExceeded,
        },
        E::Render(R::WrongKind { .. } | R::VersionCount { .. }) => Code::Internal,
        E::Render(_) => Code::FailedPrecondition,
        E::TooLarge { .. } => Code::ResourceExhausted,
        E::DeadlineExceeded { .. } => Code::DeadlineExceeded,
        E::Internal(_) => Code::Internal,
    };
    let mut status = Status::new(code, err.to_string());
    if matches!(code, Code::Unavailable | Code::ResourceExhausted) {
        status.metadata_mut().insert(
            RETRY_PUSHBACK,
            tonic::metadata::MetadataValue::from_static("-1"),
        );
    }
    status
}

/// The reply to a successful Mount. The driver fails a response without any
/// `object_version` ("missing object versions"), files or not, so an empty list is an
/// internal error here whatever produced it (the mounter already refuses one).
pub fn response_of(output: mount::MountOutput) -> Result<MountResponse, Status> {
    if output.versions.is_empty() {
        return Err(status_of(&mount::Error::Internal(
            "a mount produced no object versions".into(),
        )));
    }
    Ok(MountResponse {
        object_version: output
            .versions
            .into_iter()
            .map(|v| ObjectVersion {
                id: v.id,
                version: v.version,
            })
            .collect(),
        error: None,
        files: output
            .files
            .into_iter()
            .map(|f| File {
                path: f.path,
                mode: f.mode as i32,
                contents: f.contents.to_vec(),
            })
            .collect(),
    })
}

/// The driver's `grpc-timeout` (e.g. `30S`, `500m`), if it sent one.
pub fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<std::time::Duration> {
    use std::time::Duration;
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The gRPC code name as Go's `codes.Code.String()` spells it (the reference's label values).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

impl ProviderService {
    fn observe(&self, method: &str, code: Code, started: Instant) {
        self.metrics
            .grpc_request
            .get_or_create(&GrpcLabels {
                grpc_method: method.to_owned(),
                grpc_code: code_name(code).to_owned(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Decrements the in-flight gauge however the call ends (including cancellation).
struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[tonic::async_trait]
impl CsiDriverProvider for ProviderService {
    async fn version(
        &self,
        _request: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        let started = Instant::now();
        let response = VersionResponse {
            version: API_VERSION.to_owned(),
            runtime_name: RUNTIME_NAME.to_owned(),
            runtime_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        self.observe("/v1alpha1.CSIDriverProvider/Version", Code::Ok, started);
        Ok(Response::new(response))
    }

    async fn mount(
        &self,
        request: Request<MountRequest>,
    ) -> Result<Response<MountResponse>, Status> {
        let started = Instant::now();
        self.metrics.mounts_in_flight.inc();
        let _in_flight = InFlight(self.metrics.mounts_in_flight.clone());
        // Finish a little before the driver gives up, so it receives our explanation rather
        // than its own bare "deadline exceeded".
        let timeout = grpc_timeout(request.metadata())
            .map(|t| t.saturating_sub((t / 20).max(Duration::from_millis(100))));
        let mut request = request.into_inner();
        let (summary, result) = self
            .mounter
            .mount(
                RawRequest {
                    attributes: &request.attributes,
                    secrets: &request.secrets,
                    permission: &request.permission,
                },
                timeout,
            )
            .await;
        // The raw fields hold tokens and client secrets: wipe them before the memory is freed.
        request.attributes.zeroize();
        request.secrets.zeroize();
        let summary = summary.unwrap_or_default();
        let duration_ms = started.elapsed().as_millis() as u64;
        let reply = match result.map_err(|err| status_of(&err)).and_then(|output| {
            let files = output.files.len();
            response_of(output).map(|r| (files, r))
        }) {
            Ok((files, response)) => {
                self.metrics.files_written.inc_by(files as u64);
                info!(
                    pod = %summary.pod, namespace = %summary.namespace, spc = %summary.secret_provider_class,
                    vault = %summary.vault, objects = summary.objects, files, duration_ms,
                    outcome = "OK", "mount"
                );
                Ok(Response::new(response))
            }
            Err(status) => {
                warn!(
                    pod = %summary.pod, namespace = %summary.namespace, spc = %summary.secret_provider_class,
                    vault = %summary.vault, objects = summary.objects, duration_ms,
                    outcome = code_name(status.code()), error = %status.message(), "mount"
                );
                Err(status)
            }
        };
        let code = reply.as_ref().map_or_else(Status::code, |_| Code::Ok);
        self.observe("/v1alpha1.CSIDriverProvider/Mount", code, started);
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mount::MountOutput;
    use crate::render::ObjectVersion as Version;

    #[test]
    fn a_response_without_versions_is_never_sent() {
        let status = response_of(MountOutput::default()).unwrap_err();
        assert_eq!(status.code(), Code::Internal);
        let one = MountOutput {
            files: Vec::new(),
            versions: vec![Version {
                id: "secret/a".into(),
                version: String::new(),
            }],
        };
        assert_eq!(response_of(one).unwrap().object_version.len(), 1);
    }

    #[test]
    fn only_retryable_codes_carry_the_pushback() {
        use crate::keyvault::KvError;
        let object = |source: KvError| mount::Error::Object {
            message: "m".into(),
            source,
        };
        for (err, code) in [
            (object(KvError::DnsFailure), Code::Unavailable),
            (object(KvError::Throttled), Code::ResourceExhausted),
            (mount::Error::TooLarge { bytes: 1 }, Code::ResourceExhausted),
            (object(KvError::NotFound), Code::NotFound),
            (mount::Error::Internal("x".into()), Code::Internal),
        ] {
            let status = status_of(&err);
            assert_eq!(status.code(), code);
            let pushback = status
                .metadata()
                .get(RETRY_PUSHBACK)
                .map(|v| v.to_str().unwrap());
            let retryable = matches!(code, Code::Unavailable | Code::ResourceExhausted);
            assert_eq!(pushback, retryable.then_some("-1"), "{code:?}");
        }
    }
}
