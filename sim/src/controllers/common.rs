//! What every controller shares: the wake-up loop (store events + a periodic tick) and small
//! readers and builders for the k8s JSON shapes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::broadcast::{Receiver, error::RecvError, error::TryRecvError};

use crate::scenario::Scenario;
use crate::store::{ObjectKey, Store, StoreError, StoreEvent, UpdatePart, now_rfc3339};

/// How long a controller that idles keeps ticking at its period after the last store event it
/// follows (or scenario change), whatever its pass says is pending.
const HOT: Duration = Duration::from_secs(1);

/// What a pass leaves for later, so that an idle loop knows whether to tick on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// Nothing that time alone moves on: the next pass can wait for a change.
    Nothing,
    /// Steps due at a time (a pod Ready after its start delay, a restart back-off, a grace
    /// period or progress deadline running out): tick on.
    Timed,
}

/// Whether a loop passes on every tick, or idles between changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticks {
    /// Every tick: cheap passes that keep their own time (the HPA's sync period).
    Always,
    /// On ticks only while the last pass left [`Pending::Timed`] steps or within [`HOT`] of
    /// a change of what it follows, else every `idle` (a safety net): passes that visit every
    /// pod of the cluster, whose cost must not run while nothing changes.
    WhenChanged { idle: Duration },
}

/// Runs `pass` now, then after every store event on one of `resources` and on `period` ticks
/// (time-based transitions need the tick; with [`Ticks::WhenChanged`] only near a change, see
/// [`HOT`]; a change of the scenario counts as a change). Events that queue up
/// during a pass are folded into one next pass, so a burst of writes costs one pass, not one
/// per write. `events` is subscribed by the caller before spawning, so the controller follows
/// the store from the moment it is started, not from whenever its task is first polled.
pub async fn run_loop(
    store: Arc<Store>,
    mut events: Receiver<StoreEvent>,
    resources: &'static [&'static str],
    period: Duration,
    ticks: Ticks,
    scenario: Arc<Scenario>,
    mut pass: impl FnMut(&Store) -> Pending + Send,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = false;
    let mut changed_at = Instant::now();
    loop {
        let generation = scenario.generation();
        // A bug in one pass must not silently stop the controller for the rest of the session:
        // report it once and keep reconciling (the next pass starts from the store again).
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pass(&store)));
        if outcome.is_err() && !reported {
            eprintln!("orchscale-sim: a controller pass panicked; the controller keeps running");
            reported = true;
        }
        let pending = outcome.unwrap_or(Pending::Timed);
        let passed_at = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let now = Instant::now();
                    if scenario.generation() != generation {
                        changed_at = now;
                    }
                    let due = match ticks {
                        Ticks::Always => true,
                        Ticks::WhenChanged { idle } => {
                            pending == Pending::Timed
                                || now.duration_since(changed_at) < HOT
                                || now.duration_since(passed_at) >= idle
                        }
                    };
                    if due {
                        break;
                    }
                }
                _ = next_relevant(&mut events, resources) => {
                    changed_at = Instant::now();
                    // Let the writer finish its burst (e.g. a client creating several objects).
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    break;
                }
            }
        }
        drain(&mut events);
    }
}

/// The namespaces a scoped pass visits: every one, or only some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Only(BTreeSet<String>),
}

impl Scope {
    /// No namespace.
    pub fn none() -> Self {
        Scope::Only(BTreeSet::new())
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Scope::All)
    }

    pub fn includes(&self, namespace: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(namespaces) => namespaces.contains(namespace),
        }
    }

    /// Adds a namespace (the empty one, of a cluster-scoped object, means every namespace).
    pub fn add(&mut self, namespace: &str) {
        match self {
            Scope::All => {}
            Scope::Only(_) if namespace.is_empty() => *self = Scope::All,
            Scope::Only(namespaces) => {
                namespaces.insert(namespace.to_owned());
            }
        }
    }

    pub fn extend(&mut self, other: &Scope) {
        match other {
            Scope::All => *self = Scope::All,
            Scope::Only(namespaces) => {
                for namespace in namespaces {
                    self.add(namespace);
                }
            }
        }
    }

    /// [`Store::scan`] over the namespaces in scope.
    pub fn scan<T>(&self, store: &Store, resource: &str, mut f: impl FnMut(&Value) -> Option<T>) -> Vec<T> {
        match self {
            Scope::All => store.scan(resource, None, f),
            Scope::Only(namespaces) => namespaces
                .iter()
                .flat_map(|ns| store.scan(resource, Some(ns), &mut f))
                .collect(),
        }
    }
}

/// [`run_loop`] for a pass that visits only the namespaces where something changed: each pass
/// gets the [`Scope`] of the namespaces of the store events it follows since the last pass,
/// those changed within [`HOT`], and those where a pass left timed steps (the pass returns
/// them: the namespaces it visited and found timed; the others keep what an earlier pass said).
/// Every namespace is visited on the first pass, after a scenario change, after missed events
/// and on the `idle` safety tick. So a change in one namespace costs that namespace's objects,
/// not the cluster's (upstream controllers sync the objects their informers' events name).
pub async fn run_scoped_loop(
    store: Arc<Store>,
    mut events: Receiver<StoreEvent>,
    resources: &'static [&'static str],
    period: Duration,
    idle: Duration,
    scenario: Arc<Scenario>,
    mut pass: impl FnMut(&Store, &Scope) -> Scope + Send,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = false;
    let mut scope = Scope::All;
    let mut timed = Scope::none();
    let mut recent: HashMap<String, Instant> = HashMap::new();
    let mut all_at = Instant::now();
    loop {
        let generation = scenario.generation();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pass(&store, &scope)));
        if outcome.is_err() && !reported {
            eprintln!("orchscale-sim: a controller pass panicked; the controller keeps running");
            reported = true;
        }
        let found = outcome.unwrap_or(Scope::All);
        timed = match (&scope, timed) {
            (Scope::All, _) => found,
            (Scope::Only(_), Scope::All) => Scope::All,
            (Scope::Only(visited), Scope::Only(mut before)) => {
                before.retain(|ns| !visited.contains(ns));
                let mut next = Scope::Only(before);
                next.extend(&found);
                next
            }
        };
        if scope.is_all() {
            all_at = Instant::now();
        }
        let mut next = Scope::none();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let now = Instant::now();
                    recent.retain(|_, at| now.duration_since(*at) < HOT);
                    if scenario.generation() != generation || now.duration_since(all_at) >= idle {
                        next = Scope::All;
                    }
                    next.extend(&timed);
                    for namespace in recent.keys() {
                        next.add(namespace);
                    }
                    if next != Scope::none() {
                        break;
                    }
                }
                changed = next_change(&mut events, resources) => {
                    match changed {
                        Some(namespace) => {
                            recent.insert(namespace.clone(), Instant::now());
                            next.add(&namespace);
                        }
                        None => next = Scope::All,
                    }
                    // Let the writer finish its burst (e.g. a client creating several objects).
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    break;
                }
            }
        }
        // The events queued meanwhile are folded into this pass.
        loop {
            match events.try_recv() {
                Ok(event) if resources.contains(&event.key.resource.as_str()) => {
                    recent.insert(event.key.namespace.clone(), Instant::now());
                    next.add(&event.key.namespace);
                }
                Ok(_) => {}
                Err(TryRecvError::Lagged(_)) => next = Scope::All,
                Err(_) => break,
            }
        }
        next.extend(&timed);
        scope = next;
    }
}

/// The namespace of the next store event on one of `resources` (`None` when events were missed:
/// anything may have changed).
async fn next_change(events: &mut Receiver<StoreEvent>, resources: &[&str]) -> Option<String> {
    loop {
        match events.recv().await {
            Ok(event) if resources.contains(&event.key.resource.as_str()) => {
                return Some(event.key.namespace);
            }
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return None,
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

async fn next_relevant(events: &mut Receiver<StoreEvent>, resources: &[&str]) {
    loop {
        match events.recv().await {
            Ok(event) if resources.contains(&event.key.resource.as_str()) => return,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return,
            // The store outlives the controllers; if it is gone there is nothing left to react to.
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

fn drain(events: &mut Receiver<StoreEvent>) {
    loop {
        match events.try_recv() {
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(_) => return,
        }
    }
}

/// Read-modify-write of an object's main part with optimistic concurrency: the write carries
/// the resourceVersion it read, and a conflict (a client wrote in between) retries on the fresh
/// object, so a controller never reverts a client's concurrent change to the spec.
/// (`Store::modify` drops the resourceVersion, which is right only for controller-owned status.)
pub fn update_main(
    store: &Store,
    key: &ObjectKey,
    mut f: impl FnMut(&mut Value) -> bool,
) -> Result<Value, StoreError> {
    let mut last = StoreError::Conflict { current: 0 };
    for _ in 0..5 {
        let mut object = store.get(key).ok_or(StoreError::NotFound)?;
        if !f(&mut object) {
            return Ok(object);
        }
        match store.update(key, object, UpdatePart::Main) {
            Err(conflict @ StoreError::Conflict { .. }) => last = conflict,
            other => return other,
        }
    }
    Err(last)
}

pub fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

pub fn uid(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().unwrap_or_default()
}

pub fn generation(object: &Value) -> i64 {
    object["metadata"]["generation"].as_i64().unwrap_or(1)
}

pub fn is_terminating(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

/// The uid of the object's controlling owner (ownerReferences with `controller: true`).
pub fn controller_uid(object: &Value) -> Option<&str> {
    object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))?["uid"]
        .as_str()
}

/// The controlling owner's kind and name.
pub fn controller_ref(object: &Value) -> Option<(&str, &str)> {
    let owner = object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))?;
    Some((owner["kind"].as_str()?, owner["name"].as_str()?))
}

/// An ownerReference to `owner`, marked as its controller, as the built-in controllers write it.
pub fn owner_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"].as_str().unwrap_or("apps/v1"),
        "kind": owner["kind"],
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether `labels` satisfy a label selector (matchLabels and matchExpressions).
pub fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let match_labels = selector["matchLabels"].as_object();
    let labels_ok = match_labels.is_none_or(|m| m.iter().all(|(k, v)| label(k) == v.as_str()));
    let expressions_ok = selector["matchExpressions"].as_array().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => label(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => label(key).is_some(),
                "DoesNotExist" => label(key).is_none(),
                _ => false,
            }
        })
    });
    let empty = match_labels.is_none_or(|m| m.is_empty()) && selector["matchExpressions"].is_null();
    // An empty selector selects nothing for workloads (the API refuses it anyway).
    !empty && labels_ok && expressions_ok
}

/// Sets (or replaces) a condition of `type_` in `status.conditions`, keeping lastTransitionTime
/// when the status did not change, as the API conventions ask. Returns whether anything changed.
pub fn set_condition(
    status: &mut Value,
    type_: &str,
    cond_status: &str,
    reason: &str,
    message: &str,
) -> bool {
    let now = now_rfc3339();
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let conditions = status["conditions"].as_array_mut().expect("made an array above");
    match conditions.iter_mut().find(|c| c["type"] == type_) {
        Some(existing) => {
            let text = |field: &str| existing[field].as_str().unwrap_or_default().to_owned();
            if existing["status"] == cond_status && text("reason") == reason && text("message") == message {
                return false;
            }
            if existing["status"] != cond_status {
                existing["lastTransitionTime"] = json!(now);
            }
            existing["status"] = json!(cond_status);
            existing["reason"] = json!(reason);
            existing["message"] = json!(message);
            if existing.get("lastUpdateTime").is_some() {
                existing["lastUpdateTime"] = json!(now);
            }
            drop_empty_reason(existing);
            true
        }
        None => {
            let mut condition = json!({
                "type": type_, "status": cond_status, "reason": reason, "message": message,
                "lastTransitionTime": now,
            });
            drop_empty_reason(&mut condition);
            conditions.push(condition);
            true
        }
    }
}

/// The API omits an empty reason or message (e.g. on a pod's Ready=True condition).
fn drop_empty_reason(condition: &mut Value) {
    if let Some(map) = condition.as_object_mut() {
        map.retain(|k, v| !((k == "reason" || k == "message") && v == ""));
    }
}

/// Removes a condition; returns whether it was there.
pub fn remove_condition(status: &mut Value, type_: &str) -> bool {
    // `get_mut`, not indexing: indexing a missing key would insert a null `conditions`.
    let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) else {
        return false;
    };
    let before = conditions.len();
    conditions.retain(|c| c["type"] != type_);
    before != conditions.len()
}

pub fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Whether a pod is Ready (its Ready condition is True).
pub fn pod_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

pub fn key(resource: &str, object: &Value) -> ObjectKey {
    ObjectKey::new(resource, namespace(object), name(object))
}

/// The workload a pod belongs to: its Deployment (through its ReplicaSet, named
/// `<deployment>-<pod-template-hash>`) or its StatefulSet.
pub fn workload_of(pod: &Value) -> Option<&str> {
    let (kind, owner) = controller_ref(pod)?;
    match kind {
        "StatefulSet" => Some(owner),
        "ReplicaSet" => {
            let hash = pod["metadata"]["labels"]["pod-template-hash"].as_str()?;
            owner.strip_suffix(hash)?.strip_suffix('-')
        }
        _ => None,
    }
}

/// The characters Kubernetes uses for generated names and hashes (no vowels, no confusables).
pub const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `n` random characters of [`SAFE_ALPHABET`], as the apiserver's generateName appends.
pub fn random_suffix(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| SAFE_ALPHABET[rng.random_range(0..SAFE_ALPHABET.len())] as char)
        .collect()
}

/// FNV-1a (32 bit) of the canonical JSON of `value` (keys sorted), so that the hash does not
/// depend on key order.
pub fn fnv32_of_json(value: &Value) -> u32 {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    let mut hash: u32 = 0x811c_9dc5;
    for byte in canonical.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Renders a hash as Kubernetes does (`rand.SafeEncodeString(fmt.Sprint(hash))`): each decimal
/// digit mapped into [`SAFE_ALPHABET`].
pub fn safe_encode(hash: u32) -> String {
    hash.to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// The hash of a pod template, as the `pod-template-hash` / `controller-revision-hash` label.
pub fn template_hash(template: &Value) -> String {
    let mut template = template.clone();
    // The hash label itself must not feed the hash.
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        labels.remove("pod-template-hash");
        labels.remove("controller-revision-hash");
    }
    safe_encode(fnv32_of_json(&template))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (bounded) until `done` holds of what the passes saw.
    async fn until(seen: &std::sync::Mutex<Vec<Scope>>, done: impl Fn(&[Scope]) -> bool) {
        for _ in 0..500 {
            if done(&seen.lock().unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the passes did not get there: {:?}", seen.lock().unwrap());
    }

    #[tokio::test]
    async fn a_scoped_loop_passes_over_what_changed_and_what_was_left_timed() {
        let store = Arc::new(Store::new());
        let scenario = Arc::new(Scenario::new(
            Duration::from_millis(20),
            Duration::from_millis(100),
        ));
        let seen = Arc::new(std::sync::Mutex::new(Vec::<Scope>::new()));
        let log = Arc::clone(&seen);
        // "b" has a timed step until its third visit.
        let mut b_visits = 0;
        let events = store.subscribe();
        let task = tokio::spawn(run_scoped_loop(
            Arc::clone(&store),
            events,
            &["pods"],
            Duration::from_millis(10),
            Duration::from_secs(3600),
            scenario,
            move |_: &Store, scope: &Scope| {
                log.lock().unwrap().push(scope.clone());
                let mut timed = Scope::none();
                if scope.includes("b") {
                    b_visits += 1;
                    if b_visits < 3 {
                        timed.add("b");
                    }
                }
                timed
            },
        ));
        until(&seen, |s| s.iter().filter(|s| s.includes("b")).count() == 3).await;
        assert_eq!(
            seen.lock().unwrap()[0],
            Scope::All,
            "the first pass visits everything"
        );
        let pod = |ns: &str, name: &str| {
            store
                .create(&ObjectKey::new("pods", ns, name), json!({"spec": {}}))
                .unwrap();
        };
        // A resource the loop does not follow changes nothing; a pod in "a" is a pass over "a".
        store
            .create(&ObjectKey::new("configmaps", "c", "x"), json!({}))
            .unwrap();
        let before = seen.lock().unwrap().len();
        pod("a", "p");
        until(&seen, |s| s[before..].iter().any(|s| s.includes("a"))).await;
        pod("d", "q");
        until(&seen, |s| s[before..].iter().any(|s| s.includes("d"))).await;
        let later = seen.lock().unwrap()[3..].to_vec();
        assert!(
            later
                .iter()
                .all(|s| !s.is_all() && !s.includes("c") && !s.includes("b")),
            "{later:?}"
        );
        task.abort();
    }

    #[test]
    fn template_hash_is_stable_and_ignores_key_order_and_its_own_label() {
        let a = json!({"metadata": {"labels": {"app": "web", "tier": "x"}}, "spec": {"containers": []}});
        let b = json!({"spec": {"containers": []}, "metadata": {"labels": {"tier": "x", "app": "web", "pod-template-hash": "zz"}}});
        assert_eq!(template_hash(&a), template_hash(&b));
        let c = json!({"metadata": {"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}, "spec": {"containers": []}});
        assert_ne!(template_hash(&a), template_hash(&c));
        assert!(template_hash(&a).bytes().all(|b| SAFE_ALPHABET.contains(&b)));
    }

    #[test]
    fn safe_encode_maps_decimal_digits() {
        // '1' is byte 49, 49 % 27 = 22 -> '5'; '0' -> 48 % 27 = 21 -> '4'.
        assert_eq!(safe_encode(10), "54");
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels = json!({"app": "web", "tier": "front"});
        assert!(selector_matches(&json!({"matchLabels": {"app": "web"}}), &labels));
        assert!(!selector_matches(&json!({"matchLabels": {"app": "db"}}), &labels));
        let expr = json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]});
        assert!(selector_matches(&expr, &labels));
        assert!(!selector_matches(&json!({}), &labels));
    }

    #[test]
    fn set_condition_keeps_transition_time_when_status_is_unchanged() {
        let mut status = json!({});
        assert!(set_condition(&mut status, "Ready", "True", "R", "m"));
        assert!(!set_condition(&mut status, "Ready", "True", "R", "m"));
        assert!(set_condition(&mut status, "Ready", "False", "R2", "m2"));
        assert_eq!(status["conditions"][0]["status"], "False");
        assert!(remove_condition(&mut status, "Ready"));
        assert!(!remove_condition(&mut status, "Missing"));
        set_condition(&mut status, "Initialized", "True", "", "");
        assert!(status["conditions"][0].get("reason").is_none());
        assert!(
            !set_condition(&mut status, "Initialized", "True", "", ""),
            "an empty reason is still equal"
        );
        let mut empty = json!({});
        assert!(!remove_condition(&mut empty, "Ready"));
        assert_eq!(empty, json!({}), "no null conditions appear");
    }
}
