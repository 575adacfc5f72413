//! The `db connections N` plan: set `database.max_connections` inside the ConfigMap's
//! config.yaml string (and nothing else), read the database's own `max_connections`, and warn
//! when the pods' pools together could exceed it.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container};
use serde_json::{Value, json};

use super::{Change, ChangeValue, FieldPath, PlanError};

mod config_edit;
mod input;

pub use config_edit::set_max_connections;
pub use input::{RESTARTED_AT, changed_line, pool_size, restart_patch};

/// PostgreSQL's default `superuser_reserved_connections`: slots ordinary clients cannot use.
pub const SUPERUSER_RESERVED_CONNECTIONS: u32 = 3;

/// What `db connections N` will change. Empty `changes` means nothing to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionsPlan {
    pub changes: Vec<Change>,
    /// JSON merge patch: `metadata.resourceVersion` (precondition) and `data[key]` holding the
    /// whole new text (only `max_connections` differs). `{}` when nothing changes.
    pub patch: Value,
    /// The config.yaml text after the change.
    pub new_text: String,
    /// `max_connections` before, `None` when it was absent.
    pub before: Option<String>,
}

/// Reads `database.max_connections` from config.yaml text (a number, or a quoted number).
pub fn read_max_connections(config_yaml: &str) -> Option<u32> {
    let value = config_edit::parse_yaml(config_yaml).ok()?;
    match value.get("database")?.get("max_connections")? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Plans `db connections n` on `cm`, whose `data[key]` holds config.yaml.
///
/// # Errors
/// `n` is 0, the key is missing (the message lists the keys that exist), or the text cannot be
/// edited safely (see [`set_max_connections`]).
pub fn plan_connections(cm: &ConfigMap, key: &str, n: u32) -> Result<ConnectionsPlan, PlanError> {
    let name = cm.metadata.name.as_deref().unwrap_or("?");
    if n == 0 {
        return Err(PlanError::new(
            "db connections 0: a pool of 0 connections cannot serve requests",
            "give a pool size of at least 1, e.g. `kubectl orchscale db connections 50`",
        ));
    }
    let Some(text) = cm.data.as_ref().and_then(|d| d.get(key)) else {
        let keys: Vec<&str> = cm.data.iter().flatten().map(|(k, _)| k.as_str()).collect();
        let existing = if keys.is_empty() {
            "it has no data keys".to_string()
        } else {
            format!("its keys: {}", keys.join(", "))
        };
        return Err(PlanError::new(
            format!("configmap/{name} has no key {key:?}; {existing}"),
            "name the key with --config-key",
        ));
    };
    let (new_text, before) = set_max_connections(text, n)?;
    let unchanged = before.as_deref().and_then(|b| b.trim().parse::<u32>().ok()) == Some(n);
    if unchanged {
        return Ok(ConnectionsPlan {
            changes: Vec::new(),
            patch: json!({}),
            new_text: text.clone(),
            before,
        });
    }
    if cm.immutable == Some(true) {
        // The API server refuses any change of `data` of an immutable ConfigMap
        // (pkg/apis/core/validation `ValidateConfigMapUpdate`): refused here, before a prompt.
        return Err(PlanError::new(
            format!(
                "configmap/{name} is immutable (`immutable: true`): its data cannot be changed, \
                 so database.max_connections stays {}",
                before.as_deref().unwrap_or("unset")
            ),
            format!(
                "create a new ConfigMap with the changed {key} (e.g. `kubectl create configmap{} \
                 {name}-v2 --from-file={key}=...`), point the deployment at it (its volume or \
                 envFrom), and the pods restart with the new value",
                cm.metadata
                    .namespace
                    .as_deref()
                    .map(|ns| format!(" -n {ns}"))
                    .unwrap_or_default()
            ),
        ));
    }
    let mut patch = json!({ "data": { key: new_text } });
    if let Some(rv) = &cm.metadata.resource_version {
        patch["metadata"] = json!({ "resourceVersion": rv });
    }
    Ok(ConnectionsPlan {
        changes: vec![Change::new(
            format!("configmap/{name}"),
            FieldPath::MaxConnections { key: key.to_string() },
            before.as_deref().map(ChangeValue::count_or_text),
            Some(ChangeValue::count(n)),
        )],
        patch,
        new_text,
        before,
    })
}

/// Finds `max_connections=N` in a command line: `-c max_connections=N`, `-cmax_connections=N`,
/// `--max_connections=N`, `--max-connections=N`, also inside one shell string.
fn max_connections_in(arg: &str) -> Option<u32> {
    ["max_connections=", "max-connections="]
        .iter()
        .find_map(|needle| {
            arg.rmatch_indices(needle).find_map(|(i, _)| {
                let before = arg[..i].chars().next_back();
                // Only a whole option name counts, not e.g. `my_max_connections=`.
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') && !arg[..i].ends_with("-c")
                {
                    return None;
                }
                let digits: String = arg[i + needle.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse().ok()
            })
        })
}

fn container_max_connections(c: &Container) -> Option<u32> {
    let args = c.command.iter().flatten().chain(c.args.iter().flatten());
    // As on PostgreSQL's command line, the last setting wins.
    let from_args = args.filter_map(|a| max_connections_in(a)).next_back();
    from_args.or_else(|| {
        c.env
            .iter()
            .flatten()
            .filter(|e| e.name == "POSTGRES_MAX_CONNECTIONS" || e.name == "MAX_CONNECTIONS")
            .find_map(|e| e.value.as_deref()?.trim().parse().ok())
    })
}

/// The database's `max_connections` as set on the StatefulSet's containers (command/args
/// `-c max_connections=N` or env `POSTGRES_MAX_CONNECTIONS`/`MAX_CONNECTIONS`); `None` when it
/// is not set there (PostgreSQL then uses its own default or postgresql.conf).
pub fn db_max_connections_from(statefulset: &StatefulSet) -> Option<u32> {
    let spec = statefulset.spec.as_ref()?.template.spec.as_ref()?;
    spec.containers.iter().find_map(container_max_connections)
}

/// The largest pool per pod that [`pool_warning`] accepts; `None` when `db_max` is unknown.
pub fn largest_pool(
    hpa_max_replicas: Option<i32>,
    deployment_replicas: i32,
    db_max: Option<u32>,
) -> Option<u32> {
    let pods = u32::try_from(hpa_max_replicas.unwrap_or(deployment_replicas).max(1)).unwrap_or(1);
    Some(db_max?.saturating_sub(SUPERUSER_RESERVED_CONNECTIONS) / pods)
}

/// Warns when `per_pod` connections × the most pods that can run (the HPA's maxReplicas, or
/// the deployment's replicas without an HPA) exceed what the database accepts for ordinary
/// clients (`db_max` minus the superuser reserve). `None` when it fits or `db_max` is unknown.
pub fn pool_warning(
    per_pod: u32,
    hpa_max_replicas: Option<i32>,
    deployment_replicas: i32,
    db_max: Option<u32>,
) -> Option<String> {
    let db_max = db_max?;
    let (pods, source) = match hpa_max_replicas {
        Some(max) => (max, "the HPA's maxReplicas"),
        None => (deployment_replicas, "replicas"),
    };
    let pods = u64::try_from(pods.max(0)).unwrap_or(0);
    let total = u64::from(per_pod) * pods;
    let usable = db_max.saturating_sub(SUPERUSER_RESERVED_CONNECTIONS);
    (total > u64::from(usable)).then(|| {
        format!(
            "{per_pod} connections per pod × {pods} pods ({source}) = {total} connections, but the \
             database accepts {db_max} ({usable} after {SUPERUSER_RESERVED_CONNECTIONS} reserved for \
             superusers): at full scale pods will fail to connect; lower the pool, lower the pod \
             count, or raise the database's max_connections"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_pool_fits_the_database_at_full_scale() {
        assert_eq!(largest_pool(Some(10), 3, Some(1000)), Some(99));
        assert_eq!(pool_warning(99, Some(10), 3, Some(1000)), None);
        assert!(pool_warning(100, Some(10), 3, Some(1000)).is_some());
        assert_eq!(
            largest_pool(None, 0, Some(100)),
            Some(97),
            "no pods: one pod's worth"
        );
        assert_eq!(largest_pool(Some(10), 3, None), None);
    }

    fn configmap(data: Value) -> ConfigMap {
        serde_json::from_value(json!({
            "metadata": {"name": "orchestrator-config", "resourceVersion": "11"},
            "data": data
        }))
        .unwrap()
    }

    const CONFIG: &str = "log_level: info\ndatabase:\n  host: postgres\n  max_connections: 20 # pool\n";

    #[test]
    fn plans_a_guarded_merge_patch_of_the_whole_string() {
        let cm = configmap(json!({"config.yaml": CONFIG, "other.txt": "x"}));
        let plan = plan_connections(&cm, "config.yaml", 50).unwrap();
        let new_text = "log_level: info\ndatabase:\n  host: postgres\n  max_connections: 50 # pool\n";
        assert_eq!(plan.new_text, new_text);
        assert_eq!(plan.before.as_deref(), Some("20"));
        assert_eq!(
            plan.changes,
            vec![Change::new(
                "configmap/orchestrator-config",
                "data[\"config.yaml\"].database.max_connections",
                Some(ChangeValue::count(20)),
                Some(ChangeValue::count(50))
            )]
        );
        assert_eq!(
            plan.patch,
            json!({"metadata": {"resourceVersion": "11"}, "data": {"config.yaml": new_text}})
        );
    }

    #[test]
    fn an_immutable_configmap_is_refused_unless_nothing_changes() {
        let mut cm = configmap(json!({"config.yaml": "database:\n  max_connections: 20\n"}));
        cm.immutable = Some(true);
        let refused = plan_connections(&cm, "config.yaml", 50).unwrap_err();
        assert!(refused.to_string().contains("is immutable"), "{refused}");
        assert!(
            refused.hint.contains("create a new ConfigMap"),
            "{}",
            refused.hint
        );
        assert!(
            plan_connections(&cm, "config.yaml", 20)
                .unwrap()
                .changes
                .is_empty()
        );
    }

    #[test]
    fn same_value_is_a_noop() {
        let plan = plan_connections(&configmap(json!({"config.yaml": CONFIG})), "config.yaml", 20).unwrap();
        assert!(plan.changes.is_empty());
        assert_eq!(plan.patch, json!({}));
        assert_eq!(plan.new_text, CONFIG);
    }

    #[test]
    fn missing_key_names_existing_keys_and_zero_is_refused() {
        let err =
            plan_connections(&configmap(json!({"app.yaml": "", "b": ""})), "config.yaml", 5).unwrap_err();
        assert_eq!(
            err.message,
            "configmap/orchestrator-config has no key \"config.yaml\"; its keys: app.yaml, b"
        );
        let err = plan_connections(&configmap(json!({})), "config.yaml", 5).unwrap_err();
        assert!(err.message.ends_with("it has no data keys"));
        assert!(plan_connections(&configmap(json!({"config.yaml": CONFIG})), "config.yaml", 0).is_err());
    }

    #[test]
    fn reads_max_connections() {
        assert_eq!(read_max_connections(CONFIG), Some(20));
        assert_eq!(
            read_max_connections("database:\n  max_connections: '30'\n"),
            Some(30)
        );
        assert_eq!(read_max_connections("database:\n  host: x\n"), None);
        assert_eq!(read_max_connections("not: [valid"), None);
    }

    fn statefulset(container: Value) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "postgres"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [container]}}}
        }))
        .unwrap()
    }

    #[test]
    fn reads_db_max_connections_from_args_and_env() {
        let cases = [
            (
                json!({"name": "postgres", "args": ["-c", "max_connections=200", "-c", "shared_buffers=1GB"]}),
                Some(200),
            ),
            (
                json!({"name": "postgres", "command": ["postgres", "-cmax_connections=150"]}),
                Some(150),
            ),
            (
                json!({"name": "postgres", "args": ["--max_connections=120"]}),
                Some(120),
            ),
            (
                json!({"name": "postgres", "args": ["--max-connections=110"]}),
                Some(110),
            ),
            (
                json!({"name": "postgres", "command": ["sh", "-c", "exec postgres -c max_connections=90"]}),
                Some(90),
            ),
            (
                json!({"name": "postgres", "env": [{"name": "POSTGRES_MAX_CONNECTIONS", "value": "300"}]}),
                Some(300),
            ),
            (
                json!({"name": "postgres", "env": [{"name": "MAX_CONNECTIONS", "value": "80"}]}),
                Some(80),
            ),
            (
                json!({"name": "postgres", "args": ["-c", "app_max_connections=5"]}),
                None,
            ),
            (json!({"name": "postgres"}), None),
        ];
        for (container, expected) in cases {
            assert_eq!(
                db_max_connections_from(&statefulset(container.clone())),
                expected,
                "{container}"
            );
        }
    }

    #[test]
    fn pool_warning_counts_max_pods_against_the_db() {
        let warning = pool_warning(50, Some(20), 3, Some(200)).unwrap();
        assert_eq!(
            warning,
            "50 connections per pod × 20 pods (the HPA's maxReplicas) = 1000 connections, but the database \
             accepts 200 (197 after 3 reserved for superusers): at full scale pods will fail to connect; \
             lower the pool, lower the pod count, or raise the database's max_connections"
        );
        assert!(
            pool_warning(50, None, 5, Some(200))
                .unwrap()
                .contains("× 5 pods (replicas)")
        );
        assert_eq!(pool_warning(49, Some(4), 3, Some(200)), None); // 196 ≤ 197
        assert!(pool_warning(50, Some(4), 3, Some(200)).is_some()); // 200 > 197
        assert_eq!(pool_warning(50, Some(20), 3, None), None);
    }
}
