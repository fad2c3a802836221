//! A local stand-in for Supabase that answers like the hosted services: the
//! project gateway (key check, then each service's health route) and the
//! Management API's project health endpoint. Bodies are the real ones, from
//! `tests/fixtures/supabase/` (copied from the team's shared fixtures).

use std::time::Duration;

use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

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

fn json(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/json")
        .set_body_string(body)
}

pub struct Supabase {
    pub server: MockServer,
}

impl Supabase {
    /// Every service healthy, behind the gateway's key check.
    pub async fn start() -> Supabase {
        let server = MockServer::start().await;
        let routes = [
            ("/auth/v1/health", json(200, fixture("auth_health.json"))),
            (
                "/realtime/v1/api/ping",
                json(200, fixture("realtime_ping.json")),
            ),
            (
                "/rest/v1/",
                json(
                    200,
                    r#"{"swagger":"2.0","info":{"title":"standard public schema"}}"#.into(),
                ),
            ),
            ("/storage/v1/status", ResponseTemplate::new(200)),
        ];
        for (route, answer) in routes {
            Mock::given(method("GET"))
                .and(path(route))
                .and(header("apikey", ANON_KEY))
                .respond_with(answer)
                .with_priority(5)
                .mount(&server)
                .await;
        }
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
    pub async fn answer(&self, route: &str, answer: ResponseTemplate) {
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
