//! Profiles: the eleven keys of an eden configuration section, parsed and validated.
//!
//! The keys of aws-eden-cli 0.1.5 are read too ([`legacy`]): `config_bucket_name` as
//! `endpoint_s3_bucket_name` and so on, each reported by [`Profile::legacy_keys`] and by the
//! profile file's check.

use std::collections::BTreeMap;
use std::fmt;

use crate::name_rules::{check_ecs_name, check_label};

pub mod legacy;
pub use legacy::{LegacyUse, normalize as normalize_legacy};

/// The eleven profile keys, in the order the original wrote them.
pub const PROFILE_KEYS: [&str; 11] = [
    "name_prefix",
    "reference_service_arn",
    "target_cluster",
    "domain_name_prefix",
    "master_alb_arn",
    "dynamic_zone_id",
    "endpoint_s3_bucket_name",
    "endpoint_s3_key",
    "endpoint_name_prefix",
    "endpoint_update_key",
    "endpoint_env_type",
];

/// What is wrong with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The key is absent.
    Missing,
    /// The key is present with an empty value.
    Empty,
    /// The value does not parse; the text says why.
    Malformed(String),
    /// The key is not one of the eleven.
    Unknown,
    /// An aws-eden-cli 0.1.5 key and the key it became are both set, to different values.
    Conflict {
        /// The aws-eden-cli 0.1.5 key.
        legacy: String,
        /// The current key.
        current: String,
    },
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("missing"),
            Self::Empty => f.write_str("empty"),
            Self::Malformed(why) => write!(f, "malformed: {why}"),
            Self::Unknown => f.write_str("unknown key"),
            Self::Conflict { legacy, current } => write!(
                f,
                "both {legacy} (aws-eden-cli 0.1.5) and {current} are set, to different values: \
                 keep one (or give both the same value)"
            ),
        }
    }
}

/// Every problem found in a profile, each with its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProfileError {
    /// The profile (section) name.
    pub profile: String,
    /// `(key, problem)` for every bad key, in key order.
    pub problems: Vec<(String, KeyProblem)>,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "profile {:?}: ", self.profile)?;
        for (i, (key, problem)) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{key} {problem}")?;
        }
        Ok(())
    }
}

/// A parsed ECS service ARN: the long format
/// `arn:<partition>:ecs:<region>:<account>:service/<cluster>/<service>`, or the short (older)
/// one `arn:<partition>:ecs:<region>:<account>:service/<service>`, whose cluster a profile
/// takes from `target_cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceArn {
    /// The full ARN.
    pub arn: String,
    /// AWS partition (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: String,
    /// Region.
    pub region: String,
    /// Account id.
    pub account: String,
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
}

impl ServiceArn {
    /// Parses a long-format ECS service ARN (which names the cluster).
    pub fn parse(arn: &str) -> Result<Self, String> {
        Self::parse_in(arn, None)
    }

    /// Parses an ECS service ARN in either format; a short one (`service/<service>`) is in
    /// `cluster` (a cluster name or ARN), as the original eden read it with `target_cluster`.
    pub fn parse_in(arn: &str, cluster: Option<&str>) -> Result<Self, String> {
        let (partition, service, region, account, resource) = split_arn(arn)?;
        if service != "ecs" {
            return Err(format!("service is {service:?}, expected \"ecs\""));
        }
        let mut parts = resource.split('/');
        let (cluster, name) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("service"), Some(cluster), Some(name), None) => (cluster, name),
            (Some("service"), Some(name), None, None) => match cluster {
                Some(cluster) => (cluster.rsplit('/').next().unwrap_or(cluster), name),
                None => {
                    return Err(
                        "the short format \"service/<service>\" needs the cluster from target_cluster"
                            .into(),
                    );
                }
            },
            _ => {
                return Err(
                    "expected resource \"service/<cluster>/<service>\" or \"service/<service>\""
                        .into(),
                );
            }
        };
        check_ecs_name("cluster name", cluster).map_err(|e| e.to_string())?;
        check_ecs_name("service name", name).map_err(|e| e.to_string())?;
        Ok(Self {
            arn: arn.to_owned(),
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            cluster: cluster.to_owned(),
            service: name.to_owned(),
        })
    }

    /// The cluster's ARN.
    pub fn cluster_arn(&self) -> String {
        format!(
            "arn:{}:ecs:{}:{}:cluster/{}",
            self.partition, self.region, self.account, self.cluster
        )
    }
}

/// A parsed application load balancer ARN
/// `arn:<partition>:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerArn {
    /// The full ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// Account id.
    pub account: String,
    /// Load balancer name.
    pub name: String,
    /// Load balancer id.
    pub id: String,
}

impl LoadBalancerArn {
    /// Parses an ELBv2 application load balancer ARN.
    pub fn parse(arn: &str) -> Result<Self, String> {
        let (_, service, region, account, resource) = split_arn(arn)?;
        if service != "elasticloadbalancing" {
            return Err(format!(
                "service is {service:?}, expected \"elasticloadbalancing\""
            ));
        }
        let mut parts = resource.split('/');
        match (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) {
            (Some("loadbalancer"), Some("app"), Some(name), Some(id), None)
                if !name.is_empty() && !id.is_empty() =>
            {
                Ok(Self {
                    arn: arn.to_owned(),
                    region: region.to_owned(),
                    account: account.to_owned(),
                    name: name.to_owned(),
                    id: id.to_owned(),
                })
            }
            (Some("loadbalancer"), Some(kind @ ("net" | "gwy")), ..) => Err(format!(
                "a {kind:?} load balancer; eden needs an application load balancer (loadbalancer/app/...)"
            )),
            _ => Err("expected resource \"loadbalancer/app/<name>/<id>\"".into()),
        }
    }
}

fn split_arn(arn: &str) -> Result<(&str, &str, &str, &str, &str), String> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err("not an ARN (expected arn:partition:service:region:account:resource)".into());
    };
    if !matches!(
        partition,
        "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b"
    ) {
        return Err(format!("unknown partition {partition:?}"));
    }
    if region.is_empty() {
        return Err("the region is empty".into());
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("account {account:?} is not 12 digits"));
    }
    Ok((partition, service, region, account, resource))
}

/// A validated profile: the eleven keys (see [Profiles](https://github.com/baikonur-oss/baikonur-rs/blob/main/docs/eden.md#profiles)) plus the profile's
/// own name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The profile (INI section) name; `default` is an ordinary profile.
    pub name: String,
    /// Prefix of task family, service and target group names.
    pub name_prefix: String,
    /// The ECS service every environment is cloned from.
    pub reference_service_arn: ServiceArn,
    /// Cluster the environments' services run in (name or ARN).
    pub target_cluster: String,
    /// Prefix of the environment's host label.
    pub domain_name_prefix: String,
    /// The shared application load balancer.
    pub master_alb_arn: LoadBalancerArn,
    /// Route 53 hosted zone of the environments' hosts (without `/hostedzone/`).
    pub dynamic_zone_id: String,
    /// Bucket of the endpoints document.
    pub endpoint_s3_bucket_name: String,
    /// Key of the endpoints document.
    pub endpoint_s3_key: String,
    /// Prefix of the entry name in the endpoints document.
    pub endpoint_name_prefix: String,
    /// The entry key this profile writes its host into.
    pub endpoint_update_key: String,
    /// The `env` value of entries this profile writes.
    pub endpoint_env_type: String,
}

impl Profile {
    /// Lists every problem of a raw `key -> value` map (keys case-insensitive): missing, empty,
    /// malformed and unknown keys, each by name. An empty list means the map is a valid profile.
    pub fn check(config: &BTreeMap<String, String>) -> Vec<(String, KeyProblem)> {
        match Self::parse("", config, true) {
            Ok(_) => unknown_keys(config),
            Err(e) => e.problems,
        }
    }

    /// Builds a profile from a raw map, failing with every missing, empty or malformed key
    /// (unknown keys are reported by [`Profile::check`] but do not fail, so files written for a
    /// newer version still load).
    pub fn from_config(
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Self, ProfileError> {
        Self::parse(name, config, false)
    }

    /// Parses the eleven keys; unknown keys count as problems only when `report_unknown`, so
    /// that loading a profile with an extra key succeeds while `check` still names the key.
    fn parse(
        name: &str,
        config: &BTreeMap<String, String>,
        report_unknown: bool,
    ) -> Result<Self, ProfileError> {
        let normalized = legacy::normalize(config);
        let lower: BTreeMap<String, &str> = normalized
            .config
            .iter()
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
            .collect();
        let mut problems = normalized.problems.clone();
        let mut get = |key: &str, check: &dyn Fn(&str) -> Result<(), String>| -> String {
            match lower.get(key) {
                None => problems.push((key.to_owned(), KeyProblem::Missing)),
                Some(&"") => problems.push((key.to_owned(), KeyProblem::Empty)),
                Some(v) => match check(v) {
                    Ok(()) => return (*v).to_owned(),
                    Err(why) => problems.push((key.to_owned(), KeyProblem::Malformed(why))),
                },
            }
            String::new()
        };
        let ecs_name = |v: &str| check_ecs_name("name prefix", v).map_err(|e| e.to_string());
        let label = |v: &str| check_label("prefix", v).map_err(|e| e.to_string());
        let any = |_: &str| Ok(());
        let name_prefix = get("name_prefix", &ecs_name);
        let target_cluster = get("target_cluster", &|v| {
            if v.starts_with("arn:") {
                Ok(())
            } else {
                check_ecs_name("cluster name", v).map_err(|e| e.to_string())
            }
        });
        // The short ARN format takes its cluster from target_cluster (when that is valid).
        let cluster = (!target_cluster.is_empty()).then_some(target_cluster.clone());
        let reference = get("reference_service_arn", &|v| {
            ServiceArn::parse_in(v, cluster.as_deref()).map(|_| ())
        });
        let domain_name_prefix = get("domain_name_prefix", &label);
        let alb = get("master_alb_arn", &|v| LoadBalancerArn::parse(v).map(|_| ()));
        let zone = get("dynamic_zone_id", &|v| {
            let id = v.trim_start_matches("/hostedzone/");
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                Ok(())
            } else {
                Err("expected a hosted zone id such as Z0123456789ABC".into())
            }
        });
        let bucket = get("endpoint_s3_bucket_name", &check_bucket);
        let key = get("endpoint_s3_key", &any);
        let endpoint_name_prefix = get("endpoint_name_prefix", &any);
        let update_key = get("endpoint_update_key", &|v| {
            if v == "env" || v == "name" {
                Err("\"env\" and \"name\" identify the entry and cannot be updated".into())
            } else if v == crate::endpoints::OWNERS_FIELD {
                Err(format!(
                    "{:?} is where eden records each key's owner",
                    crate::endpoints::OWNERS_FIELD
                ))
            } else {
                Ok(())
            }
        });
        let env_type = get("endpoint_env_type", &any);
        if report_unknown {
            problems.extend(unknown_keys(config));
        }
        if !problems.is_empty() {
            problems.sort_by(|a, b| a.0.cmp(&b.0));
            return Err(ProfileError {
                profile: name.to_owned(),
                problems,
            });
        }
        // Both parsed above without error.
        let reference_service_arn = ServiceArn::parse_in(&reference, Some(&target_cluster))
            .map_err(|why| ProfileError {
                profile: name.to_owned(),
                problems: vec![("reference_service_arn".into(), KeyProblem::Malformed(why))],
            })?;
        let master_alb_arn = LoadBalancerArn::parse(&alb).map_err(|why| ProfileError {
            profile: name.to_owned(),
            problems: vec![("master_alb_arn".into(), KeyProblem::Malformed(why))],
        })?;
        Ok(Self {
            name: name.to_owned(),
            name_prefix,
            reference_service_arn,
            target_cluster,
            domain_name_prefix,
            master_alb_arn,
            dynamic_zone_id: zone.trim_start_matches("/hostedzone/").to_owned(),
            endpoint_s3_bucket_name: bucket,
            endpoint_s3_key: key,
            endpoint_name_prefix,
            endpoint_update_key: update_key,
            endpoint_env_type: env_type,
        })
    }

    /// The aws-eden-cli 0.1.5 keys of a raw profile and how each is read (empty when it has
    /// none).
    pub fn legacy_keys(config: &BTreeMap<String, String>) -> Vec<LegacyUse> {
        legacy::normalize(config).legacy
    }

    /// The eleven keys as a map, as written to INI files and the state table.
    pub fn to_config(&self) -> BTreeMap<String, String> {
        let values = [
            &self.name_prefix,
            &self.reference_service_arn.arn,
            &self.target_cluster,
            &self.domain_name_prefix,
            &self.master_alb_arn.arn,
            &self.dynamic_zone_id,
            &self.endpoint_s3_bucket_name,
            &self.endpoint_s3_key,
            &self.endpoint_name_prefix,
            &self.endpoint_update_key,
            &self.endpoint_env_type,
        ];
        PROFILE_KEYS
            .iter()
            .zip(values)
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    /// The profile as the JSON text stored in the state table.
    pub fn to_json(&self) -> String {
        // A map of strings always serialises.
        serde_json::to_string(&self.to_config()).unwrap_or_default()
    }

    /// Parses the JSON text stored in the state table.
    pub fn from_json(name: &str, json: &str) -> Result<Self, ProfileError> {
        let config: BTreeMap<String, String> =
            serde_json::from_str(json).map_err(|e| ProfileError {
                profile: name.to_owned(),
                problems: vec![("profile".into(), KeyProblem::Malformed(e.to_string()))],
            })?;
        Self::from_config(name, &config)
    }

    /// Reads one section of an INI file as Python's configparser writes it.
    pub fn from_ini(text: &str, section: &str) -> Result<Self, ProfileError> {
        let sections = ini_sections(text).map_err(|why| ProfileError {
            profile: section.to_owned(),
            problems: vec![("file".into(), KeyProblem::Malformed(why))],
        })?;
        let config = sections.get(section).ok_or_else(|| ProfileError {
            profile: section.to_owned(),
            problems: vec![("section".into(), KeyProblem::Missing)],
        })?;
        Self::from_config(section, config)
    }

    /// The profile as an INI section.
    pub fn to_ini(&self) -> String {
        let mut out = format!("[{}]\n", self.name);
        for (k, v) in self.to_config() {
            out.push_str(&format!("{k} = {v}\n"));
        }
        out
    }

    /// A complete example profile; [`crate::memory::MemoryCloud::with_reference`] seeds the
    /// reference resources it names, so examples and doc tests can run end to end.
    pub fn example() -> Self {
        let account = "123456789012".to_owned();
        let region = "us-east-1".to_owned();
        Self {
            name: "default".into(),
            name_prefix: "web".into(),
            reference_service_arn: ServiceArn {
                arn: format!("arn:aws:ecs:{region}:{account}:service/main/web"),
                partition: "aws".into(),
                region: region.clone(),
                account: account.clone(),
                cluster: "main".into(),
                service: "web".into(),
            },
            target_cluster: "main".into(),
            domain_name_prefix: "api".into(),
            master_alb_arn: LoadBalancerArn {
                arn: format!(
                    "arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/shared/50dc6c495c0c9188"
                ),
                region,
                account,
                name: "shared".into(),
                id: "50dc6c495c0c9188".into(),
            },
            dynamic_zone_id: "Z0EXAMPLE".into(),
            endpoint_s3_bucket_name: "eden-endpoints".into(),
            endpoint_s3_key: "endpoints.json".into(),
            endpoint_name_prefix: "servicename-dev".into(),
            endpoint_update_key: "api_endpoint".into(),
            endpoint_env_type: "dev".into(),
        }
    }
}

fn unknown_keys(config: &BTreeMap<String, String>) -> Vec<(String, KeyProblem)> {
    config
        .keys()
        .filter(|k| {
            !PROFILE_KEYS.contains(&k.trim().to_ascii_lowercase().as_str())
                && legacy::legacy_key(k).is_none()
        })
        .map(|k| (k.clone(), KeyProblem::Unknown))
        .collect()
}

fn check_bucket(v: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && v.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && v.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err("not an S3 bucket name (3-63 lowercase letters, digits, '.' and '-')".into())
    }
}

/// Parses an INI file into `section -> key -> value` (keys lowercased, as configparser does).
pub fn ini_sections(text: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let ini = ini::Ini::load_from_str_noescape(text).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (section, props) in ini.iter() {
        let Some(section) = section else { continue };
        let entry: &mut BTreeMap<String, String> = out.entry(section.to_owned()).or_default();
        for (k, v) in props.iter() {
            entry.insert(k.to_ascii_lowercase(), v.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BTreeMap<String, String> {
        Profile::example().to_config()
    }

    #[test]
    fn example_is_valid_and_round_trips() {
        let p = Profile::example();
        assert_eq!(p.reference_service_arn.cluster, "main");
        assert_eq!(p.reference_service_arn.service, "web");
        assert_eq!(p.master_alb_arn.name, "shared");
        assert_eq!(Profile::from_ini(&p.to_ini(), "default").unwrap(), p);
        assert_eq!(Profile::from_json("default", &p.to_json()).unwrap(), p);
        assert!(Profile::check(&config()).is_empty());
    }

    #[test]
    fn unknown_keys_load_but_are_reported_by_check() {
        let mut c = config();
        c.insert("favourite_colour".into(), "blue".into());
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            Profile::from_config("p", &c).unwrap(),
            Profile::from_json("p", &json).unwrap()
        );
        assert_eq!(
            Profile::check(&c),
            [("favourite_colour".to_owned(), KeyProblem::Unknown)]
        );
    }

    #[test]
    fn reports_every_bad_key_by_name() {
        let mut c = config();
        c.remove("name_prefix");
        c.remove("endpoint_s3_key");
        c.insert("target_cluster".into(), "  ".into());
        c.insert(
            "reference_service_arn".into(),
            "arn:aws:ecs:us-east-1:123456789012:service/web".into(),
        );
        c.insert(
            "master_alb_arn".into(),
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/x/1".into(),
        );
        c.insert("bogus".into(), "1".into());
        let problems = Profile::check(&c);
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "bogus",
                "endpoint_s3_key",
                "master_alb_arn",
                "name_prefix",
                "reference_service_arn",
                "target_cluster"
            ]
        );
        let err = Profile::from_config("p", &c).unwrap_err();
        assert_eq!(err.problems.len(), 5, "unknown keys do not fail loading");
        let text = err.to_string();
        assert!(text.contains("name_prefix missing"), "{text}");
        assert!(text.contains("target_cluster empty"), "{text}");
        assert!(text.contains("application load balancer"), "{text}");
    }

    #[test]
    fn keys_are_case_insensitive_in_ini() {
        let text = Profile::example()
            .to_ini()
            .replace("name_prefix", "NAME_PREFIX")
            .replace("[default]", "[dev]");
        let p = Profile::from_ini(&text, "dev").unwrap();
        assert_eq!(p.name, "dev");
        assert_eq!(p.name_prefix, "web");
        assert!(Profile::from_ini(&text, "other").is_err());
    }

    #[test]
    fn arn_parsing() {
        assert!(ServiceArn::parse("arn:aws:ecs:us-east-1:123:service/a/b").is_err());
        assert!(ServiceArn::parse("arn:aws:s3:us-east-1:123456789012:service/a/b").is_err());
        let s = ServiceArn::parse("arn:aws-cn:ecs:cn-north-1:123456789012:service/c/s").unwrap();
        assert_eq!(
            s.cluster_arn(),
            "arn:aws-cn:ecs:cn-north-1:123456789012:cluster/c"
        );
        assert!(LoadBalancerArn::parse("nope").is_err());
        assert!(
            LoadBalancerArn::parse(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1"
            )
            .is_err()
        );
    }

    #[test]
    fn the_short_reference_arn_takes_the_target_cluster() {
        let mut c = config();
        c.insert(
            "reference_service_arn".into(),
            "arn:aws:ecs:us-east-1:123456789012:service/web".into(),
        );
        let p = Profile::from_config("p", &c).unwrap();
        assert_eq!(p.reference_service_arn.cluster, "main");
        assert_eq!(p.reference_service_arn.service, "web");
        assert_eq!(
            p.reference_service_arn.arn, "arn:aws:ecs:us-east-1:123456789012:service/web",
            "written back as it was given"
        );
        c.insert(
            "target_cluster".into(),
            "arn:aws:ecs:us-east-1:123456789012:cluster/blue".into(),
        );
        let p = Profile::from_config("p", &c).unwrap();
        assert_eq!(p.reference_service_arn.cluster, "blue");
        // Without a cluster, only target_cluster is named.
        c.remove("target_cluster");
        let err = Profile::from_config("p", &c).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["reference_service_arn", "target_cluster"]);
        assert!(ServiceArn::parse("arn:aws:ecs:us-east-1:123456789012:service/web").is_err());
    }

    #[test]
    fn zone_id_prefix_is_stripped() {
        let mut c = config();
        c.insert("dynamic_zone_id".into(), "/hostedzone/ZABC".into());
        assert_eq!(
            Profile::from_config("p", &c).unwrap().dynamic_zone_id,
            "ZABC"
        );
        c.insert("endpoint_update_key".into(), "name".into());
        assert!(Profile::from_config("p", &c).is_err());
    }
}
