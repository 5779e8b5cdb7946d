//! `kvtool inspect NNNNNN.log`: the batches of a WAL with their sequence numbers and
//! sizes, and with `--keys` every operation.

use crate::datadir::{self, kind_name, Names};
use crate::escape::escape;
use crate::failure::Failure;
use crate::output::{self, Align, Render, Table};
use kv_engine::wal::ReadEnd;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Serialize)]
struct Op {
    kind: String,
    keyspace: String,
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

#[derive(Debug, Serialize)]
struct Batch {
    offset: u64,
    bytes: usize,
    /// First sequence number (op i has `sequence + i`); `None` if the batch is bad.
    sequence: Option<u64>,
    ops: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    keys: Vec<Op>,
}

/// Why reading stopped, as shown to people and scripts.
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum End {
    /// Ended at a record boundary.
    Clean,
    /// Ended in an incomplete record: normal after a crash.
    TornTail {
        /// Where the dropped bytes start.
        offset: u64,
        /// How many.
        dropped_bytes: u64,
    },
    /// Damage followed by valid records.
    Corrupt {
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        what: String,
        /// Bytes from there to the end.
        dropped_bytes: u64,
    },
}

impl From<ReadEnd> for End {
    fn from(e: ReadEnd) -> Self {
        match e {
            ReadEnd::Clean => End::Clean,
            ReadEnd::TornTail {
                offset,
                dropped_bytes,
            } => End::TornTail {
                offset,
                dropped_bytes,
            },
            ReadEnd::Corrupt {
                offset,
                what,
                dropped_bytes,
            } => End::Corrupt {
                offset,
                what,
                dropped_bytes,
            },
        }
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Clean => write!(f, "clean (ends at a record boundary)"),
            End::TornTail { offset, dropped_bytes: 0 } => write!(f, "clean (ends at {offset})"),
            End::TornTail { offset, dropped_bytes } => write!(
                f,
                "torn tail at {offset}: {dropped_bytes} bytes of an incomplete record (normal after a crash)"
            ),
            End::Corrupt { offset, what, dropped_bytes } => write!(
                f,
                "CORRUPT at {offset}: {what} ({dropped_bytes} bytes unreadable, valid records among them)"
            ),
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    file: String,
    size: u64,
    batches: usize,
    ops: usize,
    first_sequence: Option<u64>,
    last_sequence: Option<u64>,
    /// Batches listed below (bounded by --limit).
    shown: usize,
    list: Vec<Batch>,
    end: End,
}

impl Render for Report {
    fn render(&self, out: &mut String) {
        out.push_str(&format!("WAL {}\n", self.file));
        let seqs = output::span(self.first_sequence, self.last_sequence, "..");
        output::fields(
            out,
            2,
            &[
                ("size", output::bytes(self.size)),
                ("batches", self.batches.to_string()),
                ("operations", self.ops.to_string()),
                ("sequences", seqs),
                ("end", self.end.to_string()),
            ],
        );
        if self.list.is_empty() {
            return;
        }
        out.push('\n');
        let mut t = Table::new(&[
            ("offset", Align::Right),
            ("sequence", Align::Right),
            ("ops", Align::Right),
            ("bytes", Align::Right),
            ("", Align::Left),
        ]);
        let num = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        for b in &self.list {
            t.row(vec![
                b.offset.to_string(),
                num(b.sequence),
                num(b.ops.map(|n| n as u64)),
                b.bytes.to_string(),
                b.error.clone().unwrap_or_default(),
            ]);
            for op in &b.keys {
                let value = match (&op.value, op.kind.as_str()) {
                    (Some(end), "range-del") => format!(" .. {end} (end excluded)"),
                    (Some(v), _) => format!(" = {v}"),
                    (None, _) => String::new(),
                };
                t.note(format!("{} {}:{}{value}", op.kind, op.keyspace, op.key));
            }
        }
        t.render(out, 2);
        if self.shown < self.batches {
            out.push_str(&format!(
                "  ... {} more batches (--limit N shows more)\n",
                self.batches - self.shown
            ));
        }
    }
}

/// Runs `kvtool inspect FILE.log`.
pub fn run(path: &Path, keys: bool, limit: Option<usize>, json: bool) -> Result<i32, Failure> {
    let (batches, end) = datadir::read_wal(path).map_err(|e| Failure::new(e.to_string()))?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let names = datadir::names_near(path);
    let good = || batches.iter().filter_map(|b| b.batch.as_ref().ok());
    let ops: usize = good().map(|b| b.len()).sum();
    let nonempty = || good().filter(|b| !b.is_empty());
    let first_sequence = nonempty().map(|b| b.sequence()).min();
    let last_sequence = nonempty().map(|b| b.sequence() + b.len() as u64 - 1).max();
    let list: Vec<Batch> = batches
        .iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(|b| describe(b, keys, &names))
        .collect();
    let report = Report {
        file: path.display().to_string(),
        size,
        batches: batches.len(),
        ops,
        first_sequence,
        last_sequence,
        shown: list.len(),
        list,
        end: end.into(),
    };
    output::emit(&report, json)?;
    Ok(0)
}

fn describe(b: &datadir::WalBatch, keys: bool, names: &Names) -> Batch {
    match &b.batch {
        Ok(batch) => Batch {
            offset: b.offset,
            bytes: b.bytes,
            sequence: Some(batch.sequence()),
            ops: Some(batch.len()),
            error: None,
            keys: if keys {
                batch
                    .ops()
                    .map(|op| Op {
                        kind: kind_name(op.kind as u8),
                        keyspace: names.keyspace(op.keyspace),
                        key: escape(op.key),
                        // A range delete's value is the (exclusive) end of its range.
                        value: (op.kind != kv_engine::key::ValueKind::Delete)
                            .then(|| escape(op.value)),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        },
        Err((at, what)) => Batch {
            offset: b.offset,
            bytes: b.bytes,
            sequence: None,
            ops: None,
            error: Some(format!("bad batch at payload byte {at}: {what}")),
            keys: Vec::new(),
        },
    }
}
