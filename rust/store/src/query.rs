//! Reads: one node, lists.

use std::collections::HashMap;

use heph_core::model::parse_date;
use heph_core::{Hlc, Kind, Node, Status};
use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};

use crate::search::fts_query;
use crate::{Replica, Result, StoreError};

/// Which tasks a list shows, by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusFilter {
    /// Todo and doing (and nodes without a status).
    #[default]
    Open,
    /// Done and cancelled.
    Closed,
    /// Everything.
    Any,
}

/// Sort order of a list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    /// Tasks with a due date first (soonest first), then newest.
    #[default]
    DueFirst,
    /// Most recently changed first.
    RecentlyUpdated,
    /// Oldest first.
    Created,
}

/// What to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only these kinds (all when empty).
    pub kinds: Vec<Kind>,
    /// By status.
    pub status: StatusFilter,
    /// Only this project.
    pub project: Option<String>,
    /// Only nodes with this tag.
    pub tag: Option<String>,
    /// Only nodes matching these full-text search terms.
    pub text: Option<String>,
    /// Include deleted nodes.
    pub include_deleted: bool,
    /// At most this many.
    pub limit: Option<usize>,
    /// Sort order.
    pub order: ListOrder,
}

const NODE_COLUMNS: &str =
    "n.id, n.kind, n.title, n.body, n.status, n.due, n.project, n.created_hlc, \
     n.updated_hlc, n.deleted, n.last_seq, \
     (SELECT group_concat(tag, char(31)) FROM tags t WHERE t.node = n.id AND t.present = 1)";

/// What a list row holds: [`NODE_COLUMNS`] with an empty body, and the
/// tags from the node's own `tag_list` (set by every write of a node row,
/// see `node_row`), so the open-task indexes cover a list.
const ROW_COLUMNS: &str = "n.id, n.kind, n.title, '', n.status, n.due, n.project, \
     n.created_hlc, n.updated_hlc, n.deleted, n.last_seq, n.tag_list";

/// What a list line shows: [`ROW_COLUMNS`] without the stamps (the
/// node's `created_ms` and `updated_ms` are left 0: parsing two stamps per
/// row was a tenth of a 30,000-line list).
const LINE_COLUMNS: &str = "n.id, n.kind, n.title, '', n.status, n.due, n.project, \
     '', '', n.deleted, n.last_seq, n.tag_list";

/// Which columns a list query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    /// Every field, the body too.
    WithBody,
    /// Every field but the body (left empty).
    Row,
    /// What a list line shows: no body, and no creation or update time
    /// (left 0).
    Line,
}

impl Columns {
    fn sql(self) -> &'static str {
        match self {
            Columns::WithBody => NODE_COLUMNS,
            Columns::Row => ROW_COLUMNS,
            Columns::Line => LINE_COLUMNS,
        }
    }
}

/// A live open task, spelled exactly as the partial indexes of migration 3
/// are, so SQLite can prove a query may use them.
const OPEN_TASK: &str = "n.kind = 'task' AND n.deleted = 0 \
     AND (n.status IS NULL OR n.status IN ('todo', 'doing'))";

/// Open tasks per project, from the narrow index (already in project
/// order, so the `GROUP BY` sorts nothing).
fn open_tasks_by_project_sql() -> String {
    format!(
        "SELECT n.project, count(*) FROM nodes n INDEXED BY nodes_open_tasks_count
         WHERE {OPEN_TASK} AND n.project IS NOT NULL
         GROUP BY n.project ORDER BY n.project"
    )
}

/// Most ids [`Replica::matching`] looks up one by one (see there).
const FEW_IDS: usize = 32;

/// How a query reads the rows a filter matches, which decides the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// The whole list, in order.
    List,
    /// Only how many there are.
    Count,
    /// A few rows, by id.
    ById,
}

/// The `FROM` and `WHERE` of a filter and their arguments; `None` when
/// nothing can match (search text without words).
fn filter_sql(filter: &ListFilter, access: Access) -> Option<(String, Vec<String>)> {
    let mut sql = String::from("nodes n WHERE 1=1");
    let mut args: Vec<String> = Vec::new();
    // Kinds and status are written as literals (they are enum names), so
    // the open-task partial indexes apply.
    let open_tasks = !filter.include_deleted
        && filter.kinds == [Kind::Task]
        && filter.status == StatusFilter::Open;
    if open_tasks && access == Access::ById {
        sql = format!("nodes n WHERE {OPEN_TASK}");
    } else if open_tasks {
        // Without statistics SQLite would rather read the older
        // (kind, status, due) index and sort; the partial index of open
        // tasks is already in list order.
        // A count reads no column a row shows: the narrow index of open
        // tasks by project (migration 5) is an eighth of those.
        let index = match (access, filter.project.is_some()) {
            (Access::Count, _) => "nodes_open_tasks_count",
            (_, true) => "nodes_open_tasks_project",
            (_, false) => "nodes_open_tasks",
        };
        sql = format!("nodes n INDEXED BY {index} WHERE {OPEN_TASK}");
    } else {
        if access == Access::List
            && filter.order == ListOrder::RecentlyUpdated
            && filter.limit.is_some()
        {
            // The newest few (home's recent notes): read from the newest
            // end of the update index, not sort every note.
            sql = String::from("nodes n INDEXED BY nodes_updated WHERE 1=1");
        }
        if !filter.include_deleted {
            sql.push_str(" AND n.deleted = 0");
        }
        if !filter.kinds.is_empty() {
            let kinds: Vec<String> = filter.kinds.iter().map(|k| format!("'{k}'")).collect();
            sql.push_str(&format!(" AND n.kind IN ({})", kinds.join(", ")));
        }
        match filter.status {
            StatusFilter::Open => {
                sql.push_str(" AND (n.status IS NULL OR n.status IN ('todo', 'doing'))")
            }
            StatusFilter::Closed => sql.push_str(" AND n.status IN ('done', 'cancelled')"),
            StatusFilter::Any => {}
        }
    }
    if let Some(project) = &filter.project {
        sql.push_str(" AND n.project = ?");
        args.push(project.clone());
    }
    if let Some(tag) = &filter.tag {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM tags t WHERE t.node = n.id AND t.tag = ? AND t.present = 1)",
        );
        args.push(tag.trim_start_matches('#').to_owned());
    }
    if let Some(text) = &filter.text {
        sql.push_str(" AND n.rowid IN (SELECT rowid FROM nodes_fts WHERE nodes_fts MATCH ?)");
        args.push(fts_query(text)?);
    }
    Some((sql, args))
}

/// A node from a row of [`NODE_COLUMNS`] (or its narrower forms). The
/// short fields are parsed where SQLite holds them, not copied first: a
/// 30,000-line list reads a row per line.
fn node_from_row(row: &Row<'_>) -> Result<Node> {
    let id: String = row.get(0)?;
    let corrupt = |what: String| StoreError::Corrupt(format!("node {id}: {what}"));
    let text = |i: usize| -> Result<Option<&str>> {
        row.get_ref(i)?
            .as_str_or_null()
            .map_err(|e| corrupt(format!("column {i}: {e}")))
    };
    let millis = |i: usize| -> Result<u64> {
        Ok(match text(i)? {
            None | Some("") => 0,
            Some(h) => h.parse::<Hlc>().map(|h| h.millis).unwrap_or(0),
        })
    };
    let kind = text(1)?
        .unwrap_or_default()
        .parse()
        .map_err(|e: heph_core::model::FieldError| corrupt(e.0))?;
    // Only tasks have a status. The column is the status field's last
    // writer, kept as it is so every order of ops agrees; a kind changed
    // to note on one device while another ticked the task done leaves one
    // there, which a note does not show.
    let status = text(4)?
        .map(str::parse::<Status>)
        .transpose()
        .map_err(|e| corrupt(e.0))?
        .filter(|_| kind == heph_core::Kind::Task);
    let due = text(5)?
        .map(parse_date)
        .transpose()
        .map_err(|e| corrupt(e.0))?;
    let tags = text(11)?
        .map(|t| t.split('\u{1f}').map(str::to_owned).collect())
        .unwrap_or_default();
    let created_ms = millis(7)?;
    let updated_ms = millis(8)?;
    let last_seq: i64 = row.get(10)?;
    Ok(Node {
        kind,
        status,
        due,
        tags,
        created_ms,
        updated_ms,
        version: last_seq.to_string(),
        title: row.get(2)?,
        body: row.get(3)?,
        project: row.get(6)?,
        deleted: row.get(9)?,
        id,
    })
}

pub(crate) fn get_node(conn: &Connection, id: &str) -> Result<Option<Node>> {
    let sql = format!("SELECT {NODE_COLUMNS} FROM nodes n WHERE n.id = ?1");
    conn.prepare_cached(&sql)?
        .query([id])?
        .next()?
        .map(node_from_row)
        .transpose()
}

impl Replica {
    /// One node, deleted or not.
    pub fn get(&self, id: &str) -> Result<Option<Node>> {
        get_node(&self.conn, id)
    }

    /// Nodes matching a filter, with their bodies.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Node>> {
        let mut out = Vec::new();
        self.each_node(filter, Columns::WithBody, |node| {
            out.push(node);
            Ok::<(), StoreError>(())
        })?;
        Ok(out)
    }

    /// Nodes matching a filter as a list shows them: every field but the
    /// body, which is left empty (lists never read bodies: a 30,000-task
    /// list would otherwise load megabytes it does not show).
    pub fn list_rows(&self, filter: &ListFilter) -> Result<Vec<Node>> {
        let mut out = Vec::new();
        self.each_node(filter, Columns::Row, |node| {
            out.push(node);
            Ok::<(), StoreError>(())
        })?;
        Ok(out)
    }

    /// Calls `each` with every node matching a filter, in order, one row at
    /// a time (`heph list --json` streams them out without holding the
    /// list). `columns` says whether bodies are read.
    pub fn each_node<E: From<StoreError>>(
        &self,
        filter: &ListFilter,
        columns: Columns,
        mut each: impl FnMut(Node) -> Result<(), E>,
    ) -> Result<(), E> {
        let Some((conditions, args)) = filter_sql(filter, Access::List) else {
            return Ok(());
        };
        let columns = columns.sql();
        let mut sql = format!("SELECT {columns} FROM {conditions}");
        sql.push_str(match filter.order {
            ListOrder::DueFirst => " ORDER BY n.due IS NULL, n.due, n.created_hlc DESC",
            ListOrder::RecentlyUpdated => " ORDER BY n.updated_hlc DESC",
            ListOrder::Created => " ORDER BY n.created_hlc, n.id",
        });
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let mut stmt = self.conn.prepare_cached(&sql).map_err(StoreError::from)?;
        let mut rows = stmt
            .query(params_from_iter(args.iter()))
            .map_err(StoreError::from)?;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            let node = node_from_row(row)?;
            each(node)?;
        }
        Ok(())
    }

    /// How many nodes match a filter, its limit aside.
    pub fn count(&self, filter: &ListFilter) -> Result<usize> {
        let Some((conditions, args)) = filter_sql(filter, Access::Count) else {
            return Ok(0);
        };
        let sql = format!("SELECT count(*) FROM {conditions}");
        let count: i64 = self
            .conn
            .prepare_cached(&sql)?
            .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
        Ok(count as usize)
    }

    /// Of the nodes `ids`, those a filter matches (its limit and order
    /// aside), by id, read as `columns`: which lines of a list still belong
    /// in it after a save, without reading the whole list again.
    pub fn matching(
        &self,
        filter: &ListFilter,
        ids: &[String],
        columns: Columns,
    ) -> Result<HashMap<String, Node>> {
        let mut out = HashMap::new();
        let Some((conditions, mut args)) = filter_sql(filter, Access::ById) else {
            return Ok(out);
        };
        // A few ids (a save's lines): one lookup by id each. Many (the
        // lines gone from a cleared list): one query over the filter's
        // own index per batch, the ids as a JSON array; one query per id
        // ran a search's full-text match once per id (8.8 s for 8,000
        // lines gone from a search list).
        if ids.len() <= FEW_IDS {
            let sql = format!("SELECT {} FROM {conditions} AND n.id = ?", columns.sql());
            let mut stmt = self.conn.prepare_cached(&sql)?;
            for id in ids {
                if out.contains_key(id) {
                    continue;
                }
                args.push(id.clone());
                let node = stmt
                    .query(params_from_iter(args.iter()))?
                    .next()?
                    .map(node_from_row)
                    .transpose()?;
                args.pop();
                if let Some(node) = node {
                    out.insert(node.id.clone(), node);
                }
            }
            return Ok(out);
        }
        let sql = format!(
            "SELECT {} FROM {conditions} AND n.id IN (SELECT value FROM json_each(?))",
            columns.sql()
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        for batch in ids.chunks(5000) {
            let json = serde_json::to_string(batch)
                .map_err(|e| StoreError::Invalid(format!("ids: {e}")))?;
            args.push(json);
            let mut rows = stmt.query(params_from_iter(args.iter()))?;
            while let Some(row) = rows.next()? {
                let node = node_from_row(row)?;
                out.insert(node.id.clone(), node);
            }
            args.pop();
        }
        Ok(out)
    }

    /// The sequence number of the newest op in the log. A node's version
    /// is the sequence number of its newest op, so a node whose version is
    /// greater than this has changed since it was read.
    pub fn op_seq(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM ops")?
            .query_row([], |r| r.get(0))?)
    }

    /// Open tasks per project (projects without open tasks left out), by
    /// project name: what the home page lists. One `GROUP BY` over the
    /// narrow index of open tasks by project.
    pub fn open_tasks_by_project(&self) -> Result<Vec<(String, usize)>> {
        let mut stmt = self.conn.prepare_cached(&open_tasks_by_project_sql())?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The id of a live node whose title is `title` (case-insensitive).
    /// When several share it: one that is not a closed task (done or
    /// cancelled) first, so `[[buy stamps]]` in today's journal names the
    /// open task, not last month's done one; then the oldest.
    pub fn find_by_title(&self, title: &str) -> Result<Option<String>> {
        self.titled(title, "")
    }

    /// Like [`Replica::find_by_title`], among tasks and notes only: a date
    /// link (`[[2026-12-08]]`) names a note titled so before the day's
    /// journal.
    pub fn find_by_title_except_journals(&self, title: &str) -> Result<Option<String>> {
        self.titled(title, "journal")
    }

    /// [`Replica::find_by_title`] among nodes not of kind `skip` (`""`: any).
    fn titled(&self, title: &str, skip: &str) -> Result<Option<String>> {
        self.first_titled(
            title,
            "deleted = 0 AND kind != ?2
             ORDER BY kind = 'task' AND status IN ('done', 'cancelled'), created_hlc, id",
            skip,
        )
    }

    /// The first id of `SELECT id FROM nodes WHERE <title is title> AND
    /// <rest>`, `?2` in `rest` bound to `arg`; titles compared ignoring
    /// case, beyond ASCII too (see [`Replica::titles_ignoring_case`]).
    fn first_titled(&self, title: &str, rest: &str, arg: &str) -> Result<Option<String>> {
        let title = title.trim();
        let found = self
            .conn
            .prepare_cached(&format!(
                "SELECT id FROM nodes WHERE title = ?1 COLLATE NOCASE AND {rest} LIMIT 1"
            ))?
            .query_row([title, arg], |r| r.get(0))
            .optional()?;
        // Found as typed (but for ASCII case), the link opens at once; the
        // walk over every title with other letters is for a miss.
        if found.is_some() {
            return Ok(found);
        }
        let Some(rowids) = self.titles_ignoring_case(title)? else {
            return Ok(None);
        };
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT id FROM nodes WHERE rowid IN (SELECT value FROM json_each(?1)) AND {rest}
                 LIMIT 1"
            ))?
            .query_row([rowids.as_str(), arg], |r| r.get(0))
            .optional()?)
    }

    /// SQLite's `NOCASE` folds ASCII letters only: `ÉTÉ plans` is not
    /// `été plans` to it. For a title with other letters, the rows (deleted
    /// ones too) whose title is the same in lower case, as a JSON array of
    /// rowids (`[]` for none); `None` for an ASCII title, which `NOCASE`
    /// compares alone. Reads the title index (titles, not the rows with
    /// their bodies), and lowers only titles with other letters: 35 ms at
    /// 100,000 Cyrillic titles, so it runs for lookups one at a time (a
    /// link, `:Heph open`, `--title`), not per promoted line.
    fn titles_ignoring_case(&self, title: &str) -> Result<Option<String>> {
        if title.is_ascii() {
            return Ok(None);
        }
        let wanted = title.to_lowercase();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT rowid, title FROM nodes INDEXED BY nodes_title")?;
        let mut rows = stmt.query([])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let Some(text) = row.get_ref(1)?.as_str_or_null().ok().flatten() else {
                continue;
            };
            if !text.is_ascii() && text.to_lowercase() == wanted {
                found.push(row.get::<_, i64>(0)?.to_string());
            }
        }
        Ok(Some(format!("[{}]", found.join(","))))
    }

    /// Ids starting with `prefix` (deleted nodes too), at most `limit`, in
    /// id order: a range of the id index, not a scan of the nodes.
    pub fn ids_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        if prefix.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM nodes WHERE id >= ?1 ORDER BY id LIMIT ?2")?;
        let mut ids = Vec::new();
        let mut rows = stmt.query(rusqlite::params![prefix, limit as i64])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            if !id.starts_with(prefix) {
                break;
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// The id of an open task (todo, doing or no status) whose title is
    /// `title` (case-insensitive), the oldest when several: what a promoted
    /// line links to instead of making the same task again.
    ///
    /// Case is ignored for ASCII letters only (`NOCASE`): every promoted
    /// line asks, and the walk over every title that other letters need
    /// (35 ms at 100,000 Cyrillic titles) would make a promote of 30 lines
    /// take a second.
    pub fn find_open_task_by_title(&self, title: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id FROM nodes n WHERE title = ?1 COLLATE NOCASE AND deleted = 0
                 AND kind = 'task' AND (status IS NULL OR status IN ('todo', 'doing'))
                 ORDER BY created_hlc, id LIMIT 1",
            )?
            .query_row([title.trim()], |r| r.get(0))
            .optional()?)
    }

    /// The ids of every live node whose title is `title`
    /// (case-insensitive), oldest first: for callers that must not pick
    /// one of several silently.
    pub fn ids_by_title(&self, title: &str) -> Result<Vec<String>> {
        let title = title.trim();
        let Some(rowids) = self.titles_ignoring_case(title)? else {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id FROM nodes WHERE title = ?1 COLLATE NOCASE AND deleted = 0
                 ORDER BY created_hlc, id",
            )?;
            let ids = stmt
                .query_map([title], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            return Ok(ids);
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM nodes WHERE rowid IN (SELECT value FROM json_each(?1)) AND deleted = 0
             ORDER BY created_hlc, id",
        )?;
        let ids = stmt
            .query_map([rowids], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// Current versions of the given nodes (absent ids are left out).
    pub fn versions(&self, ids: &[String]) -> Result<HashMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT last_seq FROM nodes WHERE id = ?1")?;
        let mut out = HashMap::new();
        for id in ids {
            if let Some(seq) = stmt.query_row([id], |r| r.get::<_, i64>(0)).optional()? {
                out.insert(id.clone(), seq.to_string());
            }
        }
        Ok(out)
    }

    /// The heads of a node's body (what the next body edit is based on).
    pub fn body_heads(&self, id: &str) -> Result<Vec<Hlc>> {
        crate::materialize::body_heads(&self.conn, id)
    }

    /// How many nodes (live and deleted) the replica holds.
    pub fn node_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM nodes", [], |r| r.get::<_, i64>(0))? as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::{filter_sql, Access, ListFilter};
    use crate::Replica;
    use heph_core::Kind;

    /// The plan SQLite makes for a query, one step a line.
    fn plan(r: &Replica, sql: &str, args: &[String]) -> String {
        let mut stmt = r
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |row| {
                row.get::<_, String>(3)
            })
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn a_nodes_tag_list_is_its_present_tags() {
        use heph_core::{NewNode, NodePatch};
        use std::collections::BTreeSet;
        let set =
            |tags: &[&str]| -> BTreeSet<String> { tags.iter().map(|t| t.to_string()).collect() };
        let mut r = Replica::open_in_memory().unwrap();
        let a = r
            .create(NewNode {
                title: "a".into(),
                tags: set(&["x", "y"]),
                ..NewNode::default()
            })
            .unwrap();
        let b = r
            .create(NewNode {
                title: "b".into(),
                tags: set(&["z"]),
                ..NewNode::default()
            })
            .unwrap();
        r.update(
            &a.id,
            &NodePatch {
                tags: Some(set(&["y", "w"])),
                ..NodePatch::default()
            },
        )
        .unwrap();
        r.update(
            &b.id,
            &NodePatch {
                tags: Some(set(&[])),
                ..NodePatch::default()
            },
        )
        .unwrap();
        assert_eq!(r.get(&a.id).unwrap().unwrap().tags, set(&["w", "y"]));
        assert!(r.get(&b.id).unwrap().unwrap().tags.is_empty());
        let mut stmt = r
            .conn
            .prepare(
                "SELECT n.tag_list IS (SELECT group_concat(tag, char(31)) FROM (SELECT tag
                 FROM tags t WHERE t.node = n.id AND t.present = 1 ORDER BY tag)) FROM nodes n",
            )
            .unwrap();
        let same: Vec<bool> = stmt
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(same, [true, true]);
    }

    #[test]
    fn counts_of_open_tasks_read_the_narrow_index() {
        let r = Replica::open_in_memory().unwrap();
        let next = ListFilter {
            kinds: vec![Kind::Task],
            limit: Some(50),
            ..ListFilter::default()
        };
        let project = ListFilter {
            project: Some("home".into()),
            ..next.clone()
        };
        for filter in [next, project] {
            let (conditions, args) = filter_sql(&filter, Access::Count).unwrap();
            let shown = plan(&r, &format!("SELECT count(*) FROM {conditions}"), &args);
            assert!(
                shown.contains("COVERING INDEX nodes_open_tasks_count"),
                "{filter:?}: {shown}"
            );
        }
        let by_project = plan(&r, &super::open_tasks_by_project_sql(), &[]);
        assert!(!by_project.contains("TEMP B-TREE"), "{by_project}");
    }
}
