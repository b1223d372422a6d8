//! A vocabulary of made-up words that look like words, drawn Zipf-like:
//! a few short words are everywhere, most words are long and rare, as in
//! real notes.

use std::collections::HashSet;

use crate::rng::Rng;

/// Number of distinct words.
pub const WORDS: usize = 30_000;

const ONSETS: &[&str] = &[
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br",
    "cr", "dr", "fl", "gr", "pl", "st", "tr", "ch", "sh", "th", "sp", "",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "ou", "io", "y"];
const CODAS: &[&str] = &[
    "", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck", "ng",
];

/// The words, most frequent first, and the cumulative Zipf weights used to
/// draw them.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    /// The vocabulary of `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed, u64::MAX);
        let mut seen = HashSet::with_capacity(WORDS);
        let mut words = Vec::with_capacity(WORDS);
        while words.len() < WORDS {
            let rank = words.len();
            // Common words are short; rare ones long (Zipf's law of
            // abbreviation), so lengths vary from 2 to about 14 letters.
            let syllables = match rank {
                0..=60 => 1,
                61..=1_500 => rng.between(1, 2),
                1_501..=12_000 => rng.between(2, 3),
                _ => rng.between(2, 4),
            };
            let mut word = String::new();
            for _ in 0..syllables {
                word.push_str(rng.pick::<&str>(ONSETS));
                word.push_str(rng.pick::<&str>(VOWELS));
                word.push_str(rng.pick::<&str>(CODAS));
            }
            if word.len() >= 2 && seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let mut total = 0.0;
        let cumulative = (0..WORDS)
            .map(|rank| {
                total += 1.0 / (rank as f64 + 1.0);
                total
            })
            .collect();
        Vocabulary { words, cumulative }
    }

    /// The word of a frequency rank (0 is the most frequent).
    pub fn word(&self, rank: usize) -> &str {
        &self.words[rank]
    }

    /// The frequency rank of a word, when it is in the vocabulary.
    pub fn rank(&self, word: &str) -> Option<usize> {
        self.words.iter().position(|w| w == word)
    }

    /// How many words there are.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Always false: a vocabulary has [`WORDS`] words.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// A rank drawn with probability proportional to `1 / (rank + 1)`.
    pub fn draw_rank(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative[self.cumulative.len() - 1];
        let target = rng.unit() * total;
        self.cumulative
            .partition_point(|&c| c <= target)
            .min(WORDS - 1)
    }

    /// A word drawn Zipf-like.
    pub fn draw(&self, rng: &mut Rng) -> &str {
        self.word(self.draw_rank(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_distinct_and_look_like_words() {
        let v = Vocabulary::new(7);
        assert_eq!(v.len(), WORDS);
        let distinct: HashSet<&str> = (0..WORDS).map(|r| v.word(r)).collect();
        assert_eq!(distinct.len(), WORDS);
        assert!((0..WORDS).all(|r| v.word(r).chars().all(|c| c.is_ascii_lowercase())));
        let long = (0..WORDS).filter(|&r| v.word(r).len() >= 8).count();
        assert!(long > WORDS / 4, "only {long} long words");
        assert!(v.word(0).len() <= 5);
    }

    #[test]
    fn draws_are_zipf_like() {
        let v = Vocabulary::new(7);
        let mut rng = Rng::new(1, 1);
        let draws: Vec<usize> = (0..100_000).map(|_| v.draw_rank(&mut rng)).collect();
        let top = draws.iter().filter(|&&r| r == 0).count();
        // P(rank 0) = 1 / H(30000) ≈ 0.093.
        assert!((8_000..10_500).contains(&top), "{top}");
        let rare = draws.iter().filter(|&&r| r >= 10_000).count();
        assert!((8_000..14_000).contains(&rare), "{rare}");
    }
}
