//! One vocabulary for failures, whatever failed: [`Failure`] (a [`Reason`]
//! and the internal text for logs) and [`reason_of`], which reads an error's
//! chain of causes — TLS, timeouts, refused or reset connections, name
//! look-ups — the same way for Postgres, HTTPS and anything a component
//! adds. A component maps only what is its own on top (SQLSTATE codes, HTTP
//! statuses) and hands the rest here.

use std::error::Error;
use std::io::ErrorKind;

use crate::outcome::{CheckOutcome, Reason, Verdict};

/// A classified failure: the reason shown to authorised callers and the
/// internal text that only logs see (after redaction).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub reason: Reason,
    pub message: String,
}

impl Failure {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// An error classified by its causes; `fallback` when none tells.
    pub fn from_error(e: &(dyn Error + 'static), fallback: Reason) -> Self {
        Self::new(reason_of(e).unwrap_or(fallback), chain(e))
    }
}

/// A failure to observe is an unhealthy verdict with its reason.
impl From<Failure> for Verdict {
    fn from(failure: Failure) -> Self {
        Verdict::unhealthy(failure.reason, failure.message)
    }
}

impl From<Failure> for CheckOutcome {
    fn from(failure: Failure) -> Self {
        Verdict::from(failure).into()
    }
}

/// The transport reason an error's causes show, if any: a TLS error → `tls`;
/// a timed-out I/O operation → `timeout`; any other I/O error (refused,
/// reset, no route, failed name look-up) → `unreachable`. Errors that wrap
/// their cause only in text are read by their words as a last resort.
pub fn reason_of(e: &(dyn Error + 'static)) -> Option<Reason> {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return Some(Reason::Tls);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            let tls_inside = io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            return Some(if tls_inside {
                Reason::Tls
            } else if io.kind() == ErrorKind::TimedOut {
                Reason::Timeout
            } else {
                Reason::Unreachable
            });
        }
        source = s.source();
    }
    let text = chain(e);
    if text.contains("TLS") || text.contains("certificate") {
        Some(Reason::Tls)
    } else if text.contains("timed out") || text.contains("timeout") {
        Some(Reason::Timeout)
    } else if text.contains("dns error") || text.contains("lookup address") {
        Some(Reason::Unreachable)
    } else {
        None
    }
}

/// An error and its causes in one line, for logs (a cause whose text the
/// previous one already holds is not repeated).
pub fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_decide_the_reason_whatever_wraps_them() {
        let refused = Outer(std::io::Error::from(ErrorKind::ConnectionRefused));
        assert_eq!(reason_of(&refused), Some(Reason::Unreachable));
        let timed_out = Outer(std::io::Error::from(ErrorKind::TimedOut));
        assert_eq!(reason_of(&timed_out), Some(Reason::Timeout));
        let tls = Outer(std::io::Error::new(
            ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        ));
        assert_eq!(reason_of(&tls), Some(Reason::Tls));
        let plain = std::fmt::Error;
        assert_eq!(reason_of(&plain), None);
        assert_eq!(
            Failure::from_error(&plain, Reason::BadResponse).reason,
            Reason::BadResponse
        );
    }

    #[test]
    fn chain_joins_causes_once() {
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(chain(&e), "outer: connection refused");
    }
}
