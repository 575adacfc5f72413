//! The rollout follower as later commands use it, through the library against the sim:
//! a StatefulSet's ordered rollout (db resources) and a Deployment's template rollout.

use clap::Parser;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::Patch;
use kubectl_orchscale::cli::Cli;
use kubectl_orchscale::cluster::{self, Cluster};
use kubectl_orchscale::follow::{FollowSpec, follow};
use kubectl_orchscale::health::{Rollout, Workload};
use kubectl_orchscale::report::Reporter;
use serde_json::json;

use crate::harness::{object, sim, wait_ready};

pub(crate) async fn connect(kubeconfig: &std::path::Path) -> (Cluster, Reporter) {
    let cli = Cli::try_parse_from([
        "kubectl-orchscale",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "-q",
        "status",
    ])
    .unwrap();
    (
        cluster::connect(&cluster::ConnectOptions {
            kubeconfig: Some(kubeconfig.to_path_buf()),
            namespace: cli.global.namespace.clone(),
            ..Default::default()
        })
        .await
        .unwrap(),
        Reporter::new(&cli.global),
    )
}

pub(crate) fn spec<'a>(name: &'a str, selector: &'a str) -> FollowSpec<'a> {
    FollowSpec {
        name,
        selector,
        timeout: std::time::Duration::from_secs(60),
        applied: "test change applied",
        expected_replicas: None,
        autoscaler: None,
        events_since: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_rollout_is_followed_to_the_new_revision() {
    let sim = sim();
    let before = object(&sim, "statefulsets", "postgres");
    let (cluster, mut reporter) = connect(sim.kubeconfig()).await;
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"test/restart": "1"}}}}});
    cluster
        .patch::<StatefulSet, _>("postgres", &Patch::Merge(&patch), false)
        .await
        .unwrap();
    let done: StatefulSet = follow(&cluster, &spec("postgres", "app=postgres"), &mut reporter)
        .await
        .unwrap();
    assert!(matches!(done.rollout(), Rollout::Complete(_)));
    let status = done.status.unwrap();
    assert_eq!(status.current_revision, status.update_revision);
    assert_ne!(
        status.update_revision.as_deref(),
        before["status"]["updateRevision"].as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_template_rollout_is_followed_through_a_cut_watch() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults().cut_watches_after(2);
    let (cluster, mut reporter) = connect(sim.kubeconfig()).await;
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"test/restart": "1"}}}}});
    cluster
        .patch::<Deployment, _>("orchestrator", &Patch::Merge(&patch), false)
        .await
        .unwrap();
    let done: Deployment = follow(&cluster, &spec("orchestrator", "app=orchestrator"), &mut reporter)
        .await
        .unwrap();
    let counts = done.counts();
    assert_eq!(
        (counts.updated, counts.ready, counts.available, counts.total),
        (3, 3, 3, 3)
    );
}
