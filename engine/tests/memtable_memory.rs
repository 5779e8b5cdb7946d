//! A dropped memtable's memory goes back to the system (engine/src/memtable/arena.rs):
//! the process's resident size falls by about the memtable's size when the last
//! reference to it goes, even with other memory still allocated after it.
//!
//! Its own test binary (one process, one test), so no other test allocates or frees
//! while the resident size is read. Linux only: it reads /proc/self/statm.

#![cfg(target_os = "linux")]

use kv_engine::key::ValueKind;
use kv_engine::memtable::Memtable;

/// Resident bytes of this process.
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm's second field: resident pages");
    // SAFETY: sysconf has no memory effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
}

#[test]
fn dropping_a_memtable_returns_its_memory() {
    const TARGET: usize = 64 << 20;
    let memtable = Memtable::new();
    let value = vec![7u8; 100];
    let mut seq = 1;
    while memtable.approximate_bytes() < TARGET {
        let key = format!("key{seq:012}");
        memtable.add(seq, ValueKind::Put, key.as_bytes(), &value);
        seq += 1;
    }
    // Memory allocated after the memtable's and still live when it is dropped: a heap
    // can then not give the memtable's blocks back by shrinking from its top.
    let after: Vec<Box<[u8; 256]>> = (0..1024).map(|_| Box::new([1u8; 256])).collect();
    let full = resident_bytes();
    drop(memtable);
    let dropped = resident_bytes();
    let returned = full.saturating_sub(dropped);
    assert!(
        returned >= TARGET / 2,
        "resident {full} bytes with a {TARGET}-byte memtable, {dropped} after dropping it: \
         only {returned} bytes went back"
    );
    assert_eq!(after.len(), 1024);
}
