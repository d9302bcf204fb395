//! Reads shared by create, delete and their plans: the endpoints document, DNS records, the
//! HTTPS listener, the zone, listener rules, owner tags, task definition revisions.

use std::collections::BTreeMap;

use crate::cloud::{
    DnsRecord, Listener, Page, Rule, StoredDocument, Tag, TargetGroup, TaskDefinition,
};
use crate::endpoints::EndpointsDocument;
use crate::error::{Error, Result, Step};
use crate::profile::Profile;

use super::Environment;
use super::decide;
use super::fan_out::{FAN_OUT, join_all};
use super::run::Run;

impl Environment {
    pub(super) async fn read_document(&self, run: &Run<'_>) -> Result<Option<StoredDocument>> {
        let p = run.profile;
        self.cloud
            .documents
            .get(&p.endpoint_s3_bucket_name, &p.endpoint_s3_key)
            .await
            .map_err(|e| Error::cloud(Step::Endpoints, run.doc_id(), e))
    }

    pub(super) fn parse_document(
        &self,
        run: &Run<'_>,
        document: Option<&StoredDocument>,
    ) -> Result<EndpointsDocument> {
        EndpointsDocument::parse(document.map(|d| d.bytes.as_slice())).map_err(|source| {
            Error::Document {
                resource: run.doc_id(),
                source,
            }
        })
    }

    pub(super) async fn find_record(
        &self,
        p: &Profile,
        host: &str,
        kind: &str,
    ) -> Result<Option<DnsRecord>> {
        self.cloud
            .dns
            .find_record(&p.dynamic_zone_id, host, kind)
            .await
            .map_err(|e| Error::cloud(Step::Dns, format!("{host} {kind}"), e))
    }

    pub(super) async fn https_listener(&self, alb_arn: &str) -> Result<Listener> {
        let listeners = self
            .cloud
            .elb
            .describe_listeners(alb_arn)
            .await
            .map_err(|e| Error::cloud(Step::ReadLoadBalancer, alb_arn, e))?;
        listeners
            .into_iter()
            .find(|l| l.protocol == "HTTPS" && l.port == 443)
            .ok_or_else(|| Error::Conflict {
                step: Step::ReadLoadBalancer,
                resource: alb_arn.to_owned(),
                message: "the load balancer has no HTTPS:443 listener".into(),
            })
    }

    pub(super) async fn zone_name(&self, p: &Profile) -> Result<String> {
        self.cloud
            .dns
            .hosted_zone_name(&p.dynamic_zone_id)
            .await
            .map_err(|e| Error::cloud(Step::ReadZone, &p.dynamic_zone_id, e))
    }

    pub(super) async fn all_rules(&self, listener: &str) -> Result<Vec<Rule>> {
        let mut rules = Vec::new();
        let mut marker = None;
        loop {
            let page: Page<Rule> = self
                .cloud
                .elb
                .describe_rules(listener, marker)
                .await
                .map_err(|e| Error::cloud(Step::ListenerRule, listener, e))?;
            rules.extend(page.items);
            match page.next {
                Some(next) => marker = Some(next),
                None => return Ok(rules),
            }
        }
    }

    pub(super) async fn rule_tags(&self, arns: &[String]) -> Result<BTreeMap<String, Vec<Tag>>> {
        let mut out = BTreeMap::new();
        for chunk in arns.chunks(20) {
            let tags = self
                .cloud
                .elb
                .describe_tags(chunk)
                .await
                .map_err(|e| Error::cloud(Step::ListenerRule, chunk.join(", "), e))?;
            out.extend(tags);
        }
        Ok(out)
    }

    pub(super) async fn group_tags(&self, arn: &str) -> Result<Vec<Tag>> {
        let mut tags = self
            .cloud
            .elb
            .describe_tags(&[arn.to_owned()])
            .await
            .map_err(|e| Error::cloud(Step::TargetGroup, arn, e))?;
        Ok(tags.remove(arn).unwrap_or_default())
    }

    pub(super) async fn check_group_owner(&self, run: &Run<'_>, tg: &TargetGroup) -> Result<()> {
        let tags = self.group_tags(&tg.arn).await?;
        decide::target_group(tg, &tags, &run.owner)
    }

    /// Every revision, described with its tags (a bounded number at a time).
    pub(super) async fn describe_revisions(&self, arns: &[String]) -> Result<Vec<TaskDefinition>> {
        let mut out = Vec::with_capacity(arns.len());
        for chunk in arns.chunks(FAN_OUT) {
            let described = join_all(chunk.iter().map(|arn| async move {
                (arn, self.cloud.ecs.describe_task_definition(arn).await)
            }))
            .await;
            for (arn, r) in described {
                match r {
                    Ok(td) => out.push(td),
                    // Deleted meanwhile.
                    Err(e) if e.is_not_found() || e.message.contains("Unable to describe") => {}
                    Err(e) => return Err(Error::cloud(Step::TaskDefinition, arn, e)),
                }
            }
        }
        Ok(out)
    }
}
