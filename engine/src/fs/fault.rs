//! A wrapper that makes any [`Fs`] fail on demand: writes, fsyncs, everything at once
//! (a process that has died), the creation of some files with a given OS error (a
//! resource that ran out), creations held until released (a slow disk, or a flush
//! caught in the middle), or panic on appends (a bug). A torn write is a write that crosses the byte budget: the
//! part within the budget reaches the file, the rest does not, and the call fails.

use super::{FileLock, FileSync, Fs, RandomAccessFile, WritableFile};
use crate::error::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The knobs of a [`FaultFs`]; shared, so a test keeps one while the engine uses the fs.
#[derive(Debug)]
pub struct FaultSwitch {
    fail_syncs: AtomicBool,
    fail_writes: AtomicBool,
    dead: AtomicBool,
    panic_on_append: AtomicBool,
    /// Creating a file whose name contains `.0` fails with OS error `.1`.
    failing_creates: Mutex<Option<(String, i32)>>,
    /// Creating a file whose name contains this waits until it is cleared.
    held_creates: Mutex<Option<String>>,
    creates_released: Condvar,
    /// Bytes that may still be appended before appends fail (u64::MAX = unlimited).
    write_budget: AtomicU64,
    /// While set, file fsyncs wait (a slow disk); the fsyncs waiting now, and all that
    /// ever waited.
    held_syncs: Mutex<(bool, usize, usize)>,
    syncs_released: Condvar,
}

impl Default for FaultSwitch {
    fn default() -> Self {
        FaultSwitch {
            fail_syncs: AtomicBool::new(false),
            fail_writes: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            panic_on_append: AtomicBool::new(false),
            failing_creates: Mutex::new(None),
            held_creates: Mutex::new(None),
            creates_released: Condvar::new(),
            write_budget: AtomicU64::new(u64::MAX),
            held_syncs: Mutex::new((false, 0, 0)),
            syncs_released: Condvar::new(),
        }
    }
}

impl FaultSwitch {
    /// Every fsync (file or directory) fails while set.
    pub fn fail_syncs(&self, on: bool) {
        self.fail_syncs.store(on, Ordering::SeqCst);
    }
    /// Every append, flush and create fails while set.
    pub fn fail_writes(&self, on: bool) {
        self.fail_writes.store(on, Ordering::SeqCst);
    }
    /// Every operation fails while set: the process is "dead".
    pub fn kill(&self, on: bool) {
        self.dead.store(on, Ordering::SeqCst);
    }
    /// Every append panics while set: stands for a bug anywhere under a write, so tests
    /// can check that a panic fails writes instead of hanging them.
    pub fn panic_on_append(&self, on: bool) {
        self.panic_on_append.store(on, Ordering::SeqCst);
    }
    /// Creating any file whose name contains `pattern` (".sst", ".log", "MANIFEST")
    /// fails with the OS error `errno` (say `libc::EMFILE`) until
    /// [`Self::allow_creates`]: a resource that has run out, or a disk failing at one
    /// precise step, as opposed to the generic failures above.
    pub fn fail_creates_of(&self, pattern: &str, errno: i32) {
        *self.failing_creates.lock() = Some((pattern.to_string(), errno));
    }
    /// Ends [`Self::fail_creates_of`].
    pub fn allow_creates(&self) {
        *self.failing_creates.lock() = None;
    }
    /// Creating any file whose name contains `pattern` waits until
    /// [`Self::release_creates`]: holds a flush (".sst") in the middle, so a test can
    /// look at the engine while a frozen memtable waits to be written.
    pub fn hold_creates_of(&self, pattern: &str) {
        *self.held_creates.lock() = Some(pattern.to_string());
    }
    /// Ends [`Self::hold_creates_of`]; the held creations go on.
    pub fn release_creates(&self) {
        *self.held_creates.lock() = None;
        self.creates_released.notify_all();
    }
    /// File fsyncs wait until [`Self::release_syncs`]: a slow disk, so a test can look
    /// at what waits for an fsync and what does not.
    pub fn hold_syncs(&self) {
        self.held_syncs.lock().0 = true;
    }
    /// Ends [`Self::hold_syncs`]; the held fsyncs go on.
    pub fn release_syncs(&self) {
        self.held_syncs.lock().0 = false;
        self.syncs_released.notify_all();
    }
    /// File fsyncs waiting in [`Self::hold_syncs`] now.
    pub fn held_syncs(&self) -> usize {
        self.held_syncs.lock().1
    }
    /// File fsyncs that ever waited in [`Self::hold_syncs`].
    pub fn held_syncs_in_total(&self) -> usize {
        self.held_syncs.lock().2
    }
    /// After `bytes` more appended bytes, appends fail; the one crossing is torn.
    pub fn fail_after_bytes(&self, bytes: u64) {
        self.write_budget.store(bytes, Ordering::SeqCst);
    }
    /// Clears every fault.
    pub fn heal(&self) {
        self.fail_syncs(false);
        self.fail_writes(false);
        self.kill(false);
        self.panic_on_append(false);
        self.allow_creates();
        self.release_creates();
        self.write_budget.store(u64::MAX, Ordering::SeqCst);
    }

    fn check_alive(&self, path: &Path) -> Result<()> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(injected(path, "process is dead"));
        }
        Ok(())
    }

    fn check_write(&self, path: &Path) -> Result<()> {
        self.check_alive(path)?;
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(injected(path, "write failed"));
        }
        Ok(())
    }

    fn check_create(&self, path: &Path) -> Result<()> {
        self.check_write(path)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let mut held = self.held_creates.lock();
        while held.as_deref().is_some_and(|p| name.contains(p)) {
            self.creates_released.wait(&mut held);
        }
        drop(held);
        if let Some((pattern, errno)) = &*self.failing_creates.lock() {
            if name.contains(pattern.as_str()) {
                return Err(Error::io(path, io::Error::from_raw_os_error(*errno)));
            }
        }
        Ok(())
    }

    /// A file fsync: waits while [`Self::hold_syncs`] holds it, then as `check_sync`.
    fn check_file_sync(&self, path: &Path) -> Result<()> {
        let mut held = self.held_syncs.lock();
        if held.0 {
            held.1 += 1;
            held.2 += 1;
            while held.0 {
                self.syncs_released.wait(&mut held);
            }
            held.1 -= 1;
        }
        drop(held);
        self.check_sync(path)
    }

    fn check_sync(&self, path: &Path) -> Result<()> {
        self.check_alive(path)?;
        if self.fail_syncs.load(Ordering::SeqCst) {
            return Err(injected(path, "fsync failed"));
        }
        Ok(())
    }

    /// How many of `want` bytes may be written now.
    fn take_budget(&self, want: u64) -> u64 {
        let mut cur = self.write_budget.load(Ordering::SeqCst);
        loop {
            if cur == u64::MAX {
                return want;
            }
            let granted = cur.min(want);
            match self.write_budget.compare_exchange(
                cur,
                cur - granted,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return granted,
                Err(now) => cur = now,
            }
        }
    }
}

fn injected(path: &Path, what: &str) -> Error {
    Error::io(path, io::Error::other(format!("injected fault: {what}")))
}

/// A fault-injecting file system wrapping another.
#[derive(Debug, Clone)]
pub struct FaultFs {
    inner: Arc<dyn Fs>,
    switch: Arc<FaultSwitch>,
}

impl FaultFs {
    /// Wraps `inner`; returns the fs and the switch that controls it.
    pub fn new(inner: Arc<dyn Fs>) -> (Self, Arc<FaultSwitch>) {
        let switch = Arc::new(FaultSwitch::default());
        (
            FaultFs {
                inner,
                switch: switch.clone(),
            },
            switch,
        )
    }
}

struct FaultWritable {
    path: std::path::PathBuf,
    inner: Box<dyn WritableFile>,
    switch: Arc<FaultSwitch>,
}

impl WritableFile for FaultWritable {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        if self.switch.panic_on_append.load(Ordering::SeqCst) {
            panic!("injected panic appending to {}", self.path.display());
        }
        self.switch.check_write(&self.path)?;
        let granted = self.switch.take_budget(data.len() as u64) as usize;
        self.inner.append(&data[..granted])?;
        if granted < data.len() {
            // Push the torn part out so it is really in the file, as a partial write(2) is.
            self.inner.flush()?;
            return Err(injected(&self.path, "torn write"));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.switch.check_write(&self.path)?;
        self.inner.flush()
    }

    fn sync(&mut self) -> Result<()> {
        self.switch.check_file_sync(&self.path)?;
        self.inner.sync()
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn sync_handle(&self) -> Option<Box<dyn FileSync>> {
        Some(Box::new(FaultSync {
            path: self.path.clone(),
            inner: self.inner.sync_handle()?,
            switch: self.switch.clone(),
        }))
    }
}

/// A sync handle that fails when the switch says fsyncs fail.
struct FaultSync {
    path: std::path::PathBuf,
    inner: Box<dyn FileSync>,
    switch: Arc<FaultSwitch>,
}

impl FileSync for FaultSync {
    fn sync(&self) -> Result<()> {
        self.switch.check_file_sync(&self.path)?;
        self.inner.sync()
    }
}

impl Fs for FaultFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.switch.check_write(dir)?;
        self.inner.create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        self.switch.check_create(path)?;
        Ok(Box::new(FaultWritable {
            path: path.to_path_buf(),
            inner: self.inner.create(path)?,
            switch: self.switch.clone(),
        }))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        self.switch.check_alive(path)?;
        self.inner.open(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.switch.check_write(from)?;
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        self.switch.check_write(path)?;
        self.inner.remove_file(path)
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        self.switch.check_alive(dir)?;
        self.inner.list_dir(dir)
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    fn file_size(&self, path: &Path) -> Result<u64> {
        self.switch.check_alive(path)?;
        self.inner.file_size(path)
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.switch.check_sync(dir)?;
        self.inner.sync_dir(dir)
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.switch.check_alive(path)?;
        self.inner.lock(path)
    }

    fn link_or_copy(&self, from: &Path, to: &Path) -> Result<()> {
        self.switch.check_write(to)?;
        self.inner.link_or_copy(from, to)
    }
}
