//! What the benches measure time with: the wall clock by default, or with `BENCH_TIME=cpu`
//! the bench thread's own time on a CPU (Linux, `/proc/thread-self/schedstat`). On a shared
//! machine, time spent waiting for a core inflates the wall clock but not the CPU time, so
//! comparisons made under load (old and new binaries alternated, dispatched and portable
//! paths) stay meaningful. Every bench here runs on one thread.

use std::time::{Duration, Instant};

use criterion::Criterion;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// Wall-clock or on-CPU time, chosen by `BENCH_TIME` when the benches start.
pub struct BenchTime {
    cpu: bool,
    wall: WallTime,
}

/// The Criterion configuration of every bench in this crate.
pub fn criterion() -> Criterion<BenchTime> {
    let cpu = match std::env::var("BENCH_TIME").as_deref() {
        Ok("cpu") => true,
        Ok("wall") | Err(_) => false,
        Ok(other) => panic!("BENCH_TIME={other}: expected `wall` or `cpu`"),
    };
    if cpu {
        assert!(
            thread_cpu_time().is_some(),
            "BENCH_TIME=cpu needs /proc/thread-self/schedstat (Linux)"
        );
        eprintln!("measuring on-CPU time of the bench thread (BENCH_TIME=cpu)");
    }
    Criterion::default().with_measurement(BenchTime {
        cpu,
        wall: WallTime,
    })
}

/// The calling thread's time on a CPU so far.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Where a measurement started.
pub enum Start {
    Wall(Instant),
    Cpu(Duration),
}

impl Measurement for BenchTime {
    type Intermediate = Start;
    type Value = Duration;

    fn start(&self) -> Start {
        if self.cpu {
            Start::Cpu(thread_cpu_time().unwrap_or_default())
        } else {
            Start::Wall(Instant::now())
        }
    }

    fn end(&self, start: Start) -> Duration {
        match start {
            Start::Wall(t) => t.elapsed(),
            Start::Cpu(t) => thread_cpu_time().unwrap_or_default().saturating_sub(t),
        }
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}
