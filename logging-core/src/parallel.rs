//! The pipeline's own work on every core: a batch's items cut into contiguous blocks of about
//! equal bytes, which the threads claim (the calling one from the front, the workers from the
//! back), the results put back in input order; and the worker threads that this and the
//! compression ([`crate::compress`]) share.
//!
//! The result is the sequential one whatever the number of threads: each item is processed
//! by a pure function of the item and its position (state a thread carries, such as the
//! classifier's memory of the last keys, is a cache that never changes an answer), and the
//! blocks' results are taken in order. The tests hold [`for_each_in_parts`] and the whole
//! pipeline to that, byte for byte, for any number of threads.
//!
//! # The worker threads
//!
//! The workers are one [rayon](https://docs.rs/rayon) pool for the process, with one thread
//! fewer than the cores the process may use ([`std::thread::available_parallelism`]), one at
//! least: the calling thread works on its batch too, so a batch on every core keeps every
//! worker busy and wakes none for nothing. They are started on first use (and never when a
//! batch has one thread, the default on a Lambda function of less than one and a half
//! vCPUs' worth of memory, see [`default_threads`]), and asleep (blocked, using no CPU)
//! between batches. Within a batch a worker that finished a job waits awake, yielding its
//! core, for the batch's next phase, at most a millisecond ([`awake`]): waking a sleeping
//! worker took 0.1 to 0.4 ms on a Lambda-like virtual machine, at every phase. The calling
//! thread always works a share itself while the workers do the rest ([`with_helpers`]): a
//! running thread that wakes a sleeping one gets it placed on an idle core, where a thread
//! started for the batch, or work handed over to another thread, was often queued behind a
//! busy core for milliseconds (measured: see [`crate::compress`]).
//!
//! The pool is the crate's own, not rayon's global pool, so it neither competes with a
//! rayon pool of the user's for its threads nor is sized by someone else's settings.

use std::num::NonZeroUsize;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use kinesis_utils::Decoded;

use crate::classify::{Classified, Classifier};
use crate::routing::{Mark, Router};
use crate::schema::SchemaConfig;

/// Below this many bytes (by the caller's weight) a batch is processed on the calling
/// thread: starting a thread would cost more than it saves.
pub(crate) const PARALLEL_FROM: usize = 128 * 1024;

/// The cores this process may use, asked once.
pub(crate) fn available_threads() -> NonZeroUsize {
    static CORES: OnceLock<NonZeroUsize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
}

/// Memory that buys one vCPU on AWS Lambda: "at 1,769 MB, a function has the equivalent of
/// one vCPU", and CPU time grows in proportion to memory, up to six vCPUs at 10,240 MB.
const LAMBDA_MB_PER_VCPU: u64 = 1769;

/// The threads a batch uses unless told otherwise: every core the process may use, and on
/// AWS Lambda (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE` set) no more than the whole vCPUs the
/// function's memory buys, rounded to the nearest, one at least. A function below 1,769 MB
/// may see two cores but gets a fraction of one vCPU's time: a second thread there only
/// shares that time, at the cost of handing work over.
pub(crate) fn default_threads() -> NonZeroUsize {
    static DEFAULT: OnceLock<NonZeroUsize> = OnceLock::new();
    *DEFAULT.get_or_init(|| {
        let memory = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok();
        let threads = threads_for(available_threads(), memory.as_deref());
        if memory.is_some() {
            tracing::debug!(
                memory_mb = memory.as_deref(),
                threads = threads.get(),
                "threads for the Lambda function's vCPU share"
            );
        }
        threads
    })
}

/// [`default_threads`] for `cores` and the value of `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (MB;
/// `None` off Lambda; a value that is not a number is ignored).
fn threads_for(cores: NonZeroUsize, lambda_memory_mb: Option<&str>) -> NonZeroUsize {
    let Some(mb) = lambda_memory_mb.and_then(|m| m.trim().parse::<u64>().ok()) else {
        return cores;
    };
    let vcpus = mb.saturating_add(LAMBDA_MB_PER_VCPU / 2) / LAMBDA_MB_PER_VCPU;
    usize::try_from(vcpus)
        .ok()
        .and_then(NonZeroUsize::new)
        .unwrap_or(NonZeroUsize::MIN)
        .min(cores)
}

/// The crate's worker threads (see the [module docs](self)), `None` when they cannot be
/// started: then every job runs on its calling thread.
///
/// One fewer than the cores: rayon wakes a sleeping worker for each job handed to the pool
/// unless another worker is idle, and a worker waiting awake ([`awake`]) is running a job,
/// so it never counts as idle. With as many workers as cores, every phase of a two-thread
/// batch on two cores also woke the second worker, which found nothing to do and took a core
/// from the calling thread while it looked: 190 context switches a batch instead of one, and
/// the first pass 0.3 ms slower.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers_for(available_threads()).get())
            .thread_name(|i| format!("logging-core-{i}"))
            // A job that panics (none should) is reported by its caller, who does its
            // share again; the worker lives on.
            .panic_handler(|_| tracing::error!("a logging-core worker job panicked"))
            .build()
            .map_err(|e| {
                tracing::warn!(error = %e, "no worker threads: batches are processed on the calling thread");
            })
            .ok()
    })
    .as_ref()
}

/// The worker threads for `cores`: every core but the calling thread's, one at least.
fn workers_for(cores: NonZeroUsize) -> NonZeroUsize {
    NonZeroUsize::new(cores.get() - 1).unwrap_or(NonZeroUsize::MIN)
}

/// Runs `caller` on the calling thread while `job(1)` to `job(helpers)` run on the workers,
/// and returns once all are done, with each job's result in order: `None` for a job that
/// panicked or found no worker, which the caller then does itself.
pub(crate) fn with_helpers<R: Send>(
    helpers: usize,
    job: impl Fn(usize) -> R + Sync,
    caller: impl FnOnce(),
) -> Vec<Option<R>> {
    let mut results: Vec<Option<R>> = (0..helpers).map(|_| None).collect();
    // No helpers, no pool: one thread's work never starts the workers.
    if helpers == 0 {
        caller();
        return results;
    }
    match pool() {
        Some(pool) => pool.in_place_scope(|scope| {
            let job = &job;
            awake::posted();
            for (i, slot) in results.iter_mut().enumerate() {
                scope.spawn(move |_| {
                    *slot = std::panic::catch_unwind(AssertUnwindSafe(|| job(i + 1))).ok();
                    // A job of its own, outside the scope: the caller goes on at once.
                    pool.spawn(awake::linger);
                });
            }
            caller();
        }),
        _ => caller(),
    }
    results
}

/// Workers kept awake between the parallel phases of a batch.
///
/// A worker with nothing to do soon blocks in the kernel, and waking it again took 0.1 to
/// 0.4 ms on a two-vCPU Firecracker virtual machine, the kind Lambda runs functions in (the
/// idle vCPU is halted and has to be scheduled again): at each of a batch's three to five
/// parallel phases the helpers started that late, and the calling thread did their share
/// meanwhile. While a batch is in flight ([`awake::KeepAwake`]), a worker that finishes a job
/// instead stays on its core, yielding it to any other thread that wants it, until work is
/// handed to the pool, the batch ends, or [`awake::LINGER`] has passed. Never more workers than
/// the batches in flight use, and never more than the cores less one: the calling thread
/// keeps a core of its own. (Spinning on the `pause` instruction instead was slower: a
/// hypervisor may take a vCPU that spins so for one waiting on a lock, and deschedule it.)
pub(crate) mod awake {
    use std::num::NonZeroUsize;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// The longest a worker waits awake for a batch's next phase: longer than the pauses
    /// between phases (routing, the reports: under a millisecond), shorter than a delivery's
    /// round trip, which it sleeps through.
    pub(crate) const LINGER: Duration = Duration::from_millis(1);

    /// The pool's: every batch's [`KeepAwake`] and every worker's [`linger`].
    static POOL: Awake = Awake::new();

    /// Who may wait awake, and when to stop.
    pub(crate) struct Awake {
        /// Moves whenever work is handed to the pool: a waiting worker then goes back to
        /// the pool to take it.
        posted: AtomicUsize,
        /// Workers the batches in flight may keep awake (each its threads less one).
        allowed: AtomicUsize,
        /// Workers waiting awake now.
        waiting: AtomicUsize,
    }

    impl Awake {
        pub(crate) const fn new() -> Self {
            Self {
                posted: AtomicUsize::new(0),
                allowed: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
            }
        }

        pub(crate) fn posted(&self) {
            self.posted.fetch_add(1, Ordering::SeqCst);
        }

        /// How many may wait now, with `cores`.
        fn wanted(&self, cores: usize) -> usize {
            self.allowed
                .load(Ordering::SeqCst)
                .min(cores.saturating_sub(1))
        }

        /// Waits awake until work is posted, fewer are wanted, or `linger` has passed;
        /// returns at once when no more are wanted.
        pub(crate) fn linger(&self, cores: usize, linger: Duration) {
            let seen = self.posted.load(Ordering::SeqCst);
            if self
                .waiting
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < self.wanted(cores)).then_some(n + 1)
                })
                .is_err()
            {
                return;
            }
            let until = Instant::now() + linger;
            while self.posted.load(Ordering::SeqCst) == seen
                && self.waiting.load(Ordering::SeqCst) <= self.wanted(cores)
                && Instant::now() < until
            {
                std::thread::yield_now();
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }

        #[cfg(test)]
        pub(crate) fn waiting(&self) -> usize {
            self.waiting.load(Ordering::SeqCst)
        }

        pub(crate) fn keep(&'static self, threads: NonZeroUsize) -> KeepAwake {
            let n = threads.get() - 1;
            self.allowed.fetch_add(n, Ordering::SeqCst);
            KeepAwake(self, n)
        }
    }

    /// While it lives, up to `threads - 1` of the pool's workers stay awake between jobs.
    pub(crate) struct KeepAwake(&'static Awake, usize);

    impl KeepAwake {
        pub(crate) fn new(threads: NonZeroUsize) -> Self {
            POOL.keep(threads)
        }
    }

    impl Drop for KeepAwake {
        fn drop(&mut self) {
            self.0.allowed.fetch_sub(self.1, Ordering::SeqCst);
        }
    }

    /// Work is about to be handed to the pool.
    pub(crate) fn posted() {
        POOL.posted();
    }

    /// Called on a worker that finished a job: waits awake for the next (see the
    /// [module docs](self)), or returns at once when no batch wants it.
    pub(crate) fn linger() {
        POOL.linger(super::available_threads().get(), LINGER);
    }
}

/// `job` run on a worker, awaited without blocking the calling thread, which meanwhile
/// polls its other futures: `None` when there is no worker or the job panicked, which the
/// caller then does itself.
pub(crate) async fn on_a_worker<R: Send + 'static>(
    job: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    let pool = pool()?;
    let (done, result) = tokio::sync::oneshot::channel();
    awake::posted();
    pool.spawn(move || {
        // The receiver may be gone (the caller's future was dropped): nothing to hand over.
        let _ = done.send(std::panic::catch_unwind(AssertUnwindSafe(job)).ok());
        awake::linger();
    });
    result.await.ok().flatten()
}

/// Where `weights` are cut into at most `parts` contiguous parts of about equal total
/// weight: the ends of the parts, the last one `weights.len()`, none empty (no parts for no
/// items). Only the weights and `parts` decide.
pub(crate) fn part_ends(weights: &[usize], parts: usize) -> Vec<usize> {
    let n = weights.len();
    let parts = parts.clamp(1, n.max(1));
    let total: usize = weights.iter().sum();
    let mut ends = Vec::with_capacity(parts);
    let mut sum = 0usize;
    let mut next = 1usize;
    for (i, w) in weights.iter().enumerate() {
        sum += w;
        // Part `next` ends once its share of the total is reached, or when the items left
        // are only enough for one each of the later parts.
        let left = n - (i + 1);
        if next < parts
            && left >= parts - next
            && (sum.saturating_mul(parts) >= total.saturating_mul(next) || left == parts - next)
        {
            ends.push(i + 1);
            next += 1;
        }
    }
    if n > 0 {
        ends.push(n);
    }
    ends
}

/// Blocks per thread a batch is cut into by [`for_each_in_parts`]: enough that the threads
/// finish within a small block of each other, few enough that claiming a block costs nothing.
const BLOCKS_PER_THREAD: usize = 8;

/// `f` applied to every item with its index, each result handed to `sink` in input order:
/// what `for (i, t) in items.iter().enumerate() { sink(f(&mut state, i, t)) }` gives, on up
/// to `threads` threads (the calling one included).
///
/// The items are cut into contiguous blocks of about equal `weight`. The calling thread
/// claims blocks from the front and hands its results to `sink` as it goes; the workers
/// claim blocks from the back and keep theirs until the calling thread, where the two meet,
/// takes them in order. A thread that is slower, or was woken late, simply claims fewer
/// blocks. Each thread has its own state from `init` (a cache: it never changes an answer,
/// so a worker may carry it from one block to another). Batches lighter than
/// [`PARALLEL_FROM`] run on the calling thread, and so does a block that no worker finished.
pub(crate) fn for_each_in_parts<'a, T, S, R>(
    items: &'a [T],
    threads: NonZeroUsize,
    weight: impl Fn(&T) -> usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &'a T) -> R + Sync,
    mut sink: impl FnMut(R),
) where
    T: Sync,
    R: Send,
{
    let sequential = |sink: &mut dyn FnMut(R)| {
        let mut state = init();
        for (i, item) in items.iter().enumerate() {
            sink(f(&mut state, i, item));
        }
    };
    if threads.get() == 1 || items.len() < 2 {
        return sequential(&mut sink);
    }
    let weights: Vec<usize> = items.iter().map(&weight).collect();
    if weights.iter().sum::<usize>() < PARALLEL_FROM {
        return sequential(&mut sink);
    }
    let mut blocks: Vec<Range<usize>> = Vec::new();
    let mut start = 0;
    for end in part_ends(&weights, threads.get().saturating_mul(BLOCKS_PER_THREAD)) {
        blocks.push(start..end);
        start = end;
    }
    // The blocks nobody has claimed yet: the calling thread takes the first, workers the last.
    let unclaimed = std::sync::Mutex::new(0..blocks.len());
    let claim = |front: bool| {
        let mut left = unclaimed.lock().unwrap_or_else(|p| p.into_inner());
        if front { left.next() } else { left.next_back() }
    };
    // A worker's block's results, kept for the calling thread.
    let done: Vec<std::sync::Mutex<Option<Vec<R>>>> =
        blocks.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let run = |state: &mut S, b: usize, out: &mut dyn FnMut(R)| {
        for i in blocks.get(b).cloned().unwrap_or_default() {
            if let Some(item) = items.get(i) {
                out(f(state, i, item));
            }
        }
    };
    // The blocks before this one have been handed to `sink`.
    let mut sunk = 0usize;
    let mut state = init();
    with_helpers(
        threads.get() - 1,
        |_| {
            let mut state = init();
            while let Some(b) = claim(false) {
                let mut out = Vec::with_capacity(blocks.get(b).map_or(0, |r| r.len()));
                run(&mut state, b, &mut |r| out.push(r));
                if let Some(slot) = done.get(b) {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(out);
                }
            }
        },
        || {
            while let Some(b) = claim(true) {
                run(&mut state, b, &mut sink);
                sunk = b + 1;
            }
        },
    );
    // Every thread is done: the workers' blocks in order, doing here a block no worker
    // finished (its job panicked, which `f` must not do, or there were no workers).
    for (b, out) in done.into_iter().enumerate().skip(sunk) {
        match out.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(out) => out.into_iter().for_each(&mut sink),
            None => run(&mut state, b, &mut sink),
        }
    }
}

/// `f` applied to every item with its index, in order, as [`for_each_in_parts`] computes
/// them.
#[cfg(test)]
pub(crate) fn map_in_parts<'a, T, S, R>(
    items: &'a [T],
    threads: NonZeroUsize,
    weight: impl Fn(&T) -> usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &'a T) -> R + Sync,
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let mut out = Vec::with_capacity(items.len());
    for_each_in_parts(items, threads, weight, init, f, |r| out.push(r));
    out
}

/// kinesis-utils' second decoding pass (decompression, deaggregation, CloudWatch Logs
/// parsing) on up to `threads` threads: the records cut into contiguous parts of about equal
/// weight, as [`for_each_in_parts`] cuts items.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeOnWorkers(pub(crate) NonZeroUsize);

impl kinesis_utils::decode::DecodeRunner for DecodeOnWorkers {
    fn run(
        &self,
        weights: &[usize],
        decode: &(dyn Fn(Range<usize>) -> Vec<Decoded> + Sync),
    ) -> Vec<(Range<usize>, Vec<Decoded>)> {
        let n = weights.len();
        if self.0.get() == 1 || n < 2 || weights.iter().sum::<usize>() < PARALLEL_FROM {
            return vec![(0..n, decode(0..n))];
        }
        let mut ranges = Vec::new();
        let mut start = 0;
        for end in part_ends(weights, self.0.get()) {
            ranges.push(start..end);
            start = end;
        }
        let Some((first, rest)) = ranges.split_first() else {
            return Vec::new();
        };
        let mut mine = Vec::new();
        let done = with_helpers(
            rest.len(),
            |i| {
                rest.get(i - 1)
                    .map(|r| decode(r.clone()))
                    .unwrap_or_default()
            },
            || mine = decode(first.clone()),
        );
        let mut out = Vec::with_capacity(ranges.len());
        out.push((first.clone(), mine));
        // A part no worker finished is left out: kinesis-utils decodes it on this thread.
        out.extend(
            rest.iter()
                .zip(done)
                .filter_map(|(r, d)| Some((r.clone(), d?))),
        );
        out
    }

    fn threads(&self) -> usize {
        self.0.get()
    }

    fn join(&self, first: &mut (dyn FnMut() + Send), second: &mut (dyn FnMut() + Send)) {
        if self.0.get() == 1 {
            first();
            second();
            return;
        }
        // The second half on a worker, the first here; a half no worker ran (it panicked,
        // or there are no workers) is left for kinesis-utils to do on this thread.
        let second = std::sync::Mutex::new(second);
        with_helpers(
            1,
            |_| {
                if let Ok(mut second) = second.lock() {
                    second();
                }
            },
            first,
        );
    }
}

/// Every item of a decoded batch classified under `schema`, with its payload's bytes (0 for
/// other items) and routing's [`Mark`] of each valid record's type, handed to `take` in
/// order: what [`Classifier::classify`] and [`Router::mark`] give item by item, on up to
/// `threads` threads.
pub(crate) fn classify<'a, D: Sync>(
    items: &'a [Decoded],
    schema: &SchemaConfig,
    router: &Router<D>,
    threads: NonZeroUsize,
    mut take: impl FnMut(usize, Classified<'a>, Option<Mark>),
) {
    for_each_in_parts(
        items,
        threads,
        // Classifying costs about the payload's bytes; the rest a little per item.
        |item| match item {
            Decoded::Payload(p) => p.data.len() + 32,
            _ => 32,
        },
        || Classifier::new(schema),
        |classifier, i, item| {
            let bytes = match item {
                Decoded::Payload(p) => p.data.len(),
                _ => 0,
            };
            let classified = classifier.classify(i, item);
            let mark = match &classified {
                Classified::Valid(r) => Some(router.mark(&r.log_type)),
                _ => None,
            };
            (bytes, classified, mark)
        },
        |(bytes, classified, mark)| take(bytes, classified, mark),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn threads(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
    }

    #[test]
    fn lambda_functions_get_the_vcpus_their_memory_buys() {
        let cores = threads(8);
        let on = |mb: &str| threads_for(cores, Some(mb)).get();
        assert_eq!(threads_for(cores, None), cores);
        // The smallest functions, and those up to one and a half vCPUs' worth.
        assert_eq!(on("128"), 1);
        assert_eq!(on("1769"), 1);
        assert_eq!(on("2653"), 1);
        // From one and a half on, a second thread; 3,008 MB buys 1.7 vCPUs.
        assert_eq!(on("2654"), 2);
        assert_eq!(on("3008"), 2);
        assert_eq!(on("10240"), 6);
        // Never more than the cores, never none, and a value that is not a number is ignored.
        assert_eq!(threads_for(threads(2), Some("10240")).get(), 2);
        assert_eq!(on("0"), 1);
        assert_eq!(on(" 3538 "), 2);
        assert_eq!(threads_for(cores, Some("lots")), cores);
        assert_eq!(threads_for(cores, Some("-1")), cores);
    }

    #[test]
    fn the_workers_are_the_cores_but_the_calling_threads() {
        assert_eq!(workers_for(threads(1)).get(), 1);
        assert_eq!(workers_for(threads(2)).get(), 1);
        assert_eq!(workers_for(threads(6)).get(), 5);
        // With the calling thread, a batch on every core has a worker for each helper.
        let pool = pool().map(rayon::ThreadPool::current_num_threads);
        assert_eq!(pool, Some(workers_for(available_threads()).get()));
    }

    #[test]
    fn parts_are_about_equal_by_weight() {
        let w = vec![10usize; 1000];
        assert_eq!(part_ends(&w, 2), [500, 1000]);
        assert_eq!(part_ends(&w, 3), [334, 667, 1000]);
        // A heavy head is a part of its own.
        let mut w = vec![1usize; 100];
        w[0] = 1000;
        assert_eq!(part_ends(&w, 2), [1, 100]);
        assert_eq!(part_ends(&[], 4), Vec::<usize>::new());
        assert_eq!(part_ends(&[5], 4), [1]);
        assert_eq!(part_ends(&[0, 0, 0], 2), [1, 3]);
    }

    #[test]
    fn heavy_batches_use_the_threads() {
        let items: Vec<usize> = (0..4096).collect();
        // Work long enough for a worker to wake and claim blocks: the calling thread does
        // them all when they are done before a worker would start.
        let seen = map_in_parts(
            &items[..512],
            threads(4),
            |_| 1024,
            || (),
            |_, _, _| {
                std::thread::sleep(std::time::Duration::from_micros(100));
                std::thread::current().id()
            },
        );
        let distinct: std::collections::HashSet<_> = seen.iter().collect();
        // The calling thread and at least one worker, never more threads than asked.
        assert!(
            (2..=4).contains(&distinct.len()),
            "{} threads",
            distinct.len()
        );
        assert!(seen.contains(&std::thread::current().id()));
        // Light batches stay on the calling thread.
        let seen = map_in_parts(
            &items,
            threads(4),
            |_| 1,
            || (),
            |_, _, _| std::thread::current().id(),
        );
        assert!(seen.iter().all(|&t| t == std::thread::current().id()));
    }

    /// A job handed to a worker runs there and gives its result; one that panics gives
    /// `None`, for the caller to do itself.
    #[tokio::test]
    async fn jobs_handed_to_a_worker() {
        let here = std::thread::current().id();
        let ran = on_a_worker(|| (std::thread::current().id(), 6 * 7)).await;
        assert!(ran.is_some_and(|(there, answer)| there != here && answer == 42));
        let failed: Option<()> = on_a_worker(|| panic!("a job that fails")).await;
        assert!(failed.is_none());
    }

    /// A worker waits awake only while a batch wants it, never more of them than the batches
    /// use or than the cores less one, and goes back to the pool as soon as work is posted or
    /// the batch ends.
    #[test]
    fn workers_wait_awake_only_while_a_batch_wants_them() {
        use super::awake::Awake;
        use std::time::{Duration, Instant};
        static AWAKE: Awake = Awake::new();
        // Long enough that only being told to stop ends a wait within the test.
        let long = Duration::from_secs(60);
        let prompt = |started: Instant| assert!(started.elapsed() < Duration::from_secs(30));
        let until_waiting = |n: usize| {
            while AWAKE.waiting() < n {
                std::thread::yield_now();
            }
        };

        // No batch in flight: back at once.
        let started = Instant::now();
        AWAKE.linger(4, long);
        prompt(started);
        assert_eq!(AWAKE.waiting(), 0);

        // A batch on 3 threads, 4 cores: two workers wait, a third goes back at once; work
        // posted sends both back.
        let keep = AWAKE.keep(NonZeroUsize::new(3).unwrap());
        std::thread::scope(|s| {
            let waiters = [
                s.spawn(|| AWAKE.linger(4, long)),
                s.spawn(|| AWAKE.linger(4, long)),
            ];
            until_waiting(2);
            let started = Instant::now();
            AWAKE.linger(4, long);
            prompt(started);
            assert_eq!(AWAKE.waiting(), 2);
            let started = Instant::now();
            AWAKE.posted();
            for w in waiters {
                w.join().unwrap();
            }
            prompt(started);
        });
        assert_eq!(AWAKE.waiting(), 0);

        // Two cores: one waits, and the calling thread keeps the other; the batch's end
        // sends the waiting one back.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| AWAKE.linger(2, long));
            until_waiting(1);
            let started = Instant::now();
            AWAKE.linger(2, long);
            prompt(started);
            let started = Instant::now();
            drop(keep);
            waiter.join().unwrap();
            prompt(started);
        });
        assert_eq!(AWAKE.waiting(), 0);

        // One thread per batch: nobody waits.
        let _keep = AWAKE.keep(NonZeroUsize::MIN);
        let started = Instant::now();
        AWAKE.linger(4, long);
        prompt(started);
    }

    /// A worker whose job panics (which `f` must not do) loses nothing: the calling thread
    /// does its blocks, and the results are the sequential ones.
    #[test]
    fn blocks_a_worker_dropped_are_done_by_the_caller() {
        let items: Vec<usize> = (0..512).collect();
        let caller = std::thread::current().id();
        use std::sync::atomic::{AtomicUsize, Ordering};
        let failed = AtomicUsize::new(0);
        let seen = map_in_parts(
            &items,
            threads(2),
            |_| 1024,
            || (),
            |_, i, x| {
                std::thread::sleep(std::time::Duration::from_micros(100));
                let on_worker = std::thread::current().id() != caller;
                if on_worker && i % 64 == 40 {
                    failed.fetch_add(1, Ordering::Relaxed);
                    panic!("a worker fails item {i}");
                }
                (i, *x * 2, on_worker)
            },
        );
        let want: Vec<(usize, usize)> = items.iter().map(|&x| (x, x * 2)).collect();
        let got: Vec<(usize, usize)> = seen.iter().map(|&(i, x, _)| (i, x)).collect();
        assert_eq!(got, want);
        // A worker did start, and failed: the caller did its block again.
        assert!(failed.load(Ordering::Relaxed) > 0);
    }

    /// CloudWatch Logs envelopes, KPL aggregates and plain records, heavy enough to be cut:
    /// decoded on any number of threads, the batch is the one decoded in place.
    #[test]
    fn decoding_on_the_workers_gives_the_in_place_batch() {
        use base64::Engine as _;
        use std::io::Write as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let line = |i: usize| {
            format!(
                r#"{{"log_type":"app","log_id":"{i}","m":"{}"}}"#,
                "x".repeat(i % 300)
            )
        };
        let mut datas = Vec::new();
        // Over a megabyte of event, so that its first pass is cut in two as well.
        for r in 0..600 {
            let data = match r % 3 {
                0 => {
                    let events: Vec<_> = (0..40)
                        .map(|e| serde_json::json!({"id": format!("{r}-{e}"), "timestamp": 1, "message": line(r * 40 + e)}))
                        .collect();
                    let cwl = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "1",
                        "logGroup": "g", "logStream": "s", "logEvents": events});
                    let mut gz =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    let _ = gz.write_all(&serde_json::to_vec(&cwl).unwrap_or_default());
                    gz.finish().unwrap_or_default()
                }
                1 => kinesis_utils::kpl::aggregate_all(
                    (0..20).map(|u| kinesis_utils::kpl::UserRecord::new(line(r * 20 + u), "k")),
                    1 << 20,
                )
                .ok()
                .and_then(|a| a.into_iter().next())
                .map(|a| a.data.to_vec())
                .unwrap_or_default(),
                _ => line(r).into_bytes(),
            };
            datas.push(serde_json::json!({"kinesis": {"data": b64.encode(data),
                "partitionKey": "k", "sequenceNumber": (100 + r).to_string()}}));
        }
        let event =
            serde_json::to_vec(&serde_json::json!({ "Records": datas })).unwrap_or_default();
        assert!(event.len() > 1 << 20, "{}", event.len());
        let decoder = kinesis_utils::Decoder::default();
        let in_place = decoder.decode_event_json(&event).ok();
        assert!(
            in_place
                .as_ref()
                .is_some_and(|b| b.items.len() > 2000 && b.failures().count() == 0)
        );
        for n in 1..7 {
            let on_workers = decoder
                .decode_event_json_on(&event, &DecodeOnWorkers(threads(n)))
                .ok();
            assert!(on_workers == in_place, "{n} threads");
        }
    }

    /// A payload of about 400 bytes: valid, or one of the failures, of one of a few types.
    fn payload(kind: u8, n: usize) -> String {
        let pad = "word ".repeat(70 + n % 13);
        let ty = ["app", "access", "audit"][n % 3];
        match kind % 8 {
            0 => format!("not json {n} {pad}"),
            1 => format!(r#"{{"log_id":"{n}","time":"2020-03-14T12:00:00Z","m":"{pad}"}}"#),
            2 => format!(r#"{{"log_type":"{ty}","log_id":"{n}","m":"{pad}"}}"#),
            3 => format!(r#"{{"log_type":"{ty}","log_id":"{n}","time":"soon","m":"{pad}"}}"#),
            4 => format!("{{\n\"log_type\": \"{ty}\",\n\"time\": 1584154800, \"m\":\"{pad}\"}}"),
            _ => format!(
                r#"{{"log_type":"{ty}","log_id":"{n}","time":"2020-03-14T{:02}:00:00+09:00","m":"{pad}"}}"#,
                n % 24
            ),
        }
    }

    fn event(payloads: &[String]) -> Vec<u8> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let records: Vec<_> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                serde_json::json!({"kinesis": {"data": b64.encode(p), "partitionKey": "k",
                    "sequenceNumber": (100 + i).to_string(), "approximateArrivalTimestamp": 1.0},
                    "eventID": format!("shardId-0:{}", 100 + i)})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap_or_default()
    }

    /// The pipeline's report, answer, archive and dead-letter objects on `n` threads.
    fn run(
        event: &[u8],
        n: usize,
        compression: crate::compress::Compression,
    ) -> (
        crate::Processed,
        std::collections::BTreeMap<String, crate::store::StoredObject>,
        std::collections::BTreeMap<String, crate::store::StoredObject>,
    ) {
        use std::sync::Arc;
        let (archived, dead) = (
            Arc::new(crate::MemoryStore::new()),
            Arc::new(crate::MemoryStore::new()),
        );
        let archive = crate::S3Archive::builder(
            archived.clone(),
            crate::ArchiveConfig::default().with_compression(compression),
        );
        let dead_letter = crate::DeadLetter::builder(
            dead.clone(),
            crate::DeadLetterConfig::default().with_compression(compression),
        );
        let mut pipeline = crate::Pipeline::builder(SchemaConfig::default())
            .route(crate::TypeFilter::only(["app", "audit"]), archive)
            .dead_letter(dead_letter)
            .build();
        // Not capped by the cores, so that any number of threads is tried.
        pipeline.threads = threads(n);
        let now = chrono::DateTime::from_timestamp(1_584_154_800, 0).unwrap_or_default();
        let out = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| {
                rt.block_on(async {
                    let batch = pipeline.decoder().decode_event_json(event);
                    match batch {
                        Ok(batch) => Some(pipeline.process_decoded(&batch, now).await),
                        Err(_) => None,
                    }
                })
            })
            .ok()
            .flatten()
            .unwrap_or_default();
        (out, archived.snapshot(), dead.snapshot())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// The whole pipeline gives the same report, answer and objects, byte for byte, on
        /// any number of threads as on one.
        #[test]
        fn the_pipeline_is_the_same_on_any_number_of_threads(
            kinds in prop::collection::vec(any::<u8>(), 400..800),
            n in 2usize..7,
        ) {
            let payloads: Vec<String> =
                kinds.iter().enumerate().map(|(i, &k)| payload(k, i)).collect();
            let event = event(&payloads);
            let compression = crate::compress::Compression::None;
            let one = run(&event, 1, compression);
            prop_assert!(one.0.report.items == payloads.len());
            prop_assert!(!one.1.is_empty() && !one.2.is_empty());
            let many = run(&event, n, compression);
            prop_assert_eq!(&one.0, &many.0);
            prop_assert!(one.1 == many.1, "archive objects differ on {} threads", n);
            prop_assert!(one.2 == many.2, "dead-letter objects differ on {} threads", n);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Parts cover the items in order, none empty, at most as many as asked.
        #[test]
        fn part_ends_partition(
            weights in prop::collection::vec(0usize..5_000, 0..300),
            parts in 1usize..9,
        ) {
            let ends = part_ends(&weights, parts);
            prop_assert!(ends.len() <= parts);
            prop_assert_eq!(ends.last().copied().unwrap_or(0), weights.len());
            prop_assert!(ends.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(ends.first().is_none_or(|&e| e > 0));
            if !weights.is_empty() {
                prop_assert_eq!(ends.len(), parts.min(weights.len()));
            }
        }

        /// The same results as one sequential pass, on any number of threads, with state
        /// carried through each part.
        #[test]
        fn the_sequential_result_on_any_number_of_threads(
            items in prop::collection::vec(any::<u32>(), 0..2_000),
            n in 1usize..7,
            heavy in any::<bool>(),
        ) {
            let weight = |_: &u32| if heavy { 4096 } else { 1 };
            let f = |seen: &mut u64, i: usize, x: &u32| {
                *seen += 1;
                (i, u64::from(*x) * 3, *seen > 0)
            };
            let want: Vec<_> = items.iter().enumerate().map(|(i, x)| f(&mut 0, i, x)).collect();
            prop_assert_eq!(map_in_parts(&items, threads(n), weight, || 0u64, f), want);
        }
    }
}
