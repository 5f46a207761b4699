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
//!   than ASCII letters, digits and `_`.
//!
//! Left to the Go version: Unicode class names are handed over as written, and Rust reads
//! them loosely (`\p{Letter}`, `\p{greek}`), as Go does from 1.25 on (golang/go#70780; before,
//! exact names only); `(?<name>...)` is taken, as from Go 1.22 on.
//! `tests/fixtures/go-regexp.jsonl` holds Go's own verdicts and matches for the patterns the
//! tests compare (see `tools/go-regexp-oracle`).

use regex::Regex;
use regex_syntax::ast::{self, Ast, RepetitionKind, RepetitionRange};

/// Go's largest repeat count (`regexp/syntax`).
const MAX_REPEAT: u32 = 1000;

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

/// Compiles `pattern` as Go would accept it, or says why Go would refuse it.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    let rust = translate(pattern)?;
    let parsed = ast::parse::Parser::new()
        .parse(&rust)
        .map_err(|e| e.kind().to_string())?;
    check(&parsed, MAX_REPEAT)?;
    Regex::new(&rust).map_err(|e| e.to_string())
}

/// Reads `pattern` as Go does and writes it as a Rust pattern of the same meaning, or says
/// what Go refuses in it. Groups, alternation and repetition operators are copied; their
/// balance and placement are left to Rust's parser, which refuses the same as Go's.
fn translate(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        rest = match c {
            '\\' => escape(rest, &mut out)?,
            '[' => class(rest, &mut out)?,
            '(' if rest.starts_with('?') => group(&rest[1..], &mut out)?,
            '{' => repeat(rest, &mut out)?,
            '(' | ')' | '|' | '.' | '^' | '$' | '*' | '+' | '?' => {
                out.push(c);
                rest
            }
            _ => {
                literal(u32::from(c), &mut out);
                rest
            }
        };
    }
    Ok(out)
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

/// After a `\` outside a class.
fn escape<'p>(rest: &'p str, out: &mut String) -> Result<&'p str, String> {
    let Some(c) = rest.chars().next() else {
        return Err("trailing `\\` at the end of the pattern".into());
    };
    let after = &rest[c.len_utf8()..];
    match c {
        'Q' => {
            let (text, tail) = after.split_once("\\E").unwrap_or((after, ""));
            text.chars().for_each(|c| literal(u32::from(c), out));
            Ok(tail)
        }
        'A' | 'z' => {
            out.push('\\');
            out.push(c);
            Ok(after)
        }
        'b' => {
            out.push_str("(?-u:\\b)");
            Ok(after)
        }
        'B' => {
            out.push_str("(?-u:\\B)");
            Ok(after)
        }
        'p' | 'P' => unicode_class(c, after, out),
        _ => {
            if let Some(class) = perl_class(c) {
                out.push_str(class);
                return Ok(after);
            }
            let (code, tail) = escaped_char(rest)?;
            literal(code, out);
            Ok(tail)
        }
    }
}

/// Go's single-character escape, `rest` being what follows the `\`: octal, `\x`, the C
/// escapes and any ASCII character other than a letter or digit.
fn escaped_char(rest: &str) -> Result<(u32, &str), String> {
    let mut chars = rest.chars();
    let Some(c) = chars.next() else {
        return Err("trailing `\\` at the end of the pattern".into());
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
    out.push_str(if negated { "\\P{" } else { "\\p{" });
    out.push_str(name);
    out.push('}');
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
        let (low, after) = class_char(t).ok_or_else(missing)??;
        t = after;
        let mut high = low;
        if let Some(after) = t.strip_prefix('-')
            && !after.is_empty()
            && !after.starts_with(']')
        {
            (high, t) = class_char(after).ok_or_else(missing)??;
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

/// One character of a class, escaped or not: `None` at the end of the pattern.
fn class_char(t: &str) -> Option<Result<(u32, &str), String>> {
    let c = t.chars().next()?;
    Some(match c {
        '\\' => escaped_char(&t[1..]),
        _ => Ok((u32::from(c), &t[c.len_utf8()..])),
    })
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

/// After `(?`: a named group, or flags for the rest of the group or for a new group.
fn group<'p>(rest: &'p str, out: &mut String) -> Result<&'p str, String> {
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
        return Ok(&named[end + 1..]);
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
                return Ok(&rest[i + 1..]);
            }
            _ => break,
        }
    }
    let shown: String = rest.chars().take(8).collect();
    Err(format!(
        "`(?{shown}` is neither a named group nor flags Go knows (i, m, s, U)"
    ))
}

/// After a `{`: Go's `{n}`, `{n,}` or `{n,m}` (digits without leading zeros), or else a
/// literal `{`.
fn repeat<'p>(rest: &'p str, out: &mut String) -> Result<&'p str, String> {
    use std::fmt::Write as _;
    let Some((min, max, tail)) = repeat_counts(rest) else {
        out.push_str("\\{");
        return Ok(rest);
    };
    let too_big = |n: u64| n > u64::from(MAX_REPEAT);
    if too_big(min) || max.is_some_and(too_big) || max.is_some_and(|max| min > max) {
        return Err(format!(
            "repeat `{{{}` is over Go's limit of {MAX_REPEAT} or backwards",
            &rest[..rest.len() - tail.len()]
        ));
    }
    let _ = match max {
        Some(max) if max == min => write!(out, "{{{min}}}"),
        Some(max) => write!(out, "{{{min},{max}}}"),
        None => write!(out, "{{{min},}}"),
    };
    Ok(tail)
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
            // (`{m,}`: m) multiplied down the nesting, at most 1000; `{0}` ends the count.
            let count = match repetition.op.kind {
                RepetitionKind::Range(
                    RepetitionRange::Exactly(n)
                    | RepetitionRange::AtLeast(n)
                    | RepetitionRange::Bounded(_, n),
                ) => n,
                _ => 1,
            };
            if count == 0 {
                return Ok(());
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
            assert!(!valid(pattern), "{pattern}");
        }
        assert!(
            compile("(?x)a").unwrap_err().contains("flags Go knows"),
            "{:?}",
            compile("(?x)a")
        );
        assert!(compile("a{1001}").unwrap_err().contains("1000"));
        assert!(compile("[[:foo:]]").unwrap_err().contains("`[:foo:]`"));
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
        let (mut compared, mut disagreements) = (0, Vec::new());
        for line in lines {
            let verdict: serde_json::Value = serde_json::from_str(line).expect("verdict JSON");
            let pattern = verdict["pattern"].as_str().expect("pattern");
            let go_error = verdict["error"].as_str().expect("error");
            compared += 1;
            match (compile(pattern), go_error.is_empty()) {
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
                (Ok(_), false) if known_difference(pattern) => {}
                (Ok(_), false) => {
                    disagreements.push(format!("{pattern:?} taken, Go refuses: {go_error}"))
                }
                (Err(why), true) => {
                    disagreements.push(format!("{pattern:?} refused ({why}), Go takes it"))
                }
            }
        }
        assert!(compared > 3000, "only {compared} verdicts compared");
        assert!(
            disagreements.is_empty(),
            "{} of {compared} disagree with {}:\n{}",
            disagreements.len(),
            header["go"],
            disagreements.join("\n")
        );
    }

    /// The patterns the module doc says are taken where the Go of the recorded verdicts
    /// refuses them and later Go takes them: `(?<name>` (Go 1.22) and loose Unicode class
    /// names (Go 1.25).
    fn known_difference(pattern: &str) -> bool {
        pattern.contains("(?<") || pattern.contains("\\p") || pattern.contains("\\P")
    }

    proptest::proptest! {
        /// Any text is compiled or refused, never a panic.
        #[test]
        fn any_pattern_is_compiled_or_refused(pattern in "[\\\\QEpPxdwb\\[\\]:^a-c.*+?{}()|,0-9é<>-]{0,24}") {
            let _ = compile(&pattern);
        }
    }
}
