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

use std::time::Duration;

use base64::Engine;
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
        Supabase { server }
    }

    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// From now on, `route` answers with `answer` (before any other rule).
    pub async fn answer(&self, route: &str, answer: impl Respond + 'static) {
        Mock::given(path(route))
            .respond_with(answer)
            .with_priority(1)
            .mount(&self.server)
            .await;
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
