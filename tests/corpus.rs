//! Corpus test: every real manifest in `tests/fixtures/corpus/` (Argo Rollouts' own examples,
//! e2e fixtures and docs snippets, plus 66 manifests from other public repositories) is
//! checked the way `rollout-guard check` checks it, and the findings must equal, exactly, the
//! expectations in `tests/fixtures/corpus/EXPECTED.txt`. Each expectation carries a one-line
//! reason grounded in `DOMAIN.md` §3/§4; a reason containing `ENGINE-QUESTION:` marks an
//! engine verdict or message that the author of the table doubts (see the row). That table is
//! for the default controller version, 1.9; `BY_VERSION` below pins a few files on 1.8.1,
//! 1.8.2, 1.9 and 1.10. Every file must also load without a panic on all four versions, with
//! one-line finding messages of at most 160 characters.
//!
//! How a file is checked ("the way `check` does"): the file is the input, and the other
//! manifests of its *resolution set* are passed as `--templates` (used only to resolve
//! references, like `rollout-guard check FILE --templates SIBLINGS...`). The file's own
//! templates are inserted last, so they win over a sibling's template of the same name.
//! Input errors of the siblings are dropped: they belong to the siblings' own rows.
//! Resolution sets:
//! - `argo-rollouts/...` (except docs snippets): the file's directory, not recursive. The paths
//!   are upstream's, and upstream's e2e tests and examples apply templates from sibling files
//!   of the same directory (`rollout-background-analysis-inconclusive.yaml` references
//!   `analysistemplate-web-background-inconclusive.yaml`, `examples/rollout-analysis-step.yaml`
//!   references `examples/analysis-templates.yaml`); no reference needs another directory.
//! - `argo-rollouts/docs-snippets/...`: each snippet alone. Snippets of one page reuse names
//!   for different templates (four `success-rate`s in analysis.md), so pairing them would be a
//!   guess.
//! - `realworld/<owner>__<repo>/...`: every file of the same repository, as
//!   `rollout-guard check <repository>` would read it, so that a kustomize overlay or a Rollout
//!   in `manifests/base/` finds its templates in `base/` or `manifests/analysis/`. When two
//!   files of a repository define a template of the same name (kunal-1207 has three
//!   `success-rate`s in three directories), the one from the file's own original directory
//!   (`SOURCES.tsv` gives it) wins: those files are loaded after the rest of the repository.
//!
//! `CORPUS_PRINT=1 cargo test --test corpus -- --nocapture print_actual` prints what the
//! engine reports now in the format of `EXPECTED.txt`, to review a change (never to paste
//! blindly: every finding needs a reason).

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use rollout_guard::check::check_loaded;
use rollout_guard::finding::Severity;
use rollout_guard::input::{Loaded, load};
use rollout_guard::rules::Config;
use rollout_guard::version::ControllerVersion;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/corpus");
const EXPECTED: &str = include_str!("fixtures/corpus/EXPECTED.txt");
const UPSTREAM_REPRO: &str =
    "argo-rollouts/test/e2e/functional/rollout-background-analysis-inconclusive.yaml";
/// Longest finding message accepted (Finding documents "about 120 characters").
const MAX_MESSAGE: usize = 160;

const V1_8_1: ControllerVersion = ControllerVersion::new(1, 8, 1);
const V1_8_2: ControllerVersion = ControllerVersion::new(1, 8, 2);
const V1_9: ControllerVersion = ControllerVersion::new(1, 9, 0);
const V1_10: ControllerVersion = ControllerVersion::new(1, 10, 0);

fn is_manifest(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Every manifest under the corpus root, as paths relative to it, sorted.
fn corpus_files() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(ROOT)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if is_manifest(&p) {
                let rel = p.strip_prefix(ROOT).unwrap().to_string_lossy();
                out.push(rel.replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

/// `realworld/<saved_file>` -> (`<repo>`, `<directory of the original path>`).
fn realworld_sources() -> BTreeMap<String, (String, String)> {
    let tsv = std::fs::read_to_string(Path::new(ROOT).join("realworld/SOURCES.tsv")).unwrap();
    tsv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let dir = cols[2].rsplit_once('/').map_or("", |(d, _)| d);
            (
                format!("realworld/{}", cols[0]),
                (cols[1].to_owned(), dir.to_owned()),
            )
        })
        .collect()
}

/// The other files whose templates may resolve this file's references (see the module doc),
/// in load order: a later file's template replaces an earlier one of the same name.
fn resolution_set(
    rel: &str,
    all: &[String],
    sources: &BTreeMap<String, (String, String)>,
) -> Vec<PathBuf> {
    let parent = |f: &str| f.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
    let others = all.iter().filter(|f| f.as_str() != rel);
    let chosen: Vec<&String> = if rel.starts_with("argo-rollouts/docs-snippets/") {
        Vec::new()
    } else if rel.starts_with("realworld/") {
        let source = |f: &str| {
            sources
                .get(f)
                .unwrap_or_else(|| panic!("{f} is not in realworld/SOURCES.tsv"))
        };
        let (repo, dir) = source(rel);
        let mut same_repo: Vec<&String> = others
            .filter(|f| f.starts_with("realworld/") && &source(f).0 == repo)
            .collect();
        // Files from the same original directory last, so that their templates win.
        same_repo.sort_by_key(|f| (&source(f).1 == dir, f.as_str()));
        same_repo
    } else {
        let dir = parent(rel);
        others.filter(|f| parent(f) == dir).collect()
    };
    chosen
        .into_iter()
        .map(|f| Path::new(ROOT).join(f))
        .collect()
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Outcome {
    /// `rule @ Kind/[namespace/]name @ field.path`
    findings: BTreeSet<String>,
    /// The same with ` [severity]` appended.
    with_severity: BTreeSet<String>,
    /// `line L: message`
    errors: Vec<String>,
    /// `(finding with severity, message)` in report order.
    messages: Vec<(String, String)>,
}

fn check(rel: &str, siblings: &[PathBuf], version: ControllerVersion) -> Outcome {
    let inputs = load(&[Path::new(ROOT).join(rel)]);
    let mut templates: Loaded = load(siblings);
    templates.errors.clear();
    let report = check_loaded(
        inputs,
        templates,
        &Config {
            version,
            explain: true,
        },
    );
    let mut out = Outcome::default();
    for located in &report.findings {
        let f = &located.finding;
        let key = format!("{} @ {} @ {}", f.rule.id(), f.object, f.path);
        let keyed = format!("{key} [{}]", f.severity);
        out.with_severity.insert(keyed.clone());
        out.findings.insert(key);
        out.messages.push((keyed, f.message.clone()));
    }
    for e in &report.errors {
        let line = e.line.map_or("?".to_owned(), |l| l.to_string());
        out.errors.push(format!("line {line}: {}", e.message));
    }
    out.errors.sort();
    out
}

/// Runs every corpus file on one version; a panic is recorded, not propagated.
fn check_all(version: ControllerVersion) -> BTreeMap<String, Result<Outcome, String>> {
    let all = corpus_files();
    let sources = realworld_sources();
    all.iter()
        .map(|rel| {
            let siblings = resolution_set(rel, &all, &sources);
            let result =
                catch_unwind(AssertUnwindSafe(|| check(rel, &siblings, version))).map_err(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into())
                });
            (rel.clone(), result)
        })
        .collect()
}

fn check_one(rel: &str, version: ControllerVersion) -> Outcome {
    let all = corpus_files();
    let siblings = resolution_set(rel, &all, &realworld_sources());
    check(rel, &siblings, version)
}

/// One row of `EXPECTED.txt`.
#[derive(Debug, Default)]
struct Row {
    file: String,
    findings: BTreeSet<String>,
    none: bool,
    /// Prefixes of `line L: message`.
    errors: Vec<String>,
    reason: String,
}

/// Format: blocks of `file PATH`, then `finding none` or one `finding RULE @ OBJECT @ PATH`
/// line per finding, then `error line L: MESSAGE-PREFIX` lines, then one `reason TEXT` line.
/// Blank lines and lines starting with `#` are ignored.
fn parse_expected() -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for (n, raw) in EXPECTED.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(' ')
            .map(|(k, v)| (k, v.trim()))
            .unwrap_or((line, ""));
        let at = || format!("EXPECTED.txt:{}", n + 1);
        if key == "file" {
            rows.push(Row {
                file: value.to_owned(),
                ..Row::default()
            });
            continue;
        }
        let row = rows
            .last_mut()
            .unwrap_or_else(|| panic!("{}: `{key}` before any `file`", at()));
        match key {
            "finding" if value == "none" => row.none = true,
            "finding" => assert!(
                row.findings.insert(value.to_owned()),
                "{}: repeated finding",
                at()
            ),
            "error" => row.errors.push(value.to_owned()),
            "reason" => {
                assert!(row.reason.is_empty(), "{}: second reason", at());
                row.reason = value.to_owned();
            }
            other => panic!("{}: unknown key `{other}`", at()),
        }
    }
    for row in &rows {
        assert!(
            row.none == row.findings.is_empty(),
            "{}: say `finding none` or list findings, not both",
            row.file
        );
        assert!(!row.reason.is_empty(), "{}: no reason", row.file);
    }
    rows
}

/// Expected error prefixes must match actual errors one to one.
fn errors_match(expected: &[String], actual: &[String]) -> bool {
    let mut left: Vec<&String> = actual.iter().collect();
    for e in expected {
        match left.iter().position(|a| a.starts_with(e.as_str())) {
            Some(i) => drop(left.remove(i)),
            None => return false,
        }
    }
    left.is_empty()
}

#[test]
fn every_corpus_file_matches_its_expected_row() {
    let rows = parse_expected();
    let files = corpus_files();
    let mut problems = Vec::new();

    let listed: BTreeSet<&str> = rows.iter().map(|r| r.file.as_str()).collect();
    assert_eq!(listed.len(), rows.len(), "a file has two rows");
    for f in &files {
        if !listed.contains(f.as_str()) {
            problems.push(format!("{f}: corpus file without a row in EXPECTED.txt"));
        }
    }
    for r in &rows {
        if !files.contains(&r.file) {
            problems.push(format!(
                "{}: row for a file that is not in the corpus",
                r.file
            ));
        }
    }

    let actual = check_all(V1_9);
    for row in &rows {
        let Some(result) = actual.get(&row.file) else {
            continue;
        };
        let got = match result {
            Ok(got) => got,
            Err(panic) => {
                problems.push(format!("{}: PANIC while checking: {panic}", row.file));
                continue;
            }
        };
        if got.findings != row.findings {
            let mut diff = format!("{}: findings differ ({})", row.file, row.reason);
            for missing in row.findings.difference(&got.findings) {
                diff.push_str(&format!("\n    - expected, not reported: {missing}"));
            }
            for extra in got.findings.difference(&row.findings) {
                diff.push_str(&format!("\n    + reported, not expected: {extra}"));
            }
            problems.push(diff);
        }
        if !errors_match(&row.errors, &got.errors) {
            problems.push(format!(
                "{}: input errors differ\n    expected (prefixes): {:?}\n    actual: {:?}",
                row.file, row.errors, got.errors
            ));
        }
        for e in &got.errors {
            if e.starts_with("line ?") {
                problems.push(format!("{}: input error without a line: {e}", row.file));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} corpus problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Finding messages longer than [`MAX_MESSAGE`] characters that are accepted, by file and
/// rule. Empty since the D1 message names only the first metric and a count of the others;
/// a message that gets short again must leave the list.
const KNOWN_LONG_MESSAGES: &[(&str, &str)] = &[];

/// Every file is read without a panic on every version the tables use, and every finding
/// message is one line of at most [`MAX_MESSAGE`] characters (except the listed ones).
#[test]
fn no_panic_and_one_line_messages_on_every_version() {
    let mut problems = Vec::new();
    let mut long_seen = BTreeSet::new();
    for v in [V1_8_1, V1_8_2, V1_9, V1_10] {
        for (file, result) in check_all(v) {
            let got = match result {
                Ok(got) => got,
                Err(panic) => {
                    problems.push(format!("{file} panics on {v}: {panic}"));
                    continue;
                }
            };
            for (finding, m) in &got.messages {
                let rule = finding.split(' ').next().unwrap_or_default();
                let len = m.chars().count();
                if m.contains('\n') || m.contains('\r') {
                    problems.push(format!("{file} on {v}: message has a line break: {m:?}"));
                } else if len > MAX_MESSAGE {
                    if KNOWN_LONG_MESSAGES.contains(&(file.as_str(), rule)) {
                        long_seen.insert((file.clone(), rule.to_owned()));
                    } else {
                        problems.push(format!(
                            "{file} on {v}: {rule} message has {len} > {MAX_MESSAGE} characters: {m:?}"
                        ));
                    }
                }
            }
        }
    }
    for (file, rule) in KNOWN_LONG_MESSAGES {
        if !long_seen.contains(&(file.to_string(), rule.to_string())) {
            problems.push(format!(
                "{file}: {rule} message is no longer too long: remove it from KNOWN_LONG_MESSAGES"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The upstream reproduction (argo-rollouts e2e `TestBackgroundAnalysisInconclusive`'s
/// fixture): a web metric with both conditions that matches neither (`result.Status == 999` /
/// `== -1`), `inconclusiveLimit: 3` with no count (indefinite), background analysis from
/// `startingStep: 1`, which is the 30s timed pause. D1 on every version: high up to 1.8.1
/// (the run is re-created and the canary promoted), medium from 1.8.2 (the pause is recorded
/// but the clock still runs). No D2: 2 replicas at weight 10 is 1 canary pod, not full.
#[test]
fn upstream_reproduction_is_d1_on_1_8_1_and_1_9() {
    let d1 = "inconclusive-timed-pause @ Rollout/rollout-background-analysis-inconclusive \
              @ spec.strategy.canary.steps[1].pause.duration";
    let default = ControllerVersion::default();
    for (version, severity) in [
        (default, Severity::Medium),
        (V1_9, Severity::Medium),
        (V1_8_1, Severity::High),
    ] {
        let got = check_one(UPSTREAM_REPRO, version);
        let want = BTreeSet::from([format!("{d1} [{severity}]")]);
        assert_eq!(got.with_severity, want, "on {version}");
        assert!(got.errors.is_empty(), "on {version}: {:?}", got.errors);
    }
}

/// The two corpus files that are not plain YAML give input errors located by line (the
/// offending line itself), not a panic and not a silent skip: the Helm template's
/// `{{ template ... }}` name and linkerd's unquoted `{{args.linkerd-enabled}}` annotation are
/// YAML flow mappings used as keys. The other documents of the linkerd file are still read.
#[test]
fn non_yaml_files_give_located_input_errors() {
    for (file, line) in [
        (
            "argo-rollouts/examples/helm-blue-green/templates/rollout.yaml",
            4,
        ),
        (
            "argo-rollouts/examples/traffic-management/rollout-linkerd.yaml",
            101,
        ),
    ] {
        let got = check_one(file, V1_9);
        assert_eq!(got.errors.len(), 1, "{file}: {:?}", got.errors);
        assert!(
            got.errors[0].starts_with(&format!("line {line}: invalid YAML")),
            "{file}: {:?}",
            got.errors
        );
        assert!(got.findings.is_empty(), "{file}: {:?}", got.findings);
    }
    let linkerd = load(&[
        Path::new(ROOT).join("argo-rollouts/examples/traffic-management/rollout-linkerd.yaml")
    ]);
    assert_eq!(
        linkerd.objects.len(),
        1,
        "the Rollout document is still read"
    );
    assert_eq!(linkerd.other_documents, 3, "the three Services are skipped");
}

/// Version-dependent verdicts on a few corpus files: `(file, version, findings with severity)`.
const BY_VERSION: &[(&str, ControllerVersion, &[&str])] = &[
    // Job metrics end Inconclusive only from 1.10 (DOMAIN §3 / can_inconclude (d)): the e2e
    // job measures once (1 > inconclusiveLimit 0), the only step after setWeight 10 is the
    // 10s pause, and replicas defaults to 1, so the one canary pod is the full canary (R2):
    // D1 and D2 appear on 1.10. Before that the job cannot be Inconclusive: only D3 (>= 1.8.2
    // any pause after startingStep; on 1.8.1 D3 needs an indefinite pause, so nothing).
    (
        "argo-rollouts/test/e2e/functional/rollout-background-long-running-job.yaml",
        V1_8_1,
        &[],
    ),
    (
        "argo-rollouts/test/e2e/functional/rollout-background-long-running-job.yaml",
        V1_9,
        &[
            "pause-during-background-analysis @ Rollout/rollout-background-long-running-job @ spec.strategy.canary.steps[1].pause [info]",
        ],
    ),
    (
        "argo-rollouts/test/e2e/functional/rollout-background-long-running-job.yaml",
        V1_10,
        &[
            "inconclusive-promotion @ Rollout/rollout-background-long-running-job @ spec.strategy.canary.steps[1].pause.duration [high]",
            "inconclusive-timed-pause @ Rollout/rollout-background-long-running-job @ spec.strategy.canary.steps[1].pause.duration [medium]",
        ],
    ),
    // D2 needs a controller that records the pause (>= 1.8.2); 1.8.1 gets D1 high instead.
    // akmukhi base: 2 replicas with istio, weight 75 is 2 canary pods = full at the 5m pause
    // of step 7, then only setWeight 100 (no pod change) and a pause follow.
    (
        "realworld/akmukhi__ci-cd-development-pipeline/k8s__base__rollout.yaml",
        V1_8_1,
        &[
            "inconclusive-timed-pause @ Rollout/app @ spec.strategy.canary.steps[3].pause.duration [high]",
        ],
    ),
    (
        "realworld/akmukhi__ci-cd-development-pipeline/k8s__base__rollout.yaml",
        V1_8_2,
        &[
            "inconclusive-promotion @ Rollout/app @ spec.strategy.canary.steps[7].pause.duration [high]",
            "inconclusive-timed-pause @ Rollout/app @ spec.strategy.canary.steps[3].pause.duration [medium]",
        ],
    ),
    (
        "realworld/akmukhi__ci-cd-development-pipeline/k8s__base__rollout.yaml",
        V1_10,
        &[
            "inconclusive-promotion @ Rollout/app @ spec.strategy.canary.steps[7].pause.duration [high]",
            "inconclusive-timed-pause @ Rollout/app @ spec.strategy.canary.steps[3].pause.duration [medium]",
        ],
    ),
    // D1 severity switches at the fix (PR #3873, 1.8.2): high on 1.8.1, medium from 1.8.2.
    (
        UPSTREAM_REPRO,
        V1_8_2,
        &[
            "inconclusive-timed-pause @ Rollout/rollout-background-analysis-inconclusive @ spec.strategy.canary.steps[1].pause.duration [medium]",
        ],
    ),
    (
        UPSTREAM_REPRO,
        V1_10,
        &[
            "inconclusive-timed-pause @ Rollout/rollout-background-analysis-inconclusive @ spec.strategy.canary.steps[1].pause.duration [medium]",
        ],
    ),
    // Plugin metric, D1 at the 10s pause of step 3. On 1.8.1 the indefinite pause at
    // startingStep 1 also hides the verdict (D3, indefinite pauses at or after startingStep);
    // from 1.8.2 D3 is not repeated next to D1 (the engine leaves R1 to D1's explanation).
    (
        "realworld/argoproj-labs__rollouts-plugin-metric-ai/config__rollouts-examples__rollout-with-ai.yaml",
        V1_8_1,
        &[
            "inconclusive-timed-pause @ Rollout/canary-demo @ spec.strategy.canary.steps[3].pause.duration [high]",
            "pause-during-background-analysis @ Rollout/canary-demo @ spec.strategy.canary.steps[1].pause [info]",
        ],
    ),
    (
        "realworld/argoproj-labs__rollouts-plugin-metric-ai/config__rollouts-examples__rollout-with-ai.yaml",
        V1_9,
        &[
            "inconclusive-timed-pause @ Rollout/canary-demo @ spec.strategy.canary.steps[3].pause.duration [medium]",
        ],
    ),
    // D3 changes meaning with the fix: on 1.8.1 the indefinite pause hides the verdict; from
    // 1.8.2 a pause after startingStep may be skipped. Here the only pause is indefinite.
    (
        "argo-rollouts/examples/rollout-background-analysis.yaml",
        V1_8_1,
        &[
            "pause-during-background-analysis @ Rollout/rollout-background-analysis @ spec.strategy.canary.steps[1].pause [info]",
        ],
    ),
    (
        "argo-rollouts/examples/rollout-background-analysis.yaml",
        V1_10,
        &[
            "pause-during-background-analysis @ Rollout/rollout-background-analysis @ spec.strategy.canary.steps[1].pause [info]",
        ],
    ),
];

#[test]
fn version_dependent_verdicts() {
    let mut problems = Vec::new();
    for (file, version, want) in BY_VERSION {
        let got = check_one(file, *version);
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        if got.with_severity != want {
            problems.push(format!(
                "{file} on {version}:\n    expected {want:#?}\n    actual {:#?}",
                got.with_severity
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Prints the engine's current verdicts in `EXPECTED.txt` format (with severities and
/// messages as comments). Does nothing unless `CORPUS_PRINT` is set.
#[test]
fn print_actual() {
    let Ok(which) = std::env::var("CORPUS_PRINT") else {
        return;
    };
    let version = match which.as_str() {
        "1.8.1" => V1_8_1,
        "1.10" => V1_10,
        _ => V1_9,
    };
    for (file, result) in check_all(version) {
        println!("file {file}");
        match result {
            Err(p) => println!("# PANIC {p}"),
            Ok(o) => {
                if o.findings.is_empty() {
                    println!("finding none");
                }
                for f in &o.findings {
                    println!("finding {f}");
                }
                for e in &o.errors {
                    println!("error {e}");
                }
                for (s, m) in &o.messages {
                    println!("# {s}: {m}");
                }
            }
        }
        println!();
    }
}
