//! Promote lines of a note or journal into tasks, leaving `[[links]]`.

/// A line turned into a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// Index of the line in the input.
    pub index: usize,
    /// Title of the new task.
    pub title: String,
    /// Whether the line was ticked (`- [x]`).
    pub done: bool,
}

/// Splits a line into (indent + quote + list marker, checkbox state, text).
fn split(line: &str) -> (String, Option<bool>, &str) {
    // Block quotes (`> `, nested) stay where they are, as the indent does.
    let mut quoted = line;
    loop {
        let trimmed = quoted.trim_start();
        match trimmed.strip_prefix('>') {
            Some(tail) => quoted = tail.strip_prefix(' ').unwrap_or(tail),
            None => break,
        }
    }
    let quote_len = line.len() - quoted.len();
    let indent_len = quote_len + quoted.len() - quoted.trim_start().len();
    let (indent, mut rest) = line.split_at(indent_len);
    let mut prefix = indent.to_owned();
    for marker in ["- ", "* ", "+ "] {
        if let Some(tail) = rest.strip_prefix(marker) {
            prefix.push_str(marker);
            rest = tail;
            break;
        }
    }
    if prefix.len() == indent.len() {
        // Ordered list: "12. text".
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(". ") {
            prefix.push_str(&rest[..digits + 2]);
            rest = &rest[digits + 2..];
        }
    }
    let mut checked = None;
    for (mark, done) in [("[ ] ", false), ("[x] ", true), ("[X] ", true)] {
        if let Some(tail) = rest.strip_prefix(mark) {
            checked = Some(done);
            rest = tail;
            break;
        }
    }
    (prefix, checked, rest.trim())
}

/// Which lines become tasks: every non-blank line that is not already a
/// link, a heading or too odd to be a title.
pub fn promotions(lines: &[String]) -> Vec<Promotion> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(index, line)| {
            let (_, checked, text) = split(line);
            // An empty checkbox is no title, and a title the store would
            // refuse (control characters) could never be made: left as it is.
            let usable = !text.is_empty()
                && !["[ ]", "[x]", "[X]"].contains(&text)
                && !text.starts_with('#')
                && !text.contains("[[")
                && !text.contains("]]")
                && text.len() <= 500
                && !text.chars().any(|c| c.is_control() && c != '\t');
            usable.then(|| Promotion {
                index,
                title: text.to_owned(),
                done: checked == Some(true),
            })
        })
        .collect()
}

/// The replacement for a promoted line: its list marker kept, the checkbox
/// dropped (the task holds the status now), the text a link.
pub fn link_line(line: &str, title: &str) -> String {
    let (prefix, _, _) = split(line);
    format!("{prefix}[[{title}]]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_kept_and_text_becomes_links() {
        let lines: Vec<String> = [
            "- [ ] call mum",
            "  * buy bread",
            "3. file taxes",
            "",
            "## Heading",
            "plain idea",
            "- [[Existing]]",
            "- [x] done thing",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let p = promotions(&lines);
        let titles: Vec<_> = p.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            vec![
                "call mum",
                "buy bread",
                "file taxes",
                "plain idea",
                "done thing"
            ]
        );
        assert!(p[4].done);
        assert_eq!(link_line(&lines[0], "call mum"), "- [[call mum]]");
        // A quoted task keeps its quote.
        let quoted = ["> - [ ] quoted task".to_string(), ">> nested".to_string()];
        let p = promotions(&quoted);
        assert_eq!(p[0].title, "quoted task");
        assert_eq!(p[1].title, "nested");
        assert_eq!(link_line(&quoted[0], "quoted task"), "> - [[quoted task]]");
        assert_eq!(link_line(&quoted[1], "nested"), ">> [[nested]]");
        assert_eq!(link_line(&lines[1], "buy bread"), "  * [[buy bread]]");
        assert_eq!(link_line(&lines[2], "file taxes"), "3. [[file taxes]]");
        assert_eq!(link_line(&lines[5], "plain idea"), "[[plain idea]]");
    }

    #[test]
    fn lines_that_could_never_be_a_task_are_left_alone() {
        let lines: Vec<String> = ["- [ ]", "* [x]", "bad\rline", "bell\u{7}", "tab\tkept"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let titles: Vec<_> = promotions(&lines).into_iter().map(|p| p.title).collect();
        assert_eq!(titles, ["tab\tkept"]);
    }
}
