//! Collection reads: the objects a list or watch selects (namespace, label and field
//! selectors), and list responses with `limit`/`continue` pagination or as a Table.

use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::handlers::ok;
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

/// The objects of a collection request that its namespace and selectors pick.
pub fn selected(app: &App, request: &ApiRequest) -> Result<(Vec<Value>, u64), ApiError> {
    let (labels, fields) = selectors(request)?;
    let t = &request.target;
    let page = app.store.page(
        t.info.store_name,
        t.namespace.as_deref(),
        None,
        None,
        false,
        |o| labels.matches(o) && fields.matches(o),
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

fn encode_continue(rv: u64, last: &Value) -> String {
    let (ns, name) = position(last);
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
    let page = app.store.page(
        t.info.store_name,
        t.namespace.as_deref(),
        start,
        limit,
        unselected,
        |o| labels.matches(o) && fields.matches(o),
    );
    // Every page of a list carries the first page's version, as upstream's do.
    let rv = after.as_ref().map_or(page.resource_version, |a| a.rv);
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if page.more
        && let Some(last) = page.items.last()
    {
        metadata["continue"] = json!(encode_continue(rv, last));
        if let Some(remaining) = page.remaining {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    let info = t.info;
    let items = page.items;
    if table::wants_table(&request.accept) {
        return ok(&table::render(info, &items, &metadata));
    }
    let items: Vec<Value> = items
        .iter()
        .map(|item| events_v1::view(info, item).into_owned())
        .collect();
    ok(&json!({
        "kind": format!("{}List", info.kind),
        "apiVersion": info.api_version(),
        "metadata": metadata,
        "items": items,
    }))
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
        let object = json!({"metadata": {"namespace": "ns", "name": "web"}});
        let token = decode_continue(&encode_continue(1234, &object)).expect("decode");
        assert_eq!((token.rv, token.start.as_str()), (1234, "ns/web"));
        assert!(decode_continue("!!").is_err());
        let old_format = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("ns/web");
        assert!(decode_continue(&old_format).is_err());
    }
}
