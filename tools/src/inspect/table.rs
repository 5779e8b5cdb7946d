//! `kvtool inspect NNNNNN.sst`: the table's layout and properties, its bloom filter's
//! measured false-positive rate, its index (data block handles) and, with `--keys`, its
//! entries.

use crate::cli::InspectArgs;
use crate::datadir::{self, kind_name, Names};
use crate::escape::escape;
use crate::failure::Failure;
use crate::output::{self, Align, Render, Table};
use kv_engine::iter::InternalIterator;
use kv_engine::key::ParsedKey;
use kv_engine::Compression;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Serialize)]
struct Block {
    offset: u64,
    size: u64,
}

#[derive(Debug, Serialize)]
struct Entry {
    keyspace: String,
    key: String,
    sequence: u64,
    kind: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct Report {
    file: String,
    file_size: u64,
    format_version: u32,
    compression: String,
    restart_interval: u32,
    entries: u64,
    tombstones: u64,
    raw_key_bytes: u64,
    raw_value_bytes: u64,
    data_blocks: u64,
    data_block_bytes_min: u64,
    data_block_bytes_avg: u64,
    data_block_bytes_max: u64,
    index_bytes: u64,
    filter_bytes: u64,
    bloom_bits_per_key: u32,
    /// Fraction of absent keys the filter lets through, measured on `bloom_samples` keys
    /// (`None` without a filter).
    bloom_false_positive_rate: Option<f64>,
    bloom_samples: usize,
    smallest_sequence: u64,
    largest_sequence: u64,
    smallest_key: String,
    largest_key: String,
    /// Data block handles in file order (bounded by --limit).
    index: Vec<Block>,
    /// Entries in key order with --keys (bounded by --limit).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    keys: Vec<Entry>,
}

impl Render for Report {
    fn render(&self, out: &mut String) {
        out.push_str(&format!("Table {}\n", self.file));
        let fp = match self.bloom_false_positive_rate {
            Some(r) => format!(
                "{:.2}% (measured on {} absent keys)",
                r * 100.0,
                self.bloom_samples
            ),
            None => "- (no filter)".into(),
        };
        output::fields(
            out,
            2,
            &[
                ("file size", output::bytes(self.file_size)),
                ("format version", self.format_version.to_string()),
                ("entries", self.entries.to_string()),
                ("tombstones", self.tombstones.to_string()),
                (
                    "raw keys / values",
                    format!(
                        "{} / {}",
                        output::bytes(self.raw_key_bytes),
                        output::bytes(self.raw_value_bytes)
                    ),
                ),
                (
                    "sequences",
                    format!("{}..{}", self.smallest_sequence, self.largest_sequence),
                ),
                ("smallest key", self.smallest_key.clone()),
                ("largest key", self.largest_key.clone()),
                (
                    "data blocks",
                    format!(
                        "{} (min {} / avg {} / max {} bytes)",
                        self.data_blocks,
                        self.data_block_bytes_min,
                        self.data_block_bytes_avg,
                        self.data_block_bytes_max
                    ),
                ),
                ("compression", self.compression.clone()),
                ("restart interval", self.restart_interval.to_string()),
                ("index block", output::bytes(self.index_bytes)),
                ("filter block", output::bytes(self.filter_bytes)),
                ("bloom bits/key", self.bloom_bits_per_key.to_string()),
                ("bloom false positives", fp),
            ],
        );
        out.push_str("\n  Index\n");
        let mut t = Table::new(&[
            ("block", Align::Right),
            ("offset", Align::Right),
            ("size", Align::Right),
        ]);
        for (i, b) in self.index.iter().enumerate() {
            t.row(vec![
                i.to_string(),
                b.offset.to_string(),
                b.size.to_string(),
            ]);
        }
        t.render(out, 4);
        if (self.index.len() as u64) < self.data_blocks {
            out.push_str(&format!(
                "    ... {} more blocks (--limit N shows more)\n",
                self.data_blocks - self.index.len() as u64
            ));
        }
        if !self.keys.is_empty() {
            out.push_str("\n  Entries\n");
            let mut t = Table::new(&[
                ("key", Align::Left),
                ("seq", Align::Right),
                ("kind", Align::Left),
                ("value", Align::Left),
            ]);
            for e in &self.keys {
                t.row(vec![
                    format!("{}:{}", e.keyspace, e.key),
                    e.sequence.to_string(),
                    e.kind.clone(),
                    e.value.clone(),
                ]);
            }
            t.render(out, 4);
        }
    }
}

/// Runs `kvtool inspect FILE.sst`.
pub fn run(
    path: &Path,
    args: &InspectArgs,
    limit: Option<usize>,
    json: bool,
) -> Result<i32, Failure> {
    let table = datadir::open_table(path).map_err(|e| Failure::new(e.to_string()))?;
    let handles = table
        .block_handles()
        .map_err(|e| Failure::new(e.to_string()))?;
    let names = datadir::names_near(path);
    let p = table.properties();
    let sizes = || handles.iter().map(|h| h.size);
    let limit = limit.unwrap_or(usize::MAX);
    let keys = if args.keys {
        entries(&table, &names, limit)?
    } else {
        Vec::new()
    };
    let report = Report {
        file: path.display().to_string(),
        file_size: p.file_size,
        format_version: p.format_version,
        compression: match p.compression {
            Compression::None => "none".into(),
            Compression::Lz4 => "lz4 (per block, when it saves 1/8)".into(),
        },
        restart_interval: p.restart_interval,
        entries: p.entries,
        tombstones: p.deletions,
        raw_key_bytes: p.raw_key_bytes,
        raw_value_bytes: p.raw_value_bytes,
        data_blocks: handles.len() as u64,
        data_block_bytes_min: sizes().min().unwrap_or(0),
        data_block_bytes_avg: sizes().sum::<u64>() / (handles.len() as u64).max(1),
        data_block_bytes_max: sizes().max().unwrap_or(0),
        index_bytes: p.index_size,
        filter_bytes: p.filter_size,
        bloom_bits_per_key: p.bloom_bits_per_key,
        bloom_false_positive_rate: (p.filter_size > 0)
            .then(|| table.measure_bloom_fp_rate(args.bloom_samples)),
        bloom_samples: args.bloom_samples,
        smallest_sequence: p.smallest_seq,
        largest_sequence: p.largest_seq,
        smallest_key: names.internal_key(&p.smallest_key),
        largest_key: names.internal_key(&p.largest_key),
        index: handles
            .iter()
            .take(limit)
            .map(|h| Block {
                offset: h.offset,
                size: h.size,
            })
            .collect(),
        keys,
    };
    output::emit(&report, json)?;
    Ok(0)
}

fn entries(
    table: &std::sync::Arc<kv_engine::sst::Table>,
    names: &Names,
    limit: usize,
) -> Result<Vec<Entry>, Failure> {
    let mut it = table.iter();
    it.seek_to_first();
    let mut out = Vec::new();
    while it.valid() && out.len() < limit {
        let (ks, key, sequence, kind) = match ParsedKey::parse(it.key()) {
            Some(p) => {
                let (ks, key) = p
                    .user_key
                    .split_first()
                    .map_or((0, &[][..]), |(k, r)| (*k, r));
                (names.keyspace(ks), escape(key), p.seq, kind_name(p.kind))
            }
            None => ("?".into(), escape(it.key()), 0, "malformed".into()),
        };
        out.push(Entry {
            keyspace: ks,
            key,
            sequence,
            kind,
            value: escape(it.value()),
        });
        it.next();
    }
    it.status().map_err(|e| Failure::new(e.to_string()))?;
    Ok(out)
}
