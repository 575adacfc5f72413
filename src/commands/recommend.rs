//! `recommend`: reads usage history (Prometheus, else a metrics-server sample), proposes
//! resources, the HPA range and target and the pool size (`plan::recommend`), shows them with
//! their reasons, evidence and cost, and with `--apply` writes them: the proposals become a
//! `ScalingProfile` (`plan::recommend::profile`) applied by the profile apply (one preview, one
//! prompt, ordered steps each followed and verified, one application `undo` reverts as one).

mod gather;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use serde::Serialize;

use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::commands::profile::{Application, StepDoc, run_application};
use crate::error::Error;
use crate::plan::recommend::cost::{self, Cost, NodePool};
use crate::plan::recommend::profile::recommended_profile;
use crate::plan::recommend::{self as plan, DataWarning, Recommendation, Settings, Source};
use crate::report::Reporter;

/// `recommend`'s flags.
#[derive(Debug, clap::Args)]
pub struct RecommendArgs {
    /// How much usage history to read from Prometheus (`7d`, `24h`, `2w`)
    #[arg(long, default_value = "7d", value_parser = parse_window, value_name = "DURATION")]
    pub window: Duration,
    /// Prometheus' base URL [default: a prometheus-operated / prometheus-server service found in
    /// the cluster, reached through the API server's service proxy]
    #[arg(long, value_name = "URL")]
    pub prometheus_url: Option<String>,
    /// Percentile of per-pod CPU usage the CPU request covers
    #[arg(long, default_value_t = 95.0, value_parser = parse_percentile, value_name = "P")]
    pub cpu_percentile: f64,
    /// Added to the peak working set for the memory request and limit (`15%` or `15`)
    #[arg(long, default_value = "15%", value_parser = parse_percent, value_name = "PCT")]
    pub memory_buffer: f64,
    /// Without Prometheus: how long to sample metrics-server (weak evidence; said so)
    #[arg(long, default_value = "30s", value_parser = crate::cli::parse_duration, value_name = "DURATION")]
    pub sample_for: Duration,
    /// Write the proposals as `apply -f` writes a profile: database, pool, deployment resources,
    /// HPA; one preview, one prompt, each step followed; one `undo` reverts them all
    #[arg(long)]
    pub apply: bool,
    /// With --apply: apply even when the data is thin (short history, a metrics-server sample,
    /// a crash-looping container)
    #[arg(long)]
    pub force: bool,
}

/// `7d`, `2w`, `24h`, `90m`: days and weeks on top of the other durations.
fn parse_window(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    for (unit, seconds) in [("w", 604_800u64), ("d", 86_400)] {
        if let Some(n) = text.strip_suffix(unit)
            && let Ok(n) = n.parse::<u64>()
        {
            return (n > 0)
                .then(|| Duration::from_secs(n * seconds))
                .ok_or_else(|| "the window must be longer than 0".into());
        }
    }
    let window = crate::cli::parse_duration(text)?;
    if window.as_secs() < 60 {
        return Err("the window must be at least 1m".into());
    }
    Ok(window)
}

fn parse_percentile(text: &str) -> Result<f64, String> {
    let p: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("invalid percentile {text:?}: give a number, e.g. 95"))?;
    if !(p > 0.0 && p <= 100.0) {
        return Err(format!("percentile {text}: must be above 0 and at most 100"));
    }
    Ok(p)
}

fn parse_percent(text: &str) -> Result<f64, String> {
    let pct: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("invalid percentage {text:?}: e.g. 15%"))?;
    if !(0.0..=1000.0).contains(&pct) {
        return Err(format!("percentage {text}: must be between 0% and 1000%"));
    }
    Ok(pct / 100.0)
}

/// Checks the flags before any request (a bad `--prometheus-url` is exit 2, nothing sent).
///
/// # Errors
/// [`Error::Usage`] for a `--prometheus-url` that is not an absolute http(s) URL.
pub fn check(args: &RecommendArgs) -> Result<(), Error> {
    if let Some(url) = &args.prometheus_url {
        gather::check_url(url)?;
    }
    Ok(())
}

/// The JSON document's own fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    source: SourceJson,
    recommendations: &'a [Recommendation],
    data_warnings: &'a [DataWarning],
    cost: &'a Cost,
    applied: bool,
    /// With --apply: the profile apply's steps and their verdicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<Vec<StepDoc>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SourceJson {
    kind: &'static str,
    endpoint: Option<String>,
    window_seconds: u64,
    covered_seconds: u64,
    step_seconds: Option<u64>,
    samples: Option<usize>,
}

/// # Errors
/// The deployment missing, Prometheus unreachable or refusing a query, API errors; with
/// `--apply`, thin data without `--force` (exit 2) and whatever the writes fail with.
pub async fn run(
    cluster: &Cluster,
    cli: &Cli,
    args: &RecommendArgs,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let t = &cli.targets;
    let deployment: Deployment = cluster
        .get(
            &t.deployment,
            "check the namespace (-n) and the name (--deployment)",
        )
        .await?;
    let hpa: Option<HorizontalPodAutoscaler> = cluster.get_opt(&t.hpa).await?;
    let statefulset: Option<StatefulSet> = cluster.get_opt(&t.statefulset).await?;
    let configmap: Option<ConfigMap> = cluster.get_opt(&t.configmap).await?;
    let pools = match cluster.list_cluster::<Node>().await {
        Ok(nodes) => node_pools(&nodes),
        Err(e) if e.is_forbidden() => {
            reporter.warn("cannot list nodes (forbidden): which node pool fits the proposed pod is not said");
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let objects = gather::Objects {
        deployment: &deployment,
        hpa: hpa.as_ref(),
        statefulset: statefulset.as_ref(),
        configmap: configmap.as_ref(),
    };
    let (input, endpoint) = gather::input(cluster, cli, args, &objects, reporter).await?;
    let settings = Settings {
        cpu_percentile: args.cpu_percentile,
        memory_buffer: args.memory_buffer,
        ..Settings::default()
    };
    let report = plan::recommend(&input, &settings);
    let containers: Vec<(String, crate::plan::resources::ContainerResources)> = input
        .deployment
        .containers
        .iter()
        .map(|(resources, usage)| (usage.container.clone(), resources.clone()))
        .collect();
    let current_range = input
        .hpa
        .as_ref()
        .map_or((input.deployment_replicas, input.deployment_replicas), |h| {
            (h.min, h.max)
        });
    let cost = cost::cost(
        &report,
        &input.deployment.object,
        &containers,
        current_range,
        &pools,
    );

    for warning in &report.warnings {
        reporter.warn(&warning.message);
    }
    reporter.out(&text(&input, endpoint.as_deref(), &report, &cost));

    let dry_run = cli.global.dry_run;
    if !args.apply {
        let doc = document(&input, endpoint, &report, &cost, false, None);
        reporter.set_document("recommend", dry_run, &[], true, doc);
        return Ok(());
    }
    if report.thin() && !args.force {
        let doc = document(&input, endpoint, &report, &cost, false, None);
        reporter.set_document("recommend", dry_run, &[], false, doc);
        return Err(Error::usage(
            "recommend --apply: the data is too thin to act on (see the warnings above); nothing was written",
            "gather more history (a longer --window once Prometheus has it), fix a crash-looping \
             container first, or add --force to apply anyway",
        ));
    }
    let Some(recommended) = recommended_profile(
        &report.recommendations,
        &input.deployment.object,
        &format!("statefulset/{}", t.statefulset),
        &t.db_container,
    ) else {
        reporter.out("nothing to apply: there is no proposal");
        let doc = document(&input, endpoint, &report, &cost, !dry_run, None);
        reporter.set_document("recommend", dry_run, &[], true, doc);
        return Ok(());
    };
    let application = Application {
        profile: &recommended.profile,
        command: "recommend --apply".into(),
        // The pool is sized to the recommended maxReplicas: the pool guard can only fire for
        // the current, larger maximum until the HPA step; a warning in the preview (as
        // `recommend --apply` always had it), not a refusal. A recommendation sets no replica
        // count, the other thing `force` allows.
        force: true,
        rollback_on_failure: false,
        warnings: recommended.left_out,
    };
    let applied = run_application(cluster, cli, &application, reporter).await?;
    let ok = applied.failure.is_none();
    let doc = document(
        &input,
        endpoint,
        &report,
        &cost,
        ok && !dry_run,
        Some(applied.steps),
    );
    reporter.set_document("recommend", dry_run, &applied.changes, ok, doc);
    match applied.failure {
        Some(failure) => Err(failure),
        None => {
            if !dry_run && !applied.changes.is_empty() {
                reporter.out("`kubectl orchscale undo` reverts all of it, as one");
            }
            Ok(())
        }
    }
}

fn document<'a>(
    input: &plan::Input,
    endpoint: Option<String>,
    report: &'a plan::Report,
    cost: &'a Cost,
    applied: bool,
    steps: Option<Vec<StepDoc>>,
) -> Document<'a> {
    let (kind, window, step, samples) = match &input.source {
        Source::Prometheus { window, step } => ("prometheus", *window, Some(*step), None),
        Source::MetricsServer { seconds, samples } => ("metrics-server", *seconds, None, Some(*samples)),
    };
    Document {
        source: SourceJson {
            kind,
            endpoint,
            window_seconds: window,
            covered_seconds: input.covered.max(0.0).round() as u64,
            step_seconds: step,
            samples,
        },
        recommendations: &report.recommendations,
        data_warnings: &report.warnings,
        cost,
        applied,
        steps,
    }
}

fn hours(seconds: f64) -> String {
    if seconds >= 86_400.0 {
        format!("{:.1} days", seconds / 86_400.0)
    } else if seconds >= 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{} s", seconds.round())
    }
}

fn text(input: &plan::Input, endpoint: Option<&str>, report: &plan::Report, cost: &Cost) -> String {
    let mut lines = Vec::new();
    lines.push(match &input.source {
        Source::Prometheus { window, step } => format!(
            "Usage from Prometheus at {}: {} of history (window {}, step {step}s)",
            endpoint.unwrap_or("?"),
            hours(input.covered),
            hours(*window as f64)
        ),
        Source::MetricsServer { seconds, samples } => {
            format!("Usage from metrics-server: {samples} samples over {seconds} s")
        }
    });
    for r in &report.recommendations {
        let current = r.current.as_deref().unwrap_or("(unset)");
        let mark = if r.changes() { "" } else { "  (unchanged)" };
        lines.push(format!(
            "\n{} {}: {current} -> {}{mark}",
            r.object, r.field, r.recommended
        ));
        lines.push(format!("  {}", r.reason));
    }
    lines.push("\nCost (requests of the deployment's pods):".into());
    lines.extend(cost::lines(cost).into_iter().map(|l| format!("  {l}")));
    lines.join("\n")
}

/// The label that names a node's pool on the common platforms, else its instance type.
const POOL_LABELS: [&str; 6] = [
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "karpenter.sh/nodepool",
    "kubernetes.azure.com/agentpool",
    "agentpool",
    "node.kubernetes.io/instance-type",
];

/// Nodes grouped by pool, each pool with its largest node's allocatable.
fn node_pools(nodes: &[Node]) -> Vec<NodePool> {
    use crate::quantity::Quantity;
    let mut pools: Vec<NodePool> = Vec::new();
    for node in nodes {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let name = POOL_LABELS
            .iter()
            .find_map(|l| labels.get(*l).cloned())
            .unwrap_or_else(|| "default".into());
        let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        let amount = |r: &str| {
            allocatable
                .and_then(|a| a.get(r))
                .and_then(|q| Quantity::try_from(q).ok())
                .unwrap_or_else(Quantity::zero)
        };
        let (cpu, memory) = (amount("cpu"), amount("memory"));
        match pools.iter_mut().find(|p| p.name == name) {
            Some(pool) => {
                pool.nodes += 1;
                if cpu.nanos() > pool.cpu.nanos() {
                    pool.cpu = cpu;
                }
                if memory.nanos() > pool.memory.nanos() {
                    pool.memory = memory;
                }
            }
            None => pools.push(NodePool {
                name,
                nodes: 1,
                cpu,
                memory,
            }),
        }
    }
    pools
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_as_documented() {
        assert_eq!(parse_window("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_window("2w").unwrap(), Duration::from_secs(14 * 86_400));
        assert_eq!(parse_window("24h").unwrap(), Duration::from_secs(86_400));
        assert!(parse_window("0d").is_err());
        assert!(parse_window("10s").is_err());
        assert_eq!(parse_percent("15%").unwrap(), 0.15);
        assert_eq!(parse_percent("20").unwrap(), 0.2);
        assert!(parse_percent("-5%").is_err());
        assert_eq!(parse_percentile("95").unwrap(), 95.0);
        assert!(parse_percentile("0").is_err());
        assert!(parse_percentile("101").is_err());
    }

    #[test]
    fn nodes_group_by_their_pool_label() {
        let node = |name: &str, labels: serde_json::Value, cpu: &str| -> Node {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "labels": labels},
                "status": {"allocatable": {"cpu": cpu, "memory": "16Gi"}}
            }))
            .unwrap()
        };
        let pools = node_pools(&[
            node(
                "a",
                serde_json::json!({"cloud.google.com/gke-nodepool": "gpu"}),
                "8",
            ),
            node(
                "b",
                serde_json::json!({"cloud.google.com/gke-nodepool": "gpu"}),
                "16",
            ),
            node("c", serde_json::json!({}), "4"),
        ]);
        assert_eq!(pools.len(), 2);
        assert_eq!((pools[0].name.as_str(), pools[0].nodes), ("gpu", 2));
        assert_eq!(pools[0].cpu.as_f64(), 16.0, "the pool's largest node");
        assert_eq!(pools[1].name, "default");
    }
}
