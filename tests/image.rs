//! `make image`: the container image is built from the repository with
//! podman, is small, runs as a non-root user, starts `serve`, and its own
//! binary answers 200 on `/health` through `PORT`. The binary runs in a
//! container where the machine allows one; where it does not (sandboxes
//! that refuse the container's rlimits or cgroups), it is copied out of the
//! image (`podman create` + `podman cp`) and run on the host.
//!
//! Without podman the test says it skipped (`make test-image` counts it,
//! and CI fails on it):
//! `scripts/provision.sh image` installs it (CI does).

// Part of the shared helpers: the rest serve the other tests.
#[allow(dead_code)]
mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{serve_process_from, Stack};

/// Largest acceptable image: the binary and a few glibc objects.
const MAX_IMAGE_BYTES: u64 = 16 * 1024 * 1024;

fn podman(args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("120")
        .arg("podman")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run podman")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn the_image_is_small_non_root_serves_on_port_and_answers_healthy() {
    if Command::new("podman").arg("--version").output().is_err() {
        support::skip(
            "image::the_image_is_small_non_root_serves_on_port_and_answers_healthy",
            "podman is not installed, so the container image was not built or checked \
             (scripts/provision.sh image installs it)",
        );
        return;
    }
    // Bounded: a release build plus the image, on a busy machine.
    let built = Command::new("timeout")
        .args(["1500", "scripts/image.sh", "build"])
        .env("CONTAINER", "podman")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/image.sh");
    assert!(
        built.status.success(),
        "make image: {}",
        text(&built.stderr)
    );

    let version = env!("CARGO_PKG_VERSION");
    let image = format!("meshhook-health:{version}");
    let inspected = podman(&["image", "inspect", &image]);
    assert!(inspected.status.success(), "{}", text(&inspected.stderr));
    let inspected: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    let config = &inspected[0]["Config"];
    assert_eq!(config["User"], "65532:65532", "non-root: {config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/meshhook-health"])
    );
    assert_eq!(config["Cmd"], serde_json::json!(["serve"]));
    let size = inspected[0]["Size"].as_u64().unwrap();
    assert!(size <= MAX_IMAGE_BYTES, "image is {size} bytes");

    // The image's own binary, with the test's database and Supabase.
    let stack = Stack::new().await;
    let port = support::postgres::free_port();
    let mut env = stack.env.clone();
    env.insert("PORT".into(), port.to_string());
    let url = format!("http://127.0.0.1:{port}/health");

    let name = format!("meshhook-health-test-{}", std::process::id());
    let mut run_args = vec!["run", "--rm", "-d", "--name", &name, "--network", "host"];
    let env_args: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for pair in &env_args {
        run_args.extend(["--env", pair.as_str()]);
    }
    run_args.push(&image);
    let ran = podman(&run_args);
    let body = if ran.status.success() {
        let answer = support::wait_for_health(&url, Duration::from_secs(30)).await;
        let _ = podman(&["rm", "-f", &name]);
        answer
    } else {
        eprintln!(
            "note: podman run refused here ({}); running the image's binary on the host",
            text(&ran.stderr).trim()
        );
        let created = podman(&["create", "--name", &name, &image]);
        assert!(created.status.success(), "{}", text(&created.stderr));
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let binary = dir.join("meshhook-health");
        let copied = podman(&[
            "cp",
            &format!("{name}:/usr/local/bin/meshhook-health"),
            binary.to_str().unwrap(),
        ]);
        let _ = podman(&["rm", "-f", &name]);
        assert!(copied.status.success(), "{}", text(&copied.stderr));
        // The image's command: `serve`, with PORT and no HEALTH_LISTEN.
        let _server = serve_process_from(&binary, &env, &["serve"], port);
        let answer = support::wait_for_health(&url, Duration::from_secs(30)).await;
        let _ = std::fs::remove_dir_all(&dir);
        answer
    };
    let (status, body) = body;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy", "{body}");
}
