//! `rollout-guard check` as a user runs it: the real binary on good, dangerous and malformed
//! files, every output format, stdin, and the documented exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/check/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rollout-guard"))
        .arg("check")
        .args(args)
        .output()
        .unwrap()
}

/// The findings of one rule in a JSON report.
fn findings_of<'r>(report: &'r Value, rule: &str) -> Vec<&'r Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn dangerous_rollout_fails_with_actionable_text() {
    let out = check(&[&fixture("dangerous.yaml")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("Rollout/shop"), "{text}");
    assert!(text.contains("high    inconclusive-promotion  spec.strategy.canary.steps[1].pause.duration  (line 35)"), "{text}");
    assert!(text.contains("medium  inconclusive-timed-pause"), "{text}");
    assert!(
        text.contains(
            "`success-rate` can end Inconclusive (inconclusiveLimit 0) in this 10m pause"
        ),
        "{text}"
    );
    assert!(text.contains("run with --explain"), "{text}");
}

#[test]
fn explain_adds_the_why_and_the_fix() {
    let text = stdout(&check(&[&fixture("dangerous.yaml"), "--explain"]));
    assert!(text.contains("| "), "{text}");
    assert!(
        text.contains("the first inconclusive measurement ends the run"),
        "{text}"
    );
}

#[test]
fn old_controllers_get_the_upgrade_advice() {
    let text = stdout(&check(&[
        &fixture("dangerous.yaml"),
        "--argo-rollouts-version",
        "v1.8.1",
    ]));
    assert!(text.contains("high    inconclusive-timed-pause"), "{text}");
    assert!(text.contains("upgrade Argo Rollouts to >=1.8.2"), "{text}");
    assert!(
        !text.contains("inconclusive-promotion"),
        "D2 is a >= 1.8.2 rule: {text}"
    );
}

#[test]
fn safe_manifests_pass() {
    let out = check(&[&fixture("safe.yaml")]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("no findings"));
}

#[test]
fn fail_on_moves_the_threshold() {
    assert_eq!(
        check(&[&fixture("dangerous.yaml"), "--fail-on", "error"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        check(&[&fixture("dangerous.yaml"), "--fail-on", "high"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn malformed_documents_are_reported_and_the_rest_still_checked() {
    let out = check(&[&fixture("malformed.yaml")]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(text.contains("malformed.yaml:"), "{text}");
    assert!(text.contains("document 1: invalid YAML"), "{text}");
    // The second document is still read and its own problem reported, at its field's line.
    assert!(
        text.contains("invalid-duration  spec.metrics[0].interval  (line 18)"),
        "{text}"
    );
    assert!(text.contains("interval `30` is not a duration"), "{text}");
}

#[test]
fn json_output_carries_findings_errors_and_lines() {
    let out = check(&[
        &fixture("dangerous.yaml"),
        &fixture("malformed.yaml"),
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    let d1 = findings
        .iter()
        .find(|f| f["rule"] == "inconclusive-timed-pause");
    let d1 = d1.unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(d1["severity"], "medium");
    assert_eq!(d1["path"], "spec.strategy.canary.steps[1].pause.duration");
    assert_eq!(d1["line"], 35);
    assert_eq!(d1["object"]["name"], "shop");
    assert_eq!(v["errors"][0]["document"], 1);
    assert!(v["errors"][0]["line"].as_u64().is_some());
}

#[test]
fn sarif_output_annotates_the_field_line() {
    let out = check(&[&fixture("dangerous.yaml"), "-o", "sarif"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert!(run["tool"]["driver"]["rules"].as_array().unwrap().len() >= 15);
    let result = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "inconclusive-promotion")
        .unwrap();
    assert_eq!(result["level"], "error");
    let region = &result["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 35);
    let rule_index = result["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(
        run["tool"]["driver"]["rules"][rule_index]["id"],
        "inconclusive-promotion"
    );
}

/// Runs `check` with `args`, the fixture `name` piped to its stdin.
fn check_stdin(args: &[&str], name: &str) -> Output {
    check_piped(args, &std::fs::read(fixture(name)).unwrap())
}

/// Runs `check` with `args`, `text` piped to its stdin.
fn check_piped(args: &[&str], text: &[u8]) -> Output {
    check_piped_in(std::path::Path::new("."), args, text)
}

/// [`check_piped`] run in `dir` (for relative paths).
fn check_piped_in(dir: &std::path::Path, args: &[&str], text: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollout-guard"))
        .arg("check")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn reads_stdin() {
    let out = check_stdin(&["-"], "dangerous.yaml");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("-:"), "{}", stdout(&out));
    // Named twice, read once, like a file.
    let out = check_stdin(&["-", "-", "-o", "json"], "dangerous.yaml");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["files"], 1, "{report:#}");
}

/// A file piped in is reported under the name `--stdin-name` gives, so SARIF annotations land
/// on a file of the repository rather than on `-`.
#[test]
fn stdin_is_reported_under_the_name_given() {
    let out = check_stdin(
        &["-", "--stdin-name", "deploy/shop.yaml", "-o", "sarif"],
        "dangerous.yaml",
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for result in results {
        assert_eq!(
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "deploy/shop.yaml",
            "{result:#}"
        );
    }
}

/// A `--stdin-name` that is also a file of the run would merge the two in findings and line
/// lookups: stdin is refused with an error saying so, and the file is still checked.
#[test]
fn stdin_name_of_a_file_also_read_is_refused() {
    let file = fixture("dangerous.yaml");
    let file = file.as_str();
    let out = check_stdin(&["-", file, "--stdin-name", file], "dangerous.yaml");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("stdin not read") && text.contains("this run also reads, so findings"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{file}:")) && text.contains("inconclusive-timed-pause"),
        "{text}"
    );
    // Any other name is read as before.
    let out = check_stdin(&["-", file, "--stdin-name", "piped.yaml"], "dangerous.yaml");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("piped.yaml:"), "{}", stdout(&out));
}

#[test]
fn missing_paths_and_bad_flags_are_usage_errors() {
    let out = check(&["/nonexistent/manifests.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("cannot read file"),
        "{}",
        stdout(&out)
    );
    let out = check(&[&fixture("safe.yaml"), "--argo-rollouts-version", "latest"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a version"));
}

#[test]
fn templates_dir_resolves_references() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("dangerous.yaml")).unwrap();
    let (template, rollout) = text.split_once("\n---\n").unwrap();
    std::fs::write(dir.path().join("template.yaml"), template).unwrap();
    let rollout_file = dir.path().join("rollout.yml");
    std::fs::write(&rollout_file, rollout).unwrap();
    let alone = stdout(&check(&[rollout_file.to_str().unwrap()]));
    assert!(alone.contains("missing-template"), "{alone}");
    let tdir = dir.path().join("t");
    std::fs::create_dir(&tdir).unwrap();
    std::fs::rename(dir.path().join("template.yaml"), tdir.join("template.yaml")).unwrap();
    let with = stdout(&check(&[
        rollout_file.to_str().unwrap(),
        "--templates",
        tdir.to_str().unwrap(),
    ]));
    assert!(with.contains("inconclusive-timed-pause"), "{with}");
}

#[test]
fn objects_sharing_a_name_are_reported_where_each_was_read() {
    // A plain Rollout and two flagged ones of the same name (a base and overlays), the two
    // flagged files each with a template `t`.
    let out = check(&[&fixture("same-name"), "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut d1: Vec<(String, u64, String)> = findings_of(&v, "inconclusive-timed-pause")
        .into_iter()
        .map(|f| {
            let file = f["location"]["file"].as_str().unwrap();
            (
                file.rsplit('/').next().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    d1.sort();
    assert_eq!(d1.len(), 2, "{v:#}");
    assert_eq!((d1[0].0.as_str(), d1[0].1), ("2-flagged.yaml", 10));
    assert!(d1[0].2.contains("5m pause"), "{}", d1[0].2);
    assert_eq!((d1[1].0.as_str(), d1[1].1), ("3-flagged-again.yaml", 10));
    assert!(d1[1].2.contains("10m pause"), "{}", d1[1].2);
    let same = &v["summary"]["sameName"];
    assert_eq!(same.as_array().map(Vec::len), Some(1), "{v:#}");
    assert_eq!(same[0]["object"], "AnalysisTemplate/t");
    assert_eq!(same[0]["locations"].as_array().unwrap().len(), 2);

    let text = stdout(&check(&[&fixture("same-name")]));
    assert!(!text.contains("1-plain.yaml"), "{text}");
    assert!(
        text.contains("note: AnalysisTemplate/t is defined 2 times"),
        "{text}"
    );
}

/// Writes files into a fresh directory: (relative path, content).
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const BAD_PAUSE: &str = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: NAME
spec:
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {duration: 5x}
";

fn bad_pause(name: &str) -> String {
    BAD_PAUSE.replace("NAME", name)
}

/// A template is looked for nearest first: in the referrer's own file, then its directory, then
/// anywhere. A Rollout and its template that name no namespace, in one file, are judged together,
/// whatever a template of the same name in `default` elsewhere says and whichever file is read
/// first; and a Rollout beside a template in `default` (kunal-1207's layout) uses that one, not
/// a namespace-less one elsewhere. The report notes the two templates either way.
#[test]
fn templates_resolve_nearest_first_and_namespace_guesses_are_noted() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples");
    let rollout = std::fs::read_to_string(root.join("shop-rollout.yaml")).unwrap();
    let template = std::fs::read_to_string(root.join("success-rate-template.yaml")).unwrap();
    assert!(!rollout.contains("namespace:") && !template.contains("namespace:"));
    // Only a successCondition: never Inconclusive, so judged against it the shop is not D1.
    let harmless = |namespace: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
{namespace}spec:
  metrics:
  - name: success-rate
    interval: 1m
    successCondition: result[0] >= 0.99
    provider:
      prometheus: {{address: http://p, query: q}}
"
        )
    };
    let in_default = harmless("  namespace: default\n");
    let dangerous_in_default = template.replace(
        "  name: success-rate\n",
        "  name: success-rate\n  namespace: default\n",
    );
    assert_ne!(dangerous_in_default, template);
    let together = format!("{rollout}\n---\n{template}");
    let cases: [(&[(&str, &str)], bool); 4] = [
        // The template in the Rollout's file wins over `default` elsewhere.
        (
            &[
                ("a-app/shop.yaml", &together),
                ("b-other/t.yaml", &in_default),
            ],
            true,
        ),
        (
            &[
                ("b-app/shop.yaml", &together),
                ("a-other/t.yaml", &in_default),
            ],
            true,
        ),
        // A template in `default` beside the Rollout wins over a namespace-less one elsewhere.
        (
            &[
                ("a-other/t.yaml", &harmless("")),
                ("b-app/shop.yaml", &rollout),
                ("b-app/t.yaml", &dangerous_in_default),
            ],
            true,
        ),
        (
            &[
                ("a-app/shop.yaml", &rollout),
                ("a-app/t.yaml", &dangerous_in_default),
                ("b-other/t.yaml", &harmless("")),
            ],
            true,
        ),
    ];
    for (files, dangerous) in cases {
        let dir = dir_with(files);
        let out = check(&[dir.path().to_str().unwrap(), "-o", "json"]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let findings = findings_of(&report, "inconclusive-timed-pause");
        assert_eq!(!findings.is_empty(), dangerous, "{files:?}: {findings:#?}");
        assert_eq!(out.status.code(), Some(1), "{files:?}");
        let notes = report["summary"]["sameName"].as_array().unwrap();
        assert_eq!(notes.len(), 1, "{files:?}: {notes:#?}");
        assert_eq!(
            notes[0]["object"], "AnalysisTemplate/success-rate",
            "{notes:#?}"
        );
        assert_eq!(notes[0]["orInDefault"], true, "{notes:#?}");
    }
    let dir = dir_with(cases[0].0);
    let text = stdout(&check(&[dir.path().to_str().unwrap()]));
    assert!(
        text.contains("note: AnalysisTemplate/success-rate, as a Rollout naming no namespace finds it, is defined 2 times"),
        "{text}"
    );
}

#[test]
fn a_template_in_another_namespace_than_its_rollout_is_reported_once_where_it_was_read() {
    let template = "apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: t
spec:
  metrics:
  - name: m
    provider:
      prometheus: {address: http://p, query: q}
";
    let rollout = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: r
  namespace: prod
spec:
  strategy:
    canary:
      steps:
      - analysis:
          templates:
          - templateName: t
";
    let dir = dir_with(&[("tpl.yaml", template), ("ro.yaml", rollout)]);
    let out = check(&[dir.path().to_str().unwrap(), "-o", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = findings_of(&report, "metric-without-conditions");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0]["object"],
        serde_json::json!({"kind": "AnalysisTemplate", "name": "t"})
    );
    assert!(
        found[0]["location"]["file"]
            .as_str()
            .unwrap()
            .ends_with("tpl.yaml"),
        "{found:#?}"
    );
}

#[test]
fn text_groups_each_object_once() {
    let dir = dir_with(&[
        (
            "a.yaml",
            &format!("{}      - pause: {{duration: -1s}}\n", bad_pause("b")),
        ),
        ("b.yaml", &bad_pause("c")),
    ]);
    let text = stdout(&check(&[dir.path().to_str().unwrap()]));
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("Rollout/")).collect();
    assert_eq!(headers.len(), 2, "{text}");
}

#[test]
fn unusual_but_valid_files_are_read_and_odd_ones_reported() {
    let bom = "\u{feff}";
    let dir = dir_with(&[
        // A JSON manifest: its findings carry the field's line.
        (
            "r.json",
            r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
 "metadata": {"name": "j"},
 "spec": {"strategy": {"canary": {"steps": [
   {"pause": {"duration": "5x"}}]}}}}"#,
        ),
        // A YAML directive before the first document.
        (
            "directive.yaml",
            &format!("%YAML 1.1\n---\n{}", bad_pause("d")),
        ),
        // Two files joined with cat, each with its byte order mark.
        (
            "joined.yaml",
            &format!("{bom}{}---\n{bom}{}", bad_pause("e"), bad_pause("f")),
        ),
        // An Argo kind without apiVersion: reported, not skipped as another tool's object.
        (
            "noapi.yaml",
            &bad_pause("g").replace("apiVersion: argoproj.io/v1alpha1\n", ""),
        ),
    ]);
    let out = check(&[dir.path().to_str().unwrap(), "-o", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let located = |name: &str| -> Vec<(String, Value)> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["object"]["name"] == name)
            .map(|f| (f["location"]["document"].to_string(), f["line"].clone()))
            .collect()
    };
    assert_eq!(located("j"), [("1".to_owned(), Value::from(4))]);
    assert_eq!(located("d"), [("1".to_owned(), Value::from(12))]);
    assert_eq!(located("e"), [("1".to_owned(), Value::from(10))]);
    assert_eq!(located("f"), [("2".to_owned(), Value::from(21))]);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Rollout has no `apiVersion`"),
        "{errors:#?}"
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_file_named_twice_is_read_once_and_broken_links_to_other_files_are_ignored() {
    let dir = dir_with(&[("r.yaml", &bad_pause("r"))]);
    std::os::unix::fs::symlink("/nonexistent/README", dir.path().join("README.md")).unwrap();
    let root = dir.path().to_str().unwrap();
    let file = dir.path().join("r.yaml");
    let out = check(&[root, file.to_str().unwrap(), root, "-o", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["findings"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    assert_eq!(report["errors"], serde_json::json!([]));
    assert_eq!(report["summary"]["files"], 1);
    assert!(
        report["summary"]
            .get("sameName")
            .is_none_or(|s| s == &serde_json::json!([]))
    );
}

/// Input errors come in reading order: a file named first before a broken manifest link in
/// a directory named after it.
#[test]
fn input_errors_are_reported_in_reading_order() {
    let dir = dir_with(&[
        ("bad.yaml", "kind: [unclosed\n"),
        (
            "d/ok.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        ),
    ]);
    std::os::unix::fs::symlink("/nonexistent/r.yaml", dir.path().join("d/broken.yaml")).unwrap();
    let bad = dir.path().join("bad.yaml");
    let d = dir.path().join("d");
    let out = check(&[bad.to_str().unwrap(), d.to_str().unwrap(), "-o", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["file"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "{report:#}");
    assert!(
        files[0].ends_with("bad.yaml") && files[1].ends_with("broken.yaml"),
        "{files:?}"
    );
}

#[test]
fn merge_keys_are_applied_and_duplicate_keys_refused_as_kubectl_does() {
    let merged = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: m
x-defaults: &steps
  steps:
  - setWeight: 20
  - pause: {duration: 5x}
spec:
  strategy:
    canary:
      <<: *steps
";
    let duplicated = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: d
spec:
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {duration: 30s, duration: 5x}
";
    let dir = dir_with(&[("merged.yaml", merged), ("duplicated.yaml", duplicated)]);
    let out = check(&[dir.path().to_str().unwrap(), "-o", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The steps reached through `<<` are checked.
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| { f["object"]["name"] == "m" && f["rule"] == "invalid-duration" }),
        "{report:#}"
    );
    // A key given twice is an error with its place, not the later value silently used.
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("duplicate entry with key \"duration\""),
        "{message}"
    );
    assert!(
        errors[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("duplicated.yaml")
    );
    assert_eq!(errors[0]["line"], 10);
    assert_eq!(out.status.code(), Some(2));
}

/// `helm template ... | rollout-guard check -` with a failing helm (no `pipefail`) pipes
/// nothing: that is an input error, not a pass. `--allow-empty` accepts it.
#[test]
fn nothing_to_check_is_an_input_error_unless_allowed() {
    for empty in [&b""[..], b"\n", b"# only a comment\n---\n"] {
        let out = check_piped(&["-"], empty);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        let text = stdout(&out);
        assert!(
            text.contains("error: -: nothing to check: no Kubernetes object on stdin;")
                && text.contains("set -o pipefail")
                && text.contains("--allow-empty"),
            "{text}"
        );
        let out = check_piped(&["-", "--allow-empty"], empty);
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    }

    // A directory of other tools' files only (a chart's values), or none at all.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().to_str().unwrap();
    let out = check(&[empty, "-o", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"][0]["file"], empty);
    std::fs::write(dir.path().join("values.yaml"), "replicaCount: 2\n").unwrap();
    let text = stdout(&check(&[empty]));
    assert!(
        text.contains("nothing to check: no Kubernetes object here (1 file(s) read in all);")
            && !text.contains("pipefail"),
        "{text}"
    );
    // Each path given is its own error, named as given (a `file` is one input), once.
    let other = tempfile::tempdir().unwrap();
    let other = other.path().to_str().unwrap();
    let out = check(&[empty, other, empty, "-o", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, [empty, other]);
    assert_eq!(check(&[empty, "--allow-empty"]).status.code(), Some(0));

    // One Kubernetes object of any kind is something checked.
    std::fs::write(
        dir.path().join("svc.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: shop\n",
    )
    .unwrap();
    let out = check(&[empty]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// `check deploy/ | head` in a pipeline: the reader stops early, and the verdict still decides
/// the exit code (a report larger than a pipe's buffer, so the write does fail).
#[test]
fn a_reader_that_stops_early_does_not_turn_findings_into_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let rollout = std::fs::read_to_string(fixture("dangerous.yaml")).unwrap();
    for i in 0..200 {
        let renamed = rollout.replace("name: shop\n", &format!("name: shop-{i}\n"));
        assert_ne!(renamed, rollout);
        std::fs::write(dir.path().join(format!("r{i}.yaml")), renamed).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollout-guard"))
        .args(["check", "--explain", dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(1));

    // The whole report is indeed larger than a pipe holds.
    let out = check(&["--explain", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.len() > 256 << 10, "{} bytes", out.stdout.len());
}

/// `check` run in `dir` (for relative paths).
fn check_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rollout-guard"))
        .arg("check")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn example(name: &str) -> String {
    let path = format!("{}/docs/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

/// app1 holds the Rollout and the template that can end Inconclusive; app2 a template of the
/// same name that cannot (no failureCondition). The nearest is app1's, however the paths are
/// spelt: `./app1/...`, `app1/...` and absolute paths are one directory.
#[test]
fn the_nearest_template_does_not_depend_on_how_paths_are_spelt() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let template = example("success-rate-template.yaml");
    let tame = template.replace("    failureCondition: result[0] < 0.90\n", "");
    assert_ne!(tame, template);
    for (sub, text) in [
        ("app1/shop.yaml", example("shop-rollout.yaml")),
        ("app1/tpl.yaml", template),
        ("app2/tpl.yaml", tame),
    ] {
        std::fs::create_dir_all(root.join(sub).parent().unwrap()).unwrap();
        std::fs::write(root.join(sub), text).unwrap();
    }
    let absolute = root.join("app1/shop.yaml");
    let absolute = absolute.to_str().unwrap();
    for args in [
        &["app1/shop.yaml", "app1/tpl.yaml", "app2/tpl.yaml"][..],
        &["./app1/shop.yaml", "app1/tpl.yaml", "app2/tpl.yaml"],
        &[
            "./app1/shop.yaml",
            "--templates",
            "app1",
            "--templates",
            "app2",
        ],
        &[absolute, "--templates", "app1", "--templates", "./app2"],
    ] {
        let out = check_in(root, args);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        assert!(
            text.contains("high    inconclusive-promotion"),
            "{args:?}: {text}"
        );
    }
}

/// A chart whose render failed pipes nothing, beside a directory that holds objects: the empty
/// stdin is an input error all the same, unless `--allow-empty`.
#[test]
fn an_empty_stdin_beside_other_inputs_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tpl.yaml"),
        example("success-rate-template.yaml"),
    )
    .unwrap();
    let templates = dir.path().to_str().unwrap();
    let out = check_piped(&["-", templates, "-o", "json"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["file"], "-");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("nothing to check: no Kubernetes object on stdin"),
        "{errors:?}"
    );
    let out = check_piped(&["-", templates, "--allow-empty"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Stdin with an object beside the same directory is a plain run.
    let rollout = example("shop-rollout.yaml");
    let out = check_piped(&["-", templates], rollout.as_bytes());
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}

/// The inputs and `--templates` are one run: a file read as both counts once, stdin is read
/// once, and `--stdin-name` may not name a file `--templates` reads either.
#[test]
fn inputs_and_templates_are_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("shop.yaml"), example("shop-rollout.yaml")).unwrap();
    std::fs::write(root.join("tpl.yaml"), example("success-rate-template.yaml")).unwrap();

    let out = check_in(root, &[".", "--templates", "./", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["sameName"], Value::Null, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!([]));

    let rollout = example("shop-rollout.yaml");
    let args = ["-", "--templates", "-", "--templates", "tpl.yaml"];
    let out = check_piped_in(root, &args, rollout.as_bytes());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("error: -: `--templates -` not read"),
        "{text}"
    );
    assert!(text.contains("high    inconclusive-promotion"), "{text}");

    let args = ["-", "--stdin-name", "tpl.yaml", "--templates", "."];
    let out = check_piped_in(root, &args, rollout.as_bytes());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("stdin not read: `--stdin-name tpl.yaml`"),
        "{text}"
    );
}

/// A directory `check` cannot read is an input error, not a silent skip: the manifests in it
/// would be lost. Root reads any directory, so as root the run is made as `nobody`.
#[test]
fn an_unreadable_directory_is_an_input_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(root, open.clone()).unwrap();
    std::fs::write(root.join("tpl.yaml"), example("success-rate-template.yaml")).unwrap();
    let locked = root.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("shop.yaml"), example("shop-rollout.yaml")).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Listed but not entered (no search permission): what is in it cannot even be looked at.
    let shut = root.join("shut");
    std::fs::create_dir_all(shut.join("sub")).unwrap();
    std::fs::write(shut.join("sub/shop.yaml"), example("shop-rollout.yaml")).unwrap();
    std::fs::set_permissions(&shut, std::fs::Permissions::from_mode(0o644)).unwrap();

    let mut command = if std::fs::read_dir(&locked).is_ok() {
        // A copy of the binary nobody can run wherever the checkout is.
        let binary = root.join("rollout-guard");
        std::fs::copy(env!("CARGO_BIN_EXE_rollout-guard"), &binary).unwrap();
        std::fs::set_permissions(&binary, open).unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(binary);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_rollout-guard"))
    };
    let out = command.arg("check").arg(root).output().unwrap();
    let text = stdout(&out);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&shut, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for unread in [&locked, &shut.join("sub")] {
        let said = format!("error: {}: cannot read directory entry", unread.display());
        assert!(text.contains(&said), "{said} in {text}");
    }
    assert!(text.contains("Permission denied"), "{text}");
}

/// A line break in a file name or a manifest string is printed escaped: raw, it would start a
/// line of its own in the CI log, which GitHub Actions reads as a workflow command.
#[test]
fn control_characters_cannot_start_lines_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let name = "x\n::error file=README.md::injected\n.yaml";
    let template = example("success-rate-template.yaml").replace(
        "  - name: success-rate\n",
        "  - name: \"success-rate\\n::warning file=x::injected\"\n",
    );
    // A second, broken document: its error names the file.
    std::fs::write(dir.path().join(name), format!("{template}---\nkind: [\n")).unwrap();
    std::fs::write(dir.path().join("shop.yaml"), example("shop-rollout.yaml")).unwrap();
    let out = check(&[dir.path().to_str().unwrap(), "--explain"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(r"success-rate\n::warning"), "{text}");
    assert!(
        text.contains(r"x\n::error file=README.md::injected\n.yaml:"),
        "{text}"
    );
    for line in text.lines() {
        assert!(!line.starts_with("::"), "{line:?} in\n{text}");
    }
}

/// A link in a directory to a template elsewhere counts as in the directory it was found in:
/// the README's "one read in the same directory" is where the user put it.
#[test]
fn a_linked_template_is_in_the_directory_of_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let template = example("success-rate-template.yaml");
    let tame = template.replace("    failureCondition: result[0] < 0.90\n", "");
    for sub in ["shared", "app1", "app2"] {
        std::fs::create_dir(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("shared/success-rate.yaml"), template).unwrap();
    std::fs::write(root.join("app2/tpl.yaml"), tame).unwrap();
    std::fs::write(root.join("app1/shop.yaml"), example("shop-rollout.yaml")).unwrap();
    std::os::unix::fs::symlink("../shared/success-rate.yaml", root.join("app1/tpl.yaml")).unwrap();
    let out = check_in(root, &["app1", "app2"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("high    inconclusive-promotion"), "{text}");
    // The target's own directory keeps it too, whichever is read first; a file and a link
    // to it beside it are read once.
    std::fs::write(root.join("shared/shop.yaml"), example("shop-rollout.yaml")).unwrap();
    std::os::unix::fs::symlink("shop.yaml", root.join("shared/a-link.yaml")).unwrap();
    let text = stdout(&check_in(root, &["."]));
    assert_eq!(
        text.matches("high    inconclusive-promotion").count(),
        2,
        "{text}"
    );
}
