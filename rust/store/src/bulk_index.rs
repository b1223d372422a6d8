//! The full-text index during a bulk load. Indexing node by node while a
//! new replica receives its whole history (an initial pull, an import) costs
//! more than the rest of the load; instead the index is marked deferred,
//! left alone meanwhile, and built once from the nodes at the end. The mark
//! is in the replica, so a load cut short is finished at the next open or
//! sync, never left half indexed.

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::{Replica, Result};

/// Postings the index keeps in memory before writing a segment while it is
/// rebuilt: fewer, larger segments to merge (the default is 1 MiB). The
/// build of 100,000 notes takes 6.3 s of CPU with 8 MiB and 5.4 s with
/// 32 MiB (doc/benchmarks.md, round 5); the page cache is shrunk to
/// [`REBUILD_CACHE_KIB`] meanwhile, so the memory stays what it was: the
/// build appends new pages and reads `nodes` once, in order, and a large
/// page cache does not help it.
const REBUILD_HASH_BYTES: i64 = 32 * 1024 * 1024;
const DEFAULT_HASH_BYTES: i64 = 1024 * 1024;
/// The page cache during the rebuild (negative: KiB, as SQLite takes it).
const REBUILD_CACHE_KIB: i64 = -4 * 1024;

/// Whether the index is deferred (a bulk load is under way).
pub(crate) fn is_deferred(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM meta WHERE key = 'index_deferred'")?
        .query_row([], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether the replica holds no op.
pub(crate) fn is_empty(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM ops LIMIT 1")?
        .query_row([], |_| Ok(()))
        .optional()?
        .is_none())
}

/// Defers the index when the replica holds nothing yet, so the load that
/// starts now indexes once at its end. Returns whether it did.
pub(crate) fn defer_if_empty(tx: &Transaction<'_>) -> Result<bool> {
    let empty = is_empty(tx)?;
    if empty {
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('index_deferred', '1')",
            [],
        )?;
    }
    Ok(empty)
}

/// Builds the whole index from the live nodes and lifts the mark.
pub(crate) fn rebuild(tx: &Transaction<'_>) -> Result<()> {
    let cache: i64 = tx.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
    tx.pragma_update(None, "cache_size", REBUILD_CACHE_KIB)?;
    let built = build(tx);
    tx.pragma_update(None, "cache_size", cache)?;
    built?;
    tx.execute("DELETE FROM meta WHERE key = 'index_deferred'", [])?;
    Ok(())
}

fn build(tx: &Transaction<'_>) -> Result<()> {
    tx.execute(
        "INSERT INTO nodes_fts (nodes_fts, rank) VALUES ('hashsize', ?1)",
        [REBUILD_HASH_BYTES],
    )?;
    // The index reads its text from `nodes`: it is emptied with the
    // command meant for that, never row by row.
    tx.execute(
        "INSERT INTO nodes_fts (nodes_fts) VALUES ('delete-all')",
        [],
    )?;
    tx.execute(
        "INSERT INTO nodes_fts (rowid, title, body)
         SELECT rowid, title, body FROM nodes WHERE deleted = 0",
        [],
    )?;
    tx.execute(
        "INSERT INTO nodes_fts (nodes_fts, rank) VALUES ('hashsize', ?1)",
        [DEFAULT_HASH_BYTES],
    )?;
    lift_build_segments(tx)
}

/// How many levels a bulk build's segments are moved up: above the levels
/// that ordinary writes fill and merge (each merge of four segments goes
/// one level up), so those reach them only after hundreds of saves.
const BUILD_LIFT: usize = 4;

/// FTS5 writes a bulk build as a few large segments on level 0, where
/// every later write adds a small one; when a level holds 16 segments
/// (FTS5's `crisismerge`), the next write merges the whole level at once,
/// the build's segments included: after an import of 100,000 notes, one
/// save in the first dozen took 1.4 s rewriting the whole index
/// (doc/benchmarks.md, round 9). Moved up a few levels, the build's
/// segments are left out of those merges, and ordinary writes merge among
/// themselves below them, as in an index that grew write by write. Only
/// the level numbers in the index's structure record change.
fn lift_build_segments(tx: &Transaction<'_>) -> Result<()> {
    // The last postings go from memory to a segment first; this also
    // drops the connection's copy of the structure record, read again
    // from the table when next needed.
    tx.execute("INSERT INTO nodes_fts (nodes_fts) VALUES ('flush')", [])?;
    let record: Vec<u8> = tx.query_row(
        "SELECT block FROM nodes_fts_data WHERE id = ?1",
        [crate::fts_structure::STRUCTURE_ROWID],
        |r| r.get(0),
    )?;
    if let Some(lifted) = crate::fts_structure::lift_levels(&record, BUILD_LIFT) {
        tx.execute(
            "UPDATE nodes_fts_data SET block = ?1 WHERE id = ?2",
            rusqlite::params![lifted, crate::fts_structure::STRUCTURE_ROWID],
        )?;
    }
    Ok(())
}

/// Secondary indexes no step of an apply reads (lists, home, the push
/// queue and tag lookups use them). An import into an empty replica drops
/// them and builds each once at its end from sorted rows: no index page
/// is touched per op, and the rebuilt pages are full instead of the
/// half-split pages of random inserts (a smaller replica). Within the
/// import's one transaction, so a load cut short leaves them as they were.
pub(crate) const SECONDARY_INDEXES: &[&str] = &[
    "ops_unpushed",
    "nodes_title",
    "nodes_open",
    "nodes_updated",
    "nodes_open_tasks",
    "nodes_open_tasks_project",
    "nodes_open_tasks_count",
    "tags_tag",
];

/// The op log's indexes by node and by stamp: only merging bodies reads
/// them ([`crate::materialize::settle`], at the end of a transaction), so
/// an import into an empty replica builds them once, from sorted rows,
/// after its last op and before it settles. The unique index on op ids
/// stays: every op is checked against it.
pub(crate) const LOG_INDEXES: &[&str] = &["ops_node", "ops_hlc"];

/// The page cache while [`create_indexes`] builds (negative: KiB). An index
/// is built by sorting its keys and appending full pages, and the sorter
/// takes as much memory as the cache allows: with the import's 32 MiB the
/// sort held that much on top of the dirty pages, the import's peak RSS
/// (97 MB of the 100 MB budget), and it was no faster — 8 MiB builds the
/// op log's and the lists' indexes in the same time or less with a peak of
/// 80 MB (doc/benchmarks.md, round 6).
const INDEX_BUILD_CACHE_KIB: i64 = -8 * 1024;

/// Drops the indexes named in `names` and returns the statements that
/// create them again (as the schema holds them), for [`create_indexes`].
pub(crate) fn drop_indexes(tx: &Transaction<'_>, names: &[&str]) -> Result<Vec<String>> {
    let mut stmt =
        tx.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL")?;
    let found: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut create = Vec::new();
    for (name, sql) in found {
        if names.contains(&name.as_str()) {
            tx.execute_batch(&format!("DROP INDEX \"{name}\""))?;
            create.push(sql);
        }
    }
    Ok(create)
}

/// Creates the indexes [`drop_indexes`] dropped.
pub(crate) fn create_indexes(tx: &Transaction<'_>, create: &[String]) -> Result<()> {
    // Every write transaction ends here; only a bulk load has indexes to
    // build.
    if create.is_empty() {
        return Ok(());
    }
    let cache: i64 = tx.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
    tx.pragma_update(None, "cache_size", INDEX_BUILD_CACHE_KIB)?;
    let made = create
        .iter()
        .try_for_each(|sql| tx.execute_batch(sql).map_err(Into::into));
    tx.pragma_update(None, "cache_size", cache)?;
    made
}

impl Replica {
    /// Starts a bulk load when the replica holds nothing yet (an initial
    /// pull): until [`Replica::finish_bulk_load`], the full-text index is
    /// left alone. Returns whether one started.
    pub fn begin_bulk_load(&mut self) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let started = defer_if_empty(&tx)?;
        tx.commit()?;
        Ok(started)
    }

    /// Ends a bulk load: builds the full-text index if it was deferred
    /// (see [`Replica::begin_bulk_load`]). Cheap when there is nothing to do;
    /// sync calls it after pulling.
    pub fn finish_bulk_load(&mut self) -> Result<()> {
        if self.is_read_only() || !is_deferred(&self.conn)? {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if is_deferred(&tx)? {
            rebuild(&tx)?;
        }
        tx.commit()?;
        Ok(())
    }
}
