//! The scheduler's NodeAffinity filter: whether a pod's `spec.nodeSelector` and required node
//! affinity let it go to a node, by upstream's rules
//! (k8s.io/component-helpers/scheduling/corev1/nodeaffinity, pkg/scheduler/framework/plugins/
//! nodeaffinity/node_affinity.go).

use std::collections::BTreeSet;

use serde_json::Value;

/// The scheduler's words for a node the filter rejects (`ErrReasonPod`).
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";

/// The scheduler's words for a node that PreFilter already left out: when every term of the
/// required affinity names its nodes (`matchFields` `metadata.name In`, as DaemonSet pods do), the
/// NodeAffinity PreFilter returns those names and the nodes not among them are not filtered at
/// all (pkg/scheduler/schedule_one.go, `SetAbsentNodesStatus`).
pub const ABSENT_NODE_REASON: &str = "node(s) didn't satisfy plugin(s) [NodeAffinity]";

/// What a pod asks of its node's labels and name: its `spec.nodeSelector` and
/// `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`.
#[derive(Debug, Clone, Default)]
pub struct Required {
    node_selector: Option<Value>,
    affinity: Option<Value>,
}

impl Required {
    /// Read from a pod (`GetRequiredNodeAffinity`).
    pub fn of(pod: &Value) -> Self {
        let spec = &pod["spec"];
        let present = |v: &Value| (!v.is_null()).then(|| v.clone());
        Required {
            node_selector: present(&spec["nodeSelector"]),
            affinity: present(
                &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
            ),
        }
    }

    /// `RequiredNodeAffinity.Match`: every nodeSelector key is a label of the node with that value,
    /// and, when set, one of the affinity's terms matches (`LazyErrorNodeSelector.Match`; parse
    /// errors count as no match, as the `Filter` ignores them).
    pub fn matches(&self, node: &Value) -> bool {
        let labels = &node["metadata"]["labels"];
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        let selector_holds = self
            .node_selector
            .as_ref()
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .all(|(k, v)| labels[k.as_str()].as_str().is_some() && labels[k.as_str()] == *v);
        if !selector_holds {
            return false;
        }
        let Some(affinity) = &self.affinity else {
            return true;
        };
        affinity["nodeSelectorTerms"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|term| term_matches(term, name, labels))
    }
}

impl Required {
    /// The nodes the NodeAffinity `PreFilter` narrows the pod to, or `None` for every node: the
    /// union over the terms of each term's intersection of its `metadata.name In` values, `None`
    /// as soon as one term names no node (the terms are ORed) or there are no terms. (Upstream
    /// rejects the pod outright with "pod affinity terms conflict" when the union is empty; here
    /// every node is then absent, which schedules it nowhere just the same.)
    pub fn node_names(&self) -> Option<BTreeSet<String>> {
        let terms = self.affinity.as_ref()?["nodeSelectorTerms"].as_array()?;
        if terms.is_empty() {
            return None;
        }
        let mut union = BTreeSet::new();
        for term in terms {
            let mut names: Option<BTreeSet<String>> = None;
            for r in list(&term["matchFields"]) {
                if r["key"] == "metadata.name" && r["operator"] == "In" {
                    let these: BTreeSet<String> = values(r).into_iter().map(str::to_owned).collect();
                    names = Some(match names {
                        None => these,
                        Some(before) => before.intersection(&these).cloned().collect(),
                    });
                }
            }
            union.extend(names?);
        }
        Some(union)
    }
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// `nodeSelectorTerm.match`: an empty term matches nothing (`isEmptyNodeSelectorTerm`), a
/// requirement that does not parse makes the term match nothing, else every label requirement
/// and every field requirement must hold (fields are skipped for a node without a name).
fn term_matches(term: &Value, name: &str, labels: &Value) -> bool {
    let (exprs, fields) = (list(&term["matchExpressions"]), list(&term["matchFields"]));
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs.iter().all(|r| label_match(r, labels) == Some(true))
        && fields
            .iter()
            .all(|r| field_match(r, name).is_some_and(|m| m || name.is_empty()))
}

fn values(r: &Value) -> Vec<&str> {
    list(&r["values"]).iter().filter_map(Value::as_str).collect()
}

/// apimachinery `labels.Requirement.Matches`, or `None` when `labels.NewRequirement` refuses it.
fn label_match(r: &Value, labels: &Value) -> Option<bool> {
    let label = labels[r["key"].as_str().unwrap_or_default()].as_str();
    let values = values(r);
    match r["operator"].as_str().unwrap_or_default() {
        "In" | "NotIn" if values.is_empty() => None,
        "In" => Some(label.is_some_and(|v| values.contains(&v))),
        "NotIn" => Some(label.is_none_or(|v| !values.contains(&v))),
        "Exists" | "DoesNotExist" if !values.is_empty() => None,
        "Exists" => Some(label.is_some()),
        "DoesNotExist" => Some(label.is_none()),
        op @ ("Gt" | "Lt") => {
            let [bound] = values.as_slice() else {
                return None;
            };
            let bound: i64 = bound.parse().ok()?;
            let value = label.and_then(|v| v.parse::<i64>().ok());
            Some(value.is_some_and(|v| if op == "Gt" { v > bound } else { v < bound }))
        }
        _ => None,
    }
}

/// `nodeSelectorRequirementsAsFieldSelector`: `In`/`NotIn` with one value, over the node's
/// fields (only `metadata.name`; any other key reads as empty), or `None` when refused.
fn field_match(r: &Value, name: &str) -> Option<bool> {
    let values = values(r);
    let [value] = values.as_slice() else {
        return None;
    };
    let field = if r["key"] == "metadata.name" { name } else { "" };
    match r["operator"].as_str().unwrap_or_default() {
        "In" => Some(field == *value),
        "NotIn" => Some(field != *value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}})
    }

    fn pod(spec: Value) -> Required {
        Required::of(&json!({"spec": spec}))
    }

    fn affinity(terms: Value) -> Required {
        pod(json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}))
    }

    /// k8s.io/component-helpers nodeaffinity `GetRequiredNodeAffinity` / `RequiredNodeAffinity.Match`:
    /// nodeSelector keys all equal; apimachinery `labels.Requirement.Matches` per operator.
    #[test]
    fn selector_and_operators_match_as_upstream() {
        let gpu = node("gpu-node-0", json!({"pool": "gpu", "gen": "5"}));
        let plain = node("node-0", json!({"pool": "cpu"}));
        assert!(pod(json!({})).matches(&plain), "no selection: every node");
        let selector = pod(json!({"nodeSelector": {"pool": "gpu"}}));
        assert!(selector.matches(&gpu));
        assert!(!selector.matches(&plain));
        assert!(!selector.matches(&node("bare", json!({}))));
        let expr = |key: &str, op: &str, values: Value| {
            affinity(json!([{"matchExpressions": [{"key": key, "operator": op, "values": values}]}]))
        };
        assert!(expr("pool", "In", json!(["gpu", "x"])).matches(&gpu));
        assert!(!expr("pool", "In", json!([])).matches(&gpu), "In needs values");
        assert!(expr("pool", "NotIn", json!(["gpu"])).matches(&plain));
        assert!(expr("absent", "NotIn", json!(["gpu"])).matches(&plain));
        assert!(expr("gen", "Exists", json!(null)).matches(&gpu));
        assert!(!expr("gen", "Exists", json!(null)).matches(&plain));
        assert!(expr("gen", "DoesNotExist", json!(null)).matches(&plain));
        assert!(expr("gen", "Gt", json!(["4"])).matches(&gpu));
        assert!(!expr("gen", "Lt", json!(["5"])).matches(&gpu));
        assert!(
            !expr("gen", "Gt", json!(["x"])).matches(&gpu),
            "the bound must be an integer"
        );
        assert!(
            !expr("pool", "Gt", json!(["1"])).matches(&gpu),
            "a label that is no integer"
        );
    }

    /// `LazyErrorNodeSelector.Match`: terms ORed, an empty term list or empty term matches
    /// nothing; matchFields on `metadata.name`, In/NotIn with one value.
    #[test]
    fn terms_or_and_fields_by_name() {
        let gpu = node("gpu-node-0", json!({"pool": "gpu"}));
        let plain = node("node-0", json!({"pool": "cpu"}));
        let either = affinity(json!([
            {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["gpu"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-0"]}]}
        ]));
        assert!(either.matches(&gpu) && either.matches(&plain));
        assert!(!either.matches(&node("node-1", json!({}))));
        assert!(!affinity(json!([])).matches(&gpu), "no terms");
        assert!(!affinity(json!([{}])).matches(&gpu), "an empty term");
        let and = affinity(json!([{
            "matchExpressions": [{"key": "pool", "operator": "In", "values": ["gpu"]}],
            "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["gpu-node-0"]}]
        }]));
        assert!(!and.matches(&gpu));
        assert!(and.matches(&node("gpu-node-1", json!({"pool": "gpu"}))));
    }

    /// The NodeAffinity `PreFilter` (pkg/scheduler/framework/plugins/nodeaffinity/
    /// node_affinity.go): node names only when every term names some, intersected within a
    /// term, united across terms.
    #[test]
    fn prefilter_narrows_to_named_nodes_only_when_every_term_names_them() {
        let name_in = |names: Value| json!({"key": "metadata.name", "operator": "In", "values": names});
        let named = affinity(json!([
            {"matchFields": [name_in(json!(["a", "b"])), name_in(json!(["b", "c"]))]},
            {"matchFields": [name_in(json!(["d"]))]}
        ]));
        assert_eq!(named.node_names(), Some(["b".to_owned(), "d".to_owned()].into()));
        let open = affinity(json!([
            {"matchFields": [name_in(json!(["a"]))]},
            {"matchExpressions": [{"key": "pool", "operator": "Exists"}]}
        ]));
        assert_eq!(open.node_names(), None, "one term without names: every node");
        assert_eq!(pod(json!({"nodeSelector": {"a": "b"}})).node_names(), None);
        assert_eq!(affinity(json!([])).node_names(), None);
    }
}
