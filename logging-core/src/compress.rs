//! Compression of archive and dead-letter objects: gzip, zstd or none, on every core.
//!
//! [`Compression`] is the choice (`gzip(6)` by default, `zstd(LEVEL)`, `none`), validated when
//! it is made and read from configuration text. [`Compressor`] applies it to a batch's object
//! bodies:
//!
//! * A body larger than the chunk size ([`DEFAULT_CHUNK_SIZE`]) is cut at line breaks into
//!   chunks of about equal size, and each chunk is compressed on its own into a gzip member or
//!   a zstd frame. The members (frames) are concatenated, which is itself a valid gzip (zstd)
//!   file that every conforming reader (gzip, zcat, Python's `gzip` and `zstandard`, Athena,
//!   Spark, Trino) reads back as the whole body.
//! * The chunks of all the batch's bodies are shared out among up to
//!   [`Compressor::threads`] threads: at most the cores the process may use
//!   ([`std::thread::available_parallelism`]), 1 for no extra thread.
//! * Where a body is cut depends only on its bytes and the chunk size, never on the threads,
//!   so a body compresses to the same bytes on 1 thread or 6, and a retried batch overwrites
//!   its objects with identical ones.
//!
//! ```
//! use logging_core::compress::{Compression, Compressor};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let compression: Compression = "gzip(6)".parse()?;
//! assert_eq!(compression, Compression::default());
//! assert_eq!(compression.extension(), "gz");
//! assert!("gzip(13)".parse::<Compression>().is_err());
//!
//! let body = b"{\"log_type\":\"app\"}\n".repeat(100_000);
//! let gz = Compressor::new(compression).compress(&body)?;
//! let mut back = Vec::new();
//! std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut back)?;
//! assert_eq!(back, body);
//! # Ok(())
//! # }
//! ```
//!
//! # Threads
//!
//! The chunks are handed out through one atomic counter to the calling thread and up to
//! `threads - 1` of the crate's worker threads, which the pipeline's classification uses too
//! (one pool for the process, asleep between batches). The calling thread works its own
//! share instead of handing the batch to another thread and waiting: see
//! [`Compressor::compress_all_async`] and the note below.
//!
//! Measured on two cores: when the batch went to a thread of its own (Tokio's blocking pool)
//! which then started or woke a helper, the kernel often queued the helper on the core that
//! was still busy, and moved it to the idle core only at a later load balance; 3 to 10 ms of
//! a 17 ms compression ran on one core, and the pipeline reached 1.5 times its one-thread
//! speed. A thread that keeps running while it wakes a sleeping worker gets that worker
//! placed on the idle core at once: 1.7 times.
//!
//! Work of no more than one chunk per thread (a dead letter's few entries, a small archive)
//! is the exception: it cannot keep the threads busy by itself, so from async code
//! ([`Compressor::compress_all_async`]) the workers compress it while the calling thread goes
//! on with the invocation's other futures, the deliveries beside the dead letter.
//!
//! Each thread keeps its encoder (a zstd context, a libdeflate compressor) from one batch to
//! the next, for the compression it last used: creating one allocates tables that the kernel
//! then zeroes page by page on first use, every batch. A thread so keeps the memory of one
//! chunk's compression at that level: little for the defaults, more for high zstd levels on
//! objects compressed whole.

use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The default chunk size: bodies larger than this are compressed in chunks of at most this
/// size, side by side. 256 KiB keeps gzip and zstd output within about 1 % of one
/// member (frame) on log lines, and cuts a 4.5 MB batch into 18 chunks, enough to keep 2 to 6
/// threads evenly busy.
pub const DEFAULT_CHUNK_SIZE: NonZeroUsize = match NonZeroUsize::new(256 * 1024) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// Below this many bytes a batch is compressed on the calling thread alone: waking a worker
/// would cost more than it saves.
const INLINE_BELOW: usize = 64 * 1024;

/// How archive and dead-letter objects are compressed.
///
/// Written `none`, `gzip(LEVEL)` or `zstd(LEVEL)` (also `gzip` and `zstd` for their default
/// levels, 6 and 3) in configuration text, see [`FromStr`](#impl-FromStr-for-Compression).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// Plain NDJSON objects, keys ending `.ndjson`.
    None,
    /// gzip (RFC 1952), keys ending `.gz`: what the original wrote and every tool reads.
    Gzip(GzipLevel),
    /// zstd (RFC 8878), keys ending `.zst`: about as small as gzip level 6 at level 1, several
    /// times faster. Needs the `zstd` feature (default).
    Zstd(ZstdLevel),
}

impl Default for Compression {
    /// gzip level 6, readable by every consumer of the original objects.
    fn default() -> Self {
        Compression::Gzip(GzipLevel::DEFAULT)
    }
}

/// An invalid compression setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompressionError {
    /// A gzip level outside 0–12.
    #[error("gzip level {0} is out of range: levels are 0 (store) to 12")]
    GzipLevel(i64),
    /// A zstd level outside -131072–22, or 0.
    #[error(
        "zstd level {0} is out of range: levels are 1 to 22, or -1 to -131072 for the fast levels"
    )]
    ZstdLevel(i64),
    /// zstd was asked for in a build without the `zstd` feature.
    #[error("zstd compression is not available: build logging-core with its `zstd` feature")]
    ZstdUnavailable,
    /// The text is not a compression setting.
    #[error("compression {0:?} is not `none`, `gzip(LEVEL)` or `zstd(LEVEL)`")]
    Syntax(String),
}

/// A gzip (deflate) level, 0 (stored, no compression) to 12.
///
/// With the default `libdeflate` feature every level is libdeflate's; without it, flate2
/// (zlib-rs) compresses and levels 10 to 12 act as 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GzipLevel(u8);

impl GzipLevel {
    /// Level 6, the default.
    pub const DEFAULT: GzipLevel = GzipLevel(6);
    /// The highest level, 12.
    pub const MAX: u32 = 12;

    /// The level, if it is one (0–12).
    pub fn new(level: u32) -> Result<Self, CompressionError> {
        match u8::try_from(level) {
            Ok(l) if level <= Self::MAX => Ok(GzipLevel(l)),
            _ => Err(CompressionError::GzipLevel(i64::from(level))),
        }
    }

    /// The level as a number.
    pub fn get(self) -> u32 {
        u32::from(self.0)
    }
}

/// A zstd level: 1 (fastest of the regular levels) to 22, or a negative fast level down to
/// -131072. Exists only in builds with the `zstd` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZstdLevel(i32);

impl ZstdLevel {
    /// Level 3, zstd's own default.
    pub const DEFAULT: ZstdLevel = ZstdLevel(3);
    /// The highest level, 22.
    pub const MAX: i32 = 22;
    /// The fastest level, -131072.
    pub const MIN: i32 = -(1 << 17);

    /// The level, if it is one and zstd is built in.
    pub fn new(level: i32) -> Result<Self, CompressionError> {
        if level == 0 || !(Self::MIN..=Self::MAX).contains(&level) {
            return Err(CompressionError::ZstdLevel(i64::from(level)));
        }
        if cfg!(feature = "zstd") {
            Ok(ZstdLevel(level))
        } else {
            Err(CompressionError::ZstdUnavailable)
        }
    }

    /// The level as a number.
    pub fn get(self) -> i32 {
        self.0
    }
}

impl Compression {
    /// gzip at `level` (0–12).
    pub fn gzip(level: u32) -> Result<Self, CompressionError> {
        GzipLevel::new(level).map(Compression::Gzip)
    }

    /// zstd at `level` (1–22, or negative for the fast levels).
    pub fn zstd(level: i32) -> Result<Self, CompressionError> {
        ZstdLevel::new(level).map(Compression::Zstd)
    }

    /// The extension of an object's key: `gz`, `zst`, or `ndjson` for plain objects.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "ndjson",
            Compression::Gzip(_) => "gz",
            Compression::Zstd(_) => "zst",
        }
    }

    /// The object's `Content-Type`: `application/gzip`, `application/zstd`, or
    /// `application/x-ndjson` for plain objects.
    pub fn content_type(self) -> &'static str {
        match self {
            Compression::None => "application/x-ndjson",
            Compression::Gzip(_) => "application/gzip",
            Compression::Zstd(_) => "application/zstd",
        }
    }

    /// `plain` compressed as one gzip member or zstd frame (a copy for [`Compression::None`]).
    /// The same input always gives the same bytes: gzip headers carry no time or name.
    pub fn compress_whole(self, plain: &[u8]) -> io::Result<Vec<u8>> {
        Encoder::new(self).encode(plain)
    }
}

impl fmt::Display for Compression {
    /// `none`, `gzip(6)`, `zstd(3)`: the text [`FromStr`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Gzip(l) => write!(f, "gzip({})", l.get()),
            Compression::Zstd(l) => write!(f, "zstd({})", l.get()),
        }
    }
}

impl FromStr for Compression {
    type Err = CompressionError;

    /// Reads `none`, `gzip`, `gzip(LEVEL)`, `zstd` or `zstd(LEVEL)`, in any case and with
    /// spaces around the parts; `gzip` is level 6 and `zstd` level 3.
    ///
    /// ```
    /// use logging_core::compress::{Compression, CompressionError};
    /// assert_eq!("zstd(1)".parse(), Compression::zstd(1));
    /// assert_eq!(" GZIP ( 9 ) ".parse(), Compression::gzip(9));
    /// assert_eq!("none".parse(), Ok(Compression::None));
    /// assert_eq!("gzip(13)".parse::<Compression>(), Err(CompressionError::GzipLevel(13)));
    /// assert!(matches!("brotli".parse::<Compression>(), Err(CompressionError::Syntax(_))));
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || CompressionError::Syntax(s.to_owned());
        let text = s.trim();
        let (name, level) = match text.find('(') {
            Some(open) => {
                let inner = text[open + 1..].strip_suffix(')').ok_or_else(syntax)?;
                let level: i64 = inner.trim().parse().map_err(|_| syntax())?;
                (text[..open].trim(), Some(level))
            }
            None => (text, None),
        };
        match (name.to_ascii_lowercase().as_str(), level) {
            ("none", None) => Ok(Compression::None),
            ("gzip", None) => Ok(Compression::default()),
            ("gzip", Some(l)) => u32::try_from(l)
                .map_err(|_| CompressionError::GzipLevel(l))
                .and_then(Compression::gzip),
            ("zstd", None) => ZstdLevel::new(ZstdLevel::DEFAULT.0).map(Compression::Zstd),
            ("zstd", Some(l)) => i32::try_from(l)
                .map_err(|_| CompressionError::ZstdLevel(l))
                .and_then(Compression::zstd),
            _ => Err(syntax()),
        }
    }
}

impl Serialize for Compression {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Compression {
    /// From the text [`FromStr`] reads (`"zstd(3)"`), so configuration files say
    /// `compression = "zstd(3)"`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One thread's compression state, reused for every chunk it compresses.
enum Encoder {
    None,
    #[cfg(feature = "libdeflate")]
    Gzip(libdeflater::Compressor),
    #[cfg(not(feature = "libdeflate"))]
    Gzip(GzipLevel),
    #[cfg(feature = "zstd")]
    Zstd(Option<zstd::bulk::Compressor<'static>>, ZstdLevel),
    #[cfg(not(feature = "zstd"))]
    #[allow(dead_code)]
    Zstd(ZstdLevel),
}

thread_local! {
    /// This thread's encoder, kept between batches: a zstd context or libdeflate compressor
    /// allocates (and the kernel zeroes) its tables on first use.
    static ENCODER: std::cell::Cell<Option<(Compression, Encoder)>> =
        const { std::cell::Cell::new(None) };
}

/// `f` with this thread's kept encoder when it is for `compression`, else a new one, which
/// is kept afterwards.
fn with_encoder<R>(compression: Compression, f: impl FnOnce(&mut Encoder) -> R) -> R {
    // Taken out while in use: a nested call (none today) would make its own.
    let kept = ENCODER.try_with(|cell| cell.take()).ok().flatten();
    let mut encoder = match kept {
        Some((c, encoder)) if c == compression => encoder,
        _ => Encoder::new(compression),
    };
    let out = f(&mut encoder);
    // Fails only while the thread exits, and then there is nothing to keep it for.
    let _ = ENCODER.try_with(|cell| cell.set(Some((compression, encoder))));
    out
}

impl Encoder {
    fn new(compression: Compression) -> Self {
        match compression {
            Compression::None => Encoder::None,
            #[cfg(feature = "libdeflate")]
            Compression::Gzip(level) => Encoder::Gzip(libdeflater::Compressor::new(
                // Every GzipLevel (0–12) is a libdeflate level.
                libdeflater::CompressionLvl::new(level.get() as i32).unwrap_or_default(),
            )),
            #[cfg(not(feature = "libdeflate"))]
            Compression::Gzip(level) => Encoder::Gzip(level),
            #[cfg(feature = "zstd")]
            Compression::Zstd(level) => Encoder::Zstd(None, level),
            #[cfg(not(feature = "zstd"))]
            Compression::Zstd(level) => Encoder::Zstd(level),
        }
    }

    /// `plain` as one member or frame.
    fn encode(&mut self, plain: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Encoder::None => Ok(plain.to_vec()),
            #[cfg(feature = "libdeflate")]
            Encoder::Gzip(c) => {
                let mut out = vec![0; c.gzip_compress_bound(plain.len())];
                let n = c
                    .gzip_compress(plain, &mut out)
                    .map_err(|e| io::Error::other(format!("gzip of {} bytes: {e}", plain.len())))?;
                out.truncate(n);
                Ok(out)
            }
            #[cfg(not(feature = "libdeflate"))]
            Encoder::Gzip(level) => {
                use std::io::Write as _;
                let mut gz = flate2::write::GzEncoder::new(
                    Vec::with_capacity(plain.len() / 4 + 64),
                    flate2::Compression::new(level.get().min(9)),
                );
                gz.write_all(plain)?;
                gz.finish()
            }
            #[cfg(feature = "zstd")]
            Encoder::Zstd(state, level) => {
                let c = match state {
                    Some(c) => c,
                    None => {
                        let mut c = zstd::bulk::Compressor::new(level.get())?;
                        // A checksum of the content, as the zstd tool writes: readers verify
                        // it, as gzip's CRC-32.
                        c.include_checksum(true)?;
                        state.insert(c)
                    }
                };
                c.compress(plain)
            }
            #[cfg(not(feature = "zstd"))]
            Encoder::Zstd(_) => Err(io::Error::other(CompressionError::ZstdUnavailable)),
        }
    }
}

/// gzip of `plain` at `level` as one member (levels above 12, or 9 without libdeflate, are
/// clamped).
pub(crate) fn gzip(plain: &[u8], level: u32) -> io::Result<Vec<u8>> {
    Compression::Gzip(GzipLevel(level.min(GzipLevel::MAX) as u8)).compress_whole(plain)
}

/// Where `plain` is cut into chunks for a `chunk` size: the ends of the chunks, the last one
/// `plain.len()`. A body of `len` bytes is cut into about `ceil(len / chunk)` chunks of about
/// equal size, at most `chunk` bytes each, each ending just after a line break so that lines
/// stay whole: only a line longer than the chunk's share makes a chunk of its own longer
/// than that, and a body without line breaks stays whole. Only the bytes and the chunk size
/// decide.
pub fn chunk_ends(plain: &[u8], chunk: NonZeroUsize) -> Vec<usize> {
    let len = plain.len();
    let chunk = chunk.get();
    let n = len.div_ceil(chunk).max(1);
    let mut ends = Vec::with_capacity(n + 1);
    let mut start = 0;
    while len - start > chunk {
        // An even share of what is left, at most `chunk` (so start + share < len). The chunk
        // ends after the line that crosses its share if that fits in `chunk`, else before it.
        let share = (len - start)
            .div_ceil(n.saturating_sub(ends.len()).max(2))
            .min(chunk);
        let limit = start + share;
        let after = plain
            .get(limit..)
            .and_then(|s| memchr::memchr(b'\n', s))
            .map(|at| limit + at + 1)
            .filter(|&end| end < len);
        let end = match after {
            Some(end) if end - start <= chunk => end,
            _ => match plain
                .get(start..limit)
                .and_then(|s| memchr::memrchr(b'\n', s))
            {
                Some(at) => start + at + 1,
                // One line longer than the share: the chunk runs to its end.
                None => match after {
                    Some(end) => end,
                    None => break,
                },
            },
        };
        ends.push(end);
        start = end;
    }
    ends.push(len);
    ends
}

/// The concatenation of `plain`'s chunks (cut at `ends`, see [`chunk_ends`]) each compressed
/// on its own: one thread, no cutting of its own. Any cutting gives a valid stream of the
/// whole input; [`Compressor`] cuts with [`chunk_ends`].
pub fn compress_chunks(
    compression: Compression,
    plain: &[u8],
    ends: &[usize],
) -> io::Result<Vec<u8>> {
    with_encoder(compression, |encoder| {
        let mut out = Vec::new();
        let mut start = 0;
        for &end in ends {
            let chunk = plain.get(start..end).ok_or_else(|| {
                io::Error::other(format!("chunk {start}..{end} of {}", plain.len()))
            })?;
            out.extend_from_slice(&encoder.encode(chunk)?);
            start = end;
        }
        Ok(out)
    })
}

/// Compresses a batch's object bodies with a [`Compression`], cutting large bodies into
/// chunks and sharing the chunks among threads (see the [module docs](self)).
///
/// ```
/// use std::num::NonZeroUsize;
/// use logging_core::compress::{Compression, Compressor};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bodies = vec![b"{\"n\":1}\n".repeat(50_000), b"{\"n\":2}\n".to_vec()];
/// let one = Compressor::new(Compression::gzip(6)?).with_threads(NonZeroUsize::MIN);
/// let all = Compressor::new(Compression::gzip(6)?); // every available core
/// let (a, b) = (one.compress_all(bodies.clone()), all.compress_all(bodies));
/// assert_eq!(a[0].as_ref().ok(), b[0].as_ref().ok(), "the same bytes on any number of threads");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compressor {
    compression: Compression,
    threads: NonZeroUsize,
    chunk_size: Option<NonZeroUsize>,
}

impl Compressor {
    /// A compressor on every available core (on AWS Lambda, no more than the whole vCPUs the
    /// function's memory buys, as [`PipelineBuilder::threads`](crate::pipeline::PipelineBuilder::threads)
    /// says) with the [`DEFAULT_CHUNK_SIZE`].
    pub fn new(compression: Compression) -> Self {
        Self {
            compression,
            threads: crate::parallel::default_threads(),
            chunk_size: Some(DEFAULT_CHUNK_SIZE),
        }
    }

    /// The compressor of a configuration's three settings (`threads` `None`: every core).
    pub(crate) fn configured(
        compression: Compression,
        threads: Option<NonZeroUsize>,
        chunk_size: Option<NonZeroUsize>,
    ) -> Self {
        let c = Compressor::new(compression).with_chunk_size(chunk_size);
        match threads {
            Some(n) => c.with_threads(n),
            None => c,
        }
    }

    /// At most `threads` threads, the calling one included (1: only the calling thread),
    /// and never more than [`std::thread::available_parallelism`].
    pub fn with_threads(mut self, threads: NonZeroUsize) -> Self {
        self.threads = threads.min(crate::parallel::available_threads());
        self
    }

    /// Bodies larger than `chunk_size` are compressed in chunks; `None` compresses every
    /// body whole, as one gzip member or zstd frame (on one thread per body).
    pub fn with_chunk_size(mut self, chunk_size: Option<NonZeroUsize>) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// The compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The most threads used.
    pub fn threads(&self) -> NonZeroUsize {
        self.threads
    }

    /// The chunk size (`None`: bodies are compressed whole).
    pub fn chunk_size(&self) -> Option<NonZeroUsize> {
        self.chunk_size
    }

    /// One body, compressed.
    pub fn compress(&self, plain: &[u8]) -> io::Result<Vec<u8>> {
        self.compress_all(vec![plain.to_vec()])
            .pop()
            .unwrap_or_else(|| Err(io::Error::other("no compressed body")))
    }

    /// Every body compressed, in order; a body's error does not affect the others. Plain
    /// bodies ([`Compression::None`]) are returned as they are.
    pub fn compress_all(&self, plains: Vec<Vec<u8>>) -> Vec<io::Result<Vec<u8>>> {
        self.compress_all_on(plains, self.threads.get())
    }

    /// [`Compressor::compress_all`] from async code. On a multi-thread Tokio runtime the
    /// calling worker hands its other tasks to another worker while it compresses
    /// ([`tokio::task::block_in_place`]), so the invocation's other deliveries keep going; on a
    /// current-thread runtime, and outside one, the compression runs in place.
    ///
    /// The calling thread takes a share of the chunks rather than waiting for the crate's
    /// workers: see [Threads](self#threads) for why that matters for speed. Work of no more
    /// than one chunk per thread is the exception: the workers do it while this future waits
    /// without blocking its thread, so that the thread's other futures go on.
    pub async fn compress_all_async(&self, plains: Vec<Vec<u8>>) -> Vec<io::Result<Vec<u8>>> {
        let total: usize = plains.iter().map(Vec::len).sum();
        if self.compression == Compression::None || total < INLINE_BELOW {
            return self.compress_all(plains);
        }
        // No more than a chunk per thread (a dead letter's few entries, a small archive): too
        // little to keep the threads busy, and the calling thread has better to do. The
        // workers compress while it goes on with the invocation's other futures (the
        // deliveries beside the dead letter).
        let small = match self.chunk_size {
            Some(size) => total <= size.get().saturating_mul(self.threads.get()),
            None => plains.len() <= self.threads.get(),
        };
        if small && self.threads.get() > 1 {
            let plains = std::sync::Arc::new(plains);
            let (compressor, shared) = (*self, std::sync::Arc::clone(&plains));
            // On that one worker: helpers of its own would take the cores from the calling
            // thread's next work (the archive's chunks).
            let on_worker =
                crate::parallel::on_a_worker(move || compressor.compress_bodies(&shared, 1));
            // A job no worker finished is done here.
            return match on_worker.await {
                Some(done) => done,
                None => self.compress_bodies(&plains, self.threads.get()),
            };
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.compress_all(plains))
            }
            _ => self.compress_all(plains),
        }
    }

    /// [`Compressor::compress_all`] on exactly `threads` threads (not capped by the cores, for
    /// tests).
    pub(crate) fn compress_all_on(
        &self,
        plains: Vec<Vec<u8>>,
        threads: usize,
    ) -> Vec<io::Result<Vec<u8>>> {
        if self.compression == Compression::None {
            return plains.into_iter().map(Ok).collect();
        }
        self.compress_bodies(&plains, threads)
    }

    /// [`Compressor::compress_all_on`] of bodies it does not own (copied when plain).
    fn compress_bodies(&self, plains: &[Vec<u8>], threads: usize) -> Vec<io::Result<Vec<u8>>> {
        if self.compression == Compression::None {
            return plains.iter().map(|p| Ok(p.clone())).collect();
        }
        // Jobs: every chunk of every body, largest first so that the threads finish together.
        let mut jobs: Vec<(usize, usize, Range<usize>)> = Vec::new();
        let mut chunks = Vec::with_capacity(plains.len());
        for (body, plain) in plains.iter().enumerate() {
            let ends = match self.chunk_size {
                Some(size) => chunk_ends(plain, size),
                None => vec![plain.len()],
            };
            let mut start = 0;
            for (i, &end) in ends.iter().enumerate() {
                jobs.push((body, i, start..end));
                start = end;
            }
            chunks.push(ends.len());
        }
        jobs.sort_by_key(|(_, _, r)| std::cmp::Reverse(r.len()));
        let total: usize = plains.iter().map(Vec::len).sum();
        let threads = if total < INLINE_BELOW {
            1
        } else {
            threads.clamp(1, jobs.len().max(1))
        };

        let next = AtomicUsize::new(0);
        let work = || {
            with_encoder(self.compression, |encoder| {
                let mut done = Vec::new();
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some((body, _, range)) = jobs.get(j) else {
                        break;
                    };
                    let out = plains
                        .get(*body)
                        .and_then(|p| p.get(range.clone()))
                        .ok_or_else(|| io::Error::other("chunk outside its body"))
                        .and_then(|chunk| encoder.encode(chunk));
                    done.push((j, out));
                }
                done
            })
        };
        let mut results: Vec<Option<io::Result<Vec<u8>>>> = (0..jobs.len()).map(|_| None).collect();
        let mut collect = |done: Vec<(usize, io::Result<Vec<u8>>)>| {
            for (j, out) in done {
                if let Some(slot) = results.get_mut(j) {
                    *slot = Some(out);
                }
            }
        };
        // A job a helper took and did not finish (it panicked) has no result: it fails below.
        let mut mine = Vec::new();
        let helped = crate::parallel::with_helpers(threads - 1, |_| work(), || mine = work());
        collect(mine);
        for done in helped.into_iter().flatten() {
            collect(done);
        }

        // Back into bodies, chunks in order.
        let mut per_body: Vec<Vec<Option<io::Result<Vec<u8>>>>> = chunks
            .iter()
            .map(|&n| (0..n).map(|_| None).collect())
            .collect();
        for ((body, i, _), out) in jobs.iter().zip(results) {
            if let Some(slot) = per_body.get_mut(*body).and_then(|b| b.get_mut(*i)) {
                *slot = out;
            }
        }
        per_body
            .into_iter()
            .map(|parts| {
                if parts.len() == 1 {
                    return parts
                        .into_iter()
                        .next()
                        .flatten()
                        .unwrap_or_else(|| Err(io::Error::other("compression worker failed")));
                }
                let len = parts
                    .iter()
                    .map(|p| p.as_ref().and_then(|r| r.as_ref().ok()).map_or(0, Vec::len))
                    .sum();
                let mut out = Vec::with_capacity(len);
                for part in parts {
                    match part {
                        Some(Ok(bytes)) => out.extend_from_slice(&bytes),
                        Some(Err(e)) => return Err(e),
                        None => return Err(io::Error::other("compression worker failed")),
                    }
                }
                Ok(out)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[cfg(feature = "zstd")]
    fn unzstd(b: &[u8]) -> Vec<u8> {
        zstd::stream::decode_all(b).unwrap()
    }

    fn decompress(c: Compression, b: &[u8]) -> Vec<u8> {
        match c {
            Compression::None => b.to_vec(),
            Compression::Gzip(_) => gunzip(b),
            #[cfg(feature = "zstd")]
            Compression::Zstd(_) => unzstd(b),
            #[cfg(not(feature = "zstd"))]
            Compression::Zstd(_) => unreachable!(),
        }
    }

    fn compressions() -> Vec<Compression> {
        let mut all = vec![
            Compression::None,
            Compression::gzip(0).unwrap(),
            Compression::gzip(1).unwrap(),
            Compression::gzip(6).unwrap(),
            Compression::gzip(12).unwrap(),
        ];
        if cfg!(feature = "zstd") {
            for l in [-5, 1, 3, 12] {
                all.push(Compression::zstd(l).unwrap());
            }
        }
        all
    }

    fn lines(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        let mut out = Vec::new();
        for i in 0..n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let pad = "word ".repeat((x >> 59) as usize);
            out.extend_from_slice(
                format!(
                    "{{\"log_type\":\"app\",\"n\":{i},\"r\":{},\"m\":\"{pad}\"}}\n",
                    x >> 40
                )
                .as_bytes(),
            );
        }
        out
    }

    #[test]
    fn text_round_trips_and_levels_are_validated() {
        for c in compressions() {
            assert_eq!(c.to_string().parse::<Compression>(), Ok(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<Compression>(&json).unwrap(), c);
        }
        assert_eq!("gzip".parse(), Ok(Compression::default()));
        assert_eq!(Compression::default().to_string(), "gzip(6)");
        for bad in ["gzip(13)", "gzip(-1)", "gzip(99999999999)"] {
            assert!(
                matches!(
                    bad.parse::<Compression>(),
                    Err(CompressionError::GzipLevel(_))
                ),
                "{bad}"
            );
        }
        for bad in [
            "", "gzip(", "gzip()", "gzip(6", "gzip(x)", "lz4", "none(1)", "gzip 6",
        ] {
            assert_eq!(
                bad.parse::<Compression>(),
                Err(CompressionError::Syntax(bad.into())),
                "{bad}"
            );
        }
        if cfg!(feature = "zstd") {
            assert_eq!("zstd".parse(), Compression::zstd(3));
            assert_eq!("Zstd( -7 )".parse(), Compression::zstd(-7));
            for bad in ["zstd(0)", "zstd(23)", "zstd(-131073)", "zstd(9999999999)"] {
                assert!(
                    matches!(
                        bad.parse::<Compression>(),
                        Err(CompressionError::ZstdLevel(_))
                    ),
                    "{bad}"
                );
            }
        } else {
            assert_eq!(
                "zstd(3)".parse::<Compression>(),
                Err(CompressionError::ZstdUnavailable)
            );
        }
        let e = serde_json::from_str::<Compression>("\"gzip(13)\"").unwrap_err();
        assert!(e.to_string().contains("gzip level 13"), "{e}");
        assert_eq!(Compression::None.extension(), "ndjson");
        assert_eq!(Compression::default().content_type(), "application/gzip");
    }

    #[test]
    fn chunks_end_after_line_breaks_and_cover_the_body() {
        let body = lines(5000, 1);
        let size = NonZeroUsize::new(16 * 1024).unwrap();
        let ends = chunk_ends(&body, size);
        let n = body.len().div_ceil(size.get());
        assert!((n..=n + 1).contains(&ends.len()), "{n} {}", ends.len());
        assert!(body.len() > 20 * size.get(), "{}", body.len());
        assert_eq!(ends.last(), Some(&body.len()));
        let mut start = 0;
        for &end in &ends {
            assert!(end > start);
            assert_eq!(body[end - 1], b'\n');
            // About equal shares, none larger than the chunk size.
            assert!(end - start <= size.get(), "{start}..{end}");
            assert!(
                (end - start).abs_diff(body.len() / ends.len()) < 400,
                "{start}..{end}"
            );
            start = end;
        }
        // Small bodies and bodies without line breaks are one chunk.
        assert_eq!(chunk_ends(b"abc\n", size), [4]);
        assert_eq!(chunk_ends(b"", size), [0]);
        assert_eq!(chunk_ends(&[b'x'; 100_000], size), [100_000]);
    }

    #[test]
    fn the_same_bytes_on_any_number_of_threads_and_whole_when_small() {
        // Several bodies, one of many chunks, so that the threads share chunks of one body.
        let bodies = vec![lines(6_000, 1), lines(10, 2), Vec::new(), lines(300, 3)];
        let chunk = NonZeroUsize::new(64 * 1024).unwrap();
        for c in compressions() {
            let compressor = Compressor::new(c).with_chunk_size(Some(chunk));
            let one = compressor.compress_all_on(bodies.clone(), 1);
            for threads in [2, 3, 8] {
                let many = compressor.compress_all_on(bodies.clone(), threads);
                for (a, b) in one.iter().zip(&many) {
                    assert_eq!(a.as_ref().unwrap(), b.as_ref().unwrap(), "{c} on {threads}");
                }
            }
            for (body, out) in bodies.iter().zip(&one) {
                let out = out.as_ref().unwrap();
                assert_eq!(&decompress(c, out), body, "{c}");
                if body.len() <= chunk.get() {
                    // One member or frame, as compressed whole.
                    assert_eq!(out, &c.compress_whole(body).unwrap(), "{c}");
                }
            }
            // The large body is several members or frames, and whole when chunking is off.
            let ends = chunk_ends(&bodies[0], chunk);
            assert!(ends.len() >= 4, "{}", ends.len());
            assert_eq!(
                one[0].as_ref().unwrap(),
                &compress_chunks(c, &bodies[0], &ends).unwrap()
            );
            let whole = compressor
                .with_chunk_size(None)
                .compress_all_on(bodies.clone(), 2);
            assert_eq!(
                whole[0].as_ref().unwrap(),
                &c.compress_whole(&bodies[0]).unwrap()
            );
        }
    }

    #[test]
    fn chunking_costs_little_ratio() {
        let body = lines(20_000, 7);
        for c in compressions() {
            if c == Compression::None || c == Compression::gzip(0).unwrap() {
                continue;
            }
            let whole = c.compress_whole(&body).unwrap().len();
            let chunked = Compressor::new(c).compress_all_on(vec![body.clone()], 2);
            let chunked = chunked[0].as_ref().unwrap().len();
            assert!(
                (chunked as f64) < whole as f64 * 1.05,
                "{c}: {chunked} chunked against {whole} whole"
            );
        }
    }

    #[tokio::test]
    async fn async_compression_is_the_same_on_and_off_the_runtime() {
        let bodies = vec![lines(3_000, 4), lines(100, 5)];
        for c in compressions() {
            let compressor = Compressor::new(c);
            let sync = compressor.compress_all(bodies.clone());
            let on_runtime = compressor.compress_all_async(bodies.clone()).await;
            for (a, b) in sync.iter().zip(&on_runtime) {
                assert_eq!(a.as_ref().unwrap(), b.as_ref().unwrap(), "{c}");
            }
        }
    }

    /// Work too small to share among the threads is compressed by a worker while the calling
    /// thread polls its other futures, with the same bytes; larger work keeps the calling
    /// thread busy with its share.
    #[tokio::test]
    async fn small_work_is_compressed_beside_the_other_futures() {
        let small = vec![lines(2_000, 8), lines(300, 9)];
        let large = vec![lines(40_000, 10)];
        let total = |b: &[Vec<u8>]| b.iter().map(Vec::len).sum::<usize>();
        assert!((INLINE_BELOW..=2 * DEFAULT_CHUNK_SIZE.get()).contains(&total(&small)));
        assert!(total(&large) > 2 * DEFAULT_CHUNK_SIZE.get());
        let two = NonZeroUsize::new(2).unwrap();
        let mut settings = vec![Compression::gzip(6).unwrap()];
        if cfg!(feature = "zstd") {
            settings.push(Compression::zstd(1).unwrap());
        }
        for c in settings {
            let compressor = Compressor::new(c).with_threads(two);
            for (bodies, beside) in [(&small, true), (&large, false)] {
                let want = compressor.compress_all_on(bodies.clone(), 1);
                let order = std::sync::Mutex::new(Vec::new());
                let (got, ()) = tokio::join!(
                    async {
                        let got = compressor.compress_all_async(bodies.clone()).await;
                        order.lock().unwrap().push("compressed");
                        got
                    },
                    async { order.lock().unwrap().push("other future") }
                );
                for (a, b) in want.iter().zip(&got) {
                    assert_eq!(a.as_ref().unwrap(), b.as_ref().unwrap(), "{c}");
                }
                let first = if beside { "other future" } else { "compressed" };
                // Without workers (none could be started) everything runs in place.
                if crate::parallel::available_threads().get() > 1 {
                    assert_eq!(
                        order.lock().unwrap()[0],
                        first,
                        "{c}, {} bytes",
                        total(bodies)
                    );
                }
            }
        }
    }

    #[test]
    fn the_threads_are_bounded_by_the_cores() {
        let cores = std::thread::available_parallelism().unwrap();
        let c = Compressor::new(Compression::default());
        assert_eq!(c.threads(), cores);
        let many = NonZeroUsize::new(cores.get() + 5).unwrap();
        assert_eq!(c.with_threads(many).threads(), cores);
        assert_eq!(c.with_threads(NonZeroUsize::MIN).threads().get(), 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any cutting of any bytes, compressed chunk by chunk and concatenated, decompresses
        /// to the input.
        #[test]
        fn concatenated_chunks_decompress_to_the_input(
            plain in prop::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'a'), any::<u8>()], 0..20_000),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
            which in 0usize..9,
        ) {
            let all = compressions();
            let c = all[which % all.len()];
            let mut ends: Vec<usize> = cuts.iter().map(|i| i.index(plain.len() + 1)).collect();
            ends.push(plain.len());
            ends.sort_unstable();
            let out = compress_chunks(c, &plain, &ends).unwrap();
            prop_assert_eq!(decompress(c, &out), plain);
        }

        /// The line-break cutting covers any body in order, for any chunk size.
        #[test]
        fn chunk_ends_partition_any_body(
            plain in prop::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..5_000),
            size in 1usize..3_000,
        ) {
            let ends = chunk_ends(&plain, NonZeroUsize::new(size).unwrap());
            prop_assert_eq!(ends.last().copied(), Some(plain.len()));
            prop_assert!(ends.windows(2).all(|w| w[0] < w[1]));
            let mut start = 0;
            for (i, &end) in ends.iter().enumerate() {
                if i + 1 < ends.len() {
                    prop_assert_eq!(plain[end - 1], b'\n');
                }
                // Longer than the chunk size only for one line longer than that.
                if end - start > size {
                    prop_assert!(!plain[start..end - 1].contains(&b'\n'), "{}..{}", start, end);
                }
                start = end;
            }
        }
    }
}
