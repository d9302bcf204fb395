//! Configuration from the environment variables of the original Python modules, read through
//! a lookup function (the process environment in the examples, a map in tests) so that the
//! compatibility tests can feed the original Terraform modules' environment blocks.
//!
//! Every variable of the originals either behaves as it did or is refused at start with an
//! error that names it and says what to set.

use logging_core::dead_letter::{DeadLetterConfig, DeadLetterFormat, DeadLetterGroups};
use logging_core::{KeyDates, SchemaConfig, TimeZone, TypeFilter, UnparseableTimestamp};

/// Looks a variable up: its raw value, `None` when unset (an empty value is `Some("")`).
pub type Get<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A variable, or `None` when unset or blank.
pub fn var(get: Get<'_>, name: &str) -> Option<String> {
    get(name).filter(|v| !v.trim().is_empty())
}

/// A required variable; `why` says what it is for.
pub fn required(get: Get<'_>, name: &str, why: &str) -> Result<String, String> {
    var(get, name).ok_or_else(|| format!("environment variable {name} is required: {why}"))
}

/// A number with a default when unset or blank.
pub fn number<T: std::str::FromStr>(get: Get<'_>, name: &str, default: T) -> Result<T, String> {
    match var(get, name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("environment variable {name}={v:?} is not a number")),
    }
}

/// A switch: `true`/`false` (also `yes`/`no`, `1`/`0`, any case), `default` when unset or
/// blank; anything else is an error rather than a guess.
pub fn flag(get: Get<'_>, name: &str, default: bool) -> Result<bool, String> {
    match var(get, name)
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None => Ok(default),
        Some("true" | "yes" | "1") => Ok(true),
        Some("false" | "no" | "0") => Ok(false),
        Some(other) => Err(format!("{name}={other:?} is not true or false")),
    }
}

/// One of `choices` (`(value, T)`), `default` when unset or blank.
pub fn choice<T: Copy>(
    get: Get<'_>,
    name: &str,
    choices: &[(&str, T)],
    default: T,
) -> Result<T, String> {
    let Some(v) = var(get, name) else {
        return Ok(default);
    };
    let v = v.trim();
    choices
        .iter()
        .find(|(k, _)| *k == v)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(k, _)| *k).collect();
            format!("{name}={v:?}: use one of {}", names.join(", "))
        })
}

/// A key name such as `LOG_TYPE_FIELD`: `default` when unset; set but empty is refused (the
/// original looked the empty key up and found it in no record).
fn field_name(get: Get<'_>, name: &str, default: &str) -> Result<String, String> {
    match get(name) {
        None => Ok(default.to_owned()),
        Some(v) if v.trim().is_empty() => Err(format!(
            "{name} is set but empty: the original module then found no such field in any \
             record; unset it for the default {default:?}, or name the field"
        )),
        Some(v) => Ok(v.trim().to_owned()),
    }
}

/// What every Kinesis-triggered example shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    /// Field names, unknown prefix, time zone, timestamp handling.
    pub schema: SchemaConfig,
    /// How keys and index names are dated.
    pub dates: KeyDates,
    /// `LOG_TYPE_WHITELIST`.
    pub whitelist: TypeFilter,
}

/// Reads the schema variables of the original modules and the zone:
///
/// * `LOG_TYPE_FIELD`, `LOG_ID_FIELD`, `LOG_TIMESTAMP_FIELD`, `LOG_TYPE_UNKNOWN_PREFIX`
///   (defaults `log_type`, `log_id`, `time`, `unknown`, as the modules' variables);
/// * `LOG_TYPE_WHITELIST`, comma separated; empty or unset accepts every type (what the
///   modules documented);
/// * `TZ`: the zone of timestamps without an offset and of records without a timestamp, as
///   in the originals; object keys and index names are dated as each timestamp was written;
/// * `LOG_TIMEZONE` (new): when set, that zone instead of `TZ`, and every key and index date
///   converted to it (an explicit choice: records written in another offset then move to
///   other folders and indices than the originals used).
///
/// `timestamp_required` and `unparseable` are the module's timestamp rules.
pub fn common(
    get: Get<'_>,
    timestamp_required: bool,
    unparseable: UnparseableTimestamp,
) -> Result<Common, String> {
    let explicit = var(get, "LOG_TIMEZONE");
    let zone = match explicit.clone().or_else(|| var(get, "TZ")) {
        None => TimeZone::UTC,
        Some(z) => z.parse::<TimeZone>().map_err(|e| {
            let name = if explicit.is_some() {
                "LOG_TIMEZONE"
            } else {
                "TZ"
            };
            format!("{name}: {e}; use an IANA name such as Asia/Tokyo")
        })?,
    };
    let unknown_prefix = field_name(get, "LOG_TYPE_UNKNOWN_PREFIX", "unknown")?;
    if unknown_prefix.starts_with('/') || unknown_prefix.ends_with('/') {
        return Err(format!(
            "LOG_TYPE_UNKNOWN_PREFIX={unknown_prefix:?}: the original wrote it into keys as it \
             is (giving '//'); set it without leading or trailing '/'"
        ));
    }
    Ok(Common {
        schema: SchemaConfig {
            log_type_field: field_name(get, "LOG_TYPE_FIELD", "log_type")?,
            log_id_field: field_name(get, "LOG_ID_FIELD", "log_id")?,
            timestamp_field: field_name(get, "LOG_TIMESTAMP_FIELD", "time")?,
            unknown_prefix,
            timestamp_required,
            unparseable_timestamp: unparseable,
            time_zone: zone,
        },
        dates: if explicit.is_some() {
            KeyDates::Zone
        } else {
            KeyDates::RecordOffset
        },
        whitelist: TypeFilter::from_comma_list(&get("LOG_TYPE_WHITELIST").unwrap_or_default()),
    })
}

/// Where failures go: a bucket and the dead letter's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterSettings {
    /// The bucket.
    pub bucket: String,
    /// Prefix, groups, format, dates.
    pub config: DeadLetterConfig,
}

/// The defaults of a module's dead letter, where its original kept failures.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterDefaults<'a> {
    /// The bucket when `FAILED_LOG_S3_BUCKET` is unset (`None`: no dead letter then).
    pub bucket: Option<&'a str>,
    /// The prefix when `FAILED_LOG_S3_PREFIX` is unset.
    pub prefix: &'a str,
    /// The folders when `FAILED_LOG_S3_LAYOUT` is unset.
    pub groups: DeadLetterGroups,
    /// Whether the original module wrote failures under `FAILED_LOG_S3_PREFIX` (then a value
    /// it wrote differently, empty or with a leading or trailing `/`, is refused).
    pub original_prefix: bool,
}

/// Reads `FAILED_LOG_S3_BUCKET`, `FAILED_LOG_S3_PREFIX`, `FAILED_LOG_S3_LAYOUT` (`folders`,
/// `suffixed` or `flat`) and `FAILED_LOG_FORMAT` (`envelope` or `raw`); `None` when there is
/// no bucket (failures are then counted and logged).
pub fn dead_letter(
    get: Get<'_>,
    defaults: DeadLetterDefaults<'_>,
    dates: KeyDates,
) -> Result<Option<DeadLetterSettings>, String> {
    let groups = choice(
        get,
        "FAILED_LOG_S3_LAYOUT",
        &[
            ("folders", DeadLetterGroups::Folders),
            ("suffixed", DeadLetterGroups::Suffixed),
            ("flat", DeadLetterGroups::Flat),
        ],
        defaults.groups,
    )?;
    let format = choice(
        get,
        "FAILED_LOG_FORMAT",
        &[
            ("envelope", DeadLetterFormat::Envelope),
            ("raw", DeadLetterFormat::Raw),
        ],
        DeadLetterFormat::Envelope,
    )?;
    let Some(bucket) = var(get, "FAILED_LOG_S3_BUCKET").or(defaults.bucket.map(str::to_owned))
    else {
        return Ok(None);
    };
    let prefix = match get("FAILED_LOG_S3_PREFIX") {
        None => defaults.prefix.to_owned(),
        Some(p) => p.trim().to_owned(),
    };
    if defaults.original_prefix
        && get("FAILED_LOG_S3_PREFIX").is_some()
        && (prefix.is_empty() || prefix.starts_with('/') || prefix.ends_with('/'))
    {
        return Err(format!(
            "FAILED_LOG_S3_PREFIX={prefix:?}: the original module wrote failures to \
             {prefix}/{{%Y-%m}}/…, with the slashes as they are ('/…' or '…//…'); set the \
             prefix without leading or trailing '/' (new failures then go to \
             {}/{{%Y-%m}}/…)",
            prefix.trim_matches('/')
        ));
    }
    Ok(Some(DeadLetterSettings {
        bucket: bucket.trim().to_owned(),
        config: DeadLetterConfig {
            prefix,
            key_dates: dates,
            groups,
            format,
            ..DeadLetterConfig::default()
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k: &str| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn schema_zone_and_dates() {
        let c = common(
            &vars(&[("TZ", "Asia/Tokyo")]),
            true,
            UnparseableTimestamp::Fail,
        )
        .unwrap();
        assert_eq!(c.schema.time_zone.name(), "Asia/Tokyo");
        assert_eq!(c.dates, KeyDates::RecordOffset);
        let c = common(
            &vars(&[("TZ", "UTC"), ("LOG_TIMEZONE", "Asia/Tokyo")]),
            false,
            UnparseableTimestamp::Ignore,
        )
        .unwrap();
        assert_eq!(
            (c.schema.time_zone.name(), c.dates),
            ("Asia/Tokyo", KeyDates::Zone)
        );
        assert!(!c.schema.timestamp_required);
        let c = common(
            &vars(&[("LOG_TYPE_WHITELIST", "")]),
            true,
            UnparseableTimestamp::Fail,
        )
        .unwrap();
        assert!(c.whitelist.accepts("anything"));
        let e = common(
            &vars(&[("TZ", "Mars/Base")]),
            true,
            UnparseableTimestamp::Fail,
        )
        .unwrap_err();
        assert!(e.starts_with("TZ"), "{e}");
        let e = common(
            &vars(&[("LOG_TYPE_FIELD", "")]),
            true,
            UnparseableTimestamp::Fail,
        )
        .unwrap_err();
        assert!(e.starts_with("LOG_TYPE_FIELD"), "{e}");
    }

    #[test]
    fn switches_and_choices() {
        let get = vars(&[("A", "Yes"), ("B", "maybe"), ("C", "raw")]);
        assert_eq!(flag(&get, "A", false), Ok(true));
        assert!(flag(&get, "B", false).unwrap_err().contains("B="));
        assert_eq!(flag(&get, "Z", true), Ok(true));
        assert_eq!(choice(&get, "C", &[("raw", 1), ("x", 2)], 0), Ok(1));
        assert!(
            choice(&get, "B", &[("raw", 1)], 0)
                .unwrap_err()
                .contains("raw")
        );
    }
}
