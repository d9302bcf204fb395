//! An object store in a local directory: key `a/b/c.gz` is the file `{root}/a/b/c.gz`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectStore, StoreError, StoreOp, validate_key};

/// An [`ObjectStore`] in a local directory, for tools and the local example.
///
/// Writes go to a temporary file renamed into place, so a reader never sees half an object
/// and an overwrite is atomic. Blocking file I/O runs on tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct LocalDirStore {
    root: PathBuf,
    location: String,
}

impl LocalDirStore {
    /// A store rooted at `root` (created on the first put if missing).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let location = format!("file://{}", root.display());
        Self { root, location }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(key.split('/'));
        p
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: StoreOp,
        key: &str,
        f: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let err = |e: io::Error| {
            StoreError::backend(op, &self.location, key, e.to_string(), Some(Box::new(e)))
        };
        match tokio::task::spawn_blocking(f).await {
            Ok(r) => r.map_err(err),
            Err(join) => Err(StoreError::backend(
                op,
                &self.location,
                key,
                format!("file I/O task failed: {join}"),
                None,
            )),
        }
    }
}

fn write_atomically(path: &Path, body: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "key has no parent"))?;
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{:016x}", fastrand::u64(..)));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn collect(dir: &Path, key_prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // Temporary files of writes in progress are not objects.
        if name.starts_with('.') {
            continue;
        }
        let key = if key_prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{key_prefix}/{name}")
        };
        if entry.file_type()?.is_dir() {
            collect(&entry.path(), &key, out)?;
        } else {
            out.push(key);
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for LocalDirStore {
    fn location(&self) -> &str {
        &self.location
    }

    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
        validate_key(StoreOp::Put, &self.location, key)?;
        let path = self.path(key);
        self.blocking(StoreOp::Put, key, move || write_atomically(&path, &body))
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        validate_key(StoreOp::Get, &self.location, key)?;
        let path = self.path(key);
        self.blocking(StoreOp::Get, key, move || match std::fs::read(&path) {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Walk only the deepest directory the prefix names completely.
        let dir_part = prefix.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        // No valid key lies under such a directory; never walk outside the root.
        if !dir_part.is_empty()
            && dir_part
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Ok(Vec::new());
        }
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path(dir_part)
        };
        let dir_part = dir_part.to_owned();
        let prefix_owned = prefix.to_owned();
        let mut keys = self
            .blocking(StoreOp::List, prefix, move || {
                let mut out = Vec::new();
                collect(&start, &dir_part, &mut out)?;
                out.retain(|k| k.starts_with(&prefix_owned));
                Ok(out)
            })
            .await?;
        keys.sort();
        Ok(keys)
    }
}
