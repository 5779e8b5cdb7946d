//! Version edits, versions and the MANIFEST that records them. Spec: docs/format/manifest.md.
//!
//! The set of live SSTables per level changes only through [`VersionEdit`]s appended to
//! the MANIFEST, a log in the WAL record format ([`crate::wal`]). `CURRENT` names the
//! live MANIFEST and is replaced atomically ([`set_current`]). [`VersionSet`] owns the
//! current [`Version`], the counters (next file number, last sequence, log number) and
//! the open MANIFEST.

mod builder;
mod current;
mod edit;
mod set;
mod version;

pub use builder::VersionBuilder;
pub use current::{read_current, set_current};
pub use edit::{FileMeta, Tag, VersionEdit};
pub use set::{VersionSet, MANIFEST_ROLLOVER_BYTES};
pub use version::Version;
