//! An in-memory cloud implementing every trait of [`crate::cloud`], behaving like AWS where eden
//! depends on it, one file per service plus the world they share:
//!
//! * ECS (`memory/ecs.rs`): clusters (`ClusterNotFoundException`), services that turn DRAINING
//!   then INACTIVE, rollouts that complete or fail with service events, task definition
//!   revisions copied with their tags;
//! * ELBv2 (`memory/elb.rs`): target group name rules and `DuplicateTargetGroupName` (and the
//!   existing group, tags untouched, for identical settings), `PriorityInUse`, `ResourceInUse`
//!   when deleting a target group a rule uses, `TooManyRules` / `TooManyTargetGroups` past 100
//!   per load balancer, tags read back as AWS returns them, `DescribeRules` and
//!   `DescribeTargetGroups` pages (of 400 by default);
//! * Route 53 (`memory/route53.rs`): change batches that apply all or nothing (`CREATE` of an
//!   existing record and `DELETE` of a different one fail);
//! * ECR (`memory/ecr.rs`): images by tag or digest, missing images and repositories;
//! * S3 (`memory/s3.rs`): ETags and conditional writes (412);
//! * DynamoDB (`memory/dynamodb.rs`): condition and update expressions, pages;
//! * the world (`memory/world.rs`): what all of them hold, seeded from a profile
//!   ([`MemoryCloud::seed`]), and the [`Inventory`] tests compare.
//!
//! The conformance suite (feature `conformance`) runs the same behaviours against this cloud
//! and against AWS's API (moto), so the two cannot drift apart. Latency and injected failures
//! are added by wrapping it, see [`crate::instrument`].

use std::sync::{Arc, Mutex, MutexGuard};

use crate::cloud::{Cloud, CloudError, CloudResult, Page};
use crate::profile::Profile;

mod dynamodb;
mod ecr;
mod ecs;
mod elb;
mod route53;
mod s3;
mod world;

pub use world::Inventory;
use world::{MemRule, MemService, MemTargetGroup, World};

/// Behaviour knobs of the in-memory cloud.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MemoryOptions {
    /// Describes of a deleted service that still answer DRAINING before it is INACTIVE.
    pub draining_polls: u32,
    /// Describes of a new deployment before its rollout is COMPLETED.
    pub stabilize_polls: u32,
    /// `DescribeRules` page size (eden asks AWS for pages of 400; AWS's default is smaller).
    pub rules_page_size: usize,
    /// Non-default rules per load balancer (AWS default quota: 100).
    pub max_rules_per_alb: usize,
    /// Target groups per load balancer (AWS: 100, not adjustable).
    pub max_target_groups_per_alb: usize,
    /// Items per DynamoDB query/scan page.
    pub state_page_size: usize,
    /// `DescribeTargetGroups` page size (AWS: at most 400).
    pub target_groups_page_size: usize,
    /// Every new deployment's rollout ends `FAILED` (as with a deployment circuit breaker
    /// when tasks keep failing), with a service event saying why.
    pub fail_rollouts: bool,
}

impl MemoryOptions {
    /// Sets [`MemoryOptions::draining_polls`].
    pub fn draining_polls(mut self, value: u32) -> Self {
        self.draining_polls = value;
        self
    }

    /// Sets [`MemoryOptions::stabilize_polls`].
    pub fn stabilize_polls(mut self, value: u32) -> Self {
        self.stabilize_polls = value;
        self
    }

    /// Sets [`MemoryOptions::rules_page_size`].
    pub fn rules_page_size(mut self, value: usize) -> Self {
        self.rules_page_size = value;
        self
    }

    /// Sets [`MemoryOptions::max_rules_per_alb`].
    pub fn max_rules_per_alb(mut self, value: usize) -> Self {
        self.max_rules_per_alb = value;
        self
    }

    /// Sets [`MemoryOptions::max_target_groups_per_alb`].
    pub fn max_target_groups_per_alb(mut self, value: usize) -> Self {
        self.max_target_groups_per_alb = value;
        self
    }

    /// Sets [`MemoryOptions::state_page_size`].
    pub fn state_page_size(mut self, value: usize) -> Self {
        self.state_page_size = value;
        self
    }

    /// Sets [`MemoryOptions::target_groups_page_size`].
    pub fn target_groups_page_size(mut self, value: usize) -> Self {
        self.target_groups_page_size = value;
        self
    }

    /// Sets [`MemoryOptions::fail_rollouts`].
    pub fn fail_rollouts(mut self, value: bool) -> Self {
        self.fail_rollouts = value;
        self
    }
}

impl Default for MemoryOptions {
    fn default() -> Self {
        Self {
            draining_polls: 1,
            stabilize_polls: 0,
            rules_page_size: 400,
            max_rules_per_alb: 100,
            max_target_groups_per_alb: 100,
            state_page_size: 100,
            target_groups_page_size: 400,
            fail_rollouts: false,
        }
    }
}

/// The in-memory cloud. Cheap to share: wrap it in an `Arc` and use [`MemoryCloud::cloud`].
#[derive(Debug, Default)]
pub struct MemoryCloud {
    world: Mutex<World>,
    options: MemoryOptions,
    account: String,
    region: String,
}

fn err<T>(code: &str, message: impl Into<String>) -> CloudResult<T> {
    Err(CloudError::new(code, message))
}

fn last_segment(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

impl MemoryCloud {
    /// An empty cloud in account `123456789012`, region `us-east-1`.
    pub fn new(options: MemoryOptions) -> Self {
        Self {
            world: Mutex::new(World::default()),
            options,
            account: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }

    /// A cloud holding the reference resources `profile` names (see [`MemoryCloud::seed`]),
    /// in the profile's account and region.
    pub fn with_reference(profile: &Profile, options: MemoryOptions) -> Arc<Self> {
        let mut cloud = Self::new(options);
        cloud.account = profile.master_alb_arn.account.clone();
        cloud.region = profile.master_alb_arn.region.clone();
        let cloud = Arc::new(cloud);
        cloud.seed(profile);
        cloud
    }

    /// The six traits, all served by this cloud (in its region).
    pub fn cloud(self: &Arc<Self>) -> Cloud {
        Cloud::from_one(self.clone()).with_region(self.region.clone())
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn paginate<T: Clone>(items: &[T], next: Option<String>, size: usize) -> CloudResult<Page<T>> {
    let start = match next {
        None => 0,
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| CloudError::new("ValidationError", "invalid pagination token"))?,
    };
    let end = (start + size.max(1)).min(items.len());
    Ok(Page {
        items: items.get(start..end).map(<[T]>::to_vec).unwrap_or_default(),
        next: (end < items.len()).then(|| end.to_string()),
    })
}
