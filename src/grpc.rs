//! The CSIDriverProvider adapter: decode → mount → encode. This is the only place a
//! [`mount::Error`] becomes a gRPC status; the status message becomes the pod's FailedMount
//! event, so it is written for humans and never carries a secret.

use std::sync::Arc;

use tonic::{Code, Request, Response, Status};
use tracing::{info, warn};
use zeroize::Zeroize;

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
    use mount::Error as E;
    let code = match err {
        E::Request(_) | E::Params(_) | E::CloudEnvironment(_) => Code::InvalidArgument,
        E::NotImplemented(_) => Code::Unimplemented,
    };
    Status::new(code, err.to_string())
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
        let mut request = request.into_inner();
        let result = self
            .mounter
            .mount(RawRequest {
                attributes: &request.attributes,
                secrets: &request.secrets,
                permission: &request.permission,
            })
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
