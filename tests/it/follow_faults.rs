//! The rollout follower under faults, through the real binary: an API outage during the
//! follow is ridden out, a refused events watch is one warning, a refused workload watch is
//! a clear error saying what was written (also with -q), and a replica count changed by
//! someone other than the HPA is not blamed on it. `hpa --watch` shares the watches.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kubectl_orchscale::follow::follow;
use kubectl_orchscale::health::{Rollout, Workload};
use orchscale_sim::store::{ObjectKey, UpdatePart};
use orchscale_sim::{FaultRule, Sim};

use crate::follow::{connect, spec};
use crate::harness::{NAMESPACE, run, sim, start_following, stored_replicas, wait_ready};

const OUTAGE: &str = "API server not answering; retrying…";
const BACK: &str = "API server answering again";

/// Fails the next `count` requests of any kind.
fn outage(sim: &Sim, status: u16, retry_after: Option<u64>, count: usize) {
    sim.faults().fail_next(FaultRule {
        method: None,
        resource: None,
        status,
        retry_after,
        count,
    });
}

/// Touches the deployment, one of its pods and its ReplicaSet (an annotation), so that each of
/// the follower's watches gets an event, is cut (`cut_watches_after(1)`) and must re-watch.
fn touch_watched_objects(sim: &Sim) {
    let touch = |resource: &str, name: &str| {
        sim.store()
            .modify(
                &ObjectKey::new(resource, NAMESPACE, name),
                UpdatePart::Main,
                |o| {
                    o["metadata"]["annotations"]["test/touched"] = "1".into();
                    true
                },
            )
            .unwrap();
    };
    touch("deployments", "orchestrator");
    let (pods, _) = sim.store().list("pods", Some(NAMESPACE));
    let pod = pods
        .iter()
        .find(|p| p["metadata"]["labels"]["app"] == "orchestrator")
        .expect("an orchestrator pod");
    touch("pods", pod["metadata"]["name"].as_str().unwrap());
    let (sets, _) = sim.store().list("replicasets", Some(NAMESPACE));
    let set = sets
        .iter()
        .find(|s| s["metadata"]["labels"]["app"] == "orchestrator")
        .expect("an orchestrator replicaset");
    touch("replicasets", set["metadata"]["name"].as_str().unwrap());
}

/// Waits (bounded) until the sim has answered `count` requests with `status`.
fn wait_failed_requests(sim: &Sim, status: u16, count: usize) {
    for _ in 0..600 {
        if sim.requests().iter().filter(|r| r.status == status).count() >= count {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = sim.requests().iter().filter(|r| r.status == status).count();
    panic!("only {seen} of {count} requests failed with {status}");
}

/// Starts `scale --replicas 5` with pods that do not start, cuts every watch after one event,
/// and returns once the follower follows.
fn follow_a_stalled_scale(sim: &Sim) -> crate::harness::Following {
    wait_ready(sim, 3);
    sim.scenario().set_pod_start_delay(Duration::from_secs(600));
    // Read by each watch as it starts.
    sim.faults().cut_watches_after(1);
    start_following(sim, &["scale", "--replicas", "5", "--timeout", "2m"])
}

#[test]
fn an_outage_during_the_follow_is_ridden_out_and_said_once() {
    let sim = sim();
    let following = follow_a_stalled_scale(&sim);
    // 503 with a Retry-After beyond the request retry budget: each failure reaches the
    // follower's watches at once, which retry with their own backoff (~3 s for 12 failures
    // spread over three watches).
    outage(&sim, 503, Some(60), 12);
    touch_watched_objects(&sim);
    wait_failed_requests(&sim, 503, 12);
    // The outage is over; now let the pods start.
    sim.scenario().set_pod_start_delay(Duration::from_millis(50));
    let (code, rest) = following.finish();
    assert_eq!(code, Some(0), "{rest}");
    assert_eq!(rest.matches(OUTAGE).count(), 1, "said once:\n{rest}");
    let lost = rest.find(OUTAGE).unwrap();
    let back = rest
        .find(BACK)
        .unwrap_or_else(|| panic!("says it is back:\n{rest}"));
    assert!(lost < back, "{rest}");
    assert!(!rest.contains("error"), "{rest}");
    assert_eq!(stored_replicas(&sim), 5);
    wait_ready(&sim, 5);
}

#[test]
fn dropped_connections_during_the_follow_are_ridden_out() {
    let sim = sim();
    let following = follow_a_stalled_scale(&sim);
    // Status 0: the sim drops the connection without an answer.
    outage(&sim, 0, None, 15);
    touch_watched_objects(&sim);
    wait_failed_requests(&sim, 0, 15);
    sim.scenario().set_pod_start_delay(Duration::from_millis(50));
    let (code, rest) = following.finish();
    assert_eq!(code, Some(0), "{rest}");
    assert!(!rest.contains("error"), "{rest}");
    assert_eq!(stored_replicas(&sim), 5);
}

#[test]
fn forbidden_events_are_one_warning_and_the_rollout_is_followed() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults().deny("list", "events");
    sim.faults().deny("watch", "events");
    let out = run(&sim, &["scale", "--replicas", "5"]);
    out.assert_code(0);
    let warning =
        "Warning events are not shown: cannot watch events in namespace llm-orchestrator (forbidden)";
    assert_eq!(out.stderr.matches(warning).count(), 1, "{}", out.stderr);
    assert!(out.stdout.contains("is at 5 replicas, 5 ready"), "{}", out.stdout);
}

#[test]
fn a_forbidden_workload_watch_is_found_before_anything_is_written() {
    // Following the rollout needs list and watch on the deployment: the preflight derives
    // that from the command's steps and stops before the write, not after it (issue 7).
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults().deny("list", "deployments");
    sim.faults().deny("watch", "deployments");
    let out = run(&sim, &["-q", "scale", "--replicas", "5"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("missing permission: list deployments in namespace llm-orchestrator"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("overloaded"), "{}", out.stderr);
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert_eq!(stored_replicas(&sim), 3);
}

#[test]
fn a_count_changed_by_someone_else_is_not_blamed_on_the_hpa() {
    let sim = sim();
    let following = follow_a_stalled_scale(&sim);
    // The HPA's status says it wants 3; someone scales to 4 by hand.
    sim.store()
        .modify(
            &ObjectKey::new("deployments", NAMESPACE, "orchestrator"),
            UpdatePart::Main,
            |d| {
                d["spec"]["replicas"] = 4.into();
                true
            },
        )
        .unwrap();
    let (code, rest) = following.finish();
    assert_eq!(code, Some(1), "{rest}");
    assert!(
        rest.contains("deployment/orchestrator replicas were changed from 5 to 4 by someone else"),
        "{rest}"
    );
    assert!(!rest.contains("HPA orchestrator changed"), "{rest}");
    assert!(rest.contains("replicas were set to 5"), "{rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_pods_and_replicasets_leave_the_verdict_to_the_status() {
    let sim = sim();
    wait_ready(&sim, 3);
    for resource in ["pods", "replicasets"] {
        sim.faults().deny("list", resource);
        sim.faults().deny("watch", resource);
    }
    let (cluster, mut reporter) = connect(sim.kubeconfig()).await;
    let patch =
        serde_json::json!({"spec": {"template": {"metadata": {"annotations": {"test/restart": "1"}}}}});
    cluster
        .patch::<Deployment, _>("orchestrator", &kube::api::Patch::Merge(&patch), false)
        .await
        .unwrap();
    let done: Deployment = follow(&cluster, &spec("orchestrator", "app=orchestrator"), &mut reporter)
        .await
        .unwrap();
    assert!(matches!(done.rollout(), Rollout::Complete(_)));
}

#[test]
fn hpa_watch_without_events_permission_warns_and_watches_to_the_timeout() {
    // `hpa --watch` builds its watches in the same place (cluster::watch) as the follower.
    let sim = sim();
    sim.faults().deny("list", "events");
    sim.faults().deny("watch", "events");
    let out = run(&sim, &["hpa", "--watch", "--timeout", "2s"]);
    out.assert_code(0);
    assert_eq!(
        out.stderr
            .matches(
                "scaling events are not shown: cannot watch events in namespace llm-orchestrator (HTTP 403)"
            )
            .count(),
        1,
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("stopped watching horizontalpodautoscaler/orchestrator (--timeout)"),
        "{}",
        out.stderr
    );
}
