//! The outside systems eden talks to: one small trait per AWS service, speaking eden's own
//! types (never SDK types), one file per service.
//!
//! | trait | service | file |
//! | --- | --- | --- |
//! | [`EcsApi`] | Amazon ECS: services, task definitions | `cloud/ecs.rs` |
//! | [`LoadBalancerApi`] | Elastic Load Balancing v2: the ALB, rules, target groups | `cloud/elb.rs` |
//! | [`DnsApi`] | Amazon Route 53: records, atomic change batches | `cloud/route53.rs` |
//! | [`ImageRegistry`] | Amazon ECR: the image check | `cloud/ecr.rs` |
//! | [`DocumentStore`] | Amazon S3: the endpoints document, conditional writes | `cloud/s3.rs` |
//! | [`StateStore`] | Amazon DynamoDB: the state table, conditions, updates | `cloud/dynamodb.rs` |
//!
//! Every trait answers [`CloudError`], which keeps the service's error code, message and HTTP
//! status; [`Cloud`] bundles one implementation of each.
//!
//! Implementations: [`crate::memory::MemoryCloud`] (all six, in memory, behaving like AWS
//! where eden depends on it), `crate::aws` (the official SDK clients, feature `aws`) and the
//! [`crate::instrument::Instrumented`] wrapper (latency, fault injection, call log). The
//! `conformance` feature holds the behaviours every implementation must show; the `mock`
//! feature adds a [mockall](https://docs.rs/mockall) double of each trait (`MockEcsApi`,
//! `MockDnsApi`...). See [docs/eden.md](https://github.com/baikonur-oss/baikonur-rs/blob/main/docs/eden.md)
//! for what eden does with each service, and the IAM permissions it needs.

use std::sync::Arc;

mod dynamodb;
mod ecr;
mod ecs;
mod elb;
mod error;
mod route53;
mod s3;

pub use dynamodb::{
    AttrValue, Item, ItemCondition, ItemUpdate, StateStore, WriteCondition, schema,
};
pub use ecr::{ImageDetails, ImageRegistry};
pub use ecs::{
    CapacityProviderItem, ContainerImage, CreateService, Deployment, DeploymentAlarms,
    DeploymentConfiguration, EbsTagSpecification, EcsApi, LogConfiguration, ManagedEbsVolume,
    NetworkConfiguration, PlacementConstraint, PlacementStrategy, RegisterTaskDefinition, Service,
    ServiceConnect, ServiceConnectService, ServiceEvent, ServiceLoadBalancer, ServiceRegistry,
    ServiceSpec, TaskDefinition, TaskDefinitionStatus, VolumeConfiguration,
};
pub use elb::{
    CreateRule, CreateTargetGroup, HealthCheck, Listener, LoadBalancer, LoadBalancerApi, Rule,
    TargetGroup, TargetGroupSpec,
};
pub use error::{CloudError, CloudResult, codes};
pub use route53::{AliasTarget, ChangeAction, DnsApi, DnsRecord, RecordChange};
pub use s3::{DocumentStore, PutMode, StoredDocument};

#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub use {
    dynamodb::MockStateStore, ecr::MockImageRegistry, ecs::MockEcsApi, elb::MockLoadBalancerApi,
    route53::MockDnsApi, s3::MockDocumentStore,
};

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
