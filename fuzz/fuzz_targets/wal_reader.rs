//! The WAL reader (`kv_engine::wal::LogReader`) over arbitrary bytes, and the write
//! batch decoder over every record it returns.
//!
//! Input: the bytes of a `.log` file. Read as given and again with every fragment
//! checksum made valid (so mutations reach record assembly and batch decoding).
//! Checked: no panic; reading ends (every record consumes at least one fragment
//! header, so there are at most len/7 of them); records come in file order; the end
//! report is consistent with the file length; a batch that decodes yields all its ops.
#![no_main]

use kv_engine::wal::{LogReader, ReadEnd};
use kv_engine::WriteBatch;
use kv_fuzz::{mem_file, read_log_both_ways};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| read_log_both_ways(data, read));

fn read(log: &[u8]) {
    let path = Path::new("/db/000001.log");
    let (_fs, file) = mem_file(path, log);
    let mut reader = LogReader::new(path.to_path_buf(), file);
    let max_records = log.len() / kv_engine::wal::format::HEADER_SIZE + 1;
    let mut last_offset = None;
    let mut count = 0;
    while let Some((offset, payload)) = reader.next_record() {
        count += 1;
        assert!(
            count <= max_records,
            "more records than fragment headers fit"
        );
        assert!(last_offset < Some(offset), "records out of file order");
        assert!(offset < log.len() as u64);
        last_offset = Some(offset);
        if let Ok(batch) = WriteBatch::decode(&payload) {
            // `decode` checked the whole grammar, so `ops` must yield every op.
            assert_eq!(batch.ops().count(), batch.len(), "a decoded batch lost ops");
        }
    }
    assert!(
        reader.next_record().is_none(),
        "reader resumed after its end"
    );
    let len = log.len() as u64;
    match reader.end().clone() {
        ReadEnd::Clean => {}
        ReadEnd::TornTail {
            offset,
            dropped_bytes,
        }
        | ReadEnd::Corrupt {
            offset,
            dropped_bytes,
            ..
        } => {
            assert!(offset <= len, "stop offset {offset} past the end {len}");
            assert_eq!(
                offset + dropped_bytes,
                len,
                "dropped bytes do not reach the end"
            );
        }
    }
}
