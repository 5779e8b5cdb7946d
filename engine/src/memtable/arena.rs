//! A bump allocator for one memtable's entries.
//!
//! Everything a memtable stores lives until the whole memtable is dropped, so its memory
//! is handed out from large blocks and given back all at once: an insert costs a pointer
//! bump instead of a `malloc`, entries written together sit together in memory, and no
//! reader needs a reference count or an epoch to know an entry is still there (RocksDB's
//! `Arena`, LevelDB's `util/arena.cc`).
//!
//! Blocks are mapped from the kernel directly (`mmap`), not taken from the process's
//! allocator, so a flushed memtable's memory goes back to the system when it is dropped.
//! Through glibc's malloc it stayed in the writer thread's arena for the next memtable
//! to reuse, so the process kept two memtables' worth of memory however little of the
//! next one was written (docs/performance.md, "Where the engine's peak RSS goes"). The
//! price is the next memtable's page faults, one per 4 KiB page touched. A block is
//! virtual memory until it is written, so a small memtable costs only the pages it uses.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Bytes of one ordinary block: few mappings per memtable (64 for 64 MiB).
const BLOCK_BYTES: usize = 1 << 20;
/// Allocations larger than this get a block of their own, so a large entry never
/// wastes the rest of a shared block.
const OWN_BLOCK_ABOVE: usize = BLOCK_BYTES / 4;
/// Every allocation is aligned to this (the alignment of the entry headers).
pub(super) const ALIGN: usize = 8;

/// The blocks and the free space left in the current one. Used by one writer at a time
/// (the memtable keeps it behind its writer lock); readers only follow pointers into
/// the blocks, which never move or shrink while the arena lives.
pub(super) struct Arena {
    // Raw mappings rather than boxes: moving a `Box` asserts it is the only pointer
    // to its memory, which the pointers handed out contradict (Miri's Stacked Borrows).
    blocks: Vec<(NonNull<u8>, usize)>,
    next: *mut u8,
    left: usize,
    reserved: usize,
}

// SAFETY: the raw pointer points into `blocks`, which the arena owns; moving the arena
// to another thread moves that ownership with it.
unsafe impl Send for Arena {}

impl Arena {
    pub(super) fn new() -> Arena {
        Arena {
            blocks: Vec::new(),
            next: std::ptr::null_mut(),
            left: 0,
            reserved: 0,
        }
    }

    /// `bytes` of uninitialized memory aligned to [`ALIGN`], valid until the arena is
    /// dropped.
    pub(super) fn alloc(&mut self, bytes: usize) -> NonNull<u8> {
        let bytes = bytes.max(1).next_multiple_of(ALIGN);
        if bytes > OWN_BLOCK_ABOVE {
            return self.new_block(bytes);
        }
        if bytes > self.left {
            self.next = self.new_block(BLOCK_BYTES).as_ptr();
            self.left = BLOCK_BYTES;
        }
        let out = self.next;
        // SAFETY: `bytes <= left`, so the result stays inside the current block.
        self.next = unsafe { self.next.add(bytes) };
        self.left -= bytes;
        // SAFETY: `out` points into a live block, so it is not null.
        unsafe { NonNull::new_unchecked(out) }
    }

    /// Bytes reserved from the system (whole blocks; resident only once written).
    pub(super) fn reserved(&self) -> usize {
        self.reserved
    }

    fn new_block(&mut self, bytes: usize) -> NonNull<u8> {
        let block = map_block(bytes);
        self.blocks.push((block, bytes));
        self.reserved += bytes;
        block
    }
}

/// `bytes` of fresh zeroed memory mapped for this arena alone (page-aligned, so
/// [`ALIGN`]-aligned).
fn map_block(bytes: usize) -> NonNull<u8> {
    // SAFETY: an anonymous private mapping at an address the kernel chooses touches no
    // existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    match NonNull::new(p.cast::<u8>()) {
        Some(block) if p != libc::MAP_FAILED => block,
        // Out of memory (or of mappings), as a failed `alloc` would be.
        _ => alloc::handle_alloc_error(
            Layout::from_size_align(bytes, ALIGN).unwrap_or(Layout::new::<u64>()),
        ),
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for (block, bytes) in self.blocks.drain(..) {
            // SAFETY: mapped in `map_block` with this length, unmapped once; nothing
            // points into it once the arena is dropped (the memtable owns the arena).
            unsafe { libc::munmap(block.as_ptr().cast(), bytes) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_distinct_and_writable() {
        let mut arena = Arena::new();
        let mut spans = Vec::new();
        for size in [
            1usize,
            7,
            8,
            9,
            100,
            4096,
            OWN_BLOCK_ABOVE,
            OWN_BLOCK_ABOVE + 1,
            3,
        ]
        .iter()
        .cycle()
        .take(200)
        {
            let p = arena.alloc(*size);
            assert_eq!(p.as_ptr() as usize % ALIGN, 0);
            // SAFETY: `p` is `size` fresh bytes.
            unsafe { std::ptr::write_bytes(p.as_ptr(), 0xab, *size) };
            spans.push((p.as_ptr() as usize, *size));
        }
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "overlapping allocations {w:?}");
        }
        assert!(arena.reserved() >= spans.iter().map(|s| s.1).sum::<usize>());
    }

    #[test]
    fn a_large_allocation_gets_its_own_block_and_leaves_the_current_one_in_use() {
        let mut arena = Arena::new();
        let a = arena.alloc(16).as_ptr() as usize;
        let before = arena.reserved();
        arena.alloc(1 << 20);
        assert_eq!(arena.reserved(), before + (1 << 20));
        let b = arena.alloc(16).as_ptr() as usize;
        assert_eq!(b, a + 16, "small allocations continue in the shared block");
    }
}
