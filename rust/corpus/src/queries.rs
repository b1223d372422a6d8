//! A mixed search query set over the corpus, the same for every tool that
//! is measured with it (heph, ripgrep).

use heph_core::Kind;

use crate::rng::Rng;
use crate::Corpus;

/// What kind of query it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryClass {
    /// One word drawn Zipf-like: often a very common word.
    OneWord,
    /// Two words drawn Zipf-like.
    TwoWords,
    /// A common word then the first three letters of another word: what
    /// search-as-you-type sends, and the slowest shape for an index.
    CommonThenPrefix,
    /// The rarest word of some node's title.
    RareTitleWord,
}

impl QueryClass {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            QueryClass::OneWord => "one-word",
            QueryClass::TwoWords => "two-words",
            QueryClass::CommonThenPrefix => "common+prefix",
            QueryClass::RareTitleWord => "rare-title-word",
        }
    }
}

/// One search query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Its class.
    pub class: QueryClass,
    /// The text typed.
    pub text: String,
    /// For [`QueryClass::RareTitleWord`]: the node whose title holds it.
    pub title_of: Option<String>,
}

impl Corpus {
    /// `per_class` queries of each class, interleaved, deterministic.
    pub fn queries(&self, per_class: usize) -> Vec<Query> {
        let mut rng = Rng::new(self.seed() ^ 0x0071_7565_7279, 0);
        let vocabulary = self.vocabulary();
        let mut out = Vec::with_capacity(per_class * 4);
        for _ in 0..per_class {
            out.push(Query {
                class: QueryClass::OneWord,
                text: vocabulary.draw(&mut rng).to_owned(),
                title_of: None,
            });
            out.push(Query {
                class: QueryClass::TwoWords,
                text: format!(
                    "{} {}",
                    vocabulary.draw(&mut rng),
                    vocabulary.draw(&mut rng)
                ),
                title_of: None,
            });
            let common = vocabulary.word(rng.below(30) as usize);
            let last = loop {
                let word = vocabulary.draw(&mut rng);
                if word.len() >= 5 {
                    break word;
                }
            };
            out.push(Query {
                class: QueryClass::CommonThenPrefix,
                text: format!("{common} {}", &last[..3]),
                title_of: None,
            });
            if !self.is_empty() {
                let node = loop {
                    let node = self.node(rng.below(self.len() as u64) as usize);
                    if node.kind != Kind::Journal {
                        break node;
                    }
                };
                let rarest = node
                    .title
                    .split(' ')
                    .map(str::to_lowercase)
                    .max_by_key(|w| vocabulary.rank(w).unwrap_or(0))
                    .unwrap_or_default();
                out.push(Query {
                    class: QueryClass::RareTitleWord,
                    text: rarest,
                    title_of: Some(node.node.id),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_and_deterministic() {
        let corpus = Corpus::new(7, 1000);
        let queries = corpus.queries(10);
        assert_eq!(queries.len(), 40);
        assert_eq!(queries, corpus.queries(10));
        for q in &queries {
            assert!(!q.text.is_empty());
            if q.class == QueryClass::CommonThenPrefix {
                let last = q.text.split(' ').nth(1).unwrap();
                assert_eq!(last.len(), 3);
            }
        }
        let rare = queries
            .iter()
            .find(|q| q.class == QueryClass::RareTitleWord)
            .unwrap();
        let id = rare.title_of.as_ref().unwrap();
        let node = corpus.nodes().find(|n| &n.id == id).unwrap();
        assert!(node.title.to_lowercase().contains(&rare.text));
    }
}
