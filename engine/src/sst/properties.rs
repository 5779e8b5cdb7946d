//! The properties block: what a table holds, readable without scanning it. Spec:
//! docs/format/sstable.md.
//!
//! ```text
//! properties_block := block_contents whose entries are  name -> value, sorted by name
//! name             := ASCII "kvd.<field>"
//! value            := varint64 (counters, sequences, enums) | raw bytes (keys)
//! ```
//! Readers ignore names they do not know (a newer writer may add fields) and refuse a
//! table missing one they need.

use super::block::{Block, BlockIter};
use super::block_builder::BlockBuilder;
use crate::coding::{get_varint, put_varint};
use crate::error::{Error, Result};
use crate::iter::InternalIterator;
use crate::options::Compression;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Summary of a table, written by the builder and read back when the table is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableProperties {
    /// Entries (all kinds).
    pub entries: u64,
    /// Entries of kind `Delete`.
    pub deletions: u64,
    /// Sum of internal key lengths.
    pub raw_key_bytes: u64,
    /// Sum of value lengths.
    pub raw_value_bytes: u64,
    /// Data blocks.
    pub data_blocks: u64,
    /// Smallest sequence number of any entry (0 if empty).
    pub smallest_seq: u64,
    /// Largest sequence number of any entry (0 if empty).
    pub largest_seq: u64,
    /// First internal key (empty if the table is empty).
    pub smallest_key: Vec<u8>,
    /// Last internal key (empty if the table is empty).
    pub largest_key: Vec<u8>,
    /// Size of the whole file. Not stored: known from the file itself.
    pub file_size: u64,
    /// Compression the table was built with (each block records whether it used it).
    pub compression: Compression,
    /// Restart interval of data blocks.
    pub restart_interval: u32,
    /// Bloom filter bits per key; 0 when there is no filter.
    pub bloom_bits_per_key: u32,
    /// Format version of the table.
    pub format_version: u32,
    /// Payload size of the index block. Not stored: taken from the footer.
    pub index_size: u64,
    /// Payload size of the filter block (0 if none). Not stored: taken from the footer.
    pub filter_size: u64,
}

impl Default for TableProperties {
    fn default() -> Self {
        TableProperties {
            entries: 0,
            deletions: 0,
            raw_key_bytes: 0,
            raw_value_bytes: 0,
            data_blocks: 0,
            smallest_seq: 0,
            largest_seq: 0,
            smallest_key: Vec::new(),
            largest_key: Vec::new(),
            file_size: 0,
            compression: Compression::None,
            restart_interval: 0,
            bloom_bits_per_key: 0,
            format_version: super::FORMAT_VERSION,
            index_size: 0,
            filter_size: 0,
        }
    }
}

const ENTRIES: &str = "kvd.entries";
const DELETIONS: &str = "kvd.deletions";
const RAW_KEY_BYTES: &str = "kvd.raw_key_bytes";
const RAW_VALUE_BYTES: &str = "kvd.raw_value_bytes";
const DATA_BLOCKS: &str = "kvd.data_blocks";
const SMALLEST_SEQ: &str = "kvd.smallest_seq";
const LARGEST_SEQ: &str = "kvd.largest_seq";
const SMALLEST_KEY: &str = "kvd.smallest_key";
const LARGEST_KEY: &str = "kvd.largest_key";
const COMPRESSION: &str = "kvd.compression";
const RESTART_INTERVAL: &str = "kvd.restart_interval";
const BLOOM_BITS_PER_KEY: &str = "kvd.bloom_bits_per_key";
const FORMAT_VERSION: &str = "kvd.format_version";

impl TableProperties {
    fn numbers(&self) -> [(&'static str, u64); 11] {
        [
            (ENTRIES, self.entries),
            (DELETIONS, self.deletions),
            (RAW_KEY_BYTES, self.raw_key_bytes),
            (RAW_VALUE_BYTES, self.raw_value_bytes),
            (DATA_BLOCKS, self.data_blocks),
            (SMALLEST_SEQ, self.smallest_seq),
            (LARGEST_SEQ, self.largest_seq),
            (COMPRESSION, self.compression as u64),
            (RESTART_INTERVAL, self.restart_interval as u64),
            (BLOOM_BITS_PER_KEY, self.bloom_bits_per_key as u64),
            (FORMAT_VERSION, self.format_version as u64),
        ]
    }

    /// Encodes the stored fields as block contents.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut fields: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        for (name, v) in self.numbers() {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            fields.insert(name, buf);
        }
        fields.insert(SMALLEST_KEY, self.smallest_key.clone());
        fields.insert(LARGEST_KEY, self.largest_key.clone());
        // Names are not internal keys: interval 1 stores each whole, no prefix sharing needed.
        let mut b = BlockBuilder::new(1);
        for (name, value) in &fields {
            b.add(name.as_bytes(), value);
        }
        b.finish().to_vec()
    }

    /// Decodes a properties block read from `offset` of `file`.
    pub(crate) fn decode(data: Vec<u8>, file: Arc<PathBuf>, offset: u64) -> Result<Self> {
        let bad = |what: String| Error::corruption(file.as_path(), offset, what);
        let mut it = BlockIter::new(Arc::new(Block::new(data, file.clone(), offset)?));
        let mut fields: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        it.seek_to_first();
        while it.valid() {
            fields.insert(it.key().to_vec(), it.value().to_vec());
            it.next();
        }
        it.status()?;
        let number = |name: &str| -> Result<u64> {
            let raw = fields
                .get(name.as_bytes())
                .ok_or_else(|| bad(format!("properties lack {name}")))?;
            match get_varint(raw) {
                Some((v, n)) if n == raw.len() => Ok(v),
                _ => Err(bad(format!("property {name} is not a varint"))),
            }
        };
        let small = |name: &str| -> Result<u32> {
            u32::try_from(number(name)?).map_err(|_| bad(format!("property {name} out of range")))
        };
        let bytes = |name: &str| -> Result<Vec<u8>> {
            fields
                .get(name.as_bytes())
                .cloned()
                .ok_or_else(|| bad(format!("properties lack {name}")))
        };
        let c = number(COMPRESSION)?;
        let compression = u8::try_from(c)
            .ok()
            .and_then(super::compression_from_u8)
            .ok_or_else(|| bad(format!("unknown compression {c}")))?;
        Ok(TableProperties {
            entries: number(ENTRIES)?,
            deletions: number(DELETIONS)?,
            raw_key_bytes: number(RAW_KEY_BYTES)?,
            raw_value_bytes: number(RAW_VALUE_BYTES)?,
            data_blocks: number(DATA_BLOCKS)?,
            smallest_seq: number(SMALLEST_SEQ)?,
            largest_seq: number(LARGEST_SEQ)?,
            smallest_key: bytes(SMALLEST_KEY)?,
            largest_key: bytes(LARGEST_KEY)?,
            compression,
            restart_interval: small(RESTART_INTERVAL)?,
            bloom_bits_per_key: small(BLOOM_BITS_PER_KEY)?,
            format_version: small(FORMAT_VERSION)?,
            ..TableProperties::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_fields_round_trip() {
        let p = TableProperties {
            entries: 10,
            deletions: 2,
            raw_key_bytes: 300,
            raw_value_bytes: 1 << 40,
            data_blocks: 3,
            smallest_seq: 5,
            largest_seq: 99,
            smallest_key: b"a\x01\x02".to_vec(),
            largest_key: vec![],
            compression: Compression::Lz4,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            ..TableProperties::default()
        };
        let back = TableProperties::decode(p.encode(), Arc::new("/t".into()), 0).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn missing_field_is_corruption() {
        let mut b = BlockBuilder::new(1);
        b.add(ENTRIES.as_bytes(), &[1]);
        let e = TableProperties::decode(b.finish().to_vec(), Arc::new("/t".into()), 77);
        assert!(matches!(e, Err(Error::Corruption { offset: 77, .. })));
    }
}
