//! Keeps the worked example in docs/format/sstable.md true: the hex dump printed there
//! must be exactly the bytes the builder writes for this tiny table.

use kv_engine::fs::{Fs, MemFs};
use kv_engine::key::{make_internal_key, ValueKind};
use kv_engine::options::Compression;
use kv_engine::sst::{TableBuilder, TableOptions};
use std::fmt::Write;
use std::path::Path;

/// `xxd`-style dump: offset, 16 bytes in hex, printable ASCII.
fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, line) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:08x}:", i * 16);
        for (j, b) in line.iter().enumerate() {
            let sep = if j % 2 == 0 { " " } else { "" };
            let _ = write!(out, "{sep}{b:02x}");
        }
        let pad = (16 - line.len()) * 2 + (16 - line.len()).div_ceil(2);
        out.push_str(&" ".repeat(pad + 2));
        out.extend(line.iter().map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        }));
        out.push('\n');
    }
    out
}

#[test]
fn worked_example_in_the_spec_matches_the_builder() {
    let fs = MemFs::new();
    let path = Path::new("/000001.sst");
    let opts = TableOptions {
        compression: Compression::None,
        ..TableOptions::default()
    };
    let mut b = TableBuilder::new(path.into(), fs.create(path).unwrap(), opts);
    b.add(&make_internal_key(b"apple", 1, ValueKind::Put), b"red")
        .unwrap();
    b.add(&make_internal_key(b"apricot", 2, ValueKind::Delete), b"")
        .unwrap();
    b.finish().unwrap();
    let dump = hex_dump(&fs.read_all(path).unwrap());
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/format/sstable.md");
    let spec = std::fs::read_to_string(&spec_path).unwrap_or_default();
    assert!(
        spec.contains(&dump),
        "docs/format/sstable.md must contain this dump of the example table:\n{dump}"
    );
}
