//! `sslmode` with libpq's meanings, against real Postgres servers with TLS
//! certificates made at test time.

use std::collections::HashMap;

use crate::support::tls::Pki;
use crate::support::wait::eventually;
use crate::support::{verbose, Postgres};
use meshhook_health::config::Config;
use meshhook_health::App;
use tempfile::TempDir;

/// Only the database component, against `url`.
fn app(url: &str, extra: &[(&str, &str)]) -> std::sync::Arc<App> {
    let mut env: HashMap<String, String> = [
        ("HEALTH_COMPONENTS", "database"),
        ("DATABASE_URL", url),
        ("HEALTH_TIMEOUT_MS", "2000"),
        ("HEALTH_CACHE_TTL_MS", "0"),
        ("HEALTH_DETAILS_TOKEN", crate::support::DETAILS_TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    std::sync::Arc::new(App::new(Config::from_source(&env).unwrap()).unwrap())
}

async fn database(app: &App) -> (String, Option<String>) {
    let body = verbose(app).await.json();
    let status = body["details"]["database"].as_str().unwrap().to_owned();
    let reason = body["checks"]["database"]["reason"]
        .as_str()
        .map(str::to_owned);
    (status, reason)
}

/// Whether the health connection to `pg` is encrypted.
async fn encrypted(pg: &Postgres) -> String {
    pg.value(
        "postgres",
        "SELECT bool_or(s.ssl)::text FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'meshhook-health'",
    )
    .await
    .unwrap_or_default()
}

/// Waits for the dropped app's connection to leave pg_stat_activity, before
/// the next one is looked at.
async fn connection_gone(pg: &Postgres) {
    eventually(
        "the connection gone",
        std::time::Duration::from_secs(10),
        async || match pg.connections_of_health().await {
            0 => Ok(()),
            n => Err(n),
        },
    )
    .await;
}

fn url(host: &str, pg: &Postgres, params: &str) -> String {
    format!("postgres://postgres@{host}:{}/postgres?{params}", pg.port())
}

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn require_and_prefer_encrypt_and_disable_does_not() {
    let pki = Pki::new(&["localhost"]);
    let pg = Postgres::dedicated_tls(&pki, false);
    for (mode, expect_tls) in [
        ("require", "true"),
        ("prefer", "true"),
        ("disable", "false"),
    ] {
        let app = app(&url("127.0.0.1", &pg, &format!("sslmode={mode}")), &[]);
        assert_eq!(
            database(&app).await,
            ("healthy".to_owned(), None),
            "sslmode={mode}"
        );
        assert_eq!(encrypted(&pg).await, expect_tls, "sslmode={mode}");
        drop(app);
        connection_gone(&pg).await;
    }
}

/// A server that takes only TLS, with a certificate for `localhost` from a
/// private CA, and a bundle file that verifies it — like Supabase's: an
/// unrelated root first, the issuer second.
fn tls_only_server() -> (Pki, Postgres, TempDir, String) {
    let pki = Pki::new(&["localhost"]);
    let pg = Postgres::dedicated_tls(&pki, true);
    let dir = crate::support::temp_dir("tls");
    let bundle = write(
        &dir,
        "bundle.pem",
        &format!("{}{}", pki.other_ca_pem, pki.ca_pem),
    );
    (pki, pg, dir, bundle)
}

#[tokio::test]
async fn verify_modes_check_the_chain_and_verify_full_the_host_name() {
    let (pki, pg, dir, bundle) = tls_only_server();
    let wrong = write(&dir, "wrong.pem", &pki.other_ca_pem);

    let ok = |host: &str, mode: &str, ca: &str| {
        url(host, &pg, &format!("sslmode={mode}&sslrootcert={ca}"))
    };
    assert_eq!(
        database(&app(&ok("localhost", "verify-full", &bundle), &[]))
            .await
            .0,
        "healthy"
    );
    assert_eq!(
        database(&app(&ok("localhost", "verify-ca", &bundle), &[]))
            .await
            .0,
        "healthy"
    );
    // 127.0.0.1 is not a name on the certificate: verify-ca accepts, verify-full refuses.
    assert_eq!(
        database(&app(&ok("127.0.0.1", "verify-ca", &bundle), &[]))
            .await
            .0,
        "healthy"
    );
    assert_eq!(
        database(&app(&ok("127.0.0.1", "verify-full", &bundle), &[])).await,
        ("unhealthy".to_owned(), Some("tls".to_owned()))
    );
    for mode in ["verify-ca", "verify-full"] {
        assert_eq!(
            database(&app(&ok("localhost", mode, &wrong), &[])).await,
            ("unhealthy".to_owned(), Some("tls".to_owned())),
            "{mode} with a wrong CA"
        );
    }
    // The root certificate may also come from PGSSLROOTCERT or a key=value string.
    let env_url = url("localhost", &pg, "sslmode=verify-full");
    assert_eq!(
        database(&app(&env_url, &[("PGSSLROOTCERT", &bundle)]))
            .await
            .0,
        "healthy"
    );
    let kv = format!("host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert='{bundle}'", pg.port());
    assert_eq!(database(&app(&kv, &[])).await.0, "healthy");
    // A server that only takes TLS refuses plain text.
    let plain = app(&url("127.0.0.1", &pg, "sslmode=disable"), &[]);
    assert_eq!(
        database(&plain).await,
        ("unhealthy".to_owned(), Some("auth".to_owned()))
    );
}

/// The deployed route for `verify-full` against a private CA: `make
/// ca-layer` zips the bundle, Lambda unpacks the layer under /opt (here a
/// directory standing in for it), and the template points PGSSLROOTCERT
/// there. The real binary then verifies the server with it.
#[tokio::test]
async fn the_ca_layer_lets_the_deployed_function_verify_full() {
    let (_pki, pg, dir, bundle) = tls_only_server();
    let zip = dir.path().join("ca-layer.zip");
    let root = env!("CARGO_MANIFEST_DIR");
    let made = std::process::Command::new(format!("{root}/scripts/ca-layer.sh"))
        .env("CA", &bundle)
        .env("OUT", &zip)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let opt = dir.path().join("opt");
    let unzipped = std::process::Command::new("unzip")
        .args(["-q", "-d"])
        .arg(&opt)
        .arg(&zip)
        .status()
        .unwrap();
    assert!(unzipped.success());
    let in_layer = crate::support::template::CA_PATH
        .strip_prefix("/opt/")
        .expect("a layer's files are under /opt");
    let check = |rootcert: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_meshhook-health"));
        cmd.arg("check")
            .env_clear()
            .env("HEALTH_COMPONENTS", "database")
            .env("HEALTH_TIMEOUT_MS", "5000")
            .env("DATABASE_URL", url("localhost", &pg, "sslmode=verify-full"));
        if let Some(path) = rootcert {
            cmd.env("PGSSLROOTCERT", path);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )
    };
    let (code, body) = check(Some(&opt.join(in_layer)));
    assert_eq!(code, Some(0), "{body}");
    assert!(body.contains(r#""status":"healthy""#), "{body}");
    // Without the layer, verify-full has no root to verify against: a
    // configuration error at start-up (exit 2), never a silent downgrade.
    assert_eq!(check(None).0, Some(2));
}

/// The real binary's `check` with only the database, against `url`, with
/// `extra` in an otherwise empty environment: (exit code, stdout, stderr).
fn check_with(url: &str, extra: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshhook-health"))
        .arg("check")
        .env_clear()
        .env("HEALTH_COMPONENTS", "database")
        .env("HEALTH_TIMEOUT_MS", "5000")
        .env("DATABASE_URL", url)
        .envs(extra.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Railway, Render and Fly.io give a process variables but no files: the CA
/// travels as PEM text in DATABASE_CA_PEM, and verify-full verifies with it.
#[tokio::test]
async fn database_ca_pem_verifies_without_a_file() {
    let (pki, pg, _dir, bundle) = tls_only_server();
    let text = std::fs::read_to_string(&bundle).unwrap();
    let full = url("localhost", &pg, "sslmode=verify-full");

    let (code, body, stderr) = check_with(&full, &[("DATABASE_CA_PEM", &text)]);
    assert_eq!(code, Some(0), "{body} {stderr}");
    assert!(body.contains(r#""status":"healthy""#), "{body}");
    // A platform that keeps a variable on one line: \n escapes.
    let one_line = text.replace('\n', "\\n");
    assert!(!one_line.contains('\n'));
    assert_eq!(
        check_with(&full, &[("DATABASE_CA_PEM", &one_line)]).0,
        Some(0)
    );

    // The wrong CA: the server is refused, as with a wrong file.
    let (code, body, _) = check_with(&full, &[("DATABASE_CA_PEM", &pki.other_ca_pem)]);
    assert_eq!(code, Some(1), "{body}");
    assert!(body.contains(r#""status":"unhealthy""#), "{body}");

    // A file named by the URL or PGSSLROOTCERT comes first, as in libpq.
    let (code, _, stderr) = check_with(
        &full,
        &[
            ("PGSSLROOTCERT", &bundle),
            ("DATABASE_CA_PEM", &pki.other_ca_pem),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");

    // A value with no certificate in it: a start-up error naming the
    // variable, whatever sslmode says, and the value is never echoed.
    for value in [
        "not a certificate",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        for mode in ["verify-full", "require"] {
            let (code, _, stderr) = check_with(
                &url("localhost", &pg, &format!("sslmode={mode}")),
                &[("DATABASE_CA_PEM", value)],
            );
            assert_eq!(code, Some(2), "{mode}: {stderr}");
            assert!(stderr.contains("DATABASE_CA_PEM"), "{stderr}");
            assert!(
                !stderr.contains("AAAA") && !stderr.contains("not a certificate"),
                "{stderr}"
            );
        }
    }
}

/// `sslnegotiation=direct` against the server in use: on PostgreSQL 17 and
/// later (`make test-pg17`) it connects with TLS in one round trip fewer
/// than `postgres` (no SSLRequest), counted by the latency proxy, and each
/// at the protocol's floor; a server
/// before 17 (`make test`) does not speak TLS first, and the answer says so
/// rather than reading healthy.
#[tokio::test]
async fn sslnegotiation_direct_saves_a_round_trip_on_postgresql_17_and_fails_before() {
    use crate::support::latency::Latency;
    let pki = Pki::new(&["localhost"]);
    let pg = Postgres::dedicated_tls(&pki, false);
    let version: u32 = pg
        .value("postgres", "SHOW server_version_num")
        .await
        .unwrap()
        .parse()
        .unwrap();
    let direct_works = version >= 170_000;
    let proxy = Latency::start(pg.port(), std::time::Duration::from_millis(1));
    let mut flights = Vec::new();
    for negotiation in ["postgres", "direct"] {
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=require&sslnegotiation={negotiation}",
            proxy.port()
        );
        let app = app(&url, &[]);
        let before = proxy.flights();
        let body = verbose(&app).await.json();
        flights.push(proxy.flights() - before);
        let database = &body["checks"]["database"];
        if negotiation == "postgres" || direct_works {
            assert_eq!(database["status"], "healthy", "{negotiation}: {body}");
            assert_eq!(database["sslnegotiation"], negotiation, "{body}");
            assert_eq!(encrypted(&pg).await, "true", "{negotiation}");
        } else {
            assert_eq!(database["status"], "unhealthy", "{body}");
            let reason = database["reason"].as_str().unwrap();
            assert!(["tls", "unreachable"].contains(&reason), "{body}");
        }
        drop(app);
        connection_gone(&pg).await;
    }
    // The protocol's floor with trust logins: the SSLRequest, the
    // ClientHello, the TLS Finished with the startup message, the
    // statements. A ClientHello whose key share the server does not take
    // (X25519, where PostgreSQL before 18 takes only prime256v1) would draw
    // a HelloRetryRequest: one flight more.
    assert_eq!(flights[0], 4, "postgres: {flights:?}");
    if direct_works {
        assert_eq!(
            flights[1], 3,
            "direct: one flight fewer than postgres (the SSLRequest): {flights:?}"
        );
    }
}
