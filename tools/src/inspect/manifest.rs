//! `kvtool inspect MANIFEST-NNNNNN`: the version edits, one line each.

use super::wal::End;
use crate::datadir::{self, Names};
use crate::failure::Failure;
use crate::output::{self, Align, Render, Table};
use kv_engine::manifest::VersionEdit;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Serialize)]
struct Edit {
    offset: u64,
    bytes: usize,
    /// The edit's fields in words, or why it does not decode.
    summary: String,
}

#[derive(Debug, Serialize)]
struct Report {
    file: String,
    edits: usize,
    shown: usize,
    list: Vec<Edit>,
    end: End,
}

impl Render for Report {
    fn render(&self, out: &mut String) {
        out.push_str(&format!("MANIFEST {}\n", self.file));
        output::fields(
            out,
            2,
            &[
                ("edits", self.edits.to_string()),
                ("end", self.end.to_string()),
            ],
        );
        out.push('\n');
        let mut t = Table::new(&[
            ("offset", Align::Right),
            ("bytes", Align::Right),
            ("edit", Align::Left),
        ]);
        for e in &self.list {
            t.row(vec![
                e.offset.to_string(),
                e.bytes.to_string(),
                e.summary.clone(),
            ]);
        }
        t.render(out, 2);
        if self.shown < self.edits {
            out.push_str(&format!(
                "  ... {} more edits (--limit N shows more)\n",
                self.edits - self.shown
            ));
        }
    }
}

/// Runs `kvtool inspect MANIFEST-NNNNNN`.
pub fn run(path: &Path, limit: Option<usize>, json: bool) -> Result<i32, Failure> {
    let (records, end) = datadir::read_log(path).map_err(|e| Failure::new(e.to_string()))?;
    let names = datadir::names_near(path);
    let list: Vec<Edit> = records
        .iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(|(offset, payload)| Edit {
            offset: *offset,
            bytes: payload.len(),
            summary: match VersionEdit::decode(payload) {
                Ok(edit) => summarize(&edit, &names),
                Err((at, what)) => format!("BAD EDIT at payload byte {at}: {what}"),
            },
        })
        .collect();
    let report = Report {
        file: path.display().to_string(),
        edits: records.len(),
        shown: list.len(),
        list,
        end: end.into(),
    };
    output::emit(&report, json)?;
    Ok(0)
}

fn summarize(e: &VersionEdit, names: &Names) -> String {
    let mut parts = Vec::new();
    if let Some(n) = e.log_number {
        parts.push(format!("log {n}"));
    }
    if let Some(n) = e.next_file_number {
        parts.push(format!("next file {n}"));
    }
    if let Some(n) = e.last_sequence {
        parts.push(format!("last seq {n}"));
    }
    for (id, name) in &e.new_keyspaces {
        parts.push(format!("keyspace {id}={name}"));
    }
    for (level, number) in &e.deleted_files {
        parts.push(format!("-L{level} #{number}"));
    }
    for (level, f) in &e.new_files {
        parts.push(format!(
            "+L{level} #{} ({}, {} entries, {} .. {})",
            f.number,
            output::bytes(f.size),
            f.entries,
            names.internal_key(&f.smallest),
            names.internal_key(&f.largest)
        ));
    }
    if parts.is_empty() {
        "(empty edit)".into()
    } else {
        parts.join(", ")
    }
}
