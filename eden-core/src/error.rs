//! The crate's error type: every failure names the step and the resource.

use std::fmt;
use std::time::Duration;

use crate::api::CloudError;
use crate::endpoints::DocumentError;
use crate::image::ImageUriError;
use crate::names::NameError;
use crate::profile::ProfileError;

/// A step of create, delete or list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
        })
    }
}

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
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
    /// A cloud call failed.
    #[error("{step} failed on {resource}: {source}")]
    Cloud {
        /// The step.
        step: Step,
        /// The resource (ARN or name).
        resource: String,
        /// AWS's code and message.
        source: CloudError,
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
    /// A wait ran out of time.
    #[error("{step} on {resource}: not done after {waited:?}")]
    Timeout {
        /// The step.
        step: Step,
        /// The resource.
        resource: String,
        /// How long eden waited.
        waited: Duration,
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

impl Error {
    /// A failed cloud call on `resource` during `step`.
    pub fn cloud(step: Step, resource: impl Into<String>, source: CloudError) -> Self {
        Self::Cloud {
            step,
            resource: resource.into(),
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

    /// True when the failure came from AWS itself (throttling, outage...) rather than from
    /// the input or the state of the account; the HTTP handler answers 5xx for these.
    pub fn is_cloud_failure(&self) -> bool {
        matches!(
            self.root(),
            Self::Cloud { .. } | Self::Contention { .. } | Self::Timeout { .. }
        )
    }
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
