//! `DATABASE_URL` in either libpq form (a `postgres://` URL or a key=value
//! string): the TLS parameters (`sslmode`, `sslrootcert`, `sslnegotiation`)
//! taken out, everything else left as written
//! for tokio-postgres to parse (it knows neither the verify modes nor root
//! certificates).

use percent_encoding::percent_decode_str;

use crate::env::ConfigError;

/// libpq's TLS parameters, as written.
#[derive(Default)]
pub(super) struct TlsParams {
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    pub sslnegotiation: Option<String>,
}

impl TlsParams {
    /// Keeps `value` when `key` is one of ours; false for any other key.
    fn take(&mut self, key: &str, value: String) -> bool {
        match key {
            "sslmode" => self.sslmode = Some(value),
            "sslrootcert" => self.sslrootcert = Some(value),
            "sslnegotiation" => self.sslnegotiation = Some(value),
            _ => return false,
        }
        true
    }
}

/// Removes `sslmode`, `sslrootcert` and `sslnegotiation` from a URL's
/// query or a key=value string: the rest unchanged, and their values.
pub(super) fn split_tls_params(raw: &str) -> Result<(String, TlsParams), ConfigError> {
    if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        split_url(raw)
    } else {
        split_key_values(raw)
    }
}

fn split_url(raw: &str) -> Result<(String, TlsParams), ConfigError> {
    let (base, query) = raw.split_once('?').unwrap_or((raw, ""));
    let mut tls = TlsParams::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| ConfigError::new("DATABASE_URL", "bad percent-encoding in a parameter"))?;
        if !tls.take(key, value.into_owned()) {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, tls))
}

/// `key = value` pairs separated by whitespace; a value may be 'quoted',
/// and a backslash escapes the next character.
fn split_key_values(raw: &str) -> Result<(String, TlsParams), ConfigError> {
    let bad = || {
        ConfigError::new(
            "DATABASE_URL",
            "not a valid Postgres URL or key=value string",
        )
    };
    let mut tls = TlsParams::default();
    let mut kept = Vec::new();
    let mut rest = raw.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or_else(bad)?;
        let key = key.trim_end();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(bad());
        }
        let (value, remaining) = value(after.trim_start()).ok_or_else(bad)?;
        let pair = &rest[..rest.len() - remaining.len()];
        if !tls.take(key, value) {
            kept.push(pair);
        }
        rest = remaining.trim_start();
    }
    Ok((kept.join(" "), tls))
}

/// The value at the start of `s` and what follows it; `None` for a quote
/// that never closes.
fn value(s: &str) -> Option<(String, &str)> {
    let quoted = s.starts_with('\'');
    let mut chars = s.char_indices().skip(usize::from(quoted));
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, escaped)) => value.push(escaped),
                None if quoted => return None,
                None => value.push('\\'),
            },
            '\'' if quoted => return Some((value, &s[i + 1..])),
            c if !quoted && c.is_whitespace() => return Some((value, &s[i..])),
            c => value.push(c),
        }
    }
    (!quoted).then_some((value, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_leaves_other_parameters_untouched() {
        let (rest, tls) = split_tls_params(
            "postgres://u@h/d?a=1&sslmode=verify-ca&sslrootcert=%2Ftmp%2Fca.pem&b=2&sslnegotiation=direct",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u@h/d?a=1&b=2");
        assert_eq!(tls.sslnegotiation.as_deref(), Some("direct"));
        assert_eq!(tls.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(tls.sslrootcert.as_deref(), Some("/tmp/ca.pem"));
        let (rest, tls) = split_tls_params(
            "host=h sslrootcert='/a b/ca.pem' user=u sslmode = require sslnegotiation=postgres",
        )
        .unwrap();
        assert_eq!(rest, "host=h user=u");
        assert_eq!(tls.sslnegotiation.as_deref(), Some("postgres"));
        assert_eq!(tls.sslrootcert.as_deref(), Some("/a b/ca.pem"));
        assert_eq!(tls.sslmode.as_deref(), Some("require"));
    }

    #[test]
    fn key_values_keep_quotes_and_escapes_and_refuse_what_libpq_refuses() {
        let (rest, tls) =
            split_tls_params(r"password='a b\'c' sslmode=verify-full user=x\ y").unwrap();
        assert_eq!(rest, r"password='a b\'c' user=x\ y");
        assert_eq!(tls.sslmode.as_deref(), Some("verify-full"));
        for bad in ["host", "ho st=x", "password='open", "=x"] {
            assert!(split_tls_params(bad).is_err(), "{bad}");
        }
    }
}
