//! Gateway mode: each service's health route through the project URL, all
//! at once, with the project's API key.

use futures_util::future::join_all;
use reqwest::{Client, StatusCode};

use super::{read_body, status_outcome, transport_failure, GatewayService};
use crate::failure::Failure;
use crate::outcome::{CheckOutcome, Reason};

/// Every service's outcome, in the order given.
pub(super) async fn probe(
    client: &Client,
    base: &reqwest::Url,
    key: &str,
    services: &[GatewayService],
) -> Vec<(String, CheckOutcome)> {
    let probes = services.iter().map(|&service| async move {
        let outcome = probe_one(client, base, key, service)
            .await
            .unwrap_or_else(CheckOutcome::from);
        (service.name().to_owned(), outcome)
    });
    join_all(probes).await
}

async fn probe_one(
    client: &Client,
    base: &reqwest::Url,
    key: &str,
    service: GatewayService,
) -> Result<CheckOutcome, Failure> {
    let url = base
        .join(service.path())
        .map_err(|e| Failure::new(Reason::NotConfigured, e.to_string()))?;
    let mut apikey = reqwest::header::HeaderValue::from_str(key).map_err(|_| {
        Failure::new(
            Reason::NotConfigured,
            "API key is not a valid header value",
        )
    })?;
    // Sensitive values are left out of every Debug output (and so of traces).
    apikey.set_sensitive(true);
    let mut request = client.get(url).header("apikey", apikey);
    if is_jwt_shaped(key) {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|e| transport_failure(&e))?;
    let status = response.status();
    if status != StatusCode::OK {
        return Ok(status_outcome(status));
    }
    if service != GatewayService::Auth {
        return Ok(CheckOutcome::healthy());
    }
    // GoTrue answers its health route with a JSON object; anything else
    // (an HTML error page with 200, say) is not Auth.
    let body = read_body(response).await?;
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(_)) => Ok(CheckOutcome::healthy()),
        _ => Err(Failure::new(
            Reason::BadResponse,
            "auth health is not a JSON object",
        )),
    }
}

/// Legacy Supabase keys are JWTs (three base64url parts) and also go in
/// `Authorization`; newer `sb_…` keys go only in `apikey`.
fn is_jwt_shaped(key: &str) -> bool {
    let parts: Vec<&str> = key.split('.').collect();
    !key.starts_with("sb_")
        && parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}
