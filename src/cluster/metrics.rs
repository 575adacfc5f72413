//! metrics.k8s.io: pod usage for the pod lists of `scale` and `status`.
//!
//! The API is optional in a cluster (metrics-server): when it is not served the callers say
//! so and go on.

use super::Cluster;
use crate::error::Error;

/// Usage of one pod from metrics.k8s.io: per-container quantities as the API gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    pub pod: String,
    pub containers: Vec<(String, String, String)>,
}

impl Cluster {
    /// Pod metrics for a label selector; `None` when metrics.k8s.io is not served.
    ///
    /// # Errors
    /// API and transport errors other than a missing API.
    pub async fn pod_metrics(&self, label_selector: &str) -> Result<Option<Vec<PodUsage>>, Error> {
        let path = format!(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods?labelSelector={}",
            self.namespace,
            encode_query(label_selector)
        );
        Ok(self.get_raw_json(&path).await?.map(|v| parse_pod_metrics(&v)))
    }
}

/// Percent-encodes a query value (label selectors carry `=`, `,` and `!`).
pub fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Reads a PodMetricsList into per-pod usage.
pub fn parse_pod_metrics(list: &serde_json::Value) -> Vec<PodUsage> {
    let items = list
        .get("items")
        .and_then(|i| i.as_array())
        .cloned()
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|item| {
            let pod = item.pointer("/metadata/name")?.as_str()?.to_string();
            let containers = item
                .get("containers")
                .and_then(|c| c.as_array())
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            let text =
                                |p: &str| c.pointer(p).and_then(|v| v.as_str()).unwrap_or("").to_string();
                            (text("/name"), text("/usage/cpu"), text("/usage/memory"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(PodUsage { pod, containers })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_are_encoded() {
        assert_eq!(
            encode_query("app=orchestrator,tier!=x"),
            "app%3Dorchestrator%2Ctier%21%3Dx"
        );
    }

    #[test]
    fn pod_metrics_are_read_per_container() {
        let list = serde_json::json!({"items": [
            {"metadata": {"name": "p1"}, "containers": [
                {"name": "orchestrator", "usage": {"cpu": "300m", "memory": "700Mi"}},
                {"name": "log-shipper", "usage": {"cpu": "5m", "memory": "20Mi"}}
            ]},
            {"metadata": {}}
        ]});
        let usage = parse_pod_metrics(&list);
        assert_eq!(usage.len(), 1);
        assert_eq!(usage[0].pod, "p1");
        assert_eq!(
            usage[0].containers[1],
            ("log-shipper".into(), "5m".into(), "20Mi".into())
        );
    }
}
