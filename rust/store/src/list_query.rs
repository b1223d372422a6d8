//! The list query language: what a `heph://list/<query>` buffer and
//! `heph list <query>` show, and what new lines in a list buffer get.

use crate::{ListFilter, ListOrder, StatusFilter};
use heph_core::{Kind, NewNode};

/// A parsed list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Buffer title.
    pub title: String,
    /// The filter.
    pub filter: ListFilter,
    /// Project given to tasks added in this list.
    pub project: Option<String>,
    /// Tag given to tasks added in this list.
    pub tag: Option<String>,
    /// Kind of the nodes a new line creates.
    pub new_kind: Kind,
}

/// `next`, `tasks`, `all` (every node, like `heph list --all`), `done`,
/// `notes`, `project:<name>`, `tag:<name>`, or search terms over open tasks.
pub fn parse(query: &str) -> ListQuery {
    let query = query.trim();
    let tasks = |status| ListFilter {
        kinds: vec![Kind::Task],
        status,
        ..ListFilter::default()
    };
    let (title, filter, project, tag) = match query {
        "" | "next" => (
            "Next tasks".to_owned(),
            ListFilter {
                limit: Some(50),
                ..tasks(StatusFilter::Open)
            },
            None,
            None,
        ),
        "tasks" => (
            "Open tasks".to_owned(),
            tasks(StatusFilter::Open),
            None,
            None,
        ),
        "all" => (
            "Everything".to_owned(),
            ListFilter {
                status: StatusFilter::Any,
                ..ListFilter::default()
            },
            None,
            None,
        ),
        "notes" => (
            "Notes".to_owned(),
            ListFilter {
                kinds: vec![Kind::Note],
                status: StatusFilter::Any,
                order: ListOrder::RecentlyUpdated,
                ..ListFilter::default()
            },
            None,
            None,
        ),
        "done" => (
            "Done tasks".to_owned(),
            ListFilter {
                order: ListOrder::RecentlyUpdated,
                ..tasks(StatusFilter::Closed)
            },
            None,
            None,
        ),
        q if q.starts_with("project:") => {
            // As a list line writes it: `+My\ Project`.
            let name = q["project:".len()..].trim().replace("\\ ", " ");
            (
                format!("Project {name}"),
                ListFilter {
                    project: Some(name.clone()),
                    ..tasks(StatusFilter::Open)
                },
                Some(name),
                None,
            )
        }
        q if q.starts_with("tag:") => {
            let name = q["tag:".len()..]
                .trim()
                .trim_start_matches('#')
                .replace("\\ ", " ");
            (
                format!("Tag #{name}"),
                ListFilter {
                    tag: Some(name.clone()),
                    ..tasks(StatusFilter::Open)
                },
                None,
                Some(name),
            )
        }
        q => (
            format!("Tasks matching \"{q}\""),
            ListFilter {
                text: Some(q.to_owned()),
                ..tasks(StatusFilter::Open)
            },
            None,
            None,
        ),
    };
    let new_kind = if query == "notes" {
        Kind::Note
    } else {
        Kind::Task
    };
    ListQuery {
        title,
        filter,
        project,
        tag,
        new_kind,
    }
}

impl ListQuery {
    /// A new node from a list line (a task, or a note in `notes`), with the
    /// list's project or tag.
    pub fn new_task(&self, line: heph_core::text::list_buffer::ListLine) -> NewNode {
        let mut node = line.new_node(self.new_kind);
        if let Some(tag) = &self.tag {
            node.tags.insert(tag.clone());
        }
        node.status = node.status.filter(|_| self.new_kind == Kind::Task);
        node.project = node.project.or_else(|| self.project.clone());
        node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert_eq!(
            parse("project:home").filter.project.as_deref(),
            Some("home")
        );
        assert_eq!(parse("tag:#x").tag.as_deref(), Some("x"));
        // As a list line writes a name with spaces (`+My\ Project`), and
        // as typed.
        for q in ["project:My\\ Project", "project:My Project"] {
            assert_eq!(parse(q).filter.project.as_deref(), Some("My Project"));
        }
        assert_eq!(parse("tag:#two\\ words").tag.as_deref(), Some("two words"));
        assert_eq!(parse("milk").filter.text.as_deref(), Some("milk"));
        assert_eq!(parse("done").filter.status, StatusFilter::Closed);
        assert!(parse("all").filter.kinds.is_empty());
        assert_eq!(parse("notes").new_kind, Kind::Note);
    }
}
