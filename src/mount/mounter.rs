//! The Mount orchestration: plan → identity → Key Vault reads → rendered files, with the
//! credentials, vault clients and reads shared across Mounts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use azure_core::http::HttpClient;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::failure::{self, ObjectContext};
use super::reads::{ReadKey, ReadResult, SharedReads, read_object, retryable};
use super::schedule;
use super::{Error, MAX_RESPONSE_BYTES, MountOutput, MountSettings};
use crate::auth::{
    Authenticator, IdentityCredential, IdentityKey, client_options, identity_key,
    service_account_expiry,
};
use crate::cache::BoundedCache;
use crate::http::budget::{self, Budgets, Class, MountContext};
use crate::keyvault::{KvError, VaultReader};
use crate::render::ObjectVersion;
use crate::spc::paths::validate_relative_path;
use crate::spc::plan::{Identity, MountPlan, ObjectSpec, ObjectType};
use crate::spc::{RawRequest, plan_request, request};
use crate::telemetry::metrics::Metrics;

/// Credentials without a service-account token (secrets, VM, pod identity) are rebuilt this often.
const IDENTITY_TTL: Duration = Duration::from_secs(3600);

/// Serves Mounts; shared by every call on the socket.
pub struct Mounter {
    settings: MountSettings,
    metrics: Metrics,
    http: Arc<dyn HttpClient>,
    auth: Authenticator,
    credentials: BoundedCache<IdentityKey, Arc<IdentityCredential>>,
    readers: BoundedCache<(IdentityKey, String), Arc<VaultReader>>,
    reads: Arc<SharedReads>,
    budgets: Option<Arc<Budgets>>,
    /// Pods (UID, SecretProviderClass) that mounted recently: their next Mount is a re-mount.
    mounted: BoundedCache<(String, String), ()>,
    /// What a failed Mount did read, kept briefly so kubelet's retry reads only the rest.
    salvage: BoundedCache<ReadKey, Arc<Vec<crate::keyvault::Fetched>>>,
}

/// A pod that mounted within this long counts as mounted (the driver republishes every
/// 60–90 s and re-reads after its 2 min poll interval).
const MOUNTED_TTL: Duration = Duration::from_secs(600);
/// How long a failed Mount's reads are kept for the retry.
const SALVAGE_TTL: Duration = Duration::from_secs(120);
/// Admission stops this much before the Mount's deadline (time for the last round trip and
/// for rendering).
const ADMISSION_MARGIN: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Mounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mounter")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Objects that read the same Key Vault data (same vault, type, name, version, history) are
/// read once.
type GroupKey = (usize, ObjectType, String, Option<String>, u32);

/// The objects of one read, and the vault (an index into the Mount's vaults) it goes to.
struct Group<'a> {
    vault: usize,
    specs: Vec<&'a ObjectSpec>,
}

/// One vault of a Mount: its name, URL and host, and the clients that read it.
struct VaultClients {
    name: String,
    url: String,
    host: String,
    reader: Arc<VaultReader>,
}

/// Who a Mount was for (no secrets): the fields of its log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountSummary {
    pub pod: String,
    pub namespace: String,
    pub secret_provider_class: String,
    pub vault: String,
    pub objects: usize,
}

/// Who an invalid request was for, as far as kubelet's keys say (for the log line).
fn summary_of_invalid(raw: &RawRequest<'_>) -> Option<MountSummary> {
    let request = request::decode(raw.attributes, "null", "420").ok()?;
    let get = |k: &str| request.attributes.get(k).unwrap_or_default().to_owned();
    Some(MountSummary {
        pod: get("csi.storage.k8s.io/pod.name"),
        namespace: get("csi.storage.k8s.io/pod.namespace"),
        secret_provider_class: get("secretProviderClass"),
        vault: get("keyvaultName"),
        objects: 0,
    })
}

impl Mounter {
    /// A mounter that sends every Entra and Key Vault request through `http`.
    pub fn new(settings: MountSettings, http: Arc<dyn HttpClient>, metrics: Metrics) -> Self {
        let auth = Authenticator::new(http.clone(), metrics.clone());
        let capacity = settings.max_cached_identities;
        let reads = Arc::new(SharedReads::new(settings.object_cache_ttl));
        Mounter {
            settings,
            metrics,
            http,
            auth,
            credentials: BoundedCache::new(capacity),
            readers: BoundedCache::new(capacity),
            reads,
            budgets: None,
            mounted: BoundedCache::new(4096),
            salvage: BoundedCache::new(4096),
        }
    }

    /// Gives each vault reader its host's budget (retries go through the shared state).
    pub fn with_budgets(mut self, budgets: Arc<Budgets>) -> Self {
        self.budgets = Some(budgets);
        self
    }

    /// Sends identity binding's token requests (`useAzureTokenProxy`) through `proxy`
    /// ([`crate::token_proxy::TokenProxy`]); without it, that mode fails to set up.
    pub fn with_token_proxy(mut self, proxy: Arc<dyn HttpClient>) -> Self {
        self.auth = self.auth.with_token_proxy(proxy);
        self
    }

    /// Validates a request into a plan with this mounter's defaults.
    pub fn plan(&self, raw: &RawRequest<'_>) -> Result<MountPlan, Error> {
        Ok(plan_request(raw, &self.settings.defaults)?)
    }

    /// Runs one Mount within `timeout` (the driver's `grpc-timeout`) or the configured default.
    pub async fn mount(
        &self,
        raw: RawRequest<'_>,
        timeout: Option<Duration>,
    ) -> (Option<MountSummary>, Result<MountOutput, Error>) {
        let plan = match self.plan(&raw) {
            Ok(plan) => plan,
            Err(e) => return (summary_of_invalid(&raw), Err(e)),
        };
        let summary = MountSummary {
            pod: plan.pod.name.clone(),
            namespace: plan.pod.namespace.clone(),
            secret_provider_class: plan.pod.secret_provider_class.clone().unwrap_or_default(),
            vault: plan.vaults().join(","),
            objects: plan.objects.len(),
        };
        // The earlier of the driver's deadline (already less a margin) and --mount-timeout;
        // capped, so no flag or header value can overflow the clock.
        let budget = timeout
            .unwrap_or(self.settings.timeout)
            .min(self.settings.timeout)
            .min(Duration::from_secs(3600));
        let deadline = Instant::now() + budget;
        let pod = plan.pod.uid.clone().map(|uid| {
            (
                uid,
                plan.pod.secret_provider_class.clone().unwrap_or_default(),
            )
        });
        let class = match &pod {
            Some(pod) if self.mounted.get(pod).is_some() => Class::Remount,
            _ => Class::FirstMount,
        };
        let context = MountContext {
            deadline: deadline
                .checked_sub(ADMISSION_MARGIN.min(budget / 10))
                .unwrap_or(deadline),
            class,
        };
        let work = budget::CONTEXT.scope(context, self.run(&plan, deadline));
        let result = match tokio::time::timeout_at(deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(Error::DeadlineExceeded {
                vault: plan.vaults().join(", "),
                seconds: budget.as_secs(),
            }),
        };
        if let (Some(pod), Ok(_)) = (pod, &result) {
            self.mounted.insert(pod, (), Instant::now() + MOUNTED_TTL);
        }
        (Some(summary), result)
    }

    /// How long the plan's credential may be reused: never past its service-account token.
    fn identity_expiry(plan: &MountPlan) -> Instant {
        let now = Instant::now();
        match service_account_expiry(plan) {
            Some(expiry) => {
                let left = (expiry - azure_core::time::OffsetDateTime::now_utc())
                    .whole_seconds()
                    .max(0) as u64;
                now + Duration::from_secs(left).min(IDENTITY_TTL * 24)
            }
            None => now + IDENTITY_TTL,
        }
    }

    /// The SDK clients of `vault_name` for the identity `key`: one set per vault and identity,
    /// kept across Mounts, each learning its own vault's challenge.
    fn vault_clients(
        &self,
        vault_name: &str,
        endpoints: &crate::cloud::CloudEndpoints,
        key: IdentityKey,
        expires: Instant,
        credential: &Arc<IdentityCredential>,
    ) -> Result<VaultClients, Error> {
        let url = endpoints.vault_url(vault_name);
        let host = url
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned();
        let reader = self
            .readers
            .get_or_try_insert(&(key, url.clone()), expires, || {
                let reader = VaultReader::new(
                    vault_name,
                    &url,
                    credential.clone(),
                    client_options(&self.http, None),
                    self.settings.retry,
                )?;
                Ok::<_, azure_core::Error>(Arc::new(match &self.budgets {
                    Some(budgets) => reader.with_budget(budgets.host(&host)),
                    None => reader,
                }))
            })
            .map_err(|e| {
                Error::Internal(format!("cannot build Key Vault clients for {url}: {e}"))
            })?;
        Ok(VaultClients {
            name: vault_name.to_owned(),
            url,
            host,
            reader,
        })
    }

    async fn run(&self, plan: &MountPlan, deadline: Instant) -> Result<MountOutput, Error> {
        let endpoints = plan.cloud.endpoints()?;
        let key = identity_key(plan, &endpoints);
        let expires = Self::identity_expiry(plan);
        let credential = self
            .credentials
            .get_or_try_insert(&key, expires, || self.auth.credential(plan, &endpoints))
            .map_err(|source| Error::Auth {
                vault: format!("Key Vault {}", plan.vaults().join(", ")),
                source,
            })?;
        // The same identity, tenant and cloud for every vault; clients (and so the challenge,
        // and the per-host rate budget below them) per vault.
        let vaults = plan
            .vaults()
            .into_iter()
            .map(|name| self.vault_clients(name, &endpoints, key, expires, &credential))
            .collect::<Result<Vec<_>, _>>()?;
        debug!(objects = plan.objects.len(), identity = %credential.describe(), vaults = vaults.len(), vault = %plan.vault_name, "mount plan validated");

        // Group objects that read the same data; keep plan order for the response.
        let mut groups: Vec<Group<'_>> = Vec::new();
        let mut index: HashMap<GroupKey, usize> = HashMap::new();
        for spec in &plan.objects {
            let vault_name = plan.vault_of(spec);
            let vault = vaults
                .iter()
                .position(|v| v.name == vault_name)
                .unwrap_or(0);
            let group_key = (
                vault,
                spec.object_type,
                spec.name.clone(),
                spec.version.clone(),
                spec.history,
            );
            match index.get(&group_key) {
                Some(&i) => groups[i].specs.push(spec),
                None => {
                    index.insert(group_key, groups.len());
                    groups.push(Group {
                        vault,
                        specs: vec![spec],
                    });
                }
            }
        }

        let read_key_of = |i: usize| {
            let spec = groups[i].specs[0];
            ReadKey {
                identity: key,
                vault_url: vaults[groups[i].vault].url.clone(),
                object_type: spec.object_type,
                name: spec.name.clone(),
                version: spec.version.clone(),
                history: spec.history,
            }
        };
        let read_group = |i: usize| {
            let spec = groups[i].specs[0].clone();
            let vault = &vaults[groups[i].vault];
            let read_key = read_key_of(i);
            let reader = vault.reader.clone();
            let reads = self.reads.clone();
            let salvaged = self.salvage.get(&read_key);
            let metrics = self.metrics.clone();
            let vault = vault.name.clone();
            async move {
                if let Some(salvaged) = salvaged {
                    return (i, Ok(salvaged));
                }
                let start = || {
                    read_object(
                        reader.clone(),
                        spec.clone(),
                        deadline,
                        metrics.clone(),
                        vault.clone(),
                    )
                };
                let (mut result, joined) = reads.read(read_key.clone(), start).await;
                if joined && retryable(&result) && Instant::now() < deadline {
                    // We joined a read that a Mount with an earlier deadline started and that
                    // gave up when that deadline came near; ours has time left: read again.
                    result = reads.read(read_key, start).await.0;
                }
                (i, result)
            }
        };
        // A failure that ends the Mount: anything but a 404 on objects that are all optional.
        let fatal = |i: usize, result: &ReadResult| match result {
            Ok(_) => false,
            Err(KvError::NotFound) => !groups[i].specs.iter().all(|s| s.optional),
            Err(_) => true,
        };

        // The token exchange runs while each vault's first read learns the vault's scope from
        // its 401 challenge (see `schedule`).
        let scope = endpoints.key_vault_scope();
        let prefetch = async {
            let _ = credential.token(&scope).await;
        };
        let vault_of: Vec<usize> = groups.iter().map(|g| g.vault).collect();
        let readers: Vec<Arc<VaultReader>> = vaults.iter().map(|v| v.reader.clone()).collect();
        let reads = schedule::run(
            &vault_of,
            &readers,
            self.settings.max_parallel_reads,
            read_group,
            fatal,
        );
        let ((), results) = tokio::join!(prefetch, reads);
        if results
            .iter()
            .any(|r| matches!(r, Some(Err(e)) if retryable(&Err(e.clone()))))
        {
            // The Mount fails for lack of time or capacity: keep what it did read, so
            // kubelet's retry asks the vault only for the rest.
            let until = Instant::now() + SALVAGE_TTL;
            for (i, result) in results.iter().enumerate() {
                if let Some(Ok(value)) = result {
                    self.salvage.insert(read_key_of(i), value.clone(), until);
                }
            }
        }
        self.assemble(plan, &groups, results, &vaults, &credential)
    }

    /// Renders every read into files, or returns the first failure (and no files).
    fn assemble(
        &self,
        plan: &MountPlan,
        groups: &[Group<'_>],
        results: Vec<Option<ReadResult>>,
        vaults: &[VaultClients],
        credential: &IdentityCredential,
    ) -> Result<MountOutput, Error> {
        let principal = match &plan.identity {
            Identity::WorkloadIdentity { client_id, .. }
            | Identity::IdentityBinding { client_id, .. }
            | Identity::ServicePrincipal { client_id, .. } => Some(client_id.as_str()),
            Identity::VmManagedIdentity {
                user_assigned_client_id,
            } => user_assigned_client_id.as_deref(),
            Identity::PodIdentity => None,
        };
        let mut output = MountOutput::default();
        let mut owners: BTreeMap<String, String> = BTreeMap::new();
        let mut unread = 0;
        for (group, result) in groups.iter().zip(results) {
            // `None`: not read because another object failed first; that error is returned.
            let Some(result) = result else {
                unread += 1;
                continue;
            };
            let vault = &vaults[group.vault];
            for spec in &group.specs {
                let versions = match &result {
                    Ok(versions) => versions,
                    Err(KvError::NotFound) if spec.optional => {
                        output.versions.push(ObjectVersion {
                            id: spec.version_id(None),
                            version: String::new(),
                        });
                        continue;
                    }
                    Err(source) => {
                        let ctx = ObjectContext::new(
                            spec,
                            &vault.name,
                            &vault.host,
                            credential.describe(),
                            principal,
                            plan.cloud.name().as_str(),
                        );
                        return Err(Error::Object {
                            message: failure::describe(&ctx, source),
                            source: source.clone(),
                        });
                    }
                };
                let rendered = crate::render::render(spec, versions, &self.settings.render)?;
                for warning in &rendered.warnings {
                    warn!(object = %spec.label(), vault = %vault.name, "{warning}");
                }
                for file in &rendered.files {
                    // Companions (`.crt`, `.key`) are only known now: hold them to the
                    // driver's path rules too.
                    if let Err(problem) = validate_relative_path(&file.path) {
                        return Err(Error::RenderedPath {
                            object: spec.label(),
                            path: file.path.clone(),
                            problem,
                        });
                    }
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
        if unread > 0 {
            return Err(Error::Internal(format!(
                "{unread} reads of a mount neither finished nor failed"
            )));
        }
        // No file where another needs a directory (e.g. `tls.crt` and `tls.crt/ca`).
        for (path, owner) in &owners {
            let mut prefix = path.as_str();
            while let Some((parent, _)) = prefix.rsplit_once('/') {
                if let Some(first) = owners.get(parent) {
                    return Err(Error::PathConflict {
                        path: path.clone(),
                        first: format!("{first} (as a file at {parent:?})"),
                        second: owner.clone(),
                    });
                }
                prefix = parent;
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
