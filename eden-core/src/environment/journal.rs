//! The journal: every write a run makes, with how to undo it. A failed run undoes it in
//! reverse order (`rollback.rs`); what existed before the run is never in it.

use crate::cloud::{DnsRecord, Item};

/// A write this run made, and how to undo it.
#[derive(Debug, Clone)]
pub(super) enum Undo {
    /// The lease was taken; the state item was `old` before.
    State {
        old: Option<Item>,
    },
    /// CreateTargetGroup answered this group; whether this run created it is not known yet
    /// (AWS answers an existing group with the same settings).
    TargetGroupUnverified(String),
    TargetGroup(String),
    TaskDefinition(String),
    Rule(String),
    ServiceCreated {
        cluster: String,
        name: String,
    },
    ServiceUpdated {
        cluster: String,
        name: String,
        previous: String,
    },
    DnsCreated(Vec<DnsRecord>),
    DnsUpdated(DnsRecord),
    EndpointKey {
        previous: Option<String>,
    },
}
