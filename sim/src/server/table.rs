//! `meta.k8s.io/v1` Table responses, which kubectl asks for (`Accept: …;as=Table`) to print
//! `get` output: per-kind columns as kube-apiserver's printers define them, and the full object
//! in each row (so `--show-labels` and `-L` work).

use serde_json::{Value, json};

use super::registry::ResourceInfo;
use crate::store::now_rfc3339;

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

/// Renders `items` as a Table with the list's `metadata`.
pub fn render(info: &ResourceInfo, items: &[Value], metadata: &Value) -> Value {
    let now = parse_time(&now_rfc3339()).unwrap_or(0);
    let columns = columns(info.kind);
    let definitions: Vec<Value> = columns
        .iter()
        .map(|(name, kind)| {
            let format = if *name == "Name" { "name" } else { "" };
            json!({"name": name, "type": kind, "format": format, "description": "", "priority": 0})
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|o| json!({"cells": cells(info.kind, o, now), "object": o}))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

fn columns(kind: &str) -> Vec<(&'static str, &'static str)> {
    let s = "string";
    let i = "integer";
    match kind {
        "Deployment" => vec![
            ("Name", s),
            ("Ready", s),
            ("Up-to-date", i),
            ("Available", i),
            ("Age", s),
        ],
        "ReplicaSet" => vec![
            ("Name", s),
            ("Desired", i),
            ("Current", i),
            ("Ready", i),
            ("Age", s),
        ],
        "StatefulSet" => vec![("Name", s), ("Ready", s), ("Age", s)],
        "Pod" => vec![
            ("Name", s),
            ("Ready", s),
            ("Status", s),
            ("Restarts", s),
            ("Age", s),
        ],
        "Node" => vec![
            ("Name", s),
            ("Status", s),
            ("Roles", s),
            ("Age", s),
            ("Version", s),
        ],
        "Service" => vec![
            ("Name", s),
            ("Type", s),
            ("Cluster-IP", s),
            ("External-IP", s),
            ("Port(s)", s),
            ("Age", s),
        ],
        "ConfigMap" => vec![("Name", s), ("Data", i), ("Age", s)],
        "Namespace" => vec![("Name", s), ("Status", s), ("Age", s)],
        "HorizontalPodAutoscaler" => vec![
            ("Name", s),
            ("Reference", s),
            ("Targets", s),
            ("MinPods", s),
            ("MaxPods", i),
            ("Replicas", i),
            ("Age", s),
        ],
        "Event" => vec![
            ("Last Seen", s),
            ("Type", s),
            ("Reason", s),
            ("Object", s),
            ("Message", s),
        ],
        _ => vec![("Name", s), ("Age", s)],
    }
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn cells(kind: &str, o: &Value, now: u64) -> Vec<Value> {
    let name = json!(o["metadata"]["name"]);
    let age = json!(age(&o["metadata"]["creationTimestamp"], now));
    let (spec, status) = (&o["spec"], &o["status"]);
    match kind {
        "Deployment" => vec![
            name,
            json!(format!(
                "{}/{}",
                int(&status["readyReplicas"]),
                int(&spec["replicas"])
            )),
            json!(int(&status["updatedReplicas"])),
            json!(int(&status["availableReplicas"])),
            age,
        ],
        "ReplicaSet" => vec![
            name,
            json!(int(&spec["replicas"])),
            json!(int(&status["replicas"])),
            json!(int(&status["readyReplicas"])),
            age,
        ],
        "StatefulSet" => vec![
            name,
            json!(format!(
                "{}/{}",
                int(&status["readyReplicas"]),
                int(&spec["replicas"])
            )),
            age,
        ],
        "Pod" => pod_cells(o, name, age, now),
        "Node" => {
            let ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let version = status["nodeInfo"]["kubeletVersion"].as_str().unwrap_or("");
            vec![
                name,
                json!(if ready { "Ready" } else { "NotReady" }),
                json!("<none>"),
                age,
                json!(version),
            ]
        }
        "Service" => {
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", int(&p["port"]), p["protocol"].as_str().unwrap_or("TCP")))
                .collect();
            vec![
                name,
                json!(spec["type"].as_str().unwrap_or("ClusterIP")),
                json!(spec["clusterIP"].as_str().unwrap_or("<none>")),
                json!("<none>"),
                json!(ports.join(",")),
                age,
            ]
        }
        "ConfigMap" => vec![name, json!(o["data"].as_object().map_or(0, |d| d.len())), age],
        "Namespace" => vec![name, json!(status["phase"].as_str().unwrap_or("Active")), age],
        "HorizontalPodAutoscaler" => hpa_cells(o, name, age),
        "Event" => {
            let last = if o["lastTimestamp"].is_string() {
                &o["lastTimestamp"]
            } else {
                &o["eventTime"]
            };
            let object = &o["involvedObject"];
            vec![
                json!(age_of(last, &o["metadata"]["creationTimestamp"], now)),
                json!(o["type"].as_str().unwrap_or("")),
                json!(o["reason"].as_str().unwrap_or("")),
                json!(format!(
                    "{}/{}",
                    object["kind"].as_str().unwrap_or("").to_lowercase(),
                    object["name"].as_str().unwrap_or("")
                )),
                json!(o["message"].as_str().unwrap_or("")),
            ]
        }
        _ => vec![name, age],
    }
}

fn age_of(primary: &Value, fallback: &Value, now: u64) -> String {
    if primary.is_string() {
        age(primary, now)
    } else {
        age(fallback, now)
    }
}

/// A pod's READY, STATUS and RESTARTS as kube-apiserver's printer makes them
/// (pkg/printers/internalversion/printers.go `printPod`): status.reason over the phase;
/// SchedulingGated; the first init container not done (`Init:<reason>`, `Init:ExitCode:N`,
/// `Init:x/y`; sidecars counted as containers); else the containers from last to first (a
/// waiting reason, a terminated reason or `ExitCode:N`/`Signal:N`), `Completed` beside a
/// running container read as Running/NotReady; deleted: `Unknown` for NodeLost, `Terminating`
/// unless finished. RESTARTS carries `(<age> ago)` of the latest restart.
fn pod_cells(o: &Value, name: Value, age_cell: Value, now: u64) -> Vec<Value> {
    let status = &o["status"];
    let phase = status["phase"].as_str().unwrap_or("");
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let mut reason = text(&status["reason"]).unwrap_or_else(|| phase.to_owned());
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    if conditions
        .iter()
        .any(|c| c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated")
    {
        reason = "SchedulingGated".to_owned();
    }
    let condition_true = |t: &str| conditions.iter().any(|c| c["type"] == t && c["status"] == "True");
    let init_specs = o["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let sidecar = |name: &Value| {
        init_specs
            .iter()
            .any(|c| c["name"] == *name && c["restartPolicy"] == "Always")
    };
    let total = o["spec"]["containers"].as_array().map_or(0, Vec::len)
        + init_specs
            .iter()
            .filter(|c| c["restartPolicy"] == "Always")
            .count();
    let mut ready = 0;
    let (mut restarts, mut sidecar_restarts) = (0, 0);
    let (mut last, mut sidecar_last) = (0u64, 0u64);
    let finished = |s: &Value| {
        s["lastState"]["terminated"]["finishedAt"]
            .as_str()
            .and_then(parse_time)
            .unwrap_or(0)
    };
    let mut initializing = false;
    let inits = status["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, c) in inits.iter().enumerate() {
        restarts += int(&c["restartCount"]);
        last = last.max(finished(c));
        let is_sidecar = sidecar(&c["name"]);
        if is_sidecar {
            sidecar_restarts += int(&c["restartCount"]);
            sidecar_last = sidecar_last.max(finished(c));
        }
        let terminated = &c["state"]["terminated"];
        if terminated.is_object() && int(&terminated["exitCode"]) == 0 {
            continue;
        }
        if is_sidecar && c["started"] == true {
            if c["ready"] == true {
                ready += 1;
            }
            continue;
        }
        reason = if terminated.is_object() {
            match (text(&terminated["reason"]), int(&terminated["signal"])) {
                (Some(r), _) => format!("Init:{r}"),
                (None, 0) => format!("Init:ExitCode:{}", int(&terminated["exitCode"])),
                (None, signal) => format!("Init:Signal:{signal}"),
            }
        } else {
            match text(&c["state"]["waiting"]["reason"]).filter(|r| r != "PodInitializing") {
                Some(r) => format!("Init:{r}"),
                None => format!("Init:{i}/{}", init_specs.len()),
            }
        };
        initializing = true;
        break;
    }
    if !initializing || condition_true("Initialized") {
        restarts = sidecar_restarts;
        last = sidecar_last;
        let (mut running, mut error) = (false, None);
        let statuses = status["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for c in statuses.iter().rev() {
            restarts += int(&c["restartCount"]);
            last = last.max(finished(c));
            let terminated = &c["state"]["terminated"];
            if let Some(r) = text(&c["state"]["waiting"]["reason"]) {
                reason = r;
            } else if terminated.is_object() {
                reason = match (text(&terminated["reason"]), int(&terminated["signal"])) {
                    (Some(r), _) => r,
                    (None, 0) => format!("ExitCode:{}", int(&terminated["exitCode"])),
                    (None, signal) => format!("Signal:{signal}"),
                };
                if int(&terminated["exitCode"]) != 0 {
                    error = Some(reason.clone());
                }
            } else if c["ready"] == true && c["state"]["running"].is_object() {
                running = true;
                ready += 1;
            }
        }
        if reason == "Completed" {
            if running && condition_true("Ready") {
                reason = "Running".to_owned();
            } else if let Some(e) = error {
                reason = e;
            } else if running {
                reason = "NotReady".to_owned();
            }
        }
    }
    if o["metadata"]["deletionTimestamp"].is_string() {
        if status["reason"] == "NodeLost" {
            reason = "Unknown".to_owned();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_owned();
        }
    }
    let restarts_text = if restarts != 0 && last != 0 {
        format!(
            "{restarts} ({} ago)",
            age(&json!(crate::store::rfc3339(last)), now)
        )
    } else {
        restarts.to_string()
    };
    vec![
        name,
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_text),
        age_cell,
    ]
}

fn hpa_cells(o: &Value, name: Value, age: Value) -> Vec<Value> {
    let (spec, status) = (&o["spec"], &o["status"]);
    let target = &spec["scaleTargetRef"];
    let reference = format!(
        "{}/{}",
        target["kind"].as_str().unwrap_or(""),
        target["name"].as_str().unwrap_or("")
    );
    let current = status["currentMetrics"].as_array().cloned().unwrap_or_default();
    let targets: Vec<String> = spec["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let resource = m["resource"]["name"].as_str().unwrap_or("");
            let goal = &m["resource"]["target"]["averageUtilization"];
            let now = current
                .iter()
                .find(|c| c["resource"]["name"] == resource)
                .and_then(|c| c["resource"]["current"]["averageUtilization"].as_i64())
                .map_or("<unknown>".to_owned(), |u| format!("{u}%"));
            format!("{resource}: {now}/{}%", int(goal))
        })
        .collect();
    vec![
        name,
        json!(reference),
        json!(targets.join(", ")),
        json!(spec["minReplicas"].as_i64().unwrap_or(1).to_string()),
        json!(int(&spec["maxReplicas"])),
        json!(int(&status["currentReplicas"])),
        age,
    ]
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp (`2026-11-28T07:30:00Z`, fractions ignored).
pub(crate) fn parse_time(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let n = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // days_from_civil (Howard Hinnant), the inverse of the store's formatter.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// Age as kubectl prints it (`45s`, `3m12s`, `12m`, `5h3m`, `3d`).
fn age(timestamp: &Value, now: u64) -> String {
    let Some(then) = timestamp.as_str().and_then(parse_time) else {
        return "<unknown>".to_owned();
    };
    let secs = now.saturating_sub(then);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{m}m{}s", s % 60),
        s if s < 3 * 3600 => format!("{m}m"),
        s if s < 8 * 3600 => format!("{h}h{}m", m % 60),
        s if s < 48 * 3600 => format!("{h}h"),
        s if s < 8 * 86_400 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::registry;
    use crate::store::rfc3339;

    #[test]
    fn time_parsing_inverts_the_store_formatter_and_ages_read_like_kubectl() {
        assert_eq!(parse_time(&rfc3339(1_795_000_000)), Some(1_795_000_000));
        let then = json!(rfc3339(1000));
        assert_eq!(age(&then, 1045), "45s");
        assert_eq!(age(&then, 1000 + 192), "3m12s");
        assert_eq!(age(&then, 1000 + 5 * 3600 + 180), "5h3m");
        assert_eq!(age(&then, 1000 + 10 * 86_400), "10d");
    }

    /// printPod (pkg/printers/internalversion/printers.go): the waiting reason over the phase,
    /// READY counting ready running containers, RESTARTS with the last restart's age,
    /// Terminating only while not finished.
    #[test]
    fn pod_rows_read_as_print_pod() {
        let info = registry::find("", "v1", "pods").expect("registered");
        let crash = json!({"metadata": {"name": "p", "creationTimestamp": rfc3339(1000)},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": false, "restartCount": 3,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                              "finishedAt": rfc3339(1100)}}},
                {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}]}});
        let row = cells(info.kind, &crash, 1145);
        assert_eq!(row[1], "1/2");
        assert_eq!(row[2], "CrashLoopBackOff");
        assert_eq!(row[3], "3 (45s ago)");
        let mut done = json!({"metadata": {"name": "p", "deletionTimestamp": rfc3339(1000)},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{"name": "a", "ready": false,
                "restartCount": 0, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}});
        assert_eq!(cells(info.kind, &done, 1000)[2], "Completed");
        done["status"]["phase"] = json!("Running");
        assert_eq!(cells(info.kind, &done, 1000)[2], "Terminating");
        let init = json!({"metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i", "ready": false,
                "restartCount": 0, "state": {"running": {}}}]}});
        assert_eq!(cells(info.kind, &init, 1000)[2], "Init:0/1");
    }

    #[test]
    fn deployment_rows_show_ready_over_desired() {
        let info = registry::find("apps", "v1", "deployments").expect("registered");
        let deploy = json!({"metadata": {"name": "web", "creationTimestamp": now_rfc3339()},
            "spec": {"replicas": 3}, "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let table = render(info, &[deploy], &json!({"resourceVersion": "5"}));
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["columnDefinitions"][1]["name"], "Ready");
        assert_eq!(table["rows"][0]["cells"][1], "2/3");
        assert_eq!(table["rows"][0]["object"]["metadata"]["name"], "web");
    }

    #[test]
    fn hpa_targets_show_current_and_goal() {
        let hpa = json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 3, "maxReplicas": 10,
            "metrics": [{"resource": {"name": "cpu", "target": {"averageUtilization": 70}}}]},
            "status": {"currentReplicas": 3, "currentMetrics": [{"resource": {"name": "cpu", "current": {"averageUtilization": 60}}}]}});
        let cells = hpa_cells(&hpa, json!("web"), json!("1m"));
        assert_eq!(cells[1], "Deployment/web");
        assert_eq!(cells[2], "cpu: 60%/70%");
    }
}
