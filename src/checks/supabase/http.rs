//! What every Supabase probe shares: the HTTPS answer's status mapped to a
//! verdict (Supabase's own codes included). Transport failures and bounded
//! body reads are every probe's: [`crate::https`].

use reqwest::StatusCode;

use crate::outcome::{Reason, Verdict};

/// An answer other than the healthy one, by its status: 401/403 → `auth`;
/// 540 (Supabase: project paused, down until its owner restores it) →
/// `paused`; 402 (Supabase: a usage quota exceeded, services restricted) →
/// `over_quota`; 544 (Supabase's gateway timeout) → `timeout`; 429 →
/// degraded (`rate_limited`: the service answers, but not our question);
/// anything else → `bad_status`. `code` is PostgREST's error code, when the
/// body carried one; the log text names it beside the status.
pub(super) fn status_verdict(status: StatusCode, code: Option<&str>) -> Verdict {
    let text = match code {
        Some(code) => format!("HTTP {} ({code})", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    };
    let reason = match status.as_u16() {
        401 | 403 => Reason::Auth,
        540 => Reason::Paused,
        402 => Reason::OverQuota,
        544 => Reason::Timeout,
        429 => return Verdict::degraded(Reason::RateLimited, text),
        _ => Reason::BadStatus,
    };
    Verdict::unhealthy(reason, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    #[test]
    fn supabase_statuses_have_reasons_of_their_own() {
        let of = |status: u16| {
            let verdict = status_verdict(StatusCode::from_u16(status).unwrap(), None);
            (verdict.status, verdict.reason.unwrap())
        };
        assert_eq!(of(540), (Status::Unhealthy, Reason::Paused));
        assert_eq!(of(402), (Status::Unhealthy, Reason::OverQuota));
        assert_eq!(of(544), (Status::Unhealthy, Reason::Timeout));
        assert_eq!(of(401), (Status::Unhealthy, Reason::Auth));
        assert_eq!(of(403), (Status::Unhealthy, Reason::Auth));
        assert_eq!(of(429), (Status::Degraded, Reason::RateLimited));
        assert_eq!(of(503), (Status::Unhealthy, Reason::BadStatus));
        let logged = status_verdict(StatusCode::SERVICE_UNAVAILABLE, Some("PGRST002"));
        assert_eq!(logged.text.as_deref(), Some("HTTP 503 (PGRST002)"));
    }
}
