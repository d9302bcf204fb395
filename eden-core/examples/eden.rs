//! The eden CLI, rebuilt on eden-core: `config setup|check|push|pull|ls|remote-rm`, `create`,
//! `delete`, `ls`, `break-lease`, `migrate-state` (from aws-eden-cli 0.1.5's table), with the
//! original flags. Exits non-zero on any error, and
//! quietly with 0 when its output is closed early (`eden ls | head -1`).
//!
//! While create and delete run, each step is reported on stderr as it happens: one updating
//! line per step on a terminal, plain lines otherwise (logs, CI). `--output json` prints the
//! outcome (or the environments, or the error) as JSON on stdout.
//!
//! Try it without an AWS account: `--in-memory-state FILE` runs on the in-memory cloud and
//! keeps its state in FILE between runs (a log of the operations, replayed at start).
//!
//! ```text
//! S=/tmp/eden-state.json C=/tmp/eden-config
//! cargo run -p eden-core --example eden -- -c $C --in-memory-state $S config setup \
//!   --name-prefix web --reference-service-arn arn:aws:ecs:us-east-1:123456789012:service/main/web \
//!   --target-cluster main --domain-name-prefix api \
//!   --master-alb-arn arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shared/50dc6c495c0c9188 \
//!   --dynamic-zone-id Z0EXAMPLE --endpoint-s3-bucket-name eden-endpoints \
//!   --endpoint-s3-key endpoints.json --endpoint-name-prefix servicename-dev \
//!   --endpoint-update-key api_endpoint --endpoint-env-type dev
//! cargo run -p eden-core --example eden -- -c $C --in-memory-state $S config check
//! cargo run -p eden-core --example eden -- -c $C --in-memory-state $S create --name feature-1 \
//!   --image-uri 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2
//! cargo run -p eden-core --example eden -- -c $C --in-memory-state $S ls
//! cargo run -p eden-core --example eden -- -c $C --in-memory-state $S delete --name feature-1
//! ```
//!
//! File work (the profile file, the in-memory state) happens before and after the async part,
//! never on the executor.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use eden_core::config_file;
use eden_core::environment::{CreateOptions, DeleteOptions, Environment, Outcome, Progress};
use eden_core::memory::{MemoryCloud, MemoryOptions};
use eden_core::migration::{MigrateOptions, migrate_state};
use eden_core::profile::legacy;
use eden_core::remote::RemoteProfiles;
use eden_core::{Cloud, Profile};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug)]
#[command(name = "eden", about = "ECS dynamic environments", version)]
struct Cli {
    /// Profile (INI section) to use.
    #[arg(short = 'p', long, global = true, default_value = "default")]
    profile: String,
    /// Profile file (default ~/.eden/config).
    #[arg(short = 'c', long, global = true, env = "EDEN_CONFIG")]
    config_path: Option<PathBuf>,
    /// State table of environments and remote profiles.
    #[arg(long, global = true, default_value = "eden")]
    remote_table_name: String,
    /// Run on the in-memory cloud, keeping its state in this JSON file between runs.
    #[arg(long, global = true, env = "EDEN_IN_MEMORY_STATE")]
    in_memory_state: Option<PathBuf>,
    /// How to print results.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Log eden-core's tracing events on stderr: `-v` info, `-vv` debug, `-vvv` trace
    /// (`RUST_LOG` overrides it, e.g. `RUST_LOG=eden_core=debug,aws_smithy_runtime=debug`).
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Lines for people.
    Text,
    /// JSON on stdout.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage profiles.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create an environment, or deploy an image to an existing one.
    Create {
        /// Environment name (a DNS label).
        #[arg(long)]
        name: String,
        /// Container image URI.
        #[arg(long)]
        image_uri: String,
        /// Only show what would be done.
        #[arg(long)]
        dry_run: bool,
        /// Wait until the service is stable (at most this many seconds) before publishing.
        #[arg(long, value_name = "SECONDS")]
        wait_stable: Option<u64>,
        /// Create without the reference's parts a preview must not copy (service registries,
        /// Service Connect services, ...) instead of refusing.
        #[arg(long)]
        leave_out_uncopyable: bool,
    },
    /// Delete an environment.
    Delete {
        /// Environment name.
        #[arg(long)]
        name: String,
        /// Only show what would be done.
        #[arg(long)]
        dry_run: bool,
    },
    /// List environments (of every profile).
    Ls,
    /// Copy aws-eden-cli 0.1.5's state table (keyed by env_name) into a table of eden's
    /// layout: a dry run unless --apply; idempotent; the old table is never changed.
    MigrateState {
        /// The aws-eden-cli 0.1.5 table.
        #[arg(long, default_value = "eden")]
        from: String,
        /// The new table (created when missing); then use it with --remote-table-name.
        #[arg(long)]
        to: String,
        /// Write; without it, only report what would be copied.
        #[arg(long)]
        apply: bool,
    },
    /// Break the lease a create or delete holds on an environment (when its holder is gone).
    BreakLease {
        /// Environment name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Set keys of the profile in the profile file.
    Setup(Box<SetupFlags>),
    /// Check every profile of the profile file.
    Check,
    /// Push the profile to the state table.
    Push,
    /// Pull the profile from the state table into the profile file.
    Pull,
    /// List remote profiles and their environments.
    Ls,
    /// Remove the profile from the state table.
    RemoteRm,
}

#[derive(Args, Debug)]
struct SetupFlags {
    #[arg(long)]
    name_prefix: Option<String>,
    #[arg(long)]
    reference_service_arn: Option<String>,
    #[arg(long)]
    target_cluster: Option<String>,
    #[arg(long)]
    domain_name_prefix: Option<String>,
    #[arg(long)]
    master_alb_arn: Option<String>,
    #[arg(long)]
    dynamic_zone_id: Option<String>,
    /// (aws-eden-cli 0.1.5: `--config-bucket-name`)
    #[arg(long, alias = "config-bucket-name")]
    endpoint_s3_bucket_name: Option<String>,
    /// (aws-eden-cli 0.1.5: `--config-bucket-key`)
    #[arg(long, alias = "config-bucket-key")]
    endpoint_s3_key: Option<String>,
    /// (aws-eden-cli 0.1.5: `--config-name-prefix`)
    #[arg(long, alias = "config-name-prefix")]
    endpoint_name_prefix: Option<String>,
    /// (aws-eden-cli 0.1.5: `--config-update-key`)
    #[arg(long, alias = "config-update-key")]
    endpoint_update_key: Option<String>,
    /// (aws-eden-cli 0.1.5: `--config-env-type`)
    #[arg(long, alias = "config-env-type")]
    endpoint_env_type: Option<String>,
}

impl SetupFlags {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("name_prefix", &self.name_prefix),
            ("reference_service_arn", &self.reference_service_arn),
            ("target_cluster", &self.target_cluster),
            ("domain_name_prefix", &self.domain_name_prefix),
            ("master_alb_arn", &self.master_alb_arn),
            ("dynamic_zone_id", &self.dynamic_zone_id),
            ("endpoint_s3_bucket_name", &self.endpoint_s3_bucket_name),
            ("endpoint_s3_key", &self.endpoint_s3_key),
            ("endpoint_name_prefix", &self.endpoint_name_prefix),
            ("endpoint_update_key", &self.endpoint_update_key),
            ("endpoint_env_type", &self.endpoint_env_type),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// One successful operation of the in-memory cloud, replayed at the next start.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Push {
        profile: String,
        config: BTreeMap<String, String>,
    },
    RemoteRm {
        profile: String,
    },
    Create {
        profile: String,
        config: BTreeMap<String, String>,
        name: String,
        image_uri: String,
        now: i64,
        #[serde(default)]
        leave_out_uncopyable: bool,
    },
    Delete {
        profile: String,
        config: BTreeMap<String, String>,
        name: String,
    },
}

#[derive(serde::Serialize, serde::Deserialize, Debug, Default)]
struct MemoryState {
    ops: Vec<Op>,
}

/// Where stdout went away (`eden ls | head -1`): stop quietly.
#[derive(Debug)]
struct ClosedPipe;

impl std::fmt::Display for ClosedPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout closed")
    }
}

impl std::error::Error for ClosedPipe {}

/// Writes a line to stdout; a closed pipe ends the program quietly.
fn say(line: impl AsRef<str>) -> Result<(), BoxError> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", line.as_ref()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Box::new(ClosedPipe)),
        Err(e) => Err(Box::new(e)),
    }
}

fn say_json(value: &impl serde::Serialize) -> Result<(), BoxError> {
    say(serde_json::to_string_pretty(value)?)
}

/// Reports progress on stderr: on a terminal, waits update one line in place and each step
/// ends on a line of its own; otherwise every event is a plain line.
struct Reporter {
    terminal: bool,
    /// A waiting line is shown and must be cleared first.
    open: Mutex<bool>,
}

impl Reporter {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            terminal: std::io::stderr().is_terminal(),
            open: Mutex::new(false),
        })
    }

    fn report(&self, progress: &Progress) {
        let line = match progress {
            Progress::Resource(r) => {
                let mut line = format!(
                    "{:<15} {:<16} {}",
                    format!("{:?}", r.action).to_lowercase(),
                    r.kind.to_string(),
                    r.id
                );
                if let Some(note) = &r.note {
                    line.push_str(&format!(" ({note})"));
                }
                (line, true)
            }
            Progress::Waiting { what, status } => (format!("waiting for {what}: {status}"), false),
            Progress::Lease(holder) => (
                format!(
                    "waiting for the lease of {} (a {} by run {} holds it)",
                    holder.environment, holder.operation, holder.run
                ),
                false,
            ),
            _ => return,
        };
        let mut err = std::io::stderr().lock();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        // Errors writing progress never stop the operation.
        let _ = if self.terminal {
            let clear = if *open { "\r\x1b[2K" } else { "" };
            *open = !line.1;
            if line.1 {
                writeln!(err, "{clear}  {}", line.0)
            } else {
                write!(err, "{clear}  {}", line.0)
            }
        } else {
            writeln!(err, "  {}", line.0)
        };
        let _ = err.flush();
    }

    /// Ends a waiting line left open.
    fn finish(&self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if *open {
            let _ = writeln!(std::io::stderr());
            *open = false;
        }
    }
}

fn profile_of(name: &str, config: &BTreeMap<String, String>) -> Result<Profile, BoxError> {
    Ok(Profile::from_config(name, config)?)
}

/// The in-memory cloud, its state file and the operations it replays.
struct Memory {
    cloud: Arc<MemoryCloud>,
    path: PathBuf,
    state: MemoryState,
    seeded: BTreeSet<String>,
}

impl Memory {
    /// Reads the state file (before the runtime starts: no file I/O on the executor).
    fn load(path: &Path) -> Result<Self, BoxError> {
        let state: MemoryState = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("in-memory state {}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MemoryState::default(),
            Err(e) => return Err(format!("reading in-memory state {}: {e}", path.display()).into()),
        };
        Ok(Self {
            cloud: Arc::new(MemoryCloud::new(MemoryOptions::default())),
            path: path.to_owned(),
            state,
            seeded: BTreeSet::new(),
        })
    }

    /// The cloud, without a region: it holds whatever the profiles name.
    fn cloud(&self) -> Cloud {
        let mut cloud = self.cloud.cloud();
        cloud.region = None;
        cloud
    }

    /// Seeds what a profile refers to, once per distinct profile.
    fn seed(&mut self, profile: &Profile) {
        if self.seeded.insert(profile.to_json()) {
            self.cloud.seed(profile);
        }
    }

    async fn replay(&mut self, eden: &Environment) -> Result<(), BoxError> {
        for op in self.state.ops.clone() {
            self.apply(eden, &op)
                .await
                .map_err(|e| format!("replaying in-memory state {}: {e}", self.path.display()))?;
        }
        Ok(())
    }

    async fn apply(&mut self, eden: &Environment, op: &Op) -> Result<(), BoxError> {
        match op {
            Op::Push { profile, config } => {
                eden.push_profile(&profile_of(profile, config)?).await?;
            }
            Op::RemoteRm { profile } => {
                eden.remove_profile(profile).await?;
            }
            Op::Create {
                profile,
                config,
                name,
                image_uri,
                now,
                leave_out_uncopyable,
            } => {
                let profile = profile_of(profile, config)?;
                self.seed(&profile);
                let options = CreateOptions::default()
                    .now(*now)
                    .leave_out_uncopyable(*leave_out_uncopyable);
                eden.create(&profile, name, image_uri, &options).await?;
            }
            Op::Delete {
                profile,
                config,
                name,
            } => {
                let profile = profile_of(profile, config)?;
                self.seed(&profile);
                eden.delete(&profile, name, &DeleteOptions::default())
                    .await?;
            }
        }
        Ok(())
    }

    /// Writes the state file with one more operation (after the runtime: no file I/O on the
    /// executor).
    fn save(&mut self, op: Op) -> Result<(), BoxError> {
        self.state.ops.push(op);
        let text = serde_json::to_string_pretty(&self.state)?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| format!("writing in-memory state {}: {e}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(feature = "aws")]
async fn aws_cloud() -> Result<Cloud, BoxError> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Ok(eden_core::aws::cloud(&config))
}

#[cfg(not(feature = "aws"))]
async fn aws_cloud() -> Result<Cloud, BoxError> {
    Err("built without the `aws` feature: use --in-memory-state FILE".into())
}

fn config_path(cli: &Cli) -> Result<PathBuf, BoxError> {
    match &cli.config_path {
        Some(p) => Ok(p.clone()),
        None => config_file::default_path()
            .ok_or_else(|| "no home directory: pass -c/--config-path".into()),
    }
}

fn print_outcome(output: Output, verb: &str, outcome: &Outcome) -> Result<(), BoxError> {
    if output == Output::Json {
        return say_json(outcome);
    }
    let verb = if outcome.dry_run {
        format!("plan: would be {verb}")
    } else {
        verb.to_owned()
    };
    say(format!(
        "{verb} environment {} (profile {}): {}",
        outcome.names.env,
        outcome.profile,
        outcome.host.as_deref().unwrap_or("-")
    ))?;
    for r in &outcome.resources {
        say(format!(
            "  {:<15} {:<15} {}",
            format!("{:?}", r.action),
            format!("{:?}", r.kind),
            r.id
        ))?;
    }
    Ok(())
}

fn print_time(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| epoch.to_string())
}

/// What the async part asks to be saved to the in-memory state file afterwards.
type Recorded = Option<Op>;

async fn run_cloud(
    cli: &Cli,
    path: &Path,
    profile: Option<Profile>,
    expected_zone: Option<String>,
    local_profiles: Vec<Profile>,
    memory: Option<&mut Memory>,
    reporter: Arc<Reporter>,
) -> Result<Recorded, BoxError> {
    let table = cli.remote_table_name.clone();
    let output = cli.output;
    let cloud = match &memory {
        Some(m) => m.cloud(),
        None => aws_cloud().await?,
    };
    let plain = Environment::new(cloud.clone()).with_table(&table);
    if let Some(m) = memory {
        m.replay(&plain).await?;
        if let Some(p) = &profile {
            m.seed(p);
        }
    }
    let progress = reporter.clone();
    let eden = plain
        .clone()
        .with_progress(move |p: &Progress| progress.report(p));
    let remote = RemoteProfiles::from_environment(plain.clone());
    let profile_name = cli.profile.clone();
    if let (Some(expected), Some(p)) = (&expected_zone, &profile) {
        let actual = cloud
            .dns
            .hosted_zone_name(&p.dynamic_zone_id)
            .await
            .map_err(|e| format!("reading hosted zone {}: {e}", p.dynamic_zone_id))?;
        if let Some(why) = legacy::zone_name_mismatch(expected, &p.dynamic_zone_id, &actual) {
            return Err(format!("profile [{}]: {why}", p.name).into());
        }
    }
    let need = || profile.clone().ok_or("no profile loaded");
    let recorded = match &cli.command {
        Command::Config(ConfigCommand::Setup(_) | ConfigCommand::Check) => None,
        Command::Config(ConfigCommand::Push) => {
            let profile = need()?;
            remote.push(&profile).await?;
            say(format!("profile {} pushed to table {table}", profile.name))?;
            Some(Op::Push {
                profile: profile.name.clone(),
                config: profile.to_config(),
            })
        }
        Command::Config(ConfigCommand::Pull) => {
            let profile = remote.pull_to_file(&profile_name, path, None).await?;
            say(format!(
                "profile {} pulled from table {table} into {}",
                profile.name,
                path.display()
            ))?;
            None
        }
        Command::Config(ConfigCommand::Ls) => {
            let profiles = remote.list().await?;
            if output == Output::Json {
                say_json(&profiles)?;
            }
            for p in profiles.iter().filter(|_| output == Output::Text) {
                let note = if p.pushed { "" } else { " (not pushed)" };
                say(format!("{}{note}", p.name))?;
                for e in &p.environments {
                    say(format!(
                        "  {}  {}  {}",
                        e.name,
                        e.endpoint,
                        print_time(e.last_updated)
                    ))?;
                }
            }
            None
        }
        Command::Config(ConfigCommand::RemoteRm) => {
            if !remote.remove(&profile_name).await? {
                return Err(format!("profile {profile_name} is not in table {table}").into());
            }
            say(format!("profile {profile_name} removed from table {table}"))?;
            Some(Op::RemoteRm {
                profile: profile_name.clone(),
            })
        }
        Command::Create {
            name,
            image_uri,
            dry_run,
            wait_stable,
            leave_out_uncopyable,
        } => {
            let profile = need()?;
            let now = chrono::Utc::now().timestamp();
            let mut options = CreateOptions::default()
                .now(now)
                .dry_run(*dry_run)
                .leave_out_uncopyable(*leave_out_uncopyable);
            if let Some(seconds) = wait_stable {
                options = options.wait_stable(Duration::from_secs(*seconds));
            }
            let outcome = eden.create(&profile, name, image_uri, &options).await;
            reporter.finish();
            let outcome = outcome?;
            print_outcome(output, "created", &outcome)?;
            (!dry_run).then(|| Op::Create {
                profile: profile.name.clone(),
                config: profile.to_config(),
                name: name.clone(),
                image_uri: image_uri.clone(),
                now,
                leave_out_uncopyable: *leave_out_uncopyable,
            })
        }
        Command::Delete { name, dry_run } => {
            let profile = need()?;
            let options = DeleteOptions::default().dry_run(*dry_run);
            let outcome = eden.delete(&profile, name, &options).await;
            reporter.finish();
            let outcome = outcome?;
            print_outcome(output, "deleted", &outcome)?;
            (!dry_run).then(|| Op::Delete {
                profile: profile.name.clone(),
                config: profile.to_config(),
                name: name.clone(),
            })
        }
        Command::Ls => {
            let records = plain.list(None).await?;
            if output == Output::Json {
                say_json(&records)?;
            } else if records.is_empty() {
                say("no environments")?;
            }
            for r in records.iter().filter(|_| output == Output::Text) {
                say(format!(
                    "{}\t{}\t{}\t{}\t{}",
                    r.profile,
                    r.name,
                    r.endpoint,
                    print_time(r.last_updated),
                    r.status
                ))?;
            }
            None
        }
        Command::MigrateState { from, to, apply } => {
            // Profiles of the local file name environments whose profile was never pushed.
            let mut options = MigrateOptions::default().apply(*apply);
            for p in local_profiles {
                options = options.local_profile(p);
            }
            let report = migrate_state(&cloud, from, to, &options).await?;
            if output == Output::Json {
                say_json(&report)?;
            } else {
                say(report.to_string().trim_end())?;
            }
            if !report.is_complete() {
                return Err(format!(
                    "migrate-state: some items of {from} were not copied (see above); they are \
                     left as they are"
                )
                .into());
            }
            None
        }
        Command::BreakLease { name } => {
            let broken = plain.break_lease(&profile_name, name).await?;
            match (&broken, output) {
                (_, Output::Json) => say_json(&broken)?,
                (Some(holder), _) => say(format!(
                    "lease of environment {name} (profile {profile_name}) broken: it was held by \
                     a {} of run {}",
                    holder.operation, holder.run
                ))?,
                (None, _) => say(format!(
                    "environment {name} (profile {profile_name}) has no lease"
                ))?,
            }
            None
        }
    };
    Ok(recorded)
}

fn run(cli: &Cli) -> Result<(), BoxError> {
    let path = config_path(cli)?;
    let profile_name = cli.profile.clone();
    // Commands that only touch the profile file need no cloud.
    match &cli.command {
        Command::Config(ConfigCommand::Setup(flags)) => {
            let pairs = flags.pairs();
            if pairs.is_empty() {
                return Err("config setup: give at least one key flag (see --help)".into());
            }
            config_file::set_keys(&path, &profile_name, &pairs)?;
            return say(format!(
                "profile [{profile_name}] written to {}",
                path.display()
            ));
        }
        Command::Config(ConfigCommand::Check) => {
            let report = config_file::check_file(&path)?;
            say(report.to_string().trim_end())?;
            return if report.is_ok() {
                Ok(())
            } else {
                Err(format!("config check: problems in {}", path.display()).into())
            };
        }
        _ => {}
    }
    // The profile file is read here, before the runtime starts.
    let profile = match &cli.command {
        Command::Config(ConfigCommand::Push) | Command::Create { .. } | Command::Delete { .. } => {
            Some(config_file::load_profile(&path, &profile_name)?)
        }
        _ => None,
    };
    // migrate-state: the valid profiles of the local file, if there is one.
    let local_profiles = match &cli.command {
        Command::MigrateState { .. } => match config_file::ConfigFile::load(&path) {
            Ok(file) => file
                .profiles()
                .iter()
                .filter_map(|name| file.profile(name).and_then(Result::ok))
                .collect(),
            Err(config_file::ConfigFileError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        },
        _ => Vec::new(),
    };
    // aws-eden-cli 0.1.5's dynamic_zone_name, checked against the zone before any change.
    let expected_zone = match (&profile, &cli.command) {
        (Some(_), Command::Create { .. } | Command::Delete { .. }) => {
            config_file::ConfigFile::load(&path)?
                .section(&profile_name)
                .and_then(|section| legacy::expected_zone_name(&section))
        }
        _ => None,
    };
    let mut memory = cli
        .in_memory_state
        .as_deref()
        .map(Memory::load)
        .transpose()?;
    let reporter = Reporter::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let recorded = runtime.block_on(run_cloud(
        cli,
        &path,
        profile,
        expected_zone,
        local_profiles,
        memory.as_mut(),
        reporter,
    ))?;
    if let (Some(memory), Some(op)) = (memory.as_mut(), recorded) {
        memory.save(op)?;
    }
    Ok(())
}

/// Installs a tracing subscriber on stderr when `-v` is given or `RUST_LOG` is set, so
/// eden-core's events (each AWS call, retries, lease waits) can be seen.
fn install_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let from_env = std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty());
    if verbose == 0 && !from_env {
        return;
    }
    let level = match verbose {
        0 | 1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = if from_env {
        EnvFilter::from_default_env()
    } else {
        // eden's own events at the asked level; the SDK's only from -vvv on.
        let sdk = if verbose >= 3 { "debug" } else { "warn" };
        EnvFilter::new(format!(
            "warn,eden_core={level},eden={level},aws_smithy_runtime={sdk}"
        ))
    };
    // A second install (never here) would only be refused: nothing to report.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    install_tracing(cli.verbose);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<ClosedPipe>() => ExitCode::SUCCESS,
        Err(e) => {
            if cli.output == Output::Json {
                let class = e
                    .downcast_ref::<eden_core::Error>()
                    .map(|e| serde_json::json!(e.class()));
                let _ = say(
                    serde_json::json!({"status": "error", "message": e.to_string(), "class": class})
                        .to_string(),
                );
            }
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
