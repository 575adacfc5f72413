//! The JSON contract: every command's `-o json` document (dry run and real, on the sim)
//! validates against its JSON Schema in docs/schema/ (draft 2020-12); `-o yaml` is the same
//! document; a document with a string for a number, or without a required field, fails.
//!
//! A new command (or a new case of one) is one line in [`CASES`]; its schema is
//! `docs/schema/<name>.schema.json`, sharing `common.schema.json`.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::harness::{Output, run, sim, wait_ready};

/// (schema name, arguments, exit code), run in this order on one sim: a write first, then its
/// undo. `-o json` is added to each.
#[rustfmt::skip]
const CASES: &[(&str, &[&str], i32)] = &[
    ("version", &["version"], 0),
    ("status", &["status"], 0),
    ("validate", &["validate"], 0),
    ("scale", &["scale", "--replicas", "4", "--dry-run"], 0),
    ("scale", &["scale", "--replicas", "4", "--yes"], 0),
    ("undo", &["undo", "--dry-run"], 0),
    ("undo", &["undo", "--yes"], 0),
    ("hpa", &["hpa", "--cpu", "150", "--dry-run"], 0),
    ("hpa", &["hpa", "--max", "12", "--yes"], 0),
    ("resources", &["resources", "--requests", "cpu=0.6", "--dry-run"], 0),
    ("resources", &["resources", "--requests", "cpu=600m", "--yes"], 0),
    ("db-resources", &["db", "resources", "--requests", "cpu=600m", "--dry-run"], 0),
    ("db-resources", &["db", "resources", "--requests", "cpu=600m", "--yes"], 0),
    ("db-connections", &["db", "connections", "30", "--dry-run"], 0),
    ("db-connections", &["db", "connections", "30", "--yes"], 0),
    ("undo", &["undo", "--yes"], 0),
    ("export", &["export"], 0),
    ("diff", &["diff", "-f", PROFILE], 1),
    ("apply", &["apply", "-f", PROFILE, "--dry-run"], 0),
    ("apply", &["apply", "-f", PROFILE, "--yes"], 0),
    ("diff", &["diff", "-f", PROFILE], 0),
    ("recommend", &["recommend", "--sample-for", "2s"], 0),
    // A 2 s sample is thin data: --force. The document carries the profile apply's steps.
    ("recommend", &["recommend", "--sample-for", "2s", "--apply", "--force", "--yes"], 0),
    ("error", &["scale", "--replicas", "50"], 2),
];

/// Stands for the path of [`PEAK`], written once per test, in the profile cases.
const PROFILE: &str = "{profile}";

/// A profile that differs from the sim's state (the HPA's ceiling) until it is applied.
const PEAK: &str = "apiVersion: orchscale.io/v1\nkind: ScalingProfile\nmetadata:\n  name: peak\nspec:\n  hpa:\n    maxReplicas: 14\n";

/// The profile file for the cases' [`PROFILE`] (kept until the test ends).
fn peak_profile() -> tempfile::TempPath {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut file, PEAK.as_bytes()).expect("profile written");
    file.into_temp_path()
}

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/schema")
}

fn load(name: &str) -> Value {
    let path = schema_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Resolves `common.schema.json` (and any sibling) from docs/schema/, never from the network.
struct SchemaDir;

impl jsonschema::Retrieve for SchemaDir {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.as_str().rsplit('/').next().unwrap_or_default();
        let text = std::fs::read_to_string(schema_dir().join(name))?;
        Ok(serde_json::from_str(&text)?)
    }
}

fn validator(name: &str) -> jsonschema::Validator {
    let schema = load(&format!("{name}.schema.json"));
    jsonschema::meta::validate(&schema)
        .unwrap_or_else(|e| panic!("{name}.schema.json is not a valid schema: {e}"));
    jsonschema::options()
        .with_retriever(SchemaDir)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{name}.schema.json: {e}"))
}

/// Every way `document` breaks the schema, one per line.
fn errors(validator: &jsonschema::Validator, document: &Value) -> Vec<String> {
    validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn assert_valid(name: &str, args: &[&str], document: &Value) {
    let found = errors(&validator(name), document);
    assert!(
        found.is_empty(),
        "`{}` does not match docs/schema/{name}.schema.json:\n{}\n{document:#}",
        args.join(" "),
        found.join("\n")
    );
}

/// A sim whose workloads are Ready and measured, so that every case (`validate` too) can pass.
fn settled_sim() -> orchscale_sim::Sim {
    let sim = sim();
    wait_ready(&sim, 3);
    for _ in 0..200 {
        if run(&sim, &["validate", "-o", "json"]).code == 0 {
            return sim;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the sim never passed validate");
}

fn run_as(args: &[&str], format: &str, sim: &orchscale_sim::Sim, profile: &std::path::Path) -> Output {
    let profile = profile.to_str().expect("a UTF-8 temp path");
    let mut all: Vec<&str> = args
        .iter()
        .map(|a| if *a == PROFILE { profile } else { a })
        .collect();
    all.extend(["-o", format]);
    run(sim, &all)
}

#[test]
fn every_command_document_matches_its_schema() {
    let sim = settled_sim();
    let profile = peak_profile();
    for (name, args, code) in CASES {
        let out = run_as(args, "json", &sim, &profile);
        out.assert_code(*code);
        let document = out.json();
        assert_valid(name, args, &document);
        // The error and version documents carry no common fields (no command reached the cluster).
        if !["error", "version"].contains(name) {
            assert_eq!(document["command"], name.replace('-', " "), "{args:?}");
        }
    }
}

#[test]
fn yaml_is_the_same_document_in_another_syntax() {
    let sim = settled_sim();
    let profile = peak_profile();
    for (name, args, code) in CASES {
        // Read-only and dry-run cases: the same state answers a JSON run too, to compare with.
        let json =
            (args.contains(&"--dry-run") || args.len() == 1).then(|| run_as(args, "json", &sim, &profile));
        let yaml = run_as(args, "yaml", &sim, &profile);
        yaml.assert_code(*code);
        let from_yaml: Value = serde_saphyr::from_str(&yaml.stdout)
            .unwrap_or_else(|e| panic!("`{}` -o yaml is not YAML ({e}):\n{}", args.join(" "), yaml.stdout));
        assert_valid(name, args, &from_yaml);
        let Some(json) = json else { continue };
        let mut expected = json.json();
        let mut got = from_yaml;
        // Live pod usage, the HPA's status and restart times move between the two runs.
        for doc in [&mut expected, &mut got] {
            for change in doc["changes"].as_array_mut().into_iter().flatten() {
                if change["field"]
                    .as_str()
                    .is_some_and(|f| f.contains("restartedAt"))
                {
                    change["after"] = Value::Null;
                }
            }
            if let Some(map) = doc.as_object_mut() {
                for live in ["pods", "hpa", "statefulset", "deployment"] {
                    map.remove(live);
                }
            }
        }
        assert_eq!(got, expected, "`{}`: -o yaml and -o json differ", args.join(" "));
    }
}

#[test]
fn every_schema_file_is_a_command_case() {
    let names: Vec<String> = std::fs::read_dir(schema_dir())
        .expect("docs/schema exists")
        .map(|e| e.expect("readable").file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".schema.json").map(str::to_string))
        // common: shared shapes; scaling-profile: the profile file, checked below.
        .filter(|n| n != "common" && n != "scaling-profile")
        .collect();
    for name in &names {
        assert!(
            CASES.iter().any(|(case, _, _)| case == name),
            "docs/schema/{name}.schema.json has no case in tests/it/schema.rs CASES"
        );
    }
    for (case, _, _) in CASES {
        assert!(
            names.iter().any(|n| n == case),
            "no docs/schema/{case}.schema.json"
        );
    }
}

/// `export`'s profile (its text output, YAML) is a valid `ScalingProfile` by its schema.
#[test]
fn an_exported_profile_matches_the_profile_schema() {
    let sim = settled_sim();
    let out = run(&sim, &["export", "--name", "normal"]);
    out.assert_code(0);
    let profile: Value = serde_saphyr::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("export is not YAML ({e}):\n{}", out.stdout));
    let found = errors(&validator("scaling-profile"), &profile);
    assert!(found.is_empty(), "{}\n{}", found.join("\n"), out.stdout);
    assert!(
        profile["spec"].as_object().is_some_and(|s| !s.is_empty()),
        "{profile:#}"
    );
}

/// The schemas can fail: a string where the contract says number, a missing required field,
/// an unknown top-level field, a percentage written as text.
#[test]
fn documents_that_break_the_contract_fail_validation() {
    let scale = validator("scale");
    let good = json!({
        "command": "scale", "context": "sim", "namespace": "ns", "dryRun": true, "result": "ok",
        "changes": [{"object": "deployment/o", "field": "spec.replicas", "before": 3, "after": 5}],
        "replicas": 5, "warnings": [], "prediction": null
    });
    assert!(errors(&scale, &good).is_empty(), "{:?}", errors(&scale, &good));
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("warnings");
    assert!(
        !errors(&scale, &missing).is_empty(),
        "a document without warnings must fail"
    );
    let mut stringly = good.clone();
    stringly["changes"][0]["after"] = json!("5");
    assert!(
        !errors(&scale, &stringly).is_empty(),
        "a replica count as a string must fail"
    );
    let mut extra = good.clone();
    extra["replicaCount"] = json!(5);
    assert!(!errors(&scale, &extra).is_empty(), "an unknown field must fail");

    let hpa = validator("hpa");
    let metric = json!({"type": "Resource", "name": "cpu", "targetType": "Utilization",
        "targetUtilizationPercent": 60, "targetAverageValue": null, "targetValue": null,
        "currentUtilizationPercent": "145%", "currentAverageValue": null, "currentValue": null});
    let doc = json!({
        "command": "hpa", "context": "sim", "namespace": "ns", "dryRun": false, "result": "ok",
        "changes": [], "warnings": [], "statusPredatesChange": false, "prediction": null,
        "hpa": {"name": "o", "min": 1, "max": 3, "currentReplicas": 1, "desiredReplicas": 1,
                "metrics": [metric], "conditions": []}
    });
    assert!(
        !errors(&hpa, &doc).is_empty(),
        "\"145%\" for a percentage must fail"
    );
    let resources = validator("resources");
    let doc = json!({
        "command": "resources", "context": "sim", "namespace": "ns", "dryRun": true, "result": "ok",
        "changes": [{"object": "deployment/o",
                     "field": "spec.template.spec.containers[o].resources.requests.cpu",
                     "before": "500m", "after": 1}],
        "warnings": [], "container": {"name": "o", "requests": {}, "limits": {}}
    });
    assert!(
        !errors(&resources, &doc).is_empty(),
        "a quantity as a number must fail"
    );
}

/// One representation per quantity: `cpu=0.6` is reported as `600m` in `changes` and in
/// `container`, the form every other document uses for the same value.
#[test]
fn quantities_are_reported_canonical_whatever_was_typed() {
    let sim = sim();
    let out = run(
        &sim,
        &["resources", "--requests", "cpu=0.6", "--dry-run", "-o", "json"],
    );
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["changes"][0]["before"], "500m", "{doc:#}");
    assert_eq!(doc["changes"][0]["after"], "600m", "{doc:#}");
    assert_eq!(doc["container"]["requests"]["cpu"], "600m", "{doc:#}");
}
