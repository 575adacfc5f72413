//! The pure pieces of `db connections N` around the config edit: the checked pool size, the
//! one-line diff of config.yaml for the preview, and the rolling-restart patch.

use serde_json::{Value, json};

use super::super::PlanError;

/// PostgreSQL's own ceiling for `max_connections` (2^18 - 1): a pool larger than that can never
/// be served by any database.
pub const MAX_POOL_SIZE: i64 = 262_143;

/// The pod-template annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Checks N before any request: a positive whole number up to PostgreSQL's maximum.
///
/// # Errors
/// 0, negative or too large: a [`PlanError`] (exit 2) saying what is accepted.
pub fn pool_size(n: i64) -> Result<u32, PlanError> {
    let hint = "give the connections per orchestrator pod, e.g. `kubectl orchscale db connections 50`";
    if n <= 0 {
        return Err(PlanError::new(
            format!("db connections {n}: the pool size must be at least 1"),
            hint,
        ));
    }
    if n > MAX_POOL_SIZE {
        return Err(PlanError::new(
            format!("db connections {n}: above PostgreSQL's maximum max_connections ({MAX_POOL_SIZE})"),
            hint,
        ));
    }
    u32::try_from(n).map_err(|_| PlanError::new(format!("db connections {n}: too large"), hint))
}

/// The first line that differs between two texts: (1-based line number, before, after).
/// The config edit changes exactly one line (or inserts one), so this is the whole diff.
pub fn changed_line(before: &str, after: &str) -> Option<(usize, String, String)> {
    let mut old = before.lines();
    let mut new = after.lines();
    let mut number = 0;
    loop {
        number += 1;
        match (old.next(), new.next()) {
            (None, None) => return None,
            (a, b) if a == b => {}
            (a, b) => {
                return Some((number, a.unwrap_or("").to_string(), b.unwrap_or("").to_string()));
            }
        }
    }
}

/// The strategic merge patch `kubectl rollout restart` sends: the pod template's
/// `kubectl.kubernetes.io/restartedAt` annotation set to `now` (RFC 3339). Changing the
/// template makes the Deployment controller roll every pod with the deployment's strategy.
pub fn restart_patch(now: &str) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_size_must_be_positive_and_servable() {
        assert_eq!(pool_size(50), Ok(50));
        assert_eq!(pool_size(1), Ok(1));
        assert_eq!(pool_size(MAX_POOL_SIZE), Ok(262_143));
        for bad in [0, -5, MAX_POOL_SIZE + 1, i64::MAX] {
            let err = pool_size(bad).unwrap_err();
            assert!(err.message.starts_with(&format!("db connections {bad}")), "{err}");
            assert!(err.hint.contains("db connections 50"));
        }
    }

    #[test]
    fn changed_line_names_the_one_line() {
        let before = "a: 1\ndatabase:\n  max_connections: 20 # pool\n  port: 5\n";
        let after = "a: 1\ndatabase:\n  max_connections: 50 # pool\n  port: 5\n";
        assert_eq!(
            changed_line(before, after),
            Some((
                3,
                "  max_connections: 20 # pool".into(),
                "  max_connections: 50 # pool".into()
            ))
        );
        assert_eq!(changed_line(before, before), None);
        // An inserted line: the old side shows what was there before.
        assert_eq!(
            changed_line(
                "database:\n  host: x\n",
                "database:\n  max_connections: 5\n  host: x\n"
            ),
            Some((2, "  host: x".into(), "  max_connections: 5".into()))
        );
    }

    #[test]
    fn restart_patch_is_kubectls() {
        assert_eq!(
            restart_patch("2026-11-28T08:15:34Z"),
            json!({"spec": {"template": {"metadata": {"annotations":
                {"kubectl.kubernetes.io/restartedAt": "2026-11-28T08:15:34Z"}}}}})
        );
    }
}
