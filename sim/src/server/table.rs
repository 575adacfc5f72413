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
        "Pod" => pod_cells(o, name, age),
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

fn pod_cells(o: &Value, name: Value, age: Value) -> Vec<Value> {
    let statuses = o["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses.iter().filter(|s| s["ready"] == true).count();
    let restarts: i64 = statuses.iter().map(|s| int(&s["restartCount"])).sum();
    // The reason of a waiting or terminated container wins over the phase, as kubectl prints it.
    let reason = statuses
        .iter()
        .find_map(|s| {
            s["state"]["waiting"]["reason"]
                .as_str()
                .or_else(|| s["state"]["terminated"]["reason"].as_str())
        })
        .or_else(|| o["status"]["reason"].as_str())
        .or_else(|| o["status"]["phase"].as_str())
        .unwrap_or("Pending");
    let status = if o["metadata"]["deletionTimestamp"].is_string() {
        "Terminating"
    } else {
        reason
    };
    vec![
        name,
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts.to_string()),
        age,
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
