//! Decoding whole Lambda events: the bundled sample, every failure kind, and properties.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;

use base64::Engine as _;
use bytes::Bytes;
use kinesis_utils::decode::{DecodeError, Decoded, Decoder, DecoderConfig};
use kinesis_utils::gzip::GzipError;
use kinesis_utils::kpl::{UserRecord, aggregate_all};
use proptest::prelude::*;

const SAMPLE: &[u8] = include_bytes!("../examples/data/sample_event.json");

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn event(datas: &[String]) -> Vec<u8> {
    let records: Vec<_> = datas
        .iter()
        .enumerate()
        .map(|(i, d)| {
            serde_json::json!({
                "eventID": format!("shardId-000000000000:{}", 100 + i),
                "kinesis": {"sequenceNumber": format!("{}", 100 + i), "partitionKey": "pk", "data": d}
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap()
}

#[test]
fn bundled_sample_decodes_every_form() {
    let batch = Decoder::default().decode_event_json(SAMPLE).unwrap();
    assert_eq!(batch.records.len(), 7);
    // 4 plain + 3 CWL events + 4 KPL user records.
    assert_eq!(batch.payloads().count(), 11);
    assert_eq!(batch.control_count(), 1);
    assert_eq!(batch.failures().count(), 0);
    let cwl: Vec<_> = batch
        .payloads()
        .filter(|p| p.origin.cwl().is_some())
        .collect();
    assert_eq!(cwl.len(), 3);
    assert_eq!(cwl[0].origin.cwl().unwrap().log_group(), "/ecs/app");
    assert!(
        cwl[0]
            .data
            .starts_with(br#"{"log_type":"app","log_id":"id-0010""#)
    );
    let kpl: Vec<_> = batch
        .payloads()
        .filter(|p| p.origin.sub_sequence().is_some())
        .collect();
    assert_eq!(kpl.len(), 4);
    assert_eq!(kpl[3].origin.sub_sequence(), Some(3));
    assert!(kpl.iter().all(|p| p.origin.record_index() == 6));
    let text = String::from_utf8(batch.payloads().nth(1).unwrap().data.to_vec()).unwrap();
    assert!(text.contains("日本語"));
}

#[test]
fn each_failure_is_its_own_and_the_rest_decodes() {
    let cwl_unknown = gz(br#"{"messageType":"SOMETHING_NEW","logEvents":[]}"#);
    let cwl_bad = gz(br#"{"messageType":"DATA_MESSAGE","logEvents":"nope"}"#);
    let mut corrupt = gz(b"{\"log_type\":\"a\"}");
    let n = corrupt.len();
    corrupt[n - 5] ^= 0xff;
    let datas = vec![
        b64(b"{\"log_type\":\"a\"}"),
        "%%% not base64".to_string(),
        b64(&corrupt),
        b64(&cwl_unknown),
        b64(&cwl_bad),
        b64(&gz(&vec![b' '; 5000])),
        b64(b"last"),
    ];
    let decoder = Decoder::new(DecoderConfig::default().max_decompressed_bytes(4096));
    let batch = decoder.decode_event_json(&event(&datas)).unwrap();
    let reasons: Vec<_> = batch
        .items
        .iter()
        .map(|d| match d {
            Decoded::Payload(_) => "payload",
            Decoded::Control(_) => "control",
            Decoded::Failed(f) => f.error.reason(),
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "payload",
            "bad_base64",
            "corrupt_gzip",
            "unknown_cwl_message_type",
            "malformed_cwl",
            "gzip_too_large",
            "payload"
        ]
    );
    let f = batch.failures().nth(4).unwrap();
    assert_eq!(
        f.error,
        DecodeError::Gzip(GzipError::TooLarge { limit: 4096 })
    );
    assert_eq!(f.origin.sequence_number(), "105");
    // The failure keeps the bytes of the step that failed, for the dead letter.
    assert_eq!(&batch.failures().next().unwrap().raw[..], b"%%% not base64");
    assert!(
        batch
            .failures()
            .nth(2)
            .unwrap()
            .raw
            .starts_with(b"{\"messageType\"")
    );
}

#[test]
fn gzip_that_is_not_cwl_is_one_payload_and_bad_kpl_passes_through() {
    let mut fake_kpl = kinesis_utils::kpl::MAGIC.to_vec();
    fake_kpl.extend_from_slice(&[1u8; 40]);
    let datas = vec![b64(&gz(b"{\"log_type\":\"zipped\"}")), b64(&fake_kpl)];
    let batch = Decoder::default()
        .decode_event_json(&event(&datas))
        .unwrap();
    let p: Vec<_> = batch.payloads().collect();
    assert_eq!(&p[0].data[..], b"{\"log_type\":\"zipped\"}");
    assert_eq!(&p[1].data[..], &fake_kpl[..]);
    assert_eq!(p[1].origin.sub_sequence(), None);
}

#[test]
fn whole_event_errors_are_typed() {
    let d = Decoder::default();
    assert!(d.decode_event_json(b"").is_err());
    assert!(d.decode_event_json(b"{\"Records\":5}").is_err());
    assert_eq!(
        d.decode_event_json(b"{\"Records\":[]}")
            .unwrap()
            .items
            .len(),
        0
    );
}

#[cfg(feature = "lambda-events")]
#[test]
fn aws_lambda_events_input_matches_raw_json() {
    let event: aws_lambda_events::event::kinesis::KinesisEvent =
        serde_json::from_slice(SAMPLE).unwrap();
    let typed = Decoder::default().decode_event(event);
    let raw = Decoder::default().decode_event_json(SAMPLE).unwrap();
    assert_eq!(typed, raw);
}

/// A runner that cuts the records where `cuts` says (modulo the record count) and misbehaves
/// as `faults` says: 0 keeps a part, 1 leaves it out, 2 returns it twice, 3 returns it grown by
/// one record; the parts come back in reverse order.
struct Cutting {
    cuts: Vec<usize>,
    faults: Vec<u8>,
}

impl kinesis_utils::decode::DecodeRunner for Cutting {
    fn run(
        &self,
        weights: &[usize],
        decode: &(dyn Fn(std::ops::Range<usize>) -> Vec<Decoded> + Sync),
    ) -> Vec<(std::ops::Range<usize>, Vec<Decoded>)> {
        let n = weights.len();
        let mut ends: Vec<usize> = self.cuts.iter().map(|c| c % (n + 1)).collect();
        ends.push(n);
        ends.sort_unstable();
        let mut out = Vec::new();
        let mut start = 0;
        for (i, end) in ends.into_iter().enumerate() {
            let range = start..end;
            start = end;
            match self.faults.get(i).copied().unwrap_or(0) % 4 {
                1 => {}
                2 => {
                    out.push((range.clone(), decode(range.clone())));
                    out.push((range.clone(), decode(range)));
                }
                3 => {
                    let grown = range.start..(range.end + 1).min(n);
                    out.push((grown.clone(), decode(grown)));
                }
                _ => out.push((range.clone(), decode(range))),
            }
        }
        out.reverse();
        out
    }
}

fn kinesis_data() -> impl Strategy<Value = Vec<u8>> {
    let line =
        "[a-z]{1,8}".prop_map(|t| format!("{{\"log_type\":\"{t}\",\"m\":\"é\\\"\"}}").into_bytes());
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        line.clone(),
        line.clone().prop_map(|l| gz(&l)),
        proptest::collection::vec(line.clone(), 1..5).prop_map(|ls| {
            let events: Vec<_> = ls
                .iter()
                .enumerate()
                .map(|(i, l)| serde_json::json!({"id": i.to_string(), "timestamp": 1, "message": String::from_utf8_lossy(l)}))
                .collect();
            gz(&serde_json::to_vec(&serde_json::json!({"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","logEvents": events})).unwrap())
        }),
        proptest::collection::vec(line, 1..5).prop_map(|ls| {
            let aggs = aggregate_all(ls.into_iter().map(|l| UserRecord::new(l, "k")), 1 << 20).unwrap();
            aggs[0].data.to_vec()
        }),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|mut v| {
            let mut out = vec![0x1f, 0x8b];
            out.append(&mut v);
            out
        }),
    ]
}

proptest! {
    /// Any bytes as record data: never a panic, every record accounted for, order kept.
    #[test]
    fn any_data_decodes_without_panic(datas in proptest::collection::vec(kinesis_data(), 0..12)) {
        let encoded: Vec<String> = datas.iter().map(|d| b64(d)).collect();
        let batch = Decoder::default().decode_event_json(&event(&encoded)).unwrap();
        prop_assert_eq!(batch.records.len(), datas.len());
        let mut last = 0;
        for item in &batch.items {
            prop_assert!(item.origin().record_index() >= last);
            last = item.origin().record_index();
        }
        let covered: std::collections::BTreeSet<_> = batch.items.iter().map(|i| i.origin().record_index()).collect();
        prop_assert_eq!(covered.len(), datas.len());
    }

    /// The second pass cut into parts at any records (as a caller's threads would run it)
    /// gives the in-place batch: KPL aggregates, CloudWatch Logs envelopes, corrupt gzip and
    /// plain data alike, even from a runner that drops, repeats, overlaps or reorders parts.
    #[test]
    fn any_cut_of_the_records_gives_the_same_batch(
        datas in proptest::collection::vec(kinesis_data(), 0..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..5),
        faults in proptest::collection::vec(any::<u8>(), 0..6),
    ) {
        let encoded: Vec<String> = datas.iter().map(|d| b64(d)).collect();
        let event = event(&encoded);
        let decoder = Decoder::default();
        let in_place = decoder.decode_event_json(&event).unwrap();
        let cut = decoder.decode_event_json_on(&event, &Cutting { cuts, faults }).unwrap();
        prop_assert_eq!(in_place, cut);
    }

    /// Plain data that is neither gzip nor KPL comes back byte for byte.
    #[test]
    fn plain_data_round_trips(datas in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..10)) {
        let datas: Vec<Vec<u8>> = datas.into_iter().filter(|d| !d.starts_with(&[0x1f, 0x8b]) && !d.starts_with(&kinesis_utils::kpl::MAGIC)).collect();
        let encoded: Vec<String> = datas.iter().map(|d| b64(d)).collect();
        let batch = Decoder::default().decode_event_json(&event(&encoded)).unwrap();
        let got: Vec<Bytes> = batch.payloads().map(|p| p.data.clone()).collect();
        let want: Vec<Bytes> = datas.into_iter().map(Bytes::from).collect();
        prop_assert_eq!(got, want);
    }

    /// Arbitrary bytes as the whole event: an error or a batch, never a panic.
    #[test]
    fn arbitrary_event_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Decoder::default().decode_event_json(&bytes);
    }
}

#[test]
fn unpadded_base64_is_accepted() {
    // "{\"a\":1}" is 7 bytes: canonical base64 ends in "=", producers sometimes drop it.
    let padded = b64(b"{\"a\":1}");
    assert!(padded.ends_with('='));
    let unpadded = padded.trim_end_matches('=').to_string();
    let batch = Decoder::default()
        .decode_event_json(&event(&[padded, unpadded]))
        .unwrap();
    let got: Vec<_> = batch.payloads().map(|p| p.data.clone()).collect();
    assert_eq!(
        got,
        [
            Bytes::from_static(b"{\"a\":1}"),
            Bytes::from_static(b"{\"a\":1}")
        ]
    );
}
