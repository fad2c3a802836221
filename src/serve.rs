//! `serve` mode: a plain HTTP/1.1 server on [`crate::http::respond`].
//!
//! On SIGTERM/SIGINT it stops accepting, lets answers in progress finish
//! (at most [`DRAIN`]), and returns.

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

use crate::http::{respond, Inbound};
use crate::App;

/// How long answers in progress may take after a stop request.
const DRAIN: Duration = Duration::from_secs(5);

/// A client gets this long to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

async fn answer(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let inbound = Inbound {
        method: request.method(),
        path: request.uri().path(),
        query: request.uri().query(),
        authorization: request.headers().get(header::AUTHORIZATION),
        stage: None,
    };
    // hyper leaves out the body of a HEAD answer and keeps its length.
    respond(app, inbound)
        .await
        .map(|body| Full::new(Bytes::from(body)))
}

/// Serves until `shutdown` resolves (in `main`: SIGTERM/SIGINT).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    loop {
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
