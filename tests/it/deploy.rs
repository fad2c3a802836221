//! `make deploy` (scripts/deploy.sh) against stand-ins for `sam`,
//! `cargo-lambda` and `rustup` that record what they are asked: which
//! parameters a new stack gets, and that a redeploy changes only what it is
//! told to (sam keeps the stack's value of every parameter it is not given).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

struct Stubs {
    dir: tempfile::TempDir,
}

impl Stubs {
    fn new(stack_exists: bool) -> Stubs {
        let dir = crate::support::temp_dir("deploy");
        let exists = if stack_exists { 0 } else { 1 };
        let log = dir.path().join("sam.log");
        let scripts = [
            (
                "sam",
                format!(
                    "#!/bin/bash\n\
                     {{ for a in \"$@\"; do printf '%s\\0' \"$a\"; done; printf '\\n'; }} >> '{}'\n\
                     if [ \"$1 $2\" = 'list stack-outputs' ]; then exit {exists}; fi\n\
                     exit 0\n",
                    log.display()
                ),
            ),
            ("cargo-lambda", "#!/bin/sh\nexit 0\n".to_owned()),
            (
                "rustup",
                "#!/bin/sh\necho aarch64-unknown-linux-gnu\n".to_owned(),
            ),
        ];
        for (name, text) in scripts {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::process::Command::new("chmod")
                .arg("+x")
                .arg(&path)
                .status()
                .unwrap();
        }
        Stubs { dir }
    }

    /// Runs the script without a terminal, with only `env` set.
    fn deploy(&self, env: &[(&str, &str)]) -> (Option<i32>, String) {
        let out = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/deploy.sh"))
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.dir.path().display()),
            )
            .env("HOME", self.dir.path())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The calls to sam, each as its arguments.
    fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.dir.path().join("sam.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                l.split('\0')
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .collect()
    }

    /// The parameter overrides of `sam deploy`, as sam reads them; `None`
    /// when deploy ran without any.
    fn overrides(&self) -> Option<BTreeMap<String, String>> {
        let calls = self.calls();
        let deploy = calls
            .iter()
            .find(|c| c[0] == "deploy")
            .expect("sam deploy ran");
        let at = deploy.iter().position(|a| a == "--parameter-overrides")?;
        Some(deploy[at + 1..].iter().map(|a| parse(a)).collect())
    }
}

/// `Key="value"` or `Key=value` as sam's parameter-override parser reads
/// it: `\"` inside quotes is a quote; an empty value must be quoted.
fn parse(arg: &str) -> (String, String) {
    let (key, value) = arg.split_once('=').unwrap();
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => (key.to_owned(), inner.replace("\\\"", "\"")),
        None => {
            assert!(!value.is_empty(), "{arg}: sam refuses Key= with nothing");
            (key.to_owned(), value.to_owned())
        }
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const REGION: (&str, &str) = ("AWS_REGION", "eu-west-1");

#[test]
fn a_new_stack_takes_the_database_url_route_and_the_version_from_the_environment() {
    let stubs = Stubs::new(false);
    let url = "postgres://meshhook_health.ref:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres?sslmode=require";
    let (code, stderr) =
        stubs.deploy(&[REGION, ("DATABASE_URL", url), ("MESHHOOK_VERSION", "1.4.2")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stubs.overrides().unwrap(),
        map(&[
            ("DatabaseUrl", url),
            ("DatabaseSecretId", ""),
            ("MeshHookVersion", "1.4.2"),
        ])
    );
    let deploy = stubs
        .calls()
        .into_iter()
        .find(|c| c[0] == "deploy")
        .unwrap();
    assert!(deploy
        .windows(2)
        .any(|w| w == ["--stack-name", "meshhook-health"]));
    assert!(deploy.windows(2).any(|w| w == ["--region", "eu-west-1"]));
    // No terminal: sam's changeset prompt (samconfig.toml) would wait or abort.
    assert!(deploy.iter().any(|a| a == "--no-confirm-changeset"));
}

#[test]
fn a_new_stack_with_a_secret_and_supabase() {
    let stubs = Stubs::new(false);
    let (code, stderr) = stubs.deploy(&[
        REGION,
        ("STACK_NAME", "mh-staging"),
        ("DATABASE_SECRET_ID", "meshhook/health-db"),
        ("SUPABASE_URL", "https://abcdefghijklmnopqrst.supabase.co"),
        ("SUPABASE_ANON_KEY", "sb_publishable_x \"quoted\""),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stubs.overrides().unwrap(),
        map(&[
            ("DatabaseSecretId", "meshhook/health-db"),
            ("DatabaseUrl", ""),
            ("SupabaseUrl", "https://abcdefghijklmnopqrst.supabase.co"),
            ("SupabaseAnonKey", "sb_publishable_x \"quoted\""),
        ])
    );
}

#[test]
fn a_new_stack_without_a_database_route_stops_before_building() {
    let stubs = Stubs::new(false);
    let (code, stderr) = stubs.deploy(&[REGION]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("DATABASE_SECRET_ID") && stderr.contains("DATABASE_URL"),
        "{stderr}"
    );
    assert!(stubs
        .calls()
        .iter()
        .all(|c| c[0] != "build" && c[0] != "deploy"));
}

#[test]
fn a_redeploy_keeps_what_the_stack_has_unless_told() {
    // Nothing named: no override at all, so sam sends UsePreviousValue for
    // every parameter (an enabled queue, its alarm, the secret all stay).
    let stubs = Stubs::new(true);
    let (code, stderr) = stubs.deploy(&[REGION]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stubs.overrides(), None);

    // A new version and a new secret, confirmed: only those change.
    let stubs = Stubs::new(true);
    let (code, stderr) = stubs.deploy(&[
        REGION,
        ("DATABASE_SECRET_ID", "meshhook/health-db-2"),
        ("MESHHOOK_VERSION", "1.5.0"),
        ("PARAMS", "AlarmEmail=ops@example.com"),
        ("CONFIRM", "1"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let overrides = stubs.overrides().unwrap();
    assert_eq!(
        overrides.keys().collect::<Vec<_>>(),
        [
            "AlarmEmail",
            "DatabaseSecretId",
            "DatabaseUrl",
            "MeshHookVersion"
        ]
    );
    assert!(!overrides.contains_key("HealthComponents"));
}

/// The quoting above is what sam itself accepts (when aws-sam-cli is
/// installed, as CI installs it).
#[test]
fn sam_reads_the_overrides_as_the_script_writes_them() {
    let probe = "from samcli.cli.types import CfnParameterOverridesType as T; import sys; \
                 print(T().convert(tuple(sys.argv[1:]), None, None))";
    let has_sam = Command::new("python3")
        .args(["-c", "import samcli"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_sam {
        crate::support::skip(
            "deploy::sam_reads_the_overrides_as_the_script_writes_them",
            "aws-sam-cli is not installed (pip install aws-sam-cli)",
        );
        return;
    }
    let out = Command::new("python3")
        .args(["-c", probe])
        .args([
            r#"DatabaseUrl="""#,
            r#"SupabaseAnonKey="a \"b\" c""#,
            r#"HealthComponents="database,workers""#,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("'DatabaseUrl': ''"), "{text}");
    assert!(
        text.contains("'HealthComponents': 'database,workers'"),
        "{text}"
    );
}

/// The README's `make run` exports DATABASE_URL and the Supabase settings;
/// `make deploy` from that same shell on an existing stack must not point
/// production at a laptop's database. It names what would change (never a
/// value) and stops before building, unless CONFIRM=1.
#[test]
fn a_redeploy_from_a_make_run_shell_stops_until_confirmed() {
    let url = "postgres://postgres:laptop-pw-7731@127.0.0.1:54329/postgres";
    let key = "sb_publishable_local_7731";
    let env = [
        REGION,
        ("DATABASE_URL", url),
        ("SUPABASE_URL", "http://127.0.0.1:54321"),
        ("SUPABASE_ANON_KEY", key),
        ("MESHHOOK_VERSION", "1.5.0"),
    ];
    let stubs = Stubs::new(true);
    let (code, stderr) = stubs.deploy(&env);
    assert_eq!(code, Some(1), "{stderr}");
    for name in [
        "DatabaseUrl",
        "DatabaseSecretId (cleared)",
        "SupabaseUrl",
        "SupabaseAnonKey",
        "CONFIRM=1",
    ] {
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
    for value in [url, key, "laptop-pw-7731", "127.0.0.1:54321"] {
        assert!(!stderr.contains(value), "{value} shown: {stderr}");
    }
    assert!(
        stubs
            .calls()
            .iter()
            .all(|c| c[0] != "build" && c[0] != "deploy"),
        "{:?}",
        stubs.calls()
    );

    // Confirmed: exactly those change.
    let stubs = Stubs::new(true);
    let mut confirmed = env.to_vec();
    confirmed.push(("CONFIRM", "1"));
    let (code, stderr) = stubs.deploy(&confirmed);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stubs.overrides().unwrap().keys().collect::<Vec<_>>(),
        [
            "DatabaseSecretId",
            "DatabaseUrl",
            "MeshHookVersion",
            "SupabaseAnonKey",
            "SupabaseUrl"
        ]
    );

    // A version alone needs no confirmation.
    let stubs = Stubs::new(true);
    let (code, stderr) = stubs.deploy(&[REGION, ("MESHHOOK_VERSION", "1.5.0")]);
    assert_eq!(code, Some(0), "{stderr}");
}

/// Management API mode through `make deploy`: both settings go to the
/// stack with a warning that the token is a plain Lambda variable and
/// should be scoped; one without the other stops.
#[test]
fn management_api_mode_is_reachable_and_warned_about() {
    let stubs = Stubs::new(false);
    let (code, stderr) = stubs.deploy(&[
        REGION,
        ("DATABASE_SECRET_ID", "meshhook/health-db"),
        ("SUPABASE_ACCESS_TOKEN", "sbp_scoped_7731"),
        ("SUPABASE_PROJECT_REF", "abcdefghijklmnopqrst"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let overrides = stubs.overrides().unwrap();
    assert_eq!(overrides["SupabaseAccessToken"], "sbp_scoped_7731");
    assert_eq!(overrides["SupabaseProjectRef"], "abcdefghijklmnopqrst");
    assert!(
        stderr.contains("plain Lambda environment variable") && stderr.contains("scoped"),
        "{stderr}"
    );
    assert!(!stderr.contains("sbp_scoped_7731"), "{stderr}");

    let stubs = Stubs::new(false);
    let (code, stderr) = stubs.deploy(&[
        REGION,
        ("DATABASE_SECRET_ID", "meshhook/health-db"),
        ("SUPABASE_ACCESS_TOKEN", "sbp_scoped_7731"),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("SUPABASE_PROJECT_REF"), "{stderr}");
    assert!(stubs.calls().iter().all(|c| c[0] != "deploy"));
}
