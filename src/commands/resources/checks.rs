//! The preview's warnings about the new values: will the new pods fit the nodes, the
//! namespace's ResourceQuota, and does the HPA start scaling because utilization (usage ÷
//! request) moves. Each check that cannot read what it needs (e.g. no permission to list
//! nodes) is left out with a note under -v, never the change itself.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Pod, ResourceQuota};

use super::target::Target;
use crate::cluster::Cluster;
use crate::commands::hpa::room::{self, pod_requests};
use crate::commands::shared::hpa_for;
use crate::error::Error;
use crate::health;
use crate::plan::resources::{ResourcesPlan, is_extended, quota_check, rollout_quota_delta};
use crate::report::Reporter;

/// Every warning for the preview.
pub async fn warnings<W: Target>(
    cluster: &Cluster,
    workload: &W,
    name: &str,
    container: &str,
    plan: &ResourcesPlan,
    reporter: &mut Reporter,
) -> Vec<String> {
    let mut warnings = Vec::new();
    // Independent reads, at the same time: the capacity read (nodes, then pods node by node)
    // is the long one.
    let (fit, quota, shift) = tokio::join!(
        fit(cluster, workload, container, plan),
        quota(cluster, workload, plan),
        hpa_shift::<W>(cluster, workload, name, plan, reporter)
    );
    skipped_or(
        &mut warnings,
        reporter,
        "node capacity check",
        fit.map(Vec::from_iter),
    );
    skipped_or(
        &mut warnings,
        reporter,
        "ResourceQuota check",
        quota.map(Vec::from_iter),
    );
    skipped_or(&mut warnings, reporter, "HPA utilization check", shift);
    warnings
}

/// A check's warnings, or why it was skipped: said as a warning when a permission is missing
/// (the operator should know a check did not run), as detail for -v otherwise.
fn skipped_or(
    warnings: &mut Vec<String>,
    reporter: &mut Reporter,
    check: &str,
    found: Result<Vec<String>, Error>,
) {
    match found {
        Ok(found) => warnings.extend(found),
        Err(e) if e.is_forbidden() => reporter.warn(&format!("{check} skipped: {e}")),
        Err(e) => reporter.detail(&format!("{check} skipped: {e}")),
    }
}

/// Whether a new pod asks for more CPU, memory or of an extended resource (`nvidia.com/gpu`)
/// than an old one: otherwise the rollout's pods fit where the old ones ran, and the capacity
/// check is left out.
fn requests_grow(plan: &ResourcesPlan) -> bool {
    let nanos = |list: &crate::plan::resources::ResourceList, r: &str| list.get(r).map_or(0, |q| q.nanos());
    let extended = plan.after.requests.keys().filter(|r| is_extended(r));
    ["cpu", "memory"]
        .into_iter()
        .chain(extended.map(String::as_str))
        .any(|r| nanos(&plan.after.requests, r) > nanos(&plan.before.requests, r))
}

/// New pod size × (replicas + surge) against the nodes' free room, counting the pods that stay
/// (every running pod but the workload's own, which the rollout replaces, and pods already
/// being deleted), read node by node until the new pods fit ([`room::place`]).
async fn fit<W: Target>(
    cluster: &Cluster,
    workload: &W,
    container: &str,
    plan: &ResourcesPlan,
) -> Result<Option<String>, Error> {
    let Some(template) = workload.template().filter(|_| requests_grow(plan)) else {
        return Ok(None);
    };
    let size = pod_requests(&plan.applied_to(template, container));
    let selector = workload.selector();
    let (nodes, own) = tokio::try_join!(room::nodes(cluster), cluster.list::<Pod>(&selector))?;
    let replaced: HashSet<&str> = own
        .iter()
        .filter(|p| !health::is_terminating(p))
        .filter_map(|p| p.metadata.uid.as_deref())
        .collect();
    let needed = workload.counts().desired.max(0).saturating_add(workload.surge());
    let report = room::place(cluster, nodes, &size, needed, |pod| {
        !pod.is_terminating() && !pod.uid().is_some_and(|uid| replaced.contains(uid))
    })
    .await?;
    if report.fits() {
        return Ok(None);
    }
    let mut text = format!(
        "capacity: {}; they would be Unschedulable and the rollout would stall",
        report.message
    );
    if !report.skipped_nodes.is_empty() {
        text.push_str(&format!(" (nodes left out: {})", report.skipped_nodes.join(", ")));
    }
    Ok(Some(text))
}

async fn quota<W: Target>(
    cluster: &Cluster,
    workload: &W,
    plan: &ResourcesPlan,
) -> Result<Vec<String>, Error> {
    let quotas: Vec<ResourceQuota> = cluster.list("").await?;
    if quotas.is_empty() {
        return Ok(Vec::new());
    }
    let delta = rollout_quota_delta(
        &plan.before,
        &plan.after,
        workload.counts().desired,
        workload.surge(),
    );
    Ok(quota_check(&quotas, &delta))
}

async fn hpa_shift<W: Target>(
    cluster: &Cluster,
    workload: &W,
    name: &str,
    plan: &ResourcesPlan,
    reporter: &mut Reporter,
) -> Result<Vec<String>, Error> {
    let Some(mut hpa) = hpa_for(cluster, W::API_KIND, name, reporter).await? else {
        return Ok(Vec::new());
    };
    // The workload's count is current; the HPA's status may be a sync period old.
    hpa.status.get_or_insert_with(Default::default).current_replicas = Some(workload.counts().desired);
    let hpa_name = hpa.metadata.name.clone().unwrap_or_default();
    Ok(plan
        .hpa_shifts(&hpa)
        .into_iter()
        .map(|shift| format!("HPA {hpa_name}: {shift}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::resources::{ResourceList, parse_resource_list, plan_container_resources};

    fn plan(requests: &str, limits: &str) -> ResourcesPlan {
        let template = serde_json::from_value(serde_json::json!({"spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}}
        ]}}))
        .unwrap();
        let parse = |flag, text: &str| {
            if text.is_empty() {
                ResourceList::new()
            } else {
                parse_resource_list(flag, text).unwrap()
            }
        };
        plan_container_resources(
            &template,
            "d/x",
            "c",
            &parse("--requests", requests),
            &parse("--limits", limits),
            "1",
        )
        .unwrap()
    }

    #[test]
    fn only_a_larger_cpu_or_memory_request_needs_more_room() {
        assert!(requests_grow(&plan("cpu=750m", "")));
        assert!(requests_grow(&plan("memory=2Gi", "")));
        assert!(requests_grow(&plan("cpu=250m,memory=2Gi", "")));
        assert!(!requests_grow(&plan("cpu=250m", "")));
        assert!(!requests_grow(&plan("cpu=500m,memory=512Mi", "")));
        assert!(!requests_grow(&plan("", "memory=4Gi")));
        assert!(!requests_grow(&plan("ephemeral-storage=2Gi", "")));
        assert!(
            requests_grow(&plan("nvidia.com/gpu=1", "nvidia.com/gpu=1")),
            "a GPU more"
        );
    }
}
