//! `status`: the one-screen overview, read-only.

use std::time::Duration;

use orchscale_sim::{Flavor, PodFailure};
use serde_json::Value;

use crate::harness::{
    can_send_sigint, object, real, run, sim, sim_of, sim_with_gpus, start_following, wait_ready,
};

#[test]
fn status_shows_everything_and_writes_nothing() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["status"]);
    out.assert_code(0);
    for needle in [
        "Deployment orchestrator: 3 desired",
        "ghcr.io/example/llm-orchestrator:1.8.2",
        "HPA orchestrator: min 3 max 10",
        "cpu",
        "StatefulSet postgres",
        "max_connections: 1000",
        "database.max_connections = 20",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} in:\n{}", out.stdout);
    }
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("orchestrator-"))
            .count(),
        3
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert!(sim.requests().iter().all(|r| r.method == "GET"), "only reads");
}

#[test]
fn status_json_has_the_same_data() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["status", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["command"], "status");
    assert_eq!(doc["result"], "ok");
    assert_eq!(doc["changes"], serde_json::json!([]));
    assert_eq!(doc["deployment"]["replicas"], 3);
    assert_eq!(doc["deployment"]["resources"]["requests"]["cpu"], "500m");
    assert_eq!(doc["hpa"]["min"], 3);
    assert_eq!(doc["hpa"]["max"], 10);
    assert_eq!(doc["statefulset"]["maxConnections"], 1000);
    assert_eq!(doc["poolSize"], 20);
    assert_eq!(doc["pods"].as_array().unwrap().len(), 3);
}

#[test]
fn status_in_the_wrong_namespace_fails_with_a_hint() {
    let sim = sim();
    let out = run(&sim, &["status", "-n", "default", "-o", "json"]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["result"], "failed");
    assert_eq!(doc["deployment"], serde_json::Value::Null);
    assert!(doc["error"]["hint"].as_str().unwrap().contains("-n"), "{doc}");
    assert!(sim.persisted_writes().is_empty());
}

#[test]
fn a_part_it_may_not_read_is_shown_as_forbidden_not_a_failure() {
    // Config maps are often off-limits to operators who may scale: the rest still shows, as
    // validate and db connections do with a forbidden read.
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults().deny("get", "configmaps");
    let out = run(&sim, &["status"]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("Deployment orchestrator: 3 desired"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("ConfigMap orchestrator-config: cannot read (forbidden)"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("forbidden"), "{}", out.stderr);
}

#[test]
fn status_without_permission_to_list_pods_says_so_and_shows_the_rest() {
    // SPEC: where the cluster withholds something, the command says what it could not check
    // and goes on; status is read-only and must not fail on one part.
    let sim = sim();
    sim.faults().deny("list", "pods");
    let out = run(&sim, &["status", "-o", "json"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("cannot list pods in namespace llm-orchestrator (forbidden)"),
        "{}",
        out.stderr
    );
    let doc = out.json();
    assert!(doc["deployment"].is_object(), "{doc}");
    assert!(
        doc["warnings"].as_array().is_some_and(|w| w
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("cannot list pods")))),
        "{doc}"
    );
}

/// Runs `status -o json` until a pod of the deployment has `status` (kubectl's word) and,
/// when given, `statusDetail`, and returns that pod. Bounded: the sim's kubelet moves pods
/// through their states on its own clock.
fn pod_with_status(sim: &orchscale_sim::Sim, word: &str, detail: Option<&str>) -> Value {
    for _ in 0..100 {
        let out = run(sim, &["status", "-o", "json"]);
        out.assert_code(0);
        let found = out.json()["pods"].as_array().and_then(|pods| {
            pods.iter()
                .find(|p| p["status"] == word && detail.is_none_or(|d| p["statusDetail"] == d))
                .cloned()
        });
        if let Some(pod) = found {
            return pod;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no pod became {word} {detail:?}");
}

/// Runs `status` until a pod's row contains `needle`, and returns that row. Bounded as
/// [`pod_with_status`].
fn row_with(sim: &orchscale_sim::Sim, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        let out = run(sim, &["status"]);
        out.assert_code(0);
        if let Some(row) = out
            .stdout
            .lines()
            .find(|l| l.starts_with("orchestrator-") && l.contains(needle))
        {
            return row.to_string();
        }
        last = out.stdout;
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no row with {needle:?} in:\n{last}");
}

/// Waits (bounded) until the postgres StatefulSet is rolled out and ready, so that only the
/// rollout a test starts is in progress.
fn wait_db_ready(sim: &orchscale_sim::Sim) {
    for _ in 0..200 {
        let s = object(sim, "statefulsets", "postgres");
        if s["status"]["readyReplicas"] == 1
            && s["status"]["currentRevision"] == s["status"]["updateRevision"]
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("postgres never became ready");
}

/// The STATUS words are upstream `printPod`'s (kubernetes pkg/printers/internalversion/
/// printers.go): the last container's waiting reason wins over the phase, so a crash-looping
/// pod reads CrashLoopBackOff; status adds the last termination kubectl leaves to describe.
#[test]
fn status_shows_crash_looping_pods_as_kubectl_does() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario()
        .fail_new_pods("orchestrator", PodFailure::CrashLoop);
    run(&sim, &["scale", "--replicas", "4"]).assert_code(1);
    let pod = pod_with_status(&sim, "CrashLoopBackOff", Some("exit code 1"));
    assert_eq!(pod["readyContainers"], 0, "{pod}");
    assert_eq!(
        pod["totalContainers"], 2,
        "the orchestrator and its log shipper: {pod}"
    );
    assert!(pod["restarts"].as_i64() >= Some(1), "{pod}");
    assert!(pod["ageSeconds"].is_i64(), "{pod}");
    let line = row_with(&sim, "CrashLoopBackOff");
    assert!(line.contains(" 0/2 "), "{line}");
    assert!(line.contains("CrashLoopBackOff"), "{line}");
    assert!(line.contains(" ago)"), "RESTARTS as kubectl: {line}");
}

/// A container OOM-killed and restarted is waiting in CrashLoopBackOff (that is kubectl's
/// word); its last state's reason OOMKilled is shown beside it, as `kubectl describe` has it.
#[test]
fn status_names_oom_killed_pods() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario()
        .fail_new_pods("orchestrator", PodFailure::OomKilled);
    run(&sim, &["scale", "--replicas", "4"]).assert_code(1);
    let pod = pod_with_status(&sim, "CrashLoopBackOff", Some("OOMKilled"));
    assert!(pod["restarts"].as_i64() >= Some(1), "{pod}");
    row_with(&sim, "CrashLoopBackOff (OOMKilled)");
}

/// The kubelet answers ErrImagePull after a failed pull and ImagePullBackOff while it backs
/// off (pkg/kubelet/images/image_manager.go `EnsureImageExists`); `kubectl get pods` shows
/// the word of the moment, and so does status.
#[test]
fn status_shows_image_pull_failures() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario()
        .fail_new_pods("orchestrator", PodFailure::ImagePull);
    run(&sim, &["scale", "--replicas", "4"]).assert_code(1);
    let pod = pod_with_status(&sim, "ErrImagePull", None);
    assert_eq!(pod["totalContainers"], 2, "{pod}");
    row_with(&sim, "ErrImagePull");
    pod_with_status(&sim, "ImagePullBackOff", None);
    row_with(&sim, "ImagePullBackOff");
}

/// kubectl prints an unschedulable pod's phase, Pending (printPod); the scheduler's reason
/// (PodScheduled=False, Unschedulable) is what the operator needs, so it is shown too.
#[test]
fn status_shows_unschedulable_pods_as_pending_with_the_reason() {
    let sim = sim();
    wait_ready(&sim, 3);
    run(&sim, &["scale", "--replicas", "40", "--force"]).assert_code(1);
    let pod = pod_with_status(&sim, "Pending", Some("Unschedulable"));
    assert_eq!(pod["node"], "", "{pod}");
    let row = row_with(&sim, "Pending (Unschedulable)");
    assert!(row.contains("<none>"), "NODE as kubectl prints it: {row}");
}

/// A deleted pod within its grace period is `Terminating` (printPod: deletionTimestamp set,
/// phase not terminal); it is listed under its revision but not counted as a replica.
#[test]
fn status_shows_terminating_pods_by_that_word() {
    let mut profile = real(33, Flavor::Plain);
    profile.behaviour.grace_period_cap = Some(Duration::from_secs(30));
    let sim = sim_of(profile);
    wait_ready(&sim, 3);
    run(&sim, &["scale", "--replicas", "2", "--force", "--yes"]).assert_code(0);
    let out = run(&sim, &["status"]);
    out.assert_code(0);
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("orchestrator-") && l.contains("Terminating"))
        .unwrap_or_else(|| panic!("a Terminating row in:\n{}", out.stdout));
    assert!(row.contains("node-"), "{row}");
    let doc = run(&sim, &["status", "-o", "json"]).json();
    assert_eq!(doc["pods"].as_array().map(Vec::len), Some(2), "{doc}");
    assert_eq!(
        doc["revisions"][0]["pods"].as_array().map(Vec::len),
        Some(3),
        "the revision lists its terminating pod too: {doc}"
    );
}

#[test]
fn status_groups_pods_by_revision_newest_first_and_shows_gpus() {
    // Pods asking for a GPU schedule only on nodes that have one.
    let sim = sim_with_gpus(1);
    wait_ready(&sim, 3);
    run(&sim, &["resources", "--limits", "nvidia.com/gpu=1", "--yes"]).assert_code(0);
    let out = run(&sim, &["status"]);
    out.assert_code(0);
    let header = out
        .stdout
        .lines()
        .find(|l| l.starts_with("revision 2 (current) replicaset orchestrator-"))
        .unwrap_or_else(|| panic!("the new revision's header in:\n{}", out.stdout));
    assert!(header.contains("3 desired, 3 ready"), "{header}");
    assert!(
        header.contains("changed: requests nvidia.com/gpu - -> 1, limits nvidia.com/gpu - -> 1"),
        "{header}"
    );
    assert!(out.stdout.contains("EXTENDED"), "{}", out.stdout);
    let new_set = header
        .split_whitespace()
        .nth(4)
        .and_then(|name| name.strip_suffix(':'))
        .unwrap_or_default();
    let new_pods: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{new_set}-")))
        .collect();
    assert_eq!(new_pods.len(), 3, "{}", out.stdout);
    assert!(
        new_pods.iter().all(|l| l.contains("nvidia.com/gpu=1")),
        "{}",
        out.stdout
    );
    let doc = run(&sim, &["status", "-o", "json"]).json();
    assert_eq!(doc["revisions"][0]["revision"], "2", "{doc}");
    assert_eq!(doc["revisions"][0]["current"], true, "{doc}");
    for pod in doc["pods"].as_array().unwrap() {
        assert_eq!(pod["extendedResources"]["nvidia.com/gpu"], 1, "{pod}");
        assert_eq!(pod["revision"], "2", "{pod}");
        assert_eq!(pod["status"], "Running", "{pod}");
        assert_eq!(pod["readyContainers"], 2, "{pod}");
    }
}

#[test]
fn status_watch_without_a_rollout_says_so_and_exits_0() {
    let sim = sim();
    wait_ready(&sim, 3);
    wait_db_ready(&sim);
    let out = run(&sim, &["status", "--watch"]);
    out.assert_code(0);
    assert!(out.stdout.contains("no rollout in progress"), "{}", out.stdout);
    let doc = run(&sim, &["status", "--watch", "-o", "json"]).json();
    assert_eq!(doc["rollouts"], serde_json::json!([]), "{doc}");
    assert!(sim.persisted_writes().is_empty());
}

/// `status --watch` re-attaches to a rollout another process started, judged as `kubectl
/// rollout status` judges it (kubectl/pkg/polymorphichelpers/rollout_status.go), and ends as
/// that command does: the verdict and exit 0.
#[test]
fn status_watch_follows_a_rollout_started_elsewhere_to_its_verdict() {
    let sim = sim();
    wait_ready(&sim, 3);
    wait_db_ready(&sim);
    // Slow pods, so that the rollout is still going when status --watch attaches.
    sim.scenario().set_pod_start_delay(Duration::from_millis(1500));
    let writer = start_following(&sim, &["resources", "--requests", "cpu=600m", "--yes"]);
    let out = run(&sim, &["status", "--watch"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("deployment/orchestrator (revision 2) is rolling out (started elsewhere)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout
            .contains("deployment/orchestrator rolled out: 3 of 3 pods updated, 3 ready, 3 available"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("no rollout in progress"), "{}", out.stdout);
    // After the verdict, the deployment's pods as they are now: all of the new revision.
    let (_, end) = out
        .stdout
        .split_once("deployment/orchestrator rolled out:")
        .unwrap_or_default();
    assert!(
        end.contains("revision 2 (current) replicaset orchestrator-")
            && end.contains("3 desired, 3 ready")
            && end.contains("changed: requests cpu 500m -> 600m"),
        "{end}"
    );
    assert!(
        !end.contains("StatefulSet postgres"),
        "only what was followed: {end}"
    );
    let (code, rest) = writer.finish();
    assert_eq!(code, Some(0), "{rest}");
    let writes = sim.persisted_writes();
    assert_eq!(writes.len(), 1, "only the resources command wrote: {writes:?}");
}

/// A rollout that cannot progress (a bad image) ends `status --watch` as it ends the command
/// that started it: the pods and why, exit 1.
#[test]
fn status_watch_ends_a_failing_rollout_with_exit_1() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario()
        .fail_new_pods("orchestrator", PodFailure::ImagePull);
    let writer = start_following(&sim, &["resources", "--requests", "cpu=600m", "--yes"]);
    let out = run(&sim, &["status", "--watch", "-o", "json"]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["result"], "failed", "{doc}");
    let message = doc["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("ErrImagePull") || message.contains("ImagePullBackOff"),
        "{doc}"
    );
    assert_eq!(doc["rollouts"][0]["verdict"], "failed", "{doc}");
    assert!(
        doc["error"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("status --watch changed nothing")),
        "{doc}"
    );
    let (code, rest) = writer.finish();
    assert_eq!(code, Some(1), "the writer fails the same way: {rest}");
}

/// The postgres StatefulSet's rollout is re-attached to as well (`StatefulSetStatusViewer`:
/// the update revision on every pod, all ready).
#[test]
fn status_watch_follows_a_statefulset_rollout_started_elsewhere() {
    let sim = sim();
    wait_ready(&sim, 3);
    wait_db_ready(&sim);
    sim.scenario().set_pod_start_delay(Duration::from_millis(1500));
    let writer = start_following(&sim, &["db", "resources", "--requests", "cpu=600m", "--yes"]);
    let out = run(&sim, &["status", "--watch", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["rollouts"][0]["object"], "statefulset/postgres", "{doc}");
    assert_eq!(doc["rollouts"][0]["verdict"], "complete", "{doc}");
    let revisions = doc["statefulset"]["revisions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(revisions.len(), 1, "one revision left: {doc}");
    assert_eq!(revisions[0]["current"], true, "{doc}");
    assert_eq!(doc["statefulset"]["pods"][0]["status"], "Running", "{doc}");
    let (code, rest) = writer.finish();
    assert_eq!(code, Some(0), "{rest}");
}

/// Ctrl-C while re-attached ends `status --watch` as it ends the writing commands: exit 130,
/// saying that the rollout goes on in the cluster (it changed nothing itself).
#[test]
fn status_watch_interrupted_exits_130_and_leaves_the_rollout_running() {
    if !can_send_sigint() {
        return;
    }
    let sim = sim();
    wait_ready(&sim, 3);
    wait_db_ready(&sim);
    sim.scenario().set_pod_start_delay(Duration::from_secs(120));
    let writer = start_following(&sim, &["resources", "--requests", "cpu=600m", "--yes"]);
    let watcher = start_following(&sim, &["status", "--watch"]);
    assert!(
        watcher.seen.contains("is rolling out (started elsewhere)"),
        "{}",
        watcher.seen
    );
    let (code, stderr) = watcher.interrupt();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("status --watch changed nothing"), "{stderr}");
    let (code, _) = writer.interrupt();
    assert_eq!(code, Some(130));
    assert_eq!(
        sim.persisted_writes().len(),
        1,
        "only the resources command wrote"
    );
}

/// The same pods through real kubectl (`kubectl get pods`, its STATUS and READY columns as
/// the server's printPod renders them) read as status reads them.
#[test]
fn status_words_match_kubectl_get_pods() {
    let Some(kubectl) = crate::kubectl::kubectl() else {
        crate::harness::skip_or_fail("kubectl not found on PATH");
        return;
    };
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario()
        .fail_new_pods("orchestrator", PodFailure::CrashLoop);
    run(&sim, &["scale", "--replicas", "4"]).assert_code(1);
    pod_with_status(&sim, "CrashLoopBackOff", None);
    let got = std::process::Command::new(kubectl)
        .args([
            "get",
            "pods",
            "-n",
            crate::harness::NAMESPACE,
            "-l",
            "app=orchestrator",
            "--no-headers",
        ])
        .env("KUBECONFIG", sim.kubeconfig())
        .output()
        .expect("kubectl runs");
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    let table = String::from_utf8_lossy(&got.stdout).to_string();
    let doc = run(&sim, &["status", "-o", "json"]).json();
    let pods = doc["pods"].as_array().cloned().unwrap_or_default();
    assert_eq!(pods.len(), 4, "{doc}");
    for pod in &pods {
        let name = pod["name"].as_str().unwrap_or_default();
        let columns: Vec<&str> = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in:\n{table}"))
            .split_whitespace()
            .collect();
        assert_eq!(
            columns[1],
            format!("{}/{}", pod["readyContainers"], pod["totalContainers"]),
            "READY of {name}:\n{table}\n{pod}"
        );
        assert_eq!(columns[2], pod["status"], "STATUS of {name}:\n{table}\n{pod}");
    }
}
