//! eden: clone a reference ECS service into a named preview environment behind one shared ALB.
//!
//! * [`Environment`]: `create` (also deploys to an existing environment), `delete`, `list`,
//!   dry-run plans and the expiry `sweep`, converging, rolling back what a failed run created,
//!   and safe under concurrency; the critical path is five sequential round trips.
//! * [`Profile`]: the eleven configuration keys, validated key by key.
//! * [`names`]: [`EnvironmentName`] and every name derived from it, one derivation for create,
//!   delete and list.
//! * [`ImageRef`]: image URIs (private ECR images are checked before anything is created).
//! * [`endpoints`]: pure edits of the shared endpoints JSON document.
//! * [`cloud`]: one small trait per AWS service (one file each); [`memory::MemoryCloud`]
//!   implements them all in memory, `aws` (feature `aws`) on the official SDK clients, and
//!   [`instrument::Instrumented`] adds latency, fault injection and a call log to any of them.
//! * [`Error`]: names the step and the resource; `AlbFull` and `ImageNotFound` stand apart.
//! * [`migration`]: copying aws-eden-cli 0.1.5's state table into eden's layout; its profile
//!   keys are read by [`profile`] (see [`profile::legacy`]).
//!
//! The user guide is [docs/eden.md](https://github.com/baikonur-oss/baikonur-rs/blob/main/docs/eden.md).
//!
//! # Quickstart
//!
//! In `Cargo.toml` (the `tokio` line is for the example's `main`; add `aws-config` to load
//! the AWS SDK configuration in production):
//!
//! ```toml
//! [dependencies]
//! eden-core = "0.1"
//! tokio = { version = "1", features = ["macros", "rt"] }
//! ```
//!
//! Create, list and delete an environment. The code takes a [`Cloud`]: here
//! [`memory::MemoryCloud`], seeded with the reference resources a profile names, so it runs
//! without an AWS account; in production `eden_core::aws::cloud(&sdk_config)` (feature `aws`).
//!
//! ```
//! use eden_core::memory::{MemoryCloud, MemoryOptions};
//! use eden_core::{CreateOptions, DeleteOptions, Environment, Profile};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // A profile as in `~/.eden/config`; every bad key is reported by name.
//!     let profile = Profile::from_ini(
//!         "[default]
//! name_prefix = web
//! reference_service_arn = arn:aws:ecs:us-east-1:123456789012:service/main/web
//! target_cluster = main
//! domain_name_prefix = api
//! master_alb_arn = arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shared/50dc6c495c0c9188
//! dynamic_zone_id = Z0EXAMPLE
//! endpoint_s3_bucket_name = eden-endpoints
//! endpoint_s3_key = endpoints.json
//! endpoint_name_prefix = servicename-dev
//! endpoint_update_key = api_endpoint
//! endpoint_env_type = dev
//! ",
//!         "default",
//!     )?;
//!     let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
//!     let eden = Environment::new(memory.cloud());
//!
//!     let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";
//!     let created = eden
//!         .create(&profile, "feature-1", image, &CreateOptions::default())
//!         .await?;
//!     for resource in &created.resources {
//!         println!("{resource}"); // kind, ARN or name, and created / updated / reused
//!     }
//!     let listed = eden.list(Some("default")).await?;
//!     assert_eq!(listed[0].endpoint, "api-feature-1.dev.example.com");
//!
//!     eden.delete(&profile, "feature-1", &DeleteOptions::default()).await?;
//!     assert!(eden.list(Some("default")).await?.is_empty());
//!     Ok(())
//! }
//! ```
//!
//! # Layout
//!
//! One folder per concern: [`cloud`] (the traits, one file per service), `aws` and [`memory`]
//! (their implementations, one file per service), [`environment`] (create, delete, plans, the
//! journal and rollback, waiting, list and state). Modules never import each other in a
//! cycle; from the bottom up: `image` and the name rules; [`cloud`]; [`ownership`], `aws`,
//! [`instrument`]; [`endpoints`]; [`profile`]; [`names`], [`config_file`], [`memory`]; the
//! outcome types; [`error`]; [`lease`]; [`environment`]; [`remote`]; [`http_api`]. See
//! [docs/architecture.md](https://github.com/baikonur-oss/baikonur-rs/blob/main/docs/architecture.md).
//!
//! # Cargo features
//!
//! | feature | default | what it enables |
//! | --- | --- | --- |
//! | `aws` | yes | the traits on the official `aws-sdk-*` clients (ECS, ELBv2, Route 53, S3, DynamoDB, ECR), built from an `aws_types::SdkConfig` |
//! | `lambda-events` | no | `http_api::lambda`, the adapter for `aws_lambda_events` API Gateway proxy requests and responses |
//! | `conformance` | no | `conformance`, one suite per cloud trait of the behaviours every implementation must show (the in-memory cloud and the AWS clients pass them); for implementers of the traits, not API-stable |
//! | `mock` | no | a [mockall](https://docs.rs/mockall) double of every cloud trait (`cloud::MockEcsApi`, `cloud::MockLoadBalancerApi`, `cloud::MockDnsApi`, `cloud::MockImageRegistry`, `cloud::MockDocumentStore`, `cloud::MockStateStore`), to put in a [`Cloud`] beside real or in-memory implementations of the others |
//!
//! `default-features = false` leaves out the AWS SDK: the in-memory cloud, profiles, plans
//! and the HTTP API handler stay.
//!
//! # Stability
//!
//! The crate follows semantic versioning (while at `0.x`, a minor release may break, a patch
//! release does not) and builds on Rust 1.94 or newer: see the
//! [versioning policy](https://github.com/baikonur-oss/baikonur-rs/blob/main/docs/versioning.md).

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "aws")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws")))]
pub mod aws;
pub mod cloud;
pub mod config_file;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub mod endpoints;
pub mod environment;
pub mod error;
pub mod http_api;
pub mod image;
pub mod instrument;
pub mod lease;
pub mod memory;
pub mod migration;
mod name_rules;
pub mod names;
mod outcome;
pub mod ownership;
pub mod profile;
pub mod remote;

pub use cloud::{Cloud, CloudError};
pub use endpoints::EndpointsDocument;
pub use environment::{
    Action, CreateOptions, DeleteOptions, Environment, EnvironmentRecord, EnvironmentStatus,
    Outcome, Progress, ResourceChange, ResourceKind,
};
pub use error::{Error, ErrorClass, Result, Step};
pub use image::{EcrImage, ImageRef, ImageSelector};
pub use lease::{LeaseInfo, LeaseOptions};
pub use names::{EnvironmentName, EnvironmentNames, NameError};
pub use ownership::{ForeignOwner, Owner, RunId};
pub use profile::{KeyProblem, Profile, ProfileError};
