//! Container image URIs: private ECR images are checked, anything else is accepted as is.

use std::fmt;

/// How an image is selected in its repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ImageSelector {
    /// A tag (`:v1`; no tag means `latest`).
    Tag(String),
    /// A digest (`@sha256:<64 hex>`).
    Digest(String),
}

impl fmt::Display for ImageSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => write!(f, ":{t}"),
            Self::Digest(d) => write!(f, "@{d}"),
        }
    }
}

/// An image in a private ECR registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct EcrImage {
    /// Registry (account) id.
    pub registry_id: String,
    /// The registry's region; `DescribeImages` is sent there.
    pub region: String,
    /// Repository name (may contain `/`).
    pub repository: String,
    /// Tag or digest.
    pub selector: ImageSelector,
}

/// A parsed image URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ImageRef {
    /// A private ECR image, checked before anything is created.
    Ecr(EcrImage),
    /// Any other registry (public ECR, Docker Hub, ...): accepted without a check.
    Other(String),
}

/// Why an image URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image URI {uri:?}: {reason}")]
#[non_exhaustive]
pub struct ImageUriError {
    /// The URI.
    pub uri: String,
    /// Why.
    pub reason: String,
}

impl ImageRef {
    /// Parses an image URI. Private ECR hosts are
    /// `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` and the dual-stack
    /// `<account>.dkr-ecr[-fips].<region>.on.aws`.
    ///
    /// ```
    /// use eden_core::{ImageRef, ImageSelector};
    /// let ImageRef::Ecr(img) =
    ///     ImageRef::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web:v2").unwrap()
    /// else { panic!() };
    /// assert_eq!(img.region, "eu-west-1");
    /// assert_eq!(img.repository, "team/web");
    /// assert_eq!(img.selector, ImageSelector::Tag("v2".into()));
    /// assert!(matches!(ImageRef::parse("nginx:1.27").unwrap(), ImageRef::Other(_)));
    /// ```
    pub fn parse(uri: &str) -> Result<Self, ImageUriError> {
        let err = |reason: &str| ImageUriError {
            uri: uri.to_owned(),
            reason: reason.to_owned(),
        };
        if uri.is_empty() || uri.chars().any(char::is_whitespace) {
            return Err(err("empty or contains whitespace"));
        }
        let Some((host, rest)) = uri.split_once('/') else {
            return Ok(Self::Other(uri.to_owned()));
        };
        let Some((registry_id, region)) = ecr_host(host) else {
            let aws_host = [".amazonaws.com", ".amazonaws.com.cn", ".on.aws"]
                .iter()
                .any(|suffix| host.ends_with(suffix));
            if aws_host && (host.contains(".dkr.ecr") || host.contains(".dkr-ecr")) {
                return Err(err(
                    "looks like ECR but the host is not <account>.dkr.ecr.<region>.amazonaws.com",
                ));
            }
            return Ok(Self::Other(uri.to_owned()));
        };
        // `repo`, `repo:tag`, `repo@sha256:<hex>` or `repo:tag@sha256:<hex>` (the digest wins;
        // the tag only documents it).
        let (named, digest) = match rest.split_once('@') {
            Some((named, digest)) => (named, Some(digest)),
            None => (rest, None),
        };
        // A tag follows the last ':' of the last path segment.
        let last = named.rsplit('/').next().unwrap_or(named);
        let (repository, tag) = match last.rsplit_once(':') {
            Some((_, tag)) => {
                let ok = !tag.is_empty()
                    && tag.len() <= 128
                    && tag
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
                if !ok {
                    return Err(err("a tag is 1-128 letters, digits, '_', '.' and '-'"));
                }
                (&named[..named.len() - tag.len() - 1], Some(tag))
            }
            None => (named, None),
        };
        let selector = match digest {
            Some(digest) => {
                let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
                    err("a digest is sha256:<64 hex digits> (after '@', following the repository or its tag)")
                })?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err("a digest is sha256:<64 hex digits>"));
                }
                ImageSelector::Digest(digest.to_ascii_lowercase())
            }
            None => ImageSelector::Tag(tag.unwrap_or("latest").to_owned()),
        };
        let repo_ok = (2..=256).contains(&repository.len())
            && repository
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
            && !repository.starts_with('/')
            && !repository.ends_with('/');
        if !repo_ok {
            return Err(err(
                "an ECR repository name is 2-256 lowercase letters, digits, '.', '_', '-' and '/'",
            ));
        }
        Ok(Self::Ecr(EcrImage {
            registry_id,
            region,
            repository: repository.to_owned(),
            selector,
        }))
    }
}

/// `(account, region)` of a private ECR registry host.
fn ecr_host(host: &str) -> Option<(String, String)> {
    let (account, rest) = host.split_once('.')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let region = if let Some(r) = rest
        .strip_prefix("dkr.ecr.")
        .or_else(|| rest.strip_prefix("dkr.ecr-fips."))
    {
        r.strip_suffix(".amazonaws.com")
            .or_else(|| r.strip_suffix(".amazonaws.com.cn"))?
    } else if let Some(r) = rest
        .strip_prefix("dkr-ecr.")
        .or_else(|| rest.strip_prefix("dkr-ecr-fips."))
    {
        r.strip_suffix(".on.aws")?
    } else {
        return None;
    };
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    region_ok.then(|| (account.to_owned(), region.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecr(uri: &str) -> EcrImage {
        match ImageRef::parse(uri).unwrap() {
            ImageRef::Ecr(i) => i,
            ImageRef::Other(o) => panic!("not ECR: {o}"),
        }
    }

    #[test]
    fn ecr_forms() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for (uri, region) in [
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1",
                "us-east-1",
            ),
            (
                "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/web:v1",
                "us-gov-west-1",
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/web:v1",
                "cn-north-1",
            ),
            ("123456789012.dkr-ecr.eu-west-1.on.aws/web:v1", "eu-west-1"),
        ] {
            let i = ecr(uri);
            assert_eq!(i.region, region);
            assert_eq!(i.registry_id, "123456789012");
            assert_eq!(i.repository, "web");
            assert_eq!(i.selector, ImageSelector::Tag("v1".into()));
        }
        let i = ecr(&format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/a/b@{digest}"
        ));
        assert_eq!(i.repository, "a/b");
        assert_eq!(i.selector, ImageSelector::Digest(digest.clone()));
        let i = ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com/a/b");
        assert_eq!(i.selector, ImageSelector::Tag("latest".into()));
        // A tag and a digest: the digest selects, the tag is dropped from the repository.
        let i = ecr(&format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web:v1@{digest}"
        ));
        assert_eq!(i.repository, "team/web");
        assert_eq!(i.selector, ImageSelector::Digest(digest.clone()));
        let e = ImageRef::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1@sha256:abc")
            .unwrap_err();
        assert!(e.reason.contains("64 hex digits"), "{e}");
    }

    #[test]
    fn other_registries_and_errors() {
        for uri in [
            "nginx",
            "nginx:1.27",
            "public.ecr.aws/nginx/nginx:latest",
            "localhost:5000/app:v1",
            "ghcr.io/o/r@sha256:abc",
        ] {
            assert!(
                matches!(ImageRef::parse(uri), Ok(ImageRef::Other(_))),
                "{uri}"
            );
        }
        for uri in [
            "",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:xyz",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/Web:v1",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:",
            "12345.dkr.ecr.us-east-1.amazonaws.com/web:v1",
        ] {
            assert!(ImageRef::parse(uri).is_err(), "{uri}");
        }
    }
}
