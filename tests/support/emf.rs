//! A checker for CloudWatch Embedded Metric Format documents, after the
//! specification's rules (root node, metadata object, metric directives,
//! dimension sets, metric definitions and their target members).

use serde_json::Value;

const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks one log line; returns the document.
pub fn check(line: &str) -> Value {
    let doc: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("EMF line is not JSON ({e}): {line}"));
    let root = doc.as_object().expect("the root node is an object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    let timestamp = aws["Timestamp"]
        .as_u64()
        .expect("Timestamp is an integer of milliseconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        timestamp.abs_diff(now) < 3_600_000,
        "Timestamp is milliseconds since the epoch: {timestamp}"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics is an array");
    assert!(!directives.is_empty());
    for directive in directives {
        let namespace = directive["Namespace"]
            .as_str()
            .expect("Namespace is a string");
        assert!(!namespace.is_empty() && namespace.len() <= 1024);
        let sets = directive["Dimensions"]
            .as_array()
            .expect("Dimensions is an array");
        for set in sets {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(set.len() <= 30, "at most 30 dimensions in a set");
            for key in set {
                let key = key.as_str().expect("dimension keys are strings");
                let value = root
                    .get(key)
                    .unwrap_or_else(|| panic!("dimension {key} has no target member"));
                assert!(value.is_string(), "dimension {key} must be a string");
            }
        }
        let metrics = directive["Metrics"]
            .as_array()
            .expect("Metrics is an array");
        assert!(!metrics.is_empty() && metrics.len() <= 100);
        for metric in metrics {
            let name = metric["Name"].as_str().expect("a metric has a Name");
            assert!(!name.is_empty() && name.len() <= 1024);
            if let Some(unit) = metric.get("Unit") {
                assert!(
                    UNITS.contains(&unit.as_str().unwrap_or("")),
                    "unit {unit} is not a CloudWatch unit"
                );
            }
            let value = root
                .get(name)
                .unwrap_or_else(|| panic!("metric {name} has no target member"));
            assert!(value.is_number(), "metric {name} must be a number: {value}");
        }
    }
    doc
}
