//! The pipeline with the AWS implementations against moto: S3 archive objects (keys, gzip,
//! content), forwarding to a second stream that reads back identical records, dead letters,
//! and a replayed batch overwriting the same keys.
#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod moto;

use std::io::{Read, Write};
use std::sync::Arc;

use base64::Engine as _;
use kinesis_utils::aws::AwsKinesis;
use kinesis_utils::kpl::{UserRecord, aggregate_all};
use logging_core::dead_letter::{DeadLetter, DeadLetterConfig, Envelope};
use logging_core::forward::{ForwardConfig, KinesisForward};
use logging_core::store::ObjectStore;
use logging_core::store::s3::S3Store;
use logging_core::{ArchiveConfig, Pipeline, S3Archive, SchemaConfig, TypeFilter};

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
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

const WEB1: &str =
    r#"{"log_type":"web","log_id":"w1","time":"2020-03-14T21:00:00+09:00","path":"/a", "n": 1.50}"#;
const WEB2: &str = r#"{"log_type":"web","log_id":"w2","time":"2020-03-14T12:00:05Z","path":"/b"}"#;
const APP1: &str = r#"{"log_type":"app","log_id":"a1","time":1584187210,"msg":"hello \u00e9"}"#;
const APP2: &str = r#"{"log_type":"app","log_id":"a2","time":"2020-03-14 12:00:11","msg":"kpl"}"#;
const NOT_JSON: &str = "GET / HTTP/1.1";

/// A Lambda event: a plain record, a gzip CloudWatch Logs record, a KPL aggregate, non-JSON.
fn event() -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let cwl = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/g",
        "logStream": "s", "subscriptionFilters": ["f"], "logEvents": [
            {"id": "35531", "timestamp": 1_584_187_205_000i64, "message": WEB2},
            {"id": "35532", "timestamp": 1_584_187_206_000i64, "message": APP1}]});
    let kpl = aggregate_all(
        [
            UserRecord::new(APP2.as_bytes().to_vec(), "k1"),
            UserRecord::new(WEB1.as_bytes().to_vec(), "k2"),
        ],
        1 << 20,
    )
    .unwrap();
    let datas = [
        b64.encode(WEB1),
        b64.encode(gzip(&serde_json::to_vec(&cwl).unwrap())),
        b64.encode(&kpl[0].data),
        b64.encode(NOT_JSON),
    ];
    let records: Vec<_> = datas
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let seq = format!("4959033827149025660855969253836157109592157598913658{:04}", i);
            serde_json::json!({"kinesis": {"partitionKey": format!("p{i}"), "sequenceNumber": seq,
                "data": d, "approximateArrivalTimestamp": 1584187200.5, "kinesisSchemaVersion": "1.0"},
                "eventSource": "aws:kinesis", "eventID": format!("shardId-000000000000:{seq}")})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_forwards_and_dead_letters_on_moto() {
    let sdk = moto::sdk_config().await;
    let s3 = moto::s3_client().await;
    let archive_bucket = moto::bucket(&s3, "archive").await;
    let failed_bucket = moto::bucket(&s3, "failed").await;
    let kinesis = moto::kinesis_client().await;
    let stream = moto::unique("forward");
    moto::create_active_stream(&kinesis, &stream, 2).await;

    let archive_store = Arc::new(S3Store::new(s3.clone(), &archive_bucket));
    let failed_store = Arc::new(S3Store::new(s3.clone(), &failed_bucket));
    let pipeline = Pipeline::builder(SchemaConfig::default())
        .route(
            TypeFilter::all(),
            S3Archive::builder(
                archive_store.clone(),
                ArchiveConfig {
                    prefix: "logs".into(),
                    ..ArchiveConfig::default()
                },
            ),
        )
        .route(
            TypeFilter::only(["web", "app"]),
            KinesisForward::new(
                AwsKinesis::new(&sdk),
                ForwardConfig {
                    stream: stream.clone(),
                    ..ForwardConfig::default()
                },
            )
            .unwrap(),
        )
        .dead_letter(DeadLetter::builder(
            failed_store.clone(),
            DeadLetterConfig {
                prefix: "failed".into(),
                ..DeadLetterConfig::default()
            },
        ))
        .build();

    let event = event();
    let out = pipeline.process(&event).await.unwrap();
    let r = &out.report;
    assert_eq!(
        (r.records, r.items, r.delivered, r.invalid.unknown_type),
        (4, 6, 5, 1),
        "{r:?}"
    );
    assert_eq!(r.outcome_total(), r.items);
    assert!(out.response.batch_item_failures.is_empty(), "{r:?}");

    // S3: one object per type, deterministic keys, gzip NDJSON of the original bytes in order.
    let keys = archive_store.list("logs/").await.unwrap();
    assert_eq!(
        keys,
        [
            "logs/app/2020-03/14/2020-03-14-12:00:10-a1.gz",
            "logs/web/2020-03/14/2020-03-14-21:00:00-w1.gz",
        ]
    );
    let web = gunzip(&archive_store.get(&keys[1]).await.unwrap().unwrap());
    assert_eq!(
        String::from_utf8(web).unwrap(),
        format!("{WEB1}\n{WEB2}\n{WEB1}\n")
    );
    let app = gunzip(&archive_store.get(&keys[0]).await.unwrap().unwrap());
    assert_eq!(String::from_utf8(app).unwrap(), format!("{APP1}\n{APP2}\n"));

    // Kinesis: the second stream holds exactly the routed records, byte for byte.
    let mut forwarded: Vec<Vec<u8>> = moto::read_all_records(&kinesis, &stream)
        .await
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    forwarded.sort();
    let mut want: Vec<Vec<u8>> = [WEB1, WEB2, APP1, APP2, WEB1]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    want.sort();
    assert_eq!(forwarded, want);

    // Dead letter: the non-JSON payload with its origin.
    let dl_keys = failed_store.list("failed/").await.unwrap();
    assert_eq!(dl_keys.len(), 1, "{dl_keys:?}");
    assert!(
        dl_keys[0].starts_with(
            "failed/unknown/unknown_type/2020-03/14/2020-03-14-12:00:00-shardId-000000000000-"
        ),
        "{}",
        dl_keys[0]
    );
    let body = gunzip(&failed_store.get(&dl_keys[0]).await.unwrap().unwrap());
    let env = Envelope::parse(body.trim_ascii_end()).unwrap();
    assert_eq!(env.payload_bytes().unwrap(), NOT_JSON.as_bytes());
    assert_eq!(
        (env.reason.as_str(), env.code.as_str()),
        ("unknown_type", "not_json")
    );
    assert!(
        env.origin["sequence_number"]
            .as_str()
            .unwrap()
            .ends_with("0003")
    );

    // A replay of the same batch overwrites the same keys with the same bytes.
    let before_web = archive_store.get(&keys[1]).await.unwrap();
    let before_dl = failed_store.get(&dl_keys[0]).await.unwrap();
    let again = pipeline.process(&event).await.unwrap();
    assert!(again.response.batch_item_failures.is_empty());
    assert_eq!(archive_store.list("logs/").await.unwrap(), keys);
    assert_eq!(failed_store.list("failed/").await.unwrap(), dl_keys);
    assert_eq!(archive_store.get(&keys[1]).await.unwrap(), before_web);
    assert_eq!(failed_store.get(&dl_keys[0]).await.unwrap(), before_dl);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_reports_the_lowest_sequence_number() {
    let s3 = moto::s3_client().await;
    let failed_bucket = moto::bucket(&s3, "failed").await;
    let archive = S3Archive::builder(
        Arc::new(S3Store::new(s3.clone(), moto::unique("no-such-bucket"))),
        ArchiveConfig {
            retry: logging_core::RetryPolicy {
                initial_backoff: std::time::Duration::from_millis(1),
                ..logging_core::RetryPolicy::default()
            },
            ..ArchiveConfig::default()
        },
    );
    let pipeline = Pipeline::builder(SchemaConfig::default())
        .route(TypeFilter::only(["app"]), archive)
        .dead_letter(DeadLetter::builder(
            Arc::new(S3Store::new(s3, failed_bucket)),
            DeadLetterConfig::default(),
        ))
        .build();
    let out = pipeline.process(&event()).await.unwrap();
    // "app" payloads come from records 1 (CloudWatch Logs) and 2 (KPL): the lowest is record 1.
    assert_eq!(out.report.retry, 2, "{:?}", out.report);
    assert_eq!(out.report.filtered, 3);
    let ids: Vec<_> = out
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        ids,
        ["49590338271490256608559692538361571095921575989136580001"]
    );
    let e = &out.report.destinations[0];
    assert_eq!((e.delivered, e.retry), (0, 2));
}
