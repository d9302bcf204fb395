//! Who owns a resource: eden changes or deletes only what the environment it works on created.
//!
//! Every resource eden creates records its owner, the profile and environment, and the run
//! that created it:
//!
//! * ECS services, task definitions, target groups and listener rules carry the tags
//!   [`tags::PROFILE`], [`tags::ENVIRONMENT`], [`tags::RUN`] (and [`tags::CREATED_AT`]);
//! * a Route 53 record cannot be tagged, so a TXT record of the same name holds its owner, in
//!   the manner of external-dns's TXT registry:
//!   `"heritage=eden,eden/profile=<profile>,eden/environment=<name>,eden/run=<run>"`;
//! * an endpoints document entry names the owner of each key it holds in its `eden_owners`
//!   field (see [`crate::endpoints`]);
//! * the state item is keyed by profile and environment and carries the run (`run`).
//!
//! Before eden modifies or deletes a resource it reads this owner. A resource without one
//! (untagged, or written by something else) or with another owner is refused with
//! [`crate::Error::NotOwned`], naming the resource and its owner.

use std::fmt;

use crate::cloud::{DnsRecord, Tag};

/// Tag keys on every resource eden creates.
pub mod tags {
    /// The profile name.
    pub const PROFILE: &str = "eden:profile";
    /// The environment name.
    pub const ENVIRONMENT: &str = "eden:environment";
    /// The run that created the resource.
    pub const RUN: &str = "eden:run";
    /// Creation time, RFC 3339.
    pub const CREATED_AT: &str = "eden:created-at";
}

/// The `heritage` value of eden's ownership TXT records.
pub const HERITAGE: &str = "eden";
/// TTL of ownership TXT records.
pub const OWNER_TXT_TTL: i64 = 300;

/// The identifier of one create or delete run: unique, so that a resource's `eden:run` tag
/// tells whether this run created it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// A new run id: milliseconds since the epoch and 64 random bits, in hex.
    pub fn new() -> Self {
        let millis = chrono::Utc::now().timestamp_millis();
        Self(format!("{millis:011x}-{:016x}", fastrand::u64(..)))
    }

    /// A run id from text (as read from a tag).
    pub fn from_text(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An owner as eden records it: a profile's environment, and the run that created the
/// resource (absent where eden does not record it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Owner {
    /// Profile.
    pub profile: String,
    /// Environment name.
    pub environment: String,
    /// The creating run.
    pub run: Option<String>,
}

impl Owner {
    /// An owner.
    pub fn new(profile: impl Into<String>, environment: impl Into<String>) -> Self {
        Self {
            profile: profile.into(),
            environment: environment.into(),
            run: None,
        }
    }

    /// The same owner, created by `run`.
    pub fn with_run(mut self, run: impl Into<String>) -> Self {
        self.run = Some(run.into());
        self
    }

    /// True when `other` is the same profile and environment (the run may differ).
    pub fn same_environment(&self, other: &Owner) -> bool {
        self.profile == other.profile && self.environment == other.environment
    }

    /// The tags recording this owner, with the creation time.
    pub fn tags(&self, created_at: &str) -> Vec<Tag> {
        let mut tags = vec![
            Tag::new(tags::PROFILE, &self.profile),
            Tag::new(tags::ENVIRONMENT, &self.environment),
        ];
        if let Some(run) = &self.run {
            tags.push(Tag::new(tags::RUN, run));
        }
        tags.push(Tag::new(tags::CREATED_AT, created_at));
        tags
    }

    /// Reads the owner from tags; `None` when the profile or environment tag is missing.
    pub fn from_tags(tags: &[Tag]) -> Option<Self> {
        let get = |key: &str| tags.iter().find(|t| t.key == key).map(|t| t.value.clone());
        Some(Self {
            profile: get(tags::PROFILE)?,
            environment: get(tags::ENVIRONMENT)?,
            run: get(tags::RUN),
        })
    }

    /// The ownership TXT record for the record named `name`.
    pub fn txt_record(&self, name: &str) -> DnsRecord {
        let mut value = format!(
            "heritage={HERITAGE},eden/profile={},eden/environment={}",
            escape(&self.profile),
            escape(&self.environment)
        );
        if let Some(run) = &self.run {
            value.push_str(&format!(",eden/run={}", escape(run)));
        }
        DnsRecord {
            name: name.to_owned(),
            record_type: "TXT".into(),
            alias: None,
            ttl: Some(OWNER_TXT_TTL),
            values: vec![format!("\"{value}\"")],
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "environment {} of profile {}",
            self.environment, self.profile
        )?;
        if let Some(run) = &self.run {
            write!(f, " (run {run})")?;
        }
        Ok(())
    }
}

/// Who owns a resource that is not this environment's, as far as eden can tell.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ForeignOwner {
    /// No owner is recorded: the resource was not created by eden (or by an eden that did not
    /// record owners).
    Unrecorded,
    /// Another environment, of this or another profile.
    Eden(Owner),
    /// Something else recorded itself (e.g. an external-dns TXT record); the text says what.
    Other(String),
}

impl fmt::Display for ForeignOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unrecorded => f.write_str("no recorded owner (not created by eden)"),
            Self::Eden(owner) => write!(f, "{owner}"),
            Self::Other(what) => f.write_str(what),
        }
    }
}

/// The verdict on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// This environment's; `run` is the run that created it, when recorded.
    Ours {
        /// The creating run.
        run: Option<String>,
    },
    /// Someone else's.
    Foreign(ForeignOwner),
}

impl Verdict {
    /// The verdict on a resource with these tags, for environment `ours`.
    pub fn of_tags(tags: &[Tag], ours: &Owner) -> Self {
        match Owner::from_tags(tags) {
            Some(owner) if owner.same_environment(ours) => Self::Ours { run: owner.run },
            Some(owner) => Self::Foreign(ForeignOwner::Eden(owner)),
            None => Self::Foreign(ForeignOwner::Unrecorded),
        }
    }

    /// The verdict from an ownership TXT record (or its absence).
    pub fn of_txt(txt: Option<&DnsRecord>, ours: &Owner) -> Self {
        let Some(txt) = txt else {
            return Self::Foreign(ForeignOwner::Unrecorded);
        };
        let mut found = None;
        for value in &txt.values {
            match parse_txt(value) {
                Some(TxtOwner::Eden(owner)) if owner.same_environment(ours) => {
                    return Self::Ours { run: owner.run };
                }
                Some(TxtOwner::Eden(owner)) => found = Some(ForeignOwner::Eden(owner)),
                Some(TxtOwner::Other(text)) => {
                    found.get_or_insert(ForeignOwner::Other(text));
                }
                None => {}
            }
        }
        Self::Foreign(found.unwrap_or_else(|| {
            ForeignOwner::Other(format!(
                "a TXT record {} not written by eden",
                txt.values.join(" ")
            ))
        }))
    }

    /// True for [`Verdict::Ours`].
    pub fn is_ours(&self) -> bool {
        matches!(self, Self::Ours { .. })
    }

    /// True when ours and created by `run`.
    pub fn created_by(&self, run: &RunId) -> bool {
        matches!(self, Self::Ours { run: Some(r) } if r == run.as_str())
    }
}

enum TxtOwner {
    Eden(Owner),
    Other(String),
}

/// Parses one TXT value of a registry (`"heritage=...,k=v,..."`).
fn parse_txt(value: &str) -> Option<TxtOwner> {
    let text = value.trim().trim_matches('"');
    let fields: Vec<(&str, &str)> = text
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| unescape(v))
    };
    let heritage = get("heritage")?;
    if heritage != HERITAGE {
        let owner = fields
            .iter()
            .find(|(k, _)| k.ends_with("/owner"))
            .map(|(_, v)| format!(" (owner {v})"))
            .unwrap_or_default();
        return Some(TxtOwner::Other(format!("{heritage}{owner}")));
    }
    Some(TxtOwner::Eden(Owner {
        profile: get("eden/profile")?,
        environment: get("eden/environment")?,
        run: get("eden/run"),
    }))
}

/// Percent-encodes what would break a registry value: `%`, `,`, `=`, `"`, `\`, and anything
/// outside printable ASCII.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_graphic() && !b",=\"\\%".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tags_and_verdicts() {
        let ours = Owner::new("default", "pr-1");
        let tags = ours.clone().with_run("r1").tags("2024-01-01T00:00:00Z");
        assert_eq!(
            Verdict::of_tags(&tags, &ours),
            Verdict::Ours {
                run: Some("r1".into())
            }
        );
        assert!(Verdict::of_tags(&tags, &ours).created_by(&RunId::from_text("r1")));
        assert!(!Verdict::of_tags(&tags, &ours).created_by(&RunId::from_text("r2")));
        let other = Owner::new("clash", "pr-1");
        assert_eq!(
            Verdict::of_tags(&tags, &other),
            Verdict::Foreign(ForeignOwner::Eden(ours.clone().with_run("r1")))
        );
        assert_eq!(
            Verdict::of_tags(&[Tag::new("team", "web")], &ours),
            Verdict::Foreign(ForeignOwner::Unrecorded)
        );
    }

    #[test]
    fn txt_registry() {
        let ours = Owner::new("de,fault=\"x\"", "pr-1").with_run("r1");
        let txt = ours.txt_record("api-pr-1.dev.example.com");
        assert_eq!(txt.record_type, "TXT");
        assert!(txt.values[0].starts_with("\"heritage=eden,"), "{txt:?}");
        assert_eq!(
            Verdict::of_txt(Some(&txt), &ours),
            Verdict::Ours {
                run: Some("r1".into())
            }
        );
        let clash = Owner::new("clash", "pr-1");
        assert!(matches!(
            Verdict::of_txt(Some(&txt), &clash),
            Verdict::Foreign(ForeignOwner::Eden(o)) if o == ours
        ));
        assert_eq!(
            Verdict::of_txt(None, &ours),
            Verdict::Foreign(ForeignOwner::Unrecorded)
        );
        let external = DnsRecord {
            values: vec![
                "\"heritage=external-dns,external-dns/owner=k8s,external-dns/resource=ingress/a\""
                    .into(),
            ],
            ..txt.clone()
        };
        assert_eq!(
            Verdict::of_txt(Some(&external), &ours),
            Verdict::Foreign(ForeignOwner::Other("external-dns (owner k8s)".into()))
        );
        let spf = DnsRecord {
            values: vec!["\"v=spf1 -all\"".into()],
            ..txt
        };
        assert!(matches!(
            Verdict::of_txt(Some(&spf), &ours),
            Verdict::Foreign(ForeignOwner::Other(_))
        ));
    }

    proptest! {
        #[test]
        fn txt_round_trips(profile in "\\PC{1,40}", env in "[a-z0-9-]{1,63}", run in "[ -~]{0,30}") {
            let owner = Owner::new(profile, env).with_run(run);
            let txt = owner.txt_record("x.example.com");
            prop_assert_eq!(Verdict::of_txt(Some(&txt), &owner), Verdict::Ours { run: owner.run.clone() });
        }
    }
}
