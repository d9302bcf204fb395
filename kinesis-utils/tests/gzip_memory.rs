//! What gzip decoding asks of the allocator: never more than the input can inflate to,
//! whatever its trailer claims, and a refused allocation is an error for that record, not an
//! abort. A global allocator that records and can refuse the requests of the test's thread
//! checks both.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

use bytes::Bytes;
use kinesis_utils::gzip::{self, GzipError};
use kinesis_utils::{Decoded, Decoder, DecoderConfig, Origin};

/// The system allocator, recording the largest request of the current thread and refusing
/// requests above its limit.
struct Watching;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static REFUSE_ABOVE: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn allowed(size: usize) -> bool {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    REFUSE_ABOVE.try_with(Cell::get).unwrap_or(usize::MAX) >= size
}

// SAFETY: every call is passed on to the system allocator unchanged, or refused with a null
// pointer, which `GlobalAlloc` allows.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !allowed(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !allowed(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;

/// The largest allocation `f` makes on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn a_trailer_claiming_gigabytes_reserves_what_the_input_can_inflate_to() {
    let mut record = gz(b"");
    let n = record.len();
    assert!(n <= 24, "{n}");
    record[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    let (result, largest) = largest_allocation(|| gzip::gunzip_bounded(&record, 4 << 30));
    assert!(
        matches!(result, Err(GzipError::Corrupt { .. })),
        "{result:?}"
    );
    // The inflater's own state (zlib-rs allocates about 46 KiB of window and tables per
    // stream; libdeflate's decompressor is made once per thread) is what an honest empty
    // record costs too; the output reservation must stay within what 20 bytes inflate to.
    let (_, inflater) = largest_allocation(|| gzip::gunzip_bounded(&gz(b""), 4 << 30));
    assert!(
        largest <= (n * gzip::MAX_RATIO + 1).max(inflater),
        "{largest} bytes for {n} of input (an honest empty record: {inflater})"
    );

    // A real record of high ratio still inflates in one allocation of its size.
    let zeros = vec![0u8; 4 << 20];
    let record = gz(&zeros);
    assert!(record.len() * gzip::MAX_RATIO >= zeros.len());
    let (plain, largest) = largest_allocation(|| gzip::gunzip_bounded(&record, 64 << 20));
    assert_eq!(plain.unwrap(), zeros);
    assert!(largest <= zeros.len() + 1, "{largest}");
}

#[test]
fn a_refused_allocation_is_an_error_for_that_record() {
    let lines = b"{\"log_type\":\"app\"}\n".repeat(50_000);
    let record = gz(&lines);
    REFUSE_ABOVE.with(|r| r.set(256 << 10));
    let direct = gzip::gunzip_bounded(&record, 64 << 20);
    let mut items = Vec::new();
    Decoder::new(DecoderConfig::default()).decode_data(
        Bytes::from(record.clone()),
        Origin::new("1"),
        &mut items,
    );
    REFUSE_ABOVE.with(|r| r.set(usize::MAX));
    assert!(
        matches!(direct, Err(GzipError::OutOfMemory { bytes }) if bytes > 256 << 10),
        "{:?}",
        direct.map(|v| v.len())
    );
    let [Decoded::Failed(failure)] = &items[..] else {
        panic!("{items:?}")
    };
    assert_eq!(failure.error.reason(), "gzip_out_of_memory");
    assert_eq!(failure.raw, record);
    // With memory again, the same record decodes.
    assert_eq!(gzip::gunzip_bounded(&record, 64 << 20).unwrap(), lines);
}
