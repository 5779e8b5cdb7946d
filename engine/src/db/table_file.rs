//! Writing SSTables: shared by memtable flushes, recovery and compaction.

use super::pacer::Pacer;
use crate::error::Result;
use crate::filename;
use crate::fs::Fs;
use crate::iter::InternalIterator;
use crate::manifest::FileMeta;
use crate::options::Options;
use crate::sst::{TableBuilder, TableOptions};
use std::path::Path;

/// Table-building options derived from the Db options.
pub(crate) fn table_options(opts: &Options) -> TableOptions {
    TableOptions {
        block_size: opts.block_size,
        bloom_bits_per_key: opts.bloom_bits_per_key,
        compression: opts.compression,
        ..TableOptions::default()
    }
}

/// Starts table `number` in `dir`.
pub(crate) fn create_table(
    fs: &dyn Fs,
    dir: &Path,
    opts: &Options,
    number: u64,
) -> Result<TableBuilder> {
    let path = filename::table_path(dir, number);
    let file = fs.create(&path)?;
    Ok(TableBuilder::new(path, file, table_options(opts)))
}

/// Starts table `number` in a Db's directory.
pub(crate) fn new_table_builder(
    shared: &crate::db::core::Shared,
    number: u64,
) -> Result<TableBuilder> {
    create_table(shared.fs.as_ref(), &shared.dir, &shared.opts, number)
}

/// Finishes (and syncs) a table and describes it for the manifest.
pub(crate) fn finish_table(builder: TableBuilder, number: u64) -> Result<FileMeta> {
    let props = builder.finish()?;
    Ok(FileMeta {
        number,
        size: props.file_size,
        smallest: props.smallest_key.clone(),
        largest: props.largest_key.clone(),
        smallest_seq: props.smallest_seq,
        largest_seq: props.largest_seq,
        entries: props.entries,
        deletions: props.deletions,
    })
}

/// Writes every entry of `iter` into table `number`; `None` if there were none.
pub(crate) fn write_table(
    fs: &dyn Fs,
    dir: &Path,
    opts: &Options,
    number: u64,
    iter: &mut dyn InternalIterator,
) -> Result<Option<FileMeta>> {
    iter.seek_to_first();
    if !iter.valid() {
        iter.status()?;
        return Ok(None);
    }
    let mut builder = create_table(fs, dir, opts, number)?;
    let mut pacer = Pacer::new();
    while iter.valid() {
        builder.add(iter.key(), iter.value())?;
        iter.next();
        pacer.step();
    }
    iter.status()?;
    finish_table(builder, number).map(Some)
}
