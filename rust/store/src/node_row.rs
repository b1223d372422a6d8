//! One materialized node row, read once, changed in memory by every op of a
//! batch for that node, and written back once. The rules are the ones of
//! the module `materialize` (last writer wins per field, delete against
//! edits); keeping them here, in one place, is what makes a bulk apply and
//! an op-by-op replay end in the same bytes.

use rusqlite::{params, OptionalExtension, Transaction};

use heph_core::Field;

use crate::StoreError;

/// The columns of `nodes` that ops decide.
#[derive(Debug, Clone)]
pub(crate) struct NodeRow {
    pub id: String,
    /// Whether the row is in the table yet.
    stored: bool,
    pub kind: String,
    pub kind_hlc: String,
    pub title: String,
    pub title_hlc: String,
    pub status: Option<String>,
    pub status_hlc: String,
    pub due: Option<String>,
    pub due_hlc: String,
    pub project: Option<String>,
    pub project_hlc: String,
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

impl NodeRow {
    /// A node no op has touched yet (the table's defaults).
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            stored: false,
            kind: "note".into(),
            kind_hlc: String::new(),
            title: String::new(),
            title_hlc: String::new(),
            status: None,
            status_hlc: String::new(),
            due: None,
            due_hlc: String::new(),
            project: None,
            project_hlc: String::new(),
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
            .prepare_cached(
                "SELECT kind, kind_hlc, title, title_hlc, status, status_hlc, due, due_hlc,
                        project, project_hlc, body, body_heads, body_hlc, created_hlc,
                        updated_hlc, delete_hlc, alive_hlc, deleted, last_seq
                 FROM nodes WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok(Self {
                    id: id.to_owned(),
                    stored: true,
                    kind: r.get(0)?,
                    kind_hlc: r.get(1)?,
                    title: r.get(2)?,
                    title_hlc: r.get(3)?,
                    status: r.get(4)?,
                    status_hlc: r.get(5)?,
                    due: r.get(6)?,
                    due_hlc: r.get(7)?,
                    project: r.get(8)?,
                    project_hlc: r.get(9)?,
                    body: r.get(10)?,
                    body_heads: r.get(11)?,
                    body_hlc: r.get(12)?,
                    created_hlc: r.get(13)?,
                    updated_hlc: r.get(14)?,
                    delete_hlc: r.get(15)?,
                    alive_hlc: r.get(16)?,
                    deleted: r.get(17)?,
                    last_seq: r.get(18)?,
                })
            })
            .optional()?;
        Ok(row.unwrap_or_else(|| Self::new(id)))
    }

    /// Writes the row back (inserting it the first time).
    pub fn store(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let sql = if self.stored {
            "UPDATE nodes SET kind = ?2, kind_hlc = ?3, title = ?4, title_hlc = ?5, status = ?6,
                 status_hlc = ?7, due = ?8, due_hlc = ?9, project = ?10, project_hlc = ?11,
                 body = ?12, body_heads = ?13, body_hlc = ?14, created_hlc = ?15,
                 updated_hlc = ?16, delete_hlc = ?17, alive_hlc = ?18, deleted = ?19,
                 last_seq = ?20
             WHERE id = ?1"
        } else {
            // Tags applied in the same batch went in before the row existed,
            // so the tag triggers had no row to update: the list is read here.
            "INSERT INTO nodes (id, kind, kind_hlc, title, title_hlc, status, status_hlc, due,
                 due_hlc, project, project_hlc, body, body_heads, body_hlc, created_hlc,
                 updated_hlc, delete_hlc, alive_hlc, deleted, last_seq, tag_list)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 ?17, ?18, ?19, ?20, (SELECT group_concat(tag, char(31)) FROM (SELECT tag
                 FROM tags WHERE node = ?1 AND present = 1 ORDER BY tag)))"
        };
        tx.prepare_cached(sql)?.execute(params![
            self.id,
            self.kind,
            self.kind_hlc,
            self.title,
            self.title_hlc,
            self.status,
            self.status_hlc,
            self.due,
            self.due_hlc,
            self.project,
            self.project_hlc,
            self.body,
            self.body_heads,
            self.body_hlc,
            self.created_hlc,
            self.updated_hlc,
            self.delete_hlc,
            self.alive_hlc,
            self.deleted,
            self.last_seq,
        ])?;
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
        let required = |v: Option<&str>| {
            v.map(str::to_owned)
                .ok_or_else(|| StoreError::Invalid(format!("{field} cannot be cleared")))
        };
        match field {
            Field::Title if self.title_hlc.as_str() < key => {
                self.title = required(value)?;
                self.title_hlc = key.to_owned();
            }
            Field::Kind if self.kind_hlc.as_str() < key => {
                self.kind = required(value)?;
                self.kind_hlc = key.to_owned();
            }
            Field::Status if self.status_hlc.as_str() < key => {
                self.status = value.map(str::to_owned);
                self.status_hlc = key.to_owned();
            }
            Field::Due if self.due_hlc.as_str() < key => {
                self.due = value.map(str::to_owned);
                self.due_hlc = key.to_owned();
            }
            Field::Project if self.project_hlc.as_str() < key => {
                self.project = value.map(str::to_owned);
                self.project_hlc = key.to_owned();
            }
            _ => {}
        }
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
