//! Versioned migrations, applied in order when a replica is opened.

use rusqlite::Connection;

use crate::StoreError;

/// Each entry migrates from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The op-log: every change this replica knows, in local arrival order.
CREATE TABLE ops (
    seq     INTEGER PRIMARY KEY,
    op_id   TEXT NOT NULL UNIQUE,
    hlc     TEXT NOT NULL,
    node    TEXT NOT NULL,
    action  TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- 1 once the hub has acknowledged (or sent) the op.
    pushed  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ops_node ON ops(node, action);
CREATE INDEX ops_hlc ON ops(hlc);
CREATE INDEX ops_unpushed ON ops(seq) WHERE pushed = 0;

-- Materialized nodes. Each *_hlc column holds the stamp of the op that set
-- the field, for last-writer-wins.
CREATE TABLE nodes (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL DEFAULT 'note',
    kind_hlc    TEXT NOT NULL DEFAULT '',
    title       TEXT NOT NULL DEFAULT '',
    title_hlc   TEXT NOT NULL DEFAULT '',
    status      TEXT,
    status_hlc  TEXT NOT NULL DEFAULT '',
    due         TEXT,
    due_hlc     TEXT NOT NULL DEFAULT '',
    project     TEXT,
    project_hlc TEXT NOT NULL DEFAULT '',
    body        TEXT NOT NULL DEFAULT '',
    body_heads  TEXT NOT NULL DEFAULT '[]',
    body_hlc    TEXT NOT NULL DEFAULT '',
    created_hlc TEXT NOT NULL DEFAULT '',
    updated_hlc TEXT NOT NULL DEFAULT '',
    delete_hlc  TEXT NOT NULL DEFAULT '',
    alive_hlc   TEXT NOT NULL DEFAULT '',
    deleted     INTEGER NOT NULL DEFAULT 0,
    -- Local only: seq of the last op applied here (the buffer version).
    last_seq    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX nodes_title ON nodes(title COLLATE NOCASE);
CREATE INDEX nodes_open ON nodes(kind, status, due);
CREATE INDEX nodes_updated ON nodes(updated_hlc);

CREATE TABLE tags (
    node    TEXT NOT NULL,
    tag     TEXT NOT NULL,
    hlc     TEXT NOT NULL,
    present INTEGER NOT NULL,
    PRIMARY KEY (node, tag)
) WITHOUT ROWID;
CREATE INDEX tags_tag ON tags(tag) WHERE present = 1;

-- Full-text index over live nodes, kept up to date once per write
-- transaction (see materialize::reindex). rowid = nodes.rowid.
CREATE VIRTUAL TABLE nodes_fts USING fts5(
    title, body, tokenize = 'unicode61 remove_diacritics 2', prefix = '3'
);
-- Per-term document counts, to spot queries too broad to rank quickly.
CREATE VIRTUAL TABLE nodes_fts_terms USING fts5vocab(nodes_fts, 'row');
-- Title hits weigh ten times body hits.
INSERT INTO nodes_fts (nodes_fts, rank) VALUES ('rank', 'bm25(10.0, 1.0)');

-- Per hub: pull cursor (hub sequence), last sync, last error.
CREATE TABLE sync_state (
    hub   TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (hub, key)
) WITHOUT ROWID;
"#,
    r#"
-- Local ops the hub refused (reason and a short code: clock_ahead, invalid,
-- too_large), set aside so they never block the ops behind them.
ALTER TABLE ops ADD COLUMN refused TEXT;
ALTER TABLE ops ADD COLUMN refused_code TEXT;
ALTER TABLE ops ADD COLUMN refused_at TEXT;
CREATE INDEX ops_refused ON ops(seq) WHERE refused IS NOT NULL;

-- Pulled ops that cannot be applied (unreadable, invalid, or stamped beyond
-- the drift limit), kept verbatim with the hub sequence they came with and
-- retried on every sync pass.
CREATE TABLE quarantine (
    hub        TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    op_id      TEXT,
    raw        TEXT NOT NULL,
    reason     TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    PRIMARY KEY (hub, seq)
);
"#,
    r#"
-- A node's present tags, kept by triggers, so a list reads its rows from
-- one index instead of one tags lookup per row (separated by char(31);
-- NULL without tags). No `group_concat(… ORDER BY …)`: an sqlite3 shell
-- older than 3.44 could not read the schema.
ALTER TABLE nodes ADD COLUMN tag_list TEXT;
CREATE TRIGGER tags_list_insert AFTER INSERT ON tags BEGIN
    UPDATE nodes SET tag_list = (SELECT group_concat(tag, char(31)) FROM (SELECT tag
        FROM tags WHERE node = NEW.node AND present = 1 ORDER BY tag)) WHERE id = NEW.node;
END;
CREATE TRIGGER tags_list_update AFTER UPDATE ON tags
WHEN OLD.present IS NOT NEW.present OR OLD.node IS NOT NEW.node OR OLD.tag IS NOT NEW.tag BEGIN
    UPDATE nodes SET tag_list = (SELECT group_concat(tag, char(31)) FROM (SELECT tag
        FROM tags WHERE node = NEW.node AND present = 1 ORDER BY tag)) WHERE id = NEW.node;
    UPDATE nodes SET tag_list = (SELECT group_concat(tag, char(31)) FROM (SELECT tag
        FROM tags WHERE node = OLD.node AND present = 1 ORDER BY tag)) WHERE id = OLD.node AND OLD.node IS NOT NEW.node;
END;
CREATE TRIGGER tags_list_delete AFTER DELETE ON tags BEGIN
    UPDATE nodes SET tag_list = (SELECT group_concat(tag, char(31)) FROM (SELECT tag
        FROM tags WHERE node = OLD.node AND present = 1 ORDER BY tag)) WHERE id = OLD.node;
END;
UPDATE nodes SET tag_list = (SELECT group_concat(tag, char(31)) FROM (SELECT tag
    FROM tags WHERE node = nodes.id AND present = 1 ORDER BY tag));

-- Open tasks, which lists, `next` and home read: in list order (due date
-- first, then newest), and by project for project lists and home's counts.
-- They hold every column a list row shows, so a list never reads the
-- table (whose rows carry the bodies). The WHERE is spelled as query.rs's
-- OPEN_TASK, so queries can use them.
CREATE INDEX nodes_open_tasks ON nodes(due IS NULL, due, created_hlc DESC,
    id, kind, status, deleted, title, project, updated_hlc, last_seq, tag_list)
    WHERE kind = 'task' AND deleted = 0 AND (status IS NULL OR status IN ('todo', 'doing'));
CREATE INDEX nodes_open_tasks_project ON nodes(project, due IS NULL, due, created_hlc DESC,
    id, kind, status, deleted, title, updated_hlc, last_seq, tag_list)
    WHERE kind = 'task' AND deleted = 0 AND (status IS NULL OR status IN ('todo', 'doing'));
"#,
    r#"
-- Body versions may be deltas (action edit_body, stored as 'set_body' like
-- every body version): body_from names the version a delta applies to.
-- Full-text body ops written before stay valid as they are.
ALTER TABLE ops ADD COLUMN body_from TEXT;

-- Deltas whose base version has not arrived yet, applied when it does;
-- reason is set when it arrived and the delta does not fit it.
CREATE TABLE held_ops (
    op_id   TEXT PRIMARY KEY,
    node    TEXT NOT NULL,
    from_op TEXT NOT NULL,
    payload TEXT NOT NULL,
    pushed  INTEGER NOT NULL,
    reason  TEXT
);
CREATE INDEX held_ops_from ON held_ops(from_op);

-- The log keeps each op's action only: its id, stamp and node are columns
-- already (a third of the log's size for small ops).
UPDATE ops SET payload = json_remove(payload, '$.op_id', '$.hlc', '$.node');

-- The full-text index reads titles and bodies from `nodes` instead of
-- keeping its own copy (external content): same name, columns, tokenizer,
-- prefixes and ranking. Rows leave it before they change and come back
-- after (see materialize::unindex and reindex); live nodes only.
DROP TABLE nodes_fts_terms;
DROP TABLE nodes_fts;
CREATE VIRTUAL TABLE nodes_fts USING fts5(
    title, body, content = 'nodes', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '3'
);
CREATE VIRTUAL TABLE nodes_fts_terms USING fts5vocab(nodes_fts, 'row');
INSERT INTO nodes_fts (nodes_fts, rank) VALUES ('rank', 'bm25(10.0, 1.0)');
INSERT INTO nodes_fts (rowid, title, body) SELECT rowid, title, body FROM nodes WHERE deleted = 0;
"#,
    r#"
-- Open tasks by project, and the columns of the WHERE (without them SQLite
-- reads the table row of every entry): under a megabyte where the
-- list-order indexes of migration 3 are several (they carry every column
-- a row shows). Counting open tasks (the total of `next`) and home's
-- count per project read this one. The WHERE is query.rs's OPEN_TASK.
CREATE INDEX nodes_open_tasks_count ON nodes(project, kind, status, deleted)
    WHERE kind = 'task' AND deleted = 0 AND (status IS NULL OR status IN ('todo', 'doing'));

-- Replicas filled by an earlier bulk import have a `tag_list` that does not
-- match their tags (lists showed those nodes without tags): set it again
-- from `tags` where it differs.
UPDATE nodes SET tag_list = (SELECT group_concat(tag, char(31)) FROM (SELECT tag
    FROM tags WHERE node = nodes.id AND present = 1 ORDER BY tag))
WHERE tag_list IS NOT (SELECT group_concat(tag, char(31)) FROM (SELECT tag
    FROM tags WHERE node = nodes.id AND present = 1 ORDER BY tag));
"#,
    r#"
-- Every write of a node row sets its `tag_list` from `tags` (node_row.rs),
-- and every tag op is followed by one: the triggers of migration 3 only
-- set it a second time, a statement per tag op.
DROP TRIGGER IF EXISTS tags_list_insert;
DROP TRIGGER IF EXISTS tags_list_update;
DROP TRIGGER IF EXISTS tags_list_delete;
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`], one transaction per step.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > index as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database migrated to `version`, and no further.
    fn at_version(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64)
            .unwrap();
        conn
    }

    #[test]
    fn migration_5_sets_a_stale_tag_list_again() {
        let mut conn = at_version(4);
        conn.execute_batch(
            "INSERT INTO nodes (id, title) VALUES ('a', 'one'), ('b', 'two');
             INSERT INTO tags (node, tag, hlc, present) VALUES
                 ('a', 'y', 'h', 1), ('a', 'x', 'h', 1), ('a', 'gone', 'h', 0);
             -- What the earlier import left: no list for a, one for b.
             UPDATE nodes SET tag_list = NULL WHERE id = 'a';
             UPDATE nodes SET tag_list = 'z' WHERE id = 'b';",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let lists: Vec<Option<String>> = conn
            .prepare("SELECT tag_list FROM nodes ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lists, [Some("x\u{1f}y".to_owned()), None]);
    }

    #[test]
    fn migration_6_drops_the_tag_list_triggers() {
        let mut conn = at_version(5);
        let triggers = |conn: &Connection| -> i64 {
            conn.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(triggers(&conn), 3);
        migrate(&mut conn).unwrap();
        assert_eq!(triggers(&conn), 0);
    }
}
