//! Facts of `template.yaml` that a deployment depends on and cfn-lint
//! cannot know: which metric pages, what a new account can create, that two
//! stacks never share metrics, and that every value a parameter lets
//! through is one the binary accepts (a bad value fails at deploy, not at
//! the function's init).

use std::collections::HashMap;
use std::process::{Command, Stdio};

use crate::support::template::{load, pattern, Params};
use serde_json::{json, Value};

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
    let healthy = &p["Metrics"][0]["MetricStat"];
    assert_eq!(healthy["Metric"]["MetricName"], "Healthy");
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
    assert!(minutes["MaxValue"].as_u64().unwrap() * healthy["Period"].as_u64().unwrap() <= 86_400);
    for (name, r) in t["Resources"].as_object().unwrap() {
        if r["Type"] == "AWS::CloudWatch::Alarm" && name != "DegradedAlarm" {
            assert!(r["Properties"]["Metrics"].as_array().is_none_or(|m| m
                .iter()
                .all(|m| m["MetricStat"]["Metric"]["MetricName"] != "Healthy")));
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
        json!({"Fn::If": ["HasCaLayer", crate::support::template::CA_PATH, ""]})
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
                    None => expression["Fn::Sub"]
                        .as_str()
                        .or(expression.as_str())
                        .into_iter()
                        .collect(),
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
    let mut env = deployed_variables(t, &[]);
    for (k, v) in [
        (
            "HEALTH_COMPONENTS",
            "database,supabase,workers,queue,runs,partitions,app,live_logs,tenancy",
        ),
        ("MESHHOOK_URL", "http://127.0.0.1:1"),
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

/// The function's environment as CloudFormation sets it from `given`
/// parameters (the rest at their defaults); the namespace, a `Fn::Sub` of
/// the stack's name, is left to the binary's default.
fn deployed_variables(t: &Value, given: &[(&str, &str)]) -> HashMap<String, String> {
    let params = Params::new(t, given);
    let variables = resource(t, "HealthFunction")["Properties"]["Environment"]["Variables"]
        .as_object()
        .unwrap();
    variables
        .iter()
        .filter(|(_, value)| value["Fn::Sub"].is_null())
        .map(|(variable, value)| {
            let value = params.value(value);
            (variable.clone(), value.as_str().unwrap().to_owned())
        })
        .collect()
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
            "database,live_logs",
            "database,tenancy",
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
        "HEALTH_CRITICAL",
        &[
            "",
            "live_logs",
            "live_logs,workers",
            "logs",
            "live_logs,",
            "tenancy",
        ],
    ),
    (
        "TENANCY_TABLES",
        &[
            "public.projects,public.secrets",
            "",
            "public.projects , app.tenants",
            "projects",
            "public.Projects",
            "public.projects,",
        ],
    ),
    (
        "TENANCY_EXPOSED_SCHEMAS",
        &["public", "public, api", "", "Public", "public,"],
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
        "SUPABASE_PROJECT_REF",
        &["abcdefghijklmnopqrst", "../../etc", "abc def", "x/y"],
    ),
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
    (
        "LIVE_LOGS_TABLES",
        &[
            "public.logs",
            "public.logs, app.run_logs",
            "logs",
            "public.Logs",
            "public.logs,",
        ],
    ),
    (
        "LIVE_LOGS_PUBLICATION",
        &["supabase_realtime", "Realtime", "a.b"],
    ),
    (
        "MESHHOOK_URL",
        &[
            "https://meshhook.example.com",
            "http://meshhook.railway.internal:3000",
            "https://meshhook.example.com/base",
            "meshhook.example.com",
            "https://user@meshhook.example.com",
            "https://meshhook.example.com/?x=1",
            "ftp://meshhook.example.com",
        ],
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

/// A leak pages: the private component's alarm watches its own
/// `ComponentHealthy` and exists only when the component is enabled.
#[test]
fn the_tenancy_alarm_pages_on_the_private_component_only_when_it_is_enabled() {
    let t = load();
    let alarm = resource(&t, "TenancyAlarm");
    assert_eq!(alarm["Condition"], "WatchesTenancy");
    let p = &alarm["Properties"];
    assert_eq!(p["MetricName"], "ComponentHealthy");
    assert_eq!(
        p["Dimensions"],
        serde_json::json!([{"Name": "Component", "Value": "tenancy"}])
    );
    assert_eq!(
        (&p["Statistic"], &p["ComparisonOperator"], &p["Threshold"]),
        (
            &serde_json::json!("Minimum"),
            &serde_json::json!("LessThanThreshold"),
            &serde_json::json!(1)
        )
    );
    assert_eq!(
        p["AlarmActions"],
        serde_json::json!([{"Ref": "AlarmTopic"}])
    );
    assert!(p["AlarmDescription"]
        .as_str()
        .unwrap()
        .contains("RUNBOOK.md"));
    let condition = &t["Conditions"]["WatchesTenancy"];
    assert!(condition.to_string().contains("tenancy"), "{condition}");
}

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
    // A variable's parameter, also when a condition chooses between it and
    // a value of the template's own (HEALTH_COMPONENTS).
    let parameter_of = |variable: &str| -> Option<&str> {
        let value = &variables[variable];
        value["Ref"].as_str().or(value["Fn::If"][2]["Ref"].as_str())
    };

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
        "SUPABASE_API_URL",
        "HEALTH_DETAILS_TOKEN",
        "MESHHOOK_VERSION",
    ];
    for variable in variables.keys() {
        let Some(parameter) = parameter_of(variable) else {
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
                if *variable != "SUPABASE_PROJECT_REF" {
                    extra.push(("SUPABASE_PROJECT_REF", "abcdefghijklmnopqrst"));
                }
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

/// A deploy that names only a database route gets a function that starts
/// and answers with the template's defaults: Supabase is enabled by giving
/// its settings, and only then.
#[test]
fn the_defaults_start_with_only_a_database_route() {
    let t = load();
    let refusing = "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1";
    let run = |given: &[(&str, &str)]| {
        let params = Params::new(&t, given);
        assert_eq!(params.broken_rules(), Vec::<String>::new(), "{given:?}");
        let env = deployed_variables(&t, given);
        let out = Command::new(BIN)
            .arg("check")
            .env_clear()
            .envs(&env)
            .env("HEALTH_TIMEOUT_MS", "500")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // An answer: exit 0 or 1 with the public JSON, never 2 (a
        // configuration error on every cold start).
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{given:?}: {stderr}"
        );
        let body: Value = serde_json::from_slice(&out.stdout).expect("a JSON answer");
        let components: Vec<String> = body["details"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        (env["HEALTH_COMPONENTS"].clone(), components)
    };
    let (components, answered) = run(&[("DatabaseUrl", refusing)]);
    assert_eq!(components, "database,workers");
    assert_eq!(answered, ["database", "workers"]);
    let (_, answered) = run(&[("DatabaseSecretId", ""), ("DatabaseUrl", refusing)]);
    assert_eq!(answered, ["database", "workers"]);

    let (components, _) = run(&[
        ("DatabaseUrl", refusing),
        ("SupabaseUrl", "http://127.0.0.1:1"),
        ("SupabaseAnonKey", "sb_publishable_x"),
    ]);
    assert_eq!(components, "database,supabase,workers");
    let (components, _) = run(&[
        ("DatabaseUrl", refusing),
        ("SupabaseAccessToken", "sbp_x"),
        ("SupabaseProjectRef", "abcdefghijklmnopqrst"),
        ("SupabaseApiUrl", "http://127.0.0.1:1"),
    ]);
    assert_eq!(components, "database,supabase,workers");
    // Components named are components used.
    let (components, _) = run(&[("DatabaseUrl", refusing), ("HealthComponents", "database")]);
    assert_eq!(components, "database");

    // Management API mode needs both of its settings: a token without the
    // project (or the reverse) is refused at deploy, not at every cold start.
    for given in [
        [("SupabaseAccessToken", "sbp_x"), ("SupabaseProjectRef", "")],
        [
            ("SupabaseAccessToken", ""),
            ("SupabaseProjectRef", "abcdefghijklmnopqrst"),
        ],
    ] {
        assert_eq!(Params::new(&t, &given).broken_rules().len(), 1, "{given:?}");
    }
}

/// One alarm as CloudWatch evaluates it, for the schedule it was resolved
/// for: per-period maximum, optionally FILL(m, REPEAT), then M of N with
/// missing data as the alarm treats it.
struct Alarm {
    period: u64,
    evaluation_periods: u64,
    datapoints: u64,
    breaching_missing: bool,
    fill_repeat: bool,
    threshold: f64,
    above: bool,
}

impl Alarm {
    fn resolve(t: &Value, name: &str, params: &Params) -> Alarm {
        let p = &resource(t, name)["Properties"];
        let number = |v: &Value| -> u64 { params.value(v).as_str().unwrap().parse().unwrap() };
        let (period, fill_repeat) = match p["Metrics"].as_array() {
            Some(metrics) => {
                let stat = metrics.iter().find(|m| !m["MetricStat"].is_null()).unwrap();
                let expression = metrics.iter().find(|m| m["ReturnData"] == true).unwrap();
                (
                    number(&stat["MetricStat"]["Period"]),
                    expression["Expression"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("FILL(") && e.contains("REPEAT")),
                )
            }
            None => (number(&p["Period"]), false),
        };
        Alarm {
            period,
            evaluation_periods: number(&p["EvaluationPeriods"]),
            datapoints: number(&p["DatapointsToAlarm"]),
            breaching_missing: p["TreatMissingData"] == "breaching",
            fill_repeat,
            threshold: number(&p["Threshold"]) as f64,
            above: p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold",
        }
    }

    /// In ALARM at `now` (seconds), given the metric's points (time, value).
    fn fires(&self, points: &[(u64, f64)], now: u64) -> bool {
        let n = self.evaluation_periods;
        let start = now.saturating_sub(n * self.period);
        let mut last: Option<f64> = None;
        let mut breaching = 0;
        for i in 0..n {
            let from = start + i * self.period;
            let value = points
                .iter()
                .filter(|(at, _)| *at >= from && *at < from + self.period)
                .map(|(_, v)| *v)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            if value.is_some() {
                last = value;
            }
            let value = if self.fill_repeat {
                value.or(last)
            } else {
                value
            };
            let breach = match value {
                None => self.breaching_missing,
                Some(v) if self.above => v >= self.threshold,
                Some(v) => v < self.threshold,
            };
            breaching += u64::from(breach);
        }
        breaching >= self.datapoints
    }
}

/// Checks every `every` seconds from 0 to `until`, a few seconds late at
/// random as a schedule is, each with `value`.
fn checks(every: u64, until: u64, value: f64, seed: u64) -> Vec<(u64, f64)> {
    (0..until / every)
        .map(|k| (k * every + (k * 7919 + seed) % 9, value))
        .collect()
}

/// Whatever schedule the template lets through, the alarms count checks:
/// a healthy MeshHook checked at that pace never pages and never opens the
/// degraded ticket; an outage or no check at all pages within 3 checks;
/// degraded checks for DegradedAlarmMinutes open the ticket.
#[test]
fn the_alarms_follow_the_schedule() {
    let t = load();
    let schedules = t["Parameters"]["ScheduleExpression"]["AllowedValues"]
        .as_array()
        .expect("the schedules the alarms support are listed");
    let tried: Vec<&str> = schedules.iter().map(|s| s.as_str().unwrap()).collect();
    assert!(tried.contains(&"rate(1 minute)") && tried.contains(&"rate(5 minutes)"));
    let minutes = &t["Parameters"]["DegradedAlarmMinutes"];
    let shortest = minutes["MinValue"].as_u64().unwrap().to_string();
    for schedule in tried {
        let every = match schedule {
            "rate(1 minute)" => 60,
            other => {
                let n: u64 = other["rate(".len()..other.find(' ').unwrap()]
                    .parse()
                    .unwrap();
                n * 60
            }
        };
        let params = Params::new(
            &t,
            &[
                ("ScheduleExpression", schedule),
                ("DegradedAlarmMinutes", &shortest),
            ],
        );
        let page = Alarm::resolve(&t, "UnhealthyAlarm", &params);
        let ticket = Alarm::resolve(&t, "DegradedAlarm", &params);
        let hours = 6 * 3600;
        for seed in 0..5 {
            let well = checks(every, hours + 3600, 0.0, seed);
            let healthy = checks(every, hours + 3600, 1.0, seed);
            for now in (3600..hours).step_by(60) {
                assert!(
                    !page.fires(&well, now),
                    "{schedule}: pages at {now} while healthy"
                );
                assert!(
                    !ticket.fires(&healthy, now),
                    "{schedule}: degraded at {now} while healthy"
                );
            }
        }
        // An outage (or no check at all) pages within 3 checks of it.
        let down = checks(every, hours, 1.0, 0);
        assert!(page.fires(&down, 3600 + 3 * every), "{schedule}");
        assert!(page.fires(&[], 3600 + 3 * every), "{schedule}");
        // Degraded for the alarm's minutes opens the ticket.
        let degraded = checks(every, hours, 0.0, 0);
        let window = shortest.parse::<u64>().unwrap() * 60;
        assert!(ticket.fires(&degraded, 3600 + window + every), "{schedule}");
    }
}
