//! A minimal OpenAPI v3 discovery: the root index and, per group/version, one PATCH operation
//! per kind that declares the `fieldValidation` query parameter. That is all kubectl's
//! validation looks for (`QueryParamVerifierV3`) before trusting the server to validate, so
//! `kubectl create -f`/`apply -f` work without schemas. `/openapi/v2` stays 404.

use serde_json::{Map, Value, json};

use super::registry::{self, ResourceInfo};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut all = vec![("", "v1")];
    all.extend(registry::GROUPS.iter().copied());
    all
}

/// `/openapi/v3`: where each group/version's document is.
pub fn root() -> Value {
    let paths: Map<String, Value> = group_versions()
        .into_iter()
        .map(|(g, v)| {
            let path = gv_path(g, v);
            (
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}")}),
            )
        })
        .collect();
    json!({"paths": paths})
}

fn object_path(info: &ResourceInfo) -> String {
    let base = gv_path(info.group, info.version);
    if info.namespaced {
        format!("/{base}/namespaces/{{namespace}}/{}/{{name}}", info.plural)
    } else {
        format!("/{base}/{}/{{name}}", info.plural)
    }
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`; `None` for other paths.
pub fn group_version(path: &str) -> Option<Value> {
    let (group, version) = group_versions()
        .into_iter()
        .find(|(g, v)| gv_path(g, v) == path)?;
    let mut paths = Map::new();
    for info in registry::of_group_version(group, version) {
        if !info.verbs.contains(&"patch") {
            continue;
        }
        let operation = json!({
            "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
            "parameters": [
                {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(object_path(info), json!({"patch": operation}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_indexes_every_group_version() {
        let root = root();
        assert_eq!(
            root["paths"]["apis/apps/v1"]["serverRelativeURL"],
            "/openapi/v3/apis/apps/v1"
        );
        assert!(root["paths"].get("api/v1").is_some());
    }

    #[test]
    fn documents_declare_field_validation_on_patch() {
        let doc = group_version("apis/apps/v1").expect("apps");
        let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"fieldValidation"));
        assert!(group_version("apis/batch/v1").is_none());
    }
}
