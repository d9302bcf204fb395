//! Moving from aws-eden-cli 0.1.5: its state table, copied into eden's layout.
//!
//! aws-eden-cli 0.1.5 kept one DynamoDB table (default `eden`) keyed by `env_name` alone:
//!
//! * `_profile_<profile>` items, with the pushed profile as JSON under `profile`, its keys
//!   the environment variable names aws-eden-core 0.1.2 read (`CONFIG_BUCKET`,
//!   `NAME_PREFIX`, ...);
//! * `<profile>$<name_prefix>-<environment>` items with `endpoint` (the host),
//!   `last_updated_time` (epoch seconds as a decimal string) and `name`.
//!
//! eden keys its table by `type` (the profile, or `_profile`) and `name` (the environment or
//! profile name). DynamoDB cannot change a table's key, so [`migrate_state`] copies the items
//! into another table, leaving the old one as it is (aws-eden-cli 0.1.5 keeps working on it,
//! which is the rollback). It is a dry run unless asked to apply, and idempotent: items
//! already copied are reported as such, items that differ from what is in the new table are
//! reported and left alone.
//!
//! Environments copied this way are listed by eden, but stay refused by create and delete:
//! their resources carry no eden ownership tags (aws-eden-core 0.1.2 wrote none), and eden
//! never changes what it cannot prove it created. Delete them with aws-eden-cli 0.1.5, or
//! recreate them with eden under a new name.
//!
//! While the old table keeps its name, eden answers every call on it with
//! [`Error::LegacyStateTable`], naming the table and this migration, and changes nothing.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use eden_core::cloud::{AttrValue, Item};
//! use eden_core::memory::{MemoryCloud, MemoryOptions};
//! use eden_core::migration::{MigrateOptions, migrate_state};
//! use eden_core::Profile;
//!
//! let memory = MemoryCloud::with_reference(&Profile::example(), MemoryOptions::default());
//! memory.create_legacy_table("eden");
//! let profile = r#"{"NAME_PREFIX": "web", "CONFIG_BUCKET": "eden-endpoints"}"#;
//! memory.put_legacy_item("eden", Item::from([
//!     ("env_name".into(), AttrValue::S("_profile_api".into())),
//!     ("profile".into(), AttrValue::S(profile.into())),
//! ]));
//! memory.put_legacy_item("eden", Item::from([
//!     ("env_name".into(), AttrValue::S("api$web-feature-1".into())),
//!     ("endpoint".into(), AttrValue::S("api-feature-1.dev.example.com".into())),
//!     ("last_updated_time".into(), AttrValue::S("1574246650.179760".into())),
//!     ("name".into(), AttrValue::S("web-feature-1".into())),
//! ]));
//! let cloud = memory.cloud();
//! let plan = migrate_state(&cloud, "eden", "eden-v2", &MigrateOptions::default()).await?;
//! assert!(!plan.applied);
//! assert_eq!(plan.environments[0].environment.as_deref(), Some("feature-1"));
//! let done = migrate_state(&cloud, "eden", "eden-v2", &MigrateOptions::default().apply(true)).await?;
//! assert!(done.applied);
//! # Ok::<(), eden_core::Error>(())
//! # }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::cloud::{AttrValue, Cloud, Item, WriteCondition, schema};
use crate::environment::EnvironmentRecord;
use crate::error::{Error, Result, Step};
use crate::names::EnvironmentName;
use crate::profile::Profile;
use crate::profile::legacy::{KEPT_KEYS, LEGACY_KEYS, expected_zone_name, zone_name_mismatch};

/// aws-eden-cli 0.1.5's table layout.
pub mod layout {
    /// The only key (hash).
    pub const HASH_KEY: &str = "env_name";
    /// Prefix of profile items' keys.
    pub const PROFILE_PREFIX: &str = "_profile_";
    /// Between the profile and the resource name in environment items' keys.
    pub const SEPARATOR: char = '$';
    /// The pushed profile's JSON.
    pub const PROFILE: &str = "profile";
    /// The environment's host.
    pub const ENDPOINT: &str = "endpoint";
    /// Epoch seconds, a decimal string.
    pub const LAST_UPDATED_TIME: &str = "last_updated_time";
}

/// Attribute recording where a copied item came from.
pub const MIGRATED_FROM: &str = "migrated_from";

/// Options of [`migrate_state`].
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// Write (otherwise only report what would be written).
    pub apply: bool,
    /// Profiles to take the `name_prefix` of environments from when the old table has no
    /// pushed profile of that name (the local profile file's, for instance).
    pub local_profiles: Vec<Profile>,
}

impl MigrateOptions {
    /// Writes instead of only reporting.
    pub fn apply(mut self, apply: bool) -> Self {
        self.apply = apply;
        self
    }

    /// Adds a profile to derive environment names with when the old table lacks it.
    pub fn local_profile(mut self, profile: Profile) -> Self {
        self.local_profiles.push(profile);
        self
    }
}

/// What happened (or would happen) to one item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ItemStatus {
    /// Written to the new table.
    Copied,
    /// Would be written (dry run).
    WouldCopy,
    /// The new table already holds the same item (an earlier run copied it).
    AlreadyCopied,
    /// Not copied; the reason says why. The new table is untouched for it.
    Skipped(String),
}

impl ItemStatus {
    fn is_skipped(&self) -> bool {
        matches!(self, Self::Skipped(_))
    }
}

impl fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Copied => f.write_str("copied"),
            Self::WouldCopy => f.write_str("would copy"),
            Self::AlreadyCopied => f.write_str("already copied"),
            Self::Skipped(why) => write!(f, "skipped: {why}"),
        }
    }
}

/// One item of the old table and its fate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigratedItem {
    /// Its `env_name` in the old table.
    pub env_name: String,
    /// The profile it belongs to (or is).
    pub profile: Option<String>,
    /// The environment name eden uses (environment items whose name could be derived).
    pub environment: Option<String>,
    /// What happened.
    pub status: ItemStatus,
}

/// What [`migrate_state`] did, or would do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationReport {
    /// The aws-eden-cli 0.1.5 table (read only).
    pub from: String,
    /// eden's table.
    pub to: String,
    /// False for a dry run.
    pub applied: bool,
    /// `_profile_*` items.
    pub profiles: Vec<MigratedItem>,
    /// Environment items.
    pub environments: Vec<MigratedItem>,
    /// Items that are neither (reported, not copied).
    pub other: Vec<MigratedItem>,
}

impl MigrationReport {
    /// True when nothing was (or would be) skipped.
    pub fn is_complete(&self) -> bool {
        self.profiles
            .iter()
            .chain(&self.environments)
            .chain(&self.other)
            .all(|i| !i.status.is_skipped())
    }
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.applied {
            ""
        } else {
            " (dry run: add --apply to write)"
        };
        writeln!(f, "state table {} -> {}{mode}", self.from, self.to)?;
        for p in &self.profiles {
            writeln!(
                f,
                "  profile {}: {}",
                p.profile.as_deref().unwrap_or("?"),
                p.status
            )?;
        }
        for e in &self.environments {
            match (&e.profile, &e.environment) {
                (Some(p), Some(env)) => {
                    writeln!(f, "  environment {env} of profile {p}: {}", e.status)?
                }
                _ => writeln!(f, "  item {}: {}", e.env_name, e.status)?,
            }
        }
        for o in &self.other {
            writeln!(f, "  item {}: {}", o.env_name, o.status)?;
        }
        Ok(())
    }
}

/// Copies aws-eden-cli 0.1.5's state table `from` into eden's table `to` (see the module
/// documentation): a dry run unless `options.apply`; idempotent; never changes `from`, never
/// overwrites an item of `to`.
///
/// Profiles whose 0.1.5 `DYNAMIC_ZONE_NAME` differs from the hosted zone's name are skipped
/// (eden would put their hosts elsewhere). Environments are copied as listed-but-not-adopted
/// records (no run: create and delete refuse them, as they refuse any environment whose
/// resources eden did not tag).
pub async fn migrate_state(
    cloud: &Cloud,
    from: &str,
    to: &str,
    options: &MigrateOptions,
) -> Result<MigrationReport> {
    if from == to {
        return Err(Error::Conflict {
            step: Step::State,
            resource: to.to_owned(),
            message: "the new table must differ from the aws-eden-cli 0.1.5 table (DynamoDB \
                      cannot change a table's key)"
                .into(),
        });
    }
    let items = scan_all(cloud, from).await?;
    if items
        .iter()
        .any(|i| !i.contains_key(layout::HASH_KEY) && i.contains_key(schema::HASH_KEY))
    {
        return Err(Error::Conflict {
            step: Step::State,
            resource: from.to_owned(),
            message: "the table already has eden's layout (type/name): nothing to migrate".into(),
        });
    }
    let mut report = MigrationReport {
        from: from.to_owned(),
        to: to.to_owned(),
        applied: options.apply,
        profiles: Vec::new(),
        environments: Vec::new(),
        other: Vec::new(),
    };
    if options.apply && !items.is_empty() {
        cloud
            .state
            .ensure_table(to)
            .await
            .map_err(|e| Error::cloud(Step::State, to, e))?;
    }

    // Profiles first: environments need their name_prefix.
    let mut prefixes: BTreeMap<String, String> = options
        .local_profiles
        .iter()
        .map(|p| (p.name.clone(), p.name_prefix.clone()))
        .collect();
    let mut environments = Vec::new();
    for item in &items {
        let Some(key) = item.get(layout::HASH_KEY).and_then(AttrValue::as_s) else {
            continue;
        };
        if let Some(name) = key.strip_prefix(layout::PROFILE_PREFIX) {
            let (status, prefix) = migrate_profile(cloud, to, name, item, options.apply).await?;
            if let Some(prefix) = prefix {
                prefixes.insert(name.to_owned(), prefix);
            }
            report.profiles.push(MigratedItem {
                env_name: key.to_owned(),
                profile: Some(name.to_owned()),
                environment: None,
                status,
            });
        } else if let Some((profile, resource)) = key.split_once(layout::SEPARATOR) {
            environments.push((
                key.to_owned(),
                profile.to_owned(),
                resource.to_owned(),
                item,
            ));
        } else {
            report.other.push(MigratedItem {
                env_name: key.to_owned(),
                profile: None,
                environment: None,
                status: ItemStatus::Skipped(
                    "neither a profile (_profile_<name>) nor an environment (<profile>$<name>)"
                        .into(),
                ),
            });
        }
    }
    for (key, profile, resource, item) in environments {
        let (environment, status) = match prefixes.get(&profile) {
            None => (
                None,
                ItemStatus::Skipped(format!(
                    "profile {profile} is neither in the table nor given: its name_prefix is \
                     needed to tell the environment name from the resource name {resource}"
                )),
            ),
            Some(prefix) => match environment_name(prefix, &resource) {
                Err(why) => (None, ItemStatus::Skipped(why)),
                Ok(env) => {
                    let status =
                        migrate_environment(cloud, from, to, &profile, &env, item, options.apply)
                            .await?;
                    (Some(env.to_string()), status)
                }
            },
        };
        report.environments.push(MigratedItem {
            env_name: key,
            profile: Some(profile),
            environment,
            status,
        });
    }
    Ok(report)
}

async fn scan_all(cloud: &Cloud, table: &str) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = cloud
            .state
            .scan(table, next)
            .await
            .map_err(|e| Error::cloud(Step::State, table, e))?;
        out.extend(page.items);
        match page.next {
            Some(n) => next = Some(n),
            None => return Ok(out),
        }
    }
}

/// The environment name from 0.1.5's resource name `<name_prefix>-<environment>`.
fn environment_name(prefix: &str, resource: &str) -> std::result::Result<EnvironmentName, String> {
    let env = resource
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .ok_or_else(|| format!("resource name {resource} does not start with {prefix}-"))?;
    EnvironmentName::new(env).map_err(|e| {
        format!("environment name {env:?} is not one eden accepts ({e}); manage it with aws-eden-cli 0.1.5")
    })
}

/// 0.1.5's pushed profile (environment variable names) as profile keys.
fn profile_config(json: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let vars: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("profile JSON: {e}"))?;
    let mut config = BTreeMap::new();
    for (var, value) in vars {
        let key = LEGACY_KEYS
            .iter()
            .find(|k| k.variable == var)
            .map(|k| k.key)
            .or_else(|| KEPT_KEYS.iter().find(|(_, v)| *v == var).map(|(k, _)| *k))
            .ok_or_else(|| format!("unknown variable {var} in the pushed profile"))?;
        let value = match value {
            serde_json::Value::String(s) => s,
            other => return Err(format!("{var} is {other}, not a string")),
        };
        config.insert(key.to_owned(), value);
    }
    Ok(config)
}

async fn migrate_profile(
    cloud: &Cloud,
    to: &str,
    name: &str,
    item: &Item,
    apply: bool,
) -> Result<(ItemStatus, Option<String>)> {
    let skipped = |why: String| Ok((ItemStatus::Skipped(why), None));
    let Some(json) = item.get(layout::PROFILE).and_then(AttrValue::as_s) else {
        return skipped("no profile attribute".into());
    };
    let config = match profile_config(json) {
        Ok(c) => c,
        Err(why) => return skipped(why),
    };
    let profile = match Profile::from_config(name, &config) {
        Ok(p) => p,
        Err(e) => {
            // Its name_prefix alone still names its environments.
            let prefix = config.get("name_prefix").cloned();
            return Ok((ItemStatus::Skipped(e.to_string()), prefix));
        }
    };
    let prefix = Some(profile.name_prefix.clone());
    if let Some(expected) = expected_zone_name(&config) {
        let actual = match cloud.dns.hosted_zone_name(&profile.dynamic_zone_id).await {
            Ok(n) => n,
            Err(e) => {
                return Ok((
                    ItemStatus::Skipped(format!(
                        "reading hosted zone {} to check DYNAMIC_ZONE_NAME: {e}",
                        profile.dynamic_zone_id
                    )),
                    prefix,
                ));
            }
        };
        if let Some(why) = zone_name_mismatch(&expected, &profile.dynamic_zone_id, &actual) {
            return Ok((ItemStatus::Skipped(why), prefix));
        }
    }
    let new = Item::from([
        (schema::HASH_KEY.into(), AttrValue::S("_profile".into())),
        (schema::RANGE_KEY.into(), AttrValue::S(profile.name.clone())),
        ("profile".into(), AttrValue::S(profile.to_json())),
        (schema::KIND.into(), AttrValue::S("profile".into())),
    ]);
    let status = put_new(cloud, to, new, apply, |old| {
        old.get("profile").and_then(AttrValue::as_s) == Some(profile.to_json().as_str())
    })
    .await?;
    Ok((status, prefix))
}

async fn migrate_environment(
    cloud: &Cloud,
    from: &str,
    to: &str,
    profile: &str,
    env: &EnvironmentName,
    item: &Item,
    apply: bool,
) -> Result<ItemStatus> {
    let Some(endpoint) = item.get(layout::ENDPOINT).and_then(AttrValue::as_s) else {
        return Ok(ItemStatus::Skipped("no endpoint attribute".into()));
    };
    let last_updated = item
        .get(layout::LAST_UPDATED_TIME)
        .and_then(AttrValue::as_s)
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t >= 0.0)
        // Whole seconds, as eden stores them; the fraction is dropped.
        .map(|t| t as i64)
        .unwrap_or(0);
    let record = EnvironmentRecord::new(profile, env.as_str(), endpoint, last_updated);
    let mut new = record.to_item();
    new.insert(
        MIGRATED_FROM.into(),
        AttrValue::S(format!("aws-eden-cli 0.1.5 table {from}")),
    );
    put_new(cloud, to, new, apply, |old| {
        EnvironmentRecord::from_item(old)
            .is_some_and(|r| r.endpoint == record.endpoint && r.last_updated == record.last_updated)
    })
    .await
}

/// Writes `item` only where the new table has nothing under its key.
async fn put_new(
    cloud: &Cloud,
    to: &str,
    item: Item,
    apply: bool,
    same: impl Fn(&Item) -> bool,
) -> Result<ItemStatus> {
    let s = |k: &str| {
        item.get(k)
            .and_then(AttrValue::as_s)
            .unwrap_or_default()
            .to_owned()
    };
    let (hash, range) = (s(schema::HASH_KEY), s(schema::RANGE_KEY));
    let id = format!("{to}/{hash}/{range}");
    let existing = match cloud.state.get_item(to, &hash, &range).await {
        Ok(existing) => existing,
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(Error::cloud(Step::State, id, e)),
    };
    match existing {
        Some(old) if same(&old) => Ok(ItemStatus::AlreadyCopied),
        Some(_) => Ok(ItemStatus::Skipped(format!(
            "{id} already holds a different item; left as it is"
        ))),
        None if !apply => Ok(ItemStatus::WouldCopy),
        None => match cloud
            .state
            .put_item(to, item, WriteCondition::NotExists)
            .await
        {
            Ok(_) => Ok(ItemStatus::Copied),
            Err(e) if e.is(&[crate::cloud::codes::CONDITIONAL_CHECK_FAILED]) => {
                Ok(ItemStatus::Skipped(format!(
                    "{id} was written by someone else meanwhile; left as it is"
                )))
            }
            Err(e) => Err(Error::cloud(Step::State, id, e)),
        },
    }
}
