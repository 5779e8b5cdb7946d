//! Version lookups and level invariants.

mod manifest_support;

use kv_engine::manifest::{FileMeta, Version, VersionBuilder, VersionEdit};
use manifest_support::table;
use std::sync::Arc;

fn version_with(files: &[(usize, FileMeta)]) -> Version {
    let mut b = VersionBuilder::new(&Version::default());
    b.apply(&VersionEdit {
        new_files: files.to_vec(),
        ..Default::default()
    })
    .unwrap();
    b.build().unwrap()
}

fn numbers(files: &[Arc<FileMeta>]) -> Vec<u64> {
    files.iter().map(|f| f.number).collect()
}

#[test]
fn levels_are_ordered_by_their_rules() {
    let v = version_with(&[
        (0, table(9, "a", "z")),
        (0, table(3, "c", "d")),
        (1, table(7, "m", "p")),
        (1, table(8, "a", "c")),
        (1, table(2, "e", "g")),
    ]);
    assert_eq!(
        numbers(&v.levels[0]),
        vec![3, 9],
        "L0 by number, newest last"
    );
    assert_eq!(numbers(&v.levels[1]), vec![8, 2, 7], "L1 by smallest key");
    assert_eq!(v.num_files(1), 3);
    assert_eq!(v.num_files(99), 0);
    assert_eq!(v.level_bytes(1), 1008 + 1002 + 1007);
    let mut live: Vec<_> = v.live_file_numbers().collect();
    live.sort_unstable();
    assert_eq!(live, vec![2, 3, 7, 8, 9]);
}

#[test]
fn overlapping_files_uses_inclusive_user_key_bounds() {
    let v = version_with(&[
        (1, table(1, "a", "c")),
        (1, table(2, "e", "g")),
        (1, table(3, "m", "p")),
    ]);
    let q = |lo: Option<&str>, hi: Option<&str>| {
        numbers(&v.overlapping_files(1, lo.map(str::as_bytes), hi.map(str::as_bytes)))
    };
    assert_eq!(q(Some("c"), Some("e")), vec![1, 2], "touching both ends");
    assert_eq!(q(Some("d"), Some("d")), Vec::<u64>::new());
    assert_eq!(q(None, Some("a")), vec![1]);
    assert_eq!(q(Some("g"), None), vec![2, 3]);
    assert_eq!(q(None, None), vec![1, 2, 3]);
    assert_eq!(q(Some("q"), None), Vec::<u64>::new());
}

#[test]
fn file_for_key_finds_the_one_candidate() {
    let v = version_with(&[
        (2, table(1, "a", "c")),
        (2, table(2, "e", "g")),
        (2, table(3, "m", "p")),
        (0, table(4, "a", "z")),
    ]);
    let find = |k: &str| v.file_for_key(2, k.as_bytes()).map(|f| f.number);
    assert_eq!(find("a"), Some(1));
    assert_eq!(find("c"), Some(1));
    assert_eq!(find("d"), None);
    assert_eq!(find("f"), Some(2));
    assert_eq!(find("p"), Some(3));
    assert_eq!(find("zz"), None);
    assert_eq!(
        v.file_for_key(0, b"b"),
        None,
        "L0 files overlap: no single answer"
    );
    assert_eq!(v.file_for_key(3, b"b"), None);
}

#[test]
fn invariant_violations_are_described() {
    let mut b = VersionBuilder::new(&Version::default());
    b.apply(&VersionEdit {
        new_files: vec![(1, table(1, "a", "f")), (1, table(2, "e", "g"))],
        ..Default::default()
    })
    .unwrap();
    let err = b.build().unwrap_err();
    assert!(err.contains("overlap"), "{err}");

    let mut inverted = table(5, "z", "a");
    inverted.number = 5;
    let v = Version {
        levels: {
            let mut l = Version::default().levels;
            l[3].push(Arc::new(inverted));
            l
        },
    };
    assert!(v
        .check_invariants()
        .unwrap_err()
        .contains("smallest > largest"));

    let mut l0 = Version::default();
    l0.levels[0] = vec![Arc::new(table(8, "a", "b")), Arc::new(table(6, "a", "b"))];
    assert!(l0.check_invariants().unwrap_err().contains("out of order"));

    let short = Version { levels: vec![] };
    assert!(short.check_invariants().is_err());
    assert_eq!(Version::default().check_invariants(), Ok(()));
}

#[test]
fn builder_refuses_deleting_missing_or_adding_twice() {
    let base = version_with(&[(1, table(1, "a", "b"))]);
    let mut b = VersionBuilder::new(&base);
    let missing = VersionEdit {
        deleted_files: vec![(2, 1)],
        ..Default::default()
    };
    assert!(b.apply(&missing).unwrap_err().contains("not in L2"));
    let twice = VersionEdit {
        new_files: vec![(3, table(1, "x", "y"))],
        ..Default::default()
    };
    assert!(b.apply(&twice).unwrap_err().contains("twice"));
    let moved = VersionEdit {
        deleted_files: vec![(1, 1)],
        new_files: vec![(2, table(1, "a", "b"))],
        ..Default::default()
    };
    b.apply(&moved).unwrap();
    let v = b.build().unwrap();
    assert_eq!((v.num_files(1), v.num_files(2)), (0, 1));
}
