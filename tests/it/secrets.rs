//! Safe in public: across every failure mode, with distinctive user,
//! password, host, database name, Supabase keys and details token, none of
//! them (nor the database port) reaches a response body or header, public or
//! verbose; and the password, keys and token reach no log line at any level.

use std::collections::HashMap;
use std::process::{Command, Stdio};

use crate::support::net::{Behaviour, BlackHole, RawPeer};
use crate::support::{call, Postgres, Supabase};
use http::Method;
use wiremock::ResponseTemplate;

const USER: &str = "user_zq81x";
const PASSWORD: &str = "pw_zq81x_secret";
const HOST: &str = "host-zq81x.example";
const DBNAME: &str = "db_zq81x";
const ANON_KEY: &str = "sb_publishable_zq81x_anon";
const ACCESS_TOKEN: &str = "sbp_zq81x_access";
const TOKEN: &str = "details_zq81x_token";

struct Mode {
    name: &'static str,
    env: HashMap<String, String>,
}

fn database_url(port: u16, password: &str, dbname: &str, extra: &str) -> String {
    // `hostaddr` lets a distinctive host name reach 127.0.0.1.
    format!(
        "host={HOST} hostaddr=127.0.0.1 port={port} user={USER} password={password} dbname={dbname} {extra}"
    )
}

fn secrets_in_public(port: u16) -> Vec<String> {
    [USER, PASSWORD, HOST, DBNAME, ANON_KEY, ACCESS_TOKEN, TOKEN]
        .iter()
        .map(|s| s.to_string())
        .chain([port.to_string()])
        .collect()
}

#[tokio::test]
async fn no_secret_or_internal_reaches_a_response_or_a_log() {
    let pg = Postgres::dedicated_with_passwords().await;
    pg.execute(
        "postgres",
        &format!("CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"),
    )
    .await;
    pg.execute(
        "postgres",
        &format!("CREATE DATABASE {DBNAME} OWNER {USER}"),
    )
    .await;
    pg.execute(DBNAME, meshhook_health::migrate::MIGRATION)
        .await;
    // The least privilege the checks need.
    pg.execute(
        DBNAME,
        &format!("GRANT USAGE ON SCHEMA monitoring TO {USER}; GRANT SELECT ON monitoring.worker_heartbeats TO {USER}"),
    )
    .await;
    pg.execute(
        DBNAME,
        "INSERT INTO monitoring.worker_heartbeats (worker_id) VALUES ('w1')",
    )
    .await;
    let supabase = Supabase::start_with_key(ANON_KEY).await;
    let hole = BlackHole::new();
    let silent = RawPeer::start(Behaviour::Silent).await;
    let reset = RawPeer::start(Behaviour::Reset).await;
    let broken_supabase = Supabase::start().await;
    broken_supabase
        .answer("/auth/v1/health", ResponseTemplate::new(503))
        .await;
    broken_supabase
        .answer(
            "/realtime/v1/websocket",
            ResponseTemplate::new(200).set_body_string("<html>"),
        )
        .await;

    let base: HashMap<String, String> = [
        (
            "DATABASE_URL",
            database_url(pg.port(), PASSWORD, DBNAME, "sslmode=disable"),
        ),
        ("SUPABASE_URL", supabase.url()),
        ("SUPABASE_ANON_KEY", ANON_KEY.to_owned()),
        ("HEALTH_DETAILS_TOKEN", TOKEN.to_owned()),
        ("HEALTH_TIMEOUT_MS", "2000".to_owned()),
        ("HEALTH_CACHE_TTL_MS", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let with = |name: &'static str, changes: &[(&str, String)]| {
        let mut env = base.clone();
        for (k, v) in changes {
            env.insert((*k).to_owned(), v.clone());
        }
        Mode { name, env }
    };
    let modes = vec![
        with("healthy", &[]),
        with(
            "wrong password",
            &[(
                "DATABASE_URL",
                database_url(pg.port(), "pw_zq81x_wrong", DBNAME, ""),
            )],
        ),
        with(
            "missing database",
            &[(
                "DATABASE_URL",
                database_url(pg.port(), PASSWORD, "db_zq81x_gone", ""),
            )],
        ),
        with(
            "nothing listening",
            &[(
                "DATABASE_URL",
                database_url(crate::support::postgres::free_port(), PASSWORD, DBNAME, ""),
            )],
        ),
        with(
            "black hole",
            &[(
                "DATABASE_URL",
                database_url(hole.port, PASSWORD, DBNAME, ""),
            )],
        ),
        with(
            "unresolvable host",
            &[(
                "DATABASE_URL",
                format!(
                    "postgres://{USER}:{PASSWORD}@{HOST}.invalid:{}/{DBNAME}",
                    pg.port()
                ),
            )],
        ),
        with(
            "TLS required, none offered",
            &[(
                "DATABASE_URL",
                database_url(pg.port(), PASSWORD, DBNAME, "sslmode=require"),
            )],
        ),
        with(
            "Supabase wrong key",
            &[("SUPABASE_ANON_KEY", "sb_publishable_zq81x_wrong".to_owned())],
        ),
        with(
            "Supabase 503 and HTML",
            &[("SUPABASE_URL", broken_supabase.url())],
        ),
        with("Supabase silent", &[("SUPABASE_URL", silent.url())]),
        with("Supabase resets", &[("SUPABASE_URL", reset.url())]),
        with(
            "Management API refuses the token",
            &[
                ("SUPABASE_ACCESS_TOKEN", ACCESS_TOKEN.to_owned()),
                ("SUPABASE_PROJECT_REF", "zq81xzq81xzq81xzq81x".to_owned()),
                ("SUPABASE_API_URL", supabase.url()),
            ],
        ),
    ];

    for mode in &modes {
        // Responses, through the shared handler: every route and header.
        let config = meshhook_health::config::Config::from_source(&mode.env).unwrap();
        let app = meshhook_health::App::new(config).unwrap();
        // The sweep is only worth something if each mode is what it says.
        let status = call(&app, Method::GET, "/health", None).await.json()["status"].clone();
        match mode.name {
            "healthy" => assert_eq!(
                status,
                "healthy",
                "the healthy mode is not: {}",
                call(&app, Method::GET, "/health?verbose=1", Some(TOKEN))
                    .await
                    .text
            ),
            name => assert_ne!(status, "healthy", "{name} did not fail"),
        }
        for (method, target, token) in [
            (Method::GET, "/health", None),
            (Method::GET, "/health?verbose=1", Some(TOKEN)),
            (Method::HEAD, "/health?verbose=1", Some(TOKEN)),
            (Method::GET, "/health?verbose=1", Some("wrong")),
            (Method::GET, "/health/live", None),
            (Method::POST, "/health", None),
            (Method::GET, "/nope", None),
        ] {
            let answer = call(&app, method.clone(), target, token).await;
            let mut seen = answer.text.clone();
            for (name, value) in &answer.headers {
                seen.push_str(&format!(
                    "\n{name}: {}",
                    String::from_utf8_lossy(value.as_bytes())
                ));
            }
            for secret in secrets_in_public(pg.port()) {
                assert!(
                    !seen.contains(&secret),
                    "{}: {method} {target} exposed {secret:?}:\n{seen}",
                    mode.name
                );
            }
        }

        // Logs, from the real binary at the most talkative level.
        let out = Command::new(env!("CARGO_BIN_EXE_meshhook-health"))
            .env_clear()
            .envs(&mode.env)
            .env("AWS_LAMBDA_LOG_LEVEL", "TRACE")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .arg("check")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("health evaluated"),
            "{}: no evaluation logged",
            mode.name
        );
        for secret in [
            PASSWORD,
            "pw_zq81x_wrong",
            ANON_KEY,
            "sb_publishable_zq81x_wrong",
            ACCESS_TOKEN,
            TOKEN,
        ] {
            assert!(
                !stderr.contains(secret),
                "{}: {secret:?} reached a log",
                mode.name
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        for secret in secrets_in_public(pg.port()) {
            assert!(
                !stdout.contains(&secret),
                "{}: check printed {secret:?}",
                mode.name
            );
        }
    }
}
