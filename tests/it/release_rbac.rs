//! The RBAC that `plugin.yaml`'s caveats list, as `docs/rbac/orchscale-operator-role.yaml`
//! grants it: bound to the sim's non-admin user (the sim evaluates Roles and bindings as
//! kube-apiserver's RBAC authorizer does, `RuleAllows` in plugin/pkg/auth/authorizer/rbac/
//! rbac.go), every command works; without any one of its rules, some command stops at its
//! permission preflight or says which check it skipped.

use std::collections::BTreeSet;
use std::time::Duration;

use orchscale_sim::store::ObjectKey;
use orchscale_sim::{ApiBehaviour, Sim, SimOptions};
use serde_json::{Value, json};

use crate::harness::{NAMESPACE, Output, object, run, wait_ready};

const ROLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/docs/rbac/orchscale-operator-role.yaml"
);

/// The sim's user without a grant of its own once its seeded binding is gone.
const USER: &str = "sim-operator";

/// The Role and the ClusterRole of the docs file, in file order.
fn documented_roles() -> Vec<Value> {
    let text = std::fs::read_to_string(ROLES).expect("the docs Role file");
    let roles: Vec<Value> = serde_saphyr::from_str_multiple(&text).expect("valid YAML documents");
    assert_eq!(
        roles.iter().map(|r| r["kind"].clone()).collect::<Vec<_>>(),
        vec![json!("Role"), json!("ClusterRole")],
        "the file holds the namespaced Role, then the cluster-wide ClusterRole"
    );
    assert_eq!(roles[0]["metadata"]["namespace"], NAMESPACE);
    roles
}

fn key_of(role: &Value) -> ObjectKey {
    let name = role["metadata"]["name"].as_str().expect("metadata.name");
    match role["kind"].as_str() {
        Some("Role") => ObjectKey::new("roles", NAMESPACE, name),
        _ => ObjectKey::new("clusterroles", "", name),
    }
}

/// A sim with RBAC on where [`USER`] holds exactly `roles`: its seeded binding is removed and
/// each role is stored with a binding of it to the user.
fn sim_granting(roles: &[Value]) -> Sim {
    let sim = Sim::start(SimOptions {
        pod_start_delay: Duration::from_millis(50),
        hpa_sync_period: Duration::from_secs(3600),
        api: ApiBehaviour {
            rbac: true,
            ..ApiBehaviour::default()
        },
        ..SimOptions::default()
    })
    .expect("the simulated cluster starts");
    let store = sim.store();
    store
        .delete(&ObjectKey::new("rolebindings", NAMESPACE, USER), None)
        .expect("the sim seeds a binding for its operator");
    let subjects = json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": USER}]);
    for role in roles {
        let key = key_of(role);
        let _ = store.delete(&key, None);
        store.create(&key, role.clone()).expect("role stored");
        let name = format!("{}-{USER}", role["metadata"]["name"].as_str().unwrap());
        let (resource, namespace, kind) = match role["kind"].as_str() {
            Some("Role") => ("rolebindings", NAMESPACE, "RoleBinding"),
            _ => ("clusterrolebindings", "", "ClusterRoleBinding"),
        };
        let mut metadata = json!({"name": name});
        if !namespace.is_empty() {
            metadata["namespace"] = json!(namespace);
        }
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata,
            "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role["kind"],
                        "name": role["metadata"]["name"]},
        });
        store
            .create(&ObjectKey::new(resource, namespace, &name), binding)
            .expect("binding stored");
    }
    settle(&sim);
    sim
}

/// Waits (bounded) until the seeded world is at rest: 3 orchestrator pods and postgres Ready,
/// a metrics sample for each orchestrator pod (validate checks all of them).
fn settle(sim: &Sim) {
    wait_ready(sim, 3);
    for _ in 0..400 {
        let postgres = object(sim, "statefulsets", "postgres");
        let (samples, _) = sim.store().list("podmetrics", Some(NAMESPACE));
        let sampled = samples
            .iter()
            .filter(|m| {
                m["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("orchestrator-"))
            })
            .count();
        if postgres["status"]["readyReplicas"] == 1 && sampled >= 3 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the seeded world did not settle");
}

/// One command of the scenario, with what the test does to the cluster before it.
struct Step {
    args: &'static [&'static str],
    /// `hpa --create` needs the HPA gone.
    delete_hpa_first: bool,
}

const fn step(args: &'static [&'static str]) -> Step {
    Step {
        args,
        delete_hpa_first: false,
    }
}

/// Every command, each doing its whole job (writes, follow, verification, checks).
const SCENARIO: &[Step] = &[
    step(&["status"]),
    step(&["validate"]),
    step(&["scale", "--replicas", "4"]),
    step(&["hpa", "--min", "2", "--max", "8", "--cpu", "60"]),
    step(&["hpa", "--watch", "--timeout", "1s"]),
    // A larger request: the capacity check (nodes, every namespace's pods) runs.
    step(&["resources", "--requests", "cpu=750m", "--limits", "cpu=1"]),
    step(&["db", "resources", "--requests", "memory=600Mi"]),
    step(&["db", "connections", "40", "--restart"]),
    step(&["undo"]),
    Step {
        args: &["hpa", "--create", "--min", "2", "--max", "6", "--cpu", "50"],
        delete_hpa_first: true,
    },
    step(&["undo"]),
];

/// What a run tells the user of missing permissions: its failure, and the lines that say
/// "forbidden" (the preflight's refusal and warnings, the commands' "skipped" lines).
fn signs(out: &Output) -> BTreeSet<String> {
    let mut signs = BTreeSet::new();
    if out.code != 0 {
        signs.insert(format!("exit {}", out.code));
    }
    let text = format!("{}\n{}", out.stdout, out.stderr);
    for line in text.lines() {
        if line.to_lowercase().contains("forbidden") {
            signs.insert(line.trim().to_string());
        }
    }
    signs
}

/// Runs `step` as [`USER`]; its output and its signs of missing permissions.
fn run_step(sim: &Sim, step: &Step) -> (Output, BTreeSet<String>) {
    if step.delete_hpa_first {
        let _ = sim.store().delete(
            &ObjectKey::new("horizontalpodautoscalers", NAMESPACE, "orchestrator"),
            None,
        );
    }
    let mut args = vec!["--context", USER, "--yes"];
    args.extend(step.args);
    let out = run(sim, &args);
    let signs = signs(&out);
    (out, signs)
}

/// The scenario's signs per step with `roles` (every step must succeed).
fn baseline(roles: &[Value]) -> Vec<BTreeSet<String>> {
    let sim = sim_granting(roles);
    SCENARIO
        .iter()
        .map(|step| {
            let (out, signs) = run_step(&sim, step);
            assert_eq!(
                out.code, 0,
                "{:?}\nstdout:\n{}\nstderr:\n{}",
                step.args, out.stdout, out.stderr
            );
            signs
        })
        .collect()
}

/// The first step that shows, with `roles`, a sign `baseline` does not have.
fn first_new_sign(roles: &[Value], baseline: &[BTreeSet<String>]) -> Option<String> {
    let sim = sim_granting(roles);
    SCENARIO.iter().zip(baseline).find_map(|(step, before)| {
        let (_, signs) = run_step(&sim, step);
        signs
            .difference(before)
            .next()
            .map(|sign| format!("{:?}: {sign}", step.args))
    })
}

#[test]
fn the_documented_roles_are_enough_for_every_command() {
    let signs = baseline(&documented_roles());
    for (step, signs) in SCENARIO.iter().zip(signs) {
        assert!(
            signs.is_empty(),
            "{:?} with the documented roles: {signs:?}",
            step.args
        );
    }
}

/// The Role alone (no cluster-wide grant): every command works, and what it skips are the
/// capacity checks, which list nodes and the pods of every namespace.
#[test]
fn the_role_alone_skips_only_the_capacity_checks() {
    let roles = documented_roles();
    let signs = baseline(&roles[..1]);
    let all: BTreeSet<&String> = signs.iter().flatten().collect();
    assert!(!all.is_empty(), "the capacity checks need the ClusterRole");
    for sign in all {
        assert!(
            sign.starts_with("warning: ") && sign.contains("at the cluster scope"),
            "only the checks that list across the cluster are skipped: {sign}"
        );
    }
}

/// `rule` without the grant of `verb` on `resource`: the rest of it, as at most two rules.
fn rule_without(rule: &Value, resource: &str, verb: &str) -> Vec<Value> {
    let others = |list: &Value, gone: &str| -> Vec<Value> {
        list.as_array()
            .expect("a list")
            .iter()
            .filter(|v| *v != gone)
            .cloned()
            .collect()
    };
    let mut rest = Vec::new();
    let resources = others(&rule["resources"], resource);
    if !resources.is_empty() {
        let mut other_resources = rule.clone();
        other_resources["resources"] = json!(resources);
        rest.push(other_resources);
    }
    let verbs = others(&rule["verbs"], verb);
    if !verbs.is_empty() {
        let mut other_verbs = rule.clone();
        other_verbs["resources"] = json!([resource]);
        other_verbs["verbs"] = json!(verbs);
        rest.push(other_verbs);
    }
    rest
}

fn strings(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

/// The roles grant exactly what the commands use: without any one verb on any one resource of
/// any rule, some command stops at its preflight, fails, or says which check it skipped — more
/// than it does with the full grant (the Role's rules are judged with the Role alone, as the
/// ClusterRole's cluster-wide `pods` grant covers the namespace too).
#[test]
fn every_verb_on_every_resource_of_the_documented_roles_is_needed() {
    let roles = documented_roles();
    for (r, role) in roles.iter().enumerate() {
        let granted = &roles[..=r];
        let before = baseline(granted);
        let rules = role["rules"].as_array().expect("rules");
        for (i, rule) in rules.iter().enumerate() {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    let mut without = granted.to_vec();
                    let mut narrowed = rules.clone();
                    narrowed.splice(i..=i, rule_without(rule, &resource, &verb));
                    without[r]["rules"] = json!(narrowed);
                    let groups = &rule["apiGroups"];
                    match first_new_sign(&without, &before) {
                        Some(why) => println!("without {verb} {groups} {resource}: {why}"),
                        None => panic!(
                            "every command works without {verb} on {groups} {resource} ({} {})",
                            role["kind"], role["metadata"]["name"]
                        ),
                    }
                }
            }
        }
    }
}
