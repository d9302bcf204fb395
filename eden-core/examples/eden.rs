//! The eden CLI, rebuilt on eden-core: `config setup|check|push|pull|ls|remote-rm`, `create`,
//! `delete`, `ls`, with the original flags. Exits non-zero on any error.
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

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use eden_core::config_file;
use eden_core::environment::{CreateOptions, DeleteOptions, Environment, Outcome};
use eden_core::memory::{MemoryCloud, MemoryOptions};
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
    #[command(subcommand)]
    command: Command,
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
    },
    /// Delete an environment.
    Delete {
        /// Environment name.
        #[arg(long)]
        name: String,
    },
    /// List environments (of every profile).
    Ls,
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
    #[arg(long)]
    endpoint_s3_bucket_name: Option<String>,
    #[arg(long)]
    endpoint_s3_key: Option<String>,
    #[arg(long)]
    endpoint_name_prefix: Option<String>,
    #[arg(long)]
    endpoint_update_key: Option<String>,
    #[arg(long)]
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
        config: std::collections::BTreeMap<String, String>,
    },
    RemoteRm {
        profile: String,
    },
    Create {
        profile: String,
        config: std::collections::BTreeMap<String, String>,
        name: String,
        image_uri: String,
        now: i64,
    },
    Delete {
        profile: String,
        config: std::collections::BTreeMap<String, String>,
        name: String,
    },
}

#[derive(serde::Serialize, serde::Deserialize, Debug, Default)]
struct MemoryState {
    ops: Vec<Op>,
}

/// The cloud the commands run on, and where in-memory operations are logged.
struct Backend {
    cloud: Cloud,
    memory: Option<(Arc<MemoryCloud>, PathBuf, MemoryState, BTreeSet<String>)>,
}

fn profile_of(
    name: &str,
    config: &std::collections::BTreeMap<String, String>,
) -> Result<Profile, BoxError> {
    Ok(Profile::from_config(name, config)?)
}

impl Backend {
    async fn new(cli: &Cli) -> Result<Self, BoxError> {
        let Some(path) = &cli.in_memory_state else {
            return Self::aws().await;
        };
        let state: MemoryState = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("in-memory state {}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MemoryState::default(),
            Err(e) => return Err(format!("reading in-memory state {}: {e}", path.display()).into()),
        };
        let memory = Arc::new(MemoryCloud::new(MemoryOptions::default()));
        let mut backend = Self {
            cloud: memory.cloud(),
            memory: Some((
                memory,
                path.clone(),
                MemoryState::default(),
                BTreeSet::new(),
            )),
        };
        let eden = Environment::new(backend.cloud.clone()).with_table(&cli.remote_table_name);
        for op in &state.ops {
            backend
                .replay(&eden, op)
                .await
                .map_err(|e| format!("replaying in-memory state {}: {e}", path.display()))?;
        }
        if let Some((_, _, log, _)) = &mut backend.memory {
            log.ops = state.ops;
        }
        Ok(backend)
    }

    #[cfg(feature = "aws")]
    async fn aws() -> Result<Self, BoxError> {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Self {
            cloud: eden_core::aws::cloud(&config),
            memory: None,
        })
    }

    #[cfg(not(feature = "aws"))]
    async fn aws() -> Result<Self, BoxError> {
        Err("built without the `aws` feature: use --in-memory-state FILE".into())
    }

    /// Seeds the in-memory cloud with what a profile refers to, once per distinct profile.
    fn seed(&mut self, profile: &Profile) {
        if let Some((memory, _, _, seeded)) = &mut self.memory
            && seeded.insert(profile.to_json())
        {
            memory.seed(profile);
        }
    }

    async fn replay(&mut self, eden: &Environment, op: &Op) -> Result<(), BoxError> {
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
            } => {
                let profile = profile_of(profile, config)?;
                self.seed(&profile);
                let options = CreateOptions::default().now(*now);
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

    /// Appends a successful operation to the state file (in-memory mode only).
    fn record(&mut self, op: Op) -> Result<(), BoxError> {
        let Some((_, path, log, _)) = &mut self.memory else {
            return Ok(());
        };
        log.ops.push(op);
        let text = serde_json::to_string_pretty(log)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &*path))
            .map_err(|e| format!("writing in-memory state {}: {e}", path.display()))?;
        Ok(())
    }
}

fn config_path(cli: &Cli) -> Result<PathBuf, BoxError> {
    match &cli.config_path {
        Some(p) => Ok(p.clone()),
        None => config_file::default_path()
            .ok_or_else(|| "no home directory: pass -c/--config-path".into()),
    }
}

fn print_outcome(verb: &str, outcome: &Outcome) {
    println!(
        "{verb} environment {} (profile {}): {}",
        outcome.names.env,
        outcome.profile,
        outcome.host.as_deref().unwrap_or("-")
    );
    for r in &outcome.resources {
        println!(
            "  {:<15} {:<15} {}",
            format!("{:?}", r.action),
            format!("{:?}", r.kind),
            r.id
        );
    }
}

fn print_time(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| epoch.to_string())
}

async fn run(cli: Cli) -> Result<(), BoxError> {
    let path = config_path(&cli)?;
    let profile_name = cli.profile.clone();
    // Commands that only touch the profile file need no cloud.
    match &cli.command {
        Command::Config(ConfigCommand::Setup(flags)) => {
            let pairs = flags.pairs();
            if pairs.is_empty() {
                return Err("config setup: give at least one key flag (see --help)".into());
            }
            config_file::set_keys(&path, &profile_name, &pairs)?;
            println!("profile [{profile_name}] written to {}", path.display());
            return Ok(());
        }
        Command::Config(ConfigCommand::Check) => {
            let report = config_file::check_file(&path)?;
            print!("{report}");
            return if report.is_ok() {
                Ok(())
            } else {
                Err(format!("config check: problems in {}", path.display()).into())
            };
        }
        _ => {}
    }
    let mut backend = Backend::new(&cli).await?;
    let table = cli.remote_table_name.clone();
    let remote = RemoteProfiles::new(backend.cloud.clone()).with_table(&table);
    let load = |path: &Path| config_file::load_profile(path, &profile_name);
    match cli.command {
        Command::Config(ConfigCommand::Setup(_) | ConfigCommand::Check) => {}
        Command::Config(ConfigCommand::Push) => {
            let profile = load(&path)?;
            remote.push(&profile).await?;
            backend.record(Op::Push {
                profile: profile.name.clone(),
                config: profile.to_config(),
            })?;
            println!("profile {} pushed to table {table}", profile.name);
        }
        Command::Config(ConfigCommand::Pull) => {
            let profile = remote.pull_to_file(&profile_name, &path, None).await?;
            println!(
                "profile {} pulled from table {table} into {}",
                profile.name,
                path.display()
            );
        }
        Command::Config(ConfigCommand::Ls) => {
            for p in remote.list().await? {
                let note = if p.pushed { "" } else { " (not pushed)" };
                println!("{}{note}", p.name);
                for e in p.environments {
                    println!(
                        "  {}  {}  {}",
                        e.name,
                        e.endpoint,
                        print_time(e.last_updated)
                    );
                }
            }
        }
        Command::Config(ConfigCommand::RemoteRm) => {
            if !remote.remove(&profile_name).await? {
                return Err(format!("profile {profile_name} is not in table {table}").into());
            }
            backend.record(Op::RemoteRm {
                profile: profile_name.clone(),
            })?;
            println!("profile {profile_name} removed from table {table}");
        }
        Command::Create { name, image_uri } => {
            let profile = load(&path)?;
            backend.seed(&profile);
            let now = chrono::Utc::now().timestamp();
            let options = CreateOptions::default().now(now);
            let eden = Environment::new(backend.cloud.clone()).with_table(&table);
            let outcome = eden.create(&profile, &name, &image_uri, &options).await?;
            backend.record(Op::Create {
                profile: profile.name.clone(),
                config: profile.to_config(),
                name,
                image_uri,
                now,
            })?;
            print_outcome("created", &outcome);
        }
        Command::Delete { name } => {
            let profile = load(&path)?;
            backend.seed(&profile);
            let eden = Environment::new(backend.cloud.clone()).with_table(&table);
            let outcome = eden
                .delete(&profile, &name, &DeleteOptions::default())
                .await?;
            backend.record(Op::Delete {
                profile: profile.name.clone(),
                config: profile.to_config(),
                name,
            })?;
            print_outcome("deleted", &outcome);
        }
        Command::Ls => {
            let records = Environment::new(backend.cloud.clone())
                .with_table(&table)
                .list(None)
                .await?;
            if records.is_empty() {
                println!("no environments");
            }
            for r in records {
                println!(
                    "{}\t{}\t{}\t{}",
                    r.profile,
                    r.name,
                    r.endpoint,
                    print_time(r.last_updated)
                );
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
