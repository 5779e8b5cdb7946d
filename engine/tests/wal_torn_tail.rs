//! A log cut short anywhere (a crash mid-append) yields exactly the records fully before
//! the cut and a `TornTail` (or `Clean` at a record boundary); never corruption.

mod wal_support;

use kv_engine::fs::{CrashMode, Fs};
use kv_engine::wal::{LogWriter, ReadEnd};
use wal_support::*;

/// Checks the reading of a log holding `records` at `spans`, cut to `cut` bytes.
fn assert_prefix_and_torn_tail(
    records: &[Vec<u8>],
    spans: &[(u64, u64)],
    cut: u64,
    got: &[(u64, Vec<u8>)],
    end: &ReadEnd,
) {
    let whole = spans.iter().filter(|s| s.1 <= cut).count();
    assert_eq!(got.len(), whole, "cut at {cut}");
    for ((off, data), (rec, span)) in got.iter().zip(records.iter().zip(spans)) {
        assert_eq!(*off, span.0, "cut at {cut}");
        assert!(data == rec, "cut at {cut}: record at {off} differs");
    }
    let valid_end = spans.get(whole.wrapping_sub(1)).map_or(0, |s| s.1);
    match end {
        ReadEnd::Clean => assert_eq!(cut, valid_end, "cut at {cut} is not a boundary"),
        ReadEnd::TornTail {
            offset,
            dropped_bytes,
        } => {
            assert!(cut > valid_end, "cut at {cut}: torn tail at a boundary");
            assert!(
                (valid_end..cut).contains(offset),
                "cut at {cut}: offset {offset}"
            );
            assert_eq!(offset + dropped_bytes, cut);
        }
        other => panic!("cut at {cut}: {other:?}"),
    }
}

/// Writes records of `sizes`, then for each cut in `cuts` (plus the full length) reads
/// the log cut to that length.
fn check_cuts(sizes: &[usize], cuts: impl Fn(&[(u64, u64)]) -> Vec<usize>) {
    let records = records_of_sizes(sizes);
    let fs = mem_fs();
    let spans = write_log(&fs, &records);
    let original = fs.read_all(&log_path()).unwrap();
    for cut in cuts(&spans).into_iter().chain([original.len()]) {
        let cut = cut.min(original.len());
        fs.write_all_synced(&log_path(), &original[..cut]).unwrap();
        let (got, end) = read_log(&fs);
        assert_prefix_and_torn_tail(&records, &spans, cut as u64, &got, &end);
    }
}

#[test]
fn every_truncation_point_of_a_small_log() {
    check_cuts(&[0, 10, 300, 20, 1, 0], |spans| {
        (0..spans.last().unwrap().1 as usize).collect()
    });
}

#[test]
fn truncation_points_around_every_boundary_of_a_multi_block_log() {
    // A record spanning two block boundaries, records ending near a block end, and
    // cuts within 10 bytes of every record start/end and block boundary, plus a stride.
    let sizes = [10, 300, 70_000, 20, 32_768 - 7 * 2 - 3, 5, 1];
    check_cuts(&sizes, |spans| {
        let end = spans.last().unwrap().1 as usize;
        let marks = spans
            .iter()
            .flat_map(|s| [s.0 as usize, s.1 as usize])
            .chain((0..=end).step_by(32_768));
        let mut cuts: Vec<usize> = marks
            .flat_map(|m| m.saturating_sub(10)..m + 10)
            .chain((0..end).step_by(101))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        cuts
    });
}

#[test]
fn garbage_after_the_last_record_is_a_torn_tail() {
    let records = records_of_sizes(&[50, 60]);
    for garbage in [
        vec![0u8; 1],
        vec![0u8; 100],
        vec![0xa5; 7],
        (0..=255u8).collect(),
    ] {
        let fs = mem_fs();
        let spans = write_log(&fs, &records);
        let mut bytes = fs.read_all(&log_path()).unwrap();
        bytes.extend_from_slice(&garbage);
        fs.write_all_synced(&log_path(), &bytes).unwrap();
        let (got, end) = read_log(&fs);
        assert_eq!(got.len(), 2);
        assert_eq!(
            end,
            ReadEnd::TornTail {
                offset: spans[1].1,
                dropped_bytes: garbage.len() as u64
            }
        );
    }
}

#[test]
fn power_cut_keeps_synced_records_and_a_clean_prefix_of_the_rest() {
    for seed in 1..40u64 {
        let fs = mem_fs();
        let records = records_of_sizes(&[100, 5_000, 33_000, 7, 70_000, 12]);
        let path = log_path();
        let mut w = LogWriter::new(path.clone(), fs.create(&path).unwrap());
        let mut spans = Vec::new();
        for (i, r) in records.iter().enumerate() {
            w.add_record(r).unwrap();
            spans.push(w.len());
            if i == 1 {
                w.sync().unwrap();
                fs.sync_dir(std::path::Path::new("/db")).unwrap();
            }
        }
        fs.crash(CrashMode::TornTail(seed));
        let (got, end) = read_log(&fs);
        assert!(got.len() >= 2, "seed {seed}: synced records lost");
        for ((_, data), rec) in got.iter().zip(&records) {
            assert!(data == rec, "seed {seed}");
        }
        assert!(
            matches!(end, ReadEnd::Clean | ReadEnd::TornTail { .. }),
            "seed {seed}: {end:?}"
        );
    }
}
