//! Lambda mode: the custom-runtime loop. Each event is one of
//! - an HTTP event (API Gateway REST v1, HTTP API v2, ALB, Function URL):
//!   decoded by `lambda_http` and answered by [`crate::http::respond`];
//! - a scheduled event (EventBridge rule or Scheduler): runs the checks and
//!   returns the public JSON object;
//! - anything else: an invocation error with a one-line message.

use std::sync::Arc;

use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Body, RequestExt, Service};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::http::{respond, Inbound};
use crate::App;

/// The invocation error for an event we do not handle.
#[derive(Debug, thiserror::Error)]
#[error(
    "unsupported event: expected an API Gateway, ALB, Function URL or EventBridge scheduled event"
)]
pub struct UnsupportedEvent;

impl From<UnsupportedEvent> for Diagnostic {
    fn from(e: UnsupportedEvent) -> Self {
        Diagnostic {
            error_type: "UnsupportedEvent".into(),
            error_message: e.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct ScheduledProbe {
    source: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
}

fn is_scheduled(raw: &RawValue) -> bool {
    serde_json::from_str::<ScheduledProbe>(raw.get()).is_ok_and(|p| {
        p.source.as_deref() == Some("aws.events")
            && p.detail_type.as_deref() == Some("Scheduled Event")
    })
}

/// Answers one event (the whole Lambda handler, callable from tests) with
/// the JSON the runtime sends back.
pub async fn handle(
    app: &App,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Box<RawValue>, UnsupportedEvent> {
    let LambdaEvent { payload, context } = event;
    if is_scheduled(&payload) {
        let report = app.evaluator.report().await;
        let body = crate::report::render(&report, &app.config.version, false);
        // Infallible: `render` produced JSON text.
        return Ok(RawValue::from_string(body).expect("rendered body is JSON"));
    }
    let request: LambdaRequest =
        serde_json::from_str(payload.get()).map_err(|_| UnsupportedEvent)?;
    let mut adapter =
        lambda_http::Adapter::from(service_fn(|request: lambda_http::Request| async move {
            Ok::<_, std::convert::Infallible>(answer(app, request).await)
        }));
    match adapter.call(LambdaEvent::new(request, context)).await {
        // Infallible: the response is strings, numbers and header maps.
        Ok(response) => {
            Ok(serde_json::value::to_raw_value(&response).expect("Lambda response serialises"))
        }
        Err(never) => match never {},
    }
}

async fn answer(app: &App, request: lambda_http::Request) -> http::Response<Body> {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.stage.as_deref(),
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.as_deref(),
        _ => None,
    };
    let inbound = Inbound {
        method: request.method(),
        path: request.uri().path(),
        query: request.uri().query(),
        authorization: request.headers().get(http::header::AUTHORIZATION),
        stage,
    };
    let head = request.method() == http::Method::HEAD;
    respond(app, inbound)
        .await
        .map(|body| if head { Body::Empty } else { Body::Text(body) })
}

/// Runs the runtime loop until the process is stopped.
pub async fn run(app: Arc<App>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let app = app.clone();
        async move { handle(&app, event).await }
    }))
    .await
}
