//! The CSIDriverProvider adapter: decode → mount → encode. This is the only place a
//! [`mount::Error`] becomes a gRPC status; the status message becomes the pod's FailedMount
//! event, so it is written for humans and never carries a secret.

use std::sync::Arc;

use tonic::{Code, Request, Response, Status};
use tracing::{info, warn};
use zeroize::Zeroize;

use crate::auth::AuthError;
use crate::mount::{self, Mounter, RawRequest};
use crate::proto::csi_driver_provider_server::CsiDriverProvider;
use crate::proto::{
    File, MountRequest, MountResponse, ObjectVersion, VersionRequest, VersionResponse,
};

/// API version of the driver protocol.
pub const API_VERSION: &str = "v1alpha1";
/// `runtime_name` reported to the driver.
pub const RUNTIME_NAME: &str = "akv-csi-provider";

/// The gRPC service the driver calls.
#[derive(Debug, Clone)]
pub struct ProviderService {
    mounter: Arc<Mounter>,
}

impl ProviderService {
    /// Wraps a mounter shared by every call.
    pub fn new(mounter: Arc<Mounter>) -> Self {
        ProviderService { mounter }
    }
}

/// Maps a Mount failure to the status the driver sees (SPEC §7).
pub fn status_of(err: &mount::Error) -> Status {
    use crate::keyvault::KvError as K;
    use crate::render::RenderError as R;
    use mount::Error as E;
    let auth_code = |a: &AuthError| match a {
        AuthError::Rejected { .. } | AuthError::Setup { .. } => Code::Unauthenticated,
        AuthError::Throttled { .. } => Code::ResourceExhausted,
        AuthError::Unavailable { .. } => Code::Unavailable,
    };
    let code = match err {
        E::Request(_) | E::Params(_) | E::CloudEnvironment(_) | E::PathConflict { .. } => {
            Code::InvalidArgument
        }
        E::Auth { source, .. } => auth_code(source),
        E::Object { source, .. } => match source {
            K::Auth(a) => auth_code(a),
            K::Denied { .. } => Code::PermissionDenied,
            K::NotFound => Code::NotFound,
            K::Disabled { .. } => Code::FailedPrecondition,
            K::Throttled | K::TooLarge => Code::ResourceExhausted,
            K::Unavailable { .. } | K::DnsFailure | K::Malformed { .. } => Code::Unavailable,
            K::DeadlineExceeded => Code::DeadlineExceeded,
        },
        E::Render(R::WrongKind { .. } | R::VersionCount { .. }) => Code::Internal,
        E::Render(_) => Code::FailedPrecondition,
        E::TooLarge { .. } => Code::ResourceExhausted,
        E::DeadlineExceeded { .. } => Code::DeadlineExceeded,
        E::Internal(_) => Code::Internal,
    };
    Status::new(code, err.to_string())
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

#[tonic::async_trait]
impl CsiDriverProvider for ProviderService {
    async fn version(
        &self,
        _request: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: API_VERSION.to_owned(),
            runtime_name: RUNTIME_NAME.to_owned(),
            runtime_version: env!("CARGO_PKG_VERSION").to_owned(),
        }))
    }

    async fn mount(
        &self,
        request: Request<MountRequest>,
    ) -> Result<Response<MountResponse>, Status> {
        let started = std::time::Instant::now();
        // Finish a little before the driver gives up, so it receives our explanation rather
        // than its own bare "deadline exceeded".
        let timeout = grpc_timeout(request.metadata())
            .map(|t| t.saturating_sub((t / 20).max(std::time::Duration::from_millis(100))));
        let mut request = request.into_inner();
        let result = self
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
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(output) => {
                info!(
                    files = output.files.len(),
                    elapsed_ms,
                    outcome = "ok",
                    "mount"
                );
                Ok(Response::new(MountResponse {
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
                }))
            }
            Err(err) => {
                let status = status_of(&err);
                warn!(code = ?status.code(), elapsed_ms, error = %err, "mount failed");
                Err(status)
            }
        }
    }
}
