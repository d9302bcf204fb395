//! Rolling back a failed run: the journal undone in reverse, and the endpoints entry put back
//! as it was.

use crate::cloud::{ChangeAction, CloudError, PutMode, RecordChange};
use crate::endpoints::Edit;
use crate::error::{Error, Result, Step};
use crate::ownership::Verdict;

use super::Environment;
use super::journal::Undo;
use super::retry::{CAS_ATTEMPTS, is_precondition, jitter};
use super::run::Run;
use super::state::without_lease;

impl Environment {
    /// Rolls back what the journal holds (nothing after a lost lease), then returns `cause`
    /// (or the rollback's failure).
    pub(super) async fn undo(&self, run: &Run<'_>, cause: Error) -> Error {
        let journal = run.take_journal();
        if journal.is_empty() || matches!(cause, Error::LeaseLost { .. }) {
            return cause;
        }
        tracing::warn!(error = %cause, undo = journal.len(), "create failed, rolling back");
        let leftover = tokio::select! {
            left = self.rollback(run, journal) => left,
            lost = run.lease.keep() => vec![lost.to_string()],
        };
        if leftover.is_empty() {
            cause
        } else {
            Error::RollbackIncomplete {
                cause: Box::new(cause),
                leftover,
            }
        }
    }

    /// Undoes the journal in reverse; returns what could not be undone.
    pub(super) async fn rollback(&self, run: &Run<'_>, journal: Vec<Undo>) -> Vec<String> {
        let c = &self.cloud;
        let p = run.profile;
        let mut leftover = Vec::new();
        for undo in journal.into_iter().rev() {
            let (what, result): (String, std::result::Result<(), CloudError>) = match &undo {
                Undo::ServiceCreated { cluster, name } => (
                    format!("service {name}"),
                    c.ecs.delete_service(cluster, name, true).await.map(|_| ()),
                ),
                Undo::ServiceUpdated {
                    cluster,
                    name,
                    previous,
                } => (
                    format!("service {name} (back to {previous})"),
                    c.ecs
                        .update_service(cluster, name, previous, true)
                        .await
                        .map(|_| ()),
                ),
                Undo::Rule(arn) => (format!("rule {arn}"), c.elb.delete_rule(arn).await),
                Undo::TargetGroup(arn) | Undo::TargetGroupUnverified(arn) => {
                    // Only a group this run created: its tags say so.
                    let r = match c.elb.describe_tags(std::slice::from_ref(arn)).await {
                        Ok(tags) => {
                            let tags = tags.get(arn).cloned().unwrap_or_default();
                            if Verdict::of_tags(&tags, &run.owner).created_by(&run.run) {
                                c.elb.delete_target_group(arn).await
                            } else {
                                Ok(())
                            }
                        }
                        Err(e) => Err(e),
                    };
                    (format!("target group {arn}"), r)
                }
                Undo::TaskDefinition(arn) => {
                    let r = match c.ecs.deregister_task_definition(arn).await {
                        Ok(()) => c
                            .ecs
                            .delete_task_definitions(std::slice::from_ref(arn))
                            .await
                            .and_then(|failures| match failures.first() {
                                Some((_, why)) => Err(CloudError::new("DeleteFailed", why.clone())),
                                None => Ok(()),
                            }),
                        Err(e) => Err(e),
                    };
                    (format!("task definition {arn}"), r)
                }
                Undo::DnsCreated(records) => (
                    format!(
                        "DNS record {}",
                        records.first().map_or("", |r| r.name.as_str())
                    ),
                    c.dns
                        .change_records(
                            &p.dynamic_zone_id,
                            &records
                                .iter()
                                .map(|r| RecordChange::new(ChangeAction::Delete, r.clone()))
                                .collect::<Vec<_>>(),
                        )
                        .await,
                ),
                Undo::DnsUpdated(old) => (
                    format!("DNS record {} (restore)", old.name),
                    c.dns.upsert_record(&p.dynamic_zone_id, old).await,
                ),
                Undo::EndpointKey { previous } => (
                    format!("endpoints entry {}", run.entry_id()),
                    self.restore_endpoint(run, previous.as_deref())
                        .await
                        .map_err(|e| CloudError::new("Endpoints", e.to_string())),
                ),
                Undo::State { old } => {
                    let held = run.lease.held();
                    let r = match old {
                        None => c
                            .state
                            .delete_item_when(&self.table, &p.name, run.names.env.as_str(), &held)
                            .await
                            .map(|_| ()),
                        Some(old) => c
                            .state
                            .put_item_when(&self.table, without_lease(old.clone()), &held)
                            .await
                            .map(|_| ()),
                    };
                    (format!("state item {}", run.state_id(&self.table)), r)
                }
            };
            match result {
                Ok(()) => tracing::info!(%what, "rolled back"),
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::error!(%what, error = %e, "rollback failed");
                    leftover.push(format!("{what}: {e}"));
                }
            }
        }
        leftover
    }

    /// Puts the endpoints key back as it was before this run (removing it when it was new).
    pub(super) async fn restore_endpoint(
        &self,
        run: &Run<'_>,
        previous: Option<&str>,
    ) -> Result<()> {
        let p = run.profile;
        let entry = &run.names.endpoint_entry;
        for attempt in 0..CAS_ATTEMPTS {
            let Some(current) = self.read_document(run).await? else {
                return Ok(());
            };
            let mut doc = self.parse_document(run, Some(&current))?;
            let edit = match previous {
                Some(v) => doc.upsert(&p.endpoint_env_type, entry, &p.endpoint_update_key, v),
                None => doc
                    .remove_owned(
                        &p.endpoint_env_type,
                        entry,
                        &p.endpoint_update_key,
                        &run.owner,
                    )
                    .unwrap_or(Edit::Absent),
            };
            if !edit.changed() {
                return Ok(());
            }
            match self
                .cloud
                .documents
                .put(
                    &p.endpoint_s3_bucket_name,
                    &p.endpoint_s3_key,
                    doc.to_bytes(),
                    PutMode::Update(current.etag.clone()),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_precondition(&e) => jitter(attempt).await,
                Err(e) => return Err(Error::cloud(Step::Endpoints, run.doc_id(), e)),
            }
        }
        Err(Error::Contention {
            step: Step::Endpoints,
            resource: run.doc_id(),
            attempts: CAS_ATTEMPTS,
        })
    }
}
