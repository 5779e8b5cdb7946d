//! Damaged tables: every single flipped byte, and every truncation, of small tables must
//! surface as `Error::Corruption` naming the file (never a panic, never wrong data).
//! Every byte of a table is covered by a block checksum or the footer's, so each flip
//! must be caught by `Table::open` or by `Table::verify`.

use kv_engine::fs::{Fs, MemFs};
use kv_engine::iter::InternalIterator;
use kv_engine::key::{make_internal_key, ValueKind};
use kv_engine::options::Compression;
use kv_engine::sst::{SstCounters, Table, TableBuilder, TableOptions};
use kv_engine::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn entries() -> Entries {
    (0..60u32)
        .map(|i| {
            let kind = if i % 9 == 0 {
                ValueKind::Delete
            } else {
                ValueKind::Put
            };
            let key =
                make_internal_key(format!("user{:04}", i / 2).as_bytes(), 100 - i as u64, kind);
            (
                key,
                format!("value-{i}-").repeat(i as usize % 4).into_bytes(),
            )
        })
        .collect()
}

fn build(fs: &MemFs, path: &Path, compression: Compression) {
    let opts = TableOptions {
        block_size: 256,
        compression,
        ..TableOptions::default()
    };
    let mut b = TableBuilder::new(path.to_path_buf(), fs.create(path).unwrap(), opts);
    for (k, v) in entries() {
        b.add(&k, &v).unwrap();
    }
    b.finish().unwrap();
}

fn open(fs: &MemFs, path: &Path) -> Result<Arc<Table>> {
    Table::open(
        path.to_path_buf(),
        fs.open(path)?,
        7,
        None,
        Arc::new(SstCounters::default()),
    )
}

/// The error must be a corruption naming `path` at an offset inside the file.
fn assert_names_file(e: &Error, path: &Path, len: usize, context: &str) {
    match e {
        Error::Corruption { file, offset, .. } => {
            assert_eq!(file, path, "{context}: {e}");
            assert!(
                (*offset as usize) < len.max(1),
                "{context}: offset {offset} past {len}: {e}"
            );
        }
        other => panic!("{context}: expected corruption, got {other}"),
    }
}

/// Reads everything the damaged table offers and checks none of it is wrong. Returns
/// true if some read reported corruption.
fn check_reads(table: &Arc<Table>, path: &Path, len: usize, context: &str) -> bool {
    let expected = entries();
    let mut detected = false;
    let mut it = table.iter();
    it.seek_to_first();
    let mut n = 0;
    while it.valid() {
        assert!(n < expected.len(), "{context}: extra entries");
        assert_eq!(
            (it.key(), it.value()),
            (&expected[n].0[..], &expected[n].1[..]),
            "{context}: entry {n}"
        );
        n += 1;
        it.next();
    }
    match it.status() {
        Ok(()) => assert_eq!(
            n,
            expected.len(),
            "{context}: iteration ended early without an error"
        ),
        Err(e) => {
            assert_names_file(&e, path, len, context);
            detected = true;
        }
    }
    for (k, v) in expected.iter().step_by(5) {
        match table.get(k) {
            Ok(got) => assert_eq!(got, Some((k.clone(), v.clone())), "{context}: get"),
            Err(e) => {
                assert_names_file(&e, path, len, context);
                detected = true;
            }
        }
    }
    if let Err(e) = table.verify() {
        assert_names_file(&e, path, len, context);
        detected = true;
    }
    detected
}

#[test]
fn every_flipped_byte_is_detected_or_harmless() {
    for compression in [Compression::None, Compression::Lz4] {
        let fs = MemFs::new();
        let path = PathBuf::from("/db/000007.sst");
        build(&fs, &path, compression);
        let len = fs.len_of(&path).unwrap();
        let healthy = open(&fs, &path).unwrap();
        assert!(!check_reads(&healthy, &path, len, "healthy"));
        assert!(
            healthy.properties().data_blocks > 3,
            "the sample must cover several data blocks"
        );
        for off in 0..len {
            let context = format!("{compression:?} byte {off} of {len}");
            fs.corrupt_byte(&path, off).unwrap();
            let detected = match open(&fs, &path) {
                Err(e) => {
                    assert_names_file(&e, &path, len, &context);
                    true
                }
                Ok(table) => check_reads(&table, &path, len, &context),
            };
            assert!(detected, "{context}: flip went unnoticed");
            fs.corrupt_byte(&path, off).unwrap(); // flip back
        }
    }
}

#[test]
fn every_truncation_is_corruption() {
    let fs = MemFs::new();
    let path = PathBuf::from("/db/000007.sst");
    build(&fs, &path, Compression::Lz4);
    let full = fs.read_all(&path).unwrap();
    let short = PathBuf::from("/db/000008.sst");
    for len in 0..full.len() {
        fs.write_all_synced(&short, &full[..len]).unwrap();
        match open(&fs, &short) {
            Err(e) => assert_names_file(&e, &short, len, &format!("truncated to {len}")),
            Ok(_) => panic!("table truncated to {len} bytes opened"),
        }
    }
}

#[test]
fn damaged_data_block_names_its_offset() {
    let fs = MemFs::new();
    let path = PathBuf::from("/db/000007.sst");
    build(&fs, &path, Compression::None);
    let table = open(&fs, &path).unwrap();
    let third = table.block_handles().unwrap()[2];
    fs.corrupt_byte(&path, third.offset as usize + 3).unwrap();
    match table.verify() {
        Err(Error::Corruption { offset, what, .. }) => {
            assert_eq!(offset, third.offset);
            assert!(what.contains("checksum"), "{what}");
        }
        other => panic!("{other:?}"),
    }
    let mut it = table.iter();
    it.seek_to_first();
    let mut n = 0;
    while it.valid() {
        n += 1;
        it.next();
    }
    assert!(n > 0 && n < entries().len());
    assert!(matches!(it.status(), Err(Error::Corruption { offset, .. }) if offset == third.offset));
}

#[test]
fn not_a_table_is_refused_by_its_magic() {
    let fs = MemFs::new();
    let path = PathBuf::from("/x.sst");
    fs.write_all_synced(&path, &[0u8; 500]).unwrap();
    let e = open(&fs, &path).unwrap_err();
    assert!(e.to_string().contains("magic"), "{e}");
    assert!(matches!(e, Error::Corruption { offset: 492, .. }), "{e}");
}
