//! JSON written straight into a `String`, for the lines made at every
//! evaluation (the log event's `checks`, the EMF documents): building
//! `serde_json::Value` trees for them (maps of owned keys, built, printed
//! and dropped) cost more than the rest of a warm answer's own work
//! (BENCHMARKS.md, "Where a warm answer's instructions go"). Escaping is
//! still `serde_json`'s.

/// `s` as a JSON string literal.
pub fn quote(out: &mut String, s: &str) {
    if s.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| r#""""#.to_owned()));
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// `n` as `serde_json` writes an `f64`: `null` when it is not finite.
pub fn number(out: &mut String, n: f64) {
    out.push_str(&serde_json::to_string(&n).unwrap_or_else(|_| "null".to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_serde_json_writes_them() {
        for s in ["plain", "a \"quoted\\ name\"\n\t\u{1}", "ünïcödé", ""] {
            let mut out = String::new();
            quote(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
        for n in [0.0, 12.0, 0.4, -1.5, 1e21, f64::NAN, f64::INFINITY] {
            let mut out = String::new();
            number(&mut out, n);
            assert_eq!(out, serde_json::json!(n).to_string());
        }
    }
}
