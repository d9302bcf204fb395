//! A wrapper that injects failures into any [`ObjectStore`] (tests, fault drills).

use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectStore, StoreError, StoreOp};

/// One injected fault: puts whose key contains `key_contains` fail, `remaining` more times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutFault {
    /// Substring of the keys to fail.
    pub key_contains: String,
    /// How many more puts fail (`u32::MAX`: always).
    pub remaining: u32,
}

/// Wraps a store and fails chosen puts with a backend error, as a throttled or unavailable
/// service would. Gets and lists pass through.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    faults: Mutex<Vec<PutFault>>,
    location: String,
}

impl<S: ObjectStore> FaultyStore<S> {
    /// Wraps `inner` with no fault.
    pub fn new(inner: S) -> Self {
        let location = format!("faulty({})", inner.location());
        Self {
            inner,
            faults: Mutex::new(Vec::new()),
            location,
        }
    }

    /// Fails the next `times` puts whose key contains `key_contains` (`u32::MAX`: always).
    pub fn fail_puts(&self, key_contains: impl Into<String>, times: u32) {
        self.lock().push(PutFault {
            key_contains: key_contains.into(),
            remaining: times,
        });
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The faults still armed, in the order they were added: `remaining` shows how many puts
    /// each has failed so far (a fault added with `n` that now shows `n - k` has failed `k`).
    pub fn faults(&self) -> Vec<PutFault> {
        self.lock().clone()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PutFault>> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl<S: ObjectStore> ObjectStore for FaultyStore<S> {
    fn location(&self) -> &str {
        &self.location
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        let fail = {
            let mut faults = self.lock();
            match faults
                .iter_mut()
                .find(|f| f.remaining > 0 && key.contains(&f.key_contains))
            {
                Some(f) => {
                    if f.remaining != u32::MAX {
                        f.remaining -= 1;
                    }
                    true
                }
                None => false,
            }
        };
        if fail {
            return Err(StoreError::backend(
                StoreOp::Put,
                &self.location,
                key,
                "injected fault: SlowDown",
                None,
            ));
        }
        self.inner.put(key, body, content_type).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.inner.get(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }
}
