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
        crate::support::skip(
            "make::targets_name_the_missing_tool_in_one_line",
            "no /usr/bin/make",
        );
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
        ("test-image", "image"),
        ("verify-package", "package"),
        ("image", "image"),
        ("bench", "test"),
        ("test-pg17", "pg17"),
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

/// Commands a fresh Debian has with build-essential, git, curl,
/// ca-certificates and the Rust toolchain (minbase's essential packages
/// among them): what a test or script may call without provisioning.
const BASE: &[&str] = &[
    "awk", "basename", "bash", "cargo", "cat", "chmod", "chown", "cp", "curl", "cut", "date",
    "dirname", "env", "gcc", "git", "grep", "head", "id", "kill", "ls", "make", "mkdir", "mktemp",
    "mv", "readlink", "rm", "runuser", "rustup", "sed", "seq", "sh", "sleep", "sort", "stat",
    "tail", "tar", "tee", "timeout", "touch", "tr", "uname", "useradd", "wc", "xargs",
];

/// Shell keywords and builtins, which are not commands to provision.
const SHELL: &[&str] = &[
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
    "in", "function", "return", "exit", "local", "export", "set", "shift", "source", ".", "echo",
    "printf", "read", "trap", "wait", "exec", "cd", "command", "eval", "true", "false", "test",
    "[", "[[", "declare", "unset", "break", "continue", "time", "pwd", "type", "readonly", "let",
];

/// Commands `scripts/provision.sh test` installs: `have CMD PATH || missing+=(PACKAGE)`,
/// plus the PostgreSQL server's, which it installs as a package.
fn provisioned_for_tests() -> Vec<String> {
    let text = std::fs::read_to_string(format!("{ROOT}/scripts/provision.sh")).unwrap();
    let test = &text[text.find("    test)").unwrap()..];
    let test = &test[..test.find(";;").unwrap()];
    let mut commands: Vec<String> = test
        .lines()
        .filter_map(|l| l.trim().strip_prefix("have "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    if test.contains("missing+=(postgresql)") {
        commands
            .extend(["initdb", "pg_ctl", "postgres", "pg_basebackup", "psql"].map(String::from));
    }
    commands
}

/// Functions the scripts define (lib.sh's are used by the scripts that
/// source it).
fn script_functions() -> Vec<String> {
    let definition = regex::Regex::new(r"(?m)^\s*([A-Za-z_][A-Za-z0-9_]*)\(\)\s*\{").unwrap();
    let mut functions = Vec::new();
    for entry in std::fs::read_dir(format!("{ROOT}/scripts")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        functions.extend(definition.captures_iter(&text).map(|c| c[1].to_owned()));
    }
    functions
}

/// The commands a bash script calls: the first word of each simple
/// command and of each `$(...)`, leaving out assignments, expansions,
/// paths, functions, quoted text, here-documents and comments. Scripts it
/// runs (scripts/*.sh) are added to `pending`.
fn script_commands(path: &str, functions: &[String], pending: &mut Vec<String>) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap();
    let scripts = regex::Regex::new(r"scripts/([a-z0-9-]+\.sh)").unwrap();
    for found in scripts.captures_iter(&text) {
        pending.push(format!("scripts/{}", &found[1]));
    }
    let substitution = regex::Regex::new(r"\$\(\s*([A-Za-z_][A-Za-z0-9_.-]*)").unwrap();
    let quoted = regex::Regex::new(r#""(?:[^"\\]|\\.)*"|'[^']*'"#).unwrap();
    let separators =
        regex::Regex::new(r"\|\||&&|\||;|\$\(|\(|\{|\bthen\b|\bdo\b|\belse\b|!|`").unwrap();
    let case_pattern = regex::Regex::new(r"^[\w*.| -]+\)").unwrap();
    let mut words: Vec<String> = Vec::new();
    let mut heredoc: Option<String> = None;
    let mut continued = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(end) = &heredoc {
            if trimmed == end {
                heredoc = None;
            }
            continue;
        }
        if let Some(at) = trimmed.find("<<'") {
            let end = &trimmed[at + 3..];
            heredoc = Some(end[..end.find('\'').unwrap()].to_owned());
        }
        let was_continued = continued;
        continued = trimmed.ends_with('\\');
        if trimmed.starts_with('#') {
            continue;
        }
        words.extend(substitution.captures_iter(trimmed).map(|c| c[1].to_owned()));
        if was_continued {
            continue;
        }
        // A case pattern (`a | b)`, `*)`) names no command.
        if case_pattern.is_match(trimmed) {
            continue;
        }
        let unquoted = quoted.replace_all(trimmed, "\"\"");
        for segment in separators.split(&unquoted) {
            let word = segment
                .split_whitespace()
                .find(|w| !(w.contains('=') && !w.starts_with('-') && !w.starts_with('"')));
            if let Some(word) = word {
                words.push(word.to_owned());
            }
        }
    }
    words
        .into_iter()
        .filter(|word| {
            word.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                && !word.starts_with('-')
                && !word.chars().all(|c| c.is_ascii_digit())
                && !SHELL.contains(&word.as_str())
                && !functions.contains(word)
        })
        .collect()
}

/// `make test` on a fresh Debian: every command its tests call (literally,
/// through `Command::new`, or as a fixed path) and every command of the
/// scripts they run is either there already or installed by
/// `scripts/provision.sh test`.
#[test]
fn make_test_provisions_every_command_its_tests_and_scripts_call() {
    let mut used: Vec<(String, String)> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let literal = regex::Regex::new(r#"Command::new\("([^"/]+)"\)"#).unwrap();
    let fixed =
        regex::Regex::new(r#""/usr/(?:s?bin|lib/(?:nagios|monitoring)-?plugins?)/([a-z_-]+)""#)
            .unwrap();
    let scripts = regex::Regex::new(r"scripts/([a-z0-9-]+\.sh)").unwrap();
    let mut files = vec![format!("{ROOT}/tests/support")];
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(format!("{ROOT}/tests")).unwrap() {
        files.push(entry.unwrap().path().display().to_string());
    }
    while let Some(path) = files.pop() {
        if std::path::Path::new(&path).is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                let entry = entry.unwrap().path();
                if entry.extension().is_some_and(|e| e == "rs") {
                    sources.push(entry);
                }
            }
        } else if path.ends_with(".rs") {
            sources.push(path.into());
        }
    }
    for source in sources {
        let text = std::fs::read_to_string(&source).unwrap();
        let name = source.display().to_string();
        // The image and package checks, podman's and qemu's, are their own
        // targets' (make image, make verify-package), and skip here.
        if name.ends_with("/image.rs")
            || name.ends_with("/package.rs")
            || name.ends_with("/make.rs")
        {
            continue;
        }
        for re in [&literal, &fixed] {
            for found in re.captures_iter(&text) {
                used.push((found[1].to_owned(), name.clone()));
            }
        }
        for found in scripts.captures_iter(&text) {
            pending.push(format!("scripts/{}", &found[1]));
        }
    }
    let functions = script_functions();
    let mut seen = Vec::new();
    while let Some(script) = pending.pop() {
        if seen.contains(&script) || !std::path::Path::new(&format!("{ROOT}/{script}")).exists() {
            continue;
        }
        seen.push(script.clone());
        for command in script_commands(&script, &functions, &mut pending) {
            used.push((command, script.clone()));
        }
    }
    assert!(seen.iter().any(|s| s == "scripts/ca-layer.sh"), "{seen:?}");
    assert!(seen.iter().any(|s| s == "scripts/lib.sh"), "{seen:?}");

    // Commands a script only offers, behind `command -v` with a fallback,
    // and the tools of targets a test runs without them on purpose.
    let optional = [
        "python3",
        "sam",
        "cargo-lambda",
        "aws",
        "sudo",
        "apt-get",
        "cfn-lint",
        "podman",
        "docker",
        "wrk",
        "stress-ng",
        "qemu-aarch64-static",
        "readelf",
        "pyenv",
    ];
    let provisioned = provisioned_for_tests();
    let missing: Vec<String> = used
        .iter()
        .filter(|(c, _)| {
            !BASE.contains(&c.as_str())
                && !optional.contains(&c.as_str())
                && !provisioned.contains(c)
                && c != "meshhook-health"
        })
        .map(|(c, at)| format!("{c} ({at})"))
        .collect();
    assert!(
        missing.is_empty(),
        "called by make test but neither on a fresh Debian nor in provision.sh test: {missing:?}"
    );
    // python3 stays optional: every script that offers it has a fallback
    // or says how to get the tool, and no test calls it unguarded.
    let python: Vec<&(String, String)> = used
        .iter()
        .filter(|(c, at)| c == "python3" && at.ends_with(".rs"))
        .collect();
    for (_, at) in python {
        let text = std::fs::read_to_string(at).unwrap();
        assert!(
            text.contains("import samcli"),
            "{at} calls python3 unguarded"
        );
    }
}
