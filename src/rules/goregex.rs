//! dryRun `metricName` patterns as Argo reads them: Go `regexp` syntax (RE2), compiled with
//! Rust's `regex` after bridging the differences that change whether a pattern is valid.
//!
//! - `\Q...\E` (a literal text) is Go's and not Rust's: it is rewritten as escaped text.
//! - Octal escapes (`\141`) are Go's; Rust takes them when asked to.
//! - Go knows only the flags `i`, `m`, `s` and `U`; Rust also takes `x`, `u` and `R`, which Go
//!   refuses.
//! - Go refuses a repeat count over 1000 (`a{1001}`) and a repeated repetition (`a**`); Rust
//!   takes both.
//!
//! What is left are differences in what a valid pattern matches (Go's `\d`, `\w`, `\s` and
//! `\b` are ASCII, Rust's Unicode; a class inside a class), which metric names, ASCII
//! identifiers in practice, do not meet.

use regex::{Regex, RegexBuilder};
use regex_syntax::ast::{self, Ast, Flag, GroupKind, RepetitionKind, RepetitionRange};

/// Go's largest repeat count (`regexp/syntax`).
const MAX_REPEAT: u32 = 1000;

/// Compiles `pattern` as Go would accept it, or says why Go would refuse it.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    let rust = literal_quotes(pattern);
    let parsed = ast::parse::ParserBuilder::new()
        .octal(true)
        .build()
        .parse(&rust)
        .map_err(|e| e.kind().to_string())?;
    check(&parsed)?;
    RegexBuilder::new(&rust)
        .octal(true)
        .build()
        .map_err(|e| e.to_string())
}

/// Rewrites each `\Q...\E` outside a character class (up to the end when `\E` is missing) as
/// the same text escaped; everything else is kept byte for byte. Inside a class Go does not
/// take `\Q` either, so it stays for Rust to refuse.
fn literal_quotes(pattern: &str) -> String {
    if !pattern.contains("\\Q") {
        return pattern.to_owned();
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
    out
}

/// Refuses what Rust's syntax takes and Go's does not: flags other than `i`, `m`, `s`, `U`,
/// repeat counts over 1000 and a repetition repeated without a group.
fn check(node: &Ast) -> Result<(), String> {
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
            if let GroupKind::NonCapturing(items) = &group.kind {
                flags(items)?;
            }
            check(&group.ast)
        }
        Ast::Repetition(repetition) => {
            // `a**`, `a+*`, `a{2}*`: Rust repeats the repetition, Go refuses it.
            if matches!(*repetition.ast, Ast::Repetition(_)) {
                return Err("a repetition of a repetition (`**`) is not Go's".into());
            }
            if let RepetitionKind::Range(
                RepetitionRange::Exactly(n)
                | RepetitionRange::AtLeast(n)
                | RepetitionRange::Bounded(_, n),
            ) = repetition.op.kind
                && n > MAX_REPEAT
            {
                return Err(format!(
                    "repeat count {n} is over Go's limit of {MAX_REPEAT}"
                ));
            }
            check(&repetition.ast)
        }
        Ast::Alternation(alternation) => alternation.asts.iter().try_for_each(check),
        Ast::Concat(concat) => concat.asts.iter().try_for_each(check),
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
                proptest::prop_assert_eq!(literal_quotes(&pattern), pattern);
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
