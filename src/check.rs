//! `rollout-guard check`: the offline front end of the rule engine. Loads manifests, resolves
//! templates among them (plus `--templates`), runs the same rules as the webhook and reports
//! as text, JSON or SARIF.
//!
//! Exit codes: 0 nothing at or above `--fail-on`; 1 findings at or above it; 2 input or usage
//! errors (a document that does not parse, a file that cannot be read). Input errors win:
//! a partial check is not a pass.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use crate::cli::{CheckArgs, OutputFormat};
use crate::finding::{Finding, Rule, Severity};
use crate::input::{InputError, Loaded, Location, Object, load, load_named};
use crate::locate::{field_lines as field_lines_of, line_of};
use crate::model::AnalysisTemplate;
use crate::model::{Kind, ObjectRef};
use crate::rules::{Config, check_rollout, check_template};
use crate::templates::{MemoryStore, TemplateStore};

/// The result of checking a set of inputs.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    #[serde(rename = "argoRolloutsVersion")]
    pub version: String,
    pub findings: Vec<Located>,
    pub errors: Vec<InputError>,
    pub summary: Summary,
}

#[derive(Debug, Serialize)]
pub struct Located {
    #[serde(flatten)]
    pub finding: Finding,
    /// Where the object was read from (absent for objects known only by reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Line of the field (or its closest ancestor) in the file, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub files: usize,
    pub objects: usize,
    #[serde(rename = "otherDocuments")]
    pub other_documents: usize,
    #[serde(rename = "bySeverity")]
    pub by_severity: std::collections::BTreeMap<Severity, usize>,
    /// Templates read more than once under one name: a reference resolves to the nearest
    /// (read in the referrer's own file, then its directory), else to the last read.
    #[serde(rename = "sameName", skip_serializing_if = "Vec::is_empty")]
    pub same_name: Vec<SameName>,
}

/// A template name read from more than one place.
#[derive(Debug, Serialize)]
pub struct SameName {
    /// `Kind/namespace/name`, as the report names objects.
    pub object: String,
    /// The places hold a template that names no namespace and one of the same name in
    /// `default`: a Rollout that names no namespace may find either, depending on where it is
    /// applied (`object` is the one naming none).
    #[serde(rename = "orInDefault", skip_serializing_if = "std::ops::Not::not")]
    pub or_in_default: bool,
    /// Where, in reading order.
    pub locations: Vec<Location>,
}

/// The directory of the file an object was read from.
fn dir_of(loc: &Location) -> &Path {
    Path::new(&loc.file).parent().unwrap_or(Path::new(""))
}

/// The templates one input sees, nearest first: those read in its own file, then in its
/// directory, then anywhere; in each, the last of a name read. A Rollout that names no
/// namespace may mean a template in `default` (kubectl's) or one that names none, both
/// guesses, so the nearest of either wins; for a named namespace, a template there comes
/// before one that names none, however far.
struct Nearest<'a> {
    file: Option<&'a MemoryStore>,
    dir: Option<&'a MemoryStore>,
    all: &'a MemoryStore,
}

impl Nearest<'_> {
    fn layers(&self) -> impl Iterator<Item = &MemoryStore> {
        self.file.into_iter().chain(self.dir).chain([self.all])
    }
}

/// Of the places an object was read (in reading order), the one `Nearest` takes for an input
/// read at `from`: the last in its file, else in its directory, else anywhere.
fn nearest_read<'l>(at: &[&'l Location], from: &Location) -> Option<&'l Location> {
    let last = |keep: &dyn Fn(&Location) -> bool| at.iter().rev().find(|l| keep(l)).copied();
    last(&|l| l.file == from.file)
        .or_else(|| last(&|l| dir_of(l) == dir_of(from)))
        .or_else(|| at.last().copied())
}

impl TemplateStore for Nearest<'_> {
    fn analysis_template(&self, namespace: &str, name: &str) -> Option<Arc<AnalysisTemplate>> {
        if namespace.is_empty() {
            return self.layers().find_map(|l| {
                l.template_in("default", name)
                    .or_else(|| l.template_in("", name))
            });
        }
        self.layers()
            .find_map(|l| l.template_in(namespace, name))
            .or_else(|| self.layers().find_map(|l| l.template_in("", name)))
    }

    fn cluster_analysis_template(&self, name: &str) -> Option<Arc<AnalysisTemplate>> {
        self.layers()
            .find_map(|l| l.cluster_analysis_template(name))
    }
}

fn object_ref(obj: &Object) -> ObjectRef {
    match obj {
        Object::Rollout(r) => ObjectRef::new(Kind::Rollout, &r.metadata),
        Object::Template(t, k) => ObjectRef::new(*k, &t.metadata),
    }
}

/// Checks already-loaded inputs. `templates` are extra objects used only for resolution.
///
/// Each object is checked where it was read, so two objects of the same kind, namespace and
/// name in different files (a kustomize base and its overlay, two demos) are reported apart.
/// A reference resolves to the nearest template of its name (`Nearest`), else to the last one
/// read; the report lists the templates that share a name.
pub fn check_loaded(inputs: Loaded, templates: Loaded, cfg: &Config) -> CheckReport {
    let mut store = MemoryStore::new();
    // The templates of each file and of each directory, for `Nearest`.
    let mut by_file: HashMap<&str, MemoryStore> = HashMap::new();
    let mut by_dir: HashMap<&Path, MemoryStore> = HashMap::new();
    // Where each object was read, in reading order (the last is the one the store keeps).
    let mut read_at: HashMap<ObjectRef, Vec<&Location>> = HashMap::new();
    for (loc, obj) in templates.objects.iter().chain(&inputs.objects) {
        match obj {
            Object::Template(t, kind) => {
                let t = Arc::new((**t).clone());
                let stores = [
                    &mut store,
                    by_file.entry(loc.file.as_str()).or_default(),
                    by_dir.entry(dir_of(loc)).or_default(),
                ];
                for s in stores {
                    if *kind == Kind::ClusterAnalysisTemplate {
                        s.insert_cluster_template(Arc::clone(&t));
                    } else {
                        s.insert_template(Arc::clone(&t));
                    }
                }
            }
            Object::Rollout(r) => store.insert_rollout((**r).clone()),
        }
        read_at.entry(object_ref(obj)).or_default().push(loc);
    }
    let mut located: Vec<(Option<Location>, Finding)> = Vec::new();
    for (loc, obj) in &inputs.objects {
        let own = object_ref(obj);
        let nearest = Nearest {
            file: by_file.get(loc.file.as_str()),
            dir: by_dir.get(dir_of(loc)),
            all: &store,
        };
        let found = match obj {
            Object::Rollout(r) => check_rollout(r, &nearest, cfg).findings,
            Object::Template(t, k) => check_template(t, *k, &nearest, cfg),
        };
        // A finding on the object checked is where it was read; one on a template it
        // references is where the template it resolved to was read, found the way `Nearest`
        // found it.
        located.extend(found.into_iter().map(|f| {
            let at = if f.object == own {
                Some(loc.clone())
            } else {
                read_at
                    .get(&f.object)
                    .and_then(|at| nearest_read(at, loc))
                    .cloned()
            };
            (at, f)
        }));
    }
    // Sorted as `normalize` sorts, then by place; exact repeats at one place dropped (a
    // template checked on its own and again through each Rollout that uses it).
    located.sort_by(|(a, f), (b, g)| (f.order_key(), a).cmp(&(g.order_key(), b)));
    located.dedup_by(|(a, f), (b, g)| a == b && f.repeats(g));
    let mut same_name: Vec<SameName> = read_at
        .iter()
        .filter(|(object, at)| object.kind != Kind::Rollout && at.len() > 1)
        .map(|(object, at)| SameName {
            object: object.to_string(),
            or_in_default: false,
            locations: at.iter().map(|&l| l.clone()).collect(),
        })
        .collect();
    // A Rollout that names no namespace may mean a template in `default` or one that names
    // none: when the input has both, which depends on where it is applied (`kubectl apply
    // -n`). `Nearest` takes the nearer; the report lists both.
    for (object, at) in &read_at {
        if object.kind != Kind::AnalysisTemplate || object.namespace.is_some() {
            continue;
        }
        let in_default = ObjectRef {
            namespace: Some("default".into()),
            ..object.clone()
        };
        if let Some(default_at) = read_at.get(&in_default) {
            same_name.push(SameName {
                object: object.to_string(),
                or_in_default: true,
                locations: at.iter().chain(default_at).map(|&l| l.clone()).collect(),
            });
        }
    }
    same_name.sort_by(|a, b| (&a.object, a.or_in_default).cmp(&(&b.object, b.or_in_default)));
    let mut summary = Summary {
        files: inputs.files,
        objects: inputs.objects.len(),
        other_documents: inputs.other_documents,
        same_name,
        ..Summary::default()
    };
    for (_, f) in &located {
        *summary.by_severity.entry(f.severity).or_default() += 1;
    }
    let mut texts = inputs.texts;
    texts.extend(templates.texts);
    let mut field_lines: HashMap<(String, usize), HashMap<String, usize>> = HashMap::new();
    let findings = located
        .into_iter()
        .map(|(location, finding)| {
            let line = location.as_ref().and_then(|loc| {
                let key = (loc.file.clone(), loc.document);
                let text = texts.get(&key)?;
                let lines = field_lines
                    .entry(key)
                    .or_insert_with(|| field_lines_of(text));
                let path = match loc.item {
                    Some(i) => format!("items[{i}].{}", finding.path),
                    None => finding.path.clone(),
                };
                line_of(lines, &path).map(|l| loc.line + l - 1)
            });
            Located {
                finding,
                location,
                line,
            }
        })
        .collect();
    let mut errors = inputs.errors;
    errors.extend(templates.errors);
    CheckReport {
        version: cfg.version.to_string(),
        findings,
        errors,
        summary,
    }
}

/// Runs `check` and returns the process exit code.
pub fn run(args: &CheckArgs, out: &mut dyn Write) -> std::io::Result<u8> {
    let cfg = Config {
        version: args.argo_rollouts_version,
        explain: true,
    };
    let mut inputs = load_named(&args.paths, &args.stdin_name);
    if !args.allow_empty {
        inputs
            .errors
            .extend(nothing_to_check(&inputs, &args.paths, &args.stdin_name));
    }
    let templates = load(&args.templates);
    let report = check_loaded(inputs, templates, &cfg);
    match args.output {
        OutputFormat::Text => {
            out.write_all(text(&report, args.explain, args.fail_on).as_bytes())?
        }
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            out.write_all(b"\n")?;
        }
        OutputFormat::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif(&report))?;
            out.write_all(b"\n")?;
        }
    }
    Ok(exit_code(&report, args.fail_on))
}

/// The input errors for a run whose inputs hold no Kubernetes object and no other error: an
/// empty directory, a path with only other tools' files, or an empty stdin, which in CI is
/// most often a `helm template` or `kustomize build` that failed in front of the pipe (its
/// exit status is lost without `set -o pipefail`). Passing would hide that. One error per
/// path given (each named as given, stdin by `stdin_name`), so each `file` is one input.
pub fn nothing_to_check(inputs: &Loaded, paths: &[PathBuf], stdin_name: &str) -> Vec<InputError> {
    if inputs.kubernetes_files > 0 || !inputs.errors.is_empty() {
        return Vec::new();
    }
    let mut named: Vec<(String, bool)> = Vec::new();
    for path in paths {
        let entry = match path.to_str() {
            Some("-") => (stdin_name.to_owned(), true),
            _ => (path.display().to_string(), false),
        };
        if !named.contains(&entry) {
            named.push(entry);
        }
    }
    named
        .into_iter()
        .map(|(file, stdin)| {
            let what = if stdin {
                "no Kubernetes object on stdin; an empty stdin is most often a command before the \
                 pipe that failed (use `set -o pipefail`)"
                    .to_owned()
            } else {
                format!(
                    "no Kubernetes object here ({} file(s) read in all)",
                    inputs.files
                )
            };
            InputError {
                file,
                document: None,
                item: None,
                line: None,
                column: None,
                message: format!("nothing to check: {what}; pass --allow-empty to accept"),
            }
        })
        .collect()
}

pub fn exit_code(report: &CheckReport, fail_on: Severity) -> u8 {
    if !report.errors.is_empty() {
        2
    } else if report
        .findings
        .iter()
        .any(|f| f.finding.severity >= fail_on)
    {
        1
    } else {
        0
    }
}

/// The human report: findings grouped by object, then input errors, then a summary line.
pub fn text(report: &CheckReport, explain: bool, fail_on: Severity) -> String {
    let mut s = String::new();
    // One group per object and place, in the order of each group's most severe finding (the
    // report is sorted by severity first), so an object is never split around another.
    let mut groups: Vec<Vec<&Located>> = Vec::new();
    let mut group_of = HashMap::new();
    for located in &report.findings {
        let key = (&located.finding.object, &located.location);
        let index = *group_of.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[index].push(located);
    }
    let mut current: Option<(&ObjectRef, &Option<Location>)> = None;
    for located in groups.into_iter().flatten() {
        let f = &located.finding;
        if current != Some((&f.object, &located.location)) {
            if current.is_some() {
                s.push('\n');
            }
            current = Some((&f.object, &located.location));
            match &located.location {
                Some(loc) => {
                    let _ = writeln!(s, "{}  {}", f.object, loc);
                }
                None => {
                    let _ = writeln!(s, "{}  (referenced, not among the inputs)", f.object);
                }
            }
        }
        let _ = writeln!(
            s,
            "  {:<7} {}  {}{}",
            f.severity.as_str(),
            f.rule.id(),
            f.path,
            located
                .line
                .map(|l| format!("  (line {l})"))
                .unwrap_or_default()
        );
        let _ = writeln!(s, "          {}", f.message);
        if explain && !f.explanation.is_empty() {
            for line in wrap(&f.explanation, 90) {
                let _ = writeln!(s, "          | {line}");
            }
        }
    }
    if !report.errors.is_empty() {
        if !report.findings.is_empty() {
            s.push('\n');
        }
        for e in &report.errors {
            let _ = writeln!(s, "error: {e}");
        }
    }
    let above = !report.findings.is_empty() || !report.errors.is_empty();
    let notes = &report.summary.same_name;
    if above && !notes.is_empty() {
        s.push('\n');
    }
    for same in notes {
        let places: Vec<String> = same.locations.iter().map(ToString::to_string).collect();
        let as_found = if same.or_in_default {
            ", as a Rollout naming no namespace finds it,"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "note: {}{as_found} is defined {} times ({}); references resolve to the nearest (same file, then same directory), else the last",
            same.object,
            places.len(),
            places.join(", ")
        );
    }
    if above || !notes.is_empty() {
        s.push('\n');
    }
    let counts: Vec<String> = report
        .summary
        .by_severity
        .iter()
        .rev()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = write!(
        s,
        "checked {} Argo object(s) in {} file(s) for Argo Rollouts {}: ",
        report.summary.objects, report.summary.files, report.version
    );
    if counts.is_empty() {
        s.push_str("no findings");
    } else {
        // Severity first ("error 4"): "4 error" would read as four input errors.
        let _ = write!(
            s,
            "{} finding(s) ({})",
            report.findings.len(),
            counts.join(", ")
        );
    }
    if !report.errors.is_empty() {
        let _ = write!(s, "; {} input error(s)", report.errors.len());
    }
    let failing = report
        .findings
        .iter()
        .filter(|f| f.finding.severity >= fail_on)
        .count();
    if failing > 0 {
        let _ = write!(s, "; {failing} at or above {fail_on}");
    }
    s.push('\n');
    if !explain
        && report
            .findings
            .iter()
            .any(|f| f.finding.severity >= Severity::Medium)
    {
        s.push_str("run with --explain for why each finding matters and how to fix it\n");
    }
    s
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Info => "note",
        Severity::Warning => "warning",
        _ => "error",
    }
}

/// A file as a SARIF `uri`, which must be a URI reference: a path as given on the command
/// line stays relative (without `./`, as code-scanning tools match it against the
/// repository), an absolute one becomes a `file://` URI, and anything outside the unreserved
/// characters and `/` is percent-encoded (`my dir/b 100%.yaml` is `my%20dir/b%20100%25.yaml`).
fn sarif_uri(file: &str) -> String {
    let mut path = file;
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    let mut uri = String::with_capacity(path.len() + 8);
    if path.starts_with('/') {
        uri.push_str("file://");
    }
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            let _ = write!(uri, "%{byte:02X}");
        }
    }
    uri
}

/// SARIF 2.1.0 for code-scanning annotations. Locations point at the document's first line;
/// the field path travels as the logical location.
pub fn sarif(report: &CheckReport) -> serde_json::Value {
    let rules: Vec<_> = Rule::ALL
        .iter()
        .map(|r| json!({"id": r.id(), "shortDescription": {"text": r.summary()}}))
        .collect();
    let results: Vec<_> = report
        .findings
        .iter()
        .map(|l| {
            let f = &l.finding;
            let mut result = json!({
                "ruleId": f.rule.id(),
                "ruleIndex": Rule::ALL.iter().position(|r| *r == f.rule),
                "level": sarif_level(f.severity),
                "message": {"text": f.message},
                "properties": {"severity": f.severity, "explanation": f.explanation},
            });
            let logical = json!([{"fullyQualifiedName": format!("{}.{}", f.object, f.path), "kind": "member"}]);
            let location = match &l.location {
                Some(loc) => json!({
                    "physicalLocation": {"artifactLocation": {"uri": sarif_uri(&loc.file)}, "region": {"startLine": l.line.unwrap_or(loc.line)}},
                    "logicalLocations": logical,
                }),
                None => json!({"logicalLocations": logical}),
            };
            result["locations"] = json!([location]);
            result
        })
        .collect();
    let notifications: Vec<_> = report
        .errors
        .iter()
        .map(|e| {
            let mut n = json!({"level": "error", "message": {"text": e.to_string()}});
            if let Some(line) = e.line {
                n["locations"] = json!([{"physicalLocation": {"artifactLocation": {"uri": sarif_uri(&e.file)}, "region": {"startLine": line}}}]);
            }
            n
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "rollout-guard",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::sarif_uri;

    #[test]
    fn sarif_uris_are_uri_references() {
        assert_eq!(
            sarif_uri("./my dir/b 100%.yaml"),
            "my%20dir/b%20100%25.yaml"
        );
        assert_eq!(sarif_uri("deploy/rollout.yaml"), "deploy/rollout.yaml");
        assert_eq!(sarif_uri("/tmp/x/r.yaml"), "file:///tmp/x/r.yaml");
        assert_eq!(sarif_uri("-"), "-");
        assert_eq!(sarif_uri("ünï.yaml"), "%C3%BCn%C3%AF.yaml");
    }
}
