//! Reading manifests from files, directories and stdin: multi-document YAML, JSON and
//! Kubernetes `List` objects, each document located by file, index and line. A document that
//! does not parse becomes an [`InputError`]; the others are still read.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::model::{AnalysisTemplate, Kind, Rollout};

/// Where a document came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Location {
    /// The file as given (`-` for stdin).
    pub file: String,
    /// 1-based document number in the file; List items add `item` (0-based).
    pub document: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    /// 1-based line where the document starts.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} (document {}", self.file, self.line, self.document)?;
        if let Some(i) = self.item {
            write!(f, ", items[{i}]")?;
        }
        f.write_str(")")
    }
}

/// A document or file that could not be read, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputError {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// The item of a Kubernetes `List` (0-based), for an item that is not an object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
}

impl InputError {
    /// An error on a whole input (a file, stdin, a path given), at no document or line.
    pub fn on_file(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            document: None,
            item: None,
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if let Some(d) = self.document {
            write!(f, ": document {d}")?;
        }
        if let Some(i) = self.item {
            write!(f, ", items[{i}]")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// An Argo object read from a document.
#[derive(Debug, Clone)]
pub enum Object {
    Rollout(Box<Rollout>),
    Template(Box<AnalysisTemplate>, Kind),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Self::Rollout(_) => Kind::Rollout,
            Self::Template(_, k) => *k,
        }
    }
}

/// Everything read from the inputs.
#[derive(Debug, Default)]
pub struct Loaded {
    pub objects: Vec<(Location, Object)>,
    pub errors: Vec<InputError>,
    pub files: usize,
    /// Files (stdin counts as one) with at least one Kubernetes object, Argo's or another's.
    pub kubernetes_files: usize,
    /// Documents of other kinds (Services, Deployments, ...), skipped.
    pub other_documents: usize,
    /// Namespaces (counted among `other_documents` too) with their `rollout-guard.io/`
    /// annotations: the server reads the mode and guards they set.
    pub namespaces: Vec<(String, crate::catalog::NamespaceAnnotations)>,
    /// YAML text of each document that held an Argo object, by (file, document), so field
    /// paths can be turned into lines later.
    pub texts: HashMap<(String, usize), Arc<str>>,
    /// Where each file read is, by the name it is reported under ([`place`]): the
    /// nearest-first template lookup compares these, not the names, so `./deploy/a.yaml`, an
    /// absolute path and `deploy/a.yaml` are one file in one directory.
    pub places: HashMap<String, PathBuf>,
    /// Files read once but met again in another place (a link to one), by the name the file
    /// is reported under and that other place: its templates count in both directories.
    pub aliases: Vec<(String, PathBuf)>,
    /// Whether stdin held a Kubernetes object; `None` when stdin was not read.
    pub stdin_held_objects: Option<bool>,
    /// The file being read.
    current: CurrentFile,
}

/// What `load_text` learns of a file while reading it.
#[derive(Debug, Default)]
struct CurrentFile {
    /// Whether a document has a `kind` or an `apiVersion` with an API group, or is a list
    /// of such: the file holds Kubernetes objects.
    kubernetes: bool,
    /// The errors (indices into `Loaded::errors`) for documents without either.
    shapeless: Vec<usize>,
    /// Errors (indices into `Loaded::errors`) on a field, with its path, to be given the
    /// field's own line once the document's text is at hand.
    fields: Vec<(usize, String)>,
}

/// Reads every path: files, directories (recursively, `.yaml`/`.yml`/`.json`, in name order)
/// or `-` for stdin.
pub fn load(paths: &[PathBuf]) -> Loaded {
    load_named(paths, "-", &[])
}

/// [`load`], reporting what stdin holds under `stdin_name` (the file it was rendered from).
/// A `stdin_name` that is also the name of a file read in the same run (in `paths`, or in
/// `also_read`, the run's other inputs such as `--templates`) is refused with an error on
/// stdin (the file is still read): findings, lines and the nearest-first template lookup
/// could not tell the two apart.
pub fn load_named(paths: &[PathBuf], stdin_name: &str, also_read: &[PathBuf]) -> Loaded {
    let mut loaded = Loaded::default();
    let sources = sources(paths);
    let stdin_place = place(Path::new(stdin_name));
    let named = |sources: &[Source]| {
        sources
            .iter()
            .any(|s| matches!(s, Source::File(f) if place(f) == stdin_place))
    };
    let clash = stdin_name != "-" && (named(&sources) || named(&self::sources(also_read)));
    for source in sources {
        match source {
            Source::Stdin if clash => loaded.errors.push(InputError::on_file(
                stdin_name,
                format!(
                    "stdin not read: `--stdin-name {stdin_name}` names a file this run also \
                     reads, so findings on the two could not be told apart; give stdin \
                     another name"
                ),
            )),
            Source::Stdin => {
                let mut text = String::new();
                match std::io::stdin().read_to_string(&mut text) {
                    Ok(_) => {
                        let before = loaded.kubernetes_files;
                        load_text(stdin_name, &text, false, &mut loaded);
                        loaded.stdin_held_objects = Some(loaded.kubernetes_files > before);
                        loaded
                            .places
                            .insert(stdin_name.to_owned(), place(Path::new(stdin_name)));
                    }
                    Err(e) => loaded.errors.push(InputError::on_file(
                        stdin_name,
                        format!("cannot read stdin: {e}"),
                    )),
                }
            }
            Source::File(path) => load_file(&path, &mut loaded),
            Source::Alias { first, also } => {
                loaded.aliases.push((file_name(&first), place(&also)));
            }
            Source::Unreadable(error) => loaded.errors.push(error),
        }
    }
    loaded
}

/// One input of a run, in reading order.
enum Source {
    Stdin,
    File(PathBuf),
    /// A file already read (`first`), met again in another place (`also`: a link to it).
    Alias {
        first: PathBuf,
        also: PathBuf,
    },
    /// A directory entry that could not be read, reported where the walk met it.
    Unreadable(InputError),
}

/// The files met so far: each read once, however often and wherever it is met.
#[derive(Default)]
struct Seen {
    /// By the file itself (links resolved): the path it was first read by.
    files: HashMap<PathBuf, PathBuf>,
    /// The places it was met in ([`place`]).
    places: std::collections::HashSet<PathBuf>,
}

impl Seen {
    /// The source `path` is: a file to read the first time, an alias when met again in
    /// another place (a link elsewhere to it), nothing when met again in the same place
    /// (`x` and `./x`, a directory and a file in it).
    fn source(&mut self, path: &Path) -> Option<Source> {
        let file = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        let new_place = self.places.insert(place(path));
        match self.files.get(&file) {
            None => {
                self.files.insert(file, path.to_owned());
                Some(Source::File(path.to_owned()))
            }
            Some(first) => new_place.then(|| Source::Alias {
                first: first.clone(),
                also: path.to_owned(),
            }),
        }
    }
}

/// What `paths` name, in order: stdin for `-`, each file once, and the manifests in each
/// directory (recursively, `.yaml`/`.yml`/`.json`, in name order), and an error for each
/// directory entry that could not be read, before that directory's files.
fn sources(paths: &[PathBuf]) -> Vec<Source> {
    let mut sources = Vec::new();
    // Each file once, however often the arguments name it (a directory and a file in it, or
    // the same directory twice, a link to it): read twice, its objects would be reported
    // twice. A link in another directory is an alias: the template lookup counts the file
    // in that directory too.
    let mut seen = Seen::default();
    let mut stdin_named = false;
    for path in paths {
        if path.as_os_str() == "-" {
            // Once, like a file: a second read finds the stream already consumed.
            if !std::mem::replace(&mut stdin_named, true) {
                sources.push(Source::Stdin);
            }
            continue;
        }
        if path.is_dir() {
            let mut files: Vec<PathBuf> = walkdir::WalkDir::new(path)
                .follow_links(true)
                .into_iter()
                .filter_map(|e| match e {
                    Ok(e) => Some(e),
                    // A broken link or unreadable file that would not be read anyway (a
                    // README, a dangling editor lock file) is no reason to fail the run, nor
                    // is a link back to a directory above (each file is read once anyway). A
                    // directory that cannot be read is: the manifests in it would be lost.
                    Err(err) if err.loop_ancestor().is_some() => None,
                    Err(err) if err.path().is_some_and(|p| !may_hold_manifests(p)) => None,
                    Err(err) => {
                        let p = err
                            .path()
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|| path.display().to_string());
                        sources.push(Source::Unreadable(InputError::on_file(
                            &p,
                            format!("cannot read directory entry: {err}"),
                        )));
                        None
                    }
                })
                .filter(|e| e.file_type().is_file() && is_manifest(e.path()))
                .map(|e| e.into_path())
                .collect();
            files.sort();
            sources.extend(files.iter().filter_map(|f| seen.source(f)));
        } else {
            sources.extend(seen.source(path));
        }
    }
    sources
}

/// Whether a directory entry the walk could not read may hold manifests: a manifest file, a
/// directory, or an entry that cannot even be looked at (in a directory that can be listed
/// but not entered). A dangling link or an unreadable file of another name cannot.
fn may_hold_manifests(path: &Path) -> bool {
    if is_manifest(path) {
        return true;
    }
    match std::fs::symlink_metadata(path) {
        Err(_) => true,
        Ok(meta) if meta.is_dir() => true,
        Ok(meta) if meta.file_type().is_symlink() => path.is_dir(),
        Ok(_) => false,
    }
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// The name a file's objects and errors are reported under: the path as given.
fn file_name(path: &Path) -> String {
    path.display().to_string()
}

/// Where a file is: the directory it was found in, as the system names it (`./`, `..` and
/// the directory's links resolved), and its own name. A link to a file elsewhere stays in the
/// directory it was found in, as the nearest-first template lookup promises. A name whose
/// directory does not exist (a `--stdin-name` of no file on disk) is taken as written, made
/// absolute with `.` and `..` resolved.
pub fn place(path: &Path) -> PathBuf {
    let absolute = std::env::current_dir().unwrap_or_default().join(path);
    // The directory the system opens: `top/..` through a link `top` is the link target's
    // parent, not this directory.
    if let (Some(dir), Some(name)) = (absolute.parent(), absolute.file_name())
        && let Ok(dir) = dir.canonicalize()
    {
        return dir.join(name);
    }
    let mut written = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                written.pop();
            }
            other => written.push(other),
        }
    }
    written
}

fn load_file(path: &Path, loaded: &mut Loaded) {
    let name = file_name(path);
    loaded.places.insert(name.clone(), place(path));
    match std::fs::read(path) {
        Err(e) => loaded
            .errors
            .push(InputError::on_file(&name, format!("cannot read file: {e}"))),
        Ok(bytes) => match String::from_utf8(bytes) {
            Err(_) => loaded
                .errors
                .push(InputError::on_file(&name, "file is not UTF-8 text")),
            Ok(text) => {
                let json = path.extension().and_then(|e| e.to_str()) == Some("json");
                load_text(&name, &text, json, loaded);
            }
        },
    }
}

/// Reads one file's text (public for tests and for callers that already hold the text).
///
/// A file none of whose documents has a `kind` or an `apiVersion` naming an API group (a
/// `values.yaml`, a CI workflow, a `package.json`, a Helm `Chart.yaml`) is another tool's: its documents are counted as other
/// documents, not errors. Beside Kubernetes objects such a document is an input error: most
/// often the rest of a manifest that a `...` line cut short.
pub fn load_text(file: &str, text: &str, json: bool, loaded: &mut Loaded) {
    loaded.current = CurrentFile::default();
    read_text(file, text, json, loaded);
    let current = std::mem::take(&mut loaded.current);
    if current.kubernetes {
        loaded.kubernetes_files += 1;
    }
    if !current.kubernetes && !current.shapeless.is_empty() {
        // One pass (indices ascend): removing one at a time would be quadratic.
        let mut skipped = current.shapeless.iter().peekable();
        let mut i = 0;
        loaded.errors.retain(|_| {
            let keep = skipped.next_if_eq(&&i).is_none();
            i += 1;
            keep
        });
        loaded.other_documents += current.shapeless.len();
    }
}

fn read_text(file: &str, text: &str, json: bool, loaded: &mut Loaded) {
    loaded.files += 1;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // An empty file holds no document, as an empty YAML file does.
    if text.trim().is_empty() {
        return;
    }
    // A `.json` file, or YAML text that is JSON (read once; YAML then reads what is not).
    if json || text.trim_start().starts_with('{') {
        match strict_json(text) {
            Ok(v) => return add_document(file, 1, 1, v, text, loaded),
            // A repeated key in another tool's file (a chart's `values.schema.json`) is its
            // business: the file is read as serde_json reads it, and skipped as another's.
            Err(e)
                if e.to_string().starts_with(DUPLICATE_KEY)
                    && let Ok(v) = serde_json::from_str::<Value>(text)
                    && v.get("kind").is_none_or(Value::is_null)
                    && !v
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .is_some_and(|a| a.contains('/')) =>
            {
                return add_document(file, 1, 1, v, text, loaded);
            }
            // Objects one after another (`jq '.items[]'`), which kubectl reads too.
            Err(_)
                if text.trim_start().starts_with('{') && read_json_stream(file, text, loaded) =>
            {
                return;
            }
            Err(e) if json => {
                unparsed(text, loaded);
                return loaded.errors.push(InputError {
                    file: file.to_owned(),
                    document: Some(1),
                    item: None,
                    line: Some(e.line()),
                    column: Some(e.column()),
                    message: format!("invalid JSON: {e}{}", unrendered_hint(text)),
                });
            }
            Err(_) => {}
        }
    }
    // Files joined with `cat` carry each one's byte order mark at the start of a line, where
    // YAML allows none; removing them keeps every line where it was.
    let text: Cow<'_, str> = if text.contains('\u{feff}') {
        text.split_inclusive('\n')
            .map(|line| line.strip_prefix('\u{feff}').unwrap_or(line))
            .collect::<String>()
            .into()
    } else {
        text.into()
    };
    for (index, (start_line, chunk)) in split_documents(&text).into_iter().enumerate() {
        let document = index + 1;
        if let Some(line) = too_deep(chunk) {
            unparsed(chunk, loaded);
            loaded.errors.push(InputError {
                file: file.to_owned(),
                document: Some(document),
                item: None,
                line: Some(start_line + line - 1),
                column: None,
                message: format!(
                    "invalid YAML: brackets nested deeper than {YAML_DEPTH} levels (YAML reads \
                     at most 128; not read)"
                ),
            });
            continue;
        }
        match yaml_document(chunk) {
            Ok(Value::Null) => {}
            Ok(v) => add_document(file, document, start_line, v, chunk, loaded),
            Err(e) => {
                let (line, column) = e
                    .location()
                    .map(|l| (Some(start_line + l.line() - 1), Some(l.column())))
                    .unwrap_or((Some(start_line), None));
                unparsed(chunk, loaded);
                loaded.errors.push(InputError {
                    file: file.to_owned(),
                    document: Some(document),
                    item: None,
                    line,
                    column,
                    message: format!(
                        "invalid YAML: {}{}",
                        strip_location(&e.to_string()),
                        unrendered_hint(chunk)
                    ),
                });
            }
        }
    }
}

/// Adds one parsed document: its objects, its errors (those on `List` items at the item's own
/// line), and its text for field lines when it held an object (the locator reads JSON as YAML).
fn add_document(
    file: &str,
    document: usize,
    start_line: usize,
    value: Value,
    text: &str,
    loaded: &mut Loaded,
) {
    let (objects, errors) = (loaded.objects.len(), loaded.errors.len());
    add_value(file, document, start_line, value, loaded);
    let fields = std::mem::take(&mut loaded.current.fields);
    locate_items(&mut loaded.errors[errors..], text, start_line);
    locate_fields(&mut loaded.errors, &fields, text, start_line);
    if loaded.objects.len() > objects {
        loaded
            .texts
            .insert((file.to_owned(), document), Arc::from(text));
    }
}

/// Errors on a field (a value of the wrong type) point at the field's own line, not the
/// document's first (nor the List item's).
fn locate_fields(errors: &mut [InputError], fields: &[(usize, String)], text: &str, start: usize) {
    if fields.is_empty() {
        return;
    }
    let lines = crate::locate::field_lines(text);
    for (index, path) in fields {
        let error = &mut errors[*index];
        let path = match error.item {
            Some(item) => format!("items[{item}].{path}"),
            None => path.clone(),
        };
        if let Some(line) = crate::locate::line_of(&lines, &path) {
            error.line = Some(start + line - 1);
        }
    }
}

/// Errors on items of a `List` point at the item's own line, not the document's first.
fn locate_items(errors: &mut [InputError], text: &str, start_line: usize) {
    if errors.iter().all(|e| e.item.is_none()) {
        return;
    }
    let lines = crate::locate::field_lines(text);
    for error in errors {
        if let Some(item) = error.item
            && let Some(line) = crate::locate::line_of(&lines, &format!("items[{item}]"))
        {
            error.line = Some(start_line + line - 1);
        }
    }
}

/// A YAML document as JSON, read as kubectl reads it: merge keys (`<<: *defaults`) applied,
/// and a key given twice in one mapping refused (kubectl: "mapping key already defined"),
/// instead of the later one silently winning. A document with keys that are not strings (a
/// Helm template left unrendered) is read as before, for the same error and line: the
/// direct read names the field where a template expression breaks the YAML.
fn yaml_document(chunk: &str) -> Result<Value, serde_yaml::Error> {
    let merged = serde_yaml::from_str::<serde_yaml::Value>(chunk).and_then(|mut yaml| {
        yaml.apply_merge()?;
        Ok(yaml)
    });
    match merged.map(|yaml| serde_json::to_value(&yaml)) {
        Ok(Ok(value)) => Ok(value),
        // Keys that are not strings: the direct read says where.
        Ok(Err(_)) => serde_yaml::from_str::<Value>(chunk),
        // Only the stricter read fails (a duplicate key, a bad merge): its error stands.
        Err(strict) => serde_yaml::from_str::<Value>(chunk).and(Err(strict)),
    }
}

/// Notes a document that does not parse (its error is pushed next): one that names neither a
/// kind nor an API version (nor holds a template expression where a value starts, other than
/// an Argo placeholder) cannot be a Kubernetes object, so in a file of another tool's (a
/// `.vscode/settings.json` with comments, a broken CI workflow, met by `check .` at a
/// repository's root) it is skipped with the file's other documents. One that names either
/// may be a manifest: the file then holds Kubernetes objects, and every error in it stands.
fn unparsed(text: &str, loaded: &mut Loaded) {
    // A template expression too: an unrendered chart's `{{ include ... }}` may be a manifest.
    let names_kind = text.contains("apiVersion")
        || text.contains("kind:")
        || text.contains("\"kind\"")
        || unquoted_expressions(text).any(|after| !argo_placeholder(after));
    if names_kind {
        loaded.current.kubernetes = true;
    } else {
        loaded.current.shapeless.push(loaded.errors.len());
    }
}

/// How deep flow collections may seem to nest before a document is refused unread. YAML
/// (serde_yaml) reads at most 128 levels, but only applies that limit after a parse whose
/// time is quadratic in the depth: 0.43 s at 10,000 levels, 41 s at 100,000. The count below
/// is a heuristic, so it refuses only far past 128, where no valid document can be and
/// misread text would need thousands of unbalanced brackets; below it the parser decides.
const YAML_DEPTH: usize = 2_000;

/// The line (1-based) where a document's flow collections (`[`, `{`) seem to nest deeper
/// than [`YAML_DEPTH`]. Brackets count where a value starts (first on a line, after `key: `,
/// `- `, an anchor or a tag, or inside a collection), not inside quoted scalars, plain text
/// on the same line, comments or block scalars (`key: |` and the lines indented under it).
fn too_deep(chunk: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    // The indentation of the line that opened a block scalar: lines deeper are its text.
    let mut block = BlockScalar::default();
    for (index, line) in chunk.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if block.holds(line, indent) {
            continue;
        }
        let mut value_start = true;
        let mut first_on_line = true;
        let mut previous = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            let spaced = matches!(chars.peek(), None | Some(' ' | '\t' | '\r'));
            match quote {
                Some('"') if c == '\\' => {
                    chars.next();
                }
                Some('\'') if c == '\'' && chars.peek() == Some(&'\'') => {
                    chars.next();
                }
                Some(q) if c == q => {
                    quote = None;
                    value_start = false;
                }
                Some(_) => {}
                None => match c {
                    '#' if previous == ' ' || previous == '\t' => break,
                    ' ' | '\t' | '\r' => {}
                    // An anchor or a tag before a value: the value still starts after it. Not
                    // first on a line, where it may be text continuing a plain scalar.
                    '&' | '!' if value_start && !first_on_line => {
                        while chars.next_if(|c| !matches!(c, ' ' | '\t' | '\r')).is_some() {}
                    }
                    '"' | '\'' if value_start => quote = Some(c),
                    '[' | '{' if value_start => {
                        depth += 1;
                        if depth > YAML_DEPTH {
                            return Some(index + 1);
                        }
                    }
                    ']' | '}' if depth > 0 => {
                        depth -= 1;
                        value_start = false;
                    }
                    ',' if depth > 0 => value_start = true,
                    ':' if depth > 0 || spaced => value_start = true,
                    '-' | '?' if value_start && spaced => {}
                    _ => value_start = false,
                },
            }
            first_on_line &= c.is_whitespace();
            previous = c;
        }
        block.opens(line, indent, quote.is_none() && depth == 0);
    }
    None
}

/// A block scalar followed line by line: a header (`key: |`) opens it, and the blank lines
/// and the lines indented deeper than the header's line are its text.
#[derive(Default)]
struct BlockScalar {
    /// The indentation of the header's line, while one is open.
    opener: Option<usize>,
}

impl BlockScalar {
    /// Whether `line`, indented `indent`, is the open block scalar's text; any other line
    /// closes it.
    fn holds(&mut self, line: &str, indent: usize) -> bool {
        match self.opener {
            Some(opener) if line.trim().is_empty() || indent > opener => true,
            _ => {
                self.opener = None;
                false
            }
        }
    }

    /// After a line that is not block scalar text: opens one if the line ends with a header
    /// and `may_open` (a header inside a quoted scalar or a flow collection is text).
    fn opens(&mut self, line: &str, indent: usize, may_open: bool) {
        if may_open && opens_block_scalar(line) {
            self.opener = Some(indent);
        }
    }
}

/// Whether a line ends with a block scalar's header (`key: |`, `- >-`, `|2+`), its text on the
/// lines below.
fn opens_block_scalar(line: &str) -> bool {
    let header = |token: &str| {
        let mut chars = token.chars();
        matches!(chars.next(), Some('|' | '>'))
            && chars.all(|c| c == '-' || c == '+' || c.is_ascii_digit())
    };
    let tokens: Vec<&str> = line
        .split([' ', '\t', '\r'])
        .filter(|t| !t.is_empty())
        .collect();
    // The last token, or the one before a comment (`key: | # note`). Taking a `|` in text
    // for a header only skips text when counting brackets.
    tokens.last().is_some_and(|t| header(t))
        || tokens
            .windows(2)
            .any(|pair| pair[1].starts_with('#') && header(pair[0]))
}

/// Reads `text` as JSON objects one after another, each a document of its own at its own
/// line, if it is such a stream; an error in one ends the stream there, as in kubectl, with
/// the documents before it read. Returns false (nothing read) when the text is not a whole
/// object followed by the start of another.
fn read_json_stream(file: &str, text: &str, loaded: &mut Loaded) -> bool {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<StrictValue>();
    let Some(Ok(StrictValue(first))) = stream.next() else {
        return false;
    };
    if !text[stream.byte_offset()..].trim_start().starts_with('{') {
        return false;
    }
    let mut next: Option<serde_json::Result<StrictValue>> = Some(Ok(StrictValue(first)));
    // Where the previous object ended, and the line that offset is on.
    let (mut start, mut line) = (0, 1);
    for document in 1.. {
        match next {
            None => break,
            Some(Ok(StrictValue(value))) => {
                let end = stream.byte_offset();
                // From the object's first byte: the line break after the one before is not
                // part of it.
                let slice = text[start..end].trim_start();
                let begin = end - slice.len();
                line += text[start..begin].matches('\n').count();
                add_document(file, document, line, value, slice, loaded);
                line += slice.matches('\n').count();
                start = end;
            }
            Some(Err(e)) => {
                unparsed(&text[start..], loaded);
                loaded.errors.push(InputError {
                    document: Some(document),
                    line: Some(e.line()),
                    column: Some(e.column()),
                    ..InputError::on_file(file, format!("invalid JSON: {e}"))
                });
                break;
            }
        }
        next = stream.next();
    }
    true
}

/// A JSON value read by [`strict_json`]'s rules, for a stream of them.
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::DeserializeSeed;
        strict::Strict.deserialize(d).map(StrictValue)
    }
}

/// How [`strict_json`]'s refusal of a repeated key begins.
const DUPLICATE_KEY: &str = "duplicate key";

/// A JSON document read as serde_json reads it, except that a key given twice in one object
/// is an error, as in YAML (`yaml_document`): the API server's strict field validation
/// (kubectl's default) refuses a duplicate field, where a plain read lets the later one win.
fn strict_json(text: &str) -> serde_json::Result<Value> {
    use serde::de::DeserializeSeed;
    let mut reader = serde_json::Deserializer::from_str(text);
    let value = strict::Strict.deserialize(&mut reader)?;
    reader.end()?;
    Ok(value)
}

mod strict {
    use std::fmt;

    use serde_json::Value;

    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

    pub(super) struct Strict;

    impl<'de> DeserializeSeed<'de> for Strict {
        type Value = Value;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Strict {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(Strict)? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut object = serde_json::Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if object.contains_key(&key) {
                    return Err(de::Error::custom(format_args!(
                        "{} `{key}` in one object",
                        super::DUPLICATE_KEY
                    )));
                }
                let value = map.next_value_seed(Strict)?;
                object.insert(key, value);
            }
            Ok(Value::Object(object))
        }
    }
}

/// The template expressions (`{{ ... }}`) in `text` that stand where a YAML value starts
/// (after `key: `, `- `, or first on a line), each as the text after its `{{`: there YAML reads
/// `{` as the start of a map. One inside quotes, within other text (`http://x:{{args.port}}`,
/// `${{ github.sha }}`) or in a block scalar's text is a string, and harmless.
fn unquoted_expressions(text: &str) -> impl Iterator<Item = &str> {
    let mut block = BlockScalar::default();
    text.lines().flat_map(move |line| {
        let indent = line.len() - line.trim_start().len();
        let in_block = block.holds(line, indent);
        if !in_block {
            block.opens(line, indent, true);
        }
        line.match_indices("{{")
            .filter(move |_| !in_block)
            .filter_map(move |(at, _)| {
                let before = &line[..at];
                let spaced = before.trim().is_empty() || before.ends_with([' ', '\t']);
                let key_or_item = {
                    let t = before.trim_end();
                    t.is_empty() || t.ends_with(':') || t == "-" || t.ends_with(" -")
                };
                (spaced && key_or_item).then(|| &line[at + 2..])
            })
    })
}

/// Whether an expression's text (after `{{`) is an Argo placeholder (`{{args.x}}`), which
/// Argo fills in when a run starts; any other is a template's (Helm's `{{ .Values.x }}`,
/// `{{ $.Values }}`, `{{- /* ... */ -}}`, or another tool's), not YAML until rendered.
fn argo_placeholder(after: &str) -> bool {
    let after = after.trim_start();
    ["args.", "metrics.", "templates.", "secrets."]
        .iter()
        .any(|p| after.starts_with(p))
}

/// What to add to a parse error of text that holds a template expression: an Argo
/// placeholder (`{{args.name}}`) left unquoted, or else a chart's template, which is not YAML
/// until `helm template` renders it.
fn unrendered_hint(text: &str) -> &'static str {
    if unquoted_expressions(text).any(argo_placeholder) {
        " (an Argo placeholder such as `{{args.name}}` must be quoted in YAML: unquoted, `{` \
         starts a map)"
    } else if unquoted_expressions(text).any(|after| !argo_placeholder(after)) {
        " (this looks like an unrendered template, such as a Helm chart's: check what \
         `helm template` prints)"
    } else {
        ""
    }
}

/// serde_yaml appends " at line L column C"; the location is reported separately.
fn strip_location(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

/// Splits a YAML stream at `---` / `...` marker lines, so a syntax error in one document does
/// not hide the others. Returns each document's first line (1-based) and text. A marker at the
/// start of a line always ends a document in YAML, even inside a block scalar.
pub fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let marker = |m: &str| {
            bare == m
                || bare
                    .strip_prefix(m)
                    .is_some_and(|r| r.starts_with([' ', '\t']))
        };
        if marker("---") || marker("...") {
            docs.push((start_line, &text[start..offset]));
            // Content after `--- ` on the marker line belongs to the next document.
            let is_start = marker("---");
            start = if is_start {
                offset + 3
            } else {
                offset + line.len()
            };
            start_line = if is_start { i + 1 } else { i + 2 };
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start..]));
    // Only comments (a licence header before the first `---`) is no document: numbering it
    // would call the file's only Rollout "document 2".
    docs.retain(|(_, d)| !only_comments(d) && !only_directives(d));
    docs
}

fn only_comments(chunk: &str) -> bool {
    chunk.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    })
}

/// Directives (`%YAML 1.1`, `%TAG ...`) before a `---`, with nothing else but comments: they
/// belong to the document the marker starts, not a document of their own.
fn only_directives(chunk: &str) -> bool {
    let mut directives = false;
    for line in chunk.lines() {
        let line = line.trim();
        if line.starts_with('%') {
            directives = true;
        } else if !(line.is_empty() || line.starts_with('#')) {
            return false;
        }
    }
    directives
}

/// A Kubernetes `List` or a typed list (`RolloutList`): a kind ending in `List` with `items`.
fn is_list(value: &Value) -> bool {
    value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array)
}

/// The kind of ours that `kind` misspells under an Argo API version: another case
/// (`rollout`) or a plural (`Rollouts`). Argo's other kinds (`Application`, `Workflow`, ...)
/// are not ours and pass as other kinds.
fn misspelt_kind(api_version: &str, kind: &str) -> Option<Kind> {
    if !api_version.starts_with("argoproj.io/") {
        return None;
    }
    let singular = kind.strip_suffix(['s', 'S']).unwrap_or(kind);
    Kind::ALL.into_iter().find(|ours| {
        ours.as_str().eq_ignore_ascii_case(kind) || ours.as_str().eq_ignore_ascii_case(singular)
    })
}

fn add_value(file: &str, document: usize, line: usize, value: Value, loaded: &mut Loaded) {
    let location = Location {
        file: file.to_owned(),
        document,
        item: None,
        line,
    };
    if is_list(&value) {
        loaded.current.kubernetes = true;
        let Value::Array(items) = value["items"].clone() else {
            return;
        };
        for (i, item) in items.into_iter().enumerate() {
            add_object(
                Location {
                    item: Some(i),
                    ..location.clone()
                },
                item,
                loaded,
            );
        }
    } else {
        add_object(location, value, loaded);
    }
}

/// A Namespace's name and the annotations it keeps ([`crate::catalog::own_annotations`]).
fn namespace_settings(value: &Value) -> (String, crate::catalog::NamespaceAnnotations) {
    let name = value.pointer("/metadata/name").and_then(Value::as_str);
    let all = value
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten();
    let texts = all.filter_map(|(key, value)| Some((key.as_str(), value.as_str()?)));
    let annotations = crate::catalog::own_annotations(texts);
    (name.unwrap_or_default().to_owned(), annotations)
}

fn add_object(location: Location, value: Value, loaded: &mut Loaded) {
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind_name = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let error = |message: String| InputError {
        file: location.file.clone(),
        document: Some(location.document),
        item: location.item,
        line: Some(location.line),
        column: None,
        message,
    };
    // A kind, or an apiVersion naming an API group (Helm's `Chart.yaml` has `apiVersion: v2`
    // and no kind), or a list of such objects, which the API server would refuse.
    let looks_kubernetes = |v: &Value| {
        v.get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| !k.is_empty())
            || v.get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|a| a.contains('/'))
    };
    if looks_kubernetes(&value)
        || value
            .as_array()
            .is_some_and(|items| items.iter().any(looks_kubernetes))
    {
        loaded.current.kubernetes = true;
    }
    if !value.is_object() {
        loaded.current.shapeless.push(loaded.errors.len());
        loaded.errors.push(error(
            "document is not a mapping (expected a Kubernetes object)".into(),
        ));
        return;
    }
    if location.item.is_some() && is_list(&value) {
        // kubectl reads the items of a List, not the items of a List inside one.
        loaded.errors.push(error(format!(
            "a {kind_name} inside a List: its items are not read (kubectl does not read them \
             either); move them into the outer List"
        )));
        return;
    }
    let Some(kind) = Kind::from_type(api_version, kind_name) else {
        if kind_name.is_empty() {
            if !api_version.contains('/') {
                loaded.current.shapeless.push(loaded.errors.len());
            }
            loaded.errors.push(error(
                "document has no `kind`: expected a Kubernetes object".into(),
            ));
        } else if let Some(meant) = misspelt_kind(api_version, kind_name) {
            // Kinds are case-sensitive: the API server refuses `rollout`, and skipping it
            // here would pass a Rollout nobody checked.
            loaded.errors.push(error(format!(
                "kind `{kind_name}` is not a kind of {api_version}: did you mean {meant}?"
            )));
        } else if api_version.is_empty() && Kind::ALL.iter().any(|k| k.as_str() == kind_name) {
            // Not skipped as another tool's object: it is one of ours, and unchecked.
            loaded.errors.push(error(format!(
                "{kind_name} has no `apiVersion`: expected {}/v1alpha1 (the API server refuses it without one)",
                Kind::GROUP
            )));
        } else {
            if api_version == "v1" && kind_name == "Namespace" {
                loaded.namespaces.push(namespace_settings(&value));
            }
            loaded.other_documents += 1;
        }
        return;
    };
    let name_of = |field: &str| {
        value
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
    };
    // A nameless object is still checked (a documentation snippet often leaves the name
    // out), and the run fails on the error all the same.
    let named = value
        .pointer("/metadata/name")
        .is_some_and(|n| !n.is_null() && !n.is_string());
    let name = match name_of("name").or(name_of("generateName")) {
        Some(name) => name.to_owned(),
        // A name that is not a string is said by the read below, at its field.
        None if named => "<unnamed>".to_owned(),
        None => {
            loaded.errors.push(error(format!(
                "{kind} has no metadata.name (nor generateName): the API server refuses it \
                 without one"
            )));
            "<unnamed>".to_owned()
        }
    };
    let object = match kind {
        Kind::Rollout => serde_path_to_error::deserialize::<_, Rollout>(value)
            .map(|r| Object::Rollout(Box::new(r))),
        _ => serde_path_to_error::deserialize::<_, AnalysisTemplate>(value)
            .map(|t| Object::Template(Box::new(t), kind)),
    };
    match object {
        Ok(o) => loaded.objects.push((location, o)),
        Err(e) => {
            let path = e.path().to_string();
            let message = format!("{kind} {name}: {path}: {}", e.inner());
            loaded.current.fields.push((loaded.errors.len(), path));
            loaded.errors.push(error(message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Loaded {
        let mut l = Loaded::default();
        load_text("f.yaml", text, false, &mut l);
        l
    }

    #[test]
    fn splits_documents_with_their_lines() {
        let docs = split_documents("a: 1\n---\nb: 2\n--- # c\nc: 3\n...\n");
        assert_eq!(docs.iter().map(|d| d.0).collect::<Vec<_>>(), [1, 2, 4]);
        assert_eq!(docs[2].1.trim(), "# c\nc: 3");
        assert_eq!(split_documents("---\nx: 1\n")[0], (1, "\nx: 1\n"));
        // A header of comments is no document of its own.
        let docs = split_documents("# Copyright\n# more\n---\nx: 1\n---\n# trailing\n");
        assert_eq!(docs, [(3, "\nx: 1\n")]);
    }

    #[test]
    fn a_bad_document_does_not_hide_the_others() {
        let l = load_str(
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: a}\n---\nkey: [unclosed\n---\napiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: t}\n",
        );
        assert_eq!(l.objects.len(), 2);
        assert_eq!(l.errors.len(), 1);
        let e = &l.errors[0];
        assert_eq!((e.document, e.line.map(|l| l >= 5)), (Some(2), Some(true)));
        assert!(e.to_string().starts_with("f.yaml:"), "{e}");
    }

    #[test]
    fn reports_type_errors_with_the_field_path() {
        let l = load_str(
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n  strategy:\n    canary:\n      steps:\n      - setWeight: {x: 1}\n",
        );
        assert!(l.objects.is_empty());
        let msg = &l.errors[0].message;
        assert!(
            msg.contains("Rollout r: spec.strategy.canary.steps[0].setWeight"),
            "{msg}"
        );
        // At the field's own line, also in a List item of a later document.
        assert_eq!(l.errors[0].line, Some(8));
        let l = load_str(
            "apiVersion: v1\nkind: Service\n---\napiVersion: v1\nkind: List\nitems:\n\
             - apiVersion: argoproj.io/v1alpha1\n  kind: Rollout\n  metadata: {name: r}\n  \
             spec:\n    replicas: x\n",
        );
        let e = &l.errors[0];
        assert_eq!(
            (e.document, e.item, e.line),
            (Some(2), Some(0), Some(11)),
            "{e}"
        );
    }

    #[test]
    fn reads_lists_and_json_and_skips_other_kinds() {
        let mut l = Loaded::default();
        load_text(
            "l.json",
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"argoproj.io/v1alpha1","kind":"Rollout","metadata":{"name":"r"}},{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}]}"#,
            true,
            &mut l,
        );
        assert_eq!(l.objects.len(), 1);
        assert_eq!(l.objects[0].0.item, Some(0));
        assert_eq!(l.other_documents, 1);
    }

    #[test]
    fn a_bad_list_item_is_named_by_its_index() {
        let l = load_str(
            "apiVersion: v1\nkind: List\nitems:\n- 1\n- apiVersion: v1\n  kind: Service\n- [a]\n",
        );
        let shown: Vec<String> = l.errors.iter().map(ToString::to_string).collect();
        assert_eq!(l.errors.len(), 2, "{shown:?}");
        assert_eq!((l.errors[0].item, l.errors[1].item), (Some(0), Some(2)));
        assert!(
            shown[1].contains("document 1, items[2]: document is not a mapping"),
            "{shown:?}"
        );
        // Each at its item's own line, not the List's first.
        assert_eq!((l.errors[0].line, l.errors[1].line), (Some(4), Some(7)));
        // Also after another document, and in JSON.
        let l = load_str("a: 1\n---\napiVersion: v1\nkind: List\nitems:\n- 1\n");
        let lines: Vec<_> = l.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [Some(1), Some(6)]);
        let mut l = Loaded::default();
        let json = "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n  1\n]}";
        load_text("l.json", json, true, &mut l);
        assert_eq!(l.errors[0].line, Some(2));
    }

    #[test]
    fn another_tools_file_that_does_not_parse_is_skipped_a_manifest_is_not() {
        // JSON with comments (an editor's settings), a broken CI workflow.
        let mut l = Loaded::default();
        load_text(
            "settings.json",
            "{\n  // indent\n  \"tabSize\": 2\n}\n",
            true,
            &mut l,
        );
        load_text("ci.yaml", "on: push\njobs: [\n", false, &mut l);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!((l.files, l.other_documents), (2, 2));
        // A broken manifest is an error, alone or beside another tool's documents.
        let mut l = Loaded::default();
        load_text("r.json", "{\"kind\": \"Rollout\",}", true, &mut l);
        load_text("r.yaml", "kind: Rollout\nspec: [\n", false, &mut l);
        load_text(
            "v.yaml",
            "apiVersion: v1\nkind: Service\n---\njobs: [\n",
            false,
            &mut l,
        );
        assert_eq!(l.errors.len(), 3, "{:?}", l.errors);
    }

    #[test]
    fn brackets_nested_past_the_parsers_limit_are_refused_before_parsing() {
        let deep = |n: usize| format!("spec:\n  x: {}{}\n", "[".repeat(n), "]".repeat(n));
        // Far past the limit: refused by the count (the parser's own refusal says "recursion
        // limit exceeded", after seconds), at the line where the limit is crossed.
        let l = load_str(&format!(
            "apiVersion: v1\nkind: ConfigMap\n---\n{}",
            deep(100_000)
        ));
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
        let e = &l.errors[0];
        assert_eq!((e.document, e.line), (Some(2), Some(5)), "{e}");
        assert!(e.message.contains("deeper than 2000"), "{e}");
        // Within it, the parser decides (and takes the document).
        assert!(load_str(&deep(60)).errors.is_empty());
        // Brackets in quotes and comments do not count; every line is one level here.
        let quoted = format!(
            "a: \"{}\"\nb: '{}'\n# {}\nc: [\"]\", '[']\n",
            "[".repeat(200),
            "{".repeat(200),
            "[".repeat(200)
        );
        assert_eq!(too_deep(&quoted), None);
        assert_eq!(too_deep(&format!("x: {}", "{".repeat(2001))), Some(1));
        assert_eq!(too_deep(&format!("x: {}", "{".repeat(2000))), None);
    }

    #[test]
    fn json_objects_one_after_another_are_documents_at_their_lines() {
        let r = |name: &str| {
            format!(
                "{{\n  \"apiVersion\": \"argoproj.io/v1alpha1\",\n  \"kind\": \"Rollout\",\n  \
                 \"metadata\": {{\"name\": \"{name}\"}}\n}}\n"
            )
        };
        let stream = format!("{}{}{}", r("a"), r("b"), r("c"));
        for json in [true, false] {
            let mut l = Loaded::default();
            load_text("items.json", &stream, json, &mut l);
            assert!(l.errors.is_empty(), "{:?}", l.errors);
            let at: Vec<_> = l
                .objects
                .iter()
                .map(|(loc, _)| (loc.document, loc.line))
                .collect();
            assert_eq!(at, [(1, 1), (2, 6), (3, 11)]);
        }
        // An error ends the stream at its line; what came before is read.
        let mut l = Loaded::default();
        load_text(
            "items.json",
            &format!("{}{{\"kind\": }}\n{}", r("a"), r("c")),
            true,
            &mut l,
        );
        assert_eq!(l.objects.len(), 1);
        let e = &l.errors[0];
        assert_eq!((e.document, e.line), (Some(2), Some(6)), "{e}");
        // One object with trailing text is not a stream: the error is the plain one.
        let mut l = Loaded::default();
        load_text("one.json", &format!("{}x", r("a")), true, &mut l);
        assert!(l.objects.is_empty());
        assert!(
            l.errors[0].message.contains("trailing characters"),
            "{}",
            l.errors[0]
        );
    }

    #[test]
    fn the_depth_count_reads_brackets_only_where_yaml_does() {
        let many = 2_100;
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let opens = "[".repeat(many);
        // Text, not collections: a block scalar (a CI step's heredoc; headers with a comment,
        // after a tab, after a quoted key with `#`), plain text, quotes after a plain scalar
        // with an apostrophe, a quoted scalar after an anchor or a tag.
        let valid = [
            format!(
                "on: push\njobs:\n  t:\n    steps:\n    - run: |\n        cat <<EOF\n        {}\n        EOF\n    - run: x\n",
                nested(many)
            ),
            format!("data:\n  f: |-\n    {opens}\n    {}\n", "]".repeat(many)),
            format!("data:\n  a: |\t# note\n    {opens}\n"),
            format!("data:\n  \"a #1\": |\n    {opens}\n"),
            format!("x: a{opens}\n"),
            format!("era: the '90s\ny: '{opens}'\n"),
            format!("k: \"it's\"\nq: 'a''{}'\n", "{".repeat(many)),
            format!("a: &x \"k: {opens}\"\nb: !!str \"k: {opens}\"\n"),
            format!("a: x\n  ! {opens}\n"),
        ];
        for text in &valid {
            assert_eq!(too_deep(text), None, "{text}");
        }
        // Collections: in a block value, in flow, after a stray apostrophe in plain text,
        // after a block scalar ends, after an escaped line break, after a tag or an anchor.
        for (text, line) in [
            (format!("era: the '90s\nx: {}\n", nested(many)), 2),
            (format!("a: {{\"b\":{}}}\n", nested(many)), 1),
            (format!("- |\n  text\n- {}\n", nested(many)), 3),
            (format!("s: \"a\\\n  b\"\nx: {}\n", nested(many)), 3),
            (format!("data: !!seq {}\n", nested(many)), 1),
            (format!("data: &a {}\n", "{".repeat(many)), 1),
        ] {
            assert_eq!(too_deep(&text), Some(line), "{text}");
        }
    }

    #[test]
    fn hints_tell_an_unquoted_argo_placeholder_from_a_helm_template() {
        let argo = "must be quoted";
        let helm = "unrendered template";
        // Quoted placeholders are strings: a tab breaks this document, not them.
        let quoted = "kind: AnalysisTemplate\nspec:\n  q: \"{{args.service}}\"\n\tx: 1\n";
        let hint = unrendered_hint(quoted);
        assert!(!hint.contains(argo), "{hint}");
        // Helm's escape of an Argo placeholder is Helm's.
        let escaped = "metadata:\n  name: {{ include \"app\" . }}\nq: {{`{{args.service}}`}}\n";
        assert!(unrendered_hint(escaped).contains(helm));
        assert!(unrendered_hint("a:\n- {{ args.x }}\n").contains(argo));
        assert!(unrendered_hint("{{metrics.m.x}}\n").contains(argo));
        // Placeholders within text, in a block scalar or quoted are strings: no hint at all.
        for text in [
            "url: http://svc:{{args.port}}/health\n",
            "name: app-{{args.x}}\n",
            "query: |\n  {{args.query}}\n",
            "url: \"http://svc/{{args.path}}\"\n",
            "ref: ${{ github.sha }}\n",
        ] {
            assert_eq!(unrendered_hint(text), "", "{text}");
        }
    }

    #[test]
    fn other_tools_files_keep_their_own_rules() {
        // A JSON schema with a key given twice and a property named `kind`: not a manifest.
        let schema = r#"{"properties": {"kind": {"type": "string"}},
            "description": "a", "description": "b"}"#;
        let mut l = Loaded::default();
        load_text("values.schema.json", schema, true, &mut l);
        // A log of JSON lines cut short; a broken CI workflow, values file and cookiecutter
        // config, whose expressions are not a chart's.
        load_text("log.json", "{\"a\": 1}\n{\"b\":\n", true, &mut l);
        load_text(
            "ci.yml",
            "on: push\njobs:\n  t:\n    run: echo ${{ github.sha }}\n\tx: 1\n",
            false,
            &mut l,
        );
        load_text(
            "values.yaml",
            "image: a\nimage: b\nhost: \"{{ .Release.Name }}.example.com\"\n",
            false,
            &mut l,
        );
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!(l.other_documents, 5);
        // An unrendered template where a value starts may be a chart's manifest: its error
        // stands, whichever template language (Helm's actions, `$`, comments, or another's).
        for text in [
            "{{- include \"common.rollout\" . }}\n",
            "{{ $.Values.rolloutSpec | toYaml }}\n",
            "{{- /* a comment */ -}}\n{{ printf \"%s\" .x }}\n",
            "project: {{ cookiecutter.slug }}\n{% if x %}\n",
        ] {
            let mut l = Loaded::default();
            load_text("t.yaml", text, false, &mut l);
            assert_eq!(l.errors.len(), 1, "{text}: {:?}", l.errors);
            assert!(
                l.errors[0].message.contains("unrendered template"),
                "{}",
                l.errors[0]
            );
        }
        // A manifest's repeated key stays an error.
        let mut l = Loaded::default();
        load_text(
            "r.json",
            r#"{"kind": "Rollout", "a": 1, "a": 2}"#,
            true,
            &mut l,
        );
        assert!(
            l.errors[0].message.contains("duplicate key `a`"),
            "{:?}",
            l.errors
        );
    }

    #[test]
    fn a_name_of_another_type_is_said_once_at_its_field() {
        let l =
            load_str("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: 123\n");
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
        assert!(
            l.errors[0].message.contains("metadata.name: invalid type"),
            "{}",
            l.errors[0]
        );
        assert_eq!(l.errors[0].line, Some(4));
    }

    #[test]
    fn a_key_given_twice_is_an_error_in_json_as_in_yaml() {
        let rollout = r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
 "metadata": {"name": "r"},
 "spec": {"replicas": 1,
          "replicas": 3}}"#;
        let mut l = Loaded::default();
        load_text("r.json", rollout, true, &mut l);
        assert!(l.objects.is_empty());
        let e = &l.errors[0];
        assert!(e.message.contains("duplicate key `replicas`"), "{e}");
        assert_eq!(e.line, Some(4), "{e}");
        // The same text under a .yaml name is read as JSON first, then as YAML: refused too.
        let l = load_str(rollout);
        assert!(l.objects.is_empty());
        assert!(l.errors[0].message.contains("duplicate"), "{}", l.errors[0]);
        // Without the repeat, the strict read agrees with serde_json's.
        let once = rollout.replace(",\n          \"replicas\": 3", "");
        assert_eq!(
            strict_json(&once).unwrap(),
            serde_json::from_str::<Value>(&once).unwrap()
        );
        let numbers = r#"[0, -1, 18446744073709551615, 1.5e300, "\u00e9", null, true, {}]"#;
        assert_eq!(
            strict_json(numbers).unwrap(),
            serde_json::from_str::<Value>(numbers).unwrap()
        );
        assert!(strict_json("{} {}").is_err());
    }

    #[test]
    fn a_list_inside_a_list_is_an_error_not_a_skip() {
        let l = load_str(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  \
             - apiVersion: argoproj.io/v1alpha1\n    kind: Rollout\n    metadata: {name: r}\n",
        );
        assert!(l.objects.is_empty());
        assert_eq!(l.other_documents, 0);
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
        let e = &l.errors[0];
        assert_eq!((e.item, e.line), (Some(0), Some(4)), "{e:?}");
        assert!(e.message.starts_with("a List inside a List"), "{e}");
        // A typed list as an item is the same mistake.
        let l = load_str(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: argoproj.io/v1alpha1\n  \
             kind: RolloutList\n  items: []\n",
        );
        assert!(
            l.errors[0].message.starts_with("a RolloutList inside"),
            "{:?}",
            l.errors
        );
    }

    #[test]
    fn a_misspelt_argo_kind_is_an_error_other_argo_kinds_pass() {
        for (kind, meant) in [
            ("rollout", "Rollout"),
            ("Rollouts", "Rollout"),
            ("analysisTemplate", "AnalysisTemplate"),
            ("CLUSTERANALYSISTEMPLATE", "ClusterAnalysisTemplate"),
        ] {
            let l = load_str(&format!(
                "apiVersion: argoproj.io/v1alpha1\nkind: {kind}\nmetadata: {{name: x}}\n"
            ));
            assert!(l.objects.is_empty());
            assert_eq!(l.errors.len(), 1, "{kind}: {:?}", l.errors);
            assert!(
                l.errors[0]
                    .message
                    .ends_with(&format!("did you mean {meant}?")),
                "{}",
                l.errors[0]
            );
        }
        // Argo's other kinds, and our kinds' names in another group, are other objects.
        for (api_version, kind) in [
            ("argoproj.io/v1alpha1", "Application"),
            ("argoproj.io/v1alpha1", "AnalysisRun"),
            ("apps.kruise.io/v1alpha1", "rollout"),
        ] {
            let l = load_str(&format!(
                "apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x}}\n"
            ));
            assert!(l.errors.is_empty(), "{kind}: {:?}", l.errors);
            assert_eq!(l.other_documents, 1);
        }
    }

    #[test]
    fn a_nameless_object_is_an_error_and_still_checked() {
        let rollout = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\n";
        let l = load_str(&format!("{rollout}spec: {{}}\n"));
        assert_eq!(l.objects.len(), 1);
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
        assert!(
            l.errors[0]
                .message
                .starts_with("Rollout has no metadata.name"),
            "{}",
            l.errors[0]
        );
        let l = load_str(&format!("{rollout}metadata: {{name: \"\"}}\n"));
        assert_eq!((l.objects.len(), l.errors.len()), (1, 1), "{:?}", l.errors);
        // `kubectl create` names it from generateName.
        let l = load_str(&format!("{rollout}metadata: {{generateName: shop-}}\n"));
        assert_eq!((l.objects.len(), l.errors.len()), (1, 0), "{:?}", l.errors);
    }

    #[test]
    fn an_unrendered_helm_template_is_said_to_be_one() {
        let l = load_str(
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: {{ include \"app\" . }}\n",
        );
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
        assert!(
            l.errors[0].message.contains("unrendered template"),
            "{}",
            l.errors[0]
        );
        let mut l = Loaded::default();
        load_text("t.json", "{\"kind\": {{ .Values.kind }}}", true, &mut l);
        assert!(
            l.errors[0].message.contains("unrendered template"),
            "{:?}",
            l.errors
        );
        // Other broken YAML is not blamed on Helm, and an Argo placeholder is not Helm's.
        let l = load_str("apiVersion: v1\nkind: [\n");
        assert!(
            !l.errors[0].message.contains("unrendered"),
            "{}",
            l.errors[0]
        );
        let l = load_str(
            "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  \
             annotations:\n    inject: {{ args.inject }}\n",
        );
        assert!(
            l.errors[0].message.contains("must be quoted"),
            "{}",
            l.errors[0]
        );
    }

    #[test]
    fn places_name_one_file_however_it_is_spelt() {
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            place(Path::new("./no/such/../file.yaml")),
            here.join("no/file.yaml")
        );
        assert_eq!(place(Path::new("no/file.yaml")), here.join("no/file.yaml"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, "").unwrap();
        let dotted = dir.path().join(".").join("a.yaml");
        assert_eq!(place(&dotted), place(&file));
        assert_eq!(place(&file), file.canonicalize().unwrap());
        // `..` after a link is the link target's parent, as the system resolves it; a link
        // to a file is in the directory it was found in.
        std::fs::create_dir_all(dir.path().join("deep/inner")).unwrap();
        std::os::unix::fs::symlink("deep/inner", dir.path().join("top")).unwrap();
        let deep = dir.path().canonicalize().unwrap().join("deep");
        assert_eq!(
            place(&dir.path().join("top/../b.yaml")),
            deep.join("b.yaml")
        );
        std::os::unix::fs::symlink("../a.yaml", dir.path().join("deep/link.yaml")).unwrap();
        assert_eq!(
            place(&dir.path().join("deep/link.yaml")),
            deep.join("link.yaml")
        );
    }

    #[test]
    fn documents_without_kind_are_errors_beside_kubernetes_objects() {
        let service = "apiVersion: v1\nkind: Service\n";
        let l = load_str(&format!("{service}---\njust: data\n"));
        assert!(l.errors[0].message.contains("no `kind`"), "{:?}", l.errors);
        assert_eq!(l.other_documents, 1);
        // An `apiVersion` alone makes it a Kubernetes object without its kind.
        let l = load_str("apiVersion: argoproj.io/v1alpha1\nspec: {}\n");
        assert!(l.errors[0].message.contains("no `kind`"), "{:?}", l.errors);
        assert!(load_str("# only a comment\n").errors.is_empty());
    }

    #[test]
    fn an_empty_file_holds_no_document_in_json_as_in_yaml() {
        for json in [true, false] {
            let mut l = Loaded::default();
            load_text("empty", " \n", json, &mut l);
            assert!(
                l.errors.is_empty() && l.other_documents == 0,
                "{:?}",
                l.errors
            );
            assert_eq!(l.files, 1);
        }
    }

    #[test]
    fn a_file_without_kubernetes_objects_is_skipped() {
        // A values.yaml, a CI workflow, a list of tasks, a package.json, a Chart.yaml.
        for (text, json) in [
            ("apiVersion: v2\nname: chart\nversion: 1.0.0\n", false),
            ("replicas: 2\nimage: x\n---\nmore: data\n", false),
            ("on: push\njobs: {}\n", false),
            ("- name: task\n- name: other\n", false),
            ("{\"name\": \"pkg\", \"version\": \"1.0.0\"}", true),
        ] {
            let mut l = Loaded::default();
            load_text("f", text, json, &mut l);
            assert!(l.errors.is_empty(), "{text}: {:?}", l.errors);
            assert!(l.other_documents >= 1 && l.objects.is_empty(), "{text}");
        }
        // A document that does not parse and names no kind goes with the others.
        let l = load_str("a: 1\n---\nb: [\n---\nc: 2\n");
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!(l.other_documents, 3);
        // A broken document that names a kind may be a manifest: the file is one, and every
        // error in it stands, those of documents without a kind too.
        let l = load_str("a: 1\n---\nkind: [\n---\nc: [\n");
        let said: Vec<_> = l
            .errors
            .iter()
            .map(|e| (e.document, &e.message[..12]))
            .collect();
        assert_eq!(
            said,
            [
                (Some(1), "document has"),
                (Some(2), "invalid YAML"),
                (Some(3), "invalid YAML")
            ],
            "{:?}",
            l.errors
        );
        assert_eq!(l.other_documents, 0);
        // The next file is judged on its own.
        let mut l = Loaded::default();
        load_text("values.yaml", "a: 1\n", false, &mut l);
        load_text(
            "deploy.yaml",
            "apiVersion: v1\nkind: Service\n---\nb: 2\n",
            false,
            &mut l,
        );
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
        assert_eq!(l.errors[0].file, "deploy.yaml");
        assert_eq!(l.other_documents, 2);
        // A list of Rollouts at the top level is not another tool's: the API server refuses it.
        for (text, json) in [
            (
                "- apiVersion: argoproj.io/v1alpha1\n  kind: Rollout\n  metadata: {name: r}\n",
                false,
            ),
            (
                "[{\"apiVersion\": \"argoproj.io/v1alpha1\", \"kind\": \"Rollout\"}]",
                true,
            ),
        ] {
            let mut l = Loaded::default();
            load_text("list", text, json, &mut l);
            assert!(
                l.errors[0].message.contains("not a mapping"),
                "{text}: {:?}",
                l.errors
            );
        }
    }
}
