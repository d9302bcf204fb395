//! An independent SigV4 verifier (written from the AWS documentation, not aws-sigv4), to
//! check that requests the client signs carry a valid signature.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = if key.len() > 64 {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(64, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Checks the request's `authorization` header against a signature recomputed from the
/// method, target, headers and body. Returns the reason when invalid.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    method: &str,
    target: &str,
    headers: &BTreeMap<String, String>,
    body: &[u8],
    access_key: &str,
    secret: &str,
    region: &str,
    service: &str,
) -> Result<(), String> {
    let auth = headers
        .get("authorization")
        .ok_or("no authorization header")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let mut parts = BTreeMap::new();
    for p in rest.split(", ") {
        let (k, v) = p.split_once('=').ok_or("bad authorization part")?;
        parts.insert(k, v);
    }
    let credential = parts.get("Credential").ok_or("no Credential")?;
    let signed_headers = parts.get("SignedHeaders").ok_or("no SignedHeaders")?;
    let signature = parts.get("Signature").ok_or("no Signature")?;
    let scope_parts: Vec<&str> = credential.split('/').collect();
    if scope_parts.len() != 5 || scope_parts[0] != access_key {
        return Err(format!("bad credential {credential}"));
    }
    let date = scope_parts[1];
    if scope_parts[2] != region || scope_parts[3] != service || scope_parts[4] != "aws4_request" {
        return Err(format!("bad scope {credential}"));
    }
    let amz_date = headers.get("x-amz-date").ok_or("no x-amz-date")?;
    let payload_hash = hex(&Sha256::digest(body));
    if headers
        .get("x-amz-content-sha256")
        .is_some_and(|h| *h != payload_hash)
    {
        return Err("x-amz-content-sha256 does not match the body".into());
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut q: Vec<(String, String)> = query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (uri_encode(k, false), uri_encode(v, false))
        })
        .collect();
    q.sort();
    let canonical_query = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let v = headers
            .get(name)
            .ok_or(format!("signed header {name} missing"))?;
        canonical_headers.push_str(&format!("{name}:{}\n", v.trim()));
    }
    let creq = format!(
        "{method}\n{}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        uri_encode(path, true)
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(creq.as_bytes()))
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    let expected = hex(&hmac(&k, sts.as_bytes()));
    if expected != *signature {
        return Err(format!(
            "signature mismatch; canonical request was:\n{creq}"
        ));
    }
    Ok(())
}
