//! ResourceQuota: admission of new pods against `spec.hard` (the apiserver's quota plugin) and
//! the quota controller's `status.used` / `status.hard`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::common::{is_terminating, name};
use super::quantity::{format_for, milli_of};
use crate::store::{Store, UpdatePart};

/// What one pod counts against a quota, per quota resource name, in milli-units.
pub type Usage = BTreeMap<String, i128>;

/// Whether a resource name is an extended resource (`nvidia.com/gpu`): domain-qualified, not in
/// the `kubernetes.io/` domain (upstream's `helper.IsExtendedResourceName`).
pub fn is_extended(resource: &str) -> bool {
    resource.contains('/') && !resource.contains("kubernetes.io/") && !resource.starts_with("requests.")
}

/// Sum of requests and limits over a pod's containers, in milli-units. A container that sets a
/// limit but no request gets the limit as request, as the API defaults it. Extended resources
/// count as `requests.<name>` only: upstream's `podComputeUsageHelper`
/// (pkg/quota/v1/evaluator/core/pods.go) masks them with the `requests.` prefix, the one form a
/// quota may hold for them (they cannot be overcommitted).
pub fn pod_usage(pod: &Value) -> Usage {
    let mut usage = Usage::new();
    for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let resources = &container["resources"];
        for resource in ["cpu", "memory"] {
            let limit = milli_of(&resources["limits"][resource]);
            let request = milli_of(&resources["requests"][resource]).or(limit);
            *usage.entry(format!("requests.{resource}")).or_default() += request.unwrap_or(0);
            *usage.entry(format!("limits.{resource}")).or_default() += limit.unwrap_or(0);
        }
        let named = |list: &str| {
            resources[list]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .filter(|k| is_extended(k))
                .collect::<Vec<_>>()
        };
        let mut extended = named("requests");
        extended.extend(named("limits"));
        extended.sort();
        extended.dedup();
        for resource in extended {
            let request = milli_of(&resources["requests"][&resource])
                .or_else(|| milli_of(&resources["limits"][&resource]));
            *usage.entry(format!("requests.{resource}")).or_default() += request.unwrap_or(0);
        }
    }
    let requested = |k: &str| usage.get(k).copied().unwrap_or(0);
    let (cpu, memory) = (requested("requests.cpu"), requested("requests.memory"));
    usage.insert("cpu".into(), cpu);
    usage.insert("memory".into(), memory);
    usage.insert("pods".into(), 1000);
    usage.insert("count/pods".into(), 1000);
    usage
}

/// Whether a pod still counts against quota (terminal and terminating pods do not).
pub fn counts(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    !is_terminating(pod) && phase != "Succeeded" && phase != "Failed"
}

struct Quota {
    name: String,
    hard: BTreeMap<String, i128>,
    used: BTreeMap<String, i128>,
}

/// The quotas of one namespace with their usage, loaded once and updated as pods are admitted.
pub struct QuotaCheck {
    quotas: Vec<Quota>,
}

impl QuotaCheck {
    /// Loads the namespace's quotas and sums what its pods use.
    pub fn load(store: &Store, namespace: &str) -> QuotaCheck {
        let quotas: Vec<(String, BTreeMap<String, i128>)> =
            store.scan("resourcequotas", Some(namespace), |q| {
                let hard = q["spec"]["hard"]
                    .as_object()?
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), milli_of(v)?)))
                    .collect();
                Some((name(q).to_owned(), hard))
            });
        if quotas.is_empty() {
            return QuotaCheck { quotas: Vec::new() };
        }
        let total = namespace_usage(store, namespace);
        let quotas = quotas
            .into_iter()
            .map(|(name, hard)| {
                let used = hard
                    .keys()
                    .map(|k| (k.clone(), total.get(k.as_str()).copied().unwrap_or(0)))
                    .collect();
                Quota { name, hard, used }
            })
            .collect();
        QuotaCheck { quotas }
    }

    /// Admits a pod or refuses it with the apiserver's message
    /// (`pods "x" is forbidden: exceeded quota: ...`); an admitted pod's usage is added.
    pub fn admit(&mut self, pod_name: &str, pod: &Value) -> Result<(), String> {
        let usage = pod_usage(pod);
        for quota in &self.quotas {
            let exceeded: Vec<&String> = quota
                .hard
                .iter()
                .filter(|(k, hard)| {
                    let requested = usage.get(k.as_str()).copied().unwrap_or(0);
                    requested > 0 && quota.used.get(*k).copied().unwrap_or(0) + requested > **hard
                })
                .map(|(k, _)| k)
                .collect();
            if exceeded.is_empty() {
                continue;
            }
            let show = |value: &dyn Fn(&str) -> i128| {
                exceeded
                    .iter()
                    .map(|k| format!("{k}={}", format_for(k, value(k))))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            return Err(format!(
                "pods \"{pod_name}\" is forbidden: exceeded quota: {}, requested: {}, used: {}, limited: {}",
                quota.name,
                show(&|k| usage.get(k).copied().unwrap_or(0)),
                show(&|k| quota.used.get(k).copied().unwrap_or(0)),
                show(&|k| quota.hard.get(k).copied().unwrap_or(0)),
            ));
        }
        for quota in &mut self.quotas {
            for (k, used) in &mut quota.used {
                *used += usage.get(k.as_str()).copied().unwrap_or(0);
            }
        }
        Ok(())
    }
}

/// Checks one pod against the namespace's quotas, for pods created through the API.
///
/// # Errors
/// The apiserver's forbidden message when a quota would be exceeded.
pub fn admit_pod(store: &Store, namespace: &str, pod_name: &str, pod: &Value) -> Result<(), String> {
    QuotaCheck::load(store, namespace).admit(pod_name, pod)
}

fn namespace_usage(store: &Store, namespace: &str) -> Usage {
    let mut total = Usage::new();
    for usage in store.scan("pods", Some(namespace), |p| counts(p).then(|| pod_usage(p))) {
        for (k, v) in usage {
            *total.entry(k).or_default() += v;
        }
    }
    total
}

/// One pass of the quota controller: `status.hard` and `status.used` of every quota.
pub fn sync_status(store: &Store) {
    let quotas = store.scan("resourcequotas", None, |q| Some(q.clone()));
    let mut usage_by_ns: BTreeMap<String, Usage> = BTreeMap::new();
    for quota in quotas {
        let ns = super::common::namespace(&quota).to_owned();
        let usage = usage_by_ns
            .entry(ns.clone())
            .or_insert_with(|| namespace_usage(store, &ns));
        let Some(hard) = quota["spec"]["hard"].as_object() else {
            continue;
        };
        let used: serde_json::Map<String, Value> = hard
            .keys()
            .map(|k| {
                (
                    k.clone(),
                    json!(format_for(k, usage.get(k.as_str()).copied().unwrap_or(0))),
                )
            })
            .collect();
        let status = json!({"hard": hard, "used": used});
        if quota["status"] != status {
            let key = super::common::key("resourcequotas", &quota);
            let _ = store.modify(&key, UpdatePart::Status, |q| {
                q["status"] = status;
                true
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectKey;

    fn pod(cpu: &str) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "100m", "memory": "128Mi"}}},
        ]}, "status": {"phase": "Running"}})
    }

    #[test]
    fn pod_usage_sums_containers_and_defaults_requests_to_limits() {
        let usage = pod_usage(&pod("500m"));
        assert_eq!(usage["requests.cpu"], 600);
        assert_eq!(usage["limits.cpu"], 1100);
        assert_eq!(usage["requests.memory"], ((1i128 << 30) + (128 << 20)) * 1000);
    }

    #[test]
    fn admission_refuses_with_the_apiserver_message_and_counts_admitted_pods() {
        let store = Store::new();
        let quota =
            json!({"metadata": {"name": "compute"}, "spec": {"hard": {"requests.cpu": "2", "pods": "10"}}});
        store
            .create(&ObjectKey::new("resourcequotas", "ns", "compute"), quota)
            .unwrap();
        store
            .create(&ObjectKey::new("pods", "ns", "running"), pod("1"))
            .unwrap();
        let mut check = QuotaCheck::load(&store, "ns");
        assert!(check.admit("web-1", &pod("300m")).is_ok());
        let err = check.admit("web-2", &pod("500m")).unwrap_err();
        assert_eq!(
            err,
            "pods \"web-2\" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, \
             used: requests.cpu=1500m, limited: requests.cpu=2"
        );
        sync_status(&store);
        let stored = store
            .get(&ObjectKey::new("resourcequotas", "ns", "compute"))
            .unwrap();
        assert_eq!(stored["status"]["used"]["requests.cpu"], "1100m");
        assert_eq!(stored["status"]["used"]["pods"], "1");
    }

    /// Extended resources count against a quota as `requests.<name>` only, a limit standing in
    /// for a missing request: upstream's `podComputeUsageHelper`
    /// (pkg/quota/v1/evaluator/core/pods.go) masks them with `requests.`; the docs' "Resource
    /// quota for extended resources" allows no other form.
    #[test]
    fn gpu_requests_count_against_requests_prefixed_quota() {
        let gpu_pod = |count: &str| {
            json!({"metadata": {"name": "g"}, "spec": {"containers": [
                {"name": "a", "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": count}}},
            ]}, "status": {"phase": "Running"}})
        };
        let usage = pod_usage(&gpu_pod("1"));
        assert_eq!(usage["requests.nvidia.com/gpu"], 1000);
        assert!(!usage.contains_key("limits.nvidia.com/gpu"));
        assert!(!usage.contains_key("nvidia.com/gpu"));
        let store = Store::new();
        let quota = json!({"metadata": {"name": "gpus"}, "spec": {"hard": {"requests.nvidia.com/gpu": "2"}}});
        store
            .create(&ObjectKey::new("resourcequotas", "ns", "gpus"), quota)
            .unwrap();
        store
            .create(&ObjectKey::new("pods", "ns", "running"), gpu_pod("1"))
            .unwrap();
        let mut check = QuotaCheck::load(&store, "ns");
        assert!(check.admit("web-1", &gpu_pod("1")).is_ok());
        assert_eq!(
            check.admit("web-2", &gpu_pod("1")).unwrap_err(),
            "pods \"web-2\" is forbidden: exceeded quota: gpus, requested: requests.nvidia.com/gpu=1, \
             used: requests.nvidia.com/gpu=2, limited: requests.nvidia.com/gpu=2"
        );
        assert!(
            check.admit("cpu-only", &pod("100m")).is_ok(),
            "no GPU asked, none counted"
        );
        sync_status(&store);
        let stored = store
            .get(&ObjectKey::new("resourcequotas", "ns", "gpus"))
            .unwrap();
        assert_eq!(stored["status"]["used"]["requests.nvidia.com/gpu"], "1");
    }
}
