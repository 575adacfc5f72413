//! Unit tests of `recommend` over hand-built series whose statistics are computed by hand.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use serde_json::json;

use super::*;
use crate::plan::resources::ResourceList;

const MI: f64 = 1024.0 * 1024.0;

fn list(pairs: &[(&str, &str)]) -> ResourceList {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Quantity::parse(v).unwrap()))
        .collect()
}

fn resources(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> ContainerResources {
    ContainerResources {
        requests: list(requests),
        limits: list(limits),
    }
}

/// `n` points of `value` from `t0` on, one a minute.
fn flat(t0: f64, n: usize, value: f64) -> Points {
    (0..n).map(|i| (t0 + 60.0 * i as f64, value)).collect()
}

/// Per pod, 100 points: 60 at 0.2 cores, 35 at 0.5, 5 at 0.9.
fn cpu_curve() -> Points {
    let mut points = flat(0.0, 60, 0.2);
    points.extend(flat(3600.0, 35, 0.5));
    points.extend(flat(6000.0, 5, 0.9));
    points
}

fn hpa(target: i32, min: i32, max: i32) -> CurrentHpa {
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "orchestrator"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "orchestrator"},
            "minReplicas": min, "maxReplicas": max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]
        }
    }))
    .unwrap();
    CurrentHpa {
        hpa,
        object: "horizontalpodautoscaler/orchestrator".into(),
        min,
        max,
        cpu_target: Some(target),
    }
}

fn input() -> Input {
    let pods = ["orchestrator-a", "orchestrator-b", "orchestrator-c"];
    let main = ContainerUsage {
        container: "orchestrator".into(),
        cpu: pods
            .iter()
            .map(|p| PodSeries {
                pod: (*p).into(),
                points: cpu_curve(),
            })
            .collect(),
        memory: pods
            .iter()
            .map(|p| {
                let mut points = flat(0.0, 99, 800.0 * MI);
                points.push((6000.0, 900.0 * MI));
                PodSeries {
                    pod: (*p).into(),
                    points,
                }
            })
            .collect(),
        oom_kills: Vec::new(),
        restarts: Vec::new(),
    };
    let sidecar = ContainerUsage {
        container: "log-shipper".into(),
        cpu: pods
            .iter()
            .map(|p| PodSeries {
                pod: (*p).into(),
                points: flat(0.0, 100, 0.02),
            })
            .collect(),
        memory: pods
            .iter()
            .map(|p| PodSeries {
                pod: (*p).into(),
                points: flat(0.0, 100, 50.0 * MI),
            })
            .collect(),
        oom_kills: Vec::new(),
        restarts: Vec::new(),
    };
    // The pods' total: 3 × the per-pod curve (median 0.6, peak 2.7) + 3 × 0.02 of the sidecar.
    let total: Points = cpu_curve().into_iter().map(|(t, v)| (t, 3.0 * v)).collect();
    Input {
        source: Source::Prometheus {
            window: 7 * 86_400,
            step: 300,
        },
        covered: 7.0 * 86_400.0,
        deployment: Workload {
            object: "deployment/orchestrator".into(),
            containers: vec![
                (
                    resources(
                        &[("cpu", "500m"), ("memory", "1Gi")],
                        &[("cpu", "1"), ("memory", "2Gi")],
                    ),
                    main,
                ),
                (
                    resources(&[("cpu", "50m"), ("memory", "64Mi")], &[("memory", "128Mi")]),
                    sidecar,
                ),
            ],
        },
        total_cpu: total,
        database: None,
        hpa: Some(hpa(70, 3, 10)),
        pool: Some(CurrentPool {
            object: "configmap/orchestrator-config".into(),
            key: "config.yaml".into(),
            pool: Some(20),
            db_max: Some(1000),
        }),
        deployment_replicas: 3,
    }
}

fn value(report: &Report, field: &str) -> String {
    report
        .recommendations
        .iter()
        .find(|r| r.field.text() == field)
        .unwrap_or_else(|| panic!("no proposal for {field}: {:#?}", report.recommendations))
        .recommended
        .clone()
}

const MAIN: &str = "spec.template.spec.containers[orchestrator].resources";
const SIDE: &str = "spec.template.spec.containers[log-shipper].resources";

#[test]
fn proposals_match_the_hand_computed_numbers() {
    let report = recommend(&input(), &Settings::default());
    // 300 pooled points: 180 × 0.2, 105 × 0.5, 15 × 0.9; nearest rank ceil(0.95 × 300) = 285 → 0.5.
    assert_eq!(value(&report, &format!("{MAIN}.requests.cpu")), "500m");
    // The limit keeps 1 ÷ 500m = 2×.
    assert_eq!(value(&report, &format!("{MAIN}.limits.cpu")), "1");
    // Peak 900 MiB × 1.15 = 1035 MiB, request = limit.
    assert_eq!(value(&report, &format!("{MAIN}.requests.memory")), "1035Mi");
    assert_eq!(value(&report, &format!("{MAIN}.limits.memory")), "1035Mi");
    // The sidecar: 20m; no CPU limit stays none; 50 MiB × 1.15 = 57.5 → 58 MiB.
    assert_eq!(value(&report, &format!("{SIDE}.requests.cpu")), "20m");
    assert!(
        report
            .recommendations
            .iter()
            .all(|r| r.field.text() != format!("{SIDE}.limits.cpu"))
    );
    assert_eq!(value(&report, &format!("{SIDE}.requests.memory")), "58Mi");
    // Scaling point: 70 % × (500m + 50m) = 0.385 cores per pod; new pod request 520m:
    // 0.385 / 0.52 = 74.04 → 74 %.
    assert_eq!(
        value(&report, "spec.metrics[cpu].target.averageUtilization"),
        "74"
    );
    // min: median total 0.6 / 0.385 = 1.56 → 2; max: 2.7 × 1.2 / 0.385 = 8.42 → 9.
    assert_eq!(value(&report, "spec.minReplicas"), "2");
    assert_eq!(value(&report, "spec.maxReplicas"), "9");
    // Pool: (1000 − 3) / 9 = 110.
    assert_eq!(
        value(&report, "data[\"config.yaml\"].database.max_connections"),
        "110"
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(!report.thin());
    assert_eq!(report.replicas, Some((2, 9)));
}

#[test]
fn the_target_shift_keeps_the_scaling_point() {
    for (target, old_cpu) in [(70, "500m"), (60, "1"), (80, "250m"), (50, "2")] {
        let mut input = input();
        input.deployment.containers[0]
            .0
            .requests
            .insert("cpu".into(), Quantity::parse(old_cpu).unwrap());
        input.deployment.containers.truncate(1);
        input.hpa = Some(hpa(target, 3, 10));
        let report = recommend(&input, &Settings::default());
        let new_target: f64 = value(&report, "spec.metrics[cpu].target.averageUtilization")
            .parse()
            .unwrap();
        let new_request = Quantity::parse(&value(&report, &format!("{MAIN}.requests.cpu"))).unwrap();
        let before = f64::from(target) / 100.0 * Quantity::parse(old_cpu).unwrap().as_f64();
        let after = new_target / 100.0 * new_request.as_f64();
        // The target is a whole percent: the point moves by at most half a percent of the request.
        assert!(
            (after - before).abs() <= 0.005 * new_request.as_f64() + 1e-9,
            "{target}% of {old_cpu}: {before} -> {after}"
        );
    }
}

#[test]
fn the_pool_never_exceeds_the_database_budget() {
    for db_max in [10, 100, 103, 1000, 5000] {
        for max in [1, 2, 9, 37] {
            let mut input = input();
            input.pool.as_mut().unwrap().db_max = Some(db_max);
            input.total_cpu = (0..10)
                .map(|i| (f64::from(i), 0.385 * f64::from(max) / 1.2))
                .collect();
            let report = recommend(&input, &Settings::default());
            let hpa_max: u32 = value(&report, "spec.maxReplicas").parse().unwrap();
            let pool: u32 = value(&report, "data[\"config.yaml\"].database.max_connections")
                .parse()
                .unwrap();
            assert!(
                pool * hpa_max <= db_max - 3,
                "pool {pool} × {hpa_max} > {db_max} − 3"
            );
            assert!(
                (pool + 1) * hpa_max > db_max - 3,
                "pool {pool} is not the largest"
            );
        }
    }
}

#[test]
fn memory_never_falls_below_the_last_oomkill() {
    let mut input = input();
    let main = &mut input.deployment.containers[0].1;
    main.memory[1].points.push((7000.0, 1200.0 * MI));
    main.oom_kills.push(OomKill {
        pod: "orchestrator-b".into(),
        at: 7000.0,
    });
    let report = recommend(&input, &Settings::default());
    // 1200 MiB × 1.15 = 1380 MiB.
    assert_eq!(value(&report, &format!("{MAIN}.limits.memory")), "1380Mi");
    let warning = &report.warnings[0];
    assert!(
        warning.message.contains("OOMKilled 1 time(s)"),
        "{}",
        warning.message
    );
    assert!(
        !warning.blocks_apply,
        "an OOMKill is said but does not block --apply"
    );
}

#[test]
fn thin_history_and_short_samples_block_apply() {
    let mut input = input();
    input.covered = 3600.0;
    let report = recommend(&input, &Settings::default());
    assert!(report.thin());
    assert!(
        report.warnings[0].message.contains("only 1 h of usage history"),
        "{:?}",
        report.warnings
    );

    let mut input = super::tests::input();
    input.source = Source::MetricsServer {
        seconds: 30,
        samples: 6,
    };
    input.covered = 30.0;
    let report = recommend(&input, &Settings::default());
    assert!(report.thin());
    assert!(
        report.warnings[0].message.contains("weak evidence"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn restarts_are_said_and_only_a_crash_loop_blocks_apply() {
    // 100 CPU samples per pod: 2 and 1 restarts are a caveat.
    let mut input = input();
    input.deployment.containers[0].1.restarts = vec![
        Restarts {
            pod: "orchestrator-a".into(),
            count: 2,
        },
        Restarts {
            pod: "orchestrator-c".into(),
            count: 1,
        },
    ];
    let report = recommend(&input, &Settings::default());
    let warning = report
        .warnings
        .iter()
        .find(|w| w.message.contains("restarted"))
        .unwrap_or_else(|| panic!("{:?}", report.warnings));
    assert!(
        warning.message.starts_with(
            "deployment/orchestrator container orchestrator restarted 3 time(s) in the window \
             (orchestrator-a: 2, orchestrator-c: 1;"
        ),
        "{}",
        warning.message
    );
    assert!(warning.message.contains("under-reported"), "{}", warning.message);
    assert!(!warning.blocks_apply);
    assert!(!report.thin());
    // The sidecar, never restarted, is not named.
    assert_eq!(
        report
            .warnings
            .iter()
            .filter(|w| w.message.contains("restarted"))
            .count(),
        1
    );

    // 5 restarts in 100 samples: one per 20, a crash loop.
    input.deployment.containers[1].1.restarts = vec![Restarts {
        pod: "orchestrator-b".into(),
        count: 5,
    }];
    let report = recommend(&input, &Settings::default());
    let warning = report
        .warnings
        .iter()
        .find(|w| w.message.contains("container log-shipper restarted"))
        .unwrap_or_else(|| panic!("{:?}", report.warnings));
    assert!(warning.blocks_apply);
    assert!(
        warning.message.contains(
            "crash-looping (at least 3 restarts and one per 20 samples): orchestrator-b (5 restarts in 100 samples)"
        ),
        "{}",
        warning.message
    );
    assert!(report.thin());

    // 4 in 100 is not.
    input.deployment.containers[1].1.restarts[0].count = 4;
    assert!(!recommend(&input, &Settings::default()).thin());
    // Nor are 2 restarts of a pod with only 10 samples (created late in the window): at least 3
    // are needed; 3 in 10 are a crash loop.
    input.deployment.containers[1].1.cpu[1].points.truncate(10);
    input.deployment.containers[1].1.restarts[0].count = 2;
    assert!(!recommend(&input, &Settings::default()).thin());
    input.deployment.containers[1].1.restarts[0].count = 3;
    assert!(recommend(&input, &Settings::default()).thin());
}

#[test]
fn json_gives_counts_as_integers_and_quantities_canonical() {
    let report = recommend(&input(), &Settings::default());
    let json = serde_json::to_value(&report.recommendations).unwrap();
    let find = |field: &str| {
        json.as_array()
            .unwrap()
            .iter()
            .find(|r| r["field"] == field)
            .unwrap()
            .clone()
    };
    let max = find("spec.maxReplicas");
    assert_eq!(
        (max["current"].clone(), max["recommended"].clone()),
        (json!(10), json!(9))
    );
    let memory = find(&format!("{MAIN}.requests.memory"));
    assert_eq!(
        (memory["current"].clone(), memory["recommended"].clone()),
        (json!("1Gi"), json!("1035Mi"))
    );
    assert_eq!(find(&format!("{MAIN}.limits.cpu"))["recommended"], json!("1"));
    assert_eq!(memory["evidence"]["unit"], "bytes");
}

#[test]
fn a_pool_the_database_memory_cannot_hold_is_said() {
    let mut input = input();
    let db_usage = ContainerUsage {
        container: "postgres".into(),
        cpu: vec![PodSeries {
            pod: "postgres-0".into(),
            points: flat(0.0, 100, 0.2),
        }],
        memory: vec![PodSeries {
            pod: "postgres-0".into(),
            points: flat(0.0, 100, 600.0 * MI),
        }],
        oom_kills: Vec::new(),
        restarts: Vec::new(),
    };
    input.database = Some(Workload {
        object: "statefulset/postgres".into(),
        containers: vec![(
            resources(&[("cpu", "500m"), ("memory", "1Gi")], &[("memory", "2Gi")]),
            db_usage,
        )],
    });
    // Pool 110 × 9 pods = 990 connections × 10 MiB ≈ 9.7 GiB, far above 690 MiB (600 × 1.15).
    let report = recommend(&input, &Settings::default());
    let warning = report
        .warnings
        .iter()
        .find(|w| w.message.contains("memory may not hold the pool"))
        .expect("the warning");
    assert!(warning.message.contains("990 connections"), "{}", warning.message);
    assert!(!warning.blocks_apply);
    input.pool.as_mut().unwrap().db_max = Some(12);
    let report = recommend(&input, &Settings::default());
    // (12 − 3) / 9 = 1 per pod: 9 connections × 10 MiB = 90 MiB + 600 MiB = 690 MiB ≤ 690 MiB.
    assert!(
        report
            .warnings
            .iter()
            .all(|w| !w.message.contains("memory may not hold")),
        "{:?}",
        report.warnings
    );
}
