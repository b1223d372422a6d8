//! Full-text search: user text to an FTS5 query, ranked hits with snippets.

use std::collections::{HashMap, HashSet};

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

/// A word in more than one node in this many is common: left out of the
/// ranking (see [`Replica::search`]).
const COMMON_SHARE: i64 = 4;

/// Words of the search text, as FTS5 sees them.
fn query_words(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphanumeric() && c != '_' && !is_combining_mark(c))
        .filter(|w| !w.is_empty())
        .collect()
}

/// A combining diacritic: part of its word, as the index reads it
/// (`remove_diacritics` folds it into the letter before), so `résumé`
/// typed decomposed (`e` + U+0301, as some keyboards and macOS file names
/// give it) is one word, not `r` and `sume`.
fn is_combining_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}')
}

/// The phrases of a search: every word must match, the last one as a
/// prefix (search as you type) unless `exact_last`. Quoting each word
/// keeps FTS5 syntax characters in user input from becoming query errors.
fn fts_phrases(text: &str, exact_last: bool) -> Vec<String> {
    let words = query_words(text);
    let count = words.len();
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            // A prefix of one or two letters matches nearly everything and
            // is slow to expand; search as you type starts at three.
            let star = i + 1 == count && !exact_last && w.chars().count() >= 3;
            format!("\"{w}\"{}", if star { "*" } else { "" })
        })
        .collect()
}

/// Turns user search text into an FTS5 query (see [`fts_phrases`]).
pub(crate) fn fts_query(text: &str) -> Option<String> {
    let phrases = fts_phrases(text, false);
    (!phrases.is_empty()).then(|| phrases.join(" "))
}

/// A search's rows before snippets: node rowids, best first, with their
/// rank.
type Ranked = Vec<(i64, f64)>;

impl Replica {
    /// Full-text search over titles and bodies, best first (bm25, a
    /// title hit weighing ten body hits). Of a query with more than
    /// [`RANKED_MATCHES`] matches only the newest that many are ranked.
    ///
    /// bm25 weighs a word by how many nodes hold it, which FTS5 counts by
    /// reading the word's whole doclist on every query (≈ 10 ms for a word
    /// in every node, 3–8 ms for one in a third of them). A word in more
    /// than a quarter of the nodes weighs little in bm25 (its idf is below
    /// ln 3 ≈ 1.1, against ≈ 7 for a word in a hundred nodes, and clamped
    /// to nothing above half), so such common words are left out of the
    /// ranking: they still have to match, and snippets still mark them.
    /// When every word is common, title matches come first, then the
    /// newest matches (rank 0).
    pub fn search(&self, text: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let words = query_words(text);
        let Some(last) = words.last() else {
            return Ok(Vec::new());
        };
        // A last word of four letters or more is a prefix FTS5 expands
        // without an index, merging the doclists of every completion: for
        // a common word that is most of the search's time. A word with
        // more matches of its own than are ranked is searched as the word
        // (its completions would add little to what is found and ranked).
        let common_last =
            last.chars().count() >= 4 && self.newest_match(&format!("\"{last}\""))?.is_some();
        let phrases = fts_phrases(text, common_last);
        let query = phrases.join(" ");
        let floor = self.newest_match(&query)?.unwrap_or(i64::MIN);
        let mut selective = Vec::new();
        let top = self.top_rowid()?;
        for phrase in &phrases {
            if !self.is_common(phrase, top)? {
                selective.push(phrase.as_str());
            }
        }
        if selective.len() == phrases.len() {
            return self.ranked_with_snippets(&query, floor, limit);
        }
        let ranked = if selective.is_empty() {
            self.titles_then_newest(&query, floor, limit)?
        } else {
            self.ranked_by(&selective.join(" "), &query, floor, limit)?
        };
        self.with_snippets(&query, &ranked)
    }

    /// The rowid of the [`RANKED_MATCHES`]-th newest match of an FTS5
    /// query (`None` when it has fewer): it bounds the ranked set, FTS5
    /// seeking its doclists there. Finding it walks the intersection of the
    /// words' doclists in rowid order and ranks nothing.
    fn newest_match(&self, query: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT rowid FROM nodes_fts WHERE nodes_fts MATCH ?1
                 ORDER BY rowid DESC LIMIT 1 OFFSET ?2",
            )?
            .query_row(rusqlite::params![query, RANKED_MATCHES - 1], |r| r.get(0))
            .optional()?)
    }

    /// The newest node's rowid (0 in an empty replica).
    fn top_rowid(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT coalesce(max(rowid), 0) FROM nodes")?
            .query_row([], |r| r.get(0))?)
    }

    /// Whether a phrase is in more than a quarter of the nodes ([`COMMON_SHARE`]),
    /// estimated from the newest ones (cheap: it reads [`RANKED_MATCHES`]
    /// entries of the doclist): its newest that-many matches lie within
    /// the newest `COMMON_SHARE` times that-many nodes.
    fn is_common(&self, phrase: &str, top: i64) -> Result<bool> {
        Ok(match self.newest_match(phrase)? {
            Some(rowid) => top - rowid < COMMON_SHARE * RANKED_MATCHES,
            None => false,
        })
    }

    /// Every word weighs in the ranking: one FTS5 query ranks and makes
    /// snippets for the returned rows only (FTS5 consumes `ORDER BY rank`
    /// and stops at the LIMIT).
    fn ranked_with_snippets(
        &self,
        query: &str,
        floor: i64,
        limit: usize,
    ) -> Result<Vec<SearchHit>> {
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
            hit(id, &kind, title, snippet, rank)
        })
        .collect()
    }

    /// Matches of `query` from `floor` on, ranked by bm25 over the
    /// `rank_query` (its selective words only).
    fn ranked_by(&self, rank_query: &str, query: &str, floor: i64, limit: usize) -> Result<Ranked> {
        // At most the newest RANKED_MATCHES matches, or fewer in all.
        let matches: HashSet<i64> = self
            .conn
            .prepare_cached("SELECT rowid FROM nodes_fts WHERE nodes_fts MATCH ?1 AND rowid >= ?2")?
            .query_map(rusqlite::params![query, floor], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT rowid, rank FROM nodes_fts WHERE nodes_fts MATCH ?1 AND rowid >= ?2
             ORDER BY rank",
        )?;
        let mut rows = stmt.query(rusqlite::params![rank_query, floor])?;
        let mut ranked = Vec::new();
        while ranked.len() < limit.min(matches.len()) {
            let Some(row) = rows.next()? else { break };
            let rowid: i64 = row.get(0)?;
            if matches.contains(&rowid) {
                ranked.push((rowid, row.get(1)?));
            }
        }
        Ok(ranked)
    }

    /// Matches of `query` from `floor` on that hold every word in the
    /// title, newest first, then the other matches, newest first.
    fn titles_then_newest(&self, query: &str, floor: i64, limit: usize) -> Result<Ranked> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT rowid FROM nodes_fts WHERE nodes_fts MATCH ?1 AND rowid >= ?2
             ORDER BY rowid DESC LIMIT ?3",
        )?;
        let mut newest = |q: &str| -> Result<Vec<i64>> {
            Ok(stmt
                .query_map(rusqlite::params![q, floor, limit as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        };
        let mut order = newest(&format!("{{title}} : ({query})"))?;
        let in_titles: HashSet<i64> = order.iter().copied().collect();
        order.extend(
            newest(query)?
                .into_iter()
                .filter(|r| !in_titles.contains(r)),
        );
        order.truncate(limit);
        Ok(order.into_iter().map(|rowid| (rowid, 0.0)).collect())
    }

    /// Hits for ranked rowids, in their order, with snippets of `query`.
    /// One pass over the query's matches between the lowest and the
    /// highest rowid makes snippets for the ranked rows only (a query per
    /// row would seek every word's doclist again, ≈ 0.3 ms each).
    fn with_snippets(&self, query: &str, ranked: &Ranked) -> Result<Vec<SearchHit>> {
        let (Some(low), Some(high)) = (
            ranked.iter().map(|r| r.0).min(),
            ranked.iter().map(|r| r.0).max(),
        ) else {
            return Ok(Vec::new());
        };
        let wanted: String = ranked
            .iter()
            .map(|r| format!(",{}", r.0))
            .collect::<String>()
            + ",";
        let mut stmt = self.conn.prepare_cached(
            "SELECT nodes_fts.rowid, n.id, n.kind, n.title,
                    CASE WHEN instr(?4, ',' || nodes_fts.rowid || ',') > 0
                         THEN coalesce(snippet(nodes_fts, -1, '[', ']', '…', 12), '') END
             FROM nodes_fts JOIN nodes n ON n.rowid = nodes_fts.rowid
             WHERE nodes_fts MATCH ?1 AND nodes_fts.rowid >= ?2 AND nodes_fts.rowid <= ?3",
        )?;
        let mut rows = stmt.query(rusqlite::params![query, low, high, wanted])?;
        let mut found = HashMap::new();
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            if let Some(snippet) = row.get::<_, Option<String>>(4)? {
                found.insert(
                    rowid,
                    (row.get(1)?, row.get::<_, String>(2)?, row.get(3)?, snippet),
                );
            }
        }
        ranked
            .iter()
            .filter_map(|(rowid, rank)| {
                let (id, kind, title, snippet) = found.remove(rowid)?;
                Some(hit(id, &kind, title, Some(snippet), *rank))
            })
            .collect()
    }
}

/// One hit from its columns.
fn hit(
    id: String,
    kind: &str,
    title: String,
    snippet: Option<String>,
    rank: f64,
) -> Result<SearchHit> {
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
