//! The data model: nodes of kind task, note or journal.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::id::NodeId;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Something to do.
    Task,
    /// Free-form notes.
    Note,
    /// One day's journal.
    Journal,
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not started.
    Todo,
    /// In progress.
    Doing,
    /// Finished.
    Done,
    /// Dropped.
    Cancelled,
}

/// A value that failed to parse as a model field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldError(pub String);

macro_rules! text_enum {
    ($ty:ident, $what:literal, $($variant:ident => $text:literal),+) => {
        impl $ty {
            /// Every value, in display order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The lowercase name.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // As its name in every format: a derived unit variant would be an
        // array in msgpack (rmpv), a string only in JSON.
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = FieldError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($text => Ok($ty::$variant),)+
                    other => Err(FieldError(format!(
                        concat!("unknown ", $what, " {:?} (expected one of: {})"),
                        other,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

text_enum!(Kind, "kind", Task => "task", Note => "note", Journal => "journal");
text_enum!(Status, "status", Todo => "todo", Doing => "doing", Done => "done", Cancelled => "cancelled");

impl Status {
    /// Whether the task still needs doing.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Todo | Status::Doing)
    }
}

/// A scalar field set by last-writer-wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    /// The node's title.
    Title,
    /// task / note / journal.
    Kind,
    /// A task's status.
    Status,
    /// A due date.
    Due,
    /// The project name.
    Project,
}

text_enum!(Field, "field", Title => "title", Kind => "kind", Status => "status", Due => "due", Project => "project");

impl Field {
    /// Its position in [`Field::ALL`] (declaration order).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether an op may clear it (a node always has a title and a kind).
    pub fn can_be_cleared(self) -> bool {
        !matches!(self, Field::Title | Field::Kind)
    }
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, FieldError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let invalid = || {
        FieldError(format!(
            "invalid date {:?} (expected YYYY-MM-DD)",
            text.trim()
        ))
    };
    let date = Date::parse(text.trim(), &format).map_err(|_| invalid())?;
    // Four digits, as every date is written back (`format_date`): a year
    // 0 or below would make ids and names that do not read back.
    if !(1..=9999).contains(&date.year()) {
        return Err(invalid());
    }
    Ok(date)
}

/// Normalizes a tag: trimmed, leading `#` removed, no whitespace or commas.
pub fn normalize_tag(tag: &str) -> Result<String, FieldError> {
    let tag = tag.trim().trim_start_matches('#');
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || c == ',' || c == '\\';
    if tag.is_empty() || tag.chars().any(bad_char) || tag.len() > 100 {
        return Err(FieldError(format!(
            "invalid tag {tag:?} (tags are single words without commas or backslashes)"
        )));
    }
    Ok(tag.to_owned())
}

/// The materialized state of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Stable id.
    pub id: NodeId,
    /// task / note / journal.
    pub kind: Kind,
    /// Title (one line).
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Status, for tasks.
    pub status: Option<Status>,
    /// Due date.
    pub due: Option<Date>,
    /// Project name.
    pub project: Option<String>,
    /// Tags.
    pub tags: BTreeSet<String>,
    /// Creation time, milliseconds since the epoch (from the create op's clock).
    pub created_ms: u64,
    /// Time of the last change, milliseconds since the epoch.
    pub updated_ms: u64,
    /// Whether the node is deleted (a tombstone that can be restored).
    pub deleted: bool,
    /// Opaque text that changes whenever the materialized state changes.
    pub version: String,
}

/// Field values for a new node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewNode {
    /// Kind; defaults to task when `None`.
    pub kind: Option<Kind>,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Status (tasks default to todo).
    pub status: Option<Status>,
    /// Due date.
    pub due: Option<Date>,
    /// Project.
    pub project: Option<String>,
    /// Tags.
    pub tags: BTreeSet<String>,
}

/// Changes to apply to a node; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePatch {
    /// New title.
    pub title: Option<String>,
    /// New kind.
    pub kind: Option<Kind>,
    /// New status (`Some(None)` clears it).
    pub status: Option<Option<Status>>,
    /// New due date (`Some(None)` clears it).
    pub due: Option<Option<Date>>,
    /// New project (`Some(None)` clears it).
    pub project: Option<Option<String>>,
    /// The complete new tag set.
    pub tags: Option<BTreeSet<String>>,
    /// The tag set an editor showed when `tags` was typed: `tags` is then
    /// a change from it (the tags added, the tags removed), applied to the
    /// tags the node has now, so a tag another device or process added
    /// meanwhile stays. Without it, `tags` is the whole new set.
    pub tags_shown: Option<BTreeSet<String>>,
    /// New body.
    pub body: Option<String>,
}

impl NodePatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == NodePatch::default()
    }

    /// The tag set to write over `now` (the node's tags as they are):
    /// `tags` as it is, or, with `tags_shown`, the tags added and removed
    /// since what was shown applied to `now`.
    pub fn tags_over(&self, now: &BTreeSet<String>) -> Option<BTreeSet<String>> {
        let wanted = self.tags.as_ref()?;
        let Some(shown) = &self.tags_shown else {
            return Some(wanted.clone());
        };
        let mut tags: BTreeSet<String> = now
            .difference(&shown.difference(wanted).cloned().collect())
            .cloned()
            .collect();
        tags.extend(wanted.difference(shown).cloned());
        Some(tags)
    }
}
