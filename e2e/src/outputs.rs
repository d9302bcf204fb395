//! Reading back what the functions wrote (S3 objects, dead-letter envelopes, records of the
//! forward stream) and checking it against the data set and the mapping's log. Every check
//! adds readable problems to a list instead of stopping at the first, so one failing run
//! shows everything that went wrong.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;

use bytes::Bytes;
use logging_core::dead_letter::Envelope;

use crate::esm::{BatchOutcome, MappingLog, cmp_seq};
use crate::producer::{Dataset, RecordKind};

/// One object as stored (latest version), gunzipped when it is gzip.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// Its key.
    pub key: String,
    /// Its content.
    pub content: Vec<u8>,
    /// How many versions the key has (more than one: it was overwritten).
    pub versions: usize,
}

impl StoredObject {
    /// Its lines, without the final newline.
    pub fn lines(&self) -> Vec<&[u8]> {
        let mut lines: Vec<&[u8]> = self.content.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }
}

/// Every object under `prefix` in `bucket`, with its version count.
pub async fn read_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<StoredObject>, String> {
    let mut versions: HashMap<String, usize> = HashMap::new();
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| format!("ListObjectVersions {bucket}/{prefix}: {e:?}"))?;
        for v in page.versions() {
            *versions
                .entry(v.key().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| format!("ListObjectsV2 {bucket}/{prefix}: {e:?}"))?;
        for o in page.contents() {
            let key = o.key().unwrap_or_default().to_owned();
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| format!("GetObject {bucket}/{key}: {e:?}"))?
                .body
                .collect()
                .await
                .map_err(|e| format!("reading {bucket}/{key}: {e:?}"))?
                .into_bytes();
            let content = if body.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                flate2::read::MultiGzDecoder::new(&body[..])
                    .read_to_end(&mut plain)
                    .map_err(|e| format!("gunzip {bucket}/{key}: {e}"))?;
                plain
            } else {
                body.to_vec()
            };
            out.push(StoredObject {
                versions: versions.get(&key).copied().unwrap_or(1),
                key,
                content,
            });
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

/// One dead-letter line.
#[derive(Debug, Clone)]
pub struct DeadLetterLine {
    /// The object holding it.
    pub key: String,
    /// `reason` of the envelope.
    pub reason: String,
    /// `code` of the envelope.
    pub code: String,
    /// The payload bytes kept.
    pub payload: Vec<u8>,
}

/// The envelopes of dead-letter objects; a line that is not an envelope is a problem.
pub fn dead_letter_lines(
    objects: &[StoredObject],
    problems: &mut Vec<String>,
) -> Vec<DeadLetterLine> {
    let mut out = Vec::new();
    for o in objects {
        for line in o.lines() {
            match Envelope::parse(line) {
                Ok(env) => match env.payload_bytes() {
                    Ok(payload) => out.push(DeadLetterLine {
                        key: o.key.clone(),
                        reason: env.reason.clone(),
                        code: env.code.clone(),
                        payload,
                    }),
                    Err(e) => problems.push(format!(
                        "dead letter {}: envelope without payload: {e}",
                        o.key
                    )),
                },
                Err(e) => problems.push(format!(
                    "dead letter {}: not an envelope ({e}): {}",
                    o.key,
                    String::from_utf8_lossy(line)
                )),
            }
        }
    }
    out
}

/// Every user record of a stream (KPL aggregates expanded), read from TRIM_HORIZON.
pub async fn read_stream(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Result<Vec<Vec<u8>>, String> {
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| format!("ListShards {stream}: {e:?}"))?;
    let mut out = Vec::new();
    for shard in shards.shards() {
        let it = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| format!("GetShardIterator {stream}: {e:?}"))?;
        let mut next = it.shard_iterator().map(str::to_owned);
        while let Some(current) = next.take() {
            let page = kinesis
                .get_records()
                .shard_iterator(current)
                .limit(10_000)
                .send()
                .await
                .map_err(|e| format!("GetRecords {stream}: {e:?}"))?;
            if page.records().is_empty() {
                break;
            }
            for r in page.records() {
                let data = Bytes::copy_from_slice(r.data().as_ref());
                match kinesis_utils::kpl::deaggregate_data(&data) {
                    Some(users) => out.extend(users.into_iter().map(|u| u.to_vec())),
                    None => out.push(data.to_vec()),
                }
            }
            next = page.next_shard_iterator().map(str::to_owned);
        }
    }
    Ok(out)
}

/// Where each good line sits: `(shard, sequence number, position in the record)`.
fn line_positions(ds: &Dataset) -> HashMap<&[u8], (String, String, usize, &str)> {
    ds.lines
        .iter()
        .filter_map(|l| {
            let (shard, seq) = ds.position(l.record)?;
            Some((
                l.text.as_bytes(),
                (shard.to_owned(), seq.to_owned(), l.sub, l.log_type.as_str()),
            ))
        })
        .collect()
}

/// A payload for a report: text as it is, other bytes escaped; at most 200 characters.
fn show(b: &[u8]) -> String {
    let s = match std::str::from_utf8(b) {
        Ok(text) => text.to_owned(),
        Err(_) => b.escape_ascii().to_string(),
    };
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

/// Figures of an archive check, for the report.
#[derive(Debug, Clone, Default)]
pub struct ArchiveFigures {
    /// Objects.
    pub objects: usize,
    /// Lines in them.
    pub lines: usize,
    /// Keys with more than one version (overwritten by a replay or a retried put).
    pub overwritten: usize,
    /// Lines stored under more than one key after a replay, tolerated (see [`check_archive`]).
    pub replay_duplicates: usize,
}

/// The archive holds every good line exactly once by content, and nothing else; each object
/// holds one `log_type` (the one in its key, after `prefix`), from one shard, in stream order.
///
/// With `tolerate_replays`, a line stored under several keys is counted in
/// [`ArchiveFigures::replay_duplicates`] instead of being a problem when the mapping sent its
/// record in more than one invocation (a replay after a partial batch failure); a repeat
/// without a replay is still a problem.
pub fn check_archive(
    ds: &Dataset,
    prefix: &str,
    objects: &[StoredObject],
    tolerate_replays: Option<&MappingLog>,
    problems: &mut Vec<String>,
) -> ArchiveFigures {
    let sent = tolerate_replays.map(sent_counts).unwrap_or_default();
    let positions = line_positions(ds);
    let mut seen: HashMap<&[u8], Vec<&str>> = HashMap::new();
    let mut figures = ArchiveFigures {
        objects: objects.len(),
        ..ArchiveFigures::default()
    };
    for o in objects {
        if o.versions > 1 {
            figures.overwritten += 1;
        }
        let key_type = o
            .key
            .strip_prefix(prefix)
            .map(|k| k.trim_start_matches('/'))
            .and_then(|k| k.split('/').next())
            .unwrap_or_default();
        let mut previous: Option<(String, String, usize)> = None;
        for line in o.lines() {
            figures.lines += 1;
            let Some((shard, seq, sub, log_type)) = positions.get(line) else {
                problems.push(format!(
                    "archive {}: a line that was never produced: {}",
                    o.key,
                    show(line)
                ));
                continue;
            };
            seen.entry(line).or_default().push(&o.key);
            if *log_type != key_type {
                problems.push(format!(
                    "archive {}: a {log_type} line under type {key_type:?}",
                    o.key
                ));
            }
            if let Some((pshard, pseq, psub)) = &previous {
                if pshard != shard {
                    problems.push(format!(
                        "archive {}: lines from {pshard} and {shard} in one object",
                        o.key
                    ));
                } else if cmp_seq(pseq, seq).then(psub.cmp(sub)).is_ge() {
                    problems.push(format!(
                        "archive {}: out of stream order: {seq}/{sub} after {pseq}/{psub}",
                        o.key
                    ));
                }
            }
            previous = Some((shard.clone(), seq.clone(), *sub));
        }
    }
    let mut missing = 0;
    for l in &ds.lines {
        match seen.get(l.text.as_bytes()) {
            None => {
                missing += 1;
                if missing <= 20 {
                    let pos = ds
                        .position(l.record)
                        .map(|(s, q)| format!("{s}:{q}"))
                        .unwrap_or_default();
                    problems.push(format!(
                        "archive: missing line ({pos} #{}): {}",
                        l.sub,
                        show(l.text.as_bytes())
                    ));
                }
            }
            Some(keys) if keys.len() > 1 => {
                let replayed = ds.position(l.record).is_some_and(|(s, q)| {
                    sent.get(&(s.to_owned(), q.to_owned()))
                        .copied()
                        .unwrap_or(0)
                        > 1
                });
                if replayed {
                    figures.replay_duplicates += 1;
                } else {
                    problems.push(format!(
                        "archive: line stored {} times, in {:?}: {}",
                        keys.len(),
                        keys,
                        show(l.text.as_bytes())
                    ));
                }
            }
            Some(_) => {}
        }
    }
    if missing > 20 {
        problems.push(format!(
            "archive: {missing} lines missing in all (first 20 shown)"
        ));
    }
    figures
}

/// How many invocations each `(shard, sequence number)` was sent in.
fn sent_counts(log: &MappingLog) -> HashMap<(String, String), usize> {
    let mut sent = HashMap::new();
    for inv in &log.invocations {
        for seq in &inv.sequence_numbers {
            *sent.entry((inv.shard_id.clone(), seq.clone())).or_default() += 1;
        }
    }
    sent
}

/// Every bad payload is in the dead letter with the expected reason and code, and no good line
/// is. Returns how many envelopes were read.
pub fn check_dead_letter(
    ds: &Dataset,
    lines: &[DeadLetterLine],
    problems: &mut Vec<String>,
) -> usize {
    let mut by_payload: HashMap<&[u8], Vec<&DeadLetterLine>> = HashMap::new();
    for l in lines {
        by_payload.entry(&l.payload).or_default().push(l);
    }
    for bad in &ds.bad {
        let (reason, code) = bad.kind.expected();
        match by_payload.get(&bad.payload[..]) {
            None => {
                let pos = ds
                    .position(bad.record)
                    .map(|(s, q)| format!("{s}:{q}"))
                    .unwrap_or_default();
                problems.push(format!(
                    "dead letter: {:?} payload of record {pos} is missing: {}",
                    bad.kind,
                    show(&bad.payload)
                ));
            }
            Some(found) => {
                if !found.iter().all(|f| f.reason == reason && f.code == code) {
                    let got: Vec<(String, String)> = found
                        .iter()
                        .map(|f| (f.reason.clone(), f.code.clone()))
                        .collect();
                    problems.push(format!(
                        "dead letter: {:?} payload filed as {got:?}, expected ({reason}, {code}): {}",
                        bad.kind,
                        show(&bad.payload)
                    ));
                }
            }
        }
    }
    let bad_payloads: std::collections::HashSet<&[u8]> =
        ds.bad.iter().map(|b| &b.payload[..]).collect();
    let good: std::collections::HashSet<&[u8]> =
        ds.lines.iter().map(|l| l.text.as_bytes()).collect();
    for l in lines {
        if good.contains(&l.payload[..]) {
            problems.push(format!(
                "dead letter {}: a good line was dead-lettered as {}/{}: {}",
                l.key,
                l.reason,
                l.code,
                show(&l.payload)
            ));
        } else if !bad_payloads.contains(&l.payload[..]) {
            problems.push(format!(
                "dead letter {}: unexpected {}/{} entry: {}",
                l.key,
                l.reason,
                l.code,
                show(&l.payload)
            ));
        }
    }
    lines.len()
}

/// Every produced record per shard, in sequence order.
fn shard_sequences(ds: &Dataset) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &ds.records {
        if let (Some(shard), Some(seq)) = (&r.shard_id, &r.sequence_number) {
            out.entry(shard.clone()).or_default().push(seq.clone());
        }
    }
    for seqs in out.values_mut() {
        seqs.sort_by(|a, b| cmp_seq(a, b));
    }
    out
}

/// The mapping read every shard in order: each invocation holds consecutive records of one
/// shard starting right after the shard's checkpoint; checkpoints only move forward, land on
/// record boundaries and end at each shard's last record; nothing was discarded and every
/// answer was a valid batch response.
pub fn check_mapping(ds: &Dataset, log: &MappingLog, max_batch: usize, problems: &mut Vec<String>) {
    let shards = shard_sequences(ds);
    let position: HashMap<(&str, &str), usize> = shards
        .iter()
        .flat_map(|(shard, seqs)| {
            seqs.iter()
                .enumerate()
                .map(move |(i, s)| ((shard.as_str(), s.as_str()), i))
        })
        .collect();
    for inv in &log.invocations {
        if inv.sequence_numbers.len() > max_batch {
            problems.push(format!(
                "invocation #{}: {} records, over the batch size {max_batch}",
                inv.n,
                inv.sequence_numbers.len()
            ));
        }
        // Checkpoint of this shard before this invocation.
        let before = log
            .checkpoints
            .iter()
            .rfind(|c| c.shard_id == inv.shard_id && c.invocation < inv.n)
            .map(|c| c.sequence_number.as_str());
        let expected_first = match before {
            None => 0,
            Some(seq) => position
                .get(&(inv.shard_id.as_str(), seq))
                .map_or(usize::MAX, |p| p + 1),
        };
        for (k, seq) in inv.sequence_numbers.iter().enumerate() {
            match position.get(&(inv.shard_id.as_str(), seq.as_str())) {
                Some(&p) if p == expected_first + k => {}
                Some(&p) => {
                    problems.push(format!(
                        "invocation #{} on {}: record {k} is {seq} (position {p}), expected position {} after checkpoint {:?}",
                        inv.n,
                        inv.shard_id,
                        expected_first + k,
                        before
                    ));
                    break;
                }
                None => {
                    problems.push(format!(
                        "invocation #{}: {seq} was never produced on {}",
                        inv.n, inv.shard_id
                    ));
                    break;
                }
            }
        }
        if let BatchOutcome::InvalidResponse(why) = &inv.outcome {
            problems.push(format!(
                "invocation #{}: the function's answer is not a valid batch response: {why}",
                inv.n
            ));
        }
    }
    for (shard, seqs) in &shards {
        let mut last: Option<&str> = None;
        for c in log.checkpoints.iter().filter(|c| &c.shard_id == shard) {
            if !position.contains_key(&(shard.as_str(), c.sequence_number.as_str())) {
                problems.push(format!(
                    "checkpoint {shard} {} is not a record of the shard",
                    c.sequence_number
                ));
            }
            if let Some(prev) = last.filter(|p| cmp_seq(p, &c.sequence_number).is_ge()) {
                problems.push(format!(
                    "checkpoint {shard} went from {prev} to {}",
                    c.sequence_number
                ));
            }
            last = Some(&c.sequence_number);
        }
        if last != seqs.last().map(String::as_str) {
            problems.push(format!(
                "shard {shard}: final checkpoint {last:?}, last record {:?}",
                seqs.last()
            ));
        }
    }
    for d in &log.discarded {
        problems.push(format!(
            "{} records of {} were discarded after the retries ran out ({}): {:?}",
            d.sequence_numbers.len(),
            d.shard_id,
            d.reason,
            d.sequence_numbers
        ));
    }
}

/// Every good line reached the forward stream, unchanged, nothing else did, and a line arrived
/// more than once only if it was in a replayed batch or in a PutRecords call whose answer the
/// proxy dropped after moto stored it.
pub fn check_forwarded(
    ds: &Dataset,
    payloads: &[Vec<u8>],
    log: &MappingLog,
    stored_unanswered: &[Vec<u8>],
    problems: &mut Vec<String>,
) -> usize {
    let mut count: HashMap<&[u8], usize> = HashMap::new();
    for p in payloads {
        *count.entry(p).or_default() += 1;
    }
    // Records of the source stream that were sent in more than one invocation.
    let sent = sent_counts(log);
    let unanswered: std::collections::HashSet<&[u8]> =
        stored_unanswered.iter().map(Vec::as_slice).collect();
    let mut duplicates = 0;
    let mut missing = 0;
    for l in &ds.lines {
        let n = count.get(l.text.as_bytes()).copied().unwrap_or(0);
        if n == 0 {
            missing += 1;
            if missing <= 20 {
                problems.push(format!("forward: missing line {}", show(l.text.as_bytes())));
            }
        } else if n > 1 {
            duplicates += 1;
            let replayed = ds.position(l.record).is_some_and(|(s, q)| {
                sent.get(&(s.to_owned(), q.to_owned()))
                    .copied()
                    .unwrap_or(0)
                    > 1
            });
            let resent = unanswered
                .iter()
                .any(|u| memchr_contains(u, l.text.as_bytes()));
            if !replayed && !resent {
                problems.push(format!(
                    "forward: line arrived {n} times without a replay or a lost answer: {}",
                    show(l.text.as_bytes())
                ));
            }
        }
    }
    if missing > 20 {
        problems.push(format!(
            "forward: {missing} lines missing in all (first 20 shown)"
        ));
    }
    let good: std::collections::HashSet<&[u8]> =
        ds.lines.iter().map(|l| l.text.as_bytes()).collect();
    for p in count.keys() {
        if !good.contains(p) {
            problems.push(format!(
                "forward: a record that is not a good line: {}",
                show(p)
            ));
        }
    }
    duplicates
}

fn memchr_contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Counts of the data set, for the report.
pub fn describe(ds: &Dataset) -> String {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for r in &ds.records {
        *kinds.entry(format!("{:?}", r.kind)).or_default() += 1;
    }
    let mut bad: BTreeMap<String, usize> = BTreeMap::new();
    for b in &ds.bad {
        *bad.entry(format!("{:?}", b.kind)).or_default() += 1;
    }
    let kpl_lines = ds
        .lines
        .iter()
        .filter(|l| {
            ds.records
                .get(l.record)
                .is_some_and(|r| r.kind == RecordKind::Kpl)
        })
        .count();
    format!(
        "{} records {kinds:?}; {} good lines ({kpl_lines} in KPL aggregates); {} bad payloads {bad:?}; {} control messages",
        ds.records.len(),
        ds.lines.len(),
        ds.bad.len(),
        ds.control
    )
}
