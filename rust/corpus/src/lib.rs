//! heph-corpus: one deterministic benchmark corpus shaped like real notes
//! (DESIGN §11), used by every benchmark: the store and sync benches, the
//! Neovim benchmark and the side-by-side comparisons.
//!
//! `Corpus::new(seed, nodes)` describes `nodes` nodes: a third tasks, the
//! rest notes and one journal a day; titles of 3–7 words and bodies of
//! 40–160 words drawn Zipf-like from a 30,000-word vocabulary; 8 projects
//! (some with spaces), 2 of 5 tags per node, due dates over a year, some
//! done and cancelled tasks. The same seed gives the same corpus, op for
//! op, on every machine; any node can be generated alone ([`Corpus::node`]).

mod markdown;
mod queries;
mod rng;
mod vocabulary;

use std::collections::BTreeSet;

use heph_core::{Action, Field, Hlc, Kind, Node, Op, Status};
use time::{Date, Duration, Month};

pub use queries::{Query, QueryClass};
pub use rng::Rng;
pub use vocabulary::{Vocabulary, WORDS};

/// Projects; three have spaces in their names.
pub const PROJECTS: [&str; 8] = [
    "home",
    "work",
    "garden",
    "side project",
    "taxes",
    "reading list",
    "health",
    "house move",
];

/// Tags; every node has two of them.
pub const TAGS: [&str; 5] = ["urgent", "waiting", "idea", "errand", "someday"];

/// The origin stamped on every corpus op.
pub const ORIGIN: &str = "corpus";

/// The day the corpus was "written up to": nodes were created over the two
/// years before it; due dates spread over the year around it.
pub fn base_date() -> Date {
    Date::from_calendar_date(2026, Month::June, 1).unwrap_or(Date::MIN)
}

const DAY_MS: u64 = 86_400_000;
const SPAN_MS: u64 = 730 * DAY_MS;

/// What the corpus holds besides its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Every node is a task (no notes or journals), as in a task manager's
    /// data set (the TaskChampion comparison).
    pub tasks_only: bool,
    /// Nodes carry a body.
    pub bodies: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            tasks_only: false,
            bodies: true,
        }
    }
}

/// A deterministic corpus of `len` nodes.
#[derive(Debug, Clone)]
pub struct Corpus {
    seed: u64,
    len: usize,
    shape: Shape,
    vocabulary: Vocabulary,
}

/// One generated node: the node a replica holds once it has applied the
/// node's ops ([`CorpusNode::ops`]), and its position in the corpus. Reads
/// as a [`Node`] (`node.title`, `node.tags`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusNode {
    /// Position in the corpus.
    pub index: usize,
    /// The node: id UUIDv7-shaped or `journal-YYYY-MM-DD`; a title of 3–7
    /// words (a journal's is its date); a body of 40–160 words in lines and
    /// paragraphs, newline-terminated (empty without bodies); every task's
    /// project and some notes'; two tags; `version` empty (a replica's
    /// own).
    pub node: Node,
}

impl std::ops::Deref for CorpusNode {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.node
    }
}

impl Corpus {
    /// The corpus of `seed` with `nodes` nodes, shaped like real notes.
    pub fn new(seed: u64, nodes: usize) -> Self {
        Self::with_shape(seed, nodes, Shape::default())
    }

    /// The corpus of `seed` with `nodes` nodes of the given shape.
    pub fn with_shape(seed: u64, nodes: usize, shape: Shape) -> Self {
        Corpus {
            seed,
            len: nodes,
            shape,
            vocabulary: Vocabulary::new(seed),
        }
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the corpus has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The words bodies and titles are drawn from.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    fn created_ms(&self, index: usize) -> u64 {
        let base = base_date().midnight().assume_utc().unix_timestamp() as u64 * 1000;
        let step = SPAN_MS / self.len.max(1) as u64;
        base - SPAN_MS + index as u64 * step
    }

    fn kind(&self, index: usize) -> Kind {
        if self.shape.tasks_only {
            return Kind::Task;
        }
        // The first node of each day is that day's journal.
        let day = |i: usize| self.created_ms(i) / DAY_MS;
        if index == 0 || day(index) != day(index - 1) {
            Kind::Journal
        } else if index % 3 == 1 {
            Kind::Task
        } else {
            Kind::Note
        }
    }

    /// Node `index` (`index < len`), generated alone.
    pub fn node(&self, index: usize) -> CorpusNode {
        let mut rng = Rng::new(self.seed, index as u64);
        let created_ms = self.created_ms(index);
        let kind = self.kind(index);
        let (id, title) = match kind {
            Kind::Journal => {
                let date = date_of(created_ms);
                (
                    heph_core::id::journal_id(date),
                    heph_core::model::format_date(date),
                )
            }
            _ => (uuid_v7_text(created_ms, &mut rng), self.title(&mut rng)),
        };
        let body = if self.shape.bodies {
            self.body(&mut rng)
        } else {
            String::new()
        };
        let (status, due) = if kind == Kind::Task {
            let roll = rng.below(100);
            let status = match roll {
                0..=5 => Status::Done,
                6 => Status::Cancelled,
                7..=10 => Status::Doing,
                _ => Status::Todo,
            };
            let due = rng
                .chance(0.7)
                .then(|| base_date() + Duration::days(rng.between(0, 365) as i64 - 60));
            (Some(status), due)
        } else {
            (None, None)
        };
        let project = match kind {
            Kind::Task => Some(*rng.pick(&PROJECTS)),
            Kind::Note if rng.chance(0.4) => Some(*rng.pick(&PROJECTS)),
            _ => None,
        }
        .map(str::to_owned);
        let first = rng.below(TAGS.len() as u64) as usize;
        let second = (first + 1 + rng.below(TAGS.len() as u64 - 1) as usize) % TAGS.len();
        let tags: BTreeSet<String> = [TAGS[first], TAGS[second]]
            .into_iter()
            .map(str::to_owned)
            .collect();
        // One op per value, a millisecond apart (see `CorpusNode::ops`).
        let op_count = 2
            + usize::from(!body.is_empty())
            + usize::from(status.is_some())
            + usize::from(due.is_some())
            + usize::from(project.is_some())
            + tags.len();
        CorpusNode {
            index,
            node: Node {
                id,
                kind,
                title,
                body,
                status,
                due,
                project,
                tags,
                created_ms,
                updated_ms: created_ms + op_count as u64 - 1,
                deleted: false,
                version: String::new(),
            },
        }
    }

    /// Every node, in creation order.
    pub fn nodes(&self) -> impl Iterator<Item = CorpusNode> + '_ {
        (0..self.len).map(|i| self.node(i))
    }

    /// Every op, node by node in creation order (what `heph import-ops`
    /// reads, one JSON object a line).
    pub fn ops(&self) -> impl Iterator<Item = Op> + '_ {
        self.nodes().flat_map(|node| node.ops(self.seed))
    }

    fn title(&self, rng: &mut Rng) -> String {
        let n = rng.between(3, 7);
        let mut title = String::new();
        for i in 0..n {
            let word = self.vocabulary.draw(rng);
            if i == 0 {
                title.push_str(&capitalize(word));
            } else {
                title.push(' ');
                title.push_str(word);
            }
        }
        title
    }

    fn body(&self, rng: &mut Rng) -> String {
        let total = rng.between(40, 160);
        let mut body = String::new();
        let mut written = 0;
        let mut lines_in_paragraph = 0;
        while written < total {
            let words = rng.between(6, 16).min(total - written);
            if rng.chance(0.15) {
                body.push_str("- ");
            }
            for i in 0..words {
                let word = self.vocabulary.draw(rng);
                if i == 0 {
                    body.push_str(&capitalize(word));
                } else {
                    body.push(' ');
                    body.push_str(word);
                }
            }
            body.push_str(".\n");
            written += words;
            lines_in_paragraph += 1;
            if lines_in_paragraph >= rng.between(2, 4) && written < total {
                body.push('\n');
                lines_in_paragraph = 0;
            }
        }
        body
    }
}

impl CorpusNode {
    /// The ops that create this node: create, title, body, status, due,
    /// project, tags. Stamped from its creation time, one ms apart, so a
    /// replica that applies them holds exactly these values.
    pub fn ops(&self, seed: u64) -> Vec<Op> {
        let mut actions = vec![
            Action::Create { kind: self.kind },
            Action::Set {
                field: Field::Title,
                value: Some(self.title.clone()),
            },
        ];
        if !self.body.is_empty() {
            actions.push(Action::SetBody {
                body: self.body.clone(),
                base: Vec::new(),
            });
        }
        let mut set = |field, value: Option<String>| {
            if let Some(value) = value {
                actions.push(Action::Set {
                    field,
                    value: Some(value),
                });
            }
        };
        set(Field::Status, self.status.map(|s| s.to_string()));
        set(Field::Due, self.due.map(heph_core::model::format_date));
        set(Field::Project, self.project.clone());
        actions.extend(
            self.tags
                .iter()
                .map(|tag| Action::AddTag { tag: tag.clone() }),
        );
        // Op ids come from their own stream so they do not shift the
        // node's content when the op list changes.
        let mut rng = Rng::new(seed ^ 0x6f70_5f69_6473_u64, self.index as u64);
        actions
            .into_iter()
            .enumerate()
            .map(|(k, action)| {
                let millis = self.created_ms + k as u64;
                Op {
                    op_id: uuid_v7_text(millis, &mut rng),
                    hlc: Hlc {
                        millis,
                        counter: 0,
                        origin: ORIGIN.to_owned(),
                    },
                    node: self.id.clone(),
                    action,
                }
            })
            .collect()
    }
}

/// The day (UTC) of a time in ms.
fn date_of(ms: u64) -> Date {
    let days = (ms / DAY_MS) as i64;
    Date::from_calendar_date(1970, Month::January, 1).unwrap_or(Date::MIN) + Duration::days(days)
}

/// UUIDv7 text for a time, with random bits from `rng`.
fn uuid_v7_text(ms: u64, rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
        (ms >> 16) & 0xffff_ffff,
        ms & 0xffff,
        a & 0xfff,
        0x8000 | ((a >> 12) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_random_access() {
        let a = Corpus::new(7, 3000);
        let b = Corpus::new(7, 3000);
        assert_eq!(a.node(1234), b.node(1234));
        assert_eq!(a.nodes().nth(1234).unwrap(), a.node(1234));
        let ops_a: Vec<Op> = a.ops().take(500).collect();
        let ops_b: Vec<Op> = b.ops().take(500).collect();
        assert_eq!(ops_a, ops_b);
        assert_ne!(Corpus::new(8, 3000).node(5), a.node(5));
    }

    #[test]
    fn has_the_shape_of_real_notes() {
        let corpus = Corpus::new(7, 30_000);
        let nodes: Vec<CorpusNode> = corpus.nodes().collect();
        let tasks = nodes.iter().filter(|n| n.kind == Kind::Task).count();
        assert!((9_500..10_500).contains(&tasks), "{tasks} tasks");
        let journals = nodes.iter().filter(|n| n.kind == Kind::Journal).count();
        assert!((700..=732).contains(&journals), "{journals} journals");
        let ids: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids.len(), nodes.len(), "ids are unique");
        for node in &nodes {
            assert!(heph_core::id::is_valid_node_id(&node.id), "{}", node.id);
            assert_eq!(node.tags.len(), 2);
            let words = node.body.split_whitespace().filter(|w| *w != "-").count();
            assert!((40..=160).contains(&words), "{words} words");
            if node.kind != Kind::Journal {
                let title_words = node.title.split(' ').count();
                assert!((3..=7).contains(&title_words), "{}", node.title);
            }
            if node.kind == Kind::Task {
                assert!(node.project.is_some() && node.status.is_some());
            }
        }
        let done = nodes
            .iter()
            .filter(|n| n.status == Some(Status::Done))
            .count();
        assert!(done > 0);
        let projects: BTreeSet<&str> = nodes.iter().filter_map(|n| n.project.as_deref()).collect();
        assert_eq!(projects.len(), PROJECTS.len());
    }

    #[test]
    fn ops_are_valid_and_carry_the_values() {
        let corpus = Corpus::new(3, 2000);
        for node in corpus.nodes().take(200) {
            let ops = node.ops(3);
            for op in &ops {
                op.validate().expect("valid op");
                assert_eq!(op.node, node.id);
            }
            assert_eq!(ops[0].hlc.millis, node.created_ms);
            assert_eq!(ops.last().unwrap().hlc.millis, node.updated_ms);
            assert!(ops.iter().any(|op| matches!(&op.action,
                Action::Set { field: Field::Title, value: Some(t) } if *t == node.title)));
        }
    }

    #[test]
    fn tasks_only_without_bodies() {
        let corpus = Corpus::with_shape(
            7,
            1000,
            Shape {
                tasks_only: true,
                bodies: false,
            },
        );
        assert!(corpus
            .nodes()
            .all(|n| n.kind == Kind::Task && n.body.is_empty()));
        assert!(corpus
            .ops()
            .all(|op| !matches!(op.action, Action::SetBody { .. })));
    }
}
