//! JSON written straight into a `String`, for the lines made at every
//! evaluation (the log event's `checks`, the EMF documents): building
//! `serde_json::Value` trees for them (maps of owned keys, built, printed
//! and dropped) cost more than the rest of a warm answer's own work
//! (BENCHMARKS.md, "Where a warm answer's instructions go"). Escaping is
//! still `serde_json`'s.

/// `s` as a JSON string literal.
pub fn quoted(s: &str) -> String {
    if s.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        serde_json::to_string(s).unwrap_or_else(|_| r#""""#.to_owned())
    } else {
        format!("\"{s}\"")
    }
}

/// `n` as `serde_json` writes an `f64`: `null` when it is not finite.
fn number(n: f64) -> String {
    serde_json::to_string(&n).unwrap_or_else(|_| "null".to_owned())
}

/// `items`, each already JSON, as a JSON array.
pub fn array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    out
}

/// A JSON object written member by member, in the order written.
pub struct Object(String);

impl Object {
    pub fn new() -> Self {
        Self(String::from("{"))
    }

    /// A member whose value is already JSON.
    pub fn raw(&mut self, name: &str, json: &str) -> &mut Self {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push_str(&quoted(name));
        self.0.push(':');
        self.0.push_str(json);
        self
    }

    pub fn string(&mut self, name: &str, value: &str) -> &mut Self {
        self.raw(name, &quoted(value))
    }

    pub fn number(&mut self, name: &str, value: f64) -> &mut Self {
        self.raw(name, &number(value))
    }

    pub fn integer(&mut self, name: &str, value: u64) -> &mut Self {
        self.raw(name, &value.to_string())
    }

    /// The object's text.
    pub fn finish(&mut self) -> String {
        let mut text = std::mem::take(&mut self.0);
        text.push('}');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_serde_json_writes_them() {
        for s in ["plain", "a \"quoted\\ name\"\n\t\u{1}", "ünïcödé", ""] {
            assert_eq!(quoted(s), serde_json::to_string(s).unwrap());
        }
        for n in [0.0, 12.0, 0.4, -1.5, 1e21, f64::NAN, f64::INFINITY] {
            assert_eq!(number(n), serde_json::json!(n).to_string());
        }
        let text = Object::new()
            .raw("list", &array(["1", r#""a""#]))
            .string("s", "x\"y")
            .number("n", 0.5)
            .integer("i", 7)
            .finish();
        assert_eq!(text, r#"{"list":[1,"a"],"s":"x\"y","n":0.5,"i":7}"#);
        assert_eq!(Object::new().finish(), "{}");
        assert_eq!(array([]), "[]");
    }
}
