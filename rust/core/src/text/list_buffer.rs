//! The list buffer, oil.nvim style: one task per line,
//! `/<id> [ ] Title @2026-11-30 +project #tag`. The `/<id> ` prefix (hidden
//! by the editor) keeps identity when lines move; a line without it is new;
//! a vanished id is a deletion.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::ParseError;
use crate::id::is_valid_node_id;
use crate::model::{format_date, normalize_tag, parse_date, Node, NodePatch, Status};

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListLine {
    /// 1-based line number.
    pub line: usize,
    /// The id prefix, when present.
    pub id: Option<String>,
    /// Status from the checkbox, when there is one.
    pub status: Option<Status>,
    /// Title text.
    pub title: String,
    /// `@date`.
    pub due: Option<time::Date>,
    /// `+project`.
    pub project: Option<String>,
    /// `#tags`.
    pub tags: BTreeSet<String>,
}

/// One change a save would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListChange {
    /// A new task.
    Create(ListLine),
    /// Changed fields of an existing task.
    Update {
        /// Node id.
        id: String,
        /// What changes.
        patch: NodePatch,
        /// One-line description.
        summary: String,
    },
    /// A task that disappeared from the buffer.
    Delete {
        /// Node id.
        id: String,
        /// Its title.
        title: String,
    },
}

impl ListChange {
    /// `create`, `update`, `complete` or `delete`.
    pub fn action(&self) -> &'static str {
        match self {
            ListChange::Create(_) => "create",
            ListChange::Update { patch, .. } if patch.status == Some(Some(Status::Done)) => {
                "complete"
            }
            ListChange::Update { .. } => "update",
            ListChange::Delete { .. } => "delete",
        }
    }

    /// A one-line description for the confirmation prompt.
    pub fn summary(&self) -> String {
        match self {
            ListChange::Create(line) => format!("create \"{}\"", line.title),
            ListChange::Update { summary, .. } => summary.clone(),
            ListChange::Delete { title, .. } => format!("delete \"{title}\""),
        }
    }

    /// The node this change touches, when it exists already.
    pub fn id(&self) -> Option<&str> {
        match self {
            ListChange::Create(_) => None,
            ListChange::Update { id, .. } | ListChange::Delete { id, .. } => Some(id),
        }
    }
}

/// The checkbox text of a status.
pub fn checkbox(status: Option<Status>) -> &'static str {
    match status {
        Some(Status::Doing) => "[/]",
        Some(Status::Done) => "[x]",
        Some(Status::Cancelled) => "[-]",
        Some(Status::Todo) | None => "[ ]",
    }
}

/// Renders one task line.
pub fn render_line(node: &Node) -> String {
    format!("/{} {} {}", node.id, checkbox(node.status), item_text(node))
}

/// The title with its `@due +project #tag` suffixes (what a list line
/// shows after the checkbox; the CLI prints it too).
pub fn item_text(node: &Node) -> String {
    let mut line = node.title.clone();
    if let Some(due) = node.due {
        line.push_str(&format!(" @{}", format_date(due)));
    }
    if let Some(project) = &node.project {
        line.push_str(&format!(" +{project}"));
    }
    for tag in &node.tags {
        line.push_str(&format!(" #{tag}"));
    }
    line
}

/// Renders a list.
pub fn render(nodes: &[Node]) -> Vec<String> {
    nodes.iter().map(render_line).collect()
}

/// Parses one line (1-based `number`); `None` for a blank line.
pub fn parse_line(number: usize, text: &str) -> Result<Option<ListLine>, ParseError> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Ok(None);
    }
    let mut id = None;
    if let Some(after) = rest.strip_prefix('/') {
        let (raw, tail) = after.split_once(' ').unwrap_or((after, ""));
        if !is_valid_node_id(raw) {
            return Err(ParseError::new(
                number,
                format!(
                    "invalid id prefix '/{}'",
                    raw.chars().take(40).collect::<String>()
                ),
            ));
        }
        id = Some(raw.to_owned());
        rest = tail.trim_start();
    }
    // Markdown list markers typed by habit are fine.
    rest = rest.strip_prefix("- ").unwrap_or(rest).trim_start();
    let mut status = None;
    for (mark, s) in [
        ("[ ]", Status::Todo),
        ("[x]", Status::Done),
        ("[X]", Status::Done),
        ("[/]", Status::Doing),
        ("[-]", Status::Cancelled),
    ] {
        if let Some(tail) = rest.strip_prefix(mark) {
            status = Some(s);
            rest = tail.trim_start();
            break;
        }
    }
    let mut words: Vec<&str> = rest.split_whitespace().collect();
    let (mut due, mut project, mut tags) = (None, None, BTreeSet::new());
    while let Some(word) = words.last() {
        if let Some(date) = word.strip_prefix('@') {
            if due.is_some() {
                return Err(ParseError::new(number, "more than one @due date"));
            }
            due = Some(parse_date(date).map_err(|e| ParseError::new(number, e.0))?);
        } else if let Some(p) = word.strip_prefix('+').filter(|p| !p.is_empty()) {
            if project.is_some() {
                return Err(ParseError::new(number, "more than one +project"));
            }
            project = Some(p.to_owned());
        } else if word.starts_with('#') && word.len() > 1 {
            tags.insert(normalize_tag(word).map_err(|e| ParseError::new(number, e.0))?);
        } else {
            break;
        }
        words.pop();
    }
    let title = words.join(" ");
    if title.is_empty() {
        return Err(ParseError::new(number, "the task has no title"));
    }
    Ok(Some(ListLine {
        line: number,
        id,
        status,
        title,
        due,
        project,
        tags,
    }))
}

/// Compares edited lines with the nodes the list showed and plans the
/// changes. Moving lines changes nothing.
pub fn plan(lines: &[String], shown: &[Node]) -> Result<Vec<ListChange>, Vec<ParseError>> {
    let by_id: HashMap<&str, &Node> = shown.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut changes = Vec::new();
    for (index, text) in lines.iter().enumerate() {
        let parsed = match parse_line(index + 1, text) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let Some(id) = parsed.id.clone() else {
            changes.push(ListChange::Create(parsed));
            continue;
        };
        let Some(node) = by_id.get(id.as_str()) else {
            errors.push(ParseError::new(
                parsed.line,
                "this item is not part of this list; remove its id prefix to add it as a new task",
            ));
            continue;
        };
        if !seen.insert(id.clone()) {
            errors.push(ParseError::new(
                parsed.line,
                "the same item appears twice; delete one of the lines",
            ));
            continue;
        }
        let mut patch = NodePatch::default();
        let mut what = Vec::new();
        if parsed.title != node.title {
            patch.title = Some(parsed.title.clone());
            what.push(format!("rename to \"{}\"", parsed.title));
        }
        if let Some(status) = parsed.status.filter(|s| Some(*s) != node.status) {
            patch.status = Some(Some(status));
            what.push(format!("mark {status}"));
        }
        if parsed.due != node.due {
            patch.due = Some(parsed.due);
            what.push(match parsed.due {
                Some(d) => format!("due {}", format_date(d)),
                None => "no due date".into(),
            });
        }
        if parsed.project != node.project {
            patch.project = Some(parsed.project.clone());
            what.push(match &parsed.project {
                Some(p) => format!("project {p}"),
                None => "no project".into(),
            });
        }
        if parsed.tags != node.tags {
            patch.tags = Some(parsed.tags.clone());
            what.push("tags".into());
        }
        if !patch.is_empty() {
            changes.push(ListChange::Update {
                id: id.clone(),
                summary: format!("\"{}\": {}", node.title, what.join(", ")),
                patch,
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for node in shown {
        if !seen.contains(&node.id) {
            changes.push(ListChange::Delete {
                id: node.id.clone(),
                title: node.title.clone(),
            });
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    fn task(id: &str, title: &str) -> Node {
        Node {
            id: id.into(),
            kind: Kind::Task,
            title: title.into(),
            body: String::new(),
            status: Some(Status::Todo),
            due: None,
            project: None,
            tags: BTreeSet::new(),
            created_ms: 0,
            updated_ms: 0,
            deleted: false,
            version: "1".into(),
        }
    }

    #[test]
    fn unchanged_and_reordered_lists_plan_nothing() {
        let shown = vec![task("a", "one"), task("b", "two")];
        let mut lines = render(&shown);
        assert!(plan(&lines, &shown).unwrap().is_empty());
        lines.reverse();
        lines.push(String::new());
        assert!(plan(&lines, &shown).unwrap().is_empty());
    }

    #[test]
    fn rename_complete_create_delete() {
        let mut b = task("b", "two");
        b.due = Some(time::macros::date!(2026 - 12 - 01));
        b.tags.insert("x".into());
        let shown = vec![task("a", "one"), b, task("c", "three")];
        let lines = vec![
            "/b [x] two @2026-12-01 #x".to_string(),
            "/a [ ] uno".to_string(),
            "[ ] four @2026-12-24 +home #gift".to_string(),
        ];
        let changes = plan(&lines, &shown).unwrap();
        let actions: Vec<_> = changes.iter().map(|c| c.action()).collect();
        assert_eq!(actions, vec!["complete", "update", "create", "delete"]);
        match &changes[2] {
            ListChange::Create(line) => {
                assert_eq!(line.title, "four");
                assert_eq!(line.project.as_deref(), Some("home"));
                assert!(line.tags.contains("gift"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(changes[3].id(), Some("c"));
    }

    #[test]
    fn bad_lines_are_errors_with_numbers() {
        let shown = vec![task("a", "one")];
        let lines = vec![
            "/a [ ] one".to_string(),
            "/a [ ] one again".to_string(),
            "/zzz [ ] stranger".to_string(),
            "[ ] @2026-13-01".to_string(),
            "[ ]".to_string(),
        ];
        let errors = plan(&lines, &shown).unwrap_err();
        let at: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(at, vec![2, 3, 4, 5]);
    }
}
