//! `template.yaml` as JSON, the short-form intrinsics in their long form:
//! `!Ref X` is `{"Ref": "X"}`, `!Sub s` is `{"Fn::Sub": s}`, `!If [...]` is
//! `{"Fn::If": [...]}`, `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`.

use serde_json::{json, Map, Value};

pub fn load() -> Value {
    let text = std::fs::read_to_string(format!("{}/template.yaml", env!("CARGO_MANIFEST_DIR")))
        .expect("template.yaml");
    let yaml: serde_norway::Value = serde_norway::from_str(&text).expect("template.yaml parses");
    convert(yaml)
}

fn convert(yaml: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => json!(b),
        Y::Number(n) => serde_json::to_value(n).unwrap(),
        Y::String(s) => json!(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(convert).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.as_str().expect("string keys").to_owned(), convert(v)))
                .collect::<Map<_, _>>(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = convert(tagged.value);
            match name {
                "Ref" | "Condition" => json!({ name: value }),
                "GetAtt" => {
                    let text = value.as_str().expect("!GetAtt A.B").to_owned();
                    let (resource, attribute) = text.split_once('.').expect("!GetAtt A.B");
                    json!({"Fn::GetAtt": [resource, attribute]})
                }
                _ => json!({ format!("Fn::{name}"): value }),
            }
        }
    }
}

/// A template parameter's `AllowedPattern` as CloudFormation applies it
/// (the whole value must match).
pub fn pattern(template: &Value, parameter: &str) -> Option<regex::Regex> {
    template["Parameters"][parameter]["AllowedPattern"]
        .as_str()
        .map(|p| regex::Regex::new(&format!("^(?:{p})$")).expect("AllowedPattern compiles"))
}

/// Where the template's `DatabaseCaLayerArn` layer puts the CA bundle, as
/// the function reads it (`PGSSLROOTCERT`); `make ca-layer` builds that layer.
pub const CA_PATH: &str = "/opt/meshhook-health/ca.pem";
