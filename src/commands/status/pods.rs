//! The pods of `status`, grouped by revision (a Deployment's ReplicaSets, a StatefulSet's
//! controller revisions) newest first, each pod as `kubectl get pods` shows it: the table and
//! the JSON `pods` / `revisions`.
//!
//! Pure: built from listed objects and a clock, so that tests need no server.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::commands::shared::PodRow;
use crate::health::{self, REVISION_ANNOTATION};
use crate::plan::connections::RESTARTED_AT;
use crate::pod_status::{self, PodStatus};
use crate::quantity::{Quantity, format_cpu, format_memory};

/// One pod of the view.
#[derive(Debug, Clone)]
pub(crate) struct PodView {
    pub(crate) name: String,
    pub(crate) state: PodStatus,
    /// Ready condition True (what `scale` and `resources` count).
    pub(crate) ready: bool,
    /// Neither terminating nor finished: one of the workload's replicas.
    pub(crate) live: bool,
    pub(crate) created: Option<Timestamp>,
    pub(crate) age_seconds: Option<i64>,
    pub(crate) node: String,
    pub(crate) cpu: Option<Quantity>,
    pub(crate) memory: Option<Quantity>,
    /// Extended resources requested, e.g. `nvidia.com/gpu` = 1.
    pub(crate) extended: BTreeMap<String, i64>,
}

impl PodView {
    /// The view of `pod` at `now`, with the usage of its row (live pods have one).
    pub(crate) fn new(pod: &Pod, rows: &[PodRow], now: Timestamp) -> PodView {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let row = rows.iter().find(|r| r.name == name);
        PodView {
            state: pod_status::pod_status(pod),
            ready: health::pod_ready(pod),
            live: health::is_live(pod),
            created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
            age_seconds: pod_status::age_seconds(pod, now),
            node: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default(),
            cpu: row.and_then(|r| r.cpu.clone()),
            memory: row.and_then(|r| r.memory.clone()),
            extended: pod_status::extended_requests(pod),
            name,
        }
    }
}

/// What a revision's pod template runs, to say what changed between two revisions.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TemplateFacts {
    pub(crate) image: Option<String>,
    pub(crate) resources: Option<ResourceRequirements>,
    pub(crate) restarted_at: Option<String>,
}

impl TemplateFacts {
    fn of(annotations: Option<&BTreeMap<String, String>>, containers: &[Container], container: &str) -> Self {
        let c = containers.iter().find(|c| c.name == container);
        TemplateFacts {
            image: c.and_then(|c| c.image.clone()),
            resources: c.and_then(|c| c.resources.clone()),
            restarted_at: annotations.and_then(|a| a.get(RESTARTED_AT)).cloned(),
        }
    }

    /// What differs from `older`, in words: `image a -> b`, `requests cpu 500m -> 1`,
    /// `restarted`.
    fn changes_from(&self, older: &TemplateFacts) -> Vec<String> {
        let mut out = Vec::new();
        if self.image != older.image {
            out.push(format!(
                "image {} -> {}",
                older.image.as_deref().unwrap_or("-"),
                self.image.as_deref().unwrap_or("-")
            ));
        }
        out.extend(resource_changes(
            older.resources.as_ref(),
            self.resources.as_ref(),
        ));
        if self.restarted_at != older.restarted_at {
            out.push("restarted (kubectl rollout restart)".to_string());
        }
        if out.is_empty() {
            out.push("pod template".to_string());
        }
        out
    }
}

/// Each request and limit that differs: `requests cpu 500m -> 600m`, `-` where unset.
fn resource_changes(
    older: Option<&ResourceRequirements>,
    newer: Option<&ResourceRequirements>,
) -> Vec<String> {
    type Side = Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>;
    let sides = |r: Option<&ResourceRequirements>| -> (Side, Side) {
        (
            r.and_then(|r| r.requests.clone()),
            r.and_then(|r| r.limits.clone()),
        )
    };
    let (old_requests, old_limits) = sides(older);
    let (new_requests, new_limits) = sides(newer);
    let mut out = Vec::new();
    for (label, old, new) in [
        ("requests", old_requests, new_requests),
        ("limits", old_limits, new_limits),
    ] {
        let (old, new) = (old.unwrap_or_default(), new.unwrap_or_default());
        let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for name in names {
            let (before, after) = (old.get(name).map(|q| &q.0), new.get(name).map(|q| &q.0));
            if before != after {
                out.push(format!(
                    "{label} {name} {} -> {}",
                    before.map_or("-", String::as_str),
                    after.map_or("-", String::as_str)
                ));
            }
        }
    }
    out
}

/// The pods of one revision.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// The Deployment revision (`3`) or the StatefulSet controller revision's name.
    pub(crate) revision: Option<String>,
    /// The ReplicaSet of a Deployment revision.
    pub(crate) replica_set: Option<String>,
    /// The revision the workload rolls to (the new ReplicaSet, the update revision).
    pub(crate) current: bool,
    pub(crate) facts: TemplateFacts,
    /// What changed from the next older revision shown (none for the oldest).
    pub(crate) changed: Vec<String>,
    /// The ReplicaSet's spec.replicas (none for a StatefulSet revision).
    pub(crate) desired: Option<i32>,
    pub(crate) pods: Vec<PodView>,
}

impl Group {
    fn ready(&self) -> usize {
        self.pods.iter().filter(|p| p.live && p.ready).count()
    }
}

fn revision_number(rs: &ReplicaSet) -> Option<i64> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)?
        .parse()
        .ok()
}

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a String> {
    pod.metadata.labels.as_ref()?.get(key)
}

/// Fills in what changed between each group and the next older one.
fn mark_changes(groups: &mut [Group]) {
    for i in 0..groups.len() {
        if let Some(older) = groups.get(i + 1).map(|g| g.facts.clone()) {
            groups[i].changed = groups[i].facts.changes_from(&older);
        }
    }
}

/// The Deployment's pods grouped by ReplicaSet, newest revision first. A ReplicaSet scaled to
/// 0 without pods left is an old revision and is left out, except the current one. Pods no
/// listed ReplicaSet owns (ReplicaSets unreadable) are grouped by their pod-template-hash.
pub(crate) fn deployment_groups(
    revision: Option<&str>,
    sets: &[ReplicaSet],
    pods: Vec<PodView>,
    raw: &[Pod],
    container: &str,
) -> Vec<Group> {
    let mut sets: Vec<&ReplicaSet> = sets.iter().collect();
    sets.sort_by_key(|rs| std::cmp::Reverse(revision_number(rs)));
    let hash_of = |rs: &ReplicaSet| {
        rs.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-template-hash"))
            .cloned()
    };
    let pod_hash: BTreeMap<String, Option<String>> = raw
        .iter()
        .map(|p| {
            (
                p.metadata.name.clone().unwrap_or_default(),
                label(p, "pod-template-hash").cloned(),
            )
        })
        .collect();
    let mut left: Vec<PodView> = pods;
    // Every ReplicaSet, newest first, with its pods; old ones without pods are dropped only
    // after each revision has been compared with the one before it.
    let mut all: Vec<(bool, Group)> = Vec::new();
    for rs in sets {
        let hash = hash_of(rs);
        let (mine, rest): (Vec<PodView>, Vec<PodView>) = left
            .into_iter()
            .partition(|p| hash.is_some() && pod_hash.get(&p.name).cloned().flatten() == hash);
        left = rest;
        let rev = rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION))
            .cloned();
        let current = revision.is_some() && rev.as_deref() == revision;
        let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let shown = !mine.is_empty() || desired != 0 || current;
        let template = rs.spec.as_ref().and_then(|s| s.template.as_ref());
        let facts = TemplateFacts::of(
            template
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.annotations.as_ref()),
            template
                .and_then(|t| t.spec.as_ref())
                .map_or(&[][..], |s| &s.containers[..]),
            container,
        );
        all.push((
            shown,
            Group {
                revision: rev,
                replica_set: rs.metadata.name.clone(),
                current,
                facts,
                changed: Vec::new(),
                desired: Some(desired),
                pods: sorted(mine),
            },
        ));
    }
    let mut sets_only: Vec<Group> = all.iter().map(|(_, g)| g.clone()).collect();
    mark_changes(&mut sets_only);
    let mut groups: Vec<Group> = all
        .into_iter()
        .zip(sets_only)
        .filter(|((shown, _), _)| *shown)
        .map(|(_, g)| g)
        .collect();
    // Pods of no listed ReplicaSet, by template hash.
    let mut by_hash: BTreeMap<String, Vec<PodView>> = BTreeMap::new();
    for p in left {
        let hash = pod_hash.get(&p.name).cloned().flatten().unwrap_or_default();
        by_hash.entry(hash).or_default().push(p);
    }
    for (hash, pods) in by_hash {
        groups.push(Group {
            revision: None,
            replica_set: (!hash.is_empty()).then(|| format!("(pod-template-hash {hash})")),
            current: false,
            facts: facts_of_pods(&pods, raw, container),
            changed: Vec::new(),
            desired: None,
            pods: sorted(pods),
        });
    }
    groups
}

/// The facts of a group from its first pod's spec.
fn facts_of_pods(pods: &[PodView], raw: &[Pod], container: &str) -> TemplateFacts {
    pods.first()
        .and_then(|p| raw.iter().find(|r| r.metadata.name.as_deref() == Some(&p.name)))
        .map(|pod| {
            TemplateFacts::of(
                pod.metadata.annotations.as_ref(),
                pod.spec.as_ref().map_or(&[][..], |s| &s.containers[..]),
                container,
            )
        })
        .unwrap_or_default()
}

fn sorted(mut pods: Vec<PodView>) -> Vec<PodView> {
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    pods
}

/// The StatefulSet's pods grouped by `controller-revision-hash`: the update revision first,
/// then the current one, then any other.
pub(crate) fn statefulset_groups(
    sts: &StatefulSet,
    pods: Vec<PodView>,
    raw: &[Pod],
    container: &str,
) -> Vec<Group> {
    let status = sts.status.as_ref();
    let update = status.and_then(|s| s.update_revision.clone());
    let current = status.and_then(|s| s.current_revision.clone());
    let mut by_revision: BTreeMap<String, Vec<PodView>> = BTreeMap::new();
    for p in pods {
        let revision = raw
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(&p.name))
            .and_then(|r| label(r, "controller-revision-hash").cloned())
            .unwrap_or_default();
        by_revision.entry(revision).or_default().push(p);
    }
    let rank = |revision: &str| {
        if Some(revision) == update.as_deref() {
            0
        } else if Some(revision) == current.as_deref() {
            1
        } else {
            2
        }
    };
    let mut entries: Vec<(String, Vec<PodView>)> = by_revision.into_iter().collect();
    entries.sort_by_key(|(revision, _)| (rank(revision), revision.clone()));
    let mut groups: Vec<Group> = entries
        .into_iter()
        .map(|(revision, pods)| Group {
            current: Some(revision.as_str()) == update.as_deref(),
            facts: facts_of_pods(&pods, raw, container),
            revision: (!revision.is_empty()).then_some(revision),
            replica_set: None,
            changed: Vec::new(),
            desired: None,
            pods: sorted(pods),
        })
        .collect();
    mark_changes(&mut groups);
    groups
}

/// The header line of a group: `revision 3 (current) replicaset orchestrator-7c9f: 2
/// desired, 0 ready; image …; changed: …`.
fn group_header(kind: &str, g: &Group) -> String {
    let mut out = match &g.revision {
        Some(rev) => format!("revision {rev}"),
        None => "revision unknown".to_string(),
    };
    if g.current {
        out.push_str(if kind == "deployment" {
            " (current)"
        } else {
            " (update revision)"
        });
    }
    if let Some(rs) = &g.replica_set {
        out.push_str(&format!(" replicaset {rs}"));
    }
    let ready = g.ready();
    match g.desired {
        Some(desired) => out.push_str(&format!(": {desired} desired, {ready} ready")),
        None => out.push_str(&format!(
            ": {} pod{}, {ready} ready",
            g.pods.len(),
            if g.pods.len() == 1 { "" } else { "s" }
        )),
    }
    if let Some(image) = &g.facts.image {
        out.push_str(&format!("; image {image}"));
    }
    if !g.changed.is_empty() {
        out.push_str(&format!("; changed: {}", g.changed.join(", ")));
    }
    out
}

/// The groups as one table (columns aligned across groups), a header line before each
/// group's pods. The extended-resources column appears only when a pod requests one.
pub(crate) fn table(kind: &str, groups: &[Group], now: Timestamp) -> String {
    let pods: Vec<&PodView> = groups.iter().flat_map(|g| g.pods.iter()).collect();
    if groups.is_empty() || pods.is_empty() && groups.iter().all(|g| g.desired.unwrap_or(0) == 0) {
        return "  (no pods)".to_string();
    }
    let extended = pods.iter().any(|p| !p.extended.is_empty());
    let cells = |p: &PodView| -> Vec<String> {
        let mut row = vec![
            p.name.clone(),
            format!("{}/{}", p.state.ready_containers, p.state.total_containers),
            p.state.status_text(),
            p.state.restarts_text(now),
            pod_status::age_text(p.age_seconds),
            if p.node.is_empty() {
                "<none>".to_string()
            } else {
                p.node.clone()
            },
            p.cpu.as_ref().map(format_cpu).unwrap_or_else(|| "-".into()),
            p.memory.as_ref().map(format_memory).unwrap_or_else(|| "-".into()),
        ];
        if extended {
            row.push(pod_status::extended_text(&p.extended));
        }
        row
    };
    let mut header: Vec<String> = [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE", "CPU", "MEMORY",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    if extended {
        header.push("EXTENDED".to_string());
    }
    let rows: Vec<Vec<String>> = pods.iter().map(|p| cells(p)).collect();
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[String]| {
        row.iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(&header)];
    let mut rows = rows.into_iter();
    for g in groups {
        out.push(group_header(kind, g));
        for _ in &g.pods {
            if let Some(row) = rows.next() {
                out.push(line(&row));
            }
        }
    }
    out.join("\n")
}

/// One pod in the JSON document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodJson {
    name: String,
    /// Ready condition True.
    ready: bool,
    ready_containers: usize,
    total_containers: usize,
    /// kubectl's STATUS word.
    status: String,
    /// What that word hides (Unschedulable, OOMKilled, exit code N), else null.
    status_detail: Option<String>,
    restarts: i32,
    /// RFC 3339 time of the last restart, else null.
    last_restart_at: Option<String>,
    created_at: Option<String>,
    age_seconds: Option<i64>,
    node: String,
    cpu: Option<String>,
    memory: Option<String>,
    /// Extended resources requested, by name (`nvidia.com/gpu`: 1).
    extended_resources: BTreeMap<String, i64>,
    /// The revision the pod belongs to (Deployment revision, StatefulSet controller revision).
    revision: Option<String>,
    replica_set: Option<String>,
}

impl PodJson {
    fn of(p: &PodView, g: &Group) -> Self {
        PodJson {
            name: p.name.clone(),
            ready: p.ready,
            ready_containers: p.state.ready_containers,
            total_containers: p.state.total_containers,
            status: p.state.status.clone(),
            status_detail: p.state.detail.clone(),
            restarts: p.state.restarts,
            last_restart_at: p.state.last_restart.map(|t| t.to_string()),
            created_at: p.created.map(|t| t.to_string()),
            age_seconds: p.age_seconds,
            node: p.node.clone(),
            cpu: p.cpu.as_ref().map(Quantity::canonical),
            memory: p.memory.as_ref().map(Quantity::canonical),
            extended_resources: p.extended.clone(),
            revision: g.revision.clone(),
            replica_set: g.replica_set.clone(),
        }
    }
}

/// One revision in the JSON document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RevisionJson {
    revision: Option<String>,
    replica_set: Option<String>,
    current: bool,
    image: Option<String>,
    /// What changed from the next older revision listed.
    changed: Vec<String>,
    /// The ReplicaSet's desired replicas (null for a StatefulSet revision).
    desired: Option<i32>,
    /// Live pods Ready.
    ready: usize,
    /// Every pod of the revision, terminating and finished ones included.
    pods: Vec<String>,
}

/// The live pods (the workload's replicas) of every group, with their revision.
pub(crate) fn pods_json(groups: &[Group]) -> Vec<PodJson> {
    let mut out: Vec<PodJson> = groups
        .iter()
        .flat_map(|g| g.pods.iter().filter(|p| p.live).map(move |p| PodJson::of(p, g)))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub(crate) fn revisions_json(groups: &[Group]) -> Vec<RevisionJson> {
    groups
        .iter()
        .map(|g| RevisionJson {
            revision: g.revision.clone(),
            replica_set: g.replica_set.clone(),
            current: g.current,
            image: g.facts.image.clone(),
            changed: g.changed.clone(),
            desired: g.desired,
            ready: g.ready(),
            pods: g.pods.iter().map(|p| p.name.clone()).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn now() -> Timestamp {
        "2026-01-01T01:00:00Z".parse().unwrap()
    }

    fn rs(name: &str, revision: &str, hash: &str, replicas: i32, image: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"pod-template-hash": hash},
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"replicas": replicas, "selector": {},
                     "template": {"spec": {"containers": [{"name": "orchestrator", "image": image}]}}}
        }))
        .unwrap()
    }

    fn pod(name: &str, hash: &str, status: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"pod-template-hash": hash},
                         "creationTimestamp": "2026-01-01T00:58:00Z"},
            "spec": {"nodeName": "node-a", "containers": [{"name": "orchestrator", "image": "x",
                     "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
            "status": status
        }))
        .unwrap()
    }

    fn running() -> Value {
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [{"name": "orchestrator", "image": "x", "imageID": "",
               "ready": true, "restartCount": 0, "state": {"running": {}}}]})
    }

    fn pulling() -> Value {
        json!({"phase": "Pending", "containerStatuses": [{"name": "orchestrator", "image": "x",
               "imageID": "", "ready": false, "restartCount": 0,
               "state": {"waiting": {"reason": "ErrImagePull"}}}]})
    }

    #[test]
    fn pods_are_grouped_by_replicaset_newest_revision_first() {
        let sets = vec![
            rs("orchestrator-old", "1", "aaa", 0, "app:1.8.1"),
            rs("orchestrator-58dd", "2", "bbb", 2, "app:1.8.2"),
            rs("orchestrator-7c9f", "3", "ccc", 1, "app:1.9.0"),
        ];
        let raw = vec![
            pod("orchestrator-58dd-a", "bbb", running()),
            pod("orchestrator-58dd-b", "bbb", running()),
            pod("orchestrator-7c9f-a", "ccc", pulling()),
        ];
        let views = raw.iter().map(|p| PodView::new(p, &[], now())).collect();
        let groups = deployment_groups(Some("3"), &sets, views, &raw, "orchestrator");
        assert_eq!(groups.len(), 2, "revision 1 has no pods and is scaled to 0");
        assert_eq!(
            groups[1].changed,
            ["image app:1.8.1 -> app:1.8.2"],
            "compared with the hidden revision before it"
        );
        assert_eq!(groups[0].revision.as_deref(), Some("3"));
        assert!(groups[0].current);
        assert_eq!(groups[0].changed, ["image app:1.8.2 -> app:1.9.0"]);
        assert_eq!(groups[1].pods.len(), 2);
        let text = table("deployment", &groups, now());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{text}");
        assert!(lines[0].ends_with("EXTENDED"), "{text}");
        assert!(
            lines[1].starts_with(
                "revision 3 (current) replicaset orchestrator-7c9f: 1 desired, 0 ready; image app:1.9.0"
            ),
            "{text}"
        );
        assert!(lines[2].starts_with("orchestrator-7c9f-a"), "{text}");
        assert!(lines[2].contains(" 0/1 "), "{text}");
        assert!(lines[2].contains("ErrImagePull"), "{text}");
        assert!(lines[2].contains("2m"), "AGE: {text}");
        assert!(lines[2].contains("nvidia.com/gpu=1"), "{text}");
        assert!(lines[3].starts_with("revision 2 replicaset orchestrator-58dd: 2 desired, 2 ready"));
        let pods = serde_json::to_value(pods_json(&groups)).unwrap();
        assert_eq!(pods[2]["status"], "ErrImagePull");
        assert_eq!(pods[2]["revision"], "3");
        assert_eq!(pods[2]["readyContainers"], 0);
        assert_eq!(pods[2]["ageSeconds"], 120);
        assert_eq!(pods[2]["extendedResources"]["nvidia.com/gpu"], 1);
        let revisions = serde_json::to_value(revisions_json(&groups)).unwrap();
        assert_eq!(revisions[0]["replicaSet"], "orchestrator-7c9f");
        assert_eq!(revisions[1]["ready"], 2);
    }

    #[test]
    fn statefulset_pods_are_grouped_by_controller_revision_update_first() {
        let sts: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "postgres"},
            "spec": {"selector": {}, "serviceName": "postgres", "template": {}},
            "status": {"replicas": 2, "currentRevision": "postgres-1", "updateRevision": "postgres-2"}
        }))
        .unwrap();
        let p = |name: &str, rev: &str, cpu: &str| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"controller-revision-hash": rev}},
                "spec": {"containers": [{"name": "postgres", "image": "postgres:16",
                         "resources": {"requests": {"cpu": cpu}}}]},
                "status": {"phase": "Running"}
            }))
            .unwrap()
        };
        let raw = vec![
            p("postgres-0", "postgres-1", "1"),
            p("postgres-1", "postgres-2", "2"),
        ];
        let views = raw.iter().map(|x| PodView::new(x, &[], now())).collect();
        let groups = statefulset_groups(&sts, views, &raw, "postgres");
        assert_eq!(groups[0].revision.as_deref(), Some("postgres-2"));
        assert!(groups[0].current);
        assert_eq!(groups[0].changed, ["requests cpu 1 -> 2"]);
        let text = table("statefulset", &groups, now());
        assert!(
            text.contains("revision postgres-2 (update revision): 1 pod, 0 ready"),
            "{text}"
        );
        assert!(!text.contains("EXTENDED"), "{text}");
    }
}
