//! eden create and delete on the in-memory cloud with 50 ms of simulated latency per call:
//! the time is dominated by the number of sequential round trips on the critical path. The
//! ownership reads, the lease and the publishing order are part of it. The state table exists,
//! as it does after the first create in an account (which also creates it: the report line
//! "first create" shows that once).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use eden_core::cloud::StateStore;
use eden_core::instrument::Instrumentation;
use eden_core::memory::{MemoryCloud, MemoryOptions};
use eden_core::{CreateOptions, DeleteOptions, Environment, Profile};

const LATENCY: Duration = Duration::from_millis(50);
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A seeded cloud with the state table, the same cloud behind the latency wrapper, and the
/// wrapper's log.
fn cloud(
    rt: &tokio::runtime::Runtime,
    profile: &Profile,
) -> (Arc<MemoryCloud>, Environment, Arc<Instrumentation>) {
    let memory = MemoryCloud::with_reference(profile, MemoryOptions::default());
    rt.block_on(memory.ensure_table("eden")).unwrap();
    let inst = Instrumentation::new(LATENCY);
    let eden = Environment::new(memory.cloud().instrumented(&inst));
    (memory, eden, inst)
}

/// One create and one delete outside criterion, to report calls and round trips.
fn report(rt: &tokio::runtime::Runtime, profile: &Profile) {
    let memory = MemoryCloud::with_reference(profile, MemoryOptions::default());
    let inst = Instrumentation::new(LATENCY);
    let first = Environment::new(memory.cloud().instrumented(&inst));
    rt.block_on(first.create(profile, "first", IMAGE, &CreateOptions::default()))
        .unwrap();
    eprintln!(
        "eden first create (creates the state table): {} calls, {} sequential round trips",
        inst.calls().len(),
        inst.sequential_round_trips()
    );
    let (_, eden, inst) = cloud(rt, profile);
    let started = std::time::Instant::now();
    rt.block_on(eden.create(profile, "bench", IMAGE, &CreateOptions::default()))
        .unwrap();
    eprintln!(
        "eden create: {} calls, {} sequential round trips, {:?}",
        inst.calls().len(),
        inst.sequential_round_trips(),
        started.elapsed()
    );
    inst.reset();
    let started = std::time::Instant::now();
    rt.block_on(eden.delete(profile, "bench", &DeleteOptions::default()))
        .unwrap();
    eprintln!(
        "eden delete: {} calls, {} sequential round trips, {:?}",
        inst.calls().len(),
        inst.sequential_round_trips(),
        started.elapsed()
    );
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let profile = Profile::example();
    report(&rt, &profile);
    let mut group = c.benchmark_group("eden_50ms_per_call");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(6));
    group.bench_function("create", |b| {
        b.iter_batched(
            || cloud(&rt, &profile),
            |(_memory, eden, _)| {
                rt.block_on(eden.create(&profile, "bench", IMAGE, &CreateOptions::default()))
                    .unwrap()
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("delete", |b| {
        b.iter_batched(
            || {
                let (memory, eden, _) = cloud(&rt, &profile);
                // Created without latency: only the delete is measured.
                rt.block_on(Environment::new(memory.cloud()).create(
                    &profile,
                    "bench",
                    IMAGE,
                    &CreateOptions::default(),
                ))
                .unwrap();
                (memory, eden)
            },
            |(_memory, eden)| {
                rt.block_on(eden.delete(&profile, "bench", &DeleteOptions::default()))
                    .unwrap()
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
