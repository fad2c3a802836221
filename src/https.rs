//! What every HTTPS probe shares (Supabase's services, MeshHook's app): a
//! request that got no (whole) answer in the shared failure vocabulary, and
//! a bounded body read. Each component maps the statuses of its own
//! service on top.

use crate::failure::Failure;
use crate::outcome::Reason;

/// Largest response body read: health answers are tiny, and a peer that
/// streams megabytes must not cost us memory.
const MAX_BODY: usize = 64 * 1024;

/// A request that got no (whole) answer: timed out → `timeout`; refused,
/// reset, unresolvable → `unreachable`; a TLS failure → `tls`; a broken
/// answer → `bad_response`. The URL is kept out of the text: it may carry a
/// key (Realtime's handshake sends it as a query parameter, as supabase-js
/// does).
pub fn transport_failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::new(Reason::Timeout, crate::failure::chain(e));
    }
    let fallback = if e.is_connect() || e.is_request() {
        Reason::Unreachable
    } else {
        Reason::BadResponse
    };
    let mut failure = Failure::from_error(e, fallback);
    if let Some(url) = e.url() {
        failure.message = failure.message.replace(url.as_str(), "<url>");
    }
    failure
}

/// The whole body, at most 64 KiB (`bad_response` past that).
pub async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_failure(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Failure::new(Reason::BadResponse, "body too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
