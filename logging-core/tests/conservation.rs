//! Conservation: random batches (valid records, missing fields, bad timestamps, non-JSON,
//! non-objects, CloudWatch Logs data and control, KPL aggregates, corrupt gzip, bad base64)
//! through the pipeline with random destination faults (transient put failures, partial
//! PutRecords failures, permanent rejections, dead-letter failures, Elasticsearch item
//! statuses 400/429/503 and whole-request 503s on `MemorySearch`, Fluent forward connections
//! closed, unacknowledged or wrongly acknowledged by a local server). Checks that every payload
//! is counted exactly once, that every routed payload is in its destination byte for byte
//! (Elasticsearch: line breaks between tokens become spaces; Fluent: the record as its JSON
//! value, or byte for byte as `message` text) or rejected into the dead letter or covered by
//! the reported sequence number, and that dead-letter lines decode back to the original bytes.
//! `CONSERVATION_CASES` overrides the number of cases (default 10,000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use kinesis_utils::PutRecordsConfig;
use kinesis_utils::decode::cmp_sequence_numbers;
use kinesis_utils::kpl::{UserRecord, aggregate_all, deaggregate};
use kinesis_utils::memory::{EntryFault, FaultyKinesis, InMemoryKinesis};
use logging_core::dead_letter::{DeadLetter, DeadLetterConfig, Envelope};
use logging_core::destination::{DeliveryReport, Destination, RetryPolicy};
use logging_core::fluent::{FluentClient, FluentConfig, FluentDestination, RecordFormat};
use logging_core::forward::{ForwardConfig, KinesisForward};
use logging_core::naming::ndjson_line;
use logging_core::routing::{RoutedBatch, TypeFilter};
use logging_core::search::{
    BulkConfig, DocIdMode, MemorySearch, SearchApi, SearchDestination, SearchDestinationConfig,
    SearchError,
};
use logging_core::store::{FaultyStore, MemoryStore};
use logging_core::{ArchiveConfig, Pipeline, Report, S3Archive, SchemaConfig};
use proptest::prelude::*;
use support::fluent_server::{Fault, FluentServer, Received};

const TYPES: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Debug, Clone)]
enum PayloadSpec {
    Valid {
        t: usize,
        id: Option<u16>,
        time: usize,
        pretty: bool,
        extra: String,
    },
    MissingType,
    MissingTime {
        t: usize,
    },
    BadTime {
        t: usize,
        which: usize,
    },
    NonJson(Vec<u8>),
    NonObject(usize),
    UnsafeType,
}

#[derive(Debug, Clone)]
enum RecordSpec {
    Plain(PayloadSpec),
    Cwl(Vec<PayloadSpec>),
    CwlControl,
    CwlUnknownType,
    Kpl(Vec<PayloadSpec>),
    CorruptGzip,
    BadBase64,
}

const TIMES: [&str; 6] = [
    r#""2020-03-14T12:00:00Z""#,
    r#""2020-03-14 21:00:00.123456+09:00""#,
    r#""2020-02-29""#,
    r#""14/Mar/2020:12:00:00 +0900""#,
    "1584187200",
    "1584187200123",
];
const BAD_TIMES: [&str; 4] = [r#""yesterday""#, "true", "{}", r#""2020-13-01""#];
const NON_OBJECTS: [&str; 4] = ["[1,2]", r#""str""#, "12", "null"];

fn payload_spec() -> impl Strategy<Value = PayloadSpec> {
    prop_oneof![
        8 => (0..4usize, proptest::option::of(any::<u16>()), 0..TIMES.len(), prop::bool::weighted(0.1), "[a-z é\\\\\"]{0,12}")
            .prop_map(|(t, id, time, pretty, extra)| PayloadSpec::Valid { t, id, time, pretty, extra }),
        1 => Just(PayloadSpec::MissingType),
        1 => (0..4usize).prop_map(|t| PayloadSpec::MissingTime { t }),
        1 => (0..4usize, 0..BAD_TIMES.len()).prop_map(|(t, which)| PayloadSpec::BadTime { t, which }),
        1 => prop::collection::vec(any::<u8>(), 0..12).prop_map(PayloadSpec::NonJson),
        1 => (0..NON_OBJECTS.len()).prop_map(PayloadSpec::NonObject),
        1 => Just(PayloadSpec::UnsafeType),
    ]
}

fn record_spec() -> impl Strategy<Value = RecordSpec> {
    prop_oneof![
        6 => payload_spec().prop_map(RecordSpec::Plain),
        2 => prop::collection::vec(payload_spec(), 0..4).prop_map(RecordSpec::Cwl),
        1 => Just(RecordSpec::CwlControl),
        1 => Just(RecordSpec::CwlUnknownType),
        2 => prop::collection::vec(payload_spec(), 1..4).prop_map(RecordSpec::Kpl),
        1 => Just(RecordSpec::CorruptGzip),
        1 => Just(RecordSpec::BadBase64),
    ]
}

/// What a payload must become.
#[derive(Debug, Clone, PartialEq)]
enum Class {
    Valid(&'static str),
    Fail(&'static str),
    Control,
}

#[derive(Debug, Clone)]
struct Expected {
    seq: String,
    bytes: Vec<u8>,
    class: Class,
}

fn render(p: &PayloadSpec, n: usize) -> (Vec<u8>, Class) {
    let s = |t: String| t.into_bytes();
    match p {
        PayloadSpec::Valid {
            t,
            id,
            time,
            pretty,
            extra,
        } => {
            let extra = serde_json::to_string(extra).unwrap();
            let id = id
                .map(|i| format!(r#","log_id":"id{i}-{n}""#))
                .unwrap_or_default();
            let body = if *pretty {
                format!(
                    "{{\n  \"log_type\": \"{}\",\n  \"time\": {}{id},\n  \"x\": {extra}\n}}\n",
                    TYPES[*t], TIMES[*time]
                )
            } else {
                format!(
                    r#"{{"log_type":"{}","time":{}{id},"n":{n},"x":{extra}}}"#,
                    TYPES[*t], TIMES[*time]
                )
            };
            (s(body), Class::Valid(TYPES[*t]))
        }
        PayloadSpec::MissingType => (
            s(format!(r#"{{"time":{},"n":{n}}}"#, TIMES[0])),
            Class::Fail("unknown_type"),
        ),
        PayloadSpec::MissingTime { t } => (
            s(format!(r#"{{"log_type":"{}","n":{n}}}"#, TYPES[*t])),
            Class::Fail("no_timestamp"),
        ),
        PayloadSpec::BadTime { t, which } => (
            s(format!(
                r#"{{"log_type":"{}","time":{},"n":{n}}}"#,
                TYPES[*t], BAD_TIMES[*which]
            )),
            Class::Fail("bad_timestamp"),
        ),
        PayloadSpec::NonJson(bytes) => {
            let mut b = b"<not json>".to_vec();
            b.extend_from_slice(bytes);
            (b, Class::Fail("unknown_type"))
        }
        PayloadSpec::NonObject(i) => (s(NON_OBJECTS[*i].to_owned()), Class::Fail("unknown_type")),
        PayloadSpec::UnsafeType => (
            s(format!(
                r#"{{"log_type":"../x","time":{},"n":{n}}}"#,
                TIMES[0]
            )),
            Class::Fail("unknown_type"),
        ),
    }
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Builds the Lambda event JSON and the expectations.
fn build(specs: &[RecordSpec]) -> (Vec<u8>, Vec<Expected>) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut records = Vec::new();
    let mut expected = Vec::new();
    let mut n = 0;
    for (i, spec) in specs.iter().enumerate() {
        // Sequence numbers of varying length: numeric, not lexicographic, order matters.
        let seq = (7 + i * 13).to_string();
        let mut expect = |bytes: Vec<u8>, class: Class| {
            expected.push(Expected {
                seq: seq.clone(),
                bytes,
                class,
            });
        };
        let cwl = |events: &[(Vec<u8>, Class)], kind: &str| {
            let events: Vec<_> = events
                .iter()
                .enumerate()
                .map(|(k, (b, _))| serde_json::json!({"id": format!("{i}{k:04}"), "timestamp": 1_584_187_200_000i64 + k as i64, "message": String::from_utf8_lossy(b)}))
                .collect();
            gzip(&serde_json::to_vec(&serde_json::json!({"messageType": kind, "owner": "1", "logGroup": "g", "logStream": "s", "subscriptionFilters": ["f"], "logEvents": events})).unwrap())
        };
        let data_text: String = match spec {
            RecordSpec::Plain(p) => {
                n += 1;
                let (b, c) = render(p, n);
                expect(b.clone(), c);
                b64.encode(b)
            }
            RecordSpec::Cwl(ps) => {
                let events: Vec<_> = ps
                    .iter()
                    .map(|p| {
                        n += 1;
                        let (b, c) = render(p, n);
                        // CloudWatch Logs messages are text.
                        (String::from_utf8_lossy(&b).into_owned().into_bytes(), c)
                    })
                    .collect();
                if events.is_empty() {
                    expect(Vec::new(), Class::Control);
                }
                for (b, c) in &events {
                    expect(b.clone(), c.clone());
                }
                b64.encode(cwl(&events, "DATA_MESSAGE"))
            }
            RecordSpec::CwlControl => {
                expect(Vec::new(), Class::Control);
                b64.encode(cwl(&[], "CONTROL_MESSAGE"))
            }
            RecordSpec::CwlUnknownType => {
                let data = cwl(&[], "SURPRISE_MESSAGE");
                expect(gunzip(&data), Class::Fail("undecodable"));
                b64.encode(data)
            }
            RecordSpec::Kpl(ps) => {
                let users: Vec<_> = ps
                    .iter()
                    .map(|p| {
                        n += 1;
                        let (b, c) = render(p, n);
                        expect(b.clone(), c);
                        UserRecord::new(b, format!("pk{n}"))
                    })
                    .collect();
                let aggs = aggregate_all(users, 1024 * 1024).unwrap();
                assert_eq!(aggs.len(), 1);
                b64.encode(&aggs[0].data)
            }
            RecordSpec::CorruptGzip => {
                let data = b"\x1f\x8b\x08\x00corrupt gzip".to_vec();
                expect(data.clone(), Class::Fail("undecodable"));
                b64.encode(data)
            }
            RecordSpec::BadBase64 => {
                let text = "@@not base64@@".to_owned();
                expect(text.clone().into_bytes(), Class::Fail("undecodable"));
                text
            }
        };
        records.push(serde_json::json!({
            "kinesis": {"partitionKey": format!("pk-{i}"), "sequenceNumber": seq, "data": data_text,
                        "approximateArrivalTimestamp": 1584187200.0, "kinesisSchemaVersion": "1.0"},
            "eventSource": "aws:kinesis",
            "eventID": format!("shardId-000000000000:{seq}"),
        }));
    }
    (
        serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap(),
        expected,
    )
}

fn fnv(b: &[u8], seed: u64) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325 ^ seed, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A destination that rejects some records permanently and fails others transiently.
struct Picky {
    seed: u64,
    reject: bool,
    fail: bool,
    stored: Mutex<Vec<Vec<u8>>>,
}

#[async_trait]
impl Destination for Picky {
    fn name(&self) -> &str {
        "picky"
    }
    async fn deliver(&self, batch: &RoutedBatch<'_>) -> DeliveryReport {
        let mut report = DeliveryReport::new(batch);
        for (slot, _, r) in batch.iter() {
            let h = fnv(r.data, self.seed);
            if self.reject && h.is_multiple_of(4) {
                report.reject(slot, "mapper_parsing_exception: picky");
            } else if self.fail && h % 7 == 1 {
                report.fail(slot, "503 from picky");
            } else {
                self.stored.lock().unwrap().push(r.data.to_vec());
                report.deliver(slot);
            }
        }
        report
    }
}

#[derive(Debug, Clone)]
struct Faults {
    seed: u64,
    archive: u8,
    archive_type: usize,
    kinesis_always: bool,
    kinesis_first: bool,
    picky_reject: bool,
    picky_fail: bool,
    dead_letter: u8,
    archive_filter: bool,
    aggregate: bool,
    /// 0: no scripted item statuses; 1: 400 / 429 / 503 once; 2: also 503 on every attempt
    /// and a whole-request 503.
    es: u8,
    es_max_actions: usize,
    fluent_faults: Vec<Fault>,
    fluent_text: bool,
}

const FLUENT_FAULTS: [Fault; 4] = [
    Fault::NoAck,
    Fault::DropMidChunk,
    Fault::WrongAck,
    Fault::AckThenClose,
];

fn faults() -> impl Strategy<Value = Faults> {
    (
        any::<u64>(),
        0..3u8,
        0..4usize,
        any::<[bool; 6]>(),
        0..3u8,
        prop::bool::weighted(0.25),
        (
            0..3u8,
            1..6usize,
            prop::collection::vec(0..FLUENT_FAULTS.len(), 0..4),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                seed,
                archive,
                archive_type,
                b,
                dead_letter,
                none,
                (es, es_max_actions, ff, text),
            )| {
                let on = !none;
                Faults {
                    seed,
                    archive: if on { archive } else { 0 },
                    archive_type,
                    kinesis_always: on && b[0],
                    kinesis_first: on && b[1],
                    picky_reject: on && b[2],
                    picky_fail: on && b[3],
                    dead_letter: if on { dead_letter } else { 0 },
                    archive_filter: b[4],
                    aggregate: b[5],
                    es: if on { es } else { 0 },
                    es_max_actions,
                    fluent_faults: if on {
                        ff.into_iter().map(|i| FLUENT_FAULTS[i]).collect()
                    } else {
                        Vec::new()
                    },
                    fluent_text: text,
                }
            },
        )
}

impl Faults {
    fn none(&self) -> bool {
        self.archive != 1
            && !self.kinesis_always
            && !self.kinesis_first
            && !self.picky_fail
            && self.dead_letter == 0
            && self.es != 2
            && self.fluent_faults.is_empty()
    }
}

fn multiset<I: IntoIterator<Item = Vec<u8>>>(items: I) -> HashMap<Vec<u8>, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

fn take(m: &mut HashMap<Vec<u8>, usize>, k: &[u8]) -> bool {
    match m.get_mut(k) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    }
}

/// Which of [`TIMES`] a valid payload carries.
fn time_of(bytes: &[u8]) -> usize {
    let has = |t: &str| bytes.windows(t.len()).any(|w| w == t.as_bytes());
    // 5 before 4: the epoch seconds are a prefix of the epoch milliseconds.
    [5, 0, 1, 2, 3, 4]
        .into_iter()
        .find(|&i| has(TIMES[i]))
        .unwrap()
}

/// Epoch seconds of [`TIMES`].
const TIME_SECS: [u32; 6] = [
    1_584_187_200,
    1_584_187_200,
    1_582_934_400,
    1_584_154_800,
    1_584_187_200,
    1_584_187_200,
];

/// The daily index of a valid payload of type `t` (UTC dates).
fn es_index(t: &str, bytes: &[u8]) -> String {
    let date = if time_of(bytes) == 2 {
        "20200229"
    } else {
        "20200314"
    };
    format!("logs-{t}-{date}")
}

/// `_source` as the bulk body carries it: line breaks between tokens become spaces.
fn single_line(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
        .collect()
}

/// Whether the server received payload `bytes` of type `t` (at least once: resent chunks may
/// arrive twice); marks every matching event as accounted for.
fn fluent_received(
    received: &[Received],
    used: &mut [bool],
    t: &str,
    bytes: &[u8],
    text: bool,
) -> bool {
    let tag = format!("{t}.conservation");
    let secs = TIME_SECS[time_of(bytes)];
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let mut found = false;
    for (r, u) in received.iter().zip(used.iter_mut()) {
        let same = if text {
            r.record
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::as_bytes)
                == Some(bytes)
        } else {
            r.record == value
        };
        if same && r.tag == tag && r.secs == secs {
            *u = true;
            found = true;
        }
    }
    found
}

/// One local forward server for all cases, and one client per record format; the clients
/// keep their connection between cases, as a warm Lambda does.
struct FluentHarness {
    server: FluentServer,
    object: FluentClient,
    text: FluentClient,
}

impl FluentHarness {
    async fn start() -> Self {
        let server = FluentServer::start(None).await;
        let client = |record_format| {
            FluentClient::new(FluentConfig {
                host: "127.0.0.1".into(),
                port: server.port,
                record_format,
                ack_timeout_ms: 2_000,
                max_attempts: 3,
                initial_backoff_ms: 0,
                max_backoff_ms: 0,
                max_chunk_events: 3,
                ..FluentConfig::default()
            })
            .unwrap()
        };
        let (object, text) = (
            client(RecordFormat::Object),
            client(RecordFormat::MessageText),
        );
        Self {
            server,
            object,
            text,
        }
    }
}

async fn run_case(
    specs: Vec<RecordSpec>,
    f: Faults,
    stats: &Mutex<Stats>,
    fluent: &FluentHarness,
) -> Result<(), TestCaseError> {
    let (event, expected) = build(&specs);
    let schema = SchemaConfig::default();
    let no_wait = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        ..RetryPolicy::default()
    };

    let archive_store = Arc::new(FaultyStore::new(MemoryStore::new()));
    match f.archive {
        1 => archive_store.fail_puts(format!("{}/", TYPES[f.archive_type]), u32::MAX),
        2 => archive_store.fail_puts(format!("{}/", TYPES[f.archive_type]), 2),
        _ => {}
    }
    let archive = S3Archive::builder(
        archive_store.clone(),
        ArchiveConfig {
            retry: no_wait,
            ..ArchiveConfig::default()
        },
    );
    let archive_filter = if f.archive_filter {
        TypeFilter::only(["a", "b", "c"])
    } else {
        TypeFilter::all()
    };

    let kinesis = Arc::new(FaultyKinesis::new(InMemoryKinesis::new()));
    let stream = kinesis.inner().create_stream("fwd", 2).unwrap();
    let (always, first, seed) = (f.kinesis_always, f.kinesis_first, f.seed);
    kinesis.fail_entries(move |call| {
        let h = fnv(&call.entry.data, seed);
        if always && h.is_multiple_of(5) {
            Some(EntryFault::throttled())
        } else if first && h.is_multiple_of(3) && call.attempt == 1 {
            Some(EntryFault::internal_failure())
        } else {
            None
        }
    });
    let forward = KinesisForward::new(
        kinesis.clone(),
        ForwardConfig {
            stream: "fwd".into(),
            aggregate: f.aggregate,
            put: PutRecordsConfig::default()
                .with_backoff(Duration::ZERO, Duration::ZERO)
                .with_max_attempts(3),
            ..ForwardConfig::default()
        },
    )
    .unwrap();
    let picky = Arc::new(Picky {
        seed: f.seed,
        reject: f.picky_reject,
        fail: f.picky_fail,
        stored: Mutex::default(),
    });

    let search = Arc::new(MemorySearch::new());
    if f.es > 0 {
        for e in &expected {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&e.bytes) else {
                continue;
            };
            let Some(id) = v.get("log_id").and_then(|v| v.as_str()) else {
                continue;
            };
            let statuses: &[u16] = match fnv(id.as_bytes(), f.seed) % 8 {
                0 => &[400],
                1 => &[429],
                2 => &[503],
                3 if f.es == 2 => &[503, 503, 503],
                _ => &[],
            };
            search.script_item(id, statuses.iter().copied());
        }
        if f.es == 2 {
            search.push_failure(SearchError::Status {
                operation: "bulk",
                resource: "_bulk".into(),
                status: 503,
                body: "scripted".into(),
            });
        }
    }
    let es = SearchDestination::builder(
        search.clone(),
        SearchDestinationConfig {
            index_prefix: "logs".into(),
            doc_id: DocIdMode::LogId,
            index_dates: logging_core::KeyDates::RecordOffset,
            bulk: BulkConfig {
                max_actions: f.es_max_actions,
                max_attempts: 3,
                initial_backoff_ms: 0,
                max_backoff_ms: 0,
                ..BulkConfig::default()
            },
        },
    )
    .unwrap();
    {
        let mut st = fluent.server.state();
        st.events.clear();
        st.faults = f.fluent_faults.iter().copied().collect();
    }
    let client = if f.fluent_text {
        fluent.text.clone()
    } else {
        fluent.object.clone()
    };
    let fluent_dest = FluentDestination::new(client, "conservation");
    let fluent_name = fluent_dest.name().to_owned();

    let dl_store = Arc::new(FaultyStore::new(MemoryStore::new()));
    match f.dead_letter {
        1 => dl_store.fail_puts("/rejected/", u32::MAX),
        2 => dl_store.fail_puts("/unknown_type/", u32::MAX),
        _ => {}
    }
    let dead_letter = DeadLetter::builder(
        dl_store.clone(),
        DeadLetterConfig {
            prefix: "failed".into(),
            retry: no_wait,
            ..DeadLetterConfig::default()
        },
    );
    let filters = [
        archive_filter,
        TypeFilter::only(["a", "b"]),
        TypeFilter::only(["b", "c"]),
        TypeFilter::only(["a", "c"]),
        TypeFilter::only(["b", "c"]),
    ];
    let pipeline = Pipeline::builder(schema)
        .route(filters[0].clone(), archive)
        .route(filters[1].clone(), forward)
        .route(filters[2].clone(), picky.clone())
        .route(filters[3].clone(), es)
        .route(filters[4].clone(), fluent_dest)
        .dead_letter(dead_letter)
        .build();

    let out = pipeline.process(&event).await.unwrap();
    let r: &Report = &out.report;

    // 1. Every payload counted exactly once.
    prop_assert_eq!(r.items, expected.len());
    prop_assert_eq!(r.outcome_total(), r.items, "{:?}", r);
    prop_assert_eq!(r.records, specs.len());
    let count = |c: &Class| expected.iter().filter(|e| &e.class == c).count();
    prop_assert_eq!(r.control, count(&Class::Control));
    let routable = |t: &str| filters.iter().any(|f| f.accepts(t));
    let filtered = expected
        .iter()
        .filter(|e| matches!(e.class, Class::Valid(t) if !routable(t)))
        .count();
    prop_assert_eq!(r.filtered, filtered);
    for (reason, got) in [
        ("unknown_type", r.invalid.unknown_type),
        ("no_timestamp", r.invalid.no_timestamp),
        ("bad_timestamp", r.invalid.bad_timestamp),
        ("undecodable", r.invalid.undecodable),
    ] {
        prop_assert!(got <= count(&Class::Fail(reason)), "{reason}: {got}");
        if f.none() {
            prop_assert_eq!(got, count(&Class::Fail(reason)), "{}", reason);
        }
    }

    // 2. The Lambda answer: the lowest sequence number of a retry payload, none without faults.
    let bif = r.batch_item_failure.clone();
    prop_assert_eq!(r.retry > 0, bif.is_some());
    prop_assert_eq!(
        out.response.batch_item_failures.len(),
        usize::from(bif.is_some())
    );
    if f.none() {
        prop_assert_eq!(r.retry, 0, "{:?}", r);
        prop_assert!(bif.is_none());
    }
    let covered = |seq: &str| {
        bif.as_deref()
            .is_some_and(|b| cmp_sequence_numbers(seq, b).is_ge())
    };

    {
        let mut st = stats.lock().unwrap();
        st.payloads += r.items;
        st.retry_cases += usize::from(r.retry > 0);
        st.rejected += r.rejected;
        st.filtered += r.filtered;
        st.failed += r.invalid.total();
        st.control += r.control;
        st.routed += r.delivered;
        st.dead_letter_failures += r.dead_letter.retry;
    }

    // What each destination holds.
    let mut archived = HashMap::new();
    for obj in archive_store.inner().snapshot().values() {
        for line in gunzip(&obj.body).split_inclusive(|&b| b == b'\n') {
            *archived.entry(line.to_vec()).or_insert(0usize) += 1;
        }
    }
    let mut forwarded = multiset(
        kinesis
            .inner()
            .records(&stream)
            .unwrap()
            .into_iter()
            .flat_map(|rec| {
                if f.aggregate {
                    deaggregate(&rec.data)
                        .unwrap()
                        .into_iter()
                        .map(|u| u.data.to_vec())
                        .collect::<Vec<_>>()
                } else {
                    vec![rec.data.to_vec()]
                }
            }),
    );
    let mut picked = multiset(picky.stored.lock().unwrap().clone());
    let mut indexed: HashMap<(String, Vec<u8>), usize> = HashMap::new();
    // The scripted whole-request failure is still queued when no bulk request was made.
    let indices = match search.list_indices().await {
        Ok(names) => names,
        Err(_) => search.list_indices().await.unwrap(),
    };
    for index in indices {
        for (_, source) in search.documents(&index) {
            *indexed.entry((index.clone(), source)).or_insert(0) += 1;
        }
    }
    let received: Vec<Received> = fluent.server.state().events.clone();
    let mut received_used = vec![false; received.len()];
    {
        let mut st = stats.lock().unwrap();
        st.indexed += indexed.values().sum::<usize>();
        st.fluent_events += received.len();
    }
    let mut dl_failed: HashMap<(String, Vec<u8>), usize> = HashMap::new();
    let mut dl_rejected: HashMap<(String, Vec<u8>), usize> = HashMap::new();
    for (key, obj) in dl_store.inner().snapshot() {
        for line in gunzip(&obj.body)
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let env = Envelope::parse(line).unwrap();
            // 3. Dead-letter lines decode back to the original bytes.
            let bytes = env.payload_bytes().unwrap();
            prop_assert!(key.contains(&format!("/{}/", env.reason)), "{key} {env:?}");
            if env.reason == "rejected" {
                *dl_rejected
                    .entry((env.destination.clone().unwrap(), bytes))
                    .or_insert(0) += 1;
            } else {
                *dl_failed.entry((env.reason.clone(), bytes)).or_insert(0) += 1;
            }
        }
    }
    let take2 =
        |m: &mut HashMap<(String, Vec<u8>), usize>, k: (String, Vec<u8>)| match m.get_mut(&k) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        };

    // 4. Every routed payload is at each of its destinations (or rejected into the dead
    //    letter), byte for byte, unless covered by the replay.
    let names = [
        "archive:faulty(memory)",
        "kinesis:fwd",
        "picky",
        "search:logs",
        &fluent_name,
    ];
    for e in &expected {
        match &e.class {
            Class::Valid(t) => {
                for (route, filter) in filters.iter().enumerate() {
                    if !filter.accepts(t) {
                        continue;
                    }
                    let found = match route {
                        0 => take(&mut archived, &ndjson_line(&e.bytes)),
                        1 => take(&mut forwarded, &e.bytes),
                        2 => take(&mut picked, &e.bytes),
                        3 => take2(&mut indexed, (es_index(t, &e.bytes), single_line(&e.bytes))),
                        _ => fluent_received(
                            &received,
                            &mut received_used,
                            t,
                            &e.bytes,
                            f.fluent_text,
                        ),
                    } || take2(
                        &mut dl_rejected,
                        (names[route].to_owned(), e.bytes.clone()),
                    );
                    prop_assert!(
                        found || covered(&e.seq),
                        "payload {:?} missing at route {route} (bif {bif:?}) {r:?}",
                        String::from_utf8_lossy(&e.bytes)
                    );
                }
            }
            Class::Fail(reason) => {
                let found = take2(&mut dl_failed, ((*reason).to_owned(), e.bytes.clone()));
                prop_assert!(
                    found || covered(&e.seq),
                    "failed payload {:?} ({reason}) not dead-lettered (bif {bif:?}) {r:?}",
                    String::from_utf8_lossy(&e.bytes)
                );
            }
            Class::Control => {}
        }
    }
    // Nothing was delivered that was not sent, and nothing twice.
    prop_assert!(archived.values().all(|&n| n == 0), "extra archive lines");
    prop_assert!(
        forwarded.values().all(|&n| n == 0),
        "extra forwarded records"
    );
    prop_assert!(picked.values().all(|&n| n == 0), "extra picky records");
    prop_assert!(indexed.values().all(|&n| n == 0), "extra documents");
    prop_assert!(
        received_used.iter().all(|&u| u),
        "fluent events that were never sent"
    );
    prop_assert!(dl_failed.values().all(|&n| n == 0), "extra dead letters");
    prop_assert!(dl_rejected.values().all(|&n| n == 0), "extra rejections");
    Ok(())
}

/// Totals over all cases, to show the faults and outcomes were exercised.
#[derive(Debug, Default)]
struct Stats {
    payloads: usize,
    routed: usize,
    filtered: usize,
    control: usize,
    failed: usize,
    rejected: usize,
    retry_cases: usize,
    dead_letter_failures: usize,
    indexed: usize,
    fluent_events: usize,
}

fn cases() -> u32 {
    std::env::var("CONSERVATION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

#[test]
fn every_payload_is_conserved() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let stats = Mutex::new(Stats::default());
    let fluent = rt.block_on(FluentHarness::start());
    proptest!(config, |(specs in prop::collection::vec(record_spec(), 0..10), f in faults())| {
        rt.block_on(run_case(specs, f, &stats, &fluent))?;
    });
    let stats = stats.into_inner().unwrap();
    eprintln!(
        "conservation: {} cases in {:.1?}: {stats:?}",
        cases(),
        started.elapsed()
    );
    assert!(stats.rejected > 0 && stats.retry_cases > 0 && stats.dead_letter_failures > 0);
    assert!(stats.filtered > 0 && stats.control > 0 && stats.failed > 0 && stats.routed > 0);
    assert!(stats.indexed > 0 && stats.fluent_events > 0);
}
