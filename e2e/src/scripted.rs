//! A scripted function: a minimal runtime that polls a Runtime API over HTTP, as a custom
//! runtime does, and answers each event with a closure. It tests the Runtime API and the
//! mapping simulator with answers a real function would rarely give (errors on demand,
//! malformed batch responses).

use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

/// What the script answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// POST `/response` with this body.
    Response(Vec<u8>),
    /// POST `/error` with an error document of this type and message.
    Error(String, String),
    /// Do not answer (the invocation times out).
    Silence,
}

/// One event as the runtime received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `Lambda-Runtime-*` headers and the content type (lowercase names).
    pub headers: Vec<(String, String)>,
    /// The event.
    pub body: Vec<u8>,
}

impl Received {
    /// A header by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running scripted runtime; stops when dropped.
pub struct ScriptedRuntime {
    task: JoinHandle<()>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Drop for ScriptedRuntime {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedRuntime {
    /// Polls `http://{address}` and answers each event with `script`.
    pub fn start<F>(address: &str, script: F) -> Self
    where
        F: Fn(&Received) -> Reply + Send + 'static,
    {
        let base = format!("http://{address}/2018-06-01/runtime");
        let received = Arc::new(Mutex::new(Vec::new()));
        let seen = received.clone();
        let task = tokio::spawn(async move {
            let client = match reqwest::Client::builder().no_proxy().build() {
                Ok(c) => c,
                Err(_) => return,
            };
            loop {
                let Ok(next) = client.get(format!("{base}/invocation/next")).send().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let headers: Vec<(String, String)> = next
                    .headers()
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                let Ok(body) = next.bytes().await else {
                    continue;
                };
                let event = Received {
                    headers,
                    body: body.to_vec(),
                };
                let id = event
                    .header("lambda-runtime-aws-request-id")
                    .unwrap_or_default()
                    .to_owned();
                let reply = script(&event);
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(event);
                let request = match reply {
                    Reply::Response(body) => client
                        .post(format!("{base}/invocation/{id}/response"))
                        .body(body),
                    Reply::Error(error_type, message) => client
                        .post(format!("{base}/invocation/{id}/error"))
                        .header("lambda-runtime-function-error-type", "Unhandled")
                        .body(
                            serde_json::json!({"errorType": error_type, "errorMessage": message})
                                .to_string(),
                        ),
                    Reply::Silence => continue,
                };
                let _ = request.send().await;
            }
        });
        Self { task, received }
    }

    /// Every event received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
