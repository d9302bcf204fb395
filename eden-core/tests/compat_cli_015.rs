//! Profile files written by aws-eden-cli 0.1.5 (the released Python CLI): every key it read is
//! read here, mapped to the current key, reported by the check; a file mixing an old key and
//! its new key with different values is refused by name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eden_core::KeyProblem;
use eden_core::config_file::{self, ConfigFile, ConfigFileError};
use eden_core::profile::legacy::{Becomes, KEPT_KEYS, LEGACY_KEYS};

/// The `[api]` profile of aws-eden-cli 0.1.5's README ("Configure"), key for key and in its
/// order; only the README's `xxxxxxxxxxxx` account and id placeholders are filled in.
const README_015: &str = "[api]
name_prefix = dev-dynamic
reference_service_arn = arn:aws:ecs:ap-northeast-1:123456789012:service/dev/dev01-api
target_cluster = dev
domain_name_prefix = api
master_alb_arn = arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:loadbalancer/app/dev-alb-api-dynamic/0123456789
dynamic_zone_name = dev.example.com.
dynamic_zone_id = Z0123456789ABC
config_bucket_name = servicename-config
config_bucket_key = endpoints.json
config_update_key = api_endpoint
config_env_type = dev
config_name_prefix = servicename-dev
target_container_name = api
";

#[test]
fn the_thirteen_keys_of_0_1_5_are_all_known() {
    // aws_eden_cli/consts.py `parameters` of 0.1.5: thirteen names.
    let mut all: Vec<&str> = LEGACY_KEYS.iter().map(|k| k.key).collect();
    all.extend(KEPT_KEYS.iter().map(|(k, _)| *k));
    all.sort_unstable();
    assert_eq!(
        all,
        [
            "config_bucket_key",
            "config_bucket_name",
            "config_env_type",
            "config_name_prefix",
            "config_update_key",
            "domain_name_prefix",
            "dynamic_zone_id",
            "dynamic_zone_name",
            "master_alb_arn",
            "name_prefix",
            "reference_service_arn",
            "target_cluster",
            "target_container_name",
        ]
    );
}

#[test]
fn a_0_1_5_profile_loads_with_its_keys_mapped() {
    let file = ConfigFile::parse(README_015).unwrap();
    let profile = file.profile("api").unwrap().unwrap();
    assert_eq!(profile.endpoint_s3_bucket_name, "servicename-config");
    assert_eq!(profile.endpoint_s3_key, "endpoints.json");
    assert_eq!(profile.endpoint_update_key, "api_endpoint");
    assert_eq!(profile.endpoint_env_type, "dev");
    assert_eq!(profile.endpoint_name_prefix, "servicename-dev");
    assert_eq!(profile.name_prefix, "dev-dynamic");
    assert_eq!(profile.reference_service_arn.service, "dev01-api");
    assert_eq!(profile.dynamic_zone_id, "Z0123456789ABC");

    let report = file.check();
    assert!(report.is_ok(), "{report}");
    let text = report.to_string();
    for (old, new) in [
        ("config_bucket_name", "endpoint_s3_bucket_name"),
        ("config_bucket_key", "endpoint_s3_key"),
        ("config_update_key", "endpoint_update_key"),
        ("config_env_type", "endpoint_env_type"),
        ("config_name_prefix", "endpoint_name_prefix"),
    ] {
        assert!(
            text.contains(&format!("[api] {old} (aws-eden-cli 0.1.5) read as {new}")),
            "{text}"
        );
    }
    assert!(
        text.contains("[api] dynamic_zone_name (aws-eden-cli 0.1.5) is checked"),
        "{text}"
    );
    assert!(
        text.contains("[api] target_container_name (aws-eden-cli 0.1.5) ignored"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("[api] ok"), "{text}");
    let uses = &report.profiles[0].legacy;
    assert_eq!(uses.len(), 7);
    assert!(
        uses.iter()
            .any(|u| u.key == "target_container_name" && u.becomes == Becomes::Unused)
    );
}

#[test]
fn old_and_new_keys_with_different_values_are_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("eden-compat-{}", std::process::id()));
    let path = dir.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    // Same value twice: fine (one file serving both CLIs).
    let both = format!("{README_015}endpoint_s3_key = endpoints.json\n");
    std::fs::write(&path, &both).unwrap();
    assert!(config_file::load_profile(&path, "api").is_ok());
    // Different values: refused, naming both keys.
    let mixed = format!("{README_015}endpoint_env_type = staging\n");
    std::fs::write(&path, &mixed).unwrap();
    let err = config_file::load_profile(&path, "api").unwrap_err();
    let ConfigFileError::Profile { source, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(
        source.problems,
        [(
            "config_env_type".to_owned(),
            KeyProblem::Conflict {
                legacy: "config_env_type".into(),
                current: "endpoint_env_type".into()
            }
        )]
    );
    let text = err.to_string();
    assert!(
        text.contains("config_env_type") && text.contains("endpoint_env_type"),
        "{text}"
    );
    let report = config_file::check_file(&path).unwrap();
    assert!(!report.is_ok());
    assert!(
        report
            .to_string()
            .contains("[api] config_env_type: both config_env_type")
    );

    // Setting the new key through the file API keeps the old one in step.
    std::fs::write(&path, README_015).unwrap();
    config_file::set_keys(&path, "api", &[("endpoint_env_type", "staging")]).unwrap();
    let file = ConfigFile::load(&path).unwrap();
    let section = file.section("api").unwrap();
    assert_eq!(section["config_env_type"], "staging");
    assert_eq!(section["endpoint_env_type"], "staging");
    assert_eq!(
        file.profile("api").unwrap().unwrap().endpoint_env_type,
        "staging"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_empty_dynamic_zone_name_is_refused_at_load() {
    let text = README_015.replace(
        "dynamic_zone_name = dev.example.com.",
        "dynamic_zone_name =",
    );
    let err = ConfigFile::parse(&text)
        .unwrap()
        .profile("api")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].0, "dynamic_zone_name");
}
