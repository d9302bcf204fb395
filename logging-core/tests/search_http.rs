//! Bulk delivery over HTTP against a local Elasticsearch-like server: per-item retries and
//! rejections, whole-request failures, 413 splitting, auth (basic, SigV4).
#![cfg(feature = "search")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use base64::Engine as _;
use logging_core::search::http::{HttpSearch, HttpSearchConfig, SearchAuth};
use logging_core::search::{
    BulkConfig, BulkEncoder, BulkItem, ItemOutcome, SearchApi, SearchError, deliver_bulk,
};
use support::search_server::{SearchServer, Whole};

fn sources(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!(r#"{{"log_type":"app","log_id":"k{i}","time":"2020-03-14T12:00:00Z","msg":"日本語 {i}","n":{i}}}"#)
                .into_bytes()
        })
        .collect()
}

fn items(src: &[Vec<u8>]) -> Vec<BulkItem<'_>> {
    src.iter()
        .enumerate()
        .map(|(i, s)| BulkItem {
            key: i,
            index: "logs-app-20200314".to_owned(),
            id: Some(format!("k{i}")),
            source: s,
        })
        .collect()
}

fn fast() -> BulkConfig {
    BulkConfig {
        initial_backoff_ms: 1,
        max_backoff_ms: 5,
        ..BulkConfig::default()
    }
}

fn client(server: &SearchServer, auth: SearchAuth) -> HttpSearch {
    client_with(server, auth, HttpSearchConfig::default())
}

fn client_with(server: &SearchServer, auth: SearchAuth, config: HttpSearchConfig) -> HttpSearch {
    let config = HttpSearchConfig {
        endpoint: server.url(),
        timeout_ms: 5_000,
        ..config
    };
    HttpSearch::new(&config, auth).unwrap()
}

fn gzip_config(level: u32) -> HttpSearchConfig {
    HttpSearchConfig {
        gzip_level: Some(level),
        ..HttpSearchConfig::default()
    }
}

fn ids_in_body(body: &[u8]) -> Vec<String> {
    std::str::from_utf8(body)
        .unwrap()
        .lines()
        .step_by(2)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["index"]["_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn delivers_everything_in_bounded_chunks_with_original_sources() {
    let server = SearchServer::start().await;
    let api = client(&server, SearchAuth::None);
    let src = sources(1200);
    let report = deliver_bulk(&api, &items(&src), &fast()).await;
    assert_eq!(report.delivered(), 1200);
    assert_eq!(report.requests, 3, "500 + 500 + 200 actions");
    let st = server.state();
    assert_eq!(st.index_log.len(), 1200, "nothing duplicated");
    for (i, s) in src.iter().enumerate() {
        let doc = &st.docs[&("logs-app-20200314".to_owned(), format!("k{i}"))];
        assert_eq!(
            *doc,
            serde_json::from_slice::<serde_json::Value>(s).unwrap()
        );
    }
    // The body carries the original bytes unchanged.
    let body = std::str::from_utf8(&st.requests[0].body).unwrap();
    assert_eq!(body.lines().nth(1).unwrap().as_bytes(), &src[0][..]);
    assert_eq!(
        st.requests[0].headers["content-type"],
        "application/x-ndjson"
    );
}

#[tokio::test]
async fn retries_only_429_and_5xx_items_and_rejects_mapping_errors() {
    let server = SearchServer::start().await;
    {
        let mut st = server.state();
        st.item_script.insert("k1".into(), [429].into());
        st.item_script.insert("k2".into(), [503, 503].into());
        st.item_script.insert("k3".into(), [400].into());
    }
    let api = client(&server, SearchAuth::None);
    let src = sources(6);
    let report = deliver_bulk(&api, &items(&src), &fast()).await;
    assert_eq!(report.requests, 3);
    for (key, outcome) in &report.outcomes {
        if *key == 3 {
            assert_eq!(
                *outcome,
                ItemOutcome::Rejected {
                    status: Some(400),
                    error_type: "mapper_parsing_exception".into(),
                    reason: "failed to parse field [n] of type [long]".into(),
                }
            );
        } else {
            assert_eq!(*outcome, ItemOutcome::Delivered, "key {key}");
        }
    }
    let st = server.state();
    assert_eq!(ids_in_body(&st.requests[1].body), ["k1", "k2"]);
    assert_eq!(ids_in_body(&st.requests[2].body), ["k2"]);
    let logged: Vec<_> = st
        .index_log
        .iter()
        .map(|(_, id, _)| id.clone().unwrap())
        .collect();
    assert_eq!(logged.len(), 5, "each delivered item indexed exactly once");
    assert_eq!(logged.iter().collect::<BTreeSet<_>>().len(), 5);
}

#[tokio::test]
async fn whole_request_failures_are_retried_without_loss() {
    let server = SearchServer::start().await;
    server.state().whole = [
        Whole::Status(429),
        Whole::Status(500),
        Whole::Reset,
        Whole::Html,
    ]
    .into();
    let api = client(&server, SearchAuth::None);
    let src = sources(10);
    let report = deliver_bulk(&api, &items(&src), &fast()).await;
    assert_eq!(report.delivered(), 10);
    assert_eq!(report.requests, 5);
    assert_eq!(server.state().index_log.len(), 10);
}

#[tokio::test]
async fn short_answers_are_resent_and_ids_prevent_duplicates() {
    let server = SearchServer::start().await;
    server.state().whole = [Whole::ShortItems].into();
    let api = client(&server, SearchAuth::None);
    let src = sources(4);
    let report = deliver_bulk(&api, &items(&src), &fast()).await;
    assert_eq!(report.delivered(), 4);
    let st = server.state();
    // At-least-once: the first request was indexed, then all resent; same _id overwrites.
    assert_eq!(st.docs.len(), 4);
}

#[tokio::test]
async fn too_large_chunks_are_split_down_to_single_items() {
    let server = SearchServer::start().await;
    let src = sources(8);
    let one_item = 40 + src[0].len() + 40;
    server.state().max_body = Some(one_item * 2);
    let api = client(&server, SearchAuth::None);
    let mut big = src.clone();
    big.push(vec![b' '; one_item * 3].into_iter().chain(*b"{}").collect());
    let report = deliver_bulk(&api, &items(&big), &fast()).await;
    assert_eq!(report.delivered(), 8);
    match &report.outcomes[8].1 {
        ItemOutcome::Rejected { status, .. } => assert_eq!(*status, Some(413)),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.state().index_log.len(), 8);
}

/// After a 413 the batch builds its chunks to the size that worked: the refused round trips
/// are paid once, at the start, not once per chunk.
#[tokio::test]
async fn a_413_is_remembered_for_the_rest_of_the_batch() {
    let server = SearchServer::start().await;
    let src = sources(400);
    let items = items(&src);
    let item_bytes = BulkEncoder::new(&BulkConfig::default())
        .encode(&items[..1])
        .chunks[0]
        .body
        .len();
    let limit = item_bytes * 20;
    server.state().max_body = Some(limit);
    let api = client(&server, SearchAuth::None);
    let report = deliver_bulk(&api, &items, &fast()).await;
    assert_eq!(report.delivered(), 400);
    let st = server.state();
    assert_eq!(st.index_log.len(), 400, "nothing duplicated");
    let statuses: Vec<u16> = st.requests.iter().map(|r| r.status.unwrap()).collect();
    let refused = statuses.iter().filter(|&&s| s == 413).count();
    // 400 → 200 → 100 → 50 → 25 items are refused, 12 work; every later chunk is built to
    // what worked. Splitting each refused chunk in halves instead costs 31 refusals.
    assert_eq!(refused, 5, "{statuses:?}");
    assert!(
        statuses[refused..].iter().all(|&s| s == 200),
        "{statuses:?}"
    );
    assert!(st.requests[refused..].iter().all(|r| r.body.len() <= limit));
    let refused_bytes: usize = st.requests[..refused].iter().map(|r| r.body.len()).sum();
    let sent_bytes: usize = st.requests.iter().map(|r| r.body.len()).sum();
    assert_eq!(report.bytes_refused, refused_bytes);
    assert_eq!(report.bytes_sent, sent_bytes);
    assert_eq!(report.requests, st.requests.len());
}

#[tokio::test]
async fn requests_name_the_crate_and_version() {
    let server = SearchServer::start().await;
    let api = client(&server, SearchAuth::None);
    let src = sources(2);
    deliver_bulk(&api, &items(&src), &fast()).await;
    api.list_indices().await.unwrap();
    let expected = format!("logging-core/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(logging_core::search::http::USER_AGENT, expected);
    for r in &server.state().requests {
        assert_eq!(
            r.headers["user-agent"], expected,
            "{} {}",
            r.method, r.target
        );
    }
}

#[tokio::test]
async fn persistent_failures_are_reported_failed_with_reason() {
    let server = SearchServer::start().await;
    server.state().whole = vec![Whole::Status(503); 10].into();
    server
        .state()
        .item_script
        .insert("k0".into(), vec![503; 10].into());
    let api = client(&server, SearchAuth::None);
    let src = sources(3);
    let config = BulkConfig {
        max_attempts: 3,
        ..fast()
    };
    let report = deliver_bulk(&api, &items(&src), &config).await;
    assert_eq!(report.failed(), 3);
    assert_eq!(report.requests, 3);
    match &report.outcomes[0].1 {
        ItemOutcome::Failed { reason } => assert!(reason.contains("503"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn invalid_index_names_are_rejected_without_a_request() {
    let server = SearchServer::start().await;
    let api = client(&server, SearchAuth::None);
    let src = sources(2);
    let mut it = items(&src);
    it[1].index = "logs-Bad:Type-20200314".into();
    let report = deliver_bulk(&api, &it, &fast()).await;
    assert_eq!(report.outcomes[0].1, ItemOutcome::Delivered);
    match &report.outcomes[1].1 {
        ItemOutcome::Rejected {
            status,
            error_type,
            reason,
        } => {
            assert_eq!(*status, None);
            assert_eq!(error_type, "invalid_index_name");
            assert!(reason.contains("Bad:Type"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.state().requests.len(), 1);
}

#[tokio::test]
async fn auth_errors_fail_without_retry_or_dead_letter() {
    let server = SearchServer::start().await;
    server.state().whole = [Whole::Status(403)].into();
    let api = client(&server, SearchAuth::None);
    let src = sources(2);
    let report = deliver_bulk(&api, &items(&src), &fast()).await;
    assert_eq!(report.failed(), 2);
    assert_eq!(report.requests, 1);
}

#[tokio::test]
async fn basic_auth_is_sent() {
    let server = SearchServer::start().await;
    let api = client(
        &server,
        SearchAuth::Basic {
            username: "elastic".into(),
            password: "pä ss".into(),
        },
    );
    let src = sources(1);
    deliver_bulk(&api, &items(&src), &fast()).await;
    api.list_indices().await.unwrap();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("elastic:pä ss")
    );
    for r in &server.state().requests {
        assert_eq!(r.headers["authorization"], expected);
    }
}

#[tokio::test]
async fn sigv4_requests_carry_valid_signatures() {
    let server = SearchServer::start().await;
    let creds = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("session-token".into()),
        None,
        "test",
    );
    let api = client(
        &server,
        SearchAuth::SigV4 {
            region: "ap-northeast-1".into(),
            service: "es".into(),
            credentials: SharedCredentialsProvider::new(creds),
        },
    );
    let src = sources(3);
    assert_eq!(
        deliver_bulk(&api, &items(&src), &fast()).await.delivered(),
        3
    );
    let listed = api.list_indices().await.unwrap();
    assert_eq!(listed, ["logs-app-20200314"]);
    api.delete_indices(&["logs-app-20200314".into(), "logs-x-20200101".into()])
        .await
        .unwrap();
    let st = server.state();
    assert_eq!(st.requests.len(), 3);
    for r in &st.requests {
        assert_eq!(r.headers["x-amz-security-token"], "session-token");
        support::sigv4::verify(
            &r.method,
            &r.target,
            &r.headers,
            &r.wire_body,
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "ap-northeast-1",
            "es",
        )
        .unwrap_or_else(|e| panic!("{} {}: {e}", r.method, r.target));
        // A tampered body must not verify.
        let mut tampered = r.wire_body.clone();
        tampered.push(b' ');
        assert!(
            support::sigv4::verify(
                &r.method,
                &r.target,
                &r.headers,
                &tampered,
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "ap-northeast-1",
                "es"
            )
            .is_err()
        );
    }
    assert!(st.indices.is_empty());
}

#[tokio::test]
async fn list_and_delete_indices() {
    let server = SearchServer::start().await;
    server.state().indices = ["a-1", "b-2", "c-3"]
        .into_iter()
        .map(String::from)
        .collect();
    let api = client(&server, SearchAuth::None);
    let mut listed = api.list_indices().await.unwrap();
    listed.sort();
    assert_eq!(listed, ["a-1", "b-2", "c-3"]);
    api.delete_indices(&["a-1".into(), "c-3".into()])
        .await
        .unwrap();
    assert_eq!(api.list_indices().await.unwrap(), ["b-2"]);
    let st = server.state();
    assert_eq!(st.requests[1].target, "/a-1,c-3?ignore_unavailable=true");
}

#[tokio::test]
async fn timeouts_are_retryable_errors() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and hold connections without ever answering.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let config = HttpSearchConfig {
        endpoint: format!("http://{addr}"),
        timeout_ms: 200,
        ..HttpSearchConfig::default()
    };
    let api = HttpSearch::new(&config, SearchAuth::None).unwrap();
    let err = api.list_indices().await.unwrap_err();
    assert!(matches!(err, SearchError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("list indices"), "{err}");
}

#[tokio::test]
async fn bad_endpoints_are_config_errors() {
    let config = HttpSearchConfig {
        endpoint: "ftp://x".into(),
        ..HttpSearchConfig::default()
    };
    assert!(HttpSearch::new(&config, SearchAuth::None).is_err());
}

#[tokio::test]
async fn gzip_bodies_are_inflated_by_the_server_and_gzip_answers_by_the_client() {
    let server = SearchServer::start().await;
    let api = client_with(&server, SearchAuth::None, gzip_config(6));
    let src = sources(1200);
    let report = deliver_bulk(&api, &items(&src), &fast()).await;
    assert_eq!(report.delivered(), 1200);
    let st = server.state();
    assert_eq!(st.index_log.len(), 1200);
    for (i, s) in src.iter().enumerate() {
        let doc = &st.docs[&("logs-app-20200314".to_owned(), format!("k{i}"))];
        assert_eq!(
            *doc,
            serde_json::from_slice::<serde_json::Value>(s).unwrap()
        );
    }
    // The same NDJSON as a plain client sends, a fraction of it on the wire.
    let plain = BulkEncoder::new(&BulkConfig::default()).encode(&items(&src));
    let (mut wire, mut inflated) = (0, 0);
    for (r, chunk) in st.requests.iter().zip(&plain.chunks) {
        assert_eq!(r.headers["content-encoding"], "gzip");
        assert_eq!(r.headers["content-type"], "application/x-ndjson");
        assert_eq!(r.body, chunk.body);
        wire += r.wire_body.len();
        inflated += r.body.len();
        // Answers were gzipped (the client asked) and read.
        assert!(r.headers["accept-encoding"].contains("gzip"));
        assert!(r.answer_gzip);
    }
    assert_eq!(report.bytes_sent, inflated);
    assert!(wire * 4 < inflated, "{wire} on the wire for {inflated}");
}

#[tokio::test]
async fn plain_answers_without_accept_encoding() {
    let server = SearchServer::start().await;
    let config = HttpSearchConfig {
        accept_gzip: false,
        ..HttpSearchConfig::default()
    };
    let api = client_with(&server, SearchAuth::None, config);
    let src = sources(3);
    assert_eq!(
        deliver_bulk(&api, &items(&src), &fast()).await.delivered(),
        3
    );
    api.list_indices().await.unwrap();
    let st = server.state();
    for r in &st.requests {
        assert!(!r.headers.contains_key("accept-encoding"));
        assert!(!r.headers.contains_key("content-encoding"));
        assert!(!r.answer_gzip);
        assert_eq!(r.body, r.wire_body);
    }
}

/// The server behaves as Elasticsearch does with a body that does not inflate: it drops the
/// connection unanswered, which the client treats as a transient transport failure.
#[tokio::test]
async fn corrupt_gzip_bodies_are_refused_like_elasticsearch() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = SearchServer::start().await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let body = b"\x1f\x8b\x08\x00not really deflate";
    let head = format!(
        "POST /_bulk HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-ndjson\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tcp.read_to_end(&mut answer),
    )
    .await
    .unwrap();
    assert!(
        read.is_err() || answer.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    let st = server.state();
    assert_eq!(st.requests.len(), 1);
    assert_eq!(st.requests[0].status, None);
    assert!(st.index_log.is_empty());
}

#[tokio::test]
async fn sigv4_signs_the_compressed_body() {
    let server = SearchServer::start().await;
    let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
    let api = client_with(
        &server,
        SearchAuth::SigV4 {
            region: "us-east-1".into(),
            service: "es".into(),
            credentials: SharedCredentialsProvider::new(creds),
        },
        gzip_config(1),
    );
    let src = sources(50);
    assert_eq!(
        deliver_bulk(&api, &items(&src), &fast()).await.delivered(),
        50
    );
    let st = server.state();
    let r = &st.requests[0];
    assert_ne!(r.wire_body, r.body);
    let verify = |body: &[u8]| {
        support::sigv4::verify(
            &r.method,
            &r.target,
            &r.headers,
            body,
            "AKIDEXAMPLE",
            "secret",
            "us-east-1",
            "es",
        )
    };
    verify(&r.wire_body).unwrap();
    assert!(
        verify(&r.body).is_err(),
        "the signature covers the bytes sent"
    );
}

#[test]
fn gzip_levels_outside_the_range_are_config_errors() {
    for level in [0, 13] {
        let err = HttpSearch::new(&gzip_config(level), SearchAuth::None).unwrap_err();
        assert!(err.to_string().contains("gzip level"), "{err}");
    }
    assert!(HttpSearch::new(&gzip_config(12), SearchAuth::None).is_ok());
}
