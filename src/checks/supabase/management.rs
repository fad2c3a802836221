//! Management API mode: one call to the project health endpoint for every
//! configured service. `ACTIVE_HEALTHY` → healthy, `COMING_UP` → degraded,
//! any other status or a service absent from the answer → unhealthy.

use reqwest::{Client, StatusCode};
use serde::Deserialize;

use super::http::status_verdict;
use crate::https::{read_body, transport_failure};
use crate::failure::Failure;
use crate::outcome::{Reason, Verdict};

#[derive(Deserialize)]
struct ServiceHealth {
    name: String,
    status: String,
}

/// Every service's outcome, in the order given; a failure of the call
/// itself is every service's.
pub(super) async fn ask(
    client: &Client,
    api_url: &reqwest::Url,
    token: &str,
    project_ref: &str,
    services: &[String],
) -> Vec<(String, Verdict)> {
    let reported = match fetch(client, api_url, token, project_ref, services).await {
        Ok(reported) => reported,
        Err(verdict) => {
            return services
                .iter()
                .map(|s| (s.clone(), verdict.clone()))
                .collect()
        }
    };
    services
        .iter()
        .map(|name| {
            let status = reported
                .iter()
                .find(|r| &r.name == name)
                .map(|r| r.status.as_str());
            let verdict = match status {
                Some("ACTIVE_HEALTHY") => Verdict::healthy(),
                Some("COMING_UP") => Verdict::degraded(Reason::BadStatus, "COMING_UP"),
                Some(other) => Verdict::unhealthy(Reason::BadStatus, other),
                None => Verdict::unhealthy(Reason::BadResponse, "service absent from answer"),
            };
            (name.clone(), verdict)
        })
        .collect()
}

async fn fetch(
    client: &Client,
    api_url: &reqwest::Url,
    token: &str,
    project_ref: &str,
    services: &[String],
) -> Result<Vec<ServiceHealth>, Verdict> {
    let mut url = api_url
        .join(&format!("v1/projects/{project_ref}/health"))
        .map_err(|e| Failure::new(Reason::NotConfigured, e.to_string()))?;
    {
        let mut query = url.query_pairs_mut();
        for service in services {
            query.append_pair("services", service);
        }
    }
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| transport_failure(&e))?;
    let status = response.status();
    if status != StatusCode::OK {
        return Err(status_verdict(status, None));
    }
    let body = read_body(response).await?;
    serde_json::from_slice::<Vec<ServiceHealth>>(&body).map_err(|_| {
        Failure::new(
            Reason::BadResponse,
            "management API health is not an array of services",
        )
        .into()
    })
}
