//! What AWS accepts as a name: DNS labels and names, ECS names, target group names, and
//! [`NameError`], why a name is refused. A leaf below both [`crate::profile`] (which checks its
//! keys with it) and [`crate::names`] (which derives an environment's names from a profile).

/// Longest DNS label (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest DNS name, without the trailing dot.
pub const MAX_DNS_NAME_LEN: usize = 253;
/// Longest ELBv2 target group name.
pub const MAX_TARGET_GROUP_NAME_LEN: usize = 32;
/// Longest ECS service name or task definition family.
pub const MAX_ECS_NAME_LEN: usize = 255;
/// Longest value of an ALB rule's host-header condition.
pub const MAX_HOST_HEADER_LEN: usize = 128;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than allowed.
    #[error("{what} {name:?} is {len} characters long, the limit is {max}")]
    TooLong {
        /// Which name (environment name, host, service name...).
        what: &'static str,
        /// The offending name.
        name: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An uppercase letter; DNS (and Route 53) names are stored lowercase.
    #[error("uppercase letter {ch:?} at position {index}: use lowercase letters")]
    Uppercase {
        /// The letter.
        ch: char,
        /// Its character index.
        index: usize,
    },
    /// A character outside the allowed set.
    #[error("character {ch:?} at position {index} is not allowed in {what} (allowed: {allowed})")]
    InvalidChar {
        /// Which name.
        what: &'static str,
        /// The character.
        ch: char,
        /// Its character index.
        index: usize,
        /// Description of the allowed set.
        allowed: &'static str,
    },
    /// A leading hyphen.
    #[error("{what} {name:?} starts with a hyphen")]
    LeadingHyphen {
        /// Which name.
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// A trailing hyphen.
    #[error("{what} {name:?} ends with a hyphen")]
    TrailingHyphen {
        /// Which name.
        what: &'static str,
        /// The offending name.
        name: String,
    },
}

/// Checks a DNS label: lowercase letters, digits, hyphens, 1..=63, no leading/trailing hyphen.
pub(crate) fn check_label(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    for (index, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            return Err(NameError::Uppercase { ch, index });
        }
        if !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-') {
            return Err(NameError::InvalidChar {
                what,
                ch,
                index,
                allowed: "lowercase letters, digits and hyphens",
            });
        }
    }
    check_length(what, name, MAX_LABEL_LEN)?;
    check_hyphens(what, name)
}

pub(crate) fn check_length(what: &'static str, name: &str, max: usize) -> Result<(), NameError> {
    let len = name.chars().count();
    if len > max {
        return Err(NameError::TooLong {
            what,
            name: name.to_owned(),
            len,
            max,
        });
    }
    Ok(())
}

fn check_hyphens(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.starts_with('-') {
        return Err(NameError::LeadingHyphen {
            what,
            name: name.to_owned(),
        });
    }
    if name.ends_with('-') {
        return Err(NameError::TrailingHyphen {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Checks an ECS service name / task family: 1..=255 letters, digits, `_` and `-`.
pub(crate) fn check_ecs_name(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some((index, ch)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(NameError::InvalidChar {
            what,
            ch,
            index,
            allowed: "letters, digits, '_' and '-'",
        });
    }
    check_length(what, name, MAX_ECS_NAME_LEN)
}
