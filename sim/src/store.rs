//! The object store of the simulated cluster: every object as JSON, one global
//! resourceVersion counter, and an event history that watches replay from.
//!
//! Objects are kept as `serde_json::Value` so that every patch type and every
//! field a client sends survives a round trip, as it does in etcd. Each stored version is
//! immutable and shared ([`Stored`]) by the object map, the event history and the watches, and
//! carries its JSON encoding, made once on first read.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// How many events the history keeps; a watch from an older resourceVersion gets 410 Gone.
const HISTORY_LEN: usize = 20_000;

/// Identifies one stored object. `resource` is the plural resource name
/// (`deployments`, `pods`, …); plurals are unique across the groups the sim serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub resource: String,
    /// Empty for cluster-scoped objects (nodes, namespaces).
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(resource: &str, namespace: &str, name: &str) -> Self {
        Self {
            resource: resource.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// The type of a watch event, as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One version of a stored object, never changed once stored (a write stores a new one), and
/// its JSON encoding, made on first read and kept: a list or a watch event sends those bytes
/// instead of serializing the object again for every reader. Since the value never changes
/// under it, the encoding cannot be stale. The apiserver's watch cache does the same for the
/// objects it sends: k8s.io/apiserver/pkg/storage/cacher/caching_object.go, `cachingObject`
/// (`CacheEncode` encodes once per serializer, whatever the number of readers; wrapped per
/// event in cacher.go, `setCachingObjects`).
#[derive(Debug)]
pub struct Stored {
    value: Value,
    json: OnceLock<Box<[u8]>>,
}

impl Stored {
    fn new(value: Value) -> Arc<Self> {
        Arc::new(Self {
            value,
            json: OnceLock::new(),
        })
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The object as `serde_json::to_vec` writes it, encoded on the first call.
    pub fn json(&self) -> &[u8] {
        self.json.get_or_init(|| {
            // Serializing a `Value` cannot fail (its map keys are strings).
            serde_json::to_vec(&self.value)
                .unwrap_or_default()
                .into_boxed_slice()
        })
    }
}

impl Deref for Stored {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.value
    }
}

/// One change to the store, as replayed to watches.
#[derive(Debug, Clone)]
pub struct StoreEvent {
    pub resource_version: u64,
    pub key: ObjectKey,
    pub event_type: EventType,
    /// The object after the change (for DELETED: the last state, with the new resourceVersion),
    /// shared with the store's map (so the history holds no copy) and encoded once for all
    /// watches.
    pub object: Arc<Stored>,
    /// For MODIFIED: the labels and [`SELECTABLE_FIELDS`] of the object before the change, so a
    /// filtered watch can tell that the object entered or left its selection (the apiserver then
    /// sends ADDED or DELETED instead of MODIFIED). Only those parts are kept, to keep the
    /// history small.
    pub previous: Option<Value>,
}

/// The fields a field selector may name and where they sit in an object: `metadata.name` and
/// `metadata.namespace` for every kind, plus the per-kind ones clients use.
pub const SELECTABLE_FIELDS: &[(&str, &str)] = &[
    ("metadata.name", "/metadata/name"),
    ("metadata.namespace", "/metadata/namespace"),
    ("spec.nodeName", "/spec/nodeName"),
    ("status.phase", "/status/phase"),
    ("involvedObject.name", "/involvedObject/name"),
    ("involvedObject.kind", "/involvedObject/kind"),
    ("involvedObject.namespace", "/involvedObject/namespace"),
    ("involvedObject.uid", "/involvedObject/uid"),
    ("reason", "/reason"),
    ("type", "/type"),
    // Events' `source` is `source.component` (upstream pkg/apis/core/v1 conversion,
    // AddFieldLabelConversionsForEvent).
    ("source", "/source/component"),
];

/// The parts of `object` that label and field selectors read.
fn filter_view(object: &Value) -> Value {
    let mut view = json!({"metadata": {"labels": object["metadata"]["labels"]}});
    for (_, pointer) in SELECTABLE_FIELDS {
        let Some(value) = object.pointer(pointer) else {
            continue;
        };
        let mut at = &mut view;
        for segment in pointer.split('/').skip(1) {
            if !at.is_object() {
                *at = json!({});
            }
            at = &mut at[segment];
        }
        *at = value.clone();
    }
    view
}

/// One page of a list (see [`Store::page`]).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `(namespace, name)` of the last item, where the next page starts.
    pub last: Option<(String, String)>,
    /// More objects match after the last one.
    pub more: bool,
    /// How many objects follow (counted only when asked: upstream omits it for selected lists).
    pub remaining: Option<usize>,
    /// The store's version the page was read at.
    pub resource_version: u64,
}

/// Why a store operation was refused; the server maps these to `metav1.Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    NotFound,
    AlreadyExists,
    /// The write carried a resourceVersion that is no longer current.
    Conflict {
        current: u64,
    },
    /// A watch asked for a resourceVersion older than the history keeps.
    Gone {
        oldest: u64,
    },
}

/// Which part of an object an update replaces, as the main resource and the
/// `status` subresource do on a real API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdatePart {
    /// Everything but `status` (kept as stored); bumps `metadata.generation` when `spec` changes.
    Main,
    /// Only `status`; everything else is kept as stored.
    Status,
}

struct Inner {
    resource_version: u64,
    objects: BTreeMap<ObjectKey, Arc<Stored>>,
    /// The pods bound to each node (`spec.nodeName`), as the apiserver's watch cache indexes
    /// them for `fieldSelector=spec.nodeName=…` (see [`Store::page`]).
    pods_by_node: BTreeMap<String, BTreeSet<ObjectKey>>,
    history: VecDeque<StoreEvent>,
    uid_counter: u64,
}

/// Admission of an object about to be created (see [`Store::set_create_hook`]).
pub type CreateHook = Box<dyn Fn(&ObjectKey, &mut Value) + Send + Sync>;

/// Thread-safe store shared by the HTTP handlers and the controllers.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<StoreEvent>,
    /// Resources whose objects carry no `metadata.generation` (their registry strategy sets none).
    untracked_generation: Vec<String>,
    create_hook: std::sync::OnceLock<CreateHook>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(65_536);
        Self {
            inner: Mutex::new(Inner {
                resource_version: 1000,
                objects: BTreeMap::new(),
                pods_by_node: BTreeMap::new(),
                history: VecDeque::new(),
                uid_counter: 0,
            }),
            events,
            untracked_generation: Vec::new(),
            create_hook: std::sync::OnceLock::new(),
        }
    }

    /// Objects of `resource` created from now on get no `metadata.generation`, as on an API
    /// server whose strategy for them sets none (HPAs before 1.36). Updates keep it absent.
    pub fn untrack_generation(&mut self, resource: &str) {
        self.untracked_generation.push(resource.to_owned());
    }

    /// Whether objects of `resource` carry `metadata.generation`.
    pub fn tracks_generation(&self, resource: &str) -> bool {
        !self.untracked_generation.iter().any(|r| r == resource)
    }

    /// Sets (once) what every [`Store::create`] runs on the new object first, outside the store
    /// lock: the apiserver's mutating admission of the Pods the controllers create. It must be
    /// idempotent, since objects created over HTTP were admitted by the handler already.
    pub fn set_create_hook(&self, hook: CreateHook) {
        // A second hook is ignored: the Sim sets one at start.
        let _ = self.create_hook.set(hook);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the data consistent (every write is
        // a single insert), so a poisoned lock is recovered rather than propagated.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The store's current resourceVersion (the version a list is consistent at).
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    /// Whether an object exists, without cloning it.
    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.lock().objects.contains_key(key)
    }

    pub fn get(&self, key: &ObjectKey) -> Option<Value> {
        self.lock().objects.get(key).map(|s| s.value.clone())
    }

    /// The stored version of an object, shared, with its encoding (see [`Stored`]): what a
    /// response sends without cloning or serializing the object again.
    pub fn get_stored(&self, key: &ObjectKey) -> Option<Arc<Stored>> {
        self.lock().objects.get(key).cloned()
    }

    /// Objects of `resource`, in one namespace (`Some`) or all (`None`), sorted by
    /// namespace then name, with the resourceVersion the list is consistent at.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|(k, _)| k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| v.value.clone())
            .collect();
        (items, inner.resource_version)
    }

    /// One page of a list: the objects of `resource` (in one namespace, or all) that `keep`
    /// selects, in key order (namespace, then name), starting after `after` (the position of
    /// the last object of the previous page), at most `limit` of them, each as `map` makes it
    /// (`Arc::clone`: the stored version itself, read and encoded after the lock is released).
    /// Only the returned objects are visited by `map`, so a page costs its size, not the
    /// collection's. Both closures run under the store lock. `count_remaining` counts every object after the
    /// page, unfiltered: for an unselected list, where every object matches. `on_node`: only
    /// pods bound to that node are visited, from the node index, so that a node's pods cost
    /// their number, not the cluster's (`keep` still runs on them). See [`Page`].
    #[allow(clippy::too_many_arguments)]
    pub fn page<T>(
        &self,
        resource: &str,
        namespace: Option<&str>,
        on_node: Option<&str>,
        after: Option<(&str, &str)>,
        limit: Option<usize>,
        count_remaining: bool,
        mut keep: impl FnMut(&Value) -> bool,
        mut map: impl FnMut(&Arc<Stored>) -> T,
    ) -> Page<T> {
        use std::ops::Bound;
        let inner = self.lock();
        let start = match after {
            Some((ns, name)) => Bound::Excluded(ObjectKey::new(resource, ns, name)),
            None => Bound::Included(ObjectKey::new(resource, namespace.unwrap_or(""), "")),
        };
        let in_scope = |k: &ObjectKey| k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns);
        let mut range: Box<dyn Iterator<Item = (&ObjectKey, &Arc<Stored>)>> = match on_node {
            Some(node) if resource == "pods" => Box::new(
                inner
                    .pods_by_node
                    .get(node)
                    .map(|keys| keys.range((start, Bound::Unbounded)))
                    .into_iter()
                    .flatten()
                    .take_while(move |k| in_scope(k))
                    .filter_map(|k| inner.objects.get_key_value(k)),
            ),
            _ => Box::new(
                inner
                    .objects
                    .range((start, Bound::Unbounded))
                    .take_while(move |(k, _)| in_scope(k)),
            ),
        };
        let mut matching = range.by_ref().filter(|(_, v)| keep(&v.value));
        let mut items = Vec::new();
        let mut last = None;
        let mut more = false;
        for (_, object) in matching.by_ref() {
            if limit.is_some_and(|l| items.len() >= l) {
                // One object past a full page: there is more.
                more = true;
                break;
            }
            last = Some(object);
            items.push(map(object));
        }
        let last = last.map(|o| {
            let meta = &o["metadata"];
            let s = |f: &str| meta[f].as_str().unwrap_or("").to_owned();
            (s("namespace"), s("name"))
        });
        // Counted without the filter: asked only for unselected lists, where all match.
        let remaining = (more && count_remaining).then(|| 1 + range.count());
        Page {
            items,
            last,
            more,
            remaining,
            resource_version: inner.resource_version,
        }
    }

    /// The oldest resourceVersion a watch or a list continuation may still start from: older
    /// ones are compacted (410 Expired).
    pub fn oldest_version(&self) -> u64 {
        let inner = self.lock();
        inner
            .history
            .front()
            .map_or(inner.resource_version + 1, |e| e.resource_version)
    }

    /// Visits the objects of `resource` (in one namespace, or all) under the store lock without
    /// cloning them, keeping what `f` returns: the controllers' cheap pass over thousands of pods.
    /// `f` runs under the store lock, so it must not call back into the store.
    pub fn scan<T>(
        &self,
        resource: &str,
        namespace: Option<&str>,
        mut f: impl FnMut(&Value) -> Option<T>,
    ) -> Vec<T> {
        let inner = self.lock();
        let start = ObjectKey::new(resource, namespace.unwrap_or(""), "");
        inner
            .objects
            .range(start..)
            .take_while(|(k, _)| k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns))
            .filter_map(|(_, v)| f(&v.value))
            .collect()
    }

    /// [`Store::scan`] of the pods bound to `node` (`""`: the pods not scheduled yet), from the
    /// node index: costs those pods, not the cluster's.
    pub fn scan_on_node<T>(&self, node: &str, mut f: impl FnMut(&Value) -> Option<T>) -> Vec<T> {
        let inner = self.lock();
        inner
            .pods_by_node
            .get(node)
            .into_iter()
            .flatten()
            .filter_map(|k| inner.objects.get(k))
            .filter_map(|s| f(&s.value))
            .collect()
    }

    /// Creates an object; fills in uid, resourceVersion, creationTimestamp and generation.
    pub fn create(&self, key: &ObjectKey, mut object: Value) -> Result<Value, StoreError> {
        if let Some(hook) = self.create_hook.get() {
            hook(key, &mut object);
        }
        let mut inner = self.lock();
        if inner.objects.contains_key(key) {
            return Err(StoreError::AlreadyExists);
        }
        inner.uid_counter += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", inner.uid_counter);
        let meta = metadata_mut(&mut object);
        meta.insert("name".into(), json!(key.name));
        if key.namespace.is_empty() {
            meta.remove("namespace");
        } else {
            meta.insert("namespace".into(), json!(key.namespace));
        }
        meta.insert("uid".into(), json!(uid));
        meta.entry("creationTimestamp")
            .or_insert_with(|| json!(now_rfc3339()));
        if self.tracks_generation(&key.resource) {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        self.commit(&mut inner, key, object, EventType::Added, None)
    }

    /// Replaces an object. When `object` carries `metadata.resourceVersion`, it must
    /// be the current one (optimistic concurrency), otherwise `Conflict`.
    pub fn update(&self, key: &ObjectKey, object: Value, part: UpdatePart) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let current = inner.objects.get(key).ok_or(StoreError::NotFound)?.value.clone();
        self.replace(&mut inner, key, &current, object, part)
    }

    /// Read-modify-write under the store lock: the controllers' way to write without conflicts
    /// and without losing a concurrent write. `f` returns false to leave the object unchanged;
    /// it runs under the store lock, so it must not call back into the store. Returns the
    /// stored object.
    pub fn modify(
        &self,
        key: &ObjectKey,
        part: UpdatePart,
        f: impl FnOnce(&mut Value) -> bool,
    ) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let current = inner.objects.get(key).ok_or(StoreError::NotFound)?.value.clone();
        let mut object = current.clone();
        if !f(&mut object) {
            return Ok(current);
        }
        // `object` still carries the current resourceVersion, so the precondition holds.
        self.replace(&mut inner, key, &current, object, part)
    }

    fn replace(
        &self,
        inner: &mut Inner,
        key: &ObjectKey,
        current: &Value,
        object: Value,
        part: UpdatePart,
    ) -> Result<Value, StoreError> {
        let merged = merge_update(current, object, part)?;
        if strip_rv(&merged) == strip_rv(current) {
            // A no-op write does not bump the resourceVersion or wake watches, as on a real server.
            return Ok(current.clone());
        }
        self.commit(
            inner,
            key,
            merged,
            EventType::Modified,
            Some(filter_view(current)),
        )
    }

    /// Deletes an object; `resource_version`, when given, must be current.
    pub fn delete(&self, key: &ObjectKey, resource_version: Option<u64>) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let current = inner.objects.get(key).ok_or(StoreError::NotFound)?.value.clone();
        if let Some(rv) = resource_version {
            let stored = rv_of(&current);
            if rv != stored {
                return Err(StoreError::Conflict { current: stored });
            }
        }
        inner.objects.remove(key);
        unindex(&mut inner, key, &current);
        inner.resource_version += 1;
        let rv = inner.resource_version;
        let mut object = current;
        metadata_mut(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        let event = StoreEvent {
            resource_version: rv,
            key: key.clone(),
            event_type: EventType::Deleted,
            object: Stored::new(object.clone()),
            previous: None,
        };
        push_history(&mut inner, event.clone());
        let _ = self.events.send(event);
        Ok(object)
    }

    /// Starts a watch: the events after `since` (for the given resource) that the
    /// history still holds, and a receiver for every later event. Both are taken
    /// under the store lock, so nothing falls between them.
    pub fn watch_from(
        &self,
        resource: &str,
        since: u64,
    ) -> Result<(Vec<StoreEvent>, broadcast::Receiver<StoreEvent>), StoreError> {
        let inner = self.lock();
        let receiver = self.events.subscribe();
        // The oldest version still replayable; with an empty history (just compacted) even the
        // current version's event is gone, so only a watch from the current version may start.
        let oldest = inner
            .history
            .front()
            .map_or(inner.resource_version + 1, |e| e.resource_version);
        // `since` is the last version the client saw; everything after it must still be in the history.
        if since + 1 < oldest && since < inner.resource_version {
            return Err(StoreError::Gone { oldest });
        }
        let past = inner
            .history
            .iter()
            .filter(|e| e.resource_version > since && e.key.resource == resource)
            .cloned()
            .collect();
        Ok((past, receiver))
    }

    /// Every later event, for controllers.
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    /// How many receivers (controllers and open watches) follow the store's events: lets tests
    /// check that a watch stops once its client has gone.
    pub fn receiver_count(&self) -> usize {
        self.events.receiver_count()
    }

    /// Drops the whole event history, so the next watch from any older version gets 410 Gone.
    pub fn compact(&self) {
        self.lock().history.clear();
    }

    fn commit(
        &self,
        inner: &mut Inner,
        key: &ObjectKey,
        mut object: Value,
        event_type: EventType,
        previous: Option<Value>,
    ) -> Result<Value, StoreError> {
        inner.resource_version += 1;
        let rv = inner.resource_version;
        metadata_mut(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        // A new version replaces the old one whole, with no encoding yet: the only way an
        // object changes, so no stale encoding can be served.
        let stored = Stored::new(object.clone());
        if let Some(before) = inner.objects.insert(key.clone(), stored.clone()) {
            unindex(inner, key, &before);
        }
        index(inner, key, &object);
        let event = StoreEvent {
            resource_version: rv,
            key: key.clone(),
            event_type,
            object: stored,
            previous,
        };
        push_history(inner, event.clone());
        // No receiver is fine: nobody is watching.
        let _ = self.events.send(event);
        Ok(object)
    }
}

/// The node a pod is bound to, the key of the node index (empty for pods not scheduled yet;
/// none for other kinds).
fn node_of<'a>(key: &ObjectKey, object: &'a Value) -> Option<&'a str> {
    (key.resource == "pods").then(|| {
        object
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("")
    })
}

fn index(inner: &mut Inner, key: &ObjectKey, object: &Value) {
    if let Some(node) = node_of(key, object) {
        inner
            .pods_by_node
            .entry(node.to_owned())
            .or_default()
            .insert(key.clone());
    }
}

fn unindex(inner: &mut Inner, key: &ObjectKey, object: &Value) {
    if let Some(node) = node_of(key, object)
        && let Some(keys) = inner.pods_by_node.get_mut(node)
    {
        keys.remove(key);
        if keys.is_empty() {
            inner.pods_by_node.remove(node);
        }
    }
}

fn push_history(inner: &mut Inner, event: StoreEvent) {
    if inner.history.len() == HISTORY_LEN {
        inner.history.pop_front();
    }
    inner.history.push_back(event);
}

fn check_precondition(object: &Value, current: &Value) -> Result<(), StoreError> {
    let stored = rv_of(current);
    match object["metadata"]["resourceVersion"].as_str() {
        Some(rv) if !rv.is_empty() => {
            if rv.parse::<u64>().ok() != Some(stored) {
                return Err(StoreError::Conflict { current: stored });
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// What an update of `current` with `object` stores (before its new resourceVersion), as the
/// API server computes it: the precondition is checked; a main update keeps server-owned
/// metadata and the status and bumps `generation` when `spec` changes; a status update
/// replaces only `status`. Pure, so dry runs preview exactly what a write would store.
pub fn merge_update(current: &Value, mut object: Value, part: UpdatePart) -> Result<Value, StoreError> {
    check_precondition(&object, current)?;
    let mut merged = match part {
        UpdatePart::Main => {
            // Immutable and server-owned metadata stay as stored.
            let meta = metadata_mut(&mut object);
            for field in ["uid", "creationTimestamp", "name", "namespace"] {
                match current["metadata"].get(field) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
            // An object stored without a generation (its resource tracks none) keeps none.
            match current["metadata"]["generation"].as_i64() {
                Some(generation) => {
                    let spec_changed = object.get("spec") != current.get("spec");
                    let generation = if spec_changed { generation + 1 } else { generation };
                    metadata_mut(&mut object).insert("generation".into(), json!(generation));
                }
                None => {
                    metadata_mut(&mut object).remove("generation");
                }
            }
            match current.get("status") {
                Some(status) => object["status"] = status.clone(),
                None => {
                    if let Some(map) = object.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            object
        }
        UpdatePart::Status => {
            let mut merged = current.clone();
            merged["status"] = object.get("status").cloned().unwrap_or(Value::Null);
            merged
        }
    };
    metadata_mut(&mut merged).insert("resourceVersion".into(), json!(rv_of(current).to_string()));
    Ok(merged)
}

/// The resourceVersion stored in an object's metadata (0 when absent).
pub fn rv_of(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn strip_rv(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    copy
}

/// `metadata` as a mutable map, created when missing.
pub fn metadata_mut(object: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !object.is_object() {
        *object = json!({});
    }
    let map = object.as_object_mut().expect("object checked above");
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("metadata checked above")
}

/// The current time as RFC 3339 with second precision, as Kubernetes writes timestamps.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}})
    }

    #[test]
    fn create_sets_server_fields_and_rejects_duplicates() {
        let store = Store::new();
        let key = ObjectKey::new("deployments", "ns", "web");
        let created = store.create(&key, deploy()).expect("create");
        assert_eq!(created["metadata"]["namespace"], "ns");
        assert_eq!(created["metadata"]["generation"], 1);
        assert!(rv_of(&created) > 0);
        assert_eq!(store.create(&key, deploy()), Err(StoreError::AlreadyExists));
    }

    #[test]
    fn stale_resource_version_conflicts_and_spec_change_bumps_generation() {
        let store = Store::new();
        let key = ObjectKey::new("deployments", "ns", "web");
        let created = store.create(&key, deploy()).expect("create");
        let mut changed = created.clone();
        changed["spec"]["replicas"] = json!(3);
        let updated = store
            .update(&key, changed.clone(), UpdatePart::Main)
            .expect("update");
        assert_eq!(updated["metadata"]["generation"], 2);
        // `changed` still carries the first resourceVersion.
        assert!(matches!(
            store.update(&key, changed, UpdatePart::Main),
            Err(StoreError::Conflict { .. })
        ));
    }

    #[test]
    fn merge_update_previews_a_write_without_storing_it() {
        let current = json!({"metadata": {"name": "web", "uid": "u", "generation": 1, "resourceVersion": "5"},
            "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let new = json!({"metadata": {"name": "web", "resourceVersion": "5"}, "spec": {"replicas": 2}});
        let result = merge_update(&current, new, UpdatePart::Main).expect("preview");
        assert_eq!(result["metadata"]["generation"], 2);
        assert_eq!(result["metadata"]["uid"], "u");
        assert_eq!(result["status"]["replicas"], 1, "a main update keeps the status");
        let stale = json!({"metadata": {"resourceVersion": "4"}, "spec": {}});
        assert!(matches!(
            merge_update(&current, stale, UpdatePart::Main),
            Err(StoreError::Conflict { .. })
        ));
    }

    #[test]
    fn status_update_keeps_spec_and_generation() {
        let store = Store::new();
        let key = ObjectKey::new("deployments", "ns", "web");
        store.create(&key, deploy()).expect("create");
        let updated = store
            .modify(&key, UpdatePart::Status, |o| {
                o["status"] = json!({"replicas": 1});
                o["spec"]["replicas"] = json!(9);
                true
            })
            .expect("status");
        assert_eq!(updated["status"]["replicas"], 1);
        assert_eq!(updated["spec"]["replicas"], 1);
        assert_eq!(updated["metadata"]["generation"], 1);
    }

    #[test]
    fn a_nodes_pods_are_visited_from_the_node_index_not_by_a_scan() {
        let store = Store::new();
        for i in 0..1_000 {
            let pod = json!({"spec": {"nodeName": format!("n-{}", i % 10)}, "status": {"phase": "Running"}});
            store
                .create(
                    &ObjectKey::new("pods", &format!("ns-{}", i % 3), &format!("p-{i:04}")),
                    pod,
                )
                .unwrap();
        }
        let mut visited = 0;
        let page = store.page(
            "pods",
            None,
            Some("n-3"),
            None,
            Some(60),
            false,
            |_| {
                visited += 1;
                true
            },
            |p| p["spec"]["nodeName"].clone(),
        );
        assert_eq!(page.items.len(), 60);
        assert!(page.items.iter().all(|n| n == "n-3"));
        assert_eq!(visited, 61, "the page and one past it, of n-3's 100 pods only");
        // The next page starts after the last one, in key order; a move leaves the old node.
        let (ns, name) = page.last.clone().unwrap();
        let rest = store.page(
            "pods",
            None,
            Some("n-3"),
            Some((&ns, &name)),
            None,
            false,
            |_| true,
            |_| (),
        );
        assert_eq!(rest.items.len(), 40);
        store
            .modify(&ObjectKey::new("pods", "ns-0", "p-0003"), UpdatePart::Main, |p| {
                p["spec"]["nodeName"] = json!("n-4");
                true
            })
            .unwrap();
        store
            .delete(&ObjectKey::new("pods", "ns-1", "p-0013"), None)
            .unwrap();
        let count = |node: &str| {
            store
                .page("pods", None, Some(node), None, None, false, |_| true, |_| ())
                .items
                .len()
        };
        assert_eq!((count("n-3"), count("n-4")), (98, 101));
    }

    #[test]
    fn watch_replays_history_and_compaction_gives_gone() {
        let store = Store::new();
        let start = store.resource_version();
        let key = ObjectKey::new("deployments", "ns", "web");
        store.create(&key, deploy()).expect("create");
        let (past, _rx) = store.watch_from("deployments", start).expect("watch");
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].event_type, EventType::Added);
        store.compact();
        store.delete(&key, None).expect("delete");
        assert!(matches!(
            store.watch_from("deployments", start),
            Err(StoreError::Gone { .. })
        ));
    }

    #[test]
    fn after_compaction_the_last_event_is_gone_too() {
        let store = Store::new();
        let key = ObjectKey::new("deployments", "ns", "web");
        let created = store.create(&key, deploy()).expect("create");
        store.compact();
        // The client saw the version before the create; the create's event is no longer held.
        assert!(matches!(
            store.watch_from("deployments", rv_of(&created) - 1),
            Err(StoreError::Gone { .. })
        ));
        let (past, _rx) = store
            .watch_from("deployments", rv_of(&created))
            .expect("a watch from the current version");
        assert!(past.is_empty());
    }

    #[test]
    fn modified_events_keep_what_selectors_read_of_the_object_before() {
        let store = Store::new();
        let key = ObjectKey::new("pods", "ns", "p");
        let pod = json!({"metadata": {"name": "p", "labels": {"app": "a"}}, "spec": {"nodeName": "n1",
            "containers": [{"name": "c"}]}, "status": {"phase": "Pending"}});
        store.create(&key, pod).expect("create");
        let mut events = store.subscribe();
        store
            .modify(&key, UpdatePart::Main, |p| {
                p["metadata"]["labels"]["app"] = json!("b");
                true
            })
            .expect("relabel");
        let event = events.try_recv().expect("event");
        assert_eq!(
            event.previous,
            Some(
                json!({"metadata": {"labels": {"app": "a"}, "name": "p", "namespace": "ns"},
                "spec": {"nodeName": "n1"}, "status": {"phase": "Pending"}})
            )
        );
    }

    #[test]
    fn concurrent_modifies_lose_no_write() {
        let store = std::sync::Arc::new(Store::new());
        let key = ObjectKey::new("deployments", "ns", "web");
        store.create(&key, deploy()).expect("create");
        let writers: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|field| {
                let (store, key) = (store.clone(), key.clone());
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        store
                            .modify(&key, UpdatePart::Status, |d| {
                                let n = d["status"][field].as_i64().unwrap_or(0);
                                d["status"][field] = json!(n + 1);
                                true
                            })
                            .expect("modify");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("writer");
        }
        let stored = store.get(&key).expect("stored");
        assert_eq!(stored["status"], json!({"a": 500, "b": 500}));
    }

    #[test]
    fn the_stored_encoding_is_the_objects_serialization() {
        let store = Store::new();
        let key = ObjectKey::new("deployments", "ns", "web");
        let mut object = deploy();
        object["metadata"]["labels"] = json!({"z": "1", "a": "\"quoted\" ü"});
        store.create(&key, object).expect("create");
        let stored = store.get_stored(&key).expect("stored");
        let value = store.get(&key).expect("value");
        assert_eq!(stored.json(), serde_json::to_vec(&value).unwrap().as_slice());
        assert_eq!(stored.json(), value.to_string().as_bytes());
        // Made once: a second read gets the same bytes, not a new encoding.
        assert!(std::ptr::eq(stored.json(), stored.json()));
    }

    #[test]
    fn a_change_serves_the_new_objects_encoding_and_a_no_op_keeps_the_old() {
        let store = Store::new();
        let key = ObjectKey::new("deployments", "ns", "web");
        let encoding = |store: &Store| store.get_stored(&key).expect("stored").json().to_vec();
        let current = |store: &Store| serde_json::to_vec(&store.get(&key).expect("stored")).unwrap();
        let created = store.create(&key, deploy()).expect("create");
        let first = encoding(&store);
        // update
        let mut changed = created.clone();
        changed["spec"]["replicas"] = json!(3);
        store.update(&key, changed, UpdatePart::Main).expect("update");
        let after_update = encoding(&store);
        assert_ne!(after_update, first);
        assert_eq!(after_update, current(&store));
        assert!(
            String::from_utf8(after_update.clone())
                .unwrap()
                .contains("\"replicas\":3")
        );
        // modify (status)
        store
            .modify(&key, UpdatePart::Status, |d| {
                d["status"] = json!({"readyReplicas": 3});
                true
            })
            .expect("modify");
        let after_modify = encoding(&store);
        assert_ne!(after_modify, after_update);
        assert_eq!(after_modify, current(&store));
        // A no-op update or modify stores nothing new: same version, same encoding.
        let before = store.get_stored(&key).expect("stored");
        store
            .update(&key, store.get(&key).expect("stored"), UpdatePart::Main)
            .expect("no-op update");
        store
            .modify(&key, UpdatePart::Main, |_| true)
            .expect("no-op modify");
        store
            .modify(&key, UpdatePart::Main, |_| false)
            .expect("untouched");
        let after_no_op = store.get_stored(&key).expect("stored");
        assert!(Arc::ptr_eq(&before, &after_no_op));
        assert!(std::ptr::eq(before.json(), after_no_op.json()));
        // delete and recreate under the same key: the new object's encoding (new uid, spec).
        store.delete(&key, None).expect("delete");
        assert!(store.get_stored(&key).is_none());
        let mut again = deploy();
        again["spec"]["replicas"] = json!(7);
        store.create(&key, again).expect("recreate");
        let recreated = encoding(&store);
        assert_eq!(recreated, current(&store));
        assert!(String::from_utf8(recreated).unwrap().contains("\"replicas\":7"));
    }

    #[test]
    fn lists_events_and_gets_share_one_stored_version() {
        let store = Store::new();
        let key = ObjectKey::new("deployments", "ns", "web");
        let mut events = store.subscribe();
        store.create(&key, deploy()).expect("create");
        let event = events.try_recv().expect("added");
        let listed = store.page("deployments", None, None, None, None, false, |_| true, Arc::clone);
        let stored = store.get_stored(&key).expect("stored");
        assert!(Arc::ptr_eq(&event.object, &stored));
        assert!(Arc::ptr_eq(&listed.items[0], &stored));
        // The DELETED event carries its own version (the new resourceVersion), encoded as such.
        store.delete(&key, None).expect("delete");
        let deleted = events.try_recv().expect("deleted");
        assert_eq!(deleted.event_type, EventType::Deleted);
        assert_eq!(
            deleted.object.json(),
            serde_json::to_vec(deleted.object.value()).unwrap().as_slice()
        );
        assert_eq!(rv_of(&deleted.object), deleted.resource_version);
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
