//! Amazon ECS: services and task definitions ([`EcsApi`]).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{CloudResult, Tag};

/// One entry of a capacity provider strategy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CapacityProviderItem {
    /// Capacity provider name.
    pub capacity_provider: String,
    /// Weight.
    pub weight: i32,
    /// Base.
    pub base: i32,
}

/// `awsvpc` network configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkConfiguration {
    /// Subnet ids.
    pub subnets: Vec<String>,
    /// Security group ids.
    pub security_groups: Vec<String>,
    /// `ENABLED` / `DISABLED`.
    pub assign_public_ip: Option<String>,
}

/// A service's load balancer attachment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceLoadBalancer {
    /// Target group ARN.
    pub target_group_arn: Option<String>,
    /// Container receiving traffic.
    pub container_name: Option<String>,
    /// Its port.
    pub container_port: Option<i32>,
}

/// Deployment settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentConfiguration {
    /// Maximum percent.
    pub maximum_percent: Option<i32>,
    /// Minimum healthy percent.
    pub minimum_healthy_percent: Option<i32>,
    /// Deployment circuit breaker `(enable, rollback)`.
    pub circuit_breaker: Option<(bool, bool)>,
    /// CloudWatch alarms that fail a deployment.
    pub alarms: Option<DeploymentAlarms>,
}

/// CloudWatch alarms watched during a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentAlarms {
    /// Alarm names.
    pub alarm_names: Vec<String>,
    /// Watch them.
    pub enable: bool,
    /// Roll back when one fires.
    pub rollback: bool,
}

/// A log configuration (of the Service Connect proxy).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogConfiguration {
    /// Log driver (`awslogs`, ...).
    pub log_driver: String,
    /// Driver options.
    pub options: BTreeMap<String, String>,
    /// Secret options `(name, valueFrom)`.
    pub secret_options: Vec<(String, String)>,
}

/// One service a task publishes through Service Connect (a discovery name and client aliases
/// in the namespace).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceConnectService {
    /// The task definition port name.
    pub port_name: String,
    /// The name registered in Cloud Map.
    pub discovery_name: Option<String>,
    /// `(port, dns name)` clients use.
    pub client_aliases: Vec<(i32, Option<String>)>,
}

/// A service's Service Connect configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceConnect {
    /// Enabled.
    pub enabled: bool,
    /// Cloud Map namespace.
    pub namespace: Option<String>,
    /// Services published to the namespace (none for a client-only configuration).
    pub services: Vec<ServiceConnectService>,
    /// The proxy's log configuration.
    pub log_configuration: Option<LogConfiguration>,
}

/// Tags ECS puts on the EBS volumes it creates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EbsTagSpecification {
    /// `volume`.
    pub resource_type: String,
    /// Tags.
    pub tags: Vec<Tag>,
    /// `TASK_DEFINITION` / `SERVICE` / `NONE`.
    pub propagate_tags: Option<String>,
}

/// An EBS volume ECS creates for each task (configured at deployment).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManagedEbsVolume {
    /// The ECS infrastructure role.
    pub role_arn: String,
    /// Encrypted.
    pub encrypted: Option<bool>,
    /// KMS key.
    pub kms_key_id: Option<String>,
    /// `gp3`, `io2`...
    pub volume_type: Option<String>,
    /// Size.
    pub size_in_gib: Option<i32>,
    /// Snapshot to restore.
    pub snapshot_id: Option<String>,
    /// Initialization rate from the snapshot (MiB/s).
    pub volume_initialization_rate: Option<i32>,
    /// IOPS.
    pub iops: Option<i32>,
    /// Throughput.
    pub throughput: Option<i32>,
    /// Tags of the volumes.
    pub tag_specifications: Vec<EbsTagSpecification>,
    /// `ext3`, `ext4`, `xfs`, `ntfs`.
    pub filesystem_type: Option<String>,
}

/// A volume configured when the service deploys (instead of in the task definition).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeConfiguration {
    /// The task definition volume it fills.
    pub name: String,
    /// The EBS volume.
    pub managed_ebs_volume: Option<ManagedEbsVolume>,
}

/// A placement constraint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlacementConstraint {
    /// `distinctInstance` / `memberOf`.
    pub kind: String,
    /// Cluster query expression.
    pub expression: Option<String>,
}

/// A placement strategy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlacementStrategy {
    /// `random` / `spread` / `binpack`.
    pub kind: String,
    /// Field.
    pub field: Option<String>,
}

/// A Cloud Map service registry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceRegistry {
    /// Registry ARN.
    pub registry_arn: Option<String>,
    /// Port.
    pub port: Option<i32>,
    /// Container name.
    pub container_name: Option<String>,
    /// Container port.
    pub container_port: Option<i32>,
}

/// The settings of a service that eden copies from the reference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceSpec {
    /// Task definition ARN.
    pub task_definition: String,
    /// Desired count.
    pub desired_count: i32,
    /// `FARGATE` / `EC2` / `EXTERNAL`; absent when a capacity provider strategy is used.
    pub launch_type: Option<String>,
    /// Capacity provider strategy (exclusive with the launch type).
    pub capacity_provider_strategy: Vec<CapacityProviderItem>,
    /// Fargate platform version.
    pub platform_version: Option<String>,
    /// `awsvpc` network configuration.
    pub network_configuration: Option<NetworkConfiguration>,
    /// Load balancer attachments.
    pub load_balancers: Vec<ServiceLoadBalancer>,
    /// Deployment configuration.
    pub deployment_configuration: Option<DeploymentConfiguration>,
    /// Placement constraints.
    pub placement_constraints: Vec<PlacementConstraint>,
    /// Placement strategy.
    pub placement_strategy: Vec<PlacementStrategy>,
    /// Service registries.
    pub service_registries: Vec<ServiceRegistry>,
    /// Health check grace period.
    pub health_check_grace_period_seconds: Option<i32>,
    /// ECS Exec.
    pub enable_execute_command: bool,
    /// `TASK_DEFINITION` / `SERVICE` (never `NONE`, which create refuses).
    pub propagate_tags: Option<String>,
    /// ECS managed tags.
    pub enable_ecs_managed_tags: bool,
    /// `REPLICA` / `DAEMON`.
    pub scheduling_strategy: Option<String>,
    /// Service Connect (of the primary deployment).
    pub service_connect: Option<ServiceConnect>,
    /// Volumes configured at deployment (of the primary deployment).
    pub volume_configurations: Vec<VolumeConfiguration>,
    /// `ECS` / `CODE_DEPLOY` / `EXTERNAL`.
    pub deployment_controller: Option<String>,
    /// `ENABLED` / `DISABLED`.
    pub availability_zone_rebalancing: Option<String>,
}

/// A deployment of a service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Deployment {
    /// `PRIMARY` / `ACTIVE` / `INACTIVE`.
    pub status: String,
    /// `IN_PROGRESS` / `COMPLETED` / `FAILED`.
    pub rollout_state: Option<String>,
    /// Task definition ARN.
    pub task_definition: String,
    /// Desired tasks.
    pub desired_count: i32,
    /// Running tasks.
    pub running_count: i32,
    /// Tasks that failed to start.
    pub failed_tasks: i32,
    /// Why the rollout is in its state.
    pub rollout_state_reason: Option<String>,
}

/// An event of a service (what ECS says it is doing, or why it cannot).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceEvent {
    /// When, RFC 3339.
    pub created_at: Option<String>,
    /// The message.
    pub message: String,
}

/// A described ECS service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// Cluster ARN.
    pub cluster_arn: String,
    /// `ACTIVE` / `DRAINING` / `INACTIVE`.
    pub status: String,
    /// Its settings.
    pub spec: ServiceSpec,
    /// Running tasks.
    pub running_count: i32,
    /// Deployments.
    pub deployments: Vec<Deployment>,
    /// The latest events, newest first.
    pub events: Vec<ServiceEvent>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Parts of the service that [`ServiceSpec`] cannot carry (named, e.g. `VPC Lattice
    /// configurations`); a copy of this service would silently lack them.
    pub unmodelled: Vec<String>,
}

impl Service {
    /// The primary deployment's rollout failed (`FAILED`).
    pub fn rollout_failed(&self) -> bool {
        self.deployments
            .iter()
            .any(|d| d.status == "PRIMARY" && d.rollout_state.as_deref() == Some("FAILED"))
    }

    /// True when the service is stable: one deployment, completed or fully running.
    pub fn is_stable(&self) -> bool {
        match self.deployments.as_slice() {
            [d] => {
                d.rollout_state.as_deref() == Some("COMPLETED")
                    || (d.rollout_state.is_none() && d.running_count == d.desired_count)
            }
            _ => false,
        }
    }
}

/// A request to create a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateService {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Service name.
    pub name: String,
    /// Settings.
    pub spec: ServiceSpec,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// A container's image in a task definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    /// Container name.
    pub name: String,
    /// Image URI.
    pub image: String,
}

/// A described task definition (the fields eden reports; registering copies all of them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskDefinition {
    /// ARN (`...:task-definition/<family>:<revision>`).
    pub arn: String,
    /// Family.
    pub family: String,
    /// Revision.
    pub revision: i32,
    /// `ACTIVE` / `INACTIVE` / `DELETE_IN_PROGRESS`.
    pub status: String,
    /// Containers and their images.
    pub containers: Vec<ContainerImage>,
    /// Network mode.
    pub network_mode: Option<String>,
    /// Task role.
    pub task_role_arn: Option<String>,
    /// Execution role.
    pub execution_role_arn: Option<String>,
    /// Task CPU.
    pub cpu: Option<String>,
    /// Task memory.
    pub memory: Option<String>,
    /// Requires compatibilities.
    pub requires_compatibilities: Vec<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// Register a new revision copied from an existing task definition.
///
/// The copy happens inside the implementation because a task definition has some forty fields
/// (containers alone have fifty); mirroring them all in eden's types would add nothing but
/// places to forget one. Every field of `base` is kept except the family, the images of the
/// named containers and the tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterTaskDefinition {
    /// ARN of the task definition to copy.
    pub base: String,
    /// Family of the new revision.
    pub family: String,
    /// Containers whose image is replaced; each must exist in `base`.
    pub images: Vec<ContainerImage>,
    /// Tags of the new revision (replacing the copied ones with the same key).
    pub tags: Vec<Tag>,
}

/// Task definition status filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskDefinitionStatus {
    /// Registered.
    Active,
    /// Deregistered.
    Inactive,
}

/// Amazon ECS.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait EcsApi: Send + Sync {
    /// Describes one service (with tags); `None` when it never existed or is long gone.
    async fn describe_service(&self, cluster: &str, name: &str) -> CloudResult<Option<Service>>;
    /// Creates a service.
    async fn create_service(&self, request: CreateService) -> CloudResult<Service>;
    /// Points a service at a task definition, optionally forcing a new deployment.
    async fn update_service(
        &self,
        cluster: &str,
        name: &str,
        task_definition: &str,
        force_new_deployment: bool,
    ) -> CloudResult<Service>;
    /// Deletes a service (`force`: even with running tasks); it turns DRAINING, then INACTIVE.
    async fn delete_service(&self, cluster: &str, name: &str, force: bool) -> CloudResult<Service>;
    /// Describes a task definition, with its tags.
    async fn describe_task_definition(&self, arn: &str) -> CloudResult<TaskDefinition>;
    /// The latest ACTIVE revision of a family, with its tags; `None` when it has none.
    async fn describe_latest_task_definition(
        &self,
        family: &str,
    ) -> CloudResult<Option<TaskDefinition>>;
    /// Registers a revision copied from another (see [`RegisterTaskDefinition`]).
    async fn register_task_definition(
        &self,
        request: RegisterTaskDefinition,
    ) -> CloudResult<TaskDefinition>;
    /// Every task definition ARN of exactly this family with this status (all pages).
    async fn list_task_definitions(
        &self,
        family: &str,
        status: TaskDefinitionStatus,
    ) -> CloudResult<Vec<String>>;
    /// Deregisters a revision (it turns INACTIVE).
    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()>;
    /// Deletes up to 10 INACTIVE revisions; returns `(arn, reason)` of those that failed.
    async fn delete_task_definitions(&self, arns: &[String]) -> CloudResult<Vec<(String, String)>>;
}
