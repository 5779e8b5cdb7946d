//! Point reads: memtable, immutable memtables (newest first), then the levels — every
//! overlapping L0 table newest first, then at most one table per deeper level.

use super::core::{Shared, SuperVersion};
use super::Versioned;
use crate::constants::NUM_LEVELS;
use crate::error::{Error, Result};
use crate::key::{lookup_key, user_key, ParsedKey, SeqNo, ValueKind};
use crate::memtable::MemLookup;
use bytes::Bytes;

/// The outcome of looking a key up in one source.
enum Found {
    Value(Versioned),
    Deleted,
    Absent,
}

impl Shared {
    /// The newest version of `ukey` (keyspace-prefixed) visible at `seq`, unless a range
    /// tombstone visible at `seq` deletes it.
    pub(crate) fn get_internal(
        &self,
        sv: &SuperVersion,
        ukey: &[u8],
        seq: SeqNo,
    ) -> Result<Option<Versioned>> {
        let found = self.newest_version(sv, ukey, seq)?;
        Ok(found.filter(|v| match ukey.split_first() {
            Some((&ks, key)) => !self.range_tombstones.view().covers(ks, key, v.seq, seq),
            None => true,
        }))
    }

    fn newest_version(
        &self,
        sv: &SuperVersion,
        ukey: &[u8],
        seq: SeqNo,
    ) -> Result<Option<Versioned>> {
        for mem in std::iter::once(&sv.mem).chain(sv.imms.iter()) {
            match mem.get(ukey, seq) {
                Some(MemLookup::Value(value, seq)) => return Ok(Some(Versioned { value, seq })),
                Some(MemLookup::Deleted(_)) => return Ok(None),
                None => {}
            }
        }
        let lookup = lookup_key(ukey, seq);
        let version = &sv.version;
        for file in version.levels[0].iter().rev() {
            if user_key(&file.smallest) > ukey || user_key(&file.largest) < ukey {
                continue;
            }
            match self.get_from_table(file.number, &lookup, ukey)? {
                Found::Value(v) => return Ok(Some(v)),
                Found::Deleted => return Ok(None),
                Found::Absent => {}
            }
        }
        for level in 1..NUM_LEVELS {
            let Some(file) = version.file_for_key(level, ukey) else {
                continue;
            };
            match self.get_from_table(file.number, &lookup, ukey)? {
                Found::Value(v) => return Ok(Some(v)),
                Found::Deleted => return Ok(None),
                Found::Absent => {}
            }
        }
        Ok(None)
    }

    fn get_from_table(&self, number: u64, lookup: &[u8], ukey: &[u8]) -> Result<Found> {
        let table = self.tables.get(number)?;
        let Some((ikey, value)) = table.get(lookup)? else {
            return Ok(Found::Absent);
        };
        let parsed = ParsedKey::parse(&ikey).ok_or_else(|| {
            Error::corruption(table.path(), 0, "entry key shorter than its trailer")
        })?;
        if parsed.user_key != ukey {
            return Ok(Found::Absent);
        }
        match parsed.value_kind() {
            Some(ValueKind::Put) => Ok(Found::Value(Versioned {
                value: Bytes::from(value),
                seq: parsed.seq,
            })),
            Some(ValueKind::Delete | ValueKind::RangeDelete) => Ok(Found::Deleted),
            None => Err(Error::corruption(
                table.path(),
                0,
                format!("unknown entry kind {}", parsed.kind),
            )),
        }
    }
}
