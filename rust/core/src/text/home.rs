//! The generated home page.

use crate::model::{format_date, Node};

use super::list_buffer::render_line;

/// What the home page shows.
#[derive(Debug, Clone, Default)]
pub struct HomeData {
    /// Today's date.
    pub today: Option<time::Date>,
    /// Today's journal, when it exists.
    pub journal: Option<Node>,
    /// Next open tasks.
    pub next: Vec<Node>,
    /// Recently changed notes.
    pub notes: Vec<Node>,
    /// Projects with their open task counts.
    pub projects: Vec<(String, usize)>,
}

/// Renders the home page. Items carry the `/<id> ` prefix so the editor can
/// open them; project lines start with `+`.
pub fn render(data: &HomeData) -> Vec<String> {
    let mut lines = vec!["# heph".to_owned(), String::new(), "## Today".to_owned()];
    match (&data.journal, data.today) {
        (Some(j), _) => lines.push(format!("/{} {}", j.id, j.title)),
        (None, Some(day)) => lines.push(format!(
            "Journal {} (open with :Heph today)",
            format_date(day)
        )),
        (None, None) => {}
    }
    lines.push(String::new());
    lines.push("## Next".to_owned());
    if data.next.is_empty() {
        lines.push("Nothing to do. Add a task with :Heph task".to_owned());
    }
    lines.extend(data.next.iter().map(render_line));
    lines.push(String::new());
    lines.push("## Recent notes".to_owned());
    if data.notes.is_empty() {
        lines.push("No notes yet. Start one with :Heph new".to_owned());
    }
    lines.extend(data.notes.iter().map(|n| format!("/{} {}", n.id, n.title)));
    if !data.projects.is_empty() {
        lines.push(String::new());
        lines.push("## Projects".to_owned());
        lines.extend(
            data.projects
                .iter()
                .map(|(name, open)| format!("+{name} ({open} open)")),
        );
    }
    lines
}
