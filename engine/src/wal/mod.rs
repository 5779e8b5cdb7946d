//! Write-ahead log: LevelDB-style 32 KiB blocks of checksummed fragment records. Spec: docs/format/wal.md.
