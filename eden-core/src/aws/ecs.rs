//! [`EcsApi`] on `aws-sdk-ecs`.

use async_trait::async_trait;
use aws_types::SdkConfig;

use super::error::{build_error, map_sdk_error};
use super::non_empty;
use crate::cloud::{
    CapacityProviderItem, CloudError, CloudResult, ContainerImage, CreateService, Deployment,
    DeploymentAlarms, DeploymentConfiguration, EbsTagSpecification, EcsApi, LogConfiguration,
    ManagedEbsVolume, NetworkConfiguration, PlacementConstraint, PlacementStrategy,
    RegisterTaskDefinition, Service, ServiceConnect, ServiceConnectService, ServiceEvent,
    ServiceLoadBalancer, ServiceRegistry, ServiceSpec, Tag, TaskDefinition, TaskDefinitionStatus,
    VolumeConfiguration,
};

/// [`EcsApi`] on `aws-sdk-ecs`.
#[derive(Debug, Clone)]
pub struct AwsEcs {
    client: aws_sdk_ecs::Client,
}

impl AwsEcs {
    /// A client from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_ecs::Client::new(config),
        }
    }

    /// Wraps an existing client.
    pub fn from_client(client: aws_sdk_ecs::Client) -> Self {
        Self { client }
    }
}

fn ecs_tags(tags: &[aws_sdk_ecs::types::Tag]) -> Vec<Tag> {
    tags.iter()
        .map(|t| Tag::new(t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect()
}

fn to_ecs_tags(tags: &[Tag]) -> Option<Vec<aws_sdk_ecs::types::Tag>> {
    (!tags.is_empty()).then(|| {
        tags.iter()
            .map(|t| {
                aws_sdk_ecs::types::Tag::builder()
                    .key(&t.key)
                    .value(&t.value)
                    .build()
            })
            .collect()
    })
}

/// What a service has that [`ServiceSpec`] does not carry, by name.
fn unmodelled_parts(s: &aws_sdk_ecs::types::Service) -> Vec<String> {
    let mut parts = Vec::new();
    let primary = s
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"));
    if primary.is_some_and(|d| !d.vpc_lattice_configurations().is_empty()) {
        parts.push("VPC Lattice configurations".to_owned());
    }
    if let Some(d) = s.deployment_configuration() {
        if !d.lifecycle_hooks().is_empty() {
            parts.push("deployment lifecycle hooks".to_owned());
        }
        if let Some(strategy) = d.strategy()
            && strategy.as_str() != "ROLLING"
        {
            parts.push(format!("deployment strategy {}", strategy.as_str()));
        }
    }
    if s.load_balancers()
        .iter()
        .any(|l| l.advanced_configuration().is_some())
    {
        parts.push("load balancer advanced configuration (blue/green)".to_owned());
    }
    parts
}

fn log_configuration_from(l: &aws_sdk_ecs::types::LogConfiguration) -> LogConfiguration {
    LogConfiguration {
        log_driver: l.log_driver().as_str().to_owned(),
        options: l
            .options()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        secret_options: l
            .secret_options()
            .iter()
            .map(|s| (s.name().to_owned(), s.value_from().to_owned()))
            .collect(),
    }
}

fn service_connect_from(c: &aws_sdk_ecs::types::ServiceConnectConfiguration) -> ServiceConnect {
    ServiceConnect {
        enabled: c.enabled(),
        namespace: c.namespace().map(str::to_owned),
        services: c
            .services()
            .iter()
            .map(|s| ServiceConnectService {
                port_name: s.port_name().to_owned(),
                discovery_name: s.discovery_name().map(str::to_owned),
                client_aliases: s
                    .client_aliases()
                    .iter()
                    .map(|a| (a.port(), a.dns_name().map(str::to_owned)))
                    .collect(),
            })
            .collect(),
        log_configuration: c.log_configuration().map(log_configuration_from),
    }
}

fn volume_from(v: &aws_sdk_ecs::types::ServiceVolumeConfiguration) -> VolumeConfiguration {
    VolumeConfiguration {
        name: v.name().to_owned(),
        managed_ebs_volume: v.managed_ebs_volume().map(|e| ManagedEbsVolume {
            role_arn: e.role_arn().to_owned(),
            encrypted: e.encrypted(),
            kms_key_id: e.kms_key_id().map(str::to_owned),
            volume_type: e.volume_type().map(str::to_owned),
            size_in_gib: e.size_in_gib(),
            snapshot_id: e.snapshot_id().map(str::to_owned),
            volume_initialization_rate: e.volume_initialization_rate(),
            iops: e.iops(),
            throughput: e.throughput(),
            tag_specifications: e
                .tag_specifications()
                .iter()
                .map(|t| EbsTagSpecification {
                    resource_type: t.resource_type().as_str().to_owned(),
                    tags: ecs_tags(t.tags()),
                    propagate_tags: t.propagate_tags().map(|p| p.as_str().to_owned()),
                })
                .collect(),
            filesystem_type: e.filesystem_type().map(|f| f.as_str().to_owned()),
        }),
    }
}

fn service_from(s: &aws_sdk_ecs::types::Service) -> Service {
    use aws_sdk_ecs::types as t;
    let primary = s
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"));
    let network = s
        .network_configuration()
        .and_then(t::NetworkConfiguration::awsvpc_configuration)
        .map(|v| NetworkConfiguration {
            subnets: v.subnets().to_vec(),
            security_groups: v.security_groups().to_vec(),
            assign_public_ip: v.assign_public_ip().map(|a| a.as_str().to_owned()),
        });
    let spec = ServiceSpec {
        task_definition: s.task_definition().unwrap_or_default().to_owned(),
        desired_count: s.desired_count(),
        launch_type: s.launch_type().map(|l| l.as_str().to_owned()),
        capacity_provider_strategy: s
            .capacity_provider_strategy()
            .iter()
            .map(|c| CapacityProviderItem {
                capacity_provider: c.capacity_provider().to_owned(),
                weight: c.weight(),
                base: c.base(),
            })
            .collect(),
        platform_version: s.platform_version().map(str::to_owned),
        network_configuration: network,
        load_balancers: s
            .load_balancers()
            .iter()
            .map(|l| ServiceLoadBalancer {
                target_group_arn: l.target_group_arn().map(str::to_owned),
                container_name: l.container_name().map(str::to_owned),
                container_port: l.container_port(),
            })
            .collect(),
        deployment_configuration: s
            .deployment_configuration()
            .map(|d| DeploymentConfiguration {
                maximum_percent: d.maximum_percent(),
                minimum_healthy_percent: d.minimum_healthy_percent(),
                circuit_breaker: d
                    .deployment_circuit_breaker()
                    .map(|c| (c.enable(), c.rollback())),
                alarms: d.alarms().map(|a| DeploymentAlarms {
                    alarm_names: a.alarm_names().to_vec(),
                    enable: a.enable(),
                    rollback: a.rollback(),
                }),
            }),
        placement_constraints: s
            .placement_constraints()
            .iter()
            .map(|p| PlacementConstraint {
                kind: p
                    .r#type()
                    .map(|k| k.as_str().to_owned())
                    .unwrap_or_default(),
                expression: p.expression().map(str::to_owned),
            })
            .collect(),
        placement_strategy: s
            .placement_strategy()
            .iter()
            .map(|p| PlacementStrategy {
                kind: p
                    .r#type()
                    .map(|k| k.as_str().to_owned())
                    .unwrap_or_default(),
                field: p.field().map(str::to_owned),
            })
            .collect(),
        service_registries: s
            .service_registries()
            .iter()
            .map(|r| ServiceRegistry {
                registry_arn: r.registry_arn().map(str::to_owned),
                port: r.port(),
                container_name: r.container_name().map(str::to_owned),
                container_port: r.container_port(),
            })
            .collect(),
        health_check_grace_period_seconds: s.health_check_grace_period_seconds(),
        enable_execute_command: s.enable_execute_command(),
        propagate_tags: s.propagate_tags().map(|p| p.as_str().to_owned()),
        enable_ecs_managed_tags: s.enable_ecs_managed_tags(),
        scheduling_strategy: s.scheduling_strategy().map(|p| p.as_str().to_owned()),
        service_connect: primary
            .and_then(|d| d.service_connect_configuration())
            .map(service_connect_from),
        volume_configurations: primary
            .map(|d| d.volume_configurations().iter().map(volume_from).collect())
            .unwrap_or_default(),
        deployment_controller: s
            .deployment_controller()
            .map(|c| c.r#type().as_str().to_owned()),
        availability_zone_rebalancing: s
            .availability_zone_rebalancing()
            .map(|a| a.as_str().to_owned()),
    };
    Service {
        arn: s.service_arn().unwrap_or_default().to_owned(),
        name: s.service_name().unwrap_or_default().to_owned(),
        cluster_arn: s.cluster_arn().unwrap_or_default().to_owned(),
        status: s.status().unwrap_or_default().to_owned(),
        spec,
        running_count: s.running_count(),
        deployments: s
            .deployments()
            .iter()
            .map(|d| Deployment {
                status: d.status().unwrap_or_default().to_owned(),
                rollout_state: d.rollout_state().map(|r| r.as_str().to_owned()),
                task_definition: d.task_definition().unwrap_or_default().to_owned(),
                desired_count: d.desired_count(),
                running_count: d.running_count(),
                failed_tasks: d.failed_tasks(),
                rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
            })
            .collect(),
        events: s
            .events()
            .iter()
            .take(20)
            .map(|e| ServiceEvent {
                created_at: e.created_at().map(|t| t.to_string()),
                message: e.message().unwrap_or_default().to_owned(),
            })
            .collect(),
        tags: ecs_tags(s.tags()),
        unmodelled: unmodelled_parts(s),
    }
}

fn task_definition_from(
    td: &aws_sdk_ecs::types::TaskDefinition,
    tags: &[aws_sdk_ecs::types::Tag],
) -> TaskDefinition {
    TaskDefinition {
        arn: td.task_definition_arn().unwrap_or_default().to_owned(),
        family: td.family().unwrap_or_default().to_owned(),
        revision: td.revision(),
        status: td
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        containers: td
            .container_definitions()
            .iter()
            .map(|c| ContainerImage {
                name: c.name().unwrap_or_default().to_owned(),
                image: c.image().unwrap_or_default().to_owned(),
            })
            .collect(),
        network_mode: td.network_mode().map(|n| n.as_str().to_owned()),
        task_role_arn: td.task_role_arn().map(str::to_owned),
        execution_role_arn: td.execution_role_arn().map(str::to_owned),
        cpu: td.cpu().map(str::to_owned),
        memory: td.memory().map(str::to_owned),
        requires_compatibilities: td
            .requires_compatibilities()
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        tags: ecs_tags(tags),
    }
}

fn to_log_configuration(l: &LogConfiguration) -> CloudResult<aws_sdk_ecs::types::LogConfiguration> {
    use aws_sdk_ecs::types as t;
    let secrets = l
        .secret_options
        .iter()
        .map(|(name, from)| {
            t::Secret::builder()
                .name(name)
                .value_from(from)
                .build()
                .map_err(build_error)
        })
        .collect::<CloudResult<Vec<_>>>()?;
    t::LogConfiguration::builder()
        .log_driver(t::LogDriver::from(l.log_driver.as_str()))
        .set_options((!l.options.is_empty()).then(|| l.options.clone().into_iter().collect()))
        .set_secret_options(non_empty(secrets))
        .build()
        .map_err(build_error)
}

fn to_service_connect(
    c: &ServiceConnect,
) -> CloudResult<aws_sdk_ecs::types::ServiceConnectConfiguration> {
    use aws_sdk_ecs::types as t;
    let services = c
        .services
        .iter()
        .map(|s| {
            let aliases = s
                .client_aliases
                .iter()
                .map(|(port, dns)| {
                    t::ServiceConnectClientAlias::builder()
                        .port(*port)
                        .set_dns_name(dns.clone())
                        .build()
                        .map_err(build_error)
                })
                .collect::<CloudResult<Vec<_>>>()?;
            t::ServiceConnectService::builder()
                .port_name(&s.port_name)
                .set_discovery_name(s.discovery_name.clone())
                .set_client_aliases(non_empty(aliases))
                .build()
                .map_err(build_error)
        })
        .collect::<CloudResult<Vec<_>>>()?;
    Ok(t::ServiceConnectConfiguration::builder()
        .enabled(c.enabled)
        .set_namespace(c.namespace.clone())
        .set_services(non_empty(services))
        .set_log_configuration(
            c.log_configuration
                .as_ref()
                .map(to_log_configuration)
                .transpose()?,
        )
        .build())
}

fn to_volume(
    v: &VolumeConfiguration,
) -> CloudResult<aws_sdk_ecs::types::ServiceVolumeConfiguration> {
    use aws_sdk_ecs::types as t;
    let ebs = v
        .managed_ebs_volume
        .as_ref()
        .map(|e| {
            let tags = e
                .tag_specifications
                .iter()
                .map(|t| {
                    t::EbsTagSpecification::builder()
                        .resource_type(t::EbsResourceType::from(t.resource_type.as_str()))
                        .set_tags(to_ecs_tags(&t.tags))
                        .set_propagate_tags(t.propagate_tags.as_deref().map(t::PropagateTags::from))
                        .build()
                        .map_err(build_error)
                })
                .collect::<CloudResult<Vec<_>>>()?;
            t::ServiceManagedEbsVolumeConfiguration::builder()
                .role_arn(&e.role_arn)
                .set_encrypted(e.encrypted)
                .set_kms_key_id(e.kms_key_id.clone())
                .set_volume_type(e.volume_type.clone())
                .set_size_in_gib(e.size_in_gib)
                .set_snapshot_id(e.snapshot_id.clone())
                .set_volume_initialization_rate(e.volume_initialization_rate)
                .set_iops(e.iops)
                .set_throughput(e.throughput)
                .set_tag_specifications(non_empty(tags))
                .set_filesystem_type(
                    e.filesystem_type
                        .as_deref()
                        .map(t::TaskFilesystemType::from),
                )
                .build()
                .map_err(build_error)
        })
        .transpose()?;
    t::ServiceVolumeConfiguration::builder()
        .name(&v.name)
        .set_managed_ebs_volume(ebs)
        .build()
        .map_err(build_error)
}

/// The family of a task definition ARN (`...:task-definition/<family>:<revision>`).
fn family_of(arn: &str) -> Option<&str> {
    let last = arn.rsplit('/').next()?;
    last.rsplit_once(':').map(|(family, _)| family)
}

#[async_trait]
impl EcsApi for AwsEcs {
    async fn describe_service(&self, cluster: &str, name: &str) -> CloudResult<Option<Service>> {
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(name)
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .map_err(map_sdk_error)?;
        Ok(out.services().first().map(service_from))
    }

    async fn create_service(&self, request: CreateService) -> CloudResult<Service> {
        use aws_sdk_ecs::types as t;
        let s = &request.spec;
        let strategy = s
            .capacity_provider_strategy
            .iter()
            .map(|c| {
                t::CapacityProviderStrategyItem::builder()
                    .capacity_provider(&c.capacity_provider)
                    .weight(c.weight)
                    .base(c.base)
                    .build()
                    .map_err(build_error)
            })
            .collect::<CloudResult<Vec<_>>>()?;
        let network = match &s.network_configuration {
            Some(n) => Some(
                t::NetworkConfiguration::builder()
                    .awsvpc_configuration(
                        t::AwsVpcConfiguration::builder()
                            .set_subnets(Some(n.subnets.clone()))
                            .set_security_groups(non_empty(n.security_groups.clone()))
                            .set_assign_public_ip(
                                n.assign_public_ip.as_deref().map(t::AssignPublicIp::from),
                            )
                            .build()
                            .map_err(build_error)?,
                    )
                    .build(),
            ),
            None => None,
        };
        let daemon = s.scheduling_strategy.as_deref() == Some("DAEMON");
        let service_connect = s
            .service_connect
            .as_ref()
            .map(to_service_connect)
            .transpose()?;
        let volumes = s
            .volume_configurations
            .iter()
            .map(to_volume)
            .collect::<CloudResult<Vec<_>>>()?;
        let controller = s
            .deployment_controller
            .as_deref()
            .map(|c| {
                t::DeploymentController::builder()
                    .r#type(t::DeploymentControllerType::from(c))
                    .build()
                    .map_err(build_error)
            })
            .transpose()?;
        let out = self
            .client
            .create_service()
            .cluster(&request.cluster)
            .service_name(&request.name)
            .task_definition(&s.task_definition)
            .set_desired_count((!daemon).then_some(s.desired_count))
            .set_launch_type(s.launch_type.as_deref().map(t::LaunchType::from))
            .set_capacity_provider_strategy(non_empty(strategy))
            .set_platform_version(s.platform_version.clone())
            .set_network_configuration(network)
            .set_load_balancers(non_empty(
                s.load_balancers
                    .iter()
                    .map(|l| {
                        t::LoadBalancer::builder()
                            .set_target_group_arn(l.target_group_arn.clone())
                            .set_container_name(l.container_name.clone())
                            .set_container_port(l.container_port)
                            .build()
                    })
                    .collect(),
            ))
            .set_deployment_configuration(s.deployment_configuration.as_ref().map(|d| {
                t::DeploymentConfiguration::builder()
                    .set_maximum_percent(d.maximum_percent)
                    .set_minimum_healthy_percent(d.minimum_healthy_percent)
                    .set_deployment_circuit_breaker(d.circuit_breaker.map(|(enable, rollback)| {
                        t::DeploymentCircuitBreaker::builder()
                            .enable(enable)
                            .rollback(rollback)
                            .build()
                    }))
                    .set_alarms(d.alarms.as_ref().and_then(|a| {
                        t::DeploymentAlarms::builder()
                            .set_alarm_names(Some(a.alarm_names.clone()))
                            .enable(a.enable)
                            .rollback(a.rollback)
                            .build()
                            .ok()
                    }))
                    .build()
            }))
            .set_service_connect_configuration(service_connect)
            .set_volume_configurations(non_empty(volumes))
            .set_deployment_controller(controller)
            .set_availability_zone_rebalancing(
                s.availability_zone_rebalancing
                    .as_deref()
                    .map(t::AvailabilityZoneRebalancing::from),
            )
            .set_placement_constraints(non_empty(
                s.placement_constraints
                    .iter()
                    .map(|p| {
                        t::PlacementConstraint::builder()
                            .r#type(t::PlacementConstraintType::from(p.kind.as_str()))
                            .set_expression(p.expression.clone())
                            .build()
                    })
                    .collect(),
            ))
            .set_placement_strategy(non_empty(
                s.placement_strategy
                    .iter()
                    .map(|p| {
                        t::PlacementStrategy::builder()
                            .r#type(t::PlacementStrategyType::from(p.kind.as_str()))
                            .set_field(p.field.clone())
                            .build()
                    })
                    .collect(),
            ))
            .set_service_registries(non_empty(
                s.service_registries
                    .iter()
                    .map(|r| {
                        t::ServiceRegistry::builder()
                            .set_registry_arn(r.registry_arn.clone())
                            .set_port(r.port)
                            .set_container_name(r.container_name.clone())
                            .set_container_port(r.container_port)
                            .build()
                    })
                    .collect(),
            ))
            .set_health_check_grace_period_seconds(s.health_check_grace_period_seconds)
            .enable_execute_command(s.enable_execute_command)
            .set_propagate_tags(s.propagate_tags.as_deref().map(t::PropagateTags::from))
            .enable_ecs_managed_tags(s.enable_ecs_managed_tags)
            .set_scheduling_strategy(
                s.scheduling_strategy
                    .as_deref()
                    .map(t::SchedulingStrategy::from),
            )
            .set_tags(to_ecs_tags(&request.tags))
            .send()
            .await
            .map_err(map_sdk_error)?;
        out.service()
            .map(service_from)
            .ok_or_else(|| CloudError::new("InvalidResponse", "CreateService returned no service"))
    }

    async fn update_service(
        &self,
        cluster: &str,
        name: &str,
        task_definition: &str,
        force_new_deployment: bool,
    ) -> CloudResult<Service> {
        let out = self
            .client
            .update_service()
            .cluster(cluster)
            .service(name)
            .task_definition(task_definition)
            .force_new_deployment(force_new_deployment)
            .send()
            .await
            .map_err(map_sdk_error)?;
        out.service()
            .map(service_from)
            .ok_or_else(|| CloudError::new("InvalidResponse", "UpdateService returned no service"))
    }

    async fn delete_service(&self, cluster: &str, name: &str, force: bool) -> CloudResult<Service> {
        let out = self
            .client
            .delete_service()
            .cluster(cluster)
            .service(name)
            .force(force)
            .send()
            .await
            .map_err(map_sdk_error)?;
        out.service()
            .map(service_from)
            .ok_or_else(|| CloudError::new("InvalidResponse", "DeleteService returned no service"))
    }

    async fn describe_task_definition(&self, arn: &str) -> CloudResult<TaskDefinition> {
        let out = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(map_sdk_error)?;
        out.task_definition()
            .map(|td| task_definition_from(td, out.tags()))
            .ok_or_else(|| CloudError::new("InvalidResponse", "no task definition"))
    }

    async fn describe_latest_task_definition(
        &self,
        family: &str,
    ) -> CloudResult<Option<TaskDefinition>> {
        match self.describe_task_definition(family).await {
            Ok(td) => Ok(Some(td)),
            // ECS answers a family without ACTIVE revisions with this client error.
            Err(e)
                if e.is(&["ClientException"])
                    && e.message.contains("Unable to describe task definition") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn register_task_definition(
        &self,
        request: RegisterTaskDefinition,
    ) -> CloudResult<TaskDefinition> {
        let base = self
            .client
            .describe_task_definition()
            .task_definition(&request.base)
            .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(map_sdk_error)?;
        let Some(td) = base.task_definition() else {
            return Err(CloudError::new("InvalidResponse", "no task definition"));
        };
        let mut containers = td.container_definitions().to_vec();
        for image in &request.images {
            let Some(c) = containers
                .iter_mut()
                .find(|c| c.name() == Some(image.name.as_str()))
            else {
                return Err(CloudError::new(
                    "ClientException",
                    format!("container {} not found in {}", image.name, request.base),
                ));
            };
            c.image = Some(image.image.clone());
        }
        let mut tags = ecs_tags(base.tags());
        for tag in &request.tags {
            tags.retain(|t| t.key != tag.key);
            tags.push(tag.clone());
        }
        // Every field a registration accepts, copied from the base revision.
        let out = self
            .client
            .register_task_definition()
            .family(&request.family)
            .set_container_definitions(Some(containers))
            .set_task_role_arn(td.task_role_arn.clone())
            .set_execution_role_arn(td.execution_role_arn.clone())
            .set_network_mode(td.network_mode.clone())
            .set_volumes(td.volumes.clone())
            .set_placement_constraints(td.placement_constraints.clone())
            .set_requires_compatibilities(td.requires_compatibilities.clone())
            .set_cpu(td.cpu.clone())
            .set_memory(td.memory.clone())
            .set_pid_mode(td.pid_mode.clone())
            .set_ipc_mode(td.ipc_mode.clone())
            .set_proxy_configuration(td.proxy_configuration.clone())
            .set_ephemeral_storage(td.ephemeral_storage.clone())
            .set_runtime_platform(td.runtime_platform.clone())
            .set_enable_fault_injection(td.enable_fault_injection)
            .set_tags(to_ecs_tags(&tags))
            .send()
            .await
            .map_err(map_sdk_error)?;
        out.task_definition()
            .map(|td| task_definition_from(td, out.tags()))
            .ok_or_else(|| CloudError::new("InvalidResponse", "no task definition registered"))
    }

    async fn list_task_definitions(
        &self,
        family: &str,
        status: TaskDefinitionStatus,
    ) -> CloudResult<Vec<String>> {
        let status = match status {
            TaskDefinitionStatus::Active => aws_sdk_ecs::types::TaskDefinitionStatus::Active,
            TaskDefinitionStatus::Inactive => aws_sdk_ecs::types::TaskDefinitionStatus::Inactive,
        };
        let mut arns = Vec::new();
        let mut next = None;
        loop {
            let out = self
                .client
                .list_task_definitions()
                .family_prefix(family)
                .status(status.clone())
                .set_next_token(next)
                .send()
                .await
                .map_err(map_sdk_error)?;
            // familyPrefix is a prefix: keep only this exact family.
            arns.extend(
                out.task_definition_arns()
                    .iter()
                    .filter(|a| family_of(a) == Some(family))
                    .cloned(),
            );
            match out.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(arns),
            }
        }
    }

    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()> {
        self.client
            .deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(map_sdk_error)?;
        Ok(())
    }

    async fn delete_task_definitions(&self, arns: &[String]) -> CloudResult<Vec<(String, String)>> {
        let out = self
            .client
            .delete_task_definitions()
            .set_task_definitions(Some(arns.to_vec()))
            .send()
            .await
            .map_err(map_sdk_error)?;
        Ok(out
            .failures()
            .iter()
            .map(|f| {
                (
                    f.arn().unwrap_or_default().to_owned(),
                    format!(
                        "{} {}",
                        f.reason().unwrap_or_default(),
                        f.detail().unwrap_or_default()
                    )
                    .trim()
                    .to_owned(),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_of_arn() {
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:123456789012:task-definition/web-a:3"),
            Some("web-a")
        );
        assert_eq!(family_of("web-a"), None);
    }
}
