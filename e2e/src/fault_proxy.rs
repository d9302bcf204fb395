//! A fault proxy in front of moto: it forwards S3 and Kinesis calls, and answers a bounded,
//! seeded share of them with a 5xx error, a slow answer, or a connection reset (before the
//! request reaches moto, or after moto handled it and the answer is lost).
//!
//! Random faults are bounded twice: at most [`FaultPlan::max_faults`] in all, and at most
//! [`FaultPlan::max_in_a_row`] for byte-identical requests, so that an SDK's own retries (three
//! attempts by default) always get through. Every kind hits every service at least once: the
//! seed places one fault of each kind among each service's first
//! [`FaultPlan::guaranteed_within`] requests, and further faults fall on a seeded share of the
//! rest. Requests are counted in arrival order, so concurrent requests may swap faults between
//! runs; the number and kinds of faults do not change.
//!
//! [`Trigger`]s fail chosen content for a set number of attempts, beyond what the SDK and the
//! destinations retry, to drive a function into a partial batch failure on purpose: an S3 put
//! whose (gunzipped) body holds a marker answers 503 `SlowDown`; a `PutRecords` entry whose data
//! holds a marker is answered with `ProvisionedThroughputExceededException` while the others
//! are stored, as Kinesis does.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::http::{Request, read_request, write_response};

/// The AWS service a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Amazon S3.
    S3,
    /// Amazon Kinesis Data Streams.
    Kinesis,
    /// Anything else (forwarded, never faulted).
    Other,
}

/// A kind of random fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// A 500/503 answer in the service's error format.
    ServerError,
    /// A delay before forwarding.
    Slow,
    /// The connection is reset before the request is forwarded.
    ResetBeforeForward,
    /// The request is forwarded, then the connection is reset instead of answering.
    ResetAfterForward,
}

/// Every kind of random fault.
pub const FAULT_KINDS: [FaultKind; 4] = [
    FaultKind::ServerError,
    FaultKind::ResetBeforeForward,
    FaultKind::Slow,
    FaultKind::ResetAfterForward,
];

/// Content to fail on purpose.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// S3 (`PutObject` bodies) or Kinesis (`PutRecords` entries).
    pub service: Service,
    /// The bytes to look for.
    pub marker: Vec<u8>,
    /// For Kinesis: only calls to this stream (name).
    pub stream: Option<String>,
    /// How many attempts carrying the marker fail.
    pub times: u32,
}

/// What the proxy does.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Seeds the choice of requests.
    pub seed: u64,
    /// The chance that an eligible S3 or Kinesis request gets a random fault.
    pub share: f64,
    /// Random faults in all.
    pub max_faults: usize,
    /// Random faults in a row for byte-identical requests.
    pub max_in_a_row: u32,
    /// One fault of each kind falls among each service's first this many requests.
    pub guaranteed_within: usize,
    /// Delay of a slow answer, chosen between these.
    pub slow: (Duration, Duration),
    /// Content failed on purpose.
    pub triggers: Vec<Trigger>,
}

impl FaultPlan {
    /// Forward everything, fault nothing.
    pub fn none() -> Self {
        Self {
            seed: 0,
            share: 0.0,
            max_faults: 0,
            max_in_a_row: 0,
            guaranteed_within: 0,
            slow: (Duration::ZERO, Duration::ZERO),
            triggers: Vec::new(),
        }
    }
}

/// One proxied call.
#[derive(Debug, Clone)]
pub struct ProxyEntry {
    /// Since the proxy started.
    pub at: Duration,
    /// The service.
    pub service: Service,
    /// `PutObject`, `PutRecords`, ...
    pub operation: String,
    /// Path and query.
    pub target: String,
    /// What the proxy did.
    pub action: String,
    /// moto's status, when forwarded and answered.
    pub upstream_status: Option<u16>,
}

#[derive(Default)]
struct State {
    entries: Vec<ProxyEntry>,
    faults: HashMap<(Service, FaultKind), usize>,
    random_faults: usize,
    in_a_row: HashMap<u64, u32>,
    /// Requests seen per service.
    counters: HashMap<Service, usize>,
    /// Guaranteed faults not placed yet: (request index, kind), in index order.
    owed: HashMap<Service, std::collections::VecDeque<(usize, FaultKind)>>,
    trigger_hits: HashMap<usize, u32>,
    /// Data of the PutRecords entries that moto stored but whose answer was lost.
    stored_unanswered: Vec<Vec<u8>>,
}

struct Shared {
    upstream: String,
    plan: FaultPlan,
    client: reqwest::Client,
    started: Instant,
    rng: Mutex<fastrand::Rng>,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running proxy.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Counts of what the proxy did, per service and kind.
#[derive(Debug, Clone, Default)]
pub struct FaultSummary {
    /// Calls per service.
    pub calls: HashMap<Service, usize>,
    /// Random faults per (service, kind).
    pub faults: HashMap<(Service, FaultKind), usize>,
    /// Attempts failed by each trigger, in plan order.
    pub trigger_hits: Vec<u32>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free loopback port.
    pub async fn start(upstream: &str, plan: FaultPlan) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        let mut rng = fastrand::Rng::with_seed(plan.seed);
        let mut state = State::default();
        if plan.guaranteed_within >= FAULT_KINDS.len() {
            for service in [Service::S3, Service::Kinesis] {
                let mut at: Vec<usize> = (0..plan.guaranteed_within).collect();
                rng.shuffle(&mut at);
                at.truncate(FAULT_KINDS.len());
                at.sort_unstable();
                let mut kinds = FAULT_KINDS.to_vec();
                rng.shuffle(&mut kinds);
                state
                    .owed
                    .insert(service, at.into_iter().zip(kinds).collect());
            }
        }
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            rng: Mutex::new(rng),
            plan,
            client,
            started: Instant::now(),
            state: Mutex::new(state),
        });
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                connections.spawn(async move {
                    let _ = serve_connection(&s, stream).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// `http://127.0.0.1:port`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every call so far.
    pub fn entries(&self) -> Vec<ProxyEntry> {
        lock(&self.shared.state).entries.clone()
    }

    /// Counts per service and fault kind.
    pub fn summary(&self) -> FaultSummary {
        let state = lock(&self.shared.state);
        let mut calls = HashMap::new();
        for e in &state.entries {
            *calls.entry(e.service).or_insert(0) += 1;
        }
        FaultSummary {
            calls,
            faults: state.faults.clone(),
            trigger_hits: (0..self.shared.plan.triggers.len())
                .map(|i| state.trigger_hits.get(&i).copied().unwrap_or(0))
                .collect(),
        }
    }

    /// The data of `PutRecords` entries that moto stored although the caller never got the
    /// answer (reset after forwarding): the caller resends them, so they may arrive twice.
    pub fn stored_unanswered(&self) -> Vec<Vec<u8>> {
        lock(&self.shared.state).stored_unanswered.clone()
    }

    /// The log as text, one call per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in self.entries() {
            let _ = writeln!(
                out,
                "{:>8.3}s {:?} {} {} -> {} {:?}",
                e.at.as_secs_f64(),
                e.service,
                e.operation,
                e.target,
                e.action,
                e.upstream_status
            );
        }
        out
    }
}

fn classify(req: &Request) -> (Service, String) {
    if let Some(target) = req.header("x-amz-target") {
        let op = target.rsplit('.').next().unwrap_or(target).to_owned();
        let service = if target.starts_with("Kinesis_") {
            Service::Kinesis
        } else {
            Service::Other
        };
        return (service, op);
    }
    let scope_service = req
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or_default();
    if scope_service == "s3" {
        let op = req
            .target
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("x-id="))
            .map(str::to_owned)
            .unwrap_or_else(|| req.method.clone());
        return (Service::S3, op);
    }
    (Service::Other, req.method.clone())
}

fn identity(req: &Request) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    req.method.hash(&mut h);
    req.target.hash(&mut h);
    req.body.hash(&mut h);
    h.finish()
}

/// The bytes of an S3 PutObject body as stored: aws-chunked framing removed, gunzipped when
/// it is gzip.
fn s3_content(req: &Request) -> Vec<u8> {
    let mut body = req.body.clone();
    if req
        .header("content-encoding")
        .is_some_and(|v| v.contains("aws-chunked"))
    {
        body = decode_aws_chunked(&body);
    }
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        if flate2::read::MultiGzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .is_ok()
        {
            return out;
        }
    }
    body
}

fn decode_aws_chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let head = String::from_utf8_lossy(&rest[..eol]);
        let size =
            usize::from_str_radix(head.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        rest = &rest[eol + 2..];
        if size == 0 || rest.len() < size {
            return out;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

enum Decision {
    Forward,
    Random(FaultKind),
    /// Trigger `i` fails the whole request with 503.
    S3Trigger(usize),
    /// Entries at these indices fail (trigger hits counted).
    KinesisEntries(Vec<usize>),
}

fn decide(shared: &Shared, req: &Request, service: Service, op: &str) -> Decision {
    let plan = &shared.plan;
    let mut state = lock(&shared.state);
    match (service, op) {
        (Service::S3, "PutObject") => {
            let content = s3_content(req);
            for (i, t) in plan.triggers.iter().enumerate() {
                if t.service == Service::S3 && contains(&content, &t.marker) {
                    let hits = state.trigger_hits.entry(i).or_insert(0);
                    if *hits < t.times {
                        *hits += 1;
                        return Decision::S3Trigger(i);
                    }
                }
            }
        }
        (Service::Kinesis, "PutRecords") => {
            let datas = put_records_data(&req.body);
            let stream = put_records_stream(&req.body);
            let mut failing = Vec::new();
            for (i, t) in plan.triggers.iter().enumerate() {
                if t.service != Service::Kinesis
                    || t.stream
                        .as_ref()
                        .is_some_and(|s| Some(s) != stream.as_ref())
                {
                    continue;
                }
                let matching: Vec<usize> = datas
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| contains(d, &t.marker))
                    .map(|(j, _)| j)
                    .collect();
                if matching.is_empty() {
                    continue;
                }
                let hits = state.trigger_hits.entry(i).or_insert(0);
                if *hits < t.times {
                    *hits += 1;
                    failing.extend(matching);
                }
            }
            if !failing.is_empty() {
                failing.sort_unstable();
                failing.dedup();
                return Decision::KinesisEntries(failing);
            }
        }
        _ => {}
    }
    if service == Service::Other {
        return Decision::Forward;
    }
    let counter = state.counters.entry(service).or_insert(0);
    let index = *counter;
    *counter += 1;
    let id = identity(req);
    let row = state.in_a_row.get(&id).copied().unwrap_or(0);
    let mut kind = None;
    if row < plan.max_in_a_row && state.random_faults < plan.max_faults {
        let owed = state.owed.entry(service).or_default();
        if owed.front().is_some_and(|(at, _)| index >= *at) {
            kind = owed.pop_front().map(|(_, k)| k);
        } else {
            let mut rng = lock(&shared.rng);
            if rng.f64() < plan.share {
                kind = Some(FAULT_KINDS[rng.usize(..FAULT_KINDS.len())]);
            }
        }
    }
    let Some(kind) = kind else {
        state.in_a_row.remove(&id);
        return Decision::Forward;
    };
    state.in_a_row.insert(id, row + 1);
    state.random_faults += 1;
    *state.faults.entry((service, kind)).or_insert(0) += 1;
    Decision::Random(kind)
}

/// The stream a PutRecords request names (`StreamName`, or the name in `StreamARN`).
fn put_records_stream(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if let Some(name) = v.get("StreamName").and_then(|n| n.as_str()) {
        return Some(name.to_owned());
    }
    let arn = v.get("StreamARN")?.as_str()?;
    Some(arn.rsplit('/').next().unwrap_or(arn).to_owned())
}

/// The decoded `Data` of each entry of a PutRecords request body (empty for a bad body).
fn put_records_data(body: &[u8]) -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("Records")?.as_array().map(|records| {
                records
                    .iter()
                    .map(|r| {
                        r.get("Data")
                            .and_then(|d| d.as_str())
                            .and_then(|d| b64.decode(d).ok())
                            .unwrap_or_default()
                    })
                    .collect()
            })
        })
        .unwrap_or_default()
}

struct Upstream {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn forward(shared: &Shared, req: &Request, body: Vec<u8>) -> Result<Upstream, String> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut builder = shared
        .client
        .request(method, format!("{}{}", shared.upstream, req.target));
    for (name, value) in &req.headers {
        if matches!(
            name.as_str(),
            "host"
                | "content-length"
                | "transfer-encoding"
                | "connection"
                | "expect"
                | "keep-alive"
        ) {
            continue;
        }
        builder = builder.header(name, value);
    }
    let response = builder.body(body).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "transfer-encoding" | "connection" | "keep-alive"
            )
        })
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response.bytes().await.map_err(|e| e.to_string())?.to_vec();
    Ok(Upstream {
        status,
        headers,
        body,
    })
}

async fn send_upstream<W: AsyncWrite + Unpin>(
    w: &mut W,
    method: &str,
    up: &Upstream,
    close: bool,
) -> std::io::Result<()> {
    if method.eq_ignore_ascii_case("HEAD") {
        // The head as moto sent it (its content-length included), no body.
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            up.status,
            crate::http::reason(up.status)
        );
        for (n, v) in &up.headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        if close {
            head.push_str("connection: close\r\n");
        }
        head.push_str("\r\n");
        w.write_all(head.as_bytes()).await?;
        return w.flush().await;
    }
    let headers: Vec<(String, String)> = up
        .headers
        .iter()
        .filter(|(n, _)| n != "content-length")
        .cloned()
        .collect();
    write_response(w, up.status, &headers, &up.body, close).await
}

fn server_error(service: Service, alternate: bool) -> (u16, Vec<(String, String)>, Vec<u8>) {
    match (service, alternate) {
        (Service::S3, false) => (
            503,
            vec![("content-type".into(), "application/xml".into())],
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>E2EFAULT</RequestId></Error>".to_vec(),
        ),
        (Service::S3, true) => (
            500,
            vec![("content-type".into(), "application/xml".into())],
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>E2EFAULT</RequestId></Error>".to_vec(),
        ),
        (_, false) => (
            500,
            vec![("content-type".into(), "application/x-amz-json-1.1".into())],
            br#"{"__type":"InternalFailure","message":"injected by the e2e fault proxy"}"#.to_vec(),
        ),
        (_, true) => (
            503,
            vec![("content-type".into(), "application/x-amz-json-1.1".into())],
            br#"{"__type":"ServiceUnavailable","message":"injected by the e2e fault proxy"}"#
                .to_vec(),
        ),
    }
}

fn reset(read: &BufReader<tokio::net::tcp::OwnedReadHalf>) {
    // SO_LINGER 0: closing sends RST instead of FIN.
    let _ = read.get_ref().as_ref().set_zero_linger();
}

async fn serve_connection(shared: &Arc<Shared>, stream: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    while let Some(req) = read_request(&mut read, &mut write).await? {
        let close = req.wants_close();
        let (service, op) = classify(&req);
        let decision = decide(shared, &req, service, &op);
        let mut entry = ProxyEntry {
            at: shared.started.elapsed(),
            service,
            operation: op.clone(),
            target: req.target.clone(),
            action: String::new(),
            upstream_status: None,
        };
        let record = |entry: ProxyEntry| lock(&shared.state).entries.push(entry);
        match decision {
            Decision::Random(FaultKind::ResetBeforeForward) => {
                entry.action = "reset before forwarding".into();
                record(entry);
                reset(&read);
                return Ok(());
            }
            Decision::Random(FaultKind::ServerError) => {
                let alternate = lock(&shared.rng).bool();
                let (status, headers, body) = server_error(service, alternate);
                entry.action = format!("answered {status}");
                record(entry);
                write_response(&mut write, status, &headers, &body, close).await?;
            }
            Decision::S3Trigger(i) => {
                let (status, headers, body) = server_error(Service::S3, false);
                entry.action = format!("trigger {i}: answered {status}");
                record(entry);
                write_response(&mut write, status, &headers, &body, close).await?;
            }
            Decision::KinesisEntries(failing) => {
                let result = put_records_partially(shared, &req, &failing).await;
                match result {
                    Ok(up) => {
                        entry.action = format!("entries {failing:?} throttled");
                        entry.upstream_status = Some(up.status);
                        record(entry);
                        send_upstream(&mut write, &req.method, &up, close).await?;
                    }
                    Err(e) => {
                        entry.action = format!("upstream failed: {e}");
                        record(entry);
                        let (status, headers, body) = server_error(service, false);
                        write_response(&mut write, status, &headers, &body, close).await?;
                    }
                }
            }
            Decision::Forward
            | Decision::Random(FaultKind::Slow | FaultKind::ResetAfterForward) => {
                if let Decision::Random(FaultKind::Slow) = decision {
                    let (lo, hi) = shared.plan.slow;
                    let span = hi.saturating_sub(lo).as_millis() as u64;
                    let ms = lo.as_millis() as u64 + lock(&shared.rng).u64(0..=span);
                    entry.action = format!("slowed {ms} ms, ");
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                match forward(shared, &req, req.body.clone()).await {
                    Ok(up) => {
                        entry.upstream_status = Some(up.status);
                        if let Decision::Random(FaultKind::ResetAfterForward) = decision {
                            entry.action = "forwarded, then reset".into();
                            if service == Service::Kinesis && op == "PutRecords" && up.status == 200
                            {
                                let datas = put_records_data(&req.body);
                                lock(&shared.state).stored_unanswered.extend(datas);
                            }
                            record(entry);
                            reset(&read);
                            return Ok(());
                        }
                        entry.action.push_str("forwarded");
                        record(entry);
                        send_upstream(&mut write, &req.method, &up, close).await?;
                    }
                    Err(e) => {
                        entry.action = format!("upstream failed: {e}");
                        record(entry);
                        let (status, headers, body) = server_error(service, false);
                        let _ = status;
                        write_response(&mut write, 502, &headers, &body, close).await?;
                    }
                }
            }
        }
        if close {
            break;
        }
    }
    Ok(())
}

/// Forwards a PutRecords call without the `failing` entries and answers as Kinesis answers a
/// partial failure: those entries carry `ProvisionedThroughputExceededException`.
async fn put_records_partially(
    shared: &Shared,
    req: &Request,
    failing: &[usize],
) -> Result<Upstream, String> {
    let mut body: serde_json::Value =
        serde_json::from_slice(&req.body).map_err(|e| e.to_string())?;
    let records = body
        .get_mut("Records")
        .and_then(|r| r.as_array_mut())
        .ok_or("PutRecords without Records")?;
    let all = std::mem::take(records);
    let total = all.len();
    let kept: Vec<serde_json::Value> = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !failing.contains(i))
        .map(|(_, r)| r)
        .collect();
    let forwarded = !kept.is_empty();
    *records = kept;
    let mut stored: Vec<serde_json::Value> = Vec::new();
    let mut failed_count = failing.len() as u64;
    let mut status = 200;
    let mut headers = vec![(
        "content-type".to_owned(),
        "application/x-amz-json-1.1".to_owned(),
    )];
    if forwarded {
        let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let up = forward(shared, req, bytes).await?;
        if up.status != 200 {
            return Ok(up);
        }
        status = up.status;
        headers = up
            .headers
            .into_iter()
            .filter(|(n, _)| n != "content-length")
            .collect();
        let answer: serde_json::Value =
            serde_json::from_slice(&up.body).map_err(|e| e.to_string())?;
        failed_count += answer
            .get("FailedRecordCount")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        stored = answer
            .get("Records")
            .and_then(|r| r.as_array())
            .cloned()
            .unwrap_or_default();
    }
    let stream = body
        .get("StreamName")
        .and_then(|s| s.as_str())
        .unwrap_or("stream");
    let mut stored = stored.into_iter();
    let merged: Vec<serde_json::Value> = (0..total)
        .map(|i| {
            if failing.contains(&i) {
                serde_json::json!({
                    "ErrorCode": "ProvisionedThroughputExceededException",
                    "ErrorMessage": format!("Rate exceeded for shard shardId-000000000000 in stream {stream} under account 123456789012."),
                })
            } else {
                stored.next().unwrap_or(serde_json::Value::Null)
            }
        })
        .collect();
    let answer = serde_json::json!({"FailedRecordCount": failed_count, "Records": merged});
    Ok(Upstream {
        status,
        headers,
        body: serde_json::to_vec(&answer).map_err(|e| e.to_string())?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn aws_chunked_bodies_are_unframed() {
        let body =
            b"5;chunk-signature=abc\r\nhello\r\n3\r\n!!!\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n";
        assert_eq!(decode_aws_chunked(body), b"hello!!!");
    }

    #[test]
    fn put_records_entries_are_decoded() {
        let body = br#"{"StreamName":"s","Records":[{"Data":"aGVsbG8=","PartitionKey":"k"},{"Data":"d29ybGQ=","PartitionKey":"k"}]}"#;
        assert_eq!(
            put_records_data(body),
            vec![b"hello".to_vec(), b"world".to_vec()]
        );
    }
}
