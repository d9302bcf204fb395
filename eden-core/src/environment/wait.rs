//! Waiting: for a DRAINING service to go, for a new deployment to become stable (a `FAILED`
//! rollout fails with the service's events), and what a wait that ran out leaves.

use std::time::Duration;

use crate::cloud::{ItemUpdate, Service};
use crate::error::{Error, Result, Step};
use crate::lease;
use crate::outcome::{Action, ResourceKind};

use super::Environment;
use super::run::Run;

impl Environment {
    /// Polls until the service is INACTIVE or gone; returns what is left of it.
    pub(super) async fn wait_inactive(
        &self,
        run: &Run<'_>,
        cluster: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<Service>> {
        let started = tokio::time::Instant::now();
        loop {
            let svc = self
                .cloud
                .ecs
                .describe_service(cluster, name)
                .await
                .map_err(|e| Error::cloud(Step::Wait, name, e))?;
            match svc {
                Some(s) if s.status == "DRAINING" => {}
                other => return Ok(other),
            }
            if started.elapsed() >= timeout {
                return Err(Error::Timeout {
                    step: Step::Wait,
                    resource: name.to_owned(),
                    waited: started.elapsed(),
                    outcome: None,
                });
            }
            run.waiting(format!("service {name} to finish draining"), "DRAINING");
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// Polls until the service is stable; a `FAILED` rollout fails with the service's events.
    pub(super) async fn wait_stable(
        &self,
        run: &Run<'_>,
        cluster: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<()> {
        let started = tokio::time::Instant::now();
        loop {
            let svc = self
                .cloud
                .ecs
                .describe_service(cluster, name)
                .await
                .map_err(|e| Error::cloud(Step::Wait, name, e))?;
            if let Some(s) = &svc {
                if s.rollout_failed() {
                    let reason = s
                        .deployments
                        .iter()
                        .find(|d| d.status == "PRIMARY")
                        .and_then(|d| d.rollout_state_reason.clone())
                        .unwrap_or_else(|| "rollout FAILED".into());
                    return Err(Error::RolloutFailed {
                        service: s.arn.clone(),
                        reason,
                        events: s.events.iter().take(5).map(|e| e.message.clone()).collect(),
                    });
                }
                if s.is_stable() {
                    return Ok(());
                }
            }
            if started.elapsed() >= timeout {
                return Err(Error::Timeout {
                    step: Step::Wait,
                    resource: name.to_owned(),
                    waited: started.elapsed(),
                    outcome: None,
                });
            }
            let status = svc.as_ref().map_or_else(
                || "not found".to_owned(),
                |s| {
                    let d = s.deployments.first();
                    format!(
                        "{} running of {} ({})",
                        d.map_or(s.running_count, |d| d.running_count),
                        d.map_or(s.spec.desired_count, |d| d.desired_count),
                        d.and_then(|d| d.rollout_state.clone())
                            .unwrap_or_else(|| s.status.clone())
                    )
                },
            );
            run.waiting(format!("service {name} to become stable"), status);
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// The service did not become stable in time: keep what was made, unpublished, release
    /// the lease (the state stays `creating`), and say what was done.
    pub(super) async fn keep_unpublished(
        &self,
        run: &Run<'_>,
        host: &str,
        step: Step,
        resource: String,
        waited: Duration,
    ) -> Error {
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
        let note =
            Some("not published: the service is not stable yet; create again to finish".to_owned());
        run.record(
            ResourceKind::DnsRecord,
            format!("{host} A"),
            Action::Deferred,
            note.clone(),
        );
        run.record(
            ResourceKind::EndpointsEntry,
            run.entry_id(),
            Action::Deferred,
            note.clone(),
        );
        run.record(
            ResourceKind::StateItem,
            run.state_id(&self.table),
            Action::Deferred,
            Some("left `creating`".into()),
        );
        Error::Timeout {
            step,
            resource,
            waited,
            outcome: Some(Box::new(run.outcome(Some(host.to_owned()), false))),
        }
    }
}
