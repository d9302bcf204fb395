//! The libdeflate FFI: with `arch/x86_64/avx512`, the only module of the crate with `unsafe`.

use std::cell::RefCell;

use libdeflate_sys as sys;

/// One libdeflate decompressor, freed on drop.
struct Decompressor(std::ptr::NonNull<sys::libdeflate_decompressor>);

impl Decompressor {
    fn new() -> Option<Self> {
        #[allow(unsafe_code)]
        // SAFETY: allocating a decompressor has no precondition; a null result (out of
        // memory) is turned into `None`.
        let raw = unsafe { sys::libdeflate_alloc_decompressor() };
        std::ptr::NonNull::new(raw).map(Self)
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        #[allow(unsafe_code)]
        // SAFETY: the pointer came from `libdeflate_alloc_decompressor` and is freed once.
        unsafe {
            sys::libdeflate_free_decompressor(self.0.as_ptr())
        }
    }
}

thread_local! {
    /// This thread's decompressor, made at its first use. libdeflate keeps no state
    /// between calls in it but scratch tables, so any member can reuse it.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Inflates the deflate stream at the start of `body` into `out`'s spare capacity (at most
/// `limit` bytes in all): `Some(bytes of body used)` when it fit, `None` (with `out` as it
/// was) for anything else.
pub(super) fn inflate_into_spare(body: &[u8], out: &mut Vec<u8>, limit: usize) -> Option<usize> {
    let len = out.len();
    let room = (out.capacity() - len).min(limit.checked_sub(len)?);
    if room == 0 {
        return None;
    }
    DECOMPRESSOR
        .try_with(|cell| {
            // Never re-entered (libdeflate calls nothing back); if it were, `None`
            // leaves the member to zlib-rs.
            let mut slot = cell.try_borrow_mut().ok()?;
            if slot.is_none() {
                *slot = Some(Decompressor::new()?);
            }
            let decompressor = slot.as_ref()?;
            let (mut used, mut written) = (0usize, 0usize);
            #[allow(unsafe_code)]
            // SAFETY: the decompressor is live and used by this thread alone; libdeflate
            // reads at most `body.len()` bytes from `body` and writes at most `room`
            // bytes into `out`'s spare capacity, which is at least that large; the two
            // do not overlap (`out` is exclusively borrowed). On success it has
            // initialised the first `written` bytes of the spare capacity, so the new
            // length covers initialised bytes only; on any other result the length is
            // left.
            unsafe {
                let result = sys::libdeflate_deflate_decompress_ex(
                    decompressor.0.as_ptr(),
                    body.as_ptr().cast(),
                    body.len(),
                    out.as_mut_ptr().add(len).cast(),
                    room,
                    &mut used,
                    &mut written,
                );
                if result != sys::libdeflate_result_LIBDEFLATE_SUCCESS || written > room {
                    return None;
                }
                out.set_len(len + written);
            }
            Some(used)
        })
        .ok()
        .flatten()
}
