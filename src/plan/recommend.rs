//! `recommend`: from usage history to proposals, each with its reason and the data behind it.
//!
//! The rules (stated once, here and in docs/recommend.md):
//! - CPU request = the `--cpu-percentile` (default p95, nearest rank) of per-pod usage of that
//!   container over the window.
//! - Memory request = memory limit = the peak working set + `--memory-buffer` (default 15 %),
//!   never below the working set at the last OOMKill (+ buffer). Request equal to limit: memory
//!   is not compressible, a limit above the request only decides who is killed first.
//! - CPU limit: the current limit ÷ request ratio is kept (burst headroom scales with the
//!   request); a container without a CPU limit keeps none.
//! - HPA: the scaling point (target % × pod CPU request, in cores per pod) is kept; the target
//!   is re-expressed for the new request. minReplicas covers the median (off-peak) load,
//!   maxReplicas the peak load plus `headroom`, both at the scaling point; min is at least 2.
//! - Pool: the largest per-pod pool with pool × maxReplicas ≤ max_connections − reserved
//!   (`plan::connections::largest_pool`).
//! - Restarts in the window (any reason, OOMKills included) are said per container; they block
//!   `--apply` (without `--force`) only when a pod's container restarted at least
//!   [`CRASH_LOOP_MIN_RESTARTS`] times and at least once per [`CRASH_LOOP_SAMPLES`] of its
//!   samples: a crash loop, whose usage is mostly missing.

pub mod cost;
pub mod profile;
pub mod stats;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use serde::Serialize;

use super::FieldPath;
use super::field::ResourceKind;
use super::resources::ContainerResources;
use crate::quantity::{Quantity, format_cpu, format_memory};
pub use stats::Points;

/// Replicas below this are no HPA minimum: one pod is one failure away from an outage.
pub const MIN_REPLICAS_FLOOR: i32 = 2;

/// One pod's series.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSeries {
    pub pod: String,
    pub points: Points,
}

/// An OOMKill of a pod's container, at unix time `at` (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct OomKill {
    pub pod: String,
    pub at: f64,
}

/// How often a pod's container restarted in the window, for any reason (OOMKills included):
/// the increase of kube-state-metrics' `kube_pod_container_status_restarts_total`, rounded.
#[derive(Debug, Clone, PartialEq)]
pub struct Restarts {
    pub pod: String,
    pub count: u32,
}

/// A pod's container restarted at least once per this many of its usage samples in the window
/// is crash-looping (at a 6-minute step over a week, one restart every 2 hours): its usage is
/// mostly missing, so `--apply` needs `--force`. Fewer restarts are said and do not block.
pub const CRASH_LOOP_SAMPLES: usize = 20;

/// ... and at least this many times: a pod created late in the window (few samples) that
/// restarted once or twice is not a crash loop.
pub const CRASH_LOOP_MIN_RESTARTS: u32 = 3;

/// Usage of one container across a workload's pods.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerUsage {
    pub container: String,
    /// CPU in cores, per pod.
    pub cpu: Vec<PodSeries>,
    /// Working set in bytes, per pod.
    pub memory: Vec<PodSeries>,
    pub oom_kills: Vec<OomKill>,
    /// Pods whose container restarted in the window (only those with a count above 0).
    pub restarts: Vec<Restarts>,
}

/// Where the numbers come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Range queries over `window` seconds at `step` seconds.
    Prometheus { window: u64, step: u64 },
    /// metrics-server samples taken for `seconds`.
    MetricsServer { seconds: u64, samples: usize },
}

impl Source {
    fn name(&self) -> &'static str {
        match self {
            Source::Prometheus { .. } => "prometheus",
            Source::MetricsServer { .. } => "metrics-server",
        }
    }
}

/// What `recommend` weighs.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub cpu_percentile: f64,
    /// 0.15 for 15 %.
    pub memory_buffer: f64,
    /// Added to the peak load for maxReplicas: 0.2 for 20 %.
    pub hpa_headroom: f64,
    /// Less history than this is thin data (seconds).
    pub min_history: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cpu_percentile: 95.0,
            memory_buffer: 0.15,
            hpa_headroom: 0.2,
            min_history: 24 * 3600,
        }
    }
}

/// A workload as it is now and how it was used.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// `deployment/orchestrator`, `statefulset/postgres`.
    pub object: String,
    /// Each container's current resources and usage, the main container first.
    pub containers: Vec<(ContainerResources, ContainerUsage)>,
}

/// The HPA as it is now (only what `recommend` changes).
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentHpa {
    /// As read, for the utilization shift a request change alone would cause.
    pub hpa: HorizontalPodAutoscaler,
    pub object: String,
    pub min: i32,
    pub max: i32,
    /// The CPU Utilization target, percent.
    pub cpu_target: Option<i32>,
}

/// The connection pool as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentPool {
    pub object: String,
    pub key: String,
    pub pool: Option<u32>,
    /// PostgreSQL's max_connections, when the StatefulSet sets it.
    pub db_max: Option<u32>,
}

/// Everything `recommend` reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub source: Source,
    /// Seconds between the oldest and newest point seen.
    pub covered: f64,
    pub deployment: Workload,
    /// Total CPU (cores) of the deployment's pods over time, every container counted (the HPA
    /// divides the pod's usage by the sum of its containers' requests).
    pub total_cpu: Points,
    pub database: Option<Workload>,
    pub hpa: Option<CurrentHpa>,
    pub pool: Option<CurrentPool>,
    pub deployment_replicas: i32,
}

/// The data behind a proposal.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// `prometheus` or `metrics-server`.
    pub source: &'static str,
    /// Seconds of usage history the statistic was computed over.
    pub window_seconds: u64,
    /// Points the statistic was computed from.
    pub samples: usize,
    /// What was computed, e.g. `p95 of per-pod CPU usage`.
    pub statistic: String,
    /// Its value, in `unit`.
    pub value: f64,
    /// `cores`, `bytes`, `replicas`, `connections`, `percent`.
    pub unit: &'static str,
}

/// One proposal: `-o json`'s `recommendations[]` (counts and percentages as integers,
/// quantities as canonical strings, as in `changes[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// `deployment/orchestrator`.
    pub object: String,
    pub field: FieldPath,
    pub current: Option<String>,
    pub recommended: String,
    pub reason: String,
    pub evidence: Evidence,
}

/// A value of `field` for JSON: replicas, percentages and pool sizes are integers, quantities
/// their canonical text.
fn json_value(field: &FieldPath, text: &str) -> serde_json::Value {
    let count = matches!(
        field,
        FieldPath::MinReplicas
            | FieldPath::MaxReplicas
            | FieldPath::MetricUtilization { .. }
            | FieldPath::MaxConnections { .. }
    );
    match (count, text.parse::<i64>(), Quantity::parse(text)) {
        (true, Ok(n), _) => n.into(),
        (false, _, Ok(q)) => q.canonical().into(),
        _ => text.into(),
    }
}

impl Serialize for Recommendation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Recommendation", 6)?;
        s.serialize_field("object", &self.object)?;
        s.serialize_field("field", &self.field)?;
        s.serialize_field(
            "current",
            &self.current.as_deref().map(|c| json_value(&self.field, c)),
        )?;
        s.serialize_field("recommended", &json_value(&self.field, &self.recommended))?;
        s.serialize_field("reason", &self.reason)?;
        s.serialize_field("evidence", &self.evidence)?;
        s.end()
    }
}

impl Recommendation {
    /// Whether applying it changes anything (values compared as quantities where they are).
    pub fn changes(&self) -> bool {
        match (&self.current, Quantity::parse(&self.recommended)) {
            (None, _) => true,
            (Some(current), Ok(new)) => Quantity::parse(current).map_or(true, |c| c.nanos() != new.nanos()),
            (Some(current), Err(_)) => current != &self.recommended,
        }
    }
}

/// A warning about the data; `blocks_apply`: `--apply` needs `--force` because of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataWarning {
    pub message: String,
    pub blocks_apply: bool,
}

/// The result: proposals in the order `--apply` writes them (database, pool, deployment
/// resources, HPA), warnings, and the HPA values with the pod request they assume.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub recommendations: Vec<Recommendation>,
    pub warnings: Vec<DataWarning>,
    /// The recommended HPA range, for the cost at min and max replicas.
    pub replicas: Option<(i32, i32)>,
}

impl Report {
    pub fn thin(&self) -> bool {
        self.warnings.iter().any(|w| w.blocks_apply)
    }
}

fn evidence(input: &Input, samples: usize, statistic: String, value: f64, unit: &'static str) -> Evidence {
    Evidence {
        source: input.source.name(),
        window_seconds: input.covered.max(0.0).round() as u64,
        samples,
        statistic,
        value,
        unit,
    }
}

fn values(series: &[PodSeries]) -> Vec<f64> {
    series
        .iter()
        .flat_map(|s| s.points.iter().map(|(_, v)| *v))
        .collect()
}

fn resource_field(container: &str, kind: ResourceKind, name: &str) -> FieldPath {
    FieldPath::ContainerResource {
        container: container.to_owned(),
        kind,
        name: name.to_owned(),
    }
}

/// The CPU request, memory request/limit and CPU limit of one container.
fn container_proposals(
    input: &Input,
    object: &str,
    current: &ContainerResources,
    usage: &ContainerUsage,
    role: &str,
    settings: &Settings,
) -> (Vec<Recommendation>, Option<Quantity>) {
    let mut out = Vec::new();
    let name = &usage.container;
    let cpu_values = values(&usage.cpu);
    let p = settings.cpu_percentile;
    let mut new_cpu_request = None;
    if let Some(cpu) = stats::percentile(&cpu_values, p) {
        let request = stats::cpu_quantity(cpu);
        let current_request = current.requests.get("cpu");
        out.push(Recommendation {
            object: object.to_owned(),
            field: resource_field(name, ResourceKind::Requests, "cpu"),
            current: current_request.map(|q| q.text().to_owned()),
            recommended: request.text().to_owned(),
            reason: format!(
                "{role} {name}: p{p} of per-pod CPU usage is {}; a request at it covers {p} % of the \
                 time and lets the rest burst",
                format_cpu(&request)
            ),
            evidence: evidence(
                input,
                cpu_values.len(),
                format!("p{p} of per-pod CPU usage"),
                cpu,
                "cores",
            ),
        });
        // CPU limit: the current limit ÷ request ratio, kept.
        if let (Some(limit), Some(old_request)) = (current.limits.get("cpu"), current_request)
            && let Some(ratio) = limit.ratio(old_request)
        {
            let new_limit = stats::cpu_quantity(request.as_f64() * ratio);
            out.push(Recommendation {
                object: object.to_owned(),
                field: resource_field(name, ResourceKind::Limits, "cpu"),
                current: Some(limit.text().to_owned()),
                recommended: new_limit.text().to_owned(),
                reason: format!(
                    "{role} {name}: keeps the current CPU limit ÷ request ratio ({}) for the new request",
                    trim(ratio)
                ),
                evidence: evidence(
                    input,
                    cpu_values.len(),
                    "current limit ÷ request".into(),
                    ratio,
                    "ratio",
                ),
            });
        }
        new_cpu_request = Some(request);
    }
    let memory_values = values(&usage.memory);
    if let Some(peak) = stats::peak(&memory_values) {
        let oom = last_oom_peak(usage);
        let from_oom = oom.as_ref().is_some_and(|(m, _)| *m > peak);
        let (base, why) = match oom {
            Some((at_kill, pod)) if at_kill > peak => (
                at_kill,
                format!("the working set at the last OOMKill ({pod}) is {}", mib(at_kill)),
            ),
            Some((_, pod)) => (
                peak,
                format!(
                    "the peak working set is {} (at or above the last OOMKill's, {pod})",
                    mib(peak)
                ),
            ),
            None => (peak, format!("the peak working set is {}", mib(peak))),
        };
        let memory = stats::memory_quantity(base * (1.0 + settings.memory_buffer));
        let buffer = trim(settings.memory_buffer * 100.0);
        for kind in [ResourceKind::Requests, ResourceKind::Limits] {
            let current_value = match kind {
                ResourceKind::Requests => current.requests.get("memory"),
                ResourceKind::Limits => current.limits.get("memory"),
            };
            out.push(Recommendation {
                object: object.to_owned(),
                field: resource_field(name, kind, "memory"),
                current: current_value.map(|q| q.text().to_owned()),
                recommended: memory.text().to_owned(),
                reason: format!(
                    "{role} {name}: {why}; + {buffer} % = {} (request = limit: memory cannot be \
                     throttled, only OOMKilled)",
                    format_memory(&memory),
                ),
                evidence: evidence(
                    input,
                    memory_values.len(),
                    if from_oom {
                        "working set at the last OOMKill".into()
                    } else {
                        "peak working set".into()
                    },
                    base,
                    "bytes",
                ),
            });
        }
    }
    (out, new_cpu_request)
}

/// The working set of the container in the 5 minutes up to its last OOMKill, and the pod.
fn last_oom_peak(usage: &ContainerUsage) -> Option<(f64, String)> {
    let last = usage.oom_kills.iter().max_by(|a, b| a.at.total_cmp(&b.at))?;
    let series = usage.memory.iter().find(|s| s.pod == last.pod)?;
    let around: Vec<f64> = series
        .points
        .iter()
        .filter(|(t, _)| *t <= last.at + 1.0 && *t >= last.at - 300.0)
        .map(|(_, v)| *v)
        .collect();
    Some((stats::peak(&around)?, last.pod.clone()))
}

fn mib(bytes: f64) -> String {
    format!("{} MiB", trim(bytes / 1_048_576.0))
}

fn trim(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The HPA proposals: target re-expressed for the new pod CPU request, min/max from the load.
fn hpa_proposals(
    input: &Input,
    hpa: &CurrentHpa,
    old_pod_request: &Quantity,
    new_pod_request: &Quantity,
    settings: &Settings,
) -> (Vec<Recommendation>, Option<(i32, i32)>) {
    let Some(target) = hpa.cpu_target else {
        return (Vec::new(), None);
    };
    let mut out = Vec::new();
    // The scaling point: the per-pod CPU at which the HPA holds its size.
    let point = f64::from(target) / 100.0 * old_pod_request.as_f64();
    if point <= 0.0 {
        return (Vec::new(), None);
    }
    let new_target = ((point / new_pod_request.as_f64()) * 100.0).round().max(1.0) as i32;
    // What the request change alone would do to the HPA (the shift `resources` warns about).
    let shift = super::resources::utilization_shift(&hpa.hpa, &[("cpu", old_pod_request, new_pod_request)]);
    out.push(Recommendation {
        object: hpa.object.clone(),
        field: FieldPath::MetricUtilization {
            resource: "cpu".into(),
        },
        current: Some(target.to_string()),
        recommended: new_target.to_string(),
        reason: format!(
            "keeps the scaling point at {} per pod: {target} % of the pod's {} CPU request = {new_target} % \
             of the new {}{}",
            format_cpu(&stats::cpu_quantity(point)),
            format_cpu(old_pod_request),
            format_cpu(new_pod_request),
            shift.map(|s| format!(" (without it: {s})")).unwrap_or_default(),
        ),
        evidence: evidence(input, 0, "scaling point (cores per pod)".into(), point, "cores"),
    });
    let totals: Vec<f64> = input.total_cpu.iter().map(|(_, v)| *v).collect();
    let (Some(median), Some(peak)) = (stats::percentile(&totals, 50.0), stats::peak(&totals)) else {
        return (out, None);
    };
    let min = ((median / point - 1e-9).ceil() as i32).max(MIN_REPLICAS_FLOOR);
    let max = (((peak * (1.0 + settings.hpa_headroom)) / point - 1e-9).ceil() as i32).max(min);
    let headroom = trim(settings.hpa_headroom * 100.0);
    out.push(Recommendation {
        object: hpa.object.clone(),
        field: FieldPath::MinReplicas,
        current: Some(hpa.min.to_string()),
        recommended: min.to_string(),
        reason: format!(
            "the median (off-peak) load is {} in total: {} pods at the scaling point{}",
            format_cpu(&stats::cpu_quantity(median)),
            ((median / point - 1e-9).ceil() as i32).max(0),
            if min == MIN_REPLICAS_FLOOR {
                format!(", at least {MIN_REPLICAS_FLOOR}")
            } else {
                String::new()
            }
        ),
        evidence: evidence(
            input,
            totals.len(),
            "median of the pods' total CPU usage".into(),
            median,
            "cores",
        ),
    });
    out.push(Recommendation {
        object: hpa.object.clone(),
        field: FieldPath::MaxReplicas,
        current: Some(hpa.max.to_string()),
        recommended: max.to_string(),
        reason: format!(
            "the peak load is {} in total; + {headroom} % headroom = {} pods at the scaling point",
            format_cpu(&stats::cpu_quantity(peak)),
            max
        ),
        evidence: evidence(
            input,
            totals.len(),
            "peak of the pods' total CPU usage".into(),
            peak,
            "cores",
        ),
    });
    (out, Some((min, max)))
}

fn pool_proposal(input: &Input, pool: &CurrentPool, hpa_max: Option<i32>) -> Option<Recommendation> {
    let largest = super::connections::largest_pool(hpa_max, input.deployment_replicas, pool.db_max)?;
    let db_max = pool.db_max?;
    let pods = hpa_max.unwrap_or(input.deployment_replicas).max(1);
    let reserved = super::connections::SUPERUSER_RESERVED_CONNECTIONS;
    Some(Recommendation {
        object: pool.object.clone(),
        field: FieldPath::MaxConnections {
            key: pool.key.clone(),
        },
        current: pool.pool.map(|p| p.to_string()),
        recommended: largest.to_string(),
        reason: format!(
            "the largest pool per pod within the database's budget: ({db_max} max_connections − {reserved} \
             reserved) ÷ {pods} pods at maxReplicas = {largest}"
        ),
        evidence: Evidence {
            source: "cluster",
            window_seconds: 0,
            samples: 0,
            statistic: "max_connections − reserved".into(),
            value: f64::from(db_max.saturating_sub(reserved)),
            unit: "connections",
        },
    })
}

/// Warnings about the data: too little history (blocks `--apply`), a short metrics-server
/// sample (blocks), OOMKills in the window (said, does not block: the memory rule covers them),
/// restarts in the window (said; block only a crash loop, see [`restart_warning`]).
fn data_warnings(input: &Input, settings: &Settings) -> Vec<DataWarning> {
    let mut warnings = Vec::new();
    let hours = |s: f64| trim(s / 3600.0);
    match &input.source {
        Source::MetricsServer { seconds, samples } => warnings.push(DataWarning {
            message: format!(
                "no Prometheus: these numbers come from {samples} metrics-server samples over {seconds} s, \
                 which is weak evidence (one moment of the load, not its daily and weekly peaks); \
                 give --prometheus-url for history"
            ),
            blocks_apply: true,
        }),
        Source::Prometheus { window, .. } if input.covered < settings.min_history as f64 => {
            warnings.push(DataWarning {
                message: format!(
                    "thin data: Prometheus has only {} h of usage history (asked for {} h; at least {} h \
                     are needed to see a daily cycle)",
                    hours(input.covered),
                    hours(*window as f64),
                    hours(settings.min_history as f64)
                ),
                blocks_apply: true,
            });
        }
        Source::Prometheus { .. } => {}
    }
    let workloads = std::iter::once(&input.deployment).chain(input.database.as_ref());
    for workload in workloads {
        for (_, usage) in &workload.containers {
            if !usage.oom_kills.is_empty() {
                let pods: Vec<&str> = usage.oom_kills.iter().map(|k| k.pod.as_str()).collect();
                warnings.push(DataWarning {
                    message: format!(
                        "{} container {} was OOMKilled {} time(s) in the window ({}): usage restarts from \
                         zero after a kill, and the memory proposal is kept at or above the working set \
                         at the last kill",
                        workload.object,
                        usage.container,
                        pods.len(),
                        pods.join(", ")
                    ),
                    blocks_apply: false,
                });
            }
            warnings.extend(restart_warning(&workload.object, usage));
        }
    }
    if input.total_cpu.is_empty() && input.hpa.is_some() {
        warnings.push(DataWarning {
            message: "no total CPU series for the deployment's pods: the HPA range is not proposed".into(),
            blocks_apply: false,
        });
    }
    warnings
}

/// Restarts of a container in the window, said with the pods and counts. Every restart starts
/// the container's usage series again from zero (a counter's rate dips, a working set refills)
/// and a pod that keeps restarting is down, or starting, between restarts, so its usage is
/// under-reported and the proposals may be too low. A few restarts are a caveat, not a reason to
/// refuse: the warning blocks `--apply` only when some pod restarted at least
/// [`CRASH_LOOP_MIN_RESTARTS`] times and at least once per [`CRASH_LOOP_SAMPLES`] of its CPU
/// samples in the window.
fn restart_warning(object: &str, usage: &ContainerUsage) -> Option<DataWarning> {
    let total: u32 = usage.restarts.iter().map(|r| r.count).sum();
    if total == 0 {
        return None;
    }
    let per_pod: Vec<String> = usage
        .restarts
        .iter()
        .filter(|r| r.count > 0)
        .map(|r| format!("{}: {}", r.pod, r.count))
        .collect();
    let looping: Vec<String> = usage
        .restarts
        .iter()
        .filter(|r| r.count > 0)
        .filter_map(|r| {
            let samples = usage
                .cpu
                .iter()
                .find(|s| s.pod == r.pod)
                .map_or(0, |s| s.points.len());
            (r.count >= CRASH_LOOP_MIN_RESTARTS && r.count as usize * CRASH_LOOP_SAMPLES >= samples)
                .then(|| format!("{} ({} restarts in {samples} samples)", r.pod, r.count))
        })
        .collect();
    let mut message = format!(
        "{object} container {} restarted {total} time(s) in the window ({}; any reason, OOMKills \
         included): each restart starts its usage series again from zero, and a pod that keeps \
         restarting is down between restarts, so its usage is under-reported and the proposals may \
         be low",
        usage.container,
        per_pod.join(", ")
    );
    if !looping.is_empty() {
        message.push_str(&format!(
            "; crash-looping (at least {CRASH_LOOP_MIN_RESTARTS} restarts and one per \
             {CRASH_LOOP_SAMPLES} samples): {}: fix the \
             crashes before sizing from this data",
            looping.join(", ")
        ));
    }
    Some(DataWarning {
        message,
        blocks_apply: !looping.is_empty(),
    })
}

fn pod_cpu_request(containers: &[ContainerResources]) -> Quantity {
    containers
        .iter()
        .filter_map(|c| c.requests.get("cpu"))
        .fold(Quantity::zero(), |sum, q| sum.checked_add(q).unwrap_or(sum))
}

/// The proposals, in `--apply`'s order: database resources, pool, deployment resources, HPA.
pub fn recommend(input: &Input, settings: &Settings) -> Report {
    let mut recommendations = Vec::new();
    if let Some(db) = &input.database {
        for (current, usage) in &db.containers {
            let (mut proposals, _) =
                container_proposals(input, &db.object, current, usage, "database", settings);
            recommendations.append(&mut proposals);
        }
    }
    let mut deployment = Vec::new();
    let mut old_requests = Vec::new();
    let mut new_requests = Vec::new();
    for (index, (current, usage)) in input.deployment.containers.iter().enumerate() {
        let role = if index == 0 { "container" } else { "sidecar" };
        let (mut proposals, new_cpu) =
            container_proposals(input, &input.deployment.object, current, usage, role, settings);
        deployment.append(&mut proposals);
        old_requests.push(current.clone());
        let mut after = current.clone();
        if let Some(cpu) = new_cpu {
            after.requests.insert("cpu".into(), cpu);
        }
        new_requests.push(after);
    }
    let (hpa, replicas) = match &input.hpa {
        Some(hpa) => hpa_proposals(
            input,
            hpa,
            &pod_cpu_request(&old_requests),
            &pod_cpu_request(&new_requests),
            settings,
        ),
        None => (Vec::new(), None),
    };
    let hpa_max = replicas.map(|(_, max)| max).or(input.hpa.as_ref().map(|h| h.max));
    if let Some(pool) = &input.pool
        && let Some(proposal) = pool_proposal(input, pool, hpa_max)
    {
        recommendations.push(proposal);
    }
    recommendations.extend(deployment);
    recommendations.extend(hpa);
    let mut warnings = data_warnings(input, settings);
    warnings.extend(database_memory_warning(input, &recommendations, hpa_max));
    Report {
        recommendations,
        warnings,
        replicas,
    }
}

/// Memory one PostgreSQL connection may take when busy: its backend process (a few MiB) plus
/// one sort or hash at PostgreSQL's default `work_mem` (4 MiB). A rule of thumb, said as such.
const MIB_PER_CONNECTION: f64 = 10.0;

/// Whether the database's memory limit (as proposed, else as set) holds the pool at the HPA's
/// maximum: said when it does not (it never blocks; queries use less than the worst case).
fn database_memory_warning(
    input: &Input,
    recs: &[Recommendation],
    hpa_max: Option<i32>,
) -> Option<DataWarning> {
    let pool: u32 = recs
        .iter()
        .find(|r| matches!(r.field, FieldPath::MaxConnections { .. }))
        .and_then(|r| r.recommended.parse().ok())
        .or(input.pool.as_ref()?.pool)?;
    let db = input.database.as_ref()?;
    let (current, usage) = db.containers.first()?;
    let proposed = recs.iter().find(|r| {
        r.object == db.object && r.field == resource_field(&usage.container, ResourceKind::Limits, "memory")
    });
    let limit = match proposed {
        Some(r) => Quantity::parse(&r.recommended).ok()?,
        None => current.limits.get("memory")?.clone(),
    };
    let pods = hpa_max.unwrap_or(input.deployment_replicas).max(1);
    let connections = f64::from(pool) * f64::from(pods);
    let needed = connections * MIB_PER_CONNECTION * 1_048_576.0;
    let peak = stats::peak(&values(&usage.memory)).unwrap_or(0.0);
    (needed + peak > limit.as_f64()).then(|| DataWarning {
        message: format!(
            "the database's memory may not hold the pool: {pool} connections per pod × {pods} pods = {} \
             connections at about {} MiB each when busy (a backend plus the default work_mem) need {}, \
             on top of its peak working set of {}, within a memory limit of {}; lower the pool or raise \
             the database's memory",
            connections as u64,
            trim(MIB_PER_CONNECTION),
            mib(needed),
            mib(peak),
            format_memory(&limit)
        ),
        blocks_apply: false,
    })
}

#[cfg(test)]
mod tests;
