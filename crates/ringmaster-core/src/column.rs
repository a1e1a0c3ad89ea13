//! Columnar storage: every scalar property is a dictionary-encoded column,
//! so a rule predicate is evaluated once per distinct value, not once per row.

use crate::lazy::{Lazy, Slab};
use hashbrown::HashTable;
use rayon::prelude::*;
use roaring::{MultiOps, RoaringBitmap};
use rustc_hash::FxBuildHasher;
use std::hash::BuildHasher;
use std::sync::OnceLock;

mod codes;
pub use codes::{Codes, ColumnView};

/// Code 0 is reserved for "no value" (null / missing property).
pub const NULL: u32 = 0;

/// A column being imported with at least this many values, nearly all
/// distinct, appends its values rather than looking each one up.
const APPEND_FROM: usize = 1 << 14;

/// Dictionaries with more values than this give up their hash table when
/// their import ends ([`Dict::drop_large_table`]).
const LARGE_DICT: usize = 1 << 16;

/// Distinct strings of one column; index = code. The strings live in one
/// arena and the hash table holds only codes, so each string is stored once.
/// Serialized as the arena and its ends, which a snapshot keeps in place:
/// reading one value touches a few pages. The table is rebuilt when a
/// string is first looked up (most commands only read values by code).
#[derive(Debug, Clone)]
pub struct Dict {
    /// UTF-8 text of every value, one after another.
    arena: Slab<u8>,
    /// `ends[c]` is where value `c` ends in the arena; value 0 (null) is empty.
    ends: Slab<u64>,
    table: OnceLock<HashTable<Slot>>,
    /// The shortest and longest value in bytes (`(1, 0)` when there is
    /// none), kept as values are added so asking costs nothing.
    widths: (u32, u32),
    /// Values are appended without looking for an equal one, and
    /// [`Self::settle`] merges the equal ones afterwards: for columns of
    /// mostly distinct values (names, serials, times) while they are
    /// imported, where each lookup in a table of a million missed the
    /// cache and found nothing.
    appending: bool,
}

/// `widths` with one more value of `n` bytes.
fn widen((lo, hi): (u32, u32), n: u32) -> (u32, u32) {
    if lo > hi {
        (n, n)
    } else {
        (lo.min(n), hi.max(n))
    }
}

impl Default for Dict {
    fn default() -> Self {
        Self::new()
    }
}

/// A value's code and 32 bits of its hash: most codes whose value differs
/// are told apart without reading the value, and growing the table reads
/// no values at all.
#[derive(Debug, Clone, Copy)]
struct Slot {
    code: u32,
    hash: u32,
}

fn hash(s: &[u8]) -> u32 {
    let h = FxBuildHasher.hash_one(s);
    (h ^ (h >> 32)) as u32
}

/// The table's hash of a slot: the table takes its index from the low bits
/// and a tag from the top ones, so the 32 bits are spread over all 64.
fn spread(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl serde::Serialize for Dict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        assert!(!self.appending, "a dictionary written before it settled");
        (&self.arena, &self.ends, self.widths).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Dict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (arena, ends, widths) = <(Slab<u8>, Slab<u64>, (u32, u32))>::deserialize(d)?;
        // The ends are checked where they are read (each value is sliced
        // and decoded on its own), so a dictionary of a million values is
        // not read whole to open it; its bounds are checked here.
        if ends.at(0) != Some(0)
            || ends.at(ends.len().saturating_sub(1)) != Some(arena.len() as u64)
            || ends.len() > u32::MAX as usize
        {
            return Err(D::Error::custom("dictionary ends do not fit its text"));
        }
        Ok(Dict {
            arena,
            ends,
            table: OnceLock::new(),
            widths,
            appending: false,
        })
    }
}

impl Dict {
    pub fn new() -> Self {
        // Slot 0 stands for null so codes line up with `NULL`.
        Dict {
            arena: Slab::default(),
            ends: Slab::new(vec![0]),
            table: OnceLock::from(HashTable::new()),
            widths: (1, 0),
            appending: false,
        }
    }

    fn table(&self) -> &HashTable<Slot> {
        assert!(!self.appending, "a dictionary looked up before it settled");
        self.table.get_or_init(|| {
            let view = self.view();
            let mut table = HashTable::with_capacity(self.ends.len() - 1);
            for code in 1..self.ends.len() as u32 {
                let hash = hash(view.bytes(code).unwrap_or_default());
                table.insert_unique(spread(hash), Slot { code, hash }, |s| spread(s.hash));
            }
            table
        })
    }

    pub fn intern(&mut self, s: &str) -> u32 {
        if self.appending {
            return self.append(s);
        }
        let h = hash(s.as_bytes());
        self.table();
        let Dict {
            arena,
            ends,
            table,
            widths,
            ..
        } = self;
        let (arena, ends) = (arena.make_mut(), ends.make_mut());
        let table = table.get_mut().expect("built above");
        let at = |c: u32| &arena[ends[c as usize - 1] as usize..ends[c as usize] as usize];
        if let Some(slot) = table.find(spread(h), |x| x.hash == h && at(x.code) == s.as_bytes()) {
            return slot.code;
        }
        let code = ends.len() as u32;
        arena.extend_from_slice(s.as_bytes());
        ends.push(arena.len() as u64);
        *widths = widen(*widths, s.len() as u32);
        table.insert_unique(spread(h), Slot { code, hash: h }, |x| spread(x.hash));
        code
    }

    /// A new code for `s`, equal values or not (see `appending`).
    fn append(&mut self, s: &str) -> u32 {
        let (arena, ends) = (self.arena.make_mut(), self.ends.make_mut());
        arena.extend_from_slice(s.as_bytes());
        ends.push(arena.len() as u64);
        self.widths = widen(self.widths, s.len() as u32);
        ends.len() as u32 - 1
    }

    /// From now on appends values without looking them up, until
    /// [`Self::settle`]; the table is freed.
    fn start_appending(&mut self) {
        self.appending = true;
        self.table = OnceLock::new();
    }

    /// Merges the values appended twice (see `appending`): each keeps the
    /// code of its first occurrence, and the codes are renumbered in
    /// order, so they come out as interning each value would have made
    /// them. Returns the new code of each old one when any changed. Codes
    /// are spread over about one bucket each by the top bits of their
    /// hash (a counting pass and a scatter, no sort and no table), and
    /// only codes sharing a bucket are compared.
    fn settle(&mut self) -> Option<Vec<u32>> {
        if !std::mem::take(&mut self.appending) {
            return None;
        }
        let view = self.view();
        let n = view.ends.len();
        let bytes = |c: u32| view.bytes(c).unwrap_or_default();
        let hashes: Vec<u32> = (0..n as u32)
            .into_par_iter()
            .map(|c| hash(bytes(c)))
            .collect();
        let bits = (usize::BITS - n.leading_zeros()).clamp(1, 31);
        let bucket = |c: usize| (hashes[c] >> (32 - bits)) as usize;
        let mut start = vec![0u32; (1 << bits) + 1];
        for c in 1..n {
            start[bucket(c) + 1] += 1;
        }
        for b in 0..1 << bits {
            start[b + 1] += start[b];
        }
        // Each bucket's codes in increasing order: the first one holding a
        // value is met first.
        let mut slots = vec![0u32; n - 1];
        let mut fill = start.clone();
        for c in 1..n {
            let b = bucket(c);
            slots[fill[b] as usize] = c as u32;
            fill[b] += 1;
        }
        drop(fill);
        // The first code holding each code's value.
        let mut first: Vec<u32> = (0..n as u32).collect();
        let mut merged = false;
        for b in 0..1 << bits {
            let run = &mut slots[start[b] as usize..start[b + 1] as usize];
            if run.len() < 2 {
                continue;
            }
            // A long run is one value written many times: sorted by value,
            // not compared pair by pair.
            if run.len() > 32 {
                run.sort_unstable_by(|&a, &b| bytes(a).cmp(bytes(b)).then(a.cmp(&b)));
                for same in run.chunk_by(|&a, &b| bytes(a) == bytes(b)) {
                    for &c in &same[1..] {
                        first[c as usize] = same[0];
                        merged = true;
                    }
                }
                continue;
            }
            for i in 0..run.len() {
                let a = run[i];
                if first[a as usize] != a {
                    continue;
                }
                for &c in &run[i + 1..] {
                    if first[c as usize] == c
                        && hashes[c as usize] == hashes[a as usize]
                        && bytes(c) == bytes(a)
                    {
                        first[c as usize] = a;
                        merged = true;
                    }
                }
            }
        }
        if !merged {
            return None;
        }
        let mut remap = vec![NULL; n];
        let mut arena = Vec::with_capacity(view.arena.len());
        let mut ends = vec![0u64];
        for c in 1..n {
            if first[c] as usize == c {
                arena.extend_from_slice(bytes(c as u32));
                ends.push(arena.len() as u64);
                remap[c] = ends.len() as u32 - 1;
            } else {
                remap[c] = remap[first[c] as usize];
            }
        }
        self.arena = Slab::new(arena);
        self.ends = Slab::new(ends);
        self.table = OnceLock::new();
        Some(remap)
    }

    pub fn get(&self, s: &str) -> Option<u32> {
        let h = hash(s.as_bytes());
        self.table()
            .find(spread(h), |x| {
                x.hash == h && self.bytes(x.code) == Some(s.as_bytes())
            })
            .map(|x| x.code)
    }

    /// [`Self::get`] for many values, into `out` in their order. Looked up
    /// a batch at a time, each step for the whole batch (the table's slots,
    /// then the values they name), so the reads of different values, which
    /// miss the cache in a large dictionary, overlap rather than wait on
    /// one another. Takes the whole dictionary in hand ([`Self::view`]):
    /// for many values, not for one.
    pub fn get_many(&self, values: &[&str], out: &mut Vec<Option<u32>>) {
        const BATCH: usize = 16;
        let table = self.table();
        let view = self.view();
        for batch in values.chunks(BATCH) {
            let mut hashes = [0u32; BATCH];
            for (h, v) in hashes.iter_mut().zip(batch) {
                *h = hash(v.as_bytes());
            }
            // The first slot with the value's hash: almost always the value.
            let mut found = [None; BATCH];
            for (f, &h) in found.iter_mut().zip(&hashes).take(batch.len()) {
                *f = table.find(spread(h), |x| x.hash == h).map(|x| x.code);
            }
            for (f, v) in found.iter().zip(batch) {
                out.push(match *f {
                    None => None,
                    Some(code) if view.bytes(code) == Some(v.as_bytes()) => Some(code),
                    // Another value with the same 32 bits of hash.
                    Some(_) => self.get(v),
                });
            }
        }
    }

    /// The string for a code; `None` for `NULL` or an unknown code.
    /// Reads only this value's pages of a stored dictionary.
    pub fn value(&self, code: u32) -> Option<&str> {
        std::str::from_utf8(self.bytes(code)?).ok()
    }

    /// [`Self::value`]'s bytes, not checked to be UTF-8: for comparing.
    pub fn bytes(&self, code: u32) -> Option<&[u8]> {
        let c = code as usize;
        if code == NULL || c >= self.ends.len() {
            return None;
        }
        let e = self.ends.slice(c - 1..c + 1);
        let (from, to) = (usize::try_from(e[0]).ok()?, usize::try_from(e[1]).ok()?);
        if from > to || to > self.arena.len() {
            return None;
        }
        Some(self.arena.slice(from..to))
    }

    /// The whole dictionary checked and in hand, for passes over many
    /// values: reading from it costs no more than from a vector.
    pub fn view(&self) -> DictView<'_> {
        DictView {
            arena: &self.arena,
            ends: &self.ends,
        }
    }

    /// Every value by code (code 0, null, first).
    pub fn values(&self) -> impl Iterator<Item = Option<&str>> {
        let v = self.view();
        (0..v.ends.len() as u32).map(move |c| v.value(c))
    }

    /// The shortest and longest value in bytes; `(1, 0)` when there is none.
    pub fn widths(&self) -> (u32, u32) {
        self.widths
    }

    /// Number of codes including the null slot.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.len() <= 1
    }

    /// Frees the hash table of a large dictionary once its column is
    /// built: most commands read values by code, and the few that look
    /// values up rebuild it (as after reading a snapshot). A million ids
    /// kept their table at about 19 MB.
    pub fn drop_large_table(&mut self) {
        if self.ends.len() > LARGE_DICT {
            self.table = OnceLock::new();
        }
    }

    /// Makes room for `values` more values of about `bytes` bytes each, so
    /// a dictionary that will grow large does not grow by doubling.
    pub fn reserve(&mut self, values: usize, bytes: usize) {
        self.table();
        let table = self.table.get_mut().expect("built above");
        table.reserve(values, |x| spread(x.hash));
        self.ends.make_mut().reserve(values);
        self.arena.make_mut().reserve(values * bytes);
    }
}

/// A dictionary's text and ends, read whole: see [`Dict::view`].
#[derive(Clone, Copy)]
pub struct DictView<'a> {
    arena: &'a [u8],
    ends: &'a [u64],
}

impl<'a> DictView<'a> {
    /// As [`Dict::value`].
    pub fn value(&self, code: u32) -> Option<&'a str> {
        std::str::from_utf8(self.bytes(code)?).ok()
    }

    /// As [`Dict::bytes`].
    pub fn bytes(&self, code: u32) -> Option<&'a [u8]> {
        let c = code as usize;
        if code == NULL || c >= self.ends.len() {
            return None;
        }
        let (from, to) = (
            usize::try_from(self.ends[c - 1]).ok()?,
            usize::try_from(self.ends[c]).ok()?,
        );
        self.arena.get(from..to)
    }
}

/// One scalar property over all rows.
#[derive(Debug, Clone, Default)]
pub struct DictColumn {
    codes: Codes,
    /// Stored apart in a snapshot: a column read only for which rows
    /// hold a value (Intune's managed device id) never reads its strings.
    pub dict: Lazy<Dict>,
    /// Rows per code, built on first use for columns with few distinct values.
    postings: OnceLock<Option<Vec<RoaringBitmap>>>,
    /// For many distinct ASCII values: codes in case-folded order, and rows by code.
    sorted: OnceLock<Option<SortedIndex>>,
    /// The dictionary's length as its snapshot stored it, so that counting
    /// codes does not read the strings.
    stored_len: Option<usize>,
    /// The shortest and longest value in bytes, as stored: a search for a
    /// name in a column of ids knows it cannot match without reading them.
    stored_widths: Option<(u32, u32)>,
}

/// Written as codes, dictionary and, when the sorted index was built, its
/// order of codes: sorting a million names is the costly part, the rows by
/// code are one counting pass on reading.
impl serde::Serialize for DictColumn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let order = (self.sorted.get())
            .and_then(Option::as_ref)
            .map(|ix| &ix.order);
        let dict_len = self.dict_len() as u64;
        (&self.codes, dict_len, self.dict.widths(), &self.dict, order).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for DictColumn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (codes, dict_len, widths, dict, order) =
            <(Codes, u64, (u32, u32), Lazy<Dict>, Option<Slab<u32>>)>::deserialize(d)?;
        let col = DictColumn {
            codes,
            dict,
            postings: OnceLock::new(),
            sorted: OnceLock::new(),
            stored_len: Some(dict_len as usize),
            stored_widths: Some(widths),
        };
        if let Some(order) = order {
            // Only the length is checked here: checking every code would
            // read the whole column to open it. The values passed their
            // checksums, and they are what the import wrote.
            if order.len() + 1 != dict_len as usize {
                return Err(D::Error::custom("sorted order does not fit its dictionary"));
            }
            let ix = SortedIndex::new(order);
            let _ = col.sorted.set(Some(ix));
        }
        Ok(col)
    }
}

/// Lets `-eq`, `-in` and `-startsWith` on a column of mostly distinct values
/// (names, ids) find their codes by binary search instead of testing each value.
#[derive(Debug, Clone)]
struct SortedIndex {
    order: Slab<u32>,
    /// Rows of code `c`: `rows[offsets[c]..offsets[c + 1]]`, as
    /// `(offsets, rows)`; built on the first lookup, which most commands
    /// reading a snapshot never make.
    by_code: OnceLock<(Vec<u32>, Vec<u32>)>,
    /// Lookups answered by scanning the codes: the first one is (finding
    /// one device), later ones build `by_code` (evaluating many rules).
    scanned: OnceLock<()>,
}

impl SortedIndex {
    /// The index of `order`: codes `1..n` in case-folded order.
    fn new(order: Slab<u32>) -> SortedIndex {
        SortedIndex {
            order,
            by_code: OnceLock::new(),
            scanned: OnceLock::new(),
        }
    }

    /// Rows by code over `codes`, each below `n`.
    fn by_code(&self, codes: ColumnView<'_>, n: usize) -> (&[u32], &[u32]) {
        let (offsets, rows) = self.by_code.get_or_init(|| {
            let mut offsets = vec![0u32; n + 1];
            crate::each_width!(codes, codes => {
                for &c in codes {
                    offsets[c as usize + 1] += 1;
                }
            });
            for i in 0..n {
                offsets[i + 1] += offsets[i];
            }
            let mut fill = offsets.clone();
            let mut rows = vec![0u32; codes.len()];
            crate::each_width!(codes, codes => {
                for (row, &c) in codes.iter().enumerate() {
                    let c = c as usize;
                    rows[fill[c] as usize] = row as u32;
                    fill[c] += 1;
                }
            });
            (offsets, rows)
        });
        (offsets, rows)
    }
}

/// Codes `1..` in case-folded order of their values. Sorted first by the
/// first 16 bytes folded into one number (comparing numbers is several
/// times faster than comparing bytes one by one), then each run of equal
/// beginnings by the whole values.
fn fold_order(dict: DictView<'_>) -> Vec<u32> {
    let value = |c: u32| dict.bytes(c).unwrap_or_default();
    let head = |c: u32| {
        let mut b = [0u8; 16];
        for (d, s) in b.iter_mut().zip(value(c)) {
            *d = s.to_ascii_lowercase();
        }
        u128::from_be_bytes(b)
    };
    let mut keyed: Vec<(u128, u32)> = (1..dict.ends.len() as u32)
        .into_par_iter()
        .map(|c| (head(c), c))
        .collect();
    keyed.par_sort_unstable();
    // Runs of equal beginnings: values longer than 16 bytes, or with a
    // zero byte, are told apart by the whole comparison.
    let runs: Vec<&mut [(u128, u32)]> = (keyed.chunk_by_mut(|a, b| a.0 == b.0))
        .filter(|run| run.len() > 1)
        .collect();
    runs.into_par_iter().for_each(|run| {
        run.sort_unstable_by(|a, b| cmp_fold(value(a.1), value(b.1)).then(a.1.cmp(&b.1)))
    });
    keyed.into_iter().map(|(_, c)| c).collect()
}

fn cmp_fold(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x.to_ascii_lowercase(), y.to_ascii_lowercase());
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

/// Up to this many codes, a lookup scans the codes instead of building
/// rows by code.
const FEW_CODES: usize = 4;

/// Columns with at least this many rows per distinct value get posting lists.
const ROWS_PER_VALUE_FOR_POSTINGS: usize = 16;

impl DictColumn {
    /// Number of codes, the null one included: `dict.len()`, without
    /// reading a stored dictionary's strings.
    pub fn dict_len(&self) -> usize {
        match self.stored_len {
            Some(n) if !self.dict.is_loaded() => n,
            _ => self.dict.len(),
        }
    }

    /// Whether a value `len` bytes long can be in the column, without
    /// reading a stored dictionary's strings.
    pub fn may_hold_len(&self, len: usize) -> bool {
        let (lo, hi) = match self.stored_widths {
            Some(w) if !self.dict.is_loaded() => w,
            _ => self.dict.widths(),
        };
        (lo as usize..=hi as usize).contains(&len)
    }

    /// Sets a row's value and returns its code.
    pub fn set(&mut self, row: u32, value: Option<&str>) -> u32 {
        let r = row as usize;
        let code = match value {
            Some(v) => self.dict.intern(v),
            None => NULL,
        };
        self.codes.set(r, code);
        self.postings = OnceLock::new();
        self.sorted = OnceLock::new();
        code
    }

    /// Sets rows' values in turn, as [`Self::set`] would one by one; a
    /// write marked `if_empty` leaves a row that already has a value.
    pub fn set_all<'a>(&mut self, writes: impl IntoIterator<Item = (u32, &'a str, bool)>) {
        let dict = &mut *self.dict;
        let codes = &mut self.codes;
        for (row, v, if_empty) in writes {
            let r = row as usize;
            if !(if_empty && codes.at(r).is_some_and(|c| c != NULL)) {
                codes.set(r, dict.intern(v));
            }
        }
        // Mostly distinct so far: append from now on (see `Dict::appending`).
        // Id columns, which the import looks rows up by, never come here.
        if !dict.appending && dict.len() >= APPEND_FROM && dict.len() * 8 >= codes.len() * 7 {
            dict.start_appending();
        }
        self.postings = OnceLock::new();
        self.sorted = OnceLock::new();
    }

    pub fn get(&self, row: u32) -> Option<&str> {
        self.dict.value(self.code(row))
    }

    /// The row's code, reading only its chunk of a stored column.
    pub fn code(&self, row: u32) -> u32 {
        self.codes.at(row as usize).unwrap_or(NULL)
    }

    /// Every row's code at hand (the column checked once), for passes over
    /// many rows: [`Self::code`] reads each row from the stored array.
    pub fn view(&self) -> ColumnView<'_> {
        self.codes.view()
    }

    /// The codes as stored (for comparing columns).
    pub fn codes(&self) -> &Codes {
        &self.codes
    }

    /// The number of rows the column has codes for (all of them once finished).
    pub fn rows(&self) -> usize {
        self.codes.len()
    }

    /// Makes room for `rows` more rows of distinct values.
    pub fn reserve(&mut self, rows: usize) {
        let largest = (self.dict.len() + rows).min(u32::MAX as usize) as u32;
        self.codes.reserve(rows, largest);
    }

    /// Pads the column so it has exactly `rows` entries, merges the values
    /// it appended twice, and narrows its codes to what its dictionary needs.
    pub fn finish(&mut self, rows: usize) {
        self.codes.resize(rows);
        if let Some(remap) = self.dict.settle() {
            self.codes.remap(&remap);
        }
        self.codes.fit(self.dict.len().saturating_sub(1) as u32);
        self.postings = OnceLock::new();
        self.sorted = OnceLock::new();
    }

    /// Moves row `order[i]` to row `i`.
    pub(crate) fn permute(&mut self, order: &[u32]) {
        self.codes.permute(order);
        self.postings = OnceLock::new();
        self.sorted = OnceLock::new();
    }

    fn sorted(&self) -> Option<&SortedIndex> {
        self.sorted
            .get_or_init(|| {
                let n = self.dict.len();
                if n * ROWS_PER_VALUE_FOR_POSTINGS <= self.codes.len() || n < 1024 {
                    return None;
                }
                if !self
                    .dict
                    .values()
                    .skip(1)
                    .all(|v| v.is_some_and(str::is_ascii))
                {
                    return None;
                }
                Some(SortedIndex::new(Slab::new(fold_order(self.dict.view()))))
            })
            .as_ref()
    }

    /// Builds the sorted index now where the column gets one, so that a
    /// snapshot written afterwards carries it.
    pub fn prepare_lookups(&self) {
        let _ = self.sorted();
    }

    /// Rows whose value equals one of `values`, or starts with `prefix`,
    /// ignoring ASCII case, when the column has a sorted index. `None`
    /// means "no index: test each value instead".
    pub fn lookup(&self, values: &[&str], prefix: bool) -> Option<RoaringBitmap> {
        let ix = self.sorted()?;
        // A non-ASCII operand cannot match an all-ASCII column; the others
        // in a list still can.
        let values: Vec<&str> = values.iter().copied().filter(|v| v.is_ascii()).collect();
        if values.is_empty() {
            return Some(RoaringBitmap::new());
        }
        // The first lookup (finding one device) reads one entry of the
        // order and one value per probe, a few pages of a stored column;
        // later ones (evaluating many rules) take the whole column in hand.
        let first = ix.by_code.get().is_none() && ix.scanned.set(()).is_ok();
        let whole = (!first).then(|| (&*ix.order, self.dict.view()));
        let value = |i: usize| -> (u32, &[u8]) {
            let c = match &whole {
                Some((order, _)) => order.get(i).copied(),
                None => ix.order.at(i),
            };
            let c = c.unwrap_or(NULL);
            let text = match &whole {
                Some((_, dict)) => dict.bytes(c),
                None => self.dict.bytes(c),
            };
            (c, text.unwrap_or_default())
        };
        let mut codes = Vec::new();
        for v in values {
            let v = v.as_bytes();
            let (mut lo, mut hi) = (0, ix.order.len());
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if cmp_fold(value(mid).1, v).is_lt() {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            for i in lo..ix.order.len() {
                let (c, s) = value(i);
                // A code outside the dictionary (a damaged order) is no hit.
                if c == NULL || c as usize >= self.dict_len() {
                    break;
                }
                let hit = if prefix {
                    s.len() >= v.len() && s[..v.len()].eq_ignore_ascii_case(v)
                } else {
                    s.eq_ignore_ascii_case(v)
                };
                if !hit {
                    break;
                }
                codes.push(c);
            }
        }
        if codes.is_empty() {
            return Some(RoaringBitmap::new());
        }
        let mut rows = Vec::new();
        if codes.len() <= FEW_CODES && first {
            // A name or two, once: one pass over the codes costs less than
            // building rows by code for the whole column.
            rows.extend(
                (self.view().iter().enumerate())
                    .filter(|(_, c)| codes.contains(c))
                    .map(|(r, _)| r as u32),
            );
        } else {
            let (offsets, by_code) = ix.by_code(self.view(), self.dict_len());
            for c in codes {
                rows.extend_from_slice(
                    &by_code[offsets[c as usize] as usize..offsets[c as usize + 1] as usize],
                );
            }
        }
        // Many rows (a prefix of names) are set as bits rather than sorted.
        if rows.len() * 64 > self.codes.len() {
            let mut bits = vec![0u8; self.codes.len().div_ceil(8)];
            for r in rows {
                bits[r as usize >> 3] |= 1 << (r & 7);
            }
            return Some(RoaringBitmap::from_lsb0_bytes(0, &bits));
        }
        rows.sort_unstable();
        rows.dedup();
        Some(RoaringBitmap::from_sorted_iter(rows).expect("sorted"))
    }

    fn postings(&self) -> Option<&[RoaringBitmap]> {
        self.postings
            .get_or_init(|| {
                if self.dict_len() * ROWS_PER_VALUE_FOR_POSTINGS > self.codes.len() {
                    return None;
                }
                let mut rows: Vec<Vec<u32>> = vec![Vec::new(); self.dict_len()];
                crate::each_width!(self.view(), codes => {
                    for (row, &c) in codes.iter().enumerate() {
                        rows[c as usize].push(row as u32);
                    }
                });
                Some(
                    rows.into_iter()
                        .map(|r| RoaringBitmap::from_sorted_iter(r).expect("ascending"))
                        .collect(),
                )
            })
            .as_deref()
    }

    /// The rows holding `code`: its posting list when the column has them,
    /// else one scan.
    pub fn rows_of(&self, code: u32) -> std::borrow::Cow<'_, RoaringBitmap> {
        match self.postings().and_then(|p| p.get(code as usize)) {
            Some(rows) => std::borrow::Cow::Borrowed(rows),
            None => {
                let hit: Vec<bool> = (0..self.dict_len() as u32).map(|c| c == code).collect();
                std::borrow::Cow::Owned(self.select(&hit))
            }
        }
    }

    /// Rows whose code satisfies `hit[code]`: a union of posting lists where
    /// the column has them (or the complement of one, when most codes hit),
    /// otherwise one scan of the codes.
    pub fn select(&self, hit: &[bool]) -> RoaringBitmap {
        if let Some(post) = self.postings() {
            let hits = hit.iter().filter(|h| **h).count();
            if hits * 2 <= hit.len() {
                return post
                    .iter()
                    .zip(hit)
                    .filter(|(_, h)| **h)
                    .map(|(p, _)| p)
                    .union();
            }
            let mut all = RoaringBitmap::new();
            all.insert_range(0..self.codes.len() as u32);
            return all
                - post
                    .iter()
                    .zip(hit)
                    .filter(|(_, h)| !**h)
                    .map(|(p, _)| p)
                    .union();
        }
        // One bit per row, eight rows a byte without branching, then the
        // bitmap built from the bits: far faster than inserting row by row.
        let bits: Vec<u8> = crate::each_width!(self.view(), codes => {
            (codes.chunks(8))
                .map(|rows| {
                    (rows.iter().enumerate())
                        .fold(0u8, |b, (i, &c)| b | (u8::from(hit[c as usize]) << i))
                })
                .collect()
        });
        RoaringBitmap::from_lsb0_bytes(0, &bits)
    }
}

/// A multi-valued property (e.g. `devicePhysicalIds`): each row holds a list
/// of codes into a shared dictionary of elements.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MultiColumn {
    /// `offsets[row]..offsets[row + 1]` indexes into `items`.
    pub offsets: Slab<u32>,
    pub items: Slab<u32>,
    pub dict: Dict,
    /// For record lists (`assignedPlans`): the field values of each element code.
    pub records: Vec<Vec<Option<Box<str>>>>,
    #[serde(with = "known_fields")]
    pub fields: Vec<&'static str>,
    /// Empty once finished, which is when an org is serialized.
    #[serde(skip)]
    pending: Vec<(u32, u32, u32)>,
    /// The codes `pending` points into: (row, from, to).
    #[serde(skip)]
    pending_items: Vec<u32>,
}

impl Default for MultiColumn {
    fn default() -> Self {
        MultiColumn {
            offsets: Slab::new(vec![0]),
            items: Slab::default(),
            dict: Dict::new(),
            records: vec![Vec::new()],
            fields: Vec::new(),
            pending: Vec::new(),
            pending_items: Vec::new(),
        }
    }
}

/// A multi-valued column's arrays read whole: see [`MultiColumn::view`].
#[derive(Clone, Copy)]
pub struct MultiView<'a> {
    offsets: &'a [u32],
    items: &'a [u32],
}

impl<'a> MultiView<'a> {
    /// As [`MultiColumn::row`].
    pub fn row(&self, row: u32) -> &'a [u32] {
        let r = row as usize;
        match self.offsets.get(r..r + 2) {
            Some(&[from, to]) => self.items.get(from as usize..to as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Record field names are static; reading maps them back to the known ones.
mod known_fields {
    use crate::model::ASSIGNED_PLAN_FIELDS;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[&'static str], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<&'static str>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|f| {
                ASSIGNED_PLAN_FIELDS
                    .iter()
                    .find(|k| **k == f)
                    .copied()
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown record field {f}")))
            })
            .collect()
    }
}

impl MultiColumn {
    pub fn with_fields(fields: &[&'static str]) -> Self {
        MultiColumn {
            fields: fields.to_vec(),
            ..Default::default()
        }
    }

    /// Records the values of one row; rows may arrive in any order.
    pub fn set<'a>(&mut self, row: u32, values: impl IntoIterator<Item = &'a str>) {
        let from = self.pending_items.len() as u32;
        for v in values {
            let code = self.dict.intern(v);
            self.pending_items.push(code);
        }
        self.pending
            .push((row, from, self.pending_items.len() as u32));
    }

    /// Records a list of records; each record's key is its fields joined, so
    /// equal records share a code.
    pub fn set_records(&mut self, row: u32, records: Vec<Vec<Option<String>>>) {
        let mut codes = Vec::with_capacity(records.len());
        for rec in records {
            let key: String = rec
                .iter()
                .map(|f| f.as_deref().unwrap_or("\u{0}"))
                .collect::<Vec<_>>()
                .join("\u{1}");
            let before = self.dict.len();
            let code = self.dict.intern(&key);
            if self.dict.len() > before {
                self.records
                    .push(rec.into_iter().map(|f| f.map(Into::into)).collect());
            }
            codes.push(code);
        }
        let from = self.pending_items.len() as u32;
        self.pending_items.extend(codes);
        self.pending
            .push((row, from, self.pending_items.len() as u32));
    }

    /// Lays the pending rows out densely for `rows` rows.
    pub fn finish(&mut self, rows: usize) {
        let mut pending = std::mem::take(&mut self.pending);
        let codes = std::mem::take(&mut self.pending_items);
        // Stable: of a row set twice, the first write is kept.
        pending.sort_by_key(|p| p.0);
        let mut offsets = Vec::with_capacity(rows + 1);
        let mut items = Vec::with_capacity(codes.len());
        offsets.push(0u32);
        let mut it = pending.into_iter().peekable();
        for row in 0..rows as u32 {
            while it.next_if(|p| p.0 < row).is_some() {}
            if let Some((_, from, to)) = it.next_if(|p| p.0 == row) {
                items.extend_from_slice(&codes[from as usize..to as usize]);
            }
            offsets.push(items.len() as u32);
        }
        self.offsets = Slab::new(offsets);
        self.items = Slab::new(items);
    }

    /// Moves row `order[i]` to row `i` (after [`finish`](Self::finish)).
    pub(crate) fn permute(&mut self, order: &[u32]) {
        let mut offsets = Vec::with_capacity(order.len() + 1);
        let mut items = Vec::with_capacity(self.items.len());
        offsets.push(0u32);
        let (from, all) = (&*self.offsets, &*self.items);
        for &r in order {
            let r = r as usize;
            items.extend_from_slice(&all[from[r] as usize..from[r + 1] as usize]);
            offsets.push(items.len() as u32);
        }
        self.offsets = Slab::new(offsets);
        self.items = Slab::new(items);
    }

    /// The row's codes, reading only their part of a stored column.
    pub fn row(&self, row: u32) -> &[u32] {
        crate::lazy::csr_row(&self.offsets, &self.items, row)
    }

    /// Every row's codes at hand, for passes over the whole table.
    pub fn view(&self) -> MultiView<'_> {
        MultiView {
            offsets: &self.offsets,
            items: &self.items,
        }
    }

    pub fn values(&self, row: u32) -> impl Iterator<Item = &str> {
        self.row(row).iter().filter_map(|&c| self.dict.value(c))
    }

    /// The fields of a record element.
    pub fn record(&self, code: u32) -> &[Option<Box<str>>] {
        self.records
            .get(code as usize)
            .map(|r| &r[..])
            .unwrap_or(&[])
    }

    pub fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_found_as_one_by_one() {
        let mut d = Dict::new();
        let values: Vec<String> = (0..200_000).map(|i| format!("v{i}")).collect();
        for v in &values {
            d.intern(v);
        }
        // Among 200,000 values some share 32 bits of hash (the birthday
        // bound): the batch must tell them apart by their text.
        let mut by_hash = std::collections::HashMap::new();
        let shared = values
            .iter()
            .filter(|v| by_hash.insert(hash(v.as_bytes()), ()).is_some())
            .count();
        assert!(
            shared > 0,
            "no two values share a hash: the test shows nothing"
        );
        let asked: Vec<&str> = (values.iter().map(String::as_str))
            .chain(["", "v-1", "v200000", "V1"])
            .collect();
        let mut got = Vec::new();
        d.get_many(&asked, &mut got);
        let want: Vec<Option<u32>> = asked.iter().map(|v| d.get(v)).collect();
        assert_eq!(got, want);
        assert_eq!(
            got[..values.len()].iter().filter(|c| c.is_none()).count(),
            0
        );
        assert_eq!(&got[values.len()..], &[None, None, None, None]);
    }

    #[test]
    fn dict_column_select_and_nulls() {
        let mut c = DictColumn::default();
        c.set(0, Some("Sales"));
        c.set(2, Some("IT"));
        c.set(3, Some("Sales"));
        c.finish(5);
        assert_eq!(c.get(1), None);
        assert_eq!(c.get(3), Some("Sales"));
        let sales = c.dict.get("Sales").unwrap() as usize;
        let mut hit = vec![false; c.dict.len()];
        hit[sales] = true;
        assert_eq!(c.select(&hit).iter().collect::<Vec<_>>(), vec![0, 3]);
        hit[NULL as usize] = true;
        assert_eq!(c.select(&hit).iter().collect::<Vec<_>>(), vec![0, 1, 3, 4]);
    }

    #[test]
    fn posting_lists_agree_with_scans() {
        let mut c = DictColumn::default();
        let values = [Some("windows"), Some("macOS"), None, Some("iOS")];
        for row in 0..1000u32 {
            c.set(row, values[(row * 7 % 4) as usize]);
        }
        c.finish(1000);
        assert!(c.postings().is_some());
        for mask in 0..16u32 {
            let hit: Vec<bool> = (0..c.dict.len() as u32)
                .map(|code| mask >> code & 1 == 1)
                .collect();
            let want: Vec<u32> = (0..1000).filter(|r| hit[c.code(*r) as usize]).collect();
            assert_eq!(
                c.select(&hit).iter().collect::<Vec<_>>(),
                want,
                "mask {mask}"
            );
        }
    }

    #[test]
    fn sorted_index_agrees_with_scans() {
        let mut c = DictColumn::default();
        for row in 0..5000u32 {
            let v = match row % 5 {
                0 => None,
                1 => Some(format!("US-{row:05}")),
                2 => Some(format!("us-{row:05}")),
                3 => Some(format!("GB-{row:05}")),
                _ => Some(format!("U{row}")),
            };
            c.set(row, v.as_deref());
        }
        c.set(4999, Some("US-00001"));
        c.finish(5000);
        let scan = |f: &dyn Fn(&str) -> bool| -> Vec<u32> {
            (0..5000).filter(|r| c.get(*r).is_some_and(f)).collect()
        };
        let got = |vals: &[&str], prefix| {
            c.lookup(vals, prefix)
                .expect("indexed")
                .iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            got(&["us-"], true),
            scan(&|v| v.to_ascii_lowercase().starts_with("us-"))
        );
        assert_eq!(
            got(&["u"], true),
            scan(&|v| v.to_ascii_lowercase().starts_with('u'))
        );
        assert_eq!(
            got(&["us-00001", "gb-00003"], false),
            scan(&|v| v.eq_ignore_ascii_case("US-00001") || v.eq_ignore_ascii_case("GB-00003"))
        );
        assert_eq!(got(&["zz"], true), Vec::<u32>::new());
        assert_eq!(got(&["é"], true), Vec::<u32>::new());
        // A list mixing a value no row can hold with one that rows hold.
        assert_eq!(
            got(&["us-00001", "zürich"], false),
            scan(&|v| v.eq_ignore_ascii_case("US-00001"))
        );
    }

    #[test]
    fn a_written_column_brings_its_sorted_order_and_refuses_a_wrong_one() {
        let mut c = DictColumn::default();
        for row in 0..3000u32 {
            c.set(
                row,
                Some(&format!(
                    "{}-{row:05}",
                    ["US", "gb", "Nl"][row as usize % 3]
                )),
            );
        }
        c.finish(3000);
        // Without the index built, none is written.
        let plain = serde_json::to_value(&c).unwrap();
        assert!(plain[4].is_null());
        c.prepare_lookups();
        let text = serde_json::to_string(&c).unwrap();
        let read: DictColumn = serde_json::from_str(&text).unwrap();
        assert!(
            read.sorted.get().is_some(),
            "read with its index, not sorted again"
        );
        for (vals, prefix) in [(&["us-"][..], true), (&["gb-00001", "NL-00002"][..], false)] {
            assert_eq!(read.lookup(vals, prefix), c.lookup(vals, prefix));
        }
        assert_eq!(read.lookup(&["nl-0000"], true).unwrap().len(), 3);
        // An order of another length is refused; one naming codes the
        // dictionary does not have finds nothing there, and never panics.
        let order = c.sorted().expect("indexed").order.to_vec();
        let with_order = |o: &[u32]| {
            let len = c.dict.len() as u64;
            let widths = c.dict.widths();
            let text = serde_json::to_string(&(
                &c.codes,
                len,
                widths,
                &c.dict,
                Some(Slab::new(o.to_vec())),
            ))
            .unwrap();
            serde_json::from_str::<DictColumn>(&text)
        };
        assert!(with_order(&order).is_ok());
        let err = with_order(&order[1..]).unwrap_err();
        assert!(err.to_string().contains("sorted order"), "{err}");
        let wild: Vec<u32> = order.iter().map(|c| c + 1_000_000).collect();
        let read = with_order(&wild).unwrap();
        assert_eq!(read.lookup(&["us-"], true).unwrap().len(), 0);
    }

    #[test]
    fn widths_bound_what_a_column_can_hold() {
        let mut c = DictColumn::default();
        assert!(!c.may_hold_len(0), "an empty column holds nothing");
        c.set(0, Some("abc"));
        c.set(1, Some("abcdefg"));
        c.set(2, None);
        assert_eq!(c.dict.widths(), (3, 7));
        assert!(c.may_hold_len(3) && c.may_hold_len(5) && c.may_hold_len(7));
        assert!(!c.may_hold_len(2) && !c.may_hold_len(8));
    }

    /// A column imported in batches switches to appending once nearly all
    /// its values differ; merged at the end, its codes and dictionary are
    /// those of interning every value, whatever the batches.
    #[test]
    fn appended_values_settle_as_interned_ones() {
        let n = APPEND_FROM as u32 * 2;
        // Distinct names, then repeats of earlier ones, overwrites and
        // fills of empty rows only.
        let mut writes: Vec<(u32, String, bool)> =
            (0..n).map(|r| (r, format!("pc-{r}"), false)).collect();
        writes.extend(
            (0..n)
                .step_by(7)
                .map(|r| (r, format!("pc-{}", r / 3), false)),
        );
        writes.extend((0..n + 50).map(|r| (r, format!("pc-{}", r % 100), true)));
        writes.extend((n..n + 100).map(|r| (r, "pc-1".to_string(), false)));
        let mut one = DictColumn::default();
        for (r, v, if_empty) in &writes {
            if !(*if_empty && one.code(*r) != NULL) {
                one.set(*r, Some(v));
            }
        }
        one.finish(n as usize + 110);
        for batch in [1000, 5000, writes.len()] {
            let mut c = DictColumn::default();
            for w in writes.chunks(batch) {
                c.set_all(w.iter().map(|(r, v, e)| (*r, v.as_str(), *e)));
            }
            assert!(c.dict.appending || batch == writes.len(), "batch {batch}");
            c.finish(n as usize + 110);
            assert!(!c.dict.appending);
            assert_eq!(c.codes(), one.codes(), "batch {batch}");
            assert!(c.dict.values().eq(one.dict.values()), "batch {batch}");
            assert_eq!(c.dict.get("pc-7"), one.dict.get("pc-7"));
        }
    }

    /// A large dictionary without its table still finds, and interns
    /// without duplicating, every value (the table is rebuilt); its column
    /// keeps every code at the width it grew to.
    #[test]
    fn a_large_dictionary_finds_values_after_its_table_is_dropped() {
        let mut c = DictColumn::default();
        let n = LARGE_DICT as u32 + 10;
        for row in 0..n {
            c.set(row, Some(&format!("id-{row}")));
        }
        c.finish(n as usize);
        assert!(matches!(c.codes(), Codes::U32(_)));
        c.dict.drop_large_table();
        assert!(c.dict.table.get().is_none(), "dropped");
        assert_eq!(c.dict.get("id-65540"), Some(65_541));
        assert_eq!(c.dict.intern("id-5"), 6);
        assert_eq!(c.dict.len(), n as usize + 1);
        assert_eq!(c.get(n - 1), Some(format!("id-{}", n - 1).as_str()));
        let mut small = Dict::new();
        small.intern("a");
        small.drop_large_table();
        assert!(small.table.get().is_some(), "a small table is kept");
    }

    #[test]
    fn dict_interns_once_and_finds_by_text() {
        let mut d = Dict::new();
        let a = d.intern("alpha");
        let b = d.intern("beta");
        assert_eq!(d.intern("alpha"), a);
        assert_ne!(a, b);
        assert_eq!(d.get("beta"), Some(b));
        assert_eq!(d.get("gamma"), None);
        assert_eq!(d.value(a), Some("alpha"));
        assert_eq!(d.value(NULL), None);
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn multi_column_rows_out_of_order() {
        let mut m = MultiColumn::default();
        m.set(2, ["a", "b"]);
        m.set(0, ["b"]);
        m.finish(4);
        assert_eq!(m.values(0).collect::<Vec<_>>(), vec!["b"]);
        assert!(m.values(1).next().is_none());
        assert_eq!(m.values(2).collect::<Vec<_>>(), vec!["a", "b"]);
        assert!(m.values(3).next().is_none());
    }
}
