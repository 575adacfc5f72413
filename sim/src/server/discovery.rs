//! Discovery documents (`/version`, `/api`, `/apis`, resource lists), built from the registry.
//!
//! Aggregated discovery (`as=APIGroupDiscoveryList`) is not served: the plain documents come back
//! as `application/json`, and client-go falls back to them, as it does with older servers.

use serde_json::{Value, json};

use super::registry::{self, ResourceInfo};
use crate::profile::KubernetesVersion;

/// Whether a resource is served now (its gate is open); discovery lists only those.
pub type Served<'a> = &'a dyn Fn(&ResourceInfo) -> bool;

/// Whether any resource of `group` (any version) is served.
pub fn group_served(group: &str, served: Served<'_>) -> bool {
    registry::RESOURCES.iter().any(|r| r.group == group && served(r))
}

/// The Kubernetes version the sim claims: the profile's, or the sim's own 1.32.
pub fn version(profile: Option<KubernetesVersion>) -> Value {
    let (minor, git_version) = match profile {
        Some(version) => (version.minor().to_string(), version.git_version()),
        None => ("32".to_owned(), "v1.32.0-orchscale-sim".to_owned()),
    };
    json!({
        "major": "1",
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_document(group: &str, served: Served<'_>) -> Value {
    let versions: Vec<Value> = registry::GROUPS
        .iter()
        .filter(|(g, v)| *g == group && registry::of_group_version(g, v).any(served))
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`: the groups with a resource served (no metrics.k8s.io without a metrics-server, no
/// events.k8s.io or RBAC group while their switches are off).
pub fn groups(served: Served<'_>) -> Value {
    let mut names: Vec<&str> = Vec::new();
    for (group, _) in registry::GROUPS {
        if !names.contains(group) && group_served(group, served) {
            names.push(group);
        }
    }
    let groups: Vec<Value> = names
        .into_iter()
        .map(|g| {
            let mut doc = group_document(g, served);
            if let Some(map) = doc.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            doc
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`
pub fn group(group: &str, served: Served<'_>) -> Value {
    group_document(group, served)
}

fn resource_entry(info: &ResourceInfo) -> Value {
    let mut entry = json!({
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": info.verbs,
    });
    if !info.short_names.is_empty() {
        entry["shortNames"] = json!(info.short_names);
    }
    // `kubectl get all` expands the `all` category from discovery.
    let in_all = [
        "pods",
        "services",
        "deployments",
        "replicasets",
        "statefulsets",
        "horizontalpodautoscalers",
    ];
    if info.group != "metrics.k8s.io" && in_all.contains(&info.plural) {
        entry["categories"] = json!(["all"]);
    }
    entry
}

fn subresource_entries(info: &ResourceInfo) -> Vec<Value> {
    info.subresources
        .iter()
        .map(|sub| {
            let name = format!("{}/{sub}", info.plural);
            match *sub {
                "scale" => json!({
                    "name": name, "singularName": "", "namespaced": info.namespaced,
                    "group": "autoscaling", "version": "v1", "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }),
                "proxy" => json!({
                    "name": name, "singularName": "", "namespaced": info.namespaced,
                    "kind": "ServiceProxyOptions",
                    "verbs": ["create", "delete", "get", "patch", "update"],
                }),
                _ => json!({
                    "name": name, "singularName": "", "namespaced": info.namespaced,
                    "kind": info.kind, "verbs": ["get", "patch", "update"],
                }),
            }
        })
        .collect()
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn resource_list(group: &str, version: &str, served: Served<'_>) -> Value {
    let mut resources = Vec::new();
    for info in registry::of_group_version(group, version).filter(|i| served(i)) {
        resources.push(resource_entry(info));
        resources.extend(subresource_entries(info));
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_lists_deployments_with_short_name_and_scale() {
        let doc = resource_list("apps", "v1", &|_| true);
        let resources = doc["resources"].as_array().expect("resources array");
        let deploy = resources
            .iter()
            .find(|r| r["name"] == "deployments")
            .expect("deployments");
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        assert_eq!(deploy["kind"], "Deployment");
        let scale = resources
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .expect("scale");
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["group"], "autoscaling");
    }

    #[test]
    fn groups_name_their_preferred_versions() {
        let doc = groups(&|_| true);
        let metrics = doc["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["name"] == "metrics.k8s.io"))
            .expect("metrics group");
        assert_eq!(
            metrics["preferredVersion"]["groupVersion"],
            "metrics.k8s.io/v1beta1"
        );
    }
}
