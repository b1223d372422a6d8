//! Deterministic merge of concurrent body edits.
//!
//! Every body version records the versions its author saw (`base`). The body
//! of a node is a pure function of the *set* of versions — any order, any
//! duplicates, the same bytes on every replica:
//!
//! - A version is identified by its stamp and op id, `(hlc, op_id)`; versions
//!   are ordered by that pair. A `base` lists stamps only, so a stamp shared by
//!   several versions refers to all of them (only versions stamped strictly
//!   earlier can be a base: a broken clock cannot make a cycle).
//! - The *heads* are the versions no other version was edited from. One head
//!   is the body. Several heads are merged git-style, in stamp order: each
//!   head is merged into the result so far from their common ancestor; when
//!   there are several best common ancestors (criss-cross, or several
//!   bodies written from nothing), they are first merged into one virtual
//!   ancestor, recursively: the text a device shows for exactly those
//!   versions, conflict blocks included, as authors edited from it. The
//!   lines that ancestor shares with the head
//!   are put in the head's order, and the result so far follows that order
//!   too: merges that ordered the same concurrent lines differently must
//!   not make them look moved (a conflict around them, or a duplicate).
//! - The three-way merge is line-wise. Changes to different places both
//!   apply. Insertions at the same place (two devices adding to an empty
//!   journal, both appending) are all kept, in stamp order, without markers.
//!   Only changes to the same lines of the ancestor conflict; each such
//!   region becomes exactly one conflict block, never nested:
//!
//! ```text
//! <<<<<<< device 1a2b3c · 2026-11-30 14:02:37 UTC
//! the side stamped first
//! =======
//! the side stamped later
//! >>>>>>> device 9f8e7d · 2026-11-30 14:05:12 UTC
//! ```
//!
//! A side is named by the head it comes from ([`side_label`]: the first six
//! characters of the head's origin and its clock time in UTC), so the block
//! reads the same on every device. Sides are in the order of their labels
//! (the second, then the device; then their text); identical sides
//! appear once. With three or more sides the separator before each middle
//! side names it (`======= device … · … UTC`). When a later head conflicts
//! with a region that already holds a block, the block grows a side instead
//! of nesting. A block is one unit of the text, whether this merge made it
//! or a version's text holds it whole (a device showed it and its author
//! kept it): kept by two authors it stays once, resolved by one it is
//! replaced whole, and a conflict with it grows its sides. Nothing is ever
//! silently dropped.

pub(crate) mod diff;

use std::collections::HashMap;

use crate::hlc::Hlc;

/// One body version (a set-body op).
#[derive(Debug, Clone, Copy)]
pub struct BodyVersion<'a> {
    /// The op's clock stamp.
    pub hlc: &'a Hlc,
    /// The op's id; with the stamp it identifies the version.
    pub op_id: &'a str,
    /// Stamps of the versions the author saw when editing.
    pub base: &'a [Hlc],
    /// The text the author saved.
    pub body: &'a str,
}

/// The merged body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedBody {
    /// The text.
    pub text: String,
    /// Stamps of the heads, sorted and without repeats: the `base` for the
    /// next edit.
    pub heads: Vec<Hlc>,
    /// The heads as `(hlc, op_id)`, in that order.
    pub head_versions: Vec<(Hlc, String)>,
    /// Conflict blocks in `text` made by this merge.
    pub conflicts: usize,
    /// How many three-way merges ran (heads − 1).
    pub merges: usize,
}

/// Computes the body from a set of versions, in any order, duplicates allowed.
pub fn merge_body(versions: &[BodyVersion<'_>]) -> MergedBody {
    let mut sorted: Vec<BodyVersion<'_>> = versions.to_vec();
    // The full key makes even a forged duplicate id resolve the same way.
    sorted.sort_by(|a, b| (a.hlc, a.op_id, a.body, a.base).cmp(&(b.hlc, b.op_id, b.body, b.base)));
    sorted.dedup_by(|a, b| a.hlc == b.hlc && a.op_id == b.op_id);
    let graph = Graph::new(&sorted);
    let heads = graph.heads();
    let mut lines = Lines::default();
    let mut memo = HashMap::new();
    let (doc, merges) = match heads.as_slice() {
        [] => (Doc::default(), 0),
        _ => (
            graph.merge_heads(&mut lines, &heads, &mut memo),
            heads.len() - 1,
        ),
    };
    // Blocks this merge made; not one a version's text held already, nor
    // such a block that both sides edited inside.
    let conflicts = doc
        .toks
        .iter()
        .filter(|&&t| lines.is_block(t) && !lines.from_text.contains(&t))
        .count();
    let text = lines.render(&doc);
    let mut head_stamps: Vec<Hlc> = heads.iter().map(|&i| sorted[i].hlc.clone()).collect();
    head_stamps.dedup();
    MergedBody {
        text,
        heads: head_stamps,
        head_versions: heads
            .iter()
            .map(|&i| (sorted[i].hlc.clone(), sorted[i].op_id.to_owned()))
            .collect(),
        conflicts,
        merges,
    }
}

/// How a conflict block names the side that comes from the version stamped
/// `hlc`: `device <first 6 characters of the origin> · <YYYY-MM-DD HH:MM:SS>
/// UTC`. Sides are ordered by it (then by their text), so the version
/// written first is on top to the second, and a block orders its sides the
/// same whether this merge made it or read it back from a text.
pub fn side_label(hlc: &Hlc) -> String {
    let short: String = hlc.origin.chars().take(6).collect();
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let when = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(hlc.millis) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok());
    match when {
        Some(when) => format!("device {short} · {when} UTC"),
        None => format!("device {short} · {hlc}"),
    }
}

/// How many conflict blocks of `text` (whole, with heph's labels) `seen`
/// does not hold: the blocks a reader of `seen` has not met yet.
pub fn blocks_not_in(text: &str, seen: &str) -> usize {
    let mut lines = Lines::default();
    let known: std::collections::HashSet<u32> = lines
        .doc(seen)
        .toks
        .into_iter()
        .filter(|&t| lines.is_block(t))
        .collect();
    lines
        .doc(text)
        .toks
        .into_iter()
        .filter(|&t| lines.is_block(t) && !known.contains(&t))
        .count()
}

/// A label as [`side_label`] writes it, read back: the second it names
/// (Unix milliseconds) and the device. Labels to the minute, as earlier
/// versions wrote them, read too. `None` for any other text after a marker
/// (a quoted git conflict's `HEAD`): such lines are the user's text.
fn parse_label(label: &str) -> Option<(u64, &str)> {
    let (device, when) = label.strip_prefix("device ")?.split_once(" · ")?;
    if device.is_empty() || device.contains(char::is_whitespace) {
        return None;
    }
    let when = when.strip_suffix(" UTC")?;
    let seconds =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let minutes = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    let at = time::PrimitiveDateTime::parse(when, seconds)
        .or_else(|_| time::PrimitiveDateTime::parse(when, minutes))
        .ok()?
        .assume_utc();
    Some((u64::try_from(at.unix_timestamp()).ok()? * 1000, device))
}

/// A marker line's label when it is one [`side_label`] writes.
fn heph_label<'l>(line: &'l str, marker: &str) -> Option<&'l str> {
    let label = line.strip_prefix(marker)?.strip_prefix(' ')?;
    parse_label(label).map(|_| label)
}

/// Opening line of a conflict block (followed by a space and a label).
pub const CONFLICT_START: &str = "<<<<<<<";
/// Separator line between the sides of a conflict block.
pub const CONFLICT_SEPARATOR: &str = "=======";
/// Closing line of a conflict block (followed by a space and a label).
pub const CONFLICT_END: &str = ">>>>>>>";

/// A text as interned lines, plus whether it ends with a newline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Doc {
    toks: Vec<u32>,
    newline: bool,
}

/// One side of a conflict block: its label and its lines. Sides are
/// ordered by what their label says (the second, then the device), then by
/// their text: only what the block shows, so a block reads the same
/// whether this merge made it or read it back from a text.
#[derive(Debug, Clone)]
struct Side {
    label: String,
    toks: Vec<u32>,
}

/// How a version names the sides it brings to a block.
#[derive(Debug, Clone)]
struct Author {
    label: String,
}

#[derive(Debug)]
enum Item {
    Line(String),
    Block(Vec<Side>),
}

/// The interned lines and conflict blocks of one merge. A block is one
/// token, whether this merge made it or a text held it (as a device showed
/// it, read back from its marker lines): the same block in two texts is the
/// same token, so an edit elsewhere leaves it alone, a resolution replaces
/// it whole, and an edit inside it changes it whole (a conflict with it
/// grows its sides instead of nesting).
#[derive(Debug, Default)]
struct Lines {
    index: HashMap<String, u32>,
    blocks: HashMap<String, u32>,
    items: Vec<Item>,
    /// Blocks that were there before this merge: read from a version's
    /// text, or such a block with both inputs' edits inside it.
    from_text: std::collections::HashSet<u32>,
}

impl Lines {
    fn line(&mut self, text: &str) -> u32 {
        if let Some(&t) = self.index.get(text) {
            return t;
        }
        let t = self.items.len() as u32;
        self.items.push(Item::Line(text.to_owned()));
        self.index.insert(text.to_owned(), t);
        t
    }

    fn block(&mut self, sides: Vec<Side>) -> u32 {
        let text = self.block_lines(&sides).join("\n");
        if let Some(&t) = self.blocks.get(&text) {
            return t;
        }
        let t = self.items.len() as u32;
        self.items.push(Item::Block(sides));
        self.blocks.insert(text, t);
        t
    }

    fn is_block(&self, t: u32) -> bool {
        matches!(self.items[t as usize], Item::Block(_))
    }

    /// The sides of block `t`; none for a line.
    fn sides(&self, t: u32) -> &[Side] {
        match &self.items[t as usize] {
            Item::Block(sides) => sides,
            Item::Line(_) => &[],
        }
    }

    /// The marker and text lines of a block with `sides`.
    fn block_lines(&self, sides: &[Side]) -> Vec<String> {
        let mut out = vec![format!("{CONFLICT_START} {}", sides[0].label)];
        for (k, side) in sides.iter().enumerate() {
            if k > 0 && k + 1 < sides.len() {
                out.push(format!("{CONFLICT_SEPARATOR} {}", side.label));
            } else if k > 0 {
                out.push(CONFLICT_SEPARATOR.to_owned());
            }
            for &l in &side.toks {
                if let Item::Line(l) = &self.items[l as usize] {
                    out.push(l.clone());
                }
            }
        }
        let last = sides.last().expect("a block has sides");
        out.push(format!("{CONFLICT_END} {}", last.label));
        out
    }

    fn doc(&mut self, text: &str) -> Doc {
        if text.is_empty() {
            return Doc::default();
        }
        let newline = text.ends_with('\n');
        let body = if newline {
            &text[..text.len() - 1]
        } else {
            text
        };
        let raw: Vec<&str> = body.split('\n').collect();
        let mut toks = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            if let Some((len, t)) = self.read_block(&raw[i..]) {
                toks.push(t);
                i += len;
            } else {
                toks.push(self.line(raw[i]));
                i += 1;
            }
        }
        Doc { toks, newline }
    }

    /// A block at the start of `raw`, as [`Lines::block_lines`] writes one
    /// (anything else there is plain lines): its length and token. Only
    /// markers with heph's labels count (a quoted git conflict is text);
    /// the last bare `=======` before the end marker opens the last side,
    /// and only a labelled one a middle side, so a side may hold a line of
    /// `=` (a heading's underline).
    fn read_block(&mut self, raw: &[&str]) -> Option<(usize, u32)> {
        let first = heph_label(raw.first()?, CONFLICT_START)?;
        let mut end = None;
        for (j, line) in raw.iter().enumerate().skip(1) {
            if heph_label(line, CONFLICT_START).is_some() {
                return None;
            }
            if let Some(label) = heph_label(line, CONFLICT_END) {
                end = Some((j, label));
                break;
            }
        }
        let (end, last_label) = end?;
        let inner = &raw[1..end];
        let last_sep = inner.iter().rposition(|l| *l == CONFLICT_SEPARATOR)?;
        let mut labels = vec![first.to_owned()];
        let mut texts: Vec<Vec<&str>> = vec![Vec::new()];
        for line in &inner[..last_sep] {
            if let Some(label) = heph_label(line, CONFLICT_SEPARATOR) {
                labels.push(label.to_owned());
                texts.push(Vec::new());
            } else {
                texts.last_mut()?.push(line);
            }
        }
        labels.push(last_label.to_owned());
        texts.push(inner[last_sep + 1..].to_vec());
        let sides: Vec<Side> = labels
            .into_iter()
            .zip(&texts)
            .map(|(label, lines)| Side {
                label,
                toks: lines.iter().map(|l| self.line(l)).collect(),
            })
            .collect();
        // Read back only what writes back the same lines.
        if self.block_lines(&sides) != raw[..=end] {
            return None;
        }
        let t = self.block(sides);
        self.from_text.insert(t);
        Some((end + 1, t))
    }

    /// The order of sides in a block ([`Side`]).
    fn side_order(&self, side: &Side) -> (u64, String, String) {
        let (at, device) = parse_label(&side.label).unwrap_or((u64::MAX, &side.label));
        let text: Vec<&str> = side
            .toks
            .iter()
            .filter_map(|&t| match &self.items[t as usize] {
                Item::Line(l) => Some(l.as_str()),
                Item::Block(_) => None,
            })
            .collect();
        (at, device.to_owned(), text.join("\n"))
    }

    fn render(&self, doc: &Doc) -> String {
        let mut out = String::new();
        for &t in &doc.toks {
            match &self.items[t as usize] {
                Item::Line(l) => {
                    out.push_str(l);
                    out.push('\n');
                }
                Item::Block(sides) => {
                    for line in self.block_lines(sides) {
                        out.push_str(&line);
                        out.push('\n');
                    }
                }
            }
        }
        // A block this merge made ends in a newline; one read back from a
        // text ends as that text did.
        let ends_in_block = doc
            .toks
            .last()
            .is_some_and(|&t| self.is_block(t) && !self.from_text.contains(&t));
        if !doc.newline && !ends_in_block {
            out.pop();
        }
        out
    }

    /// The sides of a conflict region of one input: the region itself, or,
    /// when it already holds blocks, one side per side of each block (the
    /// others shown by their first side), so blocks grow instead of nesting.
    /// Each side says whether a block held it (`true`) or it is the
    /// author's own text.
    fn expand(&self, toks: &[u32], author: &Author) -> Vec<(Side, bool)> {
        let blocks: Vec<usize> = (0..toks.len())
            .filter(|&i| self.is_block(toks[i]))
            .collect();
        if blocks.is_empty() {
            let side = Side {
                label: author.label.clone(),
                toks: toks.to_vec(),
            };
            return vec![(side, false)];
        }
        let mut out = Vec::new();
        for &b in &blocks {
            for side in self.sides(toks[b]) {
                let mut text = Vec::new();
                for (i, &t) in toks.iter().enumerate() {
                    if i == b {
                        text.extend_from_slice(&side.toks);
                    } else if self.is_block(t) {
                        text.extend_from_slice(&self.sides(t)[0].toks);
                    } else {
                        text.push(t);
                    }
                }
                out.push((
                    Side {
                        label: side.label.clone(),
                        toks: text,
                    },
                    true,
                ));
            }
        }
        out
    }

    /// Three-way merge of `a` (by `la`) and `b` (by `lb`, a later version)
    /// from `base`.
    fn merge2(&mut self, base: &Doc, a: &Doc, la: &Author, b: &Doc, lb: &Author) -> Doc {
        let newline = if a.newline == b.newline || a.newline != base.newline {
            a.newline
        } else {
            b.newline
        };
        if a.toks == b.toks {
            return Doc {
                toks: a.toks.clone(),
                newline,
            };
        }
        let inputs = [a, b];
        let mut hunks: Vec<(usize, diff::Hunk)> = diff::diff(&base.toks, &a.toks)
            .into_iter()
            .map(|h| (0, h))
            .chain(diff::diff(&base.toks, &b.toks).into_iter().map(|h| (1, h)))
            .collect();
        hunks.sort_by_key(|(side, h)| (h.old.start, h.old.end, *side));
        let new_lines = |side: usize, h: &diff::Hunk| &inputs[side].toks[h.new.clone()];

        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while i < hunks.len() {
            let start = hunks[i].1.old.start;
            out.extend_from_slice(&base.toks[pos..start]);
            if hunks[i].1.old.is_empty() {
                // Insertions at one place: all kept, in stamp order, once.
                let first = new_lines(hunks[i].0, &hunks[i].1);
                out.extend_from_slice(first);
                if let Some((side, h)) = hunks.get(i + 1).filter(|(_, h)| h.old == (start..start)) {
                    if new_lines(*side, h) != first {
                        out.extend_from_slice(new_lines(*side, h));
                    }
                    i += 1;
                }
                pos = start;
                i += 1;
                continue;
            }
            // A region of changed base lines: every hunk that overlaps it.
            let mut end = hunks[i].1.old.end;
            let mut j = i + 1;
            while j < hunks.len() && hunks[j].1.old.start < end {
                end = end.max(hunks[j].1.old.end);
                j += 1;
            }
            let members = &hunks[i..j];
            let side_text = |side: usize| -> Option<Vec<u32>> {
                let mut text = Vec::new();
                let mut q = start;
                let mut touched = false;
                for (s, h) in members.iter().filter(|(s, _)| *s == side) {
                    touched = true;
                    text.extend_from_slice(&base.toks[q..h.old.start]);
                    text.extend_from_slice(new_lines(*s, h));
                    q = h.old.end;
                }
                text.extend_from_slice(&base.toks[q..end]);
                touched.then_some(text)
            };
            match (side_text(0), side_text(1)) {
                (Some(ta), Some(tb)) if ta != tb => {
                    if let Some(t) = self.merge_inside(&base.toks[start..end], &ta, &tb, la, lb) {
                        out.extend(t);
                        pos = end;
                        i = j;
                        continue;
                    }
                    let mut sides = self.expand(&ta, la);
                    sides.extend(self.expand(&tb, lb));
                    // A side a block held already keeps its label over the
                    // same text come from an author (one who resolved to it):
                    // the block stays the one its readers have.
                    sides.sort_by_cached_key(|(side, held)| (!held, self.side_order(side)));
                    let mut unique: Vec<Side> = Vec::with_capacity(sides.len());
                    for (side, _) in sides {
                        if !unique.iter().any(|u| u.toks == side.toks) {
                            unique.push(side);
                        }
                    }
                    unique.sort_by_cached_key(|side| self.side_order(side));
                    if unique.len() == 1 {
                        out.extend_from_slice(&unique[0].toks);
                    } else {
                        out.push(self.block(unique));
                    }
                }
                (Some(t), _) | (None, Some(t)) => out.extend_from_slice(&t),
                (None, None) => unreachable!("a region has at least one hunk"),
            }
            pos = end;
            i = j;
        }
        out.extend_from_slice(&base.toks[pos..]);
        Doc { toks: out, newline }
    }
}

impl Lines {
    /// Both inputs edited the same block (different sides, or different
    /// lines of one side), perhaps lines next to it too, and kept its sides
    /// and labels: the lines before it, each of its sides, and the lines
    /// after it are merged as lines. `None` when that is not the case, or
    /// when any part's edits conflict: then the block grows a side instead.
    fn merge_inside(
        &mut self,
        base: &[u32],
        a: &[u32],
        b: &[u32],
        la: &Author,
        lb: &Author,
    ) -> Option<Vec<u32>> {
        // The one block of a region, its place and sides.
        let split = |lines: &Self, region: &[u32]| -> Option<(usize, Vec<Side>)> {
            let mut found = None;
            for (k, &t) in region.iter().enumerate() {
                if lines.is_block(t) {
                    if found.is_some() {
                        return None;
                    }
                    found = Some((k, lines.sides(t).to_vec()));
                }
            }
            found
        };
        let (kb0, base_sides) = split(self, base)?;
        let (ka, a_sides) = split(self, a)?;
        let (kb, b_sides) = split(self, b)?;
        let labels = |sides: &[Side]| sides.iter().map(|s| s.label.clone()).collect::<Vec<_>>();
        if labels(&base_sides) != labels(&a_sides) || labels(&base_sides) != labels(&b_sides) {
            return None;
        }
        // Three-way merge of plain lines; `None` on a conflict.
        let mut lines_merge = |o: &[u32], x: &[u32], y: &[u32]| -> Option<Vec<u32>> {
            let doc = |toks: &[u32]| Doc {
                toks: toks.to_vec(),
                newline: true,
            };
            let merged = self.merge2(&doc(o), &doc(x), la, &doc(y), lb);
            (!merged.toks.iter().any(|&t| self.is_block(t))).then_some(merged.toks)
        };
        let before = lines_merge(&base[..kb0], &a[..ka], &b[..kb])?;
        let after = lines_merge(&base[kb0 + 1..], &a[ka + 1..], &b[kb + 1..])?;
        let mut sides = Vec::with_capacity(base_sides.len());
        for ((o, x), y) in base_sides.iter().zip(&a_sides).zip(&b_sides) {
            sides.push(Side {
                label: o.label.clone(),
                toks: lines_merge(&o.toks, &x.toks, &y.toks)?,
            });
        }
        // The block was there before: edited, not a new conflict.
        let t = self.block(sides);
        self.from_text.insert(t);
        let mut out = before;
        out.push(t);
        out.extend(after);
        Some(out)
    }
}

/// Where each line of `base` is in `side`: `(place, kept)`, kept meaning
/// matched by the diff; a line the diff found deleted takes the first
/// unclaimed line of the same text that `side` added (it was moved), if any.
fn places(base: &Doc, side: &Doc) -> Vec<(Option<usize>, bool)> {
    let n = base.toks.len();
    let mut at: Vec<(Option<usize>, bool)> = vec![(None, false); n];
    let mut added: HashMap<u32, std::collections::VecDeque<usize>> = HashMap::new();
    let (mut x, mut y) = (0, 0);
    for h in diff::diff(&base.toks, &side.toks) {
        for k in 0..h.old.start - x {
            at[x + k] = (Some(y + k), true);
        }
        for j in h.new.clone() {
            added.entry(side.toks[j]).or_default().push_back(j);
        }
        (x, y) = (h.old.end, h.new.end);
    }
    for k in 0..n - x {
        at[x + k] = (Some(y + k), true);
    }
    for (i, place) in at.iter_mut().enumerate() {
        if place.0.is_none() {
            place.0 = added.get_mut(&base.toks[i]).and_then(|q| q.pop_front());
        }
    }
    at
}

/// `base` (a virtual ancestor) with its lines in the order `side` has them.
/// The virtual ancestor orders the lines its bases added concurrently one
/// way; the merges a side descends from may have ordered them another way.
/// Diffed as is, those lines would read as deleted and added again: a
/// conflict around them and a duplicate. A line `side` dropped stays right
/// after the last line before it that `side` kept in place.
fn align(base: &Doc, side: &Doc) -> Doc {
    let at = places(base, side);
    if at.iter().all(|&(_, kept)| kept) {
        return base.clone();
    }
    let mut after = 0;
    let mut keyed: Vec<((usize, u8, usize), u32)> = Vec::with_capacity(at.len());
    for (i, &(place, kept)) in at.iter().enumerate() {
        let key = match place {
            Some(p) => {
                if kept {
                    after = p + 1;
                }
                (p + 1, 0, i)
            }
            None => (after, 1, i),
        };
        keyed.push((key, base.toks[i]));
    }
    keyed.sort_unstable_by_key(|&(key, _)| key);
    Doc {
        toks: keyed.into_iter().map(|(_, t)| t).collect(),
        newline: base.newline,
    }
}

/// `side` with the lines it shares with `base` put in `base`'s order, each
/// preceded by the lines `side` added before it. Against a virtual ancestor
/// aligned to the other side, a different order of shared lines is no edit
/// but the trace of merges that ordered concurrent lines differently; kept,
/// it would conflict with (or duplicate) what the other side added there.
fn reorder(base: &Doc, side: &Doc) -> Doc {
    let at = places(base, side);
    let placed: Vec<(usize, usize)> = at
        .iter()
        .enumerate()
        .filter_map(|(i, &(place, _))| place.map(|p| (i, p)))
        .collect();
    if placed.windows(2).all(|w| w[0].1 < w[1].1) {
        return side.clone();
    }
    let mut from = vec![None; side.toks.len()];
    for &(i, p) in &placed {
        from[p] = Some(i);
    }
    // Lines `side` added, by the shared line they precede (`None`: the end).
    let mut runs: HashMap<Option<usize>, Vec<u32>> = HashMap::new();
    let mut anchor = None;
    for (j, &t) in side.toks.iter().enumerate().rev() {
        match from[j] {
            Some(i) => anchor = Some(i),
            None => runs.entry(anchor).or_default().push(t),
        }
    }
    let mut toks = Vec::with_capacity(side.toks.len());
    for &(i, p) in &placed {
        toks.extend(runs.remove(&Some(i)).unwrap_or_default().into_iter().rev());
        toks.push(side.toks[p]);
    }
    toks.extend(runs.remove(&None).unwrap_or_default().into_iter().rev());
    Doc {
        toks,
        newline: side.newline,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn empty(n: usize) -> Self {
        BitSet(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn union_with(&mut self, other: &BitSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
    fn intersect_with(&mut self, other: &BitSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }
    fn subtract(&mut self, other: &BitSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= !b;
        }
    }
    fn members(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            (0..64)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| w * 64 + b)
        })
    }
}

struct Graph<'a> {
    versions: &'a [BodyVersion<'a>],
    /// Whether some version was edited from this one.
    has_child: Vec<bool>,
    /// Transitive ancestors of each version (not itself).
    ancestors: Vec<BitSet>,
}

impl<'a> Graph<'a> {
    /// `versions` sorted by `(hlc, op_id)` without repeats.
    fn new(versions: &'a [BodyVersion<'a>]) -> Self {
        let n = versions.len();
        let mut by_stamp: HashMap<&Hlc, Vec<usize>> = HashMap::new();
        for (i, v) in versions.iter().enumerate() {
            by_stamp.entry(v.hlc).or_default().push(i);
        }
        let mut has_child = vec![false; n];
        let mut ancestors: Vec<BitSet> = Vec::with_capacity(n);
        for v in versions {
            let mut anc = BitSet::empty(n);
            for h in v.base.iter().filter(|h| *h < v.hlc) {
                for &p in by_stamp.get(h).map(Vec::as_slice).unwrap_or(&[]) {
                    has_child[p] = true;
                    anc.insert(p);
                    anc.union_with(&ancestors[p]);
                }
            }
            ancestors.push(anc);
        }
        Graph {
            versions,
            has_child,
            ancestors,
        }
    }

    fn heads(&self) -> Vec<usize> {
        (0..self.versions.len())
            .filter(|&i| !self.has_child[i])
            .collect()
    }

    /// A version and its ancestors.
    fn closure(&self, i: usize) -> BitSet {
        let mut set = self.ancestors[i].clone();
        set.insert(i);
        set
    }

    /// Members of `set` that are no other member's ancestor.
    fn maximal(&self, set: &BitSet) -> Vec<usize> {
        let mut best = set.clone();
        for i in set.members() {
            best.subtract(&self.ancestors[i]);
        }
        best.members().collect()
    }

    /// How the sides version `i` brings to a block are ordered and named.
    fn author(&self, i: usize) -> Author {
        let hlc = self.versions[i].hlc;
        Author {
            label: side_label(hlc),
        }
    }

    /// Merges `heads` (ascending) one after the other into the first.
    fn merge_heads(
        &self,
        lines: &mut Lines,
        heads: &[usize],
        memo: &mut HashMap<Vec<usize>, Doc>,
    ) -> Doc {
        let mut acc = lines.doc(self.versions[heads[0]].body);
        let mut seen = self.closure(heads[0]);
        let mut author = self.author(heads[0]);
        for &h in &heads[1..] {
            let theirs = self.closure(h);
            let mut common = seen.clone();
            common.intersect_with(&theirs);
            let bases = self.maximal(&common);
            let several = bases.len() > 1;
            let next = lines.doc(self.versions[h].body);
            let base = match bases.as_slice() {
                [] => Doc::default(),
                [one] => lines.doc(self.versions[*one].body),
                _ => {
                    let virtual_base = match memo.get(&bases) {
                        Some(doc) => doc.clone(),
                        None => {
                            // The ancestor is the text a device showed for
                            // exactly these versions, conflict blocks and
                            // all, read back as plain lines: what authors
                            // edited from when they resolved a block, kept
                            // it and wrote elsewhere, or wrote in it. (Its
                            // sides one after the other, as before, made two
                            // resolutions both vanish, and doubled the
                            // marker lines of a block kept on both sides.)
                            let doc = self.merge_heads(lines, &bases, memo);
                            memo.insert(bases, doc.clone());
                            doc
                        }
                    };
                    align(&virtual_base, &next)
                }
            };
            if several {
                // The head is a version as saved (a later merge may take it
                // as its base); the result so far is only this merge's.
                acc = reorder(&base, &acc);
            }
            let next_author = self.author(h);
            acc = lines.merge2(&base, &acc, &author, &next, &next_author);
            seen.union_with(&theirs);
            author = next_author;
        }
        acc
    }
}

#[cfg(test)]
mod tests;
