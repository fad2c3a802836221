//! Gateway mode: each service through the project URL, all at once, with
//! the project's API key. Auth, the Data API and Storage are asked over
//! HTTPS here; Realtime by a heartbeat on its kept WebSocket
//! ([`super::realtime`]).

use futures_util::future::join_all;
use reqwest::{Client, StatusCode};
use tokio::time::Instant;

use super::http::status_verdict;
use crate::https::{read_body, transport_failure};
use super::keys::with_key;
use super::realtime::Realtime;
use super::GatewayService;
use crate::failure::Failure;
use crate::outcome::{Reason, Verdict};

/// What the gateway probes ask with.
pub(super) struct Probes<'a> {
    pub client: &'a Client,
    pub base: &'a reqwest::Url,
    pub key: &'a str,
    /// Realtime's kept socket, when Realtime is probed.
    pub realtime: Option<&'a Realtime>,
}

impl Probes<'_> {
    /// Every service's outcome, in the order given; a service that has not
    /// answered by `deadline` is that service's `timeout`.
    pub(super) async fn all(
        &self,
        services: &[GatewayService],
        deadline: Instant,
    ) -> Vec<(String, Verdict)> {
        let probes = services.iter().map(|&service| async move {
            let verdict = match tokio::time::timeout_at(deadline, self.one(service)).await {
                Ok(Ok(verdict)) => verdict,
                Ok(Err(failure)) => failure.into(),
                Err(_) => Verdict::unhealthy(Reason::Timeout, "no answer in time"),
            };
            (service.name().to_owned(), verdict)
        });
        join_all(probes).await
    }

    async fn one(&self, service: GatewayService) -> Result<Verdict, Failure> {
        let mut url = self
            .base
            .join(service.path())
            .map_err(|e| Failure::new(Reason::NotConfigured, e.to_string()))?;
        match (service, self.realtime) {
            (GatewayService::Realtime, Some(realtime)) => return Ok(realtime.heartbeat().await),
            (GatewayService::Realtime, None) => {
                return Err(Failure::new(Reason::InternalError, "no Realtime socket"))
            }
            // No rows, whatever the table: the answer is PostgREST's
            // verdict on the route, never data.
            (GatewayService::Rest, _) => url.set_query(Some("select=*&limit=0")),
            (GatewayService::Auth | GatewayService::Storage, _) => {}
        }
        let response = with_key(self.client.get(url), self.key)?
            .send()
            .await
            .map_err(|e| transport_failure(&e))?;
        let status = response.status();
        match service {
            GatewayService::Rest => {
                let body = read_body(response).await?;
                Ok(data_api_verdict(status, &body))
            }
            GatewayService::Auth if status == StatusCode::OK => {
                // GoTrue answers its health route with a JSON object;
                // anything else (an HTML error page with 200, say) is not
                // Auth.
                let body = read_body(response).await?;
                match serde_json::from_slice::<serde_json::Value>(&body) {
                    Ok(serde_json::Value::Object(_)) => Ok(Verdict::healthy()),
                    _ => Err(Failure::new(
                        Reason::BadResponse,
                        "auth health is not a JSON object",
                    )),
                }
            }
            _ if status == StatusCode::OK => Ok(Verdict::healthy()),
            _ => Ok(status_verdict(status, None)),
        }
    }
}

/// PostgREST's error codes that say "no such table" with its schema cache
/// loaded: `PGRST205` (PostgREST 12 and later), `42P01` (before).
const TABLE_NOT_IN_SCHEMA_CACHE: [&str; 2] = ["PGRST205", "42P01"];

/// The Data API's answer to the probe table. Healthy when PostgREST itself
/// answered from its schema cache: 404 with one of its "no such table"
/// codes, or 200 (a table of that name exists and is readable). A 404
/// without such a code came from the gateway, not PostgREST.
fn data_api_verdict(status: StatusCode, body: &[u8]) -> Verdict {
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("code")?.as_str().map(str::to_owned));
    match (status, code.as_deref()) {
        (StatusCode::OK, _) => Verdict::healthy(),
        (StatusCode::NOT_FOUND, Some(c)) if TABLE_NOT_IN_SCHEMA_CACHE.contains(&c) => {
            Verdict::healthy()
        }
        (status, code) => status_verdict(status, code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/supabase/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn postgrest_answers_are_told_from_the_gateways() {
        let of = |status: u16, body: &[u8]| {
            let verdict = data_api_verdict(StatusCode::from_u16(status).unwrap(), body);
            (verdict.status, verdict.reason, verdict.text)
        };
        assert_eq!(of(404, &fixture("rest_missing_table_404.json")), (Status::Healthy, None, None));
        assert_eq!(of(404, &fixture("rest_legacy_missing_table_404.json")).0, Status::Healthy);
        assert_eq!(of(200, b"[]").0, Status::Healthy);
        assert_eq!(
            of(503, &fixture("rest_schema_cache_503.json")),
            (Status::Unhealthy, Some(Reason::BadStatus), Some("HTTP 503 (PGRST002)".into()))
        );
        assert_eq!(of(401, &fixture("rest_jwt_invalid_401.json")).1, Some(Reason::Auth));
        assert_eq!(of(403, &fixture("rest_root_forbidden_403.json")).1, Some(Reason::Auth));
        assert_eq!(
            of(404, br#"{"message":"no Route matched with those values"}"#).1,
            Some(Reason::BadStatus),
            "the gateway's own 404"
        );
        assert_eq!(of(540, b"").1, Some(Reason::Paused));
        assert_eq!(of(402, br#"{"message":"exceed_db_size_quota"}"#).1, Some(Reason::OverQuota));
    }
}
