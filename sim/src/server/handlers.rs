//! The object verbs of a stored resource and its `status` subresource: get, list (selectors,
//! pagination), watch (delegated), create, update, patch, delete and deletecollection, each with
//! `dryRun=All` support, as kube-apiserver's generic registry serves them.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::store::{ObjectKey, StoreError, UpdatePart, merge_update, metadata_mut, now_rfc3339, rv_of};

use super::list::{list, position, selected};
use super::patch::{self, PatchType};
use super::status::{self, ApiError, Cause};
use super::{ApiRequest, App, admission, defaults, json_response, protobuf, shape, table, validate, watch};

/// How often a patch is retried when another writer changed the object in between (the
/// apiserver retries patches that carry no resourceVersion precondition).
const PATCH_ATTEMPTS: usize = 5;

pub async fn handle(app: &App, request: ApiRequest) -> Result<Response, ApiError> {
    let info = request.target.info;
    let verb = request.verb();
    if !info.verbs.contains(&verb) {
        return Err(ApiError::method_not_allowed(request.method.as_str()));
    }
    match (&request.method, request.target.name.is_some()) {
        (&Method::GET | &Method::HEAD, false) if request.flag("watch") => watch::serve(app, &request),
        (&Method::GET | &Method::HEAD, false) => list(app, &request),
        (&Method::GET | &Method::HEAD, true) => get(app, &request),
        (&Method::POST, false) => create(app, &request),
        (&Method::PUT, true) => update(app, &request),
        (&Method::PATCH, true) => patch(app, &request),
        (&Method::DELETE, true) => delete(app, &request),
        (&Method::DELETE, false) => delete_collection(app, &request),
        _ => Err(ApiError::method_not_allowed(request.method.as_str())),
    }
}

/// The store key of the addressed object.
pub fn key_of(request: &ApiRequest) -> ObjectKey {
    let t = &request.target;
    ObjectKey::new(t.info.store_name, t.namespace_str(), t.name_str())
}

fn part_of(request: &ApiRequest) -> UpdatePart {
    if request.target.subresource.as_deref() == Some("status") {
        UpdatePart::Status
    } else {
        UpdatePart::Main
    }
}

/// The stored object, or 404.
pub fn current(app: &App, request: &ApiRequest) -> Result<Value, ApiError> {
    app.store
        .get(&key_of(request))
        .ok_or_else(|| ApiError::not_found(request.target.info, request.target.name_str()))
}

pub fn ok(value: &Value) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, value))
}

/// A JSON response carrying admission warnings as `Warning: 299 - "<text>"` headers, as
/// kube-apiserver sends them.
fn warned(code: StatusCode, value: &Value, warnings: &[String]) -> Result<Response, ApiError> {
    let mut response = json_response(code, value);
    for warning in warnings {
        let text = format!("299 - {:?}", warning);
        if let Ok(header) = axum::http::HeaderValue::from_str(&text) {
            response.headers_mut().append(axum::http::header::WARNING, header);
        }
    }
    Ok(response)
}

fn get(app: &App, request: &ApiRequest) -> Result<Response, ApiError> {
    let info = request.target.info;
    let object = app
        .store
        .get_stored(&key_of(request))
        .ok_or_else(|| ApiError::not_found(info, request.target.name_str()))?;
    if table::wants_table(&request.accept) {
        return ok(&table::render(
            info,
            std::slice::from_ref(object.value()),
            &json!({}),
        ));
    }
    // The stored encoding, as a list or a watch sends it (see `Stored`).
    let body = super::list::encoded(info, &object).into_owned();
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn parse_body(request: &ApiRequest) -> Result<Value, ApiError> {
    let essence = request.content_type.split(';').next().unwrap_or("").trim();
    if !(essence.is_empty() || essence == "application/json" || essence.ends_with("+json")) {
        return Err(ApiError::unsupported_media_type(&request.content_type));
    }
    let value: Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    }
    Ok(value)
}

/// Fills kind/apiVersion and checks the body's namespace against the path's.
fn prepare_body(request: &ApiRequest, object: &mut Value) -> Result<(), ApiError> {
    let info = request.target.info;
    object["kind"] = json!(info.kind);
    object["apiVersion"] = json!(info.api_version());
    let ns = request.target.namespace_str();
    let meta = metadata_mut(object);
    match meta.get("namespace").and_then(Value::as_str) {
        Some(given) if !given.is_empty() && given != ns && info.namespaced => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

fn create(app: &App, request: &ApiRequest) -> Result<Response, ApiError> {
    if request.target.info.namespaced && request.target.namespace.is_none() {
        return Err(ApiError::method_not_allowed("POST"));
    }
    let body = if protobuf::is_protobuf(&request.content_type) {
        protobuf::decode(request.target.info.kind, &request.body)?
    } else {
        parse_body(request)?
    };
    create_object(app, request, body)
}

/// Stores a new object (server-set fields, admission, validation, namespace check, dry run) →
/// 201, in protobuf when the client asks for it first and the sim encodes the kind.
fn create_object(app: &App, request: &ApiRequest, mut object: Value) -> Result<Response, ApiError> {
    let info = request.target.info;
    shape::check(info.kind, &object)?;
    prepare_body(request, &mut object)?;
    let meta = metadata_mut(&mut object);
    let has_name = meta
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !has_name && let Some(prefix) = meta.get("generateName").and_then(Value::as_str) {
        let name = format!("{prefix}{}", random_suffix());
        meta.insert("name".into(), json!(name));
    }
    meta.remove("resourceVersion");
    // Status is the controllers' to write; a created object starts without it.
    if info.has_subresource("status")
        && !matches!(info.kind, "Node" | "Namespace")
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    if info.kind == "Namespace" {
        object["status"] = json!({"phase": "Active"});
    }
    defaults::drop_nulls(&mut object);
    defaults::apply(info.kind, &mut object);
    let ns = request.target.namespace_str();
    if info.namespaced {
        metadata_mut(&mut object).insert("namespace".into(), json!(ns));
    }
    let warnings = admission::admit(&app.api.get(), &app.store, info, None, &mut object)?;
    validate::validate(info, &object)?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    if info.namespaced && app.store.get(&ObjectKey::new("namespaces", "", ns)).is_none() {
        let namespaces = super::registry::find("", "v1", "namespaces").expect("namespaces are registered");
        return Err(ApiError::not_found(namespaces, ns));
    }
    let key = ObjectKey::new(info.store_name, ns, &name);
    let created = if request.dry_run() {
        if app.store.get(&key).is_some() {
            return Err(ApiError::already_exists(info, &name));
        }
        let meta = metadata_mut(&mut object);
        meta.insert("uid".into(), json!("00000000-0000-4000-8000-dryrun000000"));
        meta.entry("creationTimestamp")
            .or_insert_with(|| json!(now_rfc3339()));
        if app.store.tracks_generation(info.store_name) {
            meta.insert("generation".into(), json!(1));
        }
        object
    } else {
        app.store
            .create(&key, object)
            .map_err(|e| ApiError::from_store(e, info, &name))?
    };
    if protobuf::wanted(&request.accept)
        && let Some(body) = protobuf::encode(info.kind, &created)
    {
        let mut response = warned(StatusCode::CREATED, &created, &warnings)?;
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(protobuf::CONTENT_TYPE),
        );
        *response.body_mut() = axum::body::Body::from(body);
        return Ok(response);
    }
    warned(StatusCode::CREATED, &created, &warnings)
}

/// Admits, validates and stores (or, for a dry run, previews) a replacement of the addressed
/// object; returns it with the admission warnings.
fn write(
    app: &App,
    request: &ApiRequest,
    current: &Value,
    mut object: Value,
) -> Result<(Value, Vec<String>), ApiError> {
    let info = request.target.info;
    let name = request.target.name_str();
    let part = part_of(request);
    let mut warnings = Vec::new();
    if part == UpdatePart::Main {
        defaults::drop_nulls(&mut object);
        defaults::apply(info.kind, &mut object);
        let mut admitted = object.clone();
        let meta = metadata_mut(&mut admitted);
        meta.insert("name".into(), json!(name));
        meta.insert("namespace".into(), json!(request.target.namespace_str()));
        warnings = admission::admit(&app.api.get(), &app.store, info, Some(current), &mut admitted)?;
        for field in ["spec", "immutable", "data", "binaryData"] {
            if let Some(value) = admitted.get(field) {
                object[field] = value.clone();
            }
        }
        let mut checked = object.clone();
        metadata_mut(&mut checked).insert("name".into(), json!(name));
        validate::validate(info, &checked)?;
    }
    let result = if request.dry_run() {
        merge_update(current, object, part)
    } else {
        app.store.update(&key_of(request), object, part)
    };
    result
        .map(|stored| (stored, warnings))
        .map_err(|e| ApiError::from_store(e, info, name))
}

fn update(app: &App, request: &ApiRequest) -> Result<Response, ApiError> {
    let mut object = parse_body(request)?;
    shape::check(request.target.info.kind, &object)?;
    prepare_body(request, &mut object)?;
    let name = request.target.name_str();
    match object["metadata"]["name"].as_str() {
        Some(given) if given != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
        _ => {}
    }
    let current = current(app, request)?;
    let (stored, warnings) = write(app, request, &current, object)?;
    warned(StatusCode::OK, &stored, &warnings)
}

fn patch(app: &App, request: &ApiRequest) -> Result<Response, ApiError> {
    let patch_type = PatchType::from_content_type(&request.content_type)?;
    if patch_type == PatchType::Apply {
        if request.param("fieldManager").is_none_or(str::is_empty) {
            let cause = Cause::required("fieldManager", "is required for apply patch");
            return Err(ApiError::invalid("PatchOptions", "meta.k8s.io", "", vec![cause]));
        }
        // Apply creates what does not exist yet.
        if request.target.subresource.is_none() && app.store.get(&key_of(request)).is_none() {
            let mut object = patch::apply_body(&request.body)?;
            metadata_mut(&mut object).insert("name".into(), json!(request.target.name_str()));
            return create_object(app, request, object);
        }
    }
    for _ in 0..PATCH_ATTEMPTS {
        let current = current(app, request)?;
        let patched = patch::apply(patch_type, &current, &request.body)?;
        shape::check(request.target.info.kind, &patched)?;
        // A resourceVersion the patch itself sets is a precondition; otherwise the object's own
        // version guards against a concurrent writer, and a conflict is retried.
        let carried = patched["metadata"]["resourceVersion"].clone();
        let precondition = carried != current["metadata"]["resourceVersion"];
        if precondition && carried.as_str().is_some_and(|rv| !rv.is_empty()) {
            let stale = carried.as_str().and_then(|rv| rv.parse::<u64>().ok()) != Some(rv_of(&current));
            if stale {
                return Err(ApiError::conflict(request.target.info, request.target.name_str()));
            }
        }
        match write(app, request, &current, patched) {
            Err(e) if e.reason == "Conflict" && !precondition => continue,
            result => {
                let (stored, warnings) = result?;
                return warned(StatusCode::OK, &stored, &warnings);
            }
        }
    }
    Err(ApiError::conflict(request.target.info, request.target.name_str()))
}

/// DeleteOptions from the body, when one was sent.
fn delete_options(request: &ApiRequest) -> Result<Value, ApiError> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))
}

fn delete(app: &App, request: &ApiRequest) -> Result<Response, ApiError> {
    let info = request.target.info;
    let name = request.target.name_str();
    let options = delete_options(request)?;
    let precondition = options["preconditions"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse::<u64>().ok());
    let dry_run = request.dry_run()
        || options["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    let deleted = if dry_run {
        let object = current(app, request)?;
        if precondition.is_some_and(|rv| rv != rv_of(&object)) {
            return Err(ApiError::conflict(info, name));
        }
        object
    } else if info.kind == "Pod" {
        // Graceful deletion (when the profile has it) is the controllers' rule, shared with them.
        let grace = options["gracePeriodSeconds"].as_i64().or_else(|| {
            request
                .query
                .get("gracePeriodSeconds")
                .and_then(|g| g.parse().ok())
        });
        let behaviour = app.scenario.behaviour();
        crate::controllers::delete_pod(&app.store, &key_of(request), behaviour, grace, precondition)
            .map_err(|e| ApiError::from_store(e, info, name))?
    } else {
        app.store
            .delete(&key_of(request), precondition)
            .map_err(|e| ApiError::from_store(e, info, name))?
    };
    // Pods answer with the object (graceful deletion); other kinds with a Success Status.
    if info.kind == "Pod" {
        return ok(&deleted);
    }
    ok(&status::success(info, name, &deleted["metadata"]["uid"]))
}

fn delete_collection(app: &App, request: &ApiRequest) -> Result<Response, ApiError> {
    let info = request.target.info;
    let (items, rv) = selected(app, request)?;
    if !request.dry_run() {
        for item in &items {
            let (ns, name) = position(item);
            let item_key = ObjectKey::new(info.store_name, &ns, &name);
            let deleted = if info.kind == "Pod" {
                crate::controllers::delete_pod(&app.store, &item_key, app.scenario.behaviour(), None, None)
            } else {
                app.store.delete(&item_key, None)
            };
            match deleted {
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(ApiError::from_store(e, info, &name)),
            }
        }
    }
    ok(&json!({
        "kind": format!("{}List", info.kind),
        "apiVersion": info.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items.iter().map(|s| s.value()).collect::<Vec<_>>(),
    }))
}
