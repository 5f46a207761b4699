//! dryRun `metricName` patterns as Argo reads them: Go `regexp` syntax (RE2, Perl flags),
//! checked and matched by Rust's `regex` after a translation that keeps Go's reading.
//!
//! `translate` follows Go's parser token by token and writes what it reads in a form Rust
//! reads the same way:
//! - Escapes: `\Q...\E` (literal text), octal (`\141`), `\x`, C and punctuation escapes
//!   become characters; a lone `\1`-`\7` is refused, as Go refuses a backreference.
//! - Classes follow Go's rules: `-` is literal where it cannot make a range (`[\w-.]`), `[`
//!   is literal unless it opens a POSIX class (`[[]`), an unknown POSIX class is refused
//!   (`[[:foo:]]`), and `&&`, `--` and `~~` are plain characters.
//! - `\d`, `\s`, `\w` and `\b` are ASCII in Go; they become ASCII classes and Rust's ASCII
//!   word boundary, so they match what Go matches.
//! - Flags: only `i`, `m`, `s` and `U`, in every form Go takes (`(?)`, `(?i-i)`, `(?ii)`).
//! - A `{` that is not a well-formed repeat (`{n}`, `{n,}`, `{n,m}`, no leading zeros) is a
//!   literal. A repeat count over 1000 is refused, also as the product of nested counts
//!   (`(a{100}){11}`), and so are a repetition of a repetition (`a**`) and group names other
//!   than ASCII letters, digits and `_`. A repeat after flags or an empty `\Q\E` applies to
//!   the atom before them (`a(?i)*`, `a*\Q\E*` is `(a*)*`).
//! - Go's `\pC` leaves out unassigned code points and its `\p{Cs}` (surrogates) matches
//!   nothing; Rust's `C` takes them in and Rust has no `Cs`.
//!
//! Left to the Go version: Unicode class names are handed over as written, and Rust reads
//! them loosely (`\p{Letter}`, `\p{greek}`), as Go does from 1.25 on (golang/go#70780; before,
//! exact names only; 1.25 also puts unassigned code points in `C`); `(?<name>...)` is taken,
//! as from Go 1.22 on. Go before 1.23 could merge alternatives that differ only in case
//! folding (`A{2}|(?i)a{2}` did not match `aa`; golang/go#59007), which is not copied here.
//! Unicode classes and case folding follow Rust's Unicode tables, which
//! are newer than those of the Go that built a given controller, so characters added to
//! Unicode since can match differently. Left to Rust: a pattern whose compiled form is over
//! Rust's size limit (`\pL{1000}`, which Go takes), or that nests deeper than 250 levels (Go:
//! 999), is [`Refused::TooLarge`], not judged.
//!
//! `tests/fixtures/go-regexp.jsonl` holds Go's own verdicts and matches for the patterns the
//! tests compare (see `tools/go-regexp-oracle`).

use regex::Regex;
use regex_syntax::ast::{self, Ast, RepetitionKind, RepetitionRange};

/// Go's largest repeat count (`regexp/syntax`).
const MAX_REPEAT: u32 = 1000;

/// The message for a `\` that ends the pattern.
const TRAILING: &str = "trailing `\\` at the end of the pattern";

/// Why a pattern is not compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Go refuses it too: the message says what Go objects to.
    ByGo(String),
    /// Go may take it, but for Rust it is over the size limit of a compiled pattern or nests
    /// deeper than 250 levels (the limit that keeps compiling it within a thread's stack), so
    /// what it matches is not known here.
    TooLarge(String),
}

/// The class Go's `\d`, `\s`, `\w` (ASCII) and their negations stand for.
fn perl_class(letter: char) -> Option<&'static str> {
    Some(match letter {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        's' => "[\\t\\n\\x0C\\r ]",
        'S' => "[^\\t\\n\\x0C\\r ]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        _ => return None,
    })
}

/// The POSIX class names Go knows, each also negated (`[:^alpha:]`).
const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// A class that matches nothing: what a surrogate code point, which Go takes in an escape and
/// no text can hold, leaves of a class item.
const NOTHING: &str = "[^\\x00-\\x{10FFFF}]";

/// Compiles `pattern` as Go would accept it, or says why not.
pub fn compile(pattern: &str) -> Result<Regex, Refused> {
    let rust = translate(pattern)?;
    let parsed = ast::parse::Parser::new()
        .parse(&rust)
        .map_err(|e| match e.kind() {
            ast::ErrorKind::NestLimitExceeded(_) => Refused::TooLarge(e.kind().to_string()),
            kind => Refused::ByGo(kind.to_string()),
        })?;
    check(&parsed, MAX_REPEAT).map_err(Refused::ByGo)?;
    Regex::new(&rust).map_err(|e| match e {
        regex::Error::CompiledTooBig(_) => Refused::TooLarge(e.to_string()),
        _ => Refused::ByGo(e.to_string()),
    })
}

/// Reads `pattern` as Go does and writes it as a Rust pattern that matches the same texts, or
/// says what Go refuses in it. The balance of groups and a repeat with nothing to repeat are
/// left to Rust's parser, which refuses them as Go's does.
fn translate(pattern: &str) -> Result<String, Refused> {
    let mut w = Writer {
        out: String::with_capacity(pattern.len() + 16),
        ..Writer::default()
    };
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        let at = w.out.len();
        rest = &rest[c.len_utf8()..];
        match c {
            '\\' => {
                let (tail, last) = escape(rest, &mut w.out).map_err(Refused::ByGo)?;
                rest = tail;
                match last {
                    Some(start) => w.atom(start),
                    None => w.transparent = true,
                }
            }
            '[' => {
                rest = class(rest, &mut w.out).map_err(Refused::ByGo)?;
                w.atom(at);
            }
            '(' => match rest.strip_prefix('?') {
                Some(after) => {
                    let (tail, opened) = group(after, &mut w.out).map_err(Refused::ByGo)?;
                    rest = tail;
                    if opened {
                        w.open(at);
                    } else {
                        w.transparent = true;
                    }
                }
                None => {
                    w.out.push('(');
                    w.open(at);
                }
            },
            ')' => {
                w.out.push(')');
                match w.groups.pop() {
                    Some(start) => w.atom(start),
                    // Unbalanced: Rust's parser refuses it.
                    None => {
                        w.atom = None;
                        w.transparent = false;
                    }
                }
            }
            '|' => {
                w.out.push('|');
                w.atom = None;
                w.transparent = false;
            }
            '*' | '+' | '?' => {
                let lazy = rest.starts_with('?');
                let end = usize::from(lazy);
                w.repeat(&format!("{c}{}", &rest[..end]))?;
                rest = &rest[end..];
            }
            '{' => match repeat_counts(rest) {
                Some((min, max, tail)) => {
                    let op = repeat_op(min, max, &rest[..rest.len() - tail.len()])
                        .map_err(Refused::ByGo)?;
                    let lazy = tail.starts_with('?');
                    w.repeat(&(op + if lazy { "?" } else { "" }))?;
                    rest = &tail[usize::from(lazy)..];
                }
                None => {
                    w.out.push_str("\\{");
                    w.atom(at);
                }
            },
            '.' | '^' | '$' => {
                w.out.push(c);
                w.atom(at);
            }
            _ => {
                literal(u32::from(c), &mut w.out);
                w.atom(at);
            }
        }
    }
    Ok(w.out)
}

/// The Rust pattern being written, and what a repeat operator would apply to.
#[derive(Default)]
struct Writer {
    out: String,
    /// Where each open group starts in `out`.
    groups: Vec<usize>,
    /// Where the last atom (a character, class, assertion or group, with its repeats) starts
    /// and ends in `out`; `None` at the start of a group or an alternative. What follows the
    /// end is flags written after the atom.
    atom: Option<(usize, usize)>,
    /// Whether a token that writes no atom (flags, `(?)`, an empty `\Q\E`) came after it.
    transparent: bool,
    /// How many groups `repeat` has put around the atom: each is a level of nesting.
    wraps: usize,
}

/// Rust's nesting limit, past which a pattern is [`Refused::TooLarge`] anyway.
const WRAPS_MAX: usize = 250;

impl Writer {
    /// The atom just written, from `start`.
    fn atom(&mut self, start: usize) {
        self.atom = Some((start, self.out.len()));
        self.transparent = false;
        self.wraps = 0;
    }

    /// A group just opened at `start`.
    fn open(&mut self, start: usize) {
        self.groups.push(start);
        self.atom = None;
        self.transparent = false;
    }

    /// Writes a repeat operator, its lazy `?` included. Go applies it to the last atom also
    /// across tokens that write none, where Rust would refuse (`a(?i)*`, `a*\Q\E*`, which
    /// is `(a*)*`) or read a lazy repeat (`a+\Q\E?`, which is `(a+)?`): that atom is then
    /// put in a group with the repeat right after it, so the flags those tokens wrote come
    /// after the repeat. (A `U` among them then no longer swaps the repeat's greed, which
    /// changes where a match ends, never whether there is one.) Once the atom is wrapped,
    /// `transparent` is off: a second repeat goes after the flags, where Rust refuses it as
    /// Go refuses `a(?i)**`.
    fn repeat(&mut self, op: &str) -> Result<(), Refused> {
        match self.atom {
            Some((start, end)) if self.transparent => {
                // Each wrap moves the atom: many in a row would take quadratic time, and
                // past Rust's nesting limit the pattern is not judged anyway.
                self.wraps += 1;
                if self.wraps > WRAPS_MAX {
                    return Err(Refused::TooLarge(format!(
                        "over {WRAPS_MAX} repeats each after flags or an empty `\\Q\\E`"
                    )));
                }
                let after = self.out.split_off(end);
                self.out.insert_str(start, "(?:");
                self.out.push(')');
                self.out.push_str(op);
                self.atom = Some((start, self.out.len()));
                self.out.push_str(&after);
            }
            Some((start, _)) => {
                self.out.push_str(op);
                self.atom = Some((start, self.out.len()));
            }
            None => self.out.push_str(op),
        }
        self.transparent = false;
        Ok(())
    }
}

/// Writes one character outside a class, escaped when Rust would read it as syntax.
fn literal(code: u32, out: &mut String) {
    match char::from_u32(code) {
        Some(c) => {
            if regex_syntax::is_meta_character(c) {
                out.push('\\');
            }
            out.push(c);
        }
        None => out.push_str(NOTHING),
    }
}

/// After a `\` outside a class: what follows it, and where the last atom it wrote starts, or
/// `None` when it wrote none (an empty `\Q\E`).
fn escape<'p>(rest: &'p str, out: &mut String) -> Result<(&'p str, Option<usize>), String> {
    let start = out.len();
    let Some(c) = rest.chars().next() else {
        return Err(TRAILING.into());
    };
    let after = &rest[c.len_utf8()..];
    let tail = match c {
        'Q' => {
            let (text, tail) = after.split_once("\\E").unwrap_or((after, ""));
            let mut last = None;
            for c in text.chars() {
                last = Some(out.len());
                literal(u32::from(c), out);
            }
            return Ok((tail, last));
        }
        'A' | 'z' => {
            out.push('\\');
            out.push(c);
            after
        }
        'b' => {
            out.push_str("(?-u:\\b)");
            after
        }
        'B' => {
            out.push_str("(?-u:\\B)");
            after
        }
        'p' | 'P' => unicode_class(c, after, out)?,
        _ => match perl_class(c) {
            Some(class) => {
                out.push_str(class);
                after
            }
            None => {
                let (code, tail) = escaped_char(rest)?;
                literal(code, out);
                tail
            }
        },
    };
    Ok((tail, Some(start)))
}

/// Go's single-character escape, `rest` being what follows the `\`: octal, `\x`, the C
/// escapes and any ASCII character other than a letter or digit.
fn escaped_char(rest: &str) -> Result<(u32, &str), String> {
    let mut chars = rest.chars();
    let Some(c) = chars.next() else {
        return Err(TRAILING.into());
    };
    let after = chars.as_str();
    let is_octal = |b: &u8| (b'0'..=b'7').contains(b);
    let code = match c {
        '1'..='7' if !after.as_bytes().first().is_some_and(is_octal) => {
            return Err(format!(
                "`\\{c}` is a backreference, which Go does not have"
            ));
        }
        '0'..='7' => {
            let digits = 1 + after.bytes().take(2).take_while(is_octal).count();
            let code = rest.as_bytes()[..digits]
                .iter()
                .fold(0, |n, d| n * 8 + u32::from(d - b'0'));
            return Ok((code, &rest[digits..]));
        }
        'x' => return hex_escape(after),
        'a' => 0x07,
        'f' => 0x0C,
        'n' => 0x0A,
        'r' => 0x0D,
        't' => 0x09,
        'v' => 0x0B,
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => u32::from(c),
        _ => return Err(format!("`\\{c}` is not an escape Go knows")),
    };
    Ok((code, after))
}

/// After `\x`: two hex digits, or one or more in braces up to U+10FFFF.
fn hex_escape(rest: &str) -> Result<(u32, &str), String> {
    let bad = || "`\\x` needs two hex digits or hex digits in braces, at most 10FFFF".to_string();
    if let Some(braced) = rest.strip_prefix('{') {
        let end = braced.find('}').ok_or_else(bad)?;
        let digits = &braced[..end];
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let code = digits
            .chars()
            .try_fold(0u32, |n, d| {
                let n = n * 16 + d.to_digit(16)?;
                (n <= 0x10FFFF).then_some(n)
            })
            .ok_or_else(bad)?;
        return Ok((code, &braced[end + 1..]));
    }
    let mut chars = rest.chars();
    match (
        chars.next().and_then(|c| c.to_digit(16)),
        chars.next().and_then(|c| c.to_digit(16)),
    ) {
        (Some(high), Some(low)) => Ok((high * 16 + low, &rest[2..])),
        _ => Err(bad()),
    }
}

/// After `\p` or `\P`: a one-letter name or a name in braces, `^` negating it.
fn unicode_class<'p>(letter: char, rest: &'p str, out: &mut String) -> Result<&'p str, String> {
    let (name, tail) = match rest.strip_prefix('{') {
        Some(braced) => {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("`\\{letter}{{` has no closing `}}`"))?;
            (&braced[..end], &braced[end + 1..])
        }
        None => {
            let c = rest.chars().next().ok_or_else(|| {
                format!("`\\{letter}` at the end of the pattern has no class name")
            })?;
            rest.split_at(c.len_utf8())
        }
    };
    let (negated, name) = match name.strip_prefix('^') {
        Some(name) => (letter == 'p', name),
        None => (letter == 'P', name),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{name}` is not a Unicode class name"));
    }
    match (name, negated) {
        // Go's `C` has no unassigned code points (Rust's has), and its `Cs`, surrogates, is a
        // class no text holds a character of (Rust has none).
        ("C", false) => out.push_str("[\\p{Cc}\\p{Cf}\\p{Co}]"),
        ("C", true) => out.push_str("[^\\p{Cc}\\p{Cf}\\p{Co}]"),
        ("Cs", false) => out.push_str(NOTHING),
        ("Cs", true) => out.push_str("[\\x00-\\x{10FFFF}]"),
        _ => {
            out.push_str(if negated { "\\P{" } else { "\\p{" });
            out.push_str(name);
            out.push('}');
        }
    }
    Ok(tail)
}

/// After a `[`: a class read by Go's rules, written as a Rust class of the same set.
fn class<'p>(rest: &'p str, out: &mut String) -> Result<&'p str, String> {
    let missing = || "a class `[` has no closing `]`".to_string();
    let (negated, mut t) = match rest.strip_prefix('^') {
        Some(t) => (true, t),
        None => (false, rest),
    };
    out.push_str(if negated { "[^" } else { "[" });
    let mut first = true;
    loop {
        // A `]` first (after an optional `^`) is a literal, not the end.
        if !first && let Some(tail) = t.strip_prefix(']') {
            out.push(']');
            return Ok(tail);
        }
        first = false;
        if let Some(inner) = t.strip_prefix("[:")
            && let Some(end) = inner.find(":]")
        {
            let name = &inner[..end];
            if !POSIX_CLASSES.contains(&name.strip_prefix('^').unwrap_or(name)) {
                return Err(format!("`[:{name}:]` is not a POSIX class Go knows"));
            }
            out.push_str(&t[..end + 4]);
            t = &inner[end + 2..];
            continue;
        }
        if let Some(after) = t.strip_prefix('\\') {
            if let Some(letter @ ('p' | 'P')) = after.chars().next() {
                t = unicode_class(letter, &after[1..], out)?;
                continue;
            }
            if let Some(perl) = after.chars().next().and_then(perl_class) {
                out.push_str(perl);
                t = &after[1..];
                continue;
            }
        }
        let (low, after) = class_char(t, missing)?;
        t = after;
        let mut high = low;
        if let Some(after) = t.strip_prefix('-')
            && !after.is_empty()
            && !after.starts_with(']')
        {
            (high, t) = class_char(after, missing)?;
            if high < low {
                return Err(format!(
                    "class range {} is backwards",
                    range_text(low, high)
                ));
            }
        }
        class_range(low, high, out);
    }
}

/// One character of a class, escaped or not; at the end of the pattern, `missing`.
fn class_char(t: &str, missing: impl Fn() -> String) -> Result<(u32, &str), String> {
    match t.chars().next() {
        None => Err(missing()),
        Some('\\') => escaped_char(&t[1..]),
        Some(c) => Ok((u32::from(c), &t[c.len_utf8()..])),
    }
}

/// Writes the characters `low..=high` of a class; surrogates, which Go takes as code points
/// and no text holds, are left out.
fn class_range(low: u32, high: u32, out: &mut String) {
    use std::fmt::Write as _;
    let low = if (0xD800..=0xDFFF).contains(&low) {
        0xE000
    } else {
        low
    };
    let high = if (0xD800..=0xDFFF).contains(&high) {
        0xD7FF
    } else {
        high
    };
    if low > high {
        out.push_str(NOTHING);
    } else if low == high {
        let _ = write!(out, "\\x{{{low:X}}}");
    } else {
        let _ = write!(out, "\\x{{{low:X}}}-\\x{{{high:X}}}");
    }
}

/// `a-z` or `\x{..}-\x{..}` for a message.
fn range_text(low: u32, high: u32) -> String {
    match (char::from_u32(low), char::from_u32(high)) {
        (Some(l), Some(h)) if !l.is_control() && !h.is_control() => format!("`{l}-{h}`"),
        _ => format!("`\\x{{{low:X}}}-\\x{{{high:X}}}`"),
    }
}

/// After `(?`: a named group, or flags for the rest of the group or for a new group. Says
/// whether a group was opened.
fn group<'p>(rest: &'p str, out: &mut String) -> Result<(&'p str, bool), String> {
    if let Some(named) = rest.strip_prefix("P<").or_else(|| rest.strip_prefix('<')) {
        let end = named.find('>').ok_or("a named group has no closing `>`")?;
        let name = &named[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "group name `{name}` is not Go's: ASCII letters, digits and `_`"
            ));
        }
        // Matching needs no names, and Go, unlike Rust, takes a name twice.
        out.push('(');
        return Ok((&named[end + 1..], true));
    }
    // Go's flag loop: `-` once, and only followed by a flag; a flag may repeat, and one named
    // after `-` is cleared even when also named before it.
    let (mut set, mut clear) = (String::new(), String::new());
    let mut negated = false;
    let mut flag_since_minus = false;
    for (i, c) in rest.char_indices() {
        match c {
            'i' | 'm' | 's' | 'U' => {
                let list = if negated { &mut clear } else { &mut set };
                if !list.contains(c) {
                    list.push(c);
                }
                flag_since_minus = true;
            }
            '-' if !negated => {
                negated = true;
                flag_since_minus = false;
            }
            ':' | ')' if !negated || flag_since_minus => {
                set.retain(|f| !clear.contains(f));
                if c == ':' || !set.is_empty() || !clear.is_empty() {
                    out.push_str("(?");
                    out.push_str(&set);
                    if !clear.is_empty() {
                        out.push('-');
                        out.push_str(&clear);
                    }
                    out.push(c);
                }
                return Ok((&rest[i + 1..], c == ':'));
            }
            _ => break,
        }
    }
    let shown: String = rest.chars().take(8).collect();
    Err(format!(
        "`(?{shown}` is neither a named group nor flags Go knows (i, m, s, U)"
    ))
}

/// The Rust form of Go's `{min,max}` (`text`, after the `{`), or why Go refuses it.
fn repeat_op(min: u64, max: Option<u64>, text: &str) -> Result<String, String> {
    let too_big = |n: u64| n > u64::from(MAX_REPEAT);
    if too_big(min) || max.is_some_and(too_big) || max.is_some_and(|max| min > max) {
        return Err(format!(
            "repeat `{{{text}` is over Go's limit of {MAX_REPEAT} or backwards"
        ));
    }
    Ok(match max {
        Some(max) if max == min => format!("{{{min}}}"),
        Some(max) => format!("{{{min},{max}}}"),
        None => format!("{{{min},}}"),
    })
}

/// The counts of a repeat after its `{` (`None` for `{n,}`), or `None` when Go reads the `{`
/// as a literal.
fn repeat_counts(rest: &str) -> Option<(u64, Option<u64>, &str)> {
    let (min, rest) = count(rest)?;
    let (max, rest) = match rest.strip_prefix(',') {
        None => (Some(min), rest),
        Some(rest) if rest.starts_with('}') => (None, rest),
        Some(rest) => {
            let (max, rest) = count(rest)?;
            (Some(max), rest)
        }
    };
    Some((min, max, rest.strip_prefix('}')?))
}

/// Decimal digits without a leading zero (a lone `0` is fine), saturating far above any
/// count Go takes.
fn count(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits > 1 && text.starts_with('0')) {
        return None;
    }
    let value = text.as_bytes()[..digits].iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    Some((value, &text[digits..]))
}

/// Refuses what Rust's parser takes and Go's does not once the syntax is translated: repeat
/// counts whose product over nested repetitions is over 1000 (`budget` is what is left of
/// it) and a repetition repeated without a group.
fn check(node: &Ast, budget: u32) -> Result<(), String> {
    match node {
        Ast::Group(group) => check(&group.ast, budget),
        Ast::Repetition(repetition) => {
            // `a**`, `a+*`, `a{2}*`: Rust repeats the repetition, Go refuses it.
            if matches!(*repetition.ast, Ast::Repetition(_)) {
                return Err("a repetition of a repetition (`**`) is not Go's".into());
            }
            // Go counts copies of the innermost expression: the largest count of each `{m,n}`
            // (`{m,}`: m, `{0,}`: 1) multiplied down the nesting, at most 1000.
            let count = match repetition.op.kind {
                RepetitionKind::Range(
                    RepetitionRange::Exactly(n) | RepetitionRange::Bounded(_, n),
                ) => n,
                RepetitionKind::Range(RepetitionRange::AtLeast(n)) => n.max(1),
                _ => 1,
            };
            if count == 0 {
                // `{0}` copies nothing; Go checked what it repeats on reading it, as a pattern
                // of its own.
                return check(&repetition.ast, MAX_REPEAT);
            }
            if count > budget {
                return Err(format!(
                    "repeat count {count} (nested counts multiplied) is over Go's limit of {MAX_REPEAT}"
                ));
            }
            check(&repetition.ast, budget / count)
        }
        Ast::Alternation(alternation) => alternation.asts.iter().try_for_each(|a| check(a, budget)),
        Ast::Concat(concat) => concat.asts.iter().try_for_each(|a| check(a, budget)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(pattern: &str) -> bool {
        compile(pattern).is_ok()
    }

    /// Go's objection to `pattern`, which must be refused as Go refuses it.
    fn objection(pattern: &str) -> String {
        match compile(pattern) {
            Err(Refused::ByGo(why)) => why,
            other => panic!("{pattern}: {other:?}"),
        }
    }

    #[test]
    fn takes_what_go_takes() {
        for pattern in [
            ".*",
            "error-rate",
            "^(success|error)-rate$",
            "(?i)ERROR",
            "(?s:a.b)",
            "(?U)a+",
            "(?i-s)a",
            "a{1000}",
            "a{2,1000}",
            "\\141",
            "\\Qerror.rate\\E",
            "\\Qno end",
            "[[:alpha:]-]+",
            "[]a]",
            "[^]a]",
            "\\pL+",
            "a*?",
            "(a*)*",
            "\\12",
            "\\0",
            "x\\\\1",
            "(a{10}){100}",
            "(?:a{2}){500}",
            "(a{1000}){0}",
            "(?P<rate_1>x)",
            // Go's class rules: `-` after a class escape, `[` and set operators are literal.
            "[\\w-.]+",
            "[[]",
            "[a&&b]",
            "[~~]",
            // Go's flag forms.
            "(?)a",
            "(?i-i)a",
            "(?ii)a",
            "(?i-i:a)",
            // A `{` that is not a repeat is a literal.
            "a{",
            "a{,5}",
            "a{01}",
            "{x}",
            "a}",
            "\\x{10FFFF}",
            "\\x{D800}",
            "[\\x{D800}-\\x{DFFF}a]",
            "\\<",
        ] {
            assert!(valid(pattern), "{pattern}: {:?}", compile(pattern).err());
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for pattern in [
            "*",
            "(?x)error-rate",
            "(?u)a",
            "(?R)a",
            "(?i:(?x)a)",
            "a{1001}",
            "a{1,1001}",
            "e{0,1001}rror",
            "a{2,1}",
            "[\\Qa\\E]",
            "(",
            "a**",
            "a+*",
            "a{2}*",
            "a{2}{3}",
            "\\1",
            "error-rate|(x)\\1",
            "\\7a",
            "(a{100}){11}",
            "(?:a{2}){501}",
            "(?P<rate.error>x)",
            "[[:foo:]]",
            "[z-a]",
            "[a--b]",
            "[a-\\d]",
            "[a",
            "[]",
            "(?-)a",
            "(?i-)a",
            "(?--i)a",
            "(?=a)",
            "\\x{110000}",
            "\\xZ1",
            "\\8",
            "\\Z",
            "\\C",
            "\\",
        ] {
            objection(pattern);
        }
        assert!(objection("(?x)a").contains("flags Go knows"));
        assert!(objection("a{1001}").contains("1000"));
        assert!(objection("[[:foo:]]").contains("`[:foo:]`"));
    }

    #[test]
    fn a_repeat_after_flags_or_empty_quotes_repeats_the_atom_before() {
        for (pattern, rust) in [
            ("a(?i)*", "(?:a)*(?i)"),
            ("a(?s)?", "(?:a)?(?s)"),
            ("a(?i){2}?", "(?:a){2}?(?i)"),
            ("a*\\Q\\E*", "(?:a*)*"),
            ("a*(?)*", "(?:a*)*"),
            ("(ab)(?i)+", "(?:(ab))+(?i)"),
        ] {
            assert_eq!(translate(pattern).as_deref(), Ok(rust), "{pattern}");
            assert!(valid(pattern), "{pattern}");
        }
        // `a+\Q\E?` is `(a+)?`, not the lazy `a+?`: it matches the empty text.
        assert!(compile("^a+\\Q\\E?$").unwrap().is_match(""));
        // Nothing before the flags: nothing to repeat, as in Go.
        for pattern in ["(?i)*", "((?i)*)", "a|(?i)*", "a(?i)**"] {
            objection(pattern);
        }
    }

    #[test]
    fn nested_counts_and_nesting_depth_are_go_s() {
        // Under `{0}` the inner repeat is still checked, as Go checks it on reading it.
        for pattern in [
            "((a{100}){11}){0}",
            "((a{100}){11}){0,}",
            "(?:(?:a{100}){11}){0,0}",
        ] {
            objection(pattern);
        }
        assert!(valid("((a{100}){10}){0}") && valid("(a{1000}){0,}"));
        // Deeper than 250 levels (Go takes 999) is not judged: compiling it could overflow
        // the stack.
        let nested = |depth: usize| format!("{}a{}", "(".repeat(depth), ")".repeat(depth));
        assert!(valid(&nested(250)));
        assert!(matches!(compile(&nested(251)), Err(Refused::TooLarge(_))));
        assert!(matches!(
            compile(&nested(100_000)),
            Err(Refused::TooLarge(_))
        ));
        // Each repeat after flags nests the atom once more: given up on before the limit,
        // without moving the atom again and again.
        let chained = format!("a{}", "(?i)*".repeat(100_000));
        assert!(matches!(translate(&chained), Err(Refused::TooLarge(_))));
    }

    #[test]
    fn go_s_other_and_surrogate_classes() {
        let re = compile("^\\pC$").unwrap();
        assert!(
            re.is_match("\u{7}") && !re.is_match("\u{378}"),
            "unassigned is not C"
        );
        assert!(compile("^\\PC$").unwrap().is_match("\u{378}"));
        assert!(!compile("\\p{Cs}").unwrap().is_match("a\u{FFFD}"));
        assert!(compile("^[^\\p{Cs}]$").unwrap().is_match("a"));
        assert!(compile("^(?i)\\P{Cs}$").unwrap().is_match("a"));
    }

    #[test]
    fn a_pattern_over_rust_s_size_limit_is_not_judged() {
        assert!(matches!(compile("\\pL{1000}"), Err(Refused::TooLarge(_))));
    }

    #[test]
    fn matches_what_go_matches() {
        let matches = |pattern: &str, text: &str| compile(pattern).unwrap().is_match(text);
        // Literal text; the text after `\E` is a pattern again.
        assert!(
            matches("\\Qerror.rate\\E", "error.rate") && !matches("\\Qerror.rate\\E", "errorXrate")
        );
        assert!(matches("^\\Qa+\\E.$", "a+b") && !matches("^\\Qa+\\E.$", "aab"));
        assert!(matches("\\141", "a"));
        // Go's class escapes and word boundary are ASCII.
        assert!(!matches("^\\w+$", "café") && matches("^\\w+$", "cafe_1"));
        assert!(!matches("^\\d$", "٣") && matches("^\\D$", "٣"));
        assert!(matches("e\\b", "e!") && !matches("é\\b", "é!"));
        // In a class, `-` after a class escape and `&&` are characters.
        assert!(matches("^[\\w-.]+$", "error-rate.p99"));
        assert!(matches("^[a&&b]+$", "a&b") && !matches("^[a&&b]$", "c"));
        // `(?i-i)` clears the flag; `{` that is not a repeat is itself.
        assert!(!matches("^(?i-i)a$", "A") && matches("^(?i)a$", "A"));
        assert!(matches("^a{,5}$", "a{,5}") && matches("^a{01}$", "a{01}"));
        // `\<` is a `<`, not Rust's start of a word.
        assert!(matches("^\\<$", "<"));
        assert!(!matches("\\x{D800}", "\u{FFFD}"));
    }

    /// Go's own verdicts (`tools/go-regexp-oracle`): every pattern is taken or refused as Go
    /// does, and a taken one matches the same texts.
    #[test]
    fn agrees_with_go_on_its_recorded_verdicts() {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/go-regexp.jsonl"
        );
        let text = std::fs::read_to_string(fixture).expect("the Go verdict fixture");
        let mut lines = text.lines();
        let header: serde_json::Value =
            serde_json::from_str(lines.next().expect("a header line")).expect("header JSON");
        let texts: Vec<&str> = header["texts"]
            .as_array()
            .expect("texts")
            .iter()
            .map(|t| t.as_str().expect("a text"))
            .collect();
        let (mut compared, mut disagreements, mut too_large) = (0, Vec::new(), Vec::new());
        for line in lines {
            let verdict: serde_json::Value = serde_json::from_str(line).expect("verdict JSON");
            let pattern = verdict["pattern"].as_str().expect("pattern");
            let go_error = verdict["error"].as_str().expect("error");
            compared += 1;
            match (compile(pattern), go_error.is_empty()) {
                (Err(Refused::TooLarge(_)), true) => too_large.push(pattern.to_string()),
                (Ok(re), true) => {
                    let ours: String = texts
                        .iter()
                        .map(|t| if re.is_match(t) { '1' } else { '0' })
                        .collect();
                    let go = verdict["matches"].as_str().expect("matches");
                    if ours != go {
                        disagreements.push(format!("{pattern:?} matches {ours}, Go {go}"));
                    }
                }
                (Err(_), false) => {}
                (Ok(_), false) if later_go_takes(go_error) => {}
                (Ok(_), false) => {
                    disagreements.push(format!("{pattern:?} taken, Go refuses: {go_error}"))
                }
                (Err(why), true) => {
                    disagreements.push(format!("{pattern:?} refused ({why:?}), Go takes it"))
                }
            }
        }
        assert!(compared > 3000, "only {compared} verdicts compared");
        assert!(
            too_large
                .iter()
                .all(|p| p.contains("{1000}") || p.contains("((((")),
            "not judged: {too_large:?}"
        );
        assert!(
            disagreements.is_empty(),
            "{} of {compared} disagree with {}:\n{}",
            disagreements.len(),
            header["go"],
            disagreements.join("\n")
        );
    }

    /// Go's refusals that the module doc says later Go takes back: `(?<name>` (Go 1.22) and
    /// loose Unicode class names (Go 1.25), each named by Go's own message.
    fn later_go_takes(go_error: &str) -> bool {
        go_error.contains("invalid or unsupported Perl syntax: `(?<`")
            || go_error.contains("invalid character class range: `\\p")
            || go_error.contains("invalid character class range: `\\P")
    }

    proptest::proptest! {
        /// Any text is compiled or refused, never a panic.
        #[test]
        fn any_pattern_is_compiled_or_refused(pattern in "[\\\\QEpPxdwb\\[\\]:^a-c.*+?{}()|,0-9é<>-]{0,24}") {
            let _ = compile(&pattern);
        }
    }
}
