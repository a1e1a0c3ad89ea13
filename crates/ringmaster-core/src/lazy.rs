//! Parts of an organization that a snapshot stores apart and a command
//! reads only when it touches them.
//!
//! A warm command used to decode the whole snapshot (every device's ids,
//! names and serials) even when it only counts devices per platform or
//! explains one device. A [`Lazy`] column is written to a separate region
//! of the snapshot, and the organization keeps only where it is; the first
//! access reads and checks it.
//!
//! Serde has no way to hand a serializer a side channel, so the region
//! travels through a thread-local for the duration of one call:
//! [`write_parts`] writes out the parts of what it serializes, [`read_parts`]
//! tells the deserializer where they are. Outside those calls a `Lazy`
//! serializes inline, so other formats (JSON in tests) see plain values.

use serde::{Deserialize, Serialize};
use std::any::Any;
use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, OnceLock};

/// Where stored parts are read back from: the parts region of the
/// snapshot file, mapped into memory once.
pub trait PartSource: Send + Sync {
    /// The whole parts region.
    fn bytes(&self) -> &[u8];
    /// The file, for the message when a part fails its check.
    fn describe(&self) -> String;
    /// A part failed its checksum: make sure the file is not read again;
    /// whether that worked.
    fn damaged(&self) -> bool;
}

/// How the message of a refused part begins, so that a command line can
/// tell it from a fault and end with it as an error.
pub const DAMAGED: &str = "the import snapshot ";

/// Stops the command on a part that fails its check: its data is never
/// used, and the source forgets the file so the next run imports again.
/// (Checking every part on opening would read the whole file, which costs
/// more than explaining one device.)
fn refuse(source: &dyn PartSource, why: &str) -> ! {
    let next = if source.damaged() {
        "it has been removed, so running the command again imports the exports anew"
    } else {
        "it could not be removed: run the command again with --no-snapshot"
    };
    panic!("{DAMAGED}{} is damaged ({why}); {next}", source.describe())
}

/// Where parts go while [`write_parts`] runs: the caller's writer (as
/// `Any`, so that it can be handed back), how to write to it, and how far
/// the region has come.
struct Sink {
    out: Box<dyn Any>,
    write: fn(&mut dyn Any, &[u8]) -> std::io::Result<()>,
    at: u64,
    failed: Option<std::io::Error>,
}

fn write_any<W: Write + 'static>(out: &mut dyn Any, bytes: &[u8]) -> std::io::Result<()> {
    out.downcast_mut::<W>()
        .expect("the sink holds the writer write_parts was given")
        .write_all(bytes)
}

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
    static SOURCE: RefCell<Option<Arc<dyn PartSource>>> = const { RefCell::new(None) };
}

/// Serializes with `f` while writing the parts of every [`Lazy`] in it to
/// `out`, one after another as serialization meets them (so the region is
/// never held in memory): `f`'s result and `out` back, or the first error
/// writing to it.
pub fn write_parts<W: Write + 'static, R>(
    out: W,
    f: impl FnOnce() -> R,
) -> (R, std::io::Result<W>) {
    let sink = Sink {
        out: Box::new(out),
        write: write_any::<W>,
        at: 0,
        failed: None,
    };
    let before = SINK.with(|s| s.borrow_mut().replace(sink));
    // Put back what was there even if `f` panics (a caught panic must not
    // leave the next serialization writing here).
    struct Restore(Option<Option<Sink>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(before) = self.0.take() {
                SINK.with(|s| *s.borrow_mut() = before);
            }
        }
    }
    let mut restore = Restore(Some(before));
    let result = f();
    let before = restore.0.take().expect("not yet restored");
    let sink = SINK
        .with(|s| std::mem::replace(&mut *s.borrow_mut(), before))
        .expect("set above");
    let out = match sink.failed {
        Some(e) => Err(e),
        None => Ok(*sink.out.downcast::<W>().expect("the writer given")),
    };
    (result, out)
}

/// Deserializes with `f`, the parts of every [`Lazy`] in it to be read from
/// `source` when first touched.
pub fn read_parts<R>(source: Arc<dyn PartSource>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<dyn PartSource>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SOURCE.with(|s| *s.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(SOURCE.with(|s| s.borrow_mut().replace(source)));
    f()
}

struct Stored {
    source: Arc<dyn PartSource>,
    at: u64,
    len: u64,
    crc: u32,
}

/// A value read from its stored part on first use. Derefs to the value.
pub struct Lazy<T> {
    cell: OnceLock<T>,
    stored: Option<Stored>,
}

impl<T> Lazy<T> {
    pub fn new(value: T) -> Self {
        Lazy {
            cell: OnceLock::from(value),
            stored: None,
        }
    }

    /// Whether the value is in memory (read, or never stored).
    pub fn is_loaded(&self) -> bool {
        self.cell.get().is_some()
    }
}

impl<T: serde::de::DeserializeOwned> Lazy<T> {
    fn load(&self) -> &T {
        self.cell.get_or_init(|| {
            let s = self
                .stored
                .as_ref()
                .expect("a Lazy holds its value or where it is stored");
            match read_stored(s) {
                Ok(v) => v,
                // The part passed its checksum when the snapshot was
                // written: only a disk error or a change made behind
                // ringmaster's back gets here.
                Err(why) => refuse(&*s.source, &why),
            }
        })
    }
}

fn read_stored<T: serde::de::DeserializeOwned>(s: &Stored) -> Result<T, String> {
    let bytes = region(s.source.bytes(), s.at, s.len).ok_or("a part past the end of the file")?;
    if crc32fast::hash(bytes) != s.crc {
        return Err("checksum mismatch".into());
    }
    // A part may hold parts of its own (a column, its dictionary).
    read_parts(s.source.clone(), || postcard::from_bytes(bytes)).map_err(|e| e.to_string())
}

impl<T: serde::de::DeserializeOwned> std::ops::Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.load()
    }
}

impl<T: serde::de::DeserializeOwned> std::ops::DerefMut for Lazy<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.load();
        // Changed in memory: the stored part no longer describes it.
        self.stored = None;
        self.cell.get_mut().expect("loaded above")
    }
}

impl<T: Default> Default for Lazy<T> {
    fn default() -> Self {
        Lazy::new(T::default())
    }
}

impl<T: Clone + serde::de::DeserializeOwned> Clone for Lazy<T> {
    fn clone(&self) -> Self {
        Lazy::new(self.load().clone())
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.cell.get(), &self.stored) {
            (Some(v), _) => v.fmt(f),
            (None, Some(s)) => write!(f, "<stored: {} bytes at {}>", s.len, s.at),
            (None, None) => f.write_str("<empty>"),
        }
    }
}

#[derive(Serialize)]
enum Out<'a, T> {
    Inline(&'a T),
    Stored { at: u64, len: u64, crc: u32 },
}

#[derive(Deserialize)]
enum In<T> {
    Inline(T),
    Stored { at: u64, len: u64, crc: u32 },
}

impl<T: Serialize + serde::de::DeserializeOwned> Serialize for Lazy<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let value = self.load();
        if !collecting() {
            return Out::Inline(value).serialize(s);
        }
        let bytes = postcard::to_stdvec(value).map_err(S::Error::custom)?;
        let at = write_part(&bytes, 1)
            .map_err(|why| S::Error::custom(format!("writing a part: {why}")))?;
        let stored: Out<'_, T> = Out::Stored {
            at,
            len: bytes.len() as u64,
            crc: crc32fast::hash(&bytes),
        };
        stored.serialize(s)
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Lazy<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match In::<T>::deserialize(d)? {
            In::Inline(v) => Ok(Lazy::new(v)),
            In::Stored { at, len, crc } => {
                let source = current_source().ok_or_else(|| {
                    D::Error::custom("a part stored apart, read without its snapshot")
                })?;
                Ok(Lazy {
                    cell: OnceLock::new(),
                    stored: Some(Stored {
                        source,
                        at,
                        len,
                        crc,
                    }),
                })
            }
        }
    }
}

fn region(bytes: &[u8], at: u64, len: u64) -> Option<&[u8]> {
    let at = usize::try_from(at).ok()?;
    bytes.get(at..at.checked_add(usize::try_from(len).ok()?)?)
}

/// Bytes covered by one checksum of a stored [`Slab`]: reading one value
/// of a million-entry dictionary checks 64 KiB, not the whole array.
const CHUNK: usize = 64 << 10;

/// Where a slab's stored array starts in the region: aligned for any `T`.
const SLAB_ALIGN: u64 = 8;

/// A plain array (`u8`, `u32`, `u64`) that a snapshot stores as is and a
/// command reads in place from the mapped file: no copy, no fresh pages,
/// and only the pages it touches. Derefs to a slice; [`Slab::make_mut`]
/// gives a vector to change. Each 64 KiB of a stored array has a CRC-32,
/// checked the first time a read covers it.
pub struct Slab<T> {
    repr: Repr<T>,
}

enum Repr<T> {
    Owned(Vec<T>),
    Stored(StoredSlab),
}

struct StoredSlab {
    source: Arc<dyn PartSource>,
    /// Byte offset and length in the parts region.
    at: usize,
    len: usize,
    crcs: Box<[u32]>,
    checked: Box<[std::sync::atomic::AtomicBool]>,
    all_checked: std::sync::atomic::AtomicBool,
}

impl StoredSlab {
    fn bytes(&self) -> &[u8] {
        &self.source.bytes()[self.at..self.at + self.len]
    }

    /// Checks the chunks holding bytes `from..to` that no read has checked.
    fn check(&self, from: usize, to: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.all_checked.load(Relaxed) || from >= to {
            return;
        }
        let bytes = self.bytes();
        for k in from / CHUNK..to.div_ceil(CHUNK) {
            if self.checked[k].load(Relaxed) {
                continue;
            }
            let chunk = &bytes[k * CHUNK..((k + 1) * CHUNK).min(self.len)];
            if crc32fast::hash(chunk) != self.crcs[k] {
                refuse(&*self.source, "checksum mismatch");
            }
            // Checking a chunk twice on a race is harmless.
            self.checked[k].store(true, Relaxed);
        }
        if from == 0 && to == self.len {
            self.all_checked.store(true, Relaxed);
        }
    }
}

impl<T: bytemuck::Pod> Slab<T> {
    pub fn new(values: Vec<T>) -> Self {
        Slab {
            repr: Repr::Owned(values),
        }
    }

    /// The values `range` (indices), checking only what it covers.
    pub fn slice(&self, range: std::ops::Range<usize>) -> &[T] {
        match &self.repr {
            Repr::Owned(v) => &v[range],
            Repr::Stored(s) => {
                let size = std::mem::size_of::<T>();
                assert!(range.start <= range.end && range.end * size <= s.len);
                s.check(range.start * size, range.end * size);
                &bytemuck::cast_slice(s.bytes())[range]
            }
        }
    }

    /// Value `i`, checking only its chunk; `None` past the end.
    pub fn at(&self, i: usize) -> Option<T> {
        (i < self.len()).then(|| self.slice(i..i + 1)[0])
    }

    /// The number of values, without reading them.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Owned(v) => v.len(),
            Repr::Stored(s) => s.len / std::mem::size_of::<T>(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as a vector to change (a stored array is copied first).
    #[inline]
    pub fn make_mut(&mut self) -> &mut Vec<T> {
        if let Repr::Stored(_) = self.repr {
            self.own();
        }
        match &mut self.repr {
            Repr::Owned(v) => v,
            Repr::Stored(_) => unreachable!("made owned above"),
        }
    }
}

impl<T: bytemuck::Pod> Slab<T> {
    /// Copies a stored array out; apart from [`Slab::make_mut`], which
    /// column writes call once per value, so that it stays small enough
    /// to inline.
    #[cold]
    #[inline(never)]
    fn own(&mut self) {
        self.repr = Repr::Owned(self.to_vec());
    }
}

impl<T: bytemuck::Pod> std::ops::Deref for Slab<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match &self.repr {
            Repr::Owned(v) => v,
            Repr::Stored(s) => {
                s.check(0, s.len);
                bytemuck::cast_slice(s.bytes())
            }
        }
    }
}

/// Changing values in place copies a stored array out first.
impl<T: bytemuck::Pod> std::ops::DerefMut for Slab<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.make_mut()
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            repr: Repr::Owned(Vec::new()),
        }
    }
}

impl<'a, T: bytemuck::Pod> IntoIterator for &'a Slab<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T: bytemuck::Pod> FromIterator<T> for Slab<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Slab::new(iter.into_iter().collect())
    }
}

impl<T: bytemuck::Pod> From<Vec<T>> for Slab<T> {
    fn from(v: Vec<T>) -> Self {
        Slab::new(v)
    }
}

impl<T: bytemuck::Pod> Clone for Slab<T> {
    fn clone(&self) -> Self {
        match &self.repr {
            Repr::Owned(v) => Slab::new(v.clone()),
            Repr::Stored(s) => {
                use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
                Slab {
                    repr: Repr::Stored(StoredSlab {
                        source: s.source.clone(),
                        at: s.at,
                        len: s.len,
                        crcs: s.crcs.clone(),
                        checked: s
                            .checked
                            .iter()
                            .map(|c| AtomicBool::new(c.load(Relaxed)))
                            .collect(),
                        all_checked: AtomicBool::new(s.all_checked.load(Relaxed)),
                    }),
                }
            }
        }
    }
}

impl<T: bytemuck::Pod + PartialEq> PartialEq for Slab<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: bytemuck::Pod + std::fmt::Debug> std::fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.repr {
            Repr::Owned(v) => v.fmt(f),
            Repr::Stored(s) => write!(f, "<stored: {} bytes at {}>", s.len, s.at),
        }
    }
}

/// The array's bytes in little-endian order, the stored layout.
fn le_bytes<T: bytemuck::Pod>(values: &[T]) -> std::borrow::Cow<'_, [u8]> {
    let bytes: &[u8] = bytemuck::cast_slice(values);
    if cfg!(target_endian = "little") {
        return bytes.into();
    }
    let size = std::mem::size_of::<T>();
    bytes
        .chunks_exact(size)
        .flat_map(|c| c.iter().rev().copied())
        .collect::<Vec<u8>>()
        .into()
}

/// The values of little-endian `bytes`, which hold a whole number of them.
fn from_le_bytes<T: bytemuck::Pod>(bytes: &[u8]) -> Vec<T> {
    let size = std::mem::size_of::<T>();
    let mut out: Vec<T> = vec![T::zeroed(); bytes.len() / size];
    let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut out);
    dst.copy_from_slice(&bytes[..dst.len()]);
    if cfg!(target_endian = "big") {
        dst.chunks_exact_mut(size).for_each(<[u8]>::reverse);
    }
    out
}

#[derive(Serialize)]
enum SlabOut<'a> {
    #[serde(with = "bytes_inline")]
    Inline(&'a [u8]),
    Stored {
        at: u64,
        len: u64,
        crcs: Vec<u32>,
    },
}

#[derive(Deserialize)]
enum SlabIn {
    #[serde(with = "bytes_inline")]
    Inline(Vec<u8>),
    Stored {
        at: u64,
        len: u64,
        crcs: Vec<u32>,
    },
}

/// Bytes as one byte string (a list of numbers in JSON).
mod bytes_inline {
    pub fn serialize<S: serde::Serializer>(v: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> serde::de::Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

/// Whether [`write_parts`] is collecting parts on this thread.
fn collecting() -> bool {
    SINK.with(|k| k.borrow().is_some())
}

/// The source [`read_parts`] set on this thread.
fn current_source() -> Option<Arc<dyn PartSource>> {
    SOURCE.with(|s| s.borrow().clone())
}

/// Writes `bytes` to the sink at an offset aligned to `align` (at most
/// [`SLAB_ALIGN`]): where they start, or why they could not be written.
fn write_part(bytes: &[u8], align: u64) -> Result<u64, String> {
    SINK.with(|k| {
        let mut k = k.borrow_mut();
        let sink = k.as_mut().expect("called while collecting");
        let pad = (align - sink.at % align) % align;
        let zeros = [0u8; SLAB_ALIGN as usize];
        let written = (sink.write)(sink.out.as_mut(), &zeros[..pad as usize])
            .and_then(|()| (sink.write)(sink.out.as_mut(), bytes));
        match written {
            Ok(()) => {
                let at = sink.at + pad;
                sink.at = at + bytes.len() as u64;
                Ok(at)
            }
            Err(e) => {
                let why = e.to_string();
                sink.failed.get_or_insert(e);
                Err(why)
            }
        }
    })
}

/// Row `i` of a compressed-sparse-row pair, `values[offsets[i]..offsets[i +
/// 1]]`, reading only those entries of stored arrays; empty past the end or
/// where the offsets do not fit.
pub fn csr_row<'a, T: bytemuck::Pod>(offsets: &Slab<u32>, values: &'a Slab<T>, i: u32) -> &'a [T] {
    let i = i as usize;
    if i + 1 >= offsets.len() {
        return &[];
    }
    let o = offsets.slice(i..i + 2);
    let (from, to) = (o[0] as usize, o[1] as usize);
    if from > to || to > values.len() {
        return &[];
    }
    values.slice(from..to)
}

impl<T: bytemuck::Pod> Serialize for Slab<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let bytes = le_bytes(self);
        if !collecting() {
            return SlabOut::Inline(&bytes).serialize(s);
        }
        let at = write_part(&bytes, SLAB_ALIGN)
            .map_err(|why| S::Error::custom(format!("writing a part: {why}")))?;
        SlabOut::Stored {
            at,
            len: bytes.len() as u64,
            crcs: bytes.chunks(CHUNK).map(crc32fast::hash).collect(),
        }
        .serialize(s)
    }
}

impl<'de, T: bytemuck::Pod> Deserialize<'de> for Slab<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        use std::sync::atomic::AtomicBool;
        let size = std::mem::size_of::<T>();
        let (at, len, crcs) = match SlabIn::deserialize(d)? {
            SlabIn::Inline(bytes) if bytes.len() % size == 0 => {
                return Ok(Slab::new(from_le_bytes(&bytes)));
            }
            SlabIn::Inline(_) => return Err(D::Error::custom("an array cut inside a value")),
            SlabIn::Stored { at, len, crcs } => (at, len, crcs),
        };
        let source = current_source()
            .ok_or_else(|| D::Error::custom("an array stored apart, read without its snapshot"))?;
        // Checked here, so that no read can fall outside the region, cut a
        // value or cast misaligned bytes.
        let fits = region(source.bytes(), at, len).is_some_and(|b| {
            b.len() % size == 0 && b.as_ptr().align_offset(std::mem::align_of::<T>()) == 0
        });
        if !fits || crcs.len() != (len as usize).div_ceil(CHUNK) {
            return Err(D::Error::custom("an array that does not fit its snapshot"));
        }
        let stored = StoredSlab {
            source,
            at: at as usize,
            len: len as usize,
            checked: crcs.iter().map(|_| AtomicBool::new(false)).collect(),
            crcs: crcs.into(),
            all_checked: AtomicBool::new(false),
        };
        if cfg!(target_endian = "big") {
            stored.check(0, stored.len);
            return Ok(Slab::new(from_le_bytes(stored.bytes())));
        }
        Ok(Slab {
            repr: Repr::Stored(stored),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A region in memory, aligned as a mapped file is.
    struct Memory(Vec<u64>, usize);

    impl Memory {
        fn new(bytes: Vec<u8>) -> Arc<Memory> {
            let mut words = vec![0u64; bytes.len().div_ceil(8)];
            bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
            Arc::new(Memory(words, bytes.len()))
        }
    }

    impl PartSource for Memory {
        fn bytes(&self) -> &[u8] {
            &bytemuck::cast_slice(&self.0)[..self.1]
        }
        fn describe(&self) -> String {
            "memory".into()
        }
        fn damaged(&self) -> bool {
            true
        }
    }

    type Pair = (Lazy<Vec<String>>, Lazy<u64>);

    fn written() -> (Vec<u8>, Vec<u8>) {
        let v: Pair = (Lazy::new(vec!["a".into(), "bc".into()]), Lazy::new(7));
        let (head, parts) = write_parts(Vec::new(), || postcard::to_stdvec(&v).unwrap());
        (head, parts.unwrap())
    }

    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_is_an_error_not_a_short_region() {
        let v = Lazy::new(vec![1u32, 2, 3]);
        let (head, out) = write_parts(Full, || postcard::to_stdvec(&v));
        assert!(head.is_err());
        assert!(out.err().unwrap().to_string().contains("disk full"));
    }

    #[test]
    fn parts_are_read_when_touched() {
        let (head, parts) = written();
        assert!(!parts.is_empty());
        let read: Pair = read_parts(Memory::new(parts), || postcard::from_bytes(&head)).unwrap();
        assert!(!read.0.is_loaded() && !read.1.is_loaded());
        assert_eq!(*read.1, 7);
        assert!(!read.0.is_loaded(), "touching one part leaves the other");
        assert_eq!(read.0.join(","), "a,bc");
    }

    #[test]
    fn outside_a_snapshot_values_are_inline() {
        let v = Lazy::new(vec![1u32, 2]);
        let text = serde_json::to_string(&v).unwrap();
        let back: Lazy<Vec<u32>> = serde_json::from_str(&text).unwrap();
        assert_eq!(*back, vec![1, 2]);
        // A stored part cannot be read without its source.
        let (head, _) = written();
        assert!(postcard::from_bytes::<Pair>(&head).is_err());
    }

    #[test]
    #[should_panic(expected = "checksum mismatch")]
    fn a_damaged_part_is_never_used() {
        let (head, mut parts) = written();
        let last = parts.len() - 1;
        parts[last] ^= 1;
        let read: Pair = read_parts(Memory::new(parts), || postcard::from_bytes(&head)).unwrap();
        let _ = *read.1;
    }

    #[test]
    fn a_changed_value_forgets_its_part() {
        let (head, parts) = written();
        let mut read: Pair =
            read_parts(Memory::new(parts), || postcard::from_bytes(&head)).unwrap();
        read.0.push("d".into());
        let again = postcard::to_stdvec(&read).unwrap();
        let back: Pair = postcard::from_bytes(&again).unwrap();
        assert_eq!(back.0.len(), 3);
    }

    /// An array of `n` values written as a snapshot writes it: its
    /// skeleton and the parts region.
    fn stored_slab(n: u32) -> (Vec<u8>, Vec<u8>) {
        let v: Slab<u32> = Slab::new((0..n).collect());
        let (head, parts) = write_parts(Vec::new(), || postcard::to_stdvec(&v).unwrap());
        (head, parts.unwrap())
    }

    #[test]
    fn a_slab_reads_in_place_and_checks_what_it_reads() {
        let n = (3 * CHUNK / 4) as u32;
        let (head, mut parts) = stored_slab(n);
        assert_eq!(parts.len(), n as usize * 4, "stored as is");
        // Damage the last chunk: reading the first one still works...
        let last = parts.len() - 1;
        parts[last] ^= 0x80;
        let read: Slab<u32> =
            read_parts(Memory::new(parts), || postcard::from_bytes(&head)).unwrap();
        assert_eq!(read.len(), n as usize);
        assert_eq!(read.at(5), Some(5));
        assert_eq!(read.slice(10..13), &[10, 11, 12]);
        // Across the first two chunks' border.
        let border = CHUNK / 4;
        let across: Vec<u32> = (border as u32 - 2..border as u32 + 2).collect();
        assert_eq!(read.slice(border - 2..border + 2), &across[..]);
        assert_eq!(read.at(n as usize), None);
        // ...and reading the damaged one is refused.
        let whole =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read.iter().copied().max()));
        assert!(whole.is_err(), "the damaged chunk is never used");
    }

    #[test]
    fn a_slab_round_trips_inline_and_stored_and_can_be_changed() {
        let v: Slab<u64> = Slab::new(vec![1, u64::MAX, 3]);
        let text = serde_json::to_string(&v).unwrap();
        let back: Slab<u64> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
        let (head, parts) = stored_slab(1000);
        let mut read: Slab<u32> =
            read_parts(Memory::new(parts), || postcard::from_bytes(&head)).unwrap();
        assert_eq!(read.iter().sum::<u32>(), 999 * 1000 / 2);
        read.make_mut().push(7);
        assert_eq!(read.len(), 1001);
        assert_eq!(read.at(1000), Some(7));
        // A region that does not hold the array is refused on reading.
        let (head, mut parts) = stored_slab(1000);
        parts.truncate(100);
        let short: Result<Slab<u32>, _> =
            read_parts(Memory::new(parts), || postcard::from_bytes(&head));
        assert!(short.is_err());
    }

    #[test]
    fn slabs_after_other_parts_are_aligned() {
        let v = (Lazy::new(vec![1u8]), Slab::new(vec![u64::MAX, 2]));
        let (head, parts) = write_parts(Vec::new(), || postcard::to_stdvec(&v).unwrap());
        let read: (Lazy<Vec<u8>>, Slab<u64>) =
            read_parts(Memory::new(parts.unwrap()), || postcard::from_bytes(&head)).unwrap();
        assert_eq!(&*read.1, &[u64::MAX, 2]);
        assert_eq!(*read.0, vec![1]);
    }

    #[test]
    fn empty_arrays_and_dictionaries_read_back_and_a_read_dictionary_grows() {
        use crate::column::Dict;
        let mut d = Dict::new();
        for v in ["b", "a", "ü", "b"] {
            d.intern(v);
        }
        let v = (Slab::<u32>::new(Vec::new()), Dict::new(), d);
        let (head, parts) = write_parts(Vec::new(), || postcard::to_stdvec(&v).unwrap());
        let (empty, none, mut d): (Slab<u32>, Dict, Dict) =
            read_parts(Memory::new(parts.unwrap()), || postcard::from_bytes(&head)).unwrap();
        assert!(empty.is_empty() && empty.at(0).is_none());
        assert_eq!(
            (none.len(), none.value(1), none.values().count()),
            (1, None, 1)
        );
        assert_eq!(d.len(), 4);
        assert_eq!(
            (d.value(3), d.get("a"), d.get("ü")),
            (Some("ü"), Some(2), Some(3))
        );
        // Interning copies the stored dictionary out, old codes kept.
        assert_eq!(d.intern("a"), 2);
        assert_eq!(d.intern("c"), 4);
        assert_eq!(
            d.values().collect::<Vec<_>>(),
            [None, Some("b"), Some("a"), Some("ü"), Some("c")]
        );
    }

    #[test]
    fn a_panic_inside_leaves_no_region_behind() {
        let (head, parts) = stored_slab(4);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read_parts(Memory::new(parts), || panic!("inside"))
        }));
        assert!(caught.is_err());
        // The source is gone: a stored array cannot be read without it.
        assert!(postcard::from_bytes::<Slab<u32>>(&head).is_err());
        let caught = std::panic::catch_unwind(|| write_parts(Vec::new(), || panic!("inside")));
        assert!(caught.is_err());
        // And serializing writes inline again.
        let text = serde_json::to_string(&Slab::new(vec![1u32])).unwrap();
        assert!(!text.contains("Stored"), "{text}");
    }
}
