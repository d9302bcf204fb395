//! Environment names and every name derived from them.
//!
//! One derivation ([`EnvironmentNames::derive`]) serves create, delete and list, so the three can
//! never disagree about what an environment's resources are called (the original cleaned names
//! differently on create and delete).

use std::fmt;

use sha2::{Digest, Sha256};

pub use crate::name_rules::{
    MAX_DNS_NAME_LEN, MAX_ECS_NAME_LEN, MAX_LABEL_LEN, MAX_TARGET_GROUP_NAME_LEN, NameError,
};
use crate::name_rules::{check_ecs_name, check_label, check_length};
use crate::profile::Profile;

/// Hex digits of the hash suffix of a shortened target group name (32 bits).
const HASH_SUFFIX_LEN: usize = 8;

/// A validated environment name: a DNS label (lowercase letters, digits and hyphens, 1 to 63
/// characters, no leading or trailing hyphen).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct EnvironmentName(String);

impl EnvironmentName {
    /// Validates `name`, saying precisely why it is refused.
    ///
    /// ```
    /// use eden_core::EnvironmentName;
    /// assert!(EnvironmentName::new("feature-42").is_ok());
    /// let err = EnvironmentName::new("Feature_42").unwrap_err();
    /// assert!(err.to_string().contains("uppercase"));
    /// ```
    pub fn new(name: &str) -> Result<Self, NameError> {
        check_label("environment name", name)?;
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvironmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for EnvironmentName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for EnvironmentName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// True when `name` is a valid target group name as it stands.
fn is_valid_target_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TARGET_GROUP_NAME_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// The target group name for a resource name: the name itself when ELB accepts it, otherwise
/// a deterministic shortening `{head}-{8 hex digits of SHA-256(resource)}`.
///
/// The hash covers the whole resource name, so two resource names that share their first 23
/// characters still get different target groups.
///
/// ```
/// use eden_core::names::target_group_name;
/// assert_eq!(target_group_name("web-feature-1"), "web-feature-1");
/// let long = target_group_name("my-very-long-service-name-feature-branch-1234");
/// assert_eq!(long.len(), 32);
/// assert_eq!(long, target_group_name("my-very-long-service-name-feature-branch-1234"));
/// ```
pub fn target_group_name(resource: &str) -> String {
    if is_valid_target_group_name(resource) {
        return resource.to_owned();
    }
    let digest = Sha256::digest(resource.as_bytes());
    let hash: String = digest
        .iter()
        .take(HASH_SUFFIX_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    let head_max = MAX_TARGET_GROUP_NAME_LEN - HASH_SUFFIX_LEN - 1;
    let head: String = resource
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(head_max)
        .collect();
    let head = head.trim_matches('-');
    if head.is_empty() {
        hash
    } else {
        format!("{head}-{hash}")
    }
}

/// Every name derived from a profile and an environment name.
///
/// The host also needs the hosted zone's name, which only Route 53 knows: [`Self::host`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnvironmentNames {
    /// The environment name.
    pub env: EnvironmentName,
    /// `{name_prefix}-{NAME}`: task definition family and ECS service name.
    pub resource: String,
    /// The target group name (the resource name, shortened when needed).
    pub target_group: String,
    /// `{domain_name_prefix}-{NAME}`: the first label of the host.
    pub host_label: String,
    /// `{endpoint_name_prefix}-{NAME}`: the entry name in the endpoints document.
    pub endpoint_entry: String,
}

impl EnvironmentNames {
    /// Derives every name, enforcing the AWS limits before any call.
    ///
    /// ```
    /// use eden_core::{EnvironmentName, EnvironmentNames, Profile};
    /// let profile = Profile::example();
    /// let env = EnvironmentName::new("feature-1").unwrap();
    /// let names = EnvironmentNames::derive(&profile, &env).unwrap();
    /// assert_eq!(names.resource, "web-feature-1");
    /// assert_eq!(names.target_group, "web-feature-1");
    /// assert_eq!(names.host("dev.example.com.").unwrap(), "api-feature-1.dev.example.com");
    /// assert_eq!(names.endpoint_entry, "servicename-dev-feature-1");
    /// ```
    pub fn derive(profile: &Profile, env: &EnvironmentName) -> Result<Self, NameError> {
        let resource = format!("{}-{}", profile.name_prefix, env);
        check_ecs_name("resource name", &resource)?;
        let host_label = format!("{}-{}", profile.domain_name_prefix, env);
        check_label("host label", &host_label)?;
        Ok(Self {
            env: env.clone(),
            target_group: target_group_name(&resource),
            resource,
            host_label,
            endpoint_entry: format!("{}-{}", profile.endpoint_name_prefix, env),
        })
    }

    /// `{host_label}.{zone}`, lowercase, without a trailing dot (Route 53 stores names
    /// lowercase), at most 253 characters.
    pub fn host(&self, zone_name: &str) -> Result<String, NameError> {
        let zone = zone_name.trim_end_matches('.').to_ascii_lowercase();
        let host = if zone.is_empty() {
            self.host_label.clone()
        } else {
            format!("{}.{zone}", self.host_label)
        };
        check_length("host", &host, MAX_DNS_NAME_LEN)?;
        Ok(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn environment_name_rules() {
        assert!(EnvironmentName::new("a").is_ok());
        assert!(EnvironmentName::new("a-1").is_ok());
        assert_eq!(EnvironmentName::new(""), Err(NameError::Empty));
        assert!(matches!(
            EnvironmentName::new("A"),
            Err(NameError::Uppercase { ch: 'A', index: 0 })
        ));
        assert!(matches!(
            EnvironmentName::new("a_b"),
            Err(NameError::InvalidChar {
                ch: '_',
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            EnvironmentName::new("-a"),
            Err(NameError::LeadingHyphen { .. })
        ));
        assert!(matches!(
            EnvironmentName::new("a-"),
            Err(NameError::TrailingHyphen { .. })
        ));
        assert!(EnvironmentName::new(&"a".repeat(63)).is_ok());
        assert!(matches!(
            EnvironmentName::new(&"a".repeat(64)),
            Err(NameError::TooLong {
                len: 64,
                max: 63,
                ..
            })
        ));
        assert!(matches!(
            EnvironmentName::new("a.b"),
            Err(NameError::InvalidChar { ch: '.', .. })
        ));
    }

    #[test]
    fn target_group_names() {
        assert_eq!(target_group_name("abc"), "abc");
        assert_eq!(target_group_name(&"a".repeat(32)), "a".repeat(32));
        let long = target_group_name(&"a".repeat(33));
        assert_eq!(long.len(), 32);
        assert!(long.starts_with(&"a".repeat(23)));
        // Underscores are not allowed: the name is rewritten and hashed, so `a_b` and `a-b`
        // do not collide.
        assert_ne!(target_group_name("a_b"), target_group_name("a-b"));
        assert!(is_valid_target_group_name(&target_group_name("a_b")));
        assert!(is_valid_target_group_name(&target_group_name("___")));
    }

    #[test]
    fn derive_all_names() {
        let profile = Profile::example();
        let env = EnvironmentName::new("x").unwrap();
        let n = EnvironmentNames::derive(&profile, &env).unwrap();
        assert_eq!(n.host("Dev.Example.COM.").unwrap(), "api-x.dev.example.com");
        assert!(n.host(&"z".repeat(250)).is_err());
        assert_eq!(n.target_group, "web-x");
        let long = EnvironmentName::new(&"y".repeat(63)).unwrap();
        // `api-` + 63 characters is more than one DNS label.
        assert!(matches!(
            EnvironmentNames::derive(&profile, &long),
            Err(NameError::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn target_group_name_is_valid_and_injective(a in "[a-zA-Z0-9_-]{1,80}", b in "[a-zA-Z0-9_-]{1,80}") {
            let ta = target_group_name(&a);
            prop_assert!(is_valid_target_group_name(&ta), "{ta}");
            prop_assert_eq!(&ta, &target_group_name(&a));
            if a != b {
                prop_assert_ne!(ta, target_group_name(&b));
            }
        }

        #[test]
        fn valid_labels_round_trip(s in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?") {
            let name = EnvironmentName::new(&s).unwrap();
            prop_assert_eq!(name.as_str(), s.as_str());
        }
    }
}
