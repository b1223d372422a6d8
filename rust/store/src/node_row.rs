//! One materialized node row, read once, changed in memory by every op of a
//! batch for that node, and written back once. The rules are the ones of
//! the module `materialize` (last writer wins per field, delete against
//! edits); keeping them here, in one place, is what makes a bulk apply and
//! an op-by-op replay end in the same bytes.

use std::sync::OnceLock;

use rusqlite::{types::ToSql, OptionalExtension, Transaction};

use heph_core::Field;

use crate::StoreError;

/// One last-writer-wins field of a row: its value (column `NAME`) and the
/// stamp of the op that set it (column `NAME_hlc`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Scalar {
    pub value: Option<String>,
    pub hlc: String,
}

/// How many scalar fields a row holds.
const SCALARS: usize = Field::ALL.len();

/// The columns after the scalar fields' pairs, in statement order.
const OTHER_COLUMNS: [&str; 9] = [
    "body",
    "body_heads",
    "body_hlc",
    "created_hlc",
    "updated_hlc",
    "delete_hlc",
    "alive_hlc",
    "deleted",
    "last_seq",
];

/// The columns of `nodes` that ops decide.
#[derive(Debug, Clone)]
pub(crate) struct NodeRow {
    pub id: String,
    /// Whether the row is in the table yet.
    stored: bool,
    /// The op fields, indexed like [`Field::ALL`] (their columns are
    /// named after them, so a new field needs no code here).
    scalars: [Scalar; SCALARS],
    pub body: String,
    pub body_heads: String,
    pub body_hlc: String,
    pub created_hlc: String,
    pub updated_hlc: String,
    pub delete_hlc: String,
    pub alive_hlc: String,
    pub deleted: bool,
    pub last_seq: i64,
}

/// Every column a row reads and writes: each scalar field and its stamp,
/// then [`OTHER_COLUMNS`].
fn columns() -> impl Iterator<Item = String> {
    Field::ALL
        .iter()
        .flat_map(|f| [f.as_str().to_owned(), format!("{f}_hlc")])
        .chain(OTHER_COLUMNS.iter().map(|c| (*c).to_owned()))
}

/// The three statements, built once from the field list.
struct Statements {
    select: String,
    insert: String,
    update: String,
}

fn statements() -> &'static Statements {
    static SQL: OnceLock<Statements> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols: Vec<String> = columns().collect();
        // ?1 is the id; the columns follow from ?2 on.
        let numbered = |i: usize| format!("?{}", i + 2);
        // The row's present tags, in order, separated by char(31) (NULL
        // without tags): the one place `tag_list` is set. Every tag op is
        // followed by a store of its node's row.
        let tag_list = "(SELECT group_concat(tag, char(31)) FROM (SELECT tag \
                        FROM tags WHERE node = ?1 AND present = 1 ORDER BY tag))";
        Statements {
            select: format!("SELECT {} FROM nodes WHERE id = ?1", cols.join(", ")),
            insert: format!(
                "INSERT INTO nodes (id, {}, tag_list) VALUES (?1, {}, {tag_list})",
                cols.join(", "),
                (0..cols.len()).map(numbered).collect::<Vec<_>>().join(", ")
            ),
            update: format!(
                "UPDATE nodes SET {}, tag_list = {tag_list} WHERE id = ?1",
                cols.iter()
                    .enumerate()
                    .map(|(i, c)| format!("{c} = {}", numbered(i)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    })
}

impl NodeRow {
    /// A node no op has touched yet (the table's defaults).
    fn new(id: &str) -> Self {
        let mut scalars: [Scalar; SCALARS] = Default::default();
        scalars[Field::Kind.index()].value = Some("note".into());
        scalars[Field::Title.index()].value = Some(String::new());
        Self {
            id: id.to_owned(),
            stored: false,
            scalars,
            body: String::new(),
            body_heads: "[]".into(),
            body_hlc: String::new(),
            created_hlc: String::new(),
            updated_hlc: String::new(),
            delete_hlc: String::new(),
            alive_hlc: String::new(),
            deleted: false,
            last_seq: 0,
        }
    }

    /// The row of `id`, or a new one.
    pub fn load(tx: &Transaction<'_>, id: &str) -> Result<Self, StoreError> {
        let row = tx
            .prepare_cached(&statements().select)?
            .query_row([id], |r| {
                let mut scalars: [Scalar; SCALARS] = Default::default();
                for (i, scalar) in scalars.iter_mut().enumerate() {
                    scalar.value = r.get(2 * i)?;
                    scalar.hlc = r.get(2 * i + 1)?;
                }
                let at = 2 * SCALARS;
                Ok(Self {
                    id: id.to_owned(),
                    stored: true,
                    scalars,
                    body: r.get(at)?,
                    body_heads: r.get(at + 1)?,
                    body_hlc: r.get(at + 2)?,
                    created_hlc: r.get(at + 3)?,
                    updated_hlc: r.get(at + 4)?,
                    delete_hlc: r.get(at + 5)?,
                    alive_hlc: r.get(at + 6)?,
                    deleted: r.get(at + 7)?,
                    last_seq: r.get(at + 8)?,
                })
            })
            .optional()?;
        Ok(row.unwrap_or_else(|| Self::new(id)))
    }

    /// Writes the row back (inserting it the first time).
    pub fn store(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let sql = if self.stored {
            &statements().update
        } else {
            &statements().insert
        };
        let mut values: Vec<&dyn ToSql> = Vec::with_capacity(1 + 2 * SCALARS + 9);
        values.push(&self.id);
        for scalar in &self.scalars {
            values.push(&scalar.value);
            values.push(&scalar.hlc);
        }
        let other: [&dyn ToSql; 9] = [
            &self.body,
            &self.body_heads,
            &self.body_hlc,
            &self.created_hlc,
            &self.updated_hlc,
            &self.delete_hlc,
            &self.alive_hlc,
            &self.deleted,
            &self.last_seq,
        ];
        values.extend(other);
        tx.prepare_cached(sql)?.execute(values.as_slice())?;
        self.stored = true;
        Ok(())
    }

    /// Last writer wins: only a newer stamp (`key`) replaces the value.
    pub fn set_field(
        &mut self,
        field: Field,
        value: Option<&str>,
        key: &str,
    ) -> Result<(), StoreError> {
        let scalar = &mut self.scalars[field.index()];
        if scalar.hlc.as_str() >= key {
            return Ok(());
        }
        if value.is_none() && !field.can_be_cleared() {
            return Err(StoreError::Invalid(format!("{field} cannot be cleared")));
        }
        scalar.value = value.map(str::to_owned);
        scalar.hlc = key.to_owned();
        Ok(())
    }

    /// The earliest creation stamp wins.
    pub fn created(&mut self, hlc: &str) {
        if self.created_hlc.is_empty() || self.created_hlc.as_str() > hlc {
            self.created_hlc = hlc.to_owned();
        }
    }

    /// Records an op stamped `hlc` at local sequence `seq`: a delete or a
    /// sign of life (any other op), see the module `materialize`.
    pub fn lived(&mut self, hlc: &str, is_delete: bool, seq: i64) {
        let newest = if is_delete {
            &mut self.delete_hlc
        } else {
            &mut self.alive_hlc
        };
        if newest.as_str() < hlc {
            *newest = hlc.to_owned();
        }
        self.deleted = self.delete_hlc > self.alive_hlc;
        if self.updated_hlc.as_str() < hlc {
            self.updated_hlc = hlc.to_owned();
        }
        self.last_seq = seq;
    }
}
