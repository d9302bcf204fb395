//! What create and delete report while they run ([`Environment::with_progress`](super::Environment::with_progress)).

use std::sync::Arc;

use crate::lease::LeaseInfo;
use crate::outcome::ResourceChange;

/// Something create or delete is doing, reported while it runs (see
/// [`Environment::with_progress`](crate::Environment::with_progress)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// A resource was created, changed, reused, deleted or checked (or would be, in a plan).
    Resource(ResourceChange),
    /// Waiting for something, with its latest state.
    Waiting {
        /// What for.
        what: String,
        /// Its state now.
        status: String,
    },
    /// Waiting for another run's lease on the environment.
    Lease(LeaseInfo),
}

pub(super) type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;
