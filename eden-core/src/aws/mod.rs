//! The cloud traits on the official AWS SDK clients (feature `aws`), one file per service,
//! with one SDK error mapping ([`map_sdk_error`]) shared by all of them.
//!
//! | implementation | trait | SDK crate |
//! | --- | --- | --- |
//! | [`AwsEcs`] | [`EcsApi`](crate::cloud::EcsApi) | `aws-sdk-ecs` |
//! | [`AwsLoadBalancer`] | [`LoadBalancerApi`](crate::cloud::LoadBalancerApi) | `aws-sdk-elasticloadbalancingv2` |
//! | [`AwsDns`] | [`DnsApi`](crate::cloud::DnsApi) | `aws-sdk-route53` |
//! | [`AwsEcr`] | [`ImageRegistry`](crate::cloud::ImageRegistry) | `aws-sdk-ecr` |
//! | [`AwsS3`] | [`DocumentStore`](crate::cloud::DocumentStore) | `aws-sdk-s3` |
//! | [`AwsDynamoDb`] | [`StateStore`](crate::cloud::StateStore) | `aws-sdk-dynamodb` |
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

use std::sync::Arc;

use aws_types::SdkConfig;

use crate::cloud::Cloud;

mod dynamodb;
mod ecr;
mod ecs;
mod elb;
mod error;
mod route53;
mod s3;

pub use dynamodb::AwsDynamoDb;
pub use ecr::AwsEcr;
pub use ecs::AwsEcs;
pub use elb::AwsLoadBalancer;
pub use error::map_sdk_error;
pub use route53::AwsDns;
pub use s3::AwsS3;

/// Every trait on AWS, from one SDK configuration.
pub fn cloud(config: &SdkConfig) -> Cloud {
    cloud_with_s3(config, aws_sdk_s3::config::Builder::from(config).build())
}

/// Every trait on AWS, with a separate S3 configuration (e.g. `force_path_style(true)` for
/// S3-compatible servers). The cloud knows the configuration's region, so that a profile
/// naming resources in another region is refused by name before any call.
pub fn cloud_with_s3(config: &SdkConfig, s3: aws_sdk_s3::Config) -> Cloud {
    Cloud {
        ecs: Arc::new(AwsEcs::new(config)),
        elb: Arc::new(AwsLoadBalancer::new(config)),
        dns: Arc::new(AwsDns::new(config)),
        images: Arc::new(AwsEcr::new(config)),
        documents: Arc::new(AwsS3::from_conf(s3)),
        state: Arc::new(AwsDynamoDb::new(config)),
        region: config.region().map(|r| r.as_ref().to_owned()),
    }
}

/// `None` for an empty list: the SDK builders then leave the field out, as AWS expects.
fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}
