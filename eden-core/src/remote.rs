//! Remote profiles: profiles pushed to, pulled from, listed in and removed from the state
//! table, as the original CLI's `config push/pull/ls/remote-rm` did (see
//! [Profiles](https://github.com/baikonur-oss/baikonur-rs/blob/main/docs/eden.md#profiles)).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use eden_core::memory::{MemoryCloud, MemoryOptions};
//! use eden_core::remote::RemoteProfiles;
//! use eden_core::Profile;
//!
//! let memory = MemoryCloud::with_reference(&Profile::example(), MemoryOptions::default());
//! let remote = RemoteProfiles::new(memory.cloud());
//! remote.push(&Profile::example()).await?;
//! assert_eq!(remote.pull("default").await?, Profile::example());
//! assert_eq!(remote.list().await?[0].name, "default");
//! assert!(remote.remove("default").await?);
//! # Ok::<(), eden_core::remote::RemoteError>(())
//! # }).unwrap();
//! ```

use std::path::Path;
use std::time::Duration;

use crate::cloud::Cloud;
use crate::config_file::{self, ConfigFileError};
use crate::environment::{Environment, EnvironmentRecord};
use crate::profile::Profile;

/// Default limit for creating the state table and waiting until it is ACTIVE.
pub const DEFAULT_TABLE_TIMEOUT: Duration = Duration::from_secs(120);

/// What went wrong with a remote profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The profile is not in the state table.
    #[error("profile {profile} is not in state table {table}")]
    NotFound {
        /// Profile.
        profile: String,
        /// Table.
        table: String,
    },
    /// The profile name cannot be used in the state table.
    #[error("profile name {profile:?} is invalid: {message}")]
    InvalidName {
        /// Profile.
        profile: String,
        /// Why.
        message: String,
    },
    /// Creating the table (or waiting for it to be ACTIVE) took too long.
    #[error("state table {table}: not ACTIVE after {waited:?}")]
    TableTimeout {
        /// Table.
        table: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The state table failed, or the stored profile is invalid.
    #[error(transparent)]
    State(#[from] crate::Error),
    /// The local profile file failed.
    #[error(transparent)]
    File(#[from] ConfigFileError),
    /// The blocking task reading or writing the profile file did not finish (it panicked or
    /// the runtime shut down).
    #[error("profile file {path}: the file task failed: {message}")]
    FileTask {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// Runs blocking profile-file work (reads, the lock file's retries) off the async executor.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, ConfigFileError> + Send + 'static,
) -> Result<T, RemoteError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(RemoteError::FileTask {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// A profile name usable in the state table and the HTTP API: 1 to 128 letters, digits, `.`,
/// `_` or `-`, not starting with `_` (hash keys starting with `_` are eden's own, such as
/// `_profile` and `_lease`).
pub fn validate_profile_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty".into());
    }
    if name.len() > 128 {
        return Err(format!("{} characters, at most 128", name.len()));
    }
    if name.starts_with('_') {
        return Err("names starting with '_' are reserved for eden's own items".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{c:?} is not allowed (letters, digits, '.', '_', '-')"
        ));
    }
    Ok(())
}

/// A profile as listed by [`RemoteProfiles::list`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RemoteProfile {
    /// Profile name.
    pub name: String,
    /// False when environments of this profile are recorded but the profile itself is not.
    pub pushed: bool,
    /// Its environments, with endpoint and last-updated time.
    pub environments: Vec<EnvironmentRecord>,
}

/// Profiles in the state table.
#[derive(Debug, Clone)]
pub struct RemoteProfiles {
    environment: Environment,
    table_timeout: Duration,
}

impl RemoteProfiles {
    /// Profiles in the state table `eden` on `cloud`.
    pub fn new(cloud: Cloud) -> Self {
        Self::from_environment(Environment::new(cloud))
    }

    /// Profiles in the state table of `environment`.
    pub fn from_environment(environment: Environment) -> Self {
        Self {
            environment,
            table_timeout: DEFAULT_TABLE_TIMEOUT,
        }
    }

    /// Uses another state table.
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.environment = self.environment.with_table(table);
        self
    }

    /// Limits creating the table and waiting for ACTIVE on push.
    pub fn with_table_timeout(mut self, timeout: Duration) -> Self {
        self.table_timeout = timeout;
        self
    }

    /// The state table.
    pub fn table(&self) -> &str {
        self.environment.table()
    }

    /// Stores a profile, creating the table when missing (and waiting until it is ACTIVE).
    pub async fn push(&self, profile: &Profile) -> Result<(), RemoteError> {
        validate_profile_name(&profile.name).map_err(|message| RemoteError::InvalidName {
            profile: profile.name.clone(),
            message,
        })?;
        match tokio::time::timeout(self.table_timeout, self.environment.push_profile(profile)).await
        {
            Ok(result) => Ok(result?),
            Err(_) => Err(RemoteError::TableTimeout {
                table: self.table().to_owned(),
                waited: self.table_timeout,
            }),
        }
    }

    /// Pushes profile `name` of a local profile file (read on a blocking thread).
    pub async fn push_from_file(&self, path: &Path, name: &str) -> Result<Profile, RemoteError> {
        let (owned, section) = (path.to_owned(), name.to_owned());
        let profile = blocking(path, move || config_file::load_profile(&owned, &section)).await?;
        self.push(&profile).await?;
        Ok(profile)
    }

    /// Reads a profile; [`RemoteError::NotFound`] when it is not there.
    pub async fn pull(&self, name: &str) -> Result<Profile, RemoteError> {
        self.environment
            .pull_profile(name)
            .await?
            .ok_or_else(|| RemoteError::NotFound {
                profile: name.to_owned(),
                table: self.table().to_owned(),
            })
    }

    /// Pulls a profile into a local profile file as section `save_as` (default: its own
    /// name), keeping the file's other profiles and the section's unknown keys. The file is
    /// locked and written on a blocking thread, off the async executor.
    pub async fn pull_to_file(
        &self,
        name: &str,
        path: &Path,
        save_as: Option<&str>,
    ) -> Result<Profile, RemoteError> {
        let mut profile = self.pull(name).await?;
        if let Some(section) = save_as {
            profile.name = section.to_owned();
        }
        let (owned, written) = (path.to_owned(), profile.clone());
        blocking(path, move || {
            config_file::update(&owned, |file| {
                file.set_profile(&written);
                Ok(())
            })
        })
        .await?;
        Ok(profile)
    }

    /// Every profile with its environments, by name; profiles that only have environments
    /// recorded come with `pushed: false`.
    pub async fn list(&self) -> Result<Vec<RemoteProfile>, RemoteError> {
        let names = self.environment.list_profiles().await?;
        let environments = self.environment.list(None).await?;
        let mut out: Vec<RemoteProfile> = names
            .into_iter()
            .map(|name| RemoteProfile {
                name,
                pushed: true,
                environments: Vec::new(),
            })
            .collect();
        for record in environments {
            match out.iter_mut().find(|p| p.name == record.profile) {
                Some(p) => p.environments.push(record),
                None => out.push(RemoteProfile {
                    name: record.profile.clone(),
                    pushed: false,
                    environments: vec![record],
                }),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a profile (its environments stay recorded); true when it was there.
    pub async fn remove(&self, name: &str) -> Result<bool, RemoteError> {
        Ok(self.environment.remove_profile(name).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::CreateOptions;
    use crate::memory::{MemoryCloud, MemoryOptions};

    #[test]
    fn profile_names() {
        assert!(validate_profile_name("default").is_ok());
        assert!(validate_profile_name("dev-1.eu_west").is_ok());
        for bad in ["", "_profile", "a b", "a/b", &"x".repeat(129)] {
            assert!(validate_profile_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn push_pull_list_remove() {
        let profile = Profile::example();
        let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
        let remote = RemoteProfiles::new(memory.cloud()).with_table("eden-t");
        assert!(remote.list().await.unwrap().is_empty());
        assert!(matches!(
            remote.pull("default").await,
            Err(RemoteError::NotFound { .. })
        ));
        remote.push(&profile).await.unwrap();
        let mut bad = profile.clone();
        bad.name = "_x".into();
        assert!(matches!(
            remote.push(&bad).await,
            Err(RemoteError::InvalidName { .. })
        ));
        Environment::new(memory.cloud())
            .with_table("eden-t")
            .create(
                &profile,
                "one",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1",
                &CreateOptions::default().now(1_700_000_000),
            )
            .await
            .unwrap();
        let listed = remote.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].pushed);
        assert_eq!(
            listed[0].environments[0].endpoint,
            "api-one.dev.example.com"
        );
        assert_eq!(listed[0].environments[0].last_updated, 1_700_000_000);
        assert!(remote.remove("default").await.unwrap());
        assert!(!remote.remove("default").await.unwrap());
        let listed = remote.list().await.unwrap();
        assert!(!listed[0].pushed);
        assert_eq!(listed[0].environments.len(), 1);
    }
}
