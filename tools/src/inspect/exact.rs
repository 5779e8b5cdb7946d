//! `inspect DIR --exact`: merges every live table with the live WALs (replayed into a
//! memtable, as recovery would) and walks the newest version of each key: live unless it
//! is a tombstone or a later range delete covers it.

use crate::datadir::{self, LiveState, RangeTombstone, RANGE_TOMBSTONE_KEYSPACE};
use crate::progress::{Progress, Unit};
use kv_engine::filename;
use kv_engine::iter::{InternalIterator, MergingIterator};
use kv_engine::key::{lookup_key, ParsedKey, ValueKind, MAX_SEQUENCE};
use kv_engine::memtable::Memtable;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// What an exact count found. Sizes are key + value bytes (keys without their keyspace byte).
#[derive(Debug, Default)]
pub struct Counts {
    /// Keys whose newest version is a value.
    pub live_keys: u64,
    /// Their key + value bytes.
    pub live_bytes: u64,
    /// Key + value bytes of every stored entry, every version and tombstone.
    pub stored_bytes: u64,
    /// Range deletes stored.
    pub range_deletes: u64,
    /// Per keyspace id: (live keys, live bytes).
    pub per_keyspace: BTreeMap<u8, (u64, u64)>,
}

/// Called with each live key's newest entry: (keyspace id, key, value).
pub type EntryVisitor<'a> = &'a mut dyn FnMut(u8, &[u8], &[u8]);

/// Counts `dir`'s live keys: its live tables and the WAL files named in `live_wals`.
/// `visit` sees each live key's newest entry: (keyspace id, key, value).
pub fn count(
    dir: &Path,
    state: &LiveState,
    live_wals: &[&str],
    visit: EntryVisitor<'_>,
) -> kv_engine::Result<Counts> {
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    let mut total = 0u64;
    for (_, f) in state.tables() {
        let table = datadir::open_table(&filename::table_path(dir, f.number))?;
        total += f.entries;
        children.push(Box::new(table.iter()));
    }
    // The live WALs as one memtable, the way recovery would replay them.
    let mem = Arc::new(Memtable::new());
    for name in live_wals {
        let (batches, _) = datadir::read_wal(&dir.join(name))?;
        for b in batches.iter().filter_map(|b| b.batch.as_ref().ok()) {
            for (i, op) in b.ops().enumerate() {
                let seq = b.sequence() + i as u64;
                // As the engine's WAL replay stores them: a range delete becomes a record
                // in the reserved keyspace, everything else a keyspace-prefixed entry.
                if op.kind == ValueKind::RangeDelete {
                    let record = RangeTombstone::record_key(op.keyspace, seq, op.key);
                    mem.add(seq, ValueKind::Put, &record, op.value);
                } else {
                    let mut key = Vec::with_capacity(op.key.len() + 1);
                    key.push(op.keyspace);
                    key.extend_from_slice(op.key);
                    mem.add(seq, op.kind, &key, op.value);
                }
                total += 1;
            }
        }
    }
    children.push(Box::new(mem.iter()));

    let mut progress = Progress::new("counting keys", total, Unit::Items);
    let mut it = MergingIterator::new(children);
    // Range deletes live in the reserved keyspace, which sorts last: read them first.
    let mut range_deletes = Vec::new();
    it.seek(&lookup_key(&[RANGE_TOMBSTONE_KEYSPACE], MAX_SEQUENCE));
    while it.valid() {
        if let Some(t) = ParsedKey::parse(it.key())
            .filter(|p| p.value_kind() == Some(ValueKind::Put))
            .and_then(|p| RangeTombstone::from_record(p.user_key, it.value()))
        {
            range_deletes.push(t);
        }
        it.next();
    }
    it.status()?;
    it.seek_to_first();
    let mut prev: Option<Vec<u8>> = None;
    let (mut live_keys, mut live_bytes, mut stored_bytes) = (0u64, 0u64, 0u64);
    let mut per_ks: BTreeMap<u8, (u64, u64)> = BTreeMap::new();
    while it.valid() {
        if let Some(p) = ParsedKey::parse(it.key()) {
            let size = p.user_key.len().saturating_sub(1) as u64 + it.value().len() as u64;
            stored_bytes += size;
            if prev.as_deref() != Some(p.user_key) {
                // The first entry of a user key is its newest version; it is live unless
                // a tombstone or a later range delete says otherwise.
                let (ks, key) = p
                    .user_key
                    .split_first()
                    .map_or((0, &[][..]), |(k, r)| (*k, r));
                let deleted = ks == RANGE_TOMBSTONE_KEYSPACE
                    || range_deletes.iter().any(|t| t.covers(ks, key, p.seq));
                if p.value_kind() == Some(ValueKind::Put) && !deleted {
                    live_keys += 1;
                    live_bytes += size;
                    let e = per_ks
                        .entry(p.user_key.first().copied().unwrap_or(0))
                        .or_default();
                    e.0 += 1;
                    e.1 += size;
                    visit(ks, key, it.value());
                }
                prev = Some(p.user_key.to_vec());
            }
        }
        progress.inc(1);
        it.next();
    }
    it.status()?;
    drop(progress);
    Ok(Counts {
        live_keys,
        live_bytes,
        stored_bytes,
        range_deletes: range_deletes.len() as u64,
        per_keyspace: per_ks,
    })
}
