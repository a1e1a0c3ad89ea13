//! The hot loop of a whole-fleet analysis: where two sides meet, every device
//! of every policy on the larger side is tested against the smaller side,
//! counted, and kept. Roaring does the test and the union in two passes and
//! recounts its containers on each union; here the smaller side is laid out
//! as plain words over the span it covers, each reach once as a sorted list
//! (sparse), words (dense) or only the words it fills (a few sites' devices,
//! which clustered rows keep side by side), and the three happen in one pass.

use roaring::RoaringBitmap;

/// A reach laid out for [`Window::meet`].
pub(super) enum Flat {
    /// The devices, ascending.
    Sparse(Vec<u32>),
    /// Bit `i` of word `w` is device `64 * (first + w) + i`.
    Dense { first: usize, words: Vec<u64> },
    /// Only the words that hold devices: bit `i` of `words[k]` is device
    /// `64 * at[k] + i`. Devices of one group or site tend to sit together
    /// (imports list them so), so a reach of a few sites spans the fleet
    /// but fills few words.
    Words { at: Vec<u32>, words: Vec<u64> },
}

impl Flat {
    /// A list when fewer than two devices share a word on average (testing
    /// device by device then beats whole words); words otherwise, only the
    /// ones that hold devices when those are fewer than half.
    pub(super) fn new(b: &RoaringBitmap) -> Flat {
        let (Some(min), Some(max)) = (b.min(), b.max()) else {
            return Flat::Sparse(Vec::new());
        };
        let list = || {
            let mut ids = Vec::with_capacity(b.len() as usize);
            b.iter().for_each(|d| ids.push(d));
            Flat::Sparse(ids)
        };
        let sparse = |filled: usize| b.len() <= 2 * filled as u64;
        let first = word(min);
        let span = word(max) - first + 1;
        if (b.len() as usize) < span / 8 {
            // Few devices over a wide span: gather the words they fill
            // rather than lay the whole span out.
            let (mut at, mut words) = (Vec::new(), Vec::<u64>::new());
            b.iter().for_each(|d| {
                let w = word(d) as u32;
                if at.last() != Some(&w) {
                    at.push(w);
                    words.push(0);
                }
                if let Some(x) = words.last_mut() {
                    *x |= bit(d);
                }
            });
            return if sparse(at.len()) {
                list()
            } else {
                Flat::Words { at, words }
            };
        }
        let mut words = vec![0u64; span];
        lay_out(b, first, &mut words);
        let filled = words.iter().filter(|w| **w != 0).count();
        if sparse(filled) {
            return list();
        }
        if 2 * filled >= span {
            return Flat::Dense { first, words };
        }
        let (at, words): (Vec<u32>, Vec<u64>) = (words.into_iter().enumerate())
            .filter(|(_, w)| *w != 0)
            .map(|(k, w)| ((first + k) as u32, w))
            .unzip();
        Flat::Words { at, words }
    }

    /// The first and last word it touches.
    fn span(&self) -> Option<(usize, usize)> {
        match self {
            Flat::Sparse(v) => Some((word(*v.first()?), word(*v.last()?))),
            Flat::Dense { first, words } => Some((*first, first + words.len().checked_sub(1)?)),
            Flat::Words { at, .. } => Some((*at.first()? as usize, *at.last()? as usize)),
        }
    }
}

/// Sets the bits of `b` in `words` (word 0 is word `first` of the bitmap).
///
/// Roaring keeps dense chunks as words already but does not lend them out; its
/// standard serialized form (RoaringFormatSpec) carries them as they are, so
/// they are copied from there instead of set device by device.
fn lay_out(b: &RoaringBitmap, first: usize, words: &mut [u64]) {
    let mut buf = Vec::with_capacity(b.serialized_size());
    b.serialize_into(&mut buf).expect("writing to memory");
    let u16_at = |at: usize| u16::from_le_bytes([buf[at], buf[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
    // Header: the container count, which containers are runs, where the
    // key/cardinality pairs start, and whether an offset table follows them.
    let cookie = u32_at(0);
    let (count, runs_at, pairs_at, offsets) = if cookie == 12346 {
        (u32_at(4) as usize, None, 8, true)
    } else {
        assert_eq!(cookie & 0xFFFF, 12347, "roaring serialized cookie");
        let count = (cookie >> 16) as usize + 1;
        (count, Some(4), 4 + count.div_ceil(8), count >= 4)
    };
    let mut at = pairs_at + 4 * count + if offsets { 4 * count } else { 0 };
    // Chunks can start before the span (they hold nothing there).
    let mut or = |w: usize, x: u64| {
        if let Some(t) = words.get_mut(w.wrapping_sub(first)) {
            *t |= x;
        }
    };
    for c in 0..count {
        let key = u32::from(u16_at(pairs_at + 4 * c)) << 16;
        let cardinality = usize::from(u16_at(pairs_at + 4 * c + 2)) + 1;
        let run = runs_at.is_some_and(|r| buf[r + c / 8] & (1 << (c % 8)) != 0);
        if run {
            let n = usize::from(u16_at(at));
            for r in 0..n {
                let start = key | u32::from(u16_at(at + 2 + 4 * r));
                let len = u32::from(u16_at(at + 4 + 4 * r));
                (start..=start + len).for_each(|d| or(word(d), bit(d)));
            }
            at += 2 + 4 * n;
        } else if cardinality > 4096 {
            let base = (key / 64) as usize;
            for k in 0..1024 {
                let x = u64::from_le_bytes(buf[at + 8 * k..at + 8 * k + 8].try_into().expect("8"));
                or(base + k, x);
            }
            at += 8 * 1024;
        } else {
            for k in 0..cardinality {
                let d = key | u32::from(u16_at(at + 2 * k));
                or(word(d), bit(d));
            }
            at += 2 * cardinality;
        }
    }
}

fn word(d: u32) -> usize {
    (d / 64) as usize
}

fn bit(d: u32) -> u64 {
    1 << (d % 64)
}

/// The union of some reaches as words, over the span they cover.
pub(super) struct Window {
    first: usize,
    words: Vec<u64>,
}

impl Window {
    pub(super) fn of(reaches: &[&Flat]) -> Window {
        let spans: Vec<(usize, usize)> = reaches.iter().filter_map(|f| f.span()).collect();
        let (Some(first), Some(last)) = (
            spans.iter().map(|s| s.0).min(),
            spans.iter().map(|s| s.1).max(),
        ) else {
            return Window {
                first: 0,
                words: Vec::new(),
            };
        };
        let mut words = vec![0u64; last - first + 1];
        for f in reaches {
            match f {
                Flat::Sparse(v) => {
                    for &d in v {
                        words[word(d) - first] |= bit(d);
                    }
                }
                Flat::Dense {
                    first: at,
                    words: w,
                } => {
                    for (k, x) in w.iter().enumerate() {
                        words[at + k - first] |= x;
                    }
                }
                Flat::Words { at, words: w } => {
                    for (&k, x) in at.iter().zip(w) {
                        words[k as usize - first] |= x;
                    }
                }
            }
        }
        Window { first, words }
    }

    /// The window's span with no devices in it, for [`meet`](Self::meet).
    pub(super) fn blank(&self) -> Window {
        Window {
            first: self.first,
            words: vec![0; self.words.len()],
        }
    }

    /// How many devices of `reach` are in the window; they are added to
    /// `kept`, a window of the same span.
    pub(super) fn meet(&self, reach: &Flat, kept: &mut Window) -> u64 {
        debug_assert_eq!(
            (kept.first, kept.words.len()),
            (self.first, self.words.len())
        );
        self.pass::<true>(reach, &mut kept.words)
    }

    /// How many devices of `reach` are in the window.
    pub(super) fn count(&self, reach: &Flat) -> u64 {
        self.pass::<false>(reach, &mut [])
    }

    fn pass<const KEEP: bool>(&self, reach: &Flat, kept: &mut [u64]) -> u64 {
        let end = self.first + self.words.len();
        let mut n = 0;
        match reach {
            Flat::Sparse(v) => {
                // Only the part of the list inside the window.
                let lo = v.partition_point(|&d| word(d) < self.first);
                let hi = v.partition_point(|&d| word(d) < end);
                let words = &self.words[..];
                let kept = if KEEP { &mut kept[..words.len()] } else { kept };
                for &d in &v[lo..hi] {
                    let w = word(d) - self.first;
                    let hit = words[w] & bit(d);
                    n += u64::from(hit != 0);
                    if KEEP {
                        kept[w] |= hit;
                    }
                }
            }
            Flat::Dense { first, words } => {
                let (lo, hi) = ((*first).max(self.first), (first + words.len()).min(end));
                for w in lo..hi {
                    let hit = self.words[w - self.first] & words[w - first];
                    n += u64::from(hit.count_ones());
                    if KEEP {
                        kept[w - self.first] |= hit;
                    }
                }
            }
            Flat::Words { at, words } => {
                let lo = at.partition_point(|&k| (k as usize) < self.first);
                let hi = at.partition_point(|&k| (k as usize) < end);
                for (&k, &x) in at[lo..hi].iter().zip(&words[lo..hi]) {
                    let w = k as usize - self.first;
                    let hit = self.words[w] & x;
                    n += u64::from(hit.count_ones());
                    if KEEP {
                        kept[w] |= hit;
                    }
                }
            }
        }
        n
    }

    pub(super) fn bitmap(&self) -> RoaringBitmap {
        let bytes: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let offset = u32::try_from(self.first * 64).expect("devices are u32");
        RoaringBitmap::from_lsb0_bytes(offset, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bitmap(v: &[u32]) -> RoaringBitmap {
        v.iter().copied().collect()
    }

    /// Reaches sparse and dense, in lists, words and runs.
    fn reach() -> impl Strategy<Value = RoaringBitmap> {
        prop_oneof![
            prop::collection::vec(0u32..5_000, 0..300),
            (0u32..3_000).prop_map(|s| (s..s + 900).filter(|d| d % 3 != 0).collect()),
            // Dense chunks, whole and in runs, around chunk boundaries.
            (0u32..200_000, 4_000u32..70_000)
                .prop_map(|(s, n)| (s..s + n).filter(|d| d % 5 != 1).collect()),
            (0u32..200_000, 1u32..140_000).prop_map(|(s, n)| (s..s + n).collect()),
            // A few full blocks far apart: a reach of some sites.
            prop::collection::vec((0u32..1_000_000, 64u32..2_000), 1..4)
                .prop_map(|blocks| { blocks.into_iter().flat_map(|(s, n)| s..s + n).collect() }),
        ]
        .prop_map(|v: Vec<u32>| {
            let mut b = bitmap(&v);
            b.optimize();
            b
        })
    }

    proptest! {
        #[test]
        fn meeting_matches_roaring(
            small in prop::collection::vec(reach(), 1..4),
            large in prop::collection::vec(reach(), 1..6),
        ) {
            let flats: Vec<Flat> = small.iter().map(Flat::new).collect();
            let window = Window::of(&flats.iter().collect::<Vec<_>>());
            let union: RoaringBitmap = small.iter().fold(RoaringBitmap::new(), |a, b| a | b);
            prop_assert_eq!(window.bitmap(), union.clone());
            let mut kept = window.blank();
            let mut met = RoaringBitmap::new();
            for b in &large {
                let flat = Flat::new(b);
                let n = window.meet(&flat, &mut kept);
                prop_assert_eq!(n, b.intersection_len(&union));
                prop_assert_eq!(window.count(&flat), n);
                met |= b & &union;
            }
            prop_assert_eq!(kept.bitmap(), met);
        }
    }

    #[test]
    fn sparse_and_dense_layouts_are_chosen_by_density() {
        assert!(matches!(
            Flat::new(&bitmap(&[1, 1_000_000])),
            Flat::Sparse(_)
        ));
        let full: RoaringBitmap = (640..1280).collect();
        let Flat::Dense { first, words } = Flat::new(&full) else {
            panic!("a full range is dense");
        };
        assert_eq!((first, words.len()), (10, 10));
        // Blocks of devices far apart keep only their words, whether the
        // span is laid out (two blocks of 50,000) or not (two of 1,000).
        for n in [1_000, 50_000] {
            let blocks: RoaringBitmap = (0..n).chain(1_000_000..1_000_000 + n).collect();
            let Flat::Words { at, words } = Flat::new(&blocks) else {
                panic!("blocks far apart keep only their words");
            };
            let per_block = (n as usize).div_ceil(64);
            assert_eq!((at.len(), words.len()), (2 * per_block, 2 * per_block));
            assert_eq!(at[per_block], 1_000_000 / 64);
        }
        assert!(
            Window::of(&[&Flat::new(&RoaringBitmap::new())])
                .words
                .is_empty()
        );
    }

    #[test]
    fn the_top_of_the_id_range_meets() {
        let top = bitmap(&[u32::MAX - 70, u32::MAX]);
        let window = Window::of(&[&Flat::new(&top)]);
        let mut kept = window.blank();
        let all: RoaringBitmap = (u32::MAX - 100..=u32::MAX).collect();
        assert_eq!(window.meet(&Flat::new(&all), &mut kept), 2);
        assert_eq!(kept.bitmap(), top);
    }
}
