//! Compatibility with the released Python modules: each original Terraform module's
//! environment block, verbatim (names and the modules' default or README example values), goes
//! through the example's configuration code; the result is held to what the original did on
//! the same input (computed by `reference.py`, with amazon-kinesis-utils 0.1.8 where the
//! module used it), or to the documented refusal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../examples/common/cleaner.rs"]
mod cleaner;
#[cfg(feature = "search")]
#[path = "../../examples/common/search_env.rs"]
#[allow(dead_code)]
mod search_env;

mod es_cleaner;

use std::io::Write as _;
use std::process::{Command, Stdio};

/// An environment block: `(name, value)` pairs.
pub type Env = &'static [(&'static str, &'static str)];

/// Looks a variable up in `env` with `overrides` taking precedence (`None` removes it), as
/// `std::env::var(..).ok()` would see it.
pub fn lookup(env: Env, overrides: &[(&str, Option<&str>)], name: &str) -> Option<String> {
    if let Some((_, v)) = overrides.iter().find(|(k, _)| *k == name) {
        return v.map(str::to_owned);
    }
    env.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| (*v).to_owned())
}

/// `env` with `overrides` applied, as a JSON object for `reference.py`.
pub fn env_json(env: Env, overrides: &[(&str, Option<&str>)]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (k, v) in env {
        map.insert((*k).to_owned(), (*v).into());
    }
    for (k, v) in overrides {
        match v {
            Some(v) => map.insert((*k).to_owned(), (*v).into()),
            None => map.remove(*k),
        };
    }
    serde_json::Value::Object(map)
}

/// Runs `reference.py COMMAND` with `input` on stdin and returns its JSON answer.
pub fn reference(command: &str, input: &serde_json::Value) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/reference.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs the reference (scripts/test installs its packages)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("writing the reference's input");
    let out = child.wait_with_output().expect("the reference finishes");
    assert!(
        out.status.success(),
        "reference.py {command} failed (scripts/test installs amazon-kinesis-utils==0.1.8 and \
         its dependencies with pip when they are missing):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the reference answers JSON")
}
