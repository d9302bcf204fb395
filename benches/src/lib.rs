//! Deterministic generators of realistic Lambda Kinesis batches, for the benches and tests.
//!
//! Every generator is seeded, so a batch is byte-for-byte the same on every run and machine.
//! Batches are produced as the raw Lambda event JSON the runtime hands to a function.

use std::io::Write;

/// The user guide's Rust code blocks, compiled and run as doctests.
#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../../docs/architecture.md")]
    pub struct Architecture;
    #[doc = include_str!("../../docs/decoding.md")]
    pub struct Decoding;
    #[doc = include_str!("../../docs/routing.md")]
    pub struct Routing;
    #[doc = include_str!("../../docs/lambda.md")]
    pub struct Lambda;
    #[doc = include_str!("../../docs/destinations.md")]
    pub struct Destinations;
    #[doc = include_str!("../../docs/schema.md")]
    pub struct Schema;
    #[doc = include_str!("../../docs/eden.md")]
    pub struct Eden;
    #[doc = include_str!("../../docs/testing.md")]
    pub struct Testing;
    #[doc = include_str!("../../docs/troubleshooting.md")]
    pub struct Troubleshooting;
}

use base64::Engine as _;
use kinesis_utils::kpl::{Aggregator, UserRecord};

/// A small deterministic PRNG (SplitMix64); good enough for test data, stable forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

/// How many generated log lines are faulty, as fractions of all lines.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultMix {
    /// Lines without `log_type`.
    pub missing_log_type: f64,
    /// Lines without `time`.
    pub missing_time: f64,
    /// Lines that are not JSON.
    pub non_json: f64,
}

impl FaultMix {
    /// No faults.
    pub const NONE: FaultMix = FaultMix {
        missing_log_type: 0.0,
        missing_time: 0.0,
        non_json: 0.0,
    };
    /// The pipeline bench mix: ~1 % missing `log_type`, ~1 % missing `time`, ~0.5 % non-JSON.
    pub const PIPELINE: FaultMix = FaultMix {
        missing_log_type: 0.01,
        missing_time: 0.01,
        non_json: 0.005,
    };
}

const LOG_TYPES: [&str; 6] = ["app", "access", "audit", "batch", "payment", "search"];
const WORDS: [&str; 12] = [
    "request",
    "served",
    "user",
    "cache",
    "miss",
    "upstream",
    "latency",
    "ok",
    "retry",
    "token",
    "session",
    "日本語",
];

/// One log line of 300 to 600 bytes with `log_type`, `log_id` and `time`.
pub fn log_line(rng: &mut Rng, n: usize, faults: FaultMix) -> String {
    if rng.chance(faults.non_json) {
        return format!(
            "plain text line {n} that is not JSON {}",
            "x".repeat(rng.range(250, 500))
        );
    }
    let target = rng.range(300, 601);
    let mut s = String::with_capacity(target + 64);
    s.push('{');
    if !rng.chance(faults.missing_log_type) {
        s.push_str(&format!(
            "\"log_type\":\"{}\",",
            LOG_TYPES[rng.range(0, LOG_TYPES.len())]
        ));
    }
    s.push_str(&format!(
        "\"log_id\":\"{:016x}{:016x}\",",
        rng.next_u64(),
        n as u64
    ));
    if !rng.chance(faults.missing_time) {
        let secs = rng.range(0, 86_400);
        s.push_str(&format!(
            "\"time\":\"2020-03-14T{:02}:{:02}:{:02}.{:06}+09:00\",",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            rng.range(0, 1_000_000)
        ));
    }
    s.push_str(&format!(
        "\"status\":{},\"bytes\":{},\"path\":\"/api/v1/items/{}\",\"message\":\"",
        [200, 201, 304, 404, 500][rng.range(0, 5)],
        rng.range(0, 100_000),
        rng.range(0, 10_000)
    ));
    while s.len() < target.saturating_sub(2) {
        s.push_str(WORDS[rng.range(0, WORDS.len())]);
        s.push(' ');
    }
    s.push_str("\"}");
    s
}

/// A generated Lambda event and what is in it.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The raw Lambda event JSON.
    pub event_json: Vec<u8>,
    /// Kinesis records in the event.
    pub records: usize,
    /// Log lines (payloads) a decoder should produce.
    pub payloads: usize,
    /// Total bytes of those log lines.
    pub payload_bytes: usize,
    /// Decompressed size of the gzip records (CloudWatch Logs JSON), 0 for other batches.
    pub decompressed_bytes: usize,
    /// The log lines themselves, in order.
    pub lines: Vec<String>,
}

fn event_json(datas: &[Vec<u8>], partition_keys: &[String]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::with_capacity(datas.iter().map(|d| d.len() * 4 / 3 + 400).sum());
    out.extend_from_slice(b"{\"Records\":[");
    for (i, data) in datas.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let seq = format!(
            "4959033827149025660855969253836157109592157598913658{:04}",
            i
        );
        let _ = write!(
            out,
            "{{\"kinesis\":{{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"{}\",\"sequenceNumber\":\"{seq}\",\"data\":\"{}\",\"approximateArrivalTimestamp\":1584154800.123}},\"eventSource\":\"aws:kinesis\",\"eventVersion\":\"1.0\",\"eventID\":\"shardId-000000000000:{seq}\",\"eventName\":\"aws:kinesis:record\",\"invokeIdentityArn\":\"arn:aws:iam::123456789012:role/lambda\",\"awsRegion\":\"ap-northeast-1\",\"eventSourceARN\":\"arn:aws:kinesis:ap-northeast-1:123456789012:stream/logs\"}}",
            partition_keys[i],
            b64.encode(data)
        );
    }
    out.extend_from_slice(b"]}");
    out
}

/// `n` records, one plain JSON log line each.
pub fn plain_batch(n: usize, faults: FaultMix, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let lines: Vec<String> = (0..n).map(|i| log_line(&mut rng, i, faults)).collect();
    let datas: Vec<Vec<u8>> = lines.iter().map(|l| l.clone().into_bytes()).collect();
    let pks: Vec<String> = (0..n).map(|i| format!("pk-{}", i % 64)).collect();
    Batch {
        event_json: event_json(&datas, &pks),
        records: n,
        payloads: n,
        payload_bytes: lines.iter().map(String::len).sum(),
        decompressed_bytes: 0,
        lines,
    }
}

/// `records` gzip CloudWatch Logs subscription records of `events` log events each.
pub fn cwl_batch(records: usize, events: usize, faults: FaultMix, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let mut lines = Vec::with_capacity(records * events);
    let mut datas = Vec::with_capacity(records);
    let mut decompressed_bytes = 0;
    for r in 0..records {
        let evs: Vec<serde_json::Value> = (0..events)
            .map(|e| {
                let line = log_line(&mut rng, r * events + e, faults);
                let v = serde_json::json!({
                    "id": format!("3595{:040}", r * events + e),
                    "timestamp": 1_584_154_800_000u64 + (r * events + e) as u64,
                    "message": line,
                });
                lines.push(line);
                v
            })
            .collect();
        let json = serde_json::to_vec(&serde_json::json!({
            "messageType": "DATA_MESSAGE",
            "owner": "123456789012",
            "logGroup": "/ecs/app",
            "logStream": format!("app/web/{r}"),
            "subscriptionFilters": ["to-kinesis"],
            "logEvents": evs,
        }))
        .unwrap_or_default();
        decompressed_bytes += json.len();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        let _ = enc.write_all(&json);
        datas.push(enc.finish().unwrap_or_default());
    }
    let pks: Vec<String> = (0..records).map(|i| format!("/ecs/app-{i}")).collect();
    Batch {
        event_json: event_json(&datas, &pks),
        records,
        payloads: lines.len(),
        payload_bytes: lines.iter().map(String::len).sum(),
        decompressed_bytes,
        lines,
    }
}

/// `records` KPL aggregated records of `per_record` user records each.
pub fn kpl_batch(records: usize, per_record: usize, faults: FaultMix, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let mut lines = Vec::with_capacity(records * per_record);
    let mut datas = Vec::with_capacity(records);
    let mut pks = Vec::with_capacity(records);
    for r in 0..records {
        let mut agg = Aggregator::new(usize::MAX);
        for u in 0..per_record {
            let line = log_line(&mut rng, r * per_record + u, faults);
            let _ = agg.add(UserRecord::new(
                line.clone().into_bytes(),
                format!("pk-{}", u % 8),
            ));
            lines.push(line);
        }
        if let Some(a) = agg.flush() {
            datas.push(a.data.to_vec());
            pks.push(a.partition_key);
        }
    }
    Batch {
        event_json: event_json(&datas, &pks),
        records,
        payloads: lines.len(),
        payload_bytes: lines.iter().map(String::len).sum(),
        decompressed_bytes: 0,
        lines,
    }
}

/// The three standard batches of the benches: 10k plain records, 200 CWL records of 50
/// events, 500 KPL records of 20 user records.
pub fn standard_batches(faults: FaultMix) -> [(&'static str, Batch); 3] {
    [
        ("plain_10k", plain_batch(10_000, faults, 1)),
        ("cwl_200x50", cwl_batch(200, 50, faults, 2)),
        ("kpl_500x20", kpl_batch(500, 20, faults, 3)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinesis_utils::Decoder;

    #[test]
    fn batches_decode_to_their_lines() {
        for (name, batch) in standard_batches(FaultMix::PIPELINE) {
            let decoded = Decoder::default()
                .decode_event_json(&batch.event_json)
                .unwrap();
            let got: Vec<&[u8]> = decoded.payloads().map(|p| &p.data[..]).collect();
            let want: Vec<&[u8]> = batch.lines.iter().map(|l| l.as_bytes()).collect();
            assert_eq!(got, want, "{name}");
            assert_eq!(decoded.payload_bytes(), batch.payload_bytes);
            assert!(
                batch.lines.iter().all(|l| (250..=620).contains(&l.len())),
                "{name}"
            );
        }
    }

    /// The three publishable crates: name, manifest, front page (`lib.rs`), README.
    const CRATES: [(&str, &str, &str, &str); 3] = [
        (
            "kinesis-utils",
            include_str!("../../kinesis-utils/Cargo.toml"),
            include_str!("../../kinesis-utils/src/lib.rs"),
            include_str!("../../kinesis-utils/README.md"),
        ),
        (
            "logging-core",
            include_str!("../../logging-core/Cargo.toml"),
            include_str!("../../logging-core/src/lib.rs"),
            include_str!("../../logging-core/README.md"),
        ),
        (
            "eden-core",
            include_str!("../../eden-core/Cargo.toml"),
            include_str!("../../eden-core/src/lib.rs"),
            include_str!("../../eden-core/README.md"),
        ),
    ];

    /// `(name, on by default)` for every feature of a manifest, `default` left out.
    fn features(manifest: &str) -> Vec<(String, bool)> {
        let section = manifest
            .split("\n[features]\n")
            .nth(1)
            .and_then(|rest| rest.split("\n[").next())
            .unwrap_or_default();
        let mut defaults = Vec::new();
        let mut names = Vec::new();
        for line in section.lines() {
            let Some((name, value)) = line.split_once(" = ") else {
                continue;
            };
            if name == "default" {
                defaults = value
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .map(|f| f.trim().trim_matches('"').to_owned())
                    .collect();
            } else if !name.starts_with('#') {
                names.push(name.to_owned());
            }
        }
        names
            .into_iter()
            .map(|n| {
                let on = defaults.contains(&n);
                (n, on)
            })
            .collect()
    }

    /// Every cargo feature of a publishable crate is in the feature table of its front page and
    /// in its README's features, with the right default.
    #[test]
    fn every_feature_is_documented_on_the_crate_front_page() {
        for (krate, manifest, lib, readme) in CRATES {
            let features = features(manifest);
            assert!(!features.is_empty(), "{krate}: no [features] found");
            for (name, on) in features {
                let default = if on { "yes" } else { "no" };
                let row = format!("| `{name}` | {default} |");
                assert!(
                    lib.contains(&format!("//! {row}")),
                    "{krate}: feature `{name}` (default: {default}) is not in the front page's table"
                );
                // The README: a table row as above, or a bullet that says "(default)" for
                // the default features only.
                let code = format!("`{name}`");
                let documented = readme.lines().any(|l| {
                    l.starts_with(&row)
                        || ((l.starts_with(&format!("- {code}"))
                            || l.starts_with(&format!("* {code}")))
                            && l.contains(&format!("{code} (default)")) == on)
                });
                assert!(
                    documented,
                    "{krate}: feature `{name}` (default: {default}) is not in the README's features"
                );
            }
        }
    }

    /// The front pages and READMEs show the `[dependencies]` line of the current version, and
    /// link nothing outside the crate's package by a relative path (such links break on
    /// crates.io and docs.rs).
    #[test]
    fn crate_docs_show_the_current_version_and_stand_alone() {
        let version = include_str!("../../Cargo.toml")
            .lines()
            .find_map(|l| l.strip_prefix("version = \""))
            .and_then(|v| v.split('"').next())
            .unwrap();
        let major_minor: Vec<&str> = version.split('.').take(2).collect();
        let major_minor = major_minor.join(".");
        for (krate, _, lib, readme) in CRATES {
            let line = format!("{krate} = \"{major_minor}\"");
            for (what, text) in [("lib.rs", lib), ("README.md", readme)] {
                assert!(text.contains(&line), "{krate} {what}: no `{line}`");
                assert!(
                    !text.contains("](../") && !text.contains("](./../"),
                    "{krate} {what}: a relative link leaves the package"
                );
            }
            let front: String = lib
                .lines()
                .take_while(|l| l.starts_with("//!") || l.is_empty())
                .collect();
            assert!(
                !front.contains("SPEC") && !readme.contains("SPEC"),
                "{krate}: the front page or README cites SPEC, which users do not have"
            );
        }
    }

    /// No doc comment of a publishable crate (sources and examples) cites SPEC or links
    /// outside the package by a relative path: docs.rs and crates.io show them without the
    /// repository.
    #[test]
    fn rustdoc_stands_alone() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for (krate, ..) in CRATES {
            for dir in ["src", "examples"] {
                let dir = root.join(krate).join(dir);
                if dir.is_dir() {
                    walk(&dir, &mut files);
                }
            }
        }
        assert!(files.len() > 30, "found only {} files", files.len());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let doc = line.trim_start();
                if !(doc.starts_with("//!") || doc.starts_with("///")) {
                    continue;
                }
                assert!(
                    !doc.contains("SPEC") && !doc.contains("](../") && !doc.contains("../shared"),
                    "{}:{}: a doc comment cites SPEC or links outside the package: {doc}",
                    file.display(),
                    n + 1
                );
            }
        }
    }

    /// Every guide page with Rust code is registered in [`guide`], so its code is compiled and
    /// run and cannot rot.
    #[test]
    fn every_guide_page_with_rust_code_is_compiled() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "md") {
                    out.push(path);
                }
            }
        }
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        let mut pages = Vec::new();
        walk(&docs, &mut pages);
        let registry = include_str!("lib.rs");
        for page in pages {
            let text = std::fs::read_to_string(&page).unwrap();
            // Fences rustdoc compiles: `rust`, or `rust,...` without `ignore`.
            let compiled = text.lines().any(|l| {
                l.trim_start().strip_prefix("```rust").is_some_and(|attrs| {
                    attrs.is_empty() || (attrs.starts_with(',') && !attrs.contains("ignore"))
                })
            });
            if !compiled {
                continue;
            }
            let name = page
                .strip_prefix(&docs)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            assert!(
                registry.contains(&format!("include_str!(\"../../docs/{name}\")")),
                "docs/{name} has Rust code but is not registered in benches/src/lib.rs's guide"
            );
        }
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(
            plain_batch(50, FaultMix::PIPELINE, 7).event_json,
            plain_batch(50, FaultMix::PIPELINE, 7).event_json
        );
    }
}
