//! One small trait per outside system, speaking eden's own types (never SDK types).
//!
//! Implementations: [`crate::memory::MemoryCloud`] (all traits, behaves like AWS where eden
//! depends on it), [`crate::aws`] (the official SDK clients, `aws` feature) and the
//! [`crate::instrument::Instrumented`] wrapper (latency, fault injection, call log).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::image::EcrImage;

/// An error answered by a cloud API (or its transport), with the service's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
#[non_exhaustive]
pub struct CloudError {
    /// The service's error code, e.g. `PriorityInUse`; `Transport` for network failures.
    pub code: String,
    /// The service's message.
    pub message: String,
    /// The HTTP status of the answer, when there was one.
    pub status: Option<u16>,
}

impl CloudError {
    /// An error with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            status: None,
        }
    }

    /// The same error, with the HTTP status of the answer.
    pub fn with_status(mut self, status: Option<u16>) -> Self {
        self.status = status;
        self
    }

    /// True when the code is one of `codes`.
    pub fn is(&self, codes: &[&str]) -> bool {
        codes.contains(&self.code.as_str())
    }

    /// True when the error means the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.is(codes::NOT_FOUND)
    }

    /// True when the service throttled the call (retrying later helps).
    pub fn is_throttling(&self) -> bool {
        self.is(codes::THROTTLING) || self.status == Some(429)
    }

    /// True when the service failed (a 5xx answer) or never answered (transport): the
    /// failure is AWS's, not the caller's.
    pub fn is_service_failure(&self) -> bool {
        self.is(codes::SERVICE_FAILURE) || self.status.is_some_and(|s| s >= 500)
    }

    /// True when the caller was refused permission (IAM).
    pub fn is_access_denied(&self) -> bool {
        self.is(codes::ACCESS_DENIED) || (self.status == Some(403) && !self.is_throttling())
    }
}

/// Error codes eden interprets, as AWS spells them.
pub mod codes {
    /// ELB: the rule priority is taken.
    pub const PRIORITY_IN_USE: &str = "PriorityInUse";
    /// ELB: the target group is used by a rule.
    pub const RESOURCE_IN_USE: &str = "ResourceInUse";
    /// ELB: the load balancer has its maximum of rules.
    pub const TOO_MANY_RULES: &str = "TooManyRules";
    /// ELB: the load balancer has its maximum of target groups.
    pub const TOO_MANY_TARGET_GROUPS: &str = "TooManyTargetGroups";
    /// ELB: a target group with that name exists (moto; AWS is idempotent for equal settings).
    pub const DUPLICATE_TARGET_GROUP_NAME: &str = "DuplicateTargetGroupName";
    /// ECR: no such image.
    pub const IMAGE_NOT_FOUND: &str = "ImageNotFoundException";
    /// ECR: no such repository.
    pub const REPOSITORY_NOT_FOUND: &str = "RepositoryNotFoundException";
    /// S3: a conditional put lost (412).
    pub const PRECONDITION_FAILED: &str = "PreconditionFailed";
    /// DynamoDB: a condition expression failed.
    pub const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailedException";
    /// Network or timeout failure before the service answered.
    pub const TRANSPORT: &str = "Transport";
    /// Route 53: a change batch conflicts with the zone (the record exists, or does not).
    pub const INVALID_CHANGE_BATCH: &str = "InvalidChangeBatch";
    /// Codes of throttling.
    pub const THROTTLING: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "RequestThrottledException",
        "PriorRequestNotComplete",
        "SlowDown",
    ];
    /// Codes meaning the service itself failed, or did not answer.
    pub const SERVICE_FAILURE: &[&str] = &[
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServiceError",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServiceException",
        TRANSPORT,
    ];
    /// Codes of permission refusals.
    pub const ACCESS_DENIED: &[&str] = &[
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
    ];
    /// Codes meaning "it does not exist".
    pub const NOT_FOUND: &[&str] = &[
        "NotFound",
        "TargetGroupNotFound",
        "RuleNotFound",
        "ListenerNotFound",
        "LoadBalancerNotFound",
        "ServiceNotFoundException",
        "ServiceNotActiveException",
        "ClusterNotFoundException",
        "NoSuchKey",
        "NoSuchBucket",
        "NoSuchHostedZone",
        "ResourceNotFoundException",
        IMAGE_NOT_FOUND,
        REPOSITORY_NOT_FOUND,
    ];
}

/// Shorthand for trait results.
pub type CloudResult<T> = Result<T, CloudError>;

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

impl Tag {
    /// A tag.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// One page of a paginated listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Token of the next page, `None` on the last.
    pub next: Option<String>,
}

// ---------------------------------------------------------------- ECS

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

// ---------------------------------------------------------------- ELBv2

/// A load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadBalancer {
    /// ARN.
    pub arn: String,
    /// DNS name.
    pub dns_name: String,
    /// Route 53 zone id of the DNS name (for alias records).
    pub canonical_hosted_zone_id: String,
    /// VPC.
    pub vpc_id: String,
}

/// A listener.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listener {
    /// ARN.
    pub arn: String,
    /// `HTTP` / `HTTPS`.
    pub protocol: String,
    /// Port.
    pub port: i32,
}

/// A listener rule, as far as eden uses rules: host-header conditions and forward actions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// ARN.
    pub arn: String,
    /// Priority; `None` for the default rule.
    pub priority: Option<i32>,
    /// Host-header values.
    pub hosts: Vec<String>,
    /// Target groups it forwards to.
    pub target_group_arns: Vec<String>,
}

/// A request to create a host-header forward rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRule {
    /// Listener ARN.
    pub listener_arn: String,
    /// Priority (1..=50000).
    pub priority: i32,
    /// Host header value.
    pub host: String,
    /// Target group to forward to.
    pub target_group_arn: String,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// A target group's health check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthCheck {
    /// Enabled.
    pub enabled: Option<bool>,
    /// Protocol.
    pub protocol: Option<String>,
    /// Port (`traffic-port` or a number).
    pub port: Option<String>,
    /// Path.
    pub path: Option<String>,
    /// Interval.
    pub interval_seconds: Option<i32>,
    /// Timeout.
    pub timeout_seconds: Option<i32>,
    /// Healthy threshold.
    pub healthy_threshold: Option<i32>,
    /// Unhealthy threshold.
    pub unhealthy_threshold: Option<i32>,
    /// Matcher HTTP codes.
    pub matcher_http_code: Option<String>,
    /// Matcher gRPC codes.
    pub matcher_grpc_code: Option<String>,
}

/// A target group's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroupSpec {
    /// Protocol.
    pub protocol: Option<String>,
    /// Protocol version (`HTTP1`, `HTTP2`, `GRPC`).
    pub protocol_version: Option<String>,
    /// Port.
    pub port: Option<i32>,
    /// VPC.
    pub vpc_id: Option<String>,
    /// `ipv4` / `dualstack`.
    pub ip_address_type: Option<String>,
    /// `instance` / `ip` / `lambda` / `alb`.
    pub target_type: Option<String>,
    /// Health check.
    pub health_check: HealthCheck,
}

/// A target group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroup {
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// Settings.
    pub spec: TargetGroupSpec,
    /// Load balancers using it.
    pub load_balancer_arns: Vec<String>,
}

/// A request to create a target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTargetGroup {
    /// Name (at most 32 characters).
    pub name: String,
    /// Settings.
    pub spec: TargetGroupSpec,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// Elastic Load Balancing v2.
#[async_trait]
pub trait LoadBalancerApi: Send + Sync {
    /// Describes a load balancer.
    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer>;
    /// Its listeners.
    async fn describe_listeners(&self, load_balancer_arn: &str) -> CloudResult<Vec<Listener>>;
    /// One page of a listener's rules.
    async fn describe_rules(
        &self,
        listener_arn: &str,
        marker: Option<String>,
    ) -> CloudResult<Page<Rule>>;
    /// Creates a rule.
    async fn create_rule(&self, request: CreateRule) -> CloudResult<Rule>;
    /// Deletes a rule.
    async fn delete_rule(&self, arn: &str) -> CloudResult<()>;
    /// Describes a target group by name; `None` when missing.
    async fn describe_target_group_by_name(&self, name: &str) -> CloudResult<Option<TargetGroup>>;
    /// Describes a target group by ARN; `None` when missing.
    async fn describe_target_group(&self, arn: &str) -> CloudResult<Option<TargetGroup>>;
    /// One page of every target group of the region (`DescribeTargetGroups` without a filter,
    /// pages of up to 400).
    async fn list_target_groups(&self, marker: Option<String>) -> CloudResult<Page<TargetGroup>>;
    /// The tags of up to 20 target groups, rules or load balancers, by ARN (ARNs that do not
    /// exist are left out).
    async fn describe_tags(&self, arns: &[String]) -> CloudResult<BTreeMap<String, Vec<Tag>>>;
    /// A target group's attributes.
    async fn target_group_attributes(&self, arn: &str) -> CloudResult<BTreeMap<String, String>>;
    /// Creates a target group.
    async fn create_target_group(&self, request: CreateTargetGroup) -> CloudResult<TargetGroup>;
    /// Sets attributes of a target group.
    async fn modify_target_group_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> CloudResult<()>;
    /// Deletes a target group (`ResourceInUse` while a rule uses it).
    async fn delete_target_group(&self, arn: &str) -> CloudResult<()>;
}

// ---------------------------------------------------------------- Route 53

/// An alias target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AliasTarget {
    /// Target DNS name.
    pub dns_name: String,
    /// Target's hosted zone id.
    pub hosted_zone_id: String,
    /// Evaluate target health.
    pub evaluate_target_health: bool,
}

/// A DNS record set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsRecord {
    /// Name, lowercase, without the trailing dot.
    pub name: String,
    /// Type (`A`, `CNAME`...).
    pub record_type: String,
    /// Alias target, for alias records.
    pub alias: Option<AliasTarget>,
    /// TTL, for plain records.
    pub ttl: Option<i64>,
    /// Values, for plain records.
    pub values: Vec<String>,
}

/// What to do with a record in a change batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    /// Create it; the batch fails when it exists.
    Create,
    /// Create or replace it.
    Upsert,
    /// Delete it; the batch fails unless it exists exactly as given.
    Delete,
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordChange {
    /// The action.
    pub action: ChangeAction,
    /// The record.
    pub record: DnsRecord,
}

impl RecordChange {
    /// A change.
    pub fn new(action: ChangeAction, record: DnsRecord) -> Self {
        Self { action, record }
    }
}

/// Amazon Route 53.
#[async_trait]
pub trait DnsApi: Send + Sync {
    /// The hosted zone's name (without trailing dot).
    async fn hosted_zone_name(&self, zone_id: &str) -> CloudResult<String>;
    /// Looks up exactly one record by name and type (`StartRecordName`/`StartRecordType`,
    /// checking what comes back); `None` when absent.
    async fn find_record(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> CloudResult<Option<DnsRecord>>;
    /// Applies a batch of changes atomically: all of them, or none
    /// (`InvalidChangeBatch` when one does not apply).
    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<()>;
    /// Creates or replaces a record.
    async fn upsert_record(&self, zone_id: &str, record: &DnsRecord) -> CloudResult<()> {
        self.change_records(
            zone_id,
            &[RecordChange::new(ChangeAction::Upsert, record.clone())],
        )
        .await
    }
    /// Deletes a record (it must match exactly, as Route 53 requires).
    async fn delete_record(&self, zone_id: &str, record: &DnsRecord) -> CloudResult<()> {
        self.change_records(
            zone_id,
            &[RecordChange::new(ChangeAction::Delete, record.clone())],
        )
        .await
    }
}

// ---------------------------------------------------------------- ECR

/// A found image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageDetails {
    /// Its digest.
    pub digest: String,
    /// Its tags.
    pub tags: Vec<String>,
}

/// A container image registry (Amazon ECR).
#[async_trait]
pub trait ImageRegistry: Send + Sync {
    /// Describes one image in the image's own region; `ImageNotFoundException` or
    /// `RepositoryNotFoundException` when absent.
    async fn describe_image(&self, image: &EcrImage) -> CloudResult<ImageDetails>;
}

// ---------------------------------------------------------------- S3

/// A stored object with its ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// Content.
    pub bytes: Vec<u8>,
    /// ETag.
    pub etag: String,
}

/// How a put is conditioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Only if absent (`If-None-Match: *`).
    Create,
    /// Only if the ETag still matches (`If-Match`).
    Update(String),
}

/// An object store (Amazon S3) with conditional writes.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Reads an object; `None` when the key is absent.
    async fn get(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredDocument>>;
    /// Writes an object under a condition; `PreconditionFailed` when it does not hold.
    /// Returns the new ETag.
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> CloudResult<String>;
}

// ---------------------------------------------------------------- DynamoDB

/// A DynamoDB attribute value (eden uses strings and numbers).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AttrValue {
    /// String.
    S(String),
    /// Number, as text.
    N(String),
}

impl AttrValue {
    /// The string value.
    pub fn as_s(&self) -> Option<&str> {
        match self {
            Self::S(s) => Some(s),
            Self::N(_) => None,
        }
    }

    /// The number value.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::N(n) => n.parse().ok(),
            Self::S(_) => None,
        }
    }
}

/// An item.
pub type Item = BTreeMap<String, AttrValue>;

/// A write condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteCondition {
    /// Unconditional.
    None,
    /// Only if no item has this key.
    NotExists,
    /// Only if an item has this key.
    Exists,
}

/// The state table's key schema and index (SPEC 3.6).
pub mod schema {
    /// Default table name.
    pub const DEFAULT_TABLE: &str = "eden";
    /// Hash key.
    pub const HASH_KEY: &str = "type";
    /// Range key.
    pub const RANGE_KEY: &str = "name";
    /// Global secondary index on `kind` / `last_updated`.
    pub const KIND_INDEX: &str = "kind_last_updated_gsi";
    /// Index hash key.
    pub const KIND: &str = "kind";
    /// Index range key (epoch seconds).
    pub const LAST_UPDATED: &str = "last_updated";
}

/// A key-value state table (Amazon DynamoDB) with the schema of [`schema`].
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Creates the table when missing and waits until it is ACTIVE; true when created.
    async fn ensure_table(&self, table: &str) -> CloudResult<bool>;
    /// Writes an item under a condition; returns the item it replaced.
    async fn put_item(
        &self,
        table: &str,
        item: Item,
        condition: WriteCondition,
    ) -> CloudResult<Option<Item>>;
    /// Reads an item by `(type, name)`.
    async fn get_item(&self, table: &str, hash: &str, range: &str) -> CloudResult<Option<Item>>;
    /// Deletes an item; returns it when it existed.
    async fn delete_item(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        condition: WriteCondition,
    ) -> CloudResult<Option<Item>>;
    /// One page of the items with this hash key.
    async fn query(&self, table: &str, hash: &str, next: Option<String>)
    -> CloudResult<Page<Item>>;
    /// One page of the index for `kind`, optionally only `last_updated < before`.
    async fn query_kind(
        &self,
        table: &str,
        kind: &str,
        before: Option<i64>,
        next: Option<String>,
    ) -> CloudResult<Page<Item>>;
    /// One page of the whole table.
    async fn scan(&self, table: &str, next: Option<String>) -> CloudResult<Page<Item>>;

    /// Writes an item only when `condition` holds for the item now stored under its key
    /// (`ConditionalCheckFailedException` otherwise); returns the item it replaced.
    ///
    /// The default reads, checks and writes with [`WriteCondition`]s and undoes a write that
    /// replaced something other than what it read, which keeps leases safe but is not atomic;
    /// stores with condition expressions (DynamoDB) override it.
    async fn put_item_when(
        &self,
        table: &str,
        item: Item,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let (hash, range) = item_key_of(&item)?;
        let current = self.get_item(table, &hash, &range).await?;
        if !condition.holds(current.as_ref()) {
            return Err(condition_failed());
        }
        let Some(seen) = current else {
            return self.put_item(table, item, WriteCondition::NotExists).await;
        };
        let replaced = self.put_item(table, item, WriteCondition::Exists).await?;
        if replaced.as_ref() != Some(&seen) {
            // Someone wrote between our read and write: put theirs back and lose.
            if let Some(theirs) = replaced {
                self.put_item(table, theirs, WriteCondition::None).await?;
            }
            return Err(condition_failed());
        }
        Ok(replaced)
    }

    /// Changes some attributes of an item (creating it when absent) only when `condition`
    /// holds (`ConditionalCheckFailedException` otherwise); returns the item as it was.
    /// DynamoDB's `UpdateItem` with `SET`, `if_not_exists` and `REMOVE`.
    ///
    /// The default reads, applies the update and writes with [`StateStore::put_item_when`]
    /// (not atomic; stores with update expressions override it).
    async fn update_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        update: &ItemUpdate,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let current = self.get_item(table, hash, range).await?;
        if !condition.holds(current.as_ref()) {
            return Err(condition_failed());
        }
        let next = update.apply(hash, range, current.as_ref());
        // Written only if the item is still the one read (or still absent).
        let unchanged = match &current {
            None => ItemCondition::Absent,
            Some(item) => ItemCondition::Same(item.clone()),
        };
        self.put_item_when(table, next, &unchanged).await?;
        Ok(current)
    }

    /// Deletes an item only when `condition` holds for it (`ConditionalCheckFailedException`
    /// otherwise); returns it. The default reads, checks and deletes (not atomic; override it
    /// where the store has condition expressions).
    async fn delete_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let current = self.get_item(table, hash, range).await?;
        if !condition.holds(current.as_ref()) {
            return Err(condition_failed());
        }
        self.delete_item(table, hash, range, WriteCondition::None)
            .await
    }
}

/// A condition on the item stored under a key, evaluated as DynamoDB evaluates a condition
/// expression: against the stored item, where an absent item has no attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemCondition {
    /// No item has the key (`attribute_not_exists` of the hash key).
    Absent,
    /// An item has the key.
    Exists,
    /// The item has this attribute.
    Has(String),
    /// The item lacks this attribute (true when there is no item).
    Missing(String),
    /// The item's string attribute `attribute` equals `value`.
    Equals {
        /// String attribute.
        attribute: String,
        /// Expected value.
        value: String,
    },
    /// The item's number attribute `attribute` is below `value`.
    Below {
        /// Number attribute.
        attribute: String,
        /// Bound (exclusive).
        value: i64,
    },
    /// The item is exactly this one (every attribute equal). Only the default
    /// [`StateStore::update_item_when`] uses it; stores need not translate it.
    Same(Item),
    /// Every condition holds.
    All(Vec<ItemCondition>),
    /// At least one condition holds.
    Any(Vec<ItemCondition>),
}

impl ItemCondition {
    /// [`ItemCondition::Equals`].
    pub fn equals(attribute: impl Into<String>, value: impl Into<String>) -> Self {
        Self::Equals {
            attribute: attribute.into(),
            value: value.into(),
        }
    }

    /// [`ItemCondition::Below`].
    pub fn below(attribute: impl Into<String>, value: i64) -> Self {
        Self::Below {
            attribute: attribute.into(),
            value,
        }
    }

    /// True when the condition holds for `current` (the stored item, if any).
    pub fn holds(&self, current: Option<&Item>) -> bool {
        match self {
            Self::Absent => current.is_none(),
            Self::Exists => current.is_some(),
            Self::Has(a) => current.is_some_and(|i| i.contains_key(a)),
            Self::Missing(a) => !current.is_some_and(|i| i.contains_key(a)),
            Self::Equals { attribute, value } => {
                current
                    .and_then(|i| i.get(attribute))
                    .and_then(AttrValue::as_s)
                    == Some(value.as_str())
            }
            Self::Below { attribute, value } => current
                .and_then(|i| i.get(attribute))
                .and_then(AttrValue::as_i64)
                .is_some_and(|v| v < *value),
            Self::Same(item) => current == Some(item),
            Self::All(all) => all.iter().all(|c| c.holds(current)),
            Self::Any(any) => any.iter().any(|c| c.holds(current)),
        }
    }
}

/// An update of some attributes of one item (DynamoDB `UpdateItem`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemUpdate {
    /// Attributes set (`SET #a = :v`).
    pub set: Item,
    /// Attributes set only when the item lacks them (`SET #a = if_not_exists(#a, :v)`).
    pub set_if_absent: Item,
    /// Attributes removed (`REMOVE #a`).
    pub remove: Vec<String>,
}

impl ItemUpdate {
    /// Sets `attribute`.
    pub fn set(mut self, attribute: impl Into<String>, value: AttrValue) -> Self {
        self.set.insert(attribute.into(), value);
        self
    }

    /// Sets `attribute` unless the item has it.
    pub fn set_if_absent(mut self, attribute: impl Into<String>, value: AttrValue) -> Self {
        self.set_if_absent.insert(attribute.into(), value);
        self
    }

    /// Removes `attribute`.
    pub fn remove(mut self, attribute: impl Into<String>) -> Self {
        self.remove.push(attribute.into());
        self
    }

    /// The item after the update, from the item before (or none).
    pub fn apply(&self, hash: &str, range: &str, current: Option<&Item>) -> Item {
        let mut item = current.cloned().unwrap_or_else(|| {
            Item::from([
                (schema::HASH_KEY.into(), AttrValue::S(hash.to_owned())),
                (schema::RANGE_KEY.into(), AttrValue::S(range.to_owned())),
            ])
        });
        for (k, v) in &self.set_if_absent {
            item.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &self.set {
            item.insert(k.clone(), v.clone());
        }
        for k in &self.remove {
            item.remove(k);
        }
        item
    }
}

fn condition_failed() -> CloudError {
    CloudError::new(
        codes::CONDITIONAL_CHECK_FAILED,
        "The conditional request failed",
    )
}

fn item_key_of(item: &Item) -> CloudResult<(String, String)> {
    let get = |k: &str| {
        item.get(k)
            .and_then(AttrValue::as_s)
            .map(str::to_owned)
            .ok_or_else(|| {
                CloudError::new("ValidationException", format!("missing key attribute {k}"))
            })
    };
    Ok((get(schema::HASH_KEY)?, get(schema::RANGE_KEY)?))
}

/// Every outside system eden talks to.
#[derive(Clone)]
pub struct Cloud {
    /// ECS.
    pub ecs: Arc<dyn EcsApi>,
    /// ELBv2.
    pub elb: Arc<dyn LoadBalancerApi>,
    /// Route 53.
    pub dns: Arc<dyn DnsApi>,
    /// ECR.
    pub images: Arc<dyn ImageRegistry>,
    /// S3.
    pub documents: Arc<dyn DocumentStore>,
    /// DynamoDB.
    pub state: Arc<dyn StateStore>,
    /// The region the clients call, when known: create and delete refuse a profile whose
    /// ARNs name another region, before any call.
    pub region: Option<String>,
}

impl std::fmt::Debug for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloud").finish_non_exhaustive()
    }
}

impl Cloud {
    /// All six systems served by one value (the in-memory cloud, a test double...).
    pub fn from_one<T>(one: Arc<T>) -> Self
    where
        T: EcsApi + LoadBalancerApi + DnsApi + ImageRegistry + DocumentStore + StateStore + 'static,
    {
        Self {
            ecs: one.clone(),
            elb: one.clone(),
            dns: one.clone(),
            images: one.clone(),
            documents: one.clone(),
            state: one,
            region: None,
        }
    }

    /// The same clients, calling `region`.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
}
