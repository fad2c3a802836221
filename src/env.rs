//! Where configuration comes from, and how a bad value is reported.
//!
//! A leaf: it imports nothing of this crate, so every module that reads a
//! setting (the components, the database, secrets) can use it without
//! reaching back up. An error names the variable at fault and never repeats
//! a secret's value, so it can be shown to an operator (and logged) as it is.

/// A configuration problem; the message names the variable and is safe to print.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// Where configuration values come from: the process environment in
/// production, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment. Empty values count as unset, as operators expect
/// from `FOO=` in a template.
pub struct Environment;

impl Source for Environment {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<S: std::hash::BuildHasher> Source for std::collections::HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }
}

/// A value that must never be printed: `Debug` shows only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Reads a whole number within `min..=max`, or `default` when unset.
pub fn number(
    env: &dyn Source,
    variable: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = env.get(variable) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            variable,
            format!("expected a whole number from {min} to {max}"),
        )),
    }
}

/// A comma list with blanks dropped and repeats removed, in first-seen order.
pub fn list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .fold(Vec::new(), |mut acc, s| {
            if !acc.contains(&s) {
                acc.push(s);
            }
            acc
        })
}

/// An `http://` or `https://` base URL with a host and no user or
/// password, ending in `/` so that routes `join` below it (any query is
/// left for the caller to judge).
pub fn http_base_url(variable: &'static str, raw: &str) -> Result<reqwest::Url, ConfigError> {
    let mut url = reqwest::Url::parse(raw.trim())
        .map_err(|_| ConfigError::new(variable, "not a valid URL (expected https://…)"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(
            variable,
            "must be an http:// or https:// URL with a host",
        ));
    }
    if url.password().is_some() || !url.username().is_empty() {
        return Err(ConfigError::new(
            variable,
            "must not carry a user or password",
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A test environment from `(name, value)` pairs.
#[cfg(test)]
pub fn pairs(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
