//! One conformance suite for every `ObjectStore`: memory, local directory, S3 on moto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "aws")]
mod moto;

use bytes::Bytes;
use logging_core::store::{FaultyStore, LocalDirStore, MemoryStore, ObjectStore, StoreError};

/// The checks every backend must pass, so the in-memory and local stores cannot drift from S3.
async fn conformance(store: &dyn ObjectStore, base: &str) {
    let k1 = format!("{base}/a/2020-03/14/one.gz");
    let k2 = format!("{base}/a/2020-03/14/two.gz");
    let k3 = format!("{base}/b/three.gz");
    assert_eq!(
        store.get(&k1).await.unwrap(),
        None,
        "missing key reads as None"
    );
    assert!(store.list(&format!("{base}/")).await.unwrap().is_empty());
    store
        .put(&k2, Bytes::from_static(b"two"), "application/gzip")
        .await
        .unwrap();
    store
        .put(&k1, Bytes::from_static(b"\x1f\x8bone"), "application/gzip")
        .await
        .unwrap();
    store
        .put(&k3, Bytes::from_static(b""), "application/gzip")
        .await
        .unwrap();
    assert_eq!(
        store.get(&k1).await.unwrap().as_deref(),
        Some(&b"\x1f\x8bone"[..])
    );
    assert_eq!(store.get(&k3).await.unwrap().as_deref(), Some(&b""[..]));
    // Overwrite replaces.
    store
        .put(&k1, Bytes::from_static(b"uno"), "application/gzip")
        .await
        .unwrap();
    assert_eq!(store.get(&k1).await.unwrap().as_deref(), Some(&b"uno"[..]));
    assert_eq!(
        store.list(&format!("{base}/")).await.unwrap(),
        vec![k1.clone(), k2.clone(), k3.clone()]
    );
    assert_eq!(
        store.list(&format!("{base}/a/")).await.unwrap(),
        vec![k1.clone(), k2.clone()]
    );
    assert_eq!(
        store.list(&format!("{base}/a/2020-03/14/o")).await.unwrap(),
        vec![k1]
    );
    assert!(store.list(&format!("{base}/zzz")).await.unwrap().is_empty());
    for bad in ["", "/abs", "a//b", "a/../b", "a/./b", "trailing/"] {
        let e = store.put(bad, Bytes::new(), "x").await.unwrap_err();
        assert!(matches!(e, StoreError::InvalidKey { .. }), "{bad}: {e}");
    }
    // Many keys: listing pages through everything.
    for i in 0..1005 {
        store
            .put(&format!("{base}/many/{i:05}"), Bytes::new(), "x")
            .await
            .unwrap();
    }
    let many = store.list(&format!("{base}/many/")).await.unwrap();
    assert_eq!(many.len(), 1005);
    assert!(many.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn memory_store_conforms() {
    conformance(&MemoryStore::new(), "base").await;
}

#[tokio::test]
async fn local_dir_store_conforms() {
    let dir = std::env::temp_dir().join(format!("logging-core-store-{:016x}", fastrand::u64(..)));
    let store = LocalDirStore::new(&dir);
    conformance(&store, "base").await;
    // Listing never walks outside the root.
    assert!(store.list("../").await.unwrap().is_empty());
    assert!(store.list("base/../../").await.unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn faulty_store_fails_then_recovers() {
    let store = FaultyStore::new(MemoryStore::new());
    store.fail_puts("x/", 2);
    for _ in 0..2 {
        let e = store.put("x/1", Bytes::new(), "t").await.unwrap_err();
        assert!(matches!(e, StoreError::Backend { .. }));
        assert!(e.to_string().contains("x/1"), "{e}");
    }
    store
        .put("x/1", Bytes::from_static(b"ok"), "t")
        .await
        .unwrap();
    store.put("y/1", Bytes::new(), "t").await.unwrap();
    assert_eq!(store.inner().put_count(), 2);
    conformance(&store, "base").await;
}

#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_conforms_on_moto() {
    let client = moto::s3_client().await;
    let bucket = moto::bucket(&client, "conformance").await;
    let store = logging_core::store::s3::S3Store::new(client.clone(), &bucket);
    conformance(&store, "base").await;
    // A missing bucket is an error naming the step, bucket and key.
    let missing = logging_core::store::s3::S3Store::new(client, moto::unique("missing"));
    let e = missing
        .put("k", Bytes::new(), "t")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("put object s3://missing-") && e.contains("NoSuchBucket"),
        "{e}"
    );
}
