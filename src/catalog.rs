//! The server's view of the cluster's templates and Rollouts: a [`Catalog`] is a
//! [`TemplateStore`] that can also say which Rollouts use a template, whether it has synced,
//! and how big it is. [`SharedStore`] is the in-memory implementation both the file source and
//! the cluster watch fill; reads never wait on I/O.

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
}

/// A [`MemoryStore`] behind a read-write lock, with a sync flag.
#[derive(Default)]
pub struct SharedStore {
    inner: RwLock<MemoryStore>,
    synced: AtomicBool,
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
        }
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
