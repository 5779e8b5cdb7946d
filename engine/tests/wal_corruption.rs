//! A damaged log never yields wrong data: reading returns a prefix of the records and
//! says `Corrupt` when valid records follow the damage, `TornTail` when none do.

mod wal_support;

use kv_engine::constants::WAL_BLOCK_SIZE;
use kv_engine::error::{Error, Result};
use kv_engine::fs::{Fs, RandomAccessFile};
use kv_engine::wal::format::{encode_header, RecordType};
use kv_engine::wal::{LogReader, ReadEnd};
use std::path::PathBuf;
use std::sync::Arc;
use wal_support::*;

/// Flips each byte in `offsets` of a log of `sizes`, one at a time, and checks that a
/// flip inside record `i` yields records `..i` and ends at the start of record `i`:
/// `Corrupt` if a later record exists, `TornTail` for the last one.
fn flip_and_check(sizes: &[usize], offsets: impl Iterator<Item = usize>) {
    let records = records_of_sizes(sizes);
    let fs = mem_fs();
    let spans = write_log(&fs, &records);
    let original = fs.read_all(&log_path()).unwrap();
    for at in offsets {
        fs.write_all_synced(&log_path(), &original).unwrap();
        fs.corrupt_byte(&log_path(), at).unwrap();
        let (got, end) = read_log(&fs);
        let hit = spans
            .iter()
            .position(|s| (s.0..s.1).contains(&(at as u64)))
            .expect("flipped byte lies in a record");
        assert_eq!(got.len(), hit, "flip at {at}");
        for ((off, data), (rec, span)) in got.iter().zip(records.iter().zip(&spans)) {
            assert_eq!(*off, span.0);
            assert!(data == rec, "flip at {at}: record at {off} differs");
        }
        let offset = spans[hit].0;
        let dropped_bytes = original.len() as u64 - offset;
        if hit + 1 < records.len() {
            assert!(
                matches!(&end, ReadEnd::Corrupt { offset: o, dropped_bytes: d, .. }
                    if *o == offset && *d == dropped_bytes),
                "flip at {at}: {end:?}"
            );
        } else {
            assert_eq!(
                end,
                ReadEnd::TornTail {
                    offset,
                    dropped_bytes
                },
                "flip at {at}"
            );
        }
    }
}

#[test]
fn every_byte_flip_of_a_three_record_file() {
    let len: usize = [50, 100, 70].iter().map(|n| n + 7).sum();
    flip_and_check(&[50, 100, 70], 0..len);
}

#[test]
fn byte_flips_in_a_record_spanning_blocks() {
    // Every header byte and every 97th byte of a log whose middle record has 3 fragments.
    let sizes = [50, 2 * WAL_BLOCK_SIZE, 70];
    let len: usize = sizes.iter().sum::<usize>() + 5 * 7;
    let headers = [
        0,
        57,
        WAL_BLOCK_SIZE,
        2 * WAL_BLOCK_SIZE,
        2 * WAL_BLOCK_SIZE + 71,
    ];
    let offsets = headers
        .into_iter()
        .flat_map(|h| h..h + 7)
        .chain((0..len).step_by(97));
    flip_and_check(&sizes, offsets);
}

fn fragment(kind: RecordType, payload: &[u8]) -> Vec<u8> {
    let mut f = encode_header(kind, payload).to_vec();
    f.extend_from_slice(payload);
    f
}

fn read_bytes(bytes: &[u8]) -> (Vec<(u64, Vec<u8>)>, ReadEnd) {
    let fs = mem_fs();
    fs.write_all_synced(&log_path(), bytes).unwrap();
    read_log(&fs)
}

#[test]
fn first_without_last_before_a_full_record_is_corrupt() {
    let mut bytes = fragment(RecordType::Full, b"a");
    bytes.extend(fragment(RecordType::First, b"lost"));
    bytes.extend(fragment(RecordType::Full, b"b"));
    let (got, end) = read_bytes(&bytes);
    assert_eq!(got, vec![(0, b"a".to_vec())]);
    assert!(
        matches!(&end, ReadEnd::Corrupt { offset: 8, what, .. } if what.contains("unfinished")),
        "{end:?}"
    );
}

#[test]
fn middle_or_last_without_first_is_corrupt() {
    for kind in [RecordType::Middle, RecordType::Last] {
        let mut bytes = fragment(kind, b"orphan");
        bytes.extend(fragment(RecordType::Full, b"b"));
        let (got, end) = read_bytes(&bytes);
        assert!(got.is_empty());
        assert!(
            matches!(&end, ReadEnd::Corrupt { offset: 0, what, .. } if what.contains("without a First")),
            "{end:?}"
        );
    }
}

#[test]
fn unknown_type_is_corrupt() {
    let mut bytes = fragment(RecordType::Full, b"a");
    let mut bad = fragment(RecordType::Full, b"x");
    bad[6] = 9;
    bytes.extend(bad);
    bytes.extend(fragment(RecordType::Full, b"b"));
    let (got, end) = read_bytes(&bytes);
    assert_eq!(got.len(), 1);
    assert!(
        matches!(&end, ReadEnd::Corrupt { offset: 8, what, .. } if what.contains("type 9")),
        "{end:?}"
    );
}

#[test]
fn a_lost_block_before_a_valid_one_is_corrupt() {
    let records = records_of_sizes(&[10, WAL_BLOCK_SIZE, 10]);
    let fs = mem_fs();
    let spans = write_log(&fs, &records);
    let mut bytes = fs.read_all(&log_path()).unwrap();
    // Zero the whole first block, as a lost page would.
    bytes[..WAL_BLOCK_SIZE].fill(0);
    fs.write_all_synced(&log_path(), &bytes).unwrap();
    let (got, end) = read_log(&fs);
    assert!(got.is_empty());
    assert!(matches!(end, ReadEnd::Corrupt { offset: 0, .. }), "{end:?}");
    assert!(spans[2].0 > WAL_BLOCK_SIZE as u64);
}

/// A file whose reads fail from some offset on.
struct FailingFile {
    bytes: Vec<u8>,
    fail_from: u64,
}

impl RandomAccessFile for FailingFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if offset + buf.len() as u64 > self.fail_from {
            return Err(Error::io("/db/x", std::io::Error::other("disk on fire")));
        }
        buf.copy_from_slice(&self.bytes[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
}

#[test]
fn read_error_ends_as_corrupt_naming_io() {
    let records = records_of_sizes(&[10, WAL_BLOCK_SIZE, 10]);
    let fs = mem_fs();
    write_log(&fs, &records);
    let file = FailingFile {
        bytes: fs.read_all(&log_path()).unwrap(),
        fail_from: WAL_BLOCK_SIZE as u64 + 1,
    };
    let mut reader = LogReader::new(PathBuf::from("/db/x"), Arc::new(file));
    assert_eq!(reader.next_record().map(|r| r.1), Some(records[0].clone()));
    assert_eq!(reader.next_record(), None);
    assert!(
        matches!(reader.end(), ReadEnd::Corrupt { offset: 17, what, .. } if what.starts_with("I/O error")),
        "{:?}",
        reader.end()
    );
    assert_eq!(reader.next_record(), None, "stays at the end");
}
