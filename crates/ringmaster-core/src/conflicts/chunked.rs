//! Where sides meet, one 65,536-device chunk at a time.
//!
//! Every finding asks the same three things of the devices where its sides
//! meet: which they are, how many of them each policy reaches, and how many
//! each assignment target and platform holds. Asked finding by finding,
//! each question walks whole reaches (every device of every policy and
//! group involved), and on membership that follows no site or department
//! (each device in a few random groups) that is most of the work. Here the
//! order is turned round: for each chunk of the fleet, every reach and
//! tally with devices in it is laid out once as plain words (8 KiB, as a
//! roaring container would be), and then every question is answered on
//! those words. Counts look only at the words where sides meet, which are
//! few where findings are small. Chunks are independent, so they run in
//! parallel and their parts are summed in order.

use rayon::prelude::*;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Words in a chunk: 65,536 devices, one roaring container.
const WORDS: usize = 1024;

/// What to ask of one finding.
#[derive(Hash, PartialEq, Eq)]
pub(super) struct Question {
    /// Each side's reaches (indices into the reaches given to [`answer`]).
    pub sides: Vec<Vec<u32>>,
    /// Bitmaps (indices into the tallies given to [`answer`]) whose devices
    /// among the meeting ones are counted.
    pub tallies: Vec<u32>,
}

/// What one finding's sides share.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Answer {
    /// Devices in two sides or more.
    pub affected: RoaringBitmap,
    /// Of them, how many each reach holds, in the order of `sides` flattened.
    pub reaches: Vec<u64>,
    /// Of them, how many each tally holds, in the order of `tallies`.
    pub tallies: Vec<u64>,
}

/// Answers every question.
pub(super) fn answer(
    reaches: &[&RoaringBitmap],
    tallies: &[&RoaringBitmap],
    questions: &[Question],
) -> Vec<Answer> {
    // Settings set alike by the same policies ask the same question (a
    // baseline's hundreds of settings against another's): each is answered
    // once.
    let mut first: FxHashMap<&Question, usize> = FxHashMap::default();
    let mut distinct: Vec<&Question> = Vec::new();
    let which: Vec<usize> = (questions.iter())
        .map(|q| {
            *first.entry(q).or_insert_with(|| {
                distinct.push(q);
                distinct.len() - 1
            })
        })
        .collect();
    let mut answers: Vec<Option<Answer>> = answer_distinct(reaches, tallies, &distinct)
        .into_iter()
        .map(Some)
        .collect();
    // The last asker of each takes it; earlier ones get a copy.
    let mut last = vec![usize::MAX; distinct.len()];
    for (k, &d) in which.iter().enumerate() {
        last[d] = k;
    }
    (which.iter().enumerate())
        .map(|(k, &d)| {
            if last[d] == k {
                answers[d].take().expect("taken by its last asker only")
            } else {
                answers[d].clone().expect("not yet taken")
            }
        })
        .collect()
}

fn answer_distinct(
    reaches: &[&RoaringBitmap],
    tallies: &[&RoaringBitmap],
    questions: &[&Question],
) -> Vec<Answer> {
    let (Some(lo), Some(hi)) = (
        reaches.iter().filter_map(|b| b.min()).min(),
        reaches.iter().filter_map(|b| b.max()).max(),
    ) else {
        return questions.iter().map(|q| empty(q)).collect();
    };
    // Parts per chunk; each holds the questions met there. One worker per
    // thread takes chunks in turn and keeps its layers' words from one to
    // the next (fresh pages for every chunk cost more than the work).
    let chunks: Vec<u32> = (lo >> 16..=hi >> 16).collect();
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().clamp(1, chunks.len());
    let mut parts: Vec<(usize, Vec<(u32, Part)>)> = (0..workers)
        .into_par_iter()
        .flat_map_iter(|_| {
            let mut here = Chunk::default();
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&chunk) = chunks.get(i) else {
                    break done;
                };
                done.push((i, here.answer(chunk, reaches, tallies, questions)));
            }
        })
        .collect();
    parts.sort_unstable_by_key(|(i, _)| *i);
    // Each question's parts, in chunk order, summed in parallel. Parts are
    // moved, not copied: their containers become the answer's.
    let mut of: Vec<Vec<Part>> = (0..questions.len()).map(|_| Vec::new()).collect();
    for (q, part) in parts.into_iter().flat_map(|(_, p)| p) {
        of[q as usize].push(part);
    }
    (questions.par_iter().zip(of))
        .map(|(q, parts)| {
            let mut a = empty(q);
            a.affected = assemble(&parts);
            for part in parts {
                a.reaches
                    .iter_mut()
                    .zip(&part.reaches)
                    .for_each(|(n, m)| *n += m);
                a.tallies
                    .iter_mut()
                    .zip(&part.tallies)
                    .for_each(|(n, m)| *n += m);
            }
            a
        })
        .collect()
}

fn empty(q: &Question) -> Answer {
    Answer {
        affected: RoaringBitmap::new(),
        reaches: vec![0; q.sides.iter().map(Vec::len).sum()],
        tallies: vec![0; q.tallies.len()],
    }
}

/// A question's share of one chunk (its first field in [`answer`]'s list is
/// the question's index).
struct Part {
    /// The chunk (the high 16 bits of its devices).
    key: u16,
    affected: Container,
    reaches: Vec<u64>,
    tallies: Vec<u64>,
}

/// Devices met twice in one chunk, as roaring keeps them: their low 16 bits
/// in order (at most 4,096) or the chunk's words.
enum Container {
    Array(Vec<u16>),
    Words(Box<[u64; WORDS]>),
}

impl Container {
    fn len(&self) -> usize {
        match self {
            Container::Array(v) => v.len(),
            Container::Words(w) => w.iter().map(|x| x.count_ones() as usize).sum(),
        }
    }

    /// Its size in the serialized form.
    fn bytes(&self) -> usize {
        match self {
            Container::Array(v) => 2 * v.len(),
            Container::Words(_) => 8 * WORDS,
        }
    }
}

/// One bitmap of a question's parts (in chunk order), read from roaring's
/// published serialized form written here: built device by device, a
/// bitmap cost about 70 instructions a device, a sixth of a random-layout
/// analysis.
fn assemble(parts: &[Part]) -> RoaringBitmap {
    // Cookie (no run containers), count, each container's key and
    // cardinality less one, each one's offset, then the containers.
    const NO_RUNS: u32 = 12346;
    if parts.is_empty() {
        return RoaringBitmap::new();
    }
    let n = parts.len();
    let body: usize = parts.iter().map(|p| p.affected.bytes()).sum();
    let mut b = Vec::with_capacity(8 + 8 * n + body);
    b.extend_from_slice(&NO_RUNS.to_le_bytes());
    b.extend_from_slice(&(n as u32).to_le_bytes());
    for p in parts {
        b.extend_from_slice(&p.key.to_le_bytes());
        b.extend_from_slice(&((p.affected.len() - 1) as u16).to_le_bytes());
    }
    let mut at = 8 + 8 * n;
    for p in parts {
        b.extend_from_slice(&(at as u32).to_le_bytes());
        at += p.affected.bytes();
    }
    for p in parts {
        match &p.affected {
            Container::Array(v) => v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes())),
            Container::Words(w) => w.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes())),
        }
    }
    RoaringBitmap::deserialize_from(&b[..]).expect("parts in chunk order, each non-empty")
}

/// Which of a chunk's words hold devices, one bit per word: devices of a
/// site or group sit side by side (imports list them so), so most reaches
/// fill few words of a chunk and only those are visited.
type Summary = [u64; WORDS / 64];

fn summarize(w: &[u64]) -> Summary {
    let mut s = [0; WORDS / 64];
    for (m, block) in s.iter_mut().zip(w.chunks_exact(64)) {
        *m = (block.iter().enumerate()).fold(0, |m, (j, x)| m | u64::from(*x != 0) << j);
    }
    s
}

fn words_in(s: &Summary) -> u32 {
    s.iter().map(|m| m.count_ones()).sum()
}

/// Calls `f` with each word index set in `s`, ascending.
fn each_word(s: &[u64], mut f: impl FnMut(usize)) {
    for (i, &m) in s.iter().enumerate() {
        let mut m = m;
        while m != 0 {
            f(i * 64 + m.trailing_zeros() as usize);
            m &= m - 1;
        }
    }
}

/// Up to this many words met twice, counts visit them one by one rather
/// than the words a counted bitmap shares with them.
const FEW: u32 = 24;

/// Up to this many devices in a chunk (a roaring array container's most),
/// a bitmap is laid out device by device rather than run by run.
const SPARSE: u64 = 4096;

/// Bitmaps laid out over one chunk: only those with devices in it that a
/// question met there needs.
#[derive(Default)]
struct Layer {
    /// Each bitmap's entry, or `None`: not laid out.
    at: Vec<Option<u32>>,
    /// Entry `e` holds `words[e * WORDS..][..WORDS]` and `sums[e]`.
    words: Vec<u64>,
    sums: Vec<Summary>,
}

impl Layer {
    fn fill(&mut self, bitmaps: &[&RoaringBitmap], wanted: &[bool], base: u32) {
        self.at.clear();
        self.words.clear();
        self.sums.clear();
        // Room for every wanted one up front: growing copies what is laid out.
        let most = wanted.iter().filter(|w| **w).count();
        self.words.reserve(most * WORDS);
        let chunk = base..=base | 0xFFFF;
        for (b, &want) in bitmaps.iter().zip(wanted) {
            let n = if want {
                b.range_cardinality(chunk.clone())
            } else {
                0
            };
            if n == 0 {
                self.at.push(None);
                continue;
            }
            let start = self.words.len();
            self.words.resize(start + WORDS, 0);
            let w = &mut self.words[start..];
            if n <= SPARSE {
                // Few devices: bit by bit, the summary as it goes. (Runs of
                // a sparse container are found by a search each, which costs
                // more than the bits.)
                let mut sum = [0; WORDS / 64];
                // Walked by `for_each`: roaring folds a container at a time,
                // where `next` goes through every level for each device.
                b.range(chunk.clone()).for_each(|d| {
                    let k = (d - base) as usize;
                    w[k / 64] |= 1 << (k % 64);
                    sum[k / 4096] |= 1 << (k / 64 % 64);
                });
                self.sums.push(sum);
            } else {
                let mut it = b.range(chunk.clone());
                while let Some(r) = it.next_range() {
                    set_range(w, r.start() - base, r.end() - base);
                }
                self.sums.push(summarize(w));
            }
            self.at.push(Some((self.sums.len() - 1) as u32));
        }
    }

    fn get(&self, i: u32) -> Option<(&[u64], &Summary)> {
        self.at[i as usize].map(|e| {
            let e = e as usize;
            (&self.words[e * WORDS..][..WORDS], &self.sums[e])
        })
    }
}

/// Sets bits `a..=b` (both within one chunk).
fn set_range(w: &mut [u64], a: u32, b: u32) {
    let (a, b) = (a as usize, b as usize);
    if a / 64 == b / 64 {
        w[a / 64] |= (u64::MAX >> (63 - (b - a))) << (a % 64);
        return;
    }
    w[a / 64] |= u64::MAX << (a % 64);
    w[a / 64 + 1..b / 64].fill(u64::MAX);
    w[b / 64] |= u64::MAX >> (63 - b % 64);
}

/// One worker's state, reused from chunk to chunk.
#[derive(Default)]
struct Chunk {
    reaches: Layer,
    tallies: Layer,
    base: u32,
    /// Per reach: has devices in this chunk.
    present: Vec<bool>,
    /// Questions whose sides may meet here.
    met: Vec<u32>,
    want_reaches: Vec<bool>,
    want_tallies: Vec<bool>,
    scratch: Scratch,
}

impl Chunk {
    fn answer(
        &mut self,
        chunk: u32,
        reaches: &[&RoaringBitmap],
        tallies: &[&RoaringBitmap],
        questions: &[&Question],
    ) -> Vec<(u32, Part)> {
        let base = chunk << 16;
        self.base = base;
        let range = base..=base | 0xFFFF;
        self.present.clear();
        (self.present).extend(
            reaches
                .iter()
                .map(|b| b.range(range.clone()).next().is_some()),
        );
        // Only questions with two sides here, and only what they ask, are
        // laid out: most reaches and tallies are needed by few chunks.
        let present = &self.present;
        let side_here = |side: &Vec<u32>| side.iter().any(|&r| present[r as usize]);
        self.met.clear();
        self.met.extend(
            (questions.iter().enumerate())
                .filter(|(_, q)| q.sides.iter().filter(|s| side_here(s)).take(2).count() == 2)
                .map(|(k, _)| k as u32),
        );
        self.want_reaches.clear();
        self.want_reaches.resize(reaches.len(), false);
        self.want_tallies.clear();
        self.want_tallies.resize(tallies.len(), false);
        for &k in &self.met {
            let q = &questions[k as usize];
            for &r in q.sides.iter().flatten() {
                self.want_reaches[r as usize] = present[r as usize];
            }
            for &t in &q.tallies {
                self.want_tallies[t as usize] = true;
            }
        }
        self.reaches.fill(reaches, &self.want_reaches, base);
        self.tallies.fill(tallies, &self.want_tallies, base);
        let mut scratch = std::mem::take(&mut self.scratch);
        let parts = (self.met.iter())
            .filter_map(|&k| Some((k, self.meet(questions[k as usize], &mut scratch)?)))
            .collect();
        self.scratch = scratch;
        parts
    }

    /// One question on this chunk, or `None` where its sides do not meet here.
    fn meet(&self, q: &Question, s: &mut Scratch) -> Option<Part> {
        s.ready();
        let mut side = std::mem::take(&mut s.side);
        for reaches in &q.sides {
            side.clear();
            side.extend(reaches.iter().filter_map(|&r| self.reaches.at[r as usize]));
            if !side.is_empty() {
                s.add_side(&self.reaches, &side);
            }
        }
        s.side = side;
        s.settle();
        (words_in(&s.twice_sum) > 0).then(|| {
            s.list_twice();
            let count = |laid: Option<(&[u64], &Summary)>| -> u64 {
                laid.map_or(0, |(w, sum)| s.count(w, sum))
            };
            Part {
                reaches: (q.sides.iter().flatten())
                    .map(|&r| count(self.reaches.get(r)))
                    .collect(),
                tallies: (q.tallies.iter())
                    .map(|&t| count(self.tallies.get(t)))
                    .collect(),
                key: (self.base >> 16) as u16,
                affected: s.affected(),
            }
        })
    }
}

/// Summary words: one per 64 words of a chunk.
const BLOCKS: usize = WORDS / 64;

/// Past this many words with devices, a block of 64 is visited whole.
const FULL: u32 = 32;

/// Words reused from one question to the next. A question sets each block
/// of 64 words when a side first touches it and reads only blocks it set,
/// so nothing is cleared between questions.
struct Scratch {
    /// Devices on the sides so far, and on two of them or more.
    seen: Vec<u64>,
    twice: Vec<u64>,
    /// Blocks this question set: every word of `seen` and `twice` in them is
    /// its own.
    seen_sum: Summary,
    /// Words where a side met the ones before: `twice` holds devices in no
    /// others.
    met_sum: Summary,
    /// Which words of `twice` hold devices (once [`Scratch::settle`]d).
    twice_sum: Summary,
    /// One side's entries in the layer.
    side: Vec<u32>,
    /// The words of `twice` with devices, ascending.
    twice_words: Vec<u16>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            seen: vec![0; WORDS],
            twice: vec![0; WORDS],
            seen_sum: [0; BLOCKS],
            met_sum: [0; BLOCKS],
            twice_sum: [0; BLOCKS],
            side: Vec::new(),
            twice_words: Vec::with_capacity(WORDS),
        }
    }
}

type Block = [u64; 64];

/// One block of a side (`x`, its devices word by word) into `seen` and
/// `twice`: set when the question had not touched the block, else merged,
/// in one pass the compiler vectorises.
#[inline(always)]
fn merge_block(seen: &mut Block, twice: &mut Block, fresh: bool, x: impl Fn(usize) -> u64) {
    if fresh {
        for (j, s) in seen.iter_mut().enumerate() {
            *s = x(j);
        }
        *twice = [0; 64];
    } else {
        for (j, (s, t)) in seen.iter_mut().zip(twice.iter_mut()).enumerate() {
            let w = x(j);
            *t |= *s & w;
            *s |= w;
        }
    }
}

impl Scratch {
    fn ready(&mut self) {
        self.seen_sum = [0; BLOCKS];
        self.met_sum = [0; BLOCKS];
    }

    /// Adds one side (its reaches' entries in `layer`): what it shares with
    /// the sides before is met twice. A side of several reaches is united
    /// word by word as it is added, so a device on two of them is not met
    /// twice, in one pass over the words it holds.
    fn add_side(&mut self, layer: &Layer, side: &[u32]) {
        let mut sum = [0; BLOCKS];
        for &e in side {
            sum.iter_mut()
                .zip(&layer.sums[e as usize])
                .for_each(|(a, m)| *a |= m);
        }
        let block = |e: u32, lo: usize| -> &Block {
            (layer.words[e as usize * WORDS + lo..][..64])
                .try_into()
                .expect("64 words")
        };
        for (b, &m) in sum.iter().enumerate() {
            if m == 0 {
                continue;
            }
            let lo = b * 64;
            let fresh = self.seen_sum[b] == 0;
            let seen: &mut Block = (&mut self.seen[lo..lo + 64]).try_into().expect("64 words");
            let twice: &mut Block = (&mut self.twice[lo..lo + 64]).try_into().expect("64 words");
            if m.count_ones() > FULL {
                match side {
                    [e] => {
                        let a = block(*e, lo);
                        merge_block(seen, twice, fresh, |j| a[j]);
                    }
                    [e, f] => {
                        let (a, c) = (block(*e, lo), block(*f, lo));
                        merge_block(seen, twice, fresh, |j| a[j] | c[j]);
                    }
                    _ => {
                        let mut united = [0u64; 64];
                        for &e in side {
                            (united.iter_mut().zip(block(e, lo))).for_each(|(u, x)| *u |= x);
                        }
                        merge_block(seen, twice, fresh, |j| united[j]);
                    }
                }
            } else {
                if fresh {
                    *seen = [0; 64];
                    *twice = [0; 64];
                }
                each_word(&[m], |j| {
                    let x = side.iter().fold(0, |a, &e| a | block(e, lo)[j]);
                    twice[j] |= seen[j] & x;
                    seen[j] |= x;
                });
            }
        }
        for ((met, seen), m) in self.met_sum.iter_mut().zip(&mut self.seen_sum).zip(&sum) {
            *met |= *seen & m;
            *seen |= m;
        }
    }

    /// Works out which words of `twice` hold devices, among those where
    /// sides met.
    fn settle(&mut self) {
        for (b, (t, &m)) in self.twice_sum.iter_mut().zip(&self.met_sum).enumerate() {
            let twice = &self.twice[b * 64..][..64];
            *t = if m.count_ones() > FULL {
                (twice.iter().enumerate()).fold(0, |a, (j, x)| a | u64::from(*x != 0) << j)
            } else {
                let mut t = 0;
                each_word(&[m], |j| t |= u64::from(twice[j] != 0) << j);
                t
            };
        }
    }

    /// Lists the words met twice when they are few, for the counts that
    /// follow.
    fn list_twice(&mut self) {
        self.twice_words.clear();
        if words_in(&self.twice_sum) <= FEW {
            let words = &mut self.twice_words;
            each_word(&self.twice_sum, |k| words.push(k as u16));
        }
    }

    /// Devices of `w` met twice (after [`Scratch::list_twice`]): over the
    /// few words met twice, or the words both hold devices in (blocks this
    /// question set only).
    fn count(&self, w: &[u64], sum: &Summary) -> u64 {
        let ones = |k: usize| u64::from((w[k] & self.twice[k]).count_ones());
        if !self.twice_words.is_empty() {
            return self.twice_words.iter().map(|&k| ones(k as usize)).sum();
        }
        let mut n = 0;
        for (b, (&t, &m)) in self.twice_sum.iter().zip(sum).enumerate() {
            let both = t & m;
            if both.count_ones() > FULL {
                n += (b * 64..b * 64 + 64).map(ones).sum::<u64>();
            } else if both != 0 {
                each_word(&[both], |j| n += ones(b * 64 + j));
            }
        }
        n
    }

    /// The devices met twice (at least one: `twice_sum` is not empty).
    fn affected(&self) -> Container {
        let mut n = 0;
        each_word(&self.twice_sum, |k| n += self.twice[k].count_ones());
        if u64::from(n) <= SPARSE {
            // No more than an array container holds: its devices one by
            // one, not a copy of every word to be read again.
            let mut devices = Vec::with_capacity(n as usize);
            each_word(&self.twice_sum, |k| {
                let mut w = self.twice[k];
                while w != 0 {
                    devices.push((k * 64) as u16 + w.trailing_zeros() as u16);
                    w &= w - 1;
                }
            });
            return Container::Array(devices);
        }
        // Only the blocks this question set are its own.
        let mut words = Box::new([0u64; WORDS]);
        each_word(&self.twice_sum, |k| words[k] = self.twice[k]);
        Container::Words(words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reach() -> impl Strategy<Value = RoaringBitmap> {
        prop_oneof![
            prop::collection::vec(0u32..300_000, 0..400),
            // Scattered over a chunk or two, as membership that follows no
            // site is: most words of a block hold a device or two.
            prop::collection::vec(0u32..140_000, 0..3000),
            (0u32..200_000, 1u32..140_000).prop_map(|(s, n)| (s..s + n).collect()),
            (0u32..200_000, 4_000u32..70_000)
                .prop_map(|(s, n)| (s..s + n).filter(|d| d % 7 != 2).collect()),
        ]
        .prop_map(|v: Vec<u32>| {
            let mut b: RoaringBitmap = v.into_iter().collect();
            b.optimize();
            b
        })
    }

    /// The same question answered with roaring, side by side.
    fn plain(reaches: &[RoaringBitmap], tallies: &[RoaringBitmap], q: &Question) -> Answer {
        let mut seen = RoaringBitmap::new();
        let mut affected = RoaringBitmap::new();
        for side in &q.sides {
            let r = side
                .iter()
                .fold(RoaringBitmap::new(), |a, &i| a | &reaches[i as usize]);
            affected |= &seen & &r;
            seen |= r;
        }
        Answer {
            reaches: (q.sides.iter().flatten())
                .map(|&i| reaches[i as usize].intersection_len(&affected))
                .collect(),
            tallies: (q.tallies.iter())
                .map(|&i| tallies[i as usize].intersection_len(&affected))
                .collect(),
            affected,
        }
    }

    proptest! {
        #[test]
        fn answers_match_roaring(
            reaches in prop::collection::vec(reach(), 1..6),
            tallies in prop::collection::vec(reach(), 0..4),
            shapes in prop::collection::vec(
                (prop::collection::vec(prop::collection::vec(0usize..100, 1..3), 1..4),
                 prop::collection::vec(0usize..100, 0..4)),
                1..5,
            ),
        ) {
            let questions: Vec<Question> = shapes
                .into_iter()
                .map(|(sides, t)| Question {
                    sides: sides
                        .into_iter()
                        .map(|s| s.into_iter().map(|i| (i % reaches.len()) as u32).collect())
                        .collect(),
                    tallies: if tallies.is_empty() {
                        Vec::new()
                    } else {
                        t.into_iter().map(|i| (i % tallies.len()) as u32).collect()
                    },
                })
                .collect();
            let r: Vec<&RoaringBitmap> = reaches.iter().collect();
            let t: Vec<&RoaringBitmap> = tallies.iter().collect();
            let got = answer(&r, &t, &questions);
            for (q, a) in questions.iter().zip(got) {
                let want = plain(&reaches, &tallies, q);
                // As sets: roaring keeps a container of exactly 4,096
                // values as bits when made from bytes and as an array when
                // made by its set operations, and `==` tells those apart.
                prop_assert!(a.affected.iter().eq(want.affected.iter()));
                prop_assert_eq!((a.reaches, a.tallies), (want.reaches, want.tallies));
            }
        }
    }

    #[test]
    fn ranges_set_across_words() {
        let mut w = vec![0u64; WORDS];
        set_range(&mut w, 60, 130);
        set_range(&mut w, 65_535, 65_535);
        set_range(&mut w, 3, 3);
        let b = RoaringBitmap::from_lsb0_bytes(
            0,
            &w.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
        );
        let want: RoaringBitmap = (60..=130).chain([3, 65_535]).collect();
        assert_eq!(b, want);
    }
}
