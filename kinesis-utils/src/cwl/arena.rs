//! The arena form of a subscription envelope, which both parsers build: the fast scanner
//! (`scan`) and the serde_json path (the seeds below, for everything the scanner gives up
//! on). An escaped message is unescaped into one buffer shared by the whole envelope.

use std::borrow::Cow;

/// Where an [`ArenaLogEvent`]'s message bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageRef<'a> {
    /// Borrowed from the envelope (the message had no JSON escapes).
    Borrowed(&'a [u8]),
    /// Unescaped into the caller's buffer at this range.
    Arena(std::ops::Range<usize>),
}

/// A `DATA_MESSAGE` event whose message, when it had to be unescaped, was written into one
/// buffer shared by the whole envelope instead of a string of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArenaLogEvent<'a> {
    /// The event id.
    pub id: Cow<'a, str>,
    /// Ingestion timestamp, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The message bytes.
    pub message: MessageRef<'a>,
}

pub(crate) struct ArenaEnvelope<'a> {
    pub(crate) message_type: Option<Cow<'a, str>>,
    pub(crate) owner: Cow<'a, str>,
    pub(crate) log_group: Cow<'a, str>,
    pub(crate) log_stream: Cow<'a, str>,
    pub(crate) log_events: Option<Vec<ArenaLogEvent<'a>>>,
}

impl ArenaEnvelope<'_> {
    /// No field seen yet: the defaults both parsers start from.
    pub(crate) fn empty() -> Self {
        ArenaEnvelope {
            message_type: None,
            owner: Cow::Borrowed(""),
            log_group: Cow::Borrowed(""),
            log_stream: Cow::Borrowed(""),
            log_events: None,
        }
    }
}

pub(crate) struct ArenaEnvelopeSeed<'s> {
    pub(crate) arena: &'s mut Vec<u8>,
}

impl<'de> serde::de::DeserializeSeed<'de> for ArenaEnvelopeSeed<'_> {
    type Value = ArenaEnvelope<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ArenaEnvelopeSeed<'_> {
    type Value = ArenaEnvelope<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a CloudWatch Logs subscription envelope")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut env = ArenaEnvelope::empty();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "messageType" => env.message_type = Some(map.next_value()?),
                "owner" => env.owner = map.next_value()?,
                "logGroup" => env.log_group = map.next_value()?,
                "logStream" => env.log_stream = map.next_value()?,
                "logEvents" => {
                    env.log_events = Some(map.next_value_seed(EventsSeed {
                        arena: &mut *self.arena,
                    })?)
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(env)
    }
}

struct EventsSeed<'s> {
    arena: &'s mut Vec<u8>,
}

impl<'de> serde::de::DeserializeSeed<'de> for EventsSeed<'_> {
    type Value = Vec<ArenaLogEvent<'de>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for EventsSeed<'_> {
    type Value = Vec<ArenaLogEvent<'de>>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of log events")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(64));
        while let Some(e) = seq.next_element_seed(EventSeed {
            arena: &mut *self.arena,
        })? {
            events.push(e);
        }
        Ok(events)
    }
}

struct EventSeed<'s> {
    arena: &'s mut Vec<u8>,
}

impl<'de> serde::de::DeserializeSeed<'de> for EventSeed<'_> {
    type Value = ArenaLogEvent<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for EventSeed<'_> {
    type Value = ArenaLogEvent<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a log event object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut id, mut timestamp, mut message) = (Cow::Borrowed(""), 0, None);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "id" => id = map.next_value()?,
                "timestamp" => timestamp = map.next_value()?,
                "message" => {
                    message = Some(map.next_value_seed(MessageSeed {
                        arena: &mut *self.arena,
                    })?)
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let message = message.ok_or_else(|| serde::de::Error::missing_field("message"))?;
        Ok(ArenaLogEvent {
            id,
            timestamp,
            message,
        })
    }
}

struct MessageSeed<'s> {
    arena: &'s mut Vec<u8>,
}

impl<'de> serde::de::DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = MessageRef<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> serde::de::Visitor<'de> for MessageSeed<'_> {
    type Value = MessageRef<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        Ok(MessageRef::Borrowed(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(MessageRef::Borrowed(v.as_bytes()))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
        let start = self.arena.len();
        self.arena.extend_from_slice(v);
        Ok(MessageRef::Arena(start..self.arena.len()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        let start = self.arena.len();
        self.arena.extend_from_slice(v.as_bytes());
        Ok(MessageRef::Arena(start..self.arena.len()))
    }
}
