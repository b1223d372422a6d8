//! `--db` naming a file that is not a hub database: the hub refuses it by
//! name and leaves it as it was.

use heph_hub::open_private;

/// Opens `path` as the hub database, which must fail; the error's text.
fn refused(path: &std::path::Path) -> String {
    match open_private(path) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{} was opened as a hub database", path.display()),
    }
}

#[test]
fn a_devices_replica_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    {
        // The tables that make a file a replica (heph-store's schema).
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
             CREATE TABLE nodes (id TEXT PRIMARY KEY, title TEXT);
             INSERT INTO nodes VALUES ('n1', 'Buy milk');
             PRAGMA user_version = 6;",
        )
        .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let message = refused(&path);
    assert!(message.contains("replica.db"), "{message}");
    assert!(message.contains("replica, not a hub database"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "the replica changed");
    let tables: Vec<String> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["meta", "nodes"]);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let text = "garbage, not a database\n".repeat(100);
    std::fs::write(&path, &text).unwrap();
    let message = refused(&path);
    assert!(message.contains("notes.txt"), "{message}");
    assert!(message.contains("not an SQLite database"), "{message}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn a_path_under_a_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, "").unwrap();
    let message = refused(&file.join("hub.db"));
    assert!(message.contains("afile/hub.db"), "{message}");
}

#[test]
fn a_new_file_and_an_existing_hub_database_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    drop(open_private(&path).unwrap());
    drop(open_private(&path).unwrap());
}
