//! Compressors and levels on the archive bodies of the standard batches: the size × speed
//! table of `docs/performance.md`.
//!
//! `cargo bench -p baikonur-benches --bench compress`
//!
//! The body of each standard batch is its log lines as NDJSON, one object (what the archive
//! writes for them, before compression). On one thread:
//!
//! * `libdeflate/N`: gzip at libdeflate level N, 1 to 12, the body whole (one member), as the
//!   default `libdeflate` feature compresses;
//! * `zlib-rs/6`: flate2 on zlib-rs at level 6, what builds without `libdeflate` use;
//! * `gzip6_chunked`, `zstd/N`: gzip level 6 and zstd levels 1 to 9 as the archive writes them
//!   by default, in chunks of 256 KiB (concatenated members or frames);
//! * `gzip6_chunked_2t`, `zstd/1_2t`: the same on two threads (identical bytes, which the
//!   bench checks), to show how compression alone scales on two cores.
//!
//! Each prints its output size before its figures. Throughput is in body bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::io::Write;
use std::num::NonZeroUsize;
use std::time::Duration;

use baikonur_benches::{FaultMix, standard_batches};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logging_core::compress::{Compression, Compressor};

fn zlib_rs(body: &[u8], level: u32) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::new(level),
    );
    gz.write_all(body).unwrap();
    gz.finish().unwrap()
}

fn benches(c: &mut Criterion) {
    for (name, batch) in standard_batches(FaultMix::PIPELINE) {
        let body: Vec<u8> = batch
            .lines
            .iter()
            .flat_map(|l| l.bytes().chain([b'\n']))
            .collect();
        let mut group = c.benchmark_group(format!("compress/{name}"));
        group.throughput(Throughput::BytesDecimal(body.len() as u64));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        let report = |label: &str, out: usize| {
            println!(
                "compress/{name}/{label}: output {out} bytes ({:.2} % of {})",
                out as f64 * 100.0 / body.len() as f64,
                body.len()
            );
        };
        let one = NonZeroUsize::MIN;
        for level in 1..=12 {
            let c = Compressor::new(Compression::gzip(level).unwrap())
                .with_threads(one)
                .with_chunk_size(None);
            let label = format!("libdeflate/{level}");
            report(&label, c.compress(&body).unwrap().len());
            group.bench_function(&label, |b| b.iter(|| c.compress(black_box(&body)).unwrap()));
        }
        report("zlib-rs/6", zlib_rs(&body, 6).len());
        group.bench_function("zlib-rs/6", |b| b.iter(|| zlib_rs(black_box(&body), 6)));
        let chunked = |compression| Compressor::new(compression).with_threads(one);
        let gzip6 = chunked(Compression::default());
        report("gzip6_chunked", gzip6.compress(&body).unwrap().len());
        group.bench_function("gzip6_chunked", |b| {
            b.iter(|| gzip6.compress(black_box(&body)).unwrap())
        });
        let two = NonZeroUsize::new(2).unwrap();
        for (label, compression) in [
            ("gzip6_chunked_2t", Compression::default()),
            ("zstd/1_2t", Compression::zstd(1).unwrap()),
        ] {
            let c = Compressor::new(compression).with_threads(two);
            let out = c.compress(&body).unwrap();
            assert_eq!(
                out,
                chunked(compression).compress(&body).unwrap(),
                "{label}"
            );
            report(label, out.len());
            group.bench_function(label, |b| b.iter(|| c.compress(black_box(&body)).unwrap()));
        }
        for level in 1..=9 {
            let c = chunked(Compression::zstd(level).unwrap());
            let label = format!("zstd/{level}");
            report(&label, c.compress(&body).unwrap().len());
            group.bench_function(&label, |b| b.iter(|| c.compress(black_box(&body)).unwrap()));
        }
        group.finish();
    }
}

criterion_group!(compress_benches, benches);
criterion_main!(compress_benches);
