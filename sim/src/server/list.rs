//! Collection reads: the objects a list or watch selects (namespace, label and field
//! selectors), and list responses with `limit`/`continue` pagination or as a Table.

use std::borrow::Cow;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::store::Stored;

use super::handlers::ok;
use super::registry::ResourceInfo;
use super::select::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::{ApiRequest, App, events_v1, table};

/// The parsed label and field selectors of a collection request.
fn selectors(request: &ApiRequest) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(request.param("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(&events_v1::field_selector(
        request.target.info,
        request.param("fieldSelector").unwrap_or(""),
    ))?;
    Ok((labels, fields))
}

/// The objects of a collection request that its namespace and selectors pick, as stored.
pub fn selected(app: &App, request: &ApiRequest) -> Result<(Vec<Arc<Stored>>, u64), ApiError> {
    let (labels, fields) = selectors(request)?;
    let t = &request.target;
    let page = app.store.page(
        t.info.store_name,
        t.namespace.as_deref(),
        fields.required("spec.nodeName").filter(|n| !n.is_empty()),
        None,
        None,
        false,
        |o| labels.matches(o) && fields.matches(o),
        Arc::clone,
    );
    Ok((page.items, page.resource_version))
}

/// Where a continued list starts, as the apiserver's continue token says: the version the
/// first page was read at and the key of the last object returned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Continue {
    /// The token format's version, `meta.k8s.io/v1` as upstream writes it.
    v: String,
    rv: u64,
    /// `namespace/name` of the last object returned.
    start: String,
}

fn encode_continue(rv: u64, (ns, name): &(String, String)) -> String {
    let token = Continue {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: format!("{ns}/{name}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_string(&token).unwrap_or_default())
}

/// A list, whole or page by page (`limit`/`continue`). Pages after the first are read from the
/// store as it is now (the apiserver reads them at the first page's version from etcd; the
/// sim keeps no old versions), but a token whose version is older than the history holds is
/// refused as upstream refuses a compacted one: 410 Expired, with a token for the (inconsistent)
/// rest of the list (k8s.io/apiserver/pkg/storage/etcd3/store.go, `GetList`:
/// `handleCompactedErrorForPaging`).
pub fn list(app: &App, request: &ApiRequest) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(request)?;
    let after = match request.param("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(decode_continue(token)?),
        None => None,
    };
    if let Some(token) = &after {
        let oldest = app.store.oldest_version();
        if token.rv + 1 < oldest && token.rv < app.store.resource_version() {
            let current = app.store.resource_version();
            let rest = Continue {
                rv: current,
                ..token.clone()
            };
            let rest = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::to_string(&rest).unwrap_or_default());
            return Err(ApiError::continue_expired(&rest));
        }
    }
    let limit = request
        .number("limit")?
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| *l > 0);
    let t = &request.target;
    let start = after.as_ref().and_then(|a| a.start.split_once('/'));
    // Upstream counts the remaining items only for an unselected list.
    let unselected = labels == LabelSelector::default() && fields == FieldSelector::default();
    let keep = |o: &Value| labels.matches(o) && fields.matches(o);
    let info = t.info;
    let table = table::wants_table(&request.accept);
    // Only the stored versions are taken under the store lock (no clone, no serialization);
    // the body is made from them after the lock is released. A JSON list is the items'
    // encodings, each made once per stored version (see `Stored`); a Table is rendered
    // from clones.
    // A node's pods come from the node index (upstream's watch cache indexes `spec.nodeName`
    // of pods: pkg/registry/core/pod/strategy.go, `Indexers`, `NodeNameIndexFunc`).
    let page = app.store.page(
        info.store_name,
        t.namespace.as_deref(),
        fields.required("spec.nodeName").filter(|n| !n.is_empty()),
        start,
        limit,
        unselected,
        keep,
        Arc::clone,
    );
    // Every page of a list carries the first page's version, as upstream's do.
    let rv = after.as_ref().map_or(page.resource_version, |a| a.rv);
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if page.more
        && let Some(last) = &page.last
    {
        metadata["continue"] = json!(encode_continue(rv, last));
        if let Some(remaining) = page.remaining {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    if table {
        let items: Vec<Value> = page.items.iter().map(|s| s.value().clone()).collect();
        return ok(&table::render(info, &items, &metadata));
    }
    let items: Vec<Cow<[u8]>> = page.items.iter().map(|s| encoded(info, s)).collect();
    let head = json!({
        "kind": format!("{}List", info.kind),
        "apiVersion": info.api_version(),
        "metadata": metadata,
    })
    .to_string();
    let mut body = Vec::with_capacity(head.len() + 16 + items.iter().map(|i| i.len() + 1).sum::<usize>());
    // `{"apiVersion":…,"metadata":{…}` + `,"items":[…]}`.
    body.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    body.extend_from_slice(b",\"items\":[");
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(b"]}");
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A stored object's JSON as `info` shows it: the stored encoding, or the events.k8s.io/v1
/// view serialized anew (the only view that differs from the stored object).
pub fn encoded<'a>(info: &ResourceInfo, stored: &'a Stored) -> Cow<'a, [u8]> {
    match events_v1::view(info, stored.value()) {
        Cow::Borrowed(_) => Cow::Borrowed(stored.json()),
        Cow::Owned(view) => Cow::Owned(serde_json::to_vec(&view).unwrap_or_default()),
    }
}

pub fn position(object: &Value) -> (String, String) {
    let meta = &object["metadata"];
    let s = |f: &str| meta[f].as_str().unwrap_or("").to_owned();
    (s("namespace"), s("name"))
}

fn decode_continue(token: &str) -> Result<Continue, ApiError> {
    let invalid = || ApiError::bad_request("continue key is not valid");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let token: Continue = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if token.v != "meta.k8s.io/v1" || !token.start.contains('/') {
        return Err(invalid());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let last = ("ns".to_owned(), "web".to_owned());
        let token = decode_continue(&encode_continue(1234, &last)).expect("decode");
        assert_eq!((token.rv, token.start.as_str()), (1234, "ns/web"));
        assert!(decode_continue("!!").is_err());
        let old_format = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("ns/web");
        assert!(decode_continue(&old_format).is_err());
    }

    #[test]
    fn items_are_sent_in_their_stored_encoding_and_events_in_the_v1_view() {
        let store = crate::store::Store::new();
        let key = crate::store::ObjectKey::new("events", "ns", "e");
        store
            .create(
                &key,
                json!({"kind": "Event", "apiVersion": "v1", "message": "m",
                "involvedObject": {"kind": "Pod", "name": "p"}}),
            )
            .expect("create");
        let stored = store.get_stored(&key).expect("stored");
        let core = super::super::registry::find("", "v1", "events").expect("registered");
        let v1 = super::super::registry::find("events.k8s.io", "v1", "events").expect("registered");
        let core_bytes = encoded(core, &stored);
        assert!(
            matches!(core_bytes, Cow::Borrowed(_)),
            "the stored encoding, not a new one"
        );
        assert_eq!(
            core_bytes.as_ref(),
            serde_json::to_vec(stored.value()).unwrap().as_slice()
        );
        let v1_bytes = encoded(v1, &stored);
        let view = events_v1::view(v1, stored.value());
        assert_eq!(v1_bytes.as_ref(), serde_json::to_vec(&view).unwrap().as_slice());
        assert!(
            String::from_utf8(v1_bytes.into_owned())
                .unwrap()
                .contains("\"note\":\"m\"")
        );
    }
}
