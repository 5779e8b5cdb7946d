//! The global allocator: mimalloc, called the way std's `System` allocator calls malloc.
//!
//! The mimalloc crate's `GlobalAlloc` sends every allocation through `mi_malloc_aligned`,
//! even when the alignment asked for is the 8 or 16 bytes any block has anyway. That
//! entry point's fast path only covers blocks of at most 1 KiB whose free list happens to
//! start aligned; everything else (a task's future, a batch's vector, a growing buffer)
//! takes its generic path, which measured 4-5% of a command's instructions
//! (docs/performance.md, "Allocating through mi_malloc"). mimalloc, like every C
//! `malloc`, aligns a block of 16 bytes or more to 16 (`MI_MAX_ALIGN_SIZE`, asserted in
//! its `alloc.c`) and a smaller one to its power-of-two size class; so a layout whose
//! alignment is at most 16 and at most its size goes to `mi_malloc` and `mi_realloc`,
//! as std's `System` does with glibc, and only larger alignments (tokio's cache-padded
//! task cells) take the aligned entry points.

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// Every block `mi_malloc` returns is aligned to this, when it is at least this large.
const MALLOC_ALIGN: usize = 16;

/// mimalloc as kvd's global allocator.
pub struct Mimalloc;

/// Whether plain `mi_malloc` of `size` bytes is aligned enough for `align`.
#[inline]
fn malloc_aligns(size: usize, align: usize) -> bool {
    align <= MALLOC_ALIGN && align <= size
}

// SAFETY: every pointer handed out comes from mimalloc with at least the layout's size
// and alignment (`malloc_aligns`), and every pointer freed or grown here was handed out
// here; mimalloc frees and reallocates blocks from either entry point alike.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if malloc_aligns(layout.size(), layout.align()) {
            mi::mi_malloc(layout.size()) as *mut u8
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if malloc_aligns(layout.size(), layout.align()) {
            mi::mi_zalloc(layout.size()) as *mut u8
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if malloc_aligns(new_size, layout.align()) {
            mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills `len` bytes at `p` with a pattern of `seed`, or checks them.
    unsafe fn pattern(p: *mut u8, len: usize, seed: u8, check: bool) {
        for i in 0..len {
            let want = seed.wrapping_add(i as u8);
            if check {
                assert_eq!(*p.add(i), want, "byte {i} changed");
            } else {
                *p.add(i) = want;
            }
        }
    }

    #[test]
    fn every_block_has_its_layouts_alignment_through_alloc_zeroing_and_growth() {
        let a = Mimalloc;
        let sizes = (1..=80).chain([127, 128, 129, 1000, 1024, 1025, 4096, 70_000, 300_000]);
        for size in sizes {
            for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size, each block freed once with its own layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc {size} aligned to {align}");
                    pattern(p, size, size as u8, false);
                    for new_size in [size / 2 + 1, size + 1, size * 3] {
                        let grown = a.realloc(p_of(&a, layout, size), layout, new_size);
                        assert_eq!(grown as usize % align, 0, "realloc {size} -> {new_size}");
                        pattern(grown, size.min(new_size), size as u8, true);
                        a.dealloc(grown, Layout::from_size_align(new_size, align).unwrap());
                    }
                    pattern(p, size, size as u8, true);
                    a.dealloc(p, layout);
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(
                        z as usize % align,
                        0,
                        "alloc_zeroed {size} aligned to {align}"
                    );
                    assert!((0..size).all(|i| *z.add(i) == 0), "zeroed {size}");
                    a.dealloc(z, layout);
                }
            }
        }
    }

    /// A new block of `layout` holding the pattern of `size`, to grow or shrink.
    unsafe fn p_of(a: &Mimalloc, layout: Layout, size: usize) -> *mut u8 {
        let p = a.alloc(layout);
        pattern(p, size, size as u8, false);
        p
    }
}
