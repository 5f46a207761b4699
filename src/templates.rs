//! The template store and template resolution.
//!
//! A [`TemplateStore`] answers "which AnalysisTemplate is `name` in `namespace`" and "which
//! ClusterAnalysisTemplate is `name`" from memory: [`MemoryStore`] is filled from files for
//! `check` and `serve --templates`, and the cluster cache fills one from a watch. [`flatten`]
//! flattens a list of references the way Argo Rollouts does when it starts a run: recursively,
//! de-duplicated by name and scope, with the cycle detection upstream lacks; [`Args`] then
//! substitutes `{{args.x}}` placeholders (the Rollout's values over template defaults).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::finding::{Finding, Rule, Severity};
use crate::model::{AnalysisTemplate, Arg, IntOrStr, Kind, ObjectRef, Rollout, TemplateRef};

/// Read access to templates. Implementations must not block: this runs on the request path.
pub trait TemplateStore: Send + Sync {
    fn analysis_template(&self, namespace: &str, name: &str) -> Option<Arc<AnalysisTemplate>>;
    fn cluster_analysis_template(&self, name: &str) -> Option<Arc<AnalysisTemplate>>;
}

/// A store with nothing in it (the server without a cluster and without `--templates`).
pub struct EmptyStore;

impl TemplateStore for EmptyStore {
    fn analysis_template(&self, _: &str, _: &str) -> Option<Arc<AnalysisTemplate>> {
        None
    }
    fn cluster_analysis_template(&self, _: &str) -> Option<Arc<AnalysisTemplate>> {
        None
    }
}

/// Templates (and the Rollouts that reference them) held in memory.
///
/// A namespaced template read from a file without `metadata.namespace` is kept under the
/// empty namespace and answers a lookup from any namespace when no exact match exists: a
/// repository of manifests usually leaves the namespace to `kubectl -n` or kustomize. A
/// Rollout without a namespace is in `default` (what kubectl does with a manifest that names
/// none, in a default context). A template that names its namespace, `default` included (as
/// every template from the cluster does), answers only Rollouts of that namespace.
#[derive(Default, Clone)]
pub struct MemoryStore {
    /// Namespace (see [`template_namespace`]), then name: a lookup borrows both.
    namespaced: Map<String, Map<String, Arc<AnalysisTemplate>>>,
    cluster: Map<String, Arc<AnalysisTemplate>>,
    rollouts: Map<(String, String), Arc<Rollout>>,
}

/// The store's maps: every review looks templates up by namespace and name, short keys for
/// which foldhash costs a fraction of std's SipHash. Its per-process random seed still keeps
/// the layout unpredictable from outside.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps a template (a shared one stays shared: `check` keeps each in several stores).
    pub fn insert_template(&mut self, template: impl Into<Arc<AnalysisTemplate>>) {
        let template = template.into();
        let ns = template_namespace(template.metadata.namespace.as_deref()).to_owned();
        let name = template.metadata.display_name().to_owned();
        self.namespaced
            .entry(ns)
            .or_default()
            .insert(name, template);
    }

    pub fn insert_cluster_template(&mut self, template: impl Into<Arc<AnalysisTemplate>>) {
        let template = template.into();
        let name = template.metadata.display_name().to_owned();
        self.cluster.insert(name, template);
    }

    /// The AnalysisTemplate kept under exactly this namespace (`""`: one naming none), without
    /// the fallbacks of [`TemplateStore::analysis_template`].
    pub fn template_in(&self, namespace: &str, name: &str) -> Option<Arc<AnalysisTemplate>> {
        self.namespaced.get(namespace)?.get(name).cloned()
    }

    pub fn insert_rollout(&mut self, rollout: Rollout) {
        let ns = rollout_namespace(rollout.metadata.namespace.as_deref()).to_owned();
        let name = rollout.metadata.display_name().to_owned();
        self.rollouts.insert((ns, name), Arc::new(rollout));
    }

    pub fn remove(&mut self, kind: Kind, namespace: &str, name: &str) {
        match kind {
            Kind::AnalysisTemplate => {
                let ns = template_namespace(Some(namespace));
                if let Some(names) = self.namespaced.get_mut(ns) {
                    names.remove(name);
                    if names.is_empty() {
                        self.namespaced.remove(ns);
                    }
                }
            }
            Kind::ClusterAnalysisTemplate => drop(self.cluster.remove(name)),
            Kind::Rollout => {
                let ns = rollout_namespace(Some(namespace));
                drop(self.rollouts.remove(&(ns.to_owned(), name.to_owned())))
            }
        }
    }

    /// Replaces every object of one kind (a watch relist completed).
    pub fn replace_kind(&mut self, kind: Kind, objects: Vec<WatchedObject>) {
        match kind {
            Kind::AnalysisTemplate => self.namespaced.clear(),
            Kind::ClusterAnalysisTemplate => self.cluster.clear(),
            Kind::Rollout => self.rollouts.clear(),
        }
        for object in objects {
            self.insert(object);
        }
    }

    pub fn insert(&mut self, object: WatchedObject) {
        match object {
            WatchedObject::Rollout(r) => self.insert_rollout(*r),
            WatchedObject::Template(t) => self.insert_template(t),
            WatchedObject::ClusterTemplate(t) => self.insert_cluster_template(t),
        }
    }

    pub fn len(&self, kind: Kind) -> usize {
        match kind {
            Kind::AnalysisTemplate => self.namespaced.values().map(Map::len).sum(),
            Kind::ClusterAnalysisTemplate => self.cluster.len(),
            Kind::Rollout => self.rollouts.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.namespaced.is_empty() && self.cluster.is_empty() && self.rollouts.is_empty()
    }

    /// Rollouts whose background, step or blue-green analysis references the template,
    /// directly or through nested templates, in name order.
    pub fn rollouts_referencing(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Vec<Arc<Rollout>> {
        let namespace = template_namespace(Some(namespace));
        let mut found: Vec<_> = self
            .rollouts
            .values()
            .filter(|r| {
                let ns = rollout_namespace(r.metadata.namespace.as_deref());
                if kind == Kind::AnalysisTemplate && ns != namespace && !namespace.is_empty() {
                    return false;
                }
                references(r, self, kind, name)
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        found
    }
}

impl TemplateStore for MemoryStore {
    fn analysis_template(&self, namespace: &str, name: &str) -> Option<Arc<AnalysisTemplate>> {
        // A Rollout that names no namespace is in `default` (where kubectl puts it by default).
        // `check` looks nearest first instead (`check::Nearest`).
        self.template_in(rollout_namespace(Some(namespace)), name)
            .or_else(|| self.template_in("", name))
    }

    fn cluster_analysis_template(&self, name: &str) -> Option<Arc<AnalysisTemplate>> {
        self.cluster.get(name).cloned()
    }
}

impl<T: TemplateStore + ?Sized> TemplateStore for Arc<T> {
    fn analysis_template(&self, namespace: &str, name: &str) -> Option<Arc<AnalysisTemplate>> {
        (**self).analysis_template(namespace, name)
    }
    fn cluster_analysis_template(&self, name: &str) -> Option<Arc<AnalysisTemplate>> {
        (**self).cluster_analysis_template(name)
    }
}

/// One object as a watch delivers it, already reduced to the partial view.
#[derive(Debug, Clone)]
pub enum WatchedObject {
    Rollout(Box<Rollout>),
    Template(AnalysisTemplate),
    ClusterTemplate(AnalysisTemplate),
}

/// Where a template is kept: its namespace, or `""` when it names none (a file's template,
/// which answers any namespace when nothing there has its name).
fn template_namespace(namespace: Option<&str>) -> &str {
    namespace.unwrap_or_default()
}

/// The namespace of a Rollout (or of a lookup on its behalf): `default` when it names none.
pub(crate) fn rollout_namespace(namespace: Option<&str>) -> &str {
    match namespace {
        None | Some("") => "default",
        Some(ns) => ns,
    }
}

/// Does any analysis of the Rollout reach the template (directly or nested)?
pub fn references(rollout: &Rollout, store: &dyn TemplateStore, kind: Kind, name: &str) -> bool {
    let ns = rollout.metadata.namespace.as_deref().unwrap_or_default();
    let refs: Vec<&TemplateRef> = rollout
        .background_analysis()
        .into_iter()
        .chain(rollout.foreground_analyses().map(|(_, a)| a))
        .flat_map(|a| &a.templates)
        .collect();
    let target = TemplateKey {
        cluster: kind == Kind::ClusterAnalysisTemplate,
        name: name.to_owned(),
    };
    let mut seen = HashSet::new();
    let mut stack: Vec<TemplateKey> = refs.iter().filter_map(|r| TemplateKey::of(r)).collect();
    while let Some(key) = stack.pop() {
        if key == target {
            return true;
        }
        if !seen.insert(key.clone()) || seen.len() > MAX_TEMPLATES {
            continue;
        }
        if let Some(t) = key.lookup(store, ns) {
            stack.extend(t.spec.templates.iter().filter_map(TemplateKey::of));
        }
    }
    false
}

/// Bound on how many templates one run may flatten (a runaway store cannot stall a request).
const MAX_TEMPLATES: usize = 256;

/// A template identity as Argo de-duplicates it: by name and scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateKey {
    pub cluster: bool,
    pub name: String,
}

impl TemplateKey {
    fn of(r: &TemplateRef) -> Option<Self> {
        KeyRef::of(r).map(KeyRef::to_owned)
    }

    fn lookup(&self, store: &dyn TemplateStore, namespace: &str) -> Option<Arc<AnalysisTemplate>> {
        KeyRef {
            cluster: self.cluster,
            name: &self.name,
        }
        .lookup(store, namespace)
    }
}

/// A [`TemplateKey`] borrowed from a reference: what a walk compares and looks up with.
#[derive(Debug, Clone, Copy)]
struct KeyRef<'a> {
    cluster: bool,
    name: &'a str,
}

impl<'a> KeyRef<'a> {
    fn of(r: &'a TemplateRef) -> Option<Self> {
        let name = r.template_name.as_deref().filter(|n| !n.is_empty())?;
        Some(Self {
            cluster: r.cluster_scope.unwrap_or(false),
            name,
        })
    }

    fn to_owned(self) -> TemplateKey {
        TemplateKey {
            cluster: self.cluster,
            name: self.name.to_owned(),
        }
    }

    fn lookup(self, store: &dyn TemplateStore, namespace: &str) -> Option<Arc<AnalysisTemplate>> {
        if self.cluster {
            store.cluster_analysis_template(self.name)
        } else {
            store.analysis_template(namespace, self.name)
        }
    }

    /// Is `object` the template this key names?
    fn is(self, object: &ObjectRef) -> bool {
        (object.kind == Kind::ClusterAnalysisTemplate) == self.cluster && object.name == self.name
    }

    fn object(self, namespace: &str) -> ObjectRef {
        if self.cluster {
            ObjectRef {
                kind: Kind::ClusterAnalysisTemplate,
                namespace: None,
                name: self.name.into(),
            }
        } else {
            ObjectRef {
                kind: Kind::AnalysisTemplate,
                namespace: (!namespace.is_empty()).then(|| namespace.into()),
                name: self.name.into(),
            }
        }
    }

    fn describe(self) -> String {
        let kind = if self.cluster {
            "ClusterAnalysisTemplate"
        } else {
            "AnalysisTemplate"
        };
        format!("{kind} {}", self.name)
    }
}

/// One template reached by a run. Its identity (name and scope) is its object's kind and
/// name.
#[derive(Debug, Clone)]
pub struct ResolvedTemplate {
    pub object: ObjectRef,
    pub template: Arc<AnalysisTemplate>,
}

/// What a value became after argument substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved<T> {
    Unset,
    Known(T),
    /// Depends on a value known only when the run starts (valueFrom), or on an argument
    /// nothing supplies (reported separately): never guessed.
    Unknown,
    /// Resolved, but not what the field accepts (the raw text is kept for the message).
    Invalid(String),
}

impl<T: Copy> Resolved<T> {
    pub fn known(&self) -> Option<T> {
        match self {
            Self::Known(v) => Some(*v),
            _ => None,
        }
    }

    pub fn known_or(&self, default: T) -> Option<T> {
        match self {
            Self::Unset => Some(default),
            Self::Known(v) => Some(*v),
            _ => None,
        }
    }
}

/// The value of an argument for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgValue<'a> {
    Known(&'a str),
    /// `valueFrom`: filled in by the controller when the run starts.
    Runtime,
    /// Declared without a value and not supplied.
    Missing,
}

/// Argument values for one run, borrowed from the templates and the Rollout; placeholders
/// are substituted through it.
#[derive(Debug, Clone, Default)]
pub struct Args<'a> {
    values: BTreeMap<&'a str, ArgValue<'a>>,
}

impl<'a> Args<'a> {
    /// Template declarations first, as Argo's `flattenArgs` merges them: the first `value`
    /// stays, and a declaration without one is replaced by the next declaration of the same
    /// name, whatever that holds (a `valueFrom` too: Argo looks at `value` only). Then the
    /// Rollout's values on top, as its `MergeArgs` does: a Rollout's argument sets only an
    /// argument some template declares, and only when it has a `value` or `valueFrom` (one
    /// with neither leaves the template's default in place). Two different `value`s are a
    /// conflict Argo refuses; the first is kept here, and the rules report it.
    pub fn merge(declared: impl IntoIterator<Item = &'a Arg>, supplied: &'a [Arg]) -> Self {
        let mut values = BTreeMap::new();
        for arg in declared {
            let value = arg_value(arg);
            values
                .entry(arg.name.as_str())
                .and_modify(|v| {
                    if !matches!(v, ArgValue::Known(_)) {
                        *v = value;
                    }
                })
                .or_insert(value);
        }
        for arg in supplied {
            let value = arg_value(arg);
            if value != ArgValue::Missing
                && let Some(declared) = values.get_mut(arg.name.as_str())
            {
                *declared = value;
            }
        }
        Self { values }
    }

    pub fn get(&self, name: &str) -> Option<&ArgValue<'a>> {
        self.values.get(name)
    }

    /// Replaces `{{args.name}}` (spaces inside the braces allowed). Returns `None` when any
    /// placeholder has no known value; borrows the text when it has no placeholder (most do).
    pub fn substitute<'t>(&self, text: &'t str) -> Option<Cow<'t, str>> {
        self.fill(text, false)
    }

    /// `text` with the arguments known now substituted and the others left out: what it holds
    /// whatever the values known only when the run starts turn out to be.
    pub fn known_part<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.fill(text, true).unwrap_or_default()
    }

    /// [`Self::substitute`], leaving out a placeholder without a known value when
    /// `drop_unknown`, else giving up (`None`) on it.
    fn fill<'t>(&self, text: &'t str, drop_unknown: bool) -> Option<Cow<'t, str>> {
        if find_pair(text, b"{{").is_none() {
            return Some(Cow::Borrowed(text));
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = find_pair(rest, b"{{") {
            let Some(len) = find_pair(&rest[start..], b"}}") else {
                break;
            };
            let inner = rest[start + 2..start + len].trim();
            out.push_str(&rest[..start]);
            match inner.strip_prefix("args.") {
                Some(name) => match self.values.get(name) {
                    Some(ArgValue::Known(v)) => out.push_str(v),
                    _ if drop_unknown => {}
                    _ => return None,
                },
                None => out.push_str(&rest[start..start + len + 2]),
            }
            rest = &rest[start + len + 2..];
        }
        out.push_str(rest);
        Some(Cow::Owned(out))
    }

    pub fn int(&self, value: Option<&IntOrStr>) -> Resolved<i64> {
        match value {
            None => Resolved::Unset,
            Some(IntOrStr::Int(n)) => Resolved::Known(*n),
            Some(IntOrStr::Str(s)) => match self.substitute(s) {
                None => Resolved::Unknown,
                Some(v) => match crate::duration::go_atoi(&v) {
                    Some(n) => Resolved::Known(n),
                    None => Resolved::Invalid(v.into_owned()),
                },
            },
        }
    }

    pub fn text(&self, value: Option<&str>) -> Resolved<()> {
        self.text_value(value)
            .map_or(Resolved::Unknown, |v| match v {
                None => Resolved::Unset,
                Some(_) => Resolved::Known(()),
            })
    }

    /// `Ok(None)` unset, `Ok(Some(text))` resolved, `Err(())` unknown.
    #[allow(clippy::result_unit_err)]
    pub fn text_value<'t>(&self, value: Option<&'t str>) -> Result<Option<Cow<'t, str>>, ()> {
        match value {
            None => Ok(None),
            Some(s) => self.substitute(s).map(Some).ok_or(()),
        }
    }
}

fn arg_value(arg: &Arg) -> ArgValue<'_> {
    match (&arg.value, &arg.value_from) {
        (Some(v), _) => ArgValue::Known(v.as_str()),
        (None, Some(_)) => ArgValue::Runtime,
        (None, None) => ArgValue::Missing,
    }
}

/// Where `pair` first occurs in `text`: a byte search, cheaper than building a substring
/// searcher for every field of every metric.
fn find_pair(text: &str, pair: &[u8; 2]) -> Option<usize> {
    text.as_bytes().windows(2).position(|w| w == pair)
}

/// Names of the `{{args.x}}` placeholders in a text.
pub fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            let start = find_pair(rest, b"{{")?;
            let len = find_pair(&rest[start..], b"}}")?;
            let inner = rest[start + 2..start + len].trim();
            rest = &rest[start + len + 2..];
            if let Some(name) = inner.strip_prefix("args.") {
                return Some(name);
            }
        }
    })
}

/// The templates one list of references reaches, plus what went wrong on the way.
#[derive(Debug, Clone, Default)]
pub struct Flattened {
    pub templates: Vec<ResolvedTemplate>,
    pub findings: Vec<Finding>,
    /// Namespaced references were left out (a ClusterAnalysisTemplate on its own: they
    /// resolve in each Rollout's namespace), so the templates are not all of the run's.
    pub left_out_namespaced: bool,
}

/// Where the references came from, so findings name the right object and field.
pub struct RefOrigin<'a> {
    pub object: &'a ObjectRef,
    /// Path of the block that holds the `templates` list, e.g.
    /// `spec.strategy.canary.analysis` (`spec` in a template).
    pub parent: &'a str,
}

/// Flattens references recursively (depth first, in order), de-duplicated by name and scope
/// as Argo does. Missing templates are warnings (GitOps may apply them later, Argo issue
/// #358); cycles are errors (upstream has no guard and would recurse without bound).
pub fn flatten(
    refs: &[TemplateRef],
    origin: RefOrigin<'_>,
    namespace: &str,
    store: &dyn TemplateStore,
) -> Flattened {
    let mut walk = Walk::new(Some(namespace), store);
    walk.visit(refs, origin.parent, Holder::Given(origin.object));
    walk.out
}

/// Flattens a template and everything it nests, starting from the template itself (which
/// need not be in the store yet: it may be the object under admission). `namespace` is where
/// its namespaced references resolve; `None` for a ClusterAnalysisTemplate checked on its own,
/// whose namespaced references resolve in each Rollout's namespace (Argo), so they are left
/// out here and checked with each Rollout.
pub fn flatten_from(
    root: ResolvedTemplate,
    namespace: Option<&str>,
    store: &dyn TemplateStore,
) -> Flattened {
    let mut walk = Walk::new(namespace, store);
    let template = root.template.clone();
    walk.out.templates.push(root);
    walk.path_stack.push(0);
    walk.visit(&template.spec.templates, "spec", Holder::Reached(0));
    walk.out
}

/// The object that holds a list of references: given by the caller, or a template the walk
/// reached (an index in [`Flattened::templates`]).
#[derive(Clone, Copy)]
enum Holder<'a> {
    Given(&'a ObjectRef),
    Reached(usize),
}

impl<'a> Holder<'a> {
    fn object<'t>(self, templates: &'t [ResolvedTemplate]) -> &'t ObjectRef
    where
        'a: 't,
    {
        match self {
            Holder::Given(object) => object,
            Holder::Reached(i) => &templates[i].object,
        }
    }
}

/// The state of one depth-first flattening. Every template reached so far (Argo
/// de-duplicates by name and scope) is in `out.templates` or `missing`.
struct Walk<'s> {
    /// Where namespaced references resolve; `None` when nowhere yet: they are skipped.
    namespace: Option<&'s str>,
    store: &'s dyn TemplateStore,
    /// References not found in the store (each reported once).
    missing: Vec<TemplateKey>,
    /// The templates being followed (indices in `out.templates`), for cycle detection.
    path_stack: Vec<usize>,
    out: Flattened,
}

impl<'s> Walk<'s> {
    fn new(namespace: Option<&'s str>, store: &'s dyn TemplateStore) -> Self {
        Self {
            namespace,
            store,
            missing: Vec::new(),
            path_stack: Vec::new(),
            out: Flattened::default(),
        }
    }

    fn visit(&mut self, refs: &[TemplateRef], parent: &str, holder: Holder<'_>) {
        for (i, r) in refs.iter().enumerate() {
            // Built only for a finding: most references have none.
            let field = || format!("{parent}.templates[{i}].templateName");
            let templates = &self.out.templates;
            let Some(key) = KeyRef::of(r) else {
                self.out.findings.push(
                    Finding::new(
                        Rule::MissingTemplate,
                        Severity::Warning,
                        holder.object(templates),
                        field(),
                        "template reference has no templateName: set the name of an AnalysisTemplate",
                    )
                    .explain(
                        "Argo Rollouts cannot start an AnalysisRun from a reference without a name.",
                    ),
                );
                continue;
            };
            if self
                .path_stack
                .iter()
                .any(|&t| key.is(&templates[t].object))
            {
                let mut chain: Vec<_> = self
                    .path_stack
                    .iter()
                    .map(|&t| templates[t].object.name.as_str())
                    .collect();
                chain.push(key.name);
                self.out.findings.push(
                    Finding::new(
                        Rule::TemplateCycle,
                        Severity::Error,
                        holder.object(templates),
                        field(),
                        format!(
                            "nested templates form a cycle ({}): remove one of the references",
                            chain.join(" -> ")
                        ),
                    )
                    .explain(
                        "Argo Rollouts resolves nested templates recursively with no cycle guard, so a \
                         cycle recurses without bound when a run starts (a controller crash, inferred \
                         from upstream code).",
                    ),
                );
                continue;
            }
            if templates.iter().any(|t| key.is(&t.object))
                || self
                    .missing
                    .iter()
                    .any(|k| k.cluster == key.cluster && k.name == key.name)
            {
                continue;
            }
            if templates.len() + self.missing.len() >= MAX_TEMPLATES {
                return;
            }
            // A cluster-scoped lookup needs no namespace.
            let Some(namespace) = self.namespace.or(key.cluster.then_some("")) else {
                self.out.left_out_namespaced = true;
                continue;
            };
            let Some(template) = key.lookup(self.store, namespace) else {
                self.missing.push(key.to_owned());
                let scope = if key.cluster {
                    "cluster-scoped".to_owned()
                } else if namespace.is_empty() {
                    "in this namespace".to_owned()
                } else {
                    format!("in namespace `{namespace}`")
                };
                self.out.findings.push(
                    Finding::new(
                        Rule::MissingTemplate,
                        Severity::Warning,
                        holder.object(templates),
                        field(),
                        format!(
                            "{} not found {scope}: apply it before the Rollout needs it, or fix the name",
                            key.describe()
                        ),
                    )
                    .explain(
                        "The template is not known to rollout-guard, so its metrics were not checked. \
                         GitOps tools may apply it later; Argo Rollouts fails the analysis if it is \
                         still missing when the run starts. `rollout-guard check` finds templates \
                         among the files it reads and in `--templates DIR`.",
                    ),
                );
                continue;
            };
            let index = templates.len();
            self.out.templates.push(ResolvedTemplate {
                // Named as it was found (a file's template may name no namespace, or another
                // than the Rollout's): findings on it then point where it was read.
                object: key.object(template.metadata.namespace.as_deref().unwrap_or_default()),
                template: template.clone(),
            });
            if !template.spec.templates.is_empty() {
                self.path_stack.push(index);
                self.visit(&template.spec.templates, "spec", Holder::Reached(index));
                self.path_stack.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn template(name: &str, nested: &[(&str, bool)]) -> AnalysisTemplate {
        let templates: Vec<_> = nested
            .iter()
            .map(|(n, c)| json!({"templateName": n, "clusterScope": c}))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"templates": templates, "metrics": [{"name": format!("{name}-m")}]}
        }))
        .unwrap()
    }

    fn refs(names: &[(&str, bool)]) -> Vec<TemplateRef> {
        names
            .iter()
            .map(|(n, c)| TemplateRef {
                template_name: Some((*n).into()),
                cluster_scope: Some(*c),
            })
            .collect()
    }

    fn origin() -> ObjectRef {
        ObjectRef {
            kind: Kind::Rollout,
            namespace: Some("ns".into()),
            name: "r".into(),
        }
    }

    fn run(store: &MemoryStore, names: &[(&str, bool)]) -> Flattened {
        let o = origin();
        flatten(
            &refs(names),
            RefOrigin {
                object: &o,
                parent: "spec.x",
            },
            "ns",
            store,
        )
    }

    #[test]
    fn flattens_nested_templates_once_each() {
        let mut store = MemoryStore::new();
        store.insert_template(template("a", &[("b", false), ("c", true)]));
        store.insert_template(template("b", &[("c", true)]));
        store.insert_cluster_template(template("c", &[]));
        let f = run(&store, &[("a", false), ("b", false)]);
        let names: Vec<_> = f.templates.iter().map(|t| t.object.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(f.findings.is_empty(), "{:?}", f.findings);
        assert_eq!(f.templates[2].object.kind, Kind::ClusterAnalysisTemplate);
    }

    #[test]
    fn detects_cycles_without_recursing_forever() {
        let mut store = MemoryStore::new();
        store.insert_template(template("a", &[("b", false)]));
        store.insert_template(template("b", &[("a", false)]));
        let f = run(&store, &[("a", false)]);
        assert_eq!(f.findings.len(), 1);
        let cycle = &f.findings[0];
        assert_eq!(cycle.rule, Rule::TemplateCycle);
        assert_eq!(cycle.object.name, "b");
        assert_eq!(cycle.path, "spec.templates[0].templateName");
        assert!(cycle.message.contains("a -> b -> a"), "{}", cycle.message);
    }

    #[test]
    fn self_reference_is_a_cycle() {
        let mut store = MemoryStore::new();
        store.insert_template(template("a", &[("a", false)]));
        let f = run(&store, &[("a", false)]);
        assert_eq!(f.findings[0].rule, Rule::TemplateCycle);
    }

    #[test]
    fn missing_templates_are_warnings_with_scope() {
        let store = MemoryStore::new();
        let f = run(&store, &[("gone", false), ("gone-too", true)]);
        assert_eq!(f.findings.len(), 2);
        assert!(f.findings.iter().all(|x| x.rule == Rule::MissingTemplate));
        assert!(
            f.findings[1]
                .message
                .contains("ClusterAnalysisTemplate gone-too")
        );
        assert_eq!(f.findings[0].path, "spec.x.templates[0].templateName");
        assert!(
            f.findings[0]
                .message
                .contains("not found in namespace `ns`"),
            "{}",
            f.findings[0].message
        );
        assert!(f.findings[1].message.contains("not found cluster-scoped"));
    }

    #[test]
    fn cluster_scope_does_not_find_namespaced_templates() {
        let mut store = MemoryStore::new();
        store.insert_template(template("a", &[]));
        assert_eq!(
            run(&store, &[("a", true)]).findings[0].rule,
            Rule::MissingTemplate
        );
    }

    #[test]
    fn unnamespaced_file_templates_match_any_namespace_as_fallback() {
        let mut store = MemoryStore::new();
        let mut t = template("a", &[]);
        t.metadata.namespace = None;
        store.insert_template(t);
        assert!(store.analysis_template("prod", "a").is_some());
        assert!(store.analysis_template("", "a").is_some());
    }

    #[test]
    fn a_template_in_default_answers_only_default() {
        // DOMAIN.md: a reference resolves to a template of that name in the Rollout's
        // namespace. `default` is a namespace like any other, and a Rollout naming none is in it.
        let mut store = MemoryStore::new();
        let mut t = template("a", &[]);
        t.metadata.namespace = Some("default".into());
        store.insert_template(t);
        assert!(store.analysis_template("default", "a").is_some());
        assert!(store.analysis_template("", "a").is_some());
        assert!(store.analysis_template("prod", "a").is_none());
        store.remove(Kind::AnalysisTemplate, "default", "a");
        assert_eq!(store.len(Kind::AnalysisTemplate), 0);
    }

    #[test]
    fn substitutes_arguments_with_rollout_values_over_defaults() {
        let declared: Vec<Arg> = serde_json::from_value(json!([
            {"name": "count", "value": "3"},
            {"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
            {"name": "svc"}
        ]))
        .unwrap();
        let supplied: Vec<Arg> =
            serde_json::from_value(json!([{"name": "count", "value": "5"}])).unwrap();
        let args = Args::merge(&declared, &supplied);
        assert_eq!(
            args.int(Some(&IntOrStr::Str("{{args.count}}".into()))),
            Resolved::Known(5)
        );
        assert_eq!(
            args.int(Some(&IntOrStr::Str("{{ args.count }}".into()))),
            Resolved::Known(5)
        );
        assert_eq!(
            args.int(Some(&IntOrStr::Str("{{args.hash}}".into()))),
            Resolved::Unknown
        );
        assert_eq!(
            args.int(Some(&IntOrStr::Str("{{args.svc}}".into()))),
            Resolved::Unknown
        );
        assert_eq!(
            args.int(Some(&IntOrStr::Str("{{args.nope}}".into()))),
            Resolved::Unknown
        );
        assert_eq!(
            args.int(Some(&IntOrStr::Str("three".into()))),
            Resolved::Invalid("three".into())
        );
        assert_eq!(args.get("svc"), Some(&ArgValue::Missing));
        // As Argo's MergeArgs: a Rollout argument with neither value nor valueFrom leaves the
        // default, one no template declares is not an argument of the run, and valueFrom
        // replaces a default with a value known only at run time.
        let supplied: Vec<Arg> = serde_json::from_value(json!([
            {"name": "count"},
            {"name": "undeclared", "value": "1"},
            {"name": "svc", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ]))
        .unwrap();
        let merged = Args::merge(&declared, &supplied);
        assert_eq!(merged.get("count"), Some(&ArgValue::Known("3")));
        assert_eq!(merged.get("undeclared"), None);
        assert_eq!(merged.get("svc"), Some(&ArgValue::Runtime));
        assert_eq!(
            args.substitute("{{workflow.x}} {{args.count}}").unwrap(),
            "{{workflow.x}} 5"
        );
    }

    #[test]
    fn finds_placeholders() {
        let names: Vec<_> = placeholders("a {{args.x}} {{ args.y }} {{other}} {{args.z").collect();
        assert_eq!(names, ["x", "y"]);
    }

    #[test]
    fn finds_rollouts_referencing_a_template_through_nesting() {
        let mut store = MemoryStore::new();
        store.insert_template(template("outer", &[("inner", false)]));
        store.insert_template(template("inner", &[]));
        let r: Rollout = serde_json::from_value(json!({
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {"strategy": {"canary": {"analysis": {"templates": [{"templateName": "outer"}]}}}}
        }))
        .unwrap();
        store.insert_rollout(r);
        assert_eq!(
            store
                .rollouts_referencing(Kind::AnalysisTemplate, "ns", "inner")
                .len(),
            1
        );
        assert!(
            store
                .rollouts_referencing(Kind::AnalysisTemplate, "other", "inner")
                .is_empty()
        );
        assert!(
            store
                .rollouts_referencing(Kind::ClusterAnalysisTemplate, "", "inner")
                .is_empty()
        );
    }
}
