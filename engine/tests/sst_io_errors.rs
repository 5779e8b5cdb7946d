//! I/O failures (not corruption) reach the caller as `Error::Io`: a failing read under a
//! table iterator or lookup, and failing writes or fsync under the builder.

use kv_engine::fs::{FaultFs, Fs, MemFs, RandomAccessFile};
use kv_engine::iter::InternalIterator;
use kv_engine::key::{make_internal_key, ValueKind};
use kv_engine::sst::{SstCounters, Table, TableBuilder, TableOptions};
use kv_engine::{Error, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Reads succeed until `fail` is set.
struct FlakyFile {
    inner: Arc<dyn RandomAccessFile>,
    fail: AtomicBool,
}

impl RandomAccessFile for FlakyFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(Error::io(
                "/flaky.sst",
                std::io::Error::other("injected read failure"),
            ));
        }
        self.inner.read_exact_at(offset, buf)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

fn key(i: u32) -> Vec<u8> {
    make_internal_key(format!("k{i:05}").as_bytes(), 1, ValueKind::Put)
}

fn write_table(fs: &dyn Fs, path: &Path) -> Result<()> {
    let mut b = TableBuilder::new(path.into(), fs.create(path)?, TableOptions::default());
    for i in 0..2000 {
        b.add(&key(i), b"value")?;
    }
    b.finish().map(|_| ())
}

#[test]
fn failing_reads_are_io_errors_not_corruption() {
    let fs = MemFs::new();
    let path = Path::new("/flaky.sst");
    write_table(&fs, path).unwrap();
    let file = Arc::new(FlakyFile {
        inner: fs.open(path).unwrap(),
        fail: AtomicBool::new(false),
    });
    let t = Table::open(
        path.into(),
        file.clone(),
        1,
        None,
        Arc::new(SstCounters::default()),
    )
    .unwrap();
    let mut it = t.iter();
    it.seek_to_first();
    assert!(it.valid());
    file.fail.store(true, Ordering::Relaxed);
    while it.valid() {
        it.next();
    }
    assert!(
        matches!(it.status(), Err(Error::Io { .. })),
        "{:?}",
        it.status()
    );
    assert!(matches!(t.get(&key(1500)), Err(Error::Io { .. })));
    file.fail.store(false, Ordering::Relaxed);
    it.seek(&key(1500));
    assert!(
        it.valid() && it.status().is_ok(),
        "a new seek retries after the error"
    );
    assert_eq!(it.key(), &key(1500)[..]);
}

#[test]
fn failing_writes_and_syncs_reach_the_builder_caller() {
    let mem: Arc<dyn Fs> = Arc::new(MemFs::new());
    let (fs, switch) = FaultFs::new(mem);
    switch.fail_writes(true);
    assert!(matches!(
        write_table(&fs, Path::new("/w.sst")),
        Err(Error::Io { .. })
    ));
    switch.heal();
    switch.fail_syncs(true);
    assert!(matches!(
        write_table(&fs, Path::new("/s.sst")),
        Err(Error::Io { .. })
    ));
}
