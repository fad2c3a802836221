//! (method, path, query, authorization, accept) → response. Both
//! transports — the Lambda events and the plain HTTP server — call
//! [`respond`], so routing, status codes and headers live here once.

use http::{header, HeaderValue, Method, Response, StatusCode};
use subtle::ConstantTimeEq;

use crate::env::Secret;
use crate::outcome::Status;
use crate::prometheus::Exposition;
use crate::App;

/// What the handler needs of a request, whatever carried it.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authorization: Option<&'a HeaderValue>,
    /// `Accept`: which exposition format `/metrics` answers in.
    pub accept: Option<&'a HeaderValue>,
    /// API Gateway stage, whose prefix the path may carry.
    pub stage: Option<&'a str>,
}

/// Where a request goes. `/metrics` is a route only where the app has an
/// exposition (serve mode with `HEALTH_METRICS_TOKEN`); elsewhere it is
/// unknown like any other path.
enum Route<'a> {
    Health,
    Live,
    Metrics(&'a Exposition),
    NotFound,
}

fn route<'a>(path: &str, stage: Option<&str>, exposition: Option<&'a Exposition>) -> Route<'a> {
    let mut path = path;
    if let Some(stage) = stage.filter(|s| !s.is_empty() && *s != "$default") {
        if let Some(rest) = path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
            if rest.is_empty() || rest.starts_with('/') {
                path = rest;
            }
        }
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    match path {
        "/health" => Route::Health,
        "/health/live" => Route::Live,
        "/metrics" => exposition.map_or(Route::NotFound, Route::Metrics),
        _ => Route::NotFound,
    }
}

/// `verbose` present with a true-ish value (`1`, `true`, `yes`, or bare),
/// read as a form decodes it (`%76erbose=%31` is `verbose=1`).
fn wants_verbose(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes())
            .any(|(key, value)| key == "verbose" && matches!(&*value, "" | "1" | "true" | "yes"))
    })
}

/// Constant-time comparison of the bearer token with the configured one.
fn authorised(expected: Option<&Secret>, authorization: Option<&HeaderValue>) -> bool {
    let (Some(expected), Some(given)) = (expected, authorization) else {
        return false;
    };
    // RFC 9110: the scheme's name is case-insensitive.
    let given = given.as_bytes();
    let scheme = b"bearer ";
    if given.len() < scheme.len() || !given[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return false;
    }
    given[scheme.len()..]
        .ct_eq(expected.expose().as_bytes())
        .into()
}

fn json(status: StatusCode, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Answers one request. HEAD gets GET's status, headers and body: each
/// transport drops the body of a HEAD answer (hyper does it itself, keeping
/// the Content-Length of the GET answer).
pub async fn respond(app: &App, request: Inbound<'_>) -> Response<String> {
    let route = route(request.path, request.stage, app.exposition.as_deref());
    if matches!(route, Route::NotFound) {
        return json(StatusCode::NOT_FOUND, crate::report::error("not found"));
    }
    if request.method != Method::GET && request.method != Method::HEAD {
        let mut response = json(
            StatusCode::METHOD_NOT_ALLOWED,
            crate::report::error("method not allowed"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let configured = app.config.meshhook_version.as_deref();
    match route {
        // Touches no dependency: the configured version, else the one the
        // last evaluation saw.
        Route::Live => {
            let last = app.evaluator.last_report();
            let version = crate::report::public_version(configured, last.as_deref());
            json(StatusCode::OK, crate::report::live(version))
        }
        Route::Metrics(exposition) => metrics(app, exposition, request).await,
        _ => {
            let report = app.evaluator.report().await;
            let token = app.config.details_token.as_ref();
            let verbose = wants_verbose(request.query) && authorised(token, request.authorization);
            let status = match report.status {
                Status::Healthy | Status::Degraded => StatusCode::OK,
                Status::Unhealthy => StatusCode::from_u16(app.config.unhealthy_status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            };
            json(status, crate::report::render(&report, configured, verbose))
        }
    }
}

/// `/metrics`: the bearer token, else 401 (Prometheus then marks the
/// target down); with it, the report exactly as `/health` gets it — the
/// cached one, else the evaluation in flight, else a new one when the
/// cache is stale — so a scrape and a request that arrive together share
/// one evaluation, and scrapes within the cache TTL start none.
async fn metrics(app: &App, exposition: &Exposition, request: Inbound<'_>) -> Response<String> {
    if !authorised(app.config.metrics_token.as_ref(), request.authorization) {
        let mut response = json(
            StatusCode::UNAUTHORIZED,
            crate::report::error("unauthorized"),
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    app.evaluator.report().await;
    let openmetrics = crate::prometheus::wants_openmetrics(request.accept);
    let mut response = Response::new(exposition.encode(openmetrics));
    let content_type = if openmetrics {
        crate::prometheus::OPENMETRICS
    } else {
        crate::prometheus::CLASSIC
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which route `path` takes, by name; with an exposition when `metrics`.
    fn to(path: &str, stage: Option<&str>, metrics: bool) -> &'static str {
        let exposition = Exposition::new(&[]);
        match route(path, stage, metrics.then_some(&exposition)) {
            Route::Health => "health",
            Route::Live => "live",
            Route::Metrics(_) => "metrics",
            Route::NotFound => "not found",
        }
    }

    #[test]
    fn routes_tolerate_stage_prefix_and_trailing_slash() {
        assert_eq!(to("/health", None, false), "health");
        assert_eq!(to("/health/", None, false), "health");
        assert_eq!(to("/prod/health", Some("prod"), false), "health");
        assert_eq!(to("/prod/health/live/", Some("prod"), false), "live");
        assert_eq!(to("/health", Some("prod"), false), "health");
        assert_eq!(to("/health", Some("$default"), false), "health");
        assert_eq!(to("/prod/health", None, false), "not found");
        assert_eq!(to("/production/health", Some("prod"), false), "not found");
        assert_eq!(to("/healthz", None, false), "not found");
        assert_eq!(to("/metrics/", None, true), "metrics");
        assert_eq!(to("/prod/metrics", Some("prod"), true), "metrics");
        assert_eq!(to("/metrics", None, false), "not found");
        assert_eq!(to("/", None, true), "not found");
        assert_eq!(to("", None, true), "not found");
    }

    #[test]
    fn verbose_flag_needs_a_true_value() {
        assert!(wants_verbose(Some("verbose=1")));
        assert!(wants_verbose(Some("a=b&verbose")));
        assert!(wants_verbose(Some("verbose=true")));
        assert!(!wants_verbose(Some("verbose=0")));
        assert!(!wants_verbose(Some("notverbose=1")));
        assert!(!wants_verbose(None));
        assert!(wants_verbose(Some("%76erbose=%31")), "percent-decoded");
        assert!(wants_verbose(Some("a=b%26verbose&verbose=yes")));
        assert!(
            !wants_verbose(Some("a=b%26verbose")),
            "an escaped & joins no pair"
        );
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_exact() {
        let secret = Secret::new("s3cret".to_owned());
        let given =
            |value: &'static str| authorised(Some(&secret), Some(&HeaderValue::from_static(value)));
        assert!(given("Bearer s3cret"));
        assert!(given("bearer s3cret"));
        assert!(given("BEARER s3cret"));
        assert!(!given("Bearer S3cret"));
        assert!(!given("Bearer"));
        assert!(!given("Basic s3cret"));
        assert!(!authorised(
            None,
            Some(&HeaderValue::from_static("Bearer s3cret"))
        ));
    }
}
