//! Decoding throughput from the raw Lambda event JSON bytes, as the runtime hands them over.
//!
//! `cargo bench -p baikonur-benches --bench decode`
//!
//! Throughput is counted in payload bytes produced (plain and KPL) or in decompressed
//! CloudWatch Logs JSON bytes (CWL); a second group counts payloads (elements).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use baikonur_benches::{FaultMix, standard_batches};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kinesis_utils::Decoder;

fn decode(c: &mut Criterion) {
    let decoder = Decoder::default();
    let batches = standard_batches(FaultMix::NONE);
    let mut bytes = c.benchmark_group("decode_bytes");
    for (name, batch) in &batches {
        let n = if batch.decompressed_bytes > 0 {
            batch.decompressed_bytes
        } else {
            batch.payload_bytes
        };
        bytes.throughput(Throughput::BytesDecimal(n as u64));
        bytes.bench_function(*name, |b| {
            b.iter(|| {
                black_box(
                    decoder
                        .decode_event_json(black_box(&batch.event_json))
                        .unwrap(),
                )
            })
        });
    }
    bytes.finish();
    let mut elements = c.benchmark_group("decode_payloads");
    for (name, batch) in &batches {
        elements.throughput(Throughput::Elements(batch.payloads as u64));
        elements.bench_function(*name, |b| {
            b.iter(|| {
                black_box(
                    decoder
                        .decode_event_json(black_box(&batch.event_json))
                        .unwrap(),
                )
            })
        });
    }
    elements.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
