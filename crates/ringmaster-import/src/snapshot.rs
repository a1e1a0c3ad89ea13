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
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const MAGIC: &[u8; 8] = b"rmsnap\0\0";
/// Raise whenever the serialized form of [`Org`] or [`ImportReport`] changes.
pub const FORMAT_VERSION: u32 = 3;
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

/// A writer that keeps a CRC-32 and a count of what passed through it.
struct Summed<W> {
    inner: W,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> Write for Summed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn write_to(tmp: &Path, header: &Header, loaded: &Loaded) -> std::io::Result<()> {
    let bad = |e: postcard::Error| std::io::Error::other(e.to_string());
    let mut w = Summed {
        inner: BufWriter::with_capacity(1 << 20, std::fs::File::create(tmp)?),
        crc: crc32fast::Hasher::new(),
        len: 0,
    };
    let head = postcard::to_stdvec(header).map_err(bad)?;
    w.write_all(MAGIC)?;
    w.write_all(&FORMAT_VERSION.to_le_bytes())?;
    w.write_all(&(head.len() as u32).to_le_bytes())?;
    w.write_all(&head)?;
    // The parts go straight to the file as serialization meets them.
    let (skeleton, w) =
        lazy::write_parts(w, || postcard::to_stdvec(&(&loaded.org, &loaded.report)));
    let mut w = w?;
    let skeleton = skeleton.map_err(bad)?;
    w.write_all(&skeleton)?;
    w.write_all(&(skeleton.len() as u64).to_le_bytes())?;
    let Summed {
        mut inner,
        crc,
        len,
    } = w;
    inner.write_all(&crc.finalize().to_le_bytes())?;
    inner.write_all(&(len + 4 + 8).to_le_bytes())?;
    let f = inner.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()
}

/// The parts region of an open snapshot, read as columns are first used.
struct Parts {
    file: Mutex<std::fs::File>,
    path: PathBuf,
    start: u64,
    len: u64,
}

impl PartSource for Parts {
    fn read(&self, at: u64, len: u64) -> std::io::Result<Vec<u8>> {
        if at.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(std::io::Error::other("a part past the end of the file"));
        }
        let mut buf = vec![0u8; len as usize];
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.seek(SeekFrom::Start(self.start + at))?;
        f.read_exact(&mut buf)?;
        Ok(buf)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// The snapshot's import when it is current; `None` when there is none or
/// its inputs changed; an error (why) when it is damaged or foreign.
/// Reads the header and the organization's skeleton; columns are read
/// from the still open file when a command first uses them.
fn read(file: &Path, want: &Header) -> Result<Option<Loaded>, String> {
    let mut f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    let file_len = f.metadata().map_err(|e| format!("cannot read: {e}"))?.len();
    let mut start = [0u8; 16];
    f.read_exact(&mut start)
        .map_err(|_| "shorter than its header".to_string())?;
    if &start[..8] != MAGIC {
        return Err("not a ringmaster snapshot".into());
    }
    let version = u32::from_le_bytes(start[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this ringmaster reads {FORMAT_VERSION}"
        ));
    }
    let head_len = u32::from_le_bytes(start[12..16].try_into().expect("4 bytes"));
    if head_len > MAX_HEADER {
        return Err("header too long".into());
    }
    let mut head = vec![0u8; head_len as usize];
    f.read_exact(&mut head)
        .map_err(|_| "shorter than its header".to_string())?;
    let header: Header =
        postcard::from_bytes(&head).map_err(|e| format!("unreadable header: {e}"))?;
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
    let front_len = 16 + head.len() as u64;
    if file_len < front_len + TRAILER as u64 {
        return Err("truncated".into());
    }
    let mut trailer = [0u8; TRAILER];
    f.seek(SeekFrom::Start(file_len - TRAILER as u64))
        .and_then(|_| f.read_exact(&mut trailer))
        .map_err(|e| format!("cannot read: {e}"))?;
    let skeleton_len = u64::from_le_bytes(trailer[..8].try_into().expect("8 bytes"));
    let crc_stored = u32::from_le_bytes(trailer[8..12].try_into().expect("4 bytes"));
    let len_stored = u64::from_le_bytes(trailer[12..].try_into().expect("8 bytes"));
    if len_stored != file_len {
        return Err("truncated".into());
    }
    let Some(skeleton_at) = (file_len - TRAILER as u64)
        .checked_sub(skeleton_len)
        .filter(|&at| at >= front_len)
    else {
        return Err("truncated".into());
    };
    // The whole file is checked now, through one small buffer (no fresh
    // pages: a tenth of a second for 300 MB), so a damaged snapshot is
    // imported again instead of failing when a command reaches the part.
    let mut crc = crc32fast::Hasher::new();
    f.seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot read: {e}"))?;
    let mut left = file_len - 12;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let take = left.min(buf.len() as u64) as usize;
        f.read_exact(&mut buf[..take])
            .map_err(|e| format!("cannot read: {e}"))?;
        crc.update(&buf[..take]);
        left -= take as u64;
    }
    if crc.finalize() != crc_stored {
        return Err("checksum mismatch: the file is damaged".into());
    }
    let mut skeleton = vec![0u8; skeleton_len as usize];
    f.seek(SeekFrom::Start(skeleton_at))
        .and_then(|_| f.read_exact(&mut skeleton))
        .map_err(|e| format!("cannot read: {e}"))?;
    let parts = Arc::new(Parts {
        file: Mutex::new(f),
        path: file.to_path_buf(),
        start: front_len,
        len: skeleton_at - front_len,
    });
    let ((org, report), left): ((Org, ImportReport), _) =
        lazy::read_parts(parts, || postcard::take_from_bytes(&skeleton))
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
            assert_eq!(a.codes, b.codes);
            assert!((0..a.dict_len() as u32).all(|c| a.dict.value(c) == b.dict.value(c)));
        }
        // Another key is not read; a damaged part is refused whole.
        let other = Header {
            inputs: [8; 32],
            ..header.clone()
        };
        assert!(super::read(&file, &other).unwrap().is_none());
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[200] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        let err = super::read(&file, &header).err().unwrap();
        assert!(err.contains("checksum"), "{err}");
    }
}
