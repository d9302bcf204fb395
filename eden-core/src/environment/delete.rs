//! [`Environment::delete`]: every owner read first, then the deletes, the state item last.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::cloud::{
    AttrValue, ChangeAction, CloudError, DnsRecord, Item, ItemUpdate, Listener, PutMode,
    RecordChange, Rule, Service, StoredDocument, TargetGroup, TaskDefinitionStatus, codes,
};
use crate::endpoints::Edit;
use crate::error::{Error, Result, Step};
use crate::lease::{self, Refused};
use crate::outcome::{Action, Outcome, ResourceKind};
use crate::profile::Profile;

use super::Environment;
use super::decide;
use super::fan_out::{FAN_OUT, join_all};
use super::journal::Undo;
use super::options::DeleteOptions;
use super::retry::{CAS_ATTEMPTS, DNS_ATTEMPTS, is_precondition, jitter};
use super::run::{Run, now_epoch};
use super::state::attr;

/// What delete reads in its first round.
pub(super) struct DeleteFirst {
    pub(super) host: String,
    pub(super) service: Option<Service>,
    pub(super) group: Option<TargetGroup>,
    pub(super) listener: Listener,
    pub(super) document: Option<StoredDocument>,
    pub(super) active: Vec<String>,
    pub(super) inactive: Vec<String>,
}

/// What delete reads before changing anything, checked.
pub(super) struct DeleteReads {
    pub(super) host: String,
    pub(super) service: Option<Service>,
    pub(super) group: Option<TargetGroup>,
    pub(super) rules: Vec<Rule>,
    pub(super) records: Vec<DnsRecord>,
    pub(super) document: Option<StoredDocument>,
    pub(super) active: Vec<String>,
    pub(super) inactive: Vec<String>,
    pub(super) old_state: Option<Item>,
}

impl Environment {
    /// Deletes environment `name`: endpoints entry, DNS record (and its ownership record),
    /// service, listener rule, target group, every task definition revision of the family, and
    /// the state item last. Takes the environment's lease, and reads every owner first: when
    /// anything is not this environment's, nothing is deleted ([`Error::NotOwned`]). Each step
    /// tolerates "already gone", so a half-created environment is removed too.
    pub async fn delete(
        &self,
        profile: &Profile,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Outcome> {
        let names = self.validate(profile, name)?;
        let run = self.run(profile, names, "delete", now_epoch());
        if options.dry_run {
            return self.plan_delete(&run).await;
        }
        let update = self.lease_update(&run, "deleting");
        let (taken, first) = tokio::join!(run.lease.try_acquire(&update), self.delete_first(&run));
        let (old, first) = match taken {
            Ok(old) => {
                run.journal(Undo::State { old: old.clone() });
                (old, first)
            }
            Err(Refused::Held(_) | Refused::Retry) => match self.wait_lease(&run, &update).await {
                Ok(old) => (old, self.delete_first(&run).await),
                Err(e) => return Err(e),
            },
            Err(refused) => return Err(self.refused(&run, refused)),
        };
        let first = match first {
            Ok(first) => first,
            Err(e) => return Err(self.delete_failed(&run, e).await),
        };
        let host = first.host.clone();
        let result = tokio::select! {
            r = async {
                let reads = self.delete_inspect(&run, first, old).await?;
                self.delete_execute(&run, reads).await
            } => r,
            lost = run.lease.keep() => Err(lost),
        };
        match result {
            Ok(()) => {
                run.take_journal();
                tracing::info!(profile = %profile.name, env = %run.names.env, run = %run.run, "environment deleted");
                Ok(run.outcome(Some(host), false))
            }
            Err(e) => Err(self.delete_failed(&run, e).await),
        }
    }

    /// Before anything was deleted, the state item goes back to what it was; after, it stays
    /// `deleting` (listed, and delete can run again) and the lease is released.
    pub(super) async fn delete_failed(&self, run: &Run<'_>, cause: Error) -> Error {
        if matches!(cause, Error::LeaseLost { .. }) {
            return cause;
        }
        if !run.destroyed.load(Ordering::SeqCst) {
            return self.undo(run, cause).await;
        }
        run.take_journal();
        let release = ItemUpdate::default()
            .remove(lease::LEASE_HOLDER)
            .remove(lease::LEASE_UNTIL)
            .remove(lease::LEASE_OPERATION);
        if let Err(e) = self
            .cloud
            .state
            .update_item_when(
                &self.table,
                &run.profile.name,
                run.names.env.as_str(),
                &release,
                &run.lease.held(),
            )
            .await
        {
            tracing::warn!(error = %e, "could not release the lease; it expires on its own");
        }
        cause
    }

    /// Round 1 of delete (beside the lease): everything found by name, with the checks it
    /// allows.
    pub(super) async fn delete_first(&self, run: &Run<'_>) -> Result<DeleteFirst> {
        let c = &self.cloud;
        let p = run.profile;
        let names = &run.names;
        let reference = &p.reference_service_arn;
        let (found, zone, service, listener, group, document, active, inactive) = tokio::try_join!(
            async {
                // A reference that is gone must not block a delete.
                Ok::<_, Error>(
                    c.ecs
                        .describe_service(&reference.cluster, &reference.service)
                        .await
                        .unwrap_or_else(|e| {
                            tracing::warn!(error = %e, "could not read the reference service");
                            None
                        }),
                )
            },
            self.zone_name(p),
            async {
                c.ecs
                    .describe_service(&p.target_cluster, &names.resource)
                    .await
                    .map_err(|e| Error::cloud(Step::Service, &names.resource, e))
            },
            self.https_listener(&p.master_alb_arn.arn),
            async {
                c.elb
                    .describe_target_group_by_name(&names.target_group)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, &names.target_group, e))
            },
            async {
                match self.read_document(run).await {
                    Ok(d) => Ok(d),
                    // A missing bucket must not block the delete.
                    Err(Error::Cloud { source, .. }) if source.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                }
            },
            async {
                c.ecs
                    .list_task_definitions(&names.resource, TaskDefinitionStatus::Active)
                    .await
                    .map_err(|e| Error::cloud(Step::TaskDefinition, &names.resource, e))
            },
            async {
                c.ecs
                    .list_task_definitions(&names.resource, TaskDefinitionStatus::Inactive)
                    .await
                    .map_err(|e| Error::cloud(Step::TaskDefinition, &names.resource, e))
            },
        )?;
        if let Some(reference) = found.filter(|s| s.status == "ACTIVE") {
            decide::reference_resources(&reference, names)?;
        }
        let service = decide::service_to_delete(service.as_ref(), &run.owner)?;
        let host = names.host(&zone)?;
        let doc = self.parse_document(run, document.as_ref())?;
        decide::endpoint_remove(&doc, p, &names.endpoint_entry, &run.owner)?;
        Ok(DeleteFirst {
            host,
            service,
            group,
            listener,
            document,
            active,
            inactive,
        })
    }

    /// Rounds 2 (and 3 when the state item does not name the rule): every remaining owner.
    pub(super) async fn delete_inspect(
        &self,
        run: &Run<'_>,
        first: DeleteFirst,
        old: Option<Item>,
    ) -> Result<DeleteReads> {
        let c = &self.cloud;
        let p = run.profile;
        let host = &first.host;
        let recorded_rule = old
            .as_ref()
            .and_then(|i| i.get(attr::RULE))
            .and_then(AttrValue::as_s)
            .map(str::to_owned);
        let mut known: Vec<String> = first.group.iter().map(|g| g.arn.clone()).collect();
        known.extend(recorded_rule);
        let revisions: Vec<String> = first
            .active
            .iter()
            .chain(&first.inactive)
            .cloned()
            .collect();
        let (a, txt, rules, mut tags, tds) = tokio::try_join!(
            self.find_record(p, host, "A"),
            self.find_record(p, host, "TXT"),
            self.all_rules(&first.listener.arn),
            async {
                if known.is_empty() {
                    return Ok(BTreeMap::new());
                }
                c.elb
                    .describe_tags(&known)
                    .await
                    .map_err(|e| Error::cloud(Step::ListenerRule, known.join(", "), e))
            },
            self.describe_revisions(&revisions),
        )?;
        let records = decide::dns_to_delete(host, a.as_ref(), txt.as_ref(), &run.owner)?;
        if let Some(tg) = &first.group {
            let group_tags = tags.get(&tg.arn).cloned().unwrap_or_default();
            decide::target_group(tg, &group_tags, &run.owner)?;
        }
        decide::revisions(&tds, &run.owner)?;
        let tg_arn = first.group.as_ref().map(|g| g.arn.as_str());
        let doomed = match decide::rules_to_delete(&rules, host, tg_arn, &tags, &run.owner)? {
            Ok(doomed) => doomed.into_iter().cloned().collect(),
            Err(unknown) => {
                // Rules the state item did not name: their owners first.
                tags.extend(self.rule_tags(&unknown).await?);
                match decide::rules_to_delete(&rules, host, tg_arn, &tags, &run.owner)? {
                    Ok(doomed) => doomed.into_iter().cloned().collect(),
                    Err(unknown) => {
                        return Err(Error::NotOwned {
                            kind: ResourceKind::ListenerRule,
                            resource: unknown.join(", "),
                            owner: crate::ownership::ForeignOwner::Unrecorded,
                        });
                    }
                }
            }
        };
        Ok(DeleteReads {
            host: first.host,
            service: first.service,
            group: first.group,
            rules: doomed,
            records,
            document: first.document,
            active: first.active,
            inactive: first.inactive,
            old_state: old,
        })
    }

    /// The deletes, once every owner is known to be this environment.
    pub(super) async fn delete_execute(&self, run: &Run<'_>, reads: DeleteReads) -> Result<()> {
        let c = &self.cloud;
        let p = run.profile;
        run.destroyed.store(true, Ordering::SeqCst);
        let (endpoints, dns, service, rules, deregistered) = tokio::join!(
            self.delete_endpoint(run, reads.document.clone()),
            self.delete_records(run, &reads.host, &reads.records),
            self.delete_service(run, reads.service.as_ref()),
            self.delete_rules(run, &reads.host, &reads.rules),
            self.deregister(run, &reads.active),
        );
        let mut first = None;
        for r in [endpoints, dns, service, deregistered] {
            if let Err(e) = r {
                tracing::warn!(error = %e, "a delete step failed");
                first.get_or_insert(e);
            }
        }
        // The group only after its rules (ELB answers ResourceInUse otherwise), the revisions
        // after they were deregistered.
        let (group, tds) = tokio::join!(
            async {
                match rules {
                    Ok(()) => self.delete_group(run, reads.group.as_ref()).await,
                    Err(e) => Err(e),
                }
            },
            self.delete_task_definitions(run, &reads.active, &reads.inactive)
        );
        for r in [group, tds] {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        if let Some(e) = first {
            return Err(e);
        }
        // The state item last: a failed delete stays listed and can be run again.
        let id = run.state_id(&self.table);
        match c
            .state
            .delete_item_when(
                &self.table,
                &p.name,
                run.names.env.as_str(),
                &run.lease.held(),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.is(&[codes::CONDITIONAL_CHECK_FAILED]) => {
                return Err(run
                    .lease
                    .lost("it was gone when the environment was deleted"));
            }
            Err(e) => return Err(Error::cloud(Step::State, id, e)),
        }
        run.record(
            ResourceKind::StateItem,
            id,
            if reads.old_state.is_some() {
                Action::Deleted
            } else {
                Action::AlreadyAbsent
            },
            None,
        );
        Ok(())
    }

    pub(super) async fn delete_endpoint(
        &self,
        run: &Run<'_>,
        mut current: Option<StoredDocument>,
    ) -> Result<()> {
        let p = run.profile;
        let docs = &self.cloud.documents;
        for attempt in 0..CAS_ATTEMPTS {
            let doc = self.parse_document(run, current.as_ref())?;
            let (next, edit) =
                decide::endpoint_remove(&doc, p, &run.names.endpoint_entry, &run.owner)?;
            let Some(existing) = current.as_ref().filter(|_| edit.changed()) else {
                run.record(
                    ResourceKind::EndpointsEntry,
                    run.entry_id(),
                    Action::AlreadyAbsent,
                    None,
                );
                return Ok(());
            };
            match docs
                .put(
                    &p.endpoint_s3_bucket_name,
                    &p.endpoint_s3_key,
                    next.to_bytes(),
                    PutMode::Update(existing.etag.clone()),
                )
                .await
            {
                Ok(_) => {
                    let note = (edit == Edit::RemovedKey)
                        .then(|| "entry kept for other profiles' keys".to_owned());
                    run.record(
                        ResourceKind::EndpointsEntry,
                        run.entry_id(),
                        Action::Deleted,
                        note,
                    );
                    return Ok(());
                }
                Err(e) if is_precondition(&e) => {
                    jitter(attempt).await;
                    current = match self.read_document(run).await {
                        Ok(d) => d,
                        Err(Error::Cloud { source, .. }) if source.is_not_found() => None,
                        Err(e) => return Err(e),
                    };
                }
                Err(e) => return Err(Error::cloud(Step::Endpoints, run.doc_id(), e)),
            }
        }
        Err(Error::Contention {
            step: Step::Endpoints,
            resource: run.doc_id(),
            attempts: CAS_ATTEMPTS,
        })
    }

    pub(super) async fn delete_records(
        &self,
        run: &Run<'_>,
        host: &str,
        records: &[DnsRecord],
    ) -> Result<()> {
        let p = run.profile;
        let id = format!("{host} A");
        let mut records = records.to_vec();
        for attempt in 0..DNS_ATTEMPTS {
            if records.is_empty() {
                run.record(ResourceKind::DnsRecord, id, Action::AlreadyAbsent, None);
                return Ok(());
            }
            let changes: Vec<RecordChange> = records
                .iter()
                .map(|r| RecordChange::new(ChangeAction::Delete, r.clone()))
                .collect();
            match self
                .cloud
                .dns
                .change_records(&p.dynamic_zone_id, &changes)
                .await
            {
                Ok(()) => {
                    run.record(
                        ResourceKind::DnsRecord,
                        id,
                        Action::Deleted,
                        Some("with its owner TXT record".into()),
                    );
                    return Ok(());
                }
                // Changed meanwhile: read again, and decide again.
                Err(e) if e.is(&[codes::INVALID_CHANGE_BATCH]) && attempt + 1 < DNS_ATTEMPTS => {
                    let (a, txt) = tokio::try_join!(
                        self.find_record(p, host, "A"),
                        self.find_record(p, host, "TXT")
                    )?;
                    records = decide::dns_to_delete(host, a.as_ref(), txt.as_ref(), &run.owner)?;
                }
                Err(e) => return Err(Error::cloud(Step::Dns, host, e)),
            }
        }
        Err(Error::Contention {
            step: Step::Dns,
            resource: host.to_owned(),
            attempts: DNS_ATTEMPTS,
        })
    }

    pub(super) async fn delete_service(
        &self,
        run: &Run<'_>,
        service: Option<&Service>,
    ) -> Result<()> {
        let p = run.profile;
        let name = &run.names.resource;
        let Some(s) = service else {
            run.record(ResourceKind::Service, name, Action::AlreadyAbsent, None);
            return Ok(());
        };
        match self
            .cloud
            .ecs
            .delete_service(&p.target_cluster, name, true)
            .await
        {
            Ok(_) => run.record(ResourceKind::Service, &s.arn, Action::Deleted, None),
            Err(e) if e.is_not_found() => {
                run.record(ResourceKind::Service, &s.arn, Action::AlreadyAbsent, None);
            }
            Err(e) => return Err(Error::cloud(Step::Service, name, e)),
        }
        Ok(())
    }

    pub(super) async fn delete_rules(
        &self,
        run: &Run<'_>,
        host: &str,
        rules: &[Rule],
    ) -> Result<()> {
        if rules.is_empty() {
            run.record(
                ResourceKind::ListenerRule,
                host,
                Action::AlreadyAbsent,
                None,
            );
            return Ok(());
        }
        let elb = &self.cloud.elb;
        let results = join_all(
            rules
                .iter()
                .map(|r| async move { (&r.arn, elb.delete_rule(&r.arn).await) }),
        )
        .await;
        for (arn, r) in results {
            match r {
                Ok(()) => run.record(ResourceKind::ListenerRule, arn, Action::Deleted, None),
                Err(e) if e.is_not_found() => {
                    run.record(ResourceKind::ListenerRule, arn, Action::AlreadyAbsent, None);
                }
                Err(e) => return Err(Error::cloud(Step::ListenerRule, arn, e)),
            }
        }
        Ok(())
    }

    pub(super) async fn delete_group(
        &self,
        run: &Run<'_>,
        group: Option<&TargetGroup>,
    ) -> Result<()> {
        let Some(tg) = group else {
            run.record(
                ResourceKind::TargetGroup,
                &run.names.target_group,
                Action::AlreadyAbsent,
                None,
            );
            return Ok(());
        };
        match self.cloud.elb.delete_target_group(&tg.arn).await {
            Ok(()) => run.record(ResourceKind::TargetGroup, &tg.arn, Action::Deleted, None),
            Err(e) if e.is_not_found() => {
                run.record(
                    ResourceKind::TargetGroup,
                    &tg.arn,
                    Action::AlreadyAbsent,
                    None,
                );
            }
            Err(e) => return Err(Error::cloud(Step::TargetGroup, &tg.arn, e)),
        }
        Ok(())
    }

    pub(super) async fn deregister(&self, _run: &Run<'_>, active: &[String]) -> Result<()> {
        let ecs = &self.cloud.ecs;
        for chunk in active.chunks(FAN_OUT) {
            let results = join_all(
                chunk
                    .iter()
                    .map(|arn| async move { (arn, ecs.deregister_task_definition(arn).await) }),
            )
            .await;
            for (arn, r) in results {
                if let Err(e) = r
                    && !e.is_not_found()
                    && !e.message.contains("does not exist")
                {
                    return Err(Error::cloud(Step::TaskDefinition, arn, e));
                }
            }
        }
        Ok(())
    }

    pub(super) async fn delete_task_definitions(
        &self,
        run: &Run<'_>,
        active: &[String],
        inactive: &[String],
    ) -> Result<()> {
        let ecs = &self.cloud.ecs;
        let family = &run.names.resource;
        let all: Vec<String> = active.iter().chain(inactive.iter()).cloned().collect();
        if all.is_empty() {
            run.record(
                ResourceKind::TaskDefinition,
                family,
                Action::AlreadyAbsent,
                None,
            );
            return Ok(());
        }
        let chunks: Vec<&[String]> = all.chunks(10).collect();
        let deleted = join_all(
            chunks
                .iter()
                .map(|chunk| async move { (chunk, ecs.delete_task_definitions(chunk).await) }),
        )
        .await;
        for (chunk, r) in deleted {
            let failures = r.map_err(|e| Error::cloud(Step::TaskDefinition, family, e))?;
            for arn in chunk.iter() {
                match failures.iter().find(|(a, _)| a == arn) {
                    None => run.record(ResourceKind::TaskDefinition, arn, Action::Deleted, None),
                    Some((_, why)) if why.contains("does not exist") => run.record(
                        ResourceKind::TaskDefinition,
                        arn,
                        Action::AlreadyAbsent,
                        None,
                    ),
                    Some((_, why)) => {
                        return Err(Error::cloud(
                            Step::TaskDefinition,
                            arn,
                            CloudError::new("DeleteTaskDefinitionsFailure", why.clone()),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
