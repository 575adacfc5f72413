//! The one table of every resource the sim serves: group, version, plural, kind, scope, verbs,
//! short names and subresources. Discovery and routing both read it.

/// Verbs of a read-write resource.
const RW: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Verbs of the read-only metrics API.
const RO: &[&str] = &["get", "list"];
/// Verbs of a read-only view that can be watched (`events.k8s.io/v1` over the core events).
const READ: &[&str] = &["get", "list", "watch"];

/// Which switch of [`crate::ApiBehaviour`] a resource is served under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Always,
    /// `ApiBehaviour::events_v1`
    EventsV1,
    /// `ApiBehaviour::rbac`
    Rbac,
}

impl Gate {
    /// Whether a resource under this gate is served with `behaviour` in force.
    pub fn open(self, behaviour: &crate::ApiBehaviour) -> bool {
        match self {
            Gate::Always => true,
            Gate::EventsV1 => behaviour.events_v1,
            Gate::Rbac => behaviour.rbac,
        }
    }
}

/// One resource as discovery describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    /// Subresources served: `status`, `scale`, `proxy`.
    pub subresources: &'static [&'static str],
    /// The store's resource name (differs from `plural` only for the metrics API).
    pub store_name: &'static str,
    /// Whether objects live in the store (false for review resources answered on the fly).
    pub stored: bool,
    /// The switch it is served under.
    pub gate: Gate,
}

impl ResourceInfo {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group, as error messages name resources.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.contains(&name)
    }
}

const fn rw(
    (group, version): (&'static str, &'static str),
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    subresources: &'static [&'static str],
) -> ResourceInfo {
    ResourceInfo {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        verbs: RW,
        short_names,
        subresources,
        store_name: plural,
        stored: true,
        gate: Gate::Always,
    }
}

/// A read-write resource served only when `gate` is open.
const fn gated(gate: Gate, info: ResourceInfo) -> ResourceInfo {
    ResourceInfo { gate, ..info }
}

/// Every resource, grouped by group/version in discovery order.
pub static RESOURCES: &[ResourceInfo] = &[
    rw(
        ("", "v1"),
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        &["status"],
    ),
    rw(("", "v1"), "nodes", "node", "Node", false, &["no"], &["status"]),
    rw(("", "v1"), "pods", "pod", "Pod", true, &["po"], &["status"]),
    rw(
        ("", "v1"),
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        &["status", "proxy"],
    ),
    rw(
        ("", "v1"),
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        &[],
    ),
    rw(("", "v1"), "events", "event", "Event", true, &["ev"], &[]),
    rw(
        ("", "v1"),
        "limitranges",
        "limitrange",
        "LimitRange",
        true,
        &["limits"],
        &[],
    ),
    rw(
        ("", "v1"),
        "resourcequotas",
        "resourcequota",
        "ResourceQuota",
        true,
        &["quota"],
        &["status"],
    ),
    rw(
        ("", "v1"),
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        &[],
    ),
    rw(
        ("apps", "v1"),
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        &["status", "scale"],
    ),
    rw(
        ("apps", "v1"),
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        &["status", "scale"],
    ),
    rw(
        ("apps", "v1"),
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        &["status", "scale"],
    ),
    rw(
        ("autoscaling", "v2"),
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        &["status"],
    ),
    ResourceInfo {
        group: "metrics.k8s.io",
        version: "v1beta1",
        plural: "pods",
        singular: "",
        kind: "PodMetrics",
        namespaced: true,
        verbs: RO,
        short_names: &[],
        subresources: &[],
        store_name: "podmetrics",
        stored: true,
        gate: Gate::Always,
    },
    ResourceInfo {
        group: "metrics.k8s.io",
        version: "v1beta1",
        plural: "nodes",
        singular: "",
        kind: "NodeMetrics",
        namespaced: false,
        verbs: RO,
        short_names: &[],
        subresources: &[],
        store_name: "nodemetrics",
        stored: true,
        gate: Gate::Always,
    },
    ResourceInfo {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        verbs: &["create"],
        short_names: &[],
        subresources: &[],
        store_name: "selfsubjectaccessreviews",
        stored: false,
        gate: Gate::Always,
    },
    // The same objects as core events, shown in the events.k8s.io/v1 shape (see `events_v1`).
    ResourceInfo {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        verbs: READ,
        short_names: &["ev"],
        subresources: &[],
        store_name: "events",
        stored: true,
        gate: Gate::EventsV1,
    },
    gated(
        Gate::Rbac,
        rw(
            ("rbac.authorization.k8s.io", "v1"),
            "clusterrolebindings",
            "clusterrolebinding",
            "ClusterRoleBinding",
            false,
            &[],
            &[],
        ),
    ),
    gated(
        Gate::Rbac,
        rw(
            ("rbac.authorization.k8s.io", "v1"),
            "clusterroles",
            "clusterrole",
            "ClusterRole",
            false,
            &[],
            &[],
        ),
    ),
    gated(
        Gate::Rbac,
        rw(
            ("rbac.authorization.k8s.io", "v1"),
            "rolebindings",
            "rolebinding",
            "RoleBinding",
            true,
            &[],
            &[],
        ),
    ),
    gated(
        Gate::Rbac,
        rw(
            ("rbac.authorization.k8s.io", "v1"),
            "roles",
            "role",
            "Role",
            true,
            &[],
            &[],
        ),
    ),
];

/// The group/versions served under `/apis`, in discovery order (the core group is under `/api`).
pub const GROUPS: &[(&str, &str)] = &[
    ("apps", "v1"),
    ("autoscaling", "v2"),
    ("authorization.k8s.io", "v1"),
    ("metrics.k8s.io", "v1beta1"),
    ("events.k8s.io", "v1"),
    ("rbac.authorization.k8s.io", "v1"),
];

/// The resource `plural` of `group/version`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Every resource of one group/version.
pub fn of_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceInfo> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Whether the sim serves this group/version at all.
pub fn serves(group: &str, version: &str) -> bool {
    RESOURCES.iter().any(|r| r.group == group && r.version == version)
}

/// The resource stored under a store name (`podmetrics` → metrics pods); for `events`, the
/// core resource (`events.k8s.io` is a second view of the same objects).
pub fn by_store_name(store_name: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.store_name == store_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_map_to_unique_store_names() {
        for r in RESOURCES {
            assert_eq!(by_store_name(r.store_name).map(|f| f.kind), Some(r.kind));
        }
        assert_eq!(
            find("metrics.k8s.io", "v1beta1", "pods").map(|r| r.store_name),
            Some("podmetrics")
        );
    }

    #[test]
    fn every_group_listed_is_served() {
        for (group, version) in GROUPS {
            assert!(serves(group, version), "{group}/{version}");
        }
        assert!(serves("", "v1"));
        assert!(!serves("batch", "v1"));
    }
}
