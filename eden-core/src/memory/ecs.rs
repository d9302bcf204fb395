//! [`EcsApi`] in memory: clusters, services that go DRAINING then INACTIVE, rollouts that
//! complete (or fail, [`MemoryOptions::fail_rollouts`](super::MemoryOptions::fail_rollouts)),
//! task definition revisions.

use async_trait::async_trait;

use super::{MemService, MemoryCloud, World, err, last_segment};
use crate::cloud::{
    CloudError, CloudResult, CreateService, Deployment, EcsApi, RegisterTaskDefinition, Service,
    TaskDefinition, TaskDefinitionStatus,
};
use crate::name_rules;

impl MemoryCloud {
    /// A service as stored, without advancing its DRAINING countdown.
    pub fn peek_service(&self, cluster: &str, name: &str) -> Option<Service> {
        let w = self.lock();
        w.services
            .get(&(last_segment(cluster).to_owned(), name.to_owned()))
            .map(|s| s.service.clone())
    }

    /// Changes a stored service (for tests: a reference with Service Connect, registries...);
    /// false when there is no such service.
    pub fn edit_service(&self, cluster: &str, name: &str, edit: impl FnOnce(&mut Service)) -> bool {
        let mut w = self.lock();
        match w
            .services
            .get_mut(&(last_segment(cluster).to_owned(), name.to_owned()))
        {
            Some(s) => {
                edit(&mut s.service);
                true
            }
            None => false,
        }
    }

    /// A task definition as stored (for tests checking what was copied).
    pub fn peek_task_definition(&self, family: &str, revision: i32) -> Option<TaskDefinition> {
        let w = self.lock();
        w.task_definitions.get(family)?.get(&revision).cloned()
    }

    fn cluster(w: &World, cluster: &str) -> CloudResult<()> {
        if w.clusters.contains(last_segment(cluster)) {
            Ok(())
        } else {
            err("ClusterNotFoundException", "Cluster not found.")
        }
    }

    /// Adds an (empty) ECS cluster.
    pub fn put_cluster(&self, name: &str) {
        self.lock().clusters.insert(name.to_owned());
    }
}

#[async_trait]
impl EcsApi for MemoryCloud {
    async fn describe_service(&self, cluster: &str, name: &str) -> CloudResult<Option<Service>> {
        let mut w = self.lock();
        Self::cluster(&w, cluster)?;
        let Some(s) = w
            .services
            .get_mut(&(last_segment(cluster).to_owned(), name.to_owned()))
        else {
            return Ok(None);
        };
        if s.service.status == "DRAINING" {
            if s.polls_left == 0 {
                s.service.status = "INACTIVE".into();
            } else {
                s.polls_left -= 1;
            }
        } else if s.service.status == "ACTIVE" {
            let in_progress = s
                .service
                .deployments
                .first()
                .is_some_and(|d| d.rollout_state.as_deref() == Some("IN_PROGRESS"));
            if s.polls_left > 0 {
                s.polls_left -= 1;
            } else if in_progress && self.options.fail_rollouts {
                let name = s.service.name.clone();
                if let Some(d) = s.service.deployments.first_mut() {
                    d.rollout_state = Some("FAILED".into());
                    d.failed_tasks = 3;
                    d.rollout_state_reason =
                        Some("ECS deployment circuit breaker: tasks failed to start.".into());
                }
                s.service.events.insert(
                    0,
                    crate::cloud::ServiceEvent {
                        created_at: Some(chrono::Utc::now().to_rfc3339()),
                        message: format!(
                            "(service {name}) deployment failed: tasks failed to start."
                        ),
                    },
                );
            } else if in_progress
                || (s.service.deployments.len() > 1 && !s.service.rollout_failed())
            {
                for d in &mut s.service.deployments {
                    d.rollout_state = Some("COMPLETED".into());
                    d.running_count = d.desired_count;
                }
                s.service.deployments.truncate(1);
                s.service.running_count = s.service.spec.desired_count;
                let name = s.service.name.clone();
                s.service.events.insert(
                    0,
                    crate::cloud::ServiceEvent {
                        created_at: Some(chrono::Utc::now().to_rfc3339()),
                        message: format!("(service {name}) has reached a steady state."),
                    },
                );
            }
        }
        Ok(Some(s.service.clone()))
    }

    async fn create_service(&self, request: CreateService) -> CloudResult<Service> {
        let mut w = self.lock();
        Self::cluster(&w, &request.cluster)?;
        let cluster = last_segment(&request.cluster).to_owned();
        let key = (cluster.clone(), request.name.clone());
        if let Some(existing) = w.services.get(&key) {
            match existing.service.status.as_str() {
                "ACTIVE" => {
                    return err(
                        "InvalidParameterException",
                        "Creation of service was not idempotent.",
                    );
                }
                "DRAINING" => {
                    return err(
                        "InvalidParameterException",
                        "Unable to Start a service that is still Draining.",
                    );
                }
                _ => {}
            }
        }
        name_rules::check_ecs_name("service name", &request.name)
            .map_err(|e| CloudError::new("InvalidParameterException", e.to_string()))?;
        let spec = &request.spec;
        if spec.propagate_tags.as_deref() == Some("NONE") {
            return err(
                "InvalidParameterException",
                "Invalid value for propagateTags: NONE",
            );
        }
        if spec.launch_type.is_some() && !spec.capacity_provider_strategy.is_empty() {
            return err(
                "InvalidParameterException",
                "Specifying both a launch type and capacity provider strategy is not supported.",
            );
        }
        let td_ok = w
            .task_definitions
            .values()
            .flat_map(|r| r.values())
            .any(|t| t.arn == spec.task_definition && t.status == "ACTIVE");
        if !td_ok {
            return err(
                "ClientException",
                format!("TaskDefinition not found: {}", spec.task_definition),
            );
        }
        for lb in &spec.load_balancers {
            let Some(tg) = &lb.target_group_arn else {
                continue;
            };
            if !w.target_groups.contains_key(tg) {
                return err(
                    "InvalidParameterException",
                    format!(
                        "Unable to assume role and validate the specified targetGroupArn: {tg}"
                    ),
                );
            }
            if Self::target_group_lbs(&w, tg).is_empty() {
                return err(
                    "InvalidParameterException",
                    format!(
                        "The target group with targetGroupArn {tg} does not have an associated load balancer."
                    ),
                );
            }
        }
        let arn = format!(
            "arn:aws:ecs:{}:{}:service/{cluster}/{}",
            self.region, self.account, request.name
        );
        let service = Service {
            arn,
            name: request.name.clone(),
            cluster_arn: format!(
                "arn:aws:ecs:{}:{}:cluster/{cluster}",
                self.region, self.account
            ),
            status: "ACTIVE".into(),
            running_count: 0,
            deployments: vec![Deployment {
                status: "PRIMARY".into(),
                rollout_state: Some("IN_PROGRESS".into()),
                task_definition: spec.task_definition.clone(),
                desired_count: spec.desired_count,
                ..Deployment::default()
            }],
            spec: request.spec,
            tags: request.tags,
            ..Service::default()
        };
        w.services.insert(
            key,
            MemService {
                service: service.clone(),
                polls_left: self.options.stabilize_polls,
            },
        );
        Ok(service)
    }

    async fn update_service(
        &self,
        cluster: &str,
        name: &str,
        task_definition: &str,
        _force_new_deployment: bool,
    ) -> CloudResult<Service> {
        let mut w = self.lock();
        let exists = w
            .task_definitions
            .values()
            .flat_map(|r| r.values())
            .any(|t| t.arn == task_definition && t.status == "ACTIVE");
        if !exists {
            return err(
                "ClientException",
                format!("TaskDefinition not found: {task_definition}"),
            );
        }
        let stabilize = self.options.stabilize_polls;
        let Some(s) = w
            .services
            .get_mut(&(last_segment(cluster).to_owned(), name.to_owned()))
        else {
            return err("ServiceNotFoundException", "Service not found.");
        };
        if s.service.status != "ACTIVE" {
            return err("ServiceNotActiveException", "Service was not ACTIVE.");
        }
        s.service.spec.task_definition = task_definition.to_owned();
        for d in &mut s.service.deployments {
            d.status = "ACTIVE".into();
        }
        s.service.deployments.insert(
            0,
            Deployment {
                status: "PRIMARY".into(),
                rollout_state: Some("IN_PROGRESS".into()),
                task_definition: task_definition.to_owned(),
                desired_count: s.service.spec.desired_count,
                ..Deployment::default()
            },
        );
        s.polls_left = stabilize;
        Ok(s.service.clone())
    }

    async fn delete_service(&self, cluster: &str, name: &str, force: bool) -> CloudResult<Service> {
        let mut w = self.lock();
        let draining = self.options.draining_polls;
        let Some(s) = w
            .services
            .get_mut(&(last_segment(cluster).to_owned(), name.to_owned()))
        else {
            return err("ServiceNotFoundException", "Service not found.");
        };
        if s.service.status != "ACTIVE" {
            return err("ServiceNotActiveException", "Service was not ACTIVE.");
        }
        if s.service.spec.desired_count > 0 && !force {
            return err(
                "InvalidParameterException",
                "The service cannot be stopped while it is scaled above 0.",
            );
        }
        s.service.status = if draining == 0 {
            "INACTIVE"
        } else {
            "DRAINING"
        }
        .into();
        s.service.spec.desired_count = 0;
        s.polls_left = draining.saturating_sub(1);
        Ok(s.service.clone())
    }

    async fn describe_task_definition(&self, arn: &str) -> CloudResult<TaskDefinition> {
        let w = self.lock();
        w.task_definitions
            .values()
            .flat_map(|r| r.values())
            .find(|t| t.arn == arn || format!("{}:{}", t.family, t.revision) == last_segment(arn))
            .cloned()
            .ok_or_else(|| {
                CloudError::new("ClientException", "Unable to describe task definition.")
            })
    }

    async fn describe_latest_task_definition(
        &self,
        family: &str,
    ) -> CloudResult<Option<TaskDefinition>> {
        let w = self.lock();
        Ok(w.task_definitions
            .get(family)
            .and_then(|revs| revs.values().rev().find(|t| t.status == "ACTIVE").cloned()))
    }

    async fn register_task_definition(
        &self,
        request: RegisterTaskDefinition,
    ) -> CloudResult<TaskDefinition> {
        let mut w = self.lock();
        name_rules::check_ecs_name("family", &request.family)
            .map_err(|e| CloudError::new("ClientException", e.to_string()))?;
        let Some(base) = w
            .task_definitions
            .values()
            .flat_map(|r| r.values())
            .find(|t| t.arn == request.base)
            .cloned()
        else {
            return err("ClientException", "Unable to describe task definition.");
        };
        let mut def = base;
        for image in &request.images {
            let Some(c) = def.containers.iter_mut().find(|c| c.name == image.name) else {
                return err(
                    "ClientException",
                    format!("container {} not found in {}", image.name, request.base),
                );
            };
            c.image = image.image.clone();
        }
        for tag in request.tags {
            def.tags.retain(|t| t.key != tag.key);
            def.tags.push(tag);
        }
        let revision = w.last_revision.get(&request.family).copied().unwrap_or(0) + 1;
        w.last_revision.insert(request.family.clone(), revision);
        def.arn = format!(
            "arn:aws:ecs:{}:{}:task-definition/{}:{revision}",
            self.region, self.account, request.family
        );
        def.family = request.family.clone();
        def.revision = revision;
        def.status = "ACTIVE".into();
        w.task_definitions
            .entry(request.family)
            .or_default()
            .insert(revision, def.clone());
        Ok(def)
    }

    async fn list_task_definitions(
        &self,
        family: &str,
        status: TaskDefinitionStatus,
    ) -> CloudResult<Vec<String>> {
        let w = self.lock();
        let want = match status {
            TaskDefinitionStatus::Active => "ACTIVE",
            TaskDefinitionStatus::Inactive => "INACTIVE",
        };
        Ok(w.task_definitions
            .get(family)
            .map(|revs| {
                revs.values()
                    .filter(|t| t.status == want)
                    .map(|t| t.arn.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()> {
        let mut w = self.lock();
        let found = w
            .task_definitions
            .values_mut()
            .flat_map(|r| r.values_mut())
            .find(|t| t.arn == arn);
        match found {
            Some(t) => {
                t.status = "INACTIVE".into();
                Ok(())
            }
            None => err(
                "ClientException",
                "The specified task definition does not exist.",
            ),
        }
    }

    async fn delete_task_definitions(&self, arns: &[String]) -> CloudResult<Vec<(String, String)>> {
        if arns.is_empty() || arns.len() > 10 {
            return err(
                "InvalidParameterException",
                "between 1 and 10 task definitions per call",
            );
        }
        let mut w = self.lock();
        let mut failures = Vec::new();
        for arn in arns {
            let mut status = None;
            for revs in w.task_definitions.values_mut() {
                if let Some((rev, t)) = revs.iter().find(|(_, t)| &t.arn == arn) {
                    status = Some(t.status.clone());
                    if t.status == "INACTIVE" {
                        let rev = *rev;
                        revs.remove(&rev);
                    }
                    break;
                }
            }
            match status.as_deref() {
                Some("INACTIVE") => {}
                Some(_) => failures.push((arn.clone(), "The specified task definition is still in ACTIVE status. Deregister the target task definition first.".into())),
                None => failures.push((arn.clone(), "The specified task definition does not exist.".into())),
            }
        }
        Ok(failures)
    }
}
