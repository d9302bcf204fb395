//! Profile files: the INI file `~/.eden/config` (see
//! [Profiles](https://github.com/baikonur-oss/baikonur-rs/blob/main/docs/eden.md#profiles)),
//! read and written the way Python's `configparser` does, so files written by the original eden
//! CLI keep working and files written here can be read by it.
//!
//! Compatibility rules, each matching `configparser.ConfigParser()`:
//!
//! * one `[section]` per profile; `[default]` is an ordinary profile, while `[DEFAULT]` (upper
//!   case) holds fallback values for every profile and is not a profile itself;
//! * keys are case-insensitive (stored lower case); values are trimmed, `key = value` and
//!   `key: value` both parse, indented lines continue a value, `#`/`;` start full-line
//!   comments only (inline comments are part of the value);
//! * `%%` in a value reads as `%`, and `%` is written as `%%` (basic interpolation);
//! * writing emits `key = value` lines and a blank line after each section, byte for byte
//!   what `configparser` writes. Comments are not kept on rewrite (`configparser` drops them
//!   too); unknown keys are.
//!
//! Every change is a locked read-modify-write (an exclusive `<file>.lock`) ending in an atomic
//! rename, so two writers updating different profiles at once both survive.
//!
//! ```
//! use eden_core::config_file::{self, ConfigFile};
//! use eden_core::Profile;
//!
//! let dir = std::env::temp_dir().join(format!("eden-doc-{}", std::process::id()));
//! let path = dir.join("config");
//! let profile = Profile::example();
//! config_file::update(&path, |file| {
//!     file.set_profile(&profile);
//!     Ok(())
//! })?;
//! config_file::set_keys(&path, "default", &[("endpoint_env_type", "staging")])?;
//! let loaded = config_file::load_profile(&path, "default")?;
//! assert_eq!(loaded.endpoint_env_type, "staging");
//! assert!(config_file::check_file(&path)?.is_ok());
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), eden_core::config_file::ConfigFileError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::profile::{KeyProblem, LegacyUse, PROFILE_KEYS, Profile, ProfileError};

/// `configparser`'s section of fallback values (not a profile).
pub const DEFAULTS_SECTION: &str = "DEFAULT";

/// How long a writer waits for the lock before giving up.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// A lock file older than this is left over from a crashed writer and is removed.
const STALE_LOCK: Duration = Duration::from_secs(30);

/// What went wrong with a profile file, naming the file (and profile and key where it applies).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file does not exist.
    #[error("config file {}: not found (create it with `eden config setup`)", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The file exists but cannot be read.
    #[error("reading config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not INI as `configparser` reads it.
    #[error("parsing config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Writing the new file (temporary file, rename or directory) failed.
    #[error("writing config file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Another writer held the lock for too long, or the lock file cannot be created.
    #[error("locking config file {} with {}: {message}", path.display(), lock.display())]
    Lock {
        /// The file.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// Why.
        message: String,
    },
    /// The profile is not in the file.
    #[error("config file {}: no profile [{profile}] (profiles: {})", path.display(), available.join(", "))]
    NoProfile {
        /// The file.
        path: PathBuf,
        /// The profile asked for.
        profile: String,
        /// The profiles the file has.
        available: Vec<String>,
    },
    /// A key or value cannot be written (it would not read back the same).
    #[error("config file {}: profile [{profile}] key {key:?}: {message}", path.display())]
    InvalidEntry {
        /// The file.
        path: PathBuf,
        /// The profile.
        profile: String,
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
    /// The profile is in the file but invalid (every bad key is listed).
    #[error("config file {}: {source}", path.display())]
    Profile {
        /// The file.
        path: PathBuf,
        /// The problems, by key.
        source: ProfileError,
    },
}

/// One section: its name and `(key, value)` pairs in file order, keys lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    name: String,
    entries: Vec<(String, String)>,
}

/// The contents of a profile file: sections and keys in file order, unknown keys included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFile {
    sections: Vec<Section>,
}

/// The problems of one profile found by [`ConfigFile::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileCheck {
    /// The profile (section) name.
    pub profile: String,
    /// `(key, problem)` for every missing, empty, malformed, unknown or conflicting key;
    /// empty when valid.
    pub problems: Vec<(String, KeyProblem)>,
    /// The aws-eden-cli 0.1.5 keys it has and how each was read.
    pub legacy: Vec<LegacyUse>,
}

/// The result of checking every profile of a file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// One entry per profile, in file order.
    pub profiles: Vec<ProfileCheck>,
}

impl CheckReport {
    /// True when the file has at least one profile and no profile has a problem.
    pub fn is_ok(&self) -> bool {
        !self.profiles.is_empty() && self.profiles.iter().all(|p| p.problems.is_empty())
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.profiles.is_empty() {
            return writeln!(f, "no profiles");
        }
        for p in &self.profiles {
            for used in &p.legacy {
                writeln!(f, "[{}] {used}", p.profile)?;
            }
            if p.problems.is_empty() {
                writeln!(f, "[{}] ok", p.profile)?;
            }
            for (key, problem) in &p.problems {
                writeln!(f, "[{}] {key}: {problem}", p.profile)?;
            }
        }
        Ok(())
    }
}

/// `~/.eden/config`, or `None` when there is no home directory.
pub fn default_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".eden").join("config"))
}

fn unescape(value: &str) -> String {
    value.replace("%%", "%")
}

fn escape(value: &str) -> String {
    value.replace('%', "%%")
}

/// Why a key cannot be written so that it reads back as itself.
fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("empty key")
    } else if key.trim() != key {
        Some("leading or trailing whitespace")
    } else if key.contains(['=', ':', '\n', '\r']) {
        Some("keys cannot contain '=', ':' or line breaks")
    } else if key.starts_with(['[', '#', ';']) {
        Some("keys cannot start with '[', '#' or ';'")
    } else {
        None
    }
}

fn value_problem(value: &str) -> Option<&'static str> {
    if value.contains(['\n', '\r']) {
        Some("values cannot contain line breaks")
    } else {
        None
    }
}

fn section_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.trim() != name {
        Some("profile names cannot be empty or have leading or trailing whitespace")
    } else if name.contains([']', '[', '\n', '\r']) {
        Some("profile names cannot contain brackets or line breaks")
    } else if name == DEFAULTS_SECTION {
        Some("[DEFAULT] holds configparser's fallback values and is not a profile")
    } else {
        None
    }
}

impl ConfigFile {
    /// Parses INI text as `configparser` does (see the module documentation).
    pub fn parse(text: &str) -> Result<Self, String> {
        let options = ini::ParseOption {
            // configparser keeps quotes and backslashes as they are.
            enabled_quote: false,
            enabled_escape: false,
            enabled_indented_mutiline_value: true,
            enabled_preserve_key_leading_whitespace: false,
        };
        let ini = ini::Ini::load_from_str_opt(text, options).map_err(|e| e.to_string())?;
        let mut file = Self::default();
        for (name, props) in ini.iter() {
            let Some(name) = name else {
                if let Some((key, _)) = props.iter().next() {
                    return Err(format!(
                        "key {key:?} before the first [section] header (configparser refuses this)"
                    ));
                }
                continue;
            };
            // A repeated section continues the first (configparser's strict mode refuses it;
            // merging loses nothing).
            let index = match file.sections.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    file.sections.push(Section {
                        name: name.to_owned(),
                        entries: Vec::new(),
                    });
                    file.sections.len() - 1
                }
            };
            for (key, value) in props.iter() {
                file.sections[index].put(&key.to_ascii_lowercase(), &unescape(value));
            }
        }
        Ok(file)
    }

    /// The file text, exactly as `configparser` writes it (`[DEFAULT]` first).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let defaults = self.sections.iter().filter(|s| s.name == DEFAULTS_SECTION);
        let others = self.sections.iter().filter(|s| s.name != DEFAULTS_SECTION);
        for section in defaults.chain(others) {
            out.push_str(&format!("[{}]\n", section.name));
            for (key, value) in &section.entries {
                // configparser continues a value on tab-indented lines.
                let value = escape(value).replace('\n', "\n\t");
                out.push_str(&format!("{key} = {value}\n"));
            }
            out.push('\n');
        }
        out
    }

    /// Reads a file; [`ConfigFileError::NotFound`] when it does not exist.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigFileError> {
        let path = path.as_ref();
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ConfigFileError::NotFound {
                    path: path.to_owned(),
                });
            }
            Err(source) => {
                return Err(ConfigFileError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Self::parse(&text).map_err(|message| ConfigFileError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Reads a file, or an empty one when it does not exist.
    pub fn load_or_empty(path: impl AsRef<Path>) -> Result<Self, ConfigFileError> {
        match Self::load(path) {
            Err(ConfigFileError::NotFound { .. }) => Ok(Self::default()),
            other => other,
        }
    }

    /// Profile names in file order (`[DEFAULT]` excluded, `[default]` included).
    pub fn profiles(&self) -> Vec<String> {
        self.sections
            .iter()
            .filter(|s| s.name != DEFAULTS_SECTION)
            .map(|s| s.name.clone())
            .collect()
    }

    /// The fallback values of `[DEFAULT]` (empty when there is none).
    pub fn defaults(&self) -> BTreeMap<String, String> {
        self.sections
            .iter()
            .filter(|s| s.name == DEFAULTS_SECTION)
            .flat_map(|s| s.entries.iter().cloned())
            .collect()
    }

    /// The keys of a profile as `configparser` sees them: its own keys over `[DEFAULT]`'s.
    pub fn section(&self, profile: &str) -> Option<BTreeMap<String, String>> {
        if profile == DEFAULTS_SECTION {
            return None;
        }
        let own = self.sections.iter().find(|s| s.name == profile)?;
        let mut out = self.defaults();
        out.extend(own.entries.iter().cloned());
        Some(out)
    }

    /// The validated profile, failing with every bad key.
    pub fn profile(&self, name: &str) -> Option<Result<Profile, ProfileError>> {
        // Unknown keys are for `check` to report, not a reason to refuse the profile.
        self.section(name).map(|mut config| {
            config.retain(|k, _| {
                PROFILE_KEYS.contains(&k.as_str())
                    || crate::profile::legacy::legacy_key(k).is_some()
            });
            Profile::from_config(name, &config)
        })
    }

    /// Sets one key of a profile (creating the profile), keeping its position when it exists.
    pub fn set(&mut self, profile: &str, key: &str, value: &str) -> Result<(), String> {
        if let Some(why) = section_problem(profile).or_else(|| key_problem(key)) {
            return Err(why.to_owned());
        }
        if let Some(why) = value_problem(value) {
            return Err(why.to_owned());
        }
        let key = key.to_ascii_lowercase();
        match self.sections.iter_mut().find(|s| s.name == profile) {
            Some(section) => section.put_synced(&key, value),
            None => self.sections.push(Section {
                name: profile.to_owned(),
                entries: vec![(key, value.to_owned())],
            }),
        }
        Ok(())
    }

    /// Writes the eleven keys of `profile` into its section, keeping the section's other keys.
    pub fn set_profile(&mut self, profile: &Profile) {
        let index = match self.sections.iter().position(|s| s.name == profile.name) {
            Some(i) => i,
            None => {
                self.sections.push(Section {
                    name: profile.name.clone(),
                    entries: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        let config = profile.to_config();
        for key in PROFILE_KEYS {
            if let Some(value) = config.get(key) {
                self.sections[index].put_synced(key, value);
            }
        }
    }

    /// Removes a profile; true when it was there.
    pub fn remove_profile(&mut self, name: &str) -> bool {
        let before = self.sections.len();
        self.sections.retain(|s| s.name != name);
        self.sections.len() != before
    }

    /// Checks every profile: each missing, empty, malformed or unknown key, by profile and key.
    pub fn check(&self) -> CheckReport {
        CheckReport {
            profiles: self
                .profiles()
                .into_iter()
                .map(|name| {
                    let config = self.section(&name).unwrap_or_default();
                    ProfileCheck {
                        problems: Profile::check(&config),
                        legacy: Profile::legacy_keys(&config),
                        profile: name,
                    }
                })
                .collect(),
        }
    }
}

impl Section {
    /// Sets `key`, and the aws-eden-cli 0.1.5 key it replaces when the section still has
    /// that one, so the two never disagree (a file shared by both CLIs keeps working).
    fn put_synced(&mut self, key: &str, value: &str) {
        use crate::profile::legacy::{Becomes, LEGACY_KEYS};
        for old in &LEGACY_KEYS {
            if matches!(old.becomes, Becomes::Renamed(new) if new == key)
                && self.entries.iter().any(|(k, _)| k == old.key)
            {
                self.put(old.key, value);
            }
        }
        self.put(key, value);
    }

    fn put(&mut self, key: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_owned(),
            None => self.entries.push((key.to_owned(), value.to_owned())),
        }
    }
}

/// Loads one profile from a file, validated.
pub fn load_profile(path: impl AsRef<Path>, name: &str) -> Result<Profile, ConfigFileError> {
    let path = path.as_ref();
    let file = ConfigFile::load(path)?;
    match file.profile(name) {
        Some(Ok(profile)) => Ok(profile),
        Some(Err(source)) => Err(ConfigFileError::Profile {
            path: path.to_owned(),
            source,
        }),
        None => Err(ConfigFileError::NoProfile {
            path: path.to_owned(),
            profile: name.to_owned(),
            available: file.profiles(),
        }),
    }
}

/// Checks every profile of a file.
pub fn check_file(path: impl AsRef<Path>) -> Result<CheckReport, ConfigFileError> {
    Ok(ConfigFile::load(path)?.check())
}

/// Sets keys of one profile (the original `config setup`), creating the file, its directory
/// and the profile when missing; the other profiles and unknown keys are kept.
pub fn set_keys(
    path: impl AsRef<Path>,
    profile: &str,
    keys: &[(&str, &str)],
) -> Result<(), ConfigFileError> {
    let path = path.as_ref();
    update(path, |file| {
        for (key, value) in keys {
            file.set(profile, key, value)
                .map_err(|message| ConfigFileError::InvalidEntry {
                    path: path.to_owned(),
                    profile: profile.to_owned(),
                    key: (*key).to_owned(),
                    message,
                })?;
        }
        Ok(())
    })
}

/// Locked read-modify-write: takes `<path>.lock`, reads the file (empty when missing), lets
/// `change` edit it, and replaces the file atomically (temporary file, then rename). Nothing is
/// written when `change` fails.
///
/// This blocks (file I/O, and short sleeps while another writer holds the lock): from async
/// code, call it on a blocking thread (`tokio::task::spawn_blocking`), as
/// [`crate::remote::RemoteProfiles`] does.
pub fn update<T>(
    path: impl AsRef<Path>,
    change: impl FnOnce(&mut ConfigFile) -> Result<T, ConfigFileError>,
) -> Result<T, ConfigFileError> {
    let path = path.as_ref();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| ConfigFileError::Write {
            path: path.to_owned(),
            source,
        })?;
    }
    let _lock = FileLock::acquire(path)?;
    let mut file = ConfigFile::load_or_empty(path)?;
    let out = change(&mut file)?;
    write_atomic(path, file.to_text().as_bytes()).map_err(|source| ConfigFileError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(out)
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`, keeping the
/// old file's permissions; readers see the old or the new file, never a partial one.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let tmp = dir.join(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        fastrand::u32(..)
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Ok(meta) = fs::metadata(path) {
            fs::set_permissions(&tmp, meta.permissions())?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: do not leave the temporary file behind.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An exclusive `<path>.lock`, removed on drop.
struct FileLock {
    lock: PathBuf,
}

impl FileLock {
    fn acquire(path: &Path) -> Result<Self, ConfigFileError> {
        let mut lock = path.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        let started = SystemTime::now();
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(mut f) => {
                    // The pid is for humans looking at a left-over lock.
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(Self { lock });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let age = fs::metadata(&lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|m| m.elapsed().ok());
                    if age.is_some_and(|a| a > STALE_LOCK) {
                        // Left by a writer that crashed: take it over.
                        let _ = fs::remove_file(&lock);
                        continue;
                    }
                    if started.elapsed().unwrap_or_default() > LOCK_TIMEOUT {
                        return Err(ConfigFileError::Lock {
                            path: path.to_owned(),
                            lock,
                            message: format!(
                                "held by another writer for more than {LOCK_TIMEOUT:?}"
                            ),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(5 + fastrand::u64(0..20)));
                }
                Err(e) => {
                    return Err(ConfigFileError::Lock {
                        path: path.to_owned(),
                        lock,
                        message: e.to_string(),
                    });
                }
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.lock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_configparser() {
        let text = "# comment\n[default]\nNAME_PREFIX = web\nurl: http://x/#frag ; not a comment\n\
                    quoted = \"as is\"\nmulti = one\n\ttwo\npct = 50%%\nempty =\n\n[dev]\nname_prefix=dev\n";
        let f = ConfigFile::parse(text).unwrap();
        assert_eq!(f.profiles(), ["default", "dev"]);
        let d = f.section("default").unwrap();
        assert_eq!(d["name_prefix"], "web");
        assert_eq!(d["url"], "http://x/#frag ; not a comment");
        assert_eq!(d["quoted"], "\"as is\"");
        assert_eq!(d["multi"], "one\ntwo");
        assert_eq!(d["pct"], "50%");
        assert_eq!(d["empty"], "");
        assert!(ConfigFile::parse("key = 1\n[a]\n").is_err());
    }

    #[test]
    fn writes_like_configparser() {
        let mut f = ConfigFile::default();
        f.set("default", "Name_Prefix", "web").unwrap();
        f.set("default", "pct", "5%").unwrap();
        f.set("DEFAULT", "x", "1").unwrap_err();
        f.set("a b", "k", "").unwrap();
        assert_eq!(
            f.to_text(),
            "[default]\nname_prefix = web\npct = 5%%\n\n[a b]\nk = \n\n"
        );
        assert_eq!(ConfigFile::parse(&f.to_text()).unwrap(), f);
        assert!(f.set("p", "k", "a\nb").is_err());
        assert!(f.set("p", "k=v", "a").is_err());
        assert!(f.set("p]", "k", "a").is_err());
    }

    #[test]
    fn defaults_section_is_inherited_not_a_profile() {
        let f = ConfigFile::parse("[DEFAULT]\nendpoint_env_type = dev\n\n[p]\nname_prefix = a\n")
            .unwrap();
        assert_eq!(f.profiles(), ["p"]);
        assert_eq!(f.section("p").unwrap()["endpoint_env_type"], "dev");
        assert!(f.section("DEFAULT").is_none());
        assert!(f.to_text().starts_with("[DEFAULT]\n"));
    }

    #[test]
    fn check_reports_by_profile_and_key() {
        let mut f = ConfigFile::default();
        f.set_profile(&Profile::example());
        f.set("default", "colour", "blue").unwrap();
        f.set("dev", "name_prefix", "").unwrap();
        let report = f.check();
        assert!(!report.is_ok());
        assert_eq!(
            report.profiles[0].problems,
            [("colour".to_owned(), KeyProblem::Unknown)]
        );
        assert_eq!(report.profiles[1].problems.len(), 11);
        let text = report.to_string();
        assert!(text.contains("[default] colour: unknown key"), "{text}");
        assert!(text.contains("[dev] name_prefix: empty"), "{text}");
        assert!(text.contains("[dev] target_cluster: missing"), "{text}");
        assert!(!ConfigFile::default().check().is_ok());
    }
}
