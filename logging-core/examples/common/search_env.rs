//! The cluster connection of the Elasticsearch examples: `ES_HOST`, SigV4 for AWS domains,
//! basic auth for self-hosted clusters.

use logging_core::search::http::{HttpSearch, HttpSearchConfig, SearchAuth};

/// Where the cluster is and how requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Base URL of the cluster.
    pub endpoint: String,
    /// `(region if known from the host, service)` when requests are SigV4-signed.
    pub sigv4: Option<(Option<String>, String)>,
    /// `(username, password)` for basic auth.
    pub basic: Option<(String, String)>,
    /// gzip level of bulk bodies, when they are compressed.
    pub gzip_level: Option<u32>,
}

/// Reads `ES_HOST` (required), `ES_SIGV4` (`true`/`false`), `ES_USERNAME` / `ES_PASSWORD`
/// and `ES_GZIP_LEVEL` (1 to 12: gzip bulk bodies at that level; unset: plain) through `get`.
///
/// A bare host name is the original modules' form: HTTPS on port 443, and SigV4-signed by
/// default as the originals always signed (the region from the host, else `AWS_REGION`). A
/// URL (`http://localhost:9200`) is signed by default only when it names an AWS domain.
pub fn connection(get: &impl Fn(&str) -> Option<String>) -> Result<Connection, String> {
    let host = get("ES_HOST").ok_or("environment variable ES_HOST is required")?;
    let bare = !host.contains("://");
    let endpoint = if !bare {
        host.trim_end_matches('/').to_owned()
    } else {
        format!("https://{}", host.trim_end_matches('/'))
    };
    let host_name = endpoint
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let aws = aws_domain(&host_name);
    let sign = match get("ES_SIGV4").map(|v| v.to_ascii_lowercase()).as_deref() {
        None => aws.is_some() || bare,
        Some("true" | "1" | "yes") => true,
        Some("false" | "0" | "no") => false,
        Some(other) => return Err(format!("ES_SIGV4={other:?} is not true or false")),
    };
    let gzip_level = match get("ES_GZIP_LEVEL").as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => match v.parse() {
            Ok(level @ 1..=12) => Some(level),
            _ => {
                return Err(format!(
                    "ES_GZIP_LEVEL={v:?} is not a gzip level from 1 to 12"
                ));
            }
        },
    };
    Ok(Connection {
        endpoint,
        sigv4: sign.then(|| aws.unwrap_or((None, "es".to_owned()))),
        basic: get("ES_USERNAME").map(|u| (u, get("ES_PASSWORD").unwrap_or_default())),
        gzip_level,
    })
}

/// `(region, service)` of an AWS-managed domain's host name (`*.{region}.es.amazonaws.com`,
/// `*.aos.{region}.on.aws`, serverless `*.{region}.aoss.amazonaws.com`); `None` otherwise.
pub fn aws_domain(host: &str) -> Option<(Option<String>, String)> {
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    let before = |suffix: &[&str]| {
        (labels.ends_with(suffix) && n > suffix.len() + 1)
            .then(|| labels[n - suffix.len() - 1].to_owned())
    };
    if let Some(region) = before(&["es", "amazonaws", "com"]) {
        return Some((Some(region), "es".to_owned()));
    }
    if let Some(region) = before(&["aoss", "amazonaws", "com"]) {
        return Some((Some(region), "aoss".to_owned()));
    }
    if labels.ends_with(&["on", "aws"]) && n >= 5 && labels[n - 4] == "aos" {
        return Some((Some(labels[n - 3].to_owned()), "es".to_owned()));
    }
    None
}

/// An HTTP client for `conn`; SigV4 takes credentials and, when the host does not name it,
/// the region from the AWS SDK defaults.
pub fn http_search(conn: &Connection, sdk: &aws_config::SdkConfig) -> Result<HttpSearch, String> {
    let auth = match (&conn.sigv4, &conn.basic) {
        (Some((region, service)), _) => SearchAuth::SigV4 {
            region: region
                .clone()
                .or_else(|| sdk.region().map(ToString::to_string))
                .ok_or("SigV4 signing needs a region: none in ES_HOST or AWS_REGION")?,
            service: service.clone(),
            credentials: sdk
                .credentials_provider()
                .ok_or("SigV4 signing needs AWS credentials: none found")?,
        },
        (None, Some((username, password))) => SearchAuth::Basic {
            username: username.clone(),
            password: password.clone(),
        },
        (None, None) => SearchAuth::None,
    };
    let config = HttpSearchConfig {
        endpoint: conn.endpoint.clone(),
        gzip_level: conn.gzip_level,
        ..HttpSearchConfig::default()
    };
    HttpSearch::new(&config, auth).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Connection, String> {
        connection(&|k: &str| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn aws_hosts_are_signed_others_not() {
        let c = read(&[("ES_HOST", "search-logs-abc.ap-northeast-1.es.amazonaws.com")]).unwrap();
        assert_eq!(
            c.endpoint,
            "https://search-logs-abc.ap-northeast-1.es.amazonaws.com"
        );
        assert_eq!(c.sigv4, Some((Some("ap-northeast-1".into()), "es".into())));
        let c = read(&[("ES_HOST", "https://search-x.aos.us-east-1.on.aws/")]).unwrap();
        assert_eq!(c.sigv4, Some((Some("us-east-1".into()), "es".into())));
        let c = read(&[("ES_HOST", "abc.eu-west-1.aoss.amazonaws.com")]).unwrap();
        assert_eq!(c.sigv4, Some((Some("eu-west-1".into()), "aoss".into())));
        let c = read(&[("ES_HOST", "http://localhost:9200"), ("ES_USERNAME", "u")]).unwrap();
        assert_eq!(
            (c.sigv4, c.basic),
            (None, Some(("u".into(), String::new())))
        );
        let c = read(&[("ES_HOST", "es.internal"), ("ES_SIGV4", "true")]).unwrap();
        assert_eq!(c.sigv4, Some((None, "es".into())));
        // A bare host is the original modules' form: signed, as they always signed.
        let c = read(&[("ES_HOST", "search.example.com")]).unwrap();
        assert_eq!(c.endpoint, "https://search.example.com");
        assert_eq!(c.sigv4, Some((None, "es".into())));
        let c = read(&[("ES_HOST", "search.example.com"), ("ES_SIGV4", "false")]).unwrap();
        assert_eq!(c.sigv4, None);
        let c = read(&[("ES_HOST", "x.es.amazonaws.com"), ("ES_SIGV4", "no")]).unwrap();
        assert_eq!(c.sigv4, None);
    }

    #[test]
    fn gzip_level() {
        assert_eq!(read(&[("ES_HOST", "h")]).unwrap().gzip_level, None);
        let c = read(&[("ES_HOST", "h"), ("ES_GZIP_LEVEL", "1")]).unwrap();
        assert_eq!(c.gzip_level, Some(1));
        for bad in ["0", "13", "fast"] {
            let e = read(&[("ES_HOST", "h"), ("ES_GZIP_LEVEL", bad)]).unwrap_err();
            assert!(e.contains("ES_GZIP_LEVEL"), "{e}");
        }
    }

    #[test]
    fn missing_or_bad_values_are_errors() {
        assert!(read(&[]).unwrap_err().contains("ES_HOST"));
        assert!(read(&[("ES_HOST", "h"), ("ES_SIGV4", "maybe")]).is_err());
    }
}
