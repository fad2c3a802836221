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

/// Parameter values as CloudFormation sees them: the given ones, else each
/// parameter's default.
pub struct Params<'a> {
    template: &'a Value,
    given: std::collections::HashMap<String, String>,
}

impl<'a> Params<'a> {
    pub fn new(template: &'a Value, given: &[(&str, &str)]) -> Params<'a> {
        Params {
            template,
            given: given
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> String {
        if let Some(v) = self.given.get(name) {
            return v.clone();
        }
        match &self.template["Parameters"][name]["Default"] {
            Value::String(s) => s.clone(),
            Value::Null => panic!("no parameter {name} (or it has no default)"),
            other => other.to_string(),
        }
    }

    /// A condition or rule assertion: Fn::Equals, Fn::Not, Fn::And, Fn::Or,
    /// Fn::Contains and named conditions.
    pub fn holds(&self, v: &Value) -> bool {
        if let Some(name) = v["Condition"].as_str() {
            return self.condition(name);
        }
        let (function, args) = v
            .as_object()
            .and_then(|o| o.iter().next())
            .expect("a function");
        let args = args.as_array();
        match function.as_str() {
            "Fn::Equals" => {
                let a = args.unwrap();
                self.value(&a[0]) == self.value(&a[1])
            }
            "Fn::Not" => !self.holds(&args.unwrap()[0]),
            "Fn::And" => args.unwrap().iter().all(|a| self.holds(a)),
            "Fn::Or" => args.unwrap().iter().any(|a| self.holds(a)),
            "Fn::Contains" => {
                let a = args.unwrap();
                let needle = self.value(&a[1]);
                a[0].as_array()
                    .unwrap()
                    .iter()
                    .any(|x| self.value(x) == needle)
            }
            other => panic!("{other} is not evaluated here"),
        }
    }

    pub fn condition(&self, name: &str) -> bool {
        let c = &self.template["Conditions"][name];
        assert!(!c.is_null(), "no condition {name}");
        self.holds(c)
    }

    /// A value: literals, Ref to a parameter, Fn::If, Fn::Join, Fn::Split.
    pub fn value(&self, v: &Value) -> Value {
        if let Some(name) = v["Ref"].as_str() {
            return json!(self.get(name));
        }
        if let Some(branches) = v["Fn::If"].as_array() {
            let chosen = if self.condition(branches[0].as_str().unwrap()) {
                &branches[1]
            } else {
                &branches[2]
            };
            return self.value(chosen);
        }
        if let Some(args) = v["Fn::Join"].as_array() {
            let parts = self.value(&args[1]);
            let parts: Vec<String> = parts
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    p.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| p.to_string())
                })
                .collect();
            return json!(parts.join(args[0].as_str().unwrap()));
        }
        if let Some(args) = v["Fn::Split"].as_array() {
            let text = self.value(&args[1]);
            let parts: Vec<&str> = text
                .as_str()
                .unwrap()
                .split(args[0].as_str().unwrap())
                .collect();
            return json!(parts);
        }
        match v {
            Value::Number(n) => json!(n.to_string()),
            Value::Bool(b) => json!(b.to_string()),
            other => other.clone(),
        }
    }

    /// The rules whose condition holds and whose assertions do not: their
    /// descriptions.
    pub fn broken_rules(&self) -> Vec<String> {
        let mut broken = Vec::new();
        let Some(rules) = self.template["Rules"].as_object() else {
            return broken;
        };
        for rule in rules.values() {
            if !rule["RuleCondition"].is_null() && !self.holds(&rule["RuleCondition"]) {
                continue;
            }
            for assertion in rule["Assertions"].as_array().unwrap() {
                if !self.holds(&assertion["Assert"]) {
                    broken.push(assertion["AssertDescription"].as_str().unwrap().to_owned());
                }
            }
        }
        broken
    }
}
