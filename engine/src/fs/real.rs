//! The operating system's file system: buffered appends, pread, fdatasync, flock.

use super::{FileLock, FileSync, Fs, RandomAccessFile, WritableFile};
use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Appends are gathered in user space up to this size before a write(2).
const WRITE_BUFFER: usize = 256 * 1024;

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

struct RealWritable {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    len: u64,
}

impl WritableFile for RealWritable {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        if self.buf.len() + data.len() > WRITE_BUFFER {
            self.flush()?;
        }
        if data.len() >= WRITE_BUFFER {
            self.file
                .write_all(data)
                .map_err(|e| Error::io(&self.path, e))?;
        } else {
            self.buf.extend_from_slice(data);
        }
        self.len += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.file
                .write_all(&self.buf)
                .map_err(|e| Error::io(&self.path, e))?;
            self.buf.clear();
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn sync_handle(&self) -> Option<Box<dyn FileSync>> {
        // A second descriptor of the same open file: fdatasync on it covers every byte
        // any descriptor of the file wrote before the call.
        let file = self.file.try_clone().ok()?;
        Some(Box::new(RealSync {
            path: self.path.clone(),
            file,
        }))
    }
}

struct RealSync {
    path: PathBuf,
    file: File,
}

impl FileSync for RealSync {
    fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }
}

struct RealReadable {
    path: PathBuf,
    file: File,
    len: u64,
}

impl RandomAccessFile for RealReadable {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| Error::io(&self.path, e))
    }

    fn len(&self) -> u64 {
        self.len
    }
}

struct RealLock {
    file: File,
}

impl FileLock for RealLock {}

impl Drop for RealLock {
    fn drop(&mut self) {
        // Unlock explicitly: a child forked by another thread shares this descriptor
        // until it execs, and would otherwise keep the directory locked meanwhile.
        // SAFETY: flock on a valid, owned descriptor; it touches no memory of ours.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl Fs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        // Never write through a symlink planted where an engine file goes.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(Box::new(RealWritable {
            path: path.to_path_buf(),
            file,
            buf: Vec::with_capacity(WRITE_BUFFER),
            len: 0,
        }))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        Ok(Arc::new(RealReadable {
            path: path.to_path_buf(),
            file,
            len,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        fs::rename(from, to).map_err(|e| Error::io(from, e))
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        fs::remove_file(path).map_err(|e| Error::io(path, e))
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn file_size(&self, path: &Path) -> Result<u64> {
        Ok(fs::metadata(path).map_err(|e| Error::io(path, e))?.len())
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        // SAFETY: flock on a valid, owned descriptor; it touches no memory of ours.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EWOULDBLOCK) => {
                    Err(Error::Busy(path.parent().unwrap_or(path).to_path_buf()))
                }
                _ => Err(Error::io(path, err)),
            };
        }
        Ok(Box::new(RealLock { file }))
    }

    fn link_or_copy(&self, from: &Path, to: &Path) -> Result<()> {
        if fs::hard_link(from, to).is_ok() {
            return Ok(());
        }
        // create_new: fails on anything already at `to`, a symlink included, instead of
        // writing through it (fs::copy would follow it and overwrite its target).
        let mut src = File::open(from).map_err(|e| Error::io(from, e))?;
        let mut dst = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(to)
            .map_err(|e| Error::io(to, e))?;
        std::io::copy(&mut src, &mut dst).map_err(|e| Error::io(to, e))?;
        dst.sync_all().map_err(|e| Error::io(to, e))
    }

    fn create_empty_dir(&self, dir: &Path) -> Result<()> {
        let refuse = |why: &str| Err(Error::InvalidArgument(format!("{} {why}", dir.display())));
        match fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => return refuse("is a symlink"),
            Ok(m) if !m.is_dir() => return refuse("exists and is not a directory"),
            Ok(_) => {
                let mut entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
                if entries.next().is_some() {
                    return refuse("exists and is not empty");
                }
                return Ok(()); // files go in with O_EXCL or link(2): nothing is overwritten
            }
            Err(_) => {}
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        // mkdir fails if anything appeared there meanwhile, a symlink included.
        fs::create_dir(dir).map_err(|e| Error::io(dir, e))
    }
}
