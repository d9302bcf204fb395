//! A local Elasticsearch-like HTTP/1.1 server: `_bulk` with programmable per-item and
//! whole-request answers, `_cat/indices?format=json`, `DELETE /a,b`. Binds 127.0.0.1:0.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A whole-request answer for the next bulk request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whole {
    /// Answer this HTTP status with an error body.
    Status(u16),
    /// Close the connection without answering.
    Reset,
    /// Answer 200 with an `items` array one shorter than the actions.
    ShortItems,
    /// Answer 200 with an HTML page (a proxy's error page).
    Html,
}

/// A request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Lowercase names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The answer's status; `None` when the connection was dropped unanswered.
    pub status: Option<u16>,
}

#[derive(Default)]
pub struct State {
    /// (index, _id or generated) -> source
    pub docs: BTreeMap<(String, String), serde_json::Value>,
    /// Every (index, id, source) indexed, duplicates included, in order.
    pub index_log: Vec<(String, Option<String>, serde_json::Value)>,
    /// Indices that exist without documents (seeded for retention).
    pub indices: std::collections::BTreeSet<String>,
    /// Statuses per `_id`, consumed one per attempt; 201 once exhausted.
    pub item_script: HashMap<String, VecDeque<u16>>,
    /// Whole-request answers for the next bulk requests.
    pub whole: VecDeque<Whole>,
    /// Bulk bodies larger than this are answered 413.
    pub max_body: Option<usize>,
    /// Fail every DELETE whose target contains this string with 500.
    pub fail_delete_containing: Option<String>,
    pub requests: Vec<Recorded>,
    next_auto_id: u64,
}

pub struct SearchServer {
    pub addr: std::net::SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl SearchServer {
    pub async fn start() -> SearchServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, st.clone()));
            }
        });
        SearchServer { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut first = lines.next()?.split(' ');
            let method = first.next()?.to_owned();
            let target = first.next()?.to_owned();
            let headers: BTreeMap<String, String> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 65536];
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Some(Recorded {
                method,
                target,
                headers,
                body,
                status: None,
            });
        }
        let mut chunk = [0u8; 65536];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    while let Some(mut req) = read_request(&mut stream, &mut buf).await {
        let answer = handle(&req, &state);
        req.status = answer.as_ref().map(|(status, _)| *status);
        state.lock().unwrap().requests.push(req);
        match answer {
            Some((status, body)) => {
                if respond(&mut stream, status, &body).await.is_err() {
                    return;
                }
            }
            None => return, // reset: drop the connection unanswered
        }
    }
}

fn handle(req: &Recorded, state: &Arc<Mutex<State>>) -> Option<(u16, String)> {
    let mut st = state.lock().unwrap();
    let path = req.target.split('?').next().unwrap_or("");
    match (req.method.as_str(), path) {
        ("POST", "/_bulk") => {
            let whole = st.whole.pop_front();
            match whole {
                Some(Whole::Status(s)) => {
                    return Some((s, format!(r#"{{"error":"scripted {s}","status":{s}}}"#)));
                }
                Some(Whole::Reset) => return None,
                Some(Whole::Html) => return Some((200, "<html>bad gateway</html>".to_owned())),
                _ => {}
            }
            if st.max_body.is_some_and(|m| req.body.len() > m) {
                return Some((413, r#"{"error":"Request Entity Too Large"}"#.to_owned()));
            }
            let text = String::from_utf8(req.body.clone()).unwrap();
            let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
            let mut items = Vec::new();
            for pair in lines.chunks(2) {
                let action: serde_json::Value = serde_json::from_str(pair[0]).unwrap();
                let source: serde_json::Value = serde_json::from_str(pair[1]).unwrap();
                let meta = &action["index"];
                let index = meta["_index"].as_str().unwrap().to_owned();
                let id = meta["_id"].as_str().map(str::to_owned);
                let status = id
                    .as_ref()
                    .and_then(|id| st.item_script.get_mut(id))
                    .and_then(|q| q.pop_front())
                    .unwrap_or(201);
                let item = match status {
                    200 | 201 => {
                        let key = id.clone().unwrap_or_else(|| {
                            st.next_auto_id += 1;
                            format!("auto-{}", st.next_auto_id)
                        });
                        st.indices.insert(index.clone());
                        st.docs.insert((index.clone(), key.clone()), source.clone());
                        st.index_log.push((index.clone(), id.clone(), source));
                        serde_json::json!({"index": {"_index": index, "_id": key, "status": 201, "result": "created"}})
                    }
                    400 => serde_json::json!({"index": {"_index": index, "status": 400,
                        "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [n] of type [long]"}}}),
                    429 => serde_json::json!({"index": {"_index": index, "status": 429,
                        "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}}),
                    s => serde_json::json!({"index": {"_index": index, "status": s,
                        "error": {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}}}),
                };
                items.push(item);
            }
            if whole == Some(Whole::ShortItems) {
                items.pop();
            }
            let errors = items
                .iter()
                .any(|i| i["index"]["status"].as_u64() != Some(201));
            Some((
                200,
                serde_json::json!({"took": 1, "errors": errors, "items": items}).to_string(),
            ))
        }
        ("GET", "/_cat/indices") => {
            let rows: Vec<_> = st
                .indices
                .iter()
                .map(|i| serde_json::json!({"index": i}))
                .collect();
            Some((200, serde_json::Value::from(rows).to_string()))
        }
        ("DELETE", p) => {
            if st
                .fail_delete_containing
                .as_ref()
                .is_some_and(|s| p.contains(s.as_str()))
            {
                return Some((500, r#"{"error":"scripted delete failure"}"#.to_owned()));
            }
            for name in p.trim_start_matches('/').split(',') {
                st.indices.remove(name);
                st.docs.retain(|(i, _), _| i != name);
            }
            Some((200, r#"{"acknowledged":true}"#.to_owned()))
        }
        _ => Some((404, r#"{"error":"not found"}"#.to_owned())),
    }
}
