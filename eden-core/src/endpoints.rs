//! The endpoints JSON document (`{"environments": [{"env", "name", <key>: <host>, ...}]}`).
//!
//! Edits are pure functions over the parsed document; the store does compare-and-swap around
//! them (see [`crate::environment`]). Several profiles write different keys into the same
//! entry, so an edit only ever touches its own key.
//!
//! Each key eden writes has its owner recorded in the entry's `eden_owners` object:
//! `{"env": "dev", "name": "svc-dev-foo", "api_endpoint": "api-foo.dev.example.com",
//! "eden_owners": {"api_endpoint": {"profile": "api", "environment": "foo", "run": "..."}}}`.
//! [`EndpointsDocument::upsert_owned`] and [`EndpointsDocument::remove_owned`] refuse a key
//! that exists without this environment as its owner.

use serde_json::{Map, Value};

use crate::ownership::{ForeignOwner, Owner, Verdict};

/// The entry field recording the owner of each key.
pub const OWNERS_FIELD: &str = "eden_owners";

/// Why the stored document could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed endpoints document: {0}")]
#[non_exhaustive]
pub struct DocumentError(pub String);

/// A parsed endpoints document; unknown top-level keys and entry fields are preserved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EndpointsDocument {
    /// Top-level fields other than `environments`.
    pub other: Map<String, Value>,
    /// The entries, in file order.
    pub environments: Vec<Map<String, Value>>,
}

/// What an edit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// A new entry was added.
    AddedEntry,
    /// The key was added to an existing entry.
    AddedKey,
    /// The key's value changed.
    Updated,
    /// The document already said this; nothing changed.
    Unchanged,
    /// The key was removed; the entry stays for other profiles' keys.
    RemovedKey,
    /// The key was removed and with it the entry (only `env` and `name` were left).
    RemovedEntry,
    /// There was nothing to remove.
    Absent,
}

impl Edit {
    /// True when the document changed and must be written.
    pub fn changed(self) -> bool {
        !matches!(self, Self::Unchanged | Self::Absent)
    }
}

impl EndpointsDocument {
    /// Parses stored bytes; `None` (no object yet) is the empty document.
    pub fn parse(bytes: Option<&[u8]>) -> Result<Self, DocumentError> {
        let Some(bytes) = bytes else {
            return Ok(Self::default());
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| DocumentError(e.to_string()))?;
        let Value::Object(mut other) = value else {
            return Err(DocumentError("the top level is not an object".into()));
        };
        let environments = match other.remove("environments") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::Object(m) => Ok(m),
                    _ => Err(DocumentError(
                        "an environments entry is not an object".into(),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(DocumentError("\"environments\" is not an array".into())),
        };
        Ok(Self {
            other,
            environments,
        })
    }

    /// Serialises the document (pretty, with a trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut top = self.other.clone();
        top.insert(
            "environments".into(),
            Value::Array(
                self.environments
                    .iter()
                    .cloned()
                    .map(Value::Object)
                    .collect(),
            ),
        );
        let mut out = serde_json::to_vec_pretty(&Value::Object(top)).unwrap_or_default();
        out.push(b'\n');
        out
    }

    fn position(&self, env: &str, name: &str) -> Option<usize> {
        self.environments.iter().position(|e| {
            e.get("name").and_then(Value::as_str) == Some(name)
                && e.get("env").and_then(Value::as_str) == Some(env)
        })
    }

    /// The value of `key` in the entry `(env, name)`.
    pub fn get(&self, env: &str, name: &str, key: &str) -> Option<&str> {
        let i = self.position(env, name)?;
        self.environments[i].get(key).and_then(Value::as_str)
    }

    /// Sets `key = value` in the entry `(env, name)`, adding the entry when missing.
    pub fn upsert(&mut self, env: &str, name: &str, key: &str, value: &str) -> Edit {
        match self.position(env, name) {
            Some(i) => {
                let entry = &mut self.environments[i];
                match entry.insert(key.to_owned(), Value::String(value.to_owned())) {
                    None => Edit::AddedKey,
                    Some(Value::String(old)) if old == value => Edit::Unchanged,
                    Some(_) => Edit::Updated,
                }
            }
            None => {
                let mut entry = Map::new();
                entry.insert("env".into(), Value::String(env.to_owned()));
                entry.insert("name".into(), Value::String(name.to_owned()));
                entry.insert(key.to_owned(), Value::String(value.to_owned()));
                self.environments.push(entry);
                Edit::AddedEntry
            }
        }
    }

    /// Removes `key` from the entry `(env, name)` (and its owner record); the entry goes when
    /// only `env` and `name` are left.
    pub fn remove(&mut self, env: &str, name: &str, key: &str) -> Edit {
        let Some(i) = self.position(env, name) else {
            return Edit::Absent;
        };
        let entry = &mut self.environments[i];
        let mut removed = entry.remove(key).is_some();
        if let Some(Value::Object(owners)) = entry.get_mut(OWNERS_FIELD) {
            removed |= owners.remove(key).is_some();
            if owners.is_empty() {
                entry.remove(OWNERS_FIELD);
            }
        }
        if entry.keys().all(|k| k == "env" || k == "name") {
            self.environments.remove(i);
            return Edit::RemovedEntry;
        }
        if removed {
            Edit::RemovedKey
        } else {
            Edit::Absent
        }
    }

    /// The owner recorded for `key` of the entry `(env, name)`: `None` when none is recorded,
    /// `Some(Err(text))` when the record is not one eden wrote.
    pub fn owner(&self, env: &str, name: &str, key: &str) -> Option<Result<Owner, String>> {
        let i = self.position(env, name)?;
        let record = self.environments[i].get(OWNERS_FIELD)?.get(key)?;
        let field = |f: &str| record.get(f).and_then(Value::as_str).map(str::to_owned);
        Some(match (field("profile"), field("environment")) {
            (Some(profile), Some(environment)) => Ok(Owner {
                profile,
                environment,
                run: field("run"),
            }),
            _ => Err(format!("an owner record eden did not write: {record}")),
        })
    }

    /// Whether `key` of the entry `(env, name)` is `ours`: `None` when neither the key nor an
    /// owner record for it exists.
    pub fn verdict(&self, env: &str, name: &str, key: &str, ours: &Owner) -> Option<Verdict> {
        let present = self.get_value(env, name, key).is_some();
        let verdict = match self.owner(env, name, key) {
            Some(Ok(owner)) if owner.same_environment(ours) => Verdict::Ours { run: owner.run },
            Some(Ok(owner)) => Verdict::Foreign(ForeignOwner::Eden(owner)),
            Some(Err(text)) => Verdict::Foreign(ForeignOwner::Other(text)),
            None if present => Verdict::Foreign(ForeignOwner::Unrecorded),
            None => return None,
        };
        Some(verdict)
    }

    fn get_value(&self, env: &str, name: &str, key: &str) -> Option<&Value> {
        let i = self.position(env, name)?;
        self.environments[i].get(key)
    }

    /// [`EndpointsDocument::upsert`] of a key this environment owns, recording `owner` when the
    /// key is new; refused (the document unchanged) when the key, or an owner record of it,
    /// belongs to someone else.
    pub fn upsert_owned(
        &mut self,
        env: &str,
        name: &str,
        key: &str,
        value: &str,
        owner: &Owner,
    ) -> Result<Edit, ForeignOwner> {
        match self.verdict(env, name, key, owner) {
            Some(Verdict::Foreign(foreign)) => return Err(foreign),
            Some(Verdict::Ours { .. }) => {}
            None => {}
        }
        let edit = self.upsert(env, name, key, value);
        if let Some(i) = self.position(env, name) {
            let entry = &mut self.environments[i];
            let owners = entry
                .entry(OWNERS_FIELD)
                .or_insert_with(|| Value::Object(Map::new()));
            if !owners.is_object() {
                *owners = Value::Object(Map::new());
            }
            if let Value::Object(owners) = owners
                && !owners.contains_key(key)
            {
                let mut record = Map::new();
                record.insert("profile".into(), Value::String(owner.profile.clone()));
                record.insert(
                    "environment".into(),
                    Value::String(owner.environment.clone()),
                );
                if let Some(run) = &owner.run {
                    record.insert("run".into(), Value::String(run.clone()));
                }
                owners.insert(key.to_owned(), Value::Object(record));
                if edit == Edit::Unchanged {
                    return Ok(Edit::Updated);
                }
            }
        }
        Ok(edit)
    }

    /// [`EndpointsDocument::remove`] of a key this environment owns; refused (the document
    /// unchanged) when it belongs to someone else.
    pub fn remove_owned(
        &mut self,
        env: &str,
        name: &str,
        key: &str,
        owner: &Owner,
    ) -> Result<Edit, ForeignOwner> {
        match self.verdict(env, name, key, owner) {
            Some(Verdict::Foreign(foreign)) => Err(foreign),
            Some(Verdict::Ours { .. }) => Ok(self.remove(env, name, key)),
            None => Ok(Edit::Absent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_and_edit() {
        let text = br#"{"version": 2, "environments": [{"env": "dev", "name": "s-foo", "api_endpoint": "a", "web_endpoint": "w"}]}"#;
        let mut doc = EndpointsDocument::parse(Some(text)).unwrap();
        assert_eq!(doc.get("dev", "s-foo", "api_endpoint"), Some("a"));
        assert_eq!(
            doc.upsert("dev", "s-foo", "api_endpoint", "a"),
            Edit::Unchanged
        );
        assert_eq!(
            doc.upsert("dev", "s-foo", "api_endpoint", "b"),
            Edit::Updated
        );
        assert_eq!(doc.remove("dev", "s-foo", "api_endpoint"), Edit::RemovedKey);
        assert_eq!(
            doc.remove("dev", "s-foo", "web_endpoint"),
            Edit::RemovedEntry
        );
        assert_eq!(doc.remove("dev", "s-foo", "web_endpoint"), Edit::Absent);
        let again = EndpointsDocument::parse(Some(&doc.to_bytes())).unwrap();
        assert_eq!(again, doc);
        assert_eq!(again.other.get("version"), Some(&Value::from(2)));
        assert!(
            EndpointsDocument::parse(None)
                .unwrap()
                .environments
                .is_empty()
        );
        assert!(EndpointsDocument::parse(Some(b"[]")).is_err());
        assert!(EndpointsDocument::parse(Some(b"{\"environments\": 1}")).is_err());
        assert!(EndpointsDocument::parse(Some(b"{\"environments\": [1]}")).is_err());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add { key: usize, env: usize, value: u8 },
        Remove { key: usize, env: usize },
    }

    const KEYS: [&str; 3] = ["api_endpoint", "web_endpoint", "admin_endpoint"];
    const ENVS: [&str; 3] = ["p-a", "p-b", "p-c"];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3usize, 0..3usize, any::<u8>()).prop_map(|(key, env, value)| Op::Add {
                key,
                env,
                value
            }),
            (0..3usize, 0..3usize).prop_map(|(key, env)| Op::Remove { key, env }),
        ]
    }

    proptest! {
        /// Any sequence of edits by several profiles (keys) equals a simple model: a map of
        /// entries, each a map of keys; an entry is gone exactly when it has no key left.
        #[test]
        fn edits_keep_other_profiles_keys(ops in prop::collection::vec(op(), 0..40)) {
            let mut doc = EndpointsDocument::default();
            let mut model = std::collections::BTreeMap::<&str, std::collections::BTreeMap<&str, String>>::new();
            for op in ops {
                match op {
                    Op::Add { key, env, value } => {
                        doc.upsert("dev", ENVS[env], KEYS[key], &value.to_string());
                        model.entry(ENVS[env]).or_default().insert(KEYS[key], value.to_string());
                    }
                    Op::Remove { key, env } => {
                        doc.remove("dev", ENVS[env], KEYS[key]);
                        if let Some(m) = model.get_mut(ENVS[env]) {
                            m.remove(KEYS[key]);
                            if m.is_empty() { model.remove(ENVS[env]); }
                        }
                    }
                }
                // Round-trip through bytes each time, as the store does.
                doc = EndpointsDocument::parse(Some(&doc.to_bytes())).unwrap();
                prop_assert_eq!(doc.environments.len(), model.len());
                for (env, keys) in &model {
                    for key in KEYS {
                        prop_assert_eq!(doc.get("dev", env, key), keys.get(key).map(String::as_str));
                    }
                }
            }
        }
    }
}
