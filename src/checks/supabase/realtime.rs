//! Realtime, asked the way every supabase-js client (and so MeshHook's live
//! logs) uses it: one WebSocket kept per process on
//! `/realtime/v1/websocket` (Phoenix protocol vsn 1.0.0), and on it one
//! Phoenix heartbeat per evaluation, healthy on its `phx_reply` `ok`.
//!
//! The upgrade proves the gateway and Realtime accepted the key (Realtime
//! checks the project and key before it upgrades); the heartbeat's reply
//! proves Realtime still processes what it is sent — one round trip on a
//! socket already open, where a fresh connection would cost TCP, TLS and
//! the upgrade.
//!
//! A kept socket may be found dead: a Lambda container thawed after the
//! server closed it, an idle socket closed by Realtime, a restart. Such a
//! socket is replaced and the heartbeat asked again on the new one within
//! the same deadline, so it is never reported as an outage by itself. A
//! socket that has been idle longer than a Phoenix server keeps a silent
//! one is replaced without being asked. In serve mode a keeper sends a
//! heartbeat whenever the socket has been idle for
//! `SUPABASE_REALTIME_HEARTBEAT_SECS`, as supabase-js does.
//!
//! While in use, the socket is taken out of its slot: an evaluation
//! cancelled at the deadline drops it (a socket whose answer never came is
//! not trusted again), and an evaluation and the keeper never wait on each
//! other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use parking_lot::Mutex;
use reqwest::StatusCode;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::http::status_verdict;
use super::keys::is_jwt_shaped;
use crate::component::Lifetime;
use crate::failure::Failure;
use crate::outcome::{Reason, Verdict};

/// The Phoenix protocol version supabase-js asks for (objects, not arrays).
const PHOENIX_VSN: &str = "1.0.0";

/// A socket idle this long is replaced rather than asked: a Phoenix
/// server closes a socket that sent nothing for 60 s, and one closed
/// while a Lambda container was frozen may give no sign of it.
const IDLE_LIMIT: Duration = Duration::from_secs(50);

/// How long opening the socket ahead of use, or a keeper's heartbeat, may
/// take: neither has an evaluation's deadline.
const BACKGROUND_LIMIT: Duration = Duration::from_secs(10);

/// Largest frame or message read: heartbeat replies are tiny, and a peer
/// that streams megabytes must not cost us memory.
const MAX_MESSAGE: usize = 64 * 1024;

/// The socket's read buffer: 4 KiB, not tungstenite's 128 KiB. Every read
/// zero-fills the buffer's free part first (128 KiB twice per evaluation
/// was a third of a warm answer's instructions); a heartbeat's reply is a
/// few hundred bytes, and a longer message grows the buffer.
const READ_BUFFER: usize = 4 * 1024;

/// Anything a WebSocket can run over: a TCP stream, or TLS over one.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

/// A socket and when it last answered.
struct Kept {
    socket: Socket,
    used: Instant,
}

/// Where the socket goes: the address to connect to, TLS or not, and the
/// request (URL with key and protocol version) that opens it.
struct Endpoint {
    host: String,
    port: u16,
    tls: Option<tokio_rustls::TlsConnector>,
    /// `ws(s)://…/realtime/v1/websocket?apikey=…&vsn=1.0.0`; never in a
    /// log or a failure's text (it carries the key).
    url: String,
    key: String,
}

/// Realtime's kept socket and what asks on it.
pub(super) struct Realtime {
    endpoint: Endpoint,
    heartbeat_every: Duration,
    slot: Mutex<Option<Kept>>,
    /// Held while the socket is opened ahead of use: an evaluation that
    /// finds no socket waits for that one rather than opening a second.
    warming: Arc<tokio::sync::Mutex<()>>,
    refs: AtomicU64,
    keeper: Mutex<Option<AbortHandle>>,
}

/// What a heartbeat on one socket came to: an answer (a verdict, the
/// socket still good), or a socket that is dead (replace it and ask
/// again), or one that answered nonsense (report it).
enum Asked {
    Answered(Verdict),
    Dead(Failure),
    Bad(Failure),
}

impl Realtime {
    /// For the project at `base` (its gateway URL). Touches no network.
    pub(super) fn new(
        base: &reqwest::Url,
        key: &str,
        heartbeat_every: Duration,
    ) -> Result<Self, String> {
        let mut url = base
            .join("realtime/v1/websocket")
            .map_err(|e| format!("Realtime's URL: {e}"))?;
        let (scheme, tls) = match url.scheme() {
            "https" => ("wss", true),
            _ => ("ws", false),
        };
        url.set_scheme(scheme)
            .map_err(|()| "Realtime's URL takes no ws scheme".to_owned())?;
        url.query_pairs_mut()
            .append_pair("apikey", key)
            .append_pair("vsn", PHOENIX_VSN);
        let host = url.host_str().ok_or("Realtime's URL has no host")?;
        let port = url
            .port_or_known_default()
            .ok_or("Realtime's URL has no port")?;
        let tls = tls.then(|| {
            let mut config = crate::tls::https_client_config();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            tokio_rustls::TlsConnector::from(Arc::new(config))
        });
        Ok(Self {
            endpoint: Endpoint {
                host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
                port,
                tls,
                url: url.into(),
                key: key.to_owned(),
            },
            heartbeat_every,
            slot: Mutex::new(None),
            warming: Arc::new(tokio::sync::Mutex::new(())),
            refs: AtomicU64::new(0),
            keeper: Mutex::new(None),
        })
    }

    /// One heartbeat, on the kept socket when there is a live one, else on
    /// a new one; a kept socket found dead is replaced and asked again.
    pub(super) async fn heartbeat(&self) -> Verdict {
        let kept = match self.take_fresh() {
            Some(kept) => Some(kept),
            None => {
                let _opened_ahead = self.warming.lock().await;
                self.take_fresh()
            }
        };
        if let Some(mut kept) = kept {
            match self.ask(&mut kept).await {
                Asked::Answered(verdict) => {
                    self.put_back(kept);
                    return verdict;
                }
                Asked::Bad(failure) => return failure.into(),
                Asked::Dead(failure) => {
                    tracing::debug!(error = %failure, "Realtime's kept socket was dead; reopening");
                }
            }
        }
        let mut kept = match self.endpoint.open().await {
            Ok(socket) => Kept {
                socket,
                used: Instant::now(),
            },
            Err(verdict) => return verdict,
        };
        match self.ask(&mut kept).await {
            Asked::Answered(verdict) => {
                self.put_back(kept);
                verdict
            }
            Asked::Dead(failure) | Asked::Bad(failure) => failure.into(),
        }
    }

    /// The kept socket if it is worth asking: not idle past
    /// [`IDLE_LIMIT`], and nothing already read on it says it is closed.
    fn take_fresh(&self) -> Option<Kept> {
        let mut kept = self.slot.lock().take()?;
        if kept.used.elapsed() >= IDLE_LIMIT || !still_open(&mut kept.socket) {
            close_in_background(kept.socket);
            return None;
        }
        Some(kept)
    }

    /// Keeps `kept` for the next evaluation, unless another socket was
    /// kept meanwhile (then this one is closed).
    fn put_back(&self, kept: Kept) {
        let mut slot = self.slot.lock();
        if slot.is_none() {
            *slot = Some(kept);
        } else {
            drop(slot);
            close_in_background(kept.socket);
        }
    }

    /// Sends a heartbeat and reads until its reply.
    async fn ask(&self, kept: &mut Kept) -> Asked {
        let reference = self.refs.fetch_add(1, Ordering::Relaxed) + 1;
        let heartbeat = format!(
            r#"{{"topic":"phoenix","event":"heartbeat","payload":{{}},"ref":"{reference}"}}"#
        );
        if let Err(e) = kept.socket.send(Message::text(heartbeat)).await {
            return Asked::Dead(socket_failure(&e));
        }
        let asked = read_reply(&mut kept.socket, &reference.to_string()).await;
        if matches!(asked, Asked::Answered(_)) {
            kept.used = Instant::now();
        }
        asked
    }

    /// Opens the socket in the background unless one is kept; in serve
    /// mode also starts the keeper.
    pub(super) fn warm_up(self: &Arc<Self>, lifetime: Lifetime) {
        let realtime = self.clone();
        let warming = realtime.warming.clone().try_lock_owned();
        tokio::spawn(async move {
            let _warming = warming;
            let opened = tokio::time::timeout(BACKGROUND_LIMIT, realtime.endpoint.open()).await;
            if let Ok(Ok(socket)) = opened {
                realtime.put_back(Kept {
                    socket,
                    used: Instant::now(),
                });
            }
        });
        if lifetime == Lifetime::Serving {
            let task = tokio::spawn(keep_alive(Arc::downgrade(self), self.heartbeat_every));
            if let Some(previous) = self.keeper.lock().replace(task.abort_handle()) {
                previous.abort();
            }
        }
    }

    /// Stops the keeper and closes the kept socket with a close frame
    /// (1000, normal closure), waiting for Realtime's own close.
    pub(super) async fn close(&self) {
        if let Some(keeper) = self.keeper.lock().take() {
            keeper.abort();
        }
        let kept = self.slot.lock().take();
        if let Some(mut kept) = kept {
            let _ = kept.socket.close(Some(normal_closure())).await;
            // Read on until Realtime's close frame (or EOF) completes it.
            while let Some(Ok(_)) = kept.socket.next().await {}
        }
    }
}

/// Serve mode's keeper: whenever the kept socket has been idle for
/// `every`, a heartbeat on it keeps it open (Realtime closes silent
/// sockets); one found dead or not answering is replaced, so the next
/// evaluation finds a live socket. Ends when the check is dropped.
async fn keep_alive(realtime: Weak<Realtime>, every: Duration) {
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        let Some(realtime) = realtime.upgrade() else { return };
        let idle = realtime.slot.lock().as_ref().map(|kept| kept.used.elapsed());
        wait = match idle {
            Some(idle) if idle < every => every - idle,
            _ => {
                let asked = tokio::time::timeout(BACKGROUND_LIMIT, realtime.heartbeat()).await;
                if !matches!(&asked, Ok(v) if v.status == crate::outcome::Status::Healthy) {
                    tracing::debug!("Realtime's keep-alive heartbeat was not answered");
                }
                every
            }
        };
    }
}

impl Endpoint {
    /// A new socket: TCP, TLS for `wss`, then the WebSocket upgrade with
    /// the key. A refused upgrade is Realtime's (or the gateway's) answer,
    /// mapped by its status as every Supabase answer is.
    async fn open(&self) -> Result<Socket, Verdict> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| Failure::from_error(&e, Reason::Unreachable))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = match &self.tls {
            Some(connector) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| Failure::new(Reason::NotConfigured, e.to_string()))?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| Failure::from_error(&e, Reason::Tls))?;
                Box::new(tls)
            }
            None => Box::new(tcp),
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        match tokio_tungstenite::client_async_with_config(self.request()?, stream, Some(config))
            .await
        {
            Ok((socket, _)) => Ok(socket),
            Err(WsError::Http(response)) => Err(refused(response.status())),
            Err(WsError::Protocol(ProtocolError::SecWebSocketAcceptKeyMismatch)) => {
                Err(Failure::new(
                    Reason::BadResponse,
                    "101 without the Sec-WebSocket-Accept our key demands: not a WebSocket server",
                )
                .into())
            }
            Err(e) => Err(socket_failure(&e).into()),
        }
    }

    /// The upgrade request: the key in the URL (as supabase-js sends it)
    /// and in `apikey`, and as a bearer token when it is a legacy JWT.
    fn request(&self) -> Result<Request, Failure> {
        let not_configured = || Failure::new(Reason::NotConfigured, "Realtime's URL or key is not usable in a request");
        let mut request = self.url.as_str().into_client_request().map_err(|_| not_configured())?;
        let mut apikey = HeaderValue::from_str(&self.key).map_err(|_| not_configured())?;
        apikey.set_sensitive(true);
        let headers = request.headers_mut();
        headers.insert("apikey", apikey);
        if is_jwt_shaped(&self.key) {
            let mut bearer = HeaderValue::from_str(&format!("Bearer {}", self.key))
                .map_err(|_| not_configured())?;
            bearer.set_sensitive(true);
            headers.insert("authorization", bearer);
        }
        Ok(request)
    }
}

/// A refused upgrade, by its status: a 2xx is not Realtime's answer to an
/// upgrade (a page or a cache), the rest as every Supabase status.
fn refused(status: StatusCode) -> Verdict {
    let mut verdict = status_verdict(status, None);
    if status.is_success() {
        verdict.text = Some(format!(
            "HTTP {} instead of 101 Switching Protocols",
            status.as_u16()
        ));
    }
    verdict
}

/// Reads frames until the `phx_reply` to `reference` on topic `phoenix`.
/// Replies to other refs (one whose evaluation gave up) and other topics
/// are skipped; anything that is not a Phoenix message is bad.
async fn read_reply(socket: &mut Socket, reference: &str) -> Asked {
    loop {
        let text = match socket.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                return Asked::Bad(Failure::new(
                    Reason::BadResponse,
                    "a binary frame on a vsn 1.0.0 socket",
                ))
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map_or(1005, |f| u16::from(f.code));
                return Asked::Dead(Failure::new(
                    Reason::Unreachable,
                    format!("Realtime closed the socket (code {code})"),
                ));
            }
            None => return Asked::Dead(Failure::new(Reason::Unreachable, "the socket closed")),
            Some(Err(e)) => {
                let failure = socket_failure(&e);
                return match e {
                    WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                        Asked::Dead(failure)
                    }
                    WsError::Protocol(_) | WsError::Capacity(_) | WsError::Utf8(_) => {
                        Asked::Bad(Failure::new(Reason::BadResponse, failure.message))
                    }
                    _ => Asked::Dead(failure),
                };
            }
        };
        match reply_to(&text, reference) {
            Reply::Mine(verdict) => return Asked::Answered(verdict),
            Reply::Other => {}
            Reply::NotPhoenix => {
                return Asked::Bad(Failure::new(
                    Reason::BadResponse,
                    "a frame that is not a Phoenix message",
                ))
            }
        }
    }
}

enum Reply {
    Mine(Verdict),
    Other,
    NotPhoenix,
}

/// What a vsn 1.0.0 text frame says about the heartbeat `reference`:
/// `{"topic":"phoenix","event":"phx_reply","payload":{"status":"ok",…},"ref":"<n>"}`.
fn reply_to(text: &str, reference: &str) -> Reply {
    let Ok(serde_json::Value::Object(message)) = serde_json::from_str(text) else {
        return Reply::NotPhoenix;
    };
    let field = |name: &str| message.get(name).and_then(|v| v.as_str());
    if field("topic") != Some("phoenix")
        || field("event") != Some("phx_reply")
        || field("ref") != Some(reference)
    {
        return Reply::Other;
    }
    let status = message
        .get("payload")
        .and_then(|p| p.get("status"))
        .and_then(|s| s.as_str());
    Reply::Mine(match status {
        Some("ok") => Verdict::healthy(),
        Some(other) => Verdict::unhealthy(
            Reason::BadStatus,
            format!("heartbeat answered {:?}", other.chars().take(40).collect::<String>()),
        ),
        None => Verdict::unhealthy(Reason::BadResponse, "heartbeat reply without a status"),
    })
}

/// Whether a kept socket may still be open: it is not, when what arrived
/// while it was idle (read now, without waiting) is a close, an error or
/// its end. Anything else that arrived is stale and dropped.
fn still_open(socket: &mut Socket) -> bool {
    loop {
        match socket.next().now_or_never() {
            None => return true,
            Some(Some(Ok(Message::Close(_)) | Err(_)) | None) => return false,
            Some(Some(Ok(_))) => {}
        }
    }
}

/// Closes a socket no longer wanted, without waiting for it.
fn close_in_background(mut socket: Socket) {
    tokio::spawn(async move {
        let closing = async {
            let _ = socket.close(Some(normal_closure())).await;
            while let Some(Ok(_)) = socket.next().await {}
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), closing).await;
    });
}

fn normal_closure() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }
}

/// A socket's failure in the shared vocabulary (an I/O or TLS cause →
/// `unreachable` or `tls`); the text never holds the URL.
fn socket_failure(e: &WsError) -> Failure {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            Failure::new(Reason::Unreachable, "the socket closed")
        }
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Failure::new(
            Reason::Unreachable,
            "the connection dropped without a close frame",
        ),
        WsError::Io(io) => Failure::from_error(io, Reason::Unreachable),
        WsError::Tls(tls) => Failure::new(Reason::Tls, tls.to_string()),
        other => Failure::new(Reason::BadResponse, format!("WebSocket: {}", other_kind(other))),
    }
}

/// A WebSocket error's text, except the kinds that could carry the URL.
fn other_kind(e: &WsError) -> String {
    match e {
        WsError::Url(_) | WsError::Http(_) | WsError::HttpFormat(_) => "bad request or answer".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    #[test]
    fn only_the_reply_to_our_heartbeat_counts() {
        let ok = r#"{"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"7"}"#;
        assert!(matches!(reply_to(ok, "7"), Reply::Mine(v) if v.status == Status::Healthy));
        assert!(matches!(reply_to(ok, "6"), Reply::Other));
        let error = r#"{"topic":"phoenix","event":"phx_reply","payload":{"status":"error","response":{}},"ref":"7"}"#;
        assert!(
            matches!(reply_to(error, "7"), Reply::Mine(v) if v.reason == Some(Reason::BadStatus))
        );
        let other = r#"{"topic":"realtime:logs","event":"phx_reply","payload":{"status":"ok"},"ref":"7"}"#;
        assert!(matches!(reply_to(other, "7"), Reply::Other));
        for garbage in ["<html>", "[null,\"7\",\"phoenix\",\"phx_reply\",{}]", "\"ok\""] {
            assert!(matches!(reply_to(garbage, "7"), Reply::NotPhoenix), "{garbage}");
        }
    }

    #[test]
    fn the_socket_url_carries_the_key_and_protocol_version() {
        let base = reqwest::Url::parse("https://ref.supabase.co/").unwrap();
        let realtime = Realtime::new(&base, "sb_publishable_x", Duration::from_secs(25)).unwrap();
        assert_eq!(
            realtime.endpoint.url,
            "wss://ref.supabase.co/realtime/v1/websocket?apikey=sb_publishable_x&vsn=1.0.0"
        );
        assert_eq!((realtime.endpoint.port, realtime.endpoint.tls.is_some()), (443, true));
        let local = reqwest::Url::parse("http://127.0.0.1:54321/").unwrap();
        let realtime = Realtime::new(&local, "k", Duration::from_secs(25)).unwrap();
        assert!(realtime.endpoint.url.starts_with("ws://127.0.0.1:54321/realtime/v1/websocket?"));
        assert!(realtime.endpoint.tls.is_none());
    }
}
