//! A renderer for exactly the Go-template/Helm subset `charts/rollout-guard` uses, so the chart
//! can be tested on a machine without the helm binary.
//!
//! Why this is honest: it implements Go `text/template` semantics for what it supports
//! (whitespace trimming with `{{-`/`-}}`, pipelines passing the value as the last argument,
//! Go truthiness, `with` rebinding the dot, `$` as the data of the current execution, variable
//! scopes ending at `{{ end }}`) and Sprig/Helm semantics for the functions it knows. Anything
//! else (an unknown function or keyword, printing a missing value, a map printed as text, a
//! field of a missing value) is an error, not a guess, so a template that uses a construct this
//! renderer does not know makes the test fail instead of silently passing. It is stricter than
//! Helm on missing values (Helm prints nothing), which catches misspelt value names.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;

pub type Result<T, E = String> = std::result::Result<T, E>;

/// A loaded chart: its templates parsed, its `define`s collected, its default values.
pub struct Chart {
    pub meta: Value,
    pub values: Value,
    templates: BTreeMap<String, Vec<Node>>,
    defines: BTreeMap<String, Vec<Node>>,
}

impl Chart {
    pub fn load(dir: &Path) -> Result<Self> {
        let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        let chart_yaml: Value = serde_yaml::from_str(&read(&dir.join("Chart.yaml"))?)
            .map_err(|e| format!("Chart.yaml: {e}"))?;
        let field = |k: &str| chart_yaml.get(k).cloned().unwrap_or(Value::Null);
        // Helm exposes Chart.yaml under capitalised names.
        let meta = serde_json::json!({
            "Name": field("name"),
            "Version": field("version"),
            "AppVersion": field("appVersion"),
        });
        let values: Value = serde_yaml::from_str(&read(&dir.join("values.yaml"))?)
            .map_err(|e| format!("values.yaml: {e}"))?;

        let mut templates = BTreeMap::new();
        let mut defines = BTreeMap::new();
        let mut entries: Vec<_> = fs::read_dir(dir.join("templates"))
            .map_err(|e| format!("templates/: {e}"))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("templates/: {e}"))?;
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let nodes = parse(&read(&path)?, &mut defines).map_err(|e| format!("{name}: {e}"))?;
            // Helm renders every file except partials (leading underscore).
            if !name.starts_with('_') {
                templates.insert(name, nodes);
            } else if nodes
                .iter()
                .any(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()))
            {
                return Err(format!("{name}: a partial may only hold defines"));
            }
        }
        Ok(Self {
            meta,
            values,
            templates,
            defines,
        })
    }

    /// Renders every template with the default values deep-merged with `overrides` (as
    /// `helm template -f overrides.yaml` does). Returns file name → output.
    pub fn render(
        &self,
        overrides: &Value,
        release: &str,
        namespace: &str,
    ) -> Result<BTreeMap<String, String>> {
        let mut values = self.values.clone();
        merge(&mut values, overrides);
        let root = serde_json::json!({
            "Values": values,
            "Release": {"Name": release, "Namespace": namespace, "Service": "Helm",
                        "IsInstall": true, "IsUpgrade": false, "Revision": 1},
            "Chart": self.meta,
        });
        let mut out = BTreeMap::new();
        for (name, nodes) in &self.templates {
            let mut exec = Exec {
                chart: self,
                root: root.clone(),
                scopes: vec![Vec::new()],
                depth: 0,
            };
            let mut text = String::new();
            exec.run(nodes, &root, &mut text)
                .map_err(|e| format!("{name}: {e}"))?;
            out.insert(name.clone(), text);
        }
        Ok(out)
    }
}

/// Renders one template source against `values` with no chart around it (for testing the
/// renderer itself).
pub fn render_source(src: &str, values: &Value) -> Result<String> {
    let mut defines = BTreeMap::new();
    let nodes = parse(src, &mut defines)?;
    let chart = Chart {
        meta: Value::Null,
        values: Value::Null,
        templates: BTreeMap::new(),
        defines,
    };
    let root = serde_json::json!({ "Values": values });
    let mut exec = Exec {
        chart: &chart,
        root: root.clone(),
        scopes: vec![Vec::new()],
        depth: 0,
    };
    let mut out = String::new();
    exec.run(&nodes, &root, &mut out)?;
    Ok(out)
}

/// Helm's coalescing of values files: maps merge key by key, anything else replaces.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Output(Pipeline),
    Declare(String, Pipeline),
    If(Vec<(Pipeline, Vec<Node>)>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Range(Vec<String>, Pipeline, Vec<Node>, Vec<Node>),
}

type Pipeline = Vec<Command>;
type Command = Vec<Arg>;

#[derive(Debug, Clone)]
enum Base {
    Dot,
    Root,
    Var(String),
}

#[derive(Debug, Clone)]
enum Arg {
    Field(Base, Vec<String>),
    Str(String),
    Int(i64),
    Bool(bool),
    Func(String),
    Sub(Pipeline),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(String), // `.a.b` as "a.b", `.` as ""
    Var(String),   // `$x.a` as "x.a", `$` as "", `$.a` as ".a"
    Str(String),
    Int(i64),
    Ident(String),
    Pipe,
    Open,
    Close,
    Declare,
    Comma,
}

/// One piece of template source.
enum Item {
    Text(String),
    Action(Vec<Tok>),
}

/// Splits into text and actions, applying `{{-` / `-}}` trimming and dropping comments.
fn lex(src: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_owned();
        if trim_next {
            text = text.trim_start().to_owned();
        }
        let after = &rest[start + 2..];
        let (trim_left, inner_start) = if after.starts_with("- ") || after.starts_with("-\n") {
            (true, &after[2..])
        } else if after.starts_with('-') {
            return Err("`{{-` must be followed by a space".into());
        } else {
            (false, after)
        };
        if trim_left {
            text = text.trim_end().to_owned();
        }
        if !text.is_empty() {
            items.push(Item::Text(text));
        }
        let end = inner_start
            .find("}}")
            .ok_or_else(|| "unclosed `{{`".to_owned())?;
        let mut inner = &inner_start[..end];
        trim_next = false;
        if inner.ends_with(" -") || inner.ends_with("\n-") {
            trim_next = true;
            inner = &inner[..inner.len() - 2];
        } else if inner.ends_with('-') && !inner.trim().is_empty() {
            return Err(format!("`-}}}}` must follow a space in `{{{{{inner}}}}}`"));
        }
        rest = &inner_start[end + 2..];
        let trimmed = inner.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err(format!("unterminated comment `{trimmed}`"));
            }
            continue;
        }
        items.push(Item::Action(tokens(trimmed)?));
    }
    let mut text = rest.to_owned();
    if trim_next {
        text = text.trim_start().to_owned();
    }
    if !text.is_empty() {
        items.push(Item::Text(text));
    }
    Ok(items)
}

fn tokens(src: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    // Identifiers, field chains (`.a.b`) and numbers; Go identifiers have no `-`.
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_alphanumeric() || matches!(chars[*i], '_' | '.')) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated string in `{src}`")),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some('"') => s.push('"'),
                                Some('\\') => s.push('\\'),
                                other => return Err(format!("unsupported escape {other:?}")),
                            }
                        }
                        Some(&ch) => s.push(ch),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(s));
            }
            '.' => {
                i += 1;
                let w = word(&mut i);
                out.push(Tok::Field(w));
            }
            '$' => {
                i += 1;
                let w = word(&mut i);
                out.push(Tok::Var(w));
            }
            c if c.is_ascii_digit() => {
                let w = word(&mut i);
                let n = w.parse().map_err(|_| format!("unsupported number `{w}`"))?;
                out.push(Tok::Int(n));
            }
            c if c.is_alphabetic() => out.push(Tok::Ident(word(&mut i))),
            other => return Err(format!("unsupported character `{other}` in `{src}`")),
        }
    }
    Ok(out)
}

/// Parses a template; `define`d blocks go into `defines`.
fn parse(src: &str, defines: &mut BTreeMap<String, Vec<Node>>) -> Result<Vec<Node>> {
    let items = lex(src)?;
    let mut pos = 0;
    let (nodes, end) = parse_list(&items, &mut pos, defines)?;
    match end {
        None => Ok(nodes),
        Some(kw) => Err(format!("unexpected `{{{{ {kw} }}}}`")),
    }
}

/// How a list of nodes ended.
enum End {
    End,
    Else(Vec<Tok>),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::End => f.write_str("end"),
            End::Else(_) => f.write_str("else"),
        }
    }
}

fn parse_list(
    items: &[Item],
    pos: &mut usize,
    defines: &mut BTreeMap<String, Vec<Node>>,
) -> Result<(Vec<Node>, Option<End>)> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let item = &items[*pos];
        *pos += 1;
        let toks = match item {
            Item::Text(t) => {
                nodes.push(Node::Text(t.clone()));
                continue;
            }
            Item::Action(toks) => toks,
        };
        let keyword = match toks.first() {
            Some(Tok::Ident(k)) => k.as_str(),
            _ => "",
        };
        match keyword {
            "end" if toks.len() == 1 => return Ok((nodes, Some(End::End))),
            "else" => return Ok((nodes, Some(End::Else(toks[1..].to_vec())))),
            "if" => {
                let mut branches = vec![(pipeline(&toks[1..])?, Vec::new())];
                let mut otherwise = Vec::new();
                loop {
                    let (body, end) = parse_list(items, pos, defines)?;
                    branches.last_mut().unwrap().1 = body;
                    match end {
                        Some(End::End) => break,
                        Some(End::Else(rest)) if rest.is_empty() => {
                            let (body, end) = parse_list(items, pos, defines)?;
                            if !matches!(end, Some(End::End)) {
                                return Err("`else` must be followed by `end`".into());
                            }
                            otherwise = body;
                            break;
                        }
                        Some(End::Else(rest)) if rest.first() == Some(&Tok::Ident("if".into())) => {
                            branches.push((pipeline(&rest[1..])?, Vec::new()));
                        }
                        Some(End::Else(_)) => return Err("only `else` and `else if` exist".into()),
                        None => return Err("`if` without `end`".into()),
                    }
                }
                nodes.push(Node::If(branches, otherwise));
            }
            "with" | "range" => {
                let (body, end) = parse_list(items, pos, defines)?;
                let otherwise = match end {
                    Some(End::End) => Vec::new(),
                    Some(End::Else(rest)) if rest.is_empty() => {
                        let (body, end) = parse_list(items, pos, defines)?;
                        if !matches!(end, Some(End::End)) {
                            return Err(format!("`{keyword} ... else` without `end`"));
                        }
                        body
                    }
                    _ => return Err(format!("`{keyword}` without `end`")),
                };
                if keyword == "with" {
                    nodes.push(Node::With(pipeline(&toks[1..])?, body, otherwise));
                } else {
                    let (vars, pipe) = range_header(&toks[1..])?;
                    nodes.push(Node::Range(vars, pipe, body, otherwise));
                }
            }
            "define" => {
                let name = match &toks[1..] {
                    [Tok::Str(name)] => name.clone(),
                    _ => return Err("`define` takes one string".into()),
                };
                let (body, end) = parse_list(items, pos, defines)?;
                if !matches!(end, Some(End::End)) {
                    return Err(format!("define {name:?} without `end`"));
                }
                if defines.insert(name.clone(), body).is_some() {
                    return Err(format!("define {name:?} twice"));
                }
            }
            "template" | "block" | "break" | "continue" | "end" => {
                return Err(format!("unsupported action `{keyword}` in {toks:?}"));
            }
            _ => match toks.as_slice() {
                [Tok::Var(name), Tok::Declare, rest @ ..] if !name.contains('.') => {
                    nodes.push(Node::Declare(name.clone(), pipeline(rest)?));
                }
                _ => nodes.push(Node::Output(pipeline(toks)?)),
            },
        }
    }
    Ok((nodes, None))
}

fn range_header(toks: &[Tok]) -> Result<(Vec<String>, Pipeline)> {
    match toks {
        [Tok::Var(v), Tok::Declare, rest @ ..] => Ok((vec![v.clone()], pipeline(rest)?)),
        [
            Tok::Var(k),
            Tok::Comma,
            Tok::Var(v),
            Tok::Declare,
            rest @ ..,
        ] => Ok((vec![k.clone(), v.clone()], pipeline(rest)?)),
        _ => Ok((Vec::new(), pipeline(toks)?)),
    }
}

fn pipeline(toks: &[Tok]) -> Result<Pipeline> {
    let mut commands = Vec::new();
    let mut current = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Pipe => {
                if current.is_empty() {
                    return Err("empty command in pipeline".into());
                }
                commands.push(std::mem::take(&mut current));
            }
            Tok::Open => {
                let mut depth = 1;
                let start = i + 1;
                while depth > 0 {
                    i += 1;
                    match toks.get(i) {
                        Some(Tok::Open) => depth += 1,
                        Some(Tok::Close) => depth -= 1,
                        Some(_) => {}
                        None => return Err("unbalanced `(`".into()),
                    }
                }
                current.push(Arg::Sub(pipeline(&toks[start..i])?));
            }
            Tok::Field(path) => current.push(Arg::Field(Base::Dot, split_path(path))),
            Tok::Var(v) => {
                let (base, path) = match v.split_once('.') {
                    Some(("", path)) => (Base::Root, split_path(path)),
                    Some((name, path)) => (Base::Var(name.to_owned()), split_path(path)),
                    None if v.is_empty() => (Base::Root, Vec::new()),
                    None => (Base::Var(v.clone()), Vec::new()),
                };
                current.push(Arg::Field(base, path));
            }
            Tok::Str(s) => current.push(Arg::Str(s.clone())),
            Tok::Int(n) => current.push(Arg::Int(*n)),
            Tok::Ident(w) if w == "true" || w == "false" => current.push(Arg::Bool(w == "true")),
            Tok::Ident(w) => current.push(Arg::Func(w.clone())),
            other => return Err(format!("unexpected {other:?}")),
        }
        i += 1;
    }
    if current.is_empty() {
        return Err("empty pipeline".into());
    }
    commands.push(current);
    Ok(commands)
}

fn split_path(path: &str) -> Vec<String> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Execution

struct Exec<'a> {
    chart: &'a Chart,
    root: Value,
    scopes: Vec<Vec<(String, Value)>>,
    depth: usize,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn text_of(v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err("a missing (nil) value is printed".into()),
        other => Err(format!("a map or list is printed as text: {other}")),
    }
}

impl Exec<'_> {
    fn run(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Output(p) => out.push_str(&text_of(&self.pipe(p, dot)?)?),
                Node::Declare(name, p) => {
                    let v = self.pipe(p, dot)?;
                    self.scopes.last_mut().unwrap().push((name.clone(), v));
                }
                Node::If(branches, otherwise) => {
                    let mut done = false;
                    for (cond, body) in branches {
                        if truthy(&self.pipe(cond, dot)?) {
                            self.scoped(body, dot, out)?;
                            done = true;
                            break;
                        }
                    }
                    if !done {
                        self.scoped(otherwise, dot, out)?;
                    }
                }
                Node::With(p, body, otherwise) => {
                    let v = self.pipe(p, dot)?;
                    if truthy(&v) {
                        self.scoped(body, &v, out)?;
                    } else {
                        self.scoped(otherwise, dot, out)?;
                    }
                }
                Node::Range(vars, p, body, otherwise) => {
                    let v = self.pipe(p, dot)?;
                    let entries: Vec<(Value, Value)> = match &v {
                        Value::Array(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::from(i), x.clone()))
                            .collect(),
                        Value::Object(o) => o
                            .iter()
                            .map(|(k, x)| (Value::from(k.clone()), x.clone()))
                            .collect(),
                        Value::Null => Vec::new(),
                        other => return Err(format!("range over {other}")),
                    };
                    if entries.is_empty() {
                        self.scoped(otherwise, dot, out)?;
                    }
                    for (key, item) in entries {
                        self.scopes.push(Vec::new());
                        match vars.as_slice() {
                            [] => {}
                            [v] => self
                                .scopes
                                .last_mut()
                                .unwrap()
                                .push((v.clone(), item.clone())),
                            [k, v] => {
                                let scope = self.scopes.last_mut().unwrap();
                                scope.push((k.clone(), key));
                                scope.push((v.clone(), item.clone()));
                            }
                            _ => return Err("range takes at most two variables".into()),
                        }
                        let result = self.run(body, &item, out);
                        self.scopes.pop();
                        result?;
                    }
                }
            }
        }
        Ok(())
    }

    fn scoped(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
        self.scopes.push(Vec::new());
        let result = self.run(nodes, dot, out);
        self.scopes.pop();
        result
    }

    fn pipe(&mut self, p: &Pipeline, dot: &Value) -> Result<Value> {
        let mut piped = None;
        for cmd in p {
            piped = Some(self.command(cmd, dot, piped)?);
        }
        Ok(piped.unwrap())
    }

    fn command(&mut self, cmd: &Command, dot: &Value, piped: Option<Value>) -> Result<Value> {
        match cmd.as_slice() {
            [Arg::Func(name), rest @ ..] => {
                let mut args = rest
                    .iter()
                    .map(|a| self.arg(a, dot))
                    .collect::<Result<Vec<_>>>()?;
                args.extend(piped);
                self.call(name, args)
            }
            [single] if piped.is_none() => self.arg(single, dot),
            _ => Err(format!("cannot call a non-function: {cmd:?}")),
        }
    }

    fn arg(&mut self, arg: &Arg, dot: &Value) -> Result<Value> {
        match arg {
            Arg::Str(s) => Ok(Value::from(s.clone())),
            Arg::Int(n) => Ok(Value::from(*n)),
            Arg::Bool(b) => Ok(Value::from(*b)),
            Arg::Sub(p) => self.pipe(p, dot),
            Arg::Func(name) => self.call(name, Vec::new()),
            Arg::Field(base, path) => {
                let mut v = match base {
                    Base::Dot => dot.clone(),
                    Base::Root => self.root.clone(),
                    Base::Var(name) => self
                        .scopes
                        .iter()
                        .rev()
                        .flat_map(|s| s.iter().rev())
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                        .ok_or_else(|| format!("undefined variable ${name}"))?,
                };
                for (i, key) in path.iter().enumerate() {
                    v = match v {
                        Value::Object(mut o) => o.remove(key).unwrap_or(Value::Null),
                        other => {
                            return Err(format!(
                                "field `{key}` of a non-map ({other}) at .{}",
                                path[..=i].join(".")
                            ));
                        }
                    };
                }
                Ok(v)
            }
        }
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value> {
        let want = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!("{name} takes {n} arguments, got {}", args.len()))
            }
        };
        let string = |v: &Value| -> Result<String> {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{name}: expected a string, got {v}"))
        };
        let int = |v: &Value| -> Result<usize> {
            v.as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| format!("{name}: expected a number, got {v}"))
        };
        match name {
            "include" => {
                want(2)?;
                let template = string(&args[0])?;
                let nodes = self
                    .chart
                    .defines
                    .get(&template)
                    .ok_or_else(|| format!("include of undefined template {template:?}"))?;
                if self.depth > 50 {
                    return Err(format!("include recursion in {template:?}"));
                }
                // A nested execution: `$` is its data, and it sees no outer variables.
                let mut inner = Exec {
                    chart: self.chart,
                    root: args[1].clone(),
                    scopes: vec![Vec::new()],
                    depth: self.depth + 1,
                };
                let mut text = String::new();
                inner
                    .run(nodes, &args[1], &mut text)
                    .map_err(|e| format!("in {template:?}: {e}"))?;
                Ok(Value::from(text))
            }
            "default" => {
                want(2)?;
                Ok(if truthy(&args[1]) {
                    args[1].clone()
                } else {
                    args[0].clone()
                })
            }
            "required" => {
                want(2)?;
                if args[1].is_null() || args[1] == "" {
                    return Err(format!("required: {}", string(&args[0])?));
                }
                Ok(args[1].clone())
            }
            "quote" => {
                want(1)?;
                Ok(Value::from(
                    serde_json::to_string(&text_of(&args[0])?).unwrap(),
                ))
            }
            "toYaml" => {
                want(1)?;
                let yaml = serde_yaml::to_string(&args[0]).map_err(|e| format!("toYaml: {e}"))?;
                Ok(Value::from(yaml.trim_end_matches('\n').to_owned()))
            }
            "indent" | "nindent" => {
                want(2)?;
                let pad = " ".repeat(int(&args[0])?);
                let text = text_of(&args[1])?;
                let indented = format!("{pad}{}", text.replace('\n', &format!("\n{pad}")));
                Ok(Value::from(if name == "nindent" {
                    format!("\n{indented}")
                } else {
                    indented
                }))
            }
            "trunc" => {
                want(2)?;
                let n = int(&args[0])?;
                Ok(Value::from(
                    string(&args[1])?.chars().take(n).collect::<String>(),
                ))
            }
            "trimSuffix" => {
                want(2)?;
                let suffix = string(&args[0])?;
                let s = string(&args[1])?;
                Ok(Value::from(
                    s.strip_suffix(&suffix).unwrap_or(&s).to_owned(),
                ))
            }
            "contains" => {
                want(2)?;
                Ok(Value::from(string(&args[1])?.contains(&string(&args[0])?)))
            }
            "printf" => {
                let format = string(args.first().ok_or("printf without a format")?)?;
                let mut rest = args[1..].iter();
                let mut out = String::new();
                let mut chars = format.chars();
                while let Some(c) = chars.next() {
                    if c != '%' {
                        out.push(c);
                        continue;
                    }
                    match chars.next() {
                        Some('%') => out.push('%'),
                        Some('s' | 'd' | 'v') => {
                            let v = rest.next().ok_or("printf: too few arguments")?;
                            out.push_str(&text_of(v)?);
                        }
                        other => return Err(format!("printf verb {other:?} unsupported")),
                    }
                }
                if rest.next().is_some() {
                    return Err(format!("printf {format:?}: too many arguments"));
                }
                Ok(Value::from(out))
            }
            "eq" | "ne" => {
                want(2)?;
                let equal = args[0] == args[1];
                Ok(Value::from(if name == "eq" { equal } else { !equal }))
            }
            "not" => {
                want(1)?;
                Ok(Value::from(!truthy(&args[0])))
            }
            "and" => Ok(args
                .iter()
                .find(|a| !truthy(a))
                .or(args.last())
                .cloned()
                .unwrap_or(Value::Null)),
            "or" => Ok(args
                .iter()
                .find(|a| truthy(a))
                .or(args.last())
                .cloned()
                .unwrap_or(Value::Null)),
            other => Err(format!("unsupported function `{other}`")),
        }
    }
}

/// Splits rendered output into YAML documents the way Helm does (on `---` lines), dropping
/// documents that are only whitespace and comments.
pub fn documents(rendered: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for part in rendered.split("\n---") {
        let part = part.trim_start_matches("---");
        let meaningful = part
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if !meaningful {
            continue;
        }
        let doc: Value = serde_yaml::from_str(part).map_err(|e| format!("{e}\n{part}"))?;
        docs.push(doc);
    }
    Ok(docs)
}
