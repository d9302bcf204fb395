//! A local forward-protocol v1 server: decodes Message, Forward, PackedForward and
//! CompressedPackedForward modes with its own msgpack reader (gzip entries inflated by
//! flate2, several members allowed), acks `chunk`, optional HELO/PING/PONG, scripted failures.
//! Binds 127.0.0.1:0.
//!
//! Its failure answers are Fluentd's `in_forward`'s: a message it cannot read (broken
//! msgpack, entries that do not inflate, an unknown `compressed` value) closes the connection
//! without an ack; a message larger than `chunk_size_limit` is dropped without an ack, the
//! connection kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use logging_core::fluent::sha512_hex;
use std::io::Read;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// A decoded msgpack value.
#[derive(Debug, Clone, PartialEq)]
pub enum Mp {
    Nil,
    Bool(bool),
    UInt(u64),
    Int(i64),
    F64(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Mp>),
    Map(Vec<(Mp, Mp)>),
    Ext(i8, Vec<u8>),
}

impl Mp {
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as V;
        match self {
            Mp::Nil => V::Null,
            Mp::Bool(b) => V::Bool(*b),
            Mp::UInt(u) => V::from(*u),
            Mp::Int(i) => V::from(*i),
            Mp::F64(f) => V::from(*f),
            Mp::Str(s) => V::String(s.clone()),
            Mp::Bin(b) => V::from(b.clone()),
            Mp::Array(a) => V::Array(a.iter().map(Mp::to_json).collect()),
            Mp::Map(m) => V::Object(
                m.iter()
                    .map(|(k, v)| match k {
                        Mp::Str(s) => (s.clone(), v.to_json()),
                        other => (format!("{other:?}"), v.to_json()),
                    })
                    .collect(),
            ),
            Mp::Ext(t, d) => serde_json::json!({"ext": t, "data": d}),
        }
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            Mp::Str(s) => Some(s),
            _ => None,
        }
    }
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Mp::Str(s) => Some(s.as_bytes()),
            Mp::Bin(b) => Some(b),
            _ => None,
        }
    }
    fn get(&self, key: &str) -> Option<&Mp> {
        match self {
            Mp::Map(m) => m
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Decoding error: `None` = need more bytes.
type DecResult<T> = Result<T, Option<String>>;

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> DecResult<&[u8]> {
        if self.pos + n > self.b.len() {
            return Err(None);
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn uint(&mut self, n: usize) -> DecResult<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, &b| (a << 8) | u64::from(b)))
    }
    fn str(&mut self, n: usize) -> DecResult<Mp> {
        let s = self.take(n)?;
        Ok(Mp::Str(
            String::from_utf8(s.to_vec()).map_err(|e| Some(e.to_string()))?,
        ))
    }
    fn array(&mut self, n: usize) -> DecResult<Mp> {
        (0..n)
            .map(|_| self.value())
            .collect::<DecResult<_>>()
            .map(Mp::Array)
    }
    fn map(&mut self, n: usize) -> DecResult<Mp> {
        (0..n)
            .map(|_| Ok((self.value()?, self.value()?)))
            .collect::<DecResult<_>>()
            .map(Mp::Map)
    }
    fn ext(&mut self, n: usize) -> DecResult<Mp> {
        let t = self.take(1)?[0] as i8;
        Ok(Mp::Ext(t, self.take(n)?.to_vec()))
    }
    fn value(&mut self) -> DecResult<Mp> {
        let m = self.take(1)?[0];
        Ok(match m {
            0x00..=0x7f => Mp::UInt(u64::from(m)),
            0x80..=0x8f => self.map(usize::from(m & 0x0f))?,
            0x90..=0x9f => self.array(usize::from(m & 0x0f))?,
            0xa0..=0xbf => self.str(usize::from(m & 0x1f))?,
            0xc0 => Mp::Nil,
            0xc2 => Mp::Bool(false),
            0xc3 => Mp::Bool(true),
            0xc4..=0xc6 => {
                let n = self.uint(1 << (m - 0xc4))? as usize;
                Mp::Bin(self.take(n)?.to_vec())
            }
            0xc7..=0xc9 => {
                let n = self.uint(1 << (m - 0xc7))? as usize;
                self.ext(n)?
            }
            0xca => Mp::F64(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => Mp::F64(f64::from_bits(self.uint(8)?)),
            0xcc..=0xcf => Mp::UInt(self.uint(1 << (m - 0xcc))?),
            0xd0 => Mp::Int(i64::from(self.uint(1)? as u8 as i8)),
            0xd1 => Mp::Int(i64::from(self.uint(2)? as u16 as i16)),
            0xd2 => Mp::Int(i64::from(self.uint(4)? as u32 as i32)),
            0xd3 => Mp::Int(self.uint(8)? as i64),
            0xd4..=0xd8 => self.ext(1 << (m - 0xd4))?,
            0xd9..=0xdb => {
                let n = self.uint(1 << (m - 0xd9))? as usize;
                self.str(n)?
            }
            0xdc | 0xdd => {
                let n = self.uint(if m == 0xdc { 2 } else { 4 })? as usize;
                self.array(n)?
            }
            0xde | 0xdf => {
                let n = self.uint(if m == 0xde { 2 } else { 4 })? as usize;
                self.map(n)?
            }
            0xe0..=0xff => Mp::Int(i64::from(m as i8)),
            0xc1 => return Err(Some("reserved marker 0xc1".into())),
        })
    }
}

/// Decodes one value from the front of `b`: `Ok(Some((value, used)))`, `Ok(None)` if
/// incomplete.
pub fn decode(b: &[u8]) -> Result<Option<(Mp, usize)>, String> {
    let mut r = Reader { b, pos: 0 };
    match r.value() {
        Ok(v) => Ok(Some((v, r.pos))),
        Err(None) => Ok(None),
        Err(Some(e)) => Err(e),
    }
}

/// One received event.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub tag: String,
    pub secs: u32,
    pub nanos: u32,
    pub record: serde_json::Value,
    pub chunk: Option<String>,
    /// "message", "forward", "packed" or "compressed".
    pub mode: &'static str,
}

/// What to do with the next received chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Record it but close the connection instead of acking.
    NoAck,
    /// Close the connection after reading some bytes of it, recording nothing.
    DropMidChunk,
    /// Record it and answer an ack with a wrong chunk id.
    WrongAck,
    /// Record and ack it, then close the connection (an idle timeout on the server).
    AckThenClose,
}

#[derive(Default)]
pub struct FluentState {
    pub events: Vec<Received>,
    pub faults: VecDeque<Fault>,
    pub connections: usize,
    pub handshakes_ok: usize,
    pub handshakes_failed: usize,
    /// Bytes of the chunk messages read (handshakes aside), as on the wire.
    pub bytes_received: usize,
    /// Messages larger than this many bytes are dropped without an ack (`chunk_size_limit`).
    pub chunk_size_limit: Option<usize>,
    /// Messages dropped for `chunk_size_limit`.
    pub oversized: usize,
    /// Messages that could not be read, each of which closed its connection.
    pub broken: Vec<String>,
    /// Read `compressed` entries as plain PackedForward, as a server without
    /// CompressedPackedForward does.
    pub no_compression: bool,
}

pub struct FluentServer {
    pub port: u16,
    pub state: Arc<Mutex<FluentState>>,
}

#[derive(Clone)]
struct Security {
    shared_key: String,
    hostname: String,
    user: Option<(String, String)>,
}

impl FluentServer {
    pub async fn start(shared_key: Option<&str>) -> FluentServer {
        Self::start_with(shared_key, None).await
    }

    pub async fn start_with(shared_key: Option<&str>, user: Option<(&str, &str)>) -> FluentServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(FluentState::default()));
        let security = shared_key.map(|k| Security {
            shared_key: k.to_owned(),
            hostname: "test-server".to_owned(),
            user: user.map(|(u, p)| (u.to_owned(), p.to_owned())),
        });
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                st.lock().unwrap().connections += 1;
                tokio::spawn(serve(stream, st.clone(), security.clone()));
            }
        });
        FluentServer { port, state }
    }

    /// A server speaking TLS with the fixture certificate for `localhost` / 127.0.0.1.
    #[cfg(feature = "fluent-tls")]
    pub async fn start_tls() -> FluentServer {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let cert = CertificateDer::from(include_bytes!("tls/cert.der").to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            include_bytes!("tls/key.der").to_vec(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(FluentState::default()));
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                st.lock().unwrap().connections += 1;
                let acceptor = acceptor.clone();
                let st = st.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        serve(tls, st, None).await;
                    }
                });
            }
        });
        FluentServer { port, state }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, FluentState> {
        self.state.lock().unwrap()
    }
}

async fn read_value<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Option<Mp> {
    read_sized(stream, buf).await.map(|(v, _)| v)
}

/// The next message and its size on the wire.
async fn read_sized<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Option<(Mp, usize)> {
    loop {
        match decode(buf) {
            Ok(Some((v, used))) => {
                buf.drain(..used);
                return Some((v, used));
            }
            Ok(None) => {}
            Err(_) => return None,
        }
        let mut chunk = [0u8; 65536];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn pack(v: &impl serde::Serialize) -> Vec<u8> {
    rmp_serde::to_vec(v).unwrap()
}

async fn server_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    sec: &Security,
) -> bool {
    let nonce = b"nonce-0123456789".to_vec();
    let auth_salt = if sec.user.is_some() {
        b"user-salt".to_vec()
    } else {
        Vec::new()
    };
    let mut helo = Vec::new();
    // ["HELO", {"nonce": bin, "auth": bin, "keepalive": true}]
    helo.extend_from_slice(&[0x92, 0xa4]);
    helo.extend_from_slice(b"HELO");
    helo.push(0x83);
    helo.extend_from_slice(&pack(&"nonce"));
    helo.extend_from_slice(&[0xc4, nonce.len() as u8]);
    helo.extend_from_slice(&nonce);
    helo.extend_from_slice(&pack(&"auth"));
    helo.extend_from_slice(&[0xc4, auth_salt.len() as u8]);
    helo.extend_from_slice(&auth_salt);
    helo.extend_from_slice(&pack(&"keepalive"));
    helo.push(0xc3);
    if stream.write_all(&helo).await.is_err() {
        return false;
    }
    let Some(Mp::Array(ping)) = read_value(stream, buf).await else {
        return false;
    };
    let field = |i: usize| ping.get(i).and_then(Mp::bytes).unwrap_or_default().to_vec();
    let (hostname, salt, digest, user, pass_digest) =
        (field(1), field(2), field(3), field(4), field(5));
    let expected = sha512_hex(&[&salt, &hostname, &nonce, sec.shared_key.as_bytes()]);
    // A "lenient:" key accepts any PING: a misconfigured or impostor server, which the
    // client must detect from the PONG digest.
    let lenient = sec.shared_key.starts_with("lenient:");
    let mut ok = ping.first().and_then(Mp::as_str) == Some("PING")
        && (lenient || digest == expected.as_bytes());
    let mut reason = if ok { "" } else { "shared key mismatch" };
    if let (true, Some((u, p))) = (ok, &sec.user) {
        let expected = sha512_hex(&[&auth_salt, u.as_bytes(), p.as_bytes()]);
        if user != u.as_bytes() || pass_digest != expected.as_bytes() {
            ok = false;
            reason = "username/password mismatch";
        }
    }
    let pong_digest = if ok {
        sha512_hex(&[
            &salt,
            sec.hostname.as_bytes(),
            &nonce,
            sec.shared_key.as_bytes(),
        ])
    } else {
        String::new()
    };
    let pong = pack(&(
        "PONG",
        ok,
        reason,
        sec.hostname.as_str(),
        pong_digest.as_str(),
    ));
    let _ = stream.write_all(&pong).await;
    ok
}

fn event_time(v: &Mp) -> Result<(u32, u32), String> {
    match v {
        Mp::Ext(0, d) if d.len() == 8 => Ok((
            u32::from_be_bytes([d[0], d[1], d[2], d[3]]),
            u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
        )),
        Mp::UInt(s) => Ok((*s as u32, 0)),
        other => Err(format!("bad time {other:?}")),
    }
}

fn entry(
    tag: &str,
    e: &Mp,
    chunk: &Option<String>,
    mode: &'static str,
) -> Result<Received, String> {
    let Mp::Array(pair) = e else {
        return Err(format!("entry is not an array: {e:?}"));
    };
    let [time, record] = &pair[..] else {
        return Err(format!("entry is not [time, record]: {e:?}"));
    };
    let (secs, nanos) = event_time(time)?;
    Ok(Received {
        tag: tag.to_owned(),
        secs,
        nanos,
        record: record.to_json(),
        chunk: chunk.clone(),
        mode,
    })
}

/// The message without its `compressed` option.
fn strip_compressed(msg: Mp) -> Mp {
    match msg {
        Mp::Array(mut parts) => {
            if let Some(Mp::Map(options)) = parts.get_mut(2) {
                options.retain(|(k, _)| k.as_str() != Some("compressed"));
            }
            Mp::Array(parts)
        }
        other => other,
    }
}

/// Decodes a message in any mode into events and its chunk option, or says why it cannot.
pub fn decode_message(msg: &Mp) -> Result<(Vec<Received>, Option<String>), String> {
    let Mp::Array(parts) = msg else {
        return Err("message is not an array".into());
    };
    let tag = parts
        .first()
        .and_then(Mp::as_str)
        .ok_or("message has no tag")?
        .to_owned();
    let second = parts.get(1).ok_or("message has no entries")?;
    let option_at = |i: usize| parts.get(i);
    let chunk_of = |o: Option<&Mp>| {
        o.and_then(|o| o.get("chunk"))
            .and_then(Mp::as_str)
            .map(str::to_owned)
    };
    match second {
        Mp::Array(entries) => {
            let chunk = chunk_of(option_at(2));
            let events = entries
                .iter()
                .map(|e| entry(&tag, e, &chunk, "forward"))
                .collect::<Result<_, _>>()?;
            Ok((events, chunk))
        }
        Mp::Bin(_) | Mp::Str(_) => {
            let option = option_at(2);
            let chunk = chunk_of(option);
            let (packed, mode) = match option.and_then(|o| o.get("compressed")) {
                None => (second.bytes().unwrap_or_default().to_vec(), "packed"),
                Some(Mp::Str(c)) if c == "gzip" => {
                    let Mp::Bin(gz) = second else {
                        return Err("compressed entries must be bin".into());
                    };
                    let mut plain = Vec::new();
                    flate2::read::MultiGzDecoder::new(&gz[..])
                        .read_to_end(&mut plain)
                        .map_err(|e| format!("entries do not inflate: {e}"))?;
                    (plain, "compressed")
                }
                Some(other) => return Err(format!("unknown compression {other:?}")),
            };
            let mut out = Vec::new();
            let mut rest: &[u8] = &packed;
            while !rest.is_empty() {
                let (e, used) = decode(rest)?.ok_or("truncated entry")?;
                out.push(entry(&tag, &e, &chunk, mode)?);
                rest = &rest[used..];
            }
            if let Some(size) = option.and_then(|o| o.get("size"))
                && *size != Mp::UInt(out.len() as u64)
            {
                return Err(format!("size {size:?} for {} entries", out.len()));
            }
            Ok((out, chunk))
        }
        time => {
            // Message mode: [tag, time, record, option?]
            let chunk = chunk_of(option_at(3));
            let record = parts.get(2).ok_or("message has no record")?;
            let e = Mp::Array(vec![time.clone(), record.clone()]);
            Ok((vec![entry(&tag, &e, &chunk, "message")?], chunk))
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    state: Arc<Mutex<FluentState>>,
    security: Option<Security>,
) {
    let mut buf = Vec::new();
    if let Some(sec) = &security {
        let ok = server_handshake(&mut stream, &mut buf, sec).await;
        let mut st = state.lock().unwrap();
        if ok {
            st.handshakes_ok += 1;
        } else {
            st.handshakes_failed += 1;
            return;
        }
    }
    loop {
        let fault = state.lock().unwrap().faults.pop_front();
        if fault == Some(Fault::DropMidChunk) {
            let mut some = [0u8; 8];
            let _ = stream.read_exact(&mut some).await;
            return;
        }
        let Some((msg, size)) = read_sized(&mut stream, &mut buf).await else {
            return;
        };
        let (events, chunk) = {
            let mut st = state.lock().unwrap();
            st.bytes_received += size;
            if st.chunk_size_limit.is_some_and(|limit| size > limit) {
                // Fluentd: "Input chunk size is larger than 'chunk_size_limit', dropped".
                st.oversized += 1;
                continue;
            }
            let decoded = if st.no_compression {
                decode_message(&strip_compressed(msg))
            } else {
                decode_message(&msg)
            };
            match decoded {
                Ok(decoded) => decoded,
                Err(reason) => {
                    // Fluentd logs the broken chunk and closes the connection: no ack.
                    st.broken.push(reason);
                    return;
                }
            }
        };
        state.lock().unwrap().events.extend(events);
        match (fault, chunk) {
            (Some(Fault::NoAck), _) => return,
            (Some(Fault::AckThenClose), Some(c)) => {
                let ack = pack(&std::collections::BTreeMap::from([("ack", c.as_str())]));
                let _ = stream.write_all(&ack).await;
                let _ = stream.shutdown().await;
                return;
            }
            (Some(Fault::WrongAck), Some(_)) => {
                let _ = stream
                    .write_all(&pack(&std::collections::BTreeMap::from([("ack", "nope")])))
                    .await;
            }
            (_, Some(c)) => {
                if stream
                    .write_all(&pack(&std::collections::BTreeMap::from([(
                        "ack",
                        c.as_str(),
                    )])))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            (_, None) => {}
        }
    }
}
