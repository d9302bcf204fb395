//! Decoding throughput from the raw Lambda event JSON bytes, as the runtime hands them over.
//!
//! `cargo bench -p baikonur-benches --bench decode`
//!
//! Throughput is counted in payload bytes produced (plain and KPL) or in decompressed
//! CloudWatch Logs JSON bytes (CWL); a second group counts payloads (elements). Each batch is
//! decoded on the path the CPU dispatches to, then with the portable path forced
//! (`<batch>/portable`), which every CPU without AVX-512 (arm64 among them) runs.
//! `BENCH_TIME=cpu` measures the bench thread's on-CPU time instead of the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/timing.rs"]
mod timing;

use std::hint::black_box;

use baikonur_benches::{FaultMix, standard_batches};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kinesis_utils::Decoder;

fn decode(c: &mut Criterion<timing::BenchTime>) {
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
        for portable in [false, true] {
            kinesis_utils::arch::force_portable(portable);
            let id = if portable {
                format!("{name}/portable")
            } else {
                name.to_string()
            };
            bytes.bench_function(id, |b| {
                b.iter(|| {
                    black_box(
                        decoder
                            .decode_event_json(black_box(&batch.event_json))
                            .unwrap(),
                    )
                })
            });
        }
        kinesis_utils::arch::force_portable(false);
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

criterion_group! {
    name = benches;
    config = timing::criterion();
    targets = decode
}
criterion_main!(benches);
