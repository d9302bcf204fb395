//! The logging-core pipeline on in-memory destinations, against a serde_json floor.
//!
//! `cargo bench -p baikonur-benches --bench pipeline`
//!
//! On the standard 10k-payload batches (plain, CloudWatch Logs, KPL) with the pipeline fault mix
//! (~1 % missing `log_type`, ~1 % missing `time`, ~0.5 % non-JSON), one group per batch:
//!
//! * `floor`: `serde_json` parsing of the decoded lines into a struct borrowing the three fields
//!   (no decoding, no routing, no output);
//! * `ndjson`: `Pipeline::process` from the raw event JSON: decode, classify, route, and an
//!   S3 archive on an in-memory store writing plain NDJSON bodies (dead letter in memory,
//!   plain too);
//! * `gzip6`: the same with gzip level 6 archive and dead-letter objects, on one thread (objects
//!   cut into chunks of 256 KiB, as by default); `gzip6_whole`: each object one gzip member,
//!   as before chunking;
//! * `gzip6_2t`, `zstd1`, `zstd1_2t`, `zstd3`, `zstd5`, `zstd5_2t`: gzip level 6 and zstd
//!   levels 1, 3 and 5, on one thread or two (`_2t`: the pipeline classifies on two threads
//!   and compresses on two; the same bytes as on one, which the bench checks). Each prints
//!   its output size before its figures; `ndjson_2t` is `ndjson` on two threads;
//! * `decode_only`, `classify_only`: the kinesis-utils decoding and the classification alone
//!   (a `Classifier`, as the pipeline uses), to show where the time goes;
//! * `ndjson_portable`, `decode_only_portable`, `classify_only_portable`: the same with
//!   kinesis-utils' portable path forced, the path of every CPU without AVX-512 (arm64 among
//!   them), each measured right after its dispatched twin.
//!
//! Throughput is in payload bytes (the decoded log lines). `BENCH_EVENT_FILE=path.json` adds a
//! group for any captured Lambda Kinesis event. `BENCH_TIME=cpu` measures the bench thread's
//! on-CPU time instead of the wall clock; it skips the compressed variants, whose compression
//! runs on other threads (logging-core's worker threads).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/timing.rs"]
mod timing;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use baikonur_benches::{FaultMix, standard_batches};
use bytes::Bytes;
use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use kinesis_utils::Decoder;
use logging_core::classify::{Classified, Classifier};
use logging_core::compress::{Compression, DEFAULT_CHUNK_SIZE};
use logging_core::dead_letter::{DeadLetter, DeadLetterConfig};
use logging_core::{ArchiveConfig, MemoryStore, Pipeline, S3Archive, SchemaConfig, TypeFilter};
use serde::Deserialize;

/// The floor's target: the three schema fields, borrowed.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    log_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    log_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
}

/// One compression setting of the archive and the dead letter.
#[derive(Clone, Copy)]
struct Setting {
    label: &'static str,
    compression: &'static str,
    threads: usize,
    /// Chunked as by default; `false`: each object whole (one member or frame).
    chunked: bool,
}

const SETTINGS: &[Setting] = &[
    Setting {
        label: "ndjson",
        compression: "none",
        threads: 1,
        chunked: true,
    },
    Setting {
        label: "ndjson_2t",
        compression: "none",
        threads: 2,
        chunked: true,
    },
    Setting {
        label: "gzip6",
        compression: "gzip(6)",
        threads: 1,
        chunked: true,
    },
    Setting {
        label: "gzip6_whole",
        compression: "gzip(6)",
        threads: 1,
        chunked: false,
    },
    Setting {
        label: "gzip6_2t",
        compression: "gzip(6)",
        threads: 2,
        chunked: true,
    },
    Setting {
        label: "zstd1",
        compression: "zstd(1)",
        threads: 1,
        chunked: true,
    },
    Setting {
        label: "zstd1_2t",
        compression: "zstd(1)",
        threads: 2,
        chunked: true,
    },
    Setting {
        label: "zstd3",
        compression: "zstd(3)",
        threads: 1,
        chunked: true,
    },
    Setting {
        label: "zstd5",
        compression: "zstd(5)",
        threads: 1,
        chunked: true,
    },
    Setting {
        label: "zstd5_2t",
        compression: "zstd(5)",
        threads: 2,
        chunked: true,
    },
];

/// The pipeline with `setting`, and the stores of its archive and dead letter.
fn pipeline(setting: Setting) -> (Pipeline, Arc<MemoryStore>, Arc<MemoryStore>) {
    let compression: Compression = setting.compression.parse().unwrap();
    let threads = NonZeroUsize::new(setting.threads).unwrap();
    let chunk = setting.chunked.then_some(DEFAULT_CHUNK_SIZE);
    let (archived, dead) = (Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new()));
    let archive = S3Archive::builder(
        archived.clone(),
        ArchiveConfig {
            prefix: "logs".into(),
            ..ArchiveConfig::default()
        }
        .with_compression(compression)
        .with_compression_threads(threads)
        .with_compression_chunk_size(chunk),
    );
    let dead_letter = DeadLetter::builder(
        dead.clone(),
        DeadLetterConfig::default()
            .with_compression(compression)
            .with_compression_threads(threads)
            .with_compression_chunk_size(chunk),
    );
    let pipeline = Pipeline::builder(SchemaConfig::default())
        .route(TypeFilter::all(), archive)
        .dead_letter(dead_letter)
        .threads(threads)
        .build();
    (pipeline, archived, dead)
}

fn stored_bytes(store: &MemoryStore) -> BTreeMap<String, Bytes> {
    store
        .snapshot()
        .into_iter()
        .map(|(k, o)| (k, o.body))
        .collect()
}

fn bench_batch(
    c: &mut Criterion<timing::BenchTime>,
    name: &str,
    event_json: &[u8],
    lines: &[Vec<u8>],
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let payload_bytes: usize = lines.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group(format!("pipeline/{name}"));
    group.throughput(Throughput::BytesDecimal(payload_bytes as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("floor", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for line in lines {
                if let Ok(f) = serde_json::from_slice::<Fields<'_>>(black_box(line)) {
                    n += usize::from(f.log_type.is_some())
                        + usize::from(f.log_id.is_some())
                        + usize::from(f.time.is_some());
                }
            }
            n
        })
    });
    // References that split the pipeline's time: kinesis-utils decoding alone, and
    // classification alone (LogRecord::parse, type check, timestamp) of the decoded batch.
    let decoder = Decoder::default();
    dispatched_and_portable(&mut group, "decode_only", |b| {
        b.iter(|| decoder.decode_event_json(black_box(event_json)).unwrap())
    });
    let decoded = decoder.decode_event_json(event_json).unwrap();
    let schema = SchemaConfig::default();
    dispatched_and_portable(&mut group, "classify_only", |b| {
        b.iter(|| {
            let mut n = 0;
            let mut classifier = Classifier::new(&schema);
            for (i, item) in decoded.items.iter().enumerate() {
                if let Classified::Valid(r) = classifier.classify(i, black_box(item)) {
                    n += r.data.len();
                }
            }
            n
        })
    });
    let mut outputs: Vec<(Setting, BTreeMap<String, Bytes>)> = Vec::new();
    for &setting in SETTINGS {
        let (p, archived, dead) = pipeline(setting);
        // Check once that the pipeline really archives everything it should.
        let out = rt.block_on(p.process(event_json)).unwrap();
        assert_eq!(out.report.outcome_total(), out.report.items);
        assert!(out.response.batch_item_failures.is_empty());
        let objects = stored_bytes(&archived);
        let archive_bytes: usize = objects.values().map(Bytes::len).sum();
        let dead_bytes: usize = stored_bytes(&dead).values().map(Bytes::len).sum();
        println!(
            "pipeline/{name}/{}: output {archive_bytes} bytes archived ({:.2} % of the payload) \
             + {dead_bytes} dead-lettered",
            setting.label,
            archive_bytes as f64 * 100.0 / payload_bytes as f64,
        );
        // The threads change nothing in the bytes.
        for (other, theirs) in &outputs {
            if (other.compression, other.chunked) == (setting.compression, setting.chunked) {
                assert_eq!(
                    theirs, &objects,
                    "{} against {}",
                    setting.label, other.label
                );
            }
        }
        outputs.push((setting, objects));
        let run = |b: &mut criterion::Bencher<'_, timing::BenchTime>| {
            b.iter(|| rt.block_on(p.process(black_box(event_json))).unwrap())
        };
        if setting.label == "ndjson" {
            dispatched_and_portable(&mut group, setting.label, run);
        } else if std::env::var("BENCH_TIME").as_deref() == Ok("cpu") {
            // Compression runs on logging-core's worker threads, and `_2t`
            // classifies on two, not only on the bench thread whose CPU time BENCH_TIME=cpu
            // measures.
            println!(
                "pipeline/{name}/{}: skipped with BENCH_TIME=cpu (work runs on other threads)",
                setting.label
            );
        } else {
            group.bench_function(setting.label, run);
        }
    }
    group.finish();
}

/// Benches `f` on the path the CPU dispatches to (`label`), then right after with
/// kinesis-utils' portable path forced (`label_portable`).
fn dispatched_and_portable<M: Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    label: &str,
    mut f: impl FnMut(&mut criterion::Bencher<'_, M>),
) {
    group.bench_function(label, &mut f);
    kinesis_utils::arch::force_portable(true);
    group.bench_function(format!("{label}_portable"), &mut f);
    kinesis_utils::arch::force_portable(false);
}

fn benches(c: &mut Criterion<timing::BenchTime>) {
    for (name, batch) in standard_batches(FaultMix::PIPELINE) {
        let lines: Vec<Vec<u8>> = batch.lines.iter().map(|l| l.as_bytes().to_vec()).collect();
        bench_batch(c, name, &batch.event_json, &lines);
    }
    if let Ok(path) = std::env::var("BENCH_EVENT_FILE") {
        let event = std::fs::read(&path).unwrap_or_else(|e| panic!("BENCH_EVENT_FILE {path}: {e}"));
        let decoded = Decoder::default()
            .decode_event_json(&event)
            .unwrap_or_else(|e| panic!("BENCH_EVENT_FILE {path}: {e}"));
        let lines: Vec<Vec<u8>> = decoded.payloads().map(|p| p.data.to_vec()).collect();
        bench_batch(c, "event_file", &event, &lines);
    }
}

criterion_group! {
    name = pipeline_benches;
    config = timing::criterion();
    targets = benches
}
criterion_main!(pipeline_benches);
