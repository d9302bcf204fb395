//! Round 5 of create, once the service exists: the DNS record with its ownership TXT record,
//! the endpoints entry, and the `ready` state that releases the lease.

use crate::cloud::{
    AttrValue, ChangeAction, ItemCondition, ItemUpdate, LoadBalancer, PutMode, RecordChange,
    StoredDocument, codes, schema,
};
use crate::endpoints::Edit;
use crate::error::{Error, Result, Step};
use crate::lease;
use crate::outcome::{Action, ResourceKind};

use super::Environment;
use super::decide::{self, DnsPlan};
use super::journal::Undo;
use super::retry::{CAS_ATTEMPTS, DNS_ATTEMPTS, is_precondition, jitter};
use super::run::Run;
use super::state::attr;

impl Environment {
    /// Round 5: the DNS record, the endpoints entry and the `ready` state (which releases the
    /// lease), at once. When publishing failed but the state went through, the lease is taken
    /// back to roll back, unless another run took the environment meanwhile.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn publish(
        &self,
        run: &Run<'_>,
        host: &str,
        alb: &LoadBalancer,
        dns: DnsPlan,
        document: Option<StoredDocument>,
        existed: bool,
        manifest: &[(&str, String)],
    ) -> Result<()> {
        let (dns, endpoints, ready) = tokio::join!(
            self.publish_dns(run, host, alb, dns),
            self.publish_endpoint(run, host, document),
            self.write_ready(run, host, existed, manifest),
        );
        match (ready, dns.and(endpoints)) {
            (Ok(()), Ok(())) => {
                run.take_journal();
                Ok(())
            }
            (Ok(()), Err(e)) => {
                // Released: take the lease back to roll back, unless someone else has it.
                let back = ItemUpdate::default()
                    .set(lease::LEASE_HOLDER, AttrValue::S(run.run.to_string()))
                    .set(
                        lease::LEASE_UNTIL,
                        AttrValue::N((lease::now_ms() + self.lease.ttl_ms()).to_string()),
                    )
                    .set(lease::LEASE_OPERATION, AttrValue::S("create".into()));
                let ours = ItemCondition::All(vec![
                    ItemCondition::equals(lease::RUN, run.run.as_str()),
                    ItemCondition::Missing(lease::LEASE_UNTIL.into()),
                ]);
                match self
                    .cloud
                    .state
                    .update_item_when(
                        &self.table,
                        &run.profile.name,
                        run.names.env.as_str(),
                        &back,
                        &ours,
                    )
                    .await
                {
                    Ok(_) => Err(e),
                    Err(_) => {
                        run.take_journal();
                        Err(e)
                    }
                }
            }
            (Err(e), _) => Err(e),
        }
    }

    pub(super) async fn publish_dns(
        &self,
        run: &Run<'_>,
        host: &str,
        alb: &LoadBalancer,
        mut plan: DnsPlan,
    ) -> Result<()> {
        let p = run.profile;
        let zone = &p.dynamic_zone_id;
        let wanted = decide::wanted_record(host, alb);
        let id = format!("{host} A");
        for attempt in 0..DNS_ATTEMPTS {
            let (changes, undo, action) = match &plan {
                DnsPlan::Reuse => {
                    run.record(ResourceKind::DnsRecord, id, Action::Reused, None);
                    return Ok(());
                }
                DnsPlan::Create { with_txt } => {
                    let mut records = vec![wanted.clone()];
                    if *with_txt {
                        records.push(run.owner.txt_record(host));
                    }
                    let changes = records
                        .iter()
                        .map(|r| RecordChange::new(ChangeAction::Create, r.clone()))
                        .collect::<Vec<_>>();
                    (changes, Undo::DnsCreated(records), Action::Created)
                }
                DnsPlan::Update { old } => (
                    vec![RecordChange::new(ChangeAction::Upsert, wanted.clone())],
                    Undo::DnsUpdated(old.clone()),
                    Action::Updated,
                ),
            };
            match self.cloud.dns.change_records(zone, &changes).await {
                Ok(()) => {
                    run.journal(undo);
                    run.record(
                        ResourceKind::DnsRecord,
                        id,
                        action,
                        Some(format!("alias to {}, owner in TXT {host}", alb.dns_name)),
                    );
                    return Ok(());
                }
                // Written meanwhile by someone else: read again and decide again.
                Err(e) if e.is(&[codes::INVALID_CHANGE_BATCH]) && attempt + 1 < DNS_ATTEMPTS => {
                    let (a, txt) = tokio::try_join!(
                        self.find_record(p, host, "A"),
                        self.find_record(p, host, "TXT")
                    )?;
                    plan = decide::dns(a.as_ref(), txt.as_ref(), &wanted, &run.owner)?;
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

    pub(super) async fn publish_endpoint(
        &self,
        run: &Run<'_>,
        host: &str,
        mut current: Option<StoredDocument>,
    ) -> Result<()> {
        let p = run.profile;
        let docs = &self.cloud.documents;
        for attempt in 0..CAS_ATTEMPTS {
            let doc = self.parse_document(run, current.as_ref())?;
            let (next, edit, previous) =
                decide::endpoint_upsert(&doc, p, &run.names.endpoint_entry, host, &run.owner)?;
            if !edit.changed() {
                run.record(
                    ResourceKind::EndpointsEntry,
                    run.entry_id(),
                    Action::Reused,
                    Some(run.doc_id()),
                );
                return Ok(());
            }
            let mode = match &current {
                Some(d) => PutMode::Update(d.etag.clone()),
                None => PutMode::Create,
            };
            match docs
                .put(
                    &p.endpoint_s3_bucket_name,
                    &p.endpoint_s3_key,
                    next.to_bytes(),
                    mode,
                )
                .await
            {
                Ok(_) => {
                    run.journal(Undo::EndpointKey { previous });
                    let action = match edit {
                        Edit::AddedEntry | Edit::AddedKey => Action::Created,
                        _ => Action::Updated,
                    };
                    run.record(
                        ResourceKind::EndpointsEntry,
                        run.entry_id(),
                        action,
                        Some(run.doc_id()),
                    );
                    return Ok(());
                }
                Err(e) if is_precondition(&e) => {
                    jitter(attempt).await;
                    current = self.read_document(run).await?;
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

    pub(super) async fn write_ready(
        &self,
        run: &Run<'_>,
        host: &str,
        existed: bool,
        manifest: &[(&str, String)],
    ) -> Result<()> {
        let mut update = ItemUpdate::default()
            .set(lease::STATUS, AttrValue::S("ready".into()))
            .set(attr::ENDPOINT, AttrValue::S(host.to_owned()))
            .set(schema::LAST_UPDATED, AttrValue::N(run.now.to_string()))
            .remove(lease::LEASE_HOLDER)
            .remove(lease::LEASE_UNTIL)
            .remove(lease::LEASE_OPERATION);
        for (k, v) in manifest {
            update = update.set(*k, AttrValue::S(v.clone()));
        }
        let id = run.state_id(&self.table);
        match self
            .cloud
            .state
            .update_item_when(
                &self.table,
                &run.profile.name,
                run.names.env.as_str(),
                &update,
                &run.lease.held(),
            )
            .await
        {
            Ok(_) => {
                let action = if existed {
                    Action::Updated
                } else {
                    Action::Created
                };
                run.record(ResourceKind::StateItem, id, action, Some("ready".into()));
                Ok(())
            }
            Err(e) if e.is(&[codes::CONDITIONAL_CHECK_FAILED]) => {
                Err(run.lease.lost("it was gone when the environment was ready"))
            }
            Err(e) => Err(Error::cloud(Step::State, id, e)),
        }
    }
}
