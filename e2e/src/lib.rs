//! End-to-end tests of the Baikonur crates in the shape users deploy them.
//!
//! The Lambda examples of `logging-core` and `eden-core` run as processes, built by
//! `cargo test` like any example, against test peers that speak the real protocols:
//!
//! * [`runtime_api`]: a local Lambda Runtime API (2018-06-01), the interface the
//!   `lambda_runtime` crate polls;
//! * [`esm`]: an event source mapping that reads a moto Kinesis stream and invokes the
//!   function as Lambda does (batch size, batching window, partial batch responses,
//!   bisect-on-error, retries, per-shard order, checkpoints);
//! * [`producer`]: plain, KPL-aggregated and CloudWatch Logs records, bad ones included,
//!   with the bookkeeping of where each must end up;
//! * [`fault_proxy`]: a proxy in front of moto that answers a bounded share of S3 and Kinesis
//!   calls with 5xx errors, slow answers and connection resets;
//! * [`function`]: execution environments started with Lambda's environment variables;
//! * [`scripted`]: a scripted runtime for answers a real function rarely gives;
//! * [`moto`] and [`outputs`]: the moto clients and the read-back of what the functions wrote.
//!
//! The crate is not published; its tests are part of the workspace's test command.

pub mod esm;
pub mod fault_proxy;
pub mod function;
pub mod http;
pub mod moto;
pub mod outputs;
pub mod producer;
pub mod runtime_api;
pub mod scripted;
