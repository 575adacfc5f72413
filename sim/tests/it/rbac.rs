//! RBAC evaluated from stored Roles, ClusterRoles and bindings for the kubeconfig's non-admin
//! users (plugin/pkg/auth/authorizer/rbac/rbac.go `RuleAllows`; the seeded `admin` ClusterRole
//! is upstream's bootstrap role, plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go).

use orchscale_sim::{ApiBehaviour, Sim, SimOptions};
use serde_json::json;

use crate::common::{Client, DEPLOY, NS, can_i};

fn start_with_rbac() -> Sim {
    Sim::start(SimOptions {
        api: ApiBehaviour {
            rbac: true,
            ..ApiBehaviour::default()
        },
        ..SimOptions::default()
    })
    .expect("sim starts")
}

const MERGE: &str = "application/merge-patch+json";

#[tokio::test]
async fn the_namespace_admin_works_in_its_namespace_only() {
    let sim = start_with_rbac();
    let admin = Client::new(&sim);
    let ns_admin = admin.as_user(&sim, "sim-ns-admin");
    assert_eq!(ns_admin.get(DEPLOY).await.status, 200);
    let scaled = ns_admin
        .json(
            "PATCH",
            &format!("{DEPLOY}/scale"),
            MERGE,
            &json!({"spec": {"replicas": 3}}),
        )
        .await;
    assert_eq!(scaled.status, 200);
    assert_eq!(
        ns_admin
            .get(&format!("/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods"))
            .await
            .status,
        200
    );
    assert_eq!(
        ns_admin
            .get(&format!(
                "/api/v1/namespaces/{NS}/events?watch=true&timeoutSeconds=1"
            ))
            .await
            .status,
        200
    );
    let nodes = ns_admin.get("/api/v1/nodes").await;
    assert_eq!(nodes.status, 403);
    assert_eq!(
        nodes.json()["message"],
        "nodes is forbidden: User \"sim-ns-admin\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
    );
    assert_eq!(
        ns_admin.get("/api/v1/pods").await.status,
        403,
        "no cluster-scope list of pods"
    );
    assert_eq!(ns_admin.get("/api/v1/namespaces/batch/pods").await.status, 403);
    assert!(can_i(&ns_admin, "patch", "apps/deployments", "", NS).await);
    assert!(!can_i(&ns_admin, "list", "pods", "", "").await);
    assert!(!can_i(&ns_admin, "list", "nodes", "", "").await);
    assert!(
        !can_i(&ns_admin, "update", "resourcequotas", "", NS).await,
        "admin only reads quotas"
    );
    // Upstream's admin (through edit) grants services/proxy.
    assert!(can_i(&ns_admin, "get", "services", "proxy", NS).await);
    // Upstream's view role reads core events only (events.k8s.io is granted to controllers'
    // eventsRule for writing), so the namespace admin cannot read events.k8s.io/v1.
    sim.api().update(|b| b.events_v1 = true);
    let v1_events = format!("/apis/events.k8s.io/v1/namespaces/{NS}/events");
    assert_eq!(ns_admin.get(&v1_events).await.status, 403);
    assert_eq!(admin.get(&v1_events).await.status, 200);
    assert!(can_i(&ns_admin, "list", "events", "", NS).await);
    assert!(!can_i(&ns_admin, "list", "events.k8s.io/events", "", NS).await);
    // The admin user stays all-powerful, and deny() applies to every user.
    assert_eq!(admin.get("/api/v1/nodes").await.status, 200);
    sim.faults().deny("patch", "deployments");
    assert_eq!(
        ns_admin.json("PATCH", DEPLOY, MERGE, &json!({})).await.status,
        403
    );
    assert!(!can_i(&ns_admin, "patch", "apps/deployments", "", NS).await);
}

#[tokio::test]
async fn the_operator_has_no_service_proxy() {
    let sim = start_with_rbac();
    let operator = Client::new(&sim).as_user(&sim, "sim-operator");
    let proxy = format!("/api/v1/namespaces/{NS}/services/orchestrator:80/proxy/health");
    let refused = operator.get(&proxy).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("User \"sim-operator\" cannot get resource \"services/proxy\""))
    );
    assert!(!can_i(&operator, "get", "services", "proxy", NS).await);
    assert!(can_i(&operator, "patch", "apps/deployments", "", NS).await);
    assert_eq!(operator.get(DEPLOY).await.status, 200);
}

#[tokio::test]
async fn rules_come_from_the_stored_roles_and_bindings() {
    let sim = start_with_rbac();
    let admin = Client::new(&sim);
    let ns_admin = admin.as_user(&sim, "sim-ns-admin");
    let admin_role = admin
        .get("/apis/rbac.authorization.k8s.io/v1/clusterroles/admin")
        .await
        .json();
    assert_eq!(
        admin_role["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"],
        json!({"rbac.authorization.k8s.io/aggregate-to-admin": "true"})
    );
    let bindings = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings");
    assert_eq!(
        admin
            .send("DELETE", &format!("{bindings}/sim-ns-admin"), None, b"", None)
            .await
            .status,
        200
    );
    assert_eq!(ns_admin.get(DEPLOY).await.status, 403, "no binding, no access");
    let role = json!({"metadata": {"name": "read-orchestrator"}, "rules": [{"apiGroups": ["apps"],
        "resources": ["deployments"], "verbs": ["get"], "resourceNames": ["orchestrator"]}]});
    let roles = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/roles");
    assert_eq!(
        admin.json("POST", &roles, "application/json", &role).await.status,
        201
    );
    let binding = json!({"metadata": {"name": "read-orchestrator"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "sim-ns-admin"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-orchestrator"}});
    assert_eq!(
        admin
            .json("POST", &bindings, "application/json", &binding)
            .await
            .status,
        201
    );
    assert_eq!(ns_admin.get(DEPLOY).await.status, 200);
    assert_eq!(
        ns_admin
            .get(&format!("/apis/apps/v1/namespaces/{NS}/deployments"))
            .await
            .status,
        403,
        "resourceNames allow only the named object"
    );
    assert_eq!(
        ns_admin
            .get(&format!("/apis/apps/v1/namespaces/{NS}/deployments/other"))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn rbac_users_need_the_switch_and_discovery_follows_it() {
    let sim = crate::common::start();
    let admin = Client::new(&sim);
    let kubeconfig = || std::fs::read_to_string(sim.kubeconfig()).expect("kubeconfig");
    assert!(
        !kubeconfig().contains("sim-ns-admin"),
        "the default kubeconfig is unchanged"
    );
    let apis = || async { admin.get("/apis").await.json().to_string() };
    assert!(!apis().await.contains("rbac.authorization.k8s.io"));
    let cluster_roles = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
    assert_eq!(admin.get(cluster_roles).await.status, 404);
    sim.api().update(|b| b.rbac = true);
    assert!(
        kubeconfig().contains("- name: sim-ns-admin"),
        "turning RBAC on adds the contexts"
    );
    assert!(apis().await.contains("rbac.authorization.k8s.io"));
    let ns_admin = admin.as_user(&sim, "sim-ns-admin");
    assert_eq!(
        ns_admin.get(DEPLOY).await.status,
        200,
        "the switch seeds the bindings"
    );
    assert_eq!(
        ns_admin.get("/sim/requests").await.status,
        403,
        "the admin endpoint is the admin user's"
    );
    sim.api().update(|b| b.rbac = false);
    assert_eq!(
        ns_admin.get(DEPLOY).await.status,
        401,
        "RBAC users exist only with the switch on"
    );
}
