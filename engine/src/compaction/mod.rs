//! Leveled compaction: choosing what to merge ([`picker`]) and merging it ([`job`]).

pub(crate) mod job;
pub(crate) mod picker;
