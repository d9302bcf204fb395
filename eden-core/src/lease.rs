//! Leases: at most one create or delete per environment at a time.
//!
//! A lease is an item `type = "_lease"`, `name = "<profile>/<environment>"` in the state table,
//! written with a condition (no live lease under that key), so two runs cannot both hold it.
//! It carries an expiry: a run that crashed without releasing blocks others only until then.
//! [`GuardedEnvironment`] wraps [`Environment::create`] and [`Environment::delete`] in a lease;
//! the second caller gets [`LeaseError::Busy`] (409 in the HTTP API).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use eden_core::lease::{Lease, LeaseError};
//! use eden_core::memory::{MemoryCloud, MemoryOptions};
//! use eden_core::Profile;
//!
//! let memory = MemoryCloud::with_reference(&Profile::example(), MemoryOptions::default());
//! let state = memory.cloud().state;
//! let ttl = Duration::from_secs(600);
//! let held = Lease::acquire(state.clone(), "eden", "default", "feature-1", "create", ttl).await?;
//! let second = Lease::acquire(state.clone(), "eden", "default", "feature-1", "delete", ttl).await;
//! assert!(matches!(second, Err(LeaseError::Busy { .. })));
//! held.release().await?;
//! Lease::acquire(state, "eden", "default", "feature-1", "delete", ttl).await?.release().await?;
//! # Ok::<(), LeaseError>(())
//! # }).unwrap();
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::api::{AttrValue, Cloud, CloudError, Item, ItemCondition, StateStore, codes, schema};
use crate::environment::{CreateOptions, DeleteOptions, Environment, Outcome};
use crate::image::ImageRef;
use crate::names::EnvironmentName;
use crate::profile::Profile;

/// Hash key of lease items.
pub const LEASE_TYPE: &str = "_lease";
/// Default lease duration: longer than any create (the Lambda limit is 15 minutes).
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

const OWNER: &str = "owner";
const EXPIRES_AT: &str = "expires_at";
const OPERATION: &str = "operation";

/// Why a lease could not be taken or released.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LeaseError {
    /// Another run holds the environment.
    #[error(
        "environment {environment} of profile {profile} is busy: a {operation} started elsewhere \
         holds it until {expires_at} (epoch seconds); retry when it is done"
    )]
    Busy {
        /// Profile.
        profile: String,
        /// Environment name.
        environment: String,
        /// The holder's operation (`create`, `delete`).
        operation: String,
        /// When the holder's lease expires, epoch seconds.
        expires_at: i64,
    },
    /// The state table failed.
    #[error("lease on environment {environment} of profile {profile} in table {table}: {source}")]
    Store {
        /// Profile.
        profile: String,
        /// Environment name.
        environment: String,
        /// State table.
        table: String,
        /// The store's error.
        source: CloudError,
    },
}

/// A held lease; release it with [`Lease::release`] (it also expires on its own).
#[derive(Clone)]
pub struct Lease {
    state: Arc<dyn StateStore>,
    table: String,
    profile: String,
    environment: String,
    token: String,
    expires_at: i64,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("table", &self.table)
            .field("profile", &self.profile)
            .field("environment", &self.environment)
            .field("token", &self.token)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Lease {
    /// Takes the lease on `profile/environment` for `ttl`, creating the table when missing;
    /// [`LeaseError::Busy`] while another live lease holds it.
    pub async fn acquire(
        state: Arc<dyn StateStore>,
        table: &str,
        profile: &str,
        environment: &str,
        operation: &str,
        ttl: Duration,
    ) -> Result<Self, LeaseError> {
        Self::acquire_at(
            state,
            table,
            profile,
            environment,
            operation,
            ttl,
            now_epoch(),
        )
        .await
    }

    /// [`Lease::acquire`] with "now" given in epoch seconds (for tests of expiry).
    pub async fn acquire_at(
        state: Arc<dyn StateStore>,
        table: &str,
        profile: &str,
        environment: &str,
        operation: &str,
        ttl: Duration,
        now: i64,
    ) -> Result<Self, LeaseError> {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let lease = Self {
            state,
            table: table.to_owned(),
            profile: profile.to_owned(),
            environment: environment.to_owned(),
            token: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
            expires_at: now.saturating_add(ttl.max(1)),
        };
        let item = Item::from([
            (schema::HASH_KEY.into(), AttrValue::S(LEASE_TYPE.into())),
            (schema::RANGE_KEY.into(), AttrValue::S(lease.key())),
            (OWNER.into(), AttrValue::S(lease.token.clone())),
            (OPERATION.into(), AttrValue::S(operation.to_owned())),
            (
                EXPIRES_AT.into(),
                AttrValue::N(lease.expires_at.to_string()),
            ),
        ]);
        // Free when absent or expired (expires_at < now).
        let condition = ItemCondition::AbsentOrBelow {
            attribute: EXPIRES_AT.into(),
            value: now,
        };
        let mut created_table = false;
        loop {
            match lease
                .state
                .put_item_when(table, item.clone(), &condition)
                .await
            {
                Ok(_) => return Ok(lease),
                Err(e) if e.is(&[codes::CONDITIONAL_CHECK_FAILED]) => {
                    return Err(lease.busy().await);
                }
                Err(e) if e.is_not_found() && !created_table => {
                    lease
                        .state
                        .ensure_table(table)
                        .await
                        .map_err(|e| lease.store_error(e))?;
                    created_table = true;
                }
                Err(e) => return Err(lease.store_error(e)),
            }
        }
    }

    /// The state table key (`name`) of the lease item.
    pub fn key(&self) -> String {
        format!("{}/{}", self.profile, self.environment)
    }

    /// This holder's token (stored as `owner`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// When the lease expires, epoch seconds.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// Releases the lease; false when it was no longer ours (it expired and was taken over).
    pub async fn release(self) -> Result<bool, LeaseError> {
        let condition = ItemCondition::Equals {
            attribute: OWNER.into(),
            value: self.token.clone(),
        };
        match self
            .state
            .delete_item_when(&self.table, LEASE_TYPE, &self.key(), &condition)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is(&[codes::CONDITIONAL_CHECK_FAILED]) || e.is_not_found() => Ok(false),
            Err(e) => Err(self.store_error(e)),
        }
    }

    /// The error for a lost race, with the holder's details when they can be read.
    async fn busy(&self) -> LeaseError {
        let holder = self
            .state
            .get_item(&self.table, LEASE_TYPE, &self.key())
            .await
            .ok()
            .flatten();
        let get = |k: &str| holder.as_ref().and_then(|i| i.get(k)).cloned();
        LeaseError::Busy {
            profile: self.profile.clone(),
            environment: self.environment.clone(),
            operation: get(OPERATION)
                .and_then(|v| v.as_s().map(str::to_owned))
                .unwrap_or_else(|| "operation".into()),
            expires_at: get(EXPIRES_AT).and_then(|v| v.as_i64()).unwrap_or(0),
        }
    }

    fn store_error(&self, source: CloudError) -> LeaseError {
        LeaseError::Store {
            profile: self.profile.clone(),
            environment: self.environment.clone(),
            table: self.table.clone(),
            source,
        }
    }
}

/// A failed guarded operation: the lease, or the operation itself.
#[derive(Debug, thiserror::Error)]
pub enum GuardedError {
    /// The environment is busy, or the lease could not be written.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// The create or delete failed.
    #[error(transparent)]
    Environment(#[from] crate::Error),
}

/// [`Environment`] whose create and delete hold the environment's [`Lease`] while they run.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use eden_core::environment::{CreateOptions, DeleteOptions};
/// use eden_core::lease::GuardedEnvironment;
/// use eden_core::memory::{MemoryCloud, MemoryOptions};
/// use eden_core::Profile;
///
/// let profile = Profile::example();
/// let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
/// let eden = GuardedEnvironment::new(memory.cloud());
/// let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";
/// let created = eden.create(&profile, "feature-1", image, &CreateOptions::default()).await?;
/// assert_eq!(created.host.as_deref(), Some("api-feature-1.dev.example.com"));
/// eden.delete(&profile, "feature-1", &DeleteOptions::default()).await?;
/// # Ok::<(), eden_core::lease::GuardedError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct GuardedEnvironment {
    environment: Environment,
    state: Arc<dyn StateStore>,
    ttl: Duration,
}

impl std::fmt::Debug for GuardedEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedEnvironment")
            .field("environment", &self.environment)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl GuardedEnvironment {
    /// Guarded environments on `cloud`, in the state table `eden`, leases of [`DEFAULT_TTL`].
    pub fn new(cloud: Cloud) -> Self {
        Self {
            state: cloud.state.clone(),
            environment: Environment::new(cloud),
            ttl: DEFAULT_TTL,
        }
    }

    /// Uses another state table (for environments and leases).
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.environment = self.environment.with_table(table);
        self
    }

    /// Leases last this long unless released.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The unguarded environment API (list, profiles, sweep...).
    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// [`Environment::create`] under the environment's lease. The name and image URI are
    /// checked before the lease is taken, so bad input never touches the state table.
    pub async fn create(
        &self,
        profile: &Profile,
        name: &str,
        image_uri: &str,
        options: &CreateOptions,
    ) -> Result<Outcome, GuardedError> {
        EnvironmentName::new(name).map_err(crate::Error::from)?;
        ImageRef::parse(image_uri).map_err(crate::Error::from)?;
        if options.dry_run {
            return Ok(self
                .environment
                .create(profile, name, image_uri, options)
                .await?);
        }
        let lease = self.lease(profile, name, "create").await?;
        let result = self
            .environment
            .create(profile, name, image_uri, options)
            .await;
        self.release(lease).await;
        Ok(result?)
    }

    /// [`Environment::delete`] under the environment's lease.
    pub async fn delete(
        &self,
        profile: &Profile,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Outcome, GuardedError> {
        EnvironmentName::new(name).map_err(crate::Error::from)?;
        if options.dry_run {
            return Ok(self.environment.delete(profile, name, options).await?);
        }
        let lease = self.lease(profile, name, "delete").await?;
        let result = self.environment.delete(profile, name, options).await;
        self.release(lease).await;
        Ok(result?)
    }

    async fn lease(&self, profile: &Profile, name: &str, op: &str) -> Result<Lease, LeaseError> {
        Lease::acquire(
            self.state.clone(),
            self.environment.table(),
            &profile.name,
            name,
            op,
            self.ttl,
        )
        .await
    }

    async fn release(&self, lease: Lease) {
        let key = lease.key();
        match lease.release().await {
            Ok(true) => {}
            // The operation's result stands; the lease expires on its own.
            Ok(false) => tracing::warn!(lease = %key, "lease expired before the operation ended"),
            Err(e) => tracing::warn!(lease = %key, error = %e, "could not release lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::api::{CloudResult, Page, WriteCondition};
    use crate::memory::{MemoryCloud, MemoryOptions};

    const TTL: Duration = Duration::from_secs(60);

    /// A store that uses the trait's default `put_item_when`/`delete_item_when`.
    struct Plain(Arc<MemoryCloud>);

    #[async_trait]
    impl StateStore for Plain {
        async fn ensure_table(&self, table: &str) -> CloudResult<bool> {
            self.0.ensure_table(table).await
        }
        async fn put_item(
            &self,
            table: &str,
            item: Item,
            condition: WriteCondition,
        ) -> CloudResult<Option<Item>> {
            self.0.put_item(table, item, condition).await
        }
        async fn get_item(&self, t: &str, h: &str, r: &str) -> CloudResult<Option<Item>> {
            self.0.get_item(t, h, r).await
        }
        async fn delete_item(
            &self,
            t: &str,
            h: &str,
            r: &str,
            c: WriteCondition,
        ) -> CloudResult<Option<Item>> {
            self.0.delete_item(t, h, r, c).await
        }
        async fn query(&self, t: &str, h: &str, n: Option<String>) -> CloudResult<Page<Item>> {
            self.0.query(t, h, n).await
        }
        async fn query_kind(
            &self,
            t: &str,
            k: &str,
            b: Option<i64>,
            n: Option<String>,
        ) -> CloudResult<Page<Item>> {
            self.0.query_kind(t, k, b, n).await
        }
        async fn scan(&self, t: &str, n: Option<String>) -> CloudResult<Page<Item>> {
            self.0.scan(t, n).await
        }
    }

    fn stores() -> Vec<Arc<dyn StateStore>> {
        let memory = Arc::new(MemoryCloud::new(MemoryOptions::default()));
        let plain = Arc::new(MemoryCloud::new(MemoryOptions::default()));
        vec![memory, Arc::new(Plain(plain))]
    }

    #[tokio::test]
    async fn busy_release_and_expiry() {
        for state in stores() {
            let a = Lease::acquire_at(state.clone(), "t", "p", "e", "create", TTL, 1000)
                .await
                .unwrap();
            let err = Lease::acquire_at(state.clone(), "t", "p", "e", "delete", TTL, 1059)
                .await
                .unwrap_err();
            match &err {
                LeaseError::Busy {
                    operation,
                    expires_at,
                    ..
                } => assert_eq!((operation.as_str(), *expires_at), ("create", 1060)),
                other => panic!("{other:?}"),
            }
            assert!(err.to_string().contains("busy"), "{err}");
            // Another environment is independent.
            Lease::acquire_at(state.clone(), "t", "p", "f", "create", TTL, 1000)
                .await
                .unwrap();
            // Expired: taken over; the old holder's release then does not free the new lease.
            let b = Lease::acquire_at(state.clone(), "t", "p", "e", "delete", TTL, 1061)
                .await
                .unwrap();
            assert!(!a.release().await.unwrap());
            assert!(
                Lease::acquire_at(state.clone(), "t", "p", "e", "x", TTL, 1062)
                    .await
                    .is_err()
            );
            assert!(b.release().await.unwrap());
            Lease::acquire_at(state.clone(), "t", "p", "e", "x", TTL, 1062)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn concurrent_guarded_operations_do_not_interleave() {
        let profile = Profile::example();
        let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
        // Latency makes the two runs overlap (the memory cloud alone never yields).
        let inst = crate::instrument::Instrumentation::new(Duration::from_millis(2));
        let eden = GuardedEnvironment::new(memory.cloud().instrumented(&inst));
        let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";
        let options = CreateOptions::default();
        let (a, b) = tokio::join!(
            eden.create(&profile, "same", image, &options),
            eden.create(&profile, "same", image, &options),
        );
        let busy = [&a, &b]
            .iter()
            .filter(|r| matches!(r, Err(GuardedError::Lease(LeaseError::Busy { .. }))))
            .count();
        assert_eq!(busy, 1, "{a:?} {b:?}");
        assert!(a.is_ok() || b.is_ok());
        // Released afterwards: the next operation runs.
        eden.delete(&profile, "same", &DeleteOptions::default())
            .await
            .unwrap();
        assert!(eden.environment().list(None).await.unwrap().is_empty());
        // Bad input is refused before any lease.
        let err = eden
            .create(&profile, "Bad_Name", image, &options)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            GuardedError::Environment(crate::Error::Name(_))
        ));
    }
}
