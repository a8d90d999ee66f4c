//! One Mount: decode the request, validate it into a [`plan::MountPlan`], fetch, render.

pub mod objects;
pub mod params;
pub mod plan;
pub mod request;
pub mod tokens;

use tracing::debug;

pub use params::{ParamError, ParamErrors, PlanDefaults};
pub use plan::MountPlan;
pub use request::RequestError;

use crate::cloud::EnvFileError;

/// Why a Mount failed. `grpc::status_of` turns each variant into the gRPC code the driver sees.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The driver's request fields are not the JSON it always sends.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The SecretProviderClass breaks one or more rules.
    #[error(transparent)]
    Params(#[from] ParamErrors),
    /// The Azure Stack environment file named by the SecretProviderClass is unusable.
    #[error("cloudName AzureStackCloud: {0}")]
    CloudEnvironment(#[from] EnvFileError),
    /// A valid request needs a capability this build does not have yet.
    #[error("{0}")]
    NotImplemented(&'static str),
}

/// A file for the driver to write.
#[derive(Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub path: String,
    pub mode: u32,
    pub contents: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for OutputFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("contents", &format_args!("<{} bytes>", self.contents.len()))
            .finish()
    }
}

/// `(id, version)` of one written file or absent optional object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub id: String,
    pub version: String,
}

/// What a successful Mount returns: all files, and at least one version entry.
#[derive(Debug, Default)]
pub struct MountOutput {
    pub files: Vec<OutputFile>,
    pub versions: Vec<ObjectVersion>,
}

/// The raw string fields of a `MountRequest`.
pub struct RawRequest<'a> {
    pub attributes: &'a str,
    pub secrets: &'a str,
    pub permission: &'a str,
}

/// Serves Mounts; shared by every call on the socket.
#[derive(Debug, Clone)]
pub struct Mounter {
    defaults: PlanDefaults,
}

impl Mounter {
    /// A mounter with the process-wide defaults from the flags.
    pub fn new(defaults: PlanDefaults) -> Self {
        Mounter { defaults }
    }

    /// Validates a request into a plan with its cloud resolved. Shared by Mount and `check`.
    pub fn plan(&self, raw: &RawRequest<'_>) -> Result<MountPlan, Error> {
        let request = request::decode(raw.attributes, raw.secrets, raw.permission)?;
        let plan = params::parse(
            &request.attributes,
            &request.secrets,
            request.permission,
            &self.defaults,
        )?;
        Ok(plan)
    }

    /// Runs one Mount.
    pub async fn mount(&self, raw: RawRequest<'_>) -> Result<MountOutput, Error> {
        let plan = self.plan(&raw)?;
        let _endpoints = plan.cloud.endpoints()?;
        debug!(
            objects = plan.objects.len(),
            identity = %plan.identity.describe(),
            vault = %plan.vault_name,
            "mount plan validated"
        );
        Err(Error::NotImplemented(
            "the SecretProviderClass is valid, but this build of akv-csi-provider cannot read \
             objects from Key Vault yet",
        ))
    }
}
