//! The follower's events: only Warnings, selected by the server, watched from the current
//! resourceVersion without downloading the namespace's event history.

use orchscale_sim::store::ObjectKey;
use serde_json::json;

use crate::harness::{NAMESPACE, run, sim, wait_ready};

#[test]
fn warnings_are_selected_by_the_server_and_history_is_not_downloaded() {
    let sim = sim();
    wait_ready(&sim, 3);
    // A busy namespace's history: many Normal events and an old Warning about the workload.
    for i in 0..400 {
        let (type_, reason, message) = if i == 7 {
            ("Warning", "BackOff", "old trouble, before the command")
        } else {
            ("Normal", "Pulled", "Container image already present")
        };
        let event = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("orchestrator-old-{i}.1"), "namespace": NAMESPACE},
            "involvedObject": {"kind": "Pod", "name": format!("orchestrator-old-{i}"), "namespace": NAMESPACE},
            "type": type_, "reason": reason, "message": message, "count": 1});
        sim.store()
            .create(
                &ObjectKey::new("events", NAMESPACE, &format!("orchestrator-old-{i}.1")),
                event,
            )
            .unwrap();
    }
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "compute", "namespace": NAMESPACE}, "spec": {"hard": {"pods": "5"}}});
    sim.store()
        .create(&ObjectKey::new("resourcequotas", NAMESPACE, "compute"), quota)
        .unwrap();

    let out = run(&sim, &["scale", "--replicas", "8"]);
    out.assert_code(1);
    // The quota's refusal is told: as the inline Warning event, or (when the ReplicaSet's
    // ReplicaFailure condition reaches the follower before the event does) in the failure.
    assert!(
        out.stderr.contains(": FailedCreate: ") && out.stderr.contains("exceeded quota"),
        "the new refusal is shown:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("old trouble"), "{}", out.stderr);

    let events: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == format!("/api/v1/namespaces/{NAMESPACE}/events"))
        .collect();
    assert!(!events.is_empty());
    for request in &events {
        assert!(
            request.query.contains("fieldSelector=type%3DWarning")
                || request
                    .query
                    .contains("fieldSelector=source%3Dcluster-autoscaler"),
            "server-side selection (Warnings, and the node autoscaler's answers): {request:?}"
        );
        // Watched from the write's resourceVersion: no list of the history at all (a list of
        // one object only where a version had to be asked for).
        let watch = request.query.contains("watch=true");
        assert!(
            watch || request.query.contains("limit=1&") || request.query.ends_with("limit=1"),
            "a list only for the current resourceVersion: {request:?}"
        );
        if watch {
            assert!(request.query.contains("resourceVersion="), "{request:?}");
        }
    }
    assert!(
        events.iter().any(|r| r.query.contains("watch=true")),
        "{events:#?}"
    );
}
