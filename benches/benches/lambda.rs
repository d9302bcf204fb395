//! The Lambda handler users deploy, from invocation bytes to response bytes, beside the
//! pipeline alone.
//!
//! `cargo bench -p baikonur-benches --bench lambda`
//!
//! On the standard 10k-payload batches (plain, CloudWatch Logs, KPL) with the pipeline fault mix,
//! one group per batch, the same pipeline (an S3 archive of plain NDJSON objects and a dead
//! letter, both on in-memory stores) in three ways:
//!
//! * `process`: `Pipeline::process(&event_json)`, the inner path;
//! * `handler`: `logging_core::lambda::handle(&pipeline, &event_json, deadline)`, what
//!   `lambda::serve` runs for every invocation: the raw invocation bytes in, the serialised
//!   partial batch response out, with the Lambda deadline and the per-batch log events (no
//!   subscriber installed, as in the other benches);
//! * `kinesis_event`: the path the examples took before `lambda::serve`, for the record:
//!   `serde_json` into `aws_lambda_events`' `KinesisEvent` (what `LambdaEvent<KinesisEvent>`
//!   makes the runtime do), `Pipeline::process_event`, and the `KinesisEventResponse`
//!   serialised.
//!
//! Throughput is in payloads (elements) and payload bytes (the decoded log lines), the same for
//! the three, so their ratios are the ratios of their times. The machine the figures come from
//! is shared: compare the variants within one run, not across runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/timing.rs"]
mod timing;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::kinesis::KinesisEvent;
use baikonur_benches::{FaultMix, standard_batches};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logging_core::compress::Compression;
use logging_core::dead_letter::{DeadLetter, DeadLetterConfig};
use logging_core::{
    ArchiveConfig, Deadline, MemoryStore, Pipeline, S3Archive, SchemaConfig, TypeFilter,
};

fn pipeline() -> Pipeline {
    let archive = S3Archive::builder(
        Arc::new(MemoryStore::new()),
        ArchiveConfig {
            prefix: "logs".into(),
            ..ArchiveConfig::default()
        }
        .with_compression(Compression::None),
    );
    let dead_letter = DeadLetter::builder(
        Arc::new(MemoryStore::new()),
        DeadLetterConfig::default().with_compression(Compression::None),
    );
    Pipeline::builder(SchemaConfig::default())
        .route(TypeFilter::all(), archive)
        .dead_letter(dead_letter)
        .build()
}

/// A Lambda deadline as `lambda::serve` gets one: the longest function timeout from now.
fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(900))
}

fn benches(c: &mut Criterion<timing::BenchTime>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (name, batch) in standard_batches(FaultMix::PIPELINE) {
        let event: &[u8] = &batch.event_json;
        let p = pipeline();
        // The three answer the same, and the handler's bytes are the response's JSON.
        let processed = rt.block_on(p.process(event)).unwrap();
        assert_eq!(processed.report.outcome_total(), processed.report.items);
        assert!(processed.response.batch_item_failures.is_empty());
        let answer = rt
            .block_on(logging_core::lambda::handle(&p, event, deadline()))
            .unwrap();
        assert_eq!(answer, serde_json::to_vec(&processed.response).unwrap());
        let typed: KinesisEvent = serde_json::from_slice(event).unwrap();
        let (report, response) = rt.block_on(p.process_event(typed));
        assert_eq!(report.items, processed.report.items);
        assert_eq!(
            serde_json::to_vec(&response).unwrap(),
            br#"{"batchItemFailures":[]}"#
        );
        println!(
            "lambda/{name}: event {} bytes, {} records, {} payloads, {} payload bytes",
            event.len(),
            processed.report.records,
            batch.lines.len(),
            batch.payload_bytes
        );

        let mut group = c.benchmark_group(format!("lambda/{name}"));
        group.throughput(Throughput::ElementsAndBytes {
            elements: batch.lines.len() as u64,
            bytes: batch.payload_bytes as u64,
        });
        group.sample_size(20);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(4));
        group.bench_function("process", |b| {
            b.iter(|| rt.block_on(p.process(black_box(event))).unwrap())
        });
        group.bench_function("handler", |b| {
            b.iter(|| {
                rt.block_on(logging_core::lambda::handle(
                    &p,
                    black_box(event),
                    deadline(),
                ))
                .unwrap()
            })
        });
        group.bench_function("kinesis_event", |b| {
            b.iter(|| {
                let typed: KinesisEvent = serde_json::from_slice(black_box(event)).unwrap();
                let (_report, response) = rt.block_on(p.process_event(typed));
                serde_json::to_vec(&response).unwrap()
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = lambda_benches;
    config = timing::criterion();
    targets = benches
}
criterion_main!(lambda_benches);
