//! Records of every size come back exactly as written, wherever they fall in a block.

mod wal_support;

use kv_engine::constants::WAL_BLOCK_SIZE;
use kv_engine::fs::Fs;
use kv_engine::wal::format::HEADER_SIZE;
use kv_engine::wal::{LogWriter, ReadEnd};
use kv_engine::Error;
use proptest::prelude::*;
use wal_support::*;

fn assert_round_trip(records: &[Vec<u8>]) {
    let fs = mem_fs();
    let spans = write_log(&fs, records);
    let (got, end) = read_log(&fs);
    assert_eq!(end, ReadEnd::Clean);
    assert_eq!(got.len(), records.len());
    for ((off, data), (rec, span)) in got.iter().zip(records.iter().zip(&spans)) {
        assert_eq!(*off, span.0);
        assert!(data == rec, "record at {off} differs");
    }
    let file_len = fs.len_of(&log_path()).unwrap() as u64;
    assert_eq!(spans.last().map_or(0, |s| s.1), file_len);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_sizes_round_trip(sizes in prop::collection::vec(
        prop_oneof![0usize..100, 0usize..40_000, 0usize..=200_000], 0..8)) {
        assert_round_trip(&records_of_sizes(&sizes));
    }
}

#[test]
fn empty_log_is_clean() {
    assert_round_trip(&[]);
}

#[test]
fn empty_records_round_trip() {
    assert_round_trip(&records_of_sizes(&[0, 0, 0]));
}

#[test]
fn large_records_span_many_blocks() {
    assert_round_trip(&records_of_sizes(&[100_000, 1 << 20, 5, 100_000]));
}

/// A first record ending `slack` bytes before the block end, then a second record:
/// with `slack < HEADER_SIZE` the second starts at the next block after a zero trailer.
#[test]
fn records_ending_near_a_block_boundary() {
    for slack in 0..=HEADER_SIZE + 2 {
        for second in [0, 1, 100, WAL_BLOCK_SIZE] {
            let first = WAL_BLOCK_SIZE - HEADER_SIZE - slack;
            let records = records_of_sizes(&[first, second, 3]);
            let fs = mem_fs();
            let spans = write_log(&fs, &records);
            let expected_second = if slack < HEADER_SIZE {
                WAL_BLOCK_SIZE as u64
            } else {
                (WAL_BLOCK_SIZE - slack) as u64
            };
            assert_eq!(spans[1].0, expected_second, "slack {slack}");
            let bytes = fs.read_all(&log_path()).unwrap();
            if slack < HEADER_SIZE {
                assert!(bytes[WAL_BLOCK_SIZE - slack..WAL_BLOCK_SIZE]
                    .iter()
                    .all(|&b| b == 0));
            }
            assert_round_trip(&records);
        }
    }
}

#[test]
fn writer_len_counts_headers_and_trailers() {
    let fs = mem_fs();
    let spans = write_log(&fs, &records_of_sizes(&[10, WAL_BLOCK_SIZE]));
    assert_eq!(spans[0], (0, (HEADER_SIZE + 10) as u64));
    // The second record needs two fragments: two headers.
    assert_eq!(spans[1].1, (3 * HEADER_SIZE + 10 + WAL_BLOCK_SIZE) as u64);
}

#[test]
fn record_larger_than_u32_is_refused() {
    let fs = mem_fs();
    let mut w = LogWriter::new(log_path(), fs.create(&log_path()).unwrap());
    // Zeroed allocations are mapped lazily: this does not touch 4 GiB of memory.
    let huge = vec![0u8; u32::MAX as usize + 1];
    assert!(matches!(
        w.add_record(&huge),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(w.len(), 0);
    w.add_record(b"still usable").unwrap();
}

/// The worked example in docs/format/wal.md: these are the real bytes.
#[test]
fn worked_example_bytes() {
    let fs = mem_fs();
    write_log(&fs, &[b"hello".to_vec()]);
    let bytes = fs.read_all(&log_path()).unwrap();
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex.join(" "), "30 00 be e9 05 00 01 68 65 6c 6c 6f");
}
