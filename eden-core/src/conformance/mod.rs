//! The behaviours every implementation of a cloud trait must show, one suite per trait (feature
//! `conformance`).
//!
//! eden relies on these answers: conditional writes and ETags, "not found" told apart from
//! failures, priority and name conflicts, pagination, tags read back, name limits and the
//! class of each error. The suites run against the in-memory cloud and, in eden-core's own
//! tests, against the AWS implementations on moto, so [`crate::memory::MemoryCloud`] cannot
//! drift from AWS. They are also there for anyone implementing a trait (another backend, a
//! caching layer, a test double): run the suite of that trait against it.
//!
//! | suite | trait | what it holds the implementation to |
//! | --- | --- | --- |
//! | [`ecs`] | [`EcsApi`](crate::cloud::EcsApi) | missing services and clusters, name limits, task definition copies with their tags, exact-family listings, deregister and delete, service create/update/delete and their tags, duplicate names |
//! | [`elb`] | [`LoadBalancerApi`](crate::cloud::LoadBalancerApi) | target group name limits, idempotent creates, `DuplicateTargetGroupName`, tags, attributes, `PriorityInUse`, `ResourceInUse`, rule and target group pages, the default rule, not-found answers |
//! | [`route53`] | [`DnsApi`](crate::cloud::DnsApi) | exact lookups, atomic change batches (`CREATE` of an existing record, `DELETE` of a different one), names outside the zone, TXT values and their length |
//! | [`ecr`] | [`ImageRegistry`](crate::cloud::ImageRegistry) | images by tag and digest, missing images and repositories |
//! | [`s3`] | [`DocumentStore`](crate::cloud::DocumentStore) | `If-None-Match: *` and `If-Match` writes, ETags, missing keys and buckets |
//! | [`dynamodb`] | [`StateStore`](crate::cloud::StateStore) | table creation, write conditions, condition and update expressions, queries, the index, scans, pages, missing tables |
//!
//! A suite panics with the behaviour that failed, as a test assertion does. It makes its own
//! resources, named with [`Fixture::unique`], next to the pre-existing ones the [`Fixture`]
//! names, and removes them again where the trait can (a DynamoDB table and S3 objects stay:
//! the traits cannot delete them).
//!
//! Where a backend knowingly differs from AWS, the suite accepts the difference only when its
//! [`Quirks`] say so; [`Quirks::moto`] lists moto's, each with what AWS does instead.
//!
//! A backend of one trait runs its suite from its own tests, with `eden-core`'s `conformance`
//! feature on in its dev-dependencies:
//!
//! ```no_run
//! use eden_core::cloud::DocumentStore;
//! use eden_core::conformance::{self, Fixture, Quirks};
//!
//! # async fn example(my_store: &dyn DocumentStore, fixture: Fixture) {
//! // `fixture` names what exists where `my_store` keeps its documents (`fixture.bucket`), and
//! // `fixture.unique` keeps this run's keys apart from earlier runs'.
//! let fixture = Fixture { quirks: Quirks::none(), ..fixture };
//! conformance::s3(my_store, &fixture).await; // panics with the behaviour that failed
//! # }
//! ```
//!
//! eden-core's own `tests/conformance.rs` builds a [`Fixture`] for the in-memory cloud and one
//! for moto.
//!
//! This module is for tests: it is not part of the stable API and may change in any release.

// A suite reports a failed behaviour by panicking, as test assertions do.
#![allow(clippy::panic)]

use std::fmt::Debug;
use std::time::Duration;

use crate::cloud::{AliasTarget, CloudError, CloudResult, NetworkConfiguration};
use crate::image::EcrImage;

mod dynamodb;
mod ecr;
mod ecs;
mod elb;
mod route53;
mod s3;

pub use dynamodb::dynamodb;
pub use ecr::ecr;
pub use ecs::ecs;
pub use elb::elb;
pub use route53::route53;
pub use s3::s3;

/// What exists before a suite runs, and how the backend may differ from AWS.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Makes the names of what the suites create unique: lowercase letters and digits, at most
    /// 8 characters (a target group name holds 32).
    pub unique: String,
    /// An ECS cluster (name or ARN).
    pub cluster: String,
    /// A task definition (ARN) to copy.
    pub task_definition: String,
    /// A container of that task definition.
    pub container: String,
    /// The network configuration of services in `cluster` (`awsvpc`), if they need one.
    pub network: Option<NetworkConfiguration>,
    /// The launch type of services in `cluster` (`FARGATE`, `EC2`...).
    pub launch_type: Option<String>,
    /// An application load balancer (ARN).
    pub load_balancer: String,
    /// One of its listeners (ARN), where the suite adds and removes rules.
    pub listener: String,
    /// A Route 53 hosted zone (id).
    pub zone_id: String,
    /// The zone's name, without the trailing dot.
    pub zone_name: String,
    /// What the suite's alias records point to (AWS checks that the target exists: use the
    /// load balancer's DNS name and canonical hosted zone).
    pub alias: AliasTarget,
    /// An ECR image that exists, by tag.
    pub image: EcrImage,
    /// An S3 bucket.
    pub bucket: String,
    /// How long to wait between describes while a service settles.
    pub poll: Duration,
    /// Known differences of the backend from AWS.
    pub quirks: Quirks,
}

/// Known differences from AWS that a suite accepts. Every field is `false` for a backend that
/// behaves as AWS does (the in-memory cloud, AWS itself); each says what AWS does instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quirks {
    /// ECS: `CreateService` with the name of an ACTIVE service succeeds. AWS answers
    /// `InvalidParameterException` ("Creation of service was not idempotent").
    pub duplicate_service_accepted: bool,
    /// ECS: `UpdateService` changes the service's task definition but starts no deployment: the
    /// PRIMARY deployment keeps the old revision. AWS starts a new PRIMARY deployment of the new
    /// revision (the old one turns ACTIVE and drains).
    pub update_starts_no_deployment: bool,
    /// ECS: service names and task definition families over 255 characters, or with other
    /// characters than letters, digits, `-` and `_`, are accepted. AWS refuses them
    /// (`InvalidParameterException`, `ClientException`).
    pub ecs_names_unchecked: bool,
    /// ELBv2: `CreateTargetGroup` with the name and settings of an existing group answers
    /// `DuplicateTargetGroupName`. AWS answers the existing group (the call is idempotent), which
    /// is why eden verifies a group it is answered by its `eden:run` tag.
    pub duplicate_target_group_refused: bool,
    /// ELBv2: `DeleteRule` of a rule that does not exist succeeds. AWS answers `RuleNotFound`.
    pub missing_rule_delete_succeeds: bool,
    /// ELBv2: `DescribeTags` still answers the tags of a deleted target group. AWS answers
    /// `TargetGroupNotFound`.
    pub deleted_target_group_tags_kept: bool,
    /// Route 53: a `DELETE` that matches no stored record (other values, or no record of that
    /// name) answers `InvalidInput` (about missing fields) or succeeds. AWS answers
    /// `InvalidChangeBatch` ("the values provided do not match", "it was not found"). Nothing
    /// is deleted either way.
    pub loose_record_deletes: bool,
    /// Route 53: a TXT string over 255 characters is stored. AWS answers `InvalidChangeBatch`
    /// (`TXTRDATATooLong`).
    pub txt_length_unchecked: bool,
    /// DynamoDB: table names that are not 3 to 255 letters, digits, `_`, `-` and `.` are
    /// accepted. AWS answers `ValidationException`.
    pub table_names_unchecked: bool,
}

impl Quirks {
    /// None: the backend behaves as AWS does.
    pub fn none() -> Self {
        Self::default()
    }

    /// moto in server mode (5.x), as eden-core's moto tests find it.
    pub fn moto() -> Self {
        Self {
            duplicate_service_accepted: true,
            update_starts_no_deployment: true,
            duplicate_target_group_refused: true,
            missing_rule_delete_succeeds: true,
            deleted_target_group_tags_kept: true,
            loose_record_deletes: true,
            ecs_names_unchecked: true,
            txt_length_unchecked: true,
            table_names_unchecked: true,
        }
    }
}

/// The value, or the suite fails naming `what`.
#[track_caller]
fn ok<T>(result: CloudResult<T>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error {e} (status {:?})", e.status),
    }
}

/// The error, or the suite fails naming `what`.
#[track_caller]
fn err<T: Debug>(result: CloudResult<T>, what: &str) -> CloudError {
    match result {
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
        Err(e) => e,
    }
}

/// An error the caller caused (the request, the state of the account): not an outage, not
/// throttling, not a permission refusal. eden answers these with 4xx, never 502/503.
#[track_caller]
fn callers(e: &CloudError, what: &str) {
    assert!(
        !e.is_service_failure() && !e.is_throttling() && !e.is_access_denied(),
        "{what}: {e} is classed as an outage, throttling or a refusal"
    );
}

/// The error has one of `codes`, and is the caller's.
#[track_caller]
fn code(e: &CloudError, codes: &[&str], what: &str) {
    assert!(e.is(codes), "{what}: expected {codes:?}, got {e}");
    callers(e, what);
}

/// The error means "it does not exist", with one of `codes`.
#[track_caller]
fn not_found(e: &CloudError, codes: &[&str], what: &str) {
    code(e, codes, what);
    assert!(e.is_not_found(), "{what}: {e} is not classed as not found");
}

/// A refusal that is the caller's and not "not found" (validation, conflicts).
#[track_caller]
fn refused(e: &CloudError, what: &str) {
    callers(e, what);
    assert!(!e.is_not_found(), "{what}: {e} is classed as not found");
}
