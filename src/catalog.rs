//! The server's view of the cluster's templates and Rollouts: a [`Catalog`] is a
//! [`TemplateStore`] that can also say which Rollouts use a template, whether it has synced,
//! and how big it is. [`SharedStore`] is the in-memory implementation both the file source and
//! the cluster watch fill; reads never wait on I/O. It also keeps the `rollout-guard.io/`
//! annotations of namespaces, which set the mode and guards of the objects in them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::input::{Object, load};
use crate::model::{AnalysisTemplate, Kind, Rollout};
use crate::templates::{MemoryStore, TemplateStore};

pub trait Catalog: TemplateStore {
    /// Rollouts whose analyses reach this template (directly or nested).
    fn rollouts_referencing(&self, kind: Kind, namespace: &str, name: &str) -> Vec<Arc<Rollout>>;
    /// True once the source has delivered its first complete view.
    fn synced(&self) -> bool;
    /// Entries per kind, for metrics.
    fn sizes(&self) -> Vec<(&'static str, usize)>;
    /// Runs `f` on one consistent view of the templates. A Rollout's evaluation looks up
    /// several templates; through this it takes the lock once instead of once per lookup, and
    /// no template can change halfway through. `f` must not call back into the catalog (a
    /// second read guard can wait behind a queued writer).
    fn with_templates(&self, f: &mut dyn FnMut(&dyn TemplateStore));
    /// The value of a `rollout-guard.io/` annotation on a namespace.
    fn namespace_annotation(&self, namespace: &str, key: &str) -> Option<String> {
        let _ = (namespace, key);
        None
    }
}

/// A namespace's `rollout-guard.io/` annotations (the others are not kept).
pub type NamespaceAnnotations = BTreeMap<String, String>;

/// The annotations among `all` that a namespace keeps: those under
/// [`crate::model::OWN_ANNOTATION_PREFIX`].
pub fn own_annotations<'a>(
    all: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> NamespaceAnnotations {
    all.into_iter()
        .filter(|(key, _)| key.starts_with(crate::model::OWN_ANNOTATION_PREFIX))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// A [`MemoryStore`] behind a read-write lock, with a sync flag, and the namespaces' settings.
#[derive(Default)]
pub struct SharedStore {
    inner: RwLock<MemoryStore>,
    synced: AtomicBool,
    /// Only namespaces that have `rollout-guard.io/` annotations.
    namespaces: RwLock<HashMap<String, NamespaceAnnotations>>,
    /// False while no namespace has any: reviews then take no lock to find out.
    any_namespace: AtomicBool,
}

impl SharedStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that is complete from the start (files, or nothing).
    pub fn ready(store: MemoryStore) -> Self {
        Self {
            inner: RwLock::new(store),
            synced: AtomicBool::new(true),
            ..Self::default()
        }
    }

    /// Sets a namespace's annotations; a namespace without any is forgotten.
    pub fn set_namespace(&self, name: &str, annotations: NamespaceAnnotations) {
        self.edit_namespaces(|all| {
            if annotations.is_empty() {
                all.remove(name);
            } else {
                all.insert(name.to_owned(), annotations);
            }
        });
    }

    pub fn remove_namespace(&self, name: &str) {
        self.edit_namespaces(|all| {
            all.remove(name);
        });
    }

    /// Replaces every namespace's annotations at once (a relist).
    pub fn replace_namespaces(
        &self,
        namespaces: impl IntoIterator<Item = (String, NamespaceAnnotations)>,
    ) {
        let fresh = namespaces
            .into_iter()
            .filter(|(_, a)| !a.is_empty())
            .collect();
        self.edit_namespaces(|all| *all = fresh);
    }

    fn edit_namespaces(&self, edit: impl FnOnce(&mut HashMap<String, NamespaceAnnotations>)) {
        let mut all = self.namespaces.write().unwrap_or_else(|p| p.into_inner());
        edit(&mut all);
        self.any_namespace.store(!all.is_empty(), Ordering::Release);
    }

    pub fn mark_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::Release);
    }

    /// Runs an edit under the write lock (watch events).
    pub fn update<R>(&self, edit: impl FnOnce(&mut MemoryStore) -> R) -> R {
        let mut guard = self.inner.write().unwrap_or_else(|p| p.into_inner());
        edit(&mut guard)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, MemoryStore> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl TemplateStore for SharedStore {
    fn analysis_template(&self, namespace: &str, name: &str) -> Option<Arc<AnalysisTemplate>> {
        self.read().analysis_template(namespace, name)
    }
    fn cluster_analysis_template(&self, name: &str) -> Option<Arc<AnalysisTemplate>> {
        self.read().cluster_analysis_template(name)
    }
}

impl Catalog for SharedStore {
    fn rollouts_referencing(&self, kind: Kind, namespace: &str, name: &str) -> Vec<Arc<Rollout>> {
        self.read().rollouts_referencing(kind, namespace, name)
    }
    fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }
    fn with_templates(&self, f: &mut dyn FnMut(&dyn TemplateStore)) {
        f(&*self.read());
    }
    fn namespace_annotation(&self, namespace: &str, key: &str) -> Option<String> {
        if !self.any_namespace.load(Ordering::Acquire) {
            return None;
        }
        let all = self.namespaces.read().unwrap_or_else(|p| p.into_inner());
        all.get(namespace)?.get(key).cloned()
    }
    fn sizes(&self) -> Vec<(&'static str, usize)> {
        let s = self.read();
        [
            Kind::AnalysisTemplate,
            Kind::ClusterAnalysisTemplate,
            Kind::Rollout,
        ]
        .into_iter()
        .map(|k| (k.as_str(), s.len(k)))
        .collect()
    }
}

/// Reads a directory of manifests into a store. Documents that do not parse are returned as
/// messages (the server logs them and goes on).
pub fn load_dir(dir: &Path) -> (MemoryStore, Vec<String>) {
    let (store, _, errors) = load_manifests(dir);
    (store, errors)
}

/// The server's catalog from a directory: its templates and Rollouts, and the annotations of
/// the Namespaces it holds. Documents that do not parse are returned as messages.
pub fn load_catalog(dir: &Path) -> (SharedStore, Vec<String>) {
    let (store, namespaces, errors) = load_manifests(dir);
    let catalog = SharedStore::ready(store);
    catalog.replace_namespaces(namespaces);
    (catalog, errors)
}

fn load_manifests(
    dir: &Path,
) -> (
    MemoryStore,
    Vec<(String, NamespaceAnnotations)>,
    Vec<String>,
) {
    let loaded = load(&[dir.to_path_buf()]);
    let mut store = MemoryStore::new();
    for (_, object) in loaded.objects {
        match object {
            Object::Rollout(r) => store.insert_rollout(*r),
            Object::Template(t, Kind::ClusterAnalysisTemplate) => store.insert_cluster_template(*t),
            Object::Template(t, _) => store.insert_template(*t),
        }
    }
    (
        store,
        loaded.namespaces,
        loaded.errors.iter().map(ToString::to_string).collect(),
    )
}

/// A store with one template replaced: what the world looks like if an admitted template
/// write goes through.
pub struct Overlay<'a> {
    pub base: &'a dyn TemplateStore,
    pub kind: Kind,
    pub namespace: &'a str,
    pub template: Arc<AnalysisTemplate>,
}

impl Overlay<'_> {
    fn name(&self) -> &str {
        self.template.metadata.display_name()
    }
}

impl TemplateStore for Overlay<'_> {
    fn analysis_template(&self, namespace: &str, name: &str) -> Option<Arc<AnalysisTemplate>> {
        // Where the store would find the replaced template: a lookup from a Rollout that names
        // no namespace is in `default`, and a template kept without one answers any namespace.
        let here = self.namespace.is_empty()
            || crate::templates::rollout_namespace(Some(namespace)) == self.namespace;
        if self.kind == Kind::AnalysisTemplate && name == self.name() && here {
            return Some(self.template.clone());
        }
        self.base.analysis_template(namespace, name)
    }
    fn cluster_analysis_template(&self, name: &str) -> Option<Arc<AnalysisTemplate>> {
        if self.kind == Kind::ClusterAnalysisTemplate && name == self.name() {
            return Some(self.template.clone());
        }
        self.base.cluster_analysis_template(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_gives_its_namespaces_settings_with_its_templates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("namespaces.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  annotations:\n    rollout-guard.io/mode: enforce\n    owner: team-a\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: plain\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("template.yaml"),
            "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  name: t\n  namespace: shop\nspec:\n  metrics: []\n",
        )
        .unwrap();
        let (catalog, errors) = load_catalog(dir.path());
        assert!(errors.is_empty(), "{errors:?}");
        assert!(catalog.analysis_template("shop", "t").is_some());
        let mode = |ns: &str| catalog.namespace_annotation(ns, "rollout-guard.io/mode");
        assert_eq!(mode("shop").as_deref(), Some("enforce"));
        assert_eq!(mode("plain"), None);
        assert_eq!(catalog.namespace_annotation("shop", "owner"), None);
    }

    #[test]
    fn without_namespace_settings_none_is_looked_up() {
        let store = SharedStore::new();
        assert_eq!(
            store.namespace_annotation("any", "rollout-guard.io/mode"),
            None
        );
        store.set_namespace("a", [("rollout-guard.io/mode".into(), "off".into())].into());
        assert!(store.any_namespace.load(Ordering::Acquire));
        store.set_namespace("a", NamespaceAnnotations::new());
        assert!(
            !store.any_namespace.load(Ordering::Acquire),
            "forgotten when it has none"
        );
    }
}
