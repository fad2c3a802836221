//! The README and docs/ as a newcomer meets them: a README that fits, links
//! that lead somewhere, and nothing in them that hurts when followed as
//! written — a password on a command line, a guessed pooler host, a second
//! copy of a grant that drifts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// README.md and every Markdown page under docs/, by path relative to the root.
fn pages() -> BTreeMap<String, String> {
    let mut pages = BTreeMap::new();
    pages.insert("README.md".to_owned(), read("README.md"));
    let mut dirs = vec![PathBuf::from(ROOT).join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let relative = path.strip_prefix(ROOT).unwrap().display().to_string();
                pages.insert(relative.clone(), read(&relative));
            }
        }
    }
    pages
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(relative)).unwrap()
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            found.push(slug(line.trim_start_matches('#')));
        }
    }
    found
}

/// Fenced blocks as (language, text).
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        let fence = line.trim_start();
        if let Some(lang) = fence.strip_prefix("```") {
            match current.take() {
                Some(block) => found.push(block),
                None => current = Some((lang.trim().to_owned(), String::new())),
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line.trim_start());
            body.push('\n');
        }
    }
    found
}

#[test]
fn the_readme_fits_in_200_lines() {
    let lines = read("README.md").lines().count();
    assert!(lines <= 200, "README.md has {lines} lines");
}

#[test]
fn every_relative_link_resolves() {
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let pages = pages();
    let mut broken = Vec::new();
    let mut checked = 0;
    for (page, text) in &pages {
        let dir = Path::new(page).parent().unwrap();
        for found in link.captures_iter(text) {
            let target = &found[1];
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            checked += 1;
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let resolved = if file.is_empty() {
                PathBuf::from(page)
            } else {
                dir.join(file)
            };
            let on_disk = Path::new(ROOT).join(&resolved);
            if !on_disk.exists() {
                broken.push(format!("{page}: {target} (no {})", resolved.display()));
                continue;
            }
            if !anchor.is_empty() {
                let text = std::fs::read_to_string(&on_disk).unwrap_or_default();
                if !anchors(&text).iter().any(|a| a == anchor) {
                    broken.push(format!("{page}: {target} (no heading #{anchor})"));
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} links found");
    assert!(broken.is_empty(), "{broken:#?}");
}

/// Pooler hosts are `aws-N-<region>`, copied from the dashboard: a guessed
/// `aws-0-…` reaches a Supavisor that refuses the login.
#[test]
fn no_page_guesses_the_pooler_host() {
    // `aws-0-…` in a warning is fine; `aws-0-<region>` or `aws-0-eu-west-1`
    // as a host to use is not.
    let guessed = regex::Regex::new(r"aws-0-[a-z<]").unwrap();
    for (page, text) in pages() {
        assert!(
            !guessed.is_match(&text),
            "{page} names an aws-0- pooler host"
        );
    }
}

/// The CA bundle has one name everywhere: the file Supabase's dashboard
/// hands out.
#[test]
fn the_ca_file_has_one_name() {
    let names = regex::Regex::new(r"[\w.-]*\.(?:crt|cer)\b|[\w-]*ca[\w-]*\.pem\b").unwrap();
    let mut texts = pages();
    texts.insert("Makefile".to_owned(), read("Makefile"));
    texts.insert(
        "scripts/ca-layer.sh".to_owned(),
        read("scripts/ca-layer.sh"),
    );
    for (page, text) in texts {
        for found in names.find_iter(&text) {
            // The layer's own path, where the template points PGSSLROOTCERT.
            if found.as_str() == "ca.pem" {
                continue;
            }
            assert_eq!(found.as_str(), "prod-ca-2021.crt", "{page}");
        }
    }
}

/// Nothing a reader copies puts a secret on a command line (where `ps` and
/// the shell's history keep it) or in SQL (where psql's history and the
/// server's log keep it); URLs used are set before use.
#[test]
fn no_documented_command_puts_a_secret_on_the_command_line() {
    let password_in_url = regex::Regex::new(r"://[^\s:/@'\x22]+:[^\s@/'\x22]+@").unwrap();
    let mut shell_blocks = 0;
    for (page, text) in pages() {
        for (lang, body) in blocks(&text) {
            match lang.as_str() {
                "sh" | "bash" | "console" => {
                    shell_blocks += 1;
                    for line in body.lines().filter(|l| !l.starts_with('#')) {
                        assert!(
                            !password_in_url.is_match(line),
                            "{page}: a password in a command: {line}"
                        );
                        if line.contains("--secret-string") {
                            assert!(line.contains("file://"), "{page}: {line}");
                        }
                    }
                }
                "sql" => assert!(
                    !body.contains("password '"),
                    "{page}: a password in SQL (use psql's \\password)"
                ),
                _ => {}
            }
        }
        if let Some(used) = text.find("$HEALTH_URL") {
            let set = text.find("HEALTH_URL=$(").unwrap_or(usize::MAX);
            assert!(set < used, "{page}: $HEALTH_URL used before it is set");
        }
    }
    assert!(shell_blocks > 10, "{shell_blocks}");
}

/// One copy of the workers' grants: OPERATIONS.md's block, which the tests
/// run; the other pages point at it.
#[test]
fn the_workers_grants_are_written_once() {
    let grant = "on monitoring.worker_heartbeats to meshhook_worker";
    let copies: Vec<String> = pages()
        .into_iter()
        .filter(|(_, text)| text.contains(grant))
        .map(|(page, text)| format!("{page} x{}", text.matches(grant).count()))
        .collect();
    assert_eq!(copies, ["docs/OPERATIONS.md x1"]);
    // Nor a privilege list of its own elsewhere (one without `select` made
    // the shutdown delete fail).
    for (page, text) in pages() {
        if page != "docs/OPERATIONS.md" {
            assert!(
                !text.contains("insert, update, delete on monitoring"),
                "{page}"
            );
        }
    }
    let operations = read("docs/OPERATIONS.md");
    let block = &operations[operations.find("<!-- role: workers -->").unwrap()..];
    assert!(block[..block.find("```\n\n").unwrap()]
        .contains(&format!("select, insert, update, delete {grant}")));
}

/// Railway: variables before the first deploy, the CA as a variable (the
/// image has no file of it), and what `runs` reads on today's MeshHook.
#[test]
fn railway_sets_variables_before_the_first_deploy_and_needs_no_file() {
    let text = read("docs/RAILWAY.md");
    let variables = text
        .find("## 2. An empty service and its variables")
        .unwrap();
    let source = text.find("## 3. The source, and the first deploy").unwrap();
    assert!(variables < source);
    assert!(text.contains("`DATABASE_CA_PEM`"));
    assert!(
        !text.contains("sslrootcert="),
        "a file the image does not have"
    );
    assert!(text.contains("engine_stalled") && text.contains("HEALTH_NONCRITICAL"));
}

/// Railway's metrics: the private address RAILWAY.md gives is the one the
/// documented Prometheus job and the Alloy example scrape, on the port the
/// service listens on.
#[test]
fn railway_metrics_are_scraped_where_the_service_listens() {
    let text = read("docs/RAILWAY.md");
    let section = &text[text.find("## 5. Metrics").unwrap()..];
    let target = "meshhook-health.railway.internal:8080";
    assert!(section.contains(&format!("\"__address__\" = \"{target}\"")));
    assert!(read("docs/monitors/prometheus.yml").contains(&format!("- {target}\n")));
    assert!(
        section.contains("| `PORT` | `8080`")
            && section.contains("| `HEALTH_LISTEN` | `[::]:8080`")
    );
    assert!(section.contains("`HEALTH_METRICS_TOKEN`"));
}

/// UptimeRobot: the monitor the docs recommend reads the status code, so
/// API Gateway's own errors count as down.
#[test]
fn uptimerobot_is_told_to_watch_the_status_code() {
    let text = read("docs/API.md");
    let at = text.find("**UptimeRobot**").unwrap();
    let paragraph = &text[at..at + text[at..].find("\n\n").unwrap()];
    assert!(paragraph.contains("*HTTP(s)*"), "{paragraph}");
    assert!(
        paragraph.contains("**does not\nexist**") || paragraph.contains("**does not exist**"),
        "{paragraph}"
    );
}
