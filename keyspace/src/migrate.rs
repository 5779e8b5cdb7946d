//! Bringing a directory to the current keyspace format at open: a directory written by a
//! kvd before format 2 (namespace-first data keys, legacy.rs) has every data key rewritten
//! to the slot-first layout (data_key.rs); values, TTLs and namespaces are unchanged.
//!
//! Both layouts live in the same engine keyspace, and a legacy key can be crafted to look
//! like a valid new one, so keys of the two layouts must never be mixed there. The
//! migration therefore runs in two phases, each a sequence of bounded batches, each batch
//! one atomic engine write that moves keys out of one keyspace into another:
//!
//! 1. *stage*: legacy keys move verbatim from the data keyspace to the staging keyspace
//!    `kvd-legacy-staging`; then the record `keyspace-migration` = `staged` is written.
//! 2. *rewrite*: staged keys move back to the data keyspace under their new keys; then one
//!    batch writes `keyspace-format` = 2 and deletes `keyspace-migration`.
//!
//! While phase 1 runs the data keyspace holds only legacy keys; once the marker exists it
//! holds only new keys and the staging keyspace only legacy ones. So a crash anywhere
//! leaves a state the next open recognises and finishes, and re-running a batch that
//! already committed finds nothing to move: the migration is idempotent.

use crate::data_key::data_key;
use crate::format::{encode_format, stored_format, FORMAT_VERSION, META_FORMAT};
use crate::legacy::legacy_split_data_key;
use kv_engine::{Db, Keyspace, WriteBatch};

/// Engine keyspace holding legacy keys between the two phases.
pub const STAGING_KEYSPACE: &str = "kvd-legacy-staging";
/// Meta record present between the two phases.
pub const META_MIGRATION: &[u8] = b"keyspace-migration";
const STAGED: &[u8] = b"staged";

/// How much one migration batch moves at most.
#[derive(Debug, Clone, Copy)]
pub struct MigrationLimits {
    /// Keys per batch.
    pub batch_keys: usize,
    /// Bytes of keys and values per batch (a batch holds at least one key).
    pub batch_bytes: usize,
    /// Stop (unfinished) after this many batches: tests use it to interrupt a migration.
    pub max_batches: usize,
}

impl Default for MigrationLimits {
    fn default() -> Self {
        MigrationLimits {
            batch_keys: 1024,
            batch_bytes: 4 << 20,
            max_batches: usize::MAX,
        }
    }
}

/// What a migration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Legacy keys moved to the staging keyspace.
    pub staged: u64,
    /// Keys rewritten to the new layout.
    pub rewritten: u64,
    /// Staged keys too short to be legacy data keys: left in the staging keyspace (the
    /// legacy server ignored them too).
    pub unreadable: u64,
    /// Batches written.
    pub batches: u64,
    /// True once the format record says [`FORMAT_VERSION`].
    pub finished: bool,
}

/// Brings the directory to [`FORMAT_VERSION`] with the default limits; `None` if it was
/// already there. Errors: engine failures, a malformed format record, a newer format.
pub fn ensure_current_format(
    db: &Db,
    meta: Keyspace,
    data: Keyspace,
) -> kv_engine::Result<Option<MigrationReport>> {
    migrate(db, meta, data, MigrationLimits::default())
}

/// Like [`ensure_current_format`], with explicit limits (the report's `finished` is false
/// if `max_batches` stopped it).
pub fn migrate(
    db: &Db,
    meta: Keyspace,
    data: Keyspace,
    limits: MigrationLimits,
) -> kv_engine::Result<Option<MigrationReport>> {
    if stored_format(db, meta)? == FORMAT_VERSION {
        return Ok(None);
    }
    let mut report = MigrationReport::default();
    let staged = db
        .get(meta, META_MIGRATION)?
        .is_some_and(|v| v.value == STAGED);
    if !staged {
        let empty = db.iter(data, None, None, None)?.next().is_none();
        if empty {
            // A new directory, or a legacy one without keys: nothing to rewrite.
            finish(db, meta)?;
            report.finished = true;
            return Ok(Some(report));
        }
        let staging = db.keyspace(STAGING_KEYSPACE)?;
        if !move_batches(db, data, staging, &limits, &mut report, |k| {
            Some(k.to_vec())
        })? {
            return Ok(Some(report));
        }
        report.staged = report.rewritten;
        report.rewritten = 0;
        db.put(meta, META_MIGRATION, STAGED)?;
    }
    let staging = db.keyspace(STAGING_KEYSPACE)?;
    let mut unreadable = 0;
    let done = move_batches(db, staging, data, &limits, &mut report, |k| {
        let rewritten = legacy_split_data_key(k).map(|(ns, key)| data_key(ns, key));
        unreadable += rewritten.is_none() as u64;
        rewritten
    })?;
    report.unreadable = unreadable;
    if done {
        finish(db, meta)?;
        report.finished = true;
    }
    Ok(Some(report))
}

/// Writes the format record (and drops the phase marker) durably.
fn finish(db: &Db, meta: Keyspace) -> kv_engine::Result<()> {
    let mut batch = WriteBatch::new();
    batch.put(meta, META_FORMAT, &encode_format(FORMAT_VERSION));
    batch.delete(meta, META_MIGRATION);
    db.write(batch)?;
    db.sync_wal()
}

/// Moves every key of `from` to `to` under `rename(key)` (left in place if `None`), in
/// batches; counts moved keys in `report.rewritten`. Returns false if `max_batches` ran
/// out first. Reads one snapshot, so its own deletes never slow the walk down.
fn move_batches(
    db: &Db,
    from: Keyspace,
    to: Keyspace,
    limits: &MigrationLimits,
    report: &mut MigrationReport,
    mut rename: impl FnMut(&[u8]) -> Option<Vec<u8>>,
) -> kv_engine::Result<bool> {
    let snapshot = db.snapshot();
    let mut entries = db.iter(from, None, None, Some(&snapshot))?.peekable();
    while entries.peek().is_some() {
        if report.batches as usize >= limits.max_batches {
            return Ok(false);
        }
        let (mut batch, mut keys, mut bytes) = (WriteBatch::new(), 0, 0);
        while keys < limits.batch_keys.max(1) && bytes < limits.batch_bytes {
            let Some(entry) = entries.next() else { break };
            let entry = entry?;
            if let Some(new_key) = rename(&entry.key) {
                batch.put(to, &new_key, &entry.value);
                batch.delete(from, &entry.key);
                report.rewritten += 1;
            }
            keys += 1;
            bytes += entry.key.len() + entry.value.len();
        }
        if !batch.is_empty() {
            db.write(batch)?;
        }
        report.batches += 1;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_key::split_data_key;
    use crate::format::LEGACY_FORMAT;
    use crate::legacy::legacy_data_key;
    use std::collections::BTreeMap;

    type Content = BTreeMap<(u32, Vec<u8>), Vec<u8>>;

    /// A legacy directory: keys in three namespaces, one unreadable short key.
    fn legacy_dir(keys: u32) -> (tempfile::TempDir, Content) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), kv_engine::Options::default()).unwrap();
        let mut content = Content::new();
        for i in 0..keys {
            let (ns, key) = (i % 3, format!("key:{i}").into_bytes());
            let value = format!("value {i}").into_bytes();
            db.put(Keyspace::DEFAULT, &legacy_data_key(ns, &key), &value)
                .unwrap();
            content.insert((ns, key), value);
        }
        db.put(Keyspace::DEFAULT, b"ab", b"junk").unwrap();
        db.close().unwrap();
        (dir, content)
    }

    fn content_of(db: &Db) -> Content {
        db.iter(Keyspace::DEFAULT, None, None, None)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let k = split_data_key(&e.key).expect("only new-layout keys");
                ((k.ns, k.key.to_vec()), e.value.to_vec())
            })
            .collect()
    }

    #[test]
    fn a_migration_interrupted_after_any_batch_finishes_on_reopen() {
        let limits = |max_batches| MigrationLimits {
            batch_keys: 7,
            batch_bytes: 1 << 20,
            max_batches,
        };
        // 40 keys + 1 short one: 6 staging batches, then 6 rewriting batches.
        for stop_after in 0..14 {
            let (dir, want) = legacy_dir(40);
            let db = Db::open(dir.path(), kv_engine::Options::default()).unwrap();
            let meta = db.keyspace("kvd-meta").unwrap();
            let first = migrate(&db, meta, Keyspace::DEFAULT, limits(stop_after))
                .unwrap()
                .unwrap();
            assert_eq!(first.finished, stop_after >= 12, "stop after {stop_after}");
            if !first.finished {
                assert_eq!(stored_format(&db, meta).unwrap(), LEGACY_FORMAT);
            }
            drop(db); // a crash: not closed
            let db = Db::open(dir.path(), kv_engine::Options::default()).unwrap();
            let meta = db.keyspace("kvd-meta").unwrap();
            let second = ensure_current_format(&db, meta, Keyspace::DEFAULT).unwrap();
            assert_eq!(second.is_some(), !first.finished);
            assert_eq!(stored_format(&db, meta).unwrap(), FORMAT_VERSION);
            assert_eq!(db.get(meta, META_MIGRATION).unwrap(), None);
            assert_eq!(content_of(&db), want, "stop after {stop_after}");
            // The short key the legacy server ignored is kept, out of the way.
            let staging = db.keyspace(STAGING_KEYSPACE).unwrap();
            assert_eq!(db.get(staging, b"ab").unwrap().unwrap().value, &b"junk"[..]);
            // Idempotent: a third open has nothing to do.
            assert_eq!(
                ensure_current_format(&db, meta, Keyspace::DEFAULT).unwrap(),
                None
            );
            db.close().unwrap();
        }
    }

    #[test]
    fn a_new_directory_gets_the_format_record_without_staging() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), kv_engine::Options::default()).unwrap();
        let meta = db.keyspace("kvd-meta").unwrap();
        let report = ensure_current_format(&db, meta, Keyspace::DEFAULT)
            .unwrap()
            .unwrap();
        assert!(report.finished && report.batches == 0);
        assert_eq!(stored_format(&db, meta).unwrap(), FORMAT_VERSION);
        assert!(!db.keyspaces().iter().any(|(_, n)| n == STAGING_KEYSPACE));
    }

    #[test]
    fn newer_or_malformed_formats_are_refused_and_nothing_moves() {
        let (dir, _) = legacy_dir(5);
        let db = Db::open(dir.path(), kv_engine::Options::default()).unwrap();
        let meta = db.keyspace("kvd-meta").unwrap();
        db.put(meta, META_FORMAT, &encode_format(3)).unwrap();
        let err = ensure_current_format(&db, meta, Keyspace::DEFAULT).unwrap_err();
        assert!(err.to_string().contains("keyspace format 3"), "{err}");
        assert!(err.to_string().contains("newer kvd"), "{err}");
        db.put(meta, META_FORMAT, b"\x02").unwrap();
        let err = ensure_current_format(&db, meta, Keyspace::DEFAULT).unwrap_err();
        assert!(err.to_string().contains("malformed"), "{err}");
        let legacy = legacy_data_key(0, b"key:0");
        assert!(db.get(Keyspace::DEFAULT, &legacy).unwrap().is_some());
    }
}
