//! Elastic Load Balancing v2: the shared ALB, its listener rules and target groups
//! ([`LoadBalancerApi`]).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{CloudResult, Page, Tag};

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
#[cfg_attr(feature = "mock", mockall::automock)]
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
