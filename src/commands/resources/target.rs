//! What `resources` and `db resources` differ in: the workload kind. The flow in the parent
//! module is generic over [`Target`], implemented for Deployment and StatefulSet.

use crate::commands::preflight::WorkloadKind;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::cli::TargetOpts;
use crate::commands::shared::selector_string;
use crate::health::Workload;
use crate::plan::resources::{Disruption, max_surge_pods, rollout_disruption, statefulset_disruption};

/// A workload whose pod template `resources` can patch and whose rollout it can follow.
pub trait Target: Workload + crate::cluster::Object {
    /// `Deployment`, as an HPA's scaleTargetRef names it.
    const API_KIND: &'static str;
    /// Plural resource for the access review: `deployments`.
    const RESOURCE: &'static str;
    /// The kind, for the permission preflight.
    const WORKLOAD: WorkloadKind;
    /// The flag that names the workload: `--deployment`.
    const NAME_FLAG: &'static str;

    /// The workload and container names the flags (or their defaults) give.
    fn names(targets: &TargetOpts) -> (&str, &str);
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn selector(&self) -> String;
    /// How patching the pod template restarts pods.
    fn disruption(&self) -> Disruption;
    /// Extra pods the rollout may run at once (Deployment maxSurge; 0 for a StatefulSet,
    /// which replaces a pod only after deleting it).
    fn surge(&self) -> i32;
    /// The revision the rollout moves to: the Deployment's `deployment.kubernetes.io/revision`
    /// (its new ReplicaSet carries the same), the StatefulSet's `status.updateRevision`.
    fn revision(&self) -> Option<String>;
}

impl Target for Deployment {
    const API_KIND: &'static str = "Deployment";
    const RESOURCE: &'static str = "deployments";
    const WORKLOAD: WorkloadKind = WorkloadKind::Deployment;
    const NAME_FLAG: &'static str = "--deployment";

    fn names(targets: &TargetOpts) -> (&str, &str) {
        (&targets.deployment, &targets.container)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }

    fn selector(&self) -> String {
        self.spec
            .as_ref()
            .map(|s| selector_string(&s.selector))
            .unwrap_or_default()
    }

    fn disruption(&self) -> Disruption {
        rollout_disruption(self)
    }

    fn surge(&self) -> i32 {
        max_surge_pods(self)
    }

    fn revision(&self) -> Option<String> {
        self.metadata
            .annotations
            .as_ref()?
            .get("deployment.kubernetes.io/revision")
            .cloned()
    }
}

impl Target for StatefulSet {
    const API_KIND: &'static str = "StatefulSet";
    const RESOURCE: &'static str = "statefulsets";
    const WORKLOAD: WorkloadKind = WorkloadKind::StatefulSet;
    const NAME_FLAG: &'static str = "--statefulset";

    fn names(targets: &TargetOpts) -> (&str, &str) {
        (&targets.statefulset, &targets.db_container)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }

    fn selector(&self) -> String {
        self.spec
            .as_ref()
            .map(|s| selector_string(&s.selector))
            .unwrap_or_default()
    }

    fn disruption(&self) -> Disruption {
        statefulset_disruption(self)
    }

    fn surge(&self) -> i32 {
        0
    }

    fn revision(&self) -> Option<String> {
        self.status.as_ref()?.update_revision.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statefulsets_have_no_surge_and_use_the_db_names() {
        let sts: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "postgres"},
            "spec": {"replicas": 1, "serviceName": "postgres",
                     "selector": {"matchLabels": {"app": "postgres"}}, "template": {}}
        }))
        .unwrap();
        assert_eq!(sts.surge(), 0);
        assert_eq!(sts.selector(), "app=postgres");
        assert!(sts.disruption().downtime);
    }

    #[test]
    fn deployments_surge_by_their_strategy() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "orchestrator"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "orchestrator"}}, "template": {},
                     "strategy": {"rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}}}
        }))
        .unwrap();
        assert_eq!(d.surge(), 2);
        assert_eq!(d.disruption().pods_restarting, 3);
    }
}
