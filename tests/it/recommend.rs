//! `recommend` against the simulated Prometheus: values computed by hand from a stated load
//! curve, the pool within the database budget, the HPA target shift keeping the scaling point,
//! `--apply --yes` leaving exactly the proposals in the cluster with the rollouts done (as a
//! profile application: the profile apply's steps, one application id), one `undo` reverting
//! all of it after one prompt, thin data (1 h of history, a metrics-server sample) warned
//! about and refused for `--apply` without `--force`, and restarts in the window said (a crash
//! loop refused for `--apply` too).

use std::time::Duration;

use orchscale_sim::prometheus::{ContainerHistory, History, Levels, OomKill, Restart};
use orchscale_sim::{Flavor, Sim, SimOptions};
use serde_json::Value;

use crate::harness::{NAMESPACE, object, real, run, wait_ready};

const MI: f64 = 1024.0 * 1024.0;

/// The load curve, per pod, over a week of history sampled every minute:
/// busy hours 09:00–17:00 UTC, Mondays the peak day.
///
/// | container    | pods | CPU quiet / busy / peak | memory quiet / busy / peak | OOMKills            |
/// |--------------|------|-------------------------|----------------------------|---------------------|
/// | orchestrator | 3    | 0.2 / 0.5 / 0.9 cores   | 700 / 800 / 1000 MiB       | pod 1, 2 d ago, 1200 MiB |
/// | log-shipper  | 3    | 0.02 cores flat         | 50 MiB flat                |                     |
/// | postgres     | 1    | 0.1 / 0.2 / 0.4 cores   | 500 / 600 / 800 MiB        |                     |
fn curve(length: Duration) -> History {
    let flat = |v: f64| Levels {
        quiet: v,
        busy: v,
        peak: v,
    };
    let container = |prefix: &str, pods, name: &str, cpu, memory, oom_kills| ContainerHistory {
        namespace: NAMESPACE.into(),
        pod_prefix: prefix.into(),
        pods,
        container: name.into(),
        cpu_cores: cpu,
        memory_bytes: memory,
        oom_kills,
        restarts: Vec::new(),
    };
    History {
        length,
        scrape_interval: Duration::from_secs(60),
        busy_hours: (9, 17),
        peak_weekday: 1,
        containers: vec![
            container(
                "orchestrator-5f7d8c9b6d",
                3,
                "orchestrator",
                Levels {
                    quiet: 0.2,
                    busy: 0.5,
                    peak: 0.9,
                },
                Levels {
                    quiet: 700.0 * MI,
                    busy: 800.0 * MI,
                    peak: 1000.0 * MI,
                },
                vec![OomKill {
                    pod: 1,
                    ago: Duration::from_secs(2 * 86_400),
                    memory_bytes: 1200.0 * MI,
                }],
            ),
            container(
                "orchestrator-5f7d8c9b6d",
                3,
                "log-shipper",
                flat(0.02),
                flat(50.0 * MI),
                Vec::new(),
            ),
            container(
                "postgres",
                1,
                "postgres",
                Levels {
                    quiet: 0.1,
                    busy: 0.2,
                    peak: 0.4,
                },
                Levels {
                    quiet: 500.0 * MI,
                    busy: 600.0 * MI,
                    peak: 800.0 * MI,
                },
                Vec::new(),
            ),
        ],
    }
}

fn sim_with(history: Option<History>) -> Sim {
    let profile = real(33, Flavor::Plain);
    Sim::start(SimOptions {
        pod_start_delay: Duration::from_millis(50),
        hpa_sync_period: Duration::from_secs(3600),
        behaviour: profile.behaviour,
        api: profile.api,
        prometheus: history,
        ..SimOptions::default()
    })
    .expect("the simulated cluster starts")
}

/// The recommended value as text: quantities are strings, counts and percentages integers.
fn recommended(doc: &Value, object: &str, field: &str) -> String {
    let value = &doc["recommendations"]
        .as_array()
        .expect("recommendations")
        .iter()
        .find(|r| r["object"] == object && r["field"] == field)
        .unwrap_or_else(|| panic!("no {object} {field} in {doc:#}"))["recommended"];
    match value {
        Value::String(text) => text.clone(),
        Value::Number(n) => {
            assert!(n.is_i64(), "{field}: a count is an integer, got {n}");
            n.to_string()
        }
        other => panic!("{field}: {other}"),
    }
}

fn millicores(text: &str) -> f64 {
    match text.strip_suffix('m') {
        Some(m) => m.parse().unwrap(),
        None => text.parse::<f64>().unwrap() * 1000.0,
    }
}

const DEP: &str = "deployment/orchestrator";
const STS: &str = "statefulset/postgres";
const HPA: &str = "horizontalpodautoscaler/orchestrator";
const MAIN: &str = "spec.template.spec.containers[orchestrator].resources";
const SIDE: &str = "spec.template.spec.containers[log-shipper].resources";
const DB: &str = "spec.template.spec.containers[postgres].resources";
const POOL: &str = "data[\"config.yaml\"].database.max_connections";

/// The numbers by hand (window 7 d, step 7 d / 2000 → 360 s, rate over 360 s):
/// - per-pod CPU: 2/3 of the points quiet, 48/168 busy, 8/168 (4.8 %) peak; a handful of points
///   at the level changes lie between two levels (the rate window straddles them), too few to
///   reach 5 %: p95 = the busy level. Orchestrator 500m, sidecar 20m, postgres 200m
///   (tolerance ±10m for the level changes).
/// - CPU limits keep limit ÷ request = 2: 1000m, 40m, 400m.
/// - memory = max working set (the OOMKill's 1200 MiB is above the 1000 MiB peak) × 1.15:
///   1380Mi; sidecar 50 × 1.15 = 57.5 → 58Mi; postgres 800 × 1.15 = 920Mi.
/// - HPA: scaling point 70 % × (500m + 50m) = 385m per pod; new pod request 520m →
///   385 / 520 = 74.04 → 74 %. Total CPU 3 × (level + 0.02): median (quiet) 0.66 → 0.66 /
///   0.385 = 1.7 → 2; peak 2.76 × 1.2 = 3.31 / 0.385 = 8.6 → 9.
/// - pool: (1000 max_connections − 3 reserved) / 9 = 110.
fn assert_hand_computed(doc: &Value) {
    let near = |got: String, want: f64| {
        let got = millicores(&got);
        assert!((got - want).abs() <= 10.0, "{got}m, expected {want}m ± 10m");
    };
    near(recommended(doc, DEP, &format!("{MAIN}.requests.cpu")), 500.0);
    near(recommended(doc, DEP, &format!("{MAIN}.limits.cpu")), 1000.0);
    near(recommended(doc, DEP, &format!("{SIDE}.requests.cpu")), 20.0);
    near(recommended(doc, DEP, &format!("{SIDE}.limits.cpu")), 40.0);
    near(recommended(doc, STS, &format!("{DB}.requests.cpu")), 200.0);
    near(recommended(doc, STS, &format!("{DB}.limits.cpu")), 400.0);
    assert_eq!(
        recommended(doc, DEP, &format!("{MAIN}.requests.memory")),
        "1380Mi"
    );
    assert_eq!(recommended(doc, DEP, &format!("{MAIN}.limits.memory")), "1380Mi");
    assert_eq!(recommended(doc, DEP, &format!("{SIDE}.requests.memory")), "58Mi");
    assert_eq!(recommended(doc, STS, &format!("{DB}.limits.memory")), "920Mi");
    assert_eq!(
        recommended(doc, HPA, "spec.metrics[cpu].target.averageUtilization"),
        "74"
    );
    assert_eq!(recommended(doc, HPA, "spec.minReplicas"), "2");
    assert_eq!(recommended(doc, HPA, "spec.maxReplicas"), "9");
    assert_eq!(recommended(doc, "configmap/orchestrator-config", POOL), "110");
}

#[test]
fn proposals_match_the_curve_through_the_service_proxy_and_the_url() {
    let sim = sim_with(Some(curve(Duration::from_secs(7 * 86_400))));
    // Found through the API server's service proxy (no --prometheus-url).
    let out = run(&sim, &["recommend", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["command"], "recommend");
    assert_eq!(doc["source"]["kind"], "prometheus");
    assert!(
        doc["source"]["endpoint"]
            .as_str()
            .unwrap()
            .contains("monitoring/prometheus-operated:9090"),
        "{}",
        doc["source"]
    );
    assert_hand_computed(&doc);
    // The pool never exceeds the budget at the proposed maximum.
    let max: u32 = recommended(&doc, HPA, "spec.maxReplicas").parse().unwrap();
    let pool: u32 = recommended(&doc, "configmap/orchestrator-config", POOL)
        .parse()
        .unwrap();
    assert!(pool * max <= 1000 - 3, "{pool} × {max}");
    // The target shift keeps the scaling point: new target × new pod request ≈ 70 % × 550m
    // (within half a percent of the request: the target is a whole percent).
    let target: f64 = recommended(&doc, HPA, "spec.metrics[cpu].target.averageUtilization")
        .parse()
        .unwrap();
    let pod = millicores(&recommended(&doc, DEP, &format!("{MAIN}.requests.cpu")))
        + millicores(&recommended(&doc, DEP, &format!("{SIDE}.requests.cpu")));
    assert!(
        (target / 100.0 * pod - 385.0).abs() <= 0.005 * pod,
        "{target}% of {pod}m"
    );
    // The OOMKill is reported, without blocking --apply.
    let warnings = doc["dataWarnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w["message"].as_str().unwrap().contains("OOMKilled 1 time(s)"))
    );
    assert!(warnings.iter().all(|w| w["blocksApply"] == false), "{warnings:?}");
    assert!(
        sim.persisted_writes().is_empty(),
        "recommend alone writes nothing"
    );

    // The same through the URL of Prometheus' own listener.
    let url = sim.prometheus_url().unwrap().to_owned();
    let out = run(&sim, &["recommend", "--prometheus-url", &url, "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["source"]["endpoint"], url);
    assert_hand_computed(&doc);
}

fn container<'a>(workload: &'a Value, name: &str) -> &'a Value {
    workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

#[test]
fn apply_leaves_exactly_the_proposals_and_one_undo_reverts_them_all() {
    let sim = sim_with(Some(curve(Duration::from_secs(7 * 86_400))));
    wait_ready(&sim, 3);
    let before: Vec<Value> = [
        ("deployments", "orchestrator"),
        ("statefulsets", "postgres"),
        ("horizontalpodautoscalers", "orchestrator"),
        ("configmaps", "orchestrator-config"),
    ]
    .iter()
    .map(|(r, n)| object(&sim, r, n))
    .collect();
    let out = run(&sim, &["recommend", "--apply", "--yes", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["applied"], true);
    assert!(!doc["changes"].as_array().unwrap().is_empty());
    // Written as a profile is applied: its steps in the safe order, each applied.
    let steps: Vec<(&str, &str)> = doc["steps"]
        .as_array()
        .expect("the profile apply's steps")
        .iter()
        .map(|s| (s["kind"].as_str().unwrap(), s["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("database-resources", "applied"),
            ("pool", "applied"),
            ("deployment-resources", "applied"),
            ("hpa", "applied"),
        ]
    );
    // Every object's record is a step of one application.
    let application = |resource: &str, name: &str| -> Value {
        let record =
            object(&sim, resource, name)["metadata"]["annotations"]["orchscale.io/last-change"].clone();
        serde_json::from_str::<Value>(record.as_str().unwrap()).unwrap()["application"].clone()
    };
    let id = application("deployments", "orchestrator");
    assert!(id.as_str().unwrap().starts_with("recommendations/"), "{id}");
    for (resource, name) in [
        ("statefulsets", "postgres"),
        ("configmaps", "orchestrator-config"),
        ("horizontalpodautoscalers", "orchestrator"),
    ] {
        assert_eq!(application(resource, name), id, "{resource}/{name}");
    }

    // Read back from the sim: every proposal is what the cluster holds.
    let deployment = object(&sim, "deployments", "orchestrator");
    let main = container(&deployment, "orchestrator");
    for (kind, name) in [
        ("requests", "cpu"),
        ("requests", "memory"),
        ("limits", "cpu"),
        ("limits", "memory"),
    ] {
        let want = recommended(&doc, DEP, &format!("{MAIN}.{kind}.{name}"));
        let got = main["resources"][kind][name].as_str().unwrap();
        assert_eq!(
            millicores_or_text(got),
            millicores_or_text(&want),
            "{kind}.{name}"
        );
    }
    assert_eq!(
        main["resources"]["requests"]["ephemeral-storage"], "1Gi",
        "other keys kept"
    );
    let side = container(&deployment, "log-shipper");
    assert_eq!(
        side["resources"]["requests"]["memory"],
        recommended(&doc, DEP, &format!("{SIDE}.requests.memory"))
    );
    let postgres = object(&sim, "statefulsets", "postgres");
    assert_eq!(
        container(&postgres, "postgres")["resources"]["limits"]["memory"],
        recommended(&doc, STS, &format!("{DB}.limits.memory"))
    );
    let hpa = object(&sim, "horizontalpodautoscalers", "orchestrator");
    assert_eq!(
        hpa["spec"]["minReplicas"].to_string(),
        recommended(&doc, HPA, "spec.minReplicas")
    );
    assert_eq!(
        hpa["spec"]["maxReplicas"].to_string(),
        recommended(&doc, HPA, "spec.maxReplicas")
    );
    let cpu_target = hpa["spec"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["resource"]["name"] == "cpu")
        .unwrap()["resource"]["target"]["averageUtilization"]
        .to_string();
    assert_eq!(
        cpu_target,
        recommended(&doc, HPA, "spec.metrics[cpu].target.averageUtilization")
    );
    let config = object(&sim, "configmaps", "orchestrator-config");
    assert!(
        config["data"]["config.yaml"]
            .as_str()
            .unwrap()
            .contains("max_connections: 110"),
        "{}",
        config["data"]["config.yaml"]
    );
    // The rollouts were followed to the end: every pod of the new template is ready.
    let status = &deployment["status"];
    assert_eq!(status["updatedReplicas"], 3, "{status}");
    assert_eq!(status["readyReplicas"], 3, "{status}");
    let postgres_status = &postgres["status"];
    assert_eq!(
        postgres_status["currentRevision"], postgres_status["updateRevision"],
        "{postgres_status}"
    );

    // One undo reverts all of it: the application, its steps in reverse order.
    let out = run(&sim, &["undo", "--yes", "-o", "json"]);
    out.assert_code(0);
    let undone = out.json();
    assert_eq!(undone["application"], id);
    let kinds: Vec<&str> = undone["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["hpa", "deployment-resources", "pool", "database-resources"]
    );
    assert_eq!(
        undone["changes"].as_array().unwrap().len(),
        doc["changes"].as_array().unwrap().len(),
        "one document lists every restored field: {undone:#}"
    );
    let after: Vec<Value> = [
        ("deployments", "orchestrator"),
        ("statefulsets", "postgres"),
        ("horizontalpodautoscalers", "orchestrator"),
        ("configmaps", "orchestrator-config"),
    ]
    .iter()
    .map(|(r, n)| object(&sim, r, n))
    .collect();
    let template = |o: &Value| o["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(
        template(&after[0]),
        template(&before[0]),
        "deployment resources restored"
    );
    assert_eq!(
        template(&after[1]),
        template(&before[1]),
        "statefulset resources restored"
    );
    assert_eq!(after[2]["spec"]["minReplicas"], before[2]["spec"]["minReplicas"]);
    assert_eq!(after[2]["spec"]["maxReplicas"], before[2]["spec"]["maxReplicas"]);
    assert_eq!(after[2]["spec"]["metrics"], before[2]["spec"]["metrics"]);
    assert_eq!(after[3]["data"], before[3]["data"], "pool restored");
}

/// At a terminal, `recommend --apply` and the `undo` after it each ask once, for every object
/// they write: answers typed ahead for more questions are never read.
#[test]
fn apply_and_its_undo_ask_once_at_a_terminal() {
    if !crate::prompt::can_emulate_a_terminal() {
        return;
    }
    let sim = sim_with(Some(curve(Duration::from_secs(7 * 86_400))));
    wait_ready(&sim, 3);
    let before = object(&sim, "deployments", "orchestrator");
    let prompts = |out: &std::process::Output| {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text.matches("Continue? [y/N]").count(), text)
    };
    let out = crate::prompt::on_terminal(&sim, "recommend --apply", &[], "y\ny\ny\ny\n");
    let (asked, text) = prompts(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(asked, 1, "one prompt for the four objects:\n{text}");
    // recommend's own warning in the combined preview: the pool, sized for the new maximum
    // (110 × 9 ≤ 997), is over the budget at the current one (× 10) until the HPA step.
    assert!(
        text.contains("between the pool step and the HPA step (until maxReplicas 10 becomes 9)"),
        "{text}"
    );
    let applied = object(&sim, "deployments", "orchestrator");
    assert_ne!(
        container(&applied, "orchestrator")["resources"],
        container(&before, "orchestrator")["resources"]
    );
    let out = crate::prompt::on_terminal(&sim, "undo", &[], "y\ny\ny\ny\n");
    let (asked, text) = prompts(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(asked, 1, "one prompt for the whole undo:\n{text}");
    let after = object(&sim, "deployments", "orchestrator");
    assert_eq!(
        after["spec"]["template"]["spec"]["containers"], before["spec"]["template"]["spec"]["containers"],
        "restored by the one undo"
    );
}

/// Quantities compared by value where they are CPU (`1` = `1000m`), else as written.
fn millicores_or_text(text: &str) -> String {
    if text.ends_with("Mi") || text.ends_with("Gi") {
        text.to_owned()
    } else {
        format!("{}", millicores(text))
    }
}

#[test]
fn an_hour_of_history_is_thin_and_apply_needs_force() {
    let sim = sim_with(Some(curve(Duration::from_secs(3600))));
    let out = run(&sim, &["recommend"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("thin data: Prometheus has only"),
        "{}",
        out.stderr
    );
    let out = run(&sim, &["recommend", "--apply", "--yes"]);
    out.assert_code(2);
    assert!(out.stderr.contains("too thin to act on"), "{}", out.stderr);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert!(
        sim.persisted_writes().is_empty(),
        "nothing written: {:?}",
        sim.persisted_writes()
    );
}

#[test]
fn without_prometheus_a_short_sample_is_weak_evidence_and_apply_needs_force() {
    // No Prometheus: metrics-server is sampled (2 s here instead of the default 30 s).
    let sim = sim_with(None);
    wait_ready(&sim, 3);
    let out = run(&sim, &["recommend", "--sample-for", "2s", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["source"]["kind"], "metrics-server");
    let warnings = doc["dataWarnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w["message"].as_str().unwrap().contains("weak evidence") && w["blocksApply"] == true),
        "{warnings:?}"
    );
    assert!(!doc["recommendations"].as_array().unwrap().is_empty());
    let out = run(&sim, &["recommend", "--sample-for", "2s", "--apply", "--yes"]);
    out.assert_code(2);
    assert!(out.stderr.contains("weak evidence"), "{}", out.stderr);
    assert!(
        sim.persisted_writes().is_empty(),
        "nothing written: {:?}",
        sim.persisted_writes()
    );
}

#[test]
fn restarts_in_the_window_are_said_and_a_crash_loop_needs_force() {
    let mut history = curve(Duration::from_secs(7 * 86_400));
    // The orchestrator's pod 0 restarted twice (3 and 4 days ago); with pod 1's OOMKill 2 days
    // ago, 3 restarts of that container. The log-shipper of pod 2 restarted every hour for the
    // last 100 hours: at least one restart per 20 of its samples (a week at a 6-minute step is
    // 1,680 samples; 100 ≥ 1,680 / 20), a crash loop.
    history.containers[0].restarts = vec![
        Restart {
            pod: 0,
            ago: Duration::from_secs(3 * 86_400),
        },
        Restart {
            pod: 0,
            ago: Duration::from_secs(4 * 86_400),
        },
    ];
    history.containers[1].restarts = (0..100)
        .map(|hour| Restart {
            pod: 2,
            ago: Duration::from_secs(hour * 3600 + 1800),
        })
        .collect();
    let sim = sim_with(Some(history));
    let out = run(&sim, &["recommend", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    let warnings = doc["dataWarnings"].as_array().unwrap();
    let about = |needle: &str| {
        warnings
            .iter()
            .find(|w| w["message"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no warning with {needle:?}: {warnings:?}"))
    };
    let main = about("container orchestrator restarted");
    let message = main["message"].as_str().unwrap();
    assert!(
        message.contains(
            "restarted 3 time(s) in the window (orchestrator-5f7d8c9b6d-0: 2, orchestrator-5f7d8c9b6d-1: 1;"
        ),
        "{message}"
    );
    assert!(message.contains("under-reported"), "{message}");
    assert_eq!(main["blocksApply"], false, "a few restarts do not block");
    let sidecar = about("container log-shipper restarted");
    let message = sidecar["message"].as_str().unwrap();
    assert!(
        message.contains("restarted 100 time(s)") && message.contains("crash-looping"),
        "{message}"
    );
    assert_eq!(sidecar["blocksApply"], true);
    // The warnings are the document's warnings too.
    assert!(
        doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("crash-looping"))),
        "{}",
        doc["warnings"]
    );
    let out = run(&sim, &["recommend", "--apply", "--yes"]);
    out.assert_code(2);
    assert!(out.stderr.contains("crash-looping"), "{}", out.stderr);
    assert!(out.stderr.contains("too thin to act on"), "{}", out.stderr);
    assert!(
        sim.persisted_writes().is_empty(),
        "nothing written: {:?}",
        sim.persisted_writes()
    );
}
