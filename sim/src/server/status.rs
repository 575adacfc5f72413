//! API errors as `metav1.Status` objects, with the reasons, messages and codes kube-apiserver uses
//! (see k8s.io/apimachinery/pkg/api/errors), so clients classify them as they would on a cluster.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::store::StoreError;

use super::registry::ResourceInfo;

/// One failed request: everything needed to render its `Status` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
    /// `metadata.continue` of the Status (an expired list continuation's rest).
    pub list_continue: Option<String>,
}

/// One `details.causes[]` entry of a 422 Invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub field: String,
    pub message: String,
    pub reason: &'static str,
}

impl Cause {
    /// A `FieldValueInvalid` cause: "Invalid value: <value>: <detail>".
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Self {
            field: field.into(),
            message: format!("Invalid value: {}: {detail}", render_value(value)),
            reason: "FieldValueInvalid",
        }
    }

    /// A `FieldValueForbidden` cause (apimachinery `field.Forbidden`): "Forbidden: <detail>".
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self {
            field: field.into(),
            message: format!("Forbidden: {detail}"),
            reason: "FieldValueForbidden",
        }
    }

    /// A `FieldValueRequired` cause.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_owned()
        } else {
            format!("Required value: {detail}")
        };
        Self {
            field: field.into(),
            message,
            reason: "FieldValueRequired",
        }
    }
}

/// Values print as Go's `%v` would in field errors: strings quoted, numbers bare.
fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
            list_continue: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", info.qualified()),
        )
        .with_details(json!({"name": name, "group": info.group, "kind": info.plural}))
    }

    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", info.qualified()),
        )
        .with_details(json!({"name": name, "group": info.group, "kind": info.plural}))
    }

    pub fn conflict(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                info.qualified()
            ),
        )
        .with_details(json!({"name": name, "group": info.group, "kind": info.plural}))
    }

    /// 410 for a watch or list from a resourceVersion the history no longer holds.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 410 for a list continued with a token older than the history holds, with the token for
    /// the rest of the list in `metadata.continue`, as upstream answers.
    pub fn continue_expired(rest: &str) -> Self {
        let mut error = Self::new(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can \
             start a new list without the continue parameter, or use the continue token in this response \
             to retrieve the remainder of the results. Continuing with the provided token results in an \
             inconsistent list - objects that were created, modified, or deleted between the time the \
             first chunk was returned and now may show up in the list.",
        );
        error.list_continue = Some(rest.to_owned());
        error
    }

    /// 422 with field causes; `kind` is the object's kind (`Deployment`), as the apiserver words it.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let summary = if summary.len() == 1 {
            summary.join("")
        } else {
            format!("[{}]", summary.join(", "))
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        Self::new(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {summary}"),
        )
        .with_details(json!({"name": name, "group": group, "kind": kind, "causes": causes}))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 in RBAC's words.
    pub fn forbidden(
        info: &ResourceInfo,
        subresource: Option<&str>,
        verb: &str,
        name: &str,
        ns: &str,
    ) -> Self {
        Self::forbidden_for(crate::kubeconfig::NAME, info, subresource, verb, name, ns)
    }

    /// 403 in RBAC's words, naming the user refused.
    pub fn forbidden_for(
        user: &str,
        info: &ResourceInfo,
        subresource: Option<&str>,
        verb: &str,
        name: &str,
        ns: &str,
    ) -> Self {
        let resource = match subresource {
            Some(sub) => format!("{}/{sub}", info.plural),
            None => info.plural.to_owned(),
        };
        let target = if name.is_empty() {
            info.qualified()
        } else {
            format!("{} \"{name}\"", info.qualified())
        };
        let scope = if ns.is_empty() {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace \"{ns}\"")
        };
        Self::new(
            403,
            "Forbidden",
            format!(
                "{target} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" \
                 in API group \"{}\" {scope}",
                info.group
            ),
        )
        .with_details(json!({"name": name, "group": info.group, "kind": info.plural}))
    }

    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json; got {content_type:?}"
            ),
        )
    }

    /// The error a fault rule injects for `code`, worded as the apiserver words that code.
    pub fn injected(code: u16, retry_after: Option<u64>) -> Self {
        let (reason, message) = match code {
            401 => ("Unauthorized", "Unauthorized"),
            403 => ("Forbidden", "forbidden by the simulated cluster"),
            404 => ("NotFound", "the server could not find the requested resource"),
            409 => (
                "Conflict",
                "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
            ),
            410 => ("Expired", "the resource version is too old"),
            429 => ("TooManyRequests", "Too many requests, please try again later."),
            500 => (
                "InternalError",
                "Internal error occurred: injected by the simulated cluster",
            ),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted",
            ),
            _ => ("", "injected failure"),
        };
        let mut error = Self::new(code, reason, message);
        error.retry_after = retry_after;
        if let Some(seconds) = retry_after {
            error.details = Some(json!({"retryAfterSeconds": seconds}));
        }
        error
    }

    /// Maps a store refusal for the object `name` of `info`.
    pub fn from_store(error: StoreError, info: &ResourceInfo, name: &str) -> Self {
        match error {
            StoreError::NotFound => Self::not_found(info, name),
            StoreError::AlreadyExists => Self::already_exists(info, name),
            StoreError::Conflict { .. } => Self::conflict(info, name),
            StoreError::Gone { oldest } => Self::expired(0, oldest),
        }
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        if let Some(token) = &self.list_continue {
            status["metadata"]["continue"] = json!(token);
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, super::json_body(&self.to_status())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// `Status` with `status: Success`, as a delete of most kinds answers.
pub fn success(info: &ResourceInfo, name: &str, uid: &Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": info.group, "kind": info.plural, "uid": uid},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::registry;

    #[test]
    fn invalid_lists_causes_and_words_the_message_like_the_apiserver() {
        let error = ApiError::invalid(
            "Deployment",
            "apps",
            "web",
            vec![Cause::invalid(
                "spec.replicas",
                &json!(-1),
                "must be greater than or equal to 0",
            )],
        );
        let status = error.to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(
            status["message"],
            "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(status["details"]["causes"][0]["field"], "spec.replicas");
        assert_eq!(status["details"]["causes"][0]["reason"], "FieldValueInvalid");
    }

    #[test]
    fn not_found_names_the_group_qualified_resource() {
        let info = registry::find("apps", "v1", "deployments").expect("deployments registered");
        let status = ApiError::not_found(info, "web").to_status();
        assert_eq!(status["message"], "deployments.apps \"web\" not found");
        assert_eq!(status["reason"], "NotFound");
        let core = registry::find("", "v1", "pods").expect("pods registered");
        assert_eq!(ApiError::not_found(core, "p").message, "pods \"p\" not found");
    }
}
