//! What create, delete and their plans report: every resource, and what was (or would be)
//! done to it.

use std::fmt;

use crate::names::EnvironmentNames;

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
