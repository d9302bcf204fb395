//! The [`DocumentStore`] suite.

use crate::cloud::{DocumentStore, PutMode, codes};

use super::{Fixture, code, err, not_found, ok};

/// Holds a [`DocumentStore`] to what eden relies on:
///
/// * a key that does not exist reads as `None`; a bucket that does not exist is `NoSuchBucket`
///   for reads and writes;
/// * a create (`If-None-Match: *`) succeeds once and then answers `PreconditionFailed`; an
///   update (`If-Match`) succeeds with the current ETag and answers `PreconditionFailed` with a
///   stale one; an update of a key that does not exist fails (`NoSuchKey`, as AWS answers);
/// * a read answers the bytes and the ETag of the latest write, which differs from the
///   previous one.
pub async fn s3(api: &dyn DocumentStore, f: &Fixture) {
    let u = &f.unique;
    let bucket = &f.bucket;
    let key = format!("conformance/{u}/endpoints.json");

    let what = "GetObject of a key that does not exist";
    assert_eq!(ok(api.get(bucket, &key).await, what), None, "{what}");
    let missing = format!("none-{u}-bucket");
    let what = "GetObject in a bucket that does not exist";
    not_found(
        &err(api.get(&missing, &key).await, what),
        &["NoSuchBucket"],
        what,
    );
    let what = "PutObject in a bucket that does not exist";
    not_found(
        &err(
            api.put(&missing, &key, b"{}".to_vec(), PutMode::Create)
                .await,
            what,
        ),
        &["NoSuchBucket"],
        what,
    );

    let what = "PutObject with If-Match on a key that does not exist";
    let e = err(
        api.put(
            bucket,
            &key,
            b"{}".to_vec(),
            PutMode::Update("\"0123456789abcdef0123456789abcdef\"".into()),
        )
        .await,
        what,
    );
    not_found(&e, &["NoSuchKey"], what);
    assert_eq!(
        ok(api.get(bucket, &key).await, what),
        None,
        "{what}: nothing written"
    );

    let what = "PutObject with If-None-Match: *";
    let first = ok(
        api.put(bucket, &key, b"{\"v\":1}".to_vec(), PutMode::Create)
            .await,
        what,
    );
    assert!(!first.is_empty(), "{what}: an ETag");
    let what = "PutObject with If-None-Match: * of a key that exists";
    code(
        &err(
            api.put(bucket, &key, b"{\"v\":2}".to_vec(), PutMode::Create)
                .await,
            what,
        ),
        &[codes::PRECONDITION_FAILED],
        what,
    );
    let what = "PutObject with If-Match and the current ETag";
    let second = ok(
        api.put(
            bucket,
            &key,
            b"{\"v\":2}".to_vec(),
            PutMode::Update(first.clone()),
        )
        .await,
        what,
    );
    assert_ne!(second, first, "{what}: a new ETag");
    let what = "PutObject with If-Match and a stale ETag";
    code(
        &err(
            api.put(bucket, &key, b"{\"v\":3}".to_vec(), PutMode::Update(first))
                .await,
            what,
        ),
        &[codes::PRECONDITION_FAILED],
        what,
    );
    let what = "GetObject of the latest write";
    let got = ok(api.get(bucket, &key).await, what).unwrap_or_else(|| panic!("{what}: none"));
    assert_eq!(
        (got.bytes.as_slice(), got.etag.as_str()),
        (b"{\"v\":2}".as_slice(), second.as_str()),
        "{what}"
    );
}
