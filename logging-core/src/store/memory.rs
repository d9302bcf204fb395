//! An in-memory object store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectStore, StoreError, StoreOp, validate_key};

/// An object stored in a [`MemoryStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The body.
    pub body: Bytes,
    /// The content type given at put.
    pub content_type: String,
}

/// An in-memory [`ObjectStore`]: a sorted map behind a mutex. Cheap to clone via `Arc`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, StoredObject>>,
    puts: Mutex<u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every object, by key (for tests and tools).
    pub fn snapshot(&self) -> BTreeMap<String, StoredObject> {
        self.objects
            .lock()
            .map(|m| m.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// How many puts succeeded (overwrites included).
    pub fn put_count(&self) -> u64 {
        self.puts
            .lock()
            .map(|n| *n)
            .unwrap_or_else(|p| *p.into_inner())
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, StoredObject>) -> T) -> T {
        // A panic elsewhere while holding the lock leaves the map consistent: keep going.
        let mut guard = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    fn location(&self) -> &str {
        "memory"
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        validate_key(StoreOp::Put, self.location(), key)?;
        self.with(|m| {
            m.insert(
                key.to_owned(),
                StoredObject {
                    body,
                    content_type: content_type.to_owned(),
                },
            )
        });
        *self.puts.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        validate_key(StoreOp::Get, self.location(), key)?;
        Ok(self.with(|m| m.get(key).map(|o| o.body.clone())))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.with(|m| {
            m.range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, _)| k.clone())
                .collect()
        }))
    }
}
