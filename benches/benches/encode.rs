//! Encoding throughput of the search and forward delivery engines: Bulk API NDJSON bodies
//! and Fluent forward chunks from 10k deterministic log lines of 300–600 bytes.
//!
//! `cargo bench -p baikonur-benches --bench encode`
//!
//! Records are parsed once in setup (decoding is measured by the `decode` bench); each
//! iteration does what delivery does per batch: index names from each record's timestamp,
//! `_id` from `log_id`, and the request bodies (or msgpack chunks). Throughput counts the
//! log payload bytes (`encode_bytes`) and records (`encode_records`).
//!
//! `bulk_ndjson_gzip{1,6}` add what `HttpSearch` does with `gzip_level`: one gzip per body;
//! `forward_compressed_gzip{1,6}` are CompressedPackedForward chunks at those levels. The
//! bench prints the bytes each variant puts on the wire.
//!
//! `search_deliver/*` measures `SearchDestination::deliver` on the standard plain batch
//! (decoded, classified and routed in setup) into a cluster that answers every item 201
//! without reading it: index names, `_id`s per `DocIdMode` (`no_id`, `origin_id`, the
//! default, and `log_id`), the bodies, and reading the answers. The difference between
//! `no_id` and `origin_id` is what idempotent replays cost this side.
//!
//! `forward_plan/*` measures `KinesisForward::plan` (the Kinesis records a batch becomes)
//! on the standard plain batch with the pipeline's fault mix, classified and routed in setup:
//! `plain` (one Kinesis record per log line), `kpl_51200` (the default aggregate size) and
//! `kpl_1mib`. The bench prints each one's Kinesis records, PUT payload units and PutRecords
//! calls per batch.
//!
//! `BENCH_TIME=cpu` measures the bench thread's on-CPU time instead of the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/timing.rs"]
mod timing;

use std::hint::black_box;
use std::sync::Arc;

use async_trait::async_trait;
use baikonur_benches::{FaultMix, Rng, log_line, plain_batch};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kinesis_utils::Decoder;
use kinesis_utils::kpl::DEFAULT_MAX_AGGREGATED_BYTES;
use kinesis_utils::memory::InMemoryKinesis;
use logging_core::classify::{Classified, Classifier};
use logging_core::destination::Destination;
use logging_core::fluent::{FluentClient, FluentConfig, FluentEvent, ForwardMode, tag_for};
use logging_core::forward::{ForwardConfig, KinesisForward};
use logging_core::routing::{Router, TypeFilter};
use logging_core::search::{
    BulkConfig, BulkEncoder, BulkItem, EncodedBulk, IndexNamer, doc_id_from_log_id, gzip_body,
};
use logging_core::search::{
    BulkItemResult, BulkReply, DocIdMode, MemorySearch, SearchApi, SearchDestination,
    SearchDestinationConfig, SearchError, deliver_bulk,
};
use logging_core::{LogRecord, SchemaConfig};

const LINES: usize = 10_000;

fn encode(c: &mut Criterion<timing::BenchTime>) {
    let mut rng = Rng::new(0x00e5_c0de);
    let lines: Vec<String> = (0..LINES)
        .map(|n| log_line(&mut rng, n, FaultMix::NONE))
        .collect();
    let payload_bytes: usize = lines.iter().map(String::len).sum();
    let tz = "Asia/Tokyo".parse::<logging_core::TimeZone>().unwrap().tz();
    let parsed: Vec<_> = lines
        .iter()
        .map(|l| {
            let r = LogRecord::parse(l.as_bytes()).unwrap();
            let log_type = r.log_type().unwrap().as_str().unwrap().to_owned();
            let log_id = r.log_id().unwrap().as_text().unwrap().to_owned();
            let time = r.timestamp(tz).unwrap().unwrap();
            (r.raw(), log_type, log_id, time)
        })
        .collect();
    let tags: Vec<String> = parsed
        .iter()
        .map(|(_, t, _, _)| tag_for(t, "kinesis"))
        .collect();

    let namer = IndexNamer::new("logs", tz);
    let encoder = BulkEncoder::new(&BulkConfig::default());
    let bulk_items = || {
        let mut name = String::new();
        parsed
            .iter()
            .enumerate()
            .map(|(key, (raw, log_type, log_id, time))| {
                namer.write_index_name(&mut name, log_type, *time).unwrap();
                BulkItem {
                    key,
                    index: name.clone(),
                    id: Some(doc_id_from_log_id(log_id)),
                    source: raw,
                }
            })
            .collect::<Vec<BulkItem<'_>>>()
    };
    let bulk = || {
        let items = bulk_items();
        let encoded = encoder.encode(&items);
        assert!(encoded.invalid.is_empty());
        encoded
    };
    // What `HttpSearch` does with `gzip_level` on top of the encoding: one gzip per body.
    let gzip = |encoded: &EncodedBulk, level: u32| -> usize {
        encoded
            .chunks
            .iter()
            .map(|c| gzip_body(&c.body, level).unwrap().len())
            .sum()
    };
    let plain_bytes: usize = bulk().chunks.iter().map(|c| c.body.len()).sum();
    println!(
        "bulk bodies: {plain_bytes} bytes plain, {} with gzip level 1, {} with level 6 ({payload_bytes} bytes of log lines)",
        gzip(&bulk(), 1),
        gzip(&bulk(), 6)
    );
    // A cluster that refuses bodies over 100 kB: what the batch sends and what is refused.
    let limited = MemorySearch::new();
    limited.set_max_body(Some(100_000));
    let items = bulk_items();
    let report = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(deliver_bulk(&limited, &items, &BulkConfig::default()));
    assert_eq!(report.delivered(), LINES);
    println!(
        "bulk with a 100 kB limit: {} requests, {} bytes sent, {} of them refused (413)",
        report.requests, report.bytes_sent, report.bytes_refused
    );
    let forward = |client: &FluentClient| {
        let events: Vec<FluentEvent<'_>> = parsed
            .iter()
            .zip(&tags)
            .enumerate()
            .map(|(key, ((raw, _, _, time), tag))| FluentEvent {
                key,
                tag: tag.clone(),
                time: *time,
                record_json: raw,
            })
            .collect();
        let encoded = client.encode(&events);
        assert!(encoded.rejected.is_empty());
        encoded
    };
    let packed = FluentClient::new(FluentConfig::default()).unwrap();
    let plain = FluentClient::new(FluentConfig {
        mode: ForwardMode::Forward,
        ..FluentConfig::default()
    })
    .unwrap();
    let compressed = |gzip_level| {
        FluentClient::new(FluentConfig {
            mode: ForwardMode::CompressedPackedForward,
            gzip_level,
            ..FluentConfig::default()
        })
        .unwrap()
    };
    let (gzip1, gzip6) = (compressed(1), compressed(6));
    let wire = |client: &FluentClient| -> usize {
        forward(client).chunks.iter().map(|c| c.message.len()).sum()
    };
    println!(
        "forward chunks: {} bytes PackedForward, {} Forward, {} CompressedPackedForward gzip level 1, {} level 6",
        wire(&packed),
        wire(&plain),
        wire(&gzip1),
        wire(&gzip6)
    );

    for (group, throughput) in [
        ("encode_bytes", Throughput::Bytes(payload_bytes as u64)),
        ("encode_records", Throughput::Elements(LINES as u64)),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(throughput);
        g.bench_function("bulk_ndjson", |b| b.iter(|| black_box(bulk())));
        for level in [1, 6] {
            g.bench_function(format!("bulk_ndjson_gzip{level}"), |b| {
                b.iter(|| black_box(gzip(&bulk(), level)))
            });
        }
        g.bench_function("forward_packed", |b| b.iter(|| black_box(forward(&packed))));
        g.bench_function("forward_forward", |b| b.iter(|| black_box(forward(&plain))));
        g.bench_function("forward_compressed_gzip1", |b| {
            b.iter(|| black_box(forward(&gzip1)))
        });
        g.bench_function("forward_compressed_gzip6", |b| {
            b.iter(|| black_box(forward(&gzip6)))
        });
        g.finish();
    }
}

/// A cluster that indexes every item (201) without reading it; it counts the body bytes.
#[derive(Default)]
struct Accepting(std::sync::atomic::AtomicUsize);

#[async_trait]
impl SearchApi for Accepting {
    async fn bulk(&self, body: Bytes) -> Result<BulkReply, SearchError> {
        self.0
            .fetch_add(body.len(), std::sync::atomic::Ordering::Relaxed);
        let actions = memchr::memchr_iter(b'\n', &body).count() / 2;
        let ok = BulkItemResult {
            status: 201,
            error_type: None,
            reason: None,
        };
        Ok(BulkReply {
            items: vec![ok; actions],
        })
    }
    async fn list_indices(&self) -> Result<Vec<String>, SearchError> {
        Ok(Vec::new())
    }
    async fn delete_indices(&self, _: &[String]) -> Result<(), SearchError> {
        Ok(())
    }
}

fn search_deliver(c: &mut Criterion<timing::BenchTime>) {
    let batch = plain_batch(LINES, FaultMix::NONE, 1);
    let decoded = Decoder::default()
        .decode_event_json(&batch.event_json)
        .unwrap();
    let schema = SchemaConfig::default();
    let mut classifier = Classifier::new(&schema);
    let records: Vec<_> = decoded
        .items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match classifier.classify(i, item) {
            Classified::Valid(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(records.len(), LINES);
    let router = Router::new().with_route(TypeFilter::all(), ());
    let routed = router.route(&records);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("search_deliver");
    g.throughput(Throughput::Bytes(batch.payload_bytes as u64));
    for (name, doc_id) in [
        ("no_id", DocIdMode::None),
        ("origin_id", DocIdMode::Origin),
        ("log_id", DocIdMode::LogId),
    ] {
        let cluster = Arc::new(Accepting::default());
        let es = SearchDestination::builder(
            cluster.clone(),
            SearchDestinationConfig {
                index_prefix: "logs".into(),
                doc_id,
                ..SearchDestinationConfig::default()
            },
        )
        .unwrap()
        .build(&schema);
        let report = rt.block_on(es.deliver(&routed[0]));
        assert_eq!(report.counts(), (LINES, 0, 0));
        println!(
            "search_deliver {name}: {} body bytes for {} bytes of log lines",
            cluster.0.load(std::sync::atomic::Ordering::Relaxed),
            batch.payload_bytes
        );
        g.bench_function(name, |b| {
            b.iter(|| black_box(rt.block_on(es.deliver(&routed[0]))))
        });
    }
    g.finish();
}

fn forward_plan(c: &mut Criterion<timing::BenchTime>) {
    let batch = plain_batch(LINES, FaultMix::PIPELINE, 1);
    let decoded = Decoder::default()
        .decode_event_json(&batch.event_json)
        .unwrap();
    let schema = SchemaConfig::default();
    let mut classifier = Classifier::new(&schema);
    let records: Vec<_> = decoded
        .items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match classifier.classify(i, item) {
            Classified::Valid(r) => Some(r),
            _ => None,
        })
        .collect();
    let router = Router::new().with_route(TypeFilter::all(), ());
    let routed = router.route(&records);
    let bytes: usize = records.iter().map(|r| r.data.len()).sum();
    let mut g = c.benchmark_group("forward_plan");
    g.throughput(Throughput::Bytes(bytes as u64));
    for (name, aggregate, aggregate_max_bytes) in [
        ("plain", false, DEFAULT_MAX_AGGREGATED_BYTES),
        ("kpl_51200", true, DEFAULT_MAX_AGGREGATED_BYTES),
        ("kpl_1mib", true, 1024 * 1024),
    ] {
        let forward = KinesisForward::new(
            InMemoryKinesis::new(),
            ForwardConfig {
                stream: "out".into(),
                aggregate,
                aggregate_max_bytes,
                ..ForwardConfig::default()
            },
        )
        .unwrap();
        let plan = forward.plan(&routed[0]);
        println!(
            "forward {name}: {} log lines ({bytes} bytes) as {} Kinesis records ({} aggregates) of {} bytes, {} PUT payload units, {} PutRecords calls",
            records.len(),
            plan.entries().len(),
            plan.aggregates(),
            plan.bytes(),
            plan.put_payload_units(),
            forward.put_calls(&plan)
        );
        g.bench_function(name, |b| b.iter(|| black_box(forward.plan(&routed[0]))));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = timing::criterion();
    targets = encode, search_deliver, forward_plan
}
criterion_main!(benches);
