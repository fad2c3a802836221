//! `serve` mode: a plain HTTP/1.1 server on [`crate::router::respond`].
//!
//! On SIGTERM/SIGINT it stops accepting, lets answers in progress finish
//! (at most [`DRAIN`]), and returns.
//!
//! It holds up as a public server: clients get [`HEADER_TIMEOUT`] to send
//! their request headers, the process raises its open-file limit to the
//! hard one at start-up ([`raise_open_file_limit`], as Go's runtime does: a
//! soft 1,024 would let a thousand idle clients starve it), and accepts at
//! most [`connection_cap`] connections at once, so that it never runs out of
//! file descriptors — the database and Supabase connections need them too.
//! Past the cap, new clients wait in the kernel's backlog.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::router::{respond, Inbound};
use crate::App;

/// How long answers in progress may take after a stop request.
const DRAIN: Duration = Duration::from_secs(5);

/// A client gets this long to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// File descriptors kept free for everything but client connections: the
/// database pool, Supabase, the listener, stdio, the runtime.
const RESERVED_FDS: u64 = 128;

/// Most client connections at once, whatever the limit allows: bounds the
/// memory a flood of idle connections can take.
const MAX_CONNECTIONS: u64 = 16_384;

/// Raises this process's soft limit on open files to its hard limit and
/// returns the soft limit now in force (`None` if it cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

/// Client connections accepted at once for an open-file limit of `limit`:
/// below it by [`RESERVED_FDS`], at least 16, at most [`MAX_CONNECTIONS`].
pub fn connection_cap(limit: Option<u64>) -> usize {
    let limit = limit.unwrap_or(1_024);
    limit
        .saturating_sub(RESERVED_FDS)
        .clamp(16, MAX_CONNECTIONS) as usize
}

async fn answer(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let inbound = Inbound {
        method: request.method(),
        path: request.uri().path(),
        query: request.uri().query(),
        authorization: request.headers().get(header::AUTHORIZATION),
        accept: request.headers().get(header::ACCEPT),
        stage: None,
    };
    // hyper leaves out the body of a HEAD answer and keeps its length.
    respond(app, inbound)
        .await
        .map(|body| Full::new(Bytes::from(body)))
}

/// Serves until `shutdown` resolves (in `main`: SIGTERM/SIGINT), with at
/// most `max_connections` client connections open at once.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    loop {
        let slot = tokio::select! {
            // Infallible: the semaphore is never closed.
            slot = slots.clone().acquire_owned() => slot.expect("open semaphore"),
            () = &mut shutdown => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: pause, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(answer(&app, request).await) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    tracing::info!("stopping: draining connections");
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period; closing them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_stays_below_the_open_file_limit() {
        assert_eq!(connection_cap(Some(1_024)), 896);
        assert_eq!(connection_cap(Some(100)), 16);
        assert_eq!(connection_cap(Some(1_048_576)), 16_384);
        assert_eq!(connection_cap(None), 896);
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_one() {
        let raised = raise_open_file_limit().expect("the limit can be read");
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!((raised, soft), (hard, hard));
    }
}
