//! pgmq's own install script, for the throwaway clusters.
//!
//! pgmq is plain SQL (plus an optional extension wrapper). The `pgmq` crate
//! ships the project's `pgmq.sql` in its sources, so the tests obtain that
//! crate from the crates.io registry with cargo itself (which checks the
//! crate's checksum against the registry index) and read the script out of
//! it. Nothing of pgmq is copied into this repository.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The `pgmq` crate release whose sources carry pgmq 1.11.1's install SQL.
pub const CRATE_VERSION: &str = "0.33.7";
const SCRIPT: &str = "src/install/embedded/sql/pgmq.sql";

/// The text of pgmq's install script (fetched once per test process).
pub fn install_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let path = script_path();
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    })
}

fn script_path() -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pgmq-{CRATE_VERSION}.sql"));
    if out.exists() {
        return out;
    }
    let archive = crate_archive().unwrap_or_else(|| {
        // `cargo info` downloads the release into cargo's registry cache.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["info", &format!("pgmq@{CRATE_VERSION}")])
            .current_dir(env!("CARGO_TARGET_TMPDIR"))
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run cargo info");
        assert!(status.success(), "cargo info pgmq@{CRATE_VERSION} failed");
        crate_archive().expect("pgmq crate in cargo's registry cache after cargo info")
    });
    let member = format!("pgmq-{CRATE_VERSION}/{SCRIPT}");
    let extracted = Command::new("tar")
        .arg("-xzOf")
        .arg(&archive)
        .arg(&member)
        .output()
        .expect("run tar");
    assert!(
        extracted.status.success() && !extracted.stdout.is_empty(),
        "{member} not in {}",
        archive.display()
    );
    // Written under a temporary name first: tests in other processes may
    // look for the file at the same time.
    let partial = out.with_extension(format!("{}.partial", std::process::id()));
    std::fs::write(&partial, &extracted.stdout).unwrap();
    std::fs::rename(&partial, &out).unwrap();
    out
}

/// `pgmq-<version>.crate` in cargo's registry cache, if already there.
fn crate_archive() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let file = format!("pgmq-{CRATE_VERSION}.crate");
    std::fs::read_dir(home.join("registry/cache"))
        .ok()?
        .filter_map(Result::ok)
        .map(|registry| registry.path().join(&file))
        .find(|p| p.exists())
}
