//! K-way merge of sorted internal iterators with a binary heap of child indexes.
//! Children hold disjoint-or-overlapping ranges; equal internal keys never occur across
//! children because sequence numbers are unique.

use super::InternalIterator;
use crate::error::Result;
use crate::key::compare_internal_keys;
use std::cmp::Ordering;

/// Merges children into one sorted stream.
pub struct MergingIterator {
    children: Vec<Box<dyn InternalIterator>>,
    /// Min-heap (by current key) of indexes of valid children.
    heap: Vec<usize>,
}

impl MergingIterator {
    /// A merge of `children`; call a positioning method before reading.
    pub fn new(children: Vec<Box<dyn InternalIterator>>) -> Self {
        MergingIterator {
            children,
            heap: Vec::new(),
        }
    }

    fn less(&self, a: usize, b: usize) -> bool {
        compare_internal_keys(self.children[a].key(), self.children[b].key()) == Ordering::Less
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let l = 2 * i + 1;
            let r = l + 1;
            let mut smallest = i;
            if l < n && self.less(self.heap[l], self.heap[smallest]) {
                smallest = l;
            }
            if r < n && self.less(self.heap[r], self.heap[smallest]) {
                smallest = r;
            }
            if smallest == i {
                return;
            }
            self.heap.swap(i, smallest);
            i = smallest;
        }
    }

    fn rebuild(&mut self) {
        self.heap = (0..self.children.len())
            .filter(|&i| self.children[i].valid())
            .collect();
        for i in (0..self.heap.len() / 2).rev() {
            self.sift_down(i);
        }
    }
}

impl InternalIterator for MergingIterator {
    fn valid(&self) -> bool {
        !self.heap.is_empty()
    }

    fn seek_to_first(&mut self) {
        for c in &mut self.children {
            c.seek_to_first();
        }
        self.rebuild();
    }

    fn seek(&mut self, target: &[u8]) {
        for c in &mut self.children {
            c.seek(target);
        }
        self.rebuild();
    }

    fn next(&mut self) {
        let top = self.heap[0];
        self.children[top].next();
        if !self.children[top].valid() {
            let last = self.heap.len() - 1;
            self.heap.swap(0, last);
            self.heap.pop();
        }
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
    }

    fn key(&self) -> &[u8] {
        self.children[self.heap[0]].key()
    }

    fn value(&self) -> &[u8] {
        self.children[self.heap[0]].value()
    }

    fn status(&self) -> Result<()> {
        for c in &self.children {
            c.status()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::VecIterator;
    use crate::key::{make_internal_key, ValueKind};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn merge_equals_sorted_union(
            sources in proptest::collection::vec(
                proptest::collection::btree_set(any::<u16>(), 0..40), 0..5)
        ) {
            let mut seq = 0u64;
            let mut all = Vec::new();
            let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
            for keys in &sources {
                let mut entries = Vec::new();
                for k in keys {
                    seq += 1;
                    let ik = make_internal_key(&k.to_be_bytes(), seq, ValueKind::Put);
                    entries.push((ik.clone(), seq.to_le_bytes().to_vec()));
                    all.push(ik);
                }
                entries.sort_by(|a, b| compare_internal_keys(&a.0, &b.0));
                children.push(Box::new(VecIterator::new(entries)));
            }
            all.sort_by(|a, b| compare_internal_keys(a, b));
            let mut m = MergingIterator::new(children);
            m.seek_to_first();
            let mut got = Vec::new();
            while m.valid() {
                got.push(m.key().to_vec());
                m.next();
            }
            prop_assert_eq!(&got, &all);
            if let Some(mid) = all.get(all.len() / 2) {
                m.seek(mid);
                prop_assert!(m.valid());
                prop_assert_eq!(m.key(), &mid[..]);
            }
        }
    }
}
