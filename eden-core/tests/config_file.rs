//! Profile files: round trips, compatibility with Python's configparser both ways, `[default]`,
//! unknown keys, missing and unreadable files, concurrent writers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use eden_core::Profile;
use eden_core::config_file::{self, ConfigFile, ConfigFileError};
use eden_core::profile::{KeyProblem, PROFILE_KEYS};

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "eden-config-{tag}-{}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs Python code with `sys.argv[1]` = `path`; returns stdout.
fn python(code: &str, path: &Path) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .arg(path)
        .output()
        .expect("python3 must be installed for the configparser compatibility test");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every section configparser sees (without DEFAULT's fallbacks), as JSON.
const PY_DUMP: &str = r#"
import configparser, json, sys
c = configparser.ConfigParser()
with open(sys.argv[1]) as f:
    c.read_file(f)
print(json.dumps({s: {k: c.get(s, k) for k in c[s] if k not in c.defaults() or s == 'DEFAULT'} for s in ['DEFAULT'] + c.sections()}, sort_keys=True))
"#;

fn ours_as_json(file: &ConfigFile) -> serde_json::Value {
    let mut all = BTreeMap::new();
    let defaults = file.defaults();
    all.insert("DEFAULT".to_owned(), defaults.clone());
    for p in file.profiles() {
        let mut s = file.section(&p).unwrap();
        s.retain(|k, _| !defaults.contains_key(k));
        all.insert(p, s);
    }
    serde_json::to_value(all).unwrap()
}

#[test]
fn configparser_file_reads_here_and_ours_reads_there() {
    let dir = temp_dir("py");
    let path = dir.join("config");
    // The original CLI's way of writing: ConfigParser, section per profile.
    let write = r#"
import configparser, sys
c = configparser.ConfigParser()
c['default'] = {
    'name_prefix': 'web',
    'reference_service_arn': 'arn:aws:ecs:us-east-1:123456789012:service/main/web',
    'target_cluster': 'main',
    'domain_name_prefix': 'api',
    'master_alb_arn': 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shared/50dc6c495c0c9188',
    'dynamic_zone_id': 'Z0EXAMPLE',
    'endpoint_s3_bucket_name': 'eden-endpoints',
    'endpoint_s3_key': 'endpoints.json',
    'endpoint_name_prefix': 'servicename-dev',
    'endpoint_update_key': 'api_endpoint',
    'endpoint_env_type': 'dev',
}
c['staging'] = dict(c['default'])
c['staging']['Endpoint_Env_Type'] = 'staging'
c['staging']['team_note'] = 'owned by #platform; 100%% ours'
c['staging']['multi'] = 'line one\nline two'
with open(sys.argv[1], 'w') as f:
    c.write(f)
"#;
    python(write, &path);
    let python_text = std::fs::read_to_string(&path).unwrap();

    let file = ConfigFile::load(&path).unwrap();
    assert_eq!(file.profiles(), ["default", "staging"]);
    assert_eq!(
        config_file::load_profile(&path, "default").unwrap(),
        Profile::example()
    );
    let staging = config_file::load_profile(&path, "staging").unwrap();
    assert_eq!(staging.endpoint_env_type, "staging");
    let s = file.section("staging").unwrap();
    assert_eq!(s["team_note"], "owned by #platform; 100% ours");
    assert_eq!(s["multi"], "line one\nline two");
    // Nothing changed: our text is byte for byte configparser's.
    assert_eq!(file.to_text(), python_text);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&python(PY_DUMP, &path)).unwrap(),
        ours_as_json(&file)
    );

    // Write back through ours (set a key, add a profile), read with configparser.
    config_file::set_keys(&path, "staging", &[("endpoint_env_type", "qa")]).unwrap();
    let mut dev = Profile::example();
    dev.name = "dev".into();
    config_file::update(&path, |f| {
        f.set_profile(&dev);
        Ok(())
    })
    .unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&python(PY_DUMP, &path)).unwrap();
    let ours = ConfigFile::load(&path).unwrap();
    assert_eq!(theirs, ours_as_json(&ours));
    assert_eq!(theirs["staging"]["endpoint_env_type"], "qa");
    assert_eq!(
        theirs["staging"]["team_note"],
        "owned by #platform; 100% ours"
    );
    assert_eq!(theirs["dev"]["name_prefix"], "web");
    assert_eq!(theirs["default"].as_object().unwrap().len(), 11);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn configparser_defaults_section_and_upper_case_keys() {
    let dir = temp_dir("defaults");
    let path = dir.join("config");
    let write = r#"
import configparser, sys
c = configparser.ConfigParser()
c.optionxform = str  # keep the case, as a hand-edited file might
c['DEFAULT'] = {'ENDPOINT_ENV_TYPE': 'dev'}
c['p'] = {'Name_Prefix': 'web'}
with open(sys.argv[1], 'w') as f:
    c.write(f)
"#;
    python(write, &path);
    let file = ConfigFile::load(&path).unwrap();
    assert_eq!(file.profiles(), ["p"]);
    let p = file.section("p").unwrap();
    assert_eq!(p["name_prefix"], "web");
    assert_eq!(p["endpoint_env_type"], "dev");
    let report = file.check();
    assert_eq!(report.profiles.len(), 1);
    assert!(
        !report.profiles[0]
            .problems
            .iter()
            .any(|(k, _)| k == "endpoint_env_type" || k == "name_prefix")
    );
    // Rewritten, configparser still sees the same thing.
    config_file::set_keys(&path, "p", &[("target_cluster", "main")]).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&python(PY_DUMP, &path)).unwrap();
    assert_eq!(theirs["DEFAULT"]["endpoint_env_type"], "dev");
    assert_eq!(theirs["p"]["target_cluster"], "main");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn round_trip_keeps_unknown_keys_and_other_profiles() {
    let dir = temp_dir("rt");
    let path = dir.join("nested").join("config");
    let mut a = Profile::example();
    a.name = "a".into();
    config_file::update(&path, |f| {
        f.set_profile(&a);
        f.set("a", "X-Extra", "kept").unwrap();
        f.set_profile(&Profile::example());
        Ok(())
    })
    .unwrap();
    for (key, value) in [("endpoint_env_type", "qa"), ("name_prefix", "svc")] {
        config_file::set_keys(&path, "default", &[(key, value)]).unwrap();
    }
    let file = ConfigFile::load(&path).unwrap();
    assert_eq!(file.profiles(), ["a", "default"]);
    assert_eq!(file.section("a").unwrap()["x-extra"], "kept");
    assert_eq!(config_file::load_profile(&path, "a").unwrap(), a);
    let d = config_file::load_profile(&path, "default").unwrap();
    assert_eq!(
        (d.endpoint_env_type.as_str(), d.name_prefix.as_str()),
        ("qa", "svc")
    );
    // Keys keep their file positions; text is stable across a no-op rewrite.
    let before = std::fs::read_to_string(&path).unwrap();
    config_file::update(&path, |_| Ok(())).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    let default = &before[before.find("[default]").unwrap()..];
    assert!(default.find("name_prefix = svc").unwrap() < default.find("target_cluster").unwrap());

    let report = config_file::check_file(&path).unwrap();
    assert_eq!(
        report.profiles[0].problems,
        [("x-extra".to_owned(), KeyProblem::Unknown)]
    );
    assert!(report.profiles[1].problems.is_empty());
    // No temporary or lock files are left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["config"]);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn check_names_every_problem() {
    let dir = temp_dir("check");
    let path = dir.join("config");
    std::fs::write(
        &path,
        "[default]\nname_prefix =\nreference_service_arn = arn:aws:ecs:us-east-1:1:service/x\ncolour = blue\n",
    )
    .unwrap();
    let report = config_file::check_file(&path).unwrap();
    let problems = &report.profiles[0].problems;
    let missing = problems
        .iter()
        .filter(|(_, p)| *p == KeyProblem::Missing)
        .count();
    assert_eq!(missing, PROFILE_KEYS.len() - 2);
    assert!(problems.contains(&("name_prefix".into(), KeyProblem::Empty)));
    assert!(problems.contains(&("colour".into(), KeyProblem::Unknown)));
    assert!(
        problems
            .iter()
            .any(|(k, p)| k == "reference_service_arn" && matches!(p, KeyProblem::Malformed(_)))
    );
    match config_file::load_profile(&path, "default") {
        Err(ConfigFileError::Profile { source, .. }) => {
            assert_eq!(source.profile, "default");
            assert!(source.to_string().contains("name_prefix empty"));
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn missing_unreadable_and_malformed_files() {
    let dir = temp_dir("bad");
    let missing = dir.join("nope");
    let err = config_file::load_profile(&missing, "default").unwrap_err();
    assert!(matches!(err, ConfigFileError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("nope"));
    assert!(matches!(
        config_file::check_file(&missing),
        Err(ConfigFileError::NotFound { .. })
    ));
    assert_eq!(
        ConfigFile::load_or_empty(&missing).unwrap(),
        ConfigFile::default()
    );

    // A directory where the file should be cannot be read (even by root).
    let unreadable = dir.join("dir");
    std::fs::create_dir(&unreadable).unwrap();
    let err = config_file::load_profile(&unreadable, "default").unwrap_err();
    assert!(matches!(err, ConfigFileError::Read { .. }), "{err}");
    assert!(config_file::set_keys(&unreadable, "default", &[("a", "b")]).is_err());

    let malformed = dir.join("malformed");
    std::fs::write(&malformed, "stray = 1\n[default]\n").unwrap();
    let err = config_file::load_profile(&malformed, "default").unwrap_err();
    assert!(matches!(err, ConfigFileError::Parse { .. }), "{err}");
    // A failed update leaves the file untouched.
    assert!(config_file::set_keys(&malformed, "default", &[("a", "b")]).is_err());
    assert_eq!(
        std::fs::read_to_string(&malformed).unwrap(),
        "stray = 1\n[default]\n"
    );

    let ok = dir.join("ok");
    config_file::set_keys(&ok, "default", &[("name_prefix", "web")]).unwrap();
    let err = config_file::load_profile(&ok, "prod").unwrap_err();
    match &err {
        ConfigFileError::NoProfile { available, .. } => assert_eq!(available, &["default"]),
        other => panic!("{other:?}"),
    }
    let err = config_file::set_keys(&ok, "default", &[("bad key=", "v")]).unwrap_err();
    assert!(matches!(err, ConfigFileError::InvalidEntry { .. }), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn concurrent_writers_lose_no_profile() {
    let dir = temp_dir("concurrent");
    let path = dir.join("config");
    let writers = 8;
    let rounds = 10;
    std::thread::scope(|s| {
        for w in 0..writers {
            let path = &path;
            s.spawn(move || {
                for r in 0..rounds {
                    let profile = format!("p{w}");
                    let value = r.to_string();
                    config_file::set_keys(path, &profile, &[("round", &value)]).unwrap();
                }
            });
        }
    });
    let file = ConfigFile::load(&path).unwrap();
    let mut profiles = file.profiles();
    profiles.sort();
    assert_eq!(profiles.len(), writers);
    for p in profiles {
        assert_eq!(file.section(&p).unwrap()["round"], (rounds - 1).to_string());
    }
    std::fs::remove_dir_all(dir).ok();
}
