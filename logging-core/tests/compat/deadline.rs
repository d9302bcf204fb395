//! The retry budget against the Lambda deadline: with the original modules' blocks, a batch
//! whose destination cannot answer in time gets a partial batch response before the deadline,
//! not a function timeout.

#[cfg(feature = "search")]
use std::sync::Arc;
use std::time::{Duration, Instant};

use logging_core::Deadline;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::{Buckets, Rec, event, lookup};

/// A server that accepts connections, reads everything and never answers.
async fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn batch() -> serde_json::Value {
    event(&[
        Rec::Plain("not JSON"),
        Rec::Plain(r#"{"log_type":"app","log_id":"a1","time":"2020-03-14T12:00:00Z"}"#),
        Rec::Plain(r#"{"log_type":"app","log_id":"a2","time":"2020-03-14T12:00:01Z"}"#),
    ])
}

/// The lowest sequence number of the batch's records that were routed (the second record).
const FIRST_ROUTED: &str = "49590338271490256608559692538361571095921575989136580001";

/// kinesis-to-es: bulk requests of 30 s, 5 attempts (about 153 s with the backoffs) exceed the
/// 120 s timeout of the deployment guide's Terraform; a cluster that never answers gets the
/// batch a partial response before the deadline.
#[cfg(feature = "search")]
#[tokio::test]
async fn a_silent_cluster_gets_a_partial_response_before_the_deadline() {
    use crate::kinesis_to_es::V2_0_2;
    let port = silent_server().await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let overrides = [
        ("ES_HOST", Some(endpoint.as_str())),
        ("FAILED_LOG_S3_PREFIX", Some("elasticsearch")),
    ];
    let get = |name: &str| lookup(V2_0_2, &overrides, name);
    let s = crate::to_es::settings(&get).unwrap();
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let http = crate::search_env::http_search(&crate::search_env::connection(&get).unwrap(), &sdk)
        .unwrap();
    let buckets = Buckets::default();
    let p = crate::to_es::pipeline(&s, Arc::new(http), &buckets.opener()).unwrap();
    let budget = p.retry_budget().unwrap();
    assert!(budget > Duration::from_secs(150), "{budget:?}");
    assert!(
        budget > Duration::from_secs(120),
        "the guide's timeout is shorter"
    );

    let started = Instant::now();
    let deadline = Deadline::after(Duration::from_secs(3));
    let out = p
        .process_until(batch().to_string().as_bytes(), deadline)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    let r = &out.report;
    assert_eq!((r.retry, r.invalid.unknown_type), (2, 1), "{r:?}");
    assert_eq!(r.destinations[0].cut, 2);
    assert_eq!(r.batch_item_failure.as_deref(), Some(FIRST_ROUTED));
    assert_eq!(
        r.dead_letter.written, 1,
        "the failure is dead-lettered in time"
    );
}

/// kinesis-to-fluent: a server that never acknowledges (the ack timeout is 30 s, 5 attempts)
/// gets the batch a partial response before the deadline.
#[tokio::test]
async fn a_server_that_never_acks_gets_a_partial_response_before_the_deadline() {
    use crate::kinesis_to_fluent::V0_1_0;
    let port = silent_server().await;
    let endpoint = format!("127.0.0.1:{port}");
    let overrides = [("LOG_FLUENT_SINK_ENDPOINT", Some(endpoint.as_str()))];
    let s = crate::to_fluent::settings(&|name: &str| lookup(V0_1_0, &overrides, name)).unwrap();
    let buckets = Buckets::default();
    let p = crate::to_fluent::pipeline(&s, &buckets.opener()).unwrap();
    assert!(p.retry_budget().unwrap() > Duration::from_secs(300));
    let started = Instant::now();
    let out = p
        .process_until(
            batch().to_string().as_bytes(),
            Deadline::after(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(out.report.destinations[0].cut, 2, "{:?}", out.report);
    assert_eq!(out.report.batch_item_failure.as_deref(), Some(FIRST_ROUTED));
}
