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
//! environment's is refused ([`Error::NotOwned`](crate::Error::NotOwned)) and what this run
//! created is removed again.
//! Every write this run makes is journaled; when a step fails the journal is undone in reverse
//! order, so only what existed before the run is left.
//!
//! # Layout
//!
//! One file per part of the work, each an `impl Environment` block or the types it needs:
//!
//! * `create.rs`, `routing.rs` (the target group and the host rule), `publish.rs` (round 5);
//! * `delete.rs`; `plan.rs` (the dry runs of both); `list.rs` (list, the expiry sweep);
//! * `decide.rs` and `priority.rs`: the pure decisions the runs and the plans share;
//! * `reads.rs`: the reads create, delete and the plans share;
//! * `run.rs` (one run: owner, lease, report), `journal.rs` (what it wrote) and `rollback.rs`;
//! * `state.rs` (the state item and the lease in it), `profiles.rs` (profiles stored there);
//! * `wait.rs` (DRAINING services, stable deployments), `retry.rs`, `fan_out.rs`;
//! * `options.rs`, `progress.rs`, and the report types in `crate::outcome`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::cloud::{Cloud, schema};
use crate::lease::LeaseOptions;
use progress::ProgressFn;

mod create;
mod decide;
mod delete;
mod fan_out;
mod journal;
mod list;
mod options;
mod plan;
mod priority;
mod profiles;
mod progress;
mod publish;
mod reads;
mod retry;
mod rollback;
mod routing;
mod run;
mod state;
mod wait;

pub use crate::outcome::{Action, Outcome, ResourceChange, ResourceKind};
pub use crate::ownership::tags;
pub use list::SweepReport;
pub use options::{CreateOptions, DeleteOptions};
pub use progress::Progress;
pub use state::{EnvironmentRecord, EnvironmentStatus};

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
}
