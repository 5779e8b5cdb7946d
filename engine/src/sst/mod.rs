//! Sorted string tables: blocks, bloom filter, index, footer, block cache. Spec: docs/format/sstable.md.
