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

use super::ParseError;
use crate::fields::{self, Context, Value, FIELDS};
use crate::model::{Kind, Node, NodePatch, Status};

/// Header delimiter line.
pub const FENCE: &str = "---";

/// Renders a node as buffer lines.
pub fn render(node: &Node) -> Vec<String> {
    let mut lines = vec![FENCE.to_owned()];
    for def in FIELDS.iter().filter(|def| (def.in_header)(node)) {
        let value = match (def.get)(node) {
            // A task always shows a status, so the key is there to edit.
            Value::Status(None) if node.kind == Kind::Task => Value::Status(Some(Status::Todo)),
            other => other,
        };
        lines.push(format!("{}: {}", def.name, value.render()));
    }
    lines.push(FENCE.to_owned());
    if has_crlf_lines(&node.body) {
        lines.extend(body_lines(&node.body.replace("\r\n", "\n")));
    } else {
        lines.extend(body_lines(&node.body));
    }
    lines
}

/// Whether every line break of `body` is CRLF (text written on Windows).
/// Such a body is shown without the `\r`s, as Vim shows a file with
/// `fileformat=dos`, and a save puts them back ([`with_crlf`]);
/// shown as they are, every line ended in `^M`. A body mixing both
/// stays as it is: its `\r`s are not all line ends.
pub fn has_crlf_lines(body: &str) -> bool {
    let mut breaks = body.match_indices('\n').peekable();
    breaks.peek().is_some() && breaks.all(|(at, _)| body[..at].ends_with('\r'))
}

/// `body`, read from buffer lines, with CRLF line ends when `crlf` (the
/// body the buffer was rendered from had them), so a save changes only
/// the lines the user edited.
pub fn with_crlf(body: String, crlf: bool) -> String {
    if crlf && !body.is_empty() {
        body.replace('\n', "\r\n")
    } else {
        body
    }
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

/// A node buffer's text, read: the header's fields (those present, in
/// order) and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Header fields that were present, with their 1-based lines.
    pub fields: Vec<(usize, Value)>,
    /// Header fields whose text the grammar refuses but which the buffer
    /// showed as they are (a title with a control character that came from
    /// elsewhere): name and text. They are left as they are.
    pub kept: Vec<(&'static str, String)>,
    /// The body text.
    pub body: String,
}

impl Parsed {
    fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(_, v)| v.name() == name)
            .map(|(_, v)| v)
    }

    fn kept_text(&self, name: &str) -> Option<&str> {
        self.kept
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| text.as_str())
    }
}

/// Reads buffer lines. Every problem is reported, each with its line.
pub fn read(lines: &[String], cx: &Context) -> Result<Parsed, Vec<ParseError>> {
    read_with(lines, cx, Keep::Nothing)
}

/// Reads the lines a buffer was rendered with: a value the grammar
/// refuses is what the store holds (written by another device, or by an
/// older heph), kept as text instead of making the buffer unsaveable.
pub fn read_shown(lines: &[String], cx: &Context) -> Result<Parsed, Vec<ParseError>> {
    read_with(lines, cx, Keep::Refused)
}

/// Reads edited lines: a value the grammar refuses is an error, unless it
/// is the very text `shown` kept (the user left it as it was).
pub fn read_edited(
    lines: &[String],
    cx: &Context,
    shown: &Parsed,
) -> Result<Parsed, Vec<ParseError>> {
    read_with(lines, cx, Keep::AsShown(shown))
}

/// Which refused header values [`read_with`] keeps as text.
enum Keep<'a> {
    Nothing,
    Refused,
    AsShown(&'a Parsed),
}

fn read_with(lines: &[String], cx: &Context, keep: Keep<'_>) -> Result<Parsed, Vec<ParseError>> {
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
    let mut fields: Vec<(usize, Value)> = Vec::new();
    let mut kept: Vec<(&'static str, String)> = Vec::new();
    for (index, line) in lines[1..close].iter().enumerate() {
        let number = index + 2;
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, text)) = line.split_once(':') else {
            errors.push(ParseError::new(
                number,
                format!("expected 'key: value', got {:?}", truncate(line)),
            ));
            continue;
        };
        let Some(def) = fields::field(key) else {
            errors.push(ParseError::new(
                number,
                format!(
                    "unknown header key '{}' (keys: {})",
                    truncate(key.trim()),
                    fields::names()
                ),
            ));
            continue;
        };
        if fields.iter().any(|(_, v)| v.name() == def.name)
            || kept.iter().any(|(name, _)| *name == def.name)
        {
            errors.push(ParseError::new(
                number,
                format!("'{}' appears twice", def.name),
            ));
            continue;
        }
        match fields::parse_written(def, text, cx) {
            Ok(value) => fields.push((number, value)),
            Err(e) => {
                let keeps = match &keep {
                    Keep::Nothing => false,
                    Keep::Refused => true,
                    Keep::AsShown(shown) => shown.kept_text(def.name) == Some(text.trim()),
                };
                if keeps {
                    kept.push((def.name, text.trim().to_owned()));
                } else {
                    errors.push(ParseError::new(number, e.0));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(Parsed {
            fields,
            kept,
            body: join_body(&lines[close + 1..]),
        })
    } else {
        Err(errors)
    }
}

/// The changes from `base` (what the buffer was rendered from) to
/// `edited`: only fields the user changed, so a field changed elsewhere
/// meanwhile is not written back. Keys left out of the header leave their
/// field unchanged.
pub fn diff(base: &Parsed, edited: &Parsed, kind_now: Kind) -> Result<NodePatch, Vec<ParseError>> {
    let mut patch = NodePatch::default();
    let mut status_line = None;
    for (line, value) in &edited.fields {
        let shown = base.get(value.name());
        if shown == Some(value) {
            continue;
        }
        if matches!(value, Value::Status(Some(_))) {
            status_line = Some(*line);
        }
        value.clone().apply_over(shown, &mut patch);
    }
    let kind = patch.kind.unwrap_or(kind_now);
    if let (Some(line), true) = (status_line, kind != Kind::Task) {
        return Err(vec![ParseError::new(line, "status applies to tasks only")]);
    }
    if !same_body(&base.body, &edited.body) {
        patch.body = Some(edited.body.clone());
    }
    Ok(patch)
}

/// Parses edited buffer lines into the changes relative to `current`
/// (a buffer rendered from `current` and edited).
pub fn parse(lines: &[String], current: &Node, cx: &Context) -> Result<NodePatch, Vec<ParseError>> {
    let base = read_shown(&render(current), cx).map_err(|mut e| {
        e.truncate(1);
        e
    })?;
    let edited = read_edited(lines, cx, &base)?;
    diff(&base, &edited, current.kind)
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::normalize_tag;
    use proptest::prelude::*;

    fn cx() -> Context {
        Context {
            today: time::macros::date!(2026 - 11 - 30),
        }
    }

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
    fn a_crlf_body_shows_without_carriage_returns_and_saves_with_them() {
        let mut windows = node();
        windows.body = "two litres\r\n\r\n- oat\r\n".into();
        let lines = render(&windows);
        assert_eq!(lines[lines.len() - 3..], ["two litres", "", "- oat"]);
        // Nothing edited: nothing to save.
        assert_eq!(
            parse(&lines, &windows, &cx()).unwrap(),
            NodePatch::default()
        );
        let mut edited = lines.clone();
        *edited.last_mut().unwrap() = "- soy".into();
        let body = parse(&edited, &windows, &cx()).unwrap().body.unwrap();
        assert_eq!(
            with_crlf(body, has_crlf_lines(&windows.body)),
            "two litres\r\n\r\n- soy\r\n"
        );
    }

    #[test]
    fn only_a_body_whose_every_break_is_crlf_counts_as_crlf() {
        assert!(has_crlf_lines("a\r\nb\r\n"));
        assert!(has_crlf_lines("a\r\nb"));
        assert!(
            !has_crlf_lines("a\r\nb\n"),
            "mixed line ends stay as they are"
        );
        assert!(!has_crlf_lines("a\nb\n"));
        assert!(!has_crlf_lines("no break\r"));
        assert!(!has_crlf_lines(""));
        // A mixed body is rendered and saved as it is.
        let mut mixed = node();
        mixed.body = "a\r\nb\n".into();
        assert_eq!(render(&mixed).last().unwrap(), "b");
        assert_eq!(render(&mixed)[render(&mixed).len() - 2], "a\r");
        assert_eq!(
            with_crlf("a\nc\n".into(), has_crlf_lines(&mixed.body)),
            "a\nc\n"
        );
    }

    #[test]
    fn render_then_parse_changes_nothing() {
        let n = node();
        let lines = render(&n);
        assert_eq!(lines[1], "title: Buy milk");
        assert_eq!(parse(&lines, &n, &cx()).unwrap(), NodePatch::default());
        let mut note = n.clone();
        note.kind = Kind::Note;
        note.status = None;
        note.due = None;
        note.body = "no final newline".into();
        assert_eq!(
            parse(&render(&note), &note, &cx()).unwrap(),
            NodePatch::default()
        );
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
        let patch = parse(&lines, &n, &cx()).unwrap();
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

    /// `n` rendered, with its header line for `key` written as `value`.
    fn with_header(n: &Node, key: &str, value: &str) -> Vec<String> {
        render(n)
            .into_iter()
            .map(|l| {
                if l.starts_with(&format!("{key}:")) {
                    format!("{key}: {value}")
                } else {
                    l
                }
            })
            .collect()
    }

    #[test]
    fn a_value_from_elsewhere_the_grammar_refuses_does_not_stop_a_save() {
        // Written by another device: a lone CR, a `\` in the project.
        let mut n = node();
        n.title = "Buy milk\rand eggs".into();
        n.project = Some("a\\b".into());
        let mut lines = render(&n);
        lines.push("one more line".into());
        let patch = parse(&lines, &n, &cx()).unwrap();
        assert_eq!(patch.title, None);
        assert_eq!(patch.project, None);
        assert!(patch.body.unwrap().ends_with("one more line\n"));
        // A new title is read by the grammar again: fixed, it saves.
        let fixed = with_header(&n, "title", "Buy milk and eggs");
        let patch = parse(&fixed, &n, &cx()).unwrap();
        assert_eq!(patch.title.as_deref(), Some("Buy milk and eggs"));
        // Changed to another bad value, it is an error on its line.
        let worse = with_header(&n, "title", "Buy\u{7}milk");
        let err = parse(&worse, &n, &cx()).unwrap_err();
        assert_eq!(err[0].line, 2, "{err:?}");
    }

    #[test]
    fn a_tag_edit_is_a_change_of_the_tags_the_header_showed() {
        let n = node();
        let lines = with_header(&n, "tags", "errand, new");
        let patch = parse(&lines, &n, &cx()).unwrap();
        assert_eq!(patch.tags_shown, Some(n.tags.clone()));
        let now = ["errand", "shop", "phone"].map(String::from).into();
        let tags: Vec<String> = patch.tags_over(&now).unwrap().into_iter().collect();
        assert_eq!(tags, ["errand", "new", "phone"]);
    }

    #[test]
    fn a_due_written_as_a_list_token_reads() {
        let n = node();
        let lines = with_header(&n, "due", "@tomorrow");
        let patch = parse(&lines, &n, &cx()).unwrap();
        assert_eq!(patch.due, Some(Some(time::macros::date!(2026 - 12 - 01))));
    }

    #[test]
    fn errors_name_their_lines() {
        let n = node();
        let mut lines = render(&n);
        lines[2] = "kind: poem".into();
        lines[4] = "due: soon".into();
        lines.insert(5, "colour: red".into());
        let errors = parse(&lines, &n, &cx()).unwrap_err();
        let at: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(at, vec![3, 5, 6]);
        assert!(errors[2].message.contains("unknown header key"));

        let unclosed: Vec<String> = vec!["---".into(), "title: x".into(), "body".into()];
        assert_eq!(parse(&unclosed, &n, &cx()).unwrap_err()[0].line, 3);
        assert_eq!(
            parse(&["hello".to_string()], &n, &cx()).unwrap_err()[0].line,
            1
        );
        assert_eq!(parse(&[], &n, &cx()).unwrap_err()[0].line, 1);
    }

    proptest! {
        #[test]
        fn a_rendered_node_reads_back_as_itself(
            title in "[a-zA-Z0-9:#@+\\\\ é-]{0,20}[a-z]",
            project in prop::option::of("[a-z:#@+ é]{0,8}[a-z]"),
            tags in prop::collection::btree_set("[a-z0-9_@+.-]{1,6}", 0..4),
            due in prop::option::of(0i64..3000),
            body in "(---|[a-z :#]{0,12}|)(\n(---|[a-z :#]{0,12}|)){0,5}\n?",
            note in any::<bool>(),
        ) {
            let mut n = node();
            n.title = title.trim().to_owned();
            n.project = project.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty());
            n.tags = tags.iter().filter_map(|t| normalize_tag(t).ok()).collect();
            n.due = due.map(|d| time::macros::date!(2026 - 01 - 01) + time::Duration::days(d));
            n.body = body;
            if note {
                n.kind = Kind::Note;
                n.status = None;
            }
            let lines = render(&n);
            prop_assert_eq!(parse(&lines, &n, &cx()).unwrap(), NodePatch::default());
            let read = read(&lines, &cx()).unwrap();
            let value = |name: &str| read.fields.iter().find(|(_, v)| v.name() == name).map(|(_, v)| v.clone());
            prop_assert_eq!(value("title"), Some(Value::Title(n.title.clone())));
            prop_assert_eq!(value("project"), Some(Value::Project(n.project.clone())));
            prop_assert_eq!(value("tags"), Some(Value::Tags(n.tags.clone())));
            prop_assert!(same_body(&read.body, &n.body), "{:?} vs {:?}", read.body, n.body);
        }
    }
}
