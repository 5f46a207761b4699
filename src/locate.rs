//! Finds the line of a field path (`spec.strategy.canary.steps[1].pause.duration`) in a YAML
//! document, so `check` points people and code-scanning annotations at the field itself
//! rather than the start of the document.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

/// Line (1-based, relative to the text) of every mapping key and sequence item of the first
/// document in `text`, by field path. Parsing stops quietly at a syntax error: what was seen
/// before it is still useful.
pub fn field_lines(text: &str) -> HashMap<String, usize> {
    let mut lines = HashMap::new();
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::StreamStart | Event::DocumentStart, _)) => continue,
            Ok((event, mark)) => {
                let _ = walk(&mut parser, event, mark, "", &mut lines, 0);
                break;
            }
            Err(_) => break,
        }
    }
    lines
}

/// Depth bound, so a pathological document cannot exhaust the stack.
const MAX_DEPTH: usize = 128;

fn walk(
    parser: &mut Parser<std::str::Chars<'_>>,
    first: Event,
    _mark: Marker,
    path: &str,
    lines: &mut HashMap<String, usize>,
    depth: usize,
) -> Result<(), ()> {
    if depth > MAX_DEPTH {
        return Err(());
    }
    match first {
        Event::MappingStart(..) => loop {
            let (event, mark) = parser.next_token().map_err(|_| ())?;
            let child = match &event {
                Event::MappingEnd => return Ok(()),
                Event::Scalar(key, ..) => {
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    lines.entry(child.clone()).or_insert(mark.line());
                    child
                }
                // A complex key: walk it to keep the stream in step, then its value.
                _ => {
                    walk(parser, event, mark, "\u{0}", lines, depth + 1)?;
                    "\u{0}".to_owned()
                }
            };
            let (value, value_mark) = parser.next_token().map_err(|_| ())?;
            walk(parser, value, value_mark, &child, lines, depth + 1)?;
        },
        Event::SequenceStart(..) => {
            let mut index = 0;
            loop {
                let (event, mark) = parser.next_token().map_err(|_| ())?;
                if matches!(event, Event::SequenceEnd) {
                    return Ok(());
                }
                let child = format!("{path}[{index}]");
                lines.entry(child.clone()).or_insert(mark.line());
                walk(parser, event, mark, &child, lines, depth + 1)?;
                index += 1;
            }
        }
        _ => Ok(()),
    }
}

/// The line of `path`, or of its closest ancestor that has one.
pub fn line_of(lines: &HashMap<String, usize>, path: &str) -> Option<usize> {
    let mut p = path;
    loop {
        if let Some(l) = lines.get(p) {
            return Some(*l);
        }
        let cut = p.rfind(['.', '['])?;
        p = &p[..cut];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_sequence_items() {
        let text = "apiVersion: v1\nspec:\n  strategy:\n    canary:\n      steps:\n      - setWeight: 10\n      - pause:\n          duration: 30s\n";
        let lines = field_lines(text);
        assert_eq!(lines["spec"], 2);
        assert_eq!(lines["spec.strategy.canary.steps[0]"], 6);
        assert_eq!(lines["spec.strategy.canary.steps[1].pause.duration"], 8);
        assert_eq!(
            line_of(&lines, "spec.strategy.canary.steps[1].pause.duration"),
            Some(8)
        );
        assert_eq!(
            line_of(&lines, "spec.strategy.canary.steps[0].pause.duration"),
            Some(6)
        );
        assert_eq!(line_of(&lines, "status.x"), None);
    }

    #[test]
    fn handles_flow_style_and_stops_at_errors() {
        let lines = field_lines("a: {b: [1, {c: 2}]}\n");
        assert_eq!(lines["a.b[1].c"], 1);
        let partial = field_lines("a: 1\nb: [unclosed\n");
        assert_eq!(partial["a"], 1);
    }
}
