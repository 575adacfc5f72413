//! Which nodes a pod may go to by their labels and name: the pod template's `nodeSelector` and
//! required node affinity, matched as the scheduler's NodeAffinity filter matches them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, PodSpec};

/// The nodes a pod may be placed on, as its spec says (typed, read once from the template):
/// `spec.nodeSelector` and `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`.
/// Both must hold (k8s.io/component-helpers/scheduling/corev1/nodeaffinity,
/// `GetRequiredNodeAffinity` and `RequiredNodeAffinity.Match`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSelection {
    /// Every key must be a label of the node, with this value.
    pub node_selector: BTreeMap<String, String>,
    /// The required node affinity's terms (ORed), when the pod has one; an empty list matches
    /// no node.
    pub required: Option<Vec<SelectorTerm>>,
}

/// One `nodeSelectorTerms[]` item: its requirements are ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectorTerm {
    /// On the node's labels.
    pub match_expressions: Vec<Requirement>,
    /// On the node's fields (only `metadata.name` is one).
    pub match_fields: Vec<Requirement>,
}

/// One requirement: `key`, operator (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`), values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

impl From<&NodeSelectorRequirement> for Requirement {
    fn from(r: &NodeSelectorRequirement) -> Self {
        Requirement {
            key: r.key.clone(),
            operator: r.operator.clone(),
            values: r.values.clone().unwrap_or_default(),
        }
    }
}

impl NodeSelection {
    /// The selection of a pod spec (none: every node).
    pub fn of(spec: &PodSpec) -> Self {
        let required = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())
            .map(|selector| {
                selector
                    .node_selector_terms
                    .iter()
                    .map(|term| {
                        let list = |rs: &Option<Vec<NodeSelectorRequirement>>| {
                            rs.iter().flatten().map(Requirement::from).collect()
                        };
                        SelectorTerm {
                            match_expressions: list(&term.match_expressions),
                            match_fields: list(&term.match_fields),
                        }
                    })
                    .collect()
            });
        NodeSelection {
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            required,
        }
    }

    /// What keeps the pod off the node `name` with `labels`: `"node selector"`, `"node affinity"`
    /// or `None` (it may go there). The node selector is checked first, as
    /// `RequiredNodeAffinity.Match` does.
    pub fn rules_out(&self, name: &str, labels: &BTreeMap<String, String>) -> Option<&'static str> {
        if !self.node_selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return Some("node selector");
        }
        let terms = self.required.as_ref()?;
        if terms.iter().any(|term| term.matches(name, labels)) {
            None
        } else {
            Some("node affinity")
        }
    }
}

impl SelectorTerm {
    /// Upstream's `nodeSelectorTerm.match` as `NewLazyErrorNodeSelector` builds it: a term with no
    /// requirement at all matches nothing (`isEmptyNodeSelectorTerm`); a requirement that does not
    /// parse (`nodeSelectorRequirementsAsSelector` / `...AsFieldSelector` errors) makes the whole
    /// term match nothing; otherwise every label requirement and every field requirement must
    /// hold. Field requirements are skipped for a node without a name, as `extractNodeFields`
    /// then gives an empty set (`len(nodeFields) > 0`).
    fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        if self.match_expressions.is_empty() && self.match_fields.is_empty() {
            return false;
        }
        let labels_hold = self
            .match_expressions
            .iter()
            .all(|r| r.label_match(labels) == Some(true));
        let fields_hold = self
            .match_fields
            .iter()
            .all(|r| r.field_match(name).is_some_and(|m| m || name.is_empty()));
        labels_hold && fields_hold
    }
}

impl Requirement {
    /// Whether the labels satisfy it (apimachinery `labels.Requirement.Matches`), or `None` when it
    /// does not parse (`labels.NewRequirement`: `In`/`NotIn` need values, `Exists`/`DoesNotExist`
    /// none, `Gt`/`Lt` exactly one integer; any other operator is unsupported). A missing label
    /// fails `In`, `Exists`, `Gt`, `Lt` and satisfies `NotIn`, `DoesNotExist`; `Gt`/`Lt` compare
    /// the label as a base-10 int64 (`strconv.ParseInt`), and a label that is not one fails.
    /// Key and value syntax are the API server's to check (pod validation refuses bad ones).
    fn label_match(&self, labels: &BTreeMap<String, String>) -> Option<bool> {
        let label = labels.get(&self.key);
        let values = &self.values;
        match self.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => None,
            "In" => Some(label.is_some_and(|v| values.contains(v))),
            "NotIn" => Some(label.is_none_or(|v| !values.contains(v))),
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

    /// Whether the node's fields satisfy it (`nodeSelectorRequirementsAsFieldSelector`: `In` or
    /// `NotIn` with exactly one value, as a field selector `key=value` / `key!=value` over the
    /// node's fields, where only `metadata.name` is set and any other key reads as empty), or
    /// `None` when it does not parse.
    fn field_match(&self, name: &str) -> Option<bool> {
        let [value] = self.values.as_slice() else {
            return None;
        };
        let field = if self.key == "metadata.name" { name } else { "" };
        match self.operator.as_str() {
            "In" => Some(field == value),
            "NotIn" => Some(field != value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn req(key: &str, operator: &str, values: &[&str]) -> Requirement {
        Requirement {
            key: key.into(),
            operator: operator.into(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    fn affinity(terms: Vec<SelectorTerm>) -> NodeSelection {
        NodeSelection {
            required: Some(terms),
            ..NodeSelection::default()
        }
    }

    fn exprs(requirements: Vec<Requirement>) -> SelectorTerm {
        SelectorTerm {
            match_expressions: requirements,
            ..SelectorTerm::default()
        }
    }

    /// apimachinery `labels.Requirement.Matches` per operator, and `labels.NewRequirement`'s
    /// parse errors (a requirement that does not parse matches nothing).
    #[test]
    fn each_operator_matches_labels_as_apimachinery_does() {
        let node = labels(&[("pool", "gpu"), ("gen", "5"), ("zone", "a")]);
        let m = |r: Requirement| r.label_match(&node);
        assert_eq!(m(req("pool", "In", &["cpu", "gpu"])), Some(true));
        assert_eq!(m(req("pool", "In", &["cpu"])), Some(false));
        assert_eq!(
            m(req("absent", "In", &["gpu"])),
            Some(false),
            "missing label fails In"
        );
        assert_eq!(m(req("pool", "In", &[])), None, "In needs values");
        assert_eq!(m(req("pool", "NotIn", &["cpu"])), Some(true));
        assert_eq!(m(req("pool", "NotIn", &["gpu"])), Some(false));
        assert_eq!(
            m(req("absent", "NotIn", &["gpu"])),
            Some(true),
            "missing label satisfies NotIn"
        );
        assert_eq!(m(req("pool", "NotIn", &[])), None);
        assert_eq!(m(req("pool", "Exists", &[])), Some(true));
        assert_eq!(m(req("absent", "Exists", &[])), Some(false));
        assert_eq!(m(req("pool", "Exists", &["gpu"])), None, "Exists takes no values");
        assert_eq!(m(req("absent", "DoesNotExist", &[])), Some(true));
        assert_eq!(m(req("pool", "DoesNotExist", &[])), Some(false));
        assert_eq!(m(req("pool", "DoesNotExist", &["x"])), None);
        assert_eq!(m(req("gen", "Gt", &["4"])), Some(true));
        assert_eq!(m(req("gen", "Gt", &["5"])), Some(false), "strictly greater");
        assert_eq!(m(req("gen", "Lt", &["6"])), Some(true));
        assert_eq!(m(req("gen", "Lt", &["-1"])), Some(false));
        assert_eq!(m(req("gen", "Gt", &["+4"])), Some(true), "ParseInt takes a sign");
        assert_eq!(
            m(req("zone", "Gt", &["1"])),
            Some(false),
            "a label that is no integer fails"
        );
        assert_eq!(m(req("absent", "Lt", &["9"])), Some(false));
        assert_eq!(
            m(req("gen", "Gt", &["four"])),
            None,
            "the bound must be an integer"
        );
        assert_eq!(m(req("gen", "Gt", &["1", "2"])), None, "exactly one value");
        assert_eq!(m(req("gen", "Gt", &[])), None);
        assert_eq!(
            m(req("pool", "Equals", &["gpu"])),
            None,
            "not a node selector operator"
        );
    }

    /// `nodeSelectorRequirementsAsFieldSelector`: `In`/`NotIn` with one value on `metadata.name`.
    #[test]
    fn match_fields_select_by_node_name() {
        let term = |operator: &str, values: &[&str]| SelectorTerm {
            match_fields: vec![req("metadata.name", operator, values)],
            ..SelectorTerm::default()
        };
        let none = BTreeMap::new();
        assert!(term("In", &["gpu-0"]).matches("gpu-0", &none));
        assert!(!term("In", &["gpu-0"]).matches("gpu-1", &none));
        assert!(term("NotIn", &["gpu-0"]).matches("gpu-1", &none));
        assert!(!term("NotIn", &["gpu-0"]).matches("gpu-0", &none));
        assert!(
            !term("In", &["gpu-0", "gpu-1"]).matches("gpu-0", &none),
            "one value only"
        );
        assert!(!term("Exists", &[]).matches("gpu-0", &none), "In/NotIn only");
        let other_field = SelectorTerm {
            match_fields: vec![req("spec.podCIDR", "In", &["x"])],
            ..SelectorTerm::default()
        };
        assert!(
            !other_field.matches("gpu-0", &none),
            "a field nodes do not have reads empty"
        );
    }

    /// `NewLazyErrorNodeSelector` and `LazyErrorNodeSelector.Match`: terms ORed, requirements
    /// in a term ANDed (labels and fields), an empty term or an empty term list matches nothing,
    /// and a term that does not parse matches nothing while another term still can.
    #[test]
    fn terms_are_ored_and_requirements_anded() {
        let gpu = labels(&[("pool", "gpu"), ("gen", "5")]);
        let cpu = labels(&[("pool", "cpu")]);
        let both = exprs(vec![req("pool", "In", &["gpu"]), req("gen", "Gt", &["4"])]);
        assert_eq!(affinity(vec![both.clone()]).rules_out("n", &gpu), None);
        let older = labels(&[("pool", "gpu"), ("gen", "3")]);
        assert_eq!(
            affinity(vec![both.clone()]).rules_out("n", &older),
            Some("node affinity")
        );
        let either = affinity(vec![both.clone(), exprs(vec![req("pool", "In", &["cpu"])])]);
        assert_eq!(either.rules_out("n", &cpu), None);
        assert_eq!(either.rules_out("n", &older), Some("node affinity"));
        assert_eq!(
            affinity(vec![]).rules_out("n", &gpu),
            Some("node affinity"),
            "no terms"
        );
        assert_eq!(
            affinity(vec![SelectorTerm::default()]).rules_out("n", &gpu),
            Some("node affinity"),
            "an empty term selects nothing"
        );
        let broken = exprs(vec![req("pool", "In", &["gpu"]), req("gen", "Gt", &["x"])]);
        assert_eq!(
            affinity(vec![broken.clone()]).rules_out("n", &gpu),
            Some("node affinity")
        );
        assert_eq!(affinity(vec![broken, both]).rules_out("n", &gpu), None);
        let named = SelectorTerm {
            match_expressions: vec![req("pool", "In", &["gpu"])],
            match_fields: vec![req("metadata.name", "In", &["gpu-0"])],
        };
        assert_eq!(affinity(vec![named.clone()]).rules_out("gpu-0", &gpu), None);
        assert_eq!(
            affinity(vec![named]).rules_out("gpu-1", &gpu),
            Some("node affinity")
        );
    }

    /// `GetRequiredNodeAffinity`: the nodeSelector (every key equal) and the affinity both hold;
    /// the selector is checked first. Read from the pod spec as typed data.
    #[test]
    fn node_selector_and_affinity_both_hold() {
        let spec: PodSpec = serde_json::from_value(json!({
            "containers": [],
            "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": ["b"]}
                ]}]
            }}}
        }))
        .unwrap();
        let selection = NodeSelection::of(&spec);
        let l4 = |zone: &str| {
            labels(&[
                ("cloud.google.com/gke-accelerator", "nvidia-l4"),
                ("topology.kubernetes.io/zone", zone),
            ])
        };
        assert_eq!(selection.rules_out("n", &l4("a")), None);
        assert_eq!(selection.rules_out("n", &l4("b")), Some("node affinity"));
        let t4 = labels(&[
            ("cloud.google.com/gke-accelerator", "nvidia-t4"),
            ("topology.kubernetes.io/zone", "b"),
        ]);
        assert_eq!(selection.rules_out("n", &t4), Some("node selector"));
        assert_eq!(selection.rules_out("n", &BTreeMap::new()), Some("node selector"));
        assert_eq!(NodeSelection::default().rules_out("n", &BTreeMap::new()), None);
        let empty_value = NodeSelection {
            node_selector: labels(&[("pool", "")]),
            ..NodeSelection::default()
        };
        assert_eq!(
            empty_value.rules_out("n", &BTreeMap::new()),
            Some("node selector")
        );
        assert_eq!(empty_value.rules_out("n", &labels(&[("pool", "")])), None);
    }
}
