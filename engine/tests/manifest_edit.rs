//! Version edits survive encoding exactly, and a damaged encoding never decodes quietly.

mod manifest_support;

use kv_engine::constants::NUM_LEVELS;
use kv_engine::manifest::{FileMeta, VersionEdit};
use kv_engine::wal::format::{encode_header, RecordType};
use manifest_support::table;
use proptest::prelude::*;

fn file_meta() -> impl Strategy<Value = FileMeta> {
    let key = || prop::collection::vec(any::<u8>(), 8..40);
    (any::<u64>(), any::<u64>(), key(), key(), any::<[u64; 4]>()).prop_map(
        |(number, size, smallest, largest, [a, b, c, d])| FileMeta {
            number,
            size,
            smallest,
            largest,
            smallest_seq: a,
            largest_seq: b,
            entries: c,
            deletions: d,
        },
    )
}

fn version_edit() -> impl Strategy<Value = VersionEdit> {
    (
        any::<[Option<u64>; 3]>(),
        prop::collection::vec((0..NUM_LEVELS, file_meta()), 0..5),
        prop::collection::vec((0..NUM_LEVELS, any::<u64>()), 0..5),
        prop::collection::vec((any::<u8>(), "\\PC{0,12}"), 0..4),
    )
        .prop_map(
            |([log, next, seq], new_files, deleted_files, new_keyspaces)| VersionEdit {
                log_number: log,
                next_file_number: next,
                last_sequence: seq,
                new_files,
                deleted_files,
                new_keyspaces,
            },
        )
}

proptest! {
    #[test]
    fn encode_decode_round_trips(edit in version_edit()) {
        let buf = edit.encode();
        prop_assert_eq!(VersionEdit::decode(&buf), Ok(edit));
    }

    #[test]
    fn every_truncation_fails_to_decode(edit in version_edit()) {
        let buf = edit.encode();
        for cut in 0..buf.len() {
            let r = VersionEdit::decode(&buf[..cut]);
            prop_assert!(r.is_err(), "cut at {} decoded: {:?}", cut, r);
            let (at, _) = r.unwrap_err();
            prop_assert!(at <= cut, "error offset {} past cut {}", at, cut);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Err((at, _)) = VersionEdit::decode(&buf) {
            prop_assert!(at <= buf.len());
        }
    }
}

#[test]
fn trailing_bytes_after_end_are_refused() {
    let mut buf = VersionEdit::default().encode();
    buf.push(2);
    assert_eq!(
        VersionEdit::decode(&buf),
        Err((1, "bytes after the End tag".to_string()))
    );
}

#[test]
fn a_short_key_is_refused() {
    let mut f = table(1, "a", "b");
    f.smallest = b"short".to_vec();
    let buf = VersionEdit {
        new_files: vec![(1, f)],
        ..Default::default()
    }
    .encode();
    let (at, what) = VersionEdit::decode(&buf).unwrap_err();
    assert_eq!(
        at, 5,
        "tag, level, number, 2-byte size: the key starts at 5"
    );
    assert!(what.contains("no trailer"), "{what}");
}

#[test]
fn invalid_utf8_keyspace_name_is_refused() {
    let buf = [10, 1, 2, 0xff, 0xfe, 0];
    assert!(VersionEdit::decode(&buf).is_err());
}

/// The worked example in docs/format/manifest.md: these are the real bytes.
#[test]
fn worked_example_bytes() {
    let edit = VersionEdit {
        log_number: Some(4),
        next_file_number: Some(6),
        last_sequence: Some(300),
        new_files: vec![(0, table(5, "a", "k"))],
        deleted_files: vec![(1, 2)],
        new_keyspaces: vec![(1, "hints".into())],
    };
    let hex = |b: &[u8]| {
        b.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let buf = edit.encode();
    assert_eq!(
        hex(&buf),
        "02 04 03 06 04 ac 02 0a 01 05 68 69 6e 74 73 06 01 02 07 00 05 ed 07 09 61 01 37 00 \
         00 00 00 00 00 09 6b 00 32 00 00 00 00 00 00 32 37 64 03 00"
    );
    // As the first record of a manifest: one Full fragment.
    assert_eq!(
        hex(&encode_header(RecordType::Full, &buf)),
        "c3 a6 7b 1b 30 00 01"
    );
}
