//! The kubelet: runs scheduled pods through Pending -> Running (started, not ready) -> Ready
//! after the scenario's start delay, and plays the failures a scenario asks for
//! (CrashLoopBackOff, ErrImagePull/ImagePullBackOff, OOMKilled), including pods whose
//! load-model memory exceeds their container's memory limit; and graceful pod deletion
//! ([`delete_pod`]): with the switch on, a deleted pod stays Terminating for its grace period
//! and the kubelet removes it once that is over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::common::{
    Scope, is_terminating, key, name, namespace, pod_ready, set_condition, uid, workload_of,
};
use super::events::{Severity, record};
use super::quantity::milli_of;
use crate::profile::Behaviour;
use crate::scenario::{PodFailure, Scenario};
use crate::store::{ObjectKey, Store, StoreError, UpdatePart, now_rfc3339, rfc3339, rv_of};

/// kube's default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// Deletes a pod as the API server does. Without graceful deletion it goes at once. With it
/// (pkg/registry/core/pod/strategy.go `CheckGracefulDelete`; staging/.../registry/rest/delete.go
/// `BeforeDelete`): a pod bound to a node and not yet Succeeded/Failed gets
/// `metadata.deletionTimestamp` = now + its grace period and `deletionGracePeriodSeconds`
/// (the request's `gracePeriodSeconds`, else `spec.terminationGracePeriodSeconds`, else 30) and
/// a generation bump, and stays (selected by label selectors, listed) until the kubelet has
/// stopped it; an unscheduled or finished pod, or a grace period of 0, goes at once. Deleting a
/// pod that is already terminating changes nothing. `precondition` is a resourceVersion the pod
/// must still have.
pub fn delete_pod(
    store: &Store,
    pod_key: &ObjectKey,
    behaviour: &Behaviour,
    grace_override: Option<i64>,
    precondition: Option<u64>,
) -> Result<Value, StoreError> {
    if !behaviour.graceful_deletion {
        return store.delete(pod_key, precondition);
    }
    let current = store.get(pod_key).ok_or(StoreError::NotFound)?;
    if let Some(rv) = precondition
        && rv != rv_of(&current)
    {
        return Err(StoreError::Conflict {
            current: rv_of(&current),
        });
    }
    if is_terminating(&current) {
        return Ok(current);
    }
    let unscheduled = current["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
    let finished = matches!(current["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
    let grace = grace_override
        .or_else(|| current["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(DEFAULT_GRACE_SECONDS)
        .max(0);
    if unscheduled || finished || grace == 0 {
        return store.delete(pod_key, precondition);
    }
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let deadline = rfc3339(since_epoch + u64::try_from(grace).unwrap_or(0));
    store.modify(pod_key, UpdatePart::Main, |pod| {
        let meta = &mut pod["metadata"];
        meta["deletionTimestamp"] = json!(deadline);
        meta["deletionGracePeriodSeconds"] = json!(grace);
        if let Some(generation) = meta["generation"].as_i64() {
            meta["generation"] = json!(generation + 1);
        }
        true
    })
}

/// What the kubelet remembers about a pod between passes.
struct Runtime {
    key: ObjectKey,
    /// When the containers (last) started: Ready comes `pod_start_delay` later.
    started: Instant,
    failure: Option<PodFailure>,
    /// The failure comes from the load model (memory above the limit), not from the scenario,
    /// so it stops when the load drops.
    from_load: bool,
    restarts: u32,
    next_step: Instant,
}

/// The kubelet's state over passes.
pub struct Kubelet {
    scenario: Arc<Scenario>,
    pods: HashMap<String, Runtime>,
    /// When each terminating pod (by uid) is gone: its grace period (capped) after first sight;
    /// and its namespace.
    terminating: HashMap<String, (Instant, String)>,
}

/// The few fields of a bound pod a pass looks at, read without cloning the pod.
struct Seen {
    key: ObjectKey,
    uid: String,
    has_statuses: bool,
    ready: bool,
    over_memory: bool,
}

impl Kubelet {
    pub fn new(scenario: Arc<Scenario>) -> Kubelet {
        Kubelet {
            scenario,
            pods: HashMap::new(),
            terminating: HashMap::new(),
        }
    }

    /// Back-off before the next restart (or pull) attempt: doubles per restart like the
    /// kubelet's 10s..5m, scaled down to the scenario's start delay so tests see several.
    fn backoff(&self, restarts: u32) -> Duration {
        let base = self.scenario.pod_start_delay().max(Duration::from_millis(20));
        (base * 2u32.pow(restarts.min(5))).min(Duration::from_secs(2))
    }

    /// Terminating pods: once its grace period (capped by the behaviour) is over, a pod's
    /// containers are stopped and the kubelet deletes it for good (grace 0), as the kubelet's
    /// status manager does after `killPod`.
    fn finish_terminating(&mut self, store: &Store, now: Instant, scope: &Scope) {
        let cap = self.scenario.behaviour().grace_period_cap;
        let terminating = scope.scan(store, "pods", |p| {
            is_terminating(p).then(|| {
                let grace = p["metadata"]["deletionGracePeriodSeconds"].as_u64().unwrap_or(0);
                (key("pods", p), uid(p).to_owned(), Duration::from_secs(grace))
            })
        });
        let mut alive = std::collections::HashSet::new();
        for (pod_key, pod_uid, grace) in terminating {
            let grace = cap.map_or(grace, |cap| grace.min(cap));
            let (gone_at, _) = *self
                .terminating
                .entry(pod_uid.clone())
                .or_insert((now + grace, pod_key.namespace.clone()));
            if now >= gone_at {
                if store.delete(&pod_key, None).is_ok() {
                    self.scenario.forget_pod(&pod_key.namespace, &pod_key.name);
                }
            } else {
                alive.insert(pod_uid);
            }
        }
        self.terminating
            .retain(|u, (_, ns)| alive.contains(u) || !scope.includes(ns));
    }

    /// One pass over the bound pods of the namespaces in `scope`; returns the namespaces where
    /// a pod is starting, failing or terminating (its next step comes with time, not with a
    /// change).
    pub fn pass(&mut self, store: &Store, scope: &Scope) -> Scope {
        self.finish_terminating(store, Instant::now(), scope);
        let mut timed = Scope::none();
        for (_, namespace) in self.terminating.values() {
            timed.add(namespace);
        }
        let scenario = Arc::clone(&self.scenario);
        let seen = scope.scan(store, "pods", |p| {
            let node = p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty());
            // A finished pod (a Job's, or evicted) stays as it is: the kubelet does not start
            // its containers again (pkg/kubelet/kubelet.go, `isPodTerminal` skips syncing them).
            let finished = matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
            if node.is_none() || is_terminating(p) || finished {
                return None;
            }
            let over_memory = workload_of(p)
                .and_then(|w| scenario.load(w))
                .zip(milli_of(
                    &p["spec"]["containers"][0]["resources"]["limits"]["memory"],
                ))
                .is_some_and(|(load, limit)| i128::from(load.memory_per_pod_bytes) * 1000 > limit);
            Some(Seen {
                key: key("pods", p),
                uid: uid(p).to_owned(),
                has_statuses: p["status"]["containerStatuses"].is_array(),
                ready: pod_ready(p),
                over_memory,
            })
        });
        let now = Instant::now();
        let mut alive = std::collections::HashSet::new();
        for pod in seen {
            alive.insert(pod.uid.clone());
            if !pod.has_statuses {
                timed.add(&pod.key.namespace);
                self.start(store, &pod, now);
                continue;
            }
            let delay = self.scenario.pod_start_delay();
            let runtime = self.pods.entry(pod.uid.clone()).or_insert_with(|| Runtime {
                key: pod.key.clone(),
                started: now,
                failure: None,
                from_load: false,
                restarts: 0,
                next_step: now,
            });
            if runtime.failure.is_none() && pod.over_memory {
                runtime.failure = Some(PodFailure::OomKilled);
                runtime.from_load = true;
                runtime.next_step = now;
            }
            if !pod.ready || runtime.failure.is_some() {
                timed.add(&pod.key.namespace);
            }
            match runtime.failure {
                Some(failure) if now >= runtime.next_step => {
                    self.fail_step(store, &pod, failure, pod.over_memory, now)
                }
                None if !pod.ready && now >= runtime.started + delay => become_ready(store, &pod.key),
                _ => {}
            }
        }
        let gone: Vec<String> = self
            .pods
            .iter()
            .filter(|(u, r)| !alive.contains(*u) && scope.includes(&r.key.namespace))
            .map(|(u, _)| u.clone())
            .collect();
        for gone_uid in gone {
            if let Some(runtime) = self.pods.remove(&gone_uid)
                && store.get(&runtime.key).is_none()
            {
                self.scenario
                    .forget_pod(&runtime.key.namespace, &runtime.key.name);
            }
        }
        timed
    }

    /// First sight of a bound pod: containers start (or the image pull fails).
    fn start(&mut self, store: &Store, pod: &Seen, now: Instant) {
        let failure = self.scenario.pod_failure(&pod.key.namespace, &pod.key.name);
        let first_step = match failure {
            // The crash comes once the process has run a little.
            Some(PodFailure::CrashLoop | PodFailure::OomKilled) => now + self.backoff(0) / 2,
            _ => now + self.backoff(0),
        };
        self.pods.insert(
            pod.uid.clone(),
            Runtime {
                key: pod.key.clone(),
                started: now,
                failure,
                from_load: false,
                restarts: 0,
                next_step: first_step,
            },
        );
        let Ok(stored) = store.modify(&pod.key, UpdatePart::Status, |p| {
            let host_ip = host_ip(p["spec"]["nodeName"].as_str().unwrap_or_default());
            let statuses: Vec<Value> = containers(p)
                .iter()
                .enumerate()
                .map(|(i, (name, image))| {
                    if i == 0 && failure == Some(PodFailure::ImagePull) {
                        let message = format!("failed to pull and unpack image \"{image}\": not found");
                        waiting_status(name, image, 0, "ErrImagePull", &message)
                    } else {
                        running_status(name, image, 0)
                    }
                })
                .collect();
            let status = &mut p["status"];
            status["phase"] = json!(if failure == Some(PodFailure::ImagePull) {
                "Pending"
            } else {
                "Running"
            });
            status["hostIP"] = json!(host_ip);
            status["podIP"] = json!(format!(
                "10.244.{}.{}",
                host_ip.len(),
                2 + (pod.uid.len() * 7 + pod.key.name.len()) % 250
            ));
            status["startTime"] = json!(now_rfc3339());
            status["qosClass"] = json!("Burstable");
            status["containerStatuses"] = json!(statuses);
            set_condition(status, "PodScheduled", "True", "", "");
            set_condition(status, "Initialized", "True", "", "");
            not_ready_conditions(status);
            true
        }) else {
            return;
        };
        if failure == Some(PodFailure::ImagePull) {
            let image = containers(&stored)
                .first()
                .map(|c| c.1.clone())
                .unwrap_or_default();
            let message = format!(
                "Failed to pull image \"{image}\": failed to pull and unpack image \"{image}\": not found"
            );
            record(store, &stored, Severity::Warning, "Failed", &message, "kubelet");
            record(
                store,
                &stored,
                Severity::Warning,
                "Failed",
                "Error: ErrImagePull",
                "kubelet",
            );
        }
    }

    /// One step of a failing pod: another pull back-off, or another crash and restart.
    fn fail_step(&mut self, store: &Store, pod: &Seen, failure: PodFailure, over_memory: bool, now: Instant) {
        let backoff = self.backoff(self.pods.get(&pod.uid).map_or(0, |r| r.restarts));
        let Some(runtime) = self.pods.get_mut(&pod.uid) else {
            return;
        };
        if runtime.from_load && !over_memory {
            // The load dropped below the limit: the next restart runs normally.
            runtime.failure = None;
            runtime.from_load = false;
            runtime.started = now;
            let _ = store.modify(&pod.key, UpdatePart::Status, |p| {
                let restarts = runtime.restarts;
                let statuses: Vec<Value> = containers(p)
                    .iter()
                    .map(|(n, i)| running_status(n, i, restarts))
                    .collect();
                p["status"]["containerStatuses"] = json!(statuses);
                true
            });
            return;
        }
        runtime.next_step = now + backoff;
        if failure != PodFailure::ImagePull {
            runtime.restarts += 1;
        }
        let restarts = runtime.restarts;
        let pod_name = pod.key.name.clone();
        let pulled_again = std::cell::Cell::new(false);
        let Ok(stored) = store.modify(&pod.key, UpdatePart::Status, |p| {
            let pod_uid = uid(p).to_owned();
            let ns = namespace(p).to_owned();
            let Some((main, image)) = containers(p).into_iter().next() else {
                return false;
            };
            let status = match failure {
                // The kubelet's image manager (pkg/kubelet/images/image_manager.go
                // `EnsureImageExists`) answers ImagePullBackOff while the pull is in back-off
                // and pulls again once it is over: that pull fails with ErrImagePull. So the
                // two alternate, as `kubectl get pods` shows them.
                PodFailure::ImagePull
                    if p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                        == "ImagePullBackOff" =>
                {
                    pulled_again.set(true);
                    let message = format!("failed to pull and unpack image \"{image}\": not found");
                    waiting_status(&main, &image, 0, "ErrImagePull", &message)
                }
                PodFailure::ImagePull => waiting_status(
                    &main,
                    &image,
                    0,
                    "ImagePullBackOff",
                    &format!("Back-off pulling image \"{image}\""),
                ),
                PodFailure::CrashLoop | PodFailure::OomKilled => {
                    let (reason, code) = if failure == PodFailure::CrashLoop {
                        ("Error", 1)
                    } else {
                        ("OOMKilled", 137)
                    };
                    let message = format!(
                        "back-off {}s restarting failed container={main} pod={pod_name}_{ns}({pod_uid})",
                        backoff.as_secs().max(10)
                    );
                    let mut s = waiting_status(&main, &image, restarts, "CrashLoopBackOff", &message);
                    let now = now_rfc3339();
                    s["lastState"] = json!({"terminated": {
                        "reason": reason, "exitCode": code, "startedAt": now, "finishedAt": now,
                        "containerID": s["containerID"],
                    }});
                    s
                }
            };
            p["status"]["phase"] = json!(if failure == PodFailure::ImagePull {
                "Pending"
            } else {
                "Running"
            });
            p["status"]["containerStatuses"][0] = status;
            not_ready_conditions(&mut p["status"]);
            true
        }) else {
            return;
        };
        let main = containers(&stored).first().cloned().unwrap_or_default();
        if pulled_again.get() {
            let message = format!(
                "Failed to pull image \"{0}\": failed to pull and unpack image \"{0}\": not found",
                main.1
            );
            record(store, &stored, Severity::Warning, "Failed", &message, "kubelet");
            return;
        }
        let message = match failure {
            PodFailure::ImagePull => format!("Back-off pulling image \"{}\"", main.1),
            _ => format!(
                "Back-off restarting failed container {} in pod {}_{}({})",
                main.0,
                name(&stored),
                namespace(&stored),
                uid(&stored)
            ),
        };
        record(store, &stored, Severity::Warning, "BackOff", &message, "kubelet");
    }
}

fn become_ready(store: &Store, pod_key: &ObjectKey) {
    let _ = store.modify(pod_key, UpdatePart::Status, |p| {
        if let Some(statuses) = p["status"]["containerStatuses"].as_array_mut() {
            for status in statuses {
                status["ready"] = json!(true);
            }
        }
        let status = &mut p["status"];
        set_condition(status, "ContainersReady", "True", "", "");
        set_condition(status, "Ready", "True", "", "");
        true
    });
}

fn not_ready_conditions(status: &mut Value) {
    let unready: Vec<String> = status["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    let message = format!("containers with unready status: [{}]", unready.join(" "));
    set_condition(status, "ContainersReady", "False", "ContainersNotReady", &message);
    set_condition(status, "Ready", "False", "ContainersNotReady", &message);
}

/// (name, image) of each container of a pod.
fn containers(pod: &Value) -> Vec<(String, String)> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["image"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn container_id(name: &str) -> String {
    format!(
        "containerd://{:064x}",
        u128::from(super::common::fnv32_of_json(&json!([name, now_rfc3339()])))
    )
}

/// Fills in the status of a bound pod whose containers run and are ready, as the kubelet would
/// have reported it: for pods seeded already running.
pub(crate) fn set_running_ready(pod: &mut Value, index: usize) {
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default().to_owned();
    let statuses: Vec<Value> = containers(pod)
        .iter()
        .map(|(name, image)| {
            let mut status = running_status(name, image, 0);
            status["ready"] = json!(true);
            status
        })
        .collect();
    let status = &mut pod["status"];
    status["phase"] = json!("Running");
    status["hostIP"] = json!(host_ip(&node));
    status["podIP"] = json!(format!(
        "10.{}.{}.{}",
        64 + index / 65_536 % 64,
        index / 256 % 256,
        index % 256
    ));
    status["startTime"] = json!(now_rfc3339());
    status["qosClass"] = json!("Burstable");
    status["containerStatuses"] = json!(statuses);
    for condition in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        set_condition(status, condition, "True", "", "");
    }
}

fn running_status(name: &str, image: &str, restarts: u32) -> Value {
    json!({
        "name": name, "image": image, "imageID": format!("{image}@sha256:{:064x}", name.len()),
        "containerID": container_id(name),
        "ready": false, "started": true, "restartCount": restarts,
        "state": {"running": {"startedAt": now_rfc3339()}},
    })
}

fn waiting_status(name: &str, image: &str, restarts: u32, reason: &str, message: &str) -> Value {
    json!({
        "name": name, "image": image, "imageID": "", "containerID": container_id(name),
        "ready": false, "started": false, "restartCount": restarts,
        "state": {"waiting": {"reason": reason, "message": message}},
    })
}

/// A stable fake node IP.
fn host_ip(node: &str) -> String {
    format!("10.0.0.{}", 10 + super::common::fnv32_of_json(&json!(node)) % 200)
}
