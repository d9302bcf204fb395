//! A local Lambda Runtime API (version 2018-06-01), the interface a custom runtime such as the
//! `lambda_runtime` crate polls inside a Lambda execution environment:
//!
//! * `GET /2018-06-01/runtime/invocation/next` long-polls for the next event and answers it
//!   with `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`,
//!   `Lambda-Runtime-Invoked-Function-Arn` and `Lambda-Runtime-Trace-Id`;
//! * `POST /2018-06-01/runtime/invocation/{id}/response` (202; 413 over 6 MB; 400 for an id
//!   never handed out; 410 for one already answered or timed out);
//! * `POST /2018-06-01/runtime/invocation/{id}/error` with the function's error document and
//!   `Lambda-Runtime-Function-Error-Type`;
//! * `POST /2018-06-01/runtime/init/error`.
//!
//! [`RuntimeApi::invoke`] is the synchronous `Invoke` of the Lambda service: it queues an event,
//! waits until a runtime takes it, and then until the function answers or its deadline passes.
//! Binds 127.0.0.1 only. Every exchange is written to a journal for failure reports.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::http::{Request, json_headers, read_request, write_response};

/// The largest synchronous response Lambda accepts (6 MB as Lambda counts it).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// How the simulated function is configured.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub name: String,
    /// The region in the function ARN.
    pub region: String,
    /// The account in the function ARN.
    pub account: String,
    /// The function timeout: the deadline is this long after a runtime takes the event.
    pub timeout: Duration,
    /// How long an event waits for an idle runtime before the invoke fails.
    pub pickup_timeout: Duration,
}

impl FunctionConfig {
    /// A function named `name` in us-east-1, account 123456789012, 60 s timeout.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            timeout: Duration::from_secs(60),
            pickup_timeout: Duration::from_secs(60),
        }
    }

    /// The function's ARN, as sent in `Lambda-Runtime-Invoked-Function-Arn`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account, self.name
        )
    }
}

/// How one invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The function posted a response.
    Response(Vec<u8>),
    /// The function posted an error (`/invocation/{id}/error`), or its response was too large.
    Error {
        /// `errorType` of the error document (or the Lambda error for oversized responses).
        error_type: String,
        /// The `Lambda-Runtime-Function-Error-Type` header, when sent.
        header_type: Option<String>,
        /// The error document as posted.
        body: Vec<u8>,
    },
    /// The deadline passed without an answer (Lambda's "Task timed out").
    TimedOut,
    /// No runtime took the event within the pickup timeout.
    NotPickedUp,
}

impl Outcome {
    /// Whether Lambda counts this invocation as a function error.
    pub fn is_error(&self) -> bool {
        !matches!(self, Outcome::Response(_))
    }
}

/// One finished invocation.
#[derive(Debug, Clone)]
pub struct Invoked {
    /// The request id the runtime saw.
    pub request_id: String,
    /// How it ended.
    pub outcome: Outcome,
    /// From the invoke call to the answer.
    pub duration: Duration,
}

/// An error a runtime reported while initialising.
#[derive(Debug, Clone)]
pub struct InitError {
    /// The `Lambda-Runtime-Function-Error-Type` header.
    pub header_type: Option<String>,
    /// The error document.
    pub body: String,
}

struct Pending {
    request_id: String,
    trace_id: String,
    payload: Arc<Vec<u8>>,
    picked: oneshot::Sender<()>,
    done: oneshot::Sender<Outcome>,
}

struct Shared {
    config: FunctionConfig,
    started: Instant,
    queue: Mutex<VecDeque<Pending>>,
    notify: Notify,
    inflight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// Ids answered, timed out or abandoned: a late answer gets 410.
    finished: Mutex<HashSet<String>>,
    /// Ids whose invoke gave up before a runtime took them.
    abandoned: Mutex<HashSet<String>>,
    journal: Mutex<Vec<String>>,
    init_errors: Mutex<Vec<InitError>>,
    counter: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere in the test must not hide the journal.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn note(&self, text: String) {
        let t = self.started.elapsed().as_secs_f64();
        lock(&self.journal).push(format!("{t:8.3}s {text}"));
    }

    async fn next_pending(&self) -> Pending {
        loop {
            if let Some(p) = lock(&self.queue).pop_front() {
                return p;
            }
            // A periodic re-check makes a lost wake-up harmless.
            let _ = tokio::time::timeout(Duration::from_millis(100), self.notify.notified()).await;
        }
    }
}

/// The local Runtime API of one function; every runtime (execution environment) of the
/// function polls the same address.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl RuntimeApi {
    /// Starts the API on a free loopback port.
    pub async fn start(config: FunctionConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            started: Instant::now(),
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            inflight: Mutex::new(HashMap::new()),
            finished: Mutex::new(HashSet::new()),
            abandoned: Mutex::new(HashSet::new()),
            journal: Mutex::new(Vec::new()),
            init_errors: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
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
                    if let Err(e) = serve_connection(&s, stream).await {
                        s.note(format!("connection error: {e}"));
                    }
                });
                // Reap finished connections so the set does not grow.
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The function's configuration.
    pub fn config(&self) -> &FunctionConfig {
        &self.shared.config
    }

    /// Invokes the function synchronously with `payload` (an event as JSON bytes).
    pub async fn invoke(&self, payload: Vec<u8>) -> Invoked {
        let start = Instant::now();
        let n = self.shared.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let request_id = format!("e2e0{:04x}-0000-4000-8000-{n:012x}", self.addr.port());
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let trace_id = format!("Root=1-{epoch:08x}-{n:024x};Parent={n:016x};Sampled=0");
        let (picked_tx, picked_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        self.shared.note(format!(
            "invoke {request_id} queued ({} bytes)",
            payload.len()
        ));
        lock(&self.shared.queue).push_back(Pending {
            request_id: request_id.clone(),
            trace_id,
            payload: Arc::new(payload),
            picked: picked_tx,
            done: done_tx,
        });
        self.shared.notify.notify_one();

        let config = &self.shared.config;
        let outcome = match tokio::time::timeout(config.pickup_timeout, picked_rx).await {
            Ok(Ok(())) => match tokio::time::timeout(config.timeout, done_rx).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) | Err(_) => {
                    lock(&self.shared.inflight).remove(&request_id);
                    lock(&self.shared.finished).insert(request_id.clone());
                    self.shared.note(format!("invoke {request_id} timed out"));
                    Outcome::TimedOut
                }
            },
            Ok(Err(_)) | Err(_) => {
                lock(&self.shared.abandoned).insert(request_id.clone());
                lock(&self.shared.finished).insert(request_id.clone());
                self.shared
                    .note(format!("invoke {request_id}: no runtime took it"));
                Outcome::NotPickedUp
            }
        };
        Invoked {
            request_id,
            outcome,
            duration: start.elapsed(),
        }
    }

    /// Errors posted to `/runtime/init/error`.
    pub fn init_errors(&self) -> Vec<InitError> {
        lock(&self.shared.init_errors).clone()
    }

    /// Every exchange so far, one line each.
    pub fn journal(&self) -> Vec<String> {
        lock(&self.shared.journal).clone()
    }
}

fn error_doc(error_type: &str, message: &str) -> Vec<u8> {
    serde_json::json!({"errorType": error_type, "errorMessage": message})
        .to_string()
        .into_bytes()
}

const PREFIX: &str = "/2018-06-01/runtime/";

async fn serve_connection(shared: &Arc<Shared>, stream: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    while let Some(req) = read_request(&mut read, &mut write).await? {
        let close = req.wants_close();
        let path = req.path().to_owned();
        let rest = path.strip_prefix(PREFIX).unwrap_or_default();
        let segments: Vec<&str> = rest.split('/').collect();
        match (req.method.as_str(), segments.as_slice()) {
            ("GET", ["invocation", "next"]) => {
                // Long poll; give up when the runtime hangs up while waiting.
                let pending = loop {
                    let pending = tokio::select! {
                        p = shared.next_pending() => p,
                        closed = read.fill_buf() => {
                            let _ = closed;
                            return Ok(());
                        }
                    };
                    if lock(&shared.abandoned).remove(&pending.request_id) {
                        shared.note(format!("dropped abandoned {}", pending.request_id));
                        continue;
                    }
                    break pending;
                };
                deliver(shared, &mut write, pending, close).await?;
            }
            ("POST", ["invocation", id, kind @ ("response" | "error")]) => {
                let (status, body) = answer(shared, id, kind, &req);
                write_response(&mut write, status, &json_headers(), &body, close).await?;
            }
            ("POST", ["init", "error"]) => {
                let error = InitError {
                    header_type: req
                        .header("lambda-runtime-function-error-type")
                        .map(str::to_owned),
                    body: String::from_utf8_lossy(&req.body).into_owned(),
                };
                shared.note(format!("init/error {:?} {}", error.header_type, error.body));
                lock(&shared.init_errors).push(error);
                let body = br#"{"status":"OK"}"#;
                write_response(&mut write, 202, &json_headers(), body, close).await?;
            }
            _ => {
                shared.note(format!("unknown request {} {}", req.method, req.target));
                let body = error_doc(
                    "InvalidRequest",
                    &format!("no such resource {} {}", req.method, req.target),
                );
                write_response(&mut write, 404, &json_headers(), &body, close).await?;
            }
        }
        if close {
            break;
        }
    }
    Ok(())
}

async fn deliver(
    shared: &Arc<Shared>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    pending: Pending,
    close: bool,
) -> std::io::Result<()> {
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(shared.config.timeout)
        .as_millis();
    let mut headers = json_headers();
    headers.extend([
        (
            "lambda-runtime-aws-request-id".into(),
            pending.request_id.clone(),
        ),
        ("lambda-runtime-deadline-ms".into(), deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn".into(),
            shared.config.arn(),
        ),
        ("lambda-runtime-trace-id".into(), pending.trace_id.clone()),
    ]);
    // Registered before writing: a fast runtime may answer before `write_response` returns.
    lock(&shared.inflight).insert(pending.request_id.clone(), pending.done);
    match write_response(write, 200, &headers, &pending.payload, close).await {
        Ok(()) => {
            shared.note(format!("next -> {}", pending.request_id));
            let _ = pending.picked.send(());
            Ok(())
        }
        Err(e) => {
            // The runtime went away: put the event back for another one.
            let done = lock(&shared.inflight).remove(&pending.request_id);
            if let Some(done) = done {
                shared.note(format!(
                    "next -> {} failed ({e}); requeued",
                    pending.request_id
                ));
                lock(&shared.queue).push_front(Pending { done, ..pending });
                shared.notify.notify_one();
            }
            Err(e)
        }
    }
}

fn answer(shared: &Arc<Shared>, id: &str, kind: &str, req: &Request) -> (u16, Vec<u8>) {
    let Some(done) = lock(&shared.inflight).remove(id) else {
        let known = lock(&shared.finished).contains(id);
        shared.note(format!(
            "{kind} for {} id {id}",
            if known { "finished" } else { "unknown" }
        ));
        return if known {
            (
                410,
                error_doc("InvocationGone", "the invocation already ended"),
            )
        } else {
            (400, error_doc("InvalidRequestID", "invalid request id"))
        };
    };
    lock(&shared.finished).insert(id.to_owned());
    let header_type = req
        .header("lambda-runtime-function-error-type")
        .map(str::to_owned);
    if kind == "response" && req.body.len() > MAX_RESPONSE_BYTES {
        shared.note(format!(
            "response {id}: {} bytes, too large",
            req.body.len()
        ));
        let doc = error_doc(
            "Function.ResponseSizeTooLarge",
            &format!(
                "response payload size ({} bytes) exceeded the maximum allowed ({MAX_RESPONSE_BYTES} bytes)",
                req.body.len()
            ),
        );
        let _ = done.send(Outcome::Error {
            error_type: "Function.ResponseSizeTooLarge".into(),
            header_type,
            body: doc.clone(),
        });
        return (413, doc);
    }
    let outcome = if kind == "response" {
        shared.note(format!("response {id} ({} bytes)", req.body.len()));
        Outcome::Response(req.body.clone())
    } else {
        let error_type = serde_json::from_slice::<serde_json::Value>(&req.body)
            .ok()
            .and_then(|v| v.get("errorType")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| "Unhandled".into());
        shared.note(format!(
            "error {id} {error_type}: {}",
            String::from_utf8_lossy(&req.body)
        ));
        Outcome::Error {
            error_type,
            header_type,
            body: req.body.clone(),
        }
    };
    let _ = done.send(outcome);
    (202, br#"{"status":"OK"}"#.to_vec())
}
