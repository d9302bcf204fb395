//! A Lambda event's base64 `data` strings, decoded straight from the event JSON: memchr finds
//! the closing quote and base64-simd decodes what comes before it.

/// Decodes the JSON string content at the start of `src` as canonical padded base64 onto
/// `out` (see `arch::decode_base64_string` for the contract).
pub(crate) fn decode_json_string(src: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let start = out.len();
    finish(src, 0, out, start)
}

/// [`decode_json_string`] from `src[from..]` on, for a backend that has already decoded
/// `src[..from]` (a whole number of 4-character groups) onto `out` from `start`. On `None`,
/// `out` is cut back to `start`.
pub(crate) fn finish(src: &[u8], from: usize, out: &mut Vec<u8>, start: usize) -> Option<usize> {
    let Some(rest) = src.get(from..) else {
        out.truncate(start);
        return None;
    };
    let Some(end) = memchr::memchr(b'"', rest) else {
        out.truncate(start);
        return None;
    };
    match base64_simd::STANDARD.decode_append(rest.get(..end).unwrap_or_default(), out) {
        Ok(()) => Some(from + end),
        Err(_) => {
            out.truncate(start);
            None
        }
    }
}
