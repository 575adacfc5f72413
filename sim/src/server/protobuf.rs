//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`): the `k8s\0` prefix and
//! `runtime.Unknown` envelope (k8s.io/apimachinery pkg/runtime/serializer/protobuf), and the
//! kinds the sim reads and writes in it: SelfSubjectAccessReview (see `access`) and ConfigMap,
//! which kubectl ≥ 1.3x sends as protobuf (`kubectl create configmap`).

use std::collections::BTreeMap;

use base64::Engine;
use k8s_pb::api::core::v1::ConfigMap;
use k8s_pb::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::{Map, Value, json};

use super::status::ApiError;

/// Prefix of every Kubernetes protobuf body ("k8s" and a zero byte).
pub const MAGIC: &[u8] = b"k8s\x00";
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Whether a Content-Type names the protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or("").trim() == CONTENT_TYPE
}

/// Whether the client lists protobuf first in Accept (client-go's typed clients do).
pub fn wanted(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.trim().starts_with(CONTENT_TYPE))
}

/// The object's own bytes inside the envelope; the error names what is wrong.
pub fn unwrap(body: &[u8]) -> Result<Vec<u8>, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("missing the k8s protobuf prefix")?;
    let unknown = Unknown::decode(envelope).map_err(|e| e.to_string())?;
    Ok(unknown.raw.unwrap_or_default())
}

/// An object's bytes in the envelope, as the apiserver answers.
pub fn wrap(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

/// A protobuf body of `kind` as the JSON object the handlers work on.
///
/// # Errors
/// 400 when the body does not decode; 415 for kinds the sim does not decode from protobuf.
pub fn decode(kind: &str, body: &[u8]) -> Result<Value, ApiError> {
    if kind != "ConfigMap" {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the simulated cluster decodes protobuf bodies of ConfigMaps only, not {kind}"),
        ));
    }
    let bad = |what: String| ApiError::bad_request(format!("error decoding protobuf ConfigMap: {what}"));
    let raw = unwrap(body).map_err(bad)?;
    let config_map = ConfigMap::decode(raw.as_slice()).map_err(|e| bad(e.to_string()))?;
    Ok(configmap_to_json(&config_map))
}

/// A stored object of `kind` in protobuf, when the sim encodes that kind.
pub fn encode(kind: &str, object: &Value) -> Option<Vec<u8>> {
    (kind == "ConfigMap").then(|| wrap("v1", "ConfigMap", configmap_from_json(object).encode_to_vec()))
}

fn configmap_to_json(config_map: &ConfigMap) -> Value {
    let meta = config_map.metadata.clone().unwrap_or_default();
    let mut metadata = Map::new();
    let mut text = |key: &str, value: &Option<String>| {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            metadata.insert(key.to_owned(), json!(value));
        }
    };
    text("name", &meta.name);
    text("generateName", &meta.generate_name);
    text("namespace", &meta.namespace);
    text("resourceVersion", &meta.resource_version);
    if !meta.labels.is_empty() {
        metadata.insert("labels".into(), json!(meta.labels));
    }
    if !meta.annotations.is_empty() {
        metadata.insert("annotations".into(), json!(meta.annotations));
    }
    let mut object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata});
    if !config_map.data.is_empty() {
        object["data"] = json!(config_map.data);
    }
    if !config_map.binary_data.is_empty() {
        let encoded: BTreeMap<&String, String> = config_map
            .binary_data
            .iter()
            .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
            .collect();
        object["binaryData"] = json!(encoded);
    }
    if let Some(immutable) = config_map.immutable {
        object["immutable"] = json!(immutable);
    }
    object
}

fn strings(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
        .collect()
}

fn configmap_from_json(object: &Value) -> ConfigMap {
    let meta = &object["metadata"];
    let text = |key: &str| meta[key].as_str().map(str::to_owned);
    let creation = meta["creationTimestamp"]
        .as_str()
        .and_then(super::table::parse_time)
        .map(|seconds| Time {
            seconds: i64::try_from(seconds).ok(),
            nanos: Some(0),
        });
    ConfigMap {
        metadata: Some(ObjectMeta {
            name: text("name"),
            namespace: text("namespace"),
            uid: text("uid"),
            resource_version: text("resourceVersion"),
            generation: meta["generation"].as_i64(),
            creation_timestamp: creation,
            labels: strings(&meta["labels"]),
            annotations: strings(&meta["annotations"]),
            ..Default::default()
        }),
        data: strings(&object["data"]),
        binary_data: object["binaryData"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v.as_str()?)
                    .ok()?;
                Some((k.clone(), bytes))
            })
            .collect(),
        immutable: object["immutable"].as_bool(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmaps_round_trip_through_the_envelope() {
        let sent = ConfigMap {
            metadata: Some(ObjectMeta {
                name: Some("cfg".into()),
                labels: BTreeMap::from([("a".to_owned(), "b".to_owned())]),
                ..Default::default()
            }),
            data: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            binary_data: BTreeMap::from([("bin".to_owned(), vec![0, 1, 2])]),
            immutable: Some(true),
        };
        let body = wrap("v1", "ConfigMap", sent.encode_to_vec());
        let object = decode("ConfigMap", &body).expect("decodes");
        assert_eq!(object["metadata"], json!({"name": "cfg", "labels": {"a": "b"}}));
        assert_eq!(object["data"], json!({"k": "v"}));
        assert_eq!(object["binaryData"], json!({"bin": "AAEC"}));
        assert_eq!(object["immutable"], true);
        let encoded = encode("ConfigMap", &object).expect("encodes");
        let back = ConfigMap::decode(unwrap(&encoded).expect("envelope").as_slice()).expect("decodes");
        assert_eq!(back, sent);
        assert_eq!(decode("Pod", &body).map_err(|e| e.code), Err(415));
    }
}
