//! The JSON escapes that stand for one byte, shared by every unescaper (the portable one and
//! the vector tables built from it at compile time).

/// What the byte after a backslash stands for, for the escapes other than `\u`: `\"`, `\\`,
/// `\/`, `\b`, `\f`, `\n`, `\r` and `\t`. `None` for every other byte.
pub(crate) const fn escaped_byte(c: u8) -> Option<u8> {
    Some(match c {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        _ => return None,
    })
}
