//! `rollout-guard check`: the offline front end of the rule engine. Loads manifests, resolves
//! templates among them (plus `--templates`), runs the same rules as the webhook and reports
//! as text, JSON or SARIF.
//!
//! Exit codes: 0 nothing at or above `--fail-on`; 1 findings at or above it; 2 input or usage
//! errors (a document that does not parse, a file that cannot be read). Input errors win:
//! a partial check is not a pass.

use std::collections::{HashMap, HashSet};
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

/// Where each file read is ([`crate::input::place`]), by the name it is reported under, so
/// that `./deploy/a.yaml` and `deploy/a.yaml` are one file in one directory.
struct Places(HashMap<String, PathBuf>);

impl Places {
    fn file<'a>(&'a self, loc: &'a Location) -> &'a Path {
        self.0
            .get(&loc.file)
            .map_or(Path::new(&loc.file), PathBuf::as_path)
    }

    fn dir<'a>(&'a self, loc: &'a Location) -> &'a Path {
        self.file(loc).parent().unwrap_or(Path::new(""))
    }
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
fn nearest_read<'l>(at: &[&'l Location], from: &Location, places: &Places) -> Option<&'l Location> {
    let last = |keep: &dyn Fn(&Location) -> bool| at.iter().rev().find(|l| keep(l)).copied();
    last(&|l| places.file(l) == places.file(from))
        .or_else(|| last(&|l| places.dir(l) == places.dir(from)))
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
pub fn check_loaded(mut inputs: Loaded, mut templates: Loaded, cfg: &Config) -> CheckReport {
    // A file read both as an input and under `--templates` (`check deploy/ --templates
    // deploy/`) counts once, as the input: its templates would otherwise be defined twice,
    // and its errors said twice.
    let input_files: HashSet<PathBuf> = inputs.places.values().cloned().collect();
    let mut places = std::mem::take(&mut inputs.places);
    places.extend(std::mem::take(&mut templates.places));
    let places = Places(places);
    let also_input = |file: &str| {
        places
            .0
            .get(file)
            .is_some_and(|place| input_files.contains(place))
    };
    templates.objects.retain(|(loc, _)| !also_input(&loc.file));
    templates
        .errors
        .retain(|e| !also_input(&e.file) && !inputs.errors.contains(e));

    // The other places a file read once was met in (links to it elsewhere).
    let mut aliases = std::mem::take(&mut inputs.aliases);
    aliases.extend(std::mem::take(&mut templates.aliases));
    let mut also_at: HashMap<&str, Vec<&Path>> = HashMap::new();
    for (file, at) in &aliases {
        also_at.entry(file.as_str()).or_default().push(at);
    }

    let mut store = MemoryStore::new();
    // The templates of each file and of each directory, for `Nearest`.
    let mut by_file: HashMap<&Path, MemoryStore> = HashMap::new();
    let mut by_dir: HashMap<&Path, MemoryStore> = HashMap::new();
    // Where each object was read, in reading order (the last is the one the store keeps).
    let mut read_at: HashMap<ObjectRef, Vec<&Location>> = HashMap::new();
    for (loc, obj) in templates.objects.iter().chain(&inputs.objects) {
        match obj {
            Object::Template(t, kind) => {
                let t = Arc::new((**t).clone());
                let insert = |s: &mut MemoryStore| {
                    if *kind == Kind::ClusterAnalysisTemplate {
                        s.insert_cluster_template(Arc::clone(&t));
                    } else {
                        s.insert_template(Arc::clone(&t));
                    }
                };
                insert(&mut store);
                let here = places.file(loc);
                let elsewhere = also_at.get(loc.file.as_str()).into_iter().flatten();
                for file in std::iter::once(&here).chain(elsewhere) {
                    insert(by_file.entry(file).or_default());
                    insert(
                        by_dir
                            .entry(file.parent().unwrap_or(Path::new("")))
                            .or_default(),
                    );
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
            file: by_file.get(places.file(loc)),
            dir: by_dir.get(places.dir(loc)),
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
                    .and_then(|at| nearest_read(at, loc, &places))
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
    let mut inputs = load_named(&args.paths, &args.stdin_name, &args.templates);
    if !args.allow_empty {
        inputs
            .errors
            .extend(nothing_to_check(&inputs, &args.paths, &args.stdin_name));
    }
    // Stdin can be read once: as an input, if it is one.
    let stdin = |p: &PathBuf| p.as_os_str() == "-";
    let stdin_twice = args.paths.iter().any(stdin) && args.templates.iter().any(stdin);
    let template_paths: Vec<PathBuf> = args
        .templates
        .iter()
        .filter(|p| !(stdin_twice && stdin(p)))
        .cloned()
        .collect();
    let templates = load(&template_paths);
    if stdin_twice {
        inputs.errors.push(InputError::on_file(
            "-",
            "`--templates -` not read: stdin is already an input of this run, and it can be \
             read once",
        ));
    }
    let report = check_loaded(inputs, templates, &cfg);
    let code = exit_code(&report, args.fail_on);
    match write_report(&report, args, out) {
        // The reader stopped early (`check ... | head`): the verdict was reached before the
        // first byte was written and stands, or a pipeline would pass on a finding.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code),
        written => written.map(|()| code),
    }
}

fn write_report(
    report: &CheckReport,
    args: &CheckArgs,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match args.output {
        OutputFormat::Text => out.write_all(text(report, args.explain, args.fail_on).as_bytes())?,
        OutputFormat::Json => serde_json::to_writer_pretty(&mut *out, report)?,
        OutputFormat::Sarif => serde_json::to_writer_pretty(&mut *out, &sarif(report))?,
    }
    if args.output != OutputFormat::Text {
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// The input errors for inputs that hold no Kubernetes object: an empty stdin, whatever
/// else the run reads, and every path given when none holds one (an empty directory, a path
/// with only other tools' files). In CI an empty stdin is most often a `helm template` or
/// `kustomize build` that failed in front of the pipe (its exit status is lost without
/// `set -o pipefail`), beside a directory of shared templates that holds objects; passing
/// would hide that. None when other input errors already fail the run. One error per path
/// given (each named as given, stdin by `stdin_name`), so each `file` is one input.
pub fn nothing_to_check(inputs: &Loaded, paths: &[PathBuf], stdin_name: &str) -> Vec<InputError> {
    if !inputs.errors.is_empty() {
        return Vec::new();
    }
    let error = |file: &str, what: String| {
        InputError::on_file(
            file,
            format!("nothing to check: {what}; pass --allow-empty to accept"),
        )
    };
    let mut errors = Vec::new();
    if inputs.stdin_held_objects == Some(false) {
        errors.push(error(
            stdin_name,
            "no Kubernetes object on stdin; an empty stdin is most often a command before the \
             pipe that failed (use `set -o pipefail`)"
                .into(),
        ));
    }
    if inputs.kubernetes_files == 0 {
        let mut named: Vec<String> = Vec::new();
        for path in paths.iter().filter(|p| p.as_os_str() != "-") {
            let name = path.display().to_string();
            if !named.contains(&name) {
                named.push(name);
            }
        }
        errors.extend(named.iter().map(|file| {
            error(
                file,
                format!(
                    "no Kubernetes object here ({} file(s) read in all)",
                    inputs.files
                ),
            )
        }));
    }
    errors
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

/// `value` as text with control characters escaped (`\n`, `\u{1b}`): file names and manifest
/// strings reach the report, and a raw line break in one would start a line of its own,
/// which a CI log reads as its own (GitHub Actions runs `::error ...` lines as commands).
fn printable(value: impl std::fmt::Display) -> String {
    let text = value.to_string();
    if !text.chars().any(char::is_control) {
        return text;
    }
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            '\t' => "\\t".to_owned(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
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
                    let _ = writeln!(s, "{}  {}", printable(&f.object), printable(loc));
                }
                None => {
                    let _ = writeln!(
                        s,
                        "{}  (referenced, not among the inputs)",
                        printable(&f.object)
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "  {:<7} {}  {}{}",
            f.severity.as_str(),
            f.rule.id(),
            printable(&f.path),
            located
                .line
                .map(|l| format!("  (line {l})"))
                .unwrap_or_default()
        );
        let _ = writeln!(s, "          {}", printable(&f.message));
        if explain && !f.explanation.is_empty() {
            for line in wrap(&printable(&f.explanation), 90) {
                let _ = writeln!(s, "          | {line}");
            }
        }
    }
    if !report.errors.is_empty() {
        if !report.findings.is_empty() {
            s.push('\n');
        }
        for e in &report.errors {
            let _ = writeln!(s, "error: {}", printable(e));
        }
    }
    let above = !report.findings.is_empty() || !report.errors.is_empty();
    let notes = &report.summary.same_name;
    if above && !notes.is_empty() {
        s.push('\n');
    }
    for same in notes {
        let places: Vec<String> = same.locations.iter().map(printable).collect();
        let as_found = if same.or_in_default {
            ", as a Rollout naming no namespace finds it,"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "note: {}{as_found} is defined {} times ({}); references resolve to the nearest (same file, then same directory), else the last",
            printable(&same.object),
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
