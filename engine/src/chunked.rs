//! A list that grows in fixed-size chunks.
//!
//! Why not a `Vec`: a `Vec` that grows by doubling holds up to twice the memory its
//! entries need and copies all of them at each doubling. The engine keeps two lists
//! that grow to hundreds of thousands of entries while other work waits or memory is
//! tight: the memtable's queue of unordered nodes (pushed under the writer lock, so a
//! doubling copied megabytes while every writer waited) and a table builder's filter
//! hashes (one per key of a 64 MiB table, 4.4 MiB that a doubling made 8 MiB at the
//! peak of a compaction: docs/performance.md, "A table's filter hashes in chunks").
//! Here a push never moves the entries before it, and at most one chunk is slack.

/// Entries per chunk: 64 KiB of 8-byte entries, 128 KiB of 16-byte ones.
pub(crate) const CHUNK: usize = 8192;

/// An append-only list of `Copy` entries in chunks of [`CHUNK`].
#[derive(Debug)]
pub(crate) struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Copy> Chunked<T> {
    pub(crate) fn push(&mut self, entry: T) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(entry),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(entry);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The entries in the order they were pushed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.chunks.iter().flatten().copied()
    }

    /// All entries in one vector (allocated by the caller's thread, so a list taken
    /// out from under a lock is gathered outside it).
    pub(crate) fn into_vec(self) -> Vec<T> {
        let mut all = Vec::with_capacity(self.len);
        for chunk in self.chunks {
            all.extend_from_slice(&chunk);
        }
        all
    }
}

impl<T: Copy> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(entries: I) -> Self {
        let mut list = Chunked::default();
        for entry in entries {
            list.push(entry);
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_count_across_chunks() {
        let n = 2 * CHUNK + 3;
        let list: Chunked<usize> = (0..n).collect();
        assert_eq!(list.len(), n);
        assert_eq!(list.chunks.len(), 3);
        assert!(list.iter().eq(0..n));
        assert_eq!(list.into_vec(), (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_chunk_is_never_grown() {
        let list: Chunked<u64> = (0..CHUNK as u64 + 1).collect();
        assert_eq!(list.chunks[0].capacity(), CHUNK);
        assert_eq!(list.chunks[1].len(), 1);
    }

    #[test]
    fn empty_list() {
        let list = Chunked::<u8>::default();
        assert_eq!(list.len(), 0);
        assert_eq!(list.iter().count(), 0);
        assert!(list.into_vec().is_empty());
    }
}
