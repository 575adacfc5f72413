//! `events.k8s.io/v1`: the events the sim records (core `v1` Events) shown in the new API's
//! shape, as kube-apiserver converts them (pkg/apis/events/v1/conversion.go,
//! `Convert_core_Event_To_v1_Event`), and its field selectors mapped back onto core fields.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::registry::ResourceInfo;

/// Core field → events.k8s.io/v1 field; the others keep their names.
const RENAMED: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// Whether objects of `info` are shown in the events.k8s.io/v1 shape.
pub fn applies(info: &ResourceInfo) -> bool {
    info.group == "events.k8s.io"
}

/// An object as `info` shows it: converted for events.k8s.io, unchanged otherwise.
pub fn view<'a>(info: &ResourceInfo, object: &'a Value) -> Cow<'a, Value> {
    if !applies(info) || object["kind"] != "Event" {
        return Cow::Borrowed(object);
    }
    let Some(fields) = object.as_object() else {
        return Cow::Borrowed(object);
    };
    let mut converted = Map::new();
    for (key, value) in fields {
        let name = RENAMED
            .iter()
            .find(|(core, _)| core == key)
            .map_or(key.as_str(), |(_, v1)| v1);
        converted.insert(name.to_owned(), value.clone());
    }
    converted.insert("apiVersion".into(), Value::from("events.k8s.io/v1"));
    Cow::Owned(Value::Object(converted))
}

/// A field selector of an events.k8s.io request, in the core fields the store selects on
/// (`regarding.name` → `involvedObject.name`, `reportingController` → `reportingComponent`).
pub fn field_selector(info: &ResourceInfo, selector: &str) -> String {
    if !applies(info) {
        return selector.to_owned();
    }
    selector
        .split(',')
        .map(|term| {
            let mut term = term.to_owned();
            for (core, v1) in RENAMED {
                if let Some(rest) = term.strip_prefix(v1)
                    && (rest.starts_with('.') || rest.starts_with('=') || rest.starts_with('!'))
                {
                    term = format!("{core}{rest}");
                    break;
                }
            }
            term
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::registry;
    use serde_json::json;

    #[test]
    fn core_events_convert_to_the_v1_shape() {
        let info = registry::find("events.k8s.io", "v1", "events").expect("registered");
        let core = json!({"kind": "Event", "apiVersion": "v1", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "Started", "reason": "Started",
            "count": 2, "type": "Normal"});
        let v1 = view(info, &core);
        assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["note"], "Started");
        assert_eq!(v1["deprecatedCount"], 2);
        assert_eq!(v1["reason"], "Started");
        assert!(v1.get("involvedObject").is_none());
        let core_info = registry::find("", "v1", "events").expect("registered");
        assert_eq!(view(core_info, &core).as_ref(), &core);
    }

    #[test]
    fn field_selectors_map_back_to_core_fields() {
        let info = registry::find("events.k8s.io", "v1", "events").expect("registered");
        assert_eq!(
            field_selector(info, "regarding.name=web,type!=Normal"),
            "involvedObject.name=web,type!=Normal"
        );
    }
}
