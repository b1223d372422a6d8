//! The node buffer: a front-matter header, then the markdown body.
//!
//! ```text
//! ---
//! title: Buy milk
//! kind: task
//! status: todo
//! due: 2026-11-30
//! project: home
//! tags: errand, shop
//! ---
//! Body…
//! ```

use std::collections::BTreeSet;

use super::ParseError;
use crate::model::{format_date, normalize_tag, parse_date, Kind, Node, NodePatch, Status};

/// Header delimiter line.
pub const FENCE: &str = "---";

/// Renders a node as buffer lines.
pub fn render(node: &Node) -> Vec<String> {
    let mut lines = vec![FENCE.to_owned(), format!("title: {}", node.title)];
    lines.push(format!("kind: {}", node.kind));
    if node.kind == Kind::Task {
        lines.push(format!(
            "status: {}",
            node.status.map(|s| s.as_str()).unwrap_or("todo")
        ));
    }
    if node.kind == Kind::Task || node.due.is_some() {
        lines.push(format!(
            "due: {}",
            node.due.map(format_date).unwrap_or_default()
        ));
    }
    lines.push(format!(
        "project: {}",
        node.project.as_deref().unwrap_or("")
    ));
    lines.push(format!(
        "tags: {}",
        node.tags.iter().cloned().collect::<Vec<_>>().join(", ")
    ));
    lines.push(FENCE.to_owned());
    lines.extend(body_lines(&node.body));
    lines
}

/// The body split into lines (a final newline adds no empty line).
pub fn body_lines(body: &str) -> Vec<String> {
    if body.is_empty() {
        return Vec::new();
    }
    body.strip_suffix('\n')
        .unwrap_or(body)
        .split('\n')
        .map(str::to_owned)
        .collect()
}

/// Joins body lines back into body text (newline-terminated when not empty).
pub fn join_body(lines: &[String]) -> String {
    if lines.is_empty() || (lines.len() == 1 && lines[0].is_empty()) {
        return String::new();
    }
    let mut body = lines.join("\n");
    body.push('\n');
    body
}

fn same_body(a: &str, b: &str) -> bool {
    let trimmed = |s: &str| s.strip_suffix('\n').unwrap_or(s).to_owned();
    trimmed(a) == trimmed(b)
}

/// Parses edited buffer lines into the changes relative to `current`.
/// Keys left out of the header leave their field unchanged; a key with an
/// empty value clears it. Every problem is reported, each with its line.
pub fn parse(lines: &[String], current: &Node) -> Result<NodePatch, Vec<ParseError>> {
    let mut errors = Vec::new();
    if lines.first().map(|l| l.trim_end()) != Some(FENCE) {
        return Err(vec![ParseError::new(
            1,
            "the buffer must start with a '---' line opening the header",
        )]);
    }
    let Some(close) = lines.iter().skip(1).position(|l| l.trim_end() == FENCE) else {
        return Err(vec![ParseError::new(
            lines.len(),
            "the header is not closed: add a '---' line after the header fields",
        )]);
    };
    let close = close + 1;
    let mut patch = NodePatch::default();
    let mut seen = BTreeSet::new();
    let mut kind = current.kind;
    let mut status_line = None;
    for (index, line) in lines[1..close].iter().enumerate() {
        let number = index + 2;
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            errors.push(ParseError::new(
                number,
                format!("expected 'key: value', got {:?}", truncate(line)),
            ));
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        if !seen.insert(key.clone()) {
            errors.push(ParseError::new(number, format!("'{key}' appears twice")));
            continue;
        }
        match key.as_str() {
            "title" => {
                if value.is_empty() {
                    errors.push(ParseError::new(number, "the title cannot be empty"));
                } else if value != current.title {
                    patch.title = Some(value.to_owned());
                }
            }
            "kind" => match value.parse::<Kind>() {
                Ok(k) => {
                    kind = k;
                    if k != current.kind {
                        patch.kind = Some(k);
                    }
                }
                Err(e) => errors.push(ParseError::new(number, e.0)),
            },
            "status" => {
                status_line = Some(number);
                let status = if value.is_empty() {
                    Ok(None)
                } else {
                    value.parse::<Status>().map(Some)
                };
                match status {
                    Ok(s) if s != current.status => patch.status = Some(s),
                    Ok(_) => {}
                    Err(e) => errors.push(ParseError::new(number, e.0)),
                }
            }
            "due" => {
                let due = if value.is_empty() {
                    Ok(None)
                } else {
                    parse_date(value).map(Some)
                };
                match due {
                    Ok(d) if d != current.due => patch.due = Some(d),
                    Ok(_) => {}
                    Err(e) => errors.push(ParseError::new(number, e.0)),
                }
            }
            "project" => {
                let project = (!value.is_empty()).then(|| value.to_owned());
                if project != current.project {
                    patch.project = Some(project);
                }
            }
            "tags" => {
                let mut tags = BTreeSet::new();
                for raw in value.split([',', ' ']).filter(|t| !t.trim().is_empty()) {
                    match normalize_tag(raw) {
                        Ok(tag) => {
                            tags.insert(tag);
                        }
                        Err(e) => errors.push(ParseError::new(number, e.0)),
                    }
                }
                if tags != current.tags {
                    patch.tags = Some(tags);
                }
            }
            other => errors.push(ParseError::new(
                number,
                format!(
                    "unknown header key '{}' (keys: title, kind, status, due, project, tags)",
                    truncate(other)
                ),
            )),
        }
    }
    if let (Some(line), true) = (status_line, kind != Kind::Task) {
        if patch.status.is_some() {
            errors.push(ParseError::new(line, "status applies to tasks only"));
        }
    }
    let body = join_body(&lines[close + 1..]);
    if !same_body(&body, &current.body) {
        patch.body = Some(body);
    }
    if errors.is_empty() {
        Ok(patch)
    } else {
        Err(errors)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Node {
        Node {
            id: "n1".into(),
            kind: Kind::Task,
            title: "Buy milk".into(),
            body: "two litres\n\n- oat\n".into(),
            status: Some(Status::Todo),
            due: Some(time::macros::date!(2026 - 11 - 30)),
            project: Some("home".into()),
            tags: ["errand".to_string(), "shop".to_string()].into(),
            created_ms: 0,
            updated_ms: 0,
            deleted: false,
            version: "1".into(),
        }
    }

    #[test]
    fn render_then_parse_changes_nothing() {
        let n = node();
        let lines = render(&n);
        assert_eq!(lines[1], "title: Buy milk");
        assert_eq!(parse(&lines, &n).unwrap(), NodePatch::default());
        let mut note = n.clone();
        note.kind = Kind::Note;
        note.status = None;
        note.due = None;
        note.body = "no final newline".into();
        assert_eq!(parse(&render(&note), &note).unwrap(), NodePatch::default());
    }

    #[test]
    fn edits_become_a_patch() {
        let n = node();
        let mut lines = render(&n);
        lines[1] = "title: Buy oat milk".into();
        lines[3] = "status: done".into();
        lines[4] = "due:".into();
        lines[6] = "tags: shop, #dairy".into();
        lines.push("more".into());
        let patch = parse(&lines, &n).unwrap();
        assert_eq!(patch.title.as_deref(), Some("Buy oat milk"));
        assert_eq!(patch.status, Some(Some(Status::Done)));
        assert_eq!(patch.due, Some(None));
        assert_eq!(patch.project, None);
        assert_eq!(
            patch.tags,
            Some(["dairy".to_string(), "shop".to_string()].into())
        );
        assert_eq!(patch.body.as_deref(), Some("two litres\n\n- oat\nmore\n"));
    }

    #[test]
    fn errors_name_their_lines() {
        let n = node();
        let mut lines = render(&n);
        lines[2] = "kind: poem".into();
        lines[4] = "due: soon".into();
        lines.insert(5, "colour: red".into());
        let errors = parse(&lines, &n).unwrap_err();
        let at: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(at, vec![3, 5, 6]);
        assert!(errors[2].message.contains("unknown header key"));

        let unclosed: Vec<String> = vec!["---".into(), "title: x".into(), "body".into()];
        assert_eq!(parse(&unclosed, &n).unwrap_err()[0].line, 3);
        assert_eq!(parse(&["hello".to_string()], &n).unwrap_err()[0].line, 1);
        assert_eq!(parse(&[], &n).unwrap_err()[0].line, 1);
    }
}
