//! A stand-in for the AWS Lambda Runtime API (2018-06-01): hands out queued
//! events on `/invocation/next` and records what the function posts back.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

pub struct RuntimeApi {
    address: String,
    results: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, String)>>,
    server: tokio::task::JoinHandle<()>,
}

struct State {
    events: Mutex<VecDeque<String>>,
    sequence: Mutex<u32>,
    results: mpsc::UnboundedSender<(String, String)>,
}

async fn handle(
    state: Arc<State>,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if path.ends_with("/invocation/next") {
        let next = state.events.lock().unwrap().pop_front();
        let Some(event) = next else {
            // No more events: keep the function waiting, as Lambda does.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Response::new(Full::new(Bytes::new()));
        };
        let id = {
            let mut seq = state.sequence.lock().unwrap();
            *seq += 1;
            format!("req-{seq}")
        };
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 30_000;
        return Response::builder()
            .header("lambda-runtime-aws-request-id", id)
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:eu-west-1:123456789012:function:meshhook-health",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            )
            .body(Full::new(Bytes::from(event)))
            .unwrap();
    }
    let kind = if path.ends_with("/response") {
        "response"
    } else if path.ends_with("/error") {
        "error"
    } else {
        "other"
    };
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let _ = state
        .results
        .send((kind.to_owned(), String::from_utf8_lossy(&body).into_owned()));
    Response::builder()
        .status(202)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

impl RuntimeApi {
    pub async fn start(events: Vec<String>) -> RuntimeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            events: Mutex::new(events.into()),
            sequence: Mutex::new(0),
            results: tx,
        });
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RuntimeApi {
            address,
            results: tokio::sync::Mutex::new(rx),
            server,
        }
    }

    /// `env` plus what Lambda sets for a function that talks to this API.
    pub fn function_env(
        &self,
        env: &std::collections::HashMap<String, String>,
    ) -> std::collections::HashMap<String, String> {
        let mut env = env.clone();
        for (k, v) in [
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", "meshhook-health".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "/aws/lambda/meshhook-health".into(),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test".into()),
        ] {
            env.insert(k.into(), v);
        }
        env
    }

    /// host:port, as `AWS_LAMBDA_RUNTIME_API` carries it.
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// The first `n` results (kind, body), waiting at most `limit`.
    pub async fn results(&self, n: usize, limit: Duration) -> Vec<(String, String)> {
        let mut rx = self.results.lock().await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(limit, async {
            while out.len() < n {
                match rx.recv().await {
                    Some(r) => out.push(r),
                    None => break,
                }
            }
        })
        .await;
        out
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}
