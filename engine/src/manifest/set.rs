//! The version set: the current [`Version`], the database's counters, and the MANIFEST
//! that makes each change durable. Spec: docs/format/manifest.md.
//!
//! ```text
//! CURRENT              := "MANIFEST-" digits "\n"
//! MANIFEST-NNNNNN      := log of version_edit records (docs/format/wal.md)
//! ```
//! Every MANIFEST this code writes starts with a snapshot edit of the whole state, so a
//! manifest stands alone. Recovery replays every edit of the manifest CURRENT names and
//! does not write; the first [`VersionSet::log_and_apply`] after it starts a new
//! manifest (the old one may end in a torn tail, which must never be appended to).

use super::builder::VersionBuilder;
use super::current::{read_current, set_current};
use super::edit::VersionEdit;
use super::version::Version;
use crate::error::{Error, Result};
use crate::filename::{self, FileKind};
use crate::fs::Fs;
use crate::wal::format::payload_file_offset;
use crate::wal::{LogReader, LogWriter, ReadEnd};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

/// A manifest that has grown past this many bytes is replaced by a new one holding a
/// single snapshot edit: bounds recovery time and disk use (LevelDB/RocksDB cut at a
/// similar size).
pub const MANIFEST_ROLLOVER_BYTES: u64 = 64 * 1024 * 1024;

/// File numbers stay below this. A damaged manifest or a stray file name may claim a
/// number near u64::MAX, after which allocating one (a manifest rewrite takes two at
/// once) would overflow: such a number is corruption. 2^62 is more numbers than any
/// directory will allocate.
const MAX_FILE_NUMBER: u64 = 1 << 62;

/// The numbers every edit carries once applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counters {
    log_number: u64,
    next_file_number: u64,
    last_sequence: u64,
}

/// The current version, counters and keyspaces of a database, and its MANIFEST.
/// Single-threaded: the Db wraps it in its mutex.
pub struct VersionSet {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    current: Arc<Version>,
    /// Every version handed out, to know which files someone may still read.
    versions: Vec<Weak<Version>>,
    counters: Counters,
    keyspaces: BTreeMap<u8, String>,
    /// Number of the manifest CURRENT names (0 before the first one exists).
    manifest_number: u64,
    /// The open manifest; `None` after recovery or a failed write, so that the next
    /// `log_and_apply` starts a new manifest.
    manifest: Option<LogWriter>,
    rollover_bytes: u64,
}

impl std::fmt::Debug for VersionSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionSet")
            .field("dir", &self.dir)
            .field("counters", &self.counters)
            .field("manifest_number", &self.manifest_number)
            .field("keyspaces", &self.keyspaces)
            .finish_non_exhaustive()
    }
}

impl VersionSet {
    fn empty(fs: Arc<dyn Fs>, dir: &Path, counters: Counters) -> VersionSet {
        let current = Arc::new(Version::default());
        VersionSet {
            fs,
            dir: dir.to_path_buf(),
            versions: vec![Arc::downgrade(&current)],
            current,
            counters,
            keyspaces: BTreeMap::new(),
            manifest_number: 0,
            manifest: None,
            rollover_bytes: MANIFEST_ROLLOVER_BYTES,
        }
    }

    /// A new database in `dir`: writes MANIFEST-000001 holding keyspace (0, "default"),
    /// log number 0 and last sequence 0, syncs it and points CURRENT at it atomically.
    /// `InvalidArgument` if `dir` already has a CURRENT.
    pub fn create(fs: Arc<dyn Fs>, dir: &Path) -> Result<VersionSet> {
        fs.create_dir_all(dir)?;
        if fs.exists(&dir.join(filename::CURRENT)) {
            return Err(Error::InvalidArgument(format!(
                "{} already holds a database (CURRENT exists)",
                dir.display()
            )));
        }
        let counters = Counters {
            log_number: 0,
            next_file_number: 1,
            last_sequence: 0,
        };
        let mut set = VersionSet::empty(fs, dir, counters);
        set.log_and_apply(VersionEdit {
            new_keyspaces: vec![(0, "default".to_string())],
            ..VersionEdit::default()
        })?;
        Ok(set)
    }

    /// An existing database: reads CURRENT and replays every edit of the manifest it
    /// names. Writes nothing. A missing or garbled CURRENT or manifest, a bad edit, or
    /// damage followed by valid records is `Error::Corruption` naming the file and
    /// offset; a torn tail after the last complete edit is not (that edit never
    /// happened).
    pub fn recover(fs: Arc<dyn Fs>, dir: &Path) -> Result<VersionSet> {
        let name = read_current(&*fs, dir)?;
        let current_path = dir.join(filename::CURRENT);
        let Some(FileKind::Manifest(number)) = filename::parse(&name) else {
            return Err(Error::corruption(
                current_path,
                0,
                "CURRENT names no manifest",
            ));
        };
        let path = dir.join(&name);
        if !fs.exists(&path) {
            return Err(Error::corruption(
                &path,
                0,
                "the manifest CURRENT names is missing",
            ));
        }
        let replay = Replay::run(&path, LogReader::new(path.clone(), fs.open(&path)?))?;
        let mut set = VersionSet::empty(fs, dir, replay.counters);
        // Never hand out a number already in use, whatever the manifest recorded. A
        // damaged manifest may name a file, or record a next number, near u64::MAX,
        // after which allocating would overflow.
        let highest_used = replay.version.live_file_numbers().chain([number]).max();
        let next = set
            .counters
            .next_file_number
            .max(highest_used.unwrap_or(0).saturating_add(1));
        if next >= MAX_FILE_NUMBER {
            return Err(Error::corruption(
                &path,
                0,
                format!("file number {next} leaves no number to allocate"),
            ));
        }
        set.counters.next_file_number = next;
        set.install(replay.version, replay.keyspaces);
        set.manifest_number = number;
        Ok(set)
    }

    /// Applies `edit`: fills in `log_number`, `next_file_number` and `last_sequence`
    /// from this set where absent (and raises any that would go backwards), appends it
    /// to the manifest, syncs, then installs the new current version.
    ///
    /// An edit that would break a level invariant, delete a missing file, add a file
    /// twice or rename a keyspace is `InvalidArgument` and nothing is written. On a
    /// write or sync error nothing in memory changes and the error is returned; the
    /// next call then starts a new manifest. When the manifest has grown past the
    /// rollover size (or none is open), a new manifest holding one snapshot edit is
    /// written and synced, CURRENT is switched atomically and the old one removed.
    pub fn log_and_apply(&mut self, mut edit: VersionEdit) -> Result<()> {
        let counters = Counters {
            log_number: edit.log_number.unwrap_or(0).max(self.counters.log_number),
            next_file_number: (edit.next_file_number.unwrap_or(0))
                .max(self.counters.next_file_number),
            last_sequence: edit
                .last_sequence
                .unwrap_or(0)
                .max(self.counters.last_sequence),
        };
        let keyspaces = self.merged_keyspaces(&edit)?;
        let mut builder = VersionBuilder::new(&self.current);
        builder.apply(&edit).map_err(Error::InvalidArgument)?;
        let version = builder.build().map_err(Error::InvalidArgument)?;

        let needs_new_manifest = self
            .manifest
            .as_ref()
            .is_none_or(|w| w.len() >= self.rollover_bytes);
        let written = if needs_new_manifest {
            self.write_new_manifest(counters, &version, &keyspaces)
        } else {
            set_counters(&mut edit, counters);
            self.append(&edit).map(|()| (counters, None))
        };
        let (counters, new_manifest) = match written {
            Ok(w) => w,
            Err(e) => {
                // The writer may hold a partial record, or CURRENT may already name a
                // new manifest: never append to this one again.
                self.manifest = None;
                return Err(e);
            }
        };
        if let Some((number, writer)) = new_manifest {
            self.manifest_number = number;
            self.manifest = Some(writer);
        }
        self.counters = counters;
        self.install(version, keyspaces);
        Ok(())
    }

    fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        let writer = self
            .manifest
            .as_mut()
            .ok_or_else(|| Error::InvalidArgument("no manifest is open".into()))?;
        writer.add_record(&edit.encode())?;
        writer.sync()
    }

    /// Writes a manifest holding a snapshot of the new state, switches CURRENT to it and
    /// removes the old one. Uses two file numbers: the manifest's and CURRENT's temp.
    fn write_new_manifest(
        &self,
        mut counters: Counters,
        version: &Version,
        keyspaces: &BTreeMap<u8, String>,
    ) -> Result<(Counters, Option<(u64, LogWriter)>)> {
        let number = counters.next_file_number;
        let temp_number = number + 1;
        counters.next_file_number = number + 2;
        let snapshot = snapshot_of(version, keyspaces, counters);
        let path = self.dir.join(filename::manifest_name(number));
        let mut writer = LogWriter::new(path.clone(), self.fs.create(&path)?);
        let written = writer
            .add_record(&snapshot.encode())
            .and_then(|()| writer.sync())
            .and_then(|()| set_current(&*self.fs, &self.dir, number, temp_number));
        if let Err(e) = written {
            // Keep it if the rename went through: CURRENT may name it now.
            if read_current(&*self.fs, &self.dir).ok() != Some(filename::manifest_name(number)) {
                let _ = self.fs.remove_file(&path);
            }
            return Err(e);
        }
        if self.manifest_number != 0 {
            let old = self.dir.join(filename::manifest_name(self.manifest_number));
            if let Err(e) = self.fs.remove_file(&old) {
                tracing::warn!("could not remove old manifest {}: {e}", old.display());
            }
        }
        Ok((counters, Some((number, writer))))
    }

    fn merged_keyspaces(&self, edit: &VersionEdit) -> Result<BTreeMap<u8, String>> {
        let mut keyspaces = self.keyspaces.clone();
        for (id, name) in &edit.new_keyspaces {
            merge_keyspace(&mut keyspaces, *id, name).map_err(Error::InvalidArgument)?;
        }
        Ok(keyspaces)
    }

    fn install(&mut self, version: Version, keyspaces: BTreeMap<u8, String>) {
        self.current = Arc::new(version);
        self.versions.retain(|v| v.strong_count() > 0);
        self.versions.push(Arc::downgrade(&self.current));
        self.keyspaces = keyspaces;
    }

    /// The current version.
    pub fn current(&self) -> Arc<Version> {
        self.current.clone()
    }

    /// Allocates a file number.
    pub fn new_file_number(&mut self) -> u64 {
        let n = self.counters.next_file_number;
        self.counters.next_file_number += 1;
        n
    }

    /// Makes sure [`Self::new_file_number`] never returns `n` (or less): for files found
    /// on disk whose numbers the manifest may not know yet, like WALs created after its
    /// last edit (RocksDB's `MarkFileNumberUsed`). `path` is that file, named in the
    /// error when its number leaves no number to allocate (a stray or damaged name).
    pub fn mark_file_number_used(&mut self, n: u64, path: &Path) -> Result<()> {
        if n >= MAX_FILE_NUMBER - 1 {
            return Err(Error::corruption(
                path,
                0,
                format!("file number {n} leaves no number to allocate"),
            ));
        }
        self.counters.next_file_number = self.counters.next_file_number.max(n + 1);
        Ok(())
    }

    /// The number the next [`Self::new_file_number`] will return.
    pub fn next_file_number(&self) -> u64 {
        self.counters.next_file_number
    }

    /// The largest sequence number used.
    pub fn last_sequence(&self) -> u64 {
        self.counters.last_sequence
    }

    /// Sets the last sequence in memory (it never goes backwards); persisted by the next
    /// [`Self::log_and_apply`].
    pub fn set_last_sequence(&mut self, seq: u64) {
        debug_assert!(
            seq >= self.counters.last_sequence,
            "sequence went backwards"
        );
        self.counters.last_sequence = self.counters.last_sequence.max(seq);
    }

    /// WALs with a number below this are obsolete.
    pub fn log_number(&self) -> u64 {
        self.counters.log_number
    }

    /// Number of the manifest CURRENT names.
    pub fn manifest_file_number(&self) -> u64 {
        self.manifest_number
    }

    /// The keyspaces, by id.
    pub fn keyspaces(&self) -> &BTreeMap<u8, String> {
        &self.keyspaces
    }

    /// Every file number referenced by a version still alive: the current one and any
    /// older one someone holds.
    pub fn live_files(&mut self) -> HashSet<u64> {
        self.versions.retain(|v| v.strong_count() > 0);
        let mut live: HashSet<u64> = self.current.live_file_numbers().collect();
        for v in self.versions.iter().filter_map(Weak::upgrade) {
            live.extend(v.live_file_numbers());
        }
        live
    }

    /// One edit describing the whole current state (for checkpoints and kvtool).
    pub fn snapshot_edit(&self) -> VersionEdit {
        snapshot_of(&self.current, &self.keyspaces, self.counters)
    }

    /// Manifest size that triggers a rollover ([`MANIFEST_ROLLOVER_BYTES`] unless set):
    /// for tests and tuning.
    pub fn set_manifest_rollover_bytes(&mut self, bytes: u64) {
        self.rollover_bytes = bytes;
    }
}

fn set_counters(edit: &mut VersionEdit, c: Counters) {
    edit.log_number = Some(c.log_number);
    edit.next_file_number = Some(c.next_file_number);
    edit.last_sequence = Some(c.last_sequence);
}

fn snapshot_of(version: &Version, keyspaces: &BTreeMap<u8, String>, c: Counters) -> VersionEdit {
    let mut edit = VersionEdit {
        new_keyspaces: keyspaces.iter().map(|(&id, n)| (id, n.clone())).collect(),
        new_files: (version.levels.iter().enumerate())
            .flat_map(|(level, files)| files.iter().map(move |f| (level, (**f).clone())))
            .collect(),
        ..VersionEdit::default()
    };
    set_counters(&mut edit, c);
    edit
}

/// Adds keyspace `(id, name)`; re-adding the same pair is a no-op.
fn merge_keyspace(
    keyspaces: &mut BTreeMap<u8, String>,
    id: u8,
    name: &str,
) -> std::result::Result<(), String> {
    if let Some((&other, _)) = keyspaces
        .iter()
        .find(|(&i, n)| n.as_str() == name && i != id)
    {
        return Err(format!(
            "keyspace name {name:?} already belongs to id {other}"
        ));
    }
    match keyspaces.get(&id) {
        Some(existing) if existing != name => Err(format!(
            "keyspace {id} is {existing:?}, cannot rename it to {name:?}"
        )),
        _ => {
            keyspaces.insert(id, name.to_string());
            Ok(())
        }
    }
}

/// The state a manifest's edits add up to.
struct Replay {
    version: Version,
    keyspaces: BTreeMap<u8, String>,
    counters: Counters,
}

impl Replay {
    fn run(path: &Path, mut reader: LogReader) -> Result<Replay> {
        let mut builder = VersionBuilder::new(&Version::default());
        let mut keyspaces = BTreeMap::new();
        let (mut log, mut next, mut seq) = (None, None, None);
        let mut last_offset = None;
        while let Some((offset, record)) = reader.next_record() {
            let edit = VersionEdit::decode(&record).map_err(|(at, what)| {
                let at = payload_file_offset(offset, at);
                Error::corruption(path, at, format!("bad version edit: {what}"))
            })?;
            let bad = |what: String| Error::corruption(path, offset, what);
            builder.apply(&edit).map_err(bad)?;
            for (id, name) in &edit.new_keyspaces {
                merge_keyspace(&mut keyspaces, *id, name).map_err(bad)?;
            }
            log = edit.log_number.or(log);
            next = edit.next_file_number.or(next);
            seq = edit.last_sequence.or(seq);
            last_offset = Some(offset);
        }
        match reader.end() {
            ReadEnd::Clean => {}
            ReadEnd::TornTail {
                offset,
                dropped_bytes,
            } => tracing::warn!(
                "manifest {} ends in a torn tail at {offset} ({dropped_bytes} bytes dropped)",
                path.display()
            ),
            ReadEnd::Corrupt { offset, what, .. } => {
                return Err(Error::corruption(path, *offset, what.clone()))
            }
        }
        let last_offset = last_offset
            .ok_or_else(|| Error::corruption(path, 0, "manifest holds no complete edit"))?;
        let missing = |field: &str| {
            Error::corruption(path, last_offset, format!("manifest never records {field}"))
        };
        let counters = Counters {
            log_number: log.ok_or_else(|| missing("log_number"))?,
            next_file_number: next.ok_or_else(|| missing("next_file_number"))?,
            last_sequence: seq.ok_or_else(|| missing("last_sequence"))?,
        };
        let version = builder
            .build()
            .map_err(|what| Error::corruption(path, last_offset, what))?;
        Ok(Replay {
            version,
            keyspaces,
            counters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;
    use crate::key::{make_internal_key, ValueKind};
    use crate::manifest::FileMeta;

    /// Crashed the manifest fuzz target (input in fuzz/regressions/manifest/): an edit
    /// adding file number u64::MAX made recovery overflow computing the next free
    /// number (a panic with overflow checks, a wrap to 0 without).
    #[test]
    fn a_file_numbered_u64_max_is_corruption() {
        assert_recovery_finds_no_number_left(VersionEdit {
            new_files: vec![(
                1,
                FileMeta {
                    number: u64::MAX,
                    size: 100,
                    smallest: make_internal_key(b"a", 1, ValueKind::Put),
                    largest: make_internal_key(b"b", 2, ValueKind::Put),
                    smallest_seq: 1,
                    largest_seq: 2,
                    entries: 2,
                    deletions: 0,
                },
            )],
            ..VersionEdit::default()
        });
    }

    /// Crashed the manifest fuzz target (fuzz/regressions/manifest/next-file-number-
    /// near-u64-max): a manifest whose recorded next file number was near u64::MAX
    /// recovered, and its rewrite overflowed taking two numbers.
    #[test]
    fn a_next_file_number_near_u64_max_is_corruption() {
        assert_recovery_finds_no_number_left(VersionEdit {
            next_file_number: Some(u64::MAX - 2),
            ..VersionEdit::default()
        });
    }

    /// Writes a manifest with `edit` and checks that recovering it is corruption that
    /// says no file number is left.
    fn assert_recovery_finds_no_number_left(edit: VersionEdit) {
        let fs = MemFs::new();
        let dir = Path::new("/db");
        let mut set = VersionSet::create(Arc::new(fs.clone()), dir).unwrap();
        set.log_and_apply(edit).unwrap();
        drop(set);
        let e = VersionSet::recover(Arc::new(fs), dir).unwrap_err();
        assert!(e.is_corruption(), "{e}");
        assert!(e.to_string().contains("no number to allocate"), "{e}");
    }

    #[test]
    fn a_file_found_with_a_number_near_u64_max_is_corruption() {
        let fs = MemFs::new();
        let dir = Path::new("/db");
        let mut set = VersionSet::create(Arc::new(fs), dir).unwrap();
        let stray = dir.join("18446744073709551614.log");
        let e = set.mark_file_number_used(u64::MAX - 1, &stray).unwrap_err();
        assert!(
            e.is_corruption() && e.to_string().contains("18446744073709551614"),
            "{e}"
        );
        let before = set.next_file_number();
        set.mark_file_number_used(before + 10, &stray).unwrap();
        assert_eq!(set.new_file_number(), before + 11);
    }
}
