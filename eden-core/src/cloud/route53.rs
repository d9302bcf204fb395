//! Amazon Route 53: the environment's alias record and its ownership TXT record ([`DnsApi`]).

use async_trait::async_trait;

use super::CloudResult;

/// An alias target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AliasTarget {
    /// Target DNS name.
    pub dns_name: String,
    /// Target's hosted zone id.
    pub hosted_zone_id: String,
    /// Evaluate target health.
    pub evaluate_target_health: bool,
}

/// A DNS record set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsRecord {
    /// Name, lowercase, without the trailing dot.
    pub name: String,
    /// Type (`A`, `CNAME`...).
    pub record_type: String,
    /// Alias target, for alias records.
    pub alias: Option<AliasTarget>,
    /// TTL, for plain records.
    pub ttl: Option<i64>,
    /// Values, for plain records.
    pub values: Vec<String>,
}

/// What to do with a record in a change batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    /// Create it; the batch fails when it exists.
    Create,
    /// Create or replace it.
    Upsert,
    /// Delete it; the batch fails unless it exists exactly as given.
    Delete,
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordChange {
    /// The action.
    pub action: ChangeAction,
    /// The record.
    pub record: DnsRecord,
}

impl RecordChange {
    /// A change.
    pub fn new(action: ChangeAction, record: DnsRecord) -> Self {
        Self { action, record }
    }
}

/// Amazon Route 53.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait DnsApi: Send + Sync {
    /// The hosted zone's name (without trailing dot).
    async fn hosted_zone_name(&self, zone_id: &str) -> CloudResult<String>;
    /// Looks up exactly one record by name and type (`StartRecordName`/`StartRecordType`,
    /// checking what comes back); `None` when absent.
    async fn find_record(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> CloudResult<Option<DnsRecord>>;
    /// Applies a batch of changes atomically: all of them, or none
    /// (`InvalidChangeBatch` when one does not apply).
    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<()>;
    /// Creates or replaces a record.
    async fn upsert_record(&self, zone_id: &str, record: &DnsRecord) -> CloudResult<()> {
        self.change_records(
            zone_id,
            &[RecordChange::new(ChangeAction::Upsert, record.clone())],
        )
        .await
    }
    /// Deletes a record (it must match exactly, as Route 53 requires).
    async fn delete_record(&self, zone_id: &str, record: &DnsRecord) -> CloudResult<()> {
        self.change_records(
            zone_id,
            &[RecordChange::new(ChangeAction::Delete, record.clone())],
        )
        .await
    }
}
