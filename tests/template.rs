//! Facts of `template.yaml` that a deployment depends on and cfn-lint
//! cannot know: which metric pages, what a new account can create, that two
//! stacks never share metrics, and that every value a parameter lets
//! through is one the binary accepts (a bad value fails at deploy, not at
//! the function's init).

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::template::{load, pattern};

const BIN: &str = env!("CARGO_BIN_EXE_meshhook-health");

fn resource<'a>(template: &'a Value, name: &str) -> &'a Value {
    let r = &template["Resources"][name];
    assert!(r.is_object(), "no resource {name}");
    r
}

fn stack_namespace() -> Value {
    json!({"Fn::Sub": "${MetricsNamespace}/${AWS::StackName}"})
}

#[test]
fn the_page_watches_unhealthy_and_degraded_has_only_an_optional_slower_alarm() {
    let t = load();
    let page = &resource(&t, "UnhealthyAlarm")["Properties"];
    assert_eq!(page["MetricName"], "Unhealthy");
    assert_eq!(page["Statistic"], "Maximum");
    assert_eq!(page["ComparisonOperator"], "GreaterThanOrEqualToThreshold");
    assert_eq!(page["Threshold"], 1);
    // No check at all is an outage too.
    assert_eq!(page["TreatMissingData"], "breaching");

    // No other alarm on the function's own metrics watches Healthy, except
    // the optional DegradedAlarm.
    let degraded = resource(&t, "DegradedAlarm");
    assert_eq!(degraded["Condition"], "HasDegradedAlarm");
    assert_eq!(
        t["Conditions"]["HasDegradedAlarm"],
        json!({"Fn::Equals": [{"Ref": "EnableDegradedAlarm"}, "true"]})
    );
    assert_eq!(t["Parameters"]["EnableDegradedAlarm"]["Default"], "false");
    let p = &degraded["Properties"];
    assert_eq!(p["MetricName"], "Healthy");
    assert_eq!(p["ComparisonOperator"], "LessThanThreshold");
    assert_eq!(
        p["EvaluationPeriods"],
        json!({"Ref": "DegradedAlarmMinutes"})
    );
    assert_eq!(
        p["DatapointsToAlarm"],
        json!({"Ref": "DegradedAlarmMinutes"})
    );
    // Slower than the page: at least 5 minutes in a row, against its 2 of 3.
    let minutes = &t["Parameters"]["DegradedAlarmMinutes"];
    assert!(minutes["MinValue"].as_u64().unwrap() >= 5);
    assert!(minutes["MaxValue"].as_u64().unwrap() * p["Period"].as_u64().unwrap() <= 86_400);
    for (name, r) in t["Resources"].as_object().unwrap() {
        if r["Type"] == "AWS::CloudWatch::Alarm" && name != "DegradedAlarm" {
            assert_ne!(r["Properties"]["MetricName"], "Healthy", "{name}");
        }
    }
}

#[test]
fn a_new_account_can_create_the_stack() {
    let t = load();
    // A new account's concurrency quota is 10, all of it unreservable.
    let reserved = &t["Parameters"]["ReservedConcurrency"];
    assert_eq!(reserved["Default"], "");
    assert_eq!(
        resource(&t, "HealthFunction")["Properties"]["ReservedConcurrentExecutions"],
        json!({"Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]})
    );
    let allowed = pattern(&t, "ReservedConcurrency").unwrap();
    for (value, ok) in [
        ("", true),
        ("10", true),
        ("0", false),
        ("-1", false),
        ("x", false),
    ] {
        assert_eq!(allowed.is_match(value), ok, "{value:?}");
    }
}

#[test]
fn the_canary_runs_on_a_current_runtime_and_never_blocks_deleting_the_stack() {
    let t = load();
    let runtime = &t["Parameters"]["CanaryRuntimeVersion"];
    let allowed = pattern(&t, "CanaryRuntimeVersion").unwrap();
    assert!(allowed.is_match(runtime["Default"].as_str().unwrap()));
    // Retired (or older than the script's import) runtimes are refused at
    // deploy; current and future ones pass.
    for (value, ok) in [
        ("syn-nodejs-puppeteer-9.1", false),
        ("syn-nodejs-puppeteer-13.0", false),
        ("syn-nodejs-puppeteer-13.1", true),
        ("syn-nodejs-puppeteer-15.0", true),
        ("syn-nodejs-puppeteer-21.3", true),
        ("syn-python-selenium-7.0", false),
    ] {
        assert_eq!(allowed.is_match(value), ok, "{value}");
    }
    let canary = &resource(&t, "HealthCanary")["Properties"];
    let script = canary["Code"]["Script"].as_str().unwrap();
    assert!(script.contains("require('@aws/synthetics-puppeteer')"));
    assert!(!script.contains("require('Synthetics')"));
    assert_eq!(canary["ProvisionedResourceCleanup"], "AUTOMATIC");
    // CloudFormation cannot delete a bucket with objects in it.
    let bucket = resource(&t, "CanaryArtifacts");
    assert_eq!(bucket["DeletionPolicy"], "Retain");
    assert_eq!(bucket["UpdateReplacePolicy"], "Retain");
    assert!(
        bucket["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"].is_u64()
    );
}

#[test]
fn a_secret_under_a_customer_managed_key_can_be_read() {
    let t = load();
    let policies = resource(&t, "HealthFunction")["Properties"]["Policies"]
        .as_array()
        .unwrap();
    let kms = policies
        .iter()
        .find(|p| p["Fn::If"][0] == "HasSecretKmsKey")
        .expect("a kms:Decrypt policy when DatabaseSecretKmsKeyArn is set");
    let statement = &kms["Fn::If"][1]["Statement"][0];
    assert_eq!(statement["Action"], "kms:Decrypt");
    assert_eq!(
        statement["Resource"],
        json!({"Ref": "DatabaseSecretKmsKeyArn"})
    );
    // Only through Secrets Manager.
    assert_eq!(
        statement["Condition"]["StringEquals"]["kms:ViaService"],
        json!({"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"})
    );
    let key = pattern(&t, "DatabaseSecretKmsKeyArn").unwrap();
    assert!(key.is_match(""));
    assert!(
        key.is_match("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    );
    assert!(!key.is_match("alias/aws/secretsmanager"));
}

#[test]
fn the_ca_layer_ends_where_the_function_reads_pgsslrootcert() {
    let t = load();
    let function = &resource(&t, "HealthFunction")["Properties"];
    assert_eq!(
        function["Layers"],
        json!({"Fn::If": ["HasCaLayer", [{"Ref": "DatabaseCaLayerArn"}], {"Ref": "AWS::NoValue"}]})
    );
    assert_eq!(
        function["Environment"]["Variables"]["PGSSLROOTCERT"],
        json!({"Fn::If": ["HasCaLayer", support::template::CA_PATH, ""]})
    );
}

#[test]
fn two_stacks_never_mix_metrics_or_alarms() {
    let t = load();
    let variables = &resource(&t, "HealthFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(variables["HEALTH_METRICS_NAMESPACE"], stack_namespace());
    let mut custom = 0;
    for (name, r) in t["Resources"].as_object().unwrap() {
        if r["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let p = &r["Properties"];
        if let Some(metrics) = p["Metrics"].as_array() {
            for m in metrics {
                // An entry present only under a condition: its `then` side.
                let m = m["Fn::If"].get(1).unwrap_or(m);
                if !m["MetricStat"].is_null() {
                    assert_eq!(
                        m["MetricStat"]["Metric"]["Namespace"],
                        stack_namespace(),
                        "{name}"
                    );
                    continue;
                }
                let expression = &m["Expression"];
                let texts: Vec<&str> = match expression["Fn::If"].as_array() {
                    Some(branches) => branches[1..]
                        .iter()
                        .filter_map(|b| b["Fn::Sub"].as_str())
                        .collect(),
                    None => expression["Fn::Sub"].as_str().into_iter().collect(),
                };
                assert!(
                    !texts.is_empty(),
                    "{name}: an expression of the stack's own metrics"
                );
                for text in texts {
                    // Metrics Insights names its namespace; metric math only
                    // combines the MetricStat entries checked above.
                    assert!(
                        !text.contains("SCHEMA(")
                            || text.contains(r#"SCHEMA("${MetricsNamespace}/${AWS::StackName}""#),
                        "{name}: {text}"
                    );
                }
            }
            custom += 1;
            continue;
        }
        match p["Namespace"].as_str() {
            // AWS's own metrics carry the stack's resources as dimensions
            // (FunctionName, ApiId, CanaryName).
            Some(ns) => {
                assert!(
                    ns.starts_with("AWS/") || ns == "CloudWatchSynthetics",
                    "{name}"
                );
                assert!(p["Dimensions"][0]["Value"]["Ref"].is_string(), "{name}");
            }
            None => {
                assert_eq!(p["Namespace"], stack_namespace(), "{name}");
                custom += 1;
            }
        }
    }
    assert!(
        custom >= 5,
        "every alarm on the function's metrics was looked at"
    );
}

/// The function's environment as deployed with every parameter at its
/// default, plus every component enabled (so that every setting is read),
/// a database and Supabase that refuse at once, and `extra`.
fn deployed_env(t: &Value, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = HashMap::new();
    let variables = resource(t, "HealthFunction")["Properties"]["Environment"]["Variables"]
        .as_object()
        .unwrap();
    for (variable, value) in variables {
        if let Some(parameter) = value["Ref"].as_str() {
            let default = &t["Parameters"][parameter]["Default"];
            let text = match default {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            env.insert(variable.clone(), text);
        }
    }
    for (k, v) in [
        (
            "HEALTH_COMPONENTS",
            "database,supabase,workers,queue,runs,partitions",
        ),
        (
            "DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1",
        ),
        ("SUPABASE_URL", "http://127.0.0.1:1"),
        ("SUPABASE_ANON_KEY", "sb_publishable_x"),
        ("HEALTH_TIMEOUT_MS", "300"),
    ] {
        env.insert(k.to_owned(), v.to_owned());
    }
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// Whether the binary takes this configuration: a configuration error
/// exits 2 and names the variable; anything else (here: the database
/// refuses, so unhealthy) means the settings were accepted.
fn binary_accepts(env: &HashMap<String, String>, variable: &str) -> bool {
    let out = Command::new(BIN)
        .arg("check")
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(2) => {
            assert!(stderr.contains(variable), "{variable}: {stderr}");
            false
        }
        Some(0 | 1) => true,
        other => panic!("{variable}: exit {other:?}: {stderr}"),
    }
}

/// Settings that must not contradict each other: (lower, upper). When one
/// is tried at a bound, the other is put where it cannot object.
const ORDERED: &[(&str, &str)] = &[
    ("WORKER_STALE_AFTER_SECS", "WORKER_FORGET_AFTER_SECS"),
    ("QUEUE_DEGRADED_AFTER_SECS", "QUEUE_UNHEALTHY_AFTER_SECS"),
    ("RUNS_STALLED_AFTER_SECS", "RUNS_LOOKBACK_SECS"),
];

/// Values tried against each pattern-checked parameter the function reads:
/// whatever the pattern lets through, the binary must accept.
const CANDIDATES: &[(&str, &[&str])] = &[
    (
        "HEALTH_COMPONENTS",
        &[
            "database",
            "database,supabase,workers",
            "database, runs ,partitions",
            "queue",
            "",
            "db",
            "database,",
            "database;workers",
        ],
    ),
    (
        "HEALTH_NONCRITICAL",
        &["", "supabase", "supabase,workers", "realtime", "supabase,"],
    ),
    (
        "SUPABASE_SERVICES",
        &[
            "auth",
            "auth,rest,realtime",
            "auth , storage",
            "db,pooler",
            "",
            "graphql",
            "auth,",
        ],
    ),
    (
        "SUPABASE_CRITICAL_SERVICES",
        &["", "auth", "auth,rest", "graphql"],
    ),
    (
        "WORKER_MIN_ALIVE_BY_KIND",
        &[
            "",
            "orchestrator=1",
            "orchestrator=1,http-exec=2",
            "orchestrator",
            "=1",
            "a=x",
            "a=1,",
        ],
    ),
    (
        "QUEUE_NAMES",
        &["workflow_jobs", "a,b_c", "", "Jobs", "a-b"],
    ),
    ("QUEUE_DLQ_SUFFIX", &["_dlq", "_dead", "", "-dlq"]),
    (
        "RUNS_TABLE",
        &[
            "workflow_runs",
            "public.workflow_runs",
            "",
            "a.b.c",
            "Runs",
            "1runs",
        ],
    ),
    (
        "RUNS_EVENTS_TABLE",
        &["workflow_events", "meshhook.events", "x-y"],
    ),
    (
        "PARTITIONS_TABLES",
        &["workflow_events", "a, public.b", "a,", "A"],
    ),
    ("HEALTH_UNHEALTHY_STATUS", &["500", "503", "502"]),
    (
        "DATABASE_SIZE_LIMIT_BYTES",
        &[
            "",
            "524288000",
            "1",
            "999999999999999999",
            "500MB",
            "0",
            "-1",
            "1e9",
        ],
    ),
];

#[test]
fn the_capacity_alarm_watches_the_databases_figures_and_is_off_by_default() {
    let t = load();
    assert_eq!(t["Parameters"]["EnableCapacityAlarm"]["Default"], "false");
    let alarm = resource(&t, "DatabaseCapacityAlarm");
    assert_eq!(alarm["Condition"], "HasCapacityAlarm");
    let metrics = alarm["Properties"]["Metrics"].as_array().unwrap();
    let watched: Vec<&str> = metrics
        .iter()
        .map(|m| m["Fn::If"].get(1).unwrap_or(m))
        .filter_map(|m| m["MetricStat"]["Metric"]["MetricName"].as_str())
        .collect();
    assert_eq!(
        watched,
        [
            "DatabaseConnectionsUsedPercent",
            "DatabaseXidAge",
            "DatabaseSizeBytes"
        ]
    );
    for m in metrics.iter().filter(|m| !m["MetricStat"].is_null()) {
        assert_eq!(
            m["MetricStat"]["Metric"]["Dimensions"][0],
            serde_json::json!({"Name": "Component", "Value": "database"})
        );
    }
}

#[test]
fn every_value_a_parameter_lets_through_is_one_the_binary_accepts() {
    let t = load();
    let parameters = t["Parameters"].as_object().unwrap();
    let variables = resource(&t, "HealthFunction")["Properties"]["Environment"]["Variables"]
        .as_object()
        .unwrap();
    let parameter_of = |variable: &str| -> Option<&str> { variables[variable]["Ref"].as_str() };

    // Numbers: bounded on both sides, and both bounds accepted.
    for (name, p) in parameters {
        if p["Type"] != "Number" {
            continue;
        }
        let (Some(min), Some(max)) = (p["MinValue"].as_u64(), p["MaxValue"].as_u64()) else {
            assert!(
                p["AllowedValues"].is_array(),
                "{name}: a Number needs MinValue and MaxValue"
            );
            continue;
        };
        let Some(variable) = variables
            .iter()
            .find(|(_, v)| v["Ref"] == name.as_str())
            .map(|(k, _)| k.as_str())
        else {
            continue;
        };
        for value in [min, max] {
            let mut extra = vec![(variable, value.to_string())];
            for (lower, upper) in ORDERED {
                if variable == *lower {
                    extra.push((
                        upper,
                        parameters[parameter_of(upper).unwrap()]["MaxValue"].to_string(),
                    ));
                }
                if variable == *upper {
                    extra.push((
                        lower,
                        parameters[parameter_of(lower).unwrap()]["MinValue"].to_string(),
                    ));
                }
            }
            let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert!(
                binary_accepts(&deployed_env(&t, &extra), variable),
                "{name}={value} passes the template but not the binary ({variable})"
            );
        }
    }

    // Patterns: every string the function reads is checked by one, or is
    // free text the binary takes as it is.
    let free_text = [
        "DATABASE_URL",
        "DATABASE_SECRET_ID",
        "SUPABASE_URL",
        "SUPABASE_ANON_KEY",
        "SUPABASE_ACCESS_TOKEN",
        "SUPABASE_PROJECT_REF",
        "SUPABASE_API_URL",
        "HEALTH_DETAILS_TOKEN",
        "MESHHOOK_VERSION",
    ];
    for (variable, value) in variables {
        let Some(parameter) = value["Ref"].as_str() else {
            continue;
        };
        let p = &parameters[parameter];
        if p["Type"] == "String" && p["AllowedValues"].is_null() && p["AllowedPattern"].is_null() {
            assert!(
                free_text.contains(&variable.as_str()),
                "{parameter} ({variable}) needs an AllowedPattern"
            );
        }
    }
    for (variable, candidates) in CANDIDATES {
        let parameter = parameter_of(variable).unwrap();
        let p = &parameters[parameter];
        let allowed = |value: &str| match (pattern(&t, parameter), p["AllowedValues"].as_array()) {
            (Some(re), _) => re.is_match(value),
            (None, Some(values)) => values.iter().any(|v| {
                v.as_str() == Some(value)
                    || v.as_u64().map(|n| n.to_string()).as_deref() == Some(value)
            }),
            (None, None) => panic!("{parameter}: no pattern"),
        };
        let mut passed = 0;
        for value in *candidates {
            if !allowed(value) {
                continue;
            }
            passed += 1;
            // Supabase's service names depend on the mode: with the
            // Management API every name is known.
            let mut extra = vec![(*variable, *value)];
            if variable.starts_with("SUPABASE_") {
                extra.push(("SUPABASE_ACCESS_TOKEN", "sbp_x"));
                extra.push(("SUPABASE_PROJECT_REF", "abcdefghijklmnopqrst"));
                if *variable == "SUPABASE_CRITICAL_SERVICES" {
                    extra.push(("SUPABASE_SERVICES", "auth,rest,realtime,storage"));
                }
            }
            assert!(
                binary_accepts(&deployed_env(&t, &extra), variable),
                "{parameter}={value:?} passes the template but not the binary"
            );
        }
        assert!(passed > 0, "{parameter}: no candidate passed the template");
    }

    // The namespace: the template adds /<stack name> to the parameter.
    let namespace = pattern(&t, "MetricsNamespace").unwrap();
    let stack = "a".repeat(128);
    for value in [
        "MeshHook/Health",
        "Team A/Health#1",
        "AWS",
        "AWSx/y",
        "AWS/Lambda",
        "A",
        "/x",
        &"x".repeat(130),
    ] {
        if namespace.is_match(value) {
            let full = format!("{value}/{stack}");
            assert!(
                binary_accepts(
                    &deployed_env(&t, &[("HEALTH_METRICS_NAMESPACE", &full)]),
                    "HEALTH_METRICS_NAMESPACE"
                ),
                "MetricsNamespace={value:?} passes the template but not the binary"
            );
        }
    }
    assert!(!namespace.is_match("AWS/Lambda"));
    assert!(!binary_accepts(
        &deployed_env(&t, &[("HEALTH_METRICS_NAMESPACE", "AWS/Lambda")]),
        "HEALTH_METRICS_NAMESPACE"
    ));
}

#[test]
fn every_skipped_security_check_says_why_in_one_line() {
    let t = load();
    let mut skipped = 0;
    for (name, r) in t["Resources"].as_object().unwrap() {
        let Some(skips) = r["Metadata"]["checkov"]["skip"].as_array() else {
            continue;
        };
        for skip in skips {
            let id = skip["id"].as_str().unwrap_or_default();
            assert!(id.starts_with("CKV_"), "{name}: {skip}");
            let comment = skip["comment"].as_str().unwrap_or_default();
            assert!(
                comment.len() >= 20 && !comment.contains('\n'),
                "{name} {id}: a one-line reason"
            );
            skipped += 1;
        }
    }
    assert!(skipped > 0);
}
