//! One create or delete run: its names, its owner and run id, its lease, its journal of
//! writes and the report of what it did.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use crate::cloud::Tag;
use crate::error::Result;
use crate::lease::Lease;
use crate::names::{EnvironmentName, EnvironmentNames};
use crate::outcome::{Action, Outcome, ResourceChange, ResourceKind};
use crate::ownership::{Owner, RunId};
use crate::profile::Profile;

use super::Environment;
use super::decide;
use super::journal::Undo;
use super::progress::{Progress, ProgressFn};

/// Shared state of one create or delete run.
pub(super) struct Run<'a> {
    pub(super) profile: &'a Profile,
    pub(super) names: EnvironmentNames,
    /// This environment, as the creator of what this run creates.
    pub(super) owner: Owner,
    pub(super) run: RunId,
    pub(super) lease: Lease,
    pub(super) now: i64,
    pub(super) journal: Mutex<Vec<Undo>>,
    pub(super) changes: Mutex<Vec<ResourceChange>>,
    pub(super) progress: Option<ProgressFn>,
    /// Delete: something was deleted (the state item then stays, `deleting`).
    pub(super) destroyed: AtomicBool,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Run<'_> {
    pub(super) fn record(
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

    pub(super) fn waiting(&self, what: impl Into<String>, status: impl Into<String>) {
        if let Some(progress) = &self.progress {
            progress(&Progress::Waiting {
                what: what.into(),
                status: status.into(),
            });
        }
    }

    pub(super) fn journal(&self, undo: Undo) {
        lock(&self.journal).push(undo);
    }

    /// Replaces the journal entry `from` (by its target group ARN) with `to`, or drops it.
    pub(super) fn rejournal_target_group(&self, arn: &str, to: Option<Undo>) {
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

    pub(super) fn take_journal(&self) -> Vec<Undo> {
        std::mem::take(&mut *lock(&self.journal))
    }

    pub(super) fn outcome(&self, host: Option<String>, dry_run: bool) -> Outcome {
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

    pub(super) fn state_id(&self, table: &str) -> String {
        format!("{table}/{}/{}", self.profile.name, self.names.env)
    }

    pub(super) fn doc_id(&self) -> String {
        format!(
            "s3://{}/{}",
            self.profile.endpoint_s3_bucket_name, self.profile.endpoint_s3_key
        )
    }

    pub(super) fn entry_id(&self) -> String {
        format!(
            "{}.{}",
            self.names.endpoint_entry, self.profile.endpoint_update_key
        )
    }

    pub(super) fn created_at(&self) -> String {
        chrono::DateTime::from_timestamp(self.now, 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    }

    pub(super) fn tags(&self) -> Vec<Tag> {
        self.owner.tags(&self.created_at())
    }
}

pub(super) fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Environment {
    pub(super) fn run<'a>(
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
    pub(super) fn validate(&self, profile: &Profile, name: &str) -> Result<EnvironmentNames> {
        let env = EnvironmentName::new(name)?;
        let names = EnvironmentNames::derive(profile, &env)?;
        decide::reference_names(profile, &names)?;
        decide::region(self.cloud.region.as_deref(), profile)?;
        Ok(names)
    }
}
