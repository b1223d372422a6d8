//! The field table: every node field once, with its name, how its text is
//! parsed and rendered, how it is read from a node and how it goes into a
//! patch. The node-buffer header, the CLI's `FIELD=VALUE` assignments and
//! the RPC's `fields` maps all go through this table (in the spirit of
//! oil.nvim's columns), so a new field costs one entry here.
//!
//! Parsing yields the canonical form (trimmed, normalized): the form ops
//! carry and validation accepts. An empty text clears an optional field.

use std::collections::BTreeSet;

use time::{Date, Duration, Weekday};

use crate::model::{format_date, normalize_tag, Field, FieldError, Kind, Node, NodePatch, Status};
use crate::op::MAX_VALUE_BYTES;

/// One field's value, canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A title (never empty).
    Title(String),
    /// The kind.
    Kind(Kind),
    /// A status, or none.
    Status(Option<Status>),
    /// A due date, or none.
    Due(Option<Date>),
    /// A project, or none.
    Project(Option<String>),
    /// The complete tag set.
    Tags(BTreeSet<String>),
}

/// What parsing needs from outside: the user's local date, for `today`,
/// `tomorrow`, weekday names and `+3d`.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// Today on the user's local calendar.
    pub today: Date,
}

/// For checking values that hold no relative date.
const NO_DAY: Context = Context { today: Date::MIN };

/// One entry of the table.
pub struct FieldDef {
    /// The name: header key, CLI field, RPC key and JSON key.
    pub name: &'static str,
    /// Text → canonical value.
    pub parse: fn(&str, &Context) -> Result<Value, FieldError>,
    /// A node's value.
    pub get: fn(&Node) -> Value,
    /// Whether the node buffer's header shows the field for this node.
    pub in_header: fn(&Node) -> bool,
    /// How a list line writes the field after the title, if it does.
    pub list_token: Option<ListToken>,
    /// The op field that sets it, last writer wins: its value is the
    /// `nodes` column of the same name, its stamp the column `NAME_hlc`.
    /// `None` for the tag set (rows of `tags`, one stamp per tag).
    pub scalar: Option<Field>,
}

/// A list line's word for a field: `@2026-12-01`, `+home`, `#gift`.
pub struct ListToken {
    /// The character the word starts with.
    pub sigil: char,
    /// Whether the word may appear more than once, each adding a member
    /// (tags); otherwise a second one is an error.
    pub repeats: bool,
}

/// Every field a header, an assignment or an RPC map may name (the body is
/// not a field: it is the text under the header).
pub const FIELDS: &[FieldDef] = &[
    FieldDef {
        name: "title",
        parse: parse_title,
        get: |n| Value::Title(n.title.clone()),
        in_header: |_| true,
        list_token: None,
        scalar: Some(Field::Title),
    },
    FieldDef {
        name: "kind",
        parse: |s, _| s.parse::<Kind>().map(Value::Kind),
        get: |n| Value::Kind(n.kind),
        in_header: |_| true,
        list_token: None,
        scalar: Some(Field::Kind),
    },
    FieldDef {
        name: "status",
        parse: |s, _| optional(s, |v| v.parse::<Status>()).map(Value::Status),
        get: |n| Value::Status(n.status),
        in_header: |n| n.kind == Kind::Task,
        list_token: None,
        scalar: Some(Field::Status),
    },
    FieldDef {
        name: "due",
        parse: |s, cx| optional(s, |v| parse_day(v, cx.today)).map(Value::Due),
        get: |n| Value::Due(n.due),
        in_header: |n| n.kind == Kind::Task || n.due.is_some(),
        list_token: Some(ListToken {
            sigil: '@',
            repeats: false,
        }),
        scalar: Some(Field::Due),
    },
    FieldDef {
        name: "project",
        parse: |s, _| optional(s, parse_project).map(Value::Project),
        get: |n| Value::Project(n.project.clone()),
        in_header: |_| true,
        list_token: Some(ListToken {
            sigil: '+',
            repeats: false,
        }),
        scalar: Some(Field::Project),
    },
    FieldDef {
        name: "tags",
        parse: |s, _| parse_tags(s).map(Value::Tags),
        get: |n| Value::Tags(n.tags.clone()),
        in_header: |_| true,
        list_token: Some(ListToken {
            sigil: '#',
            repeats: true,
        }),
        scalar: None,
    },
];

/// The names of every field, for messages.
pub fn names() -> String {
    FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

/// The entry for `name` (case-insensitive).
pub fn field(name: &str) -> Option<&'static FieldDef> {
    let name = name.trim();
    FIELDS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// The fields a list line writes as words after the title, in the order
/// it writes them.
pub fn list_tokens() -> impl Iterator<Item = (&'static FieldDef, &'static ListToken)> {
    FIELDS
        .iter()
        .filter_map(|f| f.list_token.as_ref().map(|t| (f, t)))
}

/// JSON (`heph show --json`, `heph list --json`): text fields as strings,
/// an unset optional field as null, a date as `YYYY-MM-DD`, tags as a list.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Title(t) => s.serialize_str(t),
            Value::Kind(k) => k.serialize(s),
            Value::Status(status) => status.serialize(s),
            Value::Due(d) => d.map(format_date).serialize(s),
            Value::Project(p) => p.serialize(s),
            Value::Tags(t) => t.serialize(s),
        }
    }
}

impl Value {
    /// The value as text, the way headers and assignments write it (parses
    /// back to the same value).
    pub fn render(&self) -> String {
        match self {
            Value::Title(t) => t.clone(),
            Value::Kind(k) => k.to_string(),
            Value::Status(s) => s.map(|s| s.to_string()).unwrap_or_default(),
            Value::Due(d) => d.map(format_date).unwrap_or_default(),
            Value::Project(p) => p.clone().unwrap_or_default(),
            Value::Tags(t) => t.iter().cloned().collect::<Vec<_>>().join(", "),
        }
    }

    /// Calls `word` with the value's list-line words (without their sigil):
    /// none when unset, one per member of a set.
    pub fn each_word(&self, mut word: impl FnMut(&str)) {
        match self {
            Value::Tags(t) => t.iter().for_each(|t| word(t)),
            Value::Title(t) | Value::Project(Some(t)) => word(t),
            Value::Due(Some(d)) => word(&format_date(*d)),
            Value::Kind(_) | Value::Status(Some(_)) => word(&self.render()),
            Value::Status(None) | Value::Due(None) | Value::Project(None) => {}
        }
    }

    /// Adds the members of `more` (a repeated list word) to a set value;
    /// a value that is not a set is replaced.
    pub fn merge(self, more: Value) -> Value {
        match (self, more) {
            (Value::Tags(mut mine), Value::Tags(more)) => {
                mine.extend(more);
                Value::Tags(mine)
            }
            (_, more) => more,
        }
    }

    /// What changing a field to this value does, for a confirmation line.
    pub fn describe_change(&self) -> String {
        match self {
            Value::Title(t) => format!("rename to \"{t}\""),
            Value::Kind(k) => format!("make it a {k}"),
            Value::Status(Some(s)) => format!("mark {s}"),
            Value::Status(None) => "no status".into(),
            Value::Due(Some(d)) => format!("due {}", format_date(*d)),
            Value::Due(None) => "no due date".into(),
            Value::Project(Some(p)) => format!("project {p}"),
            Value::Project(None) => "no project".into(),
            Value::Tags(_) => "tags".into(),
        }
    }

    /// The field's name in the table.
    pub fn name(&self) -> &'static str {
        match self {
            Value::Title(_) => "title",
            Value::Kind(_) => "kind",
            Value::Status(_) => "status",
            Value::Due(_) => "due",
            Value::Project(_) => "project",
            Value::Tags(_) => "tags",
        }
    }

    /// The field's entry in the table.
    pub fn def(&self) -> &'static FieldDef {
        let name = self.name();
        FIELDS
            .iter()
            .find(|f| f.name == name)
            .expect("every value names an entry of FIELDS")
    }

    /// The value in canonical form, checked the way parsing checks text
    /// (a value built in code, not parsed: a patch from an API caller). An
    /// empty project is no project.
    pub fn canonical(self) -> Result<Value, FieldError> {
        Ok(match self {
            Value::Title(t) => parse_title(&t, &NO_DAY)?,
            Value::Project(Some(p)) => Value::Project(optional(&p, parse_project)?),
            Value::Tags(tags) => Value::Tags(
                tags.iter()
                    .map(|t| normalize_tag(t))
                    .collect::<Result<_, _>>()?,
            ),
            other @ (Value::Kind(_) | Value::Status(_) | Value::Due(_) | Value::Project(None)) => {
                other
            }
        })
    }

    /// Whether this value holds `other`, a value of the same field one
    /// word sets: the same value, or for tags, that tag among these.
    pub fn holds(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Tags(mine), Value::Tags(theirs)) => theirs.is_subset(mine),
            (mine, theirs) => mine == theirs && !mine.is_unset(),
        }
    }

    /// Whether the value is the field's "nothing": no status, date or
    /// project, no tags (a new node leaves such fields unset).
    pub fn is_unset(&self) -> bool {
        match self {
            Value::Status(s) => s.is_none(),
            Value::Due(d) => d.is_none(),
            Value::Project(p) => p.is_none(),
            Value::Tags(t) => t.is_empty(),
            Value::Title(_) | Value::Kind(_) => false,
        }
    }

    /// The value a `set` op of a scalar field carries (`None` clears it;
    /// `None` too for the tag set, which has ops of its own).
    pub fn op_value(&self) -> Option<String> {
        match self {
            Value::Title(t) => Some(t.clone()),
            Value::Kind(k) => Some(k.to_string()),
            Value::Status(s) => s.map(|s| s.to_string()),
            Value::Due(d) => d.map(format_date),
            Value::Project(p) => p.clone(),
            Value::Tags(_) => None,
        }
    }

    /// The fields a patch sets, in table order (the body is not a field).
    pub fn from_patch(patch: &NodePatch) -> Vec<Value> {
        let mut values = Vec::new();
        if let Some(t) = &patch.title {
            values.push(Value::Title(t.clone()));
        }
        if let Some(k) = patch.kind {
            values.push(Value::Kind(k));
        }
        if let Some(s) = patch.status {
            values.push(Value::Status(s));
        }
        if let Some(d) = patch.due {
            values.push(Value::Due(d));
        }
        if let Some(p) = &patch.project {
            values.push(Value::Project(p.clone()));
        }
        if let Some(t) = &patch.tags {
            values.push(Value::Tags(t.clone()));
        }
        values
    }

    /// Puts the value into a patch (the inverse of [`Value::from_patch`]).
    pub fn apply(self, patch: &mut NodePatch) {
        match self {
            Value::Title(t) => patch.title = Some(t),
            Value::Kind(k) => patch.kind = Some(k),
            Value::Status(s) => patch.status = Some(s),
            Value::Due(d) => patch.due = Some(d),
            Value::Project(p) => patch.project = Some(p),
            Value::Tags(t) => patch.tags = Some(t),
        }
    }

    /// Puts the value into `patch` as an edit of `shown`, the value the
    /// editor showed: for the tag set, the tags added and removed since
    /// (`NodePatch::tags_shown`), so a tag added elsewhere meanwhile stays.
    pub fn apply_over(self, shown: Option<&Value>, patch: &mut NodePatch) {
        if let Value::Tags(_) = &self {
            patch.tags_shown = Some(match shown {
                Some(Value::Tags(tags)) => tags.clone(),
                _ => BTreeSet::new(),
            });
        }
        self.apply(patch);
    }
}

fn optional<T>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, FieldError>,
) -> Result<Option<T>, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

fn check_len(what: &str, text: &str) -> Result<(), FieldError> {
    if text.len() > MAX_VALUE_BYTES {
        return Err(FieldError(format!(
            "the {what} is longer than {MAX_VALUE_BYTES} bytes"
        )));
    }
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(FieldError(format!(
            "the {what} must be one line without control characters"
        )));
    }
    Ok(())
}

/// A title: one line, not empty, trimmed.
pub fn parse_title(text: &str, _: &Context) -> Result<Value, FieldError> {
    let title = text.trim();
    if title.is_empty() {
        return Err(FieldError("the title cannot be empty".into()));
    }
    check_len("title", title)?;
    Ok(Value::Title(title.to_owned()))
}

/// A project: one line, trimmed, inner spaces kept, no `\` (list lines
/// escape a project's spaces with it).
pub fn parse_project(text: &str) -> Result<String, FieldError> {
    let project = text.trim();
    check_len("project", project)?;
    if project.contains('\\') {
        return Err(FieldError(format!(
            "invalid project {project:?}: a project name cannot contain '\\'"
        )));
    }
    Ok(project.to_owned())
}

/// Tags separated by commas and/or spaces, each normalized (`#` dropped).
pub fn parse_tags(text: &str) -> Result<BTreeSet<String>, FieldError> {
    text.split([',', ' ', '\t'])
        .filter(|t| !t.trim().is_empty())
        .map(normalize_tag)
        .collect()
}

/// A day: `YYYY-MM-DD`, `today`, `tomorrow`, `yesterday`, a weekday name
/// (the next such day, never today), `+3d`/`+2w`/`-1d`, or `next week`
/// (Monday of next week; `next-week` too, one word for a list's `@` token).
/// Stored as the ISO date.
pub fn parse_day(text: &str, today: Date) -> Result<Date, FieldError> {
    let word = text.trim().to_ascii_lowercase();
    let relative = match word.as_str() {
        "today" => Some(today),
        "tomorrow" => today.next_day(),
        "yesterday" => today.previous_day(),
        "next week" | "next-week" => Some(today.next_occurrence(Weekday::Monday)),
        _ => None,
    };
    if let Some(day) = relative {
        return Ok(day);
    }
    if let Some(weekday) = weekday(&word) {
        return Ok(today.next_occurrence(weekday));
    }
    if let Some(offset) = offset_days(&word) {
        return today
            .checked_add(Duration::days(offset))
            .ok_or_else(|| FieldError(format!("the date {text:?} is out of range")));
    }
    crate::model::parse_date(text).map_err(|_| {
        FieldError(format!(
            "invalid date {:?} (expected YYYY-MM-DD, today, tomorrow, yesterday, a weekday, +3d, -3d, +2w or next week)",
            text.trim()
        ))
    })
}

fn weekday(word: &str) -> Option<Weekday> {
    const DAYS: [(&str, Weekday); 7] = [
        ("monday", Weekday::Monday),
        ("tuesday", Weekday::Tuesday),
        ("wednesday", Weekday::Wednesday),
        ("thursday", Weekday::Thursday),
        ("friday", Weekday::Friday),
        ("saturday", Weekday::Saturday),
        ("sunday", Weekday::Sunday),
    ];
    // Full names or their first three letters or more ("mon", "thurs").
    (word.len() >= 3)
        .then(|| DAYS.iter().find(|(name, _)| name.starts_with(word)))
        .flatten()
        .map(|(_, day)| *day)
}

fn offset_days(word: &str) -> Option<i64> {
    let (sign, rest) = match word.as_bytes().first()? {
        b'+' => (1, &word[1..]),
        b'-' => (-1, &word[1..]),
        _ => return None,
    };
    let unit = match rest.chars().last()? {
        'd' => 1,
        'w' => 7,
        _ => return None,
    };
    // Digits only: `parse` would take a second sign (`--3d` as +3 days)
    // and numbers whose day count overflows.
    let digits = &rest[..rest.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok().filter(|n| *n <= 100_000)?;
    Some(sign * n * unit)
}

/// A value as a header line or `FIELD=VALUE` writes it: a value that does
/// not read may have the sigil a list line writes before it (`due: @fri`,
/// a habit from list lines), and reads without it. Tags drop their `#`
/// themselves; a project may start with `+`.
pub fn parse_written(def: &FieldDef, text: &str, cx: &Context) -> Result<Value, FieldError> {
    let read = (def.parse)(text, cx);
    let (Err(_), Some(token)) = (&read, &def.list_token) else {
        return read;
    };
    match text.trim().strip_prefix(token.sigil) {
        Some(rest) if !rest.trim().is_empty() => (def.parse)(rest, cx).or(read),
        _ => read,
    }
}

/// Parses `FIELD=VALUE` assignments (CLI) or a `{field = value}` map (RPC)
/// into a patch; `body` is taken as the body text. Unknown fields and bad
/// values are errors naming the field.
pub fn patch_from_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    cx: &Context,
) -> Result<NodePatch, FieldError> {
    let mut patch = NodePatch::default();
    for (name, value) in pairs {
        if name.trim() == "body" {
            patch.body = Some(value.to_owned());
            continue;
        }
        let def = field(name).ok_or_else(|| {
            FieldError(format!(
                "unknown field {:?} (fields: {}, body)",
                name.trim(),
                names()
            ))
        })?;
        let value = parse_written(def, value, cx)
            .map_err(|e| FieldError(format!("{}: {}", def.name, e.0)))?;
        value.apply(&mut patch);
    }
    Ok(patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn cx() -> Context {
        // A Monday.
        Context {
            today: date!(2026 - 11 - 30),
        }
    }

    #[test]
    fn relative_days() {
        let t = cx().today;
        assert_eq!(parse_day("today", t).unwrap(), t);
        assert_eq!(parse_day("Tomorrow", t).unwrap(), date!(2026 - 12 - 01));
        assert_eq!(parse_day("+3d", t).unwrap(), date!(2026 - 12 - 03));
        assert_eq!(parse_day("+2w", t).unwrap(), date!(2026 - 12 - 14));
        assert_eq!(parse_day("fri", t).unwrap(), date!(2026 - 12 - 04));
        assert_eq!(parse_day("monday", t).unwrap(), date!(2026 - 12 - 07));
        assert_eq!(parse_day("next week", t).unwrap(), date!(2026 - 12 - 07));
        assert_eq!(parse_day("next-week", t).unwrap(), date!(2026 - 12 - 07));
        assert_eq!(parse_day("2027-01-02", t).unwrap(), date!(2027 - 01 - 02));
        // Offsets take one sign and digits: a second sign was read as
        // part of the number (`--3d` as three days ahead) or overflowed.
        for bad in [
            "soon",
            "+d",
            "2026-02-30",
            "mo",
            "+99999999999d",
            "+-1000000000000000d",
            "--9223372036854775808d",
            "--3d",
            "++3d",
            "+-3d",
            "+3 d",
            "+100001d",
        ] {
            assert!(parse_day(bad, t).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_op_field_is_one_entry_of_the_table() {
        for (i, field) in Field::ALL.iter().enumerate() {
            assert_eq!(field.index(), i);
            let def = super::field(field.as_str()).expect("an entry named like the op field");
            assert_eq!(def.scalar, Some(*field), "{}", def.name);
        }
        for def in FIELDS {
            if let Some(scalar) = def.scalar {
                assert_eq!(scalar.as_str(), def.name);
            }
        }
    }

    #[test]
    fn values_and_patches_convert_both_ways_in_table_order() {
        let patch = patch_from_pairs(
            [
                ("tags", "a b"),
                ("title", "T"),
                ("due", "2026-12-01"),
                ("status", ""),
            ],
            &cx(),
        )
        .unwrap();
        let values = Value::from_patch(&patch);
        let names: Vec<&str> = values.iter().map(Value::name).collect();
        assert_eq!(names, ["title", "status", "due", "tags"]);
        let mut back = NodePatch::default();
        for value in values {
            assert_eq!(value.def().name, value.name());
            value.apply(&mut back);
        }
        assert_eq!(back, patch);
    }

    #[test]
    fn canonical_values_are_checked_like_parsed_text() {
        let title = Value::Title("  Plan  ".into()).canonical().unwrap();
        assert_eq!(title, Value::Title("Plan".into()));
        assert!(Value::Title(" ".into()).canonical().is_err());
        assert!(Value::Title("a\nb".into()).canonical().is_err());
        let empty = Value::Project(Some(" ".into())).canonical().unwrap();
        assert_eq!(empty, Value::Project(None));
        assert!(Value::Project(Some("a\\b".into())).canonical().is_err());
        let tags = Value::Tags(["#x".to_owned()].into()).canonical().unwrap();
        assert_eq!(tags, Value::Tags(["x".to_owned()].into()));
        assert!(Value::Tags(["a b".to_owned()].into()).canonical().is_err());
        assert_eq!(Value::Due(None).op_value(), None);
        assert!(Value::Tags(BTreeSet::new()).is_unset());
        assert!(!Value::Title(String::new()).is_unset());
    }

    #[test]
    fn pairs_become_a_patch() {
        let patch = patch_from_pairs(
            [
                ("title", "  Buy oat milk "),
                ("status", "done"),
                ("due", ""),
                ("tags", "#a, b c"),
                ("body", "text"),
            ],
            &cx(),
        )
        .unwrap();
        assert_eq!(patch.title.as_deref(), Some("Buy oat milk"));
        assert_eq!(patch.status, Some(Some(Status::Done)));
        assert_eq!(patch.due, Some(None));
        assert_eq!(patch.tags.unwrap().len(), 3);
        assert_eq!(patch.body.as_deref(), Some("text"));
        assert!(patch_from_pairs([("colour", "red")], &cx()).is_err());
        assert!(patch_from_pairs([("title", " ")], &cx()).is_err());
        assert!(patch_from_pairs([("project", "a\nb")], &cx()).is_err());
        assert!(patch_from_pairs([("project", "a\\b")], &cx()).is_err());
    }
}
