//! metrics.k8s.io: pod usage for the pod lists of `scale` and `status`.
//!
//! The API is optional in a cluster (metrics-server): when it is not served the callers say
//! so and go on.

use super::Cluster;
use super::api::bounded;
use crate::error::Error;
pub(crate) use crate::health::NotServed;
use crate::quantity::Quantity;

/// Usage of one pod from metrics.k8s.io, per container: (name, cpu, memory) in `kubectl top`'s
/// units (`253m`, `120Mi`), whatever metrics-server wrote (`253011429n`, `123456Ki`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    pub pod: String,
    pub containers: Vec<(String, String, String)>,
}

impl Cluster {
    /// Pod metrics for a label selector, or why metrics.k8s.io has none to give.
    ///
    /// # Errors
    /// API and transport errors other than a missing or unavailable API.
    pub(crate) async fn pod_metrics(
        &self,
        label_selector: &str,
    ) -> Result<Result<Vec<PodUsage>, NotServed>, Error> {
        let path = format!(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods?labelSelector={}",
            self.namespace,
            encode_query(label_selector)
        );
        let action = format!("get {path}");
        let request = http::Request::get(&path)
            .body(Vec::new())
            .map_err(|e| Error::failed(format!("bad request path {path}: {e}"), "this is a bug"))?;
        match bounded(
            &action,
            &self.server,
            self.client.request::<serde_json::Value>(request),
        )
        .await
        {
            Ok(list) => Ok(Ok(parse_pod_metrics(&list))),
            Err(Error::Api {
                status: Some(404), ..
            }) => Ok(Err(NotServed::Absent)),
            Err(Error::Api {
                status: Some(503), ..
            }) => Ok(Err(NotServed::Unavailable)),
            Err(e) => Err(e),
        }
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
                            (
                                text("/name"),
                                top_cpu(&text("/usage/cpu")),
                                top_memory(&text("/usage/memory")),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(PodUsage { pod, containers })
        })
        .collect()
}

/// CPU as `kubectl top` prints it: whole millicores, rounded up (`MilliValue`), so
/// metrics-server's nanocores (`253011429n`) read `254m`. Unparsable text is kept.
fn top_cpu(text: &str) -> String {
    match Quantity::parse(text) {
        Ok(q) => format!("{}m", (q.nanos() + 999_999).div_euclid(1_000_000)),
        Err(_) => text.to_string(),
    }
}

/// Memory as `kubectl top` prints it: whole MiB (`Value() / (1024*1024)`), so `123456Ki` reads
/// `120Mi`. Unparsable text is kept.
fn top_memory(text: &str) -> String {
    match Quantity::parse(text) {
        Ok(q) => format!("{}Mi", q.nanos().div_euclid(1_000_000_000 * 1024 * 1024)),
        Err(_) => text.to_string(),
    }
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

    #[test]
    fn nanocores_and_kibibytes_read_as_kubectl_top_prints_them() {
        let list = serde_json::json!({"items": [{"metadata": {"name": "p"}, "containers": [
            {"name": "c", "usage": {"cpu": "253011429n", "memory": "123456Ki"}}]}]});
        let usage = parse_pod_metrics(&list);
        assert_eq!(
            usage[0].containers[0],
            ("c".into(), "254m".into(), "120Mi".into())
        );
        assert_eq!(top_cpu("1"), "1000m");
        assert_eq!(top_cpu("0"), "0m");
        assert_eq!(top_memory("1Gi"), "1024Mi");
        assert_eq!(top_cpu("garbage"), "garbage");
    }
}
