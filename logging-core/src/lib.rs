//! The Baikonur common log schema, routing, destinations and a Kinesis Lambda pipeline.

pub mod search;
pub mod fluent;
pub mod retention;
