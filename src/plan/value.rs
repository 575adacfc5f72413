//! The typed value of a changed field ([`ChangeValue`]): a count, a percentage, a quantity or
//! text, with one text form for previews and one JSON form for scripts.
//!
//! The JSON contract (README "JSON output", `docs/schema/`): counts and percentages are JSON
//! integers; quantities are strings in their canonical form (`500m`, `2Gi`: the same value is
//! always written the same way, whatever spelling the user typed); everything else is a string.
//! The audit record keeps its own, older form ([`ChangeValue::record`]), so that records written
//! by earlier versions still undo.

use serde_json::Value;

use super::FieldPath;
use crate::quantity::Quantity;

/// The value of one field before or after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeValue {
    /// A number of things: replicas, minReplicas, maxReplicas, max_connections.
    Count(i64),
    /// A percentage: an HPA's averageUtilization target.
    Percent(i32),
    /// A resource quantity (requests and limits); equal by value (`1000m == 1`).
    Quantity(Quantity),
    /// Anything else: a timestamp, a target reference, a non-utilization metric target.
    Text(String),
}

impl ChangeValue {
    pub fn count(n: impl Into<i64>) -> Self {
        ChangeValue::Count(n.into())
    }

    pub fn text(text: impl Into<String>) -> Self {
        ChangeValue::Text(text.into())
    }

    /// A count when `text` is a whole number, else the text as it is (a value someone wrote
    /// by hand in a config file).
    pub fn count_or_text(text: &str) -> Self {
        text.trim()
            .parse::<i64>()
            .map_or_else(|_| ChangeValue::text(text.trim()), ChangeValue::Count)
    }

    /// The count, for counts.
    pub fn as_count(&self) -> Option<i64> {
        match self {
            ChangeValue::Count(n) => Some(*n),
            _ => None,
        }
    }

    /// The count as an `i32` (replicas), for counts that fit.
    pub fn as_i32(&self) -> Option<i32> {
        self.as_count().and_then(|n| i32::try_from(n).ok())
    }

    /// `value` as text, `(unset)` when absent: the preview's form.
    pub fn show(value: Option<&ChangeValue>) -> String {
        value.map_or_else(|| "(unset)".to_string(), ToString::to_string)
    }

    /// The audit record's form (`previous` / `written`): counts as numbers, percentages as
    /// `"60%"`, quantities as written, text as is. Read back with [`ChangeValue::read`].
    pub fn record(&self) -> Value {
        match self {
            ChangeValue::Count(n) => Value::from(*n),
            ChangeValue::Percent(_) | ChangeValue::Text(_) => Value::String(self.to_string()),
            ChangeValue::Quantity(q) => Value::String(q.text().to_string()),
        }
    }

    /// Reads the value of `field` from JSON, as an object stores it or a record holds it
    /// (older records wrote `averageUtilization 60%`, and numbers for whole quantities).
    /// `None` for null/absent; text the field's type does not parse stays text.
    pub fn read(field: &FieldPath, value: &Value) -> Option<ChangeValue> {
        let text = match value {
            Value::Null => return None,
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        };
        Some(match field {
            FieldPath::Replicas
            | FieldPath::MinReplicas
            | FieldPath::MaxReplicas
            | FieldPath::MaxConnections { .. } => ChangeValue::count_or_text(&text),
            FieldPath::MetricUtilization { .. } | FieldPath::MetricTarget { .. } => {
                let bare = text.strip_prefix("averageUtilization ").unwrap_or(&text);
                let pct = if value.is_number() {
                    bare.parse().ok()
                } else {
                    bare.strip_suffix('%').and_then(|p| p.trim().parse().ok())
                };
                pct.map_or(ChangeValue::Text(text.clone()), ChangeValue::Percent)
            }
            FieldPath::ContainerResource { .. } => {
                Quantity::parse(&text).map_or(ChangeValue::Text(text.clone()), ChangeValue::Quantity)
            }
            FieldPath::ScaleTargetRef | FieldPath::RestartedAt => ChangeValue::Text(text),
        })
    }
}

#[cfg(test)]
impl ChangeValue {
    /// A quantity from its text, for tests.
    pub fn quantity(text: &str) -> Self {
        ChangeValue::Quantity(Quantity::parse(text).unwrap_or_else(|e| panic!("{e}")))
    }
}

impl From<&Quantity> for ChangeValue {
    fn from(q: &Quantity) -> Self {
        ChangeValue::Quantity(q.clone())
    }
}

impl std::fmt::Display for ChangeValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeValue::Count(n) => write!(f, "{n}"),
            ChangeValue::Percent(p) => write!(f, "{p}%"),
            ChangeValue::Quantity(q) => write!(f, "{q}"),
            ChangeValue::Text(t) => f.write_str(t),
        }
    }
}

impl serde::Serialize for ChangeValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ChangeValue::Count(n) => serializer.serialize_i64(*n),
            ChangeValue::Percent(p) => serializer.serialize_i32(*p),
            ChangeValue::Quantity(q) => serializer.serialize_str(&q.canonical()),
            ChangeValue::Text(t) => serializer.serialize_str(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_has_numbers_for_counts_and_percentages_and_canonical_quantities() {
        let q = |s: &str| ChangeValue::Quantity(Quantity::parse(s).unwrap());
        assert_eq!(json!(ChangeValue::count(5)), json!(5));
        assert_eq!(json!(ChangeValue::Percent(60)), json!(60));
        assert_eq!(json!(q("0.5")), json!("500m"));
        assert_eq!(json!(q("1000m")), json!("1"));
        assert_eq!(json!(q("2048Mi")), json!("2Gi"));
        assert_eq!(
            json!(ChangeValue::text("apps/v1 Deployment x")),
            json!("apps/v1 Deployment x")
        );
        assert_eq!(
            q("0.5").to_string(),
            "0.5",
            "the preview shows the user's spelling"
        );
        assert_eq!(ChangeValue::Percent(60).to_string(), "60%");
    }

    #[test]
    fn records_read_back_to_the_same_values_old_forms_included() {
        let cpu: FieldPath = "spec.template.spec.containers[o].resources.requests.cpu".into();
        let util: FieldPath = "spec.metrics[cpu].target.averageUtilization".into();
        let target: FieldPath = "spec.metrics[cpu].target".into();
        for (field, value) in [
            (FieldPath::Replicas, ChangeValue::count(3)),
            (util.clone(), ChangeValue::Percent(60)),
            (
                cpu.clone(),
                ChangeValue::Quantity(Quantity::parse("500m").unwrap()),
            ),
            (target.clone(), ChangeValue::text("averageValue 500m")),
            (FieldPath::RestartedAt, ChangeValue::text("2026-11-28T08:00:00Z")),
        ] {
            assert_eq!(ChangeValue::read(&field, &value.record()), Some(value), "{field}");
        }
        assert_eq!(
            ChangeValue::read(&target, &json!("averageUtilization 75%")),
            Some(ChangeValue::Percent(75))
        );
        assert_eq!(
            ChangeValue::read(&util, &json!(70)),
            Some(ChangeValue::Percent(70))
        );
        assert_eq!(
            ChangeValue::read(&cpu, &json!(2)),
            Some(ChangeValue::Quantity(Quantity::parse("2").unwrap()))
        );
        assert_eq!(
            ChangeValue::read(&FieldPath::Replicas, &json!("3")),
            Some(ChangeValue::count(3))
        );
        assert_eq!(ChangeValue::read(&FieldPath::Replicas, &Value::Null), None);
    }
}
