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
//! [`write_parts`] collects the parts of what it serializes, [`read_parts`]
//! tells the deserializer where they are. Outside those calls a `Lazy`
//! serializes inline, so other formats (JSON in tests) see plain values.

use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

/// Where stored parts are read back from: the snapshot file, opened once.
pub trait PartSource: Send + Sync {
    /// `len` bytes at `at` of the parts region.
    fn read(&self, at: u64, len: u64) -> std::io::Result<Vec<u8>>;
    /// The file, for the message when a part cannot be read.
    fn describe(&self) -> String;
}

thread_local! {
    static SINK: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    static SOURCE: RefCell<Option<Arc<dyn PartSource>>> = const { RefCell::new(None) };
}

/// Serializes with `f` while collecting the parts of every [`Lazy`] in it:
/// `f`'s result and the parts region, to be stored together.
pub fn write_parts<R>(f: impl FnOnce() -> R) -> (R, Vec<u8>) {
    let before = SINK.with(|s| s.borrow_mut().replace(Vec::new()));
    let out = f();
    let parts = SINK.with(|s| std::mem::replace(&mut *s.borrow_mut(), before));
    (out, parts.unwrap_or_default())
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
            let at = sink.len() as u64;
            sink.extend_from_slice(&bytes);
            at
        });
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
        let (head, parts) = write_parts(|| postcard::to_stdvec(&v).unwrap());
        (head, parts)
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
