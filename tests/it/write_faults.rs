//! Every write command against the faults real clusters have: an answer lost after the write
//! was stored, an answer later than the client waits, an admission webhook that changes what
//! was written, a second writer between the read and the write, an outage during the follow,
//! events that may not be watched. Each test checks the exit code, that the reported outcome
//! (text and JSON `changes[].after`) is what the sim holds, that the stored change carries its
//! audit record, and that `undo` then reverts it.

use std::time::Duration;

use orchscale_sim::store::ObjectKey;
use orchscale_sim::{OutageMode, Sim};
use serde_json::{Value, json};

use crate::harness::{NAMESPACE, Output, object, run, sim, start_following, wait_ready};

const RECORD: &str = "orchscale.io/last-change";
const CONFIG_FIELD: &str = "data[\"config.yaml\"].database.max_connections";

/// One write command, what it changes and how to read that back from the sim.
struct Case {
    name: &'static str,
    args: &'static [&'static str],
    /// The method and resource of its write, for the fault rules.
    method: &'static str,
    resource: &'static str,
    /// Where the change lands: resource and name in the store.
    object: (&'static str, &'static str),
    field: &'static str,
    before: &'static str,
    after: &'static str,
    /// What the text outcome (stdout) says of the stored change.
    text: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "scale",
        text: "is at 5 replicas, 5 ready",
        args: &["scale", "--replicas", "5"],
        method: "PATCH",
        resource: "deployments",
        object: ("deployments", "orchestrator"),
        field: "spec.replicas",
        before: "3",
        after: "5",
    },
    Case {
        name: "hpa",
        text: "minReplicas 3 -> 4",
        args: &["hpa", "--min", "4", "--max", "12"],
        method: "PATCH",
        resource: "horizontalpodautoscalers",
        object: ("horizontalpodautoscalers", "orchestrator"),
        field: "spec.minReplicas",
        before: "3",
        after: "4",
    },
    Case {
        name: "resources",
        text: "requests cpu=750m",
        args: &["resources", "--requests", "cpu=750m", "--yes"],
        method: "PATCH",
        resource: "deployments",
        object: ("deployments", "orchestrator"),
        field: "spec.template.spec.containers[orchestrator].resources.requests.cpu",
        before: "500m",
        after: "750m",
    },
    Case {
        name: "db resources",
        text: "requests cpu=750m",
        args: &["db", "resources", "--requests", "cpu=750m", "--yes"],
        method: "PATCH",
        resource: "statefulsets",
        object: ("statefulsets", "postgres"),
        field: "spec.template.spec.containers[postgres].resources.requests.cpu",
        before: "500m",
        after: "750m",
    },
    Case {
        name: "db connections",
        text: "database.max_connections 20 -> 40",
        args: &["db", "connections", "40", "--no-restart"],
        method: "PATCH",
        resource: "configmaps",
        object: ("configmaps", "orchestrator-config"),
        field: CONFIG_FIELD,
        before: "20",
        after: "40",
    },
];

/// The value of one of the fields the commands change, as text.
fn field_value(object: &Value, field: &str) -> Option<String> {
    let text = |v: &Value| match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    if field == CONFIG_FIELD {
        let config = object["data"]["config.yaml"].as_str()?;
        return config
            .lines()
            .find_map(|l| l.trim().strip_prefix("max_connections:"))
            .map(|v| v.trim().to_string());
    }
    if let Some(rest) = field.strip_prefix("spec.template.spec.containers[") {
        let (container, rest) = rest.split_once(']')?;
        let path = rest.strip_prefix(".resources.")?;
        let (kind, name) = path.split_once('.')?;
        let containers = object["spec"]["template"]["spec"]["containers"].as_array()?;
        let found = containers.iter().find(|c| c["name"] == container)?;
        return text(&found["resources"][kind][name]);
    }
    let key = field.strip_prefix("spec.")?;
    text(&object["spec"][key])
}

fn stored(sim: &Sim, case: &Case) -> Value {
    object(sim, case.object.0, case.object.1)
}

fn record(object: &Value) -> Value {
    let text = object["metadata"]["annotations"][RECORD]
        .as_str()
        .unwrap_or_else(|| panic!("no audit record on {}", object["metadata"]["name"]));
    serde_json::from_str(text).expect("the record is JSON")
}

/// A reported value as text (counts are JSON numbers, quantities strings).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The change the JSON document reports for the case's field.
fn reported<'a>(out: &'a Output, case: &Case) -> &'a Value {
    let doc = out.json();
    let changes = doc["changes"].as_array().cloned().unwrap_or_default();
    let found = changes
        .into_iter()
        .find(|c| c["field"] == case.field)
        .unwrap_or_else(|| panic!("{}: no change of {} in {}", case.name, case.field, out.stdout));
    Box::leak(Box::new(found))
}

/// What every case must show after a write that was stored: the JSON outcome is the stored
/// value, the object carries the record of this command, and `undo` restores `before`.
fn assert_stored_recorded_and_undone(sim: &Sim, case: &Case, out: &Output) {
    let now = stored(sim, case);
    let value = field_value(&now, case.field);
    assert_eq!(value.as_deref(), Some(case.after), "{}: stored value", case.name);
    let change = reported(out, case);
    assert_eq!(
        text_of(&change["after"]),
        value,
        "{}: the report is the stored value",
        case.name
    );
    assert_eq!(
        text_of(&change["before"]).as_deref(),
        Some(case.before),
        "{}",
        case.name
    );
    let rec = record(&now);
    assert_eq!(rec["v"], 2, "{}: {rec}", case.name);
    assert!(
        case.args
            .iter()
            .all(|a| *a == "--yes" || rec["command"].as_str().unwrap_or("").contains(a)),
        "{}: the record names the command: {rec}",
        case.name
    );
    let undo = run(sim, &["undo", "--yes"]);
    undo.assert_code(0);
    assert_eq!(
        field_value(&stored(sim, case), case.field).as_deref(),
        Some(case.before),
        "{}: undo restores the value before\n{}",
        case.name,
        undo.stderr
    );
    assert!(
        !undo.stderr.contains("was changed since"),
        "{}: our own write is not someone else's change:\n{}",
        case.name,
        undo.stderr
    );
}

fn ready_sim() -> Sim {
    let sim = sim();
    wait_ready(&sim, 3);
    sim
}

fn with_json(args: &[&'static str]) -> Vec<&'static str> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    all
}

#[test]
fn an_answer_lost_after_the_write_is_settled_as_applied_for_every_command() {
    for case in CASES {
        // Text first: what it says of the change is what the sim holds.
        let sim = ready_sim();
        sim.faults()
            .commit_then_drop(Some(case.method), Some(case.resource), 1);
        let text = run(&sim, case.args);
        text.assert_code(0);
        assert!(
            text.stdout.contains(case.text),
            "{}: the text outcome names the stored change:\n{}",
            case.name,
            text.stdout
        );
        assert_eq!(
            field_value(&stored(&sim, case), case.field).as_deref(),
            Some(case.after),
            "{}",
            case.name
        );
        // Then JSON, on a fresh cluster.
        let sim = ready_sim();
        sim.faults()
            .commit_then_drop(Some(case.method), Some(case.resource), 1);
        let out = run(&sim, &with_json(case.args));
        out.assert_code(0);
        assert!(
            out.stderr.contains("answer to the write was lost"),
            "{}: says so:\n{}",
            case.name,
            out.stderr
        );
        assert!(
            !out.stderr.contains("nothing to change"),
            "{}: {}",
            case.name,
            out.stderr
        );
        assert_stored_recorded_and_undone(&sim, case, &out);
    }
}

#[test]
fn an_answer_later_than_the_request_timeout_is_settled_by_reading_back() {
    for case in CASES {
        let sim = ready_sim();
        sim.faults()
            .hold_answer(Some(case.method), Some(case.resource), 1, Duration::from_secs(4));
        let mut args = with_json(case.args);
        args.extend(["--request-timeout", "2s"]);
        let out = run(&sim, &args);
        out.assert_code(0);
        assert!(
            out.stderr.contains("answer to the write was lost"),
            "{}:\n{}",
            case.name,
            out.stderr
        );
        assert!(
            !out.stderr.contains("cannot reach"),
            "{}: {}",
            case.name,
            out.stderr
        );
        assert_stored_recorded_and_undone(&sim, case, &out);
    }
}

#[test]
fn a_write_unanswered_past_the_write_timeout_is_settled_by_reading_back() {
    // No --request-timeout: the write's own timeout (10 s) ends the wait, and the change the
    // server stored meanwhile is found by reading back, not reported as "unreachable".
    let sim = ready_sim();
    sim.faults()
        .hold_answer(Some("PATCH"), Some("deployments"), 1, Duration::from_secs(12));
    let out = run(&sim, &["scale", "--replicas", "5", "-o", "json"]);
    out.assert_code(0);
    assert!(out.stderr.contains("no answer within 10s"), "{}", out.stderr);
    assert!(!out.stderr.contains("cannot reach"), "{}", out.stderr);
    assert_stored_recorded_and_undone(&sim, &CASES[0], &out);
}

#[test]
fn hpa_create_whose_answer_is_lost_is_ours_not_someone_elses() {
    let sim = ready_sim();
    sim.store()
        .delete(
            &ObjectKey::new("horizontalpodautoscalers", NAMESPACE, "orchestrator"),
            None,
        )
        .expect("the seeded HPA");
    sim.faults()
        .commit_then_drop(Some("POST"), Some("horizontalpodautoscalers"), 1);
    let out = run(
        &sim,
        &["hpa", "--create", "--min", "2", "--max", "6", "-o", "json"],
    );
    out.assert_code(0);
    assert!(!out.stderr.contains("someone else"), "{}", out.stderr);
    let hpa = object(&sim, "horizontalpodautoscalers", "orchestrator");
    assert_eq!(hpa["spec"]["maxReplicas"], 6);
    assert_eq!(record(&hpa)["command"], "hpa --create --min 2 --max 6");
    let max = out.json()["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["field"] == "spec.maxReplicas").cloned())
        .expect("maxReplicas change");
    assert_eq!(max["after"], 6);
    run(&sim, &["undo", "--yes"]).assert_code(0);
    assert!(
        sim.store()
            .get(&ObjectKey::new(
                "horizontalpodautoscalers",
                NAMESPACE,
                "orchestrator"
            ))
            .is_none(),
        "undo of the creation deletes it"
    );
}

#[test]
fn undo_whose_answer_is_lost_is_settled_too() {
    let sim = ready_sim();
    run(&sim, &["scale", "--replicas", "5"]).assert_code(0);
    sim.faults()
        .commit_then_drop(Some("PATCH"), Some("deployments"), 1);
    let out = run(&sim, &["undo", "--yes", "-o", "json"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("answer to the write was lost"),
        "{}",
        out.stderr
    );
    let d = object(&sim, "deployments", "orchestrator");
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(record(&d)["command"], "undo");
    assert_eq!(out.json()["changes"][0]["after"], 3);
}

#[test]
fn values_an_admission_webhook_changes_are_reported_recorded_and_undone_as_stored() {
    // GKE Autopilot rounds CPU requests up (to 250m steps); Kyverno mutate policies do the like.
    for (command, resource, name, container) in [
        (&["resources"][..], "deployments", "orchestrator", "orchestrator"),
        (&["db", "resources"][..], "statefulsets", "postgres", "postgres"),
    ] {
        let sim = ready_sim();
        sim.api().update(|api| {
            api.resource_mutator = Some(orchscale_sim::ResourceMutator {
                cpu_step_millis: 250,
                limits_equal_requests: true,
            });
        });
        let mut args = command.to_vec();
        args.extend(["--requests", "cpu=600m", "--yes", "-o", "json"]);
        let out = run(&sim, &args);
        out.assert_code(0);
        let field = format!("spec.template.spec.containers[{container}].resources.requests.cpu");
        let now = object(&sim, resource, name);
        assert_eq!(field_value(&now, &field).as_deref(), Some("750m"), "rounded up");
        assert!(
            out.stderr.contains("stored 750m, not the 600m written"),
            "{}",
            out.stderr
        );
        let doc = out.json();
        let change = doc["changes"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["field"] == field.as_str()).cloned())
            .expect("the cpu change");
        assert_eq!(change["after"], "750m", "the report is what is stored");
        assert!(
            doc["warnings"]
                .as_array()
                .is_some_and(|w| w.iter().any(|w| w.as_str().is_some_and(|w| w.contains("750m")))),
            "{doc}"
        );
        assert!(
            out.stderr
                .contains("limits cpu: the API server stored 750m, it was 1"),
            "limits set equal to requests are said too:\n{}",
            out.stderr
        );
        assert_eq!(record(&now)["written"][field.as_str()], "750m");
        let undo = run(&sim, &["undo", "--yes"]);
        undo.assert_code(0);
        assert!(!undo.stderr.contains("was changed since"), "{}", undo.stderr);
        let back = object(&sim, resource, name);
        assert_eq!(field_value(&back, &field).as_deref(), Some("500m"));
    }
}

#[test]
fn a_second_writer_between_read_and_write_is_planned_against_and_reported_truly() {
    let sim = ready_sim();
    // Someone scales to 4 between our read (3) and our write.
    sim.faults().second_writer(
        Some("PATCH"),
        Some("deployments"),
        json!({"spec": {"replicas": 4}}),
    );
    let out = run(&sim, &["scale", "--replicas", "5", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(
        doc["changes"][0]["before"], 4,
        "re-planned from what is stored: {doc}"
    );
    assert_eq!(doc["changes"][0]["after"], 5);
    let d = object(&sim, "deployments", "orchestrator");
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(record(&d)["previous"]["spec.replicas"], 4);
    run(&sim, &["undo", "--yes"]).assert_code(0);
    assert_eq!(object(&sim, "deployments", "orchestrator")["spec"]["replicas"], 4);
}

#[test]
fn two_racing_resources_runs_each_report_what_the_cluster_holds() {
    let sim = ready_sim();
    // The other run sets 1 between our read and our write: we re-plan and set ours.
    sim.faults().second_writer(
        Some("PATCH"),
        Some("deployments"),
        json!({"metadata": {"annotations": {"other-run": "1"}}}),
    );
    let out = run(
        &sim,
        &["resources", "--requests", "cpu=750m", "--yes", "-o", "json"],
    );
    out.assert_code(0);
    let field = "spec.template.spec.containers[orchestrator].resources.requests.cpu";
    let d = object(&sim, "deployments", "orchestrator");
    assert_eq!(field_value(&d, field).as_deref(), Some("750m"));
    assert_eq!(out.json()["changes"][0]["after"], "750m");
    let conflicts = sim
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == 409)
        .count();
    assert_eq!(conflicts, 1, "the stale write met 409 and was re-planned");
}

#[test]
fn a_three_second_outage_during_the_follow_is_ridden_out() {
    let sim = ready_sim();
    // New pods wait until the outage is on, so the follow is still under way during it.
    sim.scenario().set_pod_start_delay(Duration::from_secs(600));
    let following = start_following(&sim, &["resources", "--requests", "cpu=750m", "--yes"]);
    sim.faults().outage(Duration::from_secs(3), OutageMode::Drop);
    sim.scenario().set_pod_start_delay(Duration::from_millis(50));
    let (code, rest) = following.finish();
    assert_eq!(code, Some(0), "{rest}");
    let d = object(&sim, "deployments", "orchestrator");
    assert_eq!(d["status"]["updatedReplicas"], 3, "{rest}");
    assert!(
        record(&d)["command"]
            .as_str()
            .is_some_and(|c| c.starts_with("resources"))
    );
}

#[test]
fn forbidden_events_are_a_skipped_step_in_text_and_json() {
    let sim = ready_sim();
    sim.faults().deny("list", "events");
    sim.faults().deny("watch", "events");
    let out = run(
        &sim,
        &["resources", "--requests", "cpu=750m", "--yes", "-o", "json"],
    );
    out.assert_code(0);
    let doc = out.json();
    let warnings: Vec<&str> = doc["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        warnings
            .iter()
            .filter(|w| w.contains("Warning events are not shown"))
            .count(),
        1,
        "said once: {warnings:?}"
    );
    assert_eq!(
        out.stderr.matches("Warning events are not shown").count(),
        1,
        "{}",
        out.stderr
    );
}
