//! Label and field selectors, parsed from list and watch queries and matched against objects,
//! with the syntax of k8s.io/apimachinery/pkg/labels and pkg/fields.

use serde_json::Value;

use super::status::ApiError;
use crate::store::SELECTABLE_FIELDS;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

/// Splits on commas that are not inside parentheses (`a in (x,y),b`).
fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

fn set_values(key: &str, rest: &str, raw: &str) -> Result<(String, Vec<String>), ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            ApiError::bad_request(format!("unable to parse requirement: {raw:?}: expected '('"))
        })?;
    let values = inner.split(',').map(|v| v.trim().to_owned()).collect();
    Ok((key.trim().to_owned(), values))
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    ///
    /// # Errors
    /// 400 BadRequest for a requirement it cannot parse.
    pub fn parse(selector: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for raw in split_top_level(selector) {
            let part = raw.trim();
            let requirement = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_owned())
            } else if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some((key, value)) = part.split_once("==") {
                Requirement::Equals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some((key, value)) = part.split_once('=') {
                Requirement::Equals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some((key, rest)) = part.split_once(" notin ") {
                let (key, values) = set_values(key, rest, part)?;
                Requirement::NotIn(key, values)
            } else if let Some((key, rest)) = part.split_once(" in ") {
                let (key, values) = set_values(key, rest, part)?;
                Requirement::In(key, values)
            } else if part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                Requirement::Exists(part.to_owned())
            } else {
                return Err(ApiError::bad_request(format!(
                    "unable to parse requirement: found {part:?}, expected: in, notin, =, ==, !=, gt, lt"
                )));
            };
            requirements.push(requirement);
        }
        Ok(Self(requirements))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
        })
    }
}

/// A parsed field selector over the fields the apiserver supports for every kind
/// (`metadata.name`, `metadata.namespace`) plus a few per-kind ones clients use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `metadata.name=web,metadata.namespace!=x`.
    ///
    /// # Errors
    /// 400 BadRequest for a malformed requirement or a field the sim does not index.
    pub fn parse(selector: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for raw in selector.split(',').filter(|p| !p.trim().is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = raw.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = raw.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = raw.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!("invalid selector: {raw:?}")));
            };
            let field = field.trim();
            if field_value(&Value::Null, field).is_none() {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            requirements.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Self(requirements))
    }

    /// The value the selector requires `field` to equal (`field=value`), if it does: what an
    /// indexed list looks up.
    pub fn required(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, equal, _)| f == field && *equal)
            .map(|(_, _, value)| value.as_str())
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let actual = field_value(object, field).unwrap_or_default();
            (actual == *value) == *equal
        })
    }
}

/// The value of a supported field (empty when absent), or `None` for an unsupported field.
fn field_value(object: &Value, field: &str) -> Option<String> {
    let (_, pointer) = SELECTABLE_FIELDS.iter().find(|(name, _)| *name == field)?;
    Some(
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    )
}

/// A `spec.selector` (matchLabels + matchExpressions) as the string a Scale's status carries.
pub fn selector_string(selector: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(labels) = selector["matchLabels"].as_object() {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(expressions) = selector["matchExpressions"].as_array() {
        for e in expressions {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|vs| vs.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_owned()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_selectors_support_every_operator() {
        let object = pod(json!({"app": "web", "tier": "front"}));
        let yes = [
            "app=web",
            "app==web",
            "tier!=back",
            "app in (web,api)",
            "tier notin (back)",
            "app",
            "!missing",
            "app=web,tier",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).expect(s).matches(&object), "{s}");
        }
        let no = [
            "app=api",
            "app!=web",
            "app in (api)",
            "app notin (web, x)",
            "missing",
            "!app",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).expect(s).matches(&object), "{s}");
        }
        assert!(LabelSelector::parse("a in x").is_err());
    }

    #[test]
    fn field_selectors_match_name_and_namespace_and_reject_unknown_fields() {
        let object = pod(json!({}));
        assert!(
            FieldSelector::parse("metadata.name=p")
                .expect("parse")
                .matches(&object)
        );
        assert!(
            !FieldSelector::parse("metadata.namespace!=ns")
                .expect("parse")
                .matches(&object)
        );
        assert!(FieldSelector::parse("spec.bogus=1").is_err());
    }

    #[test]
    fn selector_string_renders_labels_and_expressions() {
        let selector = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "t", "operator": "In", "values": ["a", "b"]}]});
        assert_eq!(selector_string(&selector), "app=web,t in (a,b)");
    }
}
