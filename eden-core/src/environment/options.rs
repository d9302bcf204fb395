//! The options of [`Environment::create`](super::Environment::create) and
//! [`Environment::delete`](super::Environment::delete).

use std::time::Duration;

/// Options of [`Environment::create`](crate::Environment::create).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CreateOptions {
    /// Only plan: read, and report what would be created, updated or left alone.
    pub dry_run: bool,
    /// Wait until the service is stable, at most this long, before publishing the DNS record
    /// and endpoints entry. A failed rollout fails the create (and rolls it back); a wait that
    /// runs out keeps the environment unpublished and says so ([`Error::Timeout`](crate::Error::Timeout) with the
    /// outcome).
    pub wait_stable: Option<Duration>,
    /// How long to wait for a DRAINING service of the same name to become INACTIVE
    /// (default 10 minutes).
    pub draining_timeout: Option<Duration>,
    /// "Now" in epoch seconds (for tests); the clock by default.
    pub now: Option<i64>,
    /// Create the environment without the parts of the reference service a preview must not
    /// copy (service registries, Service Connect services, other load balancers, a
    /// non-ECS deployment controller...), instead of refusing with
    /// [`Error::ReferenceNotCopyable`](crate::Error::ReferenceNotCopyable). The service's outcome note names what was left out.
    pub leave_out_uncopyable: bool,
}

impl CreateOptions {
    /// Only plan.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Wait until the service is stable, at most `timeout`, before publishing.
    pub fn wait_stable(mut self, timeout: Duration) -> Self {
        self.wait_stable = Some(timeout);
        self
    }

    /// Wait at most `timeout` for a DRAINING service of the same name.
    pub fn draining_timeout(mut self, timeout: Duration) -> Self {
        self.draining_timeout = Some(timeout);
        self
    }

    /// "Now", epoch seconds.
    pub fn now(mut self, now: i64) -> Self {
        self.now = Some(now);
        self
    }

    /// Leave out what cannot be copied from the reference instead of refusing.
    pub fn leave_out_uncopyable(mut self, leave_out: bool) -> Self {
        self.leave_out_uncopyable = leave_out;
        self
    }
}

/// Options of [`Environment::delete`](crate::Environment::delete).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DeleteOptions {
    /// Only plan.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Only plan.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}
