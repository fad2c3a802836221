//! Real answers of `serve` mode checked against `docs/openapi.yaml`: every
//! status returned is declared for its path and method, and every JSON body
//! validates against the declared schema (OpenAPI 3.1 schemas are JSON
//! Schema 2020-12).

use crate::support::{Stack, DETAILS_TOKEN};
use http::Method;
use serde_json::{json, Value};
use wiremock::ResponseTemplate;

fn spec() -> Value {
    let text = std::fs::read_to_string(format!("{}/docs/openapi.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    serde_norway::from_str(&text).expect("openapi.yaml parses")
}

/// Follows a local `$ref` inside the spec.
fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => spec
            .pointer(reference.trim_start_matches('#'))
            .expect("dangling $ref"),
        None => node,
    }
}

/// A validator for `schema`, a schema of the spec or one that refers into
/// it. The spec document is the root schema, so its `$ref`s resolve; the
/// OpenAPI keys around the schemas are keywords a validator ignores.
fn validator(spec: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = spec.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["allOf"] = json!([schema]);
    jsonschema::draft202012::new(&root).expect("schemas compile")
}

/// The property names of schema `name`, sorted.
fn properties(spec: &Value, name: &str) -> Vec<String> {
    let mut names: Vec<String> = spec["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name} has no properties"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

#[test]
fn every_registered_component_has_its_schema_and_every_schema_its_component() {
    let spec = spec();
    let mut registered: Vec<String> = meshhook_health::checks::REGISTRY
        .iter()
        .map(|c| c.name.to_owned())
        .collect();
    registered.sort();
    assert_eq!(
        properties(&spec, "Checks"),
        registered,
        "docs/openapi.yaml's Checks must list exactly the components of checks::REGISTRY"
    );
    // The public `details` never names a private component.
    let public: Vec<String> = meshhook_health::checks::REGISTRY
        .iter()
        .filter(|c| !c.private)
        .map(|c| c.name.to_owned())
        .collect();
    let mut public_sorted = public.clone();
    public_sorted.sort();
    assert_eq!(
        properties(&spec, "Details"),
        public_sorted,
        "docs/openapi.yaml's Details must list exactly the public components"
    );
    assert!(public.len() < registered.len(), "tenancy is private");
    let reasons: Vec<&str> = meshhook_health::outcome::Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .collect();
    assert_eq!(
        spec["components"]["schemas"]["Reason"]["enum"],
        json!(reasons),
        "docs/openapi.yaml's Reason must list exactly outcome::Reason"
    );
}

#[test]
fn the_schema_refuses_what_the_public_body_must_not_carry() {
    let validator = validator(&spec(), &json!({"$ref": "#/components/schemas/HealthBody"}));
    let good = json!({"status":"healthy","version":"1.4.2","details":{"database":"healthy"},"checked_at":"2026-11-27T20:00:00.123Z"});
    assert!(validator.is_valid(&good));
    for bad in [
        json!({"status":"ok","version":"1","details":{"database":"healthy"},"checked_at":"2026-11-27T20:00:00.123Z"}),
        json!({"status":"healthy","version":"1","details":{"database":"healthy"},"checked_at":"2026-11-27T20:00:00.123Z","host":"db"}),
        json!({"status":"healthy","version":"1","details":{"cache":"healthy"},"checked_at":"2026-11-27T20:00:00.123Z"}),
        json!({"status":"healthy","version":"1","details":{"database":"healthy"},"checked_at":"yesterday"}),
        json!({"status":"healthy","version":"1","details":{"database":"healthy"},"checked_at":"2026-11-27T20:00:00.123Z",
               "checks":{"database":{"status":"healthy","latency_ms":1,"error":"connection refused"}}}),
    ] {
        assert!(!validator.is_valid(&bad), "accepted {bad}");
    }
}

/// Checks one real answer against the spec.
fn conforms(
    spec: &Value,
    path: &str,
    method: &Method,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) {
    let operation = &spec["paths"][path][method.as_str().to_ascii_lowercase()];
    assert!(operation.is_object(), "{method} {path} is not in the spec");
    let response = resolve(spec, &operation["responses"][status.to_string()]);
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which the spec does not declare"
    );
    if let Some(declared) = response.get("headers").and_then(Value::as_object) {
        for (name, header) in declared {
            let value = headers
                .get(name.as_str())
                .unwrap_or_else(|| panic!("{method} {path}: header {name} missing"));
            if let Some(expected) = header["schema"]["const"].as_str() {
                assert_eq!(value, expected, "{method} {path}: header {name}");
            }
        }
    }
    let content = response.get("content").and_then(Value::as_object);
    if let Some(content) = content.filter(|c| !c.contains_key("application/json")) {
        let given = headers["content-type"].to_str().unwrap();
        assert!(
            content.contains_key(given),
            "{method} {path} {status}: Content-Type {given} is not declared"
        );
        return;
    }
    let Some(schema) = response.pointer("/content/application~1json/schema") else {
        assert!(
            body.is_empty(),
            "{method} {path}: a body the spec does not declare"
        );
        return;
    };
    assert_eq!(headers["content-type"], "application/json");
    let instance: Value = serde_json::from_slice(body).expect("JSON body");
    let errors: Vec<String> = validator(spec, schema)
        .iter_errors(&instance)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:?}\n{instance}"
    );
}

/// Sends one request and checks its answer against the spec; returns the
/// status and the body.
async fn answer_conforms(
    client: &reqwest::Client,
    spec: &Value,
    url: String,
    method: &Method,
    token: Option<&str>,
    path: &str,
) -> (u16, bytes::Bytes) {
    let mut request = client.request(method.clone(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap();
    conforms(spec, path, method, status, &headers, &body);
    (status, body)
}

/// The verbose answer (with the details token) of `stack`'s app served on a
/// free port, checked against the spec; its status and JSON body.
async fn verbose_conforms(spec: &Value, stack: &Stack) -> (u16, Value) {
    let (addr, _server) = crate::support::spawn_serve(stack.app()).await;
    let url = format!("http://{addr}/health?verbose=1");
    let (status, body) = answer_conforms(
        &crate::support::http_client(),
        spec,
        url,
        &Method::GET,
        Some(DETAILS_TOKEN),
        "/health",
    )
    .await;
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn real_answers_match_the_openapi_document() {
    let spec = spec();
    let mut stack = Stack::new().await;
    stack.set("SUPABASE_SERVICES", "auth,realtime,storage");
    let healthy = stack.app();
    let (addr, _server) = crate::support::spawn_serve(healthy).await;
    let client = crate::support::http_client();

    // (method, target, token, spec path)
    let requests: Vec<(Method, &str, Option<&str>, &str)> = vec![
        (Method::GET, "/health", None, "/health"),
        (
            Method::GET,
            "/health?verbose=1",
            Some(DETAILS_TOKEN),
            "/health",
        ),
        (Method::GET, "/health?verbose=1", Some("wrong"), "/health"),
        (Method::HEAD, "/health", None, "/health"),
        (Method::GET, "/health/live", None, "/health/live"),
        (Method::HEAD, "/health/live", None, "/health/live"),
        (Method::POST, "/health", None, "/health"),
        (Method::DELETE, "/health", None, "/health"),
        (Method::POST, "/health/live", None, "/health/live"),
        (Method::GET, "/elsewhere", None, "/{other}"),
    ];
    let answer =
        |base: String,
         requests: Vec<(Method, &'static str, Option<&'static str>, &'static str)>| {
            let (client, spec) = (client.clone(), spec.clone());
            async move {
                let mut statuses = Vec::new();
                for (method, target, token, path) in requests {
                    let url = format!("{base}{target}");
                    let (status, _) =
                        answer_conforms(&client, &spec, url, &method, token, path).await;
                    statuses.push(status);
                }
                statuses
            }
        };
    let statuses = answer(format!("http://{addr}"), requests.clone()).await;
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 405, 405, 405, 404]);

    // Unhealthy and degraded answers too, with every verbose field present.
    stack
        .supabase
        .answer("/storage/v1/status", ResponseTemplate::new(503))
        .await;
    stack
        .sql("INSERT INTO monitoring.worker_heartbeats (worker_id, last_seen_at) VALUES ('old', now() - interval '90 seconds')")
        .await;
    stack.set(
        "DATABASE_URL",
        "postgres://nobody@127.0.0.1:1/none?sslmode=disable",
    );
    let (addr, _unhealthy_server) = crate::support::spawn_serve(stack.app()).await;
    let statuses = answer(format!("http://{addr}"), requests[..4].to_vec()).await;
    assert_eq!(statuses, [500, 500, 500, 500]);
    stack.set("HEALTH_UNHEALTHY_STATUS", "503");
    let (addr, _server_503) = crate::support::spawn_serve(stack.app()).await;
    assert_eq!(
        answer(format!("http://{addr}"), requests[..2].to_vec()).await,
        [503, 503]
    );
}

#[tokio::test]
async fn queue_answers_match_the_openapi_document() {
    let spec = spec();
    let mut stack = Stack::new().await;
    stack.sql(crate::support::pgmq::install_sql()).await;
    stack
        .sql(
            "SELECT pgmq.create('workflow_jobs'); SELECT pgmq.create('workflow_jobs_dlq'); \
              SELECT pgmq.send('workflow_jobs', '{}'::jsonb); \
              UPDATE pgmq.q_workflow_jobs SET vt = vt - interval '90 seconds'; \
              SELECT pgmq.send('workflow_jobs_dlq', '{}'::jsonb)",
        )
        .await;
    stack
        .set("HEALTH_COMPONENTS", "database,supabase,workers,queue")
        .set("QUEUE_NAMES", "workflow_jobs,not_created");
    let (addr, _server) = crate::support::spawn_serve(stack.app()).await;
    let client = crate::support::http_client();
    for token in [None, Some(DETAILS_TOKEN)] {
        let url = format!("http://{addr}/health?verbose=1");
        let (status, body) =
            answer_conforms(&client, &spec, url, &Method::GET, token, "/health").await;
        assert_eq!(status, 500, "the missing queue is unhealthy");
        if token.is_some() {
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["checks"]["queue"]["reason"], "schema_missing");
            assert_eq!(
                body["checks"]["queue"]["queues"]["workflow_jobs"]["dead_letters_recent"],
                1
            );
        }
    }
}

#[tokio::test]
async fn runs_and_partitions_answers_match_the_openapi_document() {
    let spec = spec();
    let mut stack = Stack::new().await;
    // The shipped migration file, applied as other migration tools would.
    stack.sql(&crate::support::meshhook::schema(1)).await;
    stack
        .sql(include_str!("../../migrations/0002_runs_progress.sql"))
        .await;
    stack
        .set("HEALTH_COMPONENTS", "database,workers,runs,partitions")
        .set("PARTITIONS_AHEAD_SECS", &(300 * 86_400).to_string());
    let mut seen = Vec::new();
    for runs in ["", "running"] {
        if !runs.is_empty() {
            stack
                .sql(&crate::support::meshhook::run(runs, 900, &[800]))
                .await;
        }
        let (_, body) = verbose_conforms(&spec, &stack).await;
        seen.push((
            body["checks"]["runs"]["last_progress_secs"].is_null(),
            body["checks"]["runs"]["status"].clone(),
            body["checks"]["partitions"]["reason"].clone(),
        ));
    }
    assert_eq!(
        seen,
        [
            (true, json!("healthy"), json!("partition_ending")),
            (false, json!("degraded"), json!("partition_ending"))
        ]
    );
}

#[tokio::test]
async fn live_logs_answers_match_the_openapi_document() {
    let spec = spec();
    let mut stack = Stack::new().await;
    stack.set("HEALTH_COMPONENTS", "database,live_logs");
    stack.sql("CREATE PUBLICATION supabase_realtime").await;
    let mut seen = Vec::new();
    for sql in [
        "SELECT 1",
        "CREATE TABLE public.logs (run_id uuid, line text)",
        "ALTER PUBLICATION supabase_realtime ADD TABLE public.logs",
    ] {
        stack.sql(sql).await;
        let (_, body) = verbose_conforms(&spec, &stack).await;
        seen.push(body["checks"]["live_logs"]["tables"]["public.logs"].clone());
    }
    assert_eq!(
        seen,
        [
            json!("schema_missing"),
            json!("not_published"),
            json!("healthy")
        ]
    );
}

/// Through API Gateway only the template's routes reach the function; the
/// HTTP API answers every other method on those paths itself with its own
/// 404. The document says so for each of them.
#[test]
fn the_document_declares_api_gateways_own_answer_for_unrouted_methods() {
    let spec = spec();
    let template = crate::support::template::load();
    let events = template["Resources"]["HealthFunction"]["Properties"]["Events"]
        .as_object()
        .unwrap();
    let routed: Vec<(String, String)> = events
        .values()
        .filter(|e| e["Type"] == "HttpApi")
        .map(|e| {
            (
                e["Properties"]["Path"].as_str().unwrap().to_owned(),
                e["Properties"]["Method"]
                    .as_str()
                    .unwrap()
                    .to_ascii_lowercase(),
            )
        })
        .collect();
    let mut unrouted = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if routed.contains(&(path.clone(), method.clone())) {
                continue;
            }
            let response = resolve(&spec, &operation["responses"]["404"]);
            let schema = response
                .pointer("/content/application~1json/schema")
                .unwrap_or_else(|| panic!("{method} {path}: no 404 through API Gateway"));
            assert!(
                validator(&spec, schema).is_valid(&json!({"message": "Not Found"})),
                "{method} {path}: API Gateway's 404 body is not declared"
            );
            unrouted += 1;
        }
    }
    assert!(unrouted >= 7, "{unrouted}");
}

/// Error answers of the opt-in components carry no counts: nothing was
/// measured, and the document does not ask for them.
#[tokio::test]
async fn error_answers_without_counts_match_the_openapi_document() {
    let spec = spec();
    let mut stack = Stack::new().await;
    stack
        .set("HEALTH_COMPONENTS", "database,queue,partitions")
        .set(
            "DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none?sslmode=disable",
        );
    let (status, body) = verbose_conforms(&spec, &stack).await;
    assert_eq!(status, 500);
    for component in ["queue", "partitions"] {
        let check = &body["checks"][component];
        assert_eq!(check["reason"], "unreachable", "{body}");
        assert!(
            check.get("queues").is_none() && check.get("tables").is_none(),
            "{body}"
        );
    }
}

/// `/metrics` in serve mode: both formats, the 401, the 405, and the 404
/// without its token.
#[tokio::test]
async fn metrics_answers_match_the_openapi_document() {
    let spec = spec();
    let mut stack = Stack::new().await;
    stack.set("HEALTH_METRICS_TOKEN", "metrics-token");
    let (addr, _server) = crate::support::spawn_serve(stack.app()).await;
    stack.unset("HEALTH_METRICS_TOKEN");
    let (off, _off_server) = crate::support::spawn_serve(stack.app()).await;
    let mut statuses = Vec::new();
    for (at, method, token, accept) in [
        (addr, Method::GET, Some("metrics-token"), None),
        (
            addr,
            Method::GET,
            Some("metrics-token"),
            Some("application/openmetrics-text"),
        ),
        (addr, Method::GET, Some("wrong"), None),
        (addr, Method::GET, None, None),
        (addr, Method::POST, Some("metrics-token"), None),
        (off, Method::GET, Some("metrics-token"), None),
    ] {
        let response = crate::support::metrics_request(at, method.clone(), token, accept).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap();
        conforms(&spec, "/metrics", &method, status, &headers, &body);
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 401, 401, 405, 404]);
}

#[tokio::test]
async fn tenancy_answers_match_the_openapi_document_and_the_public_one_never_names_it() {
    use crate::support::tenancy::{meshhook, project, Migrations, Privileges};
    let spec = spec();
    let mut stack = Stack::new().await;
    stack
        .set("HEALTH_COMPONENTS", "database,tenancy")
        .set("TENANCY_EVERY_SECS", "0");
    stack.sql(&project(Privileges::GrantedByDefault)).await;
    stack.sql(&meshhook(Migrations::UpTo0008)).await;
    let (status, body) = verbose_conforms(&spec, &stack).await;
    assert_eq!(status, 200);
    let entry = &body["checks"]["tenancy"];
    assert_eq!(
        (&entry["status"], &entry["private"]),
        (&json!("unhealthy"), &json!(true)),
        "{entry}"
    );
    assert!(entry["findings"].as_array().unwrap().len() > 3, "{entry}");
    assert_eq!(body["details"], json!({"database": "healthy"}));
    stack
        .sql(&crate::support::docs::block(
            "MESHHOOK.md",
            "<!-- tenancy: repair -->",
            "sql",
        ))
        .await;
    stack
        .sql("ALTER VIEW public.workflows SET (security_invoker = true)")
        .await;
    let (_, body) = verbose_conforms(&spec, &stack).await;
    assert_eq!(body["checks"]["tenancy"]["findings"], json!([]), "{body}");
}
