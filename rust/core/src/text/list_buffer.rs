//! The list buffer, oil.nvim style: one task per line,
//! `/<id> [ ] Title @2026-11-30 +project #tag`. The `/<id> ` prefix (hidden
//! by the editor) keeps identity when lines move; a line without it is new.
//!
//! Lines round-trip: every title, project and tag renders to text that
//! parses back to the same values. Trailing `@date`, `+project` and `#tag`
//! words are read off the end; a title whose last word would read as one
//! of those (or starts with `\`) gets a `\` in front of that word, and a
//! project's spaces and backslashes are escaped with `\` (`+my\ project`).
//!
//! A save is planned against the lines the buffer was rendered with (the
//! snapshot), never against a fresh query: a task the buffer never showed
//! is never touched, and a line changes only the fields the user edited.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::ParseError;
use crate::fields::{self, Context, Value};
use crate::id::is_valid_node_id;
use crate::model::{FieldError, Kind, NewNode, Node, NodePatch, Status};

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
    /// The values of the fields a line writes as words (`@due`,
    /// `+project`, `#tag`: [`fields::list_tokens`]), each of them,
    /// unset when the line has no word for it; by field name.
    pub fields: BTreeMap<&'static str, Value>,
}

impl ListLine {
    /// The line's value of field `name` (a list-token field).
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// Whether the line shows `node`'s own value of field `name`.
    pub fn shows_value_of(&self, name: &str, node: &Node) -> bool {
        match fields::field(name) {
            Some(def) => self.value(def.name) == Some(&(def.get)(node)),
            None => false,
        }
    }

    /// The line's field words as a patch (every list-token field set).
    pub fn patch(&self) -> NodePatch {
        let mut patch = NodePatch::default();
        for value in self.fields.values() {
            value.clone().apply(&mut patch);
        }
        patch
    }

    /// A new node of `kind` from the line: its title, checkbox and words.
    pub fn new_node(&self, kind: Kind) -> NewNode {
        let patch = self.patch();
        NewNode {
            kind: Some(kind),
            title: self.title.clone(),
            body: String::new(),
            status: self.status,
            due: patch.due.flatten(),
            project: patch.project.flatten(),
            tags: patch.tags.unwrap_or_default(),
        }
    }
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
        /// Whether the node is deleted and comes back (an undone delete).
        restore: bool,
        /// One-line description.
        summary: String,
    },
    /// A task whose line was removed from the buffer.
    Delete {
        /// Node id.
        id: String,
        /// Its title.
        title: String,
    },
}

impl ListChange {
    /// `create`, `update`, `complete`, `restore` or `delete`.
    pub fn action(&self) -> &'static str {
        match self {
            ListChange::Create(_) => "create",
            ListChange::Update { restore: true, .. } => "restore",
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
    let mut line = String::with_capacity(line_capacity(node));
    write_line(node, &mut line);
    line
}

/// A guess at a line's length, so writing it rarely grows the string.
pub fn line_capacity(node: &Node) -> usize {
    node.id.len() + node.title.len() + 48
}

/// Appends `node`'s task line to `out`: the text of [`render_line`],
/// written in place (a 30,000-line list renders without a string per
/// part of a line).
pub fn write_line(node: &Node, out: &mut String) {
    out.push('/');
    out.push_str(&node.id);
    out.push(' ');
    out.push_str(checkbox(node.status));
    out.push(' ');
    write_item_text(node, out);
}

/// The title with its `@due +project #tag` suffixes (what a list line
/// shows after the checkbox; the CLI prints it too): each list-token field
/// of the table, in its order, a word per value; spaces in a word are
/// escaped with `\`.
pub fn item_text(node: &Node) -> String {
    let mut text = String::with_capacity(line_capacity(node));
    write_item_text(node, &mut text);
    text
}

/// Appends [`item_text`] to `out`.
pub fn write_item_text(node: &Node, out: &mut String) {
    let title_start = out.len();
    write_title(&node.title, out);
    let title_end = out.len();
    for (def, token) in fields::list_tokens() {
        (def.get)(node).each_word(|word| {
            out.push(' ');
            out.push(token.sigil);
            if !word.contains(char::is_whitespace) {
                out.push_str(word);
                return;
            }
            for c in word.chars() {
                if c.is_whitespace() {
                    out.push('\\');
                }
                out.push(c);
            }
        });
    }
    if out.len() > title_end && out[title_start..title_end].ends_with('\\') {
        // A final `\` would escape the separator: a second space keeps
        // the title's end where it is.
        out.insert(title_end, ' ');
    }
}

/// Renders a list.
pub fn render(nodes: &[Node]) -> Vec<String> {
    nodes.iter().map(render_line).collect()
}

/// Byte ranges of the words of `text`: runs of non-whitespace, where a
/// `\` before a whitespace character makes it part of the word (how a
/// project's spaces are written).
fn words(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    each_word_span(text, |span| out.push(span));
    out
}

/// The last of [`words`], found without collecting them (every rendered
/// title looks at its last word).
fn last_word(text: &str) -> Option<(usize, usize)> {
    if !text.contains('\\') {
        // Without a `\` no space joins a word: the last word is what
        // follows the last space (found from the end, not by walking
        // the title).
        let end = text.trim_end().len();
        let start = text[..end]
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8());
        return (end > 0).then_some((start, end));
    }
    let mut last = None;
    each_word_span(text, |span| last = Some(span));
    last
}

/// Calls `each` with the byte range of every word of `text`, in order.
fn each_word_span(text: &str, mut each: impl FnMut((usize, usize))) {
    let mut start = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                each((s, i));
            }
            continue;
        }
        start.get_or_insert(i);
        if c == '\\' && chars.peek().is_some_and(|(_, next)| next.is_whitespace()) {
            chars.next();
        }
    }
    if let Some(s) = start {
        each((s, text.len()));
    }
}

/// The list-token field a word is written for, when it reads as one (a
/// sigil and at least one more character).
fn token_field(word: &str) -> Option<(&'static fields::FieldDef, &'static fields::ListToken)> {
    let mut chars = word.chars();
    let sigil = chars.next()?;
    chars.next()?;
    fields::list_tokens().find(|(_, token)| token.sigil == sigil)
}

/// The field a field word (`@fri`, `+my\ project`, `#tag`) is written for,
/// its token, and its value read by the field's parser; `None` for a word
/// that is no field word.
fn token_value(
    word: &str,
    cx: &Context,
) -> Option<(
    &'static fields::FieldDef,
    &'static fields::ListToken,
    Result<Value, FieldError>,
)> {
    let (def, token) = token_field(word)?;
    let value = (def.parse)(&unescape_word(&word[token.sigil.len_utf8()..]), cx);
    Some((def, token, value))
}

/// Whether a word reads as a trailing `@date`, `+project` or `#tag`.
fn is_token(word: &str) -> bool {
    token_field(word).is_some()
}

/// Appends `title` to `out`; a title whose last word reads as a token or
/// starts with `\` gets a `\` in front of that word, and so does a word
/// before it that starts with `\` and a sigil or another `\`
/// ([`unescape_title`] takes them away).
fn write_title(title: &str, out: &mut String) {
    let last = last_word(title);
    if !title.contains('\\') {
        // No word starts with `\`: only the last word may need one.
        match last {
            Some((start, end)) if is_token(&title[start..end]) => {
                out.push_str(&title[..start]);
                out.push('\\');
                out.push_str(&title[start..]);
            }
            _ => out.push_str(title),
        }
        return;
    }
    let mut copied = 0;
    each_word_span(title, |(start, end)| {
        let word = &title[start..end];
        let escape = if Some((start, end)) == last {
            is_token(word) || word.starts_with('\\')
        } else {
            escapes_a_word(word)
        };
        if escape {
            out.push_str(&title[copied..start]);
            out.push('\\');
            copied = start;
        }
    });
    out.push_str(&title[copied..]);
}

/// A word inside a title written with a `\` in front of a sigil (`\#42`
/// for a literal `#42` that a field word could follow) or of another `\`.
fn escapes_a_word(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next() == Some('\\')
        && chars
            .next()
            .is_some_and(|c| c == '\\' || fields::list_tokens().any(|(_, t)| t.sigil == c))
}

fn unescape_title(text: &str) -> String {
    let last = last_word(text);
    if !text.contains('\\') {
        return text.to_owned();
    }
    let mut title = String::with_capacity(text.len());
    let mut copied = 0;
    each_word_span(text, |(start, end)| {
        let word = &text[start..end];
        // A lone `\` escapes nothing: it is the title's own.
        let escaped = if Some((start, end)) == last {
            word.starts_with('\\') && end - start > 1
        } else {
            escapes_a_word(word)
        };
        if escaped {
            title.push_str(&text[copied..start]);
            copied = start + 1;
        }
    });
    title.push_str(&text[copied..]);
    title
}

/// A token's value: `\ ` is a space.
fn unescape_word(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|next| next.is_whitespace()) {
            continue;
        }
        out.push(c);
    }
    out
}

/// Parses one line (1-based `number`); `None` for a blank line. `today`
/// reads relative dates (`@tomorrow`, `@fri`, `@+3d`).
pub fn parse_line(
    number: usize,
    text: &str,
    today: time::Date,
) -> Result<Option<ListLine>, ParseError> {
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
    // Markdown list markers typed by habit are fine: on a new line, and
    // before a checkbox after an id (`- [x] Call mom`, as notes write
    // tasks, would otherwise be a title).
    if let Some(tail) = rest.strip_prefix("- ") {
        let tail = tail.trim_start();
        if id.is_none() || CHECKBOXES.iter().any(|(mark, _)| tail.starts_with(mark)) {
            rest = tail;
        }
    }
    let mut status = None;
    for (mark, s) in CHECKBOXES {
        if let Some(tail) = rest.strip_prefix(mark) {
            status = Some(s);
            rest = tail.trim_start();
            break;
        }
    }
    if status.is_none() && looks_like_checkbox(rest) {
        return Err(ParseError::new(
            number,
            "write the checkbox as [ ], [x], [/] or [-] (a space or one mark between the brackets)",
        ));
    }
    let spans = words(rest);
    let cx = Context { today };
    let mut found: BTreeMap<&'static str, Value> = BTreeMap::new();
    let fail = |message: String| ParseError::new(number, message);
    let mut title_end = 0;
    for &(start, end) in spans.iter().rev() {
        let word = &rest[start..end];
        let Some((def, token, value)) = token_value(word, &cx) else {
            title_end = end;
            break;
        };
        let value = value.map_err(|e| {
            let s = token.sigil;
            fail(format!("{} (write \\{s} for a literal {s})", e.0))
        })?;
        let value = match found.remove(def.name) {
            None => value,
            Some(seen) if token.repeats => seen.merge(value),
            Some(_) => {
                let s = token.sigil;
                return Err(fail(format!(
                    "more than one {s}{} (write \\{s} for a literal {s})",
                    def.name
                )));
            }
        };
        found.insert(def.name, value);
    }
    let title = unescape_title(rest[..title_end].trim_end());
    if title.trim().is_empty() {
        return Err(fail("the task has no title".into()));
    }
    // Every list-token field, unset when the line has no word for it.
    let mut values = BTreeMap::new();
    for (def, _) in fields::list_tokens() {
        let value = match found.remove(def.name) {
            Some(value) => value,
            None => (def.parse)("", &cx).map_err(|e| fail(e.0))?,
        };
        values.insert(def.name, value);
    }
    Ok(Some(ListLine {
        line: number,
        id,
        status,
        title,
        fields: values,
    }))
}

/// A start that was meant as a checkbox but is none (`[]`, `[ x]`,
/// `[xx]`): saved as the title's start, the task's status would silently
/// stay as it was.
fn looks_like_checkbox(rest: &str) -> bool {
    let Some(inner) = rest.strip_prefix('[').and_then(|r| r.split_once(']')) else {
        return false;
    };
    inner.0.chars().count() <= 3
        && inner
            .0
            .chars()
            .all(|c| matches!(c, ' ' | 'x' | 'X' | '/' | '-'))
}

/// The checkboxes a line may start with, and the status each one sets.
const CHECKBOXES: [(&str, Status); 6] = [
    ("[ ]", Status::Todo),
    // As a Japanese or Chinese input method types the space.
    ("[\u{3000}]", Status::Todo),
    ("[x]", Status::Done),
    ("[X]", Status::Done),
    ("[/]", Status::Doing),
    ("[-]", Status::Cancelled),
];

/// The id of another item's start inside a title: `/ID` of an item the
/// list showed, or `/ID [ ]` (a checkbox after it): what joining two lines
/// (`J`) leaves. Saved as it is, it would rename the first item to both
/// lines' text and delete the second.
fn joined_item<'t>(title: &'t str, shown: &HashMap<String, ListLine>) -> Option<&'t str> {
    title.match_indices('/').find_map(|(i, _)| {
        if !title[..i].is_empty() && !title[..i].ends_with(char::is_whitespace) {
            return None;
        }
        let after = &title[i + 1..];
        let (id, rest) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
        let starts_item = CHECKBOXES.iter().any(|(mark, _)| rest.starts_with(mark));
        (is_valid_node_id(id) && (starts_item || shown.contains_key(id))).then_some(id)
    })
}

/// Reads the lines a list was rendered with: the snapshot a save is
/// planned against (id → what its line showed).
pub fn snapshot(rendered: &[String], today: time::Date) -> HashMap<String, ListLine> {
    rendered
        .iter()
        .enumerate()
        .filter_map(|(i, text)| parse_line(i + 1, text, today).ok().flatten())
        .filter_map(|line| line.id.clone().map(|id| (id, line)))
        .collect()
}

/// What a line shows of a node the snapshot does not hold (a line pasted
/// from another list, an undone save): the node as it is now.
pub fn shown(node: &Node) -> ListLine {
    ListLine {
        line: 0,
        id: Some(node.id.clone()),
        status: node.status,
        title: node.title.clone(),
        fields: fields::list_tokens()
            .map(|(def, _)| (def.name, (def.get)(node)))
            .collect(),
    }
}

/// Plans a save: the difference between the edited `lines` and the
/// `snapshot` the buffer was rendered with. Lines whose id the snapshot
/// lacks are edits of the node as `lookup` finds it now (restoring it when
/// deleted); unknown ids are errors. An edited line of a node deleted
/// elsewhere since the list was shown restores it too, as an edit made
/// after a delete does when devices sync. Moving lines changes nothing.
pub fn plan(
    lines: &[String],
    snapshot: &HashMap<String, ListLine>,
    lookup: &dyn Fn(&str) -> Option<Node>,
    today: time::Date,
) -> Result<Vec<ListChange>, Vec<ParseError>> {
    plan_with_known(lines, snapshot, &HashMap::new(), lookup, today)
}

/// [`plan`], where a line whose id the snapshot lacks is an edit of what
/// `known` holds for it when it holds it (what heph last showed of that
/// item elsewhere: the line a save took out of this list, the line of
/// another list it was yanked from), of the node as it is now otherwise.
/// So a line brought back or pasted changes what was edited on it, not
/// every field changed elsewhere since it was shown.
pub fn plan_with_known(
    lines: &[String],
    snapshot: &HashMap<String, ListLine>,
    known: &HashMap<String, ListLine>,
    lookup: &dyn Fn(&str) -> Option<Node>,
    today: time::Date,
) -> Result<Vec<ListChange>, Vec<ParseError>> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut changes = Vec::new();
    for (index, text) in lines.iter().enumerate() {
        let parsed = match parse_line(index + 1, text, today) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Some(other) = joined_item(&parsed.title, snapshot) {
            errors.push(ParseError::new(
                parsed.line,
                format!(
                    "this line holds a second item (/{}…): were two lines joined? Put each item on a line of its own",
                    other.chars().take(8).collect::<String>()
                ),
            ));
            continue;
        }
        let Some(id) = parsed.id.clone() else {
            if let Err(e) = check_title(&parsed).and_then(|()| check_second_checkbox(&parsed)) {
                errors.push(e);
                continue;
            }
            changes.push(ListChange::Create(parsed));
            continue;
        };
        if !seen.insert(id.clone()) {
            errors.push(ParseError::new(
                parsed.line,
                "the same item appears twice; delete one of the lines",
            ));
            continue;
        }
        let (base, restore) = match snapshot.get(&id) {
            Some(base) => (base.clone(), false),
            None => match lookup(&id) {
                Some(node) => (
                    known.get(&id).cloned().unwrap_or_else(|| shown(&node)),
                    node.deleted,
                ),
                None => {
                    errors.push(ParseError::new(
                        parsed.line,
                        "no item has this line's hidden id: if a :s or :g changed it, undo (u); \
                         else delete the line, or all of its hidden '/id ' prefix to create a new item",
                    ));
                    continue;
                }
            },
        };
        // Only a title the line changes: one that came from elsewhere
        // (another device's op) is shown and kept as it is.
        if parsed.title != base.title {
            if let Err(e) = check_title(&parsed)
                .and_then(|()| check_second_checkbox(&parsed))
                .and_then(|()| check_fields_kept_out_of_title(&base, &parsed, today))
            {
                errors.push(e);
                continue;
            }
        }
        let mut change = line_change(&id, &base, &parsed, restore);
        if !restore && change.is_some() && lookup(&id).is_some_and(|node| node.deleted) {
            change = line_change(&id, &base, &parsed, true);
        }
        changes.extend(change);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut gone: Vec<&ListLine> = snapshot
        .iter()
        .filter(|(id, _)| !seen.contains(*id))
        .map(|(_, line)| line)
        .collect();
    gone.sort_by_key(|line| line.line);
    for line in gone {
        if let Some(id) = &line.id {
            let now = lookup(id);
            // Deleted elsewhere meanwhile: nothing to do, nothing to
            // confirm, and no second tombstone to sync.
            if now.as_ref().is_some_and(|node| node.deleted) {
                continue;
            }
            // Named as it is now (renamed elsewhere meanwhile), so the
            // confirmation names the task it deletes.
            changes.push(ListChange::Delete {
                id: id.clone(),
                title: now.map_or_else(|| line.title.clone(), |node| node.title),
            });
        }
    }
    Ok(changes)
}

/// The header's title rules (length, no control characters) for a title
/// a line writes, here where its line is known, not later as a store error
/// with none.
fn check_title(line: &ListLine) -> Result<(), ParseError> {
    let cx = Context {
        today: time::Date::MIN,
    };
    fields::parse_title(&line.title, &cx)
        .map(|_| ())
        .map_err(|e| ParseError::new(line.line, e.0))
}

/// A title that starts with a second checkbox (`I[x] ` typed after the
/// box, `- [x] ` in front of it): saved, the box the user typed would be
/// title text and the task's status would not change.
fn check_second_checkbox(line: &ListLine) -> Result<(), ParseError> {
    let title = line.title.trim_start();
    let title = title.strip_prefix("- ").map_or(title, str::trim_start);
    if CHECKBOXES.iter().any(|(mark, _)| title.starts_with(mark)) || looks_like_checkbox(title) {
        return Err(ParseError::new(
            line.line,
            "this line has two checkboxes: keep one, at the start of the line",
        ));
    }
    Ok(())
}

/// A word that moved between the title and the field words without the
/// line saying so: a field word the line showed, now followed by typed
/// title words (`Alpha #y more words` would clear the tag while the line
/// still shows `#y`), or a word of the title now at its end (`Fix #123`
/// after ` today` is deleted would make `123` a tag). `\#123` keeps such a
/// word in the title. A line without its checkbox (`cc`) keeps the fields
/// it has no word for, so it loses none.
fn check_fields_kept_out_of_title(
    base: &ListLine,
    edited: &ListLine,
    today: time::Date,
) -> Result<(), ParseError> {
    let cx = Context { today };
    let renames_only = edited.status.is_none() && base.status.is_some();
    let found = (!renames_only)
        .then(|| word_moved(edited, base, &cx))
        .flatten()
        .map(|(word, name)| {
            (
                word,
                format!("is followed by title words, so it would no longer set the {name}"),
            )
        })
        .or_else(|| {
            word_moved(base, edited, &cx).map(|(word, name)| {
                (
                    word,
                    format!("was a word of the title; at its end it would set the {name}"),
                )
            })
        });
    if let Some((word, why)) = found {
        let word: String = word.chars().take(40).collect();
        return Err(ParseError::new(
            edited.line,
            format!(
                "\"{word}\" {why}: keep field words after the title, or write \\{word} to keep \
                 it in the title"
            ),
        ));
    }
    Ok(())
}

/// The first word of `from`'s title that `to`'s title lacks and whose
/// field value `to` holds and `from` does not, with the field's name: a
/// word that left the title for the field words (`from` the edited line,
/// `to` the shown one: the shown line set it), or came into the field
/// words from the title (the other way round).
fn word_moved<'a>(
    from: &'a ListLine,
    to: &ListLine,
    cx: &Context,
) -> Option<(&'a str, &'static str)> {
    let others: HashSet<&str> = to.title.split_whitespace().collect();
    from.title.split_whitespace().find_map(|word| {
        if others.contains(word) {
            return None;
        }
        let (def, _, value) = token_value(word, cx)?;
        let value = value.ok()?;
        let holds = |line: &ListLine| line.fields.get(def.name).is_some_and(|v| v.holds(&value));
        (holds(to) && !holds(from)).then_some((word, def.name))
    })
}

/// The fields of one line that differ from what it showed.
fn line_change(id: &str, base: &ListLine, edited: &ListLine, restore: bool) -> Option<ListChange> {
    let mut patch = NodePatch::default();
    let mut what = Vec::new();
    if restore {
        what.push("restore".to_owned());
    }
    if edited.title != base.title {
        let title = Value::Title(edited.title.clone());
        what.push(title.describe_change());
        title.apply(&mut patch);
    }
    if let Some(status) = edited.status.filter(|s| Some(*s) != base.status) {
        let status = Value::Status(Some(status));
        what.push(status.describe_change());
        status.apply(&mut patch);
    }
    // A task line without its checkbox is what `cc` and `S` leave (the id
    // stays, hidden): a rename. The fields it has no word for keep their
    // values instead of being cleared by words the user never saw go.
    let renames_only = edited.status.is_none() && base.status.is_some();
    for (name, value) in &edited.fields {
        if renames_only && value.is_unset() {
            continue;
        }
        let shown = base.fields.get(name);
        if shown != Some(value) {
            what.push(value.describe_change());
            value.clone().apply_over(shown, &mut patch);
        }
    }
    (restore || !patch.is_empty()).then(|| ListChange::Update {
        id: id.to_owned(),
        summary: format!("\"{}\": {}", base.title, what.join(", ")),
        patch,
        restore,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::normalize_tag;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const TODAY: time::Date = time::macros::date!(2026 - 11 - 30);

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
    fn a_title_the_store_would_refuse_is_an_error_on_its_line() {
        let long = format!("[ ] {}", "x".repeat(5000));
        let err = plan_on(&["[ ] fine".into(), long], &[]).unwrap_err();
        assert_eq!(
            (err[0].line, err[0].message.contains("longer than")),
            (2, true),
            "{err:?}"
        );
        let err = plan_on(&["[ ] bell\u{7} here".into()], &[]).unwrap_err();
        assert!(err[0].message.contains("control characters"), "{err:?}");
        // Such a title that came from elsewhere is kept: its line can be
        // toggled, and deleted.
        let odd = task("0123456789abcdef0123456789abcdef", "Invoice\u{7} 12");
        let shown = render(std::slice::from_ref(&odd));
        let toggled = shown[0].replace("[ ]", "[x]");
        let changes = plan_on(&[toggled], std::slice::from_ref(&odd)).unwrap();
        assert!(
            matches!(changes.as_slice(), [ListChange::Update { .. }]),
            "{changes:?}"
        );
        let changes = plan_on(&[], &[odd]).unwrap();
        assert!(
            matches!(changes.as_slice(), [ListChange::Delete { .. }]),
            "{changes:?}"
        );
    }

    #[test]
    fn a_line_cleared_by_cc_renames_and_keeps_the_fields_it_does_not_write() {
        let mut t = task("0123456789abcdef0123456789abcdef", "Old title");
        t.status = Some(Status::Doing);
        t.due = Some(time::macros::date!(2026 - 12 - 02));
        t.project = Some("home".into());
        t.tags = BTreeSet::from(["new".to_string()]);
        let shown = render(std::slice::from_ref(&t));
        let id_prefix = shown[0].split_once(' ').unwrap().0;
        // `ccReplaced title`: the hidden id stays, the rest is typed.
        let changes = plan_on(
            &[format!("{id_prefix} Replaced title")],
            std::slice::from_ref(&t),
        )
        .unwrap();
        let [ListChange::Update { patch, .. }] = changes.as_slice() else {
            panic!("{changes:?}");
        };
        assert_eq!(
            *patch,
            NodePatch {
                title: Some("Replaced title".into()),
                ..NodePatch::default()
            }
        );
        // With a word, that field changes; the others stay.
        let changes = plan_on(
            &[format!("{id_prefix} Replaced +work")],
            std::slice::from_ref(&t),
        )
        .unwrap();
        let [ListChange::Update { patch, .. }] = changes.as_slice() else {
            panic!("{changes:?}");
        };
        assert_eq!(patch.project, Some(Some("work".into())));
        assert_eq!((patch.due, &patch.tags), (None, &None));
        // With its checkbox, a line writes every field: a word taken out
        // clears it.
        let changes = plan_on(&[format!("{id_prefix} [/] Replaced title")], &[t]).unwrap();
        let [ListChange::Update { patch, .. }] = changes.as_slice() else {
            panic!("{changes:?}");
        };
        assert_eq!((patch.due, patch.project.clone()), (Some(None), Some(None)));
    }

    #[test]
    fn markdown_checkboxes_set_the_status_and_near_misses_are_errors() {
        let t = task("0123456789abcdef0123456789abcdef", "Call mom");
        let shown = render(std::slice::from_ref(&t));
        let id_prefix = shown[0].split_once(' ').unwrap().0;
        // `- [x]`, as notes write tasks, after the hidden id: done, and the
        // title stays.
        let changes = plan_on(
            &[format!("{id_prefix} - [x] Call mom")],
            std::slice::from_ref(&t),
        )
        .unwrap();
        let [ListChange::Update { patch, .. }] = changes.as_slice() else {
            panic!("{changes:?}");
        };
        assert_eq!(patch.status, Some(Some(Status::Done)));
        assert_eq!(patch.title, None);
        // A title that starts with a dash and no checkbox keeps its dash.
        let changes = plan_on(
            &[format!("{id_prefix} - Call mom")],
            std::slice::from_ref(&t),
        )
        .unwrap();
        let [ListChange::Update { patch, .. }] = changes.as_slice() else {
            panic!("{changes:?}");
        };
        assert_eq!(patch.title.as_deref(), Some("- Call mom"));
        // A checkbox mistyped is said, not read as the title's start.
        for line in [
            format!("{id_prefix} [ x] Call mom"),
            format!("{id_prefix} [] Call mom"),
            "[ x ] Pay rent".to_string(),
        ] {
            let err = plan_on(std::slice::from_ref(&line), std::slice::from_ref(&t)).unwrap_err();
            assert!(
                err[0].message.contains("write the checkbox as"),
                "{line}: {err:?}"
            );
        }
        // A bracket that is part of a title is a title.
        let changes = plan_on(&["[ ] [WIP] draft".to_string()], &[]).unwrap();
        let [ListChange::Create(line)] = changes.as_slice() else {
            panic!("{changes:?}");
        };
        assert_eq!(line.title, "[WIP] draft");
        assert!(plan_on(&["[WIP] draft".to_string()], &[]).is_ok());
        // `next week` as one token.
        let changes = plan_on(&["[ ] Plan @next-week".to_string()], &[]).unwrap();
        let [ListChange::Create(line)] = changes.as_slice() else {
            panic!("{changes:?}");
        };
        assert_eq!(line.title, "Plan");
    }

    fn plan_on(lines: &[String], shown: &[Node]) -> Result<Vec<ListChange>, Vec<ParseError>> {
        let snap = snapshot(&render(shown), TODAY);
        plan(lines, &snap, &|_| None, TODAY)
    }

    /// The only update a plan holds.
    fn only_update(changes: &[ListChange]) -> &NodePatch {
        match changes {
            [ListChange::Update { patch, .. }] => patch,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn words_typed_after_a_field_word_do_not_clear_the_field() {
        let mut t = task("0123456789abcdef0123456789abcdef", "Alpha");
        t.tags = BTreeSet::from(["y".to_string()]);
        t.due = Some(time::macros::date!(2030 - 01 - 01));
        t.project = Some("work".into());
        let shown = render(std::slice::from_ref(&t));
        // The first of the field words the typed words took into the title.
        for (typed, word) in [(" more words", "@2030-01-01"), (" x", "@2030-01-01")] {
            let line = format!("{}{typed}", shown[0]);
            let err = plan_on(std::slice::from_ref(&line), std::slice::from_ref(&t)).unwrap_err();
            assert!(err[0].message.contains(word), "{line}: {err:?}");
            assert!(err[0].message.contains("after the title"), "{err:?}");
        }
        // Each field word moved into the title by a word after it.
        let id_prefix = shown[0].split_once(' ').unwrap().0;
        for (line, word) in [
            (
                format!("{id_prefix} [ ] Alpha @2030-01-01 soon +work #y"),
                "@2030-01-01",
            ),
            (
                format!("{id_prefix} [ ] Alpha +work more @2030-01-01 #y"),
                "+work",
            ),
        ] {
            let err = plan_on(std::slice::from_ref(&line), std::slice::from_ref(&t)).unwrap_err();
            assert!(err[0].message.contains(word), "{line}: {err:?}");
        }
        // Title words before the field words are a rename, and a title
        // that held such a word already keeps it.
        let line = format!("{id_prefix} [ ] Alpha more words @2030-01-01 +work #y");
        let patch = only_update(&plan_on(&[line], std::slice::from_ref(&t)).unwrap()).clone();
        assert_eq!(patch.title.as_deref(), Some("Alpha more words"));
        assert_eq!((patch.tags, patch.due, patch.project), (None, None, None));
        let mut issue = task("0123456789abcdef0123456789abcdee", "Fix #123 now");
        issue.tags = BTreeSet::from(["123".to_string()]);
        let shown = render(std::slice::from_ref(&issue));
        let line = shown[0].replace("now", "today");
        assert!(plan_on(&[line], &[issue]).is_ok());
    }

    #[test]
    fn words_that_never_set_a_field_may_go_anywhere_in_a_title() {
        let mut t = task("0123456789abcdef0123456789abcdef", "Bravo");
        t.tags = BTreeSet::from(["bug".to_string()]);
        t.due = Some(time::macros::date!(2030 - 01 - 01));
        let shown = render(std::slice::from_ref(&t));
        let id_prefix = shown[0].split_once(' ').unwrap().0;
        for line in [
            // A new field word and a word that is no field word.
            format!("{id_prefix} [ ] Fix #123 crash @2030-01-01 #bug #urgent"),
            format!("{id_prefix} [ ] Meet @home today @2030-02-01 #bug"),
            // `cc`: the fields it has no word for stay.
            format!("{id_prefix} Fix #bug crash"),
        ] {
            assert!(
                plan_on(std::slice::from_ref(&line), std::slice::from_ref(&t)).is_ok(),
                "{line}"
            );
        }
    }

    #[test]
    fn a_title_word_left_at_the_end_is_an_error_not_a_new_tag() {
        let mut t = task("0123456789abcdef0123456789abcdef", "Fix #123 today");
        t.tags = BTreeSet::from(["urgent".to_string()]);
        let shown = render(std::slice::from_ref(&t));
        let line = shown[0].replace(" today", "");
        let err = plan_on(std::slice::from_ref(&line), std::slice::from_ref(&t)).unwrap_err();
        assert!(
            err[0].message.contains("was a word of the title"),
            "{err:?}"
        );
        // Escaped, it stays in the title.
        let line = shown[0].replace("#123 today", "\\#123");
        let patch = only_update(&plan_on(&[line], std::slice::from_ref(&t)).unwrap()).clone();
        assert_eq!(patch.title.as_deref(), Some("Fix #123"));
        assert_eq!(patch.tags, None);
    }

    #[test]
    fn an_escaped_word_stays_escaped_text_when_words_follow_it() {
        let t = task("0123456789abcdef0123456789abcdef", "Fix bug #42");
        let shown = render(std::slice::from_ref(&t));
        assert!(shown[0].ends_with("Fix bug \\#42"), "{}", shown[0]);
        let line = format!("{} today", shown[0]);
        let patch = only_update(&plan_on(&[line], std::slice::from_ref(&t)).unwrap()).clone();
        assert_eq!(patch.title.as_deref(), Some("Fix bug #42 today"));
        // As the error's advice writes it, inside a title.
        let line = parse_line(1, "[ ] Meet \\@home today", TODAY)
            .unwrap()
            .unwrap();
        assert_eq!(line.title, "Meet @home today");
    }

    #[test]
    fn a_second_checkbox_is_an_error_not_a_title() {
        let t = task("0123456789abcdef0123456789abcdef", "Bravo");
        let shown = render(std::slice::from_ref(&t));
        let id_prefix = shown[0].split_once(' ').unwrap().0;
        for line in [
            format!("{id_prefix} [ ] [x] Bravo"),
            format!("{id_prefix} - [x] [ ] Bravo"),
            format!("{id_prefix} [x] [] Bravo"),
            "[ ] [x] New".to_string(),
        ] {
            let err = plan_on(std::slice::from_ref(&line), std::slice::from_ref(&t)).unwrap_err();
            assert!(err[0].message.contains("two checkboxes"), "{line}: {err:?}");
        }
        // A title from elsewhere that starts like one is shown and kept.
        let odd = task("0123456789abcdef0123456789abcdee", "[x] odd");
        let shown = render(std::slice::from_ref(&odd));
        assert!(plan_on(&shown, std::slice::from_ref(&odd))
            .unwrap()
            .is_empty());
        let done = shown[0].replacen("[ ]", "[x]", 1);
        assert!(plan_on(&[done], &[odd]).is_ok());
    }

    #[test]
    fn a_checkbox_typed_with_an_ideographic_space_is_one() {
        let line = parse_line(1, "[\u{3000}] タスク", TODAY).unwrap().unwrap();
        assert_eq!(
            (line.status, line.title.as_str()),
            (Some(Status::Todo), "タスク")
        );
    }

    #[test]
    fn a_word_that_is_no_date_says_how_to_write_an_at() {
        let err = parse_line(1, "[ ] Ping @bob", TODAY).unwrap_err();
        assert!(err.message.contains("invalid date"), "{err:?}");
        assert!(err.message.contains("\\@ for a literal @"), "{err:?}");
        let line = parse_line(1, "[ ] Ping \\@bob", TODAY).unwrap().unwrap();
        assert_eq!(line.title, "Ping @bob");
        // One `@` marks the word; a second is no date.
        assert!(parse_line(1, "[ ] Ping @@fri", TODAY).is_err());
    }

    #[test]
    fn a_tag_edit_is_a_change_of_the_tags_the_line_showed() {
        let mut t = task("0123456789abcdef0123456789abcdef", "Alpha");
        t.tags = BTreeSet::from(["a".to_string()]);
        let shown = render(std::slice::from_ref(&t));
        let patch = only_update(&plan_on(&[format!("{} #c", shown[0])], &[t]).unwrap()).clone();
        assert_eq!(patch.tags_shown, Some(BTreeSet::from(["a".to_string()])));
        // Over the tags the node has now (b added elsewhere meanwhile):
        // c is added, b stays.
        let now = BTreeSet::from(["a".to_string(), "b".to_string()]);
        let tags: Vec<String> = patch.tags_over(&now).unwrap().into_iter().collect();
        assert_eq!(tags, ["a", "b", "c"]);
    }

    #[test]
    fn unchanged_and_reordered_lists_plan_nothing() {
        let shown = vec![task("a", "one"), task("b", "two")];
        let mut lines = render(&shown);
        assert!(plan_on(&lines, &shown).unwrap().is_empty());
        lines.reverse();
        lines.push(String::new());
        assert!(plan_on(&lines, &shown).unwrap().is_empty());
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
        let changes = plan_on(&lines, &shown).unwrap();
        let actions: Vec<_> = changes.iter().map(|c| c.action()).collect();
        assert_eq!(actions, vec!["complete", "update", "create", "delete"]);
        match &changes[0] {
            ListChange::Update { patch, .. } => {
                // Only the status: the other fields were not edited.
                assert_eq!(
                    *patch,
                    NodePatch {
                        status: Some(Some(Status::Done)),
                        ..NodePatch::default()
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        match &changes[2] {
            ListChange::Create(line) => {
                assert_eq!(line.title, "four");
                assert_eq!(
                    line.value("project"),
                    Some(&Value::Project(Some("home".into())))
                );
                assert!(matches!(line.value("tags"), Some(Value::Tags(t)) if t.contains("gift")));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(changes[3].id(), Some("c"));
    }

    #[test]
    fn two_joined_lines_are_refused_not_saved_as_one_item() {
        let mut a = task("018fd118-9400-769e-8170-8e2b7f73fa2f", "one");
        a.due = Some(time::macros::date!(2026 - 12 - 01));
        let b = task("018fd118-9401-796a-a851-ca3fd0dcafb2", "two");
        let shown = vec![a, b];
        let lines = render(&shown);
        // What `J` makes of the two lines.
        let joined = vec![format!("{} {}", lines[0], lines[1])];
        let errors = plan_on(&joined, &shown).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 1);
        assert!(
            errors[0].message.contains("second item (/018fd118…)"),
            "{}",
            errors[0].message
        );
        // Notes' lines have no checkbox: the id of a shown item tells.
        let mut note = task("018fd118-9402-771c-91f6-d1e92b4d59a6", "an idea");
        note.kind = Kind::Note;
        note.status = None;
        let mut other = note.clone();
        other.id = "018fd118-9403-702d-835e-7448887c7074".into();
        let shown = vec![note, other];
        let lines = render(&shown);
        let joined = vec![format!("{} {}", lines[0], lines[1])];
        assert_eq!(plan_on(&joined, &shown).unwrap_err().len(), 1);
        // A slash in a title is no item, nor an id-like word neither shown
        // nor followed by a checkbox.
        for title in ["read /etc/hosts [ ] now", "ask /bob about it", "/usr [ok]"] {
            let lines = vec![format!("[ ] {title}")];
            // (The shown notes, absent from these lines, are deleted.)
            match &plan_on(&lines, &shown).unwrap()[0] {
                ListChange::Create(line) => assert_eq!(line.title, title),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_task_the_list_never_showed_is_never_deleted() {
        let shown = vec![task("a", "one")];
        let lines = render(&shown);
        let snap = snapshot(&lines, TODAY);
        // "b" exists (arrived meanwhile) but the buffer never showed it.
        let lookup = |id: &str| (id == "b").then(|| task("b", "new"));
        assert!(plan(&lines, &snap, &lookup, TODAY).unwrap().is_empty());
    }

    #[test]
    fn a_known_task_outside_the_snapshot_is_an_edit_not_an_error() {
        let mut done = task("d", "finished");
        done.status = Some(Status::Done);
        done.deleted = true;
        let snap = snapshot(&[], TODAY);
        let lookup = |id: &str| (id == "d").then(|| done.clone());
        let lines = vec!["/d [ ] finished".to_string()];
        let changes = plan(&lines, &snap, &lookup, TODAY).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].action(), "restore");
        match &changes[0] {
            ListChange::Update { patch, .. } => {
                assert_eq!(patch.status, Some(Some(Status::Todo)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_edited_line_of_a_task_deleted_since_it_was_shown_restores_it() {
        let shown = vec![task("a", "one"), task("b", "two")];
        let lines = render(&shown);
        let snap = snapshot(&lines, TODAY);
        let lookup = |id: &str| {
            let mut node = task(id, if id == "a" { "one" } else { "two" });
            node.deleted = true;
            Some(node)
        };
        // Both deleted elsewhere; only "a" is edited.
        let edited: Vec<String> = lines
            .iter()
            .map(|l| l.replace("one", "one renamed"))
            .collect();
        let changes = plan(&edited, &snap, &lookup, TODAY).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].id(), Some("a"));
        assert_eq!(changes[0].action(), "restore");
        match &changes[0] {
            ListChange::Update { patch, .. } => {
                assert_eq!(patch.title.as_deref(), Some("one renamed"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_line_taken_out_for_a_task_deleted_elsewhere_plans_nothing() {
        let shown = vec![task("a", "one"), task("b", "two")];
        let lines = render(&shown);
        let snap = snapshot(&lines, TODAY);
        // "b" was deleted elsewhere since the list was shown; "a" was not.
        let lookup = |id: &str| {
            let mut node = task(id, if id == "a" { "one" } else { "two" });
            node.deleted = id == "b";
            Some(node)
        };
        assert!(plan(&lines[..1], &snap, &lookup, TODAY).unwrap().is_empty());
        let changes = plan(&[], &snap, &lookup, TODAY).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].action(), "delete");
        assert_eq!(changes[0].id(), Some("a"));
    }

    #[test]
    fn a_delete_names_the_task_as_it_is_now() {
        let shown = vec![task("a", "old title")];
        let snap = snapshot(&render(&shown), TODAY);
        let lookup = |id: &str| Some(task(id, "renamed elsewhere"));
        let changes = plan(&[], &snap, &lookup, TODAY).unwrap();
        assert_eq!(changes[0].summary(), "delete \"renamed elsewhere\"");
    }

    #[test]
    fn bad_lines_are_errors_with_numbers() {
        let shown = vec![task("a", "one")];
        let lines = vec![
            "/a [ ] one".to_string(),
            "/a [ ] one again".to_string(),
            "/zzz [ ] stranger".to_string(),
            "[ ] x @2026-13-01".to_string(),
            "[ ]".to_string(),
        ];
        let errors = plan_on(&lines, &shown).unwrap_err();
        let at: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(at, vec![2, 3, 4, 5]);
    }

    #[test]
    fn titles_that_look_like_tokens_round_trip() {
        // A lone backslash at the end is the title's own, typed or shown.
        let typed = parse_line(1, "[ ] trailing backslash \\", TODAY)
            .unwrap()
            .unwrap();
        assert_eq!(typed.title, "trailing backslash \\");
        for title in ["ends with \\", "ends with \\x", "a \\\\ b"] {
            let n = task("d", title);
            let parsed = parse_line(1, &render_line(&n), TODAY).unwrap().unwrap();
            assert_eq!(parsed.title, title, "{}", render_line(&n));
        }
        let mut n = task("a", "Email @alice about +budget");
        n.project = Some("P".into());
        let line = render_line(&n);
        let parsed = parse_line(1, &line, TODAY).unwrap().unwrap();
        assert_eq!(parsed.title, n.title);
        assert_eq!(
            parsed.value("project"),
            Some(&Value::Project(Some("P".into())))
        );
        let n = task("b", "Fix bug #42");
        assert_eq!(render_line(&n), "/b [ ] Fix bug \\#42");
        assert_eq!(
            parse_line(1, &render_line(&n), TODAY)
                .unwrap()
                .unwrap()
                .title,
            "Fix bug #42"
        );
        let mut n = task("c", "Plan");
        n.project = Some("my big project".into());
        let parsed = parse_line(1, &render_line(&n), TODAY).unwrap().unwrap();
        assert_eq!(
            parsed.value("project"),
            Some(&Value::Project(Some("my big project".into())))
        );
        assert_eq!(parsed.title, "Plan");
    }

    #[test]
    fn every_token_field_has_its_own_sigil() {
        let mut seen = HashSet::new();
        for (def, token) in fields::list_tokens() {
            // `/` starts the id, `[` the checkbox, `\` an escape.
            assert!(!['/', '[', '\\'].contains(&token.sigil), "{}", def.name);
            assert!(
                seen.insert(token.sigil),
                "{} reuses {}",
                def.name,
                token.sigil
            );
        }
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn repeated_words_add_members_and_single_ones_refuse_a_second() {
        let line = parse_line(1, "[ ] Pack #travel #gift", TODAY)
            .unwrap()
            .unwrap();
        let tags: BTreeSet<String> = ["gift".into(), "travel".into()].into();
        assert_eq!(line.value("tags"), Some(&Value::Tags(tags)));
        assert_eq!(line.title, "Pack");
        let err = parse_line(4, "[ ] Pack +home +work", TODAY).unwrap_err();
        assert_eq!(err.line, 4);
        assert!(
            err.message.contains("more than one +project"),
            "{}",
            err.message
        );
        let err = parse_line(1, "[ ] Pack @fri @mon", TODAY).unwrap_err();
        assert!(
            err.message.contains("more than one @due"),
            "{}",
            err.message
        );
    }

    #[test]
    fn typed_lines_take_relative_dates() {
        let parsed = parse_line(1, "[ ] Buy bread @tomorrow +home #shop", TODAY)
            .unwrap()
            .unwrap();
        assert_eq!(
            parsed.value("due"),
            Some(&Value::Due(Some(time::macros::date!(2026 - 12 - 01))))
        );
        assert_eq!(parsed.title, "Buy bread");
    }

    fn title() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            "[a-z]{1,6}",
            "[@+#\\\\][a-z0-9]{0,4}",
            // Escaped words, and words that look escaped.
            "\\\\{1,2}[@+#\\\\][a-z0-9]{0,3}",
            "[a-z]{0,3}\\\\{1,3}",
            "\\[[ x/-]\\]",
            "\"[a-z ]{0,4}\"",
            "[é日本-]{1,3}",
        ];
        prop::collection::vec((word, prop_oneof![Just(" "), Just("  "), Just("\t")]), 1..6)
            .prop_map(|parts| {
                let mut s = String::new();
                for (w, sep) in parts {
                    s.push_str(&w);
                    s.push_str(sep);
                }
                s.trim().to_owned()
            })
            .prop_filter("titles are not empty", |t| !t.is_empty())
    }

    fn project() -> impl Strategy<Value = Option<String>> {
        prop::option::of(
            "[a-z@+#é]{1,5}( {1,2}[a-z#]{1,4}){0,2}"
                .prop_map(|p: String| p.trim().to_owned())
                .prop_filter("not empty", |p| !p.is_empty()),
        )
    }

    /// The renderer as it was first written (a string per part, words
    /// collected): the in-place writer must give the same bytes.
    fn reference_line(node: &Node) -> String {
        let mut tokens = String::new();
        for (def, token) in fields::list_tokens() {
            (def.get)(node).each_word(|word| {
                tokens.push(' ');
                tokens.push(token.sigil);
                for c in word.chars() {
                    if c.is_whitespace() {
                        tokens.push('\\');
                    }
                    tokens.push(c);
                }
            });
        }
        let mut title = node.title.clone();
        let spans = words(&node.title);
        for (i, &(start, end)) in spans.iter().enumerate().rev() {
            let word = &node.title[start..end];
            let escape = if i + 1 == spans.len() {
                is_token(word) || word.starts_with('\\')
            } else {
                word.starts_with("\\\\")
                    || word.starts_with("\\#")
                    || word.starts_with("\\@")
                    || word.starts_with("\\+")
            };
            if escape {
                title.insert(start, '\\');
            }
        }
        if !tokens.is_empty() && title.ends_with('\\') {
            title.push(' ');
        }
        title.push_str(&tokens);
        format!("/{} {} {title}", node.id, checkbox(node.status))
    }

    #[test]
    fn a_title_ending_in_a_backslash_keeps_its_end() {
        let mut n = task("a", "path C:\\");
        n.tags.insert("x".into());
        let line = render_line(&n);
        assert_eq!(line, "/a [ ] path C:\\  #x");
        assert_eq!(line, reference_line(&n));
        let parsed = parse_line(1, &line, TODAY).unwrap().unwrap();
        assert_eq!(parsed.title, n.title);
        // Written after other text, the same bytes follow it.
        let mut out = String::from("prefix ");
        write_line(&n, &mut out);
        assert_eq!(out, format!("prefix {line}"));
    }

    proptest! {
        #[test]
        fn the_last_word_is_the_last_of_the_words(text in "[a-z\\\\ \t\u{a0}\u{3000}é日]{0,12}") {
            prop_assert_eq!(last_word(&text), words(&text).last().copied(), "{:?}", text);
        }

        #[test]
        fn the_in_place_writer_matches_the_reference(
            title in title(),
            project in project(),
            tags in prop::collection::btree_set("[a-z0-9_@+#.-]{1,6}", 0..4),
            due in prop::option::of(0i64..3000),
            status in prop::option::of(prop::sample::select(vec![Status::Todo, Status::Doing, Status::Done, Status::Cancelled])),
        ) {
            let mut node = task("n1", &title);
            node.project = project;
            node.tags = tags.iter().filter_map(|t| normalize_tag(t).ok()).collect();
            node.due = due.map(|d| TODAY + time::Duration::days(d));
            node.status = status;
            let line = render_line(&node);
            prop_assert_eq!(&line, &reference_line(&node));
            prop_assert_eq!(format!("/n1 {} {}", checkbox(status), item_text(&node)), line.clone());
            // Parsed with the field table's grammar, it gives the node's values.
            let parsed = parse_line(1, &line, TODAY).unwrap().unwrap();
            prop_assert_eq!(&parsed.title, &node.title, "line {:?}", line);
            prop_assert_eq!(&parsed.fields, &shown(&node).fields, "line {:?}", line);
        }

        #[test]
        fn every_line_parses_back_to_its_values(
            title in title(),
            project in project(),
            tags in prop::collection::btree_set("[a-z0-9_@+#.-]{1,6}", 0..4),
            due in prop::option::of(0i64..3000),
            status in prop::sample::select(vec![Status::Todo, Status::Doing, Status::Done, Status::Cancelled]),
        ) {
            let mut node = task("n1", &title);
            node.project = project;
            node.tags = tags.iter().filter_map(|t| normalize_tag(t).ok()).collect();
            node.due = due.map(|d| TODAY + time::Duration::days(d));
            node.status = Some(status);
            let line = render_line(&node);
            let parsed = parse_line(1, &line, TODAY).unwrap().unwrap();
            prop_assert_eq!(&parsed.title, &node.title, "line {:?}", line);
            prop_assert_eq!(&parsed.fields, &shown(&node).fields, "line {:?}", line);
            prop_assert_eq!(parsed.status, node.status);
            // And the list plans nothing for it.
            prop_assert!(plan_on(&[line], &[node]).unwrap().is_empty());
        }
    }
}
