//! RBAC as kube-apiserver's RBAC authorizer evaluates it (plugin/pkg/auth/authorizer/rbac/rbac.go,
//! `RuleAllows`; pkg/apis/rbac/v1/evaluation_helpers.go, `VerbMatches`, `APIGroupMatches`,
//! `ResourceMatches`, `ResourceNameMatches`), from the stored Roles, ClusterRoles, RoleBindings
//! and ClusterRoleBindings, for the kubeconfig's non-admin users; and the objects seeded for
//! them: upstream's bootstrap `admin` ClusterRole (plugin/pkg/auth/authorizer/rbac/
//! bootstrappolicy/policy.go, `ClusterRoles`: `admin` aggregates `system:aggregate-to-admin`,
//! `edit`, `system:aggregate-to-edit`, `view` and `system:aggregate-to-view`; metrics-server adds
//! `system:aggregated-metrics-reader`) bound in `llm-orchestrator` to `sim-ns-admin`, and a
//! narrower Role without `services/proxy` bound there to `sim-operator`.

use serde_json::{Value, json};

use crate::store::{ObjectKey, Store};

/// A namespace admin of [`NAMESPACE`]: a RoleBinding to the ClusterRole `admin`.
pub const NS_ADMIN: &str = "sim-ns-admin";
/// The restricted operator of the runbook: a RoleBinding to the Role [`OPERATOR_ROLE`].
pub const OPERATOR: &str = "sim-operator";
/// The Role `sim-operator` is bound to: `admin`'s rules without `services/proxy`.
pub const OPERATOR_ROLE: &str = "orchscale-operator";
/// The namespace both users administer.
pub const NAMESPACE: &str = "llm-orchestrator";

/// The users whose requests RBAC decides, in kubeconfig order.
pub const USERS: &[&str] = &[NS_ADMIN, OPERATOR];

/// What a request (or an access review) asks to do, as the authorizer's attributes.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    /// Empty at the cluster scope (cluster-scoped resources, lists across namespaces).
    pub namespace: &'a str,
    pub name: &'a str,
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// Whether one PolicyRule allows the request (upstream `RuleAllows` for resource requests).
pub fn rule_allows(rule: &Value, a: &Attributes<'_>) -> bool {
    let combined = if a.subresource.is_empty() {
        a.resource.to_owned()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let verb = strings(&rule["verbs"]).any(|v| v == "*" || v == a.verb);
    let group = strings(&rule["apiGroups"]).any(|g| g == "*" || g == a.group);
    let resource = strings(&rule["resources"]).any(|r| {
        r == "*"
            || r == combined
            || (!a.subresource.is_empty() && r.strip_prefix("*/") == Some(a.subresource))
    });
    let mut names = strings(&rule["resourceNames"]).peekable();
    let name = names.peek().is_none() || names.any(|n| n == a.name);
    verb && group && resource && name
}

fn binds(binding: &Value, user: &str) -> bool {
    binding["subjects"].as_array().is_some_and(|subjects| {
        subjects.iter().any(|s| {
            (s["kind"] == "User" && s["name"] == user)
                || (s["kind"] == "Group" && s["name"] == "system:authenticated")
        })
    })
}

/// The rules a binding's roleRef grants; a Role is looked up in the binding's namespace.
fn referenced_rules(store: &Store, role_ref: &Value, namespace: &str) -> Vec<Value> {
    let name = role_ref["name"].as_str().unwrap_or("");
    let key = match role_ref["kind"].as_str() {
        Some("ClusterRole") => ObjectKey::new("clusterroles", "", name),
        Some("Role") if !namespace.is_empty() => ObjectKey::new("roles", namespace, name),
        _ => return Vec::new(),
    };
    store
        .get(&key)
        .and_then(|role| role["rules"].as_array().cloned())
        .unwrap_or_default()
}

/// Why `user` may do what `a` asks (upstream's reason wording), or `None` when no binding
/// allows it: ClusterRoleBindings everywhere, RoleBindings in the request's namespace only.
pub fn allows(store: &Store, user: &str, a: &Attributes<'_>) -> Option<String> {
    let (cluster_bindings, _) = store.list("clusterrolebindings", None);
    for binding in cluster_bindings.iter().filter(|b| binds(b, user)) {
        if referenced_rules(store, &binding["roleRef"], "")
            .iter()
            .any(|rule| rule_allows(rule, a))
        {
            return Some(format!(
                "RBAC: allowed by ClusterRoleBinding {:?} of ClusterRole {:?} to User {user:?}",
                binding["metadata"]["name"].as_str().unwrap_or(""),
                binding["roleRef"]["name"].as_str().unwrap_or(""),
            ));
        }
    }
    if a.namespace.is_empty() {
        return None;
    }
    let (bindings, _) = store.list("rolebindings", Some(a.namespace));
    for binding in bindings.iter().filter(|b| binds(b, user)) {
        if referenced_rules(store, &binding["roleRef"], a.namespace)
            .iter()
            .any(|rule| rule_allows(rule, a))
        {
            return Some(format!(
                "RBAC: allowed by RoleBinding \"{}/{}\" of {} {:?} to User {user:?}",
                binding["metadata"]["name"].as_str().unwrap_or(""),
                a.namespace,
                binding["roleRef"]["kind"].as_str().unwrap_or(""),
                binding["roleRef"]["name"].as_str().unwrap_or(""),
            ));
        }
    }
    None
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": [group], "resources": resources})
}

/// `system:aggregate-to-admin` (bootstrappolicy `ClusterRoles`).
fn aggregate_to_admin() -> Vec<Value> {
    vec![
        rule(
            &["create"],
            "authorization.k8s.io",
            &["localsubjectaccessreviews"],
        ),
        rule(
            READ_WRITE,
            "rbac.authorization.k8s.io",
            &["roles", "rolebindings"],
        ),
    ]
}

/// `system:aggregate-to-edit` (bootstrappolicy `ClusterRoles`; `endpoints` left the write rule
/// in 1.22, `pods/eviction` and `serviceaccounts/token` joined it).
fn aggregate_to_edit() -> Vec<Value> {
    let pod_access = ["pods/attach", "pods/proxy", "pods/exec", "pods/portforward"];
    let mut read_escalating = pod_access.to_vec();
    read_escalating.extend(["secrets", "services/proxy"]);
    let mut write_pods = vec!["pods"];
    write_pods.extend(pod_access);
    vec![
        rule(READ, "", &read_escalating),
        rule(&["impersonate"], "", &["serviceaccounts"]),
        rule(WRITE, "", &write_pods),
        rule(&["create"], "", &["pods/eviction"]),
        rule(
            WRITE,
            "",
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
            ],
        ),
        rule(&["create"], "", &["serviceaccounts/token"]),
        rule(
            WRITE,
            "apps",
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(WRITE, "autoscaling", &["horizontalpodautoscalers"]),
        rule(WRITE, "batch", &["jobs", "cronjobs"]),
        rule(
            WRITE,
            "extensions",
            &[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(WRITE, "policy", &["poddisruptionbudgets"]),
        rule(WRITE, "networking.k8s.io", &["networkpolicies", "ingresses"]),
    ]
}

/// `system:aggregate-to-view` (bootstrappolicy `ClusterRoles`).
fn aggregate_to_view() -> Vec<Value> {
    vec![
        rule(
            READ,
            "",
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            READ,
            "",
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        rule(READ, "", &["namespaces"]),
        rule(READ, "discovery.k8s.io", &["endpointslices"]),
        rule(
            READ,
            "apps",
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ],
        ),
        rule(
            READ,
            "autoscaling",
            &["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
        ),
        rule(
            READ,
            "batch",
            &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
        ),
        rule(
            READ,
            "extensions",
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(
            READ,
            "policy",
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            "networking.k8s.io",
            &["networkpolicies", "ingresses", "ingresses/status"],
        ),
    ]
}

/// metrics-server's `system:aggregated-metrics-reader`, aggregated into view, edit and admin.
fn metrics_reader() -> Vec<Value> {
    vec![rule(READ, "metrics.k8s.io", &["pods", "nodes"])]
}

fn label(name: &str) -> String {
    format!("rbac.authorization.k8s.io/aggregate-to-{name}")
}

fn cluster_role(name: &str, aggregate_to: &[&str], aggregates: Option<&str>, rules: Vec<Value>) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    for target in aggregate_to {
        labels[label(target)] = json!("true");
    }
    let mut role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "rules": rules,
    });
    if let Some(source) = aggregates {
        role["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {label(source): "true"}}]});
    }
    role
}

/// The rules of upstream's `admin` as the aggregation controller fills them in.
pub fn admin_rules() -> Vec<Value> {
    let mut rules = aggregate_to_admin();
    rules.extend(edit_rules());
    rules
}

fn edit_rules() -> Vec<Value> {
    let mut rules = aggregate_to_edit();
    rules.extend(view_rules());
    rules
}

fn view_rules() -> Vec<Value> {
    let mut rules = aggregate_to_view();
    rules.extend(metrics_reader());
    rules
}

/// `admin` without `services/proxy`: the restricted operator of issue 8.
fn operator_rules() -> Vec<Value> {
    admin_rules()
        .into_iter()
        .filter_map(|mut rule| {
            let resources: Vec<Value> = strings(&rule["resources"])
                .filter(|r| *r != "services/proxy")
                .map(Value::from)
                .collect();
            if resources.is_empty() {
                return None;
            }
            rule["resources"] = Value::Array(resources);
            Some(rule)
        })
        .collect()
}

fn role_binding(name: &str, user: &str, kind: &str, role: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
    })
}

/// Creates the default roles and bindings that are missing; existing objects are kept.
pub fn seed(store: &Store) {
    let cluster_roles = [
        cluster_role("admin", &[], Some("admin"), admin_rules()),
        cluster_role("edit", &["admin"], Some("edit"), edit_rules()),
        cluster_role("view", &["edit"], Some("view"), view_rules()),
        cluster_role(
            "system:aggregate-to-admin",
            &["admin"],
            None,
            aggregate_to_admin(),
        ),
        cluster_role("system:aggregate-to-edit", &["edit"], None, aggregate_to_edit()),
        cluster_role("system:aggregate-to-view", &["view"], None, aggregate_to_view()),
        cluster_role(
            "system:aggregated-metrics-reader",
            &["admin", "edit", "view"],
            None,
            metrics_reader(),
        ),
    ];
    for role in cluster_roles {
        let name = role["metadata"]["name"].as_str().unwrap_or("").to_owned();
        // AlreadyExists: seeded before (or written by a test), kept as it is.
        let _ = store.create(&ObjectKey::new("clusterroles", "", &name), role);
    }
    let operator_role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": OPERATOR_ROLE, "namespace": NAMESPACE},
        "rules": operator_rules(),
    });
    let _ = store.create(&ObjectKey::new("roles", NAMESPACE, OPERATOR_ROLE), operator_role);
    for (user, kind, role) in [
        (NS_ADMIN, "ClusterRole", "admin"),
        (OPERATOR, "Role", OPERATOR_ROLE),
    ] {
        let binding = role_binding(user, user, kind, role);
        let _ = store.create(&ObjectKey::new("rolebindings", NAMESPACE, user), binding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs<'a>(verb: &'a str, group: &'a str, resource: &'a str, sub: &'a str) -> Attributes<'a> {
        Attributes {
            verb,
            group,
            resource,
            subresource: sub,
            namespace: NAMESPACE,
            name: "orchestrator",
        }
    }

    // Upstream `ResourceMatches`: `*` matches every resource and subresource, `*/scale` any
    // resource's scale subresource, and an exact name only itself.
    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let rule = json!({"verbs": ["get", "patch"], "apiGroups": ["apps"], "resources": ["deployments"]});
        assert!(rule_allows(&rule, &attrs("patch", "apps", "deployments", "")));
        assert!(!rule_allows(&rule, &attrs("delete", "apps", "deployments", "")));
        assert!(!rule_allows(&rule, &attrs("patch", "", "deployments", "")));
        assert!(!rule_allows(
            &rule,
            &attrs("patch", "apps", "deployments", "scale")
        ));
        let wildcard = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]});
        assert!(rule_allows(
            &wildcard,
            &attrs("patch", "apps", "deployments", "scale")
        ));
        let scale = json!({"verbs": ["*"], "apiGroups": ["apps"], "resources": ["*/scale"]});
        assert!(rule_allows(
            &scale,
            &attrs("update", "apps", "statefulsets", "scale")
        ));
        assert!(!rule_allows(&scale, &attrs("update", "apps", "statefulsets", "")));
        let named = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
                           "resourceNames": ["other"]});
        assert!(!rule_allows(&named, &attrs("get", "", "configmaps", "")));
    }

    #[test]
    fn the_operator_role_is_admin_without_the_service_proxy() {
        let proxy = attrs("get", "", "services", "proxy");
        assert!(admin_rules().iter().any(|r| rule_allows(r, &proxy)));
        assert!(!operator_rules().iter().any(|r| rule_allows(r, &proxy)));
        let patch = attrs("patch", "apps", "deployments", "");
        assert!(operator_rules().iter().any(|r| rule_allows(r, &patch)));
    }

    #[test]
    fn bindings_apply_in_their_namespace_only() {
        let store = Store::new();
        seed(&store);
        seed(&store);
        let list_pods = |namespace| Attributes {
            verb: "list",
            group: "",
            resource: "pods",
            subresource: "",
            namespace,
            name: "",
        };
        assert!(allows(&store, NS_ADMIN, &list_pods(NAMESPACE)).is_some());
        assert!(allows(&store, NS_ADMIN, &list_pods("")).is_none());
        assert!(allows(&store, NS_ADMIN, &list_pods("kube-system")).is_none());
        assert!(allows(&store, "someone-else", &list_pods(NAMESPACE)).is_none());
    }
}
