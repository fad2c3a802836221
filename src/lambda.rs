//! Lambda mode: the custom-runtime loop. Each event is one of
//! - an HTTP event (API Gateway REST v1, HTTP API v2, ALB, Function URL):
//!   decoded into `lambda_http`'s event types, its fields routed by
//!   [`crate::router::respond`], and answered in the event's own shape;
//! - a scheduled event (EventBridge rule or Scheduler): runs the checks and
//!   returns the public JSON object;
//! - anything else: an invocation error with a one-line message.

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::Method;
use lambda_http::aws_lambda_events::alb::AlbTargetGroupResponse;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::request::LambdaRequest;
use lambda_http::Body;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::router::{respond, Inbound};
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
    let payload = event.payload;
    if is_scheduled(&payload) {
        let report = app.evaluator.report().await;
        let configured = app.config.meshhook_version.as_deref();
        let body = crate::report::render(&report, configured, false);
        // Infallible: `render` produced JSON text.
        return Ok(RawValue::from_string(body).expect("rendered body is JSON"));
    }
    let request: LambdaRequest =
        serde_json::from_str(payload.get()).map_err(|_| UnsupportedEvent)?;
    let answer = answer(app, &request).await?;
    // Infallible: the response is strings, numbers and header maps.
    Ok(serde_json::value::to_raw_value(&answer).expect("Lambda response serialises"))
}

/// The three HTTP answers, each in its event's shape.
#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    ApiGatewayV1(ApiGatewayProxyResponse),
    ApiGatewayV2(ApiGatewayV2httpResponse),
    Alb(AlbTargetGroupResponse),
}

/// Routes the event's own fields: the decoded event already holds the
/// method, path, query, `Authorization` and stage, so no URI is built (a
/// hostile `Host` or path could not make one) and the body is never read.
async fn answer(app: &App, request: &LambdaRequest) -> Result<Answer, UnsupportedEvent> {
    let (method, path, query, headers, stage) = match request {
        LambdaRequest::ApiGatewayV1(event) => (
            &event.http_method,
            &event.path,
            Some(encoded(&event.query_string_parameters)),
            &event.headers,
            event.request_context.stage.as_deref(),
        ),
        LambdaRequest::ApiGatewayV2(event) => (
            &event.request_context.http.method,
            &event.raw_path,
            event.raw_query_string.clone(),
            &event.headers,
            event.request_context.stage.as_deref(),
        ),
        // An ALB passes the query as the client sent it, still
        // percent-encoded: joined as it is, the router decodes it.
        LambdaRequest::Alb(event) => (
            &event.http_method,
            &event.path,
            Some(joined(&event.query_string_parameters)),
            &event.headers,
            None,
        ),
        // WebSocket and VPC Lattice events are not ours.
        _ => return Err(UnsupportedEvent),
    };
    let inbound = Inbound {
        method,
        path: path.as_deref().unwrap_or("/"),
        query: query.as_deref(),
        authorization: headers.get(AUTHORIZATION),
        // No /metrics in Lambda mode (`App::exposition` is `None`).
        accept: None,
        stage,
    };
    let head = method == Method::HEAD;
    let (parts, body) = respond(app, inbound).await.into_parts();
    // A HEAD answer has GET's status and headers, and no body.
    let body = (!head).then_some(Body::Text(body));
    let (status, headers) = (parts.status, parts.headers);
    let code = i64::from(status.as_u16());
    Ok(match request {
        LambdaRequest::ApiGatewayV1(_) => {
            let mut answer = ApiGatewayProxyResponse::default();
            answer.status_code = code;
            // API Gateway merges `headers` into `multiValueHeaders`: one only.
            answer.multi_value_headers = headers;
            answer.body = body;
            Answer::ApiGatewayV1(answer)
        }
        LambdaRequest::ApiGatewayV2(_) => {
            let mut answer = ApiGatewayV2httpResponse::default();
            answer.status_code = code;
            answer.headers = headers;
            answer.body = body;
            Answer::ApiGatewayV2(answer)
        }
        _ => {
            let mut answer = AlbTargetGroupResponse::default();
            answer.status_code = code;
            let reason = status.canonical_reason().unwrap_or_default();
            answer.status_description = Some(format!("{code} {reason}"));
            // Either may be configured on the target group: both.
            answer.headers = headers.clone();
            answer.multi_value_headers = headers;
            answer.body = body;
            Answer::Alb(answer)
        }
    })
}

/// Query parameters that API Gateway decoded, encoded again as a query
/// string (the router decodes it as it decodes serve mode's).
fn encoded(parameters: &QueryMap) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in parameters.iter() {
        query.append_pair(key, value);
    }
    query.finish()
}

/// Query parameters an ALB passed as the client sent them (still
/// percent-encoded), joined as they came.
fn joined(parameters: &QueryMap) -> String {
    let pairs: Vec<String> = parameters
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    pairs.join("&")
}

/// Runs the runtime loop until the process is stopped.
pub async fn run(app: Arc<App>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let app = app.clone();
        async move { handle(&app, event).await }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_parameters_are_encoded_again_so_the_router_reads_each_once() {
        let map = QueryMap::from(std::collections::HashMap::from([
            ("verbose".to_owned(), vec!["1".to_owned()]),
            ("x".to_owned(), vec!["a&verbose=0 %".to_owned()]),
        ]));
        let query = encoded(&map);
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(pairs.len(), 2, "{query}");
        assert!(pairs.contains(&("verbose".into(), "1".into())), "{query}");
        assert!(
            pairs.contains(&("x".into(), "a&verbose=0 %".into())),
            "{query}"
        );
    }
}
