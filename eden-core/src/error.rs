//! The crate's error type: every failure names the step and the resource.

use std::fmt;
use std::time::Duration;

use crate::cloud::CloudError;
use crate::endpoints::DocumentError;
use crate::image::ImageUriError;
use crate::names::NameError;
use crate::outcome::{Outcome, ResourceKind};
use crate::ownership::ForeignOwner;
use crate::profile::ProfileError;

/// A step of create, delete or list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Checking the image exists.
    CheckImage,
    /// Reading the reference service, its task definition and target group.
    ReadReference,
    /// Reading the shared load balancer and its HTTPS listener.
    ReadLoadBalancer,
    /// Reading the hosted zone.
    ReadZone,
    /// Registering or deleting task definitions.
    TaskDefinition,
    /// Creating or deleting the target group.
    TargetGroup,
    /// Creating or deleting the listener rule.
    ListenerRule,
    /// Creating, updating or deleting the ECS service.
    Service,
    /// Waiting for the service to become stable or inactive.
    Wait,
    /// Upserting or deleting the DNS record.
    Dns,
    /// Editing the endpoints document.
    Endpoints,
    /// Reading or writing the state table.
    State,
    /// Taking, renewing or releasing the environment's lease.
    Lease,
}

impl Step {
    /// The profile key naming the resource this step works on, for errors that are the
    /// configuration's (a missing cluster, a denied permission, an invalid value).
    pub fn profile_key(self, error: &CloudError) -> Option<&'static str> {
        Some(match self {
            Self::CheckImage | Self::State | Self::Lease => return None,
            Self::ReadReference => "reference_service_arn",
            Self::ReadLoadBalancer | Self::ListenerRule => "master_alb_arn",
            Self::ReadZone | Self::Dns => "dynamic_zone_id",
            Self::TaskDefinition | Self::TargetGroup => "name_prefix",
            Self::Service | Self::Wait => "target_cluster",
            Self::Endpoints if error.is(&["NoSuchBucket"]) => "endpoint_s3_bucket_name",
            Self::Endpoints => "endpoint_s3_key",
        })
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CheckImage => "check image",
            Self::ReadReference => "read reference service",
            Self::ReadLoadBalancer => "read load balancer",
            Self::ReadZone => "read hosted zone",
            Self::TaskDefinition => "task definition",
            Self::TargetGroup => "target group",
            Self::ListenerRule => "listener rule",
            Self::Service => "ECS service",
            Self::Wait => "wait for service",
            Self::Dns => "DNS record",
            Self::Endpoints => "endpoints document",
            Self::State => "state table",
            Self::Lease => "lease",
        })
    }
}

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The environment or a derived name is refused.
    #[error("invalid name: {0}")]
    Name(#[from] NameError),
    /// The profile is invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The image URI does not parse.
    #[error(transparent)]
    ImageUri(#[from] ImageUriError),
    /// The image (or its repository) does not exist.
    #[error("image {image} not found ({code}): {message}")]
    ImageNotFound {
        /// The image URI.
        image: String,
        /// `ImageNotFoundException` or `RepositoryNotFoundException`.
        code: String,
        /// The registry's message.
        message: String,
    },
    /// A name derived for the environment is one of the reference service's own: eden would
    /// change the reference. Refused before any call.
    #[error(
        "environment name refused: its {what} would be {name}, which is the reference \
         service's own {what}; choose another environment name or {profile_key}"
    )]
    ReferenceCollision {
        /// `ECS service`, `task definition family` or `target group`.
        what: &'static str,
        /// The colliding name.
        name: String,
        /// The profile key that makes the derived name (`name_prefix`).
        profile_key: &'static str,
    },
    /// The profile names resources in another region than the one the clients call.
    #[error(
        "profile key {profile_key} names region {profile_region}, but the AWS clients call \
         region {client_region}: set the region (AWS_REGION or the SDK configuration) to \
         {profile_region}, or fix {profile_key}"
    )]
    RegionMismatch {
        /// The profile key (`reference_service_arn`, `master_alb_arn`).
        profile_key: &'static str,
        /// The region in the profile's ARN.
        profile_region: String,
        /// The clients' region.
        client_region: String,
    },
    /// A resource the environment would change or delete is not the environment's: it has
    /// no recorded owner or another one. Nothing was changed.
    #[error(
        "refusing to change {kind} {resource}: it is not owned by this environment (owner: {owner})"
    )]
    NotOwned {
        /// Which kind of resource.
        kind: ResourceKind,
        /// ARN or name.
        resource: String,
        /// Who owns it, as far as eden can tell.
        owner: ForeignOwner,
    },
    /// The reference service has parts a preview copy must not have (they would register the
    /// preview's tasks as the reference's, or cannot be copied); see
    /// [`CreateOptions::leave_out_uncopyable`](crate::CreateOptions::leave_out_uncopyable).
    #[error(
        "the reference service {reference} has parts eden does not copy: {}; create with \
         leave_out_uncopyable to create the environment without them",
        parts.join("; ")
    )]
    ReferenceNotCopyable {
        /// The reference service ARN.
        reference: String,
        /// Each part, and why.
        parts: Vec<String>,
    },
    /// The shared load balancer cannot take another environment.
    #[error(
        "the shared load balancer {alb} is full ({code}: {message}); an ALB holds 100 rules \
         (adjustable) and 100 target groups (not adjustable), about 99 environments: delete \
         environments or give this profile another ALB"
    )]
    AlbFull {
        /// The ALB ARN.
        alb: String,
        /// `TooManyRules` or `TooManyTargetGroups`.
        code: String,
        /// ELB's message.
        message: String,
    },
    /// The state table has the layout aws-eden-cli 0.1.5 created (hash key `env_name`), not
    /// eden's (`type`/`name`): nothing was changed. Migrate it with
    /// [`crate::migration::migrate_state`] (the example CLI's `migrate-state`).
    #[error(
        "state table {table} has the aws-eden-cli 0.1.5 layout (hash key env_name); eden needs \
         hash key type and range key name. Nothing was changed. Copy it into a new table with \
         `eden migrate-state --from {table} --to <new table>` (a dry run; add --apply to \
         write), then use the new table (--remote-table-name <new table>)"
    )]
    LegacyStateTable {
        /// The table.
        table: String,
    },
    /// A cloud call failed.
    #[error("{step} failed on {resource}: {source}{}", hint(*step, *profile_key, source))]
    Cloud {
        /// The step.
        step: Step,
        /// The resource (ARN or name).
        resource: String,
        /// AWS's code and message.
        source: CloudError,
        /// The profile key naming the resource, when the failure is the configuration's.
        profile_key: Option<&'static str>,
    },
    /// The cloud is not in a state eden can work with.
    #[error("{step} on {resource}: {message}")]
    Conflict {
        /// The step.
        step: Step,
        /// The resource.
        resource: String,
        /// What is wrong.
        message: String,
    },
    /// The endpoints document is not valid JSON of the expected shape; it is left untouched.
    #[error("endpoints document {resource}: {source}")]
    Document {
        /// `s3://bucket/key`.
        resource: String,
        /// Why.
        source: DocumentError,
    },
    /// Concurrent writers kept winning.
    #[error("{step} on {resource}: still contended after {attempts} attempts")]
    Contention {
        /// The step.
        step: Step,
        /// The resource.
        resource: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Another create or delete holds the environment (after waiting for it).
    #[error(
        "environment {environment} of profile {profile} is busy: a {operation} (run {run}) holds \
         it until {} unless renewed; retry when it is done, or break the lease if its holder \
         is gone", fmt_ms(*expires_at_ms)
    )]
    Busy {
        /// Profile.
        profile: String,
        /// Environment name.
        environment: String,
        /// The holder's operation.
        operation: String,
        /// The holder's run.
        run: String,
        /// When the holder's lease expires unless renewed, epoch milliseconds.
        expires_at_ms: i64,
    },
    /// This run lost the environment's lease (taken over or broken) and stopped without
    /// rolling back; the run that holds it now finishes or undoes what is left.
    #[error(
        "environment {environment} of profile {profile}: run {run} stopped, lease lost: {reason}"
    )]
    LeaseLost {
        /// Profile.
        profile: String,
        /// Environment name.
        environment: String,
        /// This run.
        run: String,
        /// Why.
        reason: String,
    },
    /// The service's deployment failed (ECS rolled it out as `FAILED`).
    #[error("the deployment of service {service} failed: {reason}; latest service events: {}", events.join(" | "))]
    RolloutFailed {
        /// The service.
        service: String,
        /// ECS's reason.
        reason: String,
        /// The latest service events, newest first.
        events: Vec<String>,
    },
    /// A wait ran out of time. When waiting for a stable service, `outcome` says what was done:
    /// the environment is kept, and not published (no DNS record or endpoints entry yet); a
    /// later create finishes it.
    #[error("{step} on {resource}: not done after {waited:?}")]
    Timeout {
        /// The step.
        step: Step,
        /// The resource.
        resource: String,
        /// How long eden waited.
        waited: Duration,
        /// What was done before the wait.
        outcome: Option<Box<Outcome>>,
    },
    /// A step failed and rolling back what this run created failed too.
    #[error("{cause}; rollback could not remove: {}", leftover.join(", "))]
    RollbackIncomplete {
        /// The failure that triggered the rollback.
        cause: Box<Error>,
        /// What is left (and why).
        leftover: Vec<String>,
    },
}

fn hint(step: Step, profile_key: Option<&str>, source: &CloudError) -> String {
    let Some(key) = profile_key else {
        return String::new();
    };
    if step == Step::Endpoints && source.is_access_denied() {
        format!(
            " (access denied: S3 also answers 403 for a missing key when the caller may not \
             s3:ListBucket the bucket; grant s3:GetObject, s3:PutObject and s3:ListBucket \
             (scoped to the key with s3:prefix) for profile keys endpoint_s3_bucket_name and \
             {key})"
        )
    } else if source.is_access_denied() {
        format!(" (access denied: check the IAM policy for the resource of profile key {key})")
    } else if source.is_throttling() || source.is_service_failure() {
        String::new()
    } else {
        format!(" (check profile key {key})")
    }
}

fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// What kind of failure an [`Error`] is, for callers that map errors to answers (the HTTP
/// API's status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// The request or the profile is wrong (a name, an image, a profile key, a region).
    Invalid,
    /// AWS refused permission: the IAM policy lacks something.
    AccessDenied,
    /// A resource is someone else's, or in a state eden cannot work with.
    Conflict,
    /// Another run holds the environment.
    Busy,
    /// AWS throttled or could not be reached: retrying later helps.
    Unavailable,
    /// AWS itself failed (5xx).
    CloudFailure,
    /// A wait ran out of time.
    Timeout,
    /// eden's own problem (a stored profile that does not parse, ...).
    Internal,
}

impl Error {
    /// A failed cloud call on `resource` during `step`.
    pub fn cloud(step: Step, resource: impl Into<String>, source: CloudError) -> Self {
        if source.is(&[crate::cloud::codes::LEGACY_STATE_TABLE]) {
            // The store names the table in its message: `<table>: ...`.
            let table = source
                .message
                .split_once(':')
                .map_or_else(|| source.message.clone(), |(t, _)| t.to_owned());
            return Self::LegacyStateTable { table };
        }
        Self::Cloud {
            step,
            resource: resource.into(),
            profile_key: step.profile_key(&source),
            source,
        }
    }

    /// The error that caused this one (unwrapping a failed rollback).
    pub fn root(&self) -> &Error {
        match self {
            Self::RollbackIncomplete { cause, .. } => cause.root(),
            other => other,
        }
    }

    /// What kind of failure this is.
    pub fn class(&self) -> ErrorClass {
        match self.root() {
            Self::Name(_)
            | Self::Profile(_)
            | Self::ImageUri(_)
            | Self::ImageNotFound { .. }
            | Self::ReferenceCollision { .. }
            | Self::RegionMismatch { .. }
            | Self::ReferenceNotCopyable { .. } => ErrorClass::Invalid,
            Self::NotOwned { .. } | Self::Conflict { .. } | Self::LeaseLost { .. } => {
                ErrorClass::Conflict
            }
            Self::RolloutFailed { .. } => ErrorClass::Conflict,
            Self::Busy { .. } => ErrorClass::Busy,
            Self::AlbFull { .. } => ErrorClass::Conflict,
            Self::Contention { .. } => ErrorClass::Unavailable,
            Self::Timeout { .. } => ErrorClass::Timeout,
            Self::Cloud { source, .. } => {
                if source.is_throttling() || source.is(&[crate::cloud::codes::TRANSPORT]) {
                    ErrorClass::Unavailable
                } else if source.is_service_failure() {
                    ErrorClass::CloudFailure
                } else if source.is_access_denied() {
                    ErrorClass::AccessDenied
                } else {
                    ErrorClass::Invalid
                }
            }
            Self::Document { .. } | Self::LegacyStateTable { .. } => ErrorClass::Conflict,
            Self::RollbackIncomplete { .. } => ErrorClass::Internal,
        }
    }

    /// True when the failure came from AWS itself (throttling, a 5xx answer, the network)
    /// rather than from the input, the configuration or the state of the account; only these
    /// are worth retrying unchanged, and the HTTP API answers 502/503 for them.
    pub fn is_cloud_failure(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::Unavailable | ErrorClass::CloudFailure
        )
    }

    /// The profile key this error is about, when it is one.
    pub fn profile_key(&self) -> Option<&'static str> {
        match self.root() {
            Self::Cloud { profile_key, .. } => *profile_key,
            Self::ReferenceCollision { profile_key, .. }
            | Self::RegionMismatch { profile_key, .. } => Some(profile_key),
            _ => None,
        }
    }
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
