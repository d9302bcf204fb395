//! Local test servers: Elasticsearch-like HTTP, Fluent forward, and a SigV4 verifier.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fluent_server;
pub mod search_server;
pub mod sigv4;
