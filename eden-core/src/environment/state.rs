//! The environment's state item: its status and record, the lease in it (taken, waited for,
//! refused, broken), and reading it.

use std::fmt;
use std::time::Duration;

use crate::cloud::{AttrValue, Item, ItemUpdate, schema};
use crate::error::{Error, Result, Step};
use crate::lease::{self, LeaseInfo, Refused};
use crate::names::EnvironmentName;
use crate::outcome::ResourceKind;

use super::Environment;
use super::journal::Undo;
use super::progress::Progress;
use super::run::Run;

/// State item attributes beyond the key, `kind`, `last_updated` and the lease's.
pub(super) mod attr {
    pub(in crate::environment) const ENDPOINT: &str = "endpoint";
    pub(in crate::environment) const TARGET_GROUP: &str = "target_group_arn";
    pub(in crate::environment) const RULE: &str = "rule_arn";
    pub(in crate::environment) const SERVICE: &str = "service_arn";
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

/// Drops lease attributes from a state item being restored.
pub(super) fn without_lease(mut item: Item) -> Item {
    for k in [
        lease::LEASE_HOLDER,
        lease::LEASE_UNTIL,
        lease::LEASE_OPERATION,
    ] {
        item.remove(k);
    }
    item
}

impl Environment {
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

impl Environment {
    pub(super) fn lease_update(&self, run: &Run<'_>, status: &str) -> ItemUpdate {
        ItemUpdate::default()
            .set(lease::STATUS, AttrValue::S(status.into()))
            .set(lease::RUN, AttrValue::S(run.run.to_string()))
            .set(schema::KIND, AttrValue::S("environment".into()))
            .set_if_absent(schema::LAST_UPDATED, AttrValue::N(run.now.to_string()))
    }

    /// Takes the lease, waiting for another holder up to the lease options' `wait`.
    pub(super) async fn wait_lease(
        &self,
        run: &Run<'_>,
        update: &ItemUpdate,
    ) -> Result<Option<Item>> {
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

    pub(super) fn refused(&self, run: &Run<'_>, refused: Refused) -> Error {
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

    pub(super) async fn read_state(&self, run: &Run<'_>) -> Result<Option<Item>> {
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
