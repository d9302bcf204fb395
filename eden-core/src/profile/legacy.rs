//! The profile keys of aws-eden-cli 0.1.5 (the released Python CLI, which ran on
//! aws-eden-core 0.1.2) and what each became.
//!
//! aws-eden-cli 0.1.5 read thirteen keys. Six kept their names (`name_prefix`,
//! `reference_service_arn`, `target_cluster`, `domain_name_prefix`, `master_alb_arn`,
//! `dynamic_zone_id`); the seven in [`LEGACY_KEYS`] did not:
//!
//! | aws-eden-cli 0.1.5 | now |
//! |---|---|
//! | `config_bucket_name` | `endpoint_s3_bucket_name` |
//! | `config_bucket_key` | `endpoint_s3_key` |
//! | `config_name_prefix` | `endpoint_name_prefix` |
//! | `config_update_key` | `endpoint_update_key` |
//! | `config_env_type` | `endpoint_env_type` |
//! | `dynamic_zone_name` | none: the zone's name is read from Route 53; a value that differs from it is refused before anything changes |
//! | `target_container_name` | none: aws-eden-core 0.1.2 never used it (the image goes to the reference service's load-balanced container), and neither does eden |
//!
//! A profile may carry an old key, its new key, or both with the same value (so one file can
//! serve both CLIs during a migration). Both with different values is refused by name.

use std::collections::BTreeMap;
use std::fmt;

use super::KeyProblem;

/// What an aws-eden-cli 0.1.5 key became.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "key", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Becomes {
    /// It is read as this current key.
    Renamed(&'static str),
    /// `dynamic_zone_name`: aws-eden-core 0.1.2 built hosts as `<label>.<dynamic_zone_name>`;
    /// eden reads the zone's name from Route 53, and a client that finds them different
    /// refuses before changing anything (see [`zone_name_mismatch`]).
    ZoneName,
    /// Read by aws-eden-cli 0.1.5 but never used by aws-eden-core 0.1.2; ignored.
    Unused,
}

/// One aws-eden-cli 0.1.5 key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyKey {
    /// The key as aws-eden-cli 0.1.5 wrote it.
    pub key: &'static str,
    /// The environment variable name aws-eden-cli 0.1.5 passed it to aws-eden-core 0.1.2
    /// under (and stored it under in the `profile` JSON of its state table).
    pub variable: &'static str,
    /// What it became.
    pub becomes: Becomes,
}

/// The seven aws-eden-cli 0.1.5 keys that changed (see the module documentation).
pub const LEGACY_KEYS: [LegacyKey; 7] = [
    LegacyKey {
        key: "config_bucket_name",
        variable: "CONFIG_BUCKET",
        becomes: Becomes::Renamed("endpoint_s3_bucket_name"),
    },
    LegacyKey {
        key: "config_bucket_key",
        variable: "CONFIG_BUCKET_KEY",
        becomes: Becomes::Renamed("endpoint_s3_key"),
    },
    LegacyKey {
        key: "config_name_prefix",
        variable: "CONFIG_NAME_PREFIX",
        becomes: Becomes::Renamed("endpoint_name_prefix"),
    },
    LegacyKey {
        key: "config_update_key",
        variable: "CONFIG_UPDATE_KEY",
        becomes: Becomes::Renamed("endpoint_update_key"),
    },
    LegacyKey {
        key: "config_env_type",
        variable: "CONFIG_ENV_TYPE",
        becomes: Becomes::Renamed("endpoint_env_type"),
    },
    LegacyKey {
        key: "dynamic_zone_name",
        variable: "DYNAMIC_ZONE_NAME",
        becomes: Becomes::ZoneName,
    },
    LegacyKey {
        key: "target_container_name",
        variable: "TARGET_CONTAINER_NAME",
        becomes: Becomes::Unused,
    },
];

/// The six aws-eden-cli 0.1.5 keys that kept their names, with the environment variable
/// names 0.1.5 stored them under in its state table.
pub const KEPT_KEYS: [(&str, &str); 6] = [
    ("name_prefix", "NAME_PREFIX"),
    ("reference_service_arn", "REFERENCE_SERVICE_ARN"),
    ("target_cluster", "TARGET_CLUSTER"),
    ("domain_name_prefix", "DOMAIN_NAME_PREFIX"),
    ("master_alb_arn", "MASTER_ALB_ARN"),
    ("dynamic_zone_id", "DYNAMIC_ZONE_ID"),
];

/// The legacy key named `key` (case-insensitive), if it is one.
pub fn legacy_key(key: &str) -> Option<&'static LegacyKey> {
    let key = key.trim().to_ascii_lowercase();
    LEGACY_KEYS.iter().find(|k| k.key == key)
}

/// How one aws-eden-cli 0.1.5 key of a profile was read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LegacyUse {
    /// The old key.
    pub key: String,
    /// Its value (trimmed).
    pub value: String,
    /// What it became.
    pub becomes: Becomes,
}

impl fmt::Display for LegacyUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.becomes {
            Becomes::Renamed(new) => write!(f, "{} (aws-eden-cli 0.1.5) read as {new}", self.key),
            Becomes::ZoneName => write!(
                f,
                "{} (aws-eden-cli 0.1.5) is checked against the hosted zone's name before \
                 create and delete",
                self.key
            ),
            Becomes::Unused => write!(
                f,
                "{} (aws-eden-cli 0.1.5) ignored: aws-eden-core 0.1.2 never used it either (the \
                 image goes to the reference service's load-balanced container)",
                self.key
            ),
        }
    }
}

/// A profile's keys with the aws-eden-cli 0.1.5 keys read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Normalized {
    /// The keys under their current names (legacy keys removed; renamed ones added).
    pub config: BTreeMap<String, String>,
    /// Every legacy key found and how it was read, in key order.
    pub legacy: Vec<LegacyUse>,
    /// Legacy keys whose value conflicts with their new key's, or that cannot be used.
    pub problems: Vec<(String, KeyProblem)>,
}

/// Reads the aws-eden-cli 0.1.5 keys of a raw profile (keys case-insensitive).
pub fn normalize(config: &BTreeMap<String, String>) -> Normalized {
    let mut out = Normalized::default();
    let mut legacy = Vec::new();
    for (key, value) in config {
        let lower = key.trim().to_ascii_lowercase();
        match legacy_key(&lower) {
            Some(k) => legacy.push((k, value.trim().to_owned())),
            None => {
                out.config.insert(lower, value.clone());
            }
        }
    }
    for (k, value) in legacy {
        match k.becomes {
            Becomes::Renamed(new) => match out.config.get(new).map(|v| v.trim()) {
                Some(current) if current != value => out.problems.push((
                    k.key.to_owned(),
                    KeyProblem::Conflict {
                        legacy: k.key.to_owned(),
                        current: new.to_owned(),
                    },
                )),
                Some(_) => {}
                None => {
                    out.config.insert(new.to_owned(), value.clone());
                }
            },
            Becomes::ZoneName => {
                let name = value.trim_end_matches('.');
                if name.is_empty() {
                    out.problems.push((
                        k.key.to_owned(),
                        KeyProblem::Malformed(
                            "empty: aws-eden-core 0.1.2 would have built hosts ending in '.'; \
                             remove the key (eden reads the zone's name from Route 53)"
                                .into(),
                        ),
                    ));
                }
            }
            Becomes::Unused => {}
        }
        out.legacy.push(LegacyUse {
            key: k.key.to_owned(),
            value,
            becomes: k.becomes,
        });
    }
    out
}

/// `dynamic_zone_name` of a raw profile, without its trailing dot, when it has one.
pub fn expected_zone_name(config: &BTreeMap<String, String>) -> Option<String> {
    config
        .iter()
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("dynamic_zone_name"))
        .map(|(_, v)| v.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

/// Why a profile's `dynamic_zone_name` cannot be honoured: aws-eden-core 0.1.2 built hosts
/// under `dynamic_zone_name`, eden builds them under the hosted zone's own name. `None` when
/// they are the same (case and trailing dot aside).
pub fn zone_name_mismatch(expected: &str, zone_id: &str, zone_name: &str) -> Option<String> {
    let expected = expected.trim().trim_end_matches('.').to_ascii_lowercase();
    let actual = zone_name.trim().trim_end_matches('.').to_ascii_lowercase();
    (expected != actual).then(|| {
        format!(
            "profile key dynamic_zone_name is {expected:?} but hosted zone {zone_id} is named \
             {actual:?}: aws-eden-cli 0.1.5 built hosts under {expected:?}, eden builds them \
             under the zone's name, so the hosts would move. Fix: set dynamic_zone_name to \
             {actual:?} (or remove it) once you accept hosts under {actual:?}, or keep this \
             profile on aws-eden-cli 0.1.5"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn renames_and_conflicts() {
        let n = normalize(&map(&[
            ("CONFIG_BUCKET_NAME", " b "),
            ("config_bucket_key", "e.json"),
            ("endpoint_s3_key", "e.json"),
            ("config_env_type", "dev"),
            ("endpoint_env_type", "stg"),
            ("target_container_name", "api"),
        ]));
        assert_eq!(n.config["endpoint_s3_bucket_name"], "b");
        assert_eq!(n.config["endpoint_s3_key"], "e.json");
        assert_eq!(n.config["endpoint_env_type"], "stg");
        assert!(!n.config.contains_key("config_bucket_name"));
        assert!(!n.config.contains_key("target_container_name"));
        assert_eq!(
            n.problems,
            [(
                "config_env_type".to_owned(),
                KeyProblem::Conflict {
                    legacy: "config_env_type".into(),
                    current: "endpoint_env_type".into()
                }
            )]
        );
        assert_eq!(n.legacy.len(), 4);
        assert!(
            n.legacy.iter().any(|u| u.to_string()
                == "config_bucket_key (aws-eden-cli 0.1.5) read as endpoint_s3_key"),
            "{:?}",
            n.legacy
        );
    }

    #[test]
    fn zone_name() {
        let c = map(&[("dynamic_zone_name", "Dev.Example.com.")]);
        assert_eq!(expected_zone_name(&c).as_deref(), Some("dev.example.com"));
        assert!(zone_name_mismatch("dev.example.com.", "Z1", "dev.example.com").is_none());
        let why = zone_name_mismatch("sub.dev.example.com", "Z1", "dev.example.com.").unwrap();
        assert!(why.contains("dynamic_zone_name"), "{why}");
        assert!(
            normalize(&map(&[("dynamic_zone_name", ".")]))
                .problems
                .iter()
                .any(|(k, _)| k == "dynamic_zone_name")
        );
    }
}
