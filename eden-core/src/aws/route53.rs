//! [`DnsApi`] on `aws-sdk-route53`.

use async_trait::async_trait;
use aws_types::SdkConfig;

use super::error::{build_error, map_sdk_error};
use super::non_empty;
use crate::cloud::{
    AliasTarget, ChangeAction, CloudError, CloudResult, DnsApi, DnsRecord, RecordChange,
};

/// [`DnsApi`] on `aws-sdk-route53`.
#[derive(Debug, Clone)]
pub struct AwsDns {
    client: aws_sdk_route53::Client,
}

impl AwsDns {
    /// A client from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_route53::Client::new(config),
        }
    }

    /// Wraps an existing client.
    pub fn from_client(client: aws_sdk_route53::Client) -> Self {
        Self { client }
    }

    fn change(
        action: ChangeAction,
        record: &DnsRecord,
    ) -> CloudResult<aws_sdk_route53::types::Change> {
        use aws_sdk_route53::types as t;
        let alias = match &record.alias {
            Some(a) => Some(
                t::AliasTarget::builder()
                    .dns_name(&a.dns_name)
                    .hosted_zone_id(&a.hosted_zone_id)
                    .evaluate_target_health(a.evaluate_target_health)
                    .build()
                    .map_err(build_error)?,
            ),
            None => None,
        };
        let values = record
            .values
            .iter()
            .map(|v| {
                t::ResourceRecord::builder()
                    .value(v)
                    .build()
                    .map_err(build_error)
            })
            .collect::<CloudResult<Vec<_>>>()?;
        let set = t::ResourceRecordSet::builder()
            .name(&record.name)
            .r#type(t::RrType::from(record.record_type.as_str()))
            .set_alias_target(alias)
            .set_ttl(record.ttl)
            .set_resource_records(non_empty(values))
            .build()
            .map_err(build_error)?;
        t::Change::builder()
            .action(match action {
                ChangeAction::Create => t::ChangeAction::Create,
                ChangeAction::Upsert => t::ChangeAction::Upsert,
                ChangeAction::Delete => t::ChangeAction::Delete,
            })
            .resource_record_set(set)
            .build()
            .map_err(build_error)
    }
}

/// Route 53 answers names with a trailing dot and escapes some characters; eden's names are
/// plain lowercase labels.
fn dns_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[async_trait]
impl DnsApi for AwsDns {
    async fn hosted_zone_name(&self, zone_id: &str) -> CloudResult<String> {
        let out = self
            .client
            .get_hosted_zone()
            .id(zone_id)
            .send()
            .await
            .map_err(map_sdk_error)?;
        out.hosted_zone()
            .map(|z| dns_name(z.name()))
            .ok_or_else(|| CloudError::new("NoSuchHostedZone", zone_id))
    }

    async fn find_record(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> CloudResult<Option<DnsRecord>> {
        let out = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            // Route 53 stores names lowercase; a listing from a name in capitals would start
            // after it.
            .start_record_name(dns_name(name))
            .start_record_type(aws_sdk_route53::types::RrType::from(record_type))
            .max_items(1)
            .send()
            .await
            .map_err(map_sdk_error)?;
        // The listing starts at the name, so the first set may be the next one in the zone.
        let want = dns_name(name);
        Ok(out
            .resource_record_sets()
            .iter()
            .find(|s| dns_name(s.name()) == want && s.r#type().as_str() == record_type)
            .map(|s| DnsRecord {
                name: dns_name(s.name()),
                record_type: s.r#type().as_str().to_owned(),
                alias: s.alias_target().map(|a| AliasTarget {
                    dns_name: a.dns_name().to_owned(),
                    hosted_zone_id: a.hosted_zone_id().to_owned(),
                    evaluate_target_health: a.evaluate_target_health(),
                }),
                ttl: s.ttl(),
                values: s
                    .resource_records()
                    .iter()
                    .map(|r| r.value().to_owned())
                    .collect(),
            }))
    }

    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<()> {
        let changes = changes
            .iter()
            .map(|c| Self::change(c.action, &c.record))
            .collect::<CloudResult<Vec<_>>>()?;
        let batch = aws_sdk_route53::types::ChangeBatch::builder()
            .set_changes(Some(changes))
            .build()
            .map_err(build_error)?;
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(map_sdk_error)?;
        Ok(())
    }
}
