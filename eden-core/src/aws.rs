//! The cloud traits on the official AWS SDK clients (feature `aws`).
//!
//! Every client is built from an [`aws_types::SdkConfig`], so the caller controls region,
//! credentials, retries and endpoints (e.g. a local moto server):
//!
//! ```no_run
//! # async fn demo(config: aws_types::SdkConfig) {
//! let cloud = eden_core::aws::cloud(&config);
//! let eden = eden_core::Environment::new(cloud);
//! # let _ = eden;
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_types::SdkConfig;
use aws_types::region::Region;

use crate::api::ItemCondition;
use crate::api::{
    AliasTarget, AttrValue, CapacityProviderItem, ChangeAction, Cloud, CloudError, CloudResult,
    ContainerImage, CreateRule, CreateService, CreateTargetGroup, Deployment, DeploymentAlarms,
    DeploymentConfiguration, DnsApi, DnsRecord, DocumentStore, EbsTagSpecification, EcsApi,
    HealthCheck, ImageDetails, ImageRegistry, Item, ItemUpdate, Listener, LoadBalancer,
    LoadBalancerApi, LogConfiguration, ManagedEbsVolume, NetworkConfiguration, Page,
    PlacementConstraint, PlacementStrategy, PutMode, RecordChange, RegisterTaskDefinition, Rule,
    Service, ServiceConnect, ServiceConnectService, ServiceEvent, ServiceLoadBalancer,
    ServiceRegistry, ServiceSpec, StateStore, StoredDocument, Tag, TargetGroup, TargetGroupSpec,
    TaskDefinition, TaskDefinitionStatus, VolumeConfiguration, WriteCondition, codes, schema,
};
use crate::image::{EcrImage, ImageSelector};

/// Converts any SDK error, keeping the service's code, message and HTTP status.
fn cloud_error<E>(e: SdkError<E, aws_sdk_ecs::config::http::HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let error = match (e.code(), status) {
        (Some(code), _) => CloudError::new(code, e.message().unwrap_or_default()),
        // An answer without a parsable error body (S3 HEAD-like 403/404s, proxies).
        (None, Some(status)) => CloudError::new(
            match status {
                403 => "AccessDenied",
                404 => "NotFound",
                _ => "HttpError",
            },
            DisplayErrorContext(&e).to_string(),
        ),
        (None, None) => CloudError::new(codes::TRANSPORT, DisplayErrorContext(&e).to_string()),
    };
    error.with_status(status)
}

fn build_error(e: impl std::fmt::Display) -> CloudError {
    CloudError::new("InvalidRequest", e.to_string())
}

/// Every trait on AWS, from one SDK configuration.
pub fn cloud(config: &SdkConfig) -> Cloud {
    cloud_with_s3(config, aws_sdk_s3::config::Builder::from(config).build())
}

/// Every trait on AWS, with a separate S3 configuration (e.g. `force_path_style(true)` for
/// S3-compatible servers). The cloud knows the configuration's region, so that a profile
/// naming resources in another region is refused by name before any call.
pub fn cloud_with_s3(config: &SdkConfig, s3: aws_sdk_s3::Config) -> Cloud {
    Cloud {
        ecs: std::sync::Arc::new(AwsEcs::new(config)),
        elb: std::sync::Arc::new(AwsLoadBalancer::new(config)),
        dns: std::sync::Arc::new(AwsDns::new(config)),
        images: std::sync::Arc::new(AwsEcr::new(config)),
        documents: std::sync::Arc::new(AwsS3::from_conf(s3)),
        state: std::sync::Arc::new(AwsDynamoDb::new(config)),
        region: config.region().map(|r| r.as_ref().to_owned()),
    }
}

// ---------------------------------------------------------------- ECS

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

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
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
            .map_err(cloud_error)?;
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
            .map_err(cloud_error)?;
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
            .map_err(cloud_error)?;
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
            .map_err(cloud_error)?;
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
            .map_err(cloud_error)?;
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
            .map_err(cloud_error)?;
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
            .map_err(cloud_error)?;
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
                .map_err(cloud_error)?;
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
            .map_err(cloud_error)?;
        Ok(())
    }

    async fn delete_task_definitions(&self, arns: &[String]) -> CloudResult<Vec<(String, String)>> {
        let out = self
            .client
            .delete_task_definitions()
            .set_task_definitions(Some(arns.to_vec()))
            .send()
            .await
            .map_err(cloud_error)?;
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

// ---------------------------------------------------------------- ELBv2

/// [`LoadBalancerApi`] on `aws-sdk-elasticloadbalancingv2`.
#[derive(Debug, Clone)]
pub struct AwsLoadBalancer {
    client: aws_sdk_elasticloadbalancingv2::Client,
}

impl AwsLoadBalancer {
    /// A client from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_elasticloadbalancingv2::Client::new(config),
        }
    }

    /// Wraps an existing client.
    pub fn from_client(client: aws_sdk_elasticloadbalancingv2::Client) -> Self {
        Self { client }
    }

    async fn describe_groups(
        &self,
        name: Option<&str>,
        arn: Option<&str>,
    ) -> CloudResult<Option<TargetGroup>> {
        let out = self
            .client
            .describe_target_groups()
            .set_names(name.map(|n| vec![n.to_owned()]))
            .set_target_group_arns(arn.map(|a| vec![a.to_owned()]))
            .send()
            .await;
        match out {
            Ok(out) => Ok(out.target_groups().first().map(target_group_from)),
            Err(e) => {
                let e = cloud_error(e);
                if e.code == "TargetGroupNotFound" {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }
}

fn target_group_from(t: &aws_sdk_elasticloadbalancingv2::types::TargetGroup) -> TargetGroup {
    TargetGroup {
        arn: t.target_group_arn().unwrap_or_default().to_owned(),
        name: t.target_group_name().unwrap_or_default().to_owned(),
        spec: TargetGroupSpec {
            protocol: t.protocol().map(|p| p.as_str().to_owned()),
            protocol_version: t.protocol_version().map(str::to_owned),
            port: t.port(),
            vpc_id: t.vpc_id().map(str::to_owned),
            ip_address_type: t.ip_address_type().map(|p| p.as_str().to_owned()),
            target_type: t.target_type().map(|p| p.as_str().to_owned()),
            health_check: HealthCheck {
                enabled: t.health_check_enabled(),
                protocol: t.health_check_protocol().map(|p| p.as_str().to_owned()),
                port: t.health_check_port().map(str::to_owned),
                path: t.health_check_path().map(str::to_owned),
                interval_seconds: t.health_check_interval_seconds(),
                timeout_seconds: t.health_check_timeout_seconds(),
                healthy_threshold: t.healthy_threshold_count(),
                unhealthy_threshold: t.unhealthy_threshold_count(),
                matcher_http_code: t.matcher().and_then(|m| m.http_code()).map(str::to_owned),
                matcher_grpc_code: t.matcher().and_then(|m| m.grpc_code()).map(str::to_owned),
            },
        },
        load_balancer_arns: t.load_balancer_arns().to_vec(),
    }
}

fn rule_from(r: &aws_sdk_elasticloadbalancingv2::types::Rule) -> Rule {
    let hosts = r
        .conditions()
        .iter()
        .filter(|c| c.field() == Some("host-header"))
        .flat_map(|c| {
            let mut v: Vec<String> = c.values().to_vec();
            if let Some(cfg) = c.host_header_config() {
                v.extend(cfg.values().iter().cloned());
            }
            v
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let target_group_arns = r
        .actions()
        .iter()
        .flat_map(|a| {
            let mut v: Vec<String> = a
                .target_group_arn()
                .map(str::to_owned)
                .into_iter()
                .collect();
            if let Some(f) = a.forward_config() {
                v.extend(
                    f.target_groups()
                        .iter()
                        .filter_map(|t| t.target_group_arn().map(str::to_owned)),
                );
            }
            v
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Rule {
        arn: r.rule_arn().unwrap_or_default().to_owned(),
        priority: if r.is_default() == Some(true) {
            None
        } else {
            r.priority().and_then(|p| p.parse().ok())
        },
        hosts,
        target_group_arns,
    }
}

fn to_elb_tags(tags: &[Tag]) -> Option<Vec<aws_sdk_elasticloadbalancingv2::types::Tag>> {
    (!tags.is_empty()).then(|| {
        tags.iter()
            .map(|t| {
                aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                    .key(&t.key)
                    .value(&t.value)
                    .build()
            })
            .collect()
    })
}

#[async_trait]
impl LoadBalancerApi for AwsLoadBalancer {
    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        let out = self
            .client
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .map_err(cloud_error)?;
        let lb = out
            .load_balancers()
            .first()
            .ok_or_else(|| CloudError::new("LoadBalancerNotFound", arn))?;
        Ok(LoadBalancer {
            arn: lb.load_balancer_arn().unwrap_or_default().to_owned(),
            dns_name: lb.dns_name().unwrap_or_default().to_owned(),
            canonical_hosted_zone_id: lb.canonical_hosted_zone_id().unwrap_or_default().to_owned(),
            vpc_id: lb.vpc_id().unwrap_or_default().to_owned(),
        })
    }

    async fn describe_listeners(&self, load_balancer_arn: &str) -> CloudResult<Vec<Listener>> {
        let mut listeners = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .client
                .describe_listeners()
                .load_balancer_arn(load_balancer_arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(cloud_error)?;
            listeners.extend(out.listeners().iter().map(|l| {
                Listener {
                    arn: l.listener_arn().unwrap_or_default().to_owned(),
                    protocol: l
                        .protocol()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                    port: l.port().unwrap_or_default(),
                }
            }));
            match out.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
                _ => return Ok(listeners),
            }
        }
    }

    async fn describe_rules(
        &self,
        listener_arn: &str,
        marker: Option<String>,
    ) -> CloudResult<Page<Rule>> {
        let out = self
            .client
            .describe_rules()
            .listener_arn(listener_arn)
            .page_size(400)
            .set_marker(marker)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(Page {
            items: out.rules().iter().map(rule_from).collect(),
            next: out
                .next_marker()
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
        })
    }

    async fn create_rule(&self, request: CreateRule) -> CloudResult<Rule> {
        use aws_sdk_elasticloadbalancingv2::types as t;
        let out = self
            .client
            .create_rule()
            .listener_arn(&request.listener_arn)
            .priority(request.priority)
            .conditions(
                t::RuleCondition::builder()
                    .field("host-header")
                    .host_header_config(
                        t::HostHeaderConditionConfig::builder()
                            .values(&request.host)
                            .build(),
                    )
                    .build(),
            )
            .actions(
                t::Action::builder()
                    .r#type(t::ActionTypeEnum::Forward)
                    .target_group_arn(&request.target_group_arn)
                    .build(),
            )
            .set_tags(to_elb_tags(&request.tags))
            .send()
            .await
            .map_err(cloud_error)?;
        out.rules()
            .first()
            .map(rule_from)
            .ok_or_else(|| CloudError::new("InvalidResponse", "CreateRule returned no rule"))
    }

    async fn delete_rule(&self, arn: &str) -> CloudResult<()> {
        self.client
            .delete_rule()
            .rule_arn(arn)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(())
    }

    async fn describe_target_group_by_name(&self, name: &str) -> CloudResult<Option<TargetGroup>> {
        self.describe_groups(Some(name), None).await
    }

    async fn describe_target_group(&self, arn: &str) -> CloudResult<Option<TargetGroup>> {
        self.describe_groups(None, Some(arn)).await
    }

    async fn list_target_groups(&self, marker: Option<String>) -> CloudResult<Page<TargetGroup>> {
        let out = self
            .client
            .describe_target_groups()
            .page_size(400)
            .set_marker(marker)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(Page {
            items: out.target_groups().iter().map(target_group_from).collect(),
            next: out
                .next_marker()
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
        })
    }

    async fn describe_tags(&self, arns: &[String]) -> CloudResult<BTreeMap<String, Vec<Tag>>> {
        let out = self
            .client
            .describe_tags()
            .set_resource_arns(Some(arns.to_vec()))
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out
            .tag_descriptions()
            .iter()
            .filter_map(|d| {
                let tags = d
                    .tags()
                    .iter()
                    .map(|t| Tag::new(t.key().unwrap_or_default(), t.value().unwrap_or_default()))
                    .collect();
                Some((d.resource_arn()?.to_owned(), tags))
            })
            .collect())
    }

    async fn target_group_attributes(&self, arn: &str) -> CloudResult<BTreeMap<String, String>> {
        let out = self
            .client
            .describe_target_group_attributes()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out
            .attributes()
            .iter()
            .filter_map(|a| Some((a.key()?.to_owned(), a.value()?.to_owned())))
            .collect())
    }

    async fn create_target_group(&self, request: CreateTargetGroup) -> CloudResult<TargetGroup> {
        use aws_sdk_elasticloadbalancingv2::types as t;
        let s = &request.spec;
        let h = &s.health_check;
        let matcher = (h.matcher_http_code.is_some() || h.matcher_grpc_code.is_some()).then(|| {
            t::Matcher::builder()
                .set_http_code(h.matcher_http_code.clone())
                .set_grpc_code(h.matcher_grpc_code.clone())
                .build()
        });
        let out = self
            .client
            .create_target_group()
            .name(&request.name)
            .set_protocol(s.protocol.as_deref().map(t::ProtocolEnum::from))
            .set_protocol_version(s.protocol_version.clone())
            .set_port(s.port)
            .set_vpc_id(s.vpc_id.clone())
            .set_ip_address_type(
                s.ip_address_type
                    .as_deref()
                    .map(t::TargetGroupIpAddressTypeEnum::from),
            )
            .set_target_type(s.target_type.as_deref().map(t::TargetTypeEnum::from))
            .set_health_check_enabled(h.enabled)
            .set_health_check_protocol(h.protocol.as_deref().map(t::ProtocolEnum::from))
            .set_health_check_port(h.port.clone())
            .set_health_check_path(h.path.clone())
            .set_health_check_interval_seconds(h.interval_seconds)
            .set_health_check_timeout_seconds(h.timeout_seconds)
            .set_healthy_threshold_count(h.healthy_threshold)
            .set_unhealthy_threshold_count(h.unhealthy_threshold)
            .set_matcher(matcher)
            .set_tags(to_elb_tags(&request.tags))
            .send()
            .await
            .map_err(cloud_error)?;
        out.target_groups()
            .first()
            .map(target_group_from)
            .ok_or_else(|| {
                CloudError::new("InvalidResponse", "CreateTargetGroup returned no group")
            })
    }

    async fn modify_target_group_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> CloudResult<()> {
        use aws_sdk_elasticloadbalancingv2::types as t;
        self.client
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .set_attributes(Some(
                attributes
                    .iter()
                    .map(|(k, v)| t::TargetGroupAttribute::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        self.client
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(())
    }
}

// ---------------------------------------------------------------- Route 53

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
            .map_err(cloud_error)?;
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
            .start_record_name(name)
            .start_record_type(aws_sdk_route53::types::RrType::from(record_type))
            .max_items(1)
            .send()
            .await
            .map_err(cloud_error)?;
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
            .map_err(cloud_error)?;
        Ok(())
    }
}

// ---------------------------------------------------------------- ECR

/// [`ImageRegistry`] on `aws-sdk-ecr`, asking each image's own region.
#[derive(Debug)]
pub struct AwsEcr {
    config: SdkConfig,
    /// One client per region, reused so connections are too.
    clients: std::sync::Mutex<HashMap<String, aws_sdk_ecr::Client>>,
}

impl AwsEcr {
    /// Clients are built from this configuration, with the region of each image.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            config: config.clone(),
            clients: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, region: &str) -> aws_sdk_ecr::Client {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let conf = aws_sdk_ecr::config::Builder::from(&self.config)
                    .region(Region::new(region.to_owned()))
                    .build();
                aws_sdk_ecr::Client::from_conf(conf)
            })
            .clone()
    }
}

#[async_trait]
impl ImageRegistry for AwsEcr {
    async fn describe_image(&self, image: &EcrImage) -> CloudResult<ImageDetails> {
        use aws_sdk_ecr::types::ImageIdentifier;
        let client = self.client(&image.region);
        let id = match &image.selector {
            ImageSelector::Tag(t) => ImageIdentifier::builder().image_tag(t).build(),
            ImageSelector::Digest(d) => ImageIdentifier::builder().image_digest(d).build(),
        };
        let out = client
            .describe_images()
            .registry_id(&image.registry_id)
            .repository_name(&image.repository)
            .image_ids(id)
            .send()
            .await
            .map_err(cloud_error)?;
        let detail = out.image_details().first().ok_or_else(|| {
            CloudError::new(
                codes::IMAGE_NOT_FOUND,
                format!("{} not found", image.selector),
            )
        })?;
        Ok(ImageDetails {
            digest: detail.image_digest().unwrap_or_default().to_owned(),
            tags: detail.image_tags().to_vec(),
        })
    }
}

// ---------------------------------------------------------------- S3

/// [`DocumentStore`] on `aws-sdk-s3`.
#[derive(Debug, Clone)]
pub struct AwsS3 {
    client: aws_sdk_s3::Client,
}

impl AwsS3 {
    /// A client from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_s3::Client::new(config),
        }
    }

    /// A client from an S3 configuration (e.g. with `force_path_style(true)`).
    pub fn from_conf(config: aws_sdk_s3::Config) -> Self {
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
        }
    }
}

#[async_trait]
impl DocumentStore for AwsS3 {
    async fn get(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredDocument>> {
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let e = cloud_error(e);
                return if e.code == "NoSuchKey" {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| CloudError::new(codes::TRANSPORT, e.to_string()))?
            .into_bytes()
            .to_vec();
        Ok(Some(StoredDocument { bytes, etag }))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> CloudResult<String> {
        let request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes));
        let request = match mode {
            PutMode::Create => request.if_none_match("*"),
            PutMode::Update(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(out) => Ok(out.e_tag().unwrap_or_default().to_owned()),
            Err(e) => {
                // A 412 without a parsable body still means the condition failed.
                let status = e.raw_response().map(|r| r.status().as_u16());
                let e = cloud_error(e);
                if status == Some(412) {
                    Err(CloudError::new(codes::PRECONDITION_FAILED, e.message))
                } else {
                    Err(e)
                }
            }
        }
    }
}

// ---------------------------------------------------------------- DynamoDB

/// [`StateStore`] on `aws-sdk-dynamodb`.
#[derive(Debug, Clone)]
pub struct AwsDynamoDb {
    client: aws_sdk_dynamodb::Client,
    poll: std::time::Duration,
}

impl AwsDynamoDb {
    /// A client from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self::from_client(aws_sdk_dynamodb::Client::new(config))
    }

    /// Wraps an existing client.
    pub fn from_client(client: aws_sdk_dynamodb::Client) -> Self {
        Self {
            client,
            poll: std::time::Duration::from_secs(2),
        }
    }

    async fn table_status(&self, table: &str) -> CloudResult<Option<String>> {
        match self.client.describe_table().table_name(table).send().await {
            Ok(out) => Ok(Some(
                out.table()
                    .and_then(|t| t.table_status())
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            )),
            Err(e) => {
                let e = cloud_error(e);
                if e.code == "ResourceNotFoundException" {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn create_table(&self, table: &str) -> CloudResult<()> {
        use aws_sdk_dynamodb::types as t;
        let attr = |name: &str, kind: t::ScalarAttributeType| {
            t::AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .map_err(build_error)
        };
        let key = |name: &str, kind: t::KeyType| {
            t::KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(build_error)
        };
        let index = t::GlobalSecondaryIndex::builder()
            .index_name(schema::KIND_INDEX)
            .key_schema(key(schema::KIND, t::KeyType::Hash)?)
            .key_schema(key(schema::LAST_UPDATED, t::KeyType::Range)?)
            .projection(
                t::Projection::builder()
                    .projection_type(t::ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(build_error)?;
        let created = self
            .client
            .create_table()
            .table_name(table)
            .attribute_definitions(attr(schema::HASH_KEY, t::ScalarAttributeType::S)?)
            .attribute_definitions(attr(schema::RANGE_KEY, t::ScalarAttributeType::S)?)
            .attribute_definitions(attr(schema::KIND, t::ScalarAttributeType::S)?)
            .attribute_definitions(attr(schema::LAST_UPDATED, t::ScalarAttributeType::N)?)
            .key_schema(key(schema::HASH_KEY, t::KeyType::Hash)?)
            .key_schema(key(schema::RANGE_KEY, t::KeyType::Range)?)
            .global_secondary_indexes(index)
            .billing_mode(t::BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = cloud_error(e);
                // Someone else is creating it: wait for it like for ours.
                if e.code == "ResourceInUseException" {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

fn to_attr(v: &AttrValue) -> aws_sdk_dynamodb::types::AttributeValue {
    match v {
        AttrValue::S(s) => aws_sdk_dynamodb::types::AttributeValue::S(s.clone()),
        AttrValue::N(n) => aws_sdk_dynamodb::types::AttributeValue::N(n.clone()),
    }
}

fn to_item(item: &Item) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    item.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect()
}

/// Attributes other than strings and numbers are not eden's; they are skipped.
fn from_item(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> Item {
    item.iter()
        .filter_map(|(k, v)| match v {
            aws_sdk_dynamodb::types::AttributeValue::S(s) => {
                Some((k.clone(), AttrValue::S(s.clone())))
            }
            aws_sdk_dynamodb::types::AttributeValue::N(n) => {
                Some((k.clone(), AttrValue::N(n.clone())))
            }
            _ => None,
        })
        .collect()
}

fn encode_token(
    key: Option<&HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) -> Option<String> {
    let key = key.filter(|k| !k.is_empty())?;
    serde_json::to_string(&from_item(key)).ok()
}

fn decode_token(
    token: Option<String>,
) -> CloudResult<Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>> {
    token
        .map(|t| {
            serde_json::from_str::<Item>(&t)
                .map(|i| to_item(&i))
                .map_err(|e| CloudError::new("ValidationException", format!("bad page token: {e}")))
        })
        .transpose()
}

fn condition(c: WriteCondition) -> Option<&'static str> {
    match c {
        WriteCondition::None => None,
        WriteCondition::NotExists => Some("attribute_not_exists(#h)"),
        WriteCondition::Exists => Some("attribute_exists(#h)"),
    }
}

/// A condition or update expression with its placeholders.
#[derive(Default)]
struct Expression {
    names: HashMap<String, String>,
    values: HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
}

impl Expression {
    fn name(&mut self, attribute: &str) -> String {
        if let Some((k, _)) = self.names.iter().find(|(_, v)| *v == attribute) {
            return k.clone();
        }
        let key = format!("#n{}", self.names.len());
        self.names.insert(key.clone(), attribute.to_owned());
        key
    }

    fn value(&mut self, value: aws_sdk_dynamodb::types::AttributeValue) -> String {
        let key = format!(":v{}", self.values.len());
        self.values.insert(key.clone(), value);
        key
    }

    /// An [`ItemCondition`] as a DynamoDB condition expression, checked atomically.
    fn condition(&mut self, condition: &ItemCondition) -> CloudResult<String> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        Ok(match condition {
            ItemCondition::Absent => {
                format!("attribute_not_exists({})", self.name(schema::HASH_KEY))
            }
            ItemCondition::Exists => format!("attribute_exists({})", self.name(schema::HASH_KEY)),
            ItemCondition::Has(a) => format!("attribute_exists({})", self.name(a)),
            ItemCondition::Missing(a) => format!("attribute_not_exists({})", self.name(a)),
            ItemCondition::Equals { attribute, value } => {
                format!(
                    "{} = {}",
                    self.name(attribute),
                    self.value(A::S(value.clone()))
                )
            }
            ItemCondition::Below { attribute, value } => {
                format!(
                    "{} < {}",
                    self.name(attribute),
                    self.value(A::N(value.to_string()))
                )
            }
            ItemCondition::All(all) if all.is_empty() => {
                format!(
                    "attribute_exists({0}) OR attribute_not_exists({0})",
                    self.name(schema::HASH_KEY)
                )
            }
            ItemCondition::Any(any) if any.is_empty() => {
                format!(
                    "attribute_exists({0}) AND attribute_not_exists({0})",
                    self.name(schema::HASH_KEY)
                )
            }
            ItemCondition::All(all) => all
                .iter()
                .map(|c| self.condition(c).map(|e| format!("({e})")))
                .collect::<CloudResult<Vec<_>>>()?
                .join(" AND "),
            ItemCondition::Any(any) => any
                .iter()
                .map(|c| self.condition(c).map(|e| format!("({e})")))
                .collect::<CloudResult<Vec<_>>>()?
                .join(" OR "),
            other => {
                return Err(CloudError::new(
                    "ValidationException",
                    format!("condition {other:?} has no DynamoDB expression"),
                ));
            }
        })
    }

    /// An [`ItemUpdate`] as an update expression.
    fn update(&mut self, update: &ItemUpdate) -> String {
        let mut sets = Vec::new();
        for (k, v) in &update.set {
            let (n, v) = (self.name(k), self.value(to_attr(v)));
            sets.push(format!("{n} = {v}"));
        }
        for (k, v) in &update.set_if_absent {
            let (n, v) = (self.name(k), self.value(to_attr(v)));
            sets.push(format!("{n} = if_not_exists({n}, {v})"));
        }
        let removes: Vec<String> = update.remove.iter().map(|k| self.name(k)).collect();
        let mut out = String::new();
        if !sets.is_empty() {
            out.push_str("SET ");
            out.push_str(&sets.join(", "));
        }
        if !removes.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str("REMOVE ");
            out.push_str(&removes.join(", "));
        }
        out
    }
}

#[async_trait]
impl StateStore for AwsDynamoDb {
    async fn ensure_table(&self, table: &str) -> CloudResult<bool> {
        let mut created = false;
        for _ in 0..150 {
            match self.table_status(table).await?.as_deref() {
                Some("ACTIVE") => return Ok(created),
                None if !created => {
                    self.create_table(table).await?;
                    created = true;
                    continue;
                }
                _ => tokio::time::sleep(self.poll).await,
            }
        }
        Err(CloudError::new(
            "Timeout",
            format!("table {table} did not become ACTIVE"),
        ))
    }

    async fn put_item(
        &self,
        table: &str,
        item: Item,
        c: WriteCondition,
    ) -> CloudResult<Option<Item>> {
        let cond = condition(c);
        let out = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(to_item(&item)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .set_condition_expression(cond.map(str::to_owned))
            .set_expression_attribute_names(
                cond.map(|_| HashMap::from([("#h".to_owned(), schema::HASH_KEY.to_owned())])),
            )
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out.attributes().filter(|a| !a.is_empty()).map(from_item))
    }

    async fn get_item(&self, table: &str, hash: &str, range: &str) -> CloudResult<Option<Item>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key(schema::HASH_KEY, A::S(hash.to_owned()))
            .key(schema::RANGE_KEY, A::S(range.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out.item().map(from_item))
    }

    async fn delete_item(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        c: WriteCondition,
    ) -> CloudResult<Option<Item>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let cond = condition(c);
        let out = self
            .client
            .delete_item()
            .table_name(table)
            .key(schema::HASH_KEY, A::S(hash.to_owned()))
            .key(schema::RANGE_KEY, A::S(range.to_owned()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .set_condition_expression(cond.map(str::to_owned))
            .set_expression_attribute_names(
                cond.map(|_| HashMap::from([("#h".to_owned(), schema::HASH_KEY.to_owned())])),
            )
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out.attributes().filter(|a| !a.is_empty()).map(from_item))
    }

    async fn query(
        &self,
        table: &str,
        hash: &str,
        next: Option<String>,
    ) -> CloudResult<Page<Item>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let out = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("#h = :h")
            .expression_attribute_names("#h", schema::HASH_KEY)
            .expression_attribute_values(":h", A::S(hash.to_owned()))
            .consistent_read(true)
            .set_exclusive_start_key(decode_token(next)?)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(Page {
            items: out.items().iter().map(from_item).collect(),
            next: encode_token(out.last_evaluated_key()),
        })
    }

    async fn query_kind(
        &self,
        table: &str,
        kind: &str,
        before: Option<i64>,
        next: Option<String>,
    ) -> CloudResult<Page<Item>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let mut q = self
            .client
            .query()
            .table_name(table)
            .index_name(schema::KIND_INDEX)
            .expression_attribute_names("#k", schema::KIND)
            .expression_attribute_values(":k", A::S(kind.to_owned()))
            .set_exclusive_start_key(decode_token(next)?);
        q = match before {
            Some(b) => q
                .key_condition_expression("#k = :k AND #u < :u")
                .expression_attribute_names("#u", schema::LAST_UPDATED)
                .expression_attribute_values(":u", A::N(b.to_string())),
            None => q.key_condition_expression("#k = :k"),
        };
        let out = q.send().await.map_err(cloud_error)?;
        Ok(Page {
            items: out.items().iter().map(from_item).collect(),
            next: encode_token(out.last_evaluated_key()),
        })
    }

    async fn put_item_when(
        &self,
        table: &str,
        item: Item,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let mut e = Expression::default();
        let expression = e.condition(condition)?;
        let out = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(to_item(&item)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .condition_expression(expression)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values((!e.values.is_empty()).then_some(e.values))
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out.attributes().filter(|a| !a.is_empty()).map(from_item))
    }

    async fn update_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        update: &ItemUpdate,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let mut e = Expression::default();
        let expression = e.condition(condition)?;
        let update_expression = e.update(update);
        let out = self
            .client
            .update_item()
            .table_name(table)
            .key(schema::HASH_KEY, A::S(hash.to_owned()))
            .key(schema::RANGE_KEY, A::S(range.to_owned()))
            .update_expression(update_expression)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .condition_expression(expression)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values((!e.values.is_empty()).then_some(e.values))
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out.attributes().filter(|a| !a.is_empty()).map(from_item))
    }

    async fn delete_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let mut e = Expression::default();
        let expression = e.condition(condition)?;
        let out = self
            .client
            .delete_item()
            .table_name(table)
            .key(schema::HASH_KEY, A::S(hash.to_owned()))
            .key(schema::RANGE_KEY, A::S(range.to_owned()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .condition_expression(expression)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values((!e.values.is_empty()).then_some(e.values))
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(out.attributes().filter(|a| !a.is_empty()).map(from_item))
    }

    async fn scan(&self, table: &str, next: Option<String>) -> CloudResult<Page<Item>> {
        let out = self
            .client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(decode_token(next)?)
            .send()
            .await
            .map_err(cloud_error)?;
        Ok(Page {
            items: out.items().iter().map(from_item).collect(),
            next: encode_token(out.last_evaluated_key()),
        })
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

    #[test]
    fn page_tokens_round_trip() {
        let key = to_item(&Item::from([
            ("type".into(), AttrValue::S("p".into())),
            ("last_updated".into(), AttrValue::N("5".into())),
        ]));
        let token = encode_token(Some(&key));
        assert_eq!(decode_token(token).unwrap(), Some(key));
        assert_eq!(encode_token(Some(&HashMap::new())), None);
    }
}
