//! Execution environments: an example binary started as Lambda starts a custom runtime's
//! `bootstrap`, with Lambda's environment variables (and nothing inherited), its output
//! kept in a log file per environment.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use tokio::process::{Child, Command};

use crate::runtime_api::FunctionConfig;

/// Where `cargo test` put the example binaries: `target/<profile>/examples`, next to the
/// `deps` folder of the running test executable. `BAIKONUR_E2E_EXAMPLES_DIR` overrides it.
pub fn examples_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("BAIKONUR_E2E_EXAMPLES_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().map_err(|e| format!("locating the test executable: {e}"))?;
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected test executable path {}", exe.display()))?;
    Ok(profile_dir.join("examples"))
}

/// The path of example `name`, checked to exist and to be newer than every source file its
/// dep-info lists (a stale binary would test old code).
///
/// `cargo test --workspace --all-features` builds every example before it runs a test;
/// when running this crate alone, build them first:
/// `cargo build -p logging-core -p eden-core --examples --all-features`.
pub fn example_binary(name: &str) -> Result<PathBuf, String> {
    let dir = examples_dir()?;
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let hint = "build the examples first: `cargo test --workspace --all-features` does, or \
                `cargo build -p logging-core -p eden-core --examples --all-features` \
                (set BAIKONUR_E2E_EXAMPLES_DIR to use another folder)";
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("example binary {} is missing ({e}): {hint}", path.display()))?;
    let dep_info = dir.join(format!("{name}.d"));
    if let Some(stale) = std::fs::read_to_string(&dep_info)
        .ok()
        .and_then(|text| newer_source(&text, built))
    {
        return Err(format!(
            "example binary {} is older than its source {}: {hint}",
            path.display(),
            stale.display()
        ));
    }
    Ok(path)
}

/// The first source listed in a Makefile-style dep-info text that is newer than `built`.
fn newer_source(dep_info: &str, built: SystemTime) -> Option<PathBuf> {
    let first = dep_info.lines().next()?;
    let (_, deps) = first.split_once(": ")?;
    // Paths are separated by spaces; a space inside a path is escaped as "\ ".
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            ' ' => {
                if !current.is_empty() {
                    paths.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        paths.push(PathBuf::from(current));
    }
    paths.into_iter().find(|p| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m > built)
    })
}

/// The environment Lambda gives a function's runtime, for `config` behind `runtime_api`
/// (an OS-only runtime: no `AWS_EXECUTION_ENV`).
pub fn lambda_environment(config: &FunctionConfig, runtime_api: &str) -> Vec<(String, String)> {
    let name = &config.name;
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2024/03/14/[$LATEST]0123456789abcdef0123456789abcdef".into(),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_REGION", config.region.clone()),
        ("AWS_DEFAULT_REGION", config.region.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_SESSION_TOKEN", "testing".into()),
        ("_HANDLER", "bootstrap".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        // Lambda sets the glibc form with a leading colon.
        ("TZ", ":UTC".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Running execution environments of one function.
pub struct Environments {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
}

impl Environments {
    /// Starts `count` environments of `binary` with Lambda's variables for `config` behind
    /// `runtime_api`, plus `function_env` (the function's own configuration) and `args`.
    /// Output goes to `{log_dir}/{name}-{i}.log`.
    pub fn start(
        binary: &Path,
        args: &[&str],
        config: &FunctionConfig,
        runtime_api: &str,
        function_env: &[(&str, String)],
        count: usize,
        log_dir: &Path,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(log_dir)
            .map_err(|e| format!("creating {}: {e}", log_dir.display()))?;
        let mut children = Vec::new();
        let mut logs = Vec::new();
        for i in 0..count {
            let log = log_dir.join(format!("{}-{i}.log", config.name));
            let out = std::fs::File::create(&log)
                .map_err(|e| format!("creating {}: {e}", log.display()))?;
            let err = out
                .try_clone()
                .map_err(|e| format!("opening {}: {e}", log.display()))?;
            let mut cmd = Command::new(binary);
            cmd.args(args)
                .env_clear()
                .envs(lambda_environment(config, runtime_api))
                .envs(function_env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .kill_on_drop(true);
            let child = cmd
                .spawn()
                .map_err(|e| format!("starting {}: {e}", binary.display()))?;
            children.push(child);
            logs.push(log);
        }
        Ok(Self { children, logs })
    }

    /// Environments that have exited, with their status.
    pub fn exited(&mut self) -> Vec<(usize, String)> {
        self.children
            .iter_mut()
            .enumerate()
            .filter_map(|(i, c)| match c.try_wait() {
                Ok(Some(status)) => Some((i, status.to_string())),
                Ok(None) => None,
                Err(e) => Some((i, format!("unknown: {e}"))),
            })
            .collect()
    }

    /// Stops every environment (Lambda's shutdown is a SIGKILL after the grace period).
    pub async fn stop(&mut self) {
        for c in &mut self.children {
            let _ = c.start_kill();
        }
        for c in &mut self.children {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
        }
    }

    /// The last `lines` lines of each environment's output.
    pub fn tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            out.push_str(&format!(
                "--- {} (last {} of {} lines)\n",
                log.display(),
                all.len() - from,
                all.len()
            ));
            for l in &all[from..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dep_info_paths_are_split_with_escaped_spaces() {
        let dir = std::env::temp_dir().join(format!("e2e-depinfo-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a b")).unwrap();
        let src = dir.join("a b").join("x.rs");
        std::fs::write(&src, "").unwrap();
        let text = format!(
            "/t/examples/x: {} /nonexistent.rs\n\n/nonexistent.rs:\n",
            src.display().to_string().replace(' ', "\\ ")
        );
        let past = SystemTime::UNIX_EPOCH;
        assert_eq!(newer_source(&text, past), Some(src.clone()));
        assert_eq!(
            newer_source(&text, SystemTime::now() + Duration::from_secs(60)),
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
