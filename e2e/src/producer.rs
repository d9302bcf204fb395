//! Producers: a deterministic data set of Kinesis records as applications, the KPL and
//! CloudWatch Logs subscriptions write them, bad ones included, and the bookkeeping of where
//! each log line and each bad payload must end up.
//!
//! Every good log line is unique by content (its `log_id`), so outputs can be matched line by
//! line. Each bad payload knows the reason and code the dead letter must give it, and the
//! bytes it must keep.

use std::collections::HashMap;
use std::io::Write as _;

use base64::Engine as _;
use chrono::{DateTime, Duration as Span, FixedOffset, TimeZone as _, Utc};
use kinesis_utils::kpl::{Aggregator, UserRecord};

use crate::esm::{Targets, cmp_seq};

/// Which producer wrote a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// One JSON log line per record.
    Plain,
    /// A KPL aggregated record.
    Kpl,
    /// A gzip CloudWatch Logs subscription message.
    Cwl,
    /// A record built to fail.
    Bad,
}

/// How a bad payload is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BadKind {
    /// Plain text, not JSON.
    NotJson,
    /// JSON without `log_type`.
    NoLogType,
    /// A `time` no parser reads.
    BadTimestamp,
    /// No `time` at all.
    NoTimestamp,
    /// gzip magic followed by garbage.
    CorruptGzip,
    /// A CloudWatch Logs message with an unknown `messageType`.
    UnknownCwlType,
    /// A KPL aggregate whose MD5 trailer does not match: one plain (binary) payload.
    KplBadDigest,
    /// A CloudWatch Logs event whose message is not JSON.
    CwlMessageNotJson,
    /// A record whose `data` reaches the function as text that is not base64 (the mapping
    /// simulator writes it unencoded; Lambda itself always encodes).
    BadBase64,
}

impl BadKind {
    /// `(reason, code)` the dead letter must record.
    pub fn expected(self) -> (&'static str, &'static str) {
        match self {
            BadKind::NotJson | BadKind::KplBadDigest | BadKind::CwlMessageNotJson => {
                ("unknown_type", "not_json")
            }
            BadKind::NoLogType => ("unknown_type", "missing"),
            BadKind::BadTimestamp => ("bad_timestamp", "unparseable"),
            BadKind::NoTimestamp => ("no_timestamp", "missing"),
            BadKind::CorruptGzip => ("undecodable", "corrupt_gzip"),
            BadKind::UnknownCwlType => ("undecodable", "unknown_cwl_message_type"),
            BadKind::BadBase64 => ("undecodable", "bad_base64"),
        }
    }
}

/// The prefix of records the mapping simulator sends unencoded (see [`BadKind::BadBase64`]).
pub const UNENCODED_PREFIX: &[u8] = b"%%e2e-unencoded%% ";

/// A good log line and where it was written.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// The line, byte for byte.
    pub text: String,
    /// Its `log_type`.
    pub log_type: String,
    /// Index of its record in [`Dataset::records`].
    pub record: usize,
    /// Position inside the record (KPL user record or CloudWatch Logs event), 0 for plain.
    pub sub: usize,
}

/// A payload that must end in the dead letter.
#[derive(Debug, Clone)]
pub struct BadPayload {
    /// How it is bad.
    pub kind: BadKind,
    /// The bytes the dead letter must keep.
    pub payload: Vec<u8>,
    /// Index of its record in [`Dataset::records`].
    pub record: usize,
}

/// One Kinesis record to put.
#[derive(Debug, Clone)]
pub struct ProducedRecord {
    /// What wrote it.
    pub kind: RecordKind,
    /// Its data.
    pub data: Vec<u8>,
    /// Its partition key.
    pub partition_key: String,
    /// Set once put.
    pub shard_id: Option<String>,
    /// Set once put.
    pub sequence_number: Option<String>,
}

/// How much of what to produce.
#[derive(Debug, Clone)]
pub struct DatasetSpec {
    /// Seeds everything.
    pub seed: u64,
    /// Plain one-line records.
    pub plain: usize,
    /// KPL aggregates, each of 5 to 20 lines.
    pub kpl: usize,
    /// CloudWatch Logs data messages, each of 3 to 12 events.
    pub cwl: usize,
    /// Of each bad kind (bad base64 aside).
    pub bad_each: usize,
    /// Records with data that is not base64 in the event.
    pub bad_base64: usize,
    /// Text placed in chosen good lines (as `"e2e_marker"`), one line each, for the fault
    /// proxy's triggers.
    pub markers: Vec<String>,
}

/// The produced records and what must come of them.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Every record, in put order.
    pub records: Vec<ProducedRecord>,
    /// Every good log line.
    pub lines: Vec<LogLine>,
    /// Every bad payload.
    pub bad: Vec<BadPayload>,
    /// CloudWatch Logs control messages (no output expected).
    pub control: usize,
}

const TYPES: [&str; 4] = ["web", "app", "audit", "batch_job"];

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 14, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

struct Gen {
    rng: fastrand::Rng,
    n: usize,
}

impl Gen {
    /// The `time` field, in one of the formats the schema reads.
    fn time_value(&mut self, at: DateTime<Utc>) -> String {
        match (self.rng.usize(..6), FixedOffset::east_opt(9 * 3600)) {
            (0, _) | (1, None) => format!("\"{}\"", at.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
            (1, Some(tokyo)) => format!(
                "\"{}\"",
                at.with_timezone(&tokyo).format("%Y-%m-%dT%H:%M:%S%:z")
            ),
            (2, _) => at.timestamp().to_string(),
            (3, _) => at.timestamp_millis().to_string(),
            (4, _) => format!("\"{}\"", at.format("%Y-%m-%d %H:%M:%S")),
            _ => format!("\"{}\"", at.format("%a, %d %b %Y %H:%M:%S +0000")),
        }
    }

    fn line(&mut self, marker: Option<&str>) -> (String, String) {
        self.n += 1;
        let n = self.n;
        let log_type = TYPES[self.rng.usize(..TYPES.len())].to_owned();
        let at = base_time() + Span::seconds(self.rng.i64(0..3 * 86_400));
        let time = self.time_value(at);
        let marker = marker
            .map(|m| format!(",\"e2e_marker\":\"{m}\""))
            .unwrap_or_default();
        let text = format!(
            r#"{{"log_type":"{log_type}","log_id":"e2e-{n:06}","time":{time},"msg":"caf\u00e9 \"{n}\" ✓","n":{n},"ratio":{}.50{marker}}}"#,
            n % 7
        );
        (text, log_type)
    }
}

impl Dataset {
    /// The data set as a function sees it that delivers the bad payloads of `kinds` like good
    /// lines, as the original modules did (kinesis-to-s3 archives a record whose timestamp it
    /// cannot parse with the others of its type; kinesis-forward forwards records with or
    /// without a timestamp): those payloads move from [`Dataset::bad`] to [`Dataset::lines`].
    pub fn delivering(&self, kinds: &[BadKind]) -> Dataset {
        let mut out = self.clone();
        let (delivered, bad): (Vec<BadPayload>, Vec<BadPayload>) =
            out.bad.into_iter().partition(|b| kinds.contains(&b.kind));
        out.bad = bad;
        for b in delivered {
            let text = String::from_utf8_lossy(&b.payload).into_owned();
            let log_type = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["log_type"].as_str().map(str::to_owned))
                .unwrap_or_default();
            out.lines.push(LogLine {
                text,
                log_type,
                record: b.record,
                sub: 0,
            });
        }
        out
    }

    /// Generates the data set of `spec`, records shuffled so kinds interleave.
    pub fn generate(spec: &DatasetSpec) -> Self {
        let mut g = Gen {
            rng: fastrand::Rng::with_seed(spec.seed),
            n: 0,
        };
        // Build per-record "recipes" first, then shuffle, then materialise.
        enum Recipe {
            Plain(Option<String>),
            Kpl(usize),
            Cwl(usize, bool),
            Control,
            Bad(BadKind),
        }
        let mut recipes = Vec::new();
        let mut markers = spec.markers.iter().cloned();
        for _ in 0..spec.plain {
            recipes.push(Recipe::Plain(None));
        }
        for _ in 0..spec.kpl {
            recipes.push(Recipe::Kpl(g.rng.usize(5..=20)));
        }
        for i in 0..spec.cwl {
            recipes.push(Recipe::Cwl(g.rng.usize(3..=12), i < spec.bad_each));
        }
        recipes.push(Recipe::Control);
        for kind in [
            BadKind::NotJson,
            BadKind::NoLogType,
            BadKind::BadTimestamp,
            BadKind::NoTimestamp,
            BadKind::CorruptGzip,
            BadKind::UnknownCwlType,
            BadKind::KplBadDigest,
        ] {
            for _ in 0..spec.bad_each {
                recipes.push(Recipe::Bad(kind));
            }
        }
        for _ in 0..spec.bad_base64 {
            recipes.push(Recipe::Bad(BadKind::BadBase64));
        }
        g.rng.shuffle(&mut recipes);
        // Markers go to plain records in the middle of the data set.
        let plain_slots: Vec<usize> = recipes
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, Recipe::Plain(_)))
            .map(|(i, _)| i)
            .collect();
        for (k, slot) in plain_slots
            .iter()
            .skip(plain_slots.len() / 3)
            .step_by(7)
            .enumerate()
        {
            let Some(m) = markers.next() else { break };
            let _ = k;
            if let Some(Recipe::Plain(marker)) = recipes.get_mut(*slot) {
                *marker = Some(m);
            }
        }

        let mut ds = Dataset::default();
        for recipe in recipes {
            let record = ds.records.len();
            let pk = format!("pk-{:05}", g.rng.u32(..100_000));
            let (kind, data) = match recipe {
                Recipe::Plain(marker) => {
                    let (text, log_type) = g.line(marker.as_deref());
                    let data = text.clone().into_bytes();
                    ds.lines.push(LogLine {
                        text,
                        log_type,
                        record,
                        sub: 0,
                    });
                    (RecordKind::Plain, data)
                }
                Recipe::Kpl(count) => {
                    let mut agg = Aggregator::new(1024 * 1024);
                    let mut out = None;
                    for sub in 0..count {
                        let (text, log_type) = g.line(None);
                        let user =
                            UserRecord::new(text.clone().into_bytes(), format!("{pk}-{sub}"));
                        // 20 short lines never fill 1 MiB.
                        if let Ok(Some(done)) = agg.add(user) {
                            out = Some(done);
                        }
                        ds.lines.push(LogLine {
                            text,
                            log_type,
                            record,
                            sub,
                        });
                    }
                    let data = out
                        .or_else(|| agg.flush())
                        .map(|a| a.data.to_vec())
                        .unwrap_or_default();
                    (RecordKind::Kpl, data)
                }
                Recipe::Cwl(count, with_bad) => {
                    let mut events = Vec::new();
                    let bad_at = if with_bad {
                        Some(g.rng.usize(..count))
                    } else {
                        None
                    };
                    for sub in 0..count {
                        let ts = base_time().timestamp_millis() + (g.n as i64) * 1000;
                        if bad_at == Some(sub) {
                            let message = format!("plain text event {}", g.n);
                            ds.bad.push(BadPayload {
                                kind: BadKind::CwlMessageNotJson,
                                payload: message.clone().into_bytes(),
                                record,
                            });
                            events.push(serde_json::json!({"id": format!("{:056}", ts), "timestamp": ts, "message": message}));
                            continue;
                        }
                        let (text, log_type) = g.line(None);
                        events.push(serde_json::json!({"id": format!("3{:055}", g.n), "timestamp": ts, "message": text}));
                        ds.lines.push(LogLine {
                            text,
                            log_type,
                            record,
                            sub,
                        });
                    }
                    let message = serde_json::json!({
                        "messageType": "DATA_MESSAGE",
                        "owner": "123456789012",
                        "logGroup": "/aws/ecs/e2e",
                        "logStream": format!("web/{pk}"),
                        "subscriptionFilters": ["e2e-to-kinesis"],
                        "logEvents": events,
                    });
                    (RecordKind::Cwl, gzip(message.to_string().as_bytes()))
                }
                Recipe::Control => {
                    ds.control += 1;
                    let message = serde_json::json!({
                        "messageType": "CONTROL_MESSAGE",
                        "owner": "CloudwatchLogs",
                        "logGroup": "",
                        "logStream": "",
                        "subscriptionFilters": [],
                        "logEvents": [{"id": "", "timestamp": base_time().timestamp_millis(),
                            "message": "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}],
                    });
                    (RecordKind::Cwl, gzip(message.to_string().as_bytes()))
                }
                Recipe::Bad(kind) => {
                    g.n += 1;
                    let n = g.n;
                    let (data, payload) = match kind {
                        BadKind::NotJson => {
                            let d = format!("GET /index.html?n={n} HTTP/1.1").into_bytes();
                            (d.clone(), d)
                        }
                        BadKind::NoLogType => {
                            let d = format!(r#"{{"log_id":"e2e-{n:06}","time":"2024-03-14T12:00:00Z","msg":"no type"}}"#).into_bytes();
                            (d.clone(), d)
                        }
                        BadKind::BadTimestamp => {
                            let d = format!(r#"{{"log_type":"web","log_id":"e2e-{n:06}","time":"the day after tomorrow {n}"}}"#).into_bytes();
                            (d.clone(), d)
                        }
                        BadKind::NoTimestamp => {
                            let d = format!(
                                r#"{{"log_type":"app","log_id":"e2e-{n:06}","msg":"when?"}}"#
                            )
                            .into_bytes();
                            (d.clone(), d)
                        }
                        BadKind::CorruptGzip => {
                            let mut d = vec![0x1f, 0x8b, 0x08, 0x00];
                            d.extend_from_slice(format!("not really gzip {n}").as_bytes());
                            (d.clone(), d)
                        }
                        BadKind::UnknownCwlType => {
                            let plain = serde_json::json!({"messageType": "SURPRISE_MESSAGE", "owner": "123456789012",
                                "logGroup": "/g", "logStream": format!("s{n}"), "logEvents": []}).to_string().into_bytes();
                            (gzip(&plain), plain)
                        }
                        BadKind::KplBadDigest => {
                            let mut agg = Aggregator::new(1024 * 1024);
                            let _ = agg.add(UserRecord::new(
                                format!("{{\"log_type\":\"web\",\"n\":{n}}}").into_bytes(),
                                "k",
                            ));
                            let mut d = agg.flush().map(|a| a.data.to_vec()).unwrap_or_default();
                            if let Some(last) = d.last_mut() {
                                *last ^= 0xff;
                            }
                            (d.clone(), d)
                        }
                        BadKind::BadBase64 => {
                            let mut d = UNENCODED_PREFIX.to_vec();
                            d.extend_from_slice(format!("record {n}").as_bytes());
                            (d.clone(), d)
                        }
                        BadKind::CwlMessageNotJson => (Vec::new(), Vec::new()),
                    };
                    ds.bad.push(BadPayload {
                        kind,
                        payload,
                        record,
                    });
                    (RecordKind::Bad, data)
                }
            };
            ds.records.push(ProducedRecord {
                kind,
                data,
                partition_key: pk,
                shard_id: None,
                sequence_number: None,
            });
        }
        ds
    }

    /// Puts records `range` to `stream` (directly on moto) with PutRecords, 500 at a time, and
    /// notes each record's shard and sequence number.
    pub async fn put(
        &mut self,
        client: &aws_sdk_kinesis::Client,
        stream: &str,
        range: std::ops::Range<usize>,
    ) -> Result<(), String> {
        use aws_sdk_kinesis::primitives::Blob;
        use aws_sdk_kinesis::types::PutRecordsRequestEntry;
        let indices: Vec<usize> = range.collect();
        for chunk in indices.chunks(500) {
            let mut pending: Vec<usize> = chunk.to_vec();
            for _attempt in 0..5 {
                let entries = pending
                    .iter()
                    .filter_map(|&i| self.records.get(i))
                    .map(|r| {
                        PutRecordsRequestEntry::builder()
                            .data(Blob::new(r.data.clone()))
                            .partition_key(&r.partition_key)
                            .build()
                            .map_err(|e| e.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let out = client
                    .put_records()
                    .stream_name(stream)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .map_err(|e| format!("PutRecords to {stream}: {e:?}"))?;
                let mut retry = Vec::new();
                for (&i, result) in pending.iter().zip(out.records()) {
                    match (result.shard_id(), result.sequence_number()) {
                        (Some(shard), Some(seq)) => {
                            if let Some(r) = self.records.get_mut(i) {
                                r.shard_id = Some(shard.to_owned());
                                r.sequence_number = Some(seq.to_owned());
                            }
                        }
                        _ => retry.push(i),
                    }
                }
                if retry.is_empty() {
                    break;
                }
                pending = retry;
            }
        }
        Ok(())
    }

    /// The last sequence number written to each shard.
    pub fn targets(&self) -> Targets {
        let mut out: HashMap<String, String> = HashMap::new();
        for r in &self.records {
            if let (Some(shard), Some(seq)) = (&r.shard_id, &r.sequence_number) {
                let e = out.entry(shard.clone()).or_insert_with(|| seq.clone());
                if cmp_seq(seq, e).is_gt() {
                    *e = seq.clone();
                }
            }
        }
        out
    }

    /// `(shard, sequence number)` of record `i`, once put.
    pub fn position(&self, record: usize) -> Option<(&str, &str)> {
        let r = self.records.get(record)?;
        Some((r.shard_id.as_deref()?, r.sequence_number.as_deref()?))
    }

    /// The data of record `i` as base64, for reports.
    pub fn data_base64(&self, record: usize) -> String {
        self.records
            .get(record)
            .map(|r| base64::engine::general_purpose::STANDARD.encode(&r.data))
            .unwrap_or_default()
    }
}
