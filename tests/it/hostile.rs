//! Hostile input on both transports: odd methods, huge paths, queries and
//! headers, bytes that are not UTF-8, bad percent-encoding, base64 bodies,
//! malformed and foreign events. Each gets a clear 4xx/405/404 answer or an
//! invocation error — never a panic, a hang or a 5xx of the function's own —
//! and the process keeps serving.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use lambda_runtime::{Context, LambdaEvent};
use meshhook_health::config::Config;
use meshhook_health::evaluator::CheckSet;
use meshhook_health::App;
use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An app with no checks: always healthy, no I/O, so only the transports
/// and routing are under test.
fn quiet_app() -> Arc<App> {
    let env: std::collections::HashMap<String, String> = [
        ("HEALTH_COMPONENTS", "supabase"),
        ("SUPABASE_URL", "http://127.0.0.1:9"),
        ("SUPABASE_ANON_KEY", "k"),
        ("HEALTH_DETAILS_TOKEN", "t"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let checks = CheckSet {
        checks: Vec::new(),
        database: None,
    };
    Arc::new(App::with_checks(Config::from_source(&env).unwrap(), checks))
}

/// Runs an event through the real handler: `Ok(status)` or `Err(message)`.
async fn invoke(app: &App, event: &Value) -> Result<u16, String> {
    let raw = RawValue::from_string(event.to_string()).unwrap();
    match meshhook_health::lambda::handle(app, LambdaEvent::new(raw, Context::default())).await {
        Ok(out) => {
            let response: Value = serde_json::from_str(out.get()).unwrap();
            let status = response["statusCode"].as_u64().expect("statusCode") as u16;
            let content_type = response["headers"]["content-type"]
                .as_str()
                .or_else(|| response["multiValueHeaders"]["content-type"][0].as_str());
            assert_eq!(content_type, Some("application/json"), "{response}");
            Ok(status)
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains('\n'), "one line: {message}");
            Err(message)
        }
    }
}

fn rest(method: &str, path: &str, host: &str, stage: &str) -> Value {
    json!({
        "resource": "/{proxy+}", "path": path, "httpMethod": method,
        "headers": {"Host": host, "X-Forwarded-Proto": "ht tp"},
        "multiValueHeaders": {"Host": [host]},
        "queryStringParameters": null, "multiValueQueryStringParameters": null,
        "pathParameters": null, "stageVariables": null,
        "requestContext": {"accountId": "1", "apiId": "a", "httpMethod": method, "path": path,
                           "stage": stage, "domainName": host, "requestId": "r", "resourcePath": "/"},
        "body": null, "isBase64Encoded": false
    })
}

fn http_api(method: &str, path: &str, host: &str, stage: &str, query: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": {"host": host},
        "requestContext": {"accountId": "1", "apiId": "a", "domainName": host, "stage": stage,
                           "requestId": "r", "routeKey": "$default",
                           "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1"}},
        "isBase64Encoded": false
    })
}

fn alb(method: &str, path: &str, host: &str) -> Value {
    json!({
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/x/y"}},
        "httpMethod": method, "path": path, "queryStringParameters": {},
        "headers": {"host": host}, "body": "", "isBase64Encoded": false
    })
}

fn acceptable(status: u16) -> bool {
    matches!(status, 200 | 404 | 405)
}

#[tokio::test]
async fn hostile_lambda_events_get_clear_answers_or_invocation_errors() {
    let app = quiet_app();
    let long_path = format!("/{}", "a".repeat(100 * 1024));
    let long_query = format!("q={}", "x".repeat(100 * 1024));
    let mut events = Vec::new();
    for method in [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND",
        "FOO",
    ] {
        let expected = if matches!(method, "GET" | "HEAD") {
            200
        } else {
            405
        };
        events.push((rest(method, "/health", "h", "prod"), Some(expected)));
        events.push((
            http_api(method, "/health", "h", "$default", ""),
            Some(expected),
        ));
        events.push((alb(method, "/health", "h"), Some(expected)));
    }
    for path in [
        long_path.as_str(),
        "",
        "health",
        "//health",
        "/health/../health",
        "/he alth",
        "/health\"",
        "/[health]",
        "/health%zz",
        "/%ff%fe",
        "/é/health",
        "/health\u{0}",
        "/\u{1}\u{7f}",
        "/health#frag",
        "/health?x=1",
        "http://evil/health",
        "/{}|\\^`",
    ] {
        events.push((rest("GET", path, "h", "prod"), None));
        events.push((http_api("GET", path, "h", "prod", ""), None));
        events.push((alb("GET", path, "h"), None));
    }
    for host in ["exa mple", "[", "a@b", "h:notaport", "", "é.example"] {
        events.push((rest("GET", "/health", host, "prod"), Some(200)));
        events.push((http_api("GET", "/health", host, "$default", ""), Some(200)));
    }
    // A header value no HTTP message can carry: refused when decoding.
    events.push((rest("GET", "/health", "\u{0}", "prod"), None));
    for stage in ["[", "a b", "pr/od", "", "%", "?", "#"] {
        events.push((rest("GET", "/health", "h", stage), None));
        events.push((http_api("GET", "/health", "h", stage, ""), None));
    }
    events.push((
        http_api("GET", "/health", "h", "$default", &long_query),
        Some(200),
    ));
    events.push((
        http_api("GET", "/health", "h", "$default", "verbose=%zz&%%%=&&=="),
        Some(200),
    ));
    let mut big_header = rest("GET", "/health", "h", "prod");
    big_header["headers"]["X-Big"] = json!("v".repeat(64 * 1024));
    events.push((big_header, Some(200)));
    let mut nulls = rest("GET", "/health", "h", "prod");
    nulls["headers"] = Value::Null;
    nulls["multiValueHeaders"] = Value::Null;
    events.push((nulls, None));
    let mut base64 = rest("POST", "/health", "h", "prod");
    base64["body"] = json!("!!! not base64 !!!");
    base64["isBase64Encoded"] = json!(true);
    events.push((base64, Some(405)));
    let mut base64_get = http_api("GET", "/health", "h", "$default", "");
    base64_get["body"] = json!("aGVsbG8=");
    base64_get["isBase64Encoded"] = json!(true);
    events.push((base64_get, Some(200)));

    for (event, expected) in &events {
        let outcome = tokio::time::timeout(Duration::from_secs(5), invoke(&app, event))
            .await
            .expect("the handler hung");
        match (outcome, expected) {
            (Ok(status), Some(expected)) => assert_eq!(status, *expected, "{}", preview(event)),
            (Ok(status), None) => assert!(acceptable(status), "{status} for {}", preview(event)),
            (Err(message), Some(_)) => panic!("{message} for {}", preview(event)),
            (Err(_), None) => {}
        }
    }
    // Foreign and malformed JSON values are invocation errors.
    for event in [
        json!({}),
        json!([]),
        json!("GET /health"),
        json!(null),
        json!(1.5),
        json!({"httpMethod": 7}),
    ] {
        assert!(invoke(&app, &event).await.is_err(), "{event}");
    }
    // Still serving.
    assert_eq!(
        invoke(&app, &http_api("GET", "/health", "h", "$default", "")).await,
        Ok(200)
    );
}

fn preview(event: &Value) -> String {
    let text = event.to_string();
    text.chars().take(200).collect()
}

/// Sends raw bytes to the server; returns the status code it answered
/// (0 when it closed without one).
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut response = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    assert!(
        read.is_ok(),
        "the server hung on {:?}",
        String::from_utf8_lossy(&request[..request.len().min(80)])
    );
    let head = String::from_utf8_lossy(&response);
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn hostile_http_requests_get_clear_answers_and_the_server_keeps_serving() {
    let (addr, server) = crate::support::spawn_serve(quiet_app()).await;
    let get = |target: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
    };

    for method in [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "FOO",
    ] {
        let request = format!("{method} /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        let status = raw(addr, request.as_bytes()).await;
        let expected = if matches!(method, "GET" | "HEAD") {
            200
        } else {
            405
        };
        assert_eq!(status, expected, "{method}");
    }
    let connect = raw(
        addr,
        b"CONNECT /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        connect == 0 || (400..500).contains(&connect),
        "CONNECT: {connect}"
    );

    let long_path = format!("/{}", "a".repeat(100 * 1024));
    let long_query = format!("/health?q={}", "x".repeat(100 * 1024));
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("100 KB path".into(), get(&long_path)),
        ("100 KB query".into(), get(&long_query)),
        ("bad percent-encoding".into(), get("/health%zz")),
        ("garbage request line".into(), b"HELLO\r\n\r\n".to_vec()),
        ("HTTP/0.9".into(), b"GET /health\r\n\r\n".to_vec()),
        ("absolute form".into(), get("http://evil.example/health")),
        ("asterisk".into(), get("*")),
    ];
    let mut not_utf8 =
        b"GET /health/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec();
    cases.push(("path not UTF-8".into(), std::mem::take(&mut not_utf8)));
    let header = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "v".repeat(64 * 1024)
    );
    cases.push(("64 KiB header".into(), header.into_bytes()));
    let body = "aGVsbG8gd29ybGQ=".repeat(1000);
    let post = format!(
        "POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    cases.push(("base64 body".into(), post.into_bytes()));
    cases.push((
        "header not UTF-8".into(),
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: \xff\xfe\r\nConnection: close\r\n\r\n".to_vec(),
    ));
    cases.push(("verbose with a broken token".into(), b"GET /health?verbose=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\r\nConnection: close\r\n\r\n".to_vec()));

    for (name, request) in &cases {
        let status = raw(addr, request).await;
        assert!(
            status == 0 || (200..500).contains(&status),
            "{name}: {status}"
        );
        eprintln!("serve: {name} -> {status}");
    }
    assert_eq!(raw(addr, &get("/health/live")).await, 200, "still serving");
    assert!(!server.is_finished());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any event of the three HTTP shapes, whatever its method, path, stage,
    /// host and query: a 200/404/405 answer or an invocation error.
    #[test]
    fn any_http_event_decodes_to_a_clear_answer(
        shape in 0..3u8,
        method in prop_oneof!["GET", "HEAD", "POST", "[A-Z]{1,12}", ".{0,12}"],
        path in prop_oneof!["/health", "/health/live", "(/[a-z%.]{0,8}){0,4}/?", ".{0,200}"],
        stage in prop_oneof!["prod", "\\$default", ".{0,12}"],
        host in ".{0,40}",
        query in ".{0,60}",
    ) {
        let app = quiet_app();
        let event = match shape {
            0 => rest(&method, &path, &host, &stage),
            1 => http_api(&method, &path, &host, &stage, &query),
            _ => alb(&method, &path, &host),
        };
        if let Ok(status) = runtime().block_on(invoke(&app, &event)) {
            prop_assert!(acceptable(status), "{} for {}", status, preview(&event));
        }
    }

    /// Routing and the handler, with any path, query and token.
    #[test]
    fn any_request_gets_a_json_answer(
        method in prop_oneof![Just(Method::GET), Just(Method::HEAD), Just(Method::POST), Just(Method::DELETE)],
        path in ".{0,300}",
        query in proptest::option::of(".{0,100}"),
        stage in proptest::option::of(".{0,10}"),
        token in proptest::option::of("[ -~]{0,40}"),
    ) {
        let app = quiet_app();
        let authorization = token.and_then(|t| http::HeaderValue::from_str(&format!("Bearer {t}")).ok());
        let response = runtime().block_on(meshhook_health::router::respond(&app, meshhook_health::router::Inbound {
            method: &method,
            path: &path,
            query: query.as_deref(),
            authorization: authorization.as_ref(),
            accept: None,
            stage: stage.as_deref(),
        }));
        prop_assert!(acceptable(response.status().as_u16()));
        prop_assert!(serde_json::from_str::<Value>(response.body()).is_ok());
    }
}
