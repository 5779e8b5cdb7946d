//! An in-memory file system that remembers what is durable, so a test can cut the power.
//!
//! Each file keeps the length that was last fsynced. Creations, renames and removals are
//! journaled per directory until that directory is synced. [`MemFs::crash`] then does
//! what a power cut does: unsynced bytes vanish (or, with [`CrashMode::TornTail`], a
//! random prefix of them survives, as a torn write would leave) and unsynced directory
//! operations are undone, newest first.

use super::{FileLock, FileSync, Fs, RandomAccessFile, WritableFile};
use crate::error::{Error, Result};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Default)]
struct FileData {
    bytes: Vec<u8>,
    synced_len: usize,
}

type FileRef = Arc<RwLock<FileData>>;

/// A directory operation not yet made durable by `sync_dir`.
#[derive(Debug)]
enum PendingOp {
    Created(PathBuf),
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<FileRef>,
    },
    Removed(PathBuf, FileRef),
}

impl PendingOp {
    fn dirs(&self) -> Vec<PathBuf> {
        let parent = |p: &Path| p.parent().map(Path::to_path_buf).unwrap_or_default();
        match self {
            PendingOp::Created(p) | PendingOp::Removed(p, _) => vec![parent(p)],
            PendingOp::Renamed { from, to, .. } => vec![parent(from), parent(to)],
        }
    }
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<PathBuf, FileRef>,
    dirs: HashSet<PathBuf>,
    pending: Vec<PendingOp>,
    locks: HashSet<PathBuf>,
}

/// What happens to bytes written but not synced when the power is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// All unsynced bytes are lost.
    DropUnsynced,
    /// A pseudo-random prefix of each file's unsynced bytes survives (seeded).
    TornTail(u64),
}

/// The in-memory file system. Cloning shares the same files.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    state: Arc<Mutex<State>>,
}

fn not_found(path: &Path) -> Error {
    Error::io(
        path,
        io::Error::new(io::ErrorKind::NotFound, "no such file"),
    )
}

impl MemFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates a power cut: see the module docs.
    pub fn crash(&self, mode: CrashMode) {
        let mut st = self.state.lock();
        let pending = std::mem::take(&mut st.pending);
        for op in pending.into_iter().rev() {
            match op {
                PendingOp::Created(p) => {
                    st.files.remove(&p);
                }
                PendingOp::Renamed { from, to, replaced } => {
                    if let Some(f) = st.files.remove(&to) {
                        st.files.insert(from, f);
                    }
                    if let Some(old) = replaced {
                        st.files.insert(to, old);
                    }
                }
                PendingOp::Removed(p, f) => {
                    st.files.insert(p, f);
                }
            }
        }
        let mut rng = match mode {
            CrashMode::DropUnsynced => 0,
            CrashMode::TornTail(seed) => seed | 1,
        };
        for file in st.files.values() {
            let mut f = file.write();
            let unsynced = f.bytes.len() - f.synced_len;
            let keep = if rng == 0 || unsynced == 0 {
                0
            } else {
                rng = xorshift(rng);
                (rng % (unsynced as u64 + 1)) as usize
            };
            let new_len = f.synced_len + keep;
            f.bytes.truncate(new_len);
            f.synced_len = new_len;
        }
        st.locks.clear();
    }

    /// An independent copy of every file and directory, as durable as it is now
    /// (corruption tests start each trial from the same pristine state).
    pub fn deep_copy(&self) -> MemFs {
        let st = self.state.lock();
        let files = st
            .files
            .iter()
            .map(|(p, f)| {
                let f = f.read();
                let copy = FileData {
                    bytes: f.bytes.clone(),
                    synced_len: f.synced_len,
                };
                (p.clone(), Arc::new(RwLock::new(copy)))
            })
            .collect();
        MemFs {
            state: Arc::new(Mutex::new(State {
                files,
                dirs: st.dirs.clone(),
                pending: Vec::new(),
                locks: HashSet::new(),
            })),
        }
    }

    /// Paths of every file.
    pub fn file_paths(&self) -> Vec<PathBuf> {
        self.state.lock().files.keys().cloned().collect()
    }

    /// Flips one byte of a file in place (for corruption tests).
    pub fn corrupt_byte(&self, path: &Path, offset: usize) -> Result<()> {
        let st = self.state.lock();
        let file = st.files.get(path).ok_or_else(|| not_found(path))?;
        let mut f = file.write();
        let b = f
            .bytes
            .get_mut(offset)
            .ok_or_else(|| Error::InvalidArgument(format!("offset {offset} past end")))?;
        *b ^= 0x5a;
        Ok(())
    }

    /// Current length of a file, synced or not.
    pub fn len_of(&self, path: &Path) -> Option<usize> {
        let st = self.state.lock();
        st.files.get(path).map(|f| f.read().bytes.len())
    }

    /// Truncates a file to `len` bytes, durably (for torn-tail tests).
    pub fn truncate(&self, path: &Path, len: usize) -> Result<()> {
        let st = self.state.lock();
        let file = st.files.get(path).ok_or_else(|| not_found(path))?;
        let mut f = file.write();
        f.bytes.truncate(len);
        f.synced_len = f.synced_len.min(len);
        Ok(())
    }

    fn file(&self, path: &Path) -> Result<FileRef> {
        self.state
            .lock()
            .files
            .get(path)
            .cloned()
            .ok_or_else(|| not_found(path))
    }
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

struct MemWritable {
    file: FileRef,
    len: u64,
}

impl WritableFile for MemWritable {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.file.write().bytes.extend_from_slice(data);
        self.len += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        let mut f = self.file.write();
        f.synced_len = f.bytes.len();
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn sync_handle(&self) -> Option<Box<dyn FileSync>> {
        Some(Box::new(MemSync(self.file.clone())))
    }
}

/// Marks what the file holds at the call as synced, as `MemWritable::sync` does.
struct MemSync(FileRef);

impl FileSync for MemSync {
    fn sync(&self) -> Result<()> {
        let mut f = self.0.write();
        f.synced_len = f.bytes.len();
        Ok(())
    }
}

struct MemReadable {
    path: PathBuf,
    file: FileRef,
}

impl RandomAccessFile for MemReadable {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let f = self.file.read();
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| f.bytes.get(start..end))
            .ok_or_else(|| {
                Error::io(
                    &self.path,
                    io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of file"),
                )
            })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.file.read().bytes.len() as u64
    }
}

struct MemLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

impl FileLock for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        self.state.lock().locks.remove(&self.path);
    }
}

impl Fs for MemFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        let mut st = self.state.lock();
        for anc in dir.ancestors() {
            st.dirs.insert(anc.to_path_buf());
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let mut st = self.state.lock();
        let file: FileRef = Arc::default();
        let replaced = st.files.insert(path.to_path_buf(), file.clone());
        match replaced {
            // Truncating an existing file: the old contents are gone at once.
            Some(_) => {}
            None => st.pending.push(PendingOp::Created(path.to_path_buf())),
        }
        Ok(Box::new(MemWritable { file, len: 0 }))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        Ok(Arc::new(MemReadable {
            path: path.to_path_buf(),
            file: self.file(path)?,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let mut st = self.state.lock();
        let file = st.files.remove(from).ok_or_else(|| not_found(from))?;
        let replaced = st.files.insert(to.to_path_buf(), file);
        st.pending.push(PendingOp::Renamed {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            replaced,
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        let mut st = self.state.lock();
        let file = st.files.remove(path).ok_or_else(|| not_found(path))?;
        st.pending
            .push(PendingOp::Removed(path.to_path_buf(), file));
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let st = self.state.lock();
        if !st.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(st
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    fn exists(&self, path: &Path) -> bool {
        let st = self.state.lock();
        st.files.contains_key(path) || st.dirs.contains(path)
    }

    fn file_size(&self, path: &Path) -> Result<u64> {
        Ok(self.file(path)?.read().bytes.len() as u64)
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let mut st = self.state.lock();
        st.pending.retain(|op| !op.dirs().iter().any(|d| d == dir));
        Ok(())
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        let mut st = self.state.lock();
        if !st.locks.insert(path.to_path_buf()) {
            return Err(Error::Busy(path.parent().unwrap_or(path).to_path_buf()));
        }
        Ok(Box::new(MemLock {
            state: self.state.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn link_or_copy(&self, from: &Path, to: &Path) -> Result<()> {
        let src = self.file(from)?;
        let copy = {
            let f = src.read();
            FileData {
                bytes: f.bytes.clone(),
                synced_len: f.bytes.len(),
            }
        };
        let mut st = self.state.lock();
        st.files
            .insert(to.to_path_buf(), Arc::new(RwLock::new(copy)));
        st.pending.push(PendingOp::Created(to.to_path_buf()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn crash_drops_unsynced_bytes_and_unsynced_creations() {
        let fs = MemFs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let mut a = fs.create(&p("/d/a")).unwrap();
        a.append(b"synced").unwrap();
        a.sync().unwrap();
        fs.sync_dir(&p("/d")).unwrap();
        a.append(b"-lost").unwrap();
        let mut b = fs.create(&p("/d/b")).unwrap();
        b.append(b"x").unwrap();
        b.sync().unwrap();
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.read_all(&p("/d/a")).unwrap(), b"synced");
        assert!(!fs.exists(&p("/d/b")), "creation was never made durable");
    }

    #[test]
    fn crash_undoes_unsynced_rename() {
        let fs = MemFs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        fs.write_all_synced(&p("/d/CURRENT"), b"old").unwrap();
        fs.write_all_synced(&p("/d/tmp"), b"new").unwrap();
        fs.sync_dir(&p("/d")).unwrap();
        fs.rename(&p("/d/tmp"), &p("/d/CURRENT")).unwrap();
        assert_eq!(fs.read_all(&p("/d/CURRENT")).unwrap(), b"new");
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.read_all(&p("/d/CURRENT")).unwrap(), b"old");
        assert_eq!(fs.read_all(&p("/d/tmp")).unwrap(), b"new");
    }

    #[test]
    fn torn_tail_keeps_a_prefix_of_unsynced_bytes() {
        let fs = MemFs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let mut a = fs.create(&p("/d/a")).unwrap();
        a.append(b"0123").unwrap();
        a.sync().unwrap();
        fs.sync_dir(&p("/d")).unwrap();
        a.append(&[7u8; 1000]).unwrap();
        fs.crash(CrashMode::TornTail(42));
        let len = fs.len_of(&p("/d/a")).unwrap();
        assert!((4..=1004).contains(&len));
        assert_eq!(&fs.read_all(&p("/d/a")).unwrap()[..4], b"0123");
    }

    #[test]
    fn second_lock_is_busy_until_first_dropped() {
        let fs = MemFs::new();
        let l = fs.lock(&p("/d/LOCK")).unwrap();
        assert!(matches!(fs.lock(&p("/d/LOCK")), Err(Error::Busy(_))));
        drop(l);
        assert!(fs.lock(&p("/d/LOCK")).is_ok());
    }
}
