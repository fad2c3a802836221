//! Lambda mode: the custom-runtime loop. Each event is one of
//! - an HTTP event (API Gateway REST v1, HTTP API v2, ALB, Function URL):
//!   decoded by `lambda_http` and answered by [`crate::http::respond`];
//! - a scheduled event (EventBridge rule or Scheduler): runs the checks and
//!   returns the public JSON object;
//! - anything else: an invocation error with a one-line message.

use std::sync::Arc;

use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Body, RequestExt, Service};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
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
        let configured = app.config.meshhook_version.as_deref();
        let body = crate::report::render(&report, configured, false);
        // Infallible: `render` produced JSON text.
        return Ok(RawValue::from_string(body).expect("rendered body is JSON"));
    }
    let mut request: LambdaRequest =
        serde_json::from_str(payload.get()).map_err(|_| UnsupportedEvent)?;
    defuse(&mut request)?;
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

/// Makes an event safe for `lambda_http`'s conversion to a request, which
/// panics on a URL it cannot parse (a hostile `Host` header or path).
/// Routing needs neither host nor scheme, so those go; the path and stage
/// keep their meaning but are percent-encoded down to characters every URL
/// parser accepts.
fn defuse(request: &mut LambdaRequest) -> Result<(), UnsupportedEvent> {
    use http::header::{HeaderName, HOST};
    const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    let strip = |headers: &mut http::HeaderMap| {
        headers.remove(HOST);
        headers.remove(X_FORWARDED_PROTO);
    };
    // Bodies are never read; an invalid base64 body would panic in decoding.
    match request {
        LambdaRequest::ApiGatewayV1(event) => {
            strip(&mut event.headers);
            strip(&mut event.multi_value_headers);
            (event.body, event.is_base64_encoded) = (None, false);
            event.request_context.domain_name = None;
            event.path = Some(safe_path(event.path.as_deref()));
            event.request_context.stage = event.request_context.stage.as_deref().map(safe_segment);
            bound_query(&mut event.query_string_parameters);
            bound_query(&mut event.multi_value_query_string_parameters);
        }
        LambdaRequest::ApiGatewayV2(event) => {
            strip(&mut event.headers);
            (event.body, event.is_base64_encoded) = (None, false);
            event.request_context.domain_name = None;
            event.raw_path = Some(safe_path(event.raw_path.as_deref()));
            // Appended to the URI as it is: keep it to what a URI allows.
            event.raw_query_string = event.raw_query_string.as_deref().map(safe_query);
            event.request_context.stage = event.request_context.stage.as_deref().map(safe_segment);
        }
        LambdaRequest::Alb(event) => {
            strip(&mut event.headers);
            strip(&mut event.multi_value_headers);
            (event.body, event.is_base64_encoded) = (None, false);
            event.path = Some(safe_path(event.path.as_deref()));
            bound_query(&mut event.query_string_parameters);
            bound_query(&mut event.multi_value_query_string_parameters);
        }
        // WebSocket and VPC Lattice events are not ours.
        _ => return Err(UnsupportedEvent),
    }
    Ok(())
}

/// Longest path or query kept as it is: a URI longer than 64 KiB cannot be
/// built (and API Gateway itself stops near 10 KiB).
const MAX_URI_PART: usize = 8 * 1024;

/// Percent-encodes every byte outside RFC 3986's unreserved and sub-delim
/// characters (and `:@/%`), and makes the path absolute. An overlong path
/// becomes one that no route matches.
fn safe_path(path: Option<&str>) -> String {
    let path = path.unwrap_or("/");
    if path.len() > MAX_URI_PART {
        return "/.overlong".to_owned();
    }
    let mut out = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        out.push('/');
    }
    out.extend(utf8_percent_encode(path, PATH));
    out
}

/// A query string: as [`safe_path`], keeping `?`, `&` and `=`. An overlong
/// one keeps only its `verbose` parameters, the only ones read.
fn safe_query(query: &str) -> String {
    let verbose_only;
    let query = if query.len() > MAX_URI_PART {
        verbose_only = query
            .split('&')
            .filter(|p| p.split('=').next() == Some("verbose") && p.len() < 64)
            .collect::<Vec<_>>()
            .join("&");
        verbose_only.as_str()
    } else {
        query
    };
    utf8_percent_encode(query, QUERY).to_string()
}

/// Query parameters as a map: an overlong set keeps only `verbose`.
fn bound_query(map: &mut QueryMap) {
    let size: usize = map.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    if size > MAX_URI_PART {
        let verbose: Vec<String> = map
            .all("verbose")
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.len() < 64)
            .map(str::to_owned)
            .collect();
        let mut kept = std::collections::HashMap::new();
        if !verbose.is_empty() {
            kept.insert("verbose".to_owned(), verbose);
        }
        *map = QueryMap::from(kept);
    }
}

/// A stage name: as [`safe_path`], and without `/`.
fn safe_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// What a path segment keeps as it is (RFC 3986 `pchar` without `/`):
/// unreserved characters, sub-delims, `:` and `@`; the rest is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');
/// A path: segments, `/`, and escapes already made.
const PATH: &AsciiSet = &SEGMENT.remove(b'/').remove(b'%');
/// A query: as a path, and `?`.
const QUERY: &AsciiSet = &PATH.remove(b'?');

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
        // No /metrics in Lambda mode (App::exposition is None).
        accept: None,
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
