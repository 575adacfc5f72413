//! `db connections` on an immutable ConfigMap, as real API servers refuse to change one.

use orchscale_sim::Flavor;
use orchscale_sim::store::{ObjectKey, UpdatePart};

use crate::harness::{NAMESPACE, object, real, run, sim_of};

/// Immutable ConfigMaps (GA since 1.21): pkg/apis/core/validation/validation.go
/// `ValidateConfigMapUpdate` refuses any change of `data` once `immutable: true`. The plugin
/// refuses before the preview's prompt (exit 2, nothing written) and says what works instead.
#[test]
fn db_connections_refuses_an_immutable_configmap_before_any_prompt() {
    let sim = sim_of(real(33, Flavor::Plain));
    let key = ObjectKey::new("configmaps", NAMESPACE, "orchestrator-config");
    sim.store()
        .modify(&key, UpdatePart::Main, |cm| {
            cm["immutable"] = serde_json::json!(true);
            true
        })
        .expect("the configmap exists");
    let before = object(&sim, "configmaps", "orchestrator-config");
    sim.clear_requests();
    let out = run(&sim, &["db", "connections", "50"]);
    out.assert_code(2);
    assert!(out.stderr.contains("is immutable"), "{}", out.stderr);
    assert!(
        out.stderr.contains("create a new ConfigMap") && out.stderr.contains("point the deployment at it"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("Continue?"),
        "refused before the prompt:\n{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert_eq!(
        object(&sim, "configmaps", "orchestrator-config")["data"],
        before["data"]
    );
}
