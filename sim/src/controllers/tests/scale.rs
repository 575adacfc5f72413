//! A namespace with thousands of pods: the controllers must keep up and stay cheap when idle.
//! Run by hand: `cargo test -p orchscale-sim --lib scale -- --ignored --nocapture`.

use std::time::Instant;

use serde_json::json;

use super::*;

/// CPU time this process has used, from /proc (Linux only; 0 elsewhere).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().filter_map(|f| f.parse().ok()).collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the command name.
    let ticks = fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test; run by hand"]
async fn two_thousand_pods_roll_out_and_idle_cheaply() {
    let w = world(20);
    let started = Instant::now();
    let mut batch = deployment("batch", 2000, vec![container("worker", "10m", "32Mi")]);
    batch["spec"]["strategy"]["rollingUpdate"] = json!({"maxSurge": "25%", "maxUnavailable": "25%"});
    create(&w.store, "deployments", batch);
    let deadline = Instant::now() + Duration::from_secs(180);
    while !(rollout_complete(&w.store, "batch")
        && get(&w.store, "deployments", "batch")["status"]["readyReplicas"] == 2000)
    {
        assert!(Instant::now() < deadline, "2000 pods did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("2000 pods ready after {:?}", started.elapsed());
    let before = cpu_time();
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("idle CPU over 5 s: {:?}", cpu_time() - before);
    edit(&w.store, "deployments", "batch", |d| {
        d["spec"]["template"]["metadata"]["annotations"] =
            json!({"kubectl.kubernetes.io/restartedAt": "now"});
    });
    let rolled = Instant::now();
    while !(rollout_complete(&w.store, "batch")
        && get(&w.store, "deployments", "batch")["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            == "2")
    {
        assert!(
            Instant::now() < deadline + Duration::from_secs(60),
            "the restart did not complete"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("restart of 2000 pods took {:?}", rolled.elapsed());
    assert_eq!(pods_of(&w.store, "batch").len(), 2000);
}
