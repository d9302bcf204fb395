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
//! * `aws` (default): the traits on `aws-sdk-*`, built from an `aws_types::SdkConfig`.
//! * `lambda-events`: `http_api::lambda`, the adapter for `aws_lambda_events` API Gateway
//!   proxy requests and responses.
//! * `conformance`: `conformance`, one suite per cloud trait of the behaviours every
//!   implementation must show (the in-memory cloud and the AWS clients pass them); for
//!   implementers of the traits, not API-stable.
//! * `mock`: a [mockall](https://docs.rs/mockall) double of every cloud trait
//!   (`cloud::MockEcsApi`, `cloud::MockLoadBalancerApi`, `cloud::MockDnsApi`,
//!   `cloud::MockImageRegistry`, `cloud::MockDocumentStore`, `cloud::MockStateStore`), to put in
//!   a [`Cloud`] beside real or in-memory implementations of the others.

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
