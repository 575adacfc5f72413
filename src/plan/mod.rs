//! Pure planning: from the objects read and the user's request, what will change.
//!
//! Nothing here talks to the cluster or the terminal. Each command's module turns
//! its input into a plan (the changes to preview, the patch to send, the warnings
//! to show) or a [`PlanError`] that is refused before any write (exit 2).

pub mod audit;
pub mod connections;
pub mod field;
pub mod hpa;
pub mod outcome;
pub mod profile;
pub mod recommend;
pub mod resources;
pub mod scale;
pub mod undo;
pub mod validate;
pub mod value;

use serde::Serialize;

pub use field::FieldPath;
pub use value::ChangeValue;

/// One field a command changes, as previewed and reported in JSON (`changes[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `kind/name`, e.g. `deployment/orchestrator`.
    pub object: String,
    /// The field, typed; as text e.g. `spec.replicas` or
    /// `spec.template.spec.containers[orchestrator].resources.requests.cpu`.
    pub field: FieldPath,
    /// The value before, `None` when the field was unset (JSON `null`).
    pub before: Option<ChangeValue>,
    /// The value after, `None` when the field is removed (JSON `null`).
    pub after: Option<ChangeValue>,
}

impl Change {
    pub fn new(
        object: impl Into<String>,
        field: impl Into<FieldPath>,
        before: Option<ChangeValue>,
        after: Option<ChangeValue>,
    ) -> Self {
        Self {
            object: object.into(),
            field: field.into(),
            before,
            after,
        }
    }

    /// The value before as the preview shows it (`(unset)` when absent).
    pub fn before_text(&self) -> String {
        ChangeValue::show(self.before.as_ref())
    }

    /// The value after as the preview shows it (`(unset)` when absent).
    pub fn after_text(&self) -> String {
        ChangeValue::show(self.after.as_ref())
    }
}

/// Input refused before anything is written: exit 2, a one-line message and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub message: String,
    pub hint: String,
}

impl PlanError {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlanError {}
