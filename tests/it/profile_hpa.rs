//! `hpa` on clusters before 1.36, whose HPAs have no generation and act on a change at the next
//! resync: the final view is the controller's answer when it comes within the wait, and says so
//! honestly when it is not.

use std::time::Duration;

use orchscale_sim::Flavor;
use serde_json::Value;

use crate::harness::{object, real, run, sim_of, sim_of_with};

fn hpa(sim: &orchscale_sim::Sim) -> Value {
    object(sim, "horizontalpodautoscalers", "orchestrator")
}

/// Upstream before 1.36: no `metadata.generation`/`status.observedGeneration` on HPAs
/// (kubernetes#138228) and a changed spec is reconciled at the next resync
/// (pkg/controller/podautoscaler/horizontal.go `enqueueHPA`: `queue.AddRateLimited`,
/// kubernetes#138294); the controller writes its status only when it differs
/// (`updateStatusIfNeeded`). `--min 5` over 3 replicas must move desiredReplicas, so the status
/// changing after the write is the answer the final view waits for.
#[test]
fn min_change_on_1_33_shows_the_controllers_answer_at_its_resync() {
    let sim = sim_of_with(real(33, Flavor::Plain), Duration::from_secs(2));
    assert!(hpa(&sim)["metadata"].get("generation").is_none());
    let out = run(&sim, &["hpa", "--min", "5", "--max", "20"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("waiting up to 15s for the HPA controller's next sync"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("predates"), "{}", out.stderr);
    assert!(!out.stdout.contains("before the change"), "{}", out.stdout);
    assert!(
        out.stdout.contains("desired 5"),
        "the answer to min 5:\n{}",
        out.stdout
    );
    let stored = hpa(&sim);
    assert_eq!(stored["spec"]["minReplicas"], 5);
    assert!(stored["status"].get("observedGeneration").is_none(), "{stored}");
}

/// The same change with the resync far away: bounded by `--timeout`, the view then says the
/// status predates the change, on stdout beside the status and in the JSON document.
#[test]
fn min_change_on_1_33_before_the_resync_says_the_status_predates_it() {
    let sim = sim_of(real(33, Flavor::Plain));
    let out = run(
        &sim,
        &[
            "hpa",
            "--min",
            "5",
            "--max",
            "20",
            "--timeout",
            "2s",
            "-o",
            "json",
        ],
    );
    out.assert_code(0);
    let document = out.json();
    assert_eq!(document["statusPredatesChange"], true, "{document}");
    assert_eq!(hpa(&sim)["spec"]["minReplicas"], 5, "the change is made");
}

/// A change that cannot move the status (max 10 -> 20 at 3 replicas): nothing could tell when
/// the controller acted, so no wait at all (no watch of the HPA), and the view says why.
#[test]
fn max_change_on_1_33_does_not_wait_for_what_cannot_be_told() {
    let sim = sim_of(real(33, Flavor::Plain));
    sim.clear_requests();
    let out = run(&sim, &["hpa", "--max", "20"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("reports no observedGeneration"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("predates the change"), "{}", out.stderr);
    assert!(
        out.stdout.contains("status (from before the change"),
        "{}",
        out.stdout
    );
    let watched = sim
        .requests()
        .into_iter()
        .any(|r| r.path.contains("horizontalpodautoscalers") && r.query.contains("watch"));
    assert!(!watched, "no wait on an untellable answer");
}

/// 1.36 (kubernetes#138228, #138294): the HPA has a generation and the controller observes a
/// change at once: the view waits for observedGeneration, as before.
#[test]
fn min_change_on_1_36_waits_for_the_observed_generation() {
    let sim = sim_of(real(36, Flavor::Plain));
    let out = run(&sim, &["hpa", "--min", "5", "--max", "20"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("predates"), "{}", out.stderr);
    let stored = hpa(&sim);
    assert_eq!(
        stored["status"]["observedGeneration"],
        stored["metadata"]["generation"]
    );
    assert!(out.stdout.contains("desired 5"), "{}", out.stdout);
}
