//! The dry runs of create and delete: the same reads and the same decisions as the runs, no
//! writes.

use std::collections::BTreeMap;

use crate::cloud::TargetGroup;
use crate::endpoints::Edit;
use crate::error::{Error, Result, Step};
use crate::image::ImageRef;
use crate::lease::{self, Refused};
use crate::outcome::{Action, Outcome, ResourceKind};

use super::Environment;
use super::decide::{self, DnsPlan, GroupsFound, RulePlan, ServicePlan};
use super::options::CreateOptions;
use super::run::Run;

impl Environment {
    /// The dry run of create: the same reads and the same decisions, no writes.
    pub(super) async fn plan_create(
        &self,
        run: &Run<'_>,
        image: &ImageRef,
        image_uri: &str,
        options: &CreateOptions,
    ) -> Result<Outcome> {
        let c = &self.cloud;
        let p = run.profile;
        let (r, state) = tokio::try_join!(
            self.create_reads(run, image, image_uri, options),
            self.read_state(run)
        )?;
        if state.as_ref().is_some_and(|i| !i.contains_key(lease::RUN)) {
            return Err(self.refused(run, Refused::NotEden));
        }
        let host = r.host.clone();
        let ref_tg_arn = r.target.target_group_arn.clone().unwrap_or_default();
        let container = r.target.container_name.clone().unwrap_or_default();
        let (ref_td, rules, a, txt, group) = tokio::try_join!(
            async {
                c.ecs
                    .describe_task_definition(&r.reference.spec.task_definition)
                    .await
                    .map_err(|e| {
                        Error::cloud(Step::ReadReference, &r.reference.spec.task_definition, e)
                    })
            },
            self.all_rules(&r.https.arn),
            self.find_record(p, &host, "A"),
            self.find_record(p, &host, "TXT"),
            self.plan_group(run, &r.groups, &ref_tg_arn),
        )?;
        let wanted = decide::wanted_record(&host, &r.alb);
        let dns_plan = decide::dns(a.as_ref(), txt.as_ref(), &wanted, &run.owner)?;
        if !ref_td.containers.iter().any(|ct| ct.name == container) {
            return Err(Error::Conflict {
                step: Step::ReadReference,
                resource: ref_td.arn.clone(),
                message: format!(
                    "no container named {container:?} (the reference load balancer's container)"
                ),
            });
        }
        let routing: Vec<String> = decide::host_rules(&rules, &host)
            .iter()
            .map(|r| r.arn.clone())
            .collect();
        let tags = if routing.is_empty() {
            BTreeMap::new()
        } else {
            self.rule_tags(&routing).await?
        };
        let rule_plan = decide::rule(
            &rules,
            &host,
            group.as_ref().map(|tg| tg.arn.as_str()),
            &tags,
            &run.owner,
        )?;

        run.record(
            ResourceKind::TaskDefinition,
            &run.names.resource,
            Action::Created,
            Some(format!(
                "new revision from {}",
                r.reference.spec.task_definition
            )),
        );
        match &group {
            Some(tg) => run.record(ResourceKind::TargetGroup, &tg.arn, Action::Reused, None),
            None => run.record(
                ResourceKind::TargetGroup,
                &run.names.target_group,
                Action::Created,
                None,
            ),
        }
        match rule_plan {
            RulePlan::Reuse(rule) => run.record(
                ResourceKind::ListenerRule,
                &rule.arn,
                Action::Reused,
                rule.priority.map(|p| format!("priority {p}")),
            ),
            RulePlan::Create { priority } => run.record(
                ResourceKind::ListenerRule,
                &host,
                Action::Created,
                priority.map(|p| format!("priority {p}")),
            ),
        }
        let left_out =
            (!r.left_out.is_empty()).then(|| format!("left out: {}", r.left_out.join("; ")));
        match &r.service_plan {
            ServicePlan::Update { .. } => run.record(
                ResourceKind::Service,
                &run.names.resource,
                Action::Updated,
                None,
            ),
            ServicePlan::CreateAfterDraining => run.record(
                ResourceKind::Service,
                &run.names.resource,
                Action::Created,
                Some("after the DRAINING service of the same name is INACTIVE".into()),
            ),
            ServicePlan::Create => run.record(
                ResourceKind::Service,
                &run.names.resource,
                Action::Created,
                left_out,
            ),
        }
        run.record(
            ResourceKind::DnsRecord,
            format!("{host} A"),
            match dns_plan {
                DnsPlan::Create { .. } => Action::Created,
                DnsPlan::Update { .. } => Action::Updated,
                DnsPlan::Reuse => Action::Reused,
            },
            None,
        );
        let doc = self.parse_document(run, r.document.as_ref())?;
        let (_, edit, _) =
            decide::endpoint_upsert(&doc, p, &run.names.endpoint_entry, &host, &run.owner)?;
        run.record(
            ResourceKind::EndpointsEntry,
            run.entry_id(),
            match edit {
                Edit::AddedEntry | Edit::AddedKey => Action::Created,
                Edit::Updated => Action::Updated,
                _ => Action::Reused,
            },
            None,
        );
        run.record(
            ResourceKind::StateItem,
            run.state_id(&self.table),
            if state.is_some() {
                Action::Updated
            } else {
                Action::Created
            },
            None,
        );
        Ok(run.outcome(Some(host), true))
    }

    /// The environment's target group as the plan sees it: `Some` when it exists (and is
    /// ours), `None` when create would make it.
    pub(super) async fn plan_group(
        &self,
        run: &Run<'_>,
        groups: &GroupsFound,
        reference_arn: &str,
    ) -> Result<Option<TargetGroup>> {
        let existing = match &groups.environment {
            Some(tg) => Some(tg.clone()),
            None if groups.complete => None,
            None => self
                .cloud
                .elb
                .describe_target_group_by_name(&run.names.target_group)
                .await
                .map_err(|e| Error::cloud(Step::TargetGroup, &run.names.target_group, e))?,
        };
        match existing {
            Some(tg) => {
                self.check_group_owner(run, &tg).await?;
                Ok(Some(tg))
            }
            None if groups.complete && groups.reference.is_none() => Err(Error::Conflict {
                step: Step::ReadReference,
                resource: reference_arn.to_owned(),
                message: "the reference target group does not exist".into(),
            }),
            None => Ok(None),
        }
    }

    /// The dry run of delete: the same reads and decisions.
    pub(super) async fn plan_delete(&self, run: &Run<'_>) -> Result<Outcome> {
        let (first, old) = tokio::try_join!(self.delete_first(run), self.read_state(run))?;
        if old.as_ref().is_some_and(|i| !i.contains_key(lease::RUN)) {
            return Err(self.refused(run, Refused::NotEden));
        }
        let reads = self.delete_inspect(run, first, old).await?;
        let doc = self.parse_document(run, reads.document.as_ref())?;
        let (_, edit) =
            decide::endpoint_remove(&doc, run.profile, &run.names.endpoint_entry, &run.owner)?;
        run.record(
            ResourceKind::EndpointsEntry,
            run.entry_id(),
            if edit.changed() {
                Action::Deleted
            } else {
                Action::AlreadyAbsent
            },
            None,
        );
        run.record(
            ResourceKind::DnsRecord,
            format!("{} A", reads.host),
            if reads.records.is_empty() {
                Action::AlreadyAbsent
            } else {
                Action::Deleted
            },
            None,
        );
        match &reads.service {
            Some(s) => run.record(ResourceKind::Service, &s.arn, Action::Deleted, None),
            None => run.record(
                ResourceKind::Service,
                &run.names.resource,
                Action::AlreadyAbsent,
                None,
            ),
        }
        if reads.rules.is_empty() {
            run.record(
                ResourceKind::ListenerRule,
                &reads.host,
                Action::AlreadyAbsent,
                None,
            );
        }
        for r in &reads.rules {
            run.record(ResourceKind::ListenerRule, &r.arn, Action::Deleted, None);
        }
        match &reads.group {
            Some(tg) => run.record(ResourceKind::TargetGroup, &tg.arn, Action::Deleted, None),
            None => run.record(
                ResourceKind::TargetGroup,
                &run.names.target_group,
                Action::AlreadyAbsent,
                None,
            ),
        }
        let all: Vec<&String> = reads.active.iter().chain(&reads.inactive).collect();
        if all.is_empty() {
            run.record(
                ResourceKind::TaskDefinition,
                &run.names.resource,
                Action::AlreadyAbsent,
                None,
            );
        }
        for arn in all {
            run.record(ResourceKind::TaskDefinition, arn, Action::Deleted, None);
        }
        run.record(
            ResourceKind::StateItem,
            run.state_id(&self.table),
            if reads.old_state.is_some() {
                Action::Deleted
            } else {
                Action::AlreadyAbsent
            },
            None,
        );
        Ok(run.outcome(Some(reads.host), true))
    }
}
