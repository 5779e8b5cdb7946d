//! `Table::verify`, for `kvtool verify` and `inspect`: reads every data block, bypassing
//! the cache, and checks it against the index, the filter and the properties. Spec:
//! docs/format/sstable.md ("What a reader checks").

use super::block::BlockIter;
use super::reader::Table;
use crate::error::{Error, Result};
use crate::iter::InternalIterator;
use crate::key::{compare_internal_keys, ParsedKey, ValueKind};
use std::cmp::Ordering;

/// What the data blocks actually hold, to compare with the properties.
#[derive(Default)]
struct Tally {
    entries: u64,
    deletions: u64,
    blocks: u64,
    smallest_seq: Option<u64>,
    largest_seq: u64,
    first_key: Option<Vec<u8>>,
    /// Last key seen; empty before the first.
    last_key: Vec<u8>,
}

impl Table {
    /// Reads and checks every data block: checksums, decompression, entry grammar,
    /// restart points (what seeks rely on, in the index too), key order within and
    /// across blocks, keys within their index separators, block placement, the filter
    /// admitting every user key, and the properties' counts, sequence range and key
    /// range. Returns the first problem as `Corruption`.
    pub fn verify(&self) -> Result<()> {
        let bad = |offset: u64, what: String| Error::corruption(self.path.as_path(), offset, what);
        let index_offset = self.index.file_offset();
        self.index
            .check_restarts()
            .map_err(|what| bad(index_offset, what))?;
        let mut index = self.index_iter();
        index.seek_to_first();
        let mut tally = Tally::default();
        let mut prev_separator: Option<Vec<u8>> = None;
        let mut expected_offset = 0u64;
        while index.valid() {
            let handle = self.decode_handle(index.value())?;
            if handle.offset != expected_offset {
                let what = format!(
                    "data block follows a gap or overlap (expected offset {expected_offset})"
                );
                return Err(bad(handle.offset, what));
            }
            expected_offset = handle.end_with_trailer().unwrap_or(u64::MAX);
            let separator = index.key().to_vec();
            if let Some(p) = &prev_separator {
                if compare_internal_keys(p, &separator) != Ordering::Less {
                    return Err(bad(
                        self.index.file_offset(),
                        "index keys out of order".into(),
                    ));
                }
            }
            let (block, _) = self.read_data_block(handle, None)?;
            block
                .check_restarts()
                .map_err(|what| bad(handle.offset, what))?;
            let mut it = BlockIter::new(block);
            it.seek_to_first();
            if !it.valid() {
                it.status()?;
                return Err(bad(handle.offset, "empty data block".into()));
            }
            while it.valid() {
                let key = it.key();
                let parsed = ParsedKey::parse(key).ok_or_else(|| {
                    bad(
                        handle.offset,
                        format!("key of {} bytes has no trailer", key.len()),
                    )
                })?;
                let ordered = tally.first_key.is_none()
                    || compare_internal_keys(&tally.last_key, key) == Ordering::Less;
                if !ordered {
                    return Err(bad(handle.offset, "keys out of order".into()));
                }
                let above_previous_separator = match &prev_separator {
                    None => true,
                    Some(s) => compare_internal_keys(s, key) == Ordering::Less,
                };
                if !above_previous_separator
                    || compare_internal_keys(key, &separator) == Ordering::Greater
                {
                    return Err(bad(
                        handle.offset,
                        "key outside its index separators".into(),
                    ));
                }
                if !self.may_contain(parsed.user_key) {
                    return Err(bad(
                        self.filter_offset,
                        "bloom filter rejects a key the table holds".into(),
                    ));
                }
                tally.entries += 1;
                tally.deletions += (parsed.value_kind() == Some(ValueKind::Delete)) as u64;
                tally.smallest_seq =
                    Some(tally.smallest_seq.map_or(parsed.seq, |s| s.min(parsed.seq)));
                tally.largest_seq = tally.largest_seq.max(parsed.seq);
                if tally.first_key.is_none() {
                    tally.first_key = Some(key.to_vec());
                }
                tally.last_key.clear();
                tally.last_key.extend_from_slice(key);
                it.next();
            }
            it.status()?;
            prev_separator = Some(separator);
            tally.blocks += 1;
            index.next();
        }
        index.status()?;
        if expected_offset != self.data_end {
            let what = format!(
                "data blocks end at {expected_offset} but metadata starts at {}",
                self.data_end
            );
            return Err(bad(expected_offset, what));
        }
        self.check_properties(&tally).map_err(|what| {
            bad(
                self.properties_offset,
                format!("properties disagree with the data: {what}"),
            )
        })
    }

    fn check_properties(&self, t: &Tally) -> std::result::Result<(), String> {
        let p = &self.props;
        let found = [
            ("entries", p.entries, t.entries),
            ("deletions", p.deletions, t.deletions),
            ("data_blocks", p.data_blocks, t.blocks),
            ("smallest_seq", p.smallest_seq, t.smallest_seq.unwrap_or(0)),
            ("largest_seq", p.largest_seq, t.largest_seq),
        ];
        for (name, said, seen) in found {
            if said != seen {
                return Err(format!("{name} is {said}, the blocks hold {seen}"));
            }
        }
        let first = t.first_key.as_deref().unwrap_or_default();
        if p.smallest_key != first || p.largest_key != t.last_key {
            return Err("smallest or largest key differs from the first or last entry".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Fs, MemFs};
    use crate::key::make_internal_key;
    use crate::sst::bloom::{build_filter, BloomFilter};
    use crate::sst::{SstCounters, TableBuilder, TableOptions};
    use std::path::Path;
    use std::sync::Arc;

    /// A healthy table this test owns alone, so it can tamper with what was read.
    fn table() -> Table {
        let fs = MemFs::new();
        let path = Path::new("/v.sst");
        let mut b = TableBuilder::new(
            path.into(),
            fs.create(path).unwrap(),
            TableOptions::default(),
        );
        for i in 0..100u64 {
            let kind = if i % 3 == 0 {
                ValueKind::Delete
            } else {
                ValueKind::Put
            };
            b.add(
                &make_internal_key(format!("k{i:03}").as_bytes(), i + 1, kind),
                b"v",
            )
            .unwrap();
        }
        b.finish().unwrap();
        let t = Table::open(
            path.into(),
            fs.open(path).unwrap(),
            1,
            None,
            Arc::new(SstCounters::default()),
        );
        let t = Arc::into_inner(t.unwrap()).unwrap();
        t.verify().unwrap();
        t
    }

    fn corruption_at(t: &Table) -> (u64, String) {
        match t.verify() {
            Err(Error::Corruption { offset, what, .. }) => (offset, what),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn properties_that_disagree_with_the_blocks_are_reported() {
        let mut t = table();
        t.props.deletions += 1;
        let (offset, what) = corruption_at(&t);
        assert_eq!(offset, t.properties_offset);
        assert!(what.contains("deletions"), "{what}");

        let mut t = table();
        t.props.largest_key = b"zzz".to_vec();
        assert_eq!(corruption_at(&t).0, t.properties_offset);
    }

    /// Found by the sst_reader fuzz target: a restart point moved onto a
    /// prefix-compressed entry left iteration intact, so `verify` called the table
    /// sound, yet a `get` of a key in that block failed with "bad restart entry".
    #[test]
    fn a_restart_point_on_a_prefix_compressed_entry_is_reported() {
        let fs = MemFs::new();
        let path = Path::new("/r.sst");
        let opts = TableOptions {
            restart_interval: 2,
            compression: crate::options::Compression::None,
            ..TableOptions::default()
        };
        let mut b = TableBuilder::new(path.into(), fs.create(path).unwrap(), opts);
        for i in 0..10u64 {
            let key = make_internal_key(format!("k{i:03}").as_bytes(), i + 1, ValueKind::Put);
            b.add(&key, b"v").unwrap();
        }
        b.finish().unwrap();
        let open = || {
            let file = fs.open(path).unwrap();
            Table::open(path.into(), file, 1, None, Arc::default()).unwrap()
        };
        let block = open().block_handles().unwrap()[0];
        let mut bytes = fs.read_all(path).unwrap();
        let payload_end = (block.offset + block.size) as usize;
        // Entry 0 is a restart with one-byte varints: entry 1 follows its key and value.
        let first = &bytes[block.offset as usize..];
        let entry1 = 3 + first[1] as u32 + first[2] as u32;
        let num_restarts =
            u32::from_le_bytes(bytes[payload_end - 4..payload_end].try_into().unwrap());
        let restart1 = payload_end - 4 - 4 * num_restarts as usize + 4;
        bytes[restart1..restart1 + 4].copy_from_slice(&entry1.to_le_bytes());
        let crc = crc32fast::hash(&bytes[block.offset as usize..=payload_end]);
        bytes[payload_end + 1..payload_end + 5].copy_from_slice(&crc.to_le_bytes());
        fs.write_all_synced(path, &bytes).unwrap();

        let t = open();
        let e = t.verify().unwrap_err();
        assert!(e.to_string().contains("restart point 1"), "{e}");
        // What verify protects: a lookup in that block cannot be answered.
        let k004 = make_internal_key(b"k004", 5, ValueKind::Put);
        assert!(t.get(&k004).is_err());
    }

    #[test]
    fn a_filter_missing_a_key_is_reported() {
        let mut t = table();
        t.filter = Some(BloomFilter::decode(build_filter(&Default::default(), 10)).unwrap());
        let (offset, what) = corruption_at(&t);
        assert_eq!(offset, t.filter_offset);
        assert!(what.contains("bloom"), "{what}");
    }
}
