//! `recommend`'s input: the objects' current values and the usage history, from Prometheus
//! (range queries over the window) or, without one, metrics-server samples for `--sample-for`.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec};

use super::RecommendArgs;
use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::cluster::prometheus::{Endpoint, Series, step_for};
use crate::commands::shared::selector_string;
use crate::error::Error;
use crate::plan::recommend::{
    ContainerUsage, CurrentHpa, CurrentPool, Input, OomKill, PodSeries, Points, Restarts, Source, Workload,
};
use crate::plan::resources::{ContainerResources, container_resources};
use crate::quantity::Quantity;
use crate::report::Reporter;

/// The objects `recommend` reads.
pub(crate) struct Objects<'a> {
    pub deployment: &'a Deployment,
    pub hpa: Option<&'a HorizontalPodAutoscaler>,
    pub statefulset: Option<&'a StatefulSet>,
    pub configmap: Option<&'a ConfigMap>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Containers of a pod template with their current resources.
fn containers(template: &PodTemplateSpec) -> Result<Vec<(String, ContainerResources)>, Error> {
    let spec = template.spec.as_ref();
    spec.map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| Ok((c.name.clone(), container_resources(c)?)))
        .collect()
}

/// The HPA's current range and CPU Utilization target.
fn current_hpa(hpa: &HorizontalPodAutoscaler) -> Option<CurrentHpa> {
    let spec = hpa.spec.as_ref()?;
    let cpu_target = spec.metrics.as_ref().and_then(|metrics| {
        metrics
            .iter()
            .filter_map(|m| m.resource.as_ref())
            .find(|r| r.name == "cpu" && r.target.type_ == "Utilization")
            .and_then(|r| r.target.average_utilization)
    });
    Some(CurrentHpa {
        hpa: hpa.clone(),
        object: format!(
            "horizontalpodautoscaler/{}",
            hpa.metadata.name.as_deref().unwrap_or("?")
        ),
        min: spec.min_replicas.unwrap_or(1),
        max: spec.max_replicas,
        cpu_target,
    })
}

/// A workload's containers by name with their current resources.
type Containers = Vec<(String, ContainerResources)>;

/// Everything but the usage (filled in by the source), and the deployment's and database's
/// containers.
fn skeleton(cli: &Cli, objects: &Objects<'_>) -> Result<(Input, Containers, Option<Containers>), Error> {
    let t = &cli.targets;
    let deployment_containers = containers(
        &objects
            .deployment
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default(),
    )?;
    let db_containers = match objects.statefulset {
        Some(sts) => Some(containers(
            &sts.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default(),
        )?),
        None => None,
    };
    let pool = objects.configmap.map(|cm| CurrentPool {
        object: format!("configmap/{}", t.configmap),
        key: t.config_key.clone(),
        pool: cm
            .data
            .as_ref()
            .and_then(|d| d.get(&t.config_key))
            .and_then(|yaml| crate::plan::connections::read_max_connections(yaml)),
        db_max: objects
            .statefulset
            .and_then(crate::plan::connections::db_max_connections_from),
    });
    let input = Input {
        source: Source::Prometheus { window: 0, step: 0 },
        covered: 0.0,
        deployment: Workload {
            object: format!("deployment/{}", t.deployment),
            containers: Vec::new(),
        },
        total_cpu: Vec::new(),
        database: None,
        hpa: objects.hpa.and_then(current_hpa),
        pool,
        deployment_replicas: objects
            .deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1),
    };
    Ok((input, deployment_containers, db_containers))
}

/// The input, and the Prometheus endpoint it came from (`None`: metrics-server).
///
/// # Errors
/// `--prometheus-url` not a URL (exit 2), Prometheus failing, no metrics-server either.
pub(crate) async fn input(
    cluster: &Cluster,
    cli: &Cli,
    args: &RecommendArgs,
    objects: &Objects<'_>,
    reporter: &mut Reporter,
) -> Result<(Input, Option<String>), Error> {
    let (mut input, dep_containers, db_containers) = skeleton(cli, objects)?;
    let t = &cli.targets;
    let endpoint = match &args.prometheus_url {
        Some(url) => Some(Endpoint::Url(check_url(url)?)),
        None => match cluster.find_prometheus().await? {
            Ok(found) => proxy_allowed(cluster, found, reporter).await?,
            Err(forbidden) => {
                let unread = if forbidden.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (services in {} may not be read: forbidden)",
                        forbidden.join(", ")
                    )
                };
                reporter.warn(&format!(
                    "no Prometheus found: no --prometheus-url, no prometheus-operated/prometheus-server/\
                     prometheus-k8s service{unread}"
                ));
                None
            }
        },
    };
    match &endpoint {
        Some(endpoint) => {
            let window = args.window.as_secs();
            let step = step_for(window);
            let end = unix_now();
            let range = Range {
                start: end.saturating_sub(window),
                end,
                step,
            };
            let dep_pods = format!("{}-[a-z0-9]+-[a-z0-9]+", t.deployment);
            input.deployment.containers = prometheus_usage(
                cluster,
                endpoint,
                &range,
                &cluster.namespace,
                &dep_pods,
                &dep_containers,
            )
            .await?;
            let total = format!(
                "sum(rate(container_cpu_usage_seconds_total{{namespace=\"{}\",pod=~\"{dep_pods}\",container!=\"\",container!=\"POD\"}}[{}s]))",
                cluster.namespace,
                range.rate_window()
            );
            let series = cluster
                .query_range(endpoint, &total, range.start, range.end, step)
                .await?;
            input.total_cpu = series.into_iter().next().map(|s| s.points).unwrap_or_default();
            if let Some(db) = &db_containers {
                let db_pods = format!("{}-[0-9]+", t.statefulset);
                input.database = Some(Workload {
                    object: format!("statefulset/{}", t.statefulset),
                    containers: prometheus_usage(cluster, endpoint, &range, &cluster.namespace, &db_pods, db)
                        .await?,
                });
            }
            input.covered = covered(&input);
            input.source = Source::Prometheus { window, step };
        }
        None => {
            reporter.info(&format!(
                "sampling metrics-server for {}s",
                args.sample_for.as_secs()
            ));
            let samples = sample_metrics_server(
                cluster,
                objects,
                args.sample_for,
                &dep_containers,
                db_containers.as_deref(),
            )
            .await?;
            input.deployment.containers = samples.deployment;
            input.total_cpu = samples.total;
            if let (Some(db), Some(_)) = (samples.database, objects.statefulset) {
                input.database = Some(Workload {
                    object: format!("statefulset/{}", t.statefulset),
                    containers: db,
                });
            }
            input.covered = args.sample_for.as_secs_f64();
            input.source = Source::MetricsServer {
                seconds: args.sample_for.as_secs(),
                samples: samples.count,
            };
        }
    }
    Ok((input, endpoint.map(|e| e.describe())))
}

/// The Prometheus found behind a service, unless the service proxy refuses this user (`get
/// services/proxy` is not in every operator's Role): then metrics-server is sampled instead,
/// and that is said.
async fn proxy_allowed(
    cluster: &Cluster,
    found: Endpoint,
    reporter: &mut Reporter,
) -> Result<Option<Endpoint>, Error> {
    let now = unix_now();
    let probe = format!(
        "container_memory_working_set_bytes{{namespace=\"{}\"}}",
        cluster.namespace
    );
    match cluster.query_range(&found, &probe, now, now, 60).await {
        Err(e) if e.is_forbidden() => {
            reporter.warn(&format!(
                "found Prometheus at {}, but may not reach it (forbidden: get services/proxy): give \
                 --prometheus-url, or get the permission",
                found.describe()
            ));
            Ok(None)
        }
        Err(e) => Err(e),
        Ok(_) => Ok(Some(found)),
    }
}

/// `--prometheus-url` checked before any request: an absolute http(s) URL.
///
/// # Errors
/// [`Error::Usage`] (exit 2) saying what is accepted; the URL shown without credentials.
pub(crate) fn check_url(url: &str) -> Result<String, Error> {
    let refuse = |why: &str| {
        Error::usage(
            format!("--prometheus-url {}: {why}", crate::cluster::redact::url(url)),
            "give Prometheus' base URL, e.g. --prometheus-url http://prometheus.monitoring:9090",
        )
    };
    let uri: http::Uri = url.parse().map_err(|_| refuse("not a valid URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none_or(str::is_empty) {
        return Err(refuse(
            "the URL must start with http:// or https:// and name a host",
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

struct Range {
    start: u64,
    end: u64,
    step: u64,
}

impl Range {
    /// rate() over at least 5 minutes (several scrapes), and over the whole step so no sample
    /// between two points is left out.
    fn rate_window(&self) -> u64 {
        self.step.max(300)
    }
}

/// Seconds between the oldest and the newest point of the deployment's CPU series.
fn covered(input: &Input) -> f64 {
    let times = input
        .deployment
        .containers
        .iter()
        .flat_map(|(_, u)| u.cpu.iter())
        .flat_map(|s| s.points.iter().map(|(t, _)| *t));
    let (lo, hi) = times.fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    if hi >= lo { hi - lo } else { 0.0 }
}

fn pod_series(series: Vec<Series>) -> Vec<PodSeries> {
    series
        .into_iter()
        .map(|s| PodSeries {
            pod: s.labels.get("pod").cloned().unwrap_or_default(),
            points: s.points,
        })
        .collect()
}

/// Per container: CPU rate, working-set peaks per step, OOMKills (a kube-state-metrics
/// series that appears inside the window: its first point is the kill) and restarts in the
/// window (see [`restarts`]).
async fn prometheus_usage(
    cluster: &Cluster,
    endpoint: &Endpoint,
    range: &Range,
    namespace: &str,
    pods: &str,
    containers: &[(String, ContainerResources)],
) -> Result<Vec<(ContainerResources, ContainerUsage)>, Error> {
    let mut out = Vec::new();
    for (name, resources) in containers {
        let selector = format!("{{namespace=\"{namespace}\",pod=~\"{pods}\",container=\"{name}\"}}");
        let query = async |q: String| {
            cluster
                .query_range(endpoint, &q, range.start, range.end, range.step)
                .await
        };
        let cpu = query(format!(
            "rate(container_cpu_usage_seconds_total{selector}[{}s])",
            range.rate_window()
        ))
        .await?;
        let memory = query(format!(
            "max_over_time(container_memory_working_set_bytes{selector}[{}s])",
            range.step
        ))
        .await?;
        let oom_selector = format!(
            "{{namespace=\"{namespace}\",pod=~\"{pods}\",container=\"{name}\",reason=\"OOMKilled\"}}"
        );
        let oom = query(format!(
            "kube_pod_container_status_last_terminated_reason{oom_selector}"
        ))
        .await?;
        let oom_kills = oom_kills(oom, range);
        // One point, at the window's end: the restart counter's increase over the whole window.
        let restarts = cluster
            .query_range(
                endpoint,
                &format!(
                    "increase(kube_pod_container_status_restarts_total{selector}[{}s])",
                    range.end - range.start
                ),
                range.end,
                range.end,
                range.step,
            )
            .await?;
        out.push((
            resources.clone(),
            ContainerUsage {
                container: name.clone(),
                cpu: pod_series(cpu),
                memory: pod_series(memory),
                oom_kills,
                restarts: restarts_in(restarts),
            },
        ));
    }
    Ok(out)
}

/// OOMKills from kube-state-metrics' last-terminated-reason series: a series that appears inside
/// the window was killed at its first point; one there from the window's first step was killed
/// before the window (or earlier in it than can be told) and is left out.
fn oom_kills(series: Vec<Series>, range: &Range) -> Vec<OomKill> {
    series
        .into_iter()
        .filter_map(|s| {
            let first = s.points.iter().find(|(_, v)| *v >= 1.0)?.0;
            (first > (range.start + range.step) as f64).then(|| OomKill {
                pod: s.labels.get("pod").cloned().unwrap_or_default(),
                at: first,
            })
        })
        .collect()
}

/// Restarts per pod from `increase(kube_pod_container_status_restarts_total{…}[window])`.
/// `increase()` is the function for a counter: it adds back a reset (kube-state-metrics
/// restarted, the series starting again) and counts every restart even when several fall
/// between two scrapes; `changes()` would count those as one and a reset as a change, and
/// `max_over_time()` gives the container's lifetime count, restarts before the window included.
/// Its extrapolation to the window's edges makes whole restarts read a little above a whole
/// number (2.0002 for 2 over a week), so the count is rounded.
fn restarts_in(series: Vec<Series>) -> Vec<Restarts> {
    series
        .into_iter()
        .filter_map(|s| {
            let increase = s.points.last()?.1.round();
            (increase >= 1.0).then(|| Restarts {
                pod: s.labels.get("pod").cloned().unwrap_or_default(),
                count: increase.min(f64::from(u32::MAX)) as u32,
            })
        })
        .collect()
}

struct Samples {
    deployment: Vec<(ContainerResources, ContainerUsage)>,
    database: Option<Vec<(ContainerResources, ContainerUsage)>>,
    total: Points,
    count: usize,
}

/// Adds one metrics-server reading of a workload's pods to its containers' series; returns the
/// pods' total CPU.
fn add_reading(
    usage: &mut [(ContainerResources, ContainerUsage)],
    pods: &[crate::cluster::metrics::PodUsage],
    t: f64,
) -> f64 {
    let mut total = 0.0;
    for pod in pods {
        for (name, cpu, memory) in &pod.containers {
            let cpu = Quantity::parse(cpu).map(|q| q.as_f64()).unwrap_or(0.0);
            let memory = Quantity::parse(memory).map(|q| q.as_f64()).unwrap_or(0.0);
            total += cpu;
            let Some((_, u)) = usage.iter_mut().find(|(_, u)| &u.container == name) else {
                continue;
            };
            let push =
                |series: &mut Vec<PodSeries>, v: f64| match series.iter_mut().find(|s| s.pod == pod.pod) {
                    Some(s) => s.points.push((t, v)),
                    None => series.push(PodSeries {
                        pod: pod.pod.clone(),
                        points: vec![(t, v)],
                    }),
                };
            push(&mut u.cpu, cpu);
            push(&mut u.memory, memory);
        }
    }
    total
}

fn empty_usage(containers: &[(String, ContainerResources)]) -> Vec<(ContainerResources, ContainerUsage)> {
    containers
        .iter()
        .map(|(name, r)| {
            (
                r.clone(),
                ContainerUsage {
                    container: name.clone(),
                    ..ContainerUsage::default()
                },
            )
        })
        .collect()
}

/// Reads metrics.k8s.io for the deployment's (and statefulset's) pods about every second for
/// `duration` (at least two readings).
async fn sample_metrics_server(
    cluster: &Cluster,
    objects: &Objects<'_>,
    duration: Duration,
    dep_containers: &[(String, ContainerResources)],
    db_containers: Option<&[(String, ContainerResources)]>,
) -> Result<Samples, Error> {
    let dep_selector = objects
        .deployment
        .spec
        .as_ref()
        .map(|s| selector_string(&s.selector))
        .unwrap_or_default();
    let db_selector = objects
        .statefulset
        .and_then(|s| s.spec.as_ref())
        .map(|s| selector_string(&s.selector));
    let mut samples = Samples {
        deployment: empty_usage(dep_containers),
        database: db_containers.map(empty_usage),
        total: Vec::new(),
        count: 0,
    };
    let interval = Duration::from_secs(1)
        .min(duration / 2)
        .max(Duration::from_millis(200));
    let started = Instant::now();
    loop {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let pods = match cluster.pod_metrics(&dep_selector).await? {
            Ok(pods) => pods,
            Err(why) => {
                return Err(Error::failed(
                    format!("no Prometheus and no pod metrics: {}", why.explain()),
                    "give --prometheus-url, or install metrics-server",
                ));
            }
        };
        let total = add_reading(&mut samples.deployment, &pods, t);
        samples.total.push((t, total));
        if let (Some(selector), Some(db)) = (&db_selector, samples.database.as_mut())
            && let Ok(pods) = cluster.pod_metrics(selector).await?
        {
            add_reading(db, &pods, t);
        }
        samples.count += 1;
        if started.elapsed() >= duration && samples.count >= 2 {
            break;
        }
        // Pacing between readings, not a wait for a condition.
        tokio::time::sleep(interval).await;
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(pod: &str, points: &[(f64, f64)]) -> Series {
        Series {
            labels: [("pod".to_owned(), pod.to_owned())].into_iter().collect(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn an_oomkill_is_a_series_that_appears_inside_the_window() {
        let range = Range {
            start: 1000,
            end: 5000,
            step: 100,
        };
        let kills = oom_kills(
            vec![
                series("a", &[(1000.0, 1.0), (1100.0, 1.0)]),
                series("b", &[(3000.0, 1.0), (3100.0, 1.0)]),
            ],
            &range,
        );
        assert_eq!(
            kills,
            vec![OomKill {
                pod: "b".into(),
                at: 3000.0
            }]
        );
    }

    #[test]
    fn restarts_are_the_rounded_increase_of_the_counter() {
        let restarts = restarts_in(vec![
            series("a", &[(5000.0, 2.000_198)]),
            series("b", &[(5000.0, 0.0)]),
            series("c", &[(5000.0, 0.4)]),
            series("d", &[]),
        ]);
        assert_eq!(
            restarts,
            vec![Restarts {
                pod: "a".into(),
                count: 2
            }]
        );
    }

    #[test]
    fn covered_is_the_span_of_the_cpu_points() {
        let usage = ContainerUsage {
            container: "c".into(),
            cpu: vec![
                PodSeries {
                    pod: "a".into(),
                    points: vec![(100.0, 1.0), (400.0, 1.0)],
                },
                PodSeries {
                    pod: "b".into(),
                    points: vec![(50.0, 1.0)],
                },
            ],
            ..ContainerUsage::default()
        };
        let input = Input {
            source: Source::Prometheus { window: 0, step: 0 },
            covered: 0.0,
            deployment: Workload {
                object: "deployment/x".into(),
                containers: vec![(ContainerResources::default(), usage)],
            },
            total_cpu: Vec::new(),
            database: None,
            hpa: None,
            pool: None,
            deployment_replicas: 1,
        };
        assert_eq!(covered(&input), 350.0);
    }
}
