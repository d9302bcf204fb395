//! [`Environment::create`]: the reads of round 1 beside the lease, then rounds 2 to 4 (task
//! definition revision, target group and rule, service), then publishing.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cloud::{
    CreateService, Item, Listener, LoadBalancer, RegisterTaskDefinition, Service,
    ServiceLoadBalancer, ServiceSpec, StoredDocument, TargetGroup, TaskDefinition, codes,
};
use crate::error::{Error, Result, Step};
use crate::image::ImageRef;
use crate::lease::Refused;
use crate::outcome::{Action, Outcome, ResourceKind};
use crate::profile::Profile;

use super::Environment;
use super::decide::{self, GroupsFound, ServicePlan};
use super::journal::Undo;
use super::options::CreateOptions;
use super::routing::RuleState;
use super::run::{Run, lock, now_epoch};
use super::state::attr;

/// What create reads in its first round, checked.
pub(super) struct CreateReads {
    pub(super) reference: Service,
    pub(super) target: ServiceLoadBalancer,
    pub(super) spec: ServiceSpec,
    pub(super) left_out: Vec<String>,
    pub(super) alb: LoadBalancer,
    pub(super) https: Listener,
    pub(super) host: String,
    pub(super) groups: GroupsFound,
    pub(super) service_plan: ServicePlan,
    pub(super) document: Option<StoredDocument>,
    pub(super) old_state: Option<Item>,
}

impl Environment {
    /// Creates environment `name` from the profile's reference service running `image_uri`,
    /// or deploys `image_uri` to it when it exists. Converges: running it twice gives the same
    /// environment, and a run that died is finished. Takes the environment's lease; refuses
    /// anything that is not this environment's ([`Error::NotOwned`]); on failure, what this
    /// run created is removed again.
    pub async fn create(
        &self,
        profile: &Profile,
        name: &str,
        image_uri: &str,
        options: &CreateOptions,
    ) -> Result<Outcome> {
        let names = self.validate(profile, name)?;
        let image = ImageRef::parse(image_uri)?;
        let now = options.now.unwrap_or_else(now_epoch);
        let run = self.run(profile, names, "create", now);
        if options.dry_run {
            return self.plan_create(&run, &image, image_uri, options).await;
        }
        let reads = match self.create_first(&run, &image, image_uri, options).await {
            Ok(reads) => reads,
            Err(e) => return Err(self.undo(&run, e).await),
        };
        let host = reads.host.clone();
        let result = tokio::select! {
            r = self.create_rest(&run, reads, image_uri, options) => r,
            lost = run.lease.keep() => Err(lost),
        };
        match result {
            Ok(()) => {
                tracing::info!(profile = %profile.name, env = %run.names.env, run = %run.run, "environment created");
                Ok(run.outcome(Some(host), false))
            }
            Err(e) => Err(self.undo(&run, e).await),
        }
    }

    /// Round 1: the lease (and `creating` state), beside the reads. When the lease is held
    /// elsewhere, waits for it and reads again.
    pub(super) async fn create_first(
        &self,
        run: &Run<'_>,
        image: &ImageRef,
        image_uri: &str,
        options: &CreateOptions,
    ) -> Result<CreateReads> {
        let update = self.lease_update(run, "creating");
        let (taken, reads) = tokio::join!(
            run.lease.try_acquire(&update),
            self.create_reads(run, image, image_uri, options)
        );
        let (old, reads) = match taken {
            Ok(old) => {
                run.journal(Undo::State { old: old.clone() });
                (old, reads)
            }
            Err(Refused::Held(_) | Refused::Retry) => {
                let old = self.wait_lease(run, &update).await?;
                // What was read before the wait may be stale.
                lock(&run.changes).clear();
                (old, self.create_reads(run, image, image_uri, options).await)
            }
            Err(refused) => return Err(self.refused(run, refused)),
        };
        let mut reads = reads?;
        reads.old_state = old;
        Ok(reads)
    }

    /// The reads of round 1, and every check they allow.
    pub(super) async fn create_reads(
        &self,
        run: &Run<'_>,
        image: &ImageRef,
        image_uri: &str,
        options: &CreateOptions,
    ) -> Result<CreateReads> {
        let p = run.profile;
        let c = &self.cloud;
        let names = &run.names;
        let reference = &p.reference_service_arn;
        let alb_arn = &p.master_alb_arn.arn;
        let (_, found, alb, https, zone, page, service, family, document) = tokio::try_join!(
            self.check_image(run, image, image_uri),
            async {
                c.ecs
                    .describe_service(&reference.cluster, &reference.service)
                    .await
                    .map_err(|e| Error::cloud(Step::ReadReference, &reference.arn, e))
            },
            async {
                c.elb
                    .describe_load_balancer(alb_arn)
                    .await
                    .map_err(|e| Error::cloud(Step::ReadLoadBalancer, alb_arn, e))
            },
            self.https_listener(alb_arn),
            self.zone_name(p),
            async {
                c.elb
                    .list_target_groups(None)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, &names.target_group, e))
            },
            async {
                c.ecs
                    .describe_service(&p.target_cluster, &names.resource)
                    .await
                    .map_err(|e| Error::cloud(Step::Service, &names.resource, e))
            },
            async {
                c.ecs
                    .describe_latest_task_definition(&names.resource)
                    .await
                    .map_err(|e| Error::cloud(Step::TaskDefinition, &names.resource, e))
            },
            self.read_document(run),
        )?;
        let reference_service = decide::reference(found, &reference.arn)?;
        decide::reference_resources(&reference_service, names)?;
        let target = decide::target_of(&reference_service)?;
        let (spec, left_out) =
            decide::service_spec(&reference_service, &target, options.leave_out_uncopyable)?;
        let service_plan = decide::service(service.as_ref(), &run.owner)?;
        decide::family(family.as_ref(), &run.owner)?;
        let host = names.host(&zone)?;
        // A DNS name may have 253 characters, an ALB host condition 128: refused here, before
        // anything is written, rather than by CreateRule after the target group exists.
        crate::name_rules::check_length(
            "host (an ALB host condition)",
            &host,
            crate::name_rules::MAX_HOST_HEADER_LEN,
        )?;
        if run
            .owner
            .txt_record(&host)
            .values
            .iter()
            .any(|v| v.len() > 257)
        {
            return Err(Error::Conflict {
                step: Step::Dns,
                resource: host,
                message: "the profile name is too long for the DNS ownership record (255 \
                          characters with the environment name)"
                    .into(),
            });
        }
        // The document is checked, and the entry's owner, before anything is written.
        let doc = self.parse_document(run, document.as_ref())?;
        decide::endpoint_upsert(&doc, p, &names.endpoint_entry, &host, &run.owner)?;
        let ref_tg = target.target_group_arn.clone().unwrap_or_default();
        let groups = decide::find_groups(
            &page.items,
            page.next.is_none(),
            &ref_tg,
            &names.target_group,
        );
        Ok(CreateReads {
            reference: reference_service,
            target,
            spec,
            left_out,
            alb,
            https,
            host,
            groups,
            service_plan,
            document,
            old_state: None,
        })
    }

    /// Rounds 2 to 5, under the lease.
    pub(super) async fn create_rest(
        &self,
        run: &Run<'_>,
        r: CreateReads,
        image_uri: &str,
        options: &CreateOptions,
    ) -> Result<()> {
        let c = &self.cloud;
        let p = run.profile;
        let host = r.host.clone();
        let ref_tg_arn = r.target.target_group_arn.clone().unwrap_or_default();
        let container = r.target.container_name.clone().unwrap_or_default();

        // Round 2: the target group, what the writes copy from, what routes the host.
        let (ref_td, attributes, rules, a, txt, group) = tokio::join!(
            async {
                c.ecs
                    .describe_task_definition(&r.reference.spec.task_definition)
                    .await
                    .map_err(|e| {
                        Error::cloud(Step::ReadReference, &r.reference.spec.task_definition, e)
                    })
            },
            async {
                if r.groups.environment.is_some() {
                    return Ok(BTreeMap::new());
                }
                c.elb
                    .target_group_attributes(&ref_tg_arn)
                    .await
                    .map_err(|e| Error::cloud(Step::ReadReference, &ref_tg_arn, e))
            },
            self.all_rules(&r.https.arn),
            self.find_record(p, &host, "A"),
            self.find_record(p, &host, "TXT"),
            self.second_round_group(run, &r.groups, &ref_tg_arn),
        );
        let group = group?;
        let (ref_td, attributes, rules) = (ref_td?, attributes?, rules?);
        let wanted = decide::wanted_record(&host, &r.alb);
        let dns_plan = decide::dns(a?.as_ref(), txt?.as_ref(), &wanted, &run.owner)?;
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

        // Round 3: the revision; the rule (or its owner); whether this run made the group.
        let (td, verified, rule) = tokio::join!(
            self.register_task_definition(run, &ref_td, &container, image_uri),
            self.verify_group(run, &group),
            self.third_round_rule(run, &r.https, &host, &rules, &routing, &group),
        );
        let td = td?;
        let (tg, tg_created) = verified?;
        let rule = rule?;

        // Round 4: the service (the rule first, on the slow path), the copied attributes.
        let (service, attrs) = tokio::join!(
            async {
                let rule_arn = match rule {
                    RuleState::Done(arn) => arn,
                    RuleState::AfterGroup => {
                        self.create_rule(run, &r.https, &host, &tg, &rules).await?
                    }
                };
                let svc = self.ensure_service(run, &r, &td, &tg, options).await?;
                Ok::<_, Error>((rule_arn, svc))
            },
            async {
                if !tg_created || attributes.is_empty() {
                    return Ok(());
                }
                c.elb
                    .modify_target_group_attributes(&tg.arn, &attributes)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, &tg.arn, e))
            }
        );
        let (rule_arn, service) = service?;
        attrs?;

        if let Some(timeout) = options.wait_stable {
            match self
                .wait_stable(run, &p.target_cluster, &run.names.resource, timeout)
                .await
            {
                Ok(()) => {}
                Err(Error::Timeout {
                    step,
                    resource,
                    waited,
                    ..
                }) => {
                    return Err(self
                        .keep_unpublished(run, &host, step, resource, waited)
                        .await);
                }
                Err(e) => return Err(e),
            }
        }

        // Round 5: publish, now that the service exists; the ready state releases the lease.
        let manifest = [
            (attr::TARGET_GROUP, tg.arn.clone()),
            (attr::RULE, rule_arn),
            (attr::SERVICE, service),
        ];
        self.publish(
            run,
            &host,
            &r.alb,
            dns_plan,
            r.document,
            r.old_state.is_some(),
            &manifest,
        )
        .await
    }

    pub(super) async fn register_task_definition(
        &self,
        run: &Run<'_>,
        reference: &TaskDefinition,
        container: &str,
        image_uri: &str,
    ) -> Result<TaskDefinition> {
        let family = &run.names.resource;
        let td = self
            .cloud
            .ecs
            .register_task_definition(RegisterTaskDefinition {
                base: reference.arn.clone(),
                family: family.clone(),
                images: vec![crate::cloud::ContainerImage {
                    name: container.to_owned(),
                    image: image_uri.to_owned(),
                }],
                tags: run.tags(),
            })
            .await
            .map_err(|e| Error::cloud(Step::TaskDefinition, family, e))?;
        run.journal(Undo::TaskDefinition(td.arn.clone()));
        run.record(
            ResourceKind::TaskDefinition,
            &td.arn,
            Action::Created,
            Some(format!("revision {} from {}", td.revision, reference.arn)),
        );
        Ok(td)
    }

    /// Creates the service, or points the existing one at the new revision; returns its ARN.
    pub(super) async fn ensure_service(
        &self,
        run: &Run<'_>,
        r: &CreateReads,
        td: &TaskDefinition,
        tg: &TargetGroup,
        options: &CreateOptions,
    ) -> Result<String> {
        let p = run.profile;
        let name = &run.names.resource;
        let ecs = &self.cloud.ecs;
        let mut plan = r.service_plan.clone();
        if plan == ServicePlan::CreateAfterDraining {
            let timeout = options.draining_timeout.unwrap_or(Duration::from_secs(600));
            let now = self
                .wait_inactive(run, &p.target_cluster, name, timeout)
                .await?;
            plan = decide::service(now.as_ref(), &run.owner)?;
        }
        let left_out =
            (!r.left_out.is_empty()).then(|| format!("left out: {}", r.left_out.join("; ")));
        if let ServicePlan::Update { previous } = plan {
            let svc = ecs
                .update_service(&p.target_cluster, name, &td.arn, true)
                .await
                .map_err(|e| Error::cloud(Step::Service, name, e))?;
            run.journal(Undo::ServiceUpdated {
                cluster: p.target_cluster.clone(),
                name: name.clone(),
                previous,
            });
            run.record(
                ResourceKind::Service,
                &svc.arn,
                Action::Updated,
                Some(format!("deploying {}", td.arn)),
            );
            return Ok(svc.arn);
        }
        let mut spec = r.spec.clone();
        spec.task_definition = td.arn.clone();
        spec.load_balancers = vec![ServiceLoadBalancer {
            target_group_arn: Some(tg.arn.clone()),
            container_name: r.target.container_name.clone(),
            container_port: r.target.container_port,
        }];
        let svc = ecs
            .create_service(CreateService {
                cluster: p.target_cluster.clone(),
                name: name.clone(),
                spec,
                tags: run.tags(),
            })
            .await
            .map_err(|e| Error::cloud(Step::Service, name, e))?;
        run.journal(Undo::ServiceCreated {
            cluster: p.target_cluster.clone(),
            name: name.clone(),
        });
        run.record(ResourceKind::Service, &svc.arn, Action::Created, left_out);
        Ok(svc.arn)
    }

    pub(super) async fn check_image(
        &self,
        run: &Run<'_>,
        image: &ImageRef,
        uri: &str,
    ) -> Result<()> {
        match image {
            ImageRef::Other(_) => {
                run.record(
                    ResourceKind::Image,
                    uri,
                    Action::Unchecked,
                    Some("not a private ECR image: accepted without a check".into()),
                );
                Ok(())
            }
            ImageRef::Ecr(ecr) => match self.cloud.images.describe_image(ecr).await {
                Ok(found) => {
                    run.record(
                        ResourceKind::Image,
                        uri,
                        Action::Checked,
                        Some(found.digest),
                    );
                    Ok(())
                }
                Err(e) if e.is(&[codes::IMAGE_NOT_FOUND, codes::REPOSITORY_NOT_FOUND]) => {
                    Err(Error::ImageNotFound {
                        image: uri.to_owned(),
                        code: e.code,
                        message: e.message,
                    })
                }
                Err(e) => Err(Error::cloud(Step::CheckImage, uri, e)),
            },
        }
    }
}
