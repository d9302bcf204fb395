//! Reading server messages (HELO, PONG, ack) and the shared-key handshake of forward
//! protocol v1.

use std::fmt;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes that may arrive as msgpack `bin` or `str` (servers differ).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawBytes(pub Vec<u8>);

impl<'de> Deserialize<'de> for RawBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bin or str")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawBytes, E> {
                Ok(RawBytes(v.to_vec()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawBytes, E> {
                Ok(RawBytes(v.as_bytes().to_vec()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawBytes, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(RawBytes(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Largest server message we buffer (acks and handshakes are tiny).
const MAX_SERVER_MESSAGE: usize = 64 * 1024;

/// Reads one msgpack message of type `T` from `stream`, buffering partial reads in `buf`.
pub(crate) async fn read_message<T, S>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<T, String>
where
    T: DeserializeOwned,
    S: AsyncRead + Unpin + ?Sized,
{
    let read = async {
        loop {
            if !buf.is_empty() {
                let mut cursor = std::io::Cursor::new(&buf[..]);
                let result = T::deserialize(&mut rmp_serde::Deserializer::new(&mut cursor));
                match result {
                    Ok(v) => {
                        let used = usize::try_from(cursor.position()).unwrap_or(buf.len());
                        buf.drain(..used.min(buf.len()));
                        return Ok(v);
                    }
                    Err(e) if !is_incomplete(&e) => {
                        return Err(format!("unexpected message from server: {e}"));
                    }
                    Err(_) => {}
                }
            }
            if buf.len() > MAX_SERVER_MESSAGE {
                return Err("server message too large".to_owned());
            }
            let mut chunk = [0u8; 4096];
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("reading from server: {e}"))?;
            if n == 0 {
                return Err("server closed the connection".to_owned());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| format!("no answer from server within {timeout:?}"))?
}

fn is_incomplete(e: &rmp_serde::decode::Error) -> bool {
    use rmp_serde::decode::Error as E;
    match e {
        E::InvalidMarkerRead(io) | E::InvalidDataRead(io) => {
            io.kind() == std::io::ErrorKind::UnexpectedEof
        }
        _ => false,
    }
}

/// Lowercase hex of SHA-512 over the concatenation of `parts`.
pub fn sha512_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Deserialize)]
struct HeloOptions {
    nonce: RawBytes,
    #[serde(default)]
    auth: RawBytes,
}

/// Credentials for the HELO/PING/PONG handshake.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct FluentAuth {
    /// The shared key configured on the server (`<security> shared_key`).
    pub shared_key: String,
    /// This client's hostname as sent in PING (`self_hostname`).
    pub self_hostname: String,
    /// User name, when the server requires user authentication (`user_auth true`).
    #[serde(default)]
    pub username: String,
    /// Password for `username`.
    #[serde(default)]
    pub password: String,
}

impl fmt::Debug for FluentAuth {
    // Never print secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FluentAuth")
            .field("self_hostname", &self.self_hostname)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Runs the client side of the handshake: read HELO, send PING, read and verify PONG.
pub(crate) async fn handshake<S>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    auth: &FluentAuth,
    timeout: Duration,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let (kind, helo): (String, HeloOptions) = read_message(stream, buf, timeout)
        .await
        .map_err(|e| format!("waiting for HELO: {e}"))?;
    if kind != "HELO" {
        return Err(format!("expected HELO, server sent {kind:?}"));
    }
    let salt = format!("{:032x}", fastrand::u128(..));
    let digest = sha512_hex(&[
        salt.as_bytes(),
        auth.self_hostname.as_bytes(),
        &helo.nonce.0,
        auth.shared_key.as_bytes(),
    ]);
    let password_digest = if helo.auth.0.is_empty() {
        String::new()
    } else {
        sha512_hex(&[
            &helo.auth.0,
            auth.username.as_bytes(),
            auth.password.as_bytes(),
        ])
    };
    let ping = (
        "PING",
        auth.self_hostname.as_str(),
        salt.as_str(),
        digest.as_str(),
        auth.username.as_str(),
        password_digest.as_str(),
    );
    let mut bytes = Vec::new();
    ping.serialize(&mut rmp_serde::Serializer::new(&mut bytes))
        .map_err(|e| format!("encoding PING: {e}"))?;
    tokio::time::timeout(timeout, async {
        stream.write_all(&bytes).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| "sending PING timed out".to_owned())?
    .map_err(|e| format!("sending PING: {e}"))?;

    let (kind, ok, reason, server_hostname, server_digest): (String, bool, String, String, String) =
        read_message(stream, buf, timeout)
            .await
            .map_err(|e| format!("waiting for PONG: {e}"))?;
    if kind != "PONG" {
        return Err(format!("expected PONG, server sent {kind:?}"));
    }
    if !ok {
        return Err(format!("server refused authentication: {reason}"));
    }
    let expected = sha512_hex(&[
        salt.as_bytes(),
        server_hostname.as_bytes(),
        &helo.nonce.0,
        auth.shared_key.as_bytes(),
    ]);
    if server_digest != expected {
        return Err(format!(
            "PONG from {server_hostname:?} has a wrong shared key digest"
        ));
    }
    Ok(())
}

/// Fuzzing entry point, not API: reads `server_bytes` as everything a server sends, first
/// through the client side of the shared-key handshake (HELO, then PONG), then, from the
/// start again, as one ack message. Writes are discarded. Returns the ack's chunk id.
#[doc(hidden)]
pub async fn fuzz_server_bytes(server_bytes: &[u8]) -> Result<String, String> {
    /// A "server" that sends the given bytes, then closes; whatever is written is dropped.
    struct Replay<'a>(&'a [u8]);
    impl AsyncRead for Replay<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            out: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let n = self.0.len().min(out.remaining());
            out.put_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }
    impl AsyncWrite for Replay<'_> {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            data: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Ready(Ok(data.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }
    #[derive(Deserialize)]
    struct Ack {
        ack: String,
    }
    let auth = FluentAuth {
        shared_key: "fuzz-key".to_owned(),
        self_hostname: "fuzz".to_owned(),
        username: "user".to_owned(),
        password: "pass".to_owned(),
    };
    let timeout = Duration::from_secs(5);
    let _ = handshake(&mut Replay(server_bytes), &mut Vec::new(), &auth, timeout).await;
    let ack: Ack = read_message(&mut Replay(server_bytes), &mut Vec::new(), timeout).await?;
    Ok(ack.ack)
}
