//! What a recommendation costs or saves: the deployment's CPU and memory requests at the HPA's
//! min and max replicas, now and as proposed, and which node pool's allocatable fits the pod.

use serde::Serialize;

use super::{Recommendation, Report};
use crate::plan::FieldPath;
use crate::plan::field::ResourceKind;
use crate::plan::resources::ContainerResources;
use crate::quantity::{Quantity, format_cpu, format_memory};

/// Nodes grouped by their pool label, with one node's allocatable (the pool's largest).
#[derive(Debug, Clone, PartialEq)]
pub struct NodePool {
    pub name: String,
    pub nodes: usize,
    pub cpu: Quantity,
    pub memory: Quantity,
}

/// CPU (cores) and memory (bytes) requested.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Size {
    pub cpu: f64,
    pub memory: f64,
}

/// The cost at one replica count.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostAt {
    /// `minReplicas` or `maxReplicas`.
    pub at: &'static str,
    pub current_replicas: i32,
    pub recommended_replicas: i32,
    pub current: Size,
    pub recommended: Size,
}

/// A node pool the proposed pod fits in, and how many such pods one node holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolFit {
    pub pool: String,
    pub pods_per_node: u64,
    /// Nodes of the pool needed for maxReplicas pods (requests only, nothing else counted).
    pub nodes_at_max: u64,
    pub nodes_in_pool: usize,
}

/// `-o json`'s `cost`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub pod_current: Size,
    pub pod_recommended: Size,
    pub at: Vec<CostAt>,
    pub fits: Vec<PoolFit>,
}

fn size(containers: &[ContainerResources]) -> Size {
    let sum = |name: &str| -> f64 {
        containers
            .iter()
            .filter_map(|c| c.requests.get(name))
            .map(Quantity::as_f64)
            .sum()
    };
    Size {
        cpu: sum("cpu"),
        memory: sum("memory"),
    }
}

/// The containers' requests with the report's proposals for `object` applied.
pub fn proposed(
    object: &str,
    containers: &[(String, ContainerResources)],
    recs: &[Recommendation],
) -> Vec<ContainerResources> {
    containers
        .iter()
        .map(|(name, current)| {
            let mut after = current.clone();
            for r in recs.iter().filter(|r| r.object == object) {
                if let FieldPath::ContainerResource {
                    container,
                    kind,
                    name: resource,
                } = &r.field
                    && container == name
                    && let Ok(q) = Quantity::parse(&r.recommended)
                {
                    match kind {
                        ResourceKind::Requests => after.requests.insert(resource.clone(), q),
                        ResourceKind::Limits => after.limits.insert(resource.clone(), q),
                    };
                }
            }
            after
        })
        .collect()
}

/// The cost of the report's deployment proposals at min and max replicas.
pub fn cost(
    report: &Report,
    object: &str,
    containers: &[(String, ContainerResources)],
    current_replicas: (i32, i32),
    pools: &[NodePool],
) -> Cost {
    let current: Vec<ContainerResources> = containers.iter().map(|(_, c)| c.clone()).collect();
    let after = proposed(object, containers, &report.recommendations);
    let (pod_current, pod_recommended) = (size(&current), size(&after));
    let recommended_replicas = report.replicas.unwrap_or(current_replicas);
    let times = |s: Size, n: i32| Size {
        cpu: s.cpu * f64::from(n),
        memory: s.memory * f64::from(n),
    };
    let at = [
        ("minReplicas", current_replicas.0, recommended_replicas.0),
        ("maxReplicas", current_replicas.1, recommended_replicas.1),
    ]
    .into_iter()
    .map(|(at, now, then)| CostAt {
        at,
        current_replicas: now,
        recommended_replicas: then,
        current: times(pod_current, now),
        recommended: times(pod_recommended, then),
    })
    .collect();
    let fits = pools
        .iter()
        .filter_map(|pool| {
            let by_cpu = if pod_recommended.cpu > 0.0 {
                (pool.cpu.as_f64() / pod_recommended.cpu).floor()
            } else {
                f64::MAX
            };
            let by_memory = if pod_recommended.memory > 0.0 {
                (pool.memory.as_f64() / pod_recommended.memory).floor()
            } else {
                f64::MAX
            };
            let per_node = by_cpu.min(by_memory).min(1e6) as u64;
            (per_node >= 1).then(|| PoolFit {
                pool: pool.name.clone(),
                pods_per_node: per_node,
                nodes_at_max: u64::try_from(recommended_replicas.1.max(0))
                    .unwrap_or(0)
                    .div_ceil(per_node),
                nodes_in_pool: pool.nodes,
            })
        })
        .collect();
    Cost {
        pod_current,
        pod_recommended,
        at,
        fits,
    }
}

fn cores(v: f64) -> String {
    format_cpu(&Quantity::from_nanos((v * 1e9).round() as i128))
}

fn bytes(v: f64) -> String {
    format_memory(&Quantity::from_nanos((v * 1e9).round() as i128))
}

/// The cost as text lines.
pub fn lines(cost: &Cost) -> Vec<String> {
    let mut out = vec![format!(
        "pod requests: {} CPU, {} now -> {} CPU, {} proposed",
        cores(cost.pod_current.cpu),
        bytes(cost.pod_current.memory),
        cores(cost.pod_recommended.cpu),
        bytes(cost.pod_recommended.memory)
    )];
    for at in &cost.at {
        let delta = |now: f64, then: f64, show: fn(f64) -> String, what: &str| {
            if (then - now).abs() < 1e-9 {
                format!("same {what}")
            } else if then < now {
                format!("saves {} {what}", show(now - then))
            } else {
                format!("costs {} {what}", show(then - now))
            }
        };
        out.push(format!(
            "at {}: now {} pods = {} CPU, {}; proposed {} pods = {} CPU, {}: {}, {}",
            at.at,
            at.current_replicas,
            cores(at.current.cpu),
            bytes(at.current.memory),
            at.recommended_replicas,
            cores(at.recommended.cpu),
            bytes(at.recommended.memory),
            delta(at.current.cpu, at.recommended.cpu, cores, "CPU"),
            delta(at.current.memory, at.recommended.memory, bytes, "memory"),
        ));
    }
    if cost.fits.is_empty() {
        out.push("no node pool's allocatable fits the proposed pod".into());
    }
    for fit in &cost.fits {
        out.push(format!(
            "node pool {}: {} proposed pods per node; {} node(s) for maxReplicas ({} in the pool)",
            fit.pool, fit.pods_per_node, fit.nodes_at_max, fit.nodes_in_pool
        ));
    }
    out
}
