//! `validate [--health-url URL]`: the runbook's Validation section as a read-only checklist —
//! deployment available, every pod Ready, HPA ScalingActive, metrics served, StatefulSet ready,
//! health endpoint. Exit 0 only when every check passes, else 1. Writes nothing.

mod probe;

pub use probe::check_url;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::{Map, json};

use super::shared::{get_unless_forbidden, selector_string};
use crate::cli::{Cli, ValidateArgs};
use crate::cluster::Cluster;
use crate::error::Error;
use crate::plan::validate::{
    self as checks, Check, deployment_check, health_check, hpa_check, pods_check, statefulset_check,
};
use crate::report::Reporter;

/// # Errors
/// [`Error::Failed`] (exit 1) when a check fails; API errors other than a missing or
/// forbidden object (those are failed checks, not errors).
pub async fn run(
    cluster: &Cluster,
    cli: &Cli,
    args: &ValidateArgs,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let t = &cli.targets;
    let deployment = readable::<Deployment>(cluster, &t.deployment).await?;
    let selector = deployment
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .and_then(|d| d.spec.as_ref())
        .map(|s| selector_string(&s.selector));
    let pods: Result<Vec<Pod>, String> = match &selector {
        Some(selector) if !selector.is_empty() => match cluster.list(selector).await {
            Ok(pods) => Ok(pods),
            Err(
                e @ Error::Api {
                    status: Some(403), ..
                },
            ) => Err(e.to_string()),
            Err(e) => return Err(e),
        },
        _ => Ok(Vec::new()),
    };
    let hpa = readable::<HorizontalPodAutoscaler>(cluster, &t.hpa).await?;
    let statefulset = readable::<StatefulSet>(cluster, &t.statefulset).await?;
    // The database's pods, for an OnDelete set (judged by its pods' revision); unreadable ones
    // leave the judgement to its status.
    let statefulset_selector = statefulset
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .and_then(|s| s.spec.as_ref())
        .map(|s| selector_string(&s.selector))
        .filter(|s| !s.is_empty());
    let statefulset_pods: Option<Vec<Pod>> = match &statefulset_selector {
        Some(selector) => cluster.list(selector).await.ok(),
        None => None,
    };

    let mut list = vec![match &deployment {
        Ok(d) => deployment_check(&t.deployment, d.as_ref()),
        Err(e) => Check::new(checks::DEPLOYMENT, false, e.clone()),
    }];
    list.push(match (&selector, &pods) {
        (_, Err(e)) => Check::new(checks::PODS, false, e.clone()),
        (Some(_), Ok(pods)) => pods_check(pods),
        (None, Ok(_)) => Check::new(checks::PODS, false, "no deployment, so no pods to check"),
    });
    list.push(match &hpa {
        Ok(h) => hpa_check(&t.hpa, h.as_ref()),
        Err(e) => Check::new(checks::HPA, false, e.clone()),
    });
    let no_pods = Vec::new();
    list.push(
        metrics(
            cluster,
            cli,
            selector.as_deref(),
            pods.as_ref().unwrap_or(&no_pods),
            reporter,
        )
        .await,
    );
    list.push(match &statefulset {
        Ok(s) => statefulset_check(&t.statefulset, s.as_ref(), statefulset_pods.as_deref()),
        Err(e) => Check::new(checks::STATEFULSET, false, e.clone()),
    });
    list.push(health(cluster, cli, args).await?);

    let ok = list.iter().all(|c| c.ok);
    let mut extra = Map::new();
    extra.insert("checks".into(), json!(list));
    reporter.set_document("validate", false, &[], ok, extra);
    reporter.out(&checks::render(&list));
    if ok {
        return Ok(());
    }
    let failed: Vec<&str> = list.iter().filter(|c| !c.ok).map(|c| c.name.as_str()).collect();
    Err(Error::failed(
        format!("validation failed: {}", failed.join(", ")),
        if reporter.is_json() {
            "each failed check (`ok`: false) says why in its `detail`; `kubectl orchscale status` shows the details"
        } else {
            "see the checklist above; `kubectl orchscale status` shows the details"
        },
    ))
}

/// Reads an object for a check; a 403 becomes that check's failure (the others still run)
/// rather than an error that hides the whole checklist.
async fn readable<K>(cluster: &Cluster, name: &str) -> Result<Result<Option<K>, String>, Error>
where
    K: crate::cluster::Object,
{
    let mut denied = None;
    let object = get_unless_forbidden(cluster, name, |e| denied = Some(e.to_string())).await?;
    Ok(denied.map_or(Ok(object), Err))
}

/// metrics.k8s.io for the deployment's pods: served, and with samples for them. Pods too young
/// for a first sample are waited for (polling every second, bounded by `--timeout`), since a
/// validation right after a rollout would otherwise fail on metrics-server's resolution.
async fn metrics(
    cluster: &Cluster,
    cli: &Cli,
    selector: Option<&str>,
    pods: &[Pod],
    reporter: &mut Reporter,
) -> Check {
    let live: Vec<&Pod> = pods.iter().filter(|p| crate::health::is_live(p)).collect();
    let Some(selector) = selector else {
        return Check::new(checks::METRICS, false, "no deployment, so no pods to sample");
    };
    let deadline = tokio::time::Instant::now() + cli.global.timeout;
    let mut said = false;
    loop {
        let samples = match cluster.pod_metrics(selector).await {
            Ok(samples) => samples,
            Err(e) => return Check::new(checks::METRICS, false, format!("metrics.k8s.io failed: {e}")),
        };
        let now = k8s_openapi::jiff::Timestamp::now();
        let counted = samples.map(|samples| {
            let sampled = |p: &Pod| {
                let name = p.metadata.name.as_deref().unwrap_or_default();
                samples.iter().any(|u| u.pod == name)
            };
            checks::Samples {
                pods: live.len(),
                with_sample: live.iter().filter(|p| sampled(p)).count(),
                no_sample_yet: live
                    .iter()
                    .filter(|p| !sampled(p) && checks::too_young_for_a_sample(p, now))
                    .count(),
            }
        });
        let waiting = counted.as_ref().map_or(0, |c| c.no_sample_yet);
        if waiting == 0 || tokio::time::Instant::now() >= deadline {
            return checks::metrics_check(counted);
        }
        if !said {
            reporter.info(&format!(
                "metrics: no sample yet for {waiting} pod(s) that became Ready less than {}s ago \
                 (metrics-server samples every 15-60 s): waiting for them (at most --timeout)",
                checks::NO_SAMPLE_YET.as_secs()
            ));
            said = true;
        }
        tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + SAMPLE_POLL)).await;
    }
}

/// How often `validate` asks metrics.k8s.io again while waiting for first samples.
const SAMPLE_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// `--health-url` when given, otherwise the service's `/health` through the API server's
/// service proxy (on the service's first port).
async fn health(cluster: &Cluster, cli: &Cli, args: &ValidateArgs) -> Result<Check, Error> {
    if let Some(url) = &args.health_url {
        return Ok(health_check(
            &probe::display_url(url),
            probe::get_status(url).await,
        ));
    }
    let name = &cli.targets.service;
    let Some(service) = cluster.get_opt::<Service>(name).await? else {
        return Ok(Check::new(
            checks::HEALTH,
            false,
            format!("service/{name} not found: give the endpoint with --health-url"),
        ));
    };
    let port = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|ports| ports.first())
        .map(|p| {
            p.name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| p.port.to_string())
        });
    let Some(port) = port else {
        return Ok(Check::new(
            checks::HEALTH,
            false,
            format!("service/{name} has no ports: give the endpoint with --health-url"),
        ));
    };
    let path = format!(
        "/api/v1/namespaces/{}/services/{name}:{port}/proxy/health",
        cluster.namespace
    );
    let target = format!("service/{name}:{port} /health (through the API server proxy)");
    let answer = match cluster.get_raw_text(&path).await {
        Ok(_) => Ok((200, "OK".to_string())),
        // Reaching a service through the API server needs `get services/proxy`, which the
        // `view` and many operator roles lack: the check was not run, which is not a pass.
        Err(Error::Api {
            status: Some(403), ..
        }) => return Ok(checks::not_checked_forbidden(&target)),
        Err(Error::Api {
            status: Some(code),
            message,
            ..
        }) => Ok((code, short(&message))),
        Err(e) => Err(e.to_string()),
    };
    Ok(health_check(&target, answer))
}

/// The first line of a server message, bounded, for the checklist.
fn short(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let mut text: String = line.chars().take(120).collect();
    if line.chars().count() > 120 {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_to_one_line() {
        assert_eq!(short("unhealthy\nstack trace"), "unhealthy");
        let long = "x".repeat(200);
        assert_eq!(short(&long).chars().count(), 121);
    }
}
