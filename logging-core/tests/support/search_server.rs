//! A local Elasticsearch-like HTTP/1.1 server: `_bulk` with programmable per-item and
//! whole-request answers, `_cat/indices?format=json`, `DELETE /a,b`. Binds 127.0.0.1:0.
//!
//! Like Elasticsearch, it inflates request bodies sent with `Content-Encoding: gzip` (or
//! `deflate`) and drops the connection unanswered when they do not inflate; it applies
//! `max_body` (`http.max_content_length`) to the inflated body; and it gzips its answers
//! for clients that send `Accept-Encoding: gzip` (`http.compression`, on by default).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use std::io::{Read, Write};

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
    /// The body as the server read it (inflated when it came compressed).
    pub body: Vec<u8>,
    /// The body as it came over the wire.
    pub wire_body: Vec<u8>,
    /// The answer's status; `None` when the connection was dropped unanswered.
    pub status: Option<u16>,
    /// The answer body's bytes on the wire, and whether it was gzipped.
    pub answer_bytes: usize,
    pub answer_gzip: bool,
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
            let wire_body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Some(Recorded {
                method,
                target,
                headers,
                body: Vec::new(),
                wire_body,
                status: None,
                answer_bytes: 0,
                answer_gzip: false,
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

/// Writes the answer, gzipped when asked for; returns its body's size on the wire.
async fn respond(
    stream: &mut TcpStream,
    status: u16,
    body: &str,
    gzip: bool,
) -> std::io::Result<usize> {
    let (encoding, body) = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(3));
        enc.write_all(body.as_bytes())?;
        ("content-encoding: gzip\r\n", enc.finish()?)
    } else {
        ("", body.as_bytes().to_vec())
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{encoding}content-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.flush().await?;
    Ok(body.len())
}

/// The body as the server reads it: inflated per `Content-Encoding` (gzip members, possibly
/// several, or zlib for `deflate`); `None` when it does not inflate. Unknown encodings are
/// passed on as they are, as Netty's decompressor does.
fn inflate(headers: &BTreeMap<String, String>, wire: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match headers
        .get("content-encoding")
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("gzip" | "x-gzip") => {
            flate2::read::MultiGzDecoder::new(wire)
                .read_to_end(&mut out)
                .ok()?;
        }
        Some("deflate") => {
            flate2::read::ZlibDecoder::new(wire)
                .read_to_end(&mut out)
                .ok()?;
        }
        _ => out = wire.to_vec(),
    }
    Some(out)
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    while let Some(mut req) = read_request(&mut stream, &mut buf).await {
        // Elasticsearch closes the connection on a body that does not inflate.
        let Some(body) = inflate(&req.headers, &req.wire_body) else {
            state.lock().unwrap().requests.push(req);
            return;
        };
        req.body = body;
        let answer = handle(&req, &state);
        req.status = answer.as_ref().map(|(status, _)| *status);
        req.answer_gzip = req
            .headers
            .get("accept-encoding")
            .is_some_and(|a| a.split(',').any(|e| e.trim() == "gzip"));
        match answer {
            Some((status, body)) => {
                match respond(&mut stream, status, &body, req.answer_gzip).await {
                    Ok(n) => {
                        req.answer_bytes = n;
                        state.lock().unwrap().requests.push(req);
                    }
                    Err(_) => {
                        state.lock().unwrap().requests.push(req);
                        return;
                    }
                }
            }
            None => {
                // reset: drop the connection unanswered
                state.lock().unwrap().requests.push(req);
                return;
            }
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
            let parse_error = |reason: String| {
                let error = serde_json::json!({"error": {
                    "root_cause": [{"type": "x_content_parse_exception", "reason": reason}],
                    "type": "x_content_parse_exception", "reason": reason}, "status": 400});
                Some((400, error.to_string()))
            };
            let Ok(text) = String::from_utf8(req.body.clone()) else {
                return parse_error("body is not UTF-8".to_owned());
            };
            let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
            let mut items = Vec::new();
            for pair in lines.chunks(2) {
                let (Ok(action), Some(Ok(source))) = (
                    serde_json::from_str::<serde_json::Value>(pair[0]),
                    pair.get(1)
                        .map(|l| serde_json::from_str::<serde_json::Value>(l)),
                ) else {
                    return parse_error(format!("malformed action/source pair {:?}", pair[0]));
                };
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
