//! `Environment::create`, `delete`, `list`, the dry-run plan and the expiry sweep.
//!
//! Create runs in five rounds of concurrent calls (the critical path):
//!
//! 1. the environment's lease, taken with the state item written as `creating` (one
//!    conditional update), beside every read that depends only on the profile: image, reference
//!    service, ALB, listeners, zone, target groups (one page finds the reference's and an
//!    existing one of the environment), the environment's service and task definition family
//!    (with their owner tags), the endpoints document;
//! 2. the target group (created, or its owner tags read), the reference task definition and
//!    target group attributes, the listener rules, the DNS record and its ownership TXT record;
//! 3. the task definition revision; the listener rule (created, or its owner tags read); the
//!    new target group's tags (did this run create it?);
//! 4. the ECS service (created, or updated with the new revision), the target group attributes;
//! 5. publishing, once the service exists (and is stable, when asked): the DNS record with its
//!    ownership TXT record, the endpoints entry, and the state item `ready`, which releases the
//!    lease.
//!
//! Every owner is read before the resource is changed; a resource that is not this
//! environment's is refused ([`Error::NotOwned`]) and what this run created is removed again.
//! Every write this run makes is journaled; when a step fails the journal is undone in reverse
//! order, so only what existed before the run is left.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cloud::{
    AttrValue, ChangeAction, Cloud, CloudError, CreateRule, CreateService, CreateTargetGroup,
    DnsRecord, Item, ItemCondition, ItemUpdate, Listener, LoadBalancer, Page, PutMode,
    RecordChange, RegisterTaskDefinition, Rule, Service, ServiceLoadBalancer, ServiceSpec,
    StoredDocument, Tag, TargetGroup, TaskDefinition, TaskDefinitionStatus, WriteCondition, codes,
    schema,
};
use crate::decide::{self, DnsPlan, GroupsFound, RulePlan, ServicePlan};
use crate::endpoints::{Edit, EndpointsDocument};
use crate::error::{Error, Result, Step};
use crate::image::ImageRef;
use crate::lease::{self, Lease, LeaseInfo, LeaseOptions, Refused};
use crate::names::{EnvironmentName, EnvironmentNames};
use crate::ownership::{Owner, RunId, Verdict};
use crate::profile::Profile;

pub use crate::ownership::tags;

/// Attempts at a free rule priority before giving up.
const PRIORITY_ATTEMPTS: u32 = 60;
/// Attempts at the endpoints compare-and-swap before giving up.
const CAS_ATTEMPTS: u32 = 60;
/// Attempts at a DNS change batch that lost to another writer.
const DNS_ATTEMPTS: u32 = 3;
/// Calls in flight when fanning out over a list (task definition revisions).
const FAN_OUT: usize = 10;

/// State item attributes beyond the key, `kind`, `last_updated` and the lease's.
mod attr {
    pub const ENDPOINT: &str = "endpoint";
    pub const TARGET_GROUP: &str = "target_group_arn";
    pub const RULE: &str = "rule_arn";
    pub const SERVICE: &str = "service_arn";
}

/// What kind of resource a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResourceKind {
    /// The container image.
    Image,
    /// The task definition revision(s).
    TaskDefinition,
    /// The target group.
    TargetGroup,
    /// The listener rule.
    ListenerRule,
    /// The ECS service.
    Service,
    /// The Route 53 record (with its ownership TXT record).
    DnsRecord,
    /// The endpoints document entry.
    EndpointsEntry,
    /// The state table item.
    StateItem,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Image => "image",
            Self::TaskDefinition => "task definition",
            Self::TargetGroup => "target group",
            Self::ListenerRule => "listener rule",
            Self::Service => "service",
            Self::DnsRecord => "DNS record",
            Self::EndpointsEntry => "endpoints entry",
            Self::StateItem => "state item",
        })
    }
}

/// What was (or, in a dry run, would be) done to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Created by this run.
    Created,
    /// Existed and was changed.
    Updated,
    /// Existed as wanted and was left alone (also when an earlier run of this environment
    /// created it).
    Reused,
    /// Deleted by this run.
    Deleted,
    /// Already gone.
    AlreadyAbsent,
    /// Checked and found (the image).
    Checked,
    /// Not checked (an image outside private ECR).
    Unchecked,
    /// Left for a later run: not published because the service did not become stable in time.
    Deferred,
}

/// One resource and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResourceChange {
    /// Kind.
    pub kind: ResourceKind,
    /// ARN or name.
    pub id: String,
    /// What was done.
    pub action: Action,
    /// Details (priority chosen, digest found...).
    pub note: Option<String>,
}

impl fmt::Display for ResourceChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {:?}", self.kind, self.id, self.action)?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// The result of create, delete or a dry run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// Profile name.
    pub profile: String,
    /// Derived names.
    pub names: EnvironmentNames,
    /// The host, when the zone could be read.
    pub host: Option<String>,
    /// True for a plan: nothing was changed, actions say what would be done.
    pub dry_run: bool,
    /// The run's id (recorded in the owner of what it created); `None` for a plan.
    pub run: Option<String>,
    /// Every resource, with what was done.
    pub resources: Vec<ResourceChange>,
}

impl Outcome {
    /// The change of one kind of resource, if reported.
    pub fn resource(&self, kind: ResourceKind) -> Option<&ResourceChange> {
        self.resources.iter().find(|r| r.kind == kind)
    }
}

/// Something create or delete is doing, reported while it runs (see
/// [`Environment::with_progress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// A resource was created, changed, reused, deleted or checked (or would be, in a plan).
    Resource(ResourceChange),
    /// Waiting for something, with its latest state.
    Waiting {
        /// What for.
        what: String,
        /// Its state now.
        status: String,
    },
    /// Waiting for another run's lease on the environment.
    Lease(LeaseInfo),
}

/// Options of [`Environment::create`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CreateOptions {
    /// Only plan: read, and report what would be created, updated or left alone.
    pub dry_run: bool,
    /// Wait until the service is stable, at most this long, before publishing the DNS record
    /// and endpoints entry. A failed rollout fails the create (and rolls it back); a wait that
    /// runs out keeps the environment unpublished and says so ([`Error::Timeout`] with the
    /// outcome).
    pub wait_stable: Option<Duration>,
    /// How long to wait for a DRAINING service of the same name to become INACTIVE
    /// (default 10 minutes).
    pub draining_timeout: Option<Duration>,
    /// "Now" in epoch seconds (for tests); the clock by default.
    pub now: Option<i64>,
    /// Create the environment without the parts of the reference service a preview must not
    /// copy (service registries, Service Connect services, other load balancers, a
    /// non-ECS deployment controller...), instead of refusing with
    /// [`Error::ReferenceNotCopyable`]. The service's outcome note names what was left out.
    pub leave_out_uncopyable: bool,
}

impl CreateOptions {
    /// Only plan.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Wait until the service is stable, at most `timeout`, before publishing.
    pub fn wait_stable(mut self, timeout: Duration) -> Self {
        self.wait_stable = Some(timeout);
        self
    }

    /// Wait at most `timeout` for a DRAINING service of the same name.
    pub fn draining_timeout(mut self, timeout: Duration) -> Self {
        self.draining_timeout = Some(timeout);
        self
    }

    /// "Now", epoch seconds.
    pub fn now(mut self, now: i64) -> Self {
        self.now = Some(now);
        self
    }

    /// Leave out what cannot be copied from the reference instead of refusing.
    pub fn leave_out_uncopyable(mut self, leave_out: bool) -> Self {
        self.leave_out_uncopyable = leave_out;
        self
    }
}

/// Options of [`Environment::delete`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DeleteOptions {
    /// Only plan.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Only plan.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// Where an environment is in its life, as its state item says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EnvironmentStatus {
    /// A create is running, or one stopped before publishing (a later create or delete
    /// finishes or undoes it).
    Creating,
    /// Created and published.
    Ready,
    /// A delete is running, or one stopped (run delete again).
    Deleting,
}

impl EnvironmentStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Ready => "ready",
            Self::Deleting => "deleting",
        }
    }

    fn parse(text: Option<&str>) -> Self {
        match text {
            Some("creating") => Self::Creating,
            Some("deleting") => Self::Deleting,
            _ => Self::Ready,
        }
    }
}

impl fmt::Display for EnvironmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An environment as recorded in the state table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnvironmentRecord {
    /// Profile.
    pub profile: String,
    /// Environment name.
    pub name: String,
    /// Its host.
    pub endpoint: String,
    /// Last create/deploy, epoch seconds.
    pub last_updated: i64,
    /// Where it is in its life.
    pub status: EnvironmentStatus,
    /// The run of its latest create or delete (absent on items eden did not write).
    pub run: Option<String>,
}

impl EnvironmentRecord {
    /// A ready environment.
    pub fn new(
        profile: impl Into<String>,
        name: impl Into<String>,
        endpoint: impl Into<String>,
        last_updated: i64,
    ) -> Self {
        Self {
            profile: profile.into(),
            name: name.into(),
            endpoint: endpoint.into(),
            last_updated,
            status: EnvironmentStatus::Ready,
            run: None,
        }
    }

    /// The state table item.
    pub fn to_item(&self) -> Item {
        let mut item = Item::from([
            (schema::HASH_KEY.into(), AttrValue::S(self.profile.clone())),
            (schema::RANGE_KEY.into(), AttrValue::S(self.name.clone())),
            (attr::ENDPOINT.into(), AttrValue::S(self.endpoint.clone())),
            (
                schema::LAST_UPDATED.into(),
                AttrValue::N(self.last_updated.to_string()),
            ),
            (schema::KIND.into(), AttrValue::S("environment".into())),
            (
                lease::STATUS.into(),
                AttrValue::S(self.status.as_str().into()),
            ),
        ]);
        if let Some(run) = &self.run {
            item.insert(lease::RUN.into(), AttrValue::S(run.clone()));
        }
        item
    }

    /// Reads an item; `None` when it is not an environment.
    pub fn from_item(item: &Item) -> Option<Self> {
        let s = |k: &str| item.get(k).and_then(AttrValue::as_s).map(str::to_owned);
        if s(schema::KIND).as_deref() != Some("environment") {
            return None;
        }
        Some(Self {
            profile: s(schema::HASH_KEY)?,
            name: s(schema::RANGE_KEY)?,
            endpoint: s(attr::ENDPOINT).unwrap_or_default(),
            last_updated: item
                .get(schema::LAST_UPDATED)
                .and_then(AttrValue::as_i64)
                .unwrap_or(0),
            status: EnvironmentStatus::parse(s(lease::STATUS).as_deref()),
            run: s(lease::RUN),
        })
    }
}

/// The result of [`Environment::sweep`].
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Environments deleted.
    pub deleted: Vec<Outcome>,
    /// Environments whose delete failed, with the error.
    pub failed: Vec<(String, Error)>,
}

/// A write this run made, and how to undo it.
#[derive(Debug, Clone)]
enum Undo {
    /// The lease was taken; the state item was `old` before.
    State {
        old: Option<Item>,
    },
    /// CreateTargetGroup answered this group; whether this run created it is not known yet
    /// (AWS answers an existing group with the same settings).
    TargetGroupUnverified(String),
    TargetGroup(String),
    TaskDefinition(String),
    Rule(String),
    ServiceCreated {
        cluster: String,
        name: String,
    },
    ServiceUpdated {
        cluster: String,
        name: String,
        previous: String,
    },
    DnsCreated(Vec<DnsRecord>),
    DnsUpdated(DnsRecord),
    EndpointKey {
        previous: Option<String>,
    },
}

type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Creates, deploys, deletes and lists environments on a [`Cloud`].
///
/// `create` and `delete` take the environment's lease themselves (see [`crate::lease`]), read
/// every resource's owner before changing it, and change only what this environment created.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use eden_core::environment::{CreateOptions, DeleteOptions, Environment, ResourceKind, Action};
/// use eden_core::memory::{MemoryCloud, MemoryOptions};
/// use eden_core::Profile;
///
/// let profile = Profile::example();
/// let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
/// let eden = Environment::new(memory.cloud());
/// let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";
///
/// let created = eden.create(&profile, "feature-1", image, &CreateOptions::default()).await?;
/// assert_eq!(created.host.as_deref(), Some("api-feature-1.dev.example.com"));
/// assert_eq!(created.resource(ResourceKind::Service).unwrap().action, Action::Created);
/// assert_eq!(eden.list(Some("default")).await?.len(), 1);
///
/// eden.delete(&profile, "feature-1", &DeleteOptions::default()).await?;
/// assert!(eden.list(None).await?.is_empty());
/// # Ok::<(), eden_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Environment {
    cloud: Cloud,
    table: String,
    poll_interval: Duration,
    lease: LeaseOptions,
    progress: Option<ProgressFn>,
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("cloud", &self.cloud)
            .field("table", &self.table)
            .field("poll_interval", &self.poll_interval)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// Shared state of one create or delete run.
struct Run<'a> {
    profile: &'a Profile,
    names: EnvironmentNames,
    /// This environment, as the creator of what this run creates.
    owner: Owner,
    run: RunId,
    lease: Lease,
    now: i64,
    journal: Mutex<Vec<Undo>>,
    changes: Mutex<Vec<ResourceChange>>,
    progress: Option<ProgressFn>,
    /// Delete: something was deleted (the state item then stays, `deleting`).
    destroyed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Run<'_> {
    fn record(
        &self,
        kind: ResourceKind,
        id: impl Into<String>,
        action: Action,
        note: Option<String>,
    ) {
        let change = ResourceChange {
            kind,
            id: id.into(),
            action,
            note,
        };
        if let Some(progress) = &self.progress {
            progress(&Progress::Resource(change.clone()));
        }
        lock(&self.changes).push(change);
    }

    fn waiting(&self, what: impl Into<String>, status: impl Into<String>) {
        if let Some(progress) = &self.progress {
            progress(&Progress::Waiting {
                what: what.into(),
                status: status.into(),
            });
        }
    }

    fn journal(&self, undo: Undo) {
        lock(&self.journal).push(undo);
    }

    /// Replaces the journal entry `from` (by its target group ARN) with `to`, or drops it.
    fn rejournal_target_group(&self, arn: &str, to: Option<Undo>) {
        let mut journal = lock(&self.journal);
        if let Some(entry) = journal
            .iter_mut()
            .find(|u| matches!(u, Undo::TargetGroupUnverified(a) if a == arn))
        {
            match to {
                Some(to) => *entry = to,
                None => *entry = Undo::TargetGroupUnverified(String::new()),
            }
        }
        journal.retain(|u| !matches!(u, Undo::TargetGroupUnverified(a) if a.is_empty()));
    }

    fn take_journal(&self) -> Vec<Undo> {
        std::mem::take(&mut *lock(&self.journal))
    }

    fn outcome(&self, host: Option<String>, dry_run: bool) -> Outcome {
        let mut resources = lock(&self.changes).clone();
        // Declaration order of ResourceKind: image first, state item last.
        resources.sort_by_key(|r| r.kind as u8);
        Outcome {
            profile: self.profile.name.clone(),
            names: self.names.clone(),
            host,
            dry_run,
            run: (!dry_run).then(|| self.run.to_string()),
            resources,
        }
    }

    fn state_id(&self, table: &str) -> String {
        format!("{table}/{}/{}", self.profile.name, self.names.env)
    }

    fn doc_id(&self) -> String {
        format!(
            "s3://{}/{}",
            self.profile.endpoint_s3_bucket_name, self.profile.endpoint_s3_key
        )
    }

    fn entry_id(&self) -> String {
        format!(
            "{}.{}",
            self.names.endpoint_entry, self.profile.endpoint_update_key
        )
    }

    fn created_at(&self) -> String {
        chrono::DateTime::from_timestamp(self.now, 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    }

    fn tags(&self) -> Vec<Tag> {
        self.owner.tags(&self.created_at())
    }
}

fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

fn is_precondition(e: &CloudError) -> bool {
    e.is(&[codes::PRECONDITION_FAILED, "ConditionalRequestConflict"]) || e.message.contains("412")
}

async fn jitter(attempt: u32) {
    let max = 2 * u64::from(attempt.min(10)) + 1;
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=max))).await;
}

/// Drops lease attributes from a state item being restored.
fn without_lease(mut item: Item) -> Item {
    for k in [
        lease::LEASE_HOLDER,
        lease::LEASE_UNTIL,
        lease::LEASE_OPERATION,
    ] {
        item.remove(k);
    }
    item
}

/// What create reads in its first round, checked.
struct CreateReads {
    reference: Service,
    target: ServiceLoadBalancer,
    spec: ServiceSpec,
    left_out: Vec<String>,
    alb: LoadBalancer,
    https: Listener,
    host: String,
    groups: GroupsFound,
    service_plan: ServicePlan,
    document: Option<StoredDocument>,
    old_state: Option<Item>,
}

/// The environment's target group after the second round.
enum GroupState {
    /// It existed, and is ours.
    Existing(TargetGroup),
    /// CreateTargetGroup answered it; its tags say whether this run created it.
    Answered(TargetGroup),
    /// Not known after the first listing page: create it from this reference in round 3.
    Later(TargetGroup),
}

impl GroupState {
    fn group(&self) -> Option<&TargetGroup> {
        match self {
            Self::Existing(tg) | Self::Answered(tg) => Some(tg),
            Self::Later(_) => None,
        }
    }
}

/// The rule after round 3.
enum RuleState {
    /// Created or reused, with its ARN.
    Done(String),
    /// To create once the target group exists (slow path).
    AfterGroup,
}

/// What delete reads before changing anything, checked.
struct DeleteReads {
    host: String,
    service: Option<Service>,
    group: Option<TargetGroup>,
    rules: Vec<Rule>,
    records: Vec<DnsRecord>,
    document: Option<StoredDocument>,
    active: Vec<String>,
    inactive: Vec<String>,
    old_state: Option<Item>,
}

impl Environment {
    /// Environments on `cloud`, recorded in the state table `eden`.
    pub fn new(cloud: Cloud) -> Self {
        Self {
            cloud,
            table: schema::DEFAULT_TABLE.into(),
            poll_interval: Duration::from_secs(5),
            lease: LeaseOptions::default(),
            progress: None,
        }
    }

    /// Uses another state table.
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Polls services this often while waiting (default 5 s).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Takes and keeps leases this way (see [`LeaseOptions`]).
    pub fn with_lease(mut self, options: LeaseOptions) -> Self {
        self.lease = options;
        self
    }

    /// Calls `progress` as create and delete go: each resource done, each wait.
    pub fn with_progress(mut self, progress: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// The state table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The lease options.
    pub fn lease_options(&self) -> &LeaseOptions {
        &self.lease
    }

    /// The cloud.
    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    fn run<'a>(
        &self,
        profile: &'a Profile,
        names: EnvironmentNames,
        operation: &'static str,
        now: i64,
    ) -> Run<'a> {
        let run = RunId::new();
        Run {
            owner: Owner::new(&profile.name, names.env.as_str()).with_run(run.as_str()),
            lease: Lease {
                state: self.cloud.state.clone(),
                table: self.table.clone(),
                profile: profile.name.clone(),
                environment: names.env.to_string(),
                run: run.clone(),
                operation,
                options: self.lease.clone(),
            },
            profile,
            names,
            run,
            now,
            journal: Mutex::new(Vec::new()),
            changes: Mutex::new(Vec::new()),
            progress: self.progress.clone(),
            destroyed: AtomicBool::new(false),
        }
    }

    /// Checks everything that needs no call: the names, the image URI, names colliding with
    /// the reference service's, the region.
    fn validate(&self, profile: &Profile, name: &str) -> Result<EnvironmentNames> {
        let env = EnvironmentName::new(name)?;
        let names = EnvironmentNames::derive(profile, &env)?;
        decide::reference_names(profile, &names)?;
        decide::region(self.cloud.region.as_deref(), profile)?;
        Ok(names)
    }

    /// Who holds the lease of environment `name` of `profile`, if anyone.
    pub async fn lease_holder(&self, profile: &str, name: &str) -> Result<Option<LeaseInfo>> {
        lease::holder(&*self.cloud.state, &self.table, profile, name)
            .await
            .map_err(|e| Error::cloud(Step::Lease, format!("{}/{profile}/{name}", self.table), e))
    }

    /// Breaks the lease of environment `name` of `profile`: use it when its holder is known to
    /// be gone and waiting for the lease to expire is not an option. Logged; the holder, if it
    /// still runs, stops at its next renewal. Returns the holder it removed.
    pub async fn break_lease(&self, profile: &str, name: &str) -> Result<Option<LeaseInfo>> {
        EnvironmentName::new(name)?;
        lease::break_lease(&*self.cloud.state, &self.table, profile, name, None)
            .await
            .map_err(|e| Error::cloud(Step::Lease, format!("{}/{profile}/{name}", self.table), e))
    }
}

// ---------------------------------------------------------------- create

impl Environment {
    /// Creates environment `name` from the profile's reference service running `image_uri`,
    /// or deploys `image_uri` to it when it exists. Converges: running it twice gives the same
    /// environment, and a run that died is finished. Takes the environment's lease; refuses
    /// anything that is not this environment's ([`Error::NotOwned`]); on failure, what this
    /// run created is removed again.
    pub async fn create(
        &self,
        profile: &Profile,
        name: &str,
        image_uri: &str,
        options: &CreateOptions,
    ) -> Result<Outcome> {
        let names = self.validate(profile, name)?;
        let image = ImageRef::parse(image_uri)?;
        let now = options.now.unwrap_or_else(now_epoch);
        let run = self.run(profile, names, "create", now);
        if options.dry_run {
            return self.plan_create(&run, &image, image_uri, options).await;
        }
        let reads = match self.create_first(&run, &image, image_uri, options).await {
            Ok(reads) => reads,
            Err(e) => return Err(self.undo(&run, e).await),
        };
        let host = reads.host.clone();
        let result = tokio::select! {
            r = self.create_rest(&run, reads, image_uri, options) => r,
            lost = run.lease.keep() => Err(lost),
        };
        match result {
            Ok(()) => {
                tracing::info!(profile = %profile.name, env = %run.names.env, run = %run.run, "environment created");
                Ok(run.outcome(Some(host), false))
            }
            Err(e) => Err(self.undo(&run, e).await),
        }
    }

    /// Rolls back what the journal holds (nothing after a lost lease), then returns `cause`
    /// (or the rollback's failure).
    async fn undo(&self, run: &Run<'_>, cause: Error) -> Error {
        let journal = run.take_journal();
        if journal.is_empty() || matches!(cause, Error::LeaseLost { .. }) {
            return cause;
        }
        tracing::warn!(error = %cause, undo = journal.len(), "create failed, rolling back");
        let leftover = tokio::select! {
            left = self.rollback(run, journal) => left,
            lost = run.lease.keep() => vec![lost.to_string()],
        };
        if leftover.is_empty() {
            cause
        } else {
            Error::RollbackIncomplete {
                cause: Box::new(cause),
                leftover,
            }
        }
    }

    fn lease_update(&self, run: &Run<'_>, status: &str) -> ItemUpdate {
        ItemUpdate::default()
            .set(lease::STATUS, AttrValue::S(status.into()))
            .set(lease::RUN, AttrValue::S(run.run.to_string()))
            .set(schema::KIND, AttrValue::S("environment".into()))
            .set_if_absent(schema::LAST_UPDATED, AttrValue::N(run.now.to_string()))
    }

    /// Takes the lease, waiting for another holder up to the lease options' `wait`.
    async fn wait_lease(&self, run: &Run<'_>, update: &ItemUpdate) -> Result<Option<Item>> {
        let started = tokio::time::Instant::now();
        loop {
            match run.lease.try_acquire(update).await {
                Ok(old) => {
                    run.journal(Undo::State { old: old.clone() });
                    return Ok(old);
                }
                Err(Refused::Retry) => tokio::task::yield_now().await,
                Err(Refused::Held(holder)) => {
                    let waited = started.elapsed();
                    if waited >= self.lease.wait {
                        return Err(run.lease.busy(holder));
                    }
                    if let Some(progress) = &run.progress {
                        progress(&Progress::Lease(holder.clone()));
                    }
                    let until_expiry = u64::try_from(holder.expires_at_ms - lease::now_ms())
                        .map(|ms| Duration::from_millis(ms + 1))
                        .unwrap_or(Duration::ZERO);
                    let pause = self
                        .lease
                        .poll
                        .min(until_expiry)
                        .min(self.lease.wait - waited)
                        .max(Duration::from_millis(1));
                    tokio::time::sleep(pause).await;
                }
                Err(refused) => return Err(self.refused(run, refused)),
            }
        }
    }

    fn refused(&self, run: &Run<'_>, refused: Refused) -> Error {
        match refused {
            Refused::Held(holder) => run.lease.busy(holder),
            Refused::NotEden => Error::NotOwned {
                kind: ResourceKind::StateItem,
                resource: run.state_id(&self.table),
                owner: crate::ownership::ForeignOwner::Unrecorded,
            },
            Refused::Retry => run.lease.lost("the state item kept changing"),
            Refused::Store(e) => run.lease.store_error(e),
        }
    }

    /// Round 1: the lease (and `creating` state), beside the reads. When the lease is held
    /// elsewhere, waits for it and reads again.
    async fn create_first(
        &self,
        run: &Run<'_>,
        image: &ImageRef,
        image_uri: &str,
        options: &CreateOptions,
    ) -> Result<CreateReads> {
        let update = self.lease_update(run, "creating");
        let (taken, reads) = tokio::join!(
            run.lease.try_acquire(&update),
            self.create_reads(run, image, image_uri, options)
        );
        let (old, reads) = match taken {
            Ok(old) => {
                run.journal(Undo::State { old: old.clone() });
                (old, reads)
            }
            Err(Refused::Held(_) | Refused::Retry) => {
                let old = self.wait_lease(run, &update).await?;
                // What was read before the wait may be stale.
                lock(&run.changes).clear();
                (old, self.create_reads(run, image, image_uri, options).await)
            }
            Err(refused) => return Err(self.refused(run, refused)),
        };
        let mut reads = reads?;
        reads.old_state = old;
        Ok(reads)
    }

    /// The reads of round 1, and every check they allow.
    async fn create_reads(
        &self,
        run: &Run<'_>,
        image: &ImageRef,
        image_uri: &str,
        options: &CreateOptions,
    ) -> Result<CreateReads> {
        let p = run.profile;
        let c = &self.cloud;
        let names = &run.names;
        let reference = &p.reference_service_arn;
        let alb_arn = &p.master_alb_arn.arn;
        let (_, found, alb, https, zone, page, service, family, document) = tokio::try_join!(
            self.check_image(run, image, image_uri),
            async {
                c.ecs
                    .describe_service(&reference.cluster, &reference.service)
                    .await
                    .map_err(|e| Error::cloud(Step::ReadReference, &reference.arn, e))
            },
            async {
                c.elb
                    .describe_load_balancer(alb_arn)
                    .await
                    .map_err(|e| Error::cloud(Step::ReadLoadBalancer, alb_arn, e))
            },
            self.https_listener(alb_arn),
            self.zone_name(p),
            async {
                c.elb
                    .list_target_groups(None)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, &names.target_group, e))
            },
            async {
                c.ecs
                    .describe_service(&p.target_cluster, &names.resource)
                    .await
                    .map_err(|e| Error::cloud(Step::Service, &names.resource, e))
            },
            async {
                c.ecs
                    .describe_latest_task_definition(&names.resource)
                    .await
                    .map_err(|e| Error::cloud(Step::TaskDefinition, &names.resource, e))
            },
            self.read_document(run),
        )?;
        let reference_service = decide::reference(found, &reference.arn)?;
        decide::reference_resources(&reference_service, names)?;
        let target = decide::target_of(&reference_service)?;
        let (spec, left_out) =
            decide::service_spec(&reference_service, &target, options.leave_out_uncopyable)?;
        let service_plan = decide::service(service.as_ref(), &run.owner)?;
        decide::family(family.as_ref(), &run.owner)?;
        let host = names.host(&zone)?;
        if run
            .owner
            .txt_record(&host)
            .values
            .iter()
            .any(|v| v.len() > 257)
        {
            return Err(Error::Conflict {
                step: Step::Dns,
                resource: host,
                message: "the profile name is too long for the DNS ownership record (255 \
                          characters with the environment name)"
                    .into(),
            });
        }
        // The document is checked, and the entry's owner, before anything is written.
        let doc = self.parse_document(run, document.as_ref())?;
        decide::endpoint_upsert(&doc, p, &names.endpoint_entry, &host, &run.owner)?;
        let ref_tg = target.target_group_arn.clone().unwrap_or_default();
        let groups = decide::find_groups(
            &page.items,
            page.next.is_none(),
            &ref_tg,
            &names.target_group,
        );
        Ok(CreateReads {
            reference: reference_service,
            target,
            spec,
            left_out,
            alb,
            https,
            host,
            groups,
            service_plan,
            document,
            old_state: None,
        })
    }

    async fn read_document(&self, run: &Run<'_>) -> Result<Option<StoredDocument>> {
        let p = run.profile;
        self.cloud
            .documents
            .get(&p.endpoint_s3_bucket_name, &p.endpoint_s3_key)
            .await
            .map_err(|e| Error::cloud(Step::Endpoints, run.doc_id(), e))
    }

    fn parse_document(
        &self,
        run: &Run<'_>,
        document: Option<&StoredDocument>,
    ) -> Result<EndpointsDocument> {
        EndpointsDocument::parse(document.map(|d| d.bytes.as_slice())).map_err(|source| {
            Error::Document {
                resource: run.doc_id(),
                source,
            }
        })
    }

    /// Rounds 2 to 5, under the lease.
    async fn create_rest(
        &self,
        run: &Run<'_>,
        r: CreateReads,
        image_uri: &str,
        options: &CreateOptions,
    ) -> Result<()> {
        let c = &self.cloud;
        let p = run.profile;
        let host = r.host.clone();
        let ref_tg_arn = r.target.target_group_arn.clone().unwrap_or_default();
        let container = r.target.container_name.clone().unwrap_or_default();

        // Round 2: the target group, what the writes copy from, what routes the host.
        let (ref_td, attributes, rules, a, txt, group) = tokio::join!(
            async {
                c.ecs
                    .describe_task_definition(&r.reference.spec.task_definition)
                    .await
                    .map_err(|e| {
                        Error::cloud(Step::ReadReference, &r.reference.spec.task_definition, e)
                    })
            },
            async {
                if r.groups.environment.is_some() {
                    return Ok(BTreeMap::new());
                }
                c.elb
                    .target_group_attributes(&ref_tg_arn)
                    .await
                    .map_err(|e| Error::cloud(Step::ReadReference, &ref_tg_arn, e))
            },
            self.all_rules(&r.https.arn),
            self.find_record(p, &host, "A"),
            self.find_record(p, &host, "TXT"),
            self.second_round_group(run, &r.groups, &ref_tg_arn),
        );
        let group = group?;
        let (ref_td, attributes, rules) = (ref_td?, attributes?, rules?);
        let wanted = decide::wanted_record(&host, &r.alb);
        let dns_plan = decide::dns(a?.as_ref(), txt?.as_ref(), &wanted, &run.owner)?;
        if !ref_td.containers.iter().any(|ct| ct.name == container) {
            return Err(Error::Conflict {
                step: Step::ReadReference,
                resource: ref_td.arn.clone(),
                message: format!(
                    "no container named {container:?} (the reference load balancer's container)"
                ),
            });
        }
        let routing: Vec<String> = decide::host_rules(&rules, &host)
            .iter()
            .map(|r| r.arn.clone())
            .collect();

        // Round 3: the revision; the rule (or its owner); whether this run made the group.
        let (td, verified, rule) = tokio::join!(
            self.register_task_definition(run, &ref_td, &container, image_uri),
            self.verify_group(run, &group),
            self.third_round_rule(run, &r.https, &host, &rules, &routing, &group),
        );
        let td = td?;
        let (tg, tg_created) = verified?;
        let rule = rule?;

        // Round 4: the service (the rule first, on the slow path), the copied attributes.
        let (service, attrs) = tokio::join!(
            async {
                let rule_arn = match rule {
                    RuleState::Done(arn) => arn,
                    RuleState::AfterGroup => {
                        self.create_rule(run, &r.https, &host, &tg, &rules).await?
                    }
                };
                let svc = self.ensure_service(run, &r, &td, &tg, options).await?;
                Ok::<_, Error>((rule_arn, svc))
            },
            async {
                if !tg_created || attributes.is_empty() {
                    return Ok(());
                }
                c.elb
                    .modify_target_group_attributes(&tg.arn, &attributes)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, &tg.arn, e))
            }
        );
        let (rule_arn, service) = service?;
        attrs?;

        if let Some(timeout) = options.wait_stable {
            match self
                .wait_stable(run, &p.target_cluster, &run.names.resource, timeout)
                .await
            {
                Ok(()) => {}
                Err(Error::Timeout {
                    step,
                    resource,
                    waited,
                    ..
                }) => {
                    return Err(self
                        .keep_unpublished(run, &host, step, resource, waited)
                        .await);
                }
                Err(e) => return Err(e),
            }
        }

        // Round 5: publish, now that the service exists; the ready state releases the lease.
        let manifest = [
            (attr::TARGET_GROUP, tg.arn.clone()),
            (attr::RULE, rule_arn),
            (attr::SERVICE, service),
        ];
        self.publish(
            run,
            &host,
            &r.alb,
            dns_plan,
            r.document,
            r.old_state.is_some(),
            &manifest,
        )
        .await
    }

    /// Round 2 for the target group: reads its owner when it exists, creates it when it is
    /// known to be absent.
    async fn second_round_group(
        &self,
        run: &Run<'_>,
        groups: &GroupsFound,
        reference_arn: &str,
    ) -> Result<GroupState> {
        let elb = &self.cloud.elb;
        let name = &run.names.target_group;
        if let Some(tg) = &groups.environment {
            self.check_group_owner(run, tg).await?;
            return Ok(GroupState::Existing(tg.clone()));
        }
        if groups.complete {
            let reference = groups.reference.clone().ok_or_else(|| Error::Conflict {
                step: Step::ReadReference,
                resource: reference_arn.to_owned(),
                message: "the reference target group does not exist".into(),
            })?;
            return self.create_group(run, &reference).await;
        }
        // More target groups than one page: look both up by name and ARN.
        let (existing, reference) = tokio::try_join!(
            async {
                elb.describe_target_group_by_name(name)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, name, e))
            },
            async {
                elb.describe_target_group(reference_arn)
                    .await
                    .map_err(|e| Error::cloud(Step::ReadReference, reference_arn, e))
            },
        )?;
        if let Some(tg) = existing {
            self.check_group_owner(run, &tg).await?;
            return Ok(GroupState::Existing(tg));
        }
        let reference = reference.ok_or_else(|| Error::Conflict {
            step: Step::ReadReference,
            resource: reference_arn.to_owned(),
            message: "the reference target group does not exist".into(),
        })?;
        Ok(GroupState::Later(reference))
    }

    async fn group_tags(&self, arn: &str) -> Result<Vec<Tag>> {
        let mut tags = self
            .cloud
            .elb
            .describe_tags(&[arn.to_owned()])
            .await
            .map_err(|e| Error::cloud(Step::TargetGroup, arn, e))?;
        Ok(tags.remove(arn).unwrap_or_default())
    }

    async fn check_group_owner(&self, run: &Run<'_>, tg: &TargetGroup) -> Result<()> {
        let tags = self.group_tags(&tg.arn).await?;
        decide::target_group(tg, &tags, &run.owner)
    }

    /// CreateTargetGroup with this run's owner tags. AWS answers an existing group with the
    /// same settings instead of creating one, so the answer is verified by its tags.
    async fn create_group(&self, run: &Run<'_>, reference: &TargetGroup) -> Result<GroupState> {
        let name = &run.names.target_group;
        let created = self
            .cloud
            .elb
            .create_target_group(CreateTargetGroup {
                name: name.clone(),
                spec: reference.spec.clone(),
                tags: run.tags(),
            })
            .await;
        match created {
            Ok(tg) => {
                run.journal(Undo::TargetGroupUnverified(tg.arn.clone()));
                Ok(GroupState::Answered(tg))
            }
            // Created meanwhile with other settings (moto answers this even for equal ones).
            Err(e) if e.is(&[codes::DUPLICATE_TARGET_GROUP_NAME]) => {
                let tg = self
                    .cloud
                    .elb
                    .describe_target_group_by_name(name)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, name, e))?
                    .ok_or_else(|| Error::cloud(Step::TargetGroup, name, e))?;
                self.check_group_owner(run, &tg).await?;
                Ok(GroupState::Existing(tg))
            }
            Err(e) if e.is(&[codes::TOO_MANY_TARGET_GROUPS]) => Err(Error::AlbFull {
                alb: run.profile.master_alb_arn.arn.clone(),
                code: e.code,
                message: e.message,
            }),
            Err(e) => Err(Error::cloud(Step::TargetGroup, name, e)),
        }
    }

    /// Round 3 for the target group: whether this run created the group CreateTargetGroup
    /// answered (its `eden:run` tag), or creates it on the slow path. Returns the group and
    /// whether this run created it.
    async fn verify_group(&self, run: &Run<'_>, group: &GroupState) -> Result<(TargetGroup, bool)> {
        let tg = match group {
            GroupState::Existing(tg) => {
                run.record(ResourceKind::TargetGroup, &tg.arn, Action::Reused, None);
                return Ok((tg.clone(), false));
            }
            GroupState::Answered(tg) => tg.clone(),
            GroupState::Later(reference) => match self.create_group(run, reference).await? {
                GroupState::Answered(tg) => tg,
                GroupState::Existing(tg) | GroupState::Later(tg) => {
                    run.record(ResourceKind::TargetGroup, &tg.arn, Action::Reused, None);
                    return Ok((tg, false));
                }
            },
        };
        let tags = self.group_tags(&tg.arn).await?;
        let verdict = Verdict::of_tags(&tags, &run.owner);
        if verdict.created_by(&run.run) {
            run.rejournal_target_group(&tg.arn, Some(Undo::TargetGroup(tg.arn.clone())));
            run.record(ResourceKind::TargetGroup, &tg.arn, Action::Created, None);
            return Ok((tg, true));
        }
        // It existed: not this run's to remove.
        run.rejournal_target_group(&tg.arn, None);
        decide::target_group(&tg, &tags, &run.owner)?;
        run.record(
            ResourceKind::TargetGroup,
            &tg.arn,
            Action::Reused,
            Some("created by an earlier run".into()),
        );
        Ok((tg, false))
    }

    /// Round 3 for the rule: creates it when nothing routes the host (and the group is
    /// known), or reads the owner of what routes it.
    async fn third_round_rule(
        &self,
        run: &Run<'_>,
        https: &Listener,
        host: &str,
        rules: &[Rule],
        routing: &[String],
        group: &GroupState,
    ) -> Result<RuleState> {
        if routing.is_empty() {
            return match group.group() {
                Some(tg) => Ok(RuleState::Done(
                    self.create_rule(run, https, host, tg, rules).await?,
                )),
                None => Ok(RuleState::AfterGroup),
            };
        }
        let tags = self.rule_tags(routing).await?;
        let tg_arn = match group {
            GroupState::Existing(tg) | GroupState::Answered(tg) => Some(tg.arn.as_str()),
            GroupState::Later(_) => None,
        };
        match decide::rule(rules, host, tg_arn, &tags, &run.owner)? {
            RulePlan::Reuse(rule) => {
                run.record(
                    ResourceKind::ListenerRule,
                    &rule.arn,
                    Action::Reused,
                    rule.priority.map(|p| format!("priority {p}")),
                );
                Ok(RuleState::Done(rule.arn))
            }
            // Ours routes no host here, yet the host is routed: decide::rule refused that.
            RulePlan::Create { .. } => Ok(RuleState::AfterGroup),
        }
    }

    async fn rule_tags(&self, arns: &[String]) -> Result<BTreeMap<String, Vec<Tag>>> {
        let mut out = BTreeMap::new();
        for chunk in arns.chunks(20) {
            let tags = self
                .cloud
                .elb
                .describe_tags(chunk)
                .await
                .map_err(|e| Error::cloud(Step::ListenerRule, chunk.join(", "), e))?;
            out.extend(tags);
        }
        Ok(out)
    }

    /// Creates the host rule at the lowest free priority, retrying on `PriorityInUse`.
    async fn create_rule(
        &self,
        run: &Run<'_>,
        https: &Listener,
        host: &str,
        tg: &TargetGroup,
        rules: &[Rule],
    ) -> Result<String> {
        let mut used: Vec<Rule> = rules.to_vec();
        let alb = &run.profile.master_alb_arn.arn;
        for attempt in 0..PRIORITY_ATTEMPTS {
            // The lowest free priority first (reusing freed ones); after a conflict, a random
            // one of the lowest few, so concurrent creates stop colliding.
            let free = decide::free_priorities(&used, 8);
            let Some(&priority) = (if attempt == 0 {
                free.first()
            } else {
                free.get(fastrand::usize(0..free.len().max(1)))
            }) else {
                return Err(Error::AlbFull {
                    alb: alb.clone(),
                    code: codes::TOO_MANY_RULES.into(),
                    message: "no free rule priority".into(),
                });
            };
            let created = self
                .cloud
                .elb
                .create_rule(CreateRule {
                    listener_arn: https.arn.clone(),
                    priority,
                    host: host.to_owned(),
                    target_group_arn: tg.arn.clone(),
                    tags: run.tags(),
                })
                .await;
            match created {
                Ok(rule) => {
                    run.journal(Undo::Rule(rule.arn.clone()));
                    run.record(
                        ResourceKind::ListenerRule,
                        &rule.arn,
                        Action::Created,
                        Some(format!("priority {priority}")),
                    );
                    return Ok(rule.arn);
                }
                Err(e) if e.is(&[codes::PRIORITY_IN_USE]) => {
                    used.push(Rule {
                        priority: Some(priority),
                        ..Rule::default()
                    });
                    if attempt % 4 == 3 {
                        // Refresh: others may also have freed priorities.
                        used = self.all_rules(&https.arn).await?;
                    }
                    jitter(attempt).await;
                }
                Err(e) if e.is(&[codes::TOO_MANY_RULES, codes::TOO_MANY_TARGET_GROUPS]) => {
                    return Err(Error::AlbFull {
                        alb: alb.clone(),
                        code: e.code,
                        message: e.message,
                    });
                }
                Err(e) => return Err(Error::cloud(Step::ListenerRule, host, e)),
            }
        }
        Err(Error::Contention {
            step: Step::ListenerRule,
            resource: host.to_owned(),
            attempts: PRIORITY_ATTEMPTS,
        })
    }

    async fn register_task_definition(
        &self,
        run: &Run<'_>,
        reference: &TaskDefinition,
        container: &str,
        image_uri: &str,
    ) -> Result<TaskDefinition> {
        let family = &run.names.resource;
        let td = self
            .cloud
            .ecs
            .register_task_definition(RegisterTaskDefinition {
                base: reference.arn.clone(),
                family: family.clone(),
                images: vec![crate::cloud::ContainerImage {
                    name: container.to_owned(),
                    image: image_uri.to_owned(),
                }],
                tags: run.tags(),
            })
            .await
            .map_err(|e| Error::cloud(Step::TaskDefinition, family, e))?;
        run.journal(Undo::TaskDefinition(td.arn.clone()));
        run.record(
            ResourceKind::TaskDefinition,
            &td.arn,
            Action::Created,
            Some(format!("revision {} from {}", td.revision, reference.arn)),
        );
        Ok(td)
    }

    /// Creates the service, or points the existing one at the new revision; returns its ARN.
    async fn ensure_service(
        &self,
        run: &Run<'_>,
        r: &CreateReads,
        td: &TaskDefinition,
        tg: &TargetGroup,
        options: &CreateOptions,
    ) -> Result<String> {
        let p = run.profile;
        let name = &run.names.resource;
        let ecs = &self.cloud.ecs;
        let mut plan = r.service_plan.clone();
        if plan == ServicePlan::CreateAfterDraining {
            let timeout = options.draining_timeout.unwrap_or(Duration::from_secs(600));
            let now = self
                .wait_inactive(run, &p.target_cluster, name, timeout)
                .await?;
            plan = decide::service(now.as_ref(), &run.owner)?;
        }
        let left_out =
            (!r.left_out.is_empty()).then(|| format!("left out: {}", r.left_out.join("; ")));
        if let ServicePlan::Update { previous } = plan {
            let svc = ecs
                .update_service(&p.target_cluster, name, &td.arn, true)
                .await
                .map_err(|e| Error::cloud(Step::Service, name, e))?;
            run.journal(Undo::ServiceUpdated {
                cluster: p.target_cluster.clone(),
                name: name.clone(),
                previous,
            });
            run.record(
                ResourceKind::Service,
                &svc.arn,
                Action::Updated,
                Some(format!("deploying {}", td.arn)),
            );
            return Ok(svc.arn);
        }
        let mut spec = r.spec.clone();
        spec.task_definition = td.arn.clone();
        spec.load_balancers = vec![ServiceLoadBalancer {
            target_group_arn: Some(tg.arn.clone()),
            container_name: r.target.container_name.clone(),
            container_port: r.target.container_port,
        }];
        let svc = ecs
            .create_service(CreateService {
                cluster: p.target_cluster.clone(),
                name: name.clone(),
                spec,
                tags: run.tags(),
            })
            .await
            .map_err(|e| Error::cloud(Step::Service, name, e))?;
        run.journal(Undo::ServiceCreated {
            cluster: p.target_cluster.clone(),
            name: name.clone(),
        });
        run.record(ResourceKind::Service, &svc.arn, Action::Created, left_out);
        Ok(svc.arn)
    }

    /// Polls until the service is INACTIVE or gone; returns what is left of it.
    async fn wait_inactive(
        &self,
        run: &Run<'_>,
        cluster: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<Service>> {
        let started = tokio::time::Instant::now();
        loop {
            let svc = self
                .cloud
                .ecs
                .describe_service(cluster, name)
                .await
                .map_err(|e| Error::cloud(Step::Wait, name, e))?;
            match svc {
                Some(s) if s.status == "DRAINING" => {}
                other => return Ok(other),
            }
            if started.elapsed() >= timeout {
                return Err(Error::Timeout {
                    step: Step::Wait,
                    resource: name.to_owned(),
                    waited: started.elapsed(),
                    outcome: None,
                });
            }
            run.waiting(format!("service {name} to finish draining"), "DRAINING");
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// Polls until the service is stable; a `FAILED` rollout fails with the service's events.
    async fn wait_stable(
        &self,
        run: &Run<'_>,
        cluster: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<()> {
        let started = tokio::time::Instant::now();
        loop {
            let svc = self
                .cloud
                .ecs
                .describe_service(cluster, name)
                .await
                .map_err(|e| Error::cloud(Step::Wait, name, e))?;
            if let Some(s) = &svc {
                if s.rollout_failed() {
                    let reason = s
                        .deployments
                        .iter()
                        .find(|d| d.status == "PRIMARY")
                        .and_then(|d| d.rollout_state_reason.clone())
                        .unwrap_or_else(|| "rollout FAILED".into());
                    return Err(Error::RolloutFailed {
                        service: s.arn.clone(),
                        reason,
                        events: s.events.iter().take(5).map(|e| e.message.clone()).collect(),
                    });
                }
                if s.is_stable() {
                    return Ok(());
                }
            }
            if started.elapsed() >= timeout {
                return Err(Error::Timeout {
                    step: Step::Wait,
                    resource: name.to_owned(),
                    waited: started.elapsed(),
                    outcome: None,
                });
            }
            let status = svc.as_ref().map_or_else(
                || "not found".to_owned(),
                |s| {
                    let d = s.deployments.first();
                    format!(
                        "{} running of {} ({})",
                        d.map_or(s.running_count, |d| d.running_count),
                        d.map_or(s.spec.desired_count, |d| d.desired_count),
                        d.and_then(|d| d.rollout_state.clone())
                            .unwrap_or_else(|| s.status.clone())
                    )
                },
            );
            run.waiting(format!("service {name} to become stable"), status);
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// The service did not become stable in time: keep what was made, unpublished, release
    /// the lease (the state stays `creating`), and say what was done.
    async fn keep_unpublished(
        &self,
        run: &Run<'_>,
        host: &str,
        step: Step,
        resource: String,
        waited: Duration,
    ) -> Error {
        run.take_journal();
        let release = ItemUpdate::default()
            .remove(lease::LEASE_HOLDER)
            .remove(lease::LEASE_UNTIL)
            .remove(lease::LEASE_OPERATION);
        if let Err(e) = self
            .cloud
            .state
            .update_item_when(
                &self.table,
                &run.profile.name,
                run.names.env.as_str(),
                &release,
                &run.lease.held(),
            )
            .await
        {
            tracing::warn!(error = %e, "could not release the lease; it expires on its own");
        }
        let note =
            Some("not published: the service is not stable yet; create again to finish".to_owned());
        run.record(
            ResourceKind::DnsRecord,
            format!("{host} A"),
            Action::Deferred,
            note.clone(),
        );
        run.record(
            ResourceKind::EndpointsEntry,
            run.entry_id(),
            Action::Deferred,
            note.clone(),
        );
        run.record(
            ResourceKind::StateItem,
            run.state_id(&self.table),
            Action::Deferred,
            Some("left `creating`".into()),
        );
        Error::Timeout {
            step,
            resource,
            waited,
            outcome: Some(Box::new(run.outcome(Some(host.to_owned()), false))),
        }
    }

    /// Round 5: the DNS record, the endpoints entry and the `ready` state (which releases the
    /// lease), at once. When publishing failed but the state went through, the lease is taken
    /// back to roll back, unless another run took the environment meanwhile.
    #[allow(clippy::too_many_arguments)]
    async fn publish(
        &self,
        run: &Run<'_>,
        host: &str,
        alb: &LoadBalancer,
        dns: DnsPlan,
        document: Option<StoredDocument>,
        existed: bool,
        manifest: &[(&str, String)],
    ) -> Result<()> {
        let (dns, endpoints, ready) = tokio::join!(
            self.publish_dns(run, host, alb, dns),
            self.publish_endpoint(run, host, document),
            self.write_ready(run, host, existed, manifest),
        );
        match (ready, dns.and(endpoints)) {
            (Ok(()), Ok(())) => {
                run.take_journal();
                Ok(())
            }
            (Ok(()), Err(e)) => {
                // Released: take the lease back to roll back, unless someone else has it.
                let back = ItemUpdate::default()
                    .set(lease::LEASE_HOLDER, AttrValue::S(run.run.to_string()))
                    .set(
                        lease::LEASE_UNTIL,
                        AttrValue::N((lease::now_ms() + self.lease.ttl_ms()).to_string()),
                    )
                    .set(lease::LEASE_OPERATION, AttrValue::S("create".into()));
                let ours = ItemCondition::All(vec![
                    ItemCondition::equals(lease::RUN, run.run.as_str()),
                    ItemCondition::Missing(lease::LEASE_UNTIL.into()),
                ]);
                match self
                    .cloud
                    .state
                    .update_item_when(
                        &self.table,
                        &run.profile.name,
                        run.names.env.as_str(),
                        &back,
                        &ours,
                    )
                    .await
                {
                    Ok(_) => Err(e),
                    Err(_) => {
                        run.take_journal();
                        Err(e)
                    }
                }
            }
            (Err(e), _) => Err(e),
        }
    }

    async fn find_record(&self, p: &Profile, host: &str, kind: &str) -> Result<Option<DnsRecord>> {
        self.cloud
            .dns
            .find_record(&p.dynamic_zone_id, host, kind)
            .await
            .map_err(|e| Error::cloud(Step::Dns, format!("{host} {kind}"), e))
    }

    async fn publish_dns(
        &self,
        run: &Run<'_>,
        host: &str,
        alb: &LoadBalancer,
        mut plan: DnsPlan,
    ) -> Result<()> {
        let p = run.profile;
        let zone = &p.dynamic_zone_id;
        let wanted = decide::wanted_record(host, alb);
        let id = format!("{host} A");
        for attempt in 0..DNS_ATTEMPTS {
            let (changes, undo, action) = match &plan {
                DnsPlan::Reuse => {
                    run.record(ResourceKind::DnsRecord, id, Action::Reused, None);
                    return Ok(());
                }
                DnsPlan::Create { with_txt } => {
                    let mut records = vec![wanted.clone()];
                    if *with_txt {
                        records.push(run.owner.txt_record(host));
                    }
                    let changes = records
                        .iter()
                        .map(|r| RecordChange::new(ChangeAction::Create, r.clone()))
                        .collect::<Vec<_>>();
                    (changes, Undo::DnsCreated(records), Action::Created)
                }
                DnsPlan::Update { old } => (
                    vec![RecordChange::new(ChangeAction::Upsert, wanted.clone())],
                    Undo::DnsUpdated(old.clone()),
                    Action::Updated,
                ),
            };
            match self.cloud.dns.change_records(zone, &changes).await {
                Ok(()) => {
                    run.journal(undo);
                    run.record(
                        ResourceKind::DnsRecord,
                        id,
                        action,
                        Some(format!("alias to {}, owner in TXT {host}", alb.dns_name)),
                    );
                    return Ok(());
                }
                // Written meanwhile by someone else: read again and decide again.
                Err(e) if e.is(&[codes::INVALID_CHANGE_BATCH]) && attempt + 1 < DNS_ATTEMPTS => {
                    let (a, txt) = tokio::try_join!(
                        self.find_record(p, host, "A"),
                        self.find_record(p, host, "TXT")
                    )?;
                    plan = decide::dns(a.as_ref(), txt.as_ref(), &wanted, &run.owner)?;
                }
                Err(e) => return Err(Error::cloud(Step::Dns, host, e)),
            }
        }
        Err(Error::Contention {
            step: Step::Dns,
            resource: host.to_owned(),
            attempts: DNS_ATTEMPTS,
        })
    }

    async fn publish_endpoint(
        &self,
        run: &Run<'_>,
        host: &str,
        mut current: Option<StoredDocument>,
    ) -> Result<()> {
        let p = run.profile;
        let docs = &self.cloud.documents;
        for attempt in 0..CAS_ATTEMPTS {
            let doc = self.parse_document(run, current.as_ref())?;
            let (next, edit, previous) =
                decide::endpoint_upsert(&doc, p, &run.names.endpoint_entry, host, &run.owner)?;
            if !edit.changed() {
                run.record(
                    ResourceKind::EndpointsEntry,
                    run.entry_id(),
                    Action::Reused,
                    Some(run.doc_id()),
                );
                return Ok(());
            }
            let mode = match &current {
                Some(d) => PutMode::Update(d.etag.clone()),
                None => PutMode::Create,
            };
            match docs
                .put(
                    &p.endpoint_s3_bucket_name,
                    &p.endpoint_s3_key,
                    next.to_bytes(),
                    mode,
                )
                .await
            {
                Ok(_) => {
                    run.journal(Undo::EndpointKey { previous });
                    let action = match edit {
                        Edit::AddedEntry | Edit::AddedKey => Action::Created,
                        _ => Action::Updated,
                    };
                    run.record(
                        ResourceKind::EndpointsEntry,
                        run.entry_id(),
                        action,
                        Some(run.doc_id()),
                    );
                    return Ok(());
                }
                Err(e) if is_precondition(&e) => {
                    jitter(attempt).await;
                    current = self.read_document(run).await?;
                }
                Err(e) => return Err(Error::cloud(Step::Endpoints, run.doc_id(), e)),
            }
        }
        Err(Error::Contention {
            step: Step::Endpoints,
            resource: run.doc_id(),
            attempts: CAS_ATTEMPTS,
        })
    }

    async fn write_ready(
        &self,
        run: &Run<'_>,
        host: &str,
        existed: bool,
        manifest: &[(&str, String)],
    ) -> Result<()> {
        let mut update = ItemUpdate::default()
            .set(lease::STATUS, AttrValue::S("ready".into()))
            .set(attr::ENDPOINT, AttrValue::S(host.to_owned()))
            .set(schema::LAST_UPDATED, AttrValue::N(run.now.to_string()))
            .remove(lease::LEASE_HOLDER)
            .remove(lease::LEASE_UNTIL)
            .remove(lease::LEASE_OPERATION);
        for (k, v) in manifest {
            update = update.set(*k, AttrValue::S(v.clone()));
        }
        let id = run.state_id(&self.table);
        match self
            .cloud
            .state
            .update_item_when(
                &self.table,
                &run.profile.name,
                run.names.env.as_str(),
                &update,
                &run.lease.held(),
            )
            .await
        {
            Ok(_) => {
                let action = if existed {
                    Action::Updated
                } else {
                    Action::Created
                };
                run.record(ResourceKind::StateItem, id, action, Some("ready".into()));
                Ok(())
            }
            Err(e) if e.is(&[codes::CONDITIONAL_CHECK_FAILED]) => {
                Err(run.lease.lost("it was gone when the environment was ready"))
            }
            Err(e) => Err(Error::cloud(Step::State, id, e)),
        }
    }

    async fn check_image(&self, run: &Run<'_>, image: &ImageRef, uri: &str) -> Result<()> {
        match image {
            ImageRef::Other(_) => {
                run.record(
                    ResourceKind::Image,
                    uri,
                    Action::Unchecked,
                    Some("not a private ECR image: accepted without a check".into()),
                );
                Ok(())
            }
            ImageRef::Ecr(ecr) => match self.cloud.images.describe_image(ecr).await {
                Ok(found) => {
                    run.record(
                        ResourceKind::Image,
                        uri,
                        Action::Checked,
                        Some(found.digest),
                    );
                    Ok(())
                }
                Err(e) if e.is(&[codes::IMAGE_NOT_FOUND, codes::REPOSITORY_NOT_FOUND]) => {
                    Err(Error::ImageNotFound {
                        image: uri.to_owned(),
                        code: e.code,
                        message: e.message,
                    })
                }
                Err(e) => Err(Error::cloud(Step::CheckImage, uri, e)),
            },
        }
    }

    async fn https_listener(&self, alb_arn: &str) -> Result<Listener> {
        let listeners = self
            .cloud
            .elb
            .describe_listeners(alb_arn)
            .await
            .map_err(|e| Error::cloud(Step::ReadLoadBalancer, alb_arn, e))?;
        listeners
            .into_iter()
            .find(|l| l.protocol == "HTTPS" && l.port == 443)
            .ok_or_else(|| Error::Conflict {
                step: Step::ReadLoadBalancer,
                resource: alb_arn.to_owned(),
                message: "the load balancer has no HTTPS:443 listener".into(),
            })
    }

    async fn zone_name(&self, p: &Profile) -> Result<String> {
        self.cloud
            .dns
            .hosted_zone_name(&p.dynamic_zone_id)
            .await
            .map_err(|e| Error::cloud(Step::ReadZone, &p.dynamic_zone_id, e))
    }

    async fn all_rules(&self, listener: &str) -> Result<Vec<Rule>> {
        let mut rules = Vec::new();
        let mut marker = None;
        loop {
            let page: Page<Rule> = self
                .cloud
                .elb
                .describe_rules(listener, marker)
                .await
                .map_err(|e| Error::cloud(Step::ListenerRule, listener, e))?;
            rules.extend(page.items);
            match page.next {
                Some(next) => marker = Some(next),
                None => return Ok(rules),
            }
        }
    }

    /// Undoes the journal in reverse; returns what could not be undone.
    async fn rollback(&self, run: &Run<'_>, journal: Vec<Undo>) -> Vec<String> {
        let c = &self.cloud;
        let p = run.profile;
        let mut leftover = Vec::new();
        for undo in journal.into_iter().rev() {
            let (what, result): (String, std::result::Result<(), CloudError>) = match &undo {
                Undo::ServiceCreated { cluster, name } => (
                    format!("service {name}"),
                    c.ecs.delete_service(cluster, name, true).await.map(|_| ()),
                ),
                Undo::ServiceUpdated {
                    cluster,
                    name,
                    previous,
                } => (
                    format!("service {name} (back to {previous})"),
                    c.ecs
                        .update_service(cluster, name, previous, true)
                        .await
                        .map(|_| ()),
                ),
                Undo::Rule(arn) => (format!("rule {arn}"), c.elb.delete_rule(arn).await),
                Undo::TargetGroup(arn) | Undo::TargetGroupUnverified(arn) => {
                    // Only a group this run created: its tags say so.
                    let r = match c.elb.describe_tags(std::slice::from_ref(arn)).await {
                        Ok(tags) => {
                            let tags = tags.get(arn).cloned().unwrap_or_default();
                            if Verdict::of_tags(&tags, &run.owner).created_by(&run.run) {
                                c.elb.delete_target_group(arn).await
                            } else {
                                Ok(())
                            }
                        }
                        Err(e) => Err(e),
                    };
                    (format!("target group {arn}"), r)
                }
                Undo::TaskDefinition(arn) => {
                    let r = match c.ecs.deregister_task_definition(arn).await {
                        Ok(()) => c
                            .ecs
                            .delete_task_definitions(std::slice::from_ref(arn))
                            .await
                            .and_then(|failures| match failures.first() {
                                Some((_, why)) => Err(CloudError::new("DeleteFailed", why.clone())),
                                None => Ok(()),
                            }),
                        Err(e) => Err(e),
                    };
                    (format!("task definition {arn}"), r)
                }
                Undo::DnsCreated(records) => (
                    format!(
                        "DNS record {}",
                        records.first().map_or("", |r| r.name.as_str())
                    ),
                    c.dns
                        .change_records(
                            &p.dynamic_zone_id,
                            &records
                                .iter()
                                .map(|r| RecordChange::new(ChangeAction::Delete, r.clone()))
                                .collect::<Vec<_>>(),
                        )
                        .await,
                ),
                Undo::DnsUpdated(old) => (
                    format!("DNS record {} (restore)", old.name),
                    c.dns.upsert_record(&p.dynamic_zone_id, old).await,
                ),
                Undo::EndpointKey { previous } => (
                    format!("endpoints entry {}", run.entry_id()),
                    self.restore_endpoint(run, previous.as_deref())
                        .await
                        .map_err(|e| CloudError::new("Endpoints", e.to_string())),
                ),
                Undo::State { old } => {
                    let held = run.lease.held();
                    let r = match old {
                        None => c
                            .state
                            .delete_item_when(&self.table, &p.name, run.names.env.as_str(), &held)
                            .await
                            .map(|_| ()),
                        Some(old) => c
                            .state
                            .put_item_when(&self.table, without_lease(old.clone()), &held)
                            .await
                            .map(|_| ()),
                    };
                    (format!("state item {}", run.state_id(&self.table)), r)
                }
            };
            match result {
                Ok(()) => tracing::info!(%what, "rolled back"),
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::error!(%what, error = %e, "rollback failed");
                    leftover.push(format!("{what}: {e}"));
                }
            }
        }
        leftover
    }

    /// Puts the endpoints key back as it was before this run (removing it when it was new).
    async fn restore_endpoint(&self, run: &Run<'_>, previous: Option<&str>) -> Result<()> {
        let p = run.profile;
        let entry = &run.names.endpoint_entry;
        for attempt in 0..CAS_ATTEMPTS {
            let Some(current) = self.read_document(run).await? else {
                return Ok(());
            };
            let mut doc = self.parse_document(run, Some(&current))?;
            let edit = match previous {
                Some(v) => doc.upsert(&p.endpoint_env_type, entry, &p.endpoint_update_key, v),
                None => doc
                    .remove_owned(
                        &p.endpoint_env_type,
                        entry,
                        &p.endpoint_update_key,
                        &run.owner,
                    )
                    .unwrap_or(Edit::Absent),
            };
            if !edit.changed() {
                return Ok(());
            }
            match self
                .cloud
                .documents
                .put(
                    &p.endpoint_s3_bucket_name,
                    &p.endpoint_s3_key,
                    doc.to_bytes(),
                    PutMode::Update(current.etag.clone()),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_precondition(&e) => jitter(attempt).await,
                Err(e) => return Err(Error::cloud(Step::Endpoints, run.doc_id(), e)),
            }
        }
        Err(Error::Contention {
            step: Step::Endpoints,
            resource: run.doc_id(),
            attempts: CAS_ATTEMPTS,
        })
    }
}

// ---------------------------------------------------------------- plan

impl Environment {
    /// The dry run of create: the same reads and the same decisions, no writes.
    async fn plan_create(
        &self,
        run: &Run<'_>,
        image: &ImageRef,
        image_uri: &str,
        options: &CreateOptions,
    ) -> Result<Outcome> {
        let c = &self.cloud;
        let p = run.profile;
        let (r, state) = tokio::try_join!(
            self.create_reads(run, image, image_uri, options),
            self.read_state(run)
        )?;
        if state.as_ref().is_some_and(|i| !i.contains_key(lease::RUN)) {
            return Err(self.refused(run, Refused::NotEden));
        }
        let host = r.host.clone();
        let ref_tg_arn = r.target.target_group_arn.clone().unwrap_or_default();
        let container = r.target.container_name.clone().unwrap_or_default();
        let (ref_td, rules, a, txt, group) = tokio::try_join!(
            async {
                c.ecs
                    .describe_task_definition(&r.reference.spec.task_definition)
                    .await
                    .map_err(|e| {
                        Error::cloud(Step::ReadReference, &r.reference.spec.task_definition, e)
                    })
            },
            self.all_rules(&r.https.arn),
            self.find_record(p, &host, "A"),
            self.find_record(p, &host, "TXT"),
            self.plan_group(run, &r.groups, &ref_tg_arn),
        )?;
        let wanted = decide::wanted_record(&host, &r.alb);
        let dns_plan = decide::dns(a.as_ref(), txt.as_ref(), &wanted, &run.owner)?;
        if !ref_td.containers.iter().any(|ct| ct.name == container) {
            return Err(Error::Conflict {
                step: Step::ReadReference,
                resource: ref_td.arn.clone(),
                message: format!(
                    "no container named {container:?} (the reference load balancer's container)"
                ),
            });
        }
        let routing: Vec<String> = decide::host_rules(&rules, &host)
            .iter()
            .map(|r| r.arn.clone())
            .collect();
        let tags = if routing.is_empty() {
            BTreeMap::new()
        } else {
            self.rule_tags(&routing).await?
        };
        let rule_plan = decide::rule(
            &rules,
            &host,
            group.as_ref().map(|tg| tg.arn.as_str()),
            &tags,
            &run.owner,
        )?;

        run.record(
            ResourceKind::TaskDefinition,
            &run.names.resource,
            Action::Created,
            Some(format!(
                "new revision from {}",
                r.reference.spec.task_definition
            )),
        );
        match &group {
            Some(tg) => run.record(ResourceKind::TargetGroup, &tg.arn, Action::Reused, None),
            None => run.record(
                ResourceKind::TargetGroup,
                &run.names.target_group,
                Action::Created,
                None,
            ),
        }
        match rule_plan {
            RulePlan::Reuse(rule) => run.record(
                ResourceKind::ListenerRule,
                &rule.arn,
                Action::Reused,
                rule.priority.map(|p| format!("priority {p}")),
            ),
            RulePlan::Create { priority } => run.record(
                ResourceKind::ListenerRule,
                &host,
                Action::Created,
                priority.map(|p| format!("priority {p}")),
            ),
        }
        let left_out =
            (!r.left_out.is_empty()).then(|| format!("left out: {}", r.left_out.join("; ")));
        match &r.service_plan {
            ServicePlan::Update { .. } => run.record(
                ResourceKind::Service,
                &run.names.resource,
                Action::Updated,
                None,
            ),
            ServicePlan::CreateAfterDraining => run.record(
                ResourceKind::Service,
                &run.names.resource,
                Action::Created,
                Some("after the DRAINING service of the same name is INACTIVE".into()),
            ),
            ServicePlan::Create => run.record(
                ResourceKind::Service,
                &run.names.resource,
                Action::Created,
                left_out,
            ),
        }
        run.record(
            ResourceKind::DnsRecord,
            format!("{host} A"),
            match dns_plan {
                DnsPlan::Create { .. } => Action::Created,
                DnsPlan::Update { .. } => Action::Updated,
                DnsPlan::Reuse => Action::Reused,
            },
            None,
        );
        let doc = self.parse_document(run, r.document.as_ref())?;
        let (_, edit, _) =
            decide::endpoint_upsert(&doc, p, &run.names.endpoint_entry, &host, &run.owner)?;
        run.record(
            ResourceKind::EndpointsEntry,
            run.entry_id(),
            match edit {
                Edit::AddedEntry | Edit::AddedKey => Action::Created,
                Edit::Updated => Action::Updated,
                _ => Action::Reused,
            },
            None,
        );
        run.record(
            ResourceKind::StateItem,
            run.state_id(&self.table),
            if state.is_some() {
                Action::Updated
            } else {
                Action::Created
            },
            None,
        );
        Ok(run.outcome(Some(host), true))
    }

    /// The environment's target group as the plan sees it: `Some` when it exists (and is
    /// ours), `None` when create would make it.
    async fn plan_group(
        &self,
        run: &Run<'_>,
        groups: &GroupsFound,
        reference_arn: &str,
    ) -> Result<Option<TargetGroup>> {
        let existing = match &groups.environment {
            Some(tg) => Some(tg.clone()),
            None if groups.complete => None,
            None => self
                .cloud
                .elb
                .describe_target_group_by_name(&run.names.target_group)
                .await
                .map_err(|e| Error::cloud(Step::TargetGroup, &run.names.target_group, e))?,
        };
        match existing {
            Some(tg) => {
                self.check_group_owner(run, &tg).await?;
                Ok(Some(tg))
            }
            None if groups.complete && groups.reference.is_none() => Err(Error::Conflict {
                step: Step::ReadReference,
                resource: reference_arn.to_owned(),
                message: "the reference target group does not exist".into(),
            }),
            None => Ok(None),
        }
    }

    async fn read_state(&self, run: &Run<'_>) -> Result<Option<Item>> {
        match self
            .cloud
            .state
            .get_item(&self.table, &run.profile.name, run.names.env.as_str())
            .await
        {
            Ok(item) => Ok(item),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(Error::cloud(Step::State, run.state_id(&self.table), e)),
        }
    }
}

// ---------------------------------------------------------------- delete

/// What delete reads in its first round.
struct DeleteFirst {
    host: String,
    service: Option<Service>,
    group: Option<TargetGroup>,
    listener: Listener,
    document: Option<StoredDocument>,
    active: Vec<String>,
    inactive: Vec<String>,
}

impl Environment {
    /// Deletes environment `name`: endpoints entry, DNS record (and its ownership record),
    /// service, listener rule, target group, every task definition revision of the family, and
    /// the state item last. Takes the environment's lease, and reads every owner first: when
    /// anything is not this environment's, nothing is deleted ([`Error::NotOwned`]). Each step
    /// tolerates "already gone", so a half-created environment is removed too.
    pub async fn delete(
        &self,
        profile: &Profile,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Outcome> {
        let names = self.validate(profile, name)?;
        let run = self.run(profile, names, "delete", now_epoch());
        if options.dry_run {
            return self.plan_delete(&run).await;
        }
        let update = self.lease_update(&run, "deleting");
        let (taken, first) = tokio::join!(run.lease.try_acquire(&update), self.delete_first(&run));
        let (old, first) = match taken {
            Ok(old) => {
                run.journal(Undo::State { old: old.clone() });
                (old, first)
            }
            Err(Refused::Held(_) | Refused::Retry) => match self.wait_lease(&run, &update).await {
                Ok(old) => (old, self.delete_first(&run).await),
                Err(e) => return Err(e),
            },
            Err(refused) => return Err(self.refused(&run, refused)),
        };
        let first = match first {
            Ok(first) => first,
            Err(e) => return Err(self.delete_failed(&run, e).await),
        };
        let host = first.host.clone();
        let result = tokio::select! {
            r = async {
                let reads = self.delete_inspect(&run, first, old).await?;
                self.delete_execute(&run, reads).await
            } => r,
            lost = run.lease.keep() => Err(lost),
        };
        match result {
            Ok(()) => {
                run.take_journal();
                tracing::info!(profile = %profile.name, env = %run.names.env, run = %run.run, "environment deleted");
                Ok(run.outcome(Some(host), false))
            }
            Err(e) => Err(self.delete_failed(&run, e).await),
        }
    }

    /// Before anything was deleted, the state item goes back to what it was; after, it stays
    /// `deleting` (listed, and delete can run again) and the lease is released.
    async fn delete_failed(&self, run: &Run<'_>, cause: Error) -> Error {
        if matches!(cause, Error::LeaseLost { .. }) {
            return cause;
        }
        if !run.destroyed.load(Ordering::SeqCst) {
            return self.undo(run, cause).await;
        }
        run.take_journal();
        let release = ItemUpdate::default()
            .remove(lease::LEASE_HOLDER)
            .remove(lease::LEASE_UNTIL)
            .remove(lease::LEASE_OPERATION);
        if let Err(e) = self
            .cloud
            .state
            .update_item_when(
                &self.table,
                &run.profile.name,
                run.names.env.as_str(),
                &release,
                &run.lease.held(),
            )
            .await
        {
            tracing::warn!(error = %e, "could not release the lease; it expires on its own");
        }
        cause
    }

    /// Round 1 of delete (beside the lease): everything found by name, with the checks it
    /// allows.
    async fn delete_first(&self, run: &Run<'_>) -> Result<DeleteFirst> {
        let c = &self.cloud;
        let p = run.profile;
        let names = &run.names;
        let reference = &p.reference_service_arn;
        let (found, zone, service, listener, group, document, active, inactive) = tokio::try_join!(
            async {
                // A reference that is gone must not block a delete.
                Ok::<_, Error>(
                    c.ecs
                        .describe_service(&reference.cluster, &reference.service)
                        .await
                        .unwrap_or_else(|e| {
                            tracing::warn!(error = %e, "could not read the reference service");
                            None
                        }),
                )
            },
            self.zone_name(p),
            async {
                c.ecs
                    .describe_service(&p.target_cluster, &names.resource)
                    .await
                    .map_err(|e| Error::cloud(Step::Service, &names.resource, e))
            },
            self.https_listener(&p.master_alb_arn.arn),
            async {
                c.elb
                    .describe_target_group_by_name(&names.target_group)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, &names.target_group, e))
            },
            async {
                match self.read_document(run).await {
                    Ok(d) => Ok(d),
                    // A missing bucket must not block the delete.
                    Err(Error::Cloud { source, .. }) if source.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                }
            },
            async {
                c.ecs
                    .list_task_definitions(&names.resource, TaskDefinitionStatus::Active)
                    .await
                    .map_err(|e| Error::cloud(Step::TaskDefinition, &names.resource, e))
            },
            async {
                c.ecs
                    .list_task_definitions(&names.resource, TaskDefinitionStatus::Inactive)
                    .await
                    .map_err(|e| Error::cloud(Step::TaskDefinition, &names.resource, e))
            },
        )?;
        if let Some(reference) = found.filter(|s| s.status == "ACTIVE") {
            decide::reference_resources(&reference, names)?;
        }
        let service = decide::service_to_delete(service.as_ref(), &run.owner)?;
        let host = names.host(&zone)?;
        let doc = self.parse_document(run, document.as_ref())?;
        decide::endpoint_remove(&doc, p, &names.endpoint_entry, &run.owner)?;
        Ok(DeleteFirst {
            host,
            service,
            group,
            listener,
            document,
            active,
            inactive,
        })
    }

    /// Rounds 2 (and 3 when the state item does not name the rule): every remaining owner.
    async fn delete_inspect(
        &self,
        run: &Run<'_>,
        first: DeleteFirst,
        old: Option<Item>,
    ) -> Result<DeleteReads> {
        let c = &self.cloud;
        let p = run.profile;
        let host = &first.host;
        let recorded_rule = old
            .as_ref()
            .and_then(|i| i.get(attr::RULE))
            .and_then(AttrValue::as_s)
            .map(str::to_owned);
        let mut known: Vec<String> = first.group.iter().map(|g| g.arn.clone()).collect();
        known.extend(recorded_rule);
        let revisions: Vec<String> = first
            .active
            .iter()
            .chain(&first.inactive)
            .cloned()
            .collect();
        let (a, txt, rules, mut tags, tds) = tokio::try_join!(
            self.find_record(p, host, "A"),
            self.find_record(p, host, "TXT"),
            self.all_rules(&first.listener.arn),
            async {
                if known.is_empty() {
                    return Ok(BTreeMap::new());
                }
                c.elb
                    .describe_tags(&known)
                    .await
                    .map_err(|e| Error::cloud(Step::ListenerRule, known.join(", "), e))
            },
            self.describe_revisions(&revisions),
        )?;
        let records = decide::dns_to_delete(host, a.as_ref(), txt.as_ref(), &run.owner)?;
        if let Some(tg) = &first.group {
            let group_tags = tags.get(&tg.arn).cloned().unwrap_or_default();
            decide::target_group(tg, &group_tags, &run.owner)?;
        }
        decide::revisions(&tds, &run.owner)?;
        let tg_arn = first.group.as_ref().map(|g| g.arn.as_str());
        let doomed = match decide::rules_to_delete(&rules, host, tg_arn, &tags, &run.owner)? {
            Ok(doomed) => doomed.into_iter().cloned().collect(),
            Err(unknown) => {
                // Rules the state item did not name: their owners first.
                tags.extend(self.rule_tags(&unknown).await?);
                match decide::rules_to_delete(&rules, host, tg_arn, &tags, &run.owner)? {
                    Ok(doomed) => doomed.into_iter().cloned().collect(),
                    Err(unknown) => {
                        return Err(Error::NotOwned {
                            kind: ResourceKind::ListenerRule,
                            resource: unknown.join(", "),
                            owner: crate::ownership::ForeignOwner::Unrecorded,
                        });
                    }
                }
            }
        };
        Ok(DeleteReads {
            host: first.host,
            service: first.service,
            group: first.group,
            rules: doomed,
            records,
            document: first.document,
            active: first.active,
            inactive: first.inactive,
            old_state: old,
        })
    }

    /// Every revision, described with its tags (a bounded number at a time).
    async fn describe_revisions(&self, arns: &[String]) -> Result<Vec<TaskDefinition>> {
        let mut out = Vec::with_capacity(arns.len());
        for chunk in arns.chunks(FAN_OUT) {
            let described = join_all(chunk.iter().map(|arn| async move {
                (arn, self.cloud.ecs.describe_task_definition(arn).await)
            }))
            .await;
            for (arn, r) in described {
                match r {
                    Ok(td) => out.push(td),
                    // Deleted meanwhile.
                    Err(e) if e.is_not_found() || e.message.contains("Unable to describe") => {}
                    Err(e) => return Err(Error::cloud(Step::TaskDefinition, arn, e)),
                }
            }
        }
        Ok(out)
    }

    /// The deletes, once every owner is known to be this environment.
    async fn delete_execute(&self, run: &Run<'_>, reads: DeleteReads) -> Result<()> {
        let c = &self.cloud;
        let p = run.profile;
        run.destroyed.store(true, Ordering::SeqCst);
        let (endpoints, dns, service, rules, deregistered) = tokio::join!(
            self.delete_endpoint(run, reads.document.clone()),
            self.delete_records(run, &reads.host, &reads.records),
            self.delete_service(run, reads.service.as_ref()),
            self.delete_rules(run, &reads.host, &reads.rules),
            self.deregister(run, &reads.active),
        );
        let mut first = None;
        for r in [endpoints, dns, service, deregistered] {
            if let Err(e) = r {
                tracing::warn!(error = %e, "a delete step failed");
                first.get_or_insert(e);
            }
        }
        // The group only after its rules (ELB answers ResourceInUse otherwise), the revisions
        // after they were deregistered.
        let (group, tds) = tokio::join!(
            async {
                match rules {
                    Ok(()) => self.delete_group(run, reads.group.as_ref()).await,
                    Err(e) => Err(e),
                }
            },
            self.delete_task_definitions(run, &reads.active, &reads.inactive)
        );
        for r in [group, tds] {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        if let Some(e) = first {
            return Err(e);
        }
        // The state item last: a failed delete stays listed and can be run again.
        let id = run.state_id(&self.table);
        match c
            .state
            .delete_item_when(
                &self.table,
                &p.name,
                run.names.env.as_str(),
                &run.lease.held(),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.is(&[codes::CONDITIONAL_CHECK_FAILED]) => {
                return Err(run
                    .lease
                    .lost("it was gone when the environment was deleted"));
            }
            Err(e) => return Err(Error::cloud(Step::State, id, e)),
        }
        run.record(
            ResourceKind::StateItem,
            id,
            if reads.old_state.is_some() {
                Action::Deleted
            } else {
                Action::AlreadyAbsent
            },
            None,
        );
        Ok(())
    }

    /// The dry run of delete: the same reads and decisions.
    async fn plan_delete(&self, run: &Run<'_>) -> Result<Outcome> {
        let (first, old) = tokio::try_join!(self.delete_first(run), self.read_state(run))?;
        if old.as_ref().is_some_and(|i| !i.contains_key(lease::RUN)) {
            return Err(self.refused(run, Refused::NotEden));
        }
        let reads = self.delete_inspect(run, first, old).await?;
        let doc = self.parse_document(run, reads.document.as_ref())?;
        let (_, edit) =
            decide::endpoint_remove(&doc, run.profile, &run.names.endpoint_entry, &run.owner)?;
        run.record(
            ResourceKind::EndpointsEntry,
            run.entry_id(),
            if edit.changed() {
                Action::Deleted
            } else {
                Action::AlreadyAbsent
            },
            None,
        );
        run.record(
            ResourceKind::DnsRecord,
            format!("{} A", reads.host),
            if reads.records.is_empty() {
                Action::AlreadyAbsent
            } else {
                Action::Deleted
            },
            None,
        );
        match &reads.service {
            Some(s) => run.record(ResourceKind::Service, &s.arn, Action::Deleted, None),
            None => run.record(
                ResourceKind::Service,
                &run.names.resource,
                Action::AlreadyAbsent,
                None,
            ),
        }
        if reads.rules.is_empty() {
            run.record(
                ResourceKind::ListenerRule,
                &reads.host,
                Action::AlreadyAbsent,
                None,
            );
        }
        for r in &reads.rules {
            run.record(ResourceKind::ListenerRule, &r.arn, Action::Deleted, None);
        }
        match &reads.group {
            Some(tg) => run.record(ResourceKind::TargetGroup, &tg.arn, Action::Deleted, None),
            None => run.record(
                ResourceKind::TargetGroup,
                &run.names.target_group,
                Action::AlreadyAbsent,
                None,
            ),
        }
        let all: Vec<&String> = reads.active.iter().chain(&reads.inactive).collect();
        if all.is_empty() {
            run.record(
                ResourceKind::TaskDefinition,
                &run.names.resource,
                Action::AlreadyAbsent,
                None,
            );
        }
        for arn in all {
            run.record(ResourceKind::TaskDefinition, arn, Action::Deleted, None);
        }
        run.record(
            ResourceKind::StateItem,
            run.state_id(&self.table),
            if reads.old_state.is_some() {
                Action::Deleted
            } else {
                Action::AlreadyAbsent
            },
            None,
        );
        Ok(run.outcome(Some(reads.host), true))
    }

    async fn delete_endpoint(
        &self,
        run: &Run<'_>,
        mut current: Option<StoredDocument>,
    ) -> Result<()> {
        let p = run.profile;
        let docs = &self.cloud.documents;
        for attempt in 0..CAS_ATTEMPTS {
            let doc = self.parse_document(run, current.as_ref())?;
            let (next, edit) =
                decide::endpoint_remove(&doc, p, &run.names.endpoint_entry, &run.owner)?;
            let Some(existing) = current.as_ref().filter(|_| edit.changed()) else {
                run.record(
                    ResourceKind::EndpointsEntry,
                    run.entry_id(),
                    Action::AlreadyAbsent,
                    None,
                );
                return Ok(());
            };
            match docs
                .put(
                    &p.endpoint_s3_bucket_name,
                    &p.endpoint_s3_key,
                    next.to_bytes(),
                    PutMode::Update(existing.etag.clone()),
                )
                .await
            {
                Ok(_) => {
                    let note = (edit == Edit::RemovedKey)
                        .then(|| "entry kept for other profiles' keys".to_owned());
                    run.record(
                        ResourceKind::EndpointsEntry,
                        run.entry_id(),
                        Action::Deleted,
                        note,
                    );
                    return Ok(());
                }
                Err(e) if is_precondition(&e) => {
                    jitter(attempt).await;
                    current = match self.read_document(run).await {
                        Ok(d) => d,
                        Err(Error::Cloud { source, .. }) if source.is_not_found() => None,
                        Err(e) => return Err(e),
                    };
                }
                Err(e) => return Err(Error::cloud(Step::Endpoints, run.doc_id(), e)),
            }
        }
        Err(Error::Contention {
            step: Step::Endpoints,
            resource: run.doc_id(),
            attempts: CAS_ATTEMPTS,
        })
    }

    async fn delete_records(&self, run: &Run<'_>, host: &str, records: &[DnsRecord]) -> Result<()> {
        let p = run.profile;
        let id = format!("{host} A");
        let mut records = records.to_vec();
        for attempt in 0..DNS_ATTEMPTS {
            if records.is_empty() {
                run.record(ResourceKind::DnsRecord, id, Action::AlreadyAbsent, None);
                return Ok(());
            }
            let changes: Vec<RecordChange> = records
                .iter()
                .map(|r| RecordChange::new(ChangeAction::Delete, r.clone()))
                .collect();
            match self
                .cloud
                .dns
                .change_records(&p.dynamic_zone_id, &changes)
                .await
            {
                Ok(()) => {
                    run.record(
                        ResourceKind::DnsRecord,
                        id,
                        Action::Deleted,
                        Some("with its owner TXT record".into()),
                    );
                    return Ok(());
                }
                // Changed meanwhile: read again, and decide again.
                Err(e) if e.is(&[codes::INVALID_CHANGE_BATCH]) && attempt + 1 < DNS_ATTEMPTS => {
                    let (a, txt) = tokio::try_join!(
                        self.find_record(p, host, "A"),
                        self.find_record(p, host, "TXT")
                    )?;
                    records = decide::dns_to_delete(host, a.as_ref(), txt.as_ref(), &run.owner)?;
                }
                Err(e) => return Err(Error::cloud(Step::Dns, host, e)),
            }
        }
        Err(Error::Contention {
            step: Step::Dns,
            resource: host.to_owned(),
            attempts: DNS_ATTEMPTS,
        })
    }

    async fn delete_service(&self, run: &Run<'_>, service: Option<&Service>) -> Result<()> {
        let p = run.profile;
        let name = &run.names.resource;
        let Some(s) = service else {
            run.record(ResourceKind::Service, name, Action::AlreadyAbsent, None);
            return Ok(());
        };
        match self
            .cloud
            .ecs
            .delete_service(&p.target_cluster, name, true)
            .await
        {
            Ok(_) => run.record(ResourceKind::Service, &s.arn, Action::Deleted, None),
            Err(e) if e.is_not_found() => {
                run.record(ResourceKind::Service, &s.arn, Action::AlreadyAbsent, None);
            }
            Err(e) => return Err(Error::cloud(Step::Service, name, e)),
        }
        Ok(())
    }

    async fn delete_rules(&self, run: &Run<'_>, host: &str, rules: &[Rule]) -> Result<()> {
        if rules.is_empty() {
            run.record(
                ResourceKind::ListenerRule,
                host,
                Action::AlreadyAbsent,
                None,
            );
            return Ok(());
        }
        let elb = &self.cloud.elb;
        let results = join_all(
            rules
                .iter()
                .map(|r| async move { (&r.arn, elb.delete_rule(&r.arn).await) }),
        )
        .await;
        for (arn, r) in results {
            match r {
                Ok(()) => run.record(ResourceKind::ListenerRule, arn, Action::Deleted, None),
                Err(e) if e.is_not_found() => {
                    run.record(ResourceKind::ListenerRule, arn, Action::AlreadyAbsent, None);
                }
                Err(e) => return Err(Error::cloud(Step::ListenerRule, arn, e)),
            }
        }
        Ok(())
    }

    async fn delete_group(&self, run: &Run<'_>, group: Option<&TargetGroup>) -> Result<()> {
        let Some(tg) = group else {
            run.record(
                ResourceKind::TargetGroup,
                &run.names.target_group,
                Action::AlreadyAbsent,
                None,
            );
            return Ok(());
        };
        match self.cloud.elb.delete_target_group(&tg.arn).await {
            Ok(()) => run.record(ResourceKind::TargetGroup, &tg.arn, Action::Deleted, None),
            Err(e) if e.is_not_found() => {
                run.record(
                    ResourceKind::TargetGroup,
                    &tg.arn,
                    Action::AlreadyAbsent,
                    None,
                );
            }
            Err(e) => return Err(Error::cloud(Step::TargetGroup, &tg.arn, e)),
        }
        Ok(())
    }

    async fn deregister(&self, _run: &Run<'_>, active: &[String]) -> Result<()> {
        let ecs = &self.cloud.ecs;
        for chunk in active.chunks(FAN_OUT) {
            let results = join_all(
                chunk
                    .iter()
                    .map(|arn| async move { (arn, ecs.deregister_task_definition(arn).await) }),
            )
            .await;
            for (arn, r) in results {
                if let Err(e) = r
                    && !e.is_not_found()
                    && !e.message.contains("does not exist")
                {
                    return Err(Error::cloud(Step::TaskDefinition, arn, e));
                }
            }
        }
        Ok(())
    }

    async fn delete_task_definitions(
        &self,
        run: &Run<'_>,
        active: &[String],
        inactive: &[String],
    ) -> Result<()> {
        let ecs = &self.cloud.ecs;
        let family = &run.names.resource;
        let all: Vec<String> = active.iter().chain(inactive.iter()).cloned().collect();
        if all.is_empty() {
            run.record(
                ResourceKind::TaskDefinition,
                family,
                Action::AlreadyAbsent,
                None,
            );
            return Ok(());
        }
        let chunks: Vec<&[String]> = all.chunks(10).collect();
        let deleted = join_all(
            chunks
                .iter()
                .map(|chunk| async move { (chunk, ecs.delete_task_definitions(chunk).await) }),
        )
        .await;
        for (chunk, r) in deleted {
            let failures = r.map_err(|e| Error::cloud(Step::TaskDefinition, family, e))?;
            for arn in chunk.iter() {
                match failures.iter().find(|(a, _)| a == arn) {
                    None => run.record(ResourceKind::TaskDefinition, arn, Action::Deleted, None),
                    Some((_, why)) if why.contains("does not exist") => run.record(
                        ResourceKind::TaskDefinition,
                        arn,
                        Action::AlreadyAbsent,
                        None,
                    ),
                    Some((_, why)) => {
                        return Err(Error::cloud(
                            Step::TaskDefinition,
                            arn,
                            CloudError::new("DeleteTaskDefinitionsFailure", why.clone()),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- list, sweep, profiles

impl Environment {
    /// Environments in the state table: of one profile, or of all (pages followed).
    pub async fn list(&self, profile: Option<&str>) -> Result<Vec<EnvironmentRecord>> {
        let state = &self.cloud.state;
        let mut out = Vec::new();
        let mut next = None;
        loop {
            let page = match profile {
                Some(p) => state.query(&self.table, p, next).await,
                None => {
                    state
                        .query_kind(&self.table, "environment", None, next)
                        .await
                }
            };
            let page = match page {
                Ok(page) => page,
                Err(e) if e.is_not_found() => return Ok(Vec::new()),
                Err(e) => return Err(Error::cloud(Step::State, &self.table, e)),
            };
            out.extend(page.items.iter().filter_map(EnvironmentRecord::from_item));
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        out.sort_by(|a, b| (&a.profile, &a.name).cmp(&(&b.profile, &b.name)));
        Ok(out)
    }

    /// Deletes every environment of `profile` not created or deployed for `max_age`.
    pub async fn sweep(
        &self,
        profile: &Profile,
        max_age: Duration,
        now: Option<i64>,
    ) -> Result<SweepReport> {
        let now = now.unwrap_or_else(now_epoch);
        let cutoff = now.saturating_sub(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        let state = &self.cloud.state;
        let mut expired = Vec::new();
        let mut next = None;
        loop {
            let page = match state
                .query_kind(&self.table, "environment", Some(cutoff), next)
                .await
            {
                Ok(page) => page,
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(Error::cloud(Step::State, &self.table, e)),
            };
            expired.extend(
                page.items
                    .iter()
                    .filter_map(EnvironmentRecord::from_item)
                    .filter(|r| r.profile == profile.name && r.last_updated < cutoff),
            );
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        let mut report = SweepReport::default();
        for record in expired {
            match self
                .delete(profile, &record.name, &DeleteOptions::default())
                .await
            {
                Ok(outcome) => report.deleted.push(outcome),
                Err(e) => report.failed.push((record.name, e)),
            }
        }
        Ok(report)
    }

    /// Stores a profile in the state table (creating the table when missing).
    pub async fn push_profile(&self, profile: &Profile) -> Result<()> {
        let state = &self.cloud.state;
        let id = format!("{}/_profile/{}", self.table, profile.name);
        state
            .ensure_table(&self.table)
            .await
            .map_err(|e| Error::cloud(Step::State, &self.table, e))?;
        let item = Item::from([
            (schema::HASH_KEY.into(), AttrValue::S("_profile".into())),
            (schema::RANGE_KEY.into(), AttrValue::S(profile.name.clone())),
            ("profile".into(), AttrValue::S(profile.to_json())),
            (schema::KIND.into(), AttrValue::S("profile".into())),
        ]);
        state
            .put_item(&self.table, item, WriteCondition::None)
            .await
            .map_err(|e| Error::cloud(Step::State, id, e))?;
        Ok(())
    }

    /// Reads a profile from the state table; `None` when it is not there.
    pub async fn pull_profile(&self, name: &str) -> Result<Option<Profile>> {
        let item = match self
            .cloud
            .state
            .get_item(&self.table, "_profile", name)
            .await
        {
            Ok(item) => item,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(Error::cloud(Step::State, &self.table, e)),
        };
        let Some(json) = item
            .as_ref()
            .and_then(|i| i.get("profile"))
            .and_then(AttrValue::as_s)
        else {
            return Ok(None);
        };
        Ok(Some(Profile::from_json(name, json)?))
    }

    /// Names of the profiles in the state table.
    pub async fn list_profiles(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut next = None;
        loop {
            let page = match self.cloud.state.query(&self.table, "_profile", next).await {
                Ok(p) => p,
                Err(e) if e.is_not_found() => return Ok(out),
                Err(e) => return Err(Error::cloud(Step::State, &self.table, e)),
            };
            out.extend(page.items.iter().filter_map(|i| {
                i.get(schema::RANGE_KEY)
                    .and_then(AttrValue::as_s)
                    .map(str::to_owned)
            }));
            match page.next {
                Some(n) => next = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Removes a profile from the state table; true when it was there.
    pub async fn remove_profile(&self, name: &str) -> Result<bool> {
        match self
            .cloud
            .state
            .delete_item(&self.table, "_profile", name, WriteCondition::None)
            .await
        {
            Ok(old) => Ok(old.is_some()),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(Error::cloud(Step::State, &self.table, e)),
        }
    }
}

/// Polls all futures together and returns their outputs in order (a tiny `join_all`, to avoid
/// a dependency for the few places that fan out over a list).
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
