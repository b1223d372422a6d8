//! The replica's tables hold every field of the field table
//! (`heph_core::fields::FIELDS`): a scalar field is a `nodes` column of its
//! name with a `NAME_hlc` stamp column beside it; the tag set is the
//! `tags` table. Adding an entry without its migration fails here.

use heph_core::fields::FIELDS;
use heph_store::Replica;

fn columns(conn: &rusqlite::Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn every_field_has_its_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    drop(Replica::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let nodes = columns(&conn, "nodes");
    for def in FIELDS {
        match def.scalar {
            Some(_) => {
                for column in [def.name.to_owned(), format!("{}_hlc", def.name)] {
                    assert!(nodes.contains(&column), "nodes has no column {column}");
                }
            }
            None => assert_eq!(
                columns(&conn, def.name),
                ["node", "tag", "hlc", "present"],
                "the set field {} has no table of its own",
                def.name
            ),
        }
    }
}
