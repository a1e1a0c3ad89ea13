//! The compiled snapshot: an import written as one file, so later commands
//! on unchanged exports read it instead of parsing every export again.
//!
//! A snapshot is keyed by what the exports look like on disk, not by their
//! bytes: every entry the import walk meets (its path as named, and for a
//! file its size, modification and change times, inode and device). Hashing
//! the contents of a 1.6 GB export would cost about as much as importing it;
//! the change time moves on every write, rename or `touch`, so an edited file
//! is caught even when its size and modification time are put back.
//!
//! Layout: magic, format version, header length and header (the
//! ringmaster version, the running binary and the key of the inputs), the
//! parts region (the columns, one after another, written as serialization
//! meets them), the skeleton (the [`Org`] and the [`ImportReport`] in
//! `postcard`, each column replaced by where it is stored) and its length,
//! then a CRC-32 of everything before it, and the file's length. A snapshot
//! whose magic, version, binary, key, length or checksum does not match is
//! never read; each part also has its own CRC-32, checked when it is first read
//! (see [`ringmaster_core::lazy`]), in case the file changes while open.

use crate::{ImportError, ImportReport, Loaded};
use ringmaster_core::lazy::{self, PartSource};
use ringmaster_core::org::Org;
use ringmaster_core::progress::Progress;
use sha2::{Digest, Sha256};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"rmsnap\0\0";
/// Raise whenever the serialized form of [`Org`] or [`ImportReport`] changes.
pub const FORMAT_VERSION: u32 = 7;
/// Snapshots kept in a cache folder; older ones are removed when one is written.
const KEEP: usize = 4;
/// Largest header read: the key is a few dozen bytes.
const MAX_HEADER: u32 = 64 << 10;
/// The skeleton's length, the CRC-32 and the file's length.
const TRAILER: usize = 8 + 4 + 8;

/// What makes a snapshot valid for a load besides its inputs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Header {
    ringmaster: String,
    /// Size and modification time of the binary that wrote it: a rebuilt
    /// binary may lay the org out differently without a new format version.
    binary: (u64, i128),
    inputs: [u8; 32],
}

/// Where snapshots are kept.
#[derive(Debug, Clone)]
pub struct SnapshotCache {
    dir: PathBuf,
}

/// An import, and whether it came from a snapshot.
pub struct CachedLoad {
    pub loaded: Loaded,
    pub from_snapshot: bool,
    /// Why a snapshot was passed over or not written, for stderr.
    pub notes: Vec<String>,
}

impl SnapshotCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SnapshotCache { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/ringmaster`, else `$HOME/.cache/ringmaster`.
    pub fn default_dir() -> Option<PathBuf> {
        let var = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        var("XDG_CACHE_HOME")
            .or_else(|| var("HOME").map(|h| h.join(".cache")))
            .map(|d| d.join("ringmaster"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The snapshot file for these sources as named from the working folder.
    pub fn file_for(&self, paths: &[PathBuf]) -> PathBuf {
        let mut h = Sha256::new();
        if let Ok(cwd) = std::env::current_dir() {
            h.update(cwd.as_os_str().as_encoded_bytes());
        }
        for p in paths {
            h.update(b"\0");
            h.update(p.as_os_str().as_encoded_bytes());
        }
        self.dir.join(format!("{}.snap", hex(&h.finalize()[..16])))
    }

    /// Loads the sources from their snapshot when it is current, else
    /// imports them and writes the snapshot. Only the import can fail: a
    /// snapshot that cannot be read or written is noted and passed over.
    pub fn load(&self, paths: &[PathBuf]) -> Result<CachedLoad, ImportError> {
        self.load_with(paths, &Arc::default())
    }

    /// [`Self::load`], telling `progress` each step (reading the snapshot,
    /// importing, writing it) for a display on another thread.
    pub fn load_with(
        &self,
        paths: &[PathBuf],
        progress: &Arc<Progress>,
    ) -> Result<CachedLoad, ImportError> {
        let file = self.file_for(paths);
        progress.begin("reading the snapshot", "", 0);
        let header = Header {
            ringmaster: env!("CARGO_PKG_VERSION").to_string(),
            binary: binary_identity(),
            inputs: input_key(paths),
        };
        let mut notes = Vec::new();
        match read(&file, &header) {
            Ok(Some(loaded)) => {
                // Recently used snapshots are the ones pruning keeps.
                let _ = std::fs::File::options()
                    .write(true)
                    .open(&file)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                return Ok(CachedLoad {
                    loaded,
                    from_snapshot: true,
                    notes,
                });
            }
            Ok(None) => {}
            Err(why) => notes.push(format!(
                "snapshot {} ignored ({why}); importing again",
                file.display()
            )),
        }
        let loaded = crate::load_with(paths, progress)?;
        progress.begin("writing the snapshot", "", 0);
        if let Err(e) = self.write(&file, &header, &loaded) {
            notes.push(format!("snapshot {} not written: {e}", file.display()));
        }
        Ok(CachedLoad {
            loaded,
            from_snapshot: false,
            notes,
        })
    }

    fn write(&self, file: &Path, header: &Header, loaded: &Loaded) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("snap");
        let tmp = self
            .dir
            .join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
        loaded.org.prepare_lookups();
        let written = write_to(&tmp, header, loaded).and_then(|()| std::fs::rename(&tmp, file));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        self.prune(file);
        Ok(())
    }

    /// Removes all but the [`KEEP`] most recently used snapshots.
    fn prune(&self, keep: &Path) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut snaps: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "snap") && p != keep)
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .collect();
        snaps.sort_by_key(|s| std::cmp::Reverse(s.0));
        for (_, p) in snaps.into_iter().skip(KEEP - 1) {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn binary_identity() -> (u64, i128) {
    std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| (m.len(), mtime_ns(&m)))
        .unwrap_or((0, 0))
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128)
}

/// The key of the sources: every entry the import walk would meet, hashed.
/// It walks as the import does (links followed, dot-names passed over,
/// names sorted) so an added, removed or changed file changes the key.
pub fn input_key(paths: &[PathBuf]) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut open = Vec::new();
    for p in paths {
        key_entry(p, &mut h, &mut open);
    }
    h.finalize().into()
}

fn key_entry(p: &Path, h: &mut Sha256, open: &mut Vec<PathBuf>) {
    h.update(p.as_os_str().as_encoded_bytes());
    h.update(b"\0");
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) => return h.update(format!("error {e}\0").as_bytes()),
    };
    h.update(stat_line(&meta).as_bytes());
    if !meta.is_dir() {
        return;
    }
    let canonical = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    // A loop or a deep nest: the import stops or skips there, and so does the key.
    if open.iter().any(|o: &PathBuf| o.starts_with(&canonical)) || open.len() > 64 {
        return h.update(b"loop\0");
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(p) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
            })
            .collect(),
        Err(e) => return h.update(format!("error {e}\0").as_bytes()),
    };
    entries.sort();
    open.push(canonical);
    for e in entries {
        key_entry(&e, h, open);
    }
    open.pop();
}

#[cfg(unix)]
fn stat_line(m: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    if m.is_dir() {
        return "dir\0".into();
    }
    format!(
        "file {} {} {}.{} {}.{} {}\0",
        m.dev(),
        m.ino(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.len()
    )
}

#[cfg(not(unix))]
fn stat_line(m: &std::fs::Metadata) -> String {
    if m.is_dir() {
        return "dir\0".into();
    }
    format!("file {} {}\0", mtime_ns(m), m.len())
}

/// A writer that counts what passed through it.
struct Counted<W> {
    inner: W,
    len: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Where the parts region starts: after the header, aligned so that the
/// arrays stored in it can be read in place.
fn parts_start(head_len: usize) -> u64 {
    (16 + head_len as u64).next_multiple_of(8)
}

fn write_to(tmp: &Path, header: &Header, loaded: &Loaded) -> std::io::Result<()> {
    let bad = |e: postcard::Error| std::io::Error::other(e.to_string());
    let head = postcard::to_stdvec(header).map_err(bad)?;
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(tmp)?);
    w.write_all(MAGIC)?;
    w.write_all(&FORMAT_VERSION.to_le_bytes())?;
    w.write_all(&(head.len() as u32).to_le_bytes())?;
    w.write_all(&head)?;
    let start = parts_start(head.len());
    w.write_all(&vec![0u8; (start - 16 - head.len() as u64) as usize])?;
    // The parts go straight to the file as serialization meets them.
    let (skeleton, w) = lazy::write_parts(Counted { inner: w, len: 0 }, || {
        postcard::to_stdvec(&(&loaded.org, &loaded.report))
    });
    let Counted { mut inner, len } = w?;
    let skeleton = skeleton.map_err(bad)?;
    inner.write_all(&skeleton)?;
    inner.write_all(&(skeleton.len() as u64).to_le_bytes())?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    crc.update(&skeleton);
    inner.write_all(&crc.finalize().to_le_bytes())?;
    let file_len = start + len + skeleton.len() as u64 + TRAILER as u64;
    inner.write_all(&file_len.to_le_bytes())?;
    let f = inner.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()
}

/// Maps a snapshot file into memory.
#[allow(unsafe_code)]
fn map(f: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is sound while nobody changes the file under it.
    // ringmaster never writes a snapshot in place: it writes a temporary
    // file and renames it over the old one, and prunes by removing files;
    // both leave a mapped file's contents as they were. A file changed in
    // place by something else while a command runs breaks that contract,
    // and nothing can make it sound: a change made before its chunk is
    // first read fails the checksum, one made after is read as it is, and
    // a truncated file stops the process with SIGBUS. The cache folder is
    // the user's own, like the binary.
    unsafe { memmap2::Mmap::map(f) }
}

/// The parts region of an open snapshot, mapped; columns are read in
/// place as commands first use them.
struct Parts {
    map: memmap2::Mmap,
    path: PathBuf,
    start: usize,
    len: usize,
}

impl PartSource for Parts {
    fn bytes(&self) -> &[u8] {
        &self.map[self.start..self.start + self.len]
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn damaged(&self) -> bool {
        std::fs::remove_file(&self.path).is_ok()
    }
}

/// The snapshot's import when it is current; `None` when there is none or
/// its inputs changed; an error (why) when it is damaged or foreign.
/// Checks the header and the organization's skeleton; columns are read
/// in place when a command first uses them, each part and each 64 KiB of
/// an array checked against its own CRC-32 then.
fn read(file: &Path, want: &Header) -> Result<Option<Loaded>, String> {
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    let map = map(&f).map_err(|e| format!("cannot read: {e}"))?;
    let bytes: &[u8] = &map;
    if bytes.len() < 16 {
        return Err("shorter than its header".into());
    }
    if &bytes[..8] != MAGIC {
        return Err("not a ringmaster snapshot".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this ringmaster reads {FORMAT_VERSION}"
        ));
    }
    let head_len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if head_len > MAX_HEADER {
        return Err("header too long".into());
    }
    let head = bytes
        .get(16..16 + head_len as usize)
        .ok_or("shorter than its header")?;
    let header: Header =
        postcard::from_bytes(head).map_err(|e| format!("unreadable header: {e}"))?;
    if header.ringmaster != want.ringmaster || header.binary != want.binary {
        return Err(format!(
            "written by another ringmaster build ({})",
            header.ringmaster
        ));
    }
    if header.inputs != want.inputs {
        // The exports changed since: the usual reason to import again.
        return Ok(None);
    }
    let start = parts_start(head.len()) as usize;
    let file_len = bytes.len();
    if file_len < start + TRAILER {
        return Err("truncated".into());
    }
    let trailer = &bytes[file_len - TRAILER..];
    let skeleton_len = u64::from_le_bytes(trailer[..8].try_into().expect("8 bytes"));
    let crc_stored = u32::from_le_bytes(trailer[8..12].try_into().expect("4 bytes"));
    let len_stored = u64::from_le_bytes(trailer[12..].try_into().expect("8 bytes"));
    if len_stored != file_len as u64 {
        return Err("truncated".into());
    }
    let Some(skeleton_at) = usize::try_from(skeleton_len)
        .ok()
        .and_then(|n| (file_len - TRAILER).checked_sub(n))
        .filter(|&at| at >= start)
    else {
        return Err("truncated".into());
    };
    let skeleton = &bytes[skeleton_at..file_len - TRAILER];
    let mut crc = crc32fast::Hasher::new();
    crc.update(head);
    crc.update(skeleton);
    if crc.finalize() != crc_stored {
        return Err("checksum mismatch: the file is damaged".into());
    }
    let parts: Arc<Parts> = Arc::new(Parts {
        path: file.to_path_buf(),
        start,
        len: skeleton_at - start,
        map,
    });
    let source: Arc<dyn PartSource> = parts.clone();
    let skeleton = &parts.map[skeleton_at..file_len - TRAILER];
    let ((org, report), left): ((Org, ImportReport), _) =
        lazy::read_parts(source, || postcard::take_from_bytes(skeleton))
            .map_err(|e| format!("unreadable: {e}"))?;
    if !left.is_empty() {
        return Err("bytes after the organization".into());
    }
    Ok(Some(Loaded { org, report }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmaster_core::model::DeviceAttr;
    use ringmaster_core::org::{DeviceKey, OrgBuilder};

    fn org() -> Org {
        let mut b = OrgBuilder::new();
        for i in 0..3000 {
            let d = b.device(&[DeviceKey::ObjectId(&format!("obj-{i}"))]);
            b.set_device(d, DeviceAttr::Name, Some(&format!("PC-{i:05}")));
            b.set_device(d, DeviceAttr::Platform, Some(["windows", "macOS"][i % 2]));
        }
        b.finish()
    }

    #[test]
    fn columns_stay_in_the_file_until_a_command_uses_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.snap");
        let header = Header {
            ringmaster: "test".into(),
            binary: (1, 2),
            inputs: [7; 32],
        };
        let org = org();
        org.prepare_lookups();
        let loaded = Loaded {
            org,
            report: ImportReport::default(),
        };
        write_to(&file, &header, &loaded).unwrap();
        let read = super::read(&file, &header).unwrap().expect("current");
        let cols = &read.org.devices.cols;
        assert!(cols.iter().all(|c| !c.is_loaded()), "nothing read yet");
        assert_eq!(read.org.find_devices("pc-00042"), vec![42]);
        let name = &cols[DeviceAttr::Name.index()];
        assert!(name.is_loaded());
        assert!(!cols[DeviceAttr::Platform.index()].is_loaded());
        // A column whose values cannot be that long is passed over unread.
        assert!(!cols[DeviceAttr::DeviceId.index()].dict.is_loaded());
        // Every column reads back as it was written.
        for (a, b) in cols.iter().zip(&loaded.org.devices.cols) {
            assert_eq!(a.codes(), b.codes());
            assert!((0..a.dict_len() as u32).all(|c| a.dict.value(c) == b.dict.value(c)));
        }
        // Another key is not read.
        let other = Header {
            inputs: [8; 32],
            ..header.clone()
        };
        assert!(super::read(&file, &other).unwrap().is_none());
        drop(read);
        let good = std::fs::read(&file).unwrap();
        // A damaged skeleton is refused when the file is opened.
        let mut bytes = good.clone();
        let in_skeleton = bytes.len() - TRAILER - 3;
        bytes[in_skeleton] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        let err = super::read(&file, &header).err().unwrap();
        assert!(err.contains("checksum"), "{err}");
        // A damaged column is refused when a command first reads it, and
        // the file is removed so that the next run imports again.
        let mut bytes = good;
        let skeleton_len =
            u64::from_le_bytes(bytes[bytes.len() - TRAILER..][..8].try_into().unwrap());
        let start = parts_start(postcard::to_stdvec(&header).unwrap().len());
        let middle = (start as usize + bytes.len() - TRAILER - skeleton_len as usize) / 2;
        bytes[middle] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        let read = super::read(&file, &header)
            .unwrap()
            .expect("skeleton intact");
        let touch = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for t in [&read.org.users, &read.org.devices] {
                for c in &t.cols {
                    let _ = c.view().iter().sum::<u32>();
                    let _ = c.dict.values().count();
                }
                for m in &t.multi {
                    let _ = m.items.iter().sum::<u32>();
                }
            }
        }));
        let why = touch.expect_err("the damaged part is refused");
        let why = why.downcast_ref::<String>().expect("a message");
        assert!(why.contains("damaged") && why.contains("checksum"), "{why}");
        assert!(!file.exists(), "a damaged snapshot is removed");
    }
}
