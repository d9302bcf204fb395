//! [`DnsApi`] in memory: hosted zones and change batches that apply all or nothing.

use async_trait::async_trait;

use super::{MemoryCloud, err};
use crate::cloud::{ChangeAction, CloudError, CloudResult, DnsApi, DnsRecord, RecordChange, codes};

fn record_key(name: &str, record_type: &str) -> (String, String) {
    (
        name.trim_end_matches('.').to_ascii_lowercase(),
        record_type.to_owned(),
    )
}

#[async_trait]
impl DnsApi for MemoryCloud {
    async fn hosted_zone_name(&self, zone_id: &str) -> CloudResult<String> {
        let w = self.lock();
        w.zones.get(zone_id).map(|(n, _)| n.clone()).ok_or_else(|| {
            CloudError::new(
                "NoSuchHostedZone",
                format!("No hosted zone found with ID: {zone_id}"),
            )
        })
    }

    async fn find_record(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> CloudResult<Option<DnsRecord>> {
        let w = self.lock();
        let Some((_, records)) = w.zones.get(zone_id) else {
            return err(
                "NoSuchHostedZone",
                format!("No hosted zone found with ID: {zone_id}"),
            );
        };
        Ok(records.get(&record_key(name, record_type)).cloned())
    }

    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<()> {
        let mut w = self.lock();
        let Some((zone, records)) = w.zones.get_mut(zone_id) else {
            return err(
                "NoSuchHostedZone",
                format!("No hosted zone found with ID: {zone_id}"),
            );
        };
        // All or nothing: apply to a copy, keep it only when every change applied.
        let mut next = records.clone();
        for change in changes {
            let record = &change.record;
            let key = record_key(&record.name, &record.record_type);
            if !(key.0 == *zone || key.0.ends_with(&format!(".{zone}"))) {
                return err(
                    codes::INVALID_CHANGE_BATCH,
                    format!(
                        "RRSet with DNS name {} is not permitted in zone {zone}",
                        key.0
                    ),
                );
            }
            if record.record_type == "TXT"
                && record
                    .values
                    .iter()
                    .any(|v| v.len() > 255 + 2 || !v.starts_with('"'))
            {
                return err(
                    "InvalidChangeBatch",
                    "Invalid Resource Record: FATAL problem: TXT value must be quoted and at most 255 characters",
                );
            }
            match change.action {
                ChangeAction::Create | ChangeAction::Upsert => {
                    if change.action == ChangeAction::Create && next.contains_key(&key) {
                        return err(
                            codes::INVALID_CHANGE_BATCH,
                            format!(
                                "Tried to create resource record set [name='{}.', type='{}'] but it already exists",
                                key.0, key.1
                            ),
                        );
                    }
                    let mut stored = record.clone();
                    stored.name = key.0.clone();
                    next.insert(key, stored);
                }
                ChangeAction::Delete => match next.get(&key) {
                    Some(r)
                        if r.alias == record.alias
                            && r.values == record.values
                            && (r.alias.is_some() || r.ttl == record.ttl) =>
                    {
                        next.remove(&key);
                    }
                    Some(_) => {
                        return err(
                            codes::INVALID_CHANGE_BATCH,
                            format!(
                                "Tried to delete resource record set [name='{}.', type='{}'] but the values provided do not match the current values",
                                key.0, key.1
                            ),
                        );
                    }
                    None => {
                        return err(
                            codes::INVALID_CHANGE_BATCH,
                            format!(
                                "Tried to delete resource record set [name='{}.', type='{}'] but it was not found",
                                key.0, key.1
                            ),
                        );
                    }
                },
            }
        }
        *records = next;
        Ok(())
    }
}
