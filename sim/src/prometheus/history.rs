//! The synthetic usage history the simulated Prometheus serves: per container, a square diurnal
//! wave (quiet / busy hours) with one weekly peak day, OOMKills and other restarts at given
//! times, sampled at a scrape interval into cAdvisor's and kube-state-metrics' series.
//!
//! The curve is piecewise constant on purpose: a test can compute percentiles and peaks of it by
//! hand. Over any window of whole weeks the share of each level is the same wherever the window
//! starts (7 busy blocks of `busy_hours`, one peak block), so the numbers do not depend on the
//! time of day a test runs at.

use std::time::Duration;

const MI: f64 = 1024.0 * 1024.0;
const DAY: u64 = 86_400;

/// The three levels of the square wave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    /// Outside the busy hours.
    pub quiet: f64,
    /// In the busy hours (UTC) of ordinary days.
    pub busy: f64,
    /// In the busy hours of the weekly peak day.
    pub peak: f64,
}

/// One OOMKill of a container: `ago` before the sim started, working set `memory_bytes` at the
/// kill (scraped just before it, as cAdvisor at a short interval sees a container at its limit).
#[derive(Debug, Clone, PartialEq)]
pub struct OomKill {
    /// Index of the pod (`<pod_prefix>-<index>`).
    pub pod: usize,
    pub ago: Duration,
    pub memory_bytes: f64,
}

/// A restart of a pod's container for another reason than an OOMKill (a crash, a failed liveness
/// probe), `ago` before the sim started. Every OOMKill is a restart too; these are the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Restart {
    /// Index of the pod (`<pod_prefix>-<index>`).
    pub pod: usize,
    pub ago: Duration,
}

/// The usage of one container of a workload's pods.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerHistory {
    pub namespace: String,
    /// Pods are named `<pod_prefix>-<index>`, as a Deployment's pods start with its name.
    pub pod_prefix: String,
    pub pods: usize,
    pub container: String,
    /// CPU each pod's container uses, in cores.
    pub cpu_cores: Levels,
    /// Working set of each pod's container, in bytes.
    pub memory_bytes: Levels,
    pub oom_kills: Vec<OomKill>,
    /// Restarts besides the OOMKills.
    pub restarts: Vec<Restart>,
}

/// The whole history: how far back it reaches, the scrape interval, the busy hours, the weekly
/// peak day and the containers.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// How far back from the sim's start the series reach (7 days by default; 1 hour makes thin
    /// data).
    pub length: Duration,
    pub scrape_interval: Duration,
    /// Busy hours, UTC, `[start, end)`.
    pub busy_hours: (u32, u32),
    /// Day of the week with the peak (0 = Sunday … 6 = Saturday), UTC.
    pub peak_weekday: u32,
    pub containers: Vec<ContainerHistory>,
}

impl Default for History {
    /// The seeded world's workloads over a week: the orchestrator (3 pods) idles at 150m, works
    /// at 450m in the busy hours 09–17 UTC and peaks at 800m on Mondays, with 2 OOMKills; its
    /// log-shipper sidecar and postgres alongside.
    fn default() -> Self {
        let ns = crate::seed::NAMESPACE.to_owned();
        History {
            length: Duration::from_secs(7 * DAY),
            scrape_interval: Duration::from_secs(60),
            busy_hours: (9, 17),
            peak_weekday: 1,
            containers: vec![
                ContainerHistory {
                    namespace: ns.clone(),
                    pod_prefix: "orchestrator-6b7c9d8f5b".into(),
                    pods: 3,
                    container: "orchestrator".into(),
                    cpu_cores: Levels {
                        quiet: 0.15,
                        busy: 0.45,
                        peak: 0.8,
                    },
                    memory_bytes: Levels {
                        quiet: 600.0 * MI,
                        busy: 900.0 * MI,
                        peak: 1200.0 * MI,
                    },
                    oom_kills: vec![
                        OomKill {
                            pod: 1,
                            ago: Duration::from_secs(5 * DAY + 3600),
                            memory_bytes: 1400.0 * MI,
                        },
                        OomKill {
                            pod: 2,
                            ago: Duration::from_secs(2 * DAY),
                            memory_bytes: 1300.0 * MI,
                        },
                    ],
                    restarts: Vec::new(),
                },
                ContainerHistory {
                    namespace: ns.clone(),
                    pod_prefix: "orchestrator-6b7c9d8f5b".into(),
                    pods: 3,
                    container: "log-shipper".into(),
                    cpu_cores: Levels {
                        quiet: 0.01,
                        busy: 0.03,
                        peak: 0.04,
                    },
                    memory_bytes: Levels {
                        quiet: 40.0 * MI,
                        busy: 50.0 * MI,
                        peak: 60.0 * MI,
                    },
                    oom_kills: Vec::new(),
                    restarts: Vec::new(),
                },
                ContainerHistory {
                    namespace: ns,
                    pod_prefix: "postgres".into(),
                    pods: 1,
                    container: "postgres".into(),
                    cpu_cores: Levels {
                        quiet: 0.1,
                        busy: 0.3,
                        peak: 0.5,
                    },
                    memory_bytes: Levels {
                        quiet: 700.0 * MI,
                        busy: 900.0 * MI,
                        peak: 1100.0 * MI,
                    },
                    oom_kills: Vec::new(),
                    restarts: Vec::new(),
                },
            ],
        }
    }
}

impl History {
    /// The default history shortened to `length` (e.g. 1 hour: too thin to recommend from).
    pub fn with_length(length: Duration) -> History {
        History {
            length,
            ..History::default()
        }
    }

    /// Which level the curve is at, at unix time `t` (seconds).
    pub fn level(&self, levels: &Levels, t: u64) -> f64 {
        let hour = u32::try_from((t % DAY) / 3600).unwrap_or(0);
        // 1970-01-01 was a Thursday (4).
        let weekday = u32::try_from((t / DAY + 4) % 7).unwrap_or(0);
        let (from, to) = self.busy_hours;
        if !(from..to).contains(&hour) {
            levels.quiet
        } else if weekday == self.peak_weekday {
            levels.peak
        } else {
            levels.busy
        }
    }
}

/// One series' samples at the scrape times: `(unix seconds, value)`, ascending.
pub type Samples = Vec<(u64, f64)>;

/// The sampled series of one pod's container.
#[derive(Debug, Clone)]
pub struct PodSeries {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// `container_cpu_usage_seconds_total`: a counter of CPU seconds.
    pub cpu_seconds: Samples,
    /// `container_memory_working_set_bytes`.
    pub memory: Samples,
    /// `kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}`: 1 from the
    /// first OOMKill on (kube-state-metrics keeps the last termination's reason).
    pub oom_killed: Samples,
    /// `kube_pod_container_status_restarts_total`: a counter of the container's restarts (its
    /// OOMKills and other restarts), 0 before the first; kube-state-metrics exports it for every
    /// container.
    pub restarts_total: Samples,
}

/// Samples `history` from `start − length` to `start + extra` (so a long-running sim keeps
/// serving fresh points), at multiples of the scrape interval.
pub fn sample(history: &History, start: u64, extra: Duration) -> Vec<PodSeries> {
    let interval = history.scrape_interval.as_secs().max(1);
    let first = (start.saturating_sub(history.length.as_secs()) / interval + 1) * interval;
    let last = start + extra.as_secs();
    let mut all = Vec::new();
    for c in &history.containers {
        for index in 0..c.pods {
            let mut series = PodSeries {
                namespace: c.namespace.clone(),
                pod: pod_name(c, index),
                container: c.container.clone(),
                cpu_seconds: Vec::new(),
                memory: Vec::new(),
                oom_killed: Vec::new(),
                restarts_total: Vec::new(),
            };
            let kills: Vec<(u64, f64)> = c
                .oom_kills
                .iter()
                .filter(|k| k.pod == index)
                .map(|k| {
                    (
                        start.saturating_sub(k.ago.as_secs()) / interval * interval,
                        k.memory_bytes,
                    )
                })
                .collect();
            let restarts: Vec<u64> = kills
                .iter()
                .map(|(at, _)| *at)
                .chain(
                    c.restarts
                        .iter()
                        .filter(|r| r.pod == index)
                        .map(|r| start.saturating_sub(r.ago.as_secs()) / interval * interval),
                )
                .collect();
            let mut counter = 0.0;
            let mut t = first;
            while t <= last {
                counter += history.level(&c.cpu_cores, t) * interval as f64;
                series.cpu_seconds.push((t, counter));
                let memory = kills
                    .iter()
                    .find(|(at, _)| *at == t)
                    .map_or_else(|| history.level(&c.memory_bytes, t), |(_, m)| *m);
                series.memory.push((t, memory));
                if kills.iter().any(|(at, _)| *at <= t) {
                    series.oom_killed.push((t, 1.0));
                }
                let restarted = restarts.iter().filter(|at| **at <= t).count();
                series.restarts_total.push((t, restarted as f64));
                t += interval;
            }
            all.push(series);
        }
    }
    all
}

fn pod_name(c: &ContainerHistory, index: usize) -> String {
    // A StatefulSet's pods are `<name>-<ordinal>`; a Deployment's here `<name>-<hash>-<index>`.
    format!("{}-{index}", c.pod_prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_is_quiet_busy_or_peak_by_hour_and_weekday() {
        let h = History::default();
        let levels = Levels {
            quiet: 1.0,
            busy: 2.0,
            peak: 3.0,
        };
        // 2026-11-30 is a Monday (the peak day): 1_795_996_800 is its midnight UTC.
        let monday = 1_795_996_800;
        assert_eq!(h.level(&levels, monday + 3 * 3600), 1.0);
        assert_eq!(h.level(&levels, monday + 10 * 3600), 3.0);
        assert_eq!(h.level(&levels, monday + DAY + 10 * 3600), 2.0);
        assert_eq!(h.level(&levels, monday + DAY + 17 * 3600), 1.0);
    }

    #[test]
    fn counters_grow_by_usage_and_oomkills_show_their_peak() {
        let h = History::default();
        let start = 1_795_996_800 + 3 * DAY;
        let series = sample(&h, start, Duration::ZERO);
        let pod1 = series
            .iter()
            .find(|s| s.pod == "orchestrator-6b7c9d8f5b-1" && s.container == "orchestrator")
            .unwrap();
        let n = pod1.cpu_seconds.len();
        assert_eq!(n, 7 * 1440, "one sample a minute for a week");
        let (t0, c0) = pod1.cpu_seconds[n - 2];
        let (t1, c1) = pod1.cpu_seconds[n - 1];
        assert!(((c1 - c0) / (t1 - t0) as f64 - h.level(&h.containers[0].cpu_cores, t1)).abs() < 1e-9);
        let peak = pod1.memory.iter().map(|(_, v)| *v).fold(0.0, f64::max);
        assert_eq!(peak, 1400.0 * MI);
        assert!(!pod1.oom_killed.is_empty());
        assert_eq!(pod1.oom_killed.last().unwrap().1, 1.0);
    }

    #[test]
    fn the_restart_counter_steps_at_every_oomkill_and_restart() {
        let mut h = History::default();
        h.containers[0].restarts = vec![
            Restart {
                pod: 1,
                ago: Duration::from_secs(DAY),
            },
            Restart {
                pod: 1,
                ago: Duration::from_secs(3600),
            },
        ];
        let start = 1_795_996_800 + 3 * DAY;
        let series = sample(&h, start, Duration::ZERO);
        let of = |pod: &str, container: &str| {
            series
                .iter()
                .find(|s| s.pod == pod && s.container == container)
                .unwrap()
                .restarts_total
                .clone()
        };
        // Pod 1: its OOMKill 5 d 1 h ago, then the two restarts.
        let pod1 = of("orchestrator-6b7c9d8f5b-1", "orchestrator");
        assert_eq!(pod1.first().unwrap().1, 0.0);
        assert_eq!(pod1.last().unwrap().1, 3.0);
        let at = |t: u64| pod1.iter().find(|(s, _)| *s == t).unwrap().1;
        assert_eq!(at(start - DAY - 60), 1.0);
        assert_eq!(at(start - DAY), 2.0);
        assert!(pod1.windows(2).all(|w| w[1].1 >= w[0].1), "a counter never falls");
        // A container never restarted still has the series, at 0.
        let shipper = of("orchestrator-6b7c9d8f5b-1", "log-shipper");
        assert_eq!(shipper.len(), pod1.len());
        assert!(shipper.iter().all(|(_, v)| *v == 0.0));
    }
}
