//! `DATABASE_URL` in either libpq form (a `postgres://` URL or a key=value
//! string): the TLS parameters taken out, everything else left as written
//! for tokio-postgres to parse.

use crate::env::ConfigError;

pub(super) struct TlsParams {
    pub rest: String,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
}

/// Removes `sslmode` and `sslrootcert` from a URL's query or a key=value
/// string, returning the rest unchanged.
pub(super) fn split_tls_params(raw: &str) -> Result<TlsParams, ConfigError> {
    let mut out = TlsParams {
        rest: String::new(),
        sslmode: None,
        sslrootcert: None,
    };
    let is_url = raw.starts_with("postgres://") || raw.starts_with("postgresql://");
    if is_url {
        let (base, query) = raw.split_once('?').unwrap_or((raw, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = || {
                percent_decode(v).ok_or_else(|| {
                    ConfigError::new("DATABASE_URL", "bad percent-encoding in a parameter")
                })
            };
            match k {
                "sslmode" => out.sslmode = Some(decoded()?),
                "sslrootcert" => out.sslrootcert = Some(decoded()?),
                _ => kept.push(pair),
            }
        }
        out.rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok(out);
    }

    // key=value form: values may be 'quoted' with backslash escapes.
    let bad = || {
        ConfigError::new(
            "DATABASE_URL",
            "not a valid Postgres URL or key=value string",
        )
    };
    let mut kept: Vec<&str> = Vec::new();
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &raw[start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() || bytes[i] != b'=' {
            return Err(bad());
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value: Vec<u8> = Vec::new();
        if i < bytes.len() && bytes[i] == b'\'' {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(bad()),
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < bytes.len() => {
                        value.push(bytes[i + 1]);
                        i += 2;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                value.push(bytes[i]);
                i += 1;
            }
        }
        let value = String::from_utf8_lossy(&value).into_owned();
        match key {
            "sslmode" => out.sslmode = Some(value),
            "sslrootcert" => out.sslrootcert = Some(value),
            _ => kept.push(&raw[start..i]),
        }
    }
    out.rest = kept.join(" ");
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_leaves_other_parameters_untouched() {
        let split = split_tls_params(
            "postgres://u@h/d?a=1&sslmode=verify-ca&sslrootcert=%2Ftmp%2Fca.pem&b=2",
        )
        .unwrap();
        assert_eq!(split.rest, "postgres://u@h/d?a=1&b=2");
        assert_eq!(split.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(split.sslrootcert.as_deref(), Some("/tmp/ca.pem"));
        let split =
            split_tls_params("host=h sslrootcert='/a b/ca.pem' user=u sslmode = require").unwrap();
        assert_eq!(split.rest, "host=h user=u");
        assert_eq!(split.sslrootcert.as_deref(), Some("/a b/ca.pem"));
        assert_eq!(split.sslmode.as_deref(), Some("require"));
    }
}
