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

/// Where stored parts are read back from: the snapshot file, opened once.
pub trait PartSource: Send + Sync {
    /// `len` bytes at `at` of the parts region.
    fn read(&self, at: u64, len: u64) -> std::io::Result<Vec<u8>>;
    /// The file, for the message when a part cannot be read.
    fn describe(&self) -> String;
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
    let result = f();
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
    let before = SOURCE.with(|s| s.borrow_mut().replace(source));
    let out = f();
    SOURCE.with(|s| *s.borrow_mut() = before);
    out
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
                // The part passed its checksum when the snapshot was written
                // and the file is held open: only a disk error or a change
                // made behind ringmaster's back gets here.
                Err(why) => panic!(
                    "the import snapshot {} cannot be read back ({why}); run the command again with --no-snapshot",
                    s.source.describe()
                ),
            }
        })
    }
}

fn read_stored<T: serde::de::DeserializeOwned>(s: &Stored) -> Result<T, String> {
    let bytes = s.source.read(s.at, s.len).map_err(|e| e.to_string())?;
    if crc32fast::hash(&bytes) != s.crc {
        return Err("checksum mismatch".into());
    }
    // A part may hold parts of its own (a column, its dictionary).
    read_parts(s.source.clone(), || postcard::from_bytes(&bytes)).map_err(|e| e.to_string())
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
        let collecting = SINK.with(|k| k.borrow().is_some());
        if !collecting {
            return Out::Inline(value).serialize(s);
        }
        let bytes = postcard::to_stdvec(value).map_err(S::Error::custom)?;
        let at = SINK.with(|k| {
            let mut k = k.borrow_mut();
            let sink = k.as_mut().expect("checked above");
            let at = sink.at;
            match (sink.write)(sink.out.as_mut(), &bytes) {
                Ok(()) => {
                    sink.at += bytes.len() as u64;
                    Ok(at)
                }
                Err(e) => {
                    let why = e.to_string();
                    sink.failed.get_or_insert(e);
                    Err(why)
                }
            }
        });
        let at = at.map_err(|why| S::Error::custom(format!("writing a part: {why}")))?;
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
                let source = SOURCE.with(|s| s.borrow().clone()).ok_or_else(|| {
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Memory(Vec<u8>);

    impl PartSource for Memory {
        fn read(&self, at: u64, len: u64) -> std::io::Result<Vec<u8>> {
            let (at, len) = (at as usize, len as usize);
            self.0
                .get(at..at + len)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| std::io::Error::other("past the end"))
        }
        fn describe(&self) -> String {
            "memory".into()
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
        let read: Pair =
            read_parts(Arc::new(Memory(parts)), || postcard::from_bytes(&head)).unwrap();
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
        let read: Pair =
            read_parts(Arc::new(Memory(parts)), || postcard::from_bytes(&head)).unwrap();
        let _ = *read.1;
    }

    #[test]
    fn a_changed_value_forgets_its_part() {
        let (head, parts) = written();
        let mut read: Pair =
            read_parts(Arc::new(Memory(parts)), || postcard::from_bytes(&head)).unwrap();
        read.0.push("d".into());
        let again = postcard::to_stdvec(&read).unwrap();
        let back: Pair = postcard::from_bytes(&again).unwrap();
        assert_eq!(back.0.len(), 3);
    }
}
