//! One conformance suite for `SearchApi`, run against the in-memory cluster and against the
//! HTTP client talking to the local Elasticsearch-like server, so the two cannot drift.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bytes::Bytes;
use logging_core::search::{
    BulkConfig, BulkEncoder, BulkItem, ItemOutcome, MemorySearch, SearchApi, deliver_bulk,
};

async fn conformance(api: &dyn SearchApi, script: &dyn Fn(&str, Vec<u16>)) {
    assert!(api.list_indices().await.unwrap().is_empty());

    script("b", vec![400]);
    let sources: [&[u8]; 3] = [b"{\"v\":1}", b"{\"v\":\"x\"}", b"{\"v\":3}"];
    let items: Vec<BulkItem<'_>> = ["a", "b", "c"]
        .iter()
        .zip(sources)
        .enumerate()
        .map(|(key, (id, source))| BulkItem {
            key,
            index: if key == 2 {
                "conf-2-20200102"
            } else {
                "conf-1-20200101"
            }
            .into(),
            id: Some((*id).into()),
            source,
        })
        .collect();
    let encoded = BulkEncoder::new(&BulkConfig::default()).encode(&items);
    assert_eq!(encoded.chunks.len(), 1);
    let reply = api.bulk(encoded.chunks[0].body.clone()).await.unwrap();
    let statuses: Vec<u16> = reply.items.iter().map(|i| i.status).collect();
    assert_eq!(statuses, [201, 400, 201]);
    assert_eq!(
        reply.items[1].error_type.as_deref(),
        Some("mapper_parsing_exception")
    );
    assert!(reply.items[0].error_type.is_none());

    // Same _id again: overwritten, not duplicated; the engine reports it delivered.
    let report = deliver_bulk(api, &items[..1], &BulkConfig::default()).await;
    assert_eq!(report.outcomes[0].1, ItemOutcome::Delivered);

    let mut listed = api.list_indices().await.unwrap();
    listed.sort();
    assert_eq!(listed, ["conf-1-20200101", "conf-2-20200102"]);

    api.delete_indices(&["conf-1-20200101".into(), "missing-20200101".into()])
        .await
        .unwrap();
    assert_eq!(api.list_indices().await.unwrap(), ["conf-2-20200102"]);
    api.delete_indices(&[]).await.unwrap();

    // An empty body is not an error for the API (the engine never sends one).
    let _ = api.bulk(Bytes::new()).await;
}

#[tokio::test]
async fn memory_conforms() {
    let api = MemorySearch::new();
    conformance(&api, &|id, statuses| api.script_item(id, statuses)).await;
    assert_eq!(api.documents("conf-2-20200102").len(), 1);
}

#[cfg(feature = "search")]
#[tokio::test]
async fn http_client_against_local_server_conforms() {
    use logging_core::search::http::{HttpSearch, HttpSearchConfig, SearchAuth};
    let server = support::search_server::SearchServer::start().await;
    let config = HttpSearchConfig {
        endpoint: server.url(),
        ..HttpSearchConfig::default()
    };
    let api = HttpSearch::new(&config, SearchAuth::None).unwrap();
    conformance(&api, &|id, statuses| {
        server
            .state()
            .item_script
            .insert(id.to_owned(), statuses.into());
    })
    .await;
    assert_eq!(server.state().docs.len(), 1);
}
