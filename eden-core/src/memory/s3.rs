//! [`DocumentStore`] in memory: buckets, ETags and conditional writes.

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{MemoryCloud, err};
use crate::cloud::{CloudError, CloudResult, DocumentStore, PutMode, StoredDocument, codes};

impl MemoryCloud {
    /// The object's bytes, if any.
    pub fn document(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let w = self.lock();
        w.buckets.get(bucket)?.get(key).map(|d| d.bytes.clone())
    }
}

#[async_trait]
impl DocumentStore for MemoryCloud {
    async fn get(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredDocument>> {
        let w = self.lock();
        let Some(objects) = w.buckets.get(bucket) else {
            return err("NoSuchBucket", "The specified bucket does not exist");
        };
        Ok(objects.get(key).cloned())
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> CloudResult<String> {
        let mut w = self.lock();
        let Some(objects) = w.buckets.get_mut(bucket) else {
            return err("NoSuchBucket", "The specified bucket does not exist");
        };
        let current = objects.get(key).map(|d| d.etag.as_str());
        let ok = match (&mode, current) {
            (PutMode::Create, None) => true,
            (PutMode::Update(want), Some(have)) => want == have,
            // If-Match on a key that does not exist: S3 answers 404, not 412.
            (PutMode::Update(_), None) => {
                return Err(
                    CloudError::new("NoSuchKey", "The specified key does not exist.")
                        .with_status(Some(404)),
                );
            }
            (PutMode::Create, Some(_)) => false,
        };
        if !ok {
            return Err(CloudError::new(
                codes::PRECONDITION_FAILED,
                "At least one of the pre-conditions you specified did not hold",
            )
            .with_status(Some(412)));
        }
        let digest = Sha256::digest(&bytes);
        let etag: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let etag = format!("\"{etag}\"");
        objects.insert(
            key.to_owned(),
            StoredDocument {
                bytes,
                etag: etag.clone(),
            },
        );
        Ok(etag)
    }
}
