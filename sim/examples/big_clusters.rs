//! Benchmark of kubectl-orchscale on big clusters (not a test; prints figures, asserts nothing):
//! starts the sim with 0 / 1,000 / 5,000 / 20,000 pods in other namespaces (`--pods N`
//! spread) and runs each plugin command and the kubectl commands it replaces side by side,
//! measuring wall time, peak RSS (`/usr/bin/time -f %M`), requests and response bytes (the
//! sim's request log), plus the sim's idle CPU and a paged list of every pod.
//!
//! Run (release builds of both):
//! `cargo build --release && cargo run --release -p orchscale-sim --example big_clusters`
//! (`-- 0,1000` for other pod counts; `ORCHSCALE_BIN` and `KUBECTL` override the binaries;
//! `BENCH_ROUNDS` (default 15) rounds per command, the median shown).
//! Prints the markdown tables of the README's "Performance on big clusters" section.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orchscale_sim::store::ObjectKey;
use orchscale_sim::{Sim, SimOptions};

const NS: &str = "llm-orchestrator";

/// One measured side: wall time, peak RSS, requests, bytes.
#[derive(Debug, Default, Clone, Copy)]
struct Cost {
    wall: Duration,
    rss_kb: u64,
    requests: usize,
    bytes: u64,
}

fn plugin_binary() -> PathBuf {
    std::env::var_os("ORCHSCALE_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/kubectl-orchscale"),
        PathBuf::from,
    )
}

fn kubectl_binary() -> PathBuf {
    std::env::var_os("KUBECTL").map_or_else(|| PathBuf::from("kubectl"), PathBuf::from)
}

/// Runs kubectl in the workload's namespace against `sim`, to put the cluster back between
/// rounds (its outcome is not measured; a failure shows in the next round's figures).
fn restore_with_kubectl(sim: &Sim, args: &[&str]) {
    let _ = Command::new(kubectl_binary())
        .args(["-n", NS])
        .args(args)
        .env("KUBECONFIG", sim.kubeconfig())
        .output();
}

/// Runs one process under `/usr/bin/time` and returns (wall, peak RSS in KiB, success).
fn timed(kubeconfig: &Path, program: &Path, args: &[&str]) -> (Duration, u64, bool) {
    let rss_file = std::env::temp_dir().join(format!("big-clusters-rss-{}", std::process::id()));
    let started = Instant::now();
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let wall = started.elapsed();
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0);
    (wall, rss, status.is_ok_and(|s| s.success()))
}

/// Runs a sequence of commands as one side of a comparison.
fn measure(sim: &Sim, program: &Path, commands: &[Vec<String>]) -> Cost {
    let (requests, bytes) = (sim.requests().len(), sim.bytes_sent());
    let mut cost = Cost::default();
    for args in commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (wall, rss, ok) = timed(sim.kubeconfig(), program, &args);
        if !ok {
            eprintln!("  (exit status not 0: {} {})", program.display(), args.join(" "));
        }
        cost.wall += wall;
        cost.rss_kb = cost.rss_kb.max(rss);
    }
    cost.requests = sim.requests().len() - requests;
    cost.bytes = sim.bytes_sent() - bytes;
    cost
}

/// The round of median wall time, with the largest peak RSS of all rounds.
fn median(mut rounds: Vec<Cost>) -> Cost {
    rounds.sort_by_key(|c| c.wall);
    let rss_kb = rounds.iter().map(|c| c.rss_kb).max().unwrap_or(0);
    let mid = rounds.get(rounds.len() / 2).copied().unwrap_or_default();
    Cost { rss_kb, ..mid }
}

fn args(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn deployment(sim: &Sim) -> serde_json::Value {
    sim.store()
        .get(&ObjectKey::new("deployments", NS, "orchestrator"))
        .unwrap_or_default()
}

/// Waits (bounded) until the orchestrator has `n` ready, updated replicas and nothing else.
fn settle(sim: &Sim, n: i64) {
    for _ in 0..600 {
        let d = deployment(sim);
        let s = &d["status"];
        if [&s["readyReplicas"], &s["updatedReplicas"], &s["replicas"]]
            .iter()
            .all(|v| v.as_i64() == Some(n))
            && s["observedGeneration"] == d["metadata"]["generation"]
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("  (the orchestrator did not settle at {n} replicas)");
}

/// The sim's CPU (this process: the sim runs in it) over `window`, in % of one core.
fn idle_cpu(window: Duration) -> f64 {
    let ticks = || -> u64 {
        std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
                Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
            })
            .unwrap_or(0)
    };
    let before = ticks();
    std::thread::sleep(window);
    // USER_HZ is 100 on Linux.
    (ticks() - before) as f64 / window.as_secs_f64()
}

struct Row {
    pods: usize,
    command: &'static str,
    plugin: Cost,
    kubectl: Cost,
}

fn kb(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / 1024.0)
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .nth(1)
        .map(|a| a.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![0, 1_000, 5_000, 20_000]);
    let (plugin, kubectl) = (plugin_binary(), kubectl_binary());
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(15);
    if !plugin.exists() {
        eprintln!(
            "no plugin at {} (cargo build --release, or set ORCHSCALE_BIN)",
            plugin.display()
        );
        std::process::exit(2);
    }
    let mut rows = Vec::new();
    let mut sim_rows = Vec::new();
    for &pods in &counts {
        eprintln!("sim with {pods} pods in other namespaces…");
        let started = Instant::now();
        let sim = Sim::start(SimOptions {
            extra_pods: pods,
            hpa_sync_period: Duration::from_secs(3600),
            ..SimOptions::default()
        })
        .expect("the sim starts");
        let startup = started.elapsed();
        settle(&sim, 3);
        std::thread::sleep(Duration::from_secs(3));
        let idle = idle_cpu(Duration::from_secs(10));
        let (list_wall, _, _) = timed(
            sim.kubeconfig(),
            &kubectl,
            &["get", "pods", "-A", "--chunk-size=500", "-o", "name"],
        );
        sim_rows.push((pods, startup, idle, list_wall));

        let mut compare = |command: &'static str, ours: &[&str], theirs: &[&str], after: &dyn Fn(&Sim)| {
            let ours: Vec<Vec<String>> = ours.iter().map(|c| args(c)).collect();
            let theirs: Vec<Vec<String>> = theirs.iter().map(|c| args(c)).collect();
            // Rounds alternate the two sides, so load on a shared machine falls on both; the
            // median round is what the table shows (a single run of a 15 ms command is noise).
            let (mut p, mut k) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                p.push(measure(&sim, &plugin, &ours));
                after(&sim);
                k.push(measure(&sim, &kubectl, &theirs));
                after(&sim);
            }
            rows.push(Row {
                pods,
                command,
                plugin: median(p),
                kubectl: median(k),
            });
        };
        let restore_replicas = |sim: &Sim| {
            restore_with_kubectl(sim, &["scale", "deployment/orchestrator", "--replicas=3"]);
            settle(sim, 3);
        };
        let restore_min = |sim: &Sim| {
            restore_with_kubectl(
                sim,
                &[
                    "patch",
                    "hpa",
                    "orchestrator",
                    "--type=merge",
                    "-p",
                    r#"{"spec":{"minReplicas":3}}"#,
                ],
            );
            // The raised minimum scaled the deployment to 4: back to 3, and the HPA's status
            // says so as its next sync would (the sync period is an hour here, so that the HPA
            // does not move the counts mid-measurement). Without this, every round after the
            // first finds 4 pods running, needs no room, and skips the capacity check.
            restore_replicas(sim);
            restore_with_kubectl(
                sim,
                &[
                    "patch",
                    "hpa",
                    "orchestrator",
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    r#"{"status":{"currentReplicas":3,"desiredReplicas":3}}"#,
                ],
            );
        };
        let restore_cpu = |sim: &Sim| {
            restore_with_kubectl(
                sim,
                &[
                    "set",
                    "resources",
                    "deployment/orchestrator",
                    "-c",
                    "orchestrator",
                    "--requests=cpu=500m",
                ],
            );
            std::thread::sleep(Duration::from_millis(200));
            settle(sim, 3);
        };
        compare(
            "status",
            &["status"],
            &[
                "-n llm-orchestrator get deployment orchestrator",
                "-n llm-orchestrator get pods -l app=orchestrator",
                "-n llm-orchestrator get hpa orchestrator",
                "-n llm-orchestrator top pods -l app=orchestrator",
            ],
            &|_| {},
        );
        compare(
            "scale --replicas 4",
            &["scale --replicas 4 --yes"],
            &[
                "-n llm-orchestrator scale deployment/orchestrator --replicas=4",
                "-n llm-orchestrator rollout status deployment/orchestrator",
                "-n llm-orchestrator get pods -l app=orchestrator",
            ],
            &restore_replicas,
        );
        compare(
            "hpa --min 4",
            &["hpa --min 4 --yes"],
            &[r#"-n llm-orchestrator patch hpa orchestrator --type=merge -p {"spec":{"minReplicas":4}}"#],
            &restore_min,
        );
        compare(
            "resources --requests cpu=600m",
            &["resources --requests cpu=600m --yes"],
            &[
                "-n llm-orchestrator set resources deployment/orchestrator -c orchestrator --requests=cpu=600m",
                "-n llm-orchestrator rollout status deployment/orchestrator",
            ],
            &restore_cpu,
        );
    }

    println!(
        "| pods elsewhere | command | wall plugin / kubectl | ratio | ratio ÷ ratio at 0 | peak RSS plugin / kubectl (MB) | requests plugin / kubectl | KB plugin / kubectl |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    let ratio = |r: &Row| r.plugin.wall.as_secs_f64() / r.kubectl.wall.as_secs_f64().max(1e-9);
    for r in &rows {
        // The issue's measure: how much a command's ratio grows with the pods elsewhere.
        let growth = rows
            .iter()
            .find(|first| first.command == r.command && first.pods == counts[0])
            .map_or(1.0, |first| ratio(r) / ratio(first).max(1e-9));
        println!(
            "| {} | `{}` | {:.1} / {:.1} ms | {:.3} | {growth:.2} | {:.1} / {:.1} | {} / {} | {} / {} |",
            r.pods,
            r.command,
            r.plugin.wall.as_secs_f64() * 1000.0,
            r.kubectl.wall.as_secs_f64() * 1000.0,
            ratio(r),
            r.plugin.rss_kb as f64 / 1024.0,
            r.kubectl.rss_kb as f64 / 1024.0,
            r.plugin.requests,
            r.kubectl.requests,
            kb(r.plugin.bytes),
            kb(r.kubectl.bytes),
        );
    }
    println!();
    println!("| pods elsewhere | sim start | sim idle CPU | `kubectl get pods -A --chunk-size=500` |");
    println!("|---:|---:|---:|---:|");
    for (pods, startup, idle, list) in &sim_rows {
        println!(
            "| {pods} | {:.1} s | {idle:.1} % | {:.0} ms |",
            startup.as_secs_f64(),
            list.as_secs_f64() * 1000.0
        );
    }
}
