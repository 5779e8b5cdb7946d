//! A read-only view of a data directory through the engine's own readers: the files it
//! holds, the live version the MANIFEST describes (`VersionSet::recover`, which writes
//! nothing and takes no lock, so this works while kvd runs), tables and WALs.

use crate::escape::escape;
use kv_engine::filename::{self, FileKind};
use kv_engine::fs;
use kv_engine::key::{ParsedKey, ValueKind};
use kv_engine::manifest::{FileMeta, Version, VersionSet};
use kv_engine::sst::{SstCounters, Table};
use kv_engine::wal::{self, ReadEnd};
use kv_engine::{Result, WriteBatch};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// One entry of a data directory.
#[derive(Debug, Clone)]
pub struct DirFile {
    /// File name.
    pub name: String,
    /// What the engine makes of the name (`None`: not an engine file).
    pub kind: Option<FileKind>,
    /// Size in bytes.
    pub size: u64,
}

/// The files of `dir`, sorted by name.
pub fn list(dir: &Path) -> Result<Vec<DirFile>> {
    let fs = fs::real();
    let mut names = fs.list_dir(dir)?;
    names.sort();
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let path = dir.join(&name);
            // Directories and files removed since the listing (kvd may be running) are skipped.
            let size = fs.file_size(&path).ok()?;
            path.is_file().then(|| DirFile {
                kind: filename::parse(&name),
                name,
                size,
            })
        })
        .collect())
}

/// What the MANIFEST says is live.
pub struct LiveState {
    /// The manifest CURRENT names.
    pub manifest: String,
    /// Live tables per level.
    pub version: Arc<Version>,
    /// Keyspace names by id.
    pub keyspaces: BTreeMap<u8, String>,
    /// WALs numbered below this are already in tables.
    pub log_number: u64,
    /// Last sequence number the manifest records (the engine reserves ahead of use).
    pub last_sequence: u64,
    /// Next file number to be handed out.
    pub next_file_number: u64,
}

impl LiveState {
    /// Reads CURRENT and replays the manifest. Writes nothing.
    pub fn load(dir: &Path) -> Result<LiveState> {
        let fs = fs::real();
        let manifest = kv_engine::manifest::read_current(fs.as_ref(), dir)?;
        let set = VersionSet::recover(fs, dir)?;
        Ok(LiveState {
            manifest,
            version: set.current(),
            keyspaces: set.keyspaces().clone(),
            log_number: set.log_number(),
            last_sequence: set.last_sequence(),
            next_file_number: set.next_file_number(),
        })
    }

    /// Live tables with their level.
    pub fn tables(&self) -> impl Iterator<Item = (usize, &Arc<FileMeta>)> {
        self.version
            .levels
            .iter()
            .enumerate()
            .flat_map(|(level, files)| files.iter().map(move |f| (level, f)))
    }

    /// Smallest and largest stored user key (keyspace byte first) of `level`'s files.
    pub fn level_range(&self, level: usize) -> Option<(Vec<u8>, Vec<u8>)> {
        let files = self.version.levels.get(level)?;
        let lo = files.iter().map(|f| user_key(&f.smallest)).min()?;
        let hi = files.iter().map(|f| user_key(&f.largest)).max()?;
        Some((lo.to_vec(), hi.to_vec()))
    }
}

/// The user-key part (keyspace byte + key) of an internal key.
pub fn user_key(internal: &[u8]) -> &[u8] {
    kv_engine::key::user_key(internal)
}

/// Keyspace names by id, for showing stored keys.
#[derive(Debug, Clone, Default)]
pub struct Names(pub BTreeMap<u8, String>);

impl Names {
    /// The name of keyspace `id` (`ks<id>` when unknown).
    pub fn keyspace(&self, id: u8) -> String {
        self.0
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("ks{id}"))
    }

    /// A stored user key as `keyspace:key` (the key escaped).
    pub fn user_key(&self, stored: &[u8]) -> String {
        match stored.split_first() {
            Some((&ks, key)) => format!("{}:{}", self.keyspace(ks), escape(key)),
            None => "(empty)".to_string(),
        }
    }

    /// An internal key as `keyspace:key @seq kind`.
    pub fn internal_key(&self, internal: &[u8]) -> String {
        match ParsedKey::parse(internal) {
            Some(p) => format!(
                "{} @{} {}",
                self.user_key(p.user_key),
                p.seq,
                kind_name(p.kind)
            ),
            None => format!("(malformed key {})", escape(internal)),
        }
    }
}

/// `put`, `del`, `range-del`, or the raw byte.
pub fn kind_name(kind: u8) -> String {
    match ValueKind::from_u8(kind) {
        Some(ValueKind::Put) => "put".into(),
        Some(ValueKind::Delete) => "del".into(),
        Some(ValueKind::RangeDelete) => "range-del".into(),
        None => format!("kind{kind}"),
    }
}

/// Opens table file `path` with the engine's reader (footer, index, filter and
/// properties are read and checked here).
pub fn open_table(path: &Path) -> Result<Arc<Table>> {
    let fs = fs::real();
    let number = match path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(filename::parse)
    {
        Some(FileKind::Table(n)) => n,
        _ => 0,
    };
    Table::open(
        path.to_path_buf(),
        fs.open(path)?,
        number,
        None,
        Arc::new(SstCounters::default()),
    )
}

/// One WAL record decoded as a write batch.
pub struct WalBatch {
    /// Offset of the record in the file.
    pub offset: u64,
    /// Payload size.
    pub bytes: usize,
    /// The batch, or where and why its payload does not decode.
    pub batch: std::result::Result<WriteBatch, (usize, String)>,
}

/// Records of a log file: (file offset, payload).
pub type Records = Vec<(u64, Vec<u8>)>;

/// Every record of a WAL (or MANIFEST: same record format) and why reading stopped.
pub fn read_log(path: &Path) -> Result<(Records, ReadEnd)> {
    wal::read_all(fs::real().as_ref(), path)
}

/// Every batch of WAL `path` and why reading stopped.
pub fn read_wal(path: &Path) -> Result<(Vec<WalBatch>, ReadEnd)> {
    let (records, end) = read_log(path)?;
    let batches = records
        .into_iter()
        .map(|(offset, payload)| WalBatch {
            offset,
            bytes: payload.len(),
            batch: WriteBatch::decode(&payload),
        })
        .collect();
    Ok((batches, end))
}

/// Keyspace names for a file in `dir`: from its manifest when readable, else none.
pub fn names_near(file: &Path) -> Names {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    LiveState::load(dir)
        .ok()
        .map(|s| Names(s.keyspaces))
        .unwrap_or_default()
}

/// The process holding `dir`'s LOCK (a running kvd, usually), read from `/proc/locks`
/// without touching the lock. `None` when nobody holds it or this is not Linux.
pub fn lock_holder(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir.join(filename::LOCK)).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let (dev, ino) = (meta.dev(), meta.ino());
    // glibc's major()/minor() split of a dev_t; /proc/locks prints them in hex.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let want = format!("{major:02x}:{minor:02x}:{ino}");
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 4242 fe:00:5857343 0 EOF"
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, "WRITE", pid, file, ..] if *file == want => pid.parse().ok(),
            _ => None,
        }
    })
}

/// True for an I/O error saying a file does not exist (kvd deleted it meanwhile).
pub fn is_not_found(e: &kv_engine::Error) -> bool {
    matches!(e, kv_engine::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// Keyspace id the engine reserves for range-delete records (`RANGE_TOMBSTONE_KEYSPACE`
/// in `engine/src/db/range_tombstones.rs`, crate-private there). It sorts after every
/// other keyspace.
pub const RANGE_TOMBSTONE_KEYSPACE: u8 = u8::MAX;

/// A range delete: every version older than `seq` of keys in `[start, end)` of
/// `keyspace` is deleted.
///
/// Mirrors the engine's record (`engine/src/db/range_tombstones.rs`): a `Put` in the
/// reserved keyspace with key `keyspace:u8 seq:u64-BE start` and value `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeTombstone {
    /// Keyspace of the deleted keys.
    pub keyspace: u8,
    /// First deleted key (inclusive).
    pub start: Vec<u8>,
    /// End of the range (exclusive).
    pub end: Vec<u8>,
    /// Sequence number of the delete.
    pub seq: u64,
}

impl RangeTombstone {
    /// The stored user key of the record (reserved keyspace byte first).
    pub fn record_key(keyspace: u8, seq: u64, start: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(start.len() + 10);
        k.extend_from_slice(&[RANGE_TOMBSTONE_KEYSPACE, keyspace]);
        k.extend_from_slice(&seq.to_be_bytes());
        k.extend_from_slice(start);
        k
    }

    /// Decodes a record from its stored user key and value.
    pub fn from_record(stored_key: &[u8], end: &[u8]) -> Option<RangeTombstone> {
        let (&RANGE_TOMBSTONE_KEYSPACE, rest) = stored_key.split_first()? else {
            return None;
        };
        let (&keyspace, rest) = rest.split_first()?;
        Some(RangeTombstone {
            keyspace,
            seq: u64::from_be_bytes(rest.get(..8)?.try_into().ok()?),
            start: rest.get(8..)?.to_vec(),
            end: end.to_vec(),
        })
    }

    /// True if it deletes version `seq` of `key` (no keyspace prefix) in `keyspace`.
    pub fn covers(&self, keyspace: u8, key: &[u8], seq: u64) -> bool {
        self.keyspace == keyspace
            && seq < self.seq
            && self.start.as_slice() <= key
            && key < self.end.as_slice()
    }
}
