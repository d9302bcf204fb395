//! Fluentd / Fluent Bit delivery over the forward protocol v1 (TCP, optional TLS).
//!
//! Events are grouped by tag into chunks (Forward, PackedForward or CompressedPackedForward
//! mode) carrying the `chunk` option; each chunk waits for the server's `{"ack": chunk}`. A chunk that is not
//! acknowledged is resent, with the same chunk id, on a new connection (at-least-once),
//! up to the configured attempts; what is still unacknowledged is reported as failed.

pub mod destination;
pub mod msgpack;
mod wire;

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub use destination::{
    EventTimeMode, FluentDestination, FluentDestinationBuilder, FluentDestinationConfig,
};
pub use msgpack::json_to_msgpack;
#[doc(hidden)]
pub use wire::fuzz_server_bytes;
pub use wire::{FluentAuth, sha512_hex};

/// One event to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluentEvent<'a> {
    /// The caller's reference (e.g. position in the batch); outcomes are reported under it.
    pub key: usize,
    /// The tag, normally [`tag_for`]`(log_type, fluent_tag)`.
    pub tag: String,
    /// The record's timestamp, sent as EventTime.
    pub time: DateTime<Utc>,
    /// The record's original JSON (an object).
    pub record_json: &'a [u8],
}

/// The tag of the original module: `{log_type}.{fluent_tag}`.
pub fn tag_for(log_type: &str, fluent_tag: &str) -> String {
    format!("{log_type}.{fluent_tag}")
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FluentOutcome {
    /// The server acknowledged its chunk (or, without acks, the chunk was written).
    Delivered,
    /// Cannot be sent at all (not a JSON object, timestamp outside EventTime): dead letter.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Still unacknowledged after all attempts: the caller should retry the batch.
    Failed {
        /// The last failure seen.
        reason: String,
    },
}

/// How events are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ForwardMode {
    /// `[tag, [[time, record], ...], options]`.
    Forward,
    /// `[tag, bin(concatenated [time, record] entries), options]` (Fluent Bit's default).
    #[default]
    PackedForward,
    /// PackedForward with the entries gzipped (at [`FluentConfig::gzip_level`]) and the
    /// option `"compressed": "gzip"`: fewer bytes on the wire for some CPU. Fluentd's
    /// `in_forward` and Fluent Bit's `forward` input read it; a server that does not close
    /// the connection (Fluentd) or refuses the chunk (Fluent Bit) and it is resent until the
    /// attempts run out.
    CompressedPackedForward,
}

/// How a record is represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum RecordFormat {
    /// The JSON object as a msgpack map.
    #[default]
    Object,
    /// `{"message": <the JSON text>}`, as the original module sent it.
    MessageText,
}

/// Forward client settings. Deserializable; missing fields take defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FluentConfig {
    /// Server host (default `localhost`).
    pub host: String,
    /// Server port (default 24224).
    pub port: u16,
    /// Framing (default PackedForward).
    pub mode: ForwardMode,
    /// Record representation (default Object).
    pub record_format: RecordFormat,
    /// Ask for and wait for acks (default true; false gives at-most-once).
    pub require_ack: bool,
    /// Wait for an ack or handshake message, in milliseconds (default 30 000).
    pub ack_timeout_ms: u64,
    /// Connect timeout in milliseconds (default 5 000).
    pub connect_timeout_ms: u64,
    /// Write timeout per chunk in milliseconds (default 30 000).
    pub write_timeout_ms: u64,
    /// Connection attempts per delivery, the first included (default 5). Each unacknowledged
    /// chunk is resent on the next connection.
    pub max_attempts: u32,
    /// Backoff before the second attempt in milliseconds (default 200); doubles, with jitter.
    pub initial_backoff_ms: u64,
    /// Upper bound of one backoff in milliseconds (default 10 000).
    pub max_backoff_ms: u64,
    /// Most events per chunk (default 1 000).
    pub max_chunk_events: usize,
    /// Most entry bytes per chunk, before compression (default 4 MiB).
    pub max_chunk_bytes: usize,
    /// gzip level of [`ForwardMode::CompressedPackedForward`] entries, 1 to 12 (default 1;
    /// above 9 counts as 9 without the `libdeflate` feature). On log lines level 1 makes
    /// entries about a quarter of their size at three to four times the speed of level 6
    /// (zlib's default, which Fluentd and Fluent Bit use), whose output is a fifth smaller
    /// still: CPU is most of a Lambda function's bill.
    pub gzip_level: u32,
    /// Connect with TLS (needs the `fluent-tls` feature).
    pub tls: bool,
    /// Name to verify the server certificate against (default: `host`).
    pub tls_server_name: Option<String>,
    /// Shared-key handshake credentials, when the server has `<security>`.
    pub auth: Option<FluentAuth>,
}

impl Default for FluentConfig {
    fn default() -> Self {
        Self {
            host: "localhost".to_owned(),
            port: 24224,
            mode: ForwardMode::default(),
            record_format: RecordFormat::default(),
            require_ack: true,
            ack_timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
            write_timeout_ms: 30_000,
            max_attempts: 5,
            initial_backoff_ms: 200,
            max_backoff_ms: 10_000,
            max_chunk_events: 1_000,
            max_chunk_bytes: 4 * 1024 * 1024,
            gzip_level: 1,
            tls: false,
            tls_server_name: None,
            auth: None,
        }
    }
}

/// Why a forward client could not be created or a connection failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FluentError {
    /// Invalid configuration.
    #[error("fluent config: {0}")]
    Config(String),
    /// A step of talking to the server failed.
    #[error("fluent {step} to {addr}: {message}")]
    Io {
        /// The step: connect, TLS, handshake, send, ack.
        step: &'static str,
        /// `host:port`.
        addr: String,
        /// What went wrong.
        message: String,
    },
}

/// The outcome of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FluentReport {
    /// One outcome per input event, in input order, by key.
    pub outcomes: Vec<(usize, FluentOutcome)>,
    /// Connections opened by this delivery (a kept connection reused is not counted).
    pub connections: usize,
    /// Chunk messages written (resends included).
    pub chunks_sent: usize,
    /// Bytes of those messages: what went over the wire, compressed entries as compressed
    /// (the TLS and handshake overhead aside).
    pub bytes_sent: usize,
}

impl FluentReport {
    /// How many events were delivered.
    pub fn delivered(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|(_, o)| matches!(o, FluentOutcome::Delivered))
            .count()
    }
}

/// One forward message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluentChunk {
    /// The `chunk` option (base64 of 128 random bits); empty without acks.
    pub id: String,
    /// The whole msgpack message.
    pub message: Vec<u8>,
    /// Keys of the events it carries.
    pub keys: Vec<usize>,
}

/// Chunks for a batch, plus events that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodedChunks {
    /// Messages to send.
    pub chunks: Vec<FluentChunk>,
    /// Events that cannot be sent, by key, with the reason.
    pub rejected: Vec<(usize, String)>,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An open connection and the bytes read from it but not consumed yet.
type Connection = (Box<dyn Stream>, Vec<u8>);

/// A forward-protocol client.
///
/// With acks it keeps one connection open between deliveries (a warm Lambda reuses it); clones share
/// it, and concurrent deliveries through one client take turns. A kept connection the server
/// has closed is replaced without costing an attempt.
#[derive(Clone)]
pub struct FluentClient {
    config: FluentConfig,
    idle: std::sync::Arc<tokio::sync::Mutex<Option<Connection>>>,
    #[cfg(feature = "fluent-tls")]
    tls: Option<(
        tokio_rustls::TlsConnector,
        tokio_rustls::rustls::pki_types::ServerName<'static>,
    )>,
}

impl std::fmt::Debug for FluentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FluentClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FluentClient {
    /// A client for `config`. With `tls`, server certificates are verified against the
    /// Mozilla roots (`webpki-roots`); use `with_tls_config` (`fluent-tls`) for others.
    pub fn new(config: FluentConfig) -> Result<Self, FluentError> {
        check_config(&config)?;
        if config.tls {
            #[cfg(feature = "fluent-tls")]
            {
                let roots = tokio_rustls::rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                let tls = tls_client_config(roots)?;
                return Self::with_tls_config(config, std::sync::Arc::new(tls));
            }
            #[cfg(not(feature = "fluent-tls"))]
            return Err(FluentError::Config(
                "tls requires the `fluent-tls` cargo feature".to_owned(),
            ));
        }
        Ok(Self {
            config,
            #[cfg(feature = "fluent-tls")]
            tls: None,
            idle: Default::default(),
        })
    }

    /// A TLS client with a caller-built rustls configuration (private CAs, client certs).
    #[cfg(feature = "fluent-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fluent-tls")))]
    pub fn with_tls_config(
        config: FluentConfig,
        tls: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    ) -> Result<Self, FluentError> {
        check_config(&config)?;
        let name = config
            .tls_server_name
            .clone()
            .unwrap_or_else(|| config.host.clone());
        let server_name = tokio_rustls::rustls::pki_types::ServerName::try_from(name.clone())
            .map_err(|e| FluentError::Config(format!("TLS server name {name:?}: {e}")))?;
        Ok(Self {
            config,
            tls: Some((tokio_rustls::TlsConnector::from(tls), server_name)),
            idle: Default::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FluentConfig {
        &self.config
    }

    /// Encodes `events` into forward messages: grouped by tag (first-appearance order, input
    /// order within a tag), bounded by event count and bytes.
    pub fn encode(&self, events: &[FluentEvent<'_>]) -> EncodedChunks {
        encode_chunks(&self.config, events)
    }

    /// Sends `events` and reports one outcome per event. Never loses an event: each ends
    /// Delivered, Rejected or Failed.
    pub async fn deliver(&self, events: &[FluentEvent<'_>]) -> FluentReport {
        let encoded = self.encode(events);
        let mut report = FluentReport::default();
        let mut outcome_by_key: std::collections::HashMap<usize, FluentOutcome> = encoded
            .rejected
            .into_iter()
            .map(|(k, reason)| (k, FluentOutcome::Rejected { reason }))
            .collect();
        let mut pending: std::collections::VecDeque<&FluentChunk> = encoded.chunks.iter().collect();
        let mut reason = String::new();
        let max_attempts = self.config.max_attempts.max(1);
        // One connection per client, kept between deliveries; deliveries take turns on it.
        let mut idle = self.idle.lock().await;
        let mut reused = idle.take();
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let (mut stream, mut buf) = match reused.take() {
                Some(conn) => conn,
                None => {
                    // A kept connection that turned out dead costs no attempt: the server
                    // may have closed it while idle.
                    attempt += 1;
                    if attempt > max_attempts {
                        break;
                    }
                    if attempt > 1 {
                        tokio::time::sleep(self.backoff(attempt - 1)).await;
                    }
                    match self.connect().await {
                        Ok(conn) => {
                            report.connections += 1;
                            conn
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, attempt, "fluent connection failed");
                            reason = e.to_string();
                            continue;
                        }
                    }
                }
            };
            let mut healthy = true;
            while let Some(chunk) = pending.front() {
                report.chunks_sent += 1;
                report.bytes_sent += chunk.message.len();
                match self.send_chunk(&mut stream, &mut buf, chunk).await {
                    Ok(()) => {
                        for &k in &chunk.keys {
                            outcome_by_key.insert(k, FluentOutcome::Delivered);
                        }
                        pending.pop_front();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "fluent chunk not acknowledged");
                        reason = e.to_string();
                        healthy = false;
                        break;
                    }
                }
            }
            // Without acks a dead kept connection would swallow the next chunk unnoticed.
            if healthy && self.config.require_ack {
                *idle = Some((stream, buf));
            }
        }
        if let Some(conn) = reused {
            *idle = Some(conn);
        }
        drop(idle);
        for chunk in pending {
            for &k in &chunk.keys {
                outcome_by_key.insert(
                    k,
                    FluentOutcome::Failed {
                        reason: reason.clone(),
                    },
                );
            }
        }
        report.outcomes =
            events
                .iter()
                .map(|e| {
                    let outcome = outcome_by_key.get(&e.key).cloned().unwrap_or_else(|| {
                        FluentOutcome::Failed {
                            reason: "not sent".to_owned(),
                        }
                    });
                    (e.key, outcome)
                })
                .collect();
        report
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .config
            .initial_backoff_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30));
        let full = exp.min(self.config.max_backoff_ms);
        let half = full / 2;
        Duration::from_millis(half + fastrand::u64(0..=full - half))
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.config.host, self.config.port)
    }

    fn io_error(&self, step: &'static str, message: impl Into<String>) -> FluentError {
        FluentError::Io {
            step,
            addr: self.addr(),
            message: message.into(),
        }
    }

    /// Opens a connection (TCP, TLS, handshake). The returned buffer holds bytes read past
    /// the handshake.
    async fn connect(&self) -> Result<Connection, FluentError> {
        let timeout = Duration::from_millis(self.config.connect_timeout_ms);
        let tcp = tokio::time::timeout(
            timeout,
            TcpStream::connect((self.config.host.as_str(), self.config.port)),
        )
        .await
        .map_err(|_| self.io_error("connect", format!("timed out after {timeout:?}")))?
        .map_err(|e| self.io_error("connect", e.to_string()))?;
        // Chunks are written whole; do not delay the last segment.
        tcp.set_nodelay(true)
            .map_err(|e| self.io_error("connect", e.to_string()))?;
        #[cfg(feature = "fluent-tls")]
        let mut stream: Box<dyn Stream> = match &self.tls {
            Some((connector, name)) => Box::new(
                tokio::time::timeout(timeout, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| self.io_error("TLS", "handshake timed out"))?
                    .map_err(|e| self.io_error("TLS", e.to_string()))?,
            ),
            None => Box::new(tcp),
        };
        #[cfg(not(feature = "fluent-tls"))]
        let mut stream: Box<dyn Stream> = Box::new(tcp);
        let mut buf = Vec::new();
        if let Some(auth) = &self.config.auth {
            let timeout = Duration::from_millis(self.config.ack_timeout_ms);
            wire::handshake(&mut stream, &mut buf, auth, timeout)
                .await
                .map_err(|e| self.io_error("handshake", e))?;
        }
        Ok((stream, buf))
    }

    async fn send_chunk(
        &self,
        stream: &mut Box<dyn Stream>,
        buf: &mut Vec<u8>,
        chunk: &FluentChunk,
    ) -> Result<(), FluentError> {
        let timeout = Duration::from_millis(self.config.write_timeout_ms);
        tokio::time::timeout(timeout, async {
            stream.write_all(&chunk.message).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| self.io_error("send", format!("timed out after {timeout:?}")))?
        .map_err(|e| self.io_error("send", e.to_string()))?;
        if !self.config.require_ack {
            return Ok(());
        }
        #[derive(Deserialize)]
        struct Ack {
            ack: String,
        }
        let timeout = Duration::from_millis(self.config.ack_timeout_ms);
        let ack: Ack = wire::read_message(stream, buf, timeout)
            .await
            .map_err(|e| self.io_error("ack", e))?;
        if ack.ack != chunk.id {
            return Err(self.io_error(
                "ack",
                format!("ack {:?} does not match chunk {:?}", ack.ack, chunk.id),
            ));
        }
        Ok(())
    }
}

/// Refuses settings no server could be sent with.
fn check_config(config: &FluentConfig) -> Result<(), FluentError> {
    if !(1..=12).contains(&config.gzip_level) {
        return Err(FluentError::Config(format!(
            "gzip_level {} is outside 1..=12",
            config.gzip_level
        )));
    }
    Ok(())
}

#[cfg(feature = "fluent-tls")]
fn tls_client_config(
    roots: tokio_rustls::rustls::RootCertStore,
) -> Result<tokio_rustls::rustls::ClientConfig, FluentError> {
    // Name the provider: with several rustls providers in the build graph the process
    // default is ambiguous.
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(
        tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| FluentError::Config(format!("TLS protocol versions: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Encodes one `[time, record]` entry into `buf`.
fn encode_entry(
    buf: &mut Vec<u8>,
    format: RecordFormat,
    event: &FluentEvent<'_>,
) -> Result<(), String> {
    let start = buf.len();
    buf.push(0x92);
    if msgpack::write_event_time(buf, event.time).is_none() {
        buf.truncate(start);
        return Err(format!(
            "timestamp {} is outside the EventTime range (1970..2106)",
            event.time
        ));
    }
    let first = event
        .record_json
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    if first != Some(b'{') {
        buf.truncate(start);
        return Err("record is not a JSON object".to_owned());
    }
    let result = match format {
        RecordFormat::Object => json_to_msgpack(event.record_json, buf)
            .map_err(|e| format!("record is not valid JSON: {e}")),
        RecordFormat::MessageText => match std::str::from_utf8(event.record_json) {
            Ok(text) => {
                buf.push(0x81);
                msgpack::write_str(buf, "message");
                msgpack::write_str(buf, text);
                Ok(())
            }
            Err(e) => Err(format!("record is not UTF-8: {e}")),
        },
    };
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

fn encode_chunks(config: &FluentConfig, events: &[FluentEvent<'_>]) -> EncodedChunks {
    let mut entries = Vec::with_capacity(events.iter().map(|e| e.record_json.len() + 16).sum());
    let mut spans = Vec::with_capacity(events.len());
    let mut rejected = Vec::new();
    // Tags in first-appearance order, each with the positions of its events.
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut group_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (pos, event) in events.iter().enumerate() {
        let start = entries.len();
        match encode_entry(&mut entries, config.record_format, event) {
            Ok(()) => {
                spans.push(start..entries.len());
                let idx = *group_of.entry(event.tag.as_str()).or_insert_with(|| {
                    groups.push((event.tag.as_str(), Vec::new()));
                    groups.len() - 1
                });
                groups[idx].1.push(pos);
            }
            Err(reason) => {
                spans.push(start..start);
                rejected.push((event.key, reason));
            }
        }
    }
    let max_events = config.max_chunk_events.max(1);
    let max_bytes = config.max_chunk_bytes.max(1);
    let mut chunks = Vec::new();
    for (tag, positions) in groups {
        let mut current: Vec<usize> = Vec::new();
        let mut bytes = 0usize;
        for pos in positions {
            let len = spans[pos].len();
            if !current.is_empty() && (current.len() >= max_events || bytes + len > max_bytes) {
                chunks.push(build_message(
                    config, tag, &current, &entries, &spans, events,
                ));
                current.clear();
                bytes = 0;
            }
            current.push(pos);
            bytes += len;
        }
        if !current.is_empty() {
            chunks.push(build_message(
                config, tag, &current, &entries, &spans, events,
            ));
        }
    }
    EncodedChunks { chunks, rejected }
}

fn build_message(
    config: &FluentConfig,
    tag: &str,
    positions: &[usize],
    entries: &[u8],
    spans: &[std::ops::Range<usize>],
    events: &[FluentEvent<'_>],
) -> FluentChunk {
    let entry_bytes: usize = positions.iter().map(|&p| spans[p].len()).sum();
    let id = if config.require_ack {
        base64::engine::general_purpose::STANDARD.encode(fastrand::u128(..).to_be_bytes())
    } else {
        String::new()
    };
    // Counts are bounded by max_chunk_events, itself far below u32::MAX in practice.
    let count = u32::try_from(positions.len()).unwrap_or(u32::MAX);
    let contiguous = match (positions.first(), positions.last()) {
        (Some(&a), Some(&b))
            if positions
                .windows(2)
                .all(|w| spans[w[0]].end == spans[w[1]].start) =>
        {
            Some(&entries[spans[a].start..spans[b].end])
        }
        _ => None,
    };
    let write_entries = |out: &mut Vec<u8>| match contiguous {
        Some(run) => out.extend_from_slice(run),
        None => {
            for &p in positions {
                out.extend_from_slice(&entries[spans[p].clone()]);
            }
        }
    };
    let compressed = if config.mode == ForwardMode::CompressedPackedForward {
        let gathered;
        let plain = match contiguous {
            Some(run) => run,
            None => {
                let mut all = Vec::with_capacity(entry_bytes);
                write_entries(&mut all);
                gathered = all;
                &gathered
            }
        };
        match crate::naming::gzip(plain, config.gzip_level) {
            Ok(gz) => Some(gz),
            Err(e) => {
                // Cannot happen with a checked level; PackedForward still delivers.
                tracing::warn!(error = %e, tag, "gzip of a forward chunk failed, sending it uncompressed");
                None
            }
        }
    } else {
        None
    };
    let body_len = compressed.as_ref().map_or(entry_bytes, Vec::len);
    let mut m = Vec::with_capacity(body_len + tag.len() + 64);
    msgpack::write_array_len(&mut m, 3);
    msgpack::write_str(&mut m, tag);
    match config.mode {
        ForwardMode::Forward => msgpack::write_array_len(&mut m, count),
        ForwardMode::PackedForward | ForwardMode::CompressedPackedForward => {
            msgpack::write_bin_len(&mut m, body_len);
        }
    }
    match &compressed {
        Some(gz) => m.extend_from_slice(gz),
        None => write_entries(&mut m),
    }
    let options = 1 + u32::from(config.require_ack) + u32::from(compressed.is_some());
    msgpack::write_map_len(&mut m, options);
    if config.require_ack {
        msgpack::write_str(&mut m, "chunk");
        msgpack::write_str(&mut m, &id);
    }
    msgpack::write_str(&mut m, "size");
    msgpack::write_u64(&mut m, u64::from(count));
    if compressed.is_some() {
        msgpack::write_str(&mut m, "compressed");
        msgpack::write_str(&mut m, "gzip");
    }
    FluentChunk {
        id,
        message: m,
        keys: positions.iter().map(|&p| events[p].key).collect(),
    }
}
