//! Full-text search: user text to an FTS5 query, ranked hits with snippets.

use heph_core::Kind;
use rusqlite::OptionalExtension;

use crate::{Replica, Result, StoreError};

/// One search result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchHit {
    /// Node id.
    pub id: String,
    /// Node kind.
    pub kind: Kind,
    /// Title.
    pub title: String,
    /// Matching text with the hits between `[` and `]`.
    pub snippet: String,
    /// Relevance (lower is better, bm25).
    pub rank: f64,
}

/// Most matches a search ranks. A query with more matches (every word
/// common, or a short prefix of common words) ranks only its newest
/// this-many: ranking many thousands of matches (a docsize lookup each)
/// blows the 20 ms budget and means little, while a query with a rare word
/// (a word from a title the user remembers) is ranked over all its
/// matches, so that title comes first.
const RANKED_MATCHES: i64 = 500;

/// Words of the search text, as FTS5 sees them.
fn query_words(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .collect()
}

/// Turns user search text into an FTS5 query: every word must match, the
/// last one as a prefix (search as you type). Quoting each word keeps FTS5
/// syntax characters in user input from becoming query errors.
pub(crate) fn fts_query(text: &str) -> Option<String> {
    let words = query_words(text);
    let last = words.last()?;
    // A prefix of one or two letters matches nearly everything and is slow
    // to expand; search as you type starts at three.
    let star = if last.chars().count() >= 3 { "*" } else { "" };
    let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
    Some(format!("{}{star}", quoted.join(" ")))
}

impl Replica {
    /// Full-text search over titles and bodies, best first (bm25, a
    /// title hit weighing ten body hits). Of a query with more than
    /// [`RANKED_MATCHES`] matches only the newest that many are ranked.
    pub fn search(&self, text: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let Some(query) = fts_query(text) else {
            return Ok(Vec::new());
        };
        // A last word of four letters or more is a prefix FTS5 expands
        // without an index, merging the doclists of every completion: for
        // a common word that is most of the search's time. A word with
        // more matches of its own than are ranked is searched as the word
        // (its completions would add little to what is found and ranked).
        let last = query_words(text).last().map(|w| w.to_owned());
        let common_last = match last.filter(|w| w.chars().count() >= 4) {
            Some(word) => self.newest_matches_floor(&format!("\"{word}\""))?.is_some(),
            None => false,
        };
        let query = match query.strip_suffix('*') {
            Some(exact) if common_last => exact.to_owned(),
            _ => query,
        };
        let floor = self.newest_matches_floor(&query)?.unwrap_or(i64::MIN);
        // FTS5 consumes `ORDER BY rank` itself and stops at the LIMIT, so
        // snippets are made for returned rows only.
        let mut stmt = self.conn.prepare_cached(
            "SELECT n.id, n.kind, n.title, snippet(nodes_fts, -1, '[', ']', '…', 12), nodes_fts.rank
             FROM nodes_fts JOIN nodes n ON n.rowid = nodes_fts.rowid
             WHERE nodes_fts MATCH ?1 AND nodes_fts.rowid >= ?3
             ORDER BY nodes_fts.rank LIMIT ?2",
        )?;
        let rows = stmt.query_map(rusqlite::params![query, limit as i64, floor], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, f64>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (id, kind, title, snippet, rank) = row?;
            let kind = kind
                .parse()
                .map_err(|e: heph_core::model::FieldError| StoreError::Corrupt(e.0))?;
            Ok(SearchHit {
                id,
                kind,
                title,
                snippet: snippet.unwrap_or_default(),
                rank,
            })
        })
        .collect()
    }

    /// The rowid of the [`RANKED_MATCHES`]-th newest match of an FTS5
    /// query (`None` when it has fewer): it bounds the ranked set, FTS5
    /// seeking its doclists there. Finding it walks the intersection of the
    /// words' doclists in rowid order and ranks nothing.
    fn newest_matches_floor(&self, query: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT rowid FROM nodes_fts WHERE nodes_fts MATCH ?1
                 ORDER BY rowid DESC LIMIT 1 OFFSET ?2",
            )?
            .query_row(rusqlite::params![query, RANKED_MATCHES - 1], |r| r.get(0))
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::fts_query;

    #[test]
    fn fts_query_quotes_words() {
        assert_eq!(fts_query("buy milk").as_deref(), Some("\"buy\" \"milk\"*"));
        assert_eq!(fts_query("\"OR (*").as_deref(), Some("\"OR\""));
        assert_eq!(
            fts_query("on the road").as_deref(),
            Some("\"on\" \"the\" \"road\"*")
        );
        assert_eq!(fts_query("  ** "), None);
    }
}
