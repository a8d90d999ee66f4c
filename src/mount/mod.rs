//! The Mount pipeline, on top of everything it wires: the request becomes a plan
//! ([`crate::spc`]), the plan's identity a credential ([`crate::auth`]), its objects Key Vault
//! reads ([`crate::keyvault`]) shared across Mounts (`reads`) and started vault by vault
//! (`schedule`), and what they return files
//! ([`crate::render`]). Failures become [`Error`]s whose messages name the fix ([`failure`]);
//! `grpc` above maps them to status codes. Nothing below imports this module.

pub mod failure;
mod mounter;
mod reads;
mod schedule;

use std::time::Duration;

/// The request `Mounter::mount` takes: the driver's raw strings.
pub use crate::spc::RawRequest;
pub use mounter::{MountSummary, Mounter};

use crate::auth::AuthError;
use crate::cloud::EnvFileError;
use crate::keyvault::KvError;
use crate::keyvault::retry::RetryPolicy;
use crate::render::{ObjectVersion, OutputFile, RenderError, RenderOptions};
use crate::spc::{ParamErrors, PlanDefaults, PlanError, RequestError};

/// The driver's default receive limit; a response must stay below it (with room for framing).
pub const MAX_RESPONSE_BYTES: usize = (4 << 20) - (64 << 10);

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
    /// No token for the plan's identity.
    #[error("{vault}: {source}")]
    Auth {
        vault: String,
        #[source]
        source: AuthError,
    },
    /// One object could not be read.
    #[error("{message}")]
    Object {
        message: String,
        #[source]
        source: KvError,
    },
    /// Key Vault returned content that cannot become the requested files.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Two objects produced the same file (e.g. a `.crt` companion and another alias).
    #[error(
        "{second} writes {path:?}, which {first} already writes: give one of them a different objectAlias"
    )]
    PathConflict {
        path: String,
        first: String,
        second: String,
    },
    /// A rendered file's path (with its `.crt`/`.key` suffix) breaks the driver's path rules.
    #[error("{object}: the file {path:?} it would write {problem}")]
    RenderedPath {
        object: String,
        path: String,
        problem: String,
    },
    /// The files would not fit in the driver's receive limit.
    #[error(
        "the mounted files total {bytes} bytes, more than the Secrets Store CSI Driver accepts in one call \
         (4 MiB by default, --max-call-recv-msg-size); mount fewer or smaller objects"
    )]
    TooLarge { bytes: usize },
    /// The Mount's deadline passed before every object was read.
    #[error(
        "the mount deadline ({seconds}s) passed before every object was read from Key Vault {vault}"
    )]
    DeadlineExceeded { vault: String, seconds: u64 },
    /// A bug of ours; never caused by the request.
    #[error("internal error: {0}")]
    Internal(String),
}
/// What a successful Mount returns: all files, and at least one version entry.
#[derive(Debug, Default)]
pub struct MountOutput {
    pub files: Vec<OutputFile>,
    pub versions: Vec<ObjectVersion>,
}

/// Knobs from the process flags.
#[derive(Debug, Clone)]
pub struct MountSettings {
    pub defaults: PlanDefaults,
    pub render: RenderOptions,
    /// Deadline for a Mount when the driver sends no `grpc-timeout`.
    pub timeout: Duration,
    /// Objects read at once within one Mount.
    pub max_parallel_reads: usize,
    pub retry: RetryPolicy,
    /// Keep object contents this long and serve identical reads from memory (0 = off).
    pub object_cache_ttl: Duration,
    /// Identities (credentials) and vault clients kept for reuse across Mounts.
    pub max_cached_identities: usize,
}

impl Default for MountSettings {
    fn default() -> Self {
        MountSettings {
            defaults: PlanDefaults::default(),
            render: RenderOptions::default(),
            timeout: Duration::from_secs(30),
            max_parallel_reads: 64,
            retry: RetryPolicy::default(),
            object_cache_ttl: Duration::ZERO,
            max_cached_identities: 1024,
        }
    }
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Request(e) => Error::Request(e),
            PlanError::Params(e) => Error::Params(e),
        }
    }
}
