//! A stand-in for the AWS Lambda Runtime API (2018-06-01): hands out queued
//! events on `/invocation/next` (a function with nothing to do waits there,
//! as on Lambda) and records what the function posts back, with the moments
//! it happened — so tests read answers and `make bench` reads timings from
//! the same stand-in.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, Notify};

/// What the function posted for one invocation. (`id` and `at` are read by
/// `make bench`, which times the handler.)
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct Answer {
    pub id: String,
    /// `response` or `error` (`other` for any other post).
    pub kind: String,
    pub body: String,
    pub at: Instant,
}

pub struct RuntimeApi {
    address: String,
    state: Arc<State>,
    answers: tokio::sync::Mutex<mpsc::UnboundedReceiver<Answer>>,
    server: tokio::task::JoinHandle<()>,
}

/// When the function first asked for work, and when each invocation was
/// handed out.
#[derive(Default)]
struct Seen {
    first_next: Option<Instant>,
    handed: HashMap<String, Instant>,
}

struct State {
    events: Mutex<VecDeque<(String, String)>>,
    queued: Notify,
    sequence: Mutex<u64>,
    seen: Mutex<Seen>,
    answers: mpsc::UnboundedSender<Answer>,
}

impl State {
    fn queue(&self, event: &str, n: usize) {
        let mut events = self.events.lock().unwrap();
        let mut sequence = self.sequence.lock().unwrap();
        for _ in 0..n {
            *sequence += 1;
            events.push_back((format!("req-{sequence}"), event.to_owned()));
        }
        drop(events);
        self.queued.notify_waiters();
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if path.ends_with("/invocation/next") {
        state
            .seen
            .lock()
            .unwrap()
            .first_next
            .get_or_insert_with(Instant::now);
        let (id, event) = loop {
            let queued = state.queued.notified();
            if let Some(next) = state.events.lock().unwrap().pop_front() {
                break next;
            }
            queued.await;
        };
        state
            .seen
            .lock()
            .unwrap()
            .handed
            .insert(id.clone(), Instant::now());
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
    let at = Instant::now();
    // /2018-06-01/runtime/invocation/{id}/response|error
    let id = path.split('/').nth(4).unwrap_or("").to_owned();
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
    let _ = state.answers.send(Answer {
        id,
        kind: kind.to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at,
    });
    Response::builder()
        .status(202)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

/// A sample event of `events/` (what API Gateway, ALB, the schedulers send).
pub fn event(name: &str) -> String {
    std::fs::read_to_string(format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("events/{name}: {e}"))
}

impl RuntimeApi {
    /// Serves on a free loopback port with `events` queued.
    pub async fn start(events: Vec<String>) -> RuntimeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            events: Mutex::default(),
            queued: Notify::new(),
            sequence: Mutex::new(0),
            seen: Mutex::default(),
            answers: tx,
        });
        for event in &events {
            state.queue(event, 1);
        }
        let server = {
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
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
            })
        };
        RuntimeApi {
            address,
            state,
            answers: tokio::sync::Mutex::new(rx),
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

    /// The real binary in Lambda mode against this API, with `env` alone
    /// (plus [`Self::function_env`]'s variables); its stdout, where the EMF
    /// lines go, is piped for [`super::Running::kill_and_read_stdout`].
    pub fn spawn_function(&self, env: &HashMap<String, String>) -> super::Running {
        super::Running(
            std::process::Command::new(env!("CARGO_BIN_EXE_meshhook-health"))
                .env_clear()
                .envs(self.function_env(env))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// host:port, as `AWS_LAMBDA_RUNTIME_API` carries it.
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// Queues `n` copies of `event`.
    pub fn queue(&self, event: &str, n: usize) {
        self.state.queue(event, n);
    }

    /// Forgets queued events and what was seen (for the next process).
    #[allow(dead_code)] // make bench
    pub fn reset(&self) {
        *self.state.seen.lock().unwrap() = Seen::default();
        self.state.events.lock().unwrap().clear();
    }

    /// When the function first asked for work since the last reset: the
    /// end of its Init phase.
    #[allow(dead_code)] // make bench
    pub fn first_next(&self) -> Option<Instant> {
        self.state.seen.lock().unwrap().first_next
    }

    /// The next `n` answers, waiting at most `limit`.
    pub async fn answers(&self, n: usize, limit: Duration) -> Vec<Answer> {
        let mut rx = self.answers.lock().await;
        let mut out = Vec::with_capacity(n);
        let _ = tokio::time::timeout(limit, async {
            while out.len() < n {
                match rx.recv().await {
                    Some(a) => out.push(a),
                    None => break,
                }
            }
        })
        .await;
        out
    }

    /// The next `n` results as (kind, body), waiting at most `limit`.
    pub async fn results(&self, n: usize, limit: Duration) -> Vec<(String, String)> {
        self.answers(n, limit)
            .await
            .into_iter()
            .map(|a| (a.kind, a.body))
            .collect()
    }

    /// Handler time of each answer: its arrival minus its hand-out.
    #[allow(dead_code)] // make bench
    pub fn handler_times(&self, answers: &[Answer]) -> Vec<Duration> {
        let seen = self.state.seen.lock().unwrap();
        answers
            .iter()
            .filter_map(|a| seen.handed.get(&a.id).map(|h| a.at.duration_since(*h)))
            .collect()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}
