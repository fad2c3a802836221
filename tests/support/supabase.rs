//! A local stand-in for Supabase that answers like a project created in
//! 2026: the project gateway (key check, then each service) and the
//! Management API's project health endpoint. Bodies are the real ones, from
//! `tests/fixtures/supabase/` (copied from the team's shared fixtures).
//!
//! As a hosted project does, it refuses the Data API root to a publishable
//! key (403), answers a table that does not exist with PostgREST's own 404
//! `PGRST205`, upgrades `/realtime/v1/websocket` (101 with the
//! `Sec-WebSocket-Accept` the client's key demands) and routes no
//! `/realtime/v1/api/ping` (the gateway's 404).
//!
//! HTTP answers come from a wiremock server behind a small front
//! ([`front`]): the front passes every connection to it, and when a
//! connection's first request is Realtime's upgrade and wiremock answers
//! it 101, the front then speaks Realtime's Phoenix protocol on that
//! socket itself ([`RealtimeStandIn`]), as told.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const ANON_KEY: &str = "sb_publishable_standin_key_4f1c";
pub const ACCESS_TOKEN: &str = "sbp_standin_access_token_91ab";
pub const PROJECT_REF: &str = "abcdefghijklmnopqrst";

pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/supabase/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

pub fn json(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/json")
        .set_body_string(body)
}

/// The `Sec-WebSocket-Accept` RFC 6455 demands for `key`.
pub fn websocket_accept(key: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// Realtime's WebSocket route: it checks the project's key (query
/// parameter `apikey`) and the handshake headers before it upgrades.
pub struct WebSocketUpgrade {
    pub key: String,
    pub delay: Duration,
}

impl Respond for WebSocketUpgrade {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let key_ok = request
            .url
            .query_pairs()
            .any(|(k, v)| k == "apikey" && v == self.key.as_str());
        if !key_ok {
            return json(401, fixture("gateway_no_apikey_401.json"));
        }
        let websocket_key = header("sec-websocket-key");
        if !header("upgrade").eq_ignore_ascii_case("websocket")
            || header("sec-websocket-version") != "13"
            || websocket_key.is_empty()
        {
            return ResponseTemplate::new(400);
        }
        let upgrade = ResponseTemplate::new(101)
            .insert_header("upgrade", "websocket")
            .insert_header("connection", "Upgrade")
            .insert_header(
                "sec-websocket-accept",
                websocket_accept(&websocket_key).as_str(),
            );
        // A zero delay still waits for the timer's next tick (a millisecond).
        if self.delay.is_zero() {
            upgrade
        } else {
            upgrade.set_delay(self.delay)
        }
    }
}

pub struct Supabase {
    pub server: MockServer,
    /// What Realtime's sockets do, and what they saw.
    pub realtime: Arc<RealtimeStandIn>,
    front: SocketAddr,
    /// Stops the front (and its thread) when the stand-in is dropped.
    _stop_front: tokio::sync::oneshot::Sender<()>,
}

impl Supabase {
    /// Every service healthy, behind the gateway's key check.
    pub async fn start() -> Supabase {
        Self::start_with_key(ANON_KEY).await
    }

    /// The same, for a project whose publishable key is `key`.
    pub async fn start_with_key(key: &str) -> Supabase {
        let server = MockServer::start().await;
        let routes = [
            ("/auth/v1/health", json(200, fixture("auth_health.json"))),
            (
                "/rest/v1/",
                json(403, fixture("rest_root_forbidden_403.json")),
            ),
            ("/storage/v1/status", ResponseTemplate::new(200)),
        ];
        for (route, answer) in routes {
            Mock::given(method("GET"))
                .and(path(route))
                .and(header("apikey", key))
                .respond_with(answer)
                .with_priority(5)
                .mount(&server)
                .await;
        }
        // PostgREST: any table outside its schema cache.
        Mock::given(method("GET"))
            .and(path_regex("^/rest/v1/[a-z_]+$"))
            .and(header("apikey", key))
            .respond_with(json(404, fixture("rest_missing_table_404.json")))
            .with_priority(6)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/realtime/v1/websocket"))
            .respond_with(WebSocketUpgrade {
                key: key.to_owned(),
                delay: Duration::ZERO,
            })
            .with_priority(5)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v1/projects/{PROJECT_REF}/health")))
            .and(header(
                "authorization",
                format!("Bearer {ACCESS_TOKEN}").as_str(),
            ))
            .respond_with(json(200, fixture("management_health_mixed.json")))
            .with_priority(5)
            .mount(&server)
            .await;
        Mock::given(path(format!("/v1/projects/{PROJECT_REF}/health")))
            .respond_with(json(401, fixture("management_401.json")))
            .with_priority(9)
            .mount(&server)
            .await;
        // With the key, a route the gateway does not know (Realtime's
        // api/ping among them): the gateway's own 404.
        Mock::given(header("apikey", key))
            .respond_with(json(
                404,
                r#"{"message":"no Route matched with those values"}"#.into(),
            ))
            .with_priority(8)
            .mount(&server)
            .await;
        // The gateway rejects any request without the right key.
        Mock::given(wiremock::matchers::any())
            .respond_with(json(401, fixture("gateway_no_apikey_401.json")))
            .with_priority(10)
            .mount(&server)
            .await;
        let realtime = Arc::new(RealtimeStandIn::default());
        let (front, stop) = front(*server.address(), realtime.clone()).await;
        Supabase {
            server,
            realtime,
            front,
            _stop_front: stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.front)
    }

    /// The port the project's URL names.
    pub fn port(&self) -> u16 {
        self.front.port()
    }

    /// From now on, `route` answers with `answer` (before any other rule).
    pub async fn answer(&self, route: &str, answer: impl Respond + 'static) {
        Mock::given(path(route))
            .respond_with(answer)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// Realtime goes down: every open socket dropped, every new upgrade
    /// answered 503 by the gateway.
    pub async fn realtime_down(&self) {
        self.answer("/realtime/v1/websocket", ResponseTemplate::new(503))
            .await;
        self.realtime.drop_open_sockets();
    }

    /// The Management API answers `answer` for the given services query.
    pub async fn management_answer(&self, answer: ResponseTemplate) {
        Mock::given(path(format!("/v1/projects/{PROJECT_REF}/health")))
            .and(query_param("services", "auth"))
            .respond_with(answer)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// A route that accepts the request and never answers (within a test).
    pub async fn hang(&self, route: &str) {
        self.answer(
            route,
            ResponseTemplate::new(200).set_delay(Duration::from_secs(60)),
        )
        .await;
    }

    pub async fn requests_to(&self, route: &str) -> Vec<wiremock::Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path() == route)
            .collect()
    }
}

/// How Realtime's stand-in treats a Phoenix heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeats {
    /// A `phx_reply` with `"status":"ok"` and the same `ref`, as Realtime
    /// answers under vsn 1.0.0 (objects).
    Answer,
    /// Read, never answered: a Realtime that upgrades and then processes
    /// nothing.
    Silent,
    /// A `phx_reply` with `"status":"error"`.
    Error,
    /// A text frame that is not a Phoenix message.
    Garbage,
    /// The connection dropped at once, without a close frame (a crash).
    Drop,
}

/// Realtime's Phoenix socket as the stand-in plays it: what it does, and
/// what it saw.
pub struct RealtimeStandIn {
    heartbeats: Mutex<Heartbeats>,
    /// Close a socket that sent nothing for this long (Realtime closes
    /// sockets whose client stopped sending heartbeats).
    idle_close: Mutex<Option<Duration>>,
    /// Bumped to drop every open socket at once (a Realtime restart).
    generation: tokio::sync::watch::Sender<u64>,
    /// Sockets upgraded so far.
    pub opened: AtomicUsize,
    /// Heartbeats received so far, on every socket.
    pub heartbeats_seen: AtomicUsize,
    /// Close frames received from clients, by code.
    pub closes: Mutex<Vec<u16>>,
}

impl Default for RealtimeStandIn {
    fn default() -> Self {
        Self {
            heartbeats: Mutex::new(Heartbeats::Answer),
            idle_close: Mutex::new(None),
            generation: tokio::sync::watch::Sender::new(0),
            opened: AtomicUsize::new(0),
            heartbeats_seen: AtomicUsize::new(0),
            closes: Mutex::new(Vec::new()),
        }
    }
}

impl RealtimeStandIn {
    pub fn heartbeats(&self, behaviour: Heartbeats) {
        *self.heartbeats.lock().unwrap() = behaviour;
    }

    /// Close every socket idle for `after` with a close frame (1000).
    pub fn close_idle_after(&self, after: Duration) {
        *self.idle_close.lock().unwrap() = Some(after);
    }

    /// Drop every open socket now, without a close frame.
    pub fn drop_open_sockets(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    pub fn heartbeats_seen(&self) -> usize {
        self.heartbeats_seen.load(Ordering::SeqCst)
    }

    /// Serves one upgraded socket until it closes or is dropped.
    async fn serve(&self, stream: TcpStream) {
        self.opened.fetch_add(1, Ordering::SeqCst);
        let mut generation = self.generation.subscribe();
        generation.mark_unchanged();
        let mut socket = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
        loop {
            let idle = (*self.idle_close.lock().unwrap()).unwrap_or(Duration::from_secs(3600));
            let message = tokio::select! {
                _ = generation.changed() => return,
                read = tokio::time::timeout(idle, socket.next()) => match read {
                    Err(_) => {
                        let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                        let _ = socket.close(Some(frame)).await;
                        while let Some(Ok(_)) = socket.next().await {}
                        return;
                    }
                    Ok(Some(Ok(message))) => message,
                    Ok(_) => return,
                },
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Close(frame) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    self.closes.lock().unwrap().push(code);
                    // tungstenite answers the close; read on to its end.
                    while let Some(Ok(_)) = socket.next().await {}
                    return;
                }
                _ => continue,
            };
            let Some(reference) = heartbeat_ref(&text) else {
                continue;
            };
            self.heartbeats_seen.fetch_add(1, Ordering::SeqCst);
            let behaviour = *self.heartbeats.lock().unwrap();
            let status = match behaviour {
                Heartbeats::Answer => "ok",
                Heartbeats::Error => "error",
                Heartbeats::Silent => continue,
                Heartbeats::Drop => return,
                Heartbeats::Garbage => {
                    let _ = socket
                        .send(Message::text("<html>502 Bad Gateway</html>"))
                        .await;
                    continue;
                }
            };
            let payload = serde_json::json!({"status": status, "response": {}});
            let reply = serde_json::json!({"topic": "phoenix", "event": "phx_reply", "payload": payload, "ref": reference});
            if socket.send(Message::text(reply.to_string())).await.is_err() {
                return;
            }
        }
    }
}

/// The `ref` of a vsn 1.0.0 Phoenix heartbeat
/// (`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"<n>"}`).
fn heartbeat_ref(text: &str) -> Option<serde_json::Value> {
    let message: serde_json::Value = serde_json::from_str(text).ok()?;
    let heartbeat = message.get("topic")? == "phoenix" && message.get("event")? == "heartbeat";
    heartbeat.then(|| message.get("ref").cloned()).flatten()
}

/// The project's front door on a port of its own: every connection goes
/// to wiremock (`backend`), except that a Realtime upgrade wiremock
/// answers with 101 is then served by `realtime`. It runs on a thread and
/// runtime of its own, as wiremock does, so a test that blocks its own
/// thread (running the binary and waiting for it) is still answered.
async fn front(
    backend: SocketAddr,
    realtime: Arc<RealtimeStandIn>,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            let serving = async {
                while let Ok((client, _)) = listener.accept().await {
                    let realtime = realtime.clone();
                    tokio::spawn(async move {
                        let _ = pass(client, backend, &realtime).await;
                    });
                }
            };
            // Dropping the runtime then ends every connection it served.
            tokio::select! {
                () = serving => {}
                _ = stopped => {}
            }
        });
    });
    (address, stop)
}

async fn pass(
    mut client: TcpStream,
    backend: SocketAddr,
    realtime: &RealtimeStandIn,
) -> std::io::Result<()> {
    let _ = client.set_nodelay(true);
    let request = read_head(&mut client).await?;
    let mut upstream = TcpStream::connect(backend).await?;
    let _ = upstream.set_nodelay(true);
    upstream.write_all(&request).await?;
    let request_line =
        String::from_utf8_lossy(&request[..request.iter().position(|&b| b == b'\r').unwrap_or(0)])
            .into_owned();
    if !request_line.contains(" /realtime/v1/websocket") {
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    let answer = read_head(&mut upstream).await?;
    client.write_all(&answer).await?;
    if !answer.starts_with(b"HTTP/1.1 101") {
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    drop(upstream);
    realtime.serve(client).await;
    Ok(())
}

/// A request's or answer's head, up to its blank line, read a byte at a
/// time so nothing after it is taken from the stream.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        head.push(stream.read_u8().await?);
    }
    Ok(head)
}
