//! User-facing iteration: a merge of memtables and levels, filtered to one keyspace, one
//! key range and one snapshot, yielding the newest live version of each key.

use super::core::{Shared, SuperVersion};
use super::range_tombstones::TombstoneView;
use crate::error::{Error, Result};
use crate::iter::{InternalIterator, MergingIterator};
use crate::key::{compare_internal_keys, lookup_key, ParsedKey, SeqNo, ValueKind};
use crate::manifest::FileMeta;
use crate::sst::{CacheFill, TableIterator};
use bytes::Bytes;
use std::cmp::Ordering;
use std::sync::Arc;

/// One entry of a [`DbIterator`] borrowed from it ([`DbIterator::next_ref`]): valid
/// until the iterator moves, and copied by nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The key, without keyspace prefix.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// Version (sequence number of the write).
    pub seq: SeqNo,
}

impl EntryRef<'_> {
    /// The entry as owned bytes.
    pub fn to_owned_entry(&self) -> IterEntry {
        IterEntry {
            key: Bytes::copy_from_slice(self.key),
            value: Bytes::copy_from_slice(self.value),
            seq: self.seq,
        }
    }
}

/// One entry yielded by [`DbIterator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IterEntry {
    /// The key, without keyspace prefix.
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
    /// Version (sequence number of the write).
    pub seq: SeqNo,
}

/// Concatenates the tables of one sorted, non-overlapping level, opening each lazily.
pub(crate) struct LevelIterator {
    shared: Arc<Shared>,
    files: Vec<Arc<FileMeta>>,
    fill: CacheFill,
    index: usize,
    current: Option<TableIterator>,
    error: Option<Error>,
}

impl LevelIterator {
    pub(crate) fn new(shared: Arc<Shared>, files: Vec<Arc<FileMeta>>, fill: CacheFill) -> Self {
        LevelIterator {
            shared,
            files,
            fill,
            index: 0,
            current: None,
            error: None,
        }
    }

    fn open(&mut self, index: usize) -> bool {
        self.index = index;
        self.current = None;
        let Some(file) = self.files.get(index) else {
            return false;
        };
        match self.shared.tables.get(file.number) {
            Ok(table) => {
                self.current = Some(table.iter_with(self.fill));
                true
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// Moves to the next file while the current one is exhausted.
    fn skip_exhausted(&mut self) {
        while let Some(cur) = &self.current {
            if cur.valid() {
                return;
            }
            if let Err(e) = cur.status() {
                self.error = Some(e);
                self.current = None;
                return;
            }
            if !self.open(self.index + 1) {
                return;
            }
            if let Some(c) = self.current.as_mut() {
                c.seek_to_first();
            }
        }
    }
}

impl InternalIterator for LevelIterator {
    fn valid(&self) -> bool {
        self.error.is_none() && self.current.as_ref().is_some_and(|c| c.valid())
    }

    fn seek_to_first(&mut self) {
        if self.open(0) {
            if let Some(c) = self.current.as_mut() {
                c.seek_to_first();
            }
        }
        self.skip_exhausted();
    }

    fn seek(&mut self, target: &[u8]) {
        let index = self
            .files
            .partition_point(|f| compare_internal_keys(&f.largest, target) == Ordering::Less);
        if self.open(index) {
            if let Some(c) = self.current.as_mut() {
                c.seek(target);
            }
        }
        self.skip_exhausted();
    }

    fn next(&mut self) {
        if let Some(c) = self.current.as_mut() {
            c.next();
        }
        self.skip_exhausted();
    }

    fn key(&self) -> &[u8] {
        self.current.as_ref().map(|c| c.key()).unwrap_or(&[])
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().map(|c| c.value()).unwrap_or(&[])
    }

    fn status(&self) -> Result<()> {
        match &self.error {
            Some(e) => Err(e.duplicate()),
            None => self.current.as_ref().map_or(Ok(()), |c| c.status()),
        }
    }
}

/// Every source of a SuperVersion as one merged internal iterator.
pub(crate) fn merged_sources(shared: &Arc<Shared>, sv: &SuperVersion) -> Result<MergingIterator> {
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    children.push(Box::new(sv.mem.iter()));
    for imm in &sv.imms {
        children.push(Box::new(imm.iter()));
    }
    for file in sv.version.levels[0].iter().rev() {
        children.push(Box::new(shared.tables.get(file.number)?.iter()));
    }
    for files in sv.version.levels.iter().skip(1) {
        if !files.is_empty() {
            children.push(Box::new(LevelIterator::new(
                shared.clone(),
                files.clone(),
                CacheFill::Fill,
            )));
        }
    }
    Ok(MergingIterator::new(children))
}

/// A forward iterator over the live keys of one keyspace in a range, at a snapshot.
pub struct DbIterator {
    inner: MergingIterator,
    /// Keeps the memtables and table files of the view alive.
    _sv: Arc<SuperVersion>,
    seq: SeqNo,
    keyspace: u8,
    /// Inclusive lower bound, keyspace-prefixed.
    start: Vec<u8>,
    /// Exclusive upper bound, keyspace-prefixed; `None` = end of keyspace.
    end: Option<Vec<u8>>,
    positioned: bool,
    done: bool,
    tombstones: TombstoneView,
    /// User key of the entry last handled (older versions of it are skipped); reused
    /// buffer, valid when `has_last` is set.
    last_user_key: Vec<u8>,
    has_last: bool,
    /// The merge is still on the entry handed out last (borrowed entries point into it),
    /// so the next step moves past it first.
    on_entry: bool,
}

impl DbIterator {
    pub(crate) fn new(
        shared: &Arc<Shared>,
        sv: Arc<SuperVersion>,
        seq: SeqNo,
        keyspace: u8,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
    ) -> Result<DbIterator> {
        let inner = merged_sources(shared, &sv)?;
        let prefixed = |k: &[u8]| {
            let mut v = Vec::with_capacity(k.len() + 1);
            v.push(keyspace);
            v.extend_from_slice(k);
            v
        };
        let end = match end {
            Some(e) => Some(prefixed(e)),
            None => keyspace.checked_add(1).map(|next| vec![next]),
        };
        Ok(DbIterator {
            inner,
            _sv: sv,
            seq,
            keyspace,
            start: prefixed(start.unwrap_or(&[])),
            end,
            positioned: false,
            done: false,
            tombstones: shared.range_tombstones.view(),
            last_user_key: Vec::new(),
            has_last: false,
            on_entry: false,
        })
    }

    /// Moves to the first key >= `key` (never before the iterator's start).
    pub fn seek(&mut self, key: &[u8]) {
        let mut target = Vec::with_capacity(key.len() + 1);
        target.push(self.keyspace);
        target.extend_from_slice(key);
        if target < self.start {
            target = self.start.clone();
        }
        self.inner.seek(&lookup_key(&target, self.seq));
        self.positioned = true;
        self.done = false;
        self.has_last = false;
        self.on_entry = false;
    }

    /// The next live entry, borrowed: no copy of its key or value, for scans that only
    /// look at each entry (an owned one costs two allocations and two copies, which is
    /// most of a sequential scan's time). `None` at the end; an error ends the scan.
    pub fn next_ref(&mut self) -> Option<Result<EntryRef<'_>>> {
        if self.done {
            return None;
        }
        match self.find_next() {
            Ok(Some(seq)) => {
                let key = self.inner.key();
                // find_next checked the trailer and the keyspace byte of this very key.
                let user_key = &key[1..key.len() - crate::key::TRAILER_LEN];
                Some(Ok(EntryRef {
                    key: user_key,
                    value: self.inner.value(),
                    seq,
                }))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// Positions the merge on the next live entry within the range and snapshot and
    /// returns its sequence number, leaving the merge on it (`on_entry`).
    fn find_next(&mut self) -> Result<Option<SeqNo>> {
        if !self.positioned {
            let start = self.start.clone();
            self.inner.seek(&lookup_key(&start, self.seq));
            self.positioned = true;
        }
        if std::mem::take(&mut self.on_entry) {
            self.inner.next();
        }
        loop {
            if !self.inner.valid() {
                self.inner.status()?;
                return Ok(None);
            }
            let parsed = ParsedKey::parse(self.inner.key()).ok_or_else(|| {
                Error::Closed("iterator met an internal key without trailer".into())
            })?;
            let ukey = parsed.user_key;
            if ukey.first() != Some(&self.keyspace)
                || self.end.as_deref().is_some_and(|e| ukey >= e)
            {
                return Ok(None);
            }
            if parsed.seq > self.seq || (self.has_last && self.last_user_key == ukey) {
                self.inner.next();
                continue;
            }
            self.last_user_key.clear();
            self.last_user_key.extend_from_slice(ukey);
            self.has_last = true;
            let covered = self
                .tombstones
                .covers(self.keyspace, &ukey[1..], parsed.seq, self.seq);
            if parsed.value_kind() == Some(ValueKind::Put) && !covered {
                self.on_entry = true;
                return Ok(Some(parsed.seq));
            }
            self.inner.next();
        }
    }
}

impl Iterator for DbIterator {
    type Item = Result<IterEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref().map(|e| e.map(|e| e.to_owned_entry()))
    }
}

/// The smallest key greater than every key with `prefix`, if one exists.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
