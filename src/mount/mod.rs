//! One Mount: decode the request, validate it into a [`plan::MountPlan`], fetch, render.

pub mod failure;
pub mod objects;
pub mod params;
pub mod plan;
pub mod request;
pub mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use azure_core::http::HttpClient;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;
use tracing::{debug, warn};

pub use params::{ParamError, ParamErrors, PlanDefaults};
pub use plan::MountPlan;
pub use request::RequestError;

use crate::auth::{AuthError, Authenticator, client_options};
use crate::cloud::EnvFileError;
use crate::keyvault::retry::RetryPolicy;
use crate::keyvault::{Fetch, KvError, VaultReader};
use crate::render::{RenderError, RenderOptions};
use failure::ObjectContext;
use plan::{Identity, ObjectSpec};

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
}

impl Default for MountSettings {
    fn default() -> Self {
        MountSettings {
            defaults: PlanDefaults::default(),
            render: RenderOptions::default(),
            timeout: Duration::from_secs(30),
            max_parallel_reads: 16,
            retry: RetryPolicy::default(),
        }
    }
}

/// Serves Mounts; shared by every call on the socket.
pub struct Mounter {
    settings: MountSettings,
    http: Arc<dyn HttpClient>,
    auth: Authenticator,
}

impl std::fmt::Debug for Mounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mounter")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Decodes and validates a request into a plan. Shared by Mount and `check`; no I/O.
pub fn plan_request(raw: &RawRequest<'_>, defaults: &PlanDefaults) -> Result<MountPlan, Error> {
    let request = request::decode(raw.attributes, raw.secrets, raw.permission)?;
    Ok(params::parse(
        &request.attributes,
        &request.secrets,
        request.permission,
        defaults,
    )?)
}

/// Objects that read the same Key Vault data (same type, name, version, history) are read once.
type FetchKey = (plan::ObjectType, String, Option<String>, u32);

impl Mounter {
    /// A mounter that sends every Entra and Key Vault request through `http`.
    pub fn new(settings: MountSettings, http: Arc<dyn HttpClient>) -> Self {
        let auth = Authenticator::new(http.clone());
        Mounter {
            settings,
            http,
            auth,
        }
    }

    /// Validates a request into a plan with this mounter's defaults.
    pub fn plan(&self, raw: &RawRequest<'_>) -> Result<MountPlan, Error> {
        plan_request(raw, &self.settings.defaults)
    }

    /// Runs one Mount within `timeout` (the driver's `grpc-timeout`) or the configured default.
    pub async fn mount(
        &self,
        raw: RawRequest<'_>,
        timeout: Option<Duration>,
    ) -> Result<MountOutput, Error> {
        let plan = self.plan(&raw)?;
        let budget = timeout.unwrap_or(self.settings.timeout);
        let deadline = Instant::now() + budget;
        match tokio::time::timeout_at(deadline, self.run(&plan, deadline)).await {
            Ok(result) => result,
            Err(_) => Err(Error::DeadlineExceeded {
                vault: plan.vault_name.clone(),
                seconds: budget.as_secs(),
            }),
        }
    }

    async fn run(&self, plan: &MountPlan, deadline: Instant) -> Result<MountOutput, Error> {
        let endpoints = plan.cloud.endpoints()?;
        let vault_url = endpoints.vault_url(&plan.vault_name);
        let vault_host = vault_url
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned();
        let credential = self
            .auth
            .credential(plan, &endpoints)
            .map_err(|source| Error::Auth {
                vault: format!("Key Vault {}", plan.vault_name),
                source,
            })?;
        let reader = VaultReader::new(
            &plan.vault_name,
            &vault_url,
            credential.clone(),
            client_options(&self.http, None),
            self.settings.retry,
        )
        .map_err(|e| {
            Error::Internal(format!(
                "cannot build Key Vault clients for {vault_url}: {e}"
            ))
        })?;
        debug!(objects = plan.objects.len(), identity = %credential.describe(), vault = %plan.vault_name, "mount plan validated");

        // Group objects that read the same data; keep plan order for the response.
        let mut groups: Vec<(FetchKey, Vec<&ObjectSpec>)> = Vec::new();
        let mut index: HashMap<FetchKey, usize> = HashMap::new();
        for spec in &plan.objects {
            let key = (
                spec.object_type,
                spec.name.clone(),
                spec.version.clone(),
                spec.history,
            );
            match index.get(&key) {
                Some(&i) => groups[i].1.push(spec),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, vec![spec]));
                }
            }
        }

        // The token exchange runs while the first read learns the vault's scope from its 401
        // challenge; the other reads start once that has happened, so they carry the token.
        let scope = endpoints.key_vault_scope();
        let prefetch = async {
            let _ = credential.token(&scope).await;
        };
        let on_retry =
            |verdict| debug!(?verdict, vault = %plan.vault_name, "retrying Key Vault request");
        let fetch_group = |i: usize| {
            let spec = groups[i].1[0];
            let reader = &reader;
            let on_retry = &on_retry;
            async move { (i, reader.fetch(spec, deadline, on_retry).await) }
        };
        let reads = async {
            let mut results: Vec<Option<Result<Fetch, KvError>>> =
                (0..groups.len()).map(|_| None).collect();
            let mut pending = FuturesUnordered::new();
            let mut next = 0;
            let mut failed = false;
            if !groups.is_empty() {
                pending.push(fetch_group(0));
                next = 1;
                tokio::select! {
                    biased;
                    () = credential.token_requested() => {}
                    Some((i, r)) = pending.next() => {
                        failed = r.is_err();
                        results[i] = Some(r);
                    }
                }
            }
            let max = self.settings.max_parallel_reads.max(1);
            while !failed {
                while next < groups.len() && pending.len() < max {
                    pending.push(fetch_group(next));
                    next += 1;
                }
                match pending.next().await {
                    Some((i, r)) => {
                        // All-or-nothing: after a failure there is no point reading the rest.
                        failed = r.is_err();
                        results[i] = Some(r);
                    }
                    None => break,
                }
            }
            results
        };
        let ((), results) = tokio::join!(prefetch, reads);

        let principal = match &plan.identity {
            Identity::WorkloadIdentity { client_id, .. }
            | Identity::ServicePrincipal { client_id, .. } => Some(client_id.as_str()),
            Identity::VmManagedIdentity {
                user_assigned_client_id,
            } => user_assigned_client_id.as_deref(),
            Identity::PodIdentity => None,
        };
        let mut output = MountOutput::default();
        let mut owners: BTreeMap<String, String> = BTreeMap::new();
        for ((_, specs), result) in groups.iter().zip(results) {
            let fetched = match result {
                Some(Ok(fetched)) => fetched,
                Some(Err(source)) => {
                    let ctx = ObjectContext::new(
                        specs[0],
                        &plan.vault_name,
                        &vault_host,
                        credential.describe(),
                        principal,
                        plan.cloud.name().as_str(),
                    );
                    return Err(Error::Object {
                        message: failure::describe(&ctx, &source),
                        source,
                    });
                }
                // Not read because another object already failed; that error was returned.
                None => continue,
            };
            for spec in specs {
                let versions = match &fetched {
                    Fetch::Absent => {
                        output.versions.push(ObjectVersion {
                            id: spec.version_id(None),
                            version: String::new(),
                        });
                        continue;
                    }
                    Fetch::Found(versions) => versions,
                };
                let rendered = crate::render::render(spec, versions, &self.settings.render)?;
                for warning in &rendered.warnings {
                    warn!(object = %spec.label(), vault = %plan.vault_name, "{warning}");
                }
                for file in &rendered.files {
                    if let Some(first) = owners.insert(file.path.clone(), spec.label()) {
                        return Err(Error::PathConflict {
                            path: file.path.clone(),
                            first,
                            second: spec.label(),
                        });
                    }
                }
                output.files.extend(rendered.files);
                output.versions.extend(rendered.versions);
            }
        }
        let bytes: usize = output
            .files
            .iter()
            .map(|f| f.contents.len() + f.path.len() + 16)
            .sum();
        if bytes > MAX_RESPONSE_BYTES {
            return Err(Error::TooLarge { bytes });
        }
        if output.versions.is_empty() {
            return Err(Error::Internal(
                "a mount produced no object versions".into(),
            ));
        }
        Ok(output)
    }
}
