//! The example CLI (`examples/eden.rs`) driven as a process against the in-memory cloud:
//! config setup, config check, create, ls, delete across separate runs, with output and exit
//! codes. `cargo test` builds the examples before running tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example_binary() -> PathBuf {
    // target/<profile>/deps/cli-<hash> -> target/<profile>/examples/eden
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir
        .join("examples")
        .join(format!("eden{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test -p eden-core` (which builds the examples) \
         or `cargo build -p eden-core --example eden` first",
        bin.display()
    );
    bin
}

struct Cli {
    bin: PathBuf,
    dir: PathBuf,
}

impl Cli {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "eden-cli-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            bin: example_binary(),
            dir,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let config = self.dir.join("config");
        let state = self.dir.join("state.json");
        let mut command = Command::new(&self.bin);
        command
            .arg("-c")
            .arg(&config)
            .arg("--in-memory-state")
            .arg(&state)
            .args(args)
            .env_remove("EDEN_CONFIG")
            .env_remove("EDEN_IN_MEMORY_STATE");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?} failed ({:?}):\n{stdout}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs and expects exit code 1; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?} should fail: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const SETUP: &[&str] = &[
    "config",
    "setup",
    "--name-prefix",
    "web",
    "--reference-service-arn",
    "arn:aws:ecs:us-east-1:123456789012:service/main/web",
    "--target-cluster",
    "main",
    "--domain-name-prefix",
    "api",
    "--master-alb-arn",
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shared/50dc6c495c0c9188",
    "--dynamic-zone-id",
    "Z0EXAMPLE",
    "--endpoint-s3-bucket-name",
    "eden-endpoints",
    "--endpoint-s3-key",
    "endpoints.json",
    "--endpoint-name-prefix",
    "servicename-dev",
    "--endpoint-update-key",
    "api_endpoint",
];

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";

#[test]
fn setup_check_create_ls_delete_across_runs() {
    let cli = Cli::new();
    // Ten of the eleven keys: check names the missing one and exits 1.
    let out = cli.ok(SETUP);
    assert!(out.contains("profile [default] written"), "{out}");
    let out = cli.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("[default] endpoint_env_type: missing"),
        "{stdout}"
    );
    cli.ok(&["config", "setup", "--endpoint-env-type", "dev"]);
    assert!(cli.ok(&["config", "check"]).contains("[default] ok"));

    let out = cli.ok(&["create", "--name", "feature-1", "--image-uri", IMAGE]);
    assert!(
        out.contains(
            "created environment feature-1 (profile default): api-feature-1.dev.example.com"
        ),
        "{out}"
    );
    cli.ok(&["create", "--name", "feature-2", "--image-uri", "nginx:1.27"]);
    let out = cli.ok(&["ls"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("default\tfeature-1\tapi-feature-1.dev.example.com\t"),
        "{out}"
    );

    // Deploying again to an existing environment updates it (the state was replayed).
    let out = cli.ok(&["create", "--name", "feature-1", "--image-uri", IMAGE]);
    assert!(out.contains("Updated"), "{out}");

    let out = cli.ok(&["delete", "--name", "feature-1"]);
    assert!(out.contains("deleted environment feature-1"), "{out}");
    assert!(out.contains("Deleted"), "{out}");
    let out = cli.ok(&["ls"]);
    assert!(
        !out.contains("feature-1") && out.contains("feature-2"),
        "{out}"
    );
    cli.ok(&["delete", "--name", "feature-2"]);
    assert_eq!(cli.ok(&["ls"]).trim(), "no environments");
}

#[test]
fn remote_profiles_push_ls_pull_remote_rm() {
    let cli = Cli::new();
    cli.ok(SETUP);
    cli.ok(&["config", "setup", "--endpoint-env-type", "dev"]);
    assert!(cli.ok(&["config", "push"]).contains("pushed"));
    cli.ok(&["create", "--name", "one", "--image-uri", IMAGE]);
    let out = cli.ok(&["config", "ls"]);
    assert!(out.starts_with("default\n"), "{out}");
    assert!(out.contains("  one  api-one.dev.example.com  "), "{out}");
    // Pull into another profile file section name: -p selects the remote profile.
    let out = cli.ok(&["config", "pull"]);
    assert!(out.contains("pulled"), "{out}");
    cli.ok(&["config", "remote-rm"]);
    assert!(cli.ok(&["config", "ls"]).contains("default (not pushed)"));
    let err = cli.fails(&["config", "remote-rm"]);
    assert!(err.contains("not in table"), "{err}");
    let err = cli.fails(&["-p", "prod", "config", "pull"]);
    assert!(err.contains("prod"), "{err}");
}

#[test]
fn errors_exit_non_zero() {
    let cli = Cli::new();
    // No profile file yet.
    let err = cli.fails(&["create", "--name", "x", "--image-uri", IMAGE]);
    assert!(err.contains("not found"), "{err}");
    cli.ok(SETUP);
    cli.ok(&["config", "setup", "--endpoint-env-type", "dev"]);
    let err = cli.fails(&["create", "--name", "Bad_Name", "--image-uri", IMAGE]);
    assert!(err.contains("invalid name"), "{err}");
    let err = cli.fails(&[
        "create",
        "--name",
        "x",
        "--image-uri",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v9",
    ]);
    assert!(err.contains("not found"), "{err}");
    let err = cli.fails(&["-p", "prod", "delete", "--name", "x"]);
    assert!(err.contains("no profile [prod]"), "{err}");
    let err = cli.fails(&["config", "setup"]);
    assert!(err.contains("at least one key"), "{err}");
    // Usage errors are clap's (exit code 2).
    assert_eq!(cli.run(&["create", "--name", "x"]).status.code(), Some(2));
}

/// A ready profile file.
fn ready() -> Cli {
    let cli = Cli::new();
    cli.ok(SETUP);
    cli.ok(&["config", "setup", "--endpoint-env-type", "dev"]);
    cli
}

#[test]
fn progress_goes_to_stderr_as_plain_lines_and_json_to_stdout() {
    let cli = ready();
    let out = cli.run(&[
        "--output",
        "json",
        "create",
        "--name",
        "feature-1",
        "--image-uri",
        IMAGE,
    ]);
    assert!(out.status.success(), "{out:?}");
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["host"], "api-feature-1.dev.example.com");
    assert_eq!(outcome["resources"].as_array().unwrap().len(), 8);
    // Not a terminal: one plain line per step, no control characters, as the steps happen.
    let progress = String::from_utf8(out.stderr).unwrap();
    assert!(
        !progress.contains('\x1b') && !progress.contains('\r'),
        "{progress:?}"
    );
    let lines: Vec<&str> = progress.lines().collect();
    assert_eq!(lines.len(), 8, "{progress}");
    assert!(lines[0].trim_start().starts_with("checked"), "{progress}");
    assert!(
        lines.last().unwrap().contains("state item"),
        "the ready state comes last: {progress}"
    );
    let ls = cli.ok(&["--output", "json", "ls"]);
    let ls: serde_json::Value = serde_json::from_str(&ls).unwrap();
    assert_eq!(ls[0]["name"], "feature-1");
    assert_eq!(ls[0]["status"], "ready");
    // Errors are JSON too, with their class.
    let out = cli.run(&[
        "--output",
        "json",
        "create",
        "--name",
        "x",
        "--image-uri",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v9",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["status"], "error");
    assert_eq!(error["class"], "invalid");
}

#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let cli = ready();
    for i in 0..3 {
        cli.ok(&[
            "create",
            "--name",
            &format!("e{i}"),
            "--image-uri",
            "nginx:1.27",
        ]);
    }
    // `eden ls | true`: the reader is gone before the first line is written.
    for args in [&["ls"][..], &["--output", "json", "ls"], &["config", "ls"]] {
        let mut child = cli
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{args:?}: {status:?} {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn dry_runs_and_break_lease() {
    let cli = ready();
    let out = cli.ok(&["create", "--name", "a", "--image-uri", IMAGE, "--dry-run"]);
    assert!(
        out.contains("plan: would be created environment a"),
        "{out}"
    );
    assert_eq!(cli.ok(&["ls"]).trim(), "no environments");
    let out = cli.ok(&["break-lease", "--name", "a"]);
    assert!(out.contains("has no lease"), "{out}");
    cli.ok(&["create", "--name", "a", "--image-uri", IMAGE]);
    let out = cli.ok(&["delete", "--name", "a", "--dry-run"]);
    assert!(out.contains("plan: would be deleted"), "{out}");
    assert!(cli.ok(&["ls"]).contains("\ta\t"));
}

/// The flags and keys of aws-eden-cli 0.1.5: `config setup --config-bucket-name ...` writes
/// the current keys, `config check` reports each 0.1.5 key of a file and what it became, and a
/// `dynamic_zone_name` that differs from the zone's name stops create before any change.
#[test]
fn aws_eden_cli_0_1_5_flags_and_keys() {
    let cli = Cli::new();
    let legacy_setup: Vec<&str> = SETUP
        .iter()
        .map(|a| match *a {
            "--endpoint-s3-bucket-name" => "--config-bucket-name",
            "--endpoint-s3-key" => "--config-bucket-key",
            "--endpoint-name-prefix" => "--config-name-prefix",
            "--endpoint-update-key" => "--config-update-key",
            other => other,
        })
        .chain(["--config-env-type", "dev"])
        .collect();
    cli.ok(&legacy_setup);
    let text = std::fs::read_to_string(cli.dir.join("config")).unwrap();
    assert!(
        text.contains("endpoint_s3_bucket_name = eden-endpoints"),
        "{text}"
    );
    assert!(!text.contains("config_bucket_name"), "{text}");

    // A file as aws-eden-cli 0.1.5 wrote it: its key names, plus its two extra keys.
    let old = text
        .replace("endpoint_s3_bucket_name", "config_bucket_name")
        .replace("endpoint_s3_key", "config_bucket_key")
        .replace("endpoint_name_prefix", "config_name_prefix")
        .replace("endpoint_update_key", "config_update_key")
        .replace("endpoint_env_type", "config_env_type")
        .replace(
            "[default]\n",
            "[default]\ndynamic_zone_name = dev.example.com.\ntarget_container_name = web\n",
        );
    std::fs::write(cli.dir.join("config"), &old).unwrap();
    let out = cli.ok(&["config", "check"]);
    assert!(
        out.contains(
            "[default] config_bucket_name (aws-eden-cli 0.1.5) read as endpoint_s3_bucket_name"
        ),
        "{out}"
    );
    assert!(
        out.contains("[default] target_container_name (aws-eden-cli 0.1.5) ignored"),
        "{out}"
    );
    assert!(out.contains("[default] ok"), "{out}");
    let out = cli.ok(&["create", "--name", "feature-1", "--image-uri", IMAGE]);
    assert!(out.contains("api-feature-1.dev.example.com"), "{out}");

    // The hosts 0.1.5 would have made (under sub.dev.example.com) are not the zone's: refused.
    std::fs::write(
        cli.dir.join("config"),
        old.replace(
            "dynamic_zone_name = dev.example.com.",
            "dynamic_zone_name = sub.dev.example.com",
        ),
    )
    .unwrap();
    let err = cli.fails(&["create", "--name", "feature-2", "--image-uri", IMAGE]);
    assert!(
        err.contains("dynamic_zone_name is \"sub.dev.example.com\""),
        "{err}"
    );
    assert!(!cli.ok(&["ls"]).contains("feature-2"));
    let err = cli.fails(&["delete", "--name", "feature-1"]);
    assert!(err.contains("dynamic_zone_name"), "{err}");
    assert!(cli.ok(&["ls"]).contains("feature-1"));
}

/// `-v` installs a tracing subscriber: eden-core's events reach stderr; without it they do not.
#[test]
fn verbose_logs_through_tracing() {
    let cli = Cli::new();
    cli.ok(SETUP);
    cli.ok(&["config", "setup", "--endpoint-env-type", "dev"]);
    let quiet = cli
        .command(&["create", "--name", "feature-1", "--image-uri", IMAGE])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(quiet.status.success());
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(!stderr.contains("environment created"), "{stderr}");
    let loud = cli
        .command(&["-v", "create", "--name", "feature-2", "--image-uri", IMAGE])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(loud.status.success(), "{loud:?}");
    let stderr = String::from_utf8_lossy(&loud.stderr);
    assert!(
        stderr.contains("INFO") && stderr.contains("environment created"),
        "{stderr}"
    );
    assert!(stderr.contains("env=feature-2"), "{stderr}");
}
