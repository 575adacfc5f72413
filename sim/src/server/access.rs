//! SelfSubjectAccessReview (`kubectl auth can-i`, the plugin's preflight): allowed unless a fault
//! denies the verb on the resource, or, for a user RBAC authorizes, no stored binding allows it. Accepts JSON and protobuf bodies and answers in the type the
//! client accepts, since kubectl sends this review as protobuf.

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_pb::api::authorization::v1::{SelfSubjectAccessReview, SubjectAccessReviewStatus};
use prost::Message;
use serde_json::{Value, json};

use super::rbac::{self, Attributes};
use super::status::ApiError;
use super::{ApiRequest, App, User, json_response};

use super::protobuf::{self, CONTENT_TYPE as PROTOBUF};

/// The resource a review asks about, as fault rules name it: `deployments` or `deployments/scale`.
fn resource_path(resource: &str, subresource: &str) -> String {
    if subresource.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}/{subresource}")
    }
}

/// Whether `user` may do what the review asks, and why: denied by a fault for anyone, else
/// allowed for the admin user and decided by RBAC for the others.
fn decide(app: &App, user: User, a: &Attributes<'_>) -> (bool, String) {
    if app
        .faults
        .is_denied(a.verb, &resource_path(a.resource, a.subresource))
    {
        return (false, "denied by the simulated cluster's fault rules".to_owned());
    }
    match user {
        User::Admin => (true, "allowed by the simulated cluster".to_owned()),
        // Upstream answers a denial with an empty reason when no rule matched.
        User::Rbac(name) => {
            rbac::allows(&app.store, name, a).map_or((false, String::new()), |why| (true, why))
        }
    }
}

pub fn review(app: &App, user: User, request: &ApiRequest) -> Result<Response, ApiError> {
    if request.method != Method::POST || request.target.name.is_some() {
        return Err(ApiError::method_not_allowed(request.method.as_str()));
    }
    if protobuf::is_protobuf(&request.content_type) {
        return review_protobuf(app, user, request);
    }
    let mut review: Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding SelfSubjectAccessReview: {e}")))?;
    if !review.is_object() {
        return Err(ApiError::bad_request(
            "error decoding SelfSubjectAccessReview: the body must be a JSON object",
        ));
    }
    let attributes = &review["spec"]["resourceAttributes"];
    let text = |field: &str| attributes[field].as_str().unwrap_or("");
    let (allowed, reason) = decide(
        app,
        user,
        &Attributes {
            verb: text("verb"),
            group: text("group"),
            resource: text("resource"),
            subresource: text("subresource"),
            namespace: text("namespace"),
            name: text("name"),
        },
    );
    review["status"] = json!({"allowed": allowed, "reason": reason});
    review["kind"] = json!("SelfSubjectAccessReview");
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    if wants_protobuf(&request.accept) {
        let encoded = encode_protobuf(&from_json(&review));
        return Ok(protobuf_response(encoded));
    }
    Ok(json_response(StatusCode::CREATED, &review))
}

fn wants_protobuf(accept: &str) -> bool {
    protobuf::wanted(accept)
}

fn review_protobuf(app: &App, user: User, request: &ApiRequest) -> Result<Response, ApiError> {
    let bad = |what: &str| {
        ApiError::bad_request(format!("error decoding protobuf SelfSubjectAccessReview: {what}"))
    };
    let raw = protobuf::unwrap(&request.body).map_err(|e| bad(&e))?;
    let mut review = SelfSubjectAccessReview::decode(raw.as_slice()).map_err(|e| bad(&e.to_string()))?;
    let attributes = review
        .spec
        .as_ref()
        .and_then(|s| s.resource_attributes.clone())
        .unwrap_or_default();
    let text = |field: &Option<String>| field.as_deref().unwrap_or("").to_owned();
    let (allowed, reason) = decide(
        app,
        user,
        &Attributes {
            verb: &text(&attributes.verb),
            group: &text(&attributes.group),
            resource: &text(&attributes.resource),
            subresource: &text(&attributes.subresource),
            namespace: &text(&attributes.namespace),
            name: &text(&attributes.name),
        },
    );
    review.status = Some(SubjectAccessReviewStatus {
        allowed: Some(allowed),
        reason: Some(reason),
        ..Default::default()
    });
    if wants_protobuf(&request.accept) || !request.accept.contains("json") {
        return Ok(protobuf_response(encode_protobuf(&review)));
    }
    Ok(json_response(StatusCode::CREATED, &to_json(&review)))
}

fn encode_protobuf(review: &SelfSubjectAccessReview) -> Vec<u8> {
    protobuf::wrap(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        review.encode_to_vec(),
    )
}

fn protobuf_response(body: Vec<u8>) -> Response {
    (StatusCode::CREATED, [(header::CONTENT_TYPE, PROTOBUF)], body).into_response()
}

/// The fields of a review the sim reads and answers, JSON → protobuf.
fn from_json(review: &Value) -> SelfSubjectAccessReview {
    use k8s_pb::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReviewSpec};
    let attributes = &review["spec"]["resourceAttributes"];
    let text = |field: &str| attributes[field].as_str().map(str::to_owned);
    SelfSubjectAccessReview {
        spec: Some(SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: text("namespace"),
                verb: text("verb"),
                group: text("group"),
                version: text("version"),
                resource: text("resource"),
                subresource: text("subresource"),
                name: text("name"),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: Some(SubjectAccessReviewStatus {
            allowed: review["status"]["allowed"].as_bool(),
            reason: review["status"]["reason"].as_str().map(str::to_owned),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Protobuf → JSON, for protobuf requests that accept only JSON back.
fn to_json(review: &SelfSubjectAccessReview) -> Value {
    let attributes = review
        .spec
        .as_ref()
        .and_then(|s| s.resource_attributes.clone())
        .unwrap_or_default();
    let status = review.status.clone().unwrap_or_default();
    json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": {"resourceAttributes": {
            "namespace": attributes.namespace, "verb": attributes.verb, "group": attributes.group,
            "resource": attributes.resource, "subresource": attributes.subresource, "name": attributes.name,
        }},
        "status": {"allowed": status.allowed.unwrap_or(false), "reason": status.reason},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_envelope_round_trips() {
        let review = from_json(
            &json!({"spec": {"resourceAttributes": {"verb": "patch", "resource": "deployments"}},
            "status": {"allowed": true}}),
        );
        let body = encode_protobuf(&review);
        assert!(body.starts_with(protobuf::MAGIC));
        use k8s_pb::apimachinery::pkg::runtime::Unknown;
        let unknown = Unknown::decode(&body[4..]).expect("unknown");
        assert_eq!(
            unknown.type_meta.and_then(|t| t.kind).as_deref(),
            Some("SelfSubjectAccessReview")
        );
        let decoded =
            SelfSubjectAccessReview::decode(unknown.raw.unwrap_or_default().as_slice()).expect("review");
        assert_eq!(decoded.status.and_then(|s| s.allowed), Some(true));
        assert_eq!(to_json(&review)["spec"]["resourceAttributes"]["verb"], "patch");
    }

    #[test]
    fn accept_headers_choose_protobuf_only_when_first() {
        assert!(wants_protobuf(
            "application/vnd.kubernetes.protobuf, application/json"
        ));
        assert!(!wants_protobuf(
            "application/json, application/vnd.kubernetes.protobuf"
        ));
    }
}
