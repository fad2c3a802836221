//! Every Make target either installs what it needs (Debian packages,
//! through scripts/provision.sh) or says in one line which tool is missing
//! and how to get it — never a stack of errors from half a build.

use std::process::{Command, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `make TARGET` with only the system directories on PATH: no Rust
/// toolchain, no PyPI tools.
fn make_without_tools(target: &str) -> (Option<i32>, String) {
    let out = Command::new("make")
        .args(["-s", target])
        .current_dir(ROOT)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .expect("make runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn targets_name_the_missing_tool_in_one_line() {
    if Command::new("/usr/bin/make")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no /usr/bin/make");
        return;
    }
    // (target, the target the line names, the tools it may name)
    for (target, says, tools) in [
        ("lint", "lint", &["cargo", "cfn-lint"][..]),
        ("build", "build", &["cargo-lambda"][..]),
        ("package", "package", &["cargo-lambda"][..]),
        ("verify-package", "package", &["cargo-lambda"][..]),
        ("deploy", "deploy", &["sam", "cargo-lambda"][..]),
        ("invoke", "invoke", &["cargo-lambda"][..]),
        ("ca-layer", "ca-layer", &["CA"][..]),
    ] {
        let (code, stderr) = make_without_tools(target);
        assert_ne!(code, Some(0), "make {target} succeeded without its tools");
        // Make adds its own "make: *** [...] Error 1" line; ours is the one
        // before it.
        let ours: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("make: ***") && !l.starts_with("make[1]: ***"))
            .collect();
        assert_eq!(ours.len(), 1, "make {target}: {stderr}");
        assert!(
            ours[0].starts_with(&format!("make {says}: "))
                && tools.iter().any(|t| ours[0].contains(t)),
            "make {target}: {stderr}"
        );
    }
}

/// Targets that need Debian packages install them first.
#[test]
fn targets_that_need_packages_provision_them() {
    let makefile = std::fs::read_to_string(format!("{ROOT}/Makefile")).unwrap();
    let recipe = |target: &str| -> String {
        let start = makefile
            .find(&format!("\n{target}:"))
            .unwrap_or_else(|| panic!("no target {target}"));
        makefile[start + 1..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with('\t'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (target, purpose) in [
        ("run", "run"),
        ("test", "test"),
        ("verify-package", "package"),
        ("image", "image"),
        ("bench", "test"),
    ] {
        let lines = recipe(target);
        let provision = lines
            .lines()
            .find(|l| l.contains("scripts/provision.sh"))
            .unwrap_or_else(|| panic!("make {target} does not provision: {lines}"));
        assert!(
            provision.split_whitespace().any(|w| w == purpose),
            "make {target}: {provision}"
        );
    }
    // verify-package's own script needs unzip and readelf.
    let provision = std::fs::read_to_string(format!("{ROOT}/scripts/provision.sh")).unwrap();
    let package = &provision[provision.find("    package)").unwrap()..];
    let package = &package[..package.find(";;").unwrap()];
    assert!(package.contains("unzip") && package.contains("readelf"));
}
