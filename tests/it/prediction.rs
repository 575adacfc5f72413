//! HPA predictions over every metric: the count `hpa` predicts is the count the sim's HPA
//! controller settles at, with a CPU and a memory metric that disagree.
//!
//! Upstream (kubernetes `pkg/controller/podautoscaler`): `horizontal.go`
//! `computeReplicasForMetrics` takes the LARGEST proposal over the metrics;
//! `replica_calculator.go` `GetResourceReplicas` keeps the count within the 0.1 tolerance and
//! otherwise proposes ceil(utilization ÷ target × pods); `normalizeDesiredReplicas` clamps to
//! min..max. The sim (sim/src/controllers/hpa_metrics.rs `from_metrics`) takes the highest too.

use std::time::Duration;

use orchscale_sim::Flavor;
use orchscale_sim::store::{ObjectKey, UpdatePart};
use serde_json::{Value, json};

use crate::harness::{NAMESPACE, object, real, run, sim_of_with, stored_replicas};

fn hpa_key() -> ObjectKey {
    ObjectKey::new("horizontalpodautoscalers", NAMESPACE, "orchestrator")
}

fn utilization(hpa: &Value, resource: &str) -> Option<i64> {
    hpa["status"]["currentMetrics"]
        .as_array()?
        .iter()
        .find(|m| m["resource"]["name"] == resource)?["resource"]["current"]["averageUtilization"]
        .as_i64()
}

/// Waits (bounded) until `check` holds for the HPA in the store.
fn wait_hpa(sim: &orchscale_sim::Sim, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let hpa = object(sim, "horizontalpodautoscalers", "orchestrator");
        if check(&hpa) {
            return hpa;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "the HPA never {what}: {}",
        object(sim, "horizontalpodautoscalers", "orchestrator")
    );
}

#[test]
fn memory_holding_the_count_wins_over_a_cpu_scale_down_as_in_the_controller() {
    // 1.36: the HPA reconciles a changed spec at once and reports observedGeneration, so the
    // controller's answer to the new targets is known; scale-down without a window, so a
    // controller that looked at CPU alone would go down at that answer.
    let sim = sim_of_with(real(36, Flavor::Plain), Duration::from_secs(1));
    sim.store()
        .modify(&hpa_key(), UpdatePart::Main, |h| {
            h["spec"]["behavior"] = json!({"scaleDown": {"stabilizationWindowSeconds": 0}});
            true
        })
        .expect("the HPA exists");
    // The controller's own answer (not the seeded status): both metrics measured, scaling active.
    let before = wait_hpa(&sim, "measured cpu and memory", |h| {
        h["status"]["observedGeneration"] == h["metadata"]["generation"]
            && h["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "ScalingActive" && c["status"] == "True")
            })
            && utilization(h, "cpu").is_some()
            && utilization(h, "memory").is_some()
    });
    let replicas = before["status"]["currentReplicas"]
        .as_i64()
        .expect("currentReplicas");
    let (cpu, memory) = (
        utilization(&before, "cpu").unwrap(),
        utilization(&before, "memory").unwrap(),
    );
    // CPU alone: a target 3× the utilization proposes a third of the pods. Memory: a target
    // equal to its utilization is within the tolerance and keeps the count.
    let (cpu_target, memory_target) = ((cpu * 3).to_string(), memory.to_string());
    let out = run(
        &sim,
        &[
            "hpa",
            "--min",
            "1",
            "--cpu",
            &cpu_target,
            "--memory",
            &memory_target,
            "--yes",
            "-o",
            "json",
        ],
    );
    out.assert_code(0);
    let doc = out.json();
    let prediction = &doc["prediction"];
    assert_eq!(prediction["from"], replicas, "{doc:#}");
    assert_eq!(
        prediction["replicas"], replicas,
        "memory keeps the count: {doc:#}"
    );
    assert_eq!(prediction["metric"], "memory", "{doc:#}");
    let cpu_alone = prediction["proposals"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["metric"] == "cpu"))
        .and_then(|p| p["replicas"].as_i64())
        .expect("a cpu proposal");
    assert!(cpu_alone < replicas, "CPU alone would scale down: {doc:#}");
    assert!(
        !out.stderr.contains(&format!("to {cpu_alone} replicas")),
        "no CPU-only prediction is said:\n{}",
        out.stderr
    );

    // The controller's answer to the new spec (its observedGeneration): the predicted count.
    let settled = wait_hpa(&sim, "answered the new targets", |h| {
        h["status"]["observedGeneration"] == h["metadata"]["generation"]
            && h["status"]["desiredReplicas"].is_i64()
            && h["spec"]["metrics"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|m| m["resource"]["target"]["averageUtilization"] == cpu * 3)
            })
    });
    assert_eq!(
        settled["status"]["desiredReplicas"], prediction["replicas"],
        "the sim's controller settles where `hpa` predicted: {settled:#}"
    );
    assert_eq!(stored_replicas(&sim), replicas, "the deployment keeps its count");
}
