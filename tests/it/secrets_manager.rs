//! `DATABASE_SECRET_ID`: the connection read from a local Secrets Manager
//! stand-in (reached through `AWS_ENDPOINT_URL_SECRETS_MANAGER`), in both
//! secret formats, by the real binary.

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};

use crate::support::{Postgres, DETAILS_TOKEN};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const RDS_PASSWORD: &str = "app-password";

/// From now on, GetSecretValue for `id` answers `value`, before any rule
/// of a larger `priority`.
async fn put_secret(server: &MockServer, id: &str, value: &str, priority: u8) {
    Mock::given(method("POST"))
        .and(header("x-amz-target", "secretsmanager.GetSecretValue"))
        .and(body_partial_json(json!({"SecretId": id})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_json(json!({
                    "ARN": format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:{id}-AbCdEf"),
                    "Name": id,
                    "SecretString": value,
                    "VersionId": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE",
                    "VersionStages": ["AWSCURRENT"],
                    "CreatedDate": 1.795809600e9
                })),
        )
        .with_priority(priority)
        .mount(server)
        .await;
}

/// Answers GetSecretValue for `secrets` (id → string); anything else is
/// ResourceNotFoundException, as the service answers.
async fn secrets_manager(secrets: &[(&str, String)]) -> MockServer {
    let server = MockServer::start().await;
    for (id, value) in secrets {
        put_secret(&server, id, value, 2).await;
    }
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_json(json!({
                    "__type": "ResourceNotFoundException",
                    "Message": "Secrets Manager can't find the specified secret."
                })),
        )
        .with_priority(9)
        .mount(&server)
        .await;
    server
}

fn env(server: &MockServer, secret_id: &str) -> HashMap<String, String> {
    [
        ("DATABASE_SECRET_ID", secret_id.to_owned()),
        ("HEALTH_COMPONENTS", "database".to_owned()),
        // A SCRAM login in a debug build on a busy machine: latency is not
        // what these tests are about.
        ("HEALTH_TIMEOUT_MS", "2000".to_owned()),
        ("AWS_REGION", "eu-west-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLETESTONLY".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "test-secret-access-key-0000".to_owned(),
        ),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", server.uri()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "TRACE".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn run(env: &HashMap<String, String>, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshhook-health"))
        .env_clear()
        .envs(env)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test]
async fn url_and_rds_json_secrets_both_connect() {
    let pg = Postgres::dedicated_with_passwords().await;
    let url = format!(
        "postgres://app:{RDS_PASSWORD}@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port()
    );
    let rds = json!({
        "username": "app", "password": RDS_PASSWORD, "engine": "postgres",
        "host": "127.0.0.1", "port": pg.port(), "dbname": "postgres", "sslmode": "disable"
    })
    .to_string();
    let server = secrets_manager(&[("meshhook/db-url", url), ("meshhook/db-rds", rds)]).await;

    for id in ["meshhook/db-url", "meshhook/db-rds"] {
        let out = run(&env(&server, id), &["check"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{id}: {stderr}");
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(body["details"]["database"], "healthy", "{id}");
        assert!(
            !stderr.contains(RDS_PASSWORD),
            "{id}: the secret's password reached a log"
        );
        assert!(
            !stderr.contains("test-secret-access-key-0000"),
            "{id}: AWS credentials reached a log"
        );
    }
    // The heartbeat commands read it too (`migrate` needs CREATE).
    pg.execute("postgres", "GRANT CREATE ON DATABASE postgres TO app")
        .await;
    let out = run(&env(&server, "meshhook/db-rds"), &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_missing_secret_is_a_start_up_error_naming_the_variable() {
    let server = secrets_manager(&[]).await;
    let out = run(&env(&server, "meshhook/nope"), &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("DATABASE_SECRET_ID"), "{stderr}");
    assert!(stderr.contains("ResourceNotFoundException"), "{stderr}");
    assert!(out.stdout.is_empty());

    // A secret that is neither a URL nor RDS JSON: refused, value not echoed.
    let server = secrets_manager(&[(
        "meshhook/bad",
        r#"{"user":"x","password":"pw-bad-secret-77"}"#.to_owned(),
    )])
    .await;
    let out = run(&env(&server, "meshhook/bad"), &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("DATABASE_SECRET_ID") && !stderr.contains("pw-bad-secret-77"),
        "{stderr}"
    );
}

#[tokio::test]
async fn without_the_variable_secrets_manager_is_never_called() {
    let server = secrets_manager(&[]).await;
    let pg = Postgres::shared();
    let mut env = env(&server, "unused");
    env.remove("DATABASE_SECRET_ID");
    env.insert("DATABASE_URL".into(), pg.url("postgres"));
    let out = run(&env, &["check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // DATABASE_URL wins over DATABASE_SECRET_ID, and then nothing is fetched.
    env.insert("DATABASE_SECRET_ID".into(), "meshhook/db-url".into());
    let out = run(&env, &["check"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// One verbose answer of a `serve` process: status and the database's reason.
async fn database_reason(url: &str) -> (u16, Option<String>) {
    let response = crate::support::http_client()
        .get(format!("{url}?verbose=1"))
        .bearer_auth(DETAILS_TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let reason = body["checks"]["database"]["reason"]
        .as_str()
        .map(str::to_owned);
    (status, reason)
}

async fn secret_reads(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_database_password_is_picked_up_without_a_restart() {
    let pg = Postgres::dedicated_with_passwords().await;
    let url_with = |password: &str| {
        format!(
            "postgres://app:{password}@127.0.0.1:{}/postgres?sslmode=disable",
            pg.port()
        )
    };
    let server = secrets_manager(&[("meshhook/db", url_with(RDS_PASSWORD))]).await;
    let mut env = env(&server, "meshhook/db");
    for (key, value) in [
        ("HEALTH_CACHE_TTL_MS", "0"),
        ("HEALTH_DETAILS_TOKEN", DETAILS_TOKEN),
    ] {
        env.insert(key.into(), value.into());
    }
    let (_process, health) = crate::support::serve_process(&env);
    assert_eq!(database_reason(&health).await, (200, None));
    assert_eq!(secret_reads(&server).await, 1, "read once at start-up");

    // Rotation: the role gets a new password and the secret its new value;
    // the open connection ends (as on a restart or an idle timeout).
    let drop_connections = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                            WHERE application_name = 'meshhook-health'";
    pg.execute("postgres", "ALTER ROLE app PASSWORD 'rotated-password-2'")
        .await;
    put_secret(&server, "meshhook/db", &url_with("rotated-password-2"), 1).await;
    pg.execute("postgres", drop_connections).await;

    // The evaluation that meets the refused login says so; the next one
    // reads the secret again and connects with the new password.
    assert_eq!(
        database_reason(&health).await,
        (500, Some("auth".to_owned()))
    );
    assert_eq!(database_reason(&health).await, (200, None));
    assert_eq!(secret_reads(&server).await, 2, "read again once");
    for _ in 0..3 {
        assert_eq!(database_reason(&health).await, (200, None));
    }

    // A password changed again within the minute, secret not updated: the
    // secret is not read again before a minute has passed.
    pg.execute("postgres", "ALTER ROLE app PASSWORD 'rotated-password-3'")
        .await;
    pg.execute("postgres", drop_connections).await;
    for _ in 0..5 {
        assert_eq!(
            database_reason(&health).await,
            (500, Some("auth".to_owned()))
        );
    }
    assert_eq!(secret_reads(&server).await, 2, "at most once a minute");
}
