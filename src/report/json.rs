//! The one document of `-o json` / `-o yaml`: the SPEC's common fields plus each command's own.
//! Its shapes are the contract in `docs/schema/` (README "JSON output").

use serde_json::{Map, Value, json};

use crate::cli::OutputFormat;
use crate::plan::Change;

/// The document as stdout carries it: JSON on one line, or YAML (the same data).
pub fn render(format: OutputFormat, document: &Value) -> String {
    match format {
        // serde-saphyr (already in the tree for config.yaml) writes YAML 1.2; should it ever
        // fail, JSON is YAML too.
        OutputFormat::Yaml => serde_saphyr::to_string(document)
            .map(|text| text.trim_end().to_string())
            .unwrap_or_else(|_| document.to_string()),
        OutputFormat::Json | OutputFormat::Text => document.to_string(),
    }
}

/// Builds the document every command prints in JSON mode.
///
/// `extra` holds the per-command fields (`replicas`, `pods`, `hpa`, `checks`, ...); it may not
/// override the common ones.
pub fn document(
    command: &str,
    context: &str,
    namespace: &str,
    dry_run: bool,
    changes: &[Change],
    ok: bool,
    extra: Map<String, Value>,
) -> Value {
    let mut doc = Map::new();
    for (key, value) in extra {
        doc.insert(key, value);
    }
    doc.insert("command".into(), json!(command));
    doc.insert("context".into(), json!(context));
    doc.insert("namespace".into(), json!(namespace));
    doc.insert("dryRun".into(), json!(dry_run));
    doc.insert("changes".into(), json!(changes));
    doc.insert("result".into(), json!(if ok { "ok" } else { "failed" }));
    Value::Object(doc)
}

/// Appends `warnings` to the document's `warnings` array (created when absent), skipping
/// the ones it already holds.
pub fn add_warnings(document: &mut Value, warnings: &[String]) {
    let Some(doc) = document.as_object_mut() else {
        return;
    };
    let list = doc.entry("warnings").or_insert_with(|| json!([]));
    if let Some(list) = list.as_array_mut() {
        for warning in warnings {
            if !list.iter().any(|w| w == warning) {
                list.push(json!(warning));
            }
        }
    }
}

/// The document printed on stdout when a command fails before it built its own document
/// (docs/schema/error.schema.json); `warnings` as in every document.
pub fn error_document(message: &str, hint: &str) -> Value {
    json!({"error": {"message": message, "hint": hint}, "result": "failed", "warnings": []})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_added_once_after_the_commands_own() {
        let mut doc = json!({"warnings": ["own"]});
        add_warnings(&mut doc, &["own".to_string(), "said".to_string()]);
        assert_eq!(doc["warnings"], json!(["own", "said"]));
        let mut bare = json!({"command": "scale"});
        add_warnings(&mut bare, &[]);
        assert_eq!(bare["warnings"], json!([]));
    }

    #[test]
    fn document_has_the_spec_fields() {
        let changes = vec![Change::new(
            "deployment/x",
            "spec.replicas",
            Some(crate::plan::ChangeValue::count(3)),
            Some(crate::plan::ChangeValue::count(5)),
        )];
        let mut extra = Map::new();
        extra.insert("replicas".into(), json!(5));
        extra.insert("result".into(), json!("sneaky"));
        let doc = document("scale", "sim", "ns", true, &changes, true, extra);
        assert_eq!(doc["command"], "scale");
        assert_eq!(doc["context"], "sim");
        assert_eq!(doc["namespace"], "ns");
        assert_eq!(doc["dryRun"], true);
        assert_eq!(
            doc["result"], "ok",
            "extra fields cannot override the common ones"
        );
        assert_eq!(doc["replicas"], 5);
        assert_eq!(
            doc["changes"][0],
            json!({"object": "deployment/x", "field": "spec.replicas", "before": 3, "after": 5})
        );
    }

    #[test]
    fn yaml_is_the_same_document() {
        let doc = json!({"command": "scale", "replicas": 5, "changes": [{"before": 3, "after": "500m"}],
                         "hpa": null, "warnings": ["a: b"]});
        let yaml = render(OutputFormat::Yaml, &doc);
        let back: Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, doc, "{yaml}");
        assert!(yaml.contains("replicas: 5"), "{yaml}");
        assert_eq!(render(OutputFormat::Json, &doc), doc.to_string());
    }

    #[test]
    fn error_document_shape() {
        let doc = error_document("boom", "do this");
        assert_eq!(
            doc,
            json!({"error": {"message": "boom", "hint": "do this"}, "result": "failed", "warnings": []})
        );
    }
}
