//! Leases: at most one create or delete per environment at a time.
//!
//! The lease lives in the environment's state item (`type = <profile>`, `name = <environment>`):
//! [`Environment::create`](crate::Environment::create) and
//! [`Environment::delete`](crate::Environment::delete) take it with a conditional write as
//! their first step, so concurrent runs on one environment are safe by construction, not by a
//! wrapper a caller may forget.
//!
//! * A lease is short (15 s by default, [`LeaseOptions::ttl`]) and renewed by its holder every
//!   third of that while the run goes on, so a long wait for a stable service keeps it.
//! * A holder that stopped renewing (its process died) is taken over once the lease expired:
//!   a later create or delete waits at most [`LeaseOptions::wait`] for that, then finishes or
//!   undoes what the dead run left.
//! * A holder that finds its lease gone (taken over, or broken) stops at once, without
//!   rolling back, and fails with [`Error::LeaseLost`].
//! * [`Environment::break_lease`](crate::Environment::break_lease) removes a lease explicitly
//!   (logged); the holder then stops at its next renewal.
//!
//! Expiry compares the holder's clock (which wrote the expiry) with the taker's: keep clocks
//! in sync (NTP), and the lease longer than their skew.

use std::sync::Arc;
use std::time::Duration;

use crate::cloud::{AttrValue, CloudError, Item, ItemCondition, ItemUpdate, StateStore, codes};
use crate::error::{Error, Step};
use crate::ownership::RunId;

/// State item attribute: the run holding the lease.
pub const LEASE_HOLDER: &str = "lease_holder";
/// State item attribute: when the lease expires, epoch milliseconds.
pub const LEASE_UNTIL: &str = "lease_until";
/// State item attribute: the holder's operation (`create`, `delete`).
pub const LEASE_OPERATION: &str = "lease_operation";
/// State item attribute: the run of the latest create or delete.
pub const RUN: &str = "run";
/// State item attribute: `creating`, `ready` or `deleting`.
pub const STATUS: &str = "status";

/// How leases are taken and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseOptions {
    /// How long a lease lasts unless renewed (default 15 s). A dead holder blocks the
    /// environment this long at most.
    pub ttl: Duration,
    /// How long create and delete wait for another holder's lease to be released or to expire
    /// before failing with [`Error::Busy`] (default 20 s, longer than `ttl`, so an abandoned
    /// lease is taken over rather than reported).
    pub wait: Duration,
    /// How often a waiting run looks again (default 1 s; never later than the holder's expiry).
    pub poll: Duration,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(15),
            wait: Duration::from_secs(20),
            poll: Duration::from_secs(1),
        }
    }
}

impl LeaseOptions {
    /// Leases last `ttl` unless renewed.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Wait at most this long for a held lease (zero: fail with [`Error::Busy`] at once).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Look again this often while waiting.
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    pub(crate) fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// Renewals come every third of the lease.
    fn renew_every(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_millis(1))
    }
}

/// Who holds an environment's lease.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseInfo {
    /// Profile.
    pub profile: String,
    /// Environment name.
    pub environment: String,
    /// The holder's operation (`create`, `delete`).
    pub operation: String,
    /// The holder's run.
    pub run: String,
    /// When the lease expires unless renewed, epoch milliseconds.
    pub expires_at_ms: i64,
}

impl LeaseInfo {
    fn from_item(profile: &str, environment: &str, item: &Item) -> Option<Self> {
        let s = |k: &str| item.get(k).and_then(AttrValue::as_s).map(str::to_owned);
        Some(Self {
            profile: profile.to_owned(),
            environment: environment.to_owned(),
            operation: s(LEASE_OPERATION).unwrap_or_else(|| "operation".into()),
            run: s(LEASE_HOLDER)?,
            expires_at_ms: item.get(LEASE_UNTIL).and_then(AttrValue::as_i64)?,
        })
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// One environment's lease, as a run uses it.
#[derive(Clone)]
pub(crate) struct Lease {
    pub state: Arc<dyn StateStore>,
    pub table: String,
    pub profile: String,
    pub environment: String,
    pub run: RunId,
    pub operation: &'static str,
    pub options: LeaseOptions,
}

/// Why one attempt to take a lease failed.
pub(crate) enum Refused {
    /// Held by someone else.
    Held(LeaseInfo),
    /// The item exists but is not eden's (no run recorded).
    NotEden,
    /// It changed between the write and the read: try again.
    Retry,
    /// The store failed (the table is missing, throttled...).
    Store(CloudError),
}

impl Lease {
    fn holder_is(&self) -> ItemCondition {
        ItemCondition::All(vec![
            ItemCondition::equals(LEASE_HOLDER, self.run.as_str()),
            ItemCondition::Has(LEASE_UNTIL.into()),
        ])
    }

    /// The condition of a write that needs this lease.
    pub fn held(&self) -> ItemCondition {
        self.holder_is()
    }

    /// One attempt: the lease, with `update` applied to the state item in the same write;
    /// returns the item as it was.
    pub async fn try_acquire(&self, update: &ItemUpdate) -> Result<Option<Item>, Refused> {
        let now = now_ms();
        let update = update
            .clone()
            .set(LEASE_HOLDER, AttrValue::S(self.run.to_string()))
            .set(
                LEASE_UNTIL,
                AttrValue::N((now + self.options.ttl_ms()).to_string()),
            )
            .set(LEASE_OPERATION, AttrValue::S(self.operation.into()));
        // Free when there is no item, or an eden item whose lease is gone or expired.
        let free = ItemCondition::Any(vec![
            ItemCondition::Absent,
            ItemCondition::All(vec![
                ItemCondition::Has(RUN.into()),
                ItemCondition::Any(vec![
                    ItemCondition::Missing(LEASE_UNTIL.into()),
                    ItemCondition::below(LEASE_UNTIL, now),
                ]),
            ]),
        ]);
        let mut created_table = false;
        loop {
            match self
                .state
                .update_item_when(
                    &self.table,
                    &self.profile,
                    &self.environment,
                    &update,
                    &free,
                )
                .await
            {
                Ok(old) => return Ok(old),
                Err(e) if e.is(&[codes::CONDITIONAL_CHECK_FAILED]) => {
                    let current = self
                        .state
                        .get_item(&self.table, &self.profile, &self.environment)
                        .await
                        .map_err(Refused::Store)?;
                    return Err(match current {
                        Some(item) if !item.contains_key(RUN) => Refused::NotEden,
                        Some(item) => {
                            match LeaseInfo::from_item(&self.profile, &self.environment, &item) {
                                Some(info) if info.expires_at_ms >= now_ms() => Refused::Held(info),
                                // Released or expired meanwhile: the next attempt takes it.
                                _ => Refused::Retry,
                            }
                        }
                        None => Refused::Retry,
                    });
                }
                Err(e) if e.is_not_found() && !created_table => {
                    self.state
                        .ensure_table(&self.table)
                        .await
                        .map_err(Refused::Store)?;
                    created_table = true;
                }
                Err(e) => return Err(Refused::Store(e)),
            }
        }
    }

    /// Extends the lease; `Err(true)` when it is no longer ours.
    pub async fn renew(&self) -> Result<(), (bool, CloudError)> {
        let update = ItemUpdate::default().set(
            LEASE_UNTIL,
            AttrValue::N((now_ms() + self.options.ttl_ms()).to_string()),
        );
        self.state
            .update_item_when(
                &self.table,
                &self.profile,
                &self.environment,
                &update,
                &self.holder_is(),
            )
            .await
            .map(|_| ())
            .map_err(|e| (e.is(&[codes::CONDITIONAL_CHECK_FAILED]), e))
    }

    /// Renews the lease until it is lost; never returns while it is held. Run it beside the
    /// operation (`select!`): when it returns, the operation must stop.
    pub async fn keep(&self) -> Error {
        let mut valid_until = now_ms() + self.options.ttl_ms();
        loop {
            tokio::time::sleep(self.options.renew_every()).await;
            match self.renew().await {
                Ok(()) => valid_until = now_ms() + self.options.ttl_ms(),
                Err((true, _)) => {
                    tracing::error!(profile = %self.profile, env = %self.environment, run = %self.run, "lease lost: another run took the environment over, or the lease was broken");
                    return self.lost("it was taken over or broken");
                }
                Err((false, e)) => {
                    tracing::warn!(profile = %self.profile, env = %self.environment, error = %e, "could not renew the lease");
                    // Keep trying while the lease still runs; stop before it could be taken.
                    if now_ms() + i64::try_from(self.options.renew_every().as_millis()).unwrap_or(0)
                        >= valid_until
                    {
                        return self.lost(&format!("it could not be renewed: {e}"));
                    }
                }
            }
        }
    }

    pub fn lost(&self, why: &str) -> Error {
        Error::LeaseLost {
            profile: self.profile.clone(),
            environment: self.environment.clone(),
            run: self.run.to_string(),
            reason: why.to_owned(),
        }
    }

    /// The error for a lease held elsewhere after waiting.
    pub fn busy(&self, holder: LeaseInfo) -> Error {
        Error::Busy {
            profile: self.profile.clone(),
            environment: self.environment.clone(),
            operation: holder.operation,
            run: holder.run,
            expires_at_ms: holder.expires_at_ms,
        }
    }

    pub fn store_error(&self, e: CloudError) -> Error {
        Error::cloud(
            Step::Lease,
            format!("{}/{}/{}", self.table, self.profile, self.environment),
            e,
        )
    }
}

/// Removes the lease of `profile/environment`, whoever holds it (or only when `run` holds it);
/// returns the holder it removed, `None` when there was no lease.
pub(crate) async fn break_lease(
    state: &dyn StateStore,
    table: &str,
    profile: &str,
    environment: &str,
    run: Option<&str>,
) -> Result<Option<LeaseInfo>, CloudError> {
    let mut condition = vec![ItemCondition::Has(LEASE_UNTIL.into())];
    if let Some(run) = run {
        condition.push(ItemCondition::equals(LEASE_HOLDER, run));
    }
    let update = ItemUpdate::default()
        .remove(LEASE_HOLDER)
        .remove(LEASE_UNTIL)
        .remove(LEASE_OPERATION);
    match state
        .update_item_when(
            table,
            profile,
            environment,
            &update,
            &ItemCondition::All(condition),
        )
        .await
    {
        Ok(old) => {
            let info = old
                .as_ref()
                .and_then(|i| LeaseInfo::from_item(profile, environment, i));
            tracing::warn!(
                %profile,
                %environment,
                holder = ?info,
                "lease broken: its holder stops at its next renewal"
            );
            Ok(info)
        }
        Err(e) if e.is(&[codes::CONDITIONAL_CHECK_FAILED]) || e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The holder of `profile/environment`'s lease, if it is held and not expired.
pub(crate) async fn holder(
    state: &dyn StateStore,
    table: &str,
    profile: &str,
    environment: &str,
) -> Result<Option<LeaseInfo>, CloudError> {
    let item = match state.get_item(table, profile, environment).await {
        Ok(item) => item,
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    Ok(item
        .as_ref()
        .and_then(|i| LeaseInfo::from_item(profile, environment, i))
        .filter(|l| l.expires_at_ms >= now_ms()))
}
