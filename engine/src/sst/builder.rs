//! Writes a table. Spec: docs/format/sstable.md.
//!
//! ```text
//! table := data_block* filter_block? properties_block index_block footer
//! ```
//! Entries are added in internal-key order into data blocks of about `block_size`
//! bytes. When a block is cut, its index entry waits for the next key so a short
//! separator can be chosen. `finish` writes the filter over the distinct user keys,
//! the properties, the index and the footer, then syncs the file.

use super::block_builder::BlockBuilder;
use super::block_io::encode_block;
use super::bloom::{bloom_hash, build_filter};
use super::footer::{BlockHandle, Footer};
use super::properties::TableProperties;
use super::separator::{short_successor, shortest_separator};
use super::TableOptions;
use crate::chunked::Chunked;
use crate::error::{Error, Result};
use crate::fs::WritableFile;
use crate::key::{compare_internal_keys, user_key, ParsedKey, ValueKind};
use crate::options::Compression;
use std::cmp::Ordering;
use std::path::PathBuf;

/// Index entries store whole keys so a seek in the index is a pure binary search.
const INDEX_RESTART_INTERVAL: usize = 1;

/// Appends stored blocks to the file and tracks the offset.
struct BlockWriter {
    file: Box<dyn WritableFile>,
    offset: u64,
    scratch: Vec<u8>,
}

impl BlockWriter {
    fn write(&mut self, raw: &[u8], compression: Compression) -> Result<BlockHandle> {
        let payload = encode_block(raw, compression, &mut self.scratch);
        self.file.append(&self.scratch)?;
        let handle = BlockHandle {
            offset: self.offset,
            size: payload as u64,
        };
        self.offset += self.scratch.len() as u64;
        Ok(handle)
    }
}

/// Builds one table file from sorted entries.
pub struct TableBuilder {
    path: PathBuf,
    opts: TableOptions,
    writer: BlockWriter,
    data: BlockBuilder,
    index: BlockBuilder,
    /// The last data block written, waiting for the next key to choose its separator.
    pending_handle: Option<BlockHandle>,
    last_key: Vec<u8>,
    /// One hash per distinct user key, for the filter; in chunks, because a `Vec`
    /// doubling past a large table's 500,000-odd keys held 8 MiB for 4.4 MiB of hashes.
    filter_hashes: Chunked<u64>,
    props: TableProperties,
}

impl TableBuilder {
    /// Starts a table at `path` (used in errors) written through `file`.
    pub fn new(path: PathBuf, file: Box<dyn WritableFile>, opts: TableOptions) -> Self {
        let offset = file.len();
        TableBuilder {
            path,
            writer: BlockWriter {
                file,
                offset,
                scratch: Vec::new(),
            },
            data: BlockBuilder::new(opts.restart_interval),
            index: BlockBuilder::new(INDEX_RESTART_INTERVAL),
            pending_handle: None,
            last_key: Vec::new(),
            filter_hashes: Chunked::default(),
            props: TableProperties {
                smallest_seq: u64::MAX,
                compression: opts.compression,
                restart_interval: opts.restart_interval.max(1) as u32,
                bloom_bits_per_key: opts.bloom_bits_per_key as u32,
                ..TableProperties::default()
            },
            opts,
        }
    }

    /// Appends an entry. Keys must be strictly increasing internal keys.
    pub fn add(&mut self, internal_key: &[u8], value: &[u8]) -> Result<()> {
        let Some(parsed) = ParsedKey::parse(internal_key) else {
            return Err(Error::InvalidArgument(format!(
                "{}: internal key of {} bytes is shorter than its trailer",
                self.path.display(),
                internal_key.len()
            )));
        };
        let first = self.props.entries == 0;
        if !first && compare_internal_keys(&self.last_key, internal_key) != Ordering::Less {
            debug_assert!(false, "TableBuilder::add: keys out of order");
            return Err(Error::InvalidArgument(format!(
                "{}: key added out of order",
                self.path.display()
            )));
        }
        if let Some(handle) = self.pending_handle.take() {
            self.add_index_entry(shortest_separator(&self.last_key, internal_key), handle);
        }
        if self.opts.bloom_bits_per_key > 0
            && (first || user_key(&self.last_key) != parsed.user_key)
        {
            self.filter_hashes.push(bloom_hash(parsed.user_key));
        }
        let p = &mut self.props;
        if first {
            p.smallest_key = internal_key.to_vec();
        }
        p.entries += 1;
        p.deletions += (parsed.value_kind() == Some(ValueKind::Delete)) as u64;
        p.raw_key_bytes += internal_key.len() as u64;
        p.raw_value_bytes += value.len() as u64;
        p.smallest_seq = p.smallest_seq.min(parsed.seq);
        p.largest_seq = p.largest_seq.max(parsed.seq);
        self.data.add(internal_key, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(internal_key);
        if self.data.size_estimate() >= self.opts.block_size {
            self.flush_data_block()?;
        }
        Ok(())
    }

    /// Entries added so far.
    pub fn num_entries(&self) -> u64 {
        self.props.entries
    }

    /// Bytes written plus the pending block: what the file would be now, roughly.
    pub fn estimated_size(&self) -> u64 {
        self.writer.offset + self.data.size_estimate() as u64
    }

    fn add_index_entry(&mut self, separator: Vec<u8>, handle: BlockHandle) {
        let mut value = Vec::with_capacity(20);
        handle.encode_to(&mut value);
        self.index.add(&separator, &value);
    }

    fn flush_data_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let handle = self
            .writer
            .write(self.data.finish(), self.opts.compression)?;
        self.data.reset();
        self.pending_handle = Some(handle);
        self.props.data_blocks += 1;
        Ok(())
    }

    /// Writes filter, properties, index and footer, and syncs the file.
    pub fn finish(mut self) -> Result<TableProperties> {
        self.flush_data_block()?;
        if let Some(handle) = self.pending_handle.take() {
            self.add_index_entry(short_successor(&self.last_key), handle);
        }
        let filter = match self.opts.bloom_bits_per_key {
            0 => None,
            bits => {
                let f = build_filter(&self.filter_hashes, bits);
                Some(self.writer.write(&f, Compression::None)?)
            }
        };
        if self.props.entries == 0 {
            self.props.smallest_seq = 0;
        }
        self.props.largest_key = std::mem::take(&mut self.last_key);
        let properties = self.writer.write(&self.props.encode(), Compression::None)?;
        let index = self.writer.write(self.index.finish(), Compression::None)?;
        let footer = Footer {
            index,
            filter,
            properties,
        };
        self.writer.file.append(&footer.encode())?;
        self.writer.offset += super::footer::FOOTER_LEN as u64;
        self.writer.file.sync()?;
        self.props.file_size = self.writer.offset;
        self.props.index_size = index.size;
        self.props.filter_size = filter.map_or(0, |h| h.size);
        Ok(self.props)
    }
}
