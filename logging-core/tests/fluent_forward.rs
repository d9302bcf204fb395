//! Forward-protocol delivery against a local server: decoded events equal the input
//! records, acks, at-least-once resends, handshake, failure modes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use logging_core::fluent::{
    FluentAuth, FluentClient, FluentConfig, FluentEvent, FluentOutcome, ForwardMode, RecordFormat,
    tag_for,
};
use support::fluent_server::{Fault, FluentServer};

fn records(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"log_type":"{}","log_id":"id-{i}","msg":"こんにちは ✓ {i}","big":18446744073709551615,"neg":-{i},"f":1.5,"ok":true,"none":null,"nested":{{"a":[1,{{"b":"ü"}}],"e":{{}}}}}}"#,
                if i % 3 == 0 { "nginx" } else { "app" }
            )
            .into_bytes()
        })
        .collect()
}

fn events(recs: &[Vec<u8>]) -> Vec<FluentEvent<'_>> {
    recs.iter()
        .enumerate()
        .map(|(i, r)| FluentEvent {
            key: i,
            tag: tag_for(if i % 3 == 0 { "nginx" } else { "app" }, "kinesis"),
            time: DateTime::from_timestamp(1_584_187_200 + i as i64, 123_000_000).unwrap(),
            record_json: r,
        })
        .collect()
}

fn config(server: &FluentServer) -> FluentConfig {
    FluentConfig {
        host: "127.0.0.1".into(),
        port: server.port,
        ack_timeout_ms: 300,
        initial_backoff_ms: 1,
        max_backoff_ms: 5,
        max_chunk_events: 7,
        ..FluentConfig::default()
    }
}

/// Every input event was received (at least once) with its tag, time and record.
fn assert_all_received(server: &FluentServer, recs: &[Vec<u8>], evs: &[FluentEvent<'_>]) {
    let st = server.state();
    for (i, e) in evs.iter().enumerate() {
        let expected: serde_json::Value = serde_json::from_slice(&recs[i]).unwrap();
        let found = st.events.iter().any(|r| {
            r.tag == e.tag
                && r.secs == e.time.timestamp() as u32
                && r.nanos == e.time.timestamp_subsec_nanos()
                && r.record == expected
        });
        assert!(found, "event {i} not received");
    }
}

#[tokio::test]
async fn packed_forward_delivers_records_equal_to_input() {
    let server = FluentServer::start(None).await;
    let client = FluentClient::new(config(&server)).unwrap();
    let recs = records(50);
    let evs = events(&recs);
    let report = client.deliver(&evs).await;
    assert_eq!(report.delivered(), 50);
    assert_eq!(report.connections, 1);
    assert_all_received(&server, &recs, &evs);
    let st = server.state();
    assert_eq!(st.events.len(), 50, "no duplicates without faults");
    assert!(
        st.events
            .iter()
            .all(|e| e.mode == "packed" && e.chunk.is_some())
    );
    // Grouped by tag, input order kept within a tag.
    let nginx: Vec<_> = st
        .events
        .iter()
        .filter(|e| e.tag == "nginx.kinesis")
        .map(|e| e.secs)
        .collect();
    assert!(nginx.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn forward_mode_and_message_text_compatibility() {
    let server = FluentServer::start(None).await;
    let mut cfg = config(&server);
    cfg.mode = ForwardMode::Forward;
    cfg.record_format = RecordFormat::MessageText;
    let client = FluentClient::new(cfg).unwrap();
    let recs = records(5);
    let evs = events(&recs);
    assert_eq!(client.deliver(&evs).await.delivered(), 5);
    let st = server.state();
    assert_eq!(st.events.len(), 5);
    for e in &st.events {
        assert_eq!(e.mode, "forward");
        let text = e.record["message"].as_str().unwrap();
        let i = (e.secs - 1_584_187_200) as usize;
        assert_eq!(
            text.as_bytes(),
            &recs[i][..],
            "original JSON text unchanged"
        );
    }
}

#[tokio::test]
async fn unacknowledged_chunks_are_resent_on_a_new_connection() {
    let server = FluentServer::start(None).await;
    server.state().faults = [Fault::NoAck, Fault::DropMidChunk, Fault::WrongAck].into();
    let client = FluentClient::new(config(&server)).unwrap();
    let recs = records(30);
    let evs = events(&recs);
    let report = client.deliver(&evs).await;
    assert_eq!(report.delivered(), 30, "{report:?}");
    assert_eq!(report.connections, 4);
    assert_all_received(&server, &recs, &evs);
    // At-least-once: the chunks that were not acked arrived twice, with the same chunk id.
    let st = server.state();
    assert!(st.events.len() > 30);
    let distinct: BTreeSet<_> = st
        .events
        .iter()
        .map(|e| (e.chunk.clone(), e.secs, e.tag.clone()))
        .collect();
    assert_eq!(distinct.len(), 30, "duplicates share their chunk id");
}

#[tokio::test]
async fn connections_are_kept_between_deliveries_and_replaced_when_closed() {
    let server = FluentServer::start(None).await;
    let mut cfg = config(&server);
    cfg.max_chunk_events = 1000;
    let client = FluentClient::new(cfg).unwrap();
    let recs = records(3);
    let evs = events(&recs);
    assert_eq!(client.deliver(&evs).await.connections, 1);
    let again = client.deliver(&evs).await;
    assert_eq!(again.delivered(), 3);
    assert_eq!(again.connections, 0, "reused");
    assert_eq!(server.state().connections, 1);

    // The server closes the connection after the next chunk; the delivery after that
    // finds it dead and reconnects at once, losing nothing.
    server.state().faults = [Fault::AckThenClose].into();
    assert_eq!(client.deliver(&evs).await.delivered(), 3);
    // Let the close reach the client.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let last = client.deliver(&evs).await;
    assert_eq!(last.delivered(), 3, "{last:?}");
    assert_eq!(last.connections, 1);
    assert_eq!(server.state().connections, 2);
    assert_eq!(server.state().events.len(), 12);
}

#[tokio::test]
async fn unreachable_or_silent_servers_give_failures_not_losses() {
    let server = FluentServer::start(None).await;
    server.state().faults = vec![Fault::NoAck; 100].into();
    let mut cfg = config(&server);
    cfg.max_attempts = 3;
    let client = FluentClient::new(cfg).unwrap();
    let recs = records(10);
    let evs = events(&recs);
    let report = client.deliver(&evs).await;
    assert_eq!(report.outcomes.len(), 10);
    for (_, o) in &report.outcomes {
        match o {
            FluentOutcome::Failed { reason } => assert!(reason.contains("ack"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(report.connections, 3);

    // Nothing listening.
    let port = server.port;
    drop(server);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = listener.local_addr().unwrap().port();
    drop(listener);
    let cfg = FluentConfig {
        port: closed_port,
        max_attempts: 2,
        ..config(&FluentServer {
            port,
            state: Default::default(),
        })
    };
    let report = FluentClient::new(cfg).unwrap().deliver(&evs).await;
    assert_eq!(report.connections, 0);
    assert!(
        matches!(&report.outcomes[0].1, FluentOutcome::Failed { reason } if reason.contains("connect"))
    );
}

#[tokio::test]
async fn shared_key_handshake() {
    let server = FluentServer::start_with(Some("s3cret"), Some(("fluent", "pw"))).await;
    let mut cfg = config(&server);
    cfg.auth = Some(FluentAuth {
        shared_key: "s3cret".into(),
        self_hostname: "client-host".into(),
        username: "fluent".into(),
        password: "pw".into(),
    });
    let recs = records(8);
    let evs = events(&recs);
    let report = FluentClient::new(cfg.clone()).unwrap().deliver(&evs).await;
    assert_eq!(report.delivered(), 8);
    assert_eq!(server.state().handshakes_ok, 1);
    assert_all_received(&server, &recs, &evs);

    // Wrong shared key: the server refuses, nothing is delivered, all reported failed.
    let mut bad = cfg.clone();
    bad.max_attempts = 2;
    bad.auth.as_mut().unwrap().shared_key = "wrong".into();
    let report = FluentClient::new(bad).unwrap().deliver(&evs).await;
    assert_eq!(report.delivered(), 0);
    match &report.outcomes[0].1 {
        FluentOutcome::Failed { reason } => assert!(reason.contains("refused"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.state().handshakes_failed, 2);
}

#[tokio::test]
async fn pong_with_a_wrong_digest_is_refused_by_the_client() {
    // This server accepts any PING but signs its PONG with another key.
    let server = FluentServer::start(Some("lenient:other")).await;
    let mut cfg = config(&server);
    cfg.max_attempts = 1;
    cfg.auth = Some(FluentAuth {
        shared_key: "mine".into(),
        self_hostname: "h".into(),
        username: String::new(),
        password: String::new(),
    });
    let recs = records(1);
    let report = FluentClient::new(cfg)
        .unwrap()
        .deliver(&events(&recs))
        .await;
    match &report.outcomes[0].1 {
        FluentOutcome::Failed { reason } => {
            assert!(reason.contains("wrong shared key digest"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(server.state().events.is_empty());
}

#[tokio::test]
async fn bad_records_are_rejected_and_others_delivered() {
    let server = FluentServer::start(None).await;
    let client = FluentClient::new(config(&server)).unwrap();
    let recs: Vec<Vec<u8>> = vec![
        b"{\"a\":1}".to_vec(),
        b"[1,2]".to_vec(),
        b"{\"a\":".to_vec(),
        b"{\"b\":2}".to_vec(),
    ];
    let mut evs = events(&recs);
    evs[3].time = DateTime::<Utc>::from_timestamp(-5, 0).unwrap();
    let report = client.deliver(&evs).await;
    assert_eq!(report.outcomes[0].1, FluentOutcome::Delivered);
    for i in 1..4 {
        assert!(
            matches!(report.outcomes[i].1, FluentOutcome::Rejected { .. }),
            "{i}"
        );
    }
    assert_eq!(server.state().events.len(), 1);
}

#[tokio::test]
async fn without_acks_chunks_carry_no_chunk_option() {
    let server = FluentServer::start(None).await;
    let mut cfg = config(&server);
    cfg.require_ack = false;
    let recs = records(3);
    let evs = events(&recs);
    let report = FluentClient::new(cfg).unwrap().deliver(&evs).await;
    assert_eq!(report.delivered(), 3);
    // Give the server a moment to read what was written.
    for _ in 0..50 {
        if server.state().events.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let st = server.state();
    assert_eq!(st.events.len(), 3);
    assert!(st.events.iter().all(|e| e.chunk.is_none()));
}

fn compressed(server: &FluentServer) -> FluentConfig {
    FluentConfig {
        mode: ForwardMode::CompressedPackedForward,
        max_chunk_events: 1000,
        ..config(server)
    }
}

#[tokio::test]
async fn compressed_packed_forward_delivers_fewer_bytes_with_acks() {
    let recs = records(300);
    let evs = events(&recs);
    let mut wire = Vec::new();
    for mode in [
        ForwardMode::PackedForward,
        ForwardMode::CompressedPackedForward,
    ] {
        let server = FluentServer::start(None).await;
        let cfg = FluentConfig {
            mode,
            ..compressed(&server)
        };
        let report = FluentClient::new(cfg).unwrap().deliver(&evs).await;
        assert_eq!(report.delivered(), 300, "{mode:?}");
        assert_all_received(&server, &recs, &evs);
        let st = server.state();
        assert_eq!(st.events.len(), 300, "acked once each");
        assert!(st.events.iter().all(|e| e.chunk.is_some()));
        let expected = if mode == ForwardMode::PackedForward {
            "packed"
        } else {
            "compressed"
        };
        assert!(st.events.iter().all(|e| e.mode == expected));
        assert_eq!(report.bytes_sent, st.bytes_received, "{mode:?}");
        wire.push(report.bytes_sent);
    }
    assert!(
        wire[1] * 5 < wire[0],
        "compressed {} against packed {}",
        wire[1],
        wire[0]
    );
}

/// Fluentd drops a chunk over `chunk_size_limit` without an ack: uncompressed the chunk is
/// resent until the attempts run out and its events fail (for Lambda to retry); compressed
/// it fits.
#[tokio::test]
async fn compression_fits_chunks_under_the_server_limit() {
    let recs = records(200);
    let evs = events(&recs);
    let server = FluentServer::start(None).await;
    let packed = FluentConfig {
        mode: ForwardMode::PackedForward,
        max_attempts: 2,
        ..compressed(&server)
    };
    let plain_size = FluentClient::new(packed.clone())
        .unwrap()
        .encode(&evs)
        .chunks[0]
        .message
        .len();
    server.state().chunk_size_limit = Some(plain_size / 3);
    let report = FluentClient::new(packed).unwrap().deliver(&evs).await;
    assert_eq!(report.delivered(), 0);
    assert!(
        report
            .outcomes
            .iter()
            .all(|(_, o)| matches!(o, FluentOutcome::Failed { reason } if reason.contains("ack")))
    );
    assert!(server.state().events.is_empty());
    assert!(server.state().oversized >= 2);

    let report = FluentClient::new(compressed(&server))
        .unwrap()
        .deliver(&evs)
        .await;
    assert_eq!(report.delivered(), 200, "{report:?}");
    assert_all_received(&server, &recs, &evs);
}

/// A server without CompressedPackedForward cannot read the entries and closes the
/// connection: nothing is acknowledged, every event fails (none is lost or reported
/// delivered).
#[tokio::test]
async fn a_server_without_compression_fails_the_events() {
    let server = FluentServer::start(None).await;
    server.state().no_compression = true;
    let mut cfg = compressed(&server);
    cfg.max_attempts = 2;
    let recs = records(10);
    let report = FluentClient::new(cfg)
        .unwrap()
        .deliver(&events(&recs))
        .await;
    assert_eq!(report.delivered(), 0);
    assert_eq!(report.connections, 2);
    assert!(
        report
            .outcomes
            .iter()
            .all(|(_, o)| matches!(o, FluentOutcome::Failed { .. }))
    );
    let st = server.state();
    assert!(st.events.is_empty());
    assert_eq!(st.broken.len(), 2, "{:?}", st.broken);
}

/// Entries that do not inflate close the connection without an ack, as Fluentd does.
#[tokio::test]
async fn the_server_refuses_compressed_entries_that_do_not_inflate() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = FluentServer::start(None).await;
    let mut msg = Vec::new();
    // ["t", bin(not gzip), {"chunk": "c1", "compressed": "gzip"}]
    msg.extend_from_slice(&[0x93, 0xa1, b't', 0xc4, 4, 0x1f, 0x8b, 0, 1, 0x82]);
    msg.extend_from_slice(&[0xa5]);
    msg.extend_from_slice(b"chunk");
    msg.extend_from_slice(&[0xa2]);
    msg.extend_from_slice(b"c1");
    msg.extend_from_slice(&[0xaa]);
    msg.extend_from_slice(b"compressed");
    msg.extend_from_slice(&[0xa4]);
    msg.extend_from_slice(b"gzip");
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    tcp.write_all(&msg).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tcp.read_to_end(&mut answer),
    )
    .await
    .unwrap();
    assert!(read.is_err() || answer.is_empty(), "answered {answer:?}");
    let st = server.state();
    assert!(st.broken[0].contains("inflate"), "{:?}", st.broken);
    assert!(st.events.is_empty());
}

#[test]
fn gzip_levels_outside_the_range_are_config_errors() {
    for gzip_level in [0, 13] {
        let cfg = FluentConfig {
            gzip_level,
            ..FluentConfig::default()
        };
        assert!(FluentClient::new(cfg).is_err());
    }
}

#[test]
fn tls_without_feature_or_with_bad_name_is_a_config_error() {
    let cfg = FluentConfig {
        tls: true,
        host: "not a valid dns name!".into(),
        ..FluentConfig::default()
    };
    assert!(FluentClient::new(cfg).is_err());
}

#[cfg(feature = "fluent-tls")]
#[tokio::test]
async fn tls_delivery_verifies_the_server_certificate() {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    let server = FluentServer::start_tls().await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            include_bytes!("support/tls/cert.der").to_vec(),
        ))
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut cfg = config(&server);
    cfg.tls = true;
    cfg.tls_server_name = Some("localhost".into());
    let recs = records(20);
    let evs = events(&recs);
    let client = FluentClient::with_tls_config(cfg.clone(), Arc::new(tls)).unwrap();
    let report = client.deliver(&evs).await;
    assert_eq!(report.delivered(), 20, "{report:?}");
    assert_all_received(&server, &recs, &evs);

    // With the public roots only, the self-signed server is refused.
    cfg.max_attempts = 1;
    let report = FluentClient::new(cfg).unwrap().deliver(&evs).await;
    match &report.outcomes[0].1 {
        FluentOutcome::Failed { reason } => assert!(reason.contains("TLS"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

fn json_object() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::Value;
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
    let value = leaf.prop_recursive(3, 48, 10, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..10).prop_map(Value::Array),
            prop::collection::btree_map(".*", inner, 0..10)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map(".*", value, 0..10)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest::proptest! {
    /// Whatever the record, the server decodes exactly what serde_json reads from it.
    #[test]
    fn encoded_chunks_decode_to_the_records(
        objs in proptest::collection::vec(json_object(), 1..12),
        mode in 0..3usize,
    ) {
        let recs: Vec<Vec<u8>> = objs.iter().map(|o| serde_json::to_vec(o).unwrap()).collect();
        let evs = events(&recs);
        let client = FluentClient::new(FluentConfig {
            mode: [ForwardMode::Forward, ForwardMode::PackedForward, ForwardMode::CompressedPackedForward][mode],
            max_chunk_events: 5,
            ..FluentConfig::default()
        })
        .unwrap();
        let encoded = client.encode(&evs);
        proptest::prop_assert!(encoded.rejected.is_empty());
        let mut got = Vec::new();
        for chunk in &encoded.chunks {
            let (msg, used) = support::fluent_server::decode(&chunk.message).unwrap().unwrap();
            proptest::prop_assert_eq!(used, chunk.message.len());
            let (received, id) = support::fluent_server::decode_message(&msg).unwrap();
            proptest::prop_assert_eq!(id.as_deref(), Some(chunk.id.as_str()));
            got.extend(chunk.keys.iter().copied().zip(received));
        }
        got.sort_by_key(|(k, _)| *k);
        proptest::prop_assert_eq!(got.len(), recs.len());
        for (k, r) in got {
            let expected: serde_json::Value = serde_json::from_slice(&recs[k]).unwrap();
            proptest::prop_assert_eq!(&r.record, &expected);
            proptest::prop_assert_eq!(&r.tag, &evs[k].tag);
            proptest::prop_assert_eq!(r.secs, evs[k].time.timestamp() as u32);
        }
    }
}
