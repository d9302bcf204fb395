//! MessagePack writing for the forward protocol: JSON transcoded straight to msgpack (no
//! intermediate `serde_json::Value`), EventTime, and the few headers messages need.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Appends an array header for `len` elements.
pub(crate) fn write_array_len(buf: &mut Vec<u8>, len: u32) {
    if len < 16 {
        buf.push(0x90 | len as u8);
    } else if len <= u32::from(u16::MAX) {
        buf.push(0xdc);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdd);
        buf.extend_from_slice(&len.to_be_bytes());
    }
}

/// Appends a map header for `len` pairs.
pub(crate) fn write_map_len(buf: &mut Vec<u8>, len: u32) {
    if len < 16 {
        buf.push(0x80 | len as u8);
    } else if len <= u32::from(u16::MAX) {
        buf.push(0xde);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdf);
        buf.extend_from_slice(&len.to_be_bytes());
    }
}

/// Appends a str (UTF-8). Lengths over `u32::MAX` cannot occur for records we accept.
pub(crate) fn write_str(buf: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        buf.push(0xa0 | len as u8);
    } else if len <= usize::from(u8::MAX) {
        buf.push(0xd9);
        buf.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        buf.push(0xda);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdb);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
    }
    buf.extend_from_slice(s.as_bytes());
}

/// Appends a bin header for `len` bytes.
pub(crate) fn write_bin_len(buf: &mut Vec<u8>, len: usize) {
    if len <= usize::from(u8::MAX) {
        buf.push(0xc4);
        buf.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        buf.push(0xc5);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xc6);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Appends an unsigned integer in its smallest form.
pub(crate) fn write_u64(buf: &mut Vec<u8>, v: u64) {
    if v < 128 {
        buf.push(v as u8);
    } else if v <= u64::from(u8::MAX) {
        buf.extend_from_slice(&[0xcc, v as u8]);
    } else if v <= u64::from(u16::MAX) {
        buf.push(0xcd);
        buf.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= u64::from(u32::MAX) {
        buf.push(0xce);
        buf.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        buf.push(0xcf);
        buf.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends a signed integer in its smallest form.
pub(crate) fn write_i64(buf: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        write_u64(buf, v as u64);
    } else if v >= -32 {
        buf.push(v as i8 as u8);
    } else if v >= i64::from(i8::MIN) {
        buf.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= i64::from(i16::MIN) {
        buf.push(0xd1);
        buf.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i64::from(i32::MIN) {
        buf.push(0xd2);
        buf.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        buf.push(0xd3);
        buf.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends the forward protocol's EventTime: ext type 0, 8 bytes, big-endian u32 seconds
/// and u32 nanoseconds. `None` when the time is outside what u32 seconds can carry
/// (before 1970 or after 2106).
pub(crate) fn write_event_time(buf: &mut Vec<u8>, time: DateTime<Utc>) -> Option<()> {
    let secs = u32::try_from(time.timestamp()).ok()?;
    // Leap-second nanos (>= 1e9) are folded into the last representable instant.
    let nanos = time.timestamp_subsec_nanos().min(999_999_999);
    buf.extend_from_slice(&[0xd7, 0x00]);
    buf.extend_from_slice(&secs.to_be_bytes());
    buf.extend_from_slice(&nanos.to_be_bytes());
    Some(())
}

/// Appends `json` transcoded to msgpack. Numbers keep their kind (u64, i64, f64), strings
/// stay UTF-8, objects become maps in source order. On error `buf` is restored.
pub fn json_to_msgpack(json: &[u8], buf: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let start = buf.len();
    let mut de = serde_json::Deserializer::from_slice(json);
    let result = Transcode { buf: &mut *buf }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

/// A serde seed that writes whatever it visits as msgpack.
struct Transcode<'b> {
    buf: &'b mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Room reserved for a container header whose length is not known yet (marker + u32).
const HEADER_ROOM: usize = 5;

/// Writes the final header of a container whose elements start at `start + HEADER_ROOM`,
/// moving the elements back when the header is shorter.
fn patch_header(buf: &mut Vec<u8>, start: usize, len: u32, map: bool) {
    let mut header = Vec::with_capacity(HEADER_ROOM);
    if map {
        write_map_len(&mut header, len);
    } else {
        write_array_len(&mut header, len);
    }
    let body = start + HEADER_ROOM;
    let shift = HEADER_ROOM - header.len();
    if shift > 0 {
        buf.copy_within(body.., body - shift);
        buf.truncate(buf.len() - shift);
    }
    buf[start..start + header.len()].copy_from_slice(&header);
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.buf.push(if v { 0xc3 } else { 0xc2 });
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        write_i64(self.buf, v);
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        write_u64(self.buf, v);
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.buf.push(0xcb);
        self.buf.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        write_str(self.buf, v);
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.buf.push(0xc0);
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; HEADER_ROOM]);
        let mut len: u32 = 0;
        while seq
            .next_element_seed(Transcode {
                buf: &mut *self.buf,
            })?
            .is_some()
        {
            len = len
                .checked_add(1)
                .ok_or_else(|| de::Error::custom("array too long for msgpack"))?;
        }
        patch_header(self.buf, start, len, false);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; HEADER_ROOM]);
        let mut len: u32 = 0;
        while map
            .next_key_seed(Transcode {
                buf: &mut *self.buf,
            })?
            .is_some()
        {
            map.next_value_seed(Transcode {
                buf: &mut *self.buf,
            })?;
            len = len
                .checked_add(1)
                .ok_or_else(|| de::Error::custom("object too large for msgpack"))?;
        }
        patch_header(self.buf, start, len, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// (what serde_json reads from the JSON text, what msgpack decodes to).
    fn round_trip(v: &Value) -> (Value, Value) {
        let json = serde_json::to_vec(v).unwrap();
        let mut buf = Vec::new();
        json_to_msgpack(&json, &mut buf).unwrap();
        (
            serde_json::from_slice(&json).unwrap(),
            rmp_serde::from_slice(&buf).unwrap(),
        )
    }

    #[test]
    fn nested_and_non_ascii() {
        let v: Value = serde_json::from_str(
            r#"{"msg":"日本語 ✓","n":[1,-1,-200,70000,18446744073709551615,-9223372036854775808,1.5],
                "o":{"a":null,"b":true,"c":false,"d":{"e":[]}},"long":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        )
        .unwrap();
        let (expected, got) = round_trip(&v);
        assert_eq!(got, expected);
        assert_eq!(got, v);
    }

    #[test]
    fn invalid_json_leaves_buffer_unchanged() {
        let mut buf = vec![1, 2, 3];
        assert!(json_to_msgpack(b"{\"a\":[1,", &mut buf).is_err());
        assert!(json_to_msgpack(b"{} x", &mut buf).is_err());
        assert_eq!(buf, [1, 2, 3]);
    }

    #[test]
    fn event_time_layout() {
        let t = DateTime::from_timestamp(1_584_187_200, 123_456_789).unwrap();
        let mut buf = Vec::new();
        write_event_time(&mut buf, t).unwrap();
        assert_eq!(buf[..2], [0xd7, 0x00]);
        assert_eq!(buf[2..6], 1_584_187_200u32.to_be_bytes());
        assert_eq!(buf[6..10], 123_456_789u32.to_be_bytes());
        assert!(write_event_time(&mut buf, DateTime::from_timestamp(-1, 0).unwrap()).is_none());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 20, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..20).prop_map(Value::Array),
                prop::collection::btree_map(".*", inner, 0..20)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn json_to_msgpack_round_trips(v in json_value()) {
            let (expected, got) = round_trip(&v);
            prop_assert_eq!(got, expected);
        }
    }
}
