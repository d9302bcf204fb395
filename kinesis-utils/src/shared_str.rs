//! [`SharedStr`]: an immutable string that shares a buffer with others.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, Range};
use std::sync::Arc;

/// An immutable UTF-8 string that may share one buffer with others; cheap to clone.
///
/// Origins of a decoded batch point into one buffer per batch instead of allocating a string
/// per record; cloning one is a reference-count increment, and reading one costs no UTF-8
/// check (the buffer is a `str`).
///
/// ```
/// use kinesis_utils::decode::SharedStr;
/// let s = SharedStr::from("4959");
/// assert_eq!(s, "4959");
/// assert_eq!(s.len(), 4);
/// assert_eq!(format!("{s}"), "4959");
/// ```
#[derive(Clone)]
pub struct SharedStr(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared {
        buf: Arc<String>,
        start: u32,
        end: u32,
    },
}

impl Default for SharedStr {
    fn default() -> Self {
        Self::from_static("")
    }
}

impl SharedStr {
    /// A copy of `bytes` if they are UTF-8.
    pub fn from_utf8(bytes: &[u8]) -> Result<Self, std::str::Utf8Error> {
        Ok(Self::from(std::str::from_utf8(bytes)?))
    }

    /// A string from a static literal, without allocating.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Repr::Static(s))
    }

    /// `buf[range]`, sharing `buf`; `None` when the range is out of bounds, not on char
    /// boundaries, or beyond 4 GiB.
    pub(crate) fn slice_of(buf: &Arc<String>, range: Range<usize>) -> Option<Self> {
        buf.get(range.clone())?;
        Some(Self(Repr::Shared {
            buf: Arc::clone(buf),
            start: u32::try_from(range.start).ok()?,
            end: u32::try_from(range.end).ok()?,
        }))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            // Checked at construction, so `get` cannot fail; only a boundary check, no UTF-8 scan.
            Repr::Shared { buf, start, end } => {
                buf.get(*start as usize..*end as usize).unwrap_or_default()
            }
        }
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SharedStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> Self {
        Self::from(s.to_owned())
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        let len = s.len();
        Self::slice_of(&Arc::new(s), 0..len).unwrap_or_default()
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.as_str().to_owned()
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        other == self
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        other == *self
    }
}

impl serde::Serialize for SharedStr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_utf8_and_compares_as_str() {
        assert!(SharedStr::from_utf8(b"\xff").is_err());
        let s = SharedStr::from_utf8("日本".as_bytes()).unwrap();
        assert_eq!(&*s, "日本");
        let (a, b) = (SharedStr::from("a"), SharedStr::from(String::from("b")));
        assert!(a < b);
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"日本\"");
    }
}

#[cfg(test)]
mod slice_tests {
    use super::*;

    #[test]
    fn slices_share_the_buffer_and_refuse_bad_ranges() {
        let buf = Arc::new(String::from("ab日本"));
        let s = SharedStr::slice_of(&buf, 2..5).unwrap();
        assert_eq!(s, "日");
        assert_eq!(Arc::strong_count(&buf), 2);
        assert!(SharedStr::slice_of(&buf, 2..4).is_none());
        assert!(SharedStr::slice_of(&buf, 0..99).is_none());
        assert_eq!(SharedStr::default(), "");
        assert_eq!(SharedStr::from_static("x"), SharedStr::from("x"));
    }
}
