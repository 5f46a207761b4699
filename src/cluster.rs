//! The cluster-backed template cache: kube-runtime watches of AnalysisTemplates,
//! ClusterAnalysisTemplates and Rollouts fill a [`SharedStore`], keeping only the partial
//! views the rules read (no pod templates, no status), and a metadata-only watch of
//! Namespaces keeps their `rollout-guard.io/` annotations (mode and guards).
//!
//! Behaviour the server relies on:
//! - the request path only reads the store; it never waits for the API server;
//! - readiness (`synced`) turns true once every kind (and the namespaces) has been listed once, and stays true
//!   across disconnects: the last complete view keeps answering while the watcher re-lists
//!   with backoff;
//! - a relist (`Init` .. `InitDone`) replaces a kind's objects at once, so objects deleted
//!   while disconnected disappear and nothing is half-replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ObjectMeta, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tracing::{debug, info, warn};

use crate::catalog::{NamespaceAnnotations, SharedStore, own_annotations};
use crate::model::{AnalysisTemplate, Kind, Rollout};
use crate::templates::WatchedObject;

const KINDS: [(Kind, &str); 3] = [
    (Kind::AnalysisTemplate, "analysistemplates"),
    (Kind::ClusterAnalysisTemplate, "clusteranalysistemplates"),
    (Kind::Rollout, "rollouts"),
];

/// Tracks which kinds (and the namespaces, last) have completed their first list.
#[derive(Default)]
pub struct SyncState {
    listed: [AtomicBool; KINDS.len() + 1],
}

impl SyncState {
    fn mark(&self, kind: Kind) -> bool {
        self.mark_listed(KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(0))
    }

    fn mark_namespaces(&self) -> bool {
        self.mark_listed(KINDS.len())
    }

    fn mark_listed(&self, i: usize) -> bool {
        self.listed[i].store(true, Ordering::Release);
        self.listed.iter().all(|l| l.load(Ordering::Acquire))
    }
}

/// A namespace's name and its `rollout-guard.io/` annotations.
fn namespace_settings(meta: &ObjectMeta) -> (String, NamespaceAnnotations) {
    let all = meta.annotations.iter().flatten();
    let own = own_annotations(all.map(|(key, value)| (key.as_str(), value.as_str())));
    (meta.name.clone().unwrap_or_default(), own)
}

fn metadata_of(event: Event<PartialObjectMeta<Namespace>>) -> Event<ObjectMeta> {
    match event {
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(o.metadata),
        Event::InitDone => Event::InitDone,
        Event::Apply(o) => Event::Apply(o.metadata),
        Event::Delete(o) => Event::Delete(o.metadata),
    }
}

/// Applies one namespace watch event. `buffer` collects a relist until `InitDone`.
pub fn apply_namespace_event(
    store: &SharedStore,
    sync: &SyncState,
    buffer: &mut Option<Vec<(String, NamespaceAnnotations)>>,
    event: Event<ObjectMeta>,
) {
    match event {
        Event::Init => *buffer = Some(Vec::new()),
        Event::InitApply(meta) => buffer
            .get_or_insert_with(Vec::new)
            .push(namespace_settings(&meta)),
        Event::InitDone => {
            let namespaces = buffer.take().unwrap_or_default();
            let count = namespaces.iter().filter(|(_, a)| !a.is_empty()).count();
            store.replace_namespaces(namespaces);
            info!(with_settings = count, "namespaces listed");
            if sync.mark_namespaces() {
                store.mark_synced(true);
            }
        }
        Event::Apply(meta) => {
            let (name, annotations) = namespace_settings(&meta);
            store.set_namespace(&name, annotations);
        }
        Event::Delete(meta) => store.remove_namespace(meta.name.as_deref().unwrap_or_default()),
    }
}

/// Reduces a watched object to the partial view the rules need.
pub fn reduce(kind: Kind, object: &DynamicObject) -> Result<WatchedObject, String> {
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    let name = object.metadata.name.clone().unwrap_or_default();
    let parsed =
        match kind {
            Kind::Rollout => serde_json::from_value::<Rollout>(value)
                .map(|r| WatchedObject::Rollout(Box::new(r))),
            Kind::AnalysisTemplate => {
                serde_json::from_value::<AnalysisTemplate>(value).map(WatchedObject::Template)
            }
            Kind::ClusterAnalysisTemplate => serde_json::from_value::<AnalysisTemplate>(value)
                .map(WatchedObject::ClusterTemplate),
        };
    parsed.map_err(|e| format!("{kind} {name}: {e}"))
}

/// Applies one watch event to the store. `buffer` collects a relist until `InitDone`.
pub fn apply_event(
    store: &SharedStore,
    sync: &SyncState,
    kind: Kind,
    buffer: &mut Option<Vec<WatchedObject>>,
    event: Event<DynamicObject>,
) {
    match event {
        Event::Init => *buffer = Some(Vec::new()),
        Event::InitApply(o) => match reduce(kind, &o) {
            Ok(w) => buffer.get_or_insert_with(Vec::new).push(w),
            Err(e) => warn!(kind = %kind, error = %e, "skipping an object the rules cannot read"),
        },
        Event::InitDone => {
            let objects = buffer.take().unwrap_or_default();
            let count = objects.len();
            store.update(|s| s.replace_kind(kind, objects));
            let all = sync.mark(kind);
            info!(kind = %kind, count, "template cache listed");
            if all {
                store.mark_synced(true);
            }
        }
        Event::Apply(o) => match reduce(kind, &o) {
            Ok(w) => store.update(|s| s.insert(w)),
            Err(e) => {
                // Drop the version before it too, as a relist would: the object in the cluster
                // is this one, and checking the old one would answer for what no longer is.
                warn!(kind = %kind, error = %e, "dropping an object the rules cannot read");
                let ns = o.metadata.namespace.clone().unwrap_or_default();
                let name = o.metadata.name.clone().unwrap_or_default();
                store.update(|s| s.remove(kind, &ns, &name));
            }
        },
        Event::Delete(o) => {
            let ns = o.metadata.namespace.clone().unwrap_or_default();
            let name = o.metadata.name.clone().unwrap_or_default();
            store.update(|s| s.remove(kind, &ns, &name));
        }
    }
}

/// Starts one watch per kind and one of namespaces; they run until the runtime shuts down.
pub fn spawn_watchers(
    client: kube::Client,
    store: Arc<SharedStore>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let sync = Arc::new(SyncState::default());
    let mut tasks: Vec<_> = KINDS
        .iter()
        .map(|&(kind, plural)| {
            let gvk = GroupVersionKind::gvk(Kind::GROUP, "v1alpha1", kind.as_str());
            let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let (store, sync) = (store.clone(), sync.clone());
            let mut buffer = None;
            spawn_watch(api, kind.as_str(), move |event| {
                apply_event(&store, &sync, kind, &mut buffer, event)
            })
        })
        .collect();
    // Metadata-only requests: the annotations are all that is read.
    let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
    let mut buffer = None;
    tasks.push(spawn_watch(api, "Namespace", move |event| {
        apply_namespace_event(&store, &sync, &mut buffer, metadata_of(event))
    }));
    tasks
}

/// Runs one watch, handing each event to `apply`. The watcher retries with backoff; the store
/// keeps its last view meanwhile.
fn spawn_watch<K>(
    api: Api<K>,
    kind: &'static str,
    mut apply: impl FnMut(Event<K>) + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => apply(event),
                Err(e) => warn!(kind, error = %e, "watch failed; retrying"),
            }
        }
        debug!(kind, "watch ended");
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::templates::TemplateStore;
    use serde_json::json;

    fn object(kind: &str, name: &str, ns: Option<&str>) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": ns},
            "spec": {"metrics": [{"name": "m", "provider": {"job": {}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn an_update_the_rules_cannot_read_drops_the_version_before_it() {
        let store = SharedStore::new();
        let sync = SyncState::default();
        let mut buf = None;
        let k = Kind::AnalysisTemplate;
        let good = object("AnalysisTemplate", "t", Some("ns"));
        let mut bad = serde_json::to_value(&good).unwrap();
        bad["spec"]["metrics"][0]["count"] = serde_json::json!(true);
        let bad: DynamicObject = serde_json::from_value(bad).unwrap();
        apply_event(&store, &sync, k, &mut buf, Event::Apply(good));
        assert!(store.analysis_template("ns", "t").is_some());
        apply_event(&store, &sync, k, &mut buf, Event::Apply(bad.clone()));
        assert!(
            store.analysis_template("ns", "t").is_none(),
            "the previous version still answers for an object the cluster no longer has"
        );
        // What a relist of the same state gives.
        let relisted = SharedStore::new();
        for event in [Event::Init, Event::InitApply(bad), Event::InitDone] {
            apply_event(&relisted, &sync, k, &mut buf, event);
        }
        assert!(relisted.analysis_template("ns", "t").is_none());
    }

    #[test]
    fn becomes_synced_after_every_kind_listed_and_relists_replace() {
        let store = SharedStore::new();
        let sync = SyncState::default();
        let mut buf = None;
        for (kind, _) in KINDS {
            assert!(!store.synced());
            apply_event(&store, &sync, kind, &mut buf, Event::Init);
            if kind == Kind::AnalysisTemplate {
                apply_event(
                    &store,
                    &sync,
                    kind,
                    &mut buf,
                    Event::InitApply(object("AnalysisTemplate", "a", Some("ns"))),
                );
                apply_event(
                    &store,
                    &sync,
                    kind,
                    &mut buf,
                    Event::InitApply(object("AnalysisTemplate", "b", Some("ns"))),
                );
            }
            apply_event(&store, &sync, kind, &mut buf, Event::InitDone);
        }
        assert!(!store.synced(), "namespaces not listed yet");
        let mut namespaces = None;
        for event in [Event::Init, Event::InitDone] {
            apply_namespace_event(&store, &sync, &mut namespaces, event);
        }
        assert!(store.synced());
        assert!(store.analysis_template("ns", "a").is_some());
        // A relist that no longer has `a` removes it at InitDone, not before.
        let k = Kind::AnalysisTemplate;
        apply_event(&store, &sync, k, &mut buf, Event::Init);
        apply_event(
            &store,
            &sync,
            k,
            &mut buf,
            Event::InitApply(object("AnalysisTemplate", "b", Some("ns"))),
        );
        assert!(store.analysis_template("ns", "a").is_some());
        apply_event(&store, &sync, k, &mut buf, Event::InitDone);
        assert!(store.analysis_template("ns", "a").is_none());
        assert!(store.analysis_template("ns", "b").is_some());
        // Live events.
        apply_event(
            &store,
            &sync,
            k,
            &mut buf,
            Event::Apply(object("AnalysisTemplate", "c", Some("ns"))),
        );
        apply_event(
            &store,
            &sync,
            k,
            &mut buf,
            Event::Delete(object("AnalysisTemplate", "b", Some("ns"))),
        );
        assert!(
            store.analysis_template("ns", "c").is_some()
                && store.analysis_template("ns", "b").is_none()
        );
        let ck = Kind::ClusterAnalysisTemplate;
        apply_event(
            &store,
            &sync,
            ck,
            &mut buf,
            Event::Apply(object("ClusterAnalysisTemplate", "shared", None)),
        );
        assert!(store.cluster_analysis_template("shared").is_some());
    }

    fn namespace(name: &str, annotations: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(json!({"name": name, "annotations": annotations})).unwrap()
    }

    #[test]
    fn namespaces_keep_only_our_annotations_and_relists_replace_them() {
        let store = SharedStore::new();
        let sync = SyncState::default();
        let mut buf = None;
        let mode = |ns: &str| store.namespace_annotation(ns, "rollout-guard.io/mode");
        for event in [
            Event::Init,
            Event::InitApply(namespace(
                "shop",
                json!({"rollout-guard.io/mode": "enforce", "owner": "team-a"}),
            )),
            Event::InitApply(namespace("plain", json!({"owner": "team-b"}))),
            Event::InitApply(namespace("gone", json!({"rollout-guard.io/mode": "off"}))),
        ] {
            apply_namespace_event(&store, &sync, &mut buf, event);
        }
        assert_eq!(mode("shop"), None, "nothing applies before InitDone");
        apply_namespace_event(&store, &sync, &mut buf, Event::InitDone);
        assert_eq!(mode("shop").as_deref(), Some("enforce"));
        assert_eq!(mode("gone").as_deref(), Some("off"));
        assert_eq!(store.namespace_annotation("shop", "owner"), None);
        assert_eq!(mode("plain"), None);

        // Live: an edit, an annotation removed, a namespace deleted.
        let shop = namespace("shop", json!({"rollout-guard.io/mode": "warn"}));
        apply_namespace_event(&store, &sync, &mut buf, Event::Apply(shop));
        assert_eq!(mode("shop").as_deref(), Some("warn"));
        let cleared = namespace("shop", json!({"owner": "team-a"}));
        apply_namespace_event(&store, &sync, &mut buf, Event::Apply(cleared));
        assert_eq!(mode("shop"), None);
        let gone = namespace("gone", json!(null));
        apply_namespace_event(&store, &sync, &mut buf, Event::Delete(gone));
        assert_eq!(mode("gone"), None);

        // A relist replaces everything at InitDone.
        apply_namespace_event(&store, &sync, &mut buf, Event::Init);
        let only = namespace("new", json!({"rollout-guard.io/guards": "none"}));
        apply_namespace_event(&store, &sync, &mut buf, Event::InitApply(only));
        apply_namespace_event(&store, &sync, &mut buf, Event::InitDone);
        assert_eq!(
            store
                .namespace_annotation("new", "rollout-guard.io/guards")
                .as_deref(),
            Some("none")
        );
    }

    #[test]
    fn unreadable_objects_are_skipped_not_fatal() {
        let store = SharedStore::new();
        let sync = SyncState::default();
        let mut buf = None;
        let bad: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": "bad", "namespace": "ns"}, "spec": {"metrics": "nope"}
        }))
        .unwrap();
        apply_event(
            &store,
            &sync,
            Kind::AnalysisTemplate,
            &mut buf,
            Event::Apply(bad),
        );
        assert!(store.analysis_template("ns", "bad").is_none());
    }
}
