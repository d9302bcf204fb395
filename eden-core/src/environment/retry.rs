//! Retrying a write that lost to a concurrent writer: how often, and how long to pause.

use std::time::Duration;

use crate::cloud::{CloudError, codes};

/// Attempts at the endpoints compare-and-swap before giving up.
pub(super) const CAS_ATTEMPTS: u32 = 60;

/// Attempts at a DNS change batch that lost to another writer.
pub(super) const DNS_ATTEMPTS: u32 = 3;

/// A conditional put of the endpoints document lost: the document changed since it was read
/// (412), another write was in progress (409), or it was deleted since (an `If-Match` on a key
/// that does not exist answers 404 `NoSuchKey`). Reading it again and retrying is right.
pub(super) fn is_precondition(e: &CloudError) -> bool {
    e.is(&[
        codes::PRECONDITION_FAILED,
        "ConditionalRequestConflict",
        "NoSuchKey",
    ]) || e.message.contains("412")
}

/// A short random pause before retry `attempt` (up to 21 ms), so racing writers spread out.
pub(super) async fn jitter(attempt: u32) {
    let max = 2 * u64::from(attempt.min(10)) + 1;
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=max))).await;
}
