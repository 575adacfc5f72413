//! What the cluster holds after a write, against what was planned: the report, the JSON
//! `changes[].after` and the audit record come from the object read back, not from the plan.
//!
//! An admission webhook (GKE Autopilot's resource mutator, a Kyverno policy) or a LimitRange
//! may store other values than the ones written; that is said, not treated as a failure.

use serde_json::Value;

use super::undo::current_value;
use super::{Change, ChangeValue};

/// A field the server stored with another value than the one written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub object: String,
    pub field: String,
    pub planned: Option<ChangeValue>,
    pub stored: Option<ChangeValue>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: the API server stored {}, not the {} written (an admission webhook, policy or \
             LimitRange changed it)",
            self.object,
            self.field,
            ChangeValue::show(self.stored.as_ref()),
            ChangeValue::show(self.planned.as_ref())
        )
    }
}

/// The planned changes as stored: `after` read from `stored` (the object as JSON), plus the
/// fields whose stored value differs from the plan's. Fields this tool cannot read back (an
/// annotation such as `restartedAt`) keep the planned value.
pub fn observe(planned: &[Change], stored: &Value) -> (Vec<Change>, Vec<Difference>) {
    let mut changes = Vec::with_capacity(planned.len());
    let mut differences = Vec::new();
    for change in planned {
        let path = &change.field;
        let now = current_value(stored, path);
        if now == change.after {
            changes.push(change.clone());
        } else {
            differences.push(Difference {
                object: change.object.clone(),
                field: change.field.text(),
                planned: change.after.clone(),
                stored: now.clone(),
            });
            changes.push(Change {
                after: now,
                ..change.clone()
            });
        }
    }
    (changes, differences)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::FieldPath;
    use serde_json::json;

    fn deployment(cpu: &str) -> Value {
        json!({"spec": {"replicas": 5, "template": {"spec": {"containers": [
            {"name": "orchestrator", "resources": {"requests": {"cpu": cpu}}}]}}}})
    }

    const CPU: &str = "spec.template.spec.containers[orchestrator].resources.requests.cpu";

    #[test]
    fn stored_values_equal_by_value_are_the_plan() {
        let planned = vec![Change::new(
            "deployment/o",
            CPU,
            Some(ChangeValue::quantity("250m")),
            Some(ChangeValue::quantity("1")),
        )];
        let (changes, differences) = observe(&planned, &deployment("1000m"));
        assert_eq!(changes, planned, "1000m is 1: the planned text stays");
        assert!(differences.is_empty());
    }

    #[test]
    fn a_mutated_value_is_reported_as_stored() {
        let planned = vec![Change::new(
            "deployment/o",
            CPU,
            Some(ChangeValue::quantity("250m")),
            Some(ChangeValue::quantity("300m")),
        )];
        let (changes, differences) = observe(&planned, &deployment("500m"));
        assert_eq!(changes[0].after_text(), "500m");
        assert_eq!(changes[0].before_text(), "250m");
        assert_eq!(differences.len(), 1);
        let text = differences[0].to_string();
        assert!(text.contains("stored 500m, not the 300m written"), "{text}");
    }

    #[test]
    fn annotations_and_counts_are_read_back_too() {
        let planned = vec![Change::new(
            "deployment/o",
            FieldPath::RestartedAt,
            None,
            Some(ChangeValue::text("t")),
        )];
        let mut restarted = deployment("1");
        restarted["spec"]["template"]["metadata"] =
            json!({"annotations": {"kubectl.kubernetes.io/restartedAt": "t"}});
        assert_eq!(observe(&planned, &restarted), (planned.clone(), vec![]));
        assert_eq!(observe(&planned, &deployment("1")).1.len(), 1, "not stored: said");
        let replicas = vec![Change::new(
            "deployment/o",
            "spec.replicas",
            Some(ChangeValue::count(3)),
            Some(ChangeValue::count(5)),
        )];
        assert_eq!(observe(&replicas, &deployment("1")).0, replicas);
    }
}
