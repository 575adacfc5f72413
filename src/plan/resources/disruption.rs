//! How a pod-template change restarts pods: how many, in what way (rolling, recreate, ordered,
//! on delete), and whether it means downtime, for the confirmation prompt.

use std::fmt;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The consequence of changing a workload's pod template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disruption {
    /// Pods the change restarts by itself (0 for OnDelete, a paused deployment, 0 replicas).
    pub pods_restarting: i32,
    /// The workload becomes unavailable while it restarts (one replica, Recreate).
    pub downtime: bool,
    /// One or two sentences for the preview and the prompt.
    pub summary: String,
}

impl Disruption {
    /// The confirmation's question about `object`: short, since the preview just said the
    /// sentence of [`Disruption::summary`] (it is said once).
    pub fn question(&self, object: &str) -> String {
        let n = self.pods_restarting;
        let pods = if n == 1 {
            "1 pod restarts".to_string()
        } else {
            format!("{n} pods restart")
        };
        let downtime = if self.downtime { ", with downtime" } else { "" };
        format!("{object}: {pods}{downtime}")
    }
}

impl fmt::Display for Disruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)
    }
}

/// Resolves an absolute-or-percent value against `replicas`, rounding up (surge) or down
/// (unavailable) as the Deployment controller does.
fn resolve(value: Option<&IntOrString>, default_percent: i32, replicas: i32, round_up: bool) -> i32 {
    let percent = match value {
        Some(IntOrString::Int(n)) => return (*n).max(0),
        Some(IntOrString::String(s)) => s
            .trim_end_matches('%')
            .trim()
            .parse::<i32>()
            .unwrap_or(default_percent),
        None => default_percent,
    };
    let scaled = i64::from(replicas) * i64::from(percent);
    let resolved = if round_up {
        (scaled + 99) / 100
    } else {
        scaled / 100
    };
    resolved.clamp(0, i64::from(i32::MAX)) as i32
}

/// ` -n NS` for a hint's kubectl command, so that it can be pasted as it is (nothing when the
/// object carries no namespace, as in a plan built from a bare spec).
fn namespace_flag(namespace: Option<&str>) -> String {
    namespace.map(|ns| format!(" -n {ns}")).unwrap_or_default()
}

fn show(value: Option<&IntOrString>, resolved: i32) -> String {
    match value {
        Some(IntOrString::String(s)) => format!("{s} ({resolved})"),
        _ => resolved.to_string(),
    }
}

/// Extra pods a Deployment's rollout may create above its replicas (0 for Recreate): the
/// "+ surge" of the capacity check.
pub fn max_surge_pods(deployment: &Deployment) -> i32 {
    let spec = deployment.spec.as_ref();
    let replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
    let strategy = spec.and_then(|s| s.strategy.as_ref());
    if strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate") {
        return 0;
    }
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    resolve(rolling.and_then(|r| r.max_surge.as_ref()), 25, replicas, true)
}

/// What patching a Deployment's pod template does, e.g. "3 pods restart, RollingUpdate
/// maxSurge 1, maxUnavailable 0: one new pod at a time, …".
pub fn rollout_disruption(deployment: &Deployment) -> Disruption {
    let name = deployment.metadata.name.as_deref().unwrap_or("?");
    let ns = namespace_flag(deployment.metadata.namespace.as_deref());
    let spec = deployment.spec.as_ref();
    let replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
    if replicas == 0 {
        return Disruption {
            pods_restarting: 0,
            downtime: false,
            summary: format!(
                "deployment/{name} has 0 replicas: no pod restarts; new pods get the new values"
            ),
        };
    }
    let plural = if replicas == 1 {
        "pod restarts"
    } else {
        "pods restart"
    };
    let strategy = spec.and_then(|s| s.strategy.as_ref());
    let (mut summary, downtime) = if strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate") {
        (
            format!(
                "{replicas} {plural}, Recreate: every pod stops before the new ones start, so \
                 deployment/{name} is down during the restart"
            ),
            true,
        )
    } else {
        let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
        let surge_value = rolling.and_then(|r| r.max_surge.as_ref());
        let unavailable_value = rolling.and_then(|r| r.max_unavailable.as_ref());
        let surge = resolve(surge_value, 25, replicas, true);
        let unavailable = resolve(unavailable_value, 25, replicas, false);
        let how = match (surge, unavailable) {
            (1, 0) => "one new pod at a time; no pod leaves before its replacement is Ready".to_string(),
            (s, 0) => format!("up to {s} new pods at a time; no pod leaves before its replacement is Ready"),
            (0, u) => format!("{u} old pod(s) stop before their replacements start"),
            (s, u) => format!("up to {s} extra new pods at a time, at most {u} pod(s) unavailable"),
        };
        let downtime = replicas == 1 && surge == 0;
        let mut summary = format!(
            "{replicas} {plural}, RollingUpdate maxSurge {}, maxUnavailable {}: {how}",
            show(surge_value, surge),
            show(unavailable_value, unavailable)
        );
        if downtime {
            summary.push_str(&format!(
                "; with 1 replica, deployment/{name} is down while it restarts"
            ));
        }
        (summary, downtime)
    };
    let paused = spec.and_then(|s| s.paused) == Some(true);
    if paused {
        summary = format!(
            "deployment/{name} is paused: nothing restarts until `kubectl rollout resume{ns} \
             deployment/{name}`; then {summary}"
        );
    }
    Disruption {
        pods_restarting: if paused { 0 } else { replicas },
        downtime,
        summary,
    }
}

/// What patching a StatefulSet's pod template does: one replica means downtime, OnDelete means
/// nothing restarts by itself, a partition limits which ordinals update.
pub fn statefulset_disruption(statefulset: &StatefulSet) -> Disruption {
    let name = statefulset.metadata.name.as_deref().unwrap_or("?");
    let ns = namespace_flag(statefulset.metadata.namespace.as_deref());
    let spec = statefulset.spec.as_ref();
    let replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
    let strategy = spec.and_then(|s| s.update_strategy.as_ref());
    let single = format!("{name} has 1 replica: the database restarts and is unavailable during the restart");
    if replicas == 0 {
        return Disruption {
            pods_restarting: 0,
            downtime: false,
            summary: format!("statefulset/{name} has 0 replicas: no pod restarts"),
        };
    }
    if strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
        let mut summary = format!(
            "updateStrategy OnDelete: the patch alone restarts nothing; delete the pods to apply \
             (e.g. `kubectl delete pod{ns} {name}-{}`)",
            replicas - 1
        );
        if replicas == 1 {
            summary.push_str(&format!("; then {single}"));
        }
        return Disruption {
            pods_restarting: 0,
            downtime: false,
            summary,
        };
    }
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    let partition = rolling.and_then(|r| r.partition).unwrap_or(0).max(0);
    if partition >= replicas {
        return Disruption {
            pods_restarting: 0,
            downtime: false,
            summary: format!(
                "RollingUpdate partition {partition} ≥ {replicas} replicas: no pod is updated; lower \
                 the partition to roll the change out"
            ),
        };
    }
    let restarting = replicas - partition;
    let max_unavailable = resolve(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        0,
        replicas,
        false,
    )
    .max(1);
    let mut summary = if replicas == 1 {
        single
    } else {
        let pace = if max_unavailable > 1 {
            format!("up to {max_unavailable} at a time")
        } else {
            "one at a time".to_string()
        };
        format!(
            "{restarting} pods restart {pace}, highest ordinal first ({name}-{} … {name}-{partition}), \
             each after the previous one is Ready",
            replicas - 1
        )
    };
    if partition > 0 {
        let kept = if partition == 1 {
            format!("{name}-0 keeps")
        } else {
            format!("{name}-0 … {name}-{} keep", partition - 1)
        };
        summary.push_str(&format!("; partition {partition}: {kept} the old spec"));
    }
    Disruption {
        pods_restarting: restarting,
        downtime: replicas == 1,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn deployment(spec: Value) -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": "orchestrator"}, "spec": spec})).unwrap()
    }

    fn base(replicas: i32, strategy: Value) -> Value {
        json!({"replicas": replicas, "selector": {}, "template": {}, "strategy": strategy})
    }

    fn statefulset(replicas: i32, strategy: Value) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "postgres"},
            "spec": {"replicas": replicas, "selector": {}, "template": {}, "updateStrategy": strategy}
        }))
        .unwrap()
    }

    #[test]
    fn the_question_is_short_and_says_downtime() {
        let d = deployment(base(3, json!({})));
        assert_eq!(
            rollout_disruption(&d).question("deployment/orchestrator"),
            "deployment/orchestrator: 3 pods restart"
        );
        let s = statefulset(1, json!({"type": "RollingUpdate"}));
        assert_eq!(
            statefulset_disruption(&s).question("statefulset/postgres"),
            "statefulset/postgres: 1 pod restarts, with downtime"
        );
    }

    #[test]
    fn rolling_update_with_surge_one() {
        let d = deployment(base(
            3,
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
        ));
        let r = rollout_disruption(&d);
        assert_eq!(
            r.summary,
            "3 pods restart, RollingUpdate maxSurge 1, maxUnavailable 0: one new pod at a time; no pod \
             leaves before its replacement is Ready"
        );
        assert_eq!(r.pods_restarting, 3);
        assert!(!r.downtime);
        assert_eq!(max_surge_pods(&d), 1);
    }

    #[test]
    fn default_percentages_resolve_like_the_controller() {
        let d = deployment(json!({"replicas": 10, "selector": {}, "template": {}}));
        assert_eq!(max_surge_pods(&d), 3); // 25% of 10 rounded up
        assert!(
            rollout_disruption(&d)
                .summary
                .contains("maxSurge 3, maxUnavailable 2")
        );
        let d = deployment(base(
            4,
            json!({"rollingUpdate": {"maxSurge": "50%", "maxUnavailable": "25%"}}),
        ));
        assert!(
            rollout_disruption(&d)
                .summary
                .contains("maxSurge 50% (2), maxUnavailable 25% (1)")
        );
    }

    #[test]
    fn recreate_single_replica_and_paused() {
        let d = deployment(base(2, json!({"type": "Recreate"})));
        assert!(rollout_disruption(&d).downtime);
        assert_eq!(max_surge_pods(&d), 0);
        let d = deployment(base(
            1,
            json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}),
        ));
        let r = rollout_disruption(&d);
        assert!(r.downtime);
        assert!(
            r.summary
                .ends_with("with 1 replica, deployment/orchestrator is down while it restarts")
        );
        let mut d = deployment(base(3, json!({})));
        d.spec.as_mut().unwrap().paused = Some(true);
        let r = rollout_disruption(&d);
        assert_eq!(r.pods_restarting, 0);
        assert!(r.summary.starts_with("deployment/orchestrator is paused"));
        d.metadata.namespace = Some("llm".into());
        assert!(
            rollout_disruption(&d)
                .summary
                .contains("`kubectl rollout resume -n llm deployment/orchestrator`"),
            "the hint names the namespace and the deployment"
        );
        assert_eq!(
            rollout_disruption(&deployment(base(0, json!({})))).pods_restarting,
            0
        );
    }

    #[test]
    fn statefulset_single_replica_is_downtime() {
        let r = statefulset_disruption(&statefulset(1, json!({"type": "RollingUpdate"})));
        assert_eq!(
            r.summary,
            "postgres has 1 replica: the database restarts and is unavailable during the restart"
        );
        assert!(r.downtime);
        assert_eq!(r.pods_restarting, 1);
    }

    #[test]
    fn statefulset_on_delete_restarts_nothing() {
        let r = statefulset_disruption(&statefulset(3, json!({"type": "OnDelete"})));
        assert!(r.summary.starts_with(
            "updateStrategy OnDelete: the patch alone restarts nothing; delete the pods to apply"
        ));
        assert_eq!(r.pods_restarting, 0);
    }

    #[test]
    fn statefulset_ordered_rollout_and_partition() {
        let r = statefulset_disruption(&statefulset(3, json!({"type": "RollingUpdate"})));
        assert_eq!(
            r.summary,
            "3 pods restart one at a time, highest ordinal first (postgres-2 … postgres-0), each after the previous one is Ready"
        );
        let r = statefulset_disruption(&statefulset(3, json!({"rollingUpdate": {"partition": 1}})));
        assert_eq!(r.pods_restarting, 2);
        assert!(r.summary.ends_with("partition 1: postgres-0 keeps the old spec"));
        let r = statefulset_disruption(&statefulset(
            4,
            json!({"rollingUpdate": {"partition": 2, "maxUnavailable": 2}}),
        ));
        assert_eq!(
            r.summary,
            "2 pods restart up to 2 at a time, highest ordinal first (postgres-3 … postgres-2), each after the \
             previous one is Ready; partition 2: postgres-0 … postgres-1 keep the old spec"
        );
        let r = statefulset_disruption(&statefulset(3, json!({"rollingUpdate": {"partition": 3}})));
        assert_eq!(r.pods_restarting, 0);
        assert!(r.summary.contains("no pod is updated"));
    }
}
