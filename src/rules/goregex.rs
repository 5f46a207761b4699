//! dryRun `metricName` patterns as Argo reads them: Go `regexp` syntax (RE2), compiled with
//! Rust's `regex` after bridging the differences that change whether a pattern is valid.
//!
//! - `\Q...\E` (a literal text) is Go's and not Rust's: it is rewritten as escaped text.
//! - Octal escapes (`\141`, `\0`) are Go's; Rust takes them when asked to, and then also
//!   reads a lone `\1`-`\7` as octal, which Go refuses as a backreference.
//! - Go knows only the flags `i`, `m`, `s` and `U`; Rust also takes `x`, `u` and `R`, which Go
//!   refuses.
//! - Go refuses a repeat count over 1000 (`a{1001}`), also as the product of nested counts
//!   (`(a{100}){11}`), a repeated repetition (`a**`) and a group name other than letters,
//!   digits and `_`; Rust takes them.
//!
//! Differences left: Unicode class names Rust matches loosely (`\p{Letter}`, `\p{greek}`) and
//! unknown POSIX classes (`[[:foo:]]`), which Go refuses; classes Go takes and Rust refuses
//! (`[\w-.]`, `[[]`) and the flag forms `(?)` and `(?i-i)`; and what a valid pattern matches
//! (Go's `\d`, `\w`, `\s`, `\b` are ASCII, Rust's Unicode), which metric names, ASCII
//! identifiers in practice, do not meet.

use std::borrow::Cow;

use regex::{Regex, RegexBuilder};
use regex_syntax::ast::{self, Ast, Flag, GroupKind, RepetitionKind, RepetitionRange};

/// Go's largest repeat count (`regexp/syntax`).
const MAX_REPEAT: u32 = 1000;

/// Compiles `pattern` as Go would accept it, or says why Go would refuse it.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    let rust = literal_quotes(pattern);
    no_backreferences(&rust)?;
    let parsed = ast::parse::ParserBuilder::new()
        .octal(true)
        .build()
        .parse(&rust)
        .map_err(|e| e.kind().to_string())?;
    check(&parsed, MAX_REPEAT)?;
    RegexBuilder::new(&rust)
        .octal(true)
        .build()
        .map_err(|e| e.to_string())
}

/// Rewrites each `\Q...\E` outside a character class (up to the end when `\E` is missing) as
/// the same text escaped; everything else is kept byte for byte. Inside a class Go does not
/// take `\Q` either, so it stays for Rust to refuse.
fn literal_quotes(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains("\\Q") {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    let mut in_class = false;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        if c == '\\' {
            let Some(next) = after.chars().next() else {
                out.push(c);
                break;
            };
            let after_next = &after[next.len_utf8()..];
            if next == 'Q' && !in_class {
                let (text, tail) = match after_next.find("\\E") {
                    Some(end) => (&after_next[..end], &after_next[end + 2..]),
                    None => (after_next, ""),
                };
                out.push_str(&regex::escape(text));
                rest = tail;
            } else {
                out.push(c);
                out.push(next);
                rest = after_next;
            }
            continue;
        }
        if in_class {
            if c == '[' && after.starts_with(':') {
                // A POSIX class, `[:alpha:]`, kept whole so its `]` does not end the class.
                if let Some(end) = after.find(":]") {
                    out.push_str(&rest[..1 + end + 2]);
                    rest = &after[end + 2..];
                    continue;
                }
            }
            in_class = c != ']';
            out.push(c);
            rest = after;
            continue;
        }
        out.push(c);
        rest = after;
        if c == '[' {
            in_class = true;
            // A `]` first (after an optional `^`) is a literal, not the end.
            for lead in ['^', ']'] {
                if let Some(tail) = rest.strip_prefix(lead) {
                    out.push(lead);
                    rest = tail;
                }
            }
        }
    }
    Cow::Owned(out)
}

/// Refuses `\1`-`\7` not followed by another octal digit: a backreference to Go, which has
/// none (`\12` and `\0` are octal to both).
fn no_backreferences(pattern: &str) -> Result<(), String> {
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            continue;
        }
        let Some(next) = chars.next() else { break };
        if ('1'..='7').contains(&next) && !chars.peek().is_some_and(|d| ('0'..='7').contains(d)) {
            return Err(format!(
                "`\\{next}` is a backreference, which Go does not have"
            ));
        }
    }
    Ok(())
}

/// Refuses what Rust's syntax takes and Go's does not: flags other than `i`, `m`, `s`, `U`,
/// repeat counts whose product over nested repetitions is over 1000 (`budget` is what is left
/// of it), a repetition repeated without a group, and group names with other characters than
/// letters, digits and `_`.
fn check(node: &Ast, budget: u32) -> Result<(), String> {
    let flags = |items: &ast::Flags| {
        items.items.iter().try_for_each(|item| match item.kind {
            ast::FlagsItemKind::Flag(
                Flag::CaseInsensitive | Flag::MultiLine | Flag::DotMatchesNewLine | Flag::SwapGreed,
            )
            | ast::FlagsItemKind::Negation => Ok(()),
            ast::FlagsItemKind::Flag(other) => Err(format!(
                "flag `{}` is not one of Go's (i, m, s, U)",
                flag_letter(other)
            )),
        })
    };
    match node {
        Ast::Flags(set) => flags(&set.flags),
        Ast::Group(group) => {
            match &group.kind {
                GroupKind::NonCapturing(items) => flags(items)?,
                GroupKind::CaptureName { name, .. }
                    if !name
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    return Err(format!("group name `{}` is not Go's", name.name));
                }
                _ => {}
            }
            check(&group.ast, budget)
        }
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

fn flag_letter(flag: Flag) -> char {
    match flag {
        Flag::CaseInsensitive => 'i',
        Flag::MultiLine => 'm',
        Flag::DotMatchesNewLine => 's',
        Flag::SwapGreed => 'U',
        Flag::Unicode => 'u',
        Flag::CRLF => 'R',
        Flag::IgnoreWhitespace => 'x',
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
            "[\\Qa\\E]",
            "(",
            "a**",
            "a+*",
            "a{2}*",
            "\\1",
            "error-rate|(x)\\1",
            "\\7a",
            "(a{100}){11}",
            "(?:a{2}){501}",
            "(?P<rate.error>x)",
        ] {
            assert!(!valid(pattern), "{pattern}");
        }
        assert!(
            compile("(?x)a").unwrap_err().contains("flag `x`"),
            "{:?}",
            compile("(?x)a")
        );
        assert!(compile("a{1001}").unwrap_err().contains("1000"));
    }

    proptest::proptest! {
        /// Any text is compiled or refused, never a panic; and a pattern without `\Q` is
        /// handed to Rust as it is.
        #[test]
        fn any_pattern_is_compiled_or_refused(pattern in "[\\\\QE\\[\\]:^a-c.*+?{}()|,0-9é-]{0,24}") {
            let _ = compile(&pattern);
            if !pattern.contains("\\Q") {
                proptest::prop_assert_eq!(literal_quotes(&pattern), pattern.as_str());
            }
        }
    }

    #[test]
    fn quoted_text_matches_literally() {
        let re = compile("\\Qerror.rate\\E").unwrap();
        assert!(re.is_match("error.rate") && !re.is_match("errorXrate"));
        // Unanchored, like every dryRun pattern; the text after `\E` is a pattern again.
        let re = compile("^\\Qa+\\E.$").unwrap();
        assert!(re.is_match("a+b") && !re.is_match("aab"));
        assert!(compile("\\141").unwrap().is_match("a"));
        // A class keeps its own text, `\Q` in it included (refused above).
        assert_eq!(literal_quotes("[\\Q]\\Qx.\\E"), "[\\Q]x\\.");
        assert_eq!(literal_quotes("[[:alpha:]\\Q]\\Q.\\E"), "[[:alpha:]\\Q]\\.");
    }
}
