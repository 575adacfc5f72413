//! Collection reads: the objects a list or watch selects (namespace, label and field
//! selectors), and list responses with `limit`/`continue` pagination or as a Table.

use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::handlers::ok;
use super::select::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::{ApiRequest, App, events_v1, table};

/// The objects of a collection request that its namespace and selectors pick.
pub fn selected(app: &App, request: &ApiRequest) -> Result<(Vec<Value>, u64), ApiError> {
    let labels = LabelSelector::parse(request.param("labelSelector").unwrap_or(""))?;
    let t = &request.target;
    let fields = FieldSelector::parse(&events_v1::field_selector(
        t.info,
        request.param("fieldSelector").unwrap_or(""),
    ))?;
    let (items, rv) = app.store.list(t.info.store_name, t.namespace.as_deref());
    let items = items
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    Ok((items, rv))
}

pub fn list(app: &App, request: &ApiRequest) -> Result<Response, ApiError> {
    let (items, rv) = selected(app, request)?;
    // Continue tokens name the last object returned; items are sorted by namespace, then name.
    let after = match request.param("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(decode_continue(token)?),
        None => None,
    };
    let mut items: Vec<Value> = items
        .into_iter()
        .filter(|o| after.as_ref().is_none_or(|a| &position(o) > a))
        .collect();
    let limit = request
        .number("limit")?
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| *l > 0);
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(limit) = limit
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some(last) = items.last() {
            let (ns, name) = position(last);
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{ns}/{name}"));
            metadata["continue"] = json!(token);
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    let info = request.target.info;
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

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let invalid = || ApiError::bad_request("continue key is not valid");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (ns, name) = text.split_once('/').ok_or_else(invalid)?;
    Ok((ns.to_owned(), name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let token = base64::engine::general_purpose::STANDARD.encode("ns/web");
        assert_eq!(
            decode_continue(&token).expect("decode"),
            ("ns".to_owned(), "web".to_owned())
        );
        assert!(decode_continue("!!").is_err());
    }
}
