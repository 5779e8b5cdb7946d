//! Layout tags on replica requests (docs/cluster-protocol.md, "Layout tags"; Garage's
//! model). Every Write, Read, Prepare and Accept a node sends carries the layout version
//! it holds when the request leaves; a replica holding a newer layout refuses it, so a
//! coordinator that missed a layout change cannot write where the new owners will not
//! look: it fetches the newer layout and retries under the new placement once
//! (coordinator/layout_retry.rs). A replica that sees a newer tag than its own serves
//! the request and fetches the sender's layout.
//!
//! Untagged requests (tag 0, from a build older than tags) are always served and
//! counted: refusing them would stop an old-build node's coordinators and its hint
//! replay and anti-entropy for the length of any layout change, and an old-build node
//! is still bounded by the layout acknowledgement every build takes part in (the count
//! tells an operator when the last old build is gone).

use std::sync::atomic::{AtomicU64, Ordering};

/// The gRPC metadata key that carries the refusing replica's layout version in a
/// stale-layout refusal (status `ABORTED`), as decimal digits.
pub const LAYOUT_VERSION_HEADER: &str = "kvd-layout-version";

/// This node's layout version as its requests carry it, and what the replica side saw.
/// One per node, shared by its bus clients (sending) and its bus server (checking).
#[derive(Debug, Default)]
pub struct LayoutTag {
    current: AtomicU64,
    refused: AtomicU64,
    untagged: AtomicU64,
    newer_seen: AtomicU64,
    /// The highest version a fetch from a sender was started for: one fetch per
    /// version, however many requests carry it.
    pull_started: AtomicU64,
}

/// What a replica does with a request carrying a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Serve it.
    Serve,
    /// Serve it, and fetch the sender's layout (version given): it is newer than ours.
    ServeAndPull(u64),
    /// Refuse it: this replica holds the newer layout version given.
    Refuse(u64),
}

/// Counters of the replica side, for CLUSTER INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayoutTagStats {
    /// The version this node tags its requests with.
    pub current: u64,
    /// Requests refused because they carried an older layout version.
    pub refused: u64,
    /// Untagged requests served (peers running a build from before tags).
    pub untagged: u64,
    /// Requests that carried a newer layout version than this node's.
    pub newer_seen: u64,
}

impl LayoutTag {
    /// The version this node's requests carry (0 until it has a layout).
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    /// Sets the version this node holds (when it installs a layout); never lowers it.
    pub fn set(&self, version: u64) {
        self.current.fetch_max(version, Ordering::AcqRel);
    }

    /// The newest layout version this node knows of: the one it holds, or a newer one
    /// a request it served carried (marked before that request was served).
    pub fn newest_known(&self) -> u64 {
        self.current()
            .max(self.pull_started.load(Ordering::Acquire))
    }

    /// What to do with a request tagged `tag`, counted.
    pub fn admit(&self, tag: u64) -> Admission {
        let mine = self.current();
        if tag == 0 {
            self.untagged.fetch_add(1, Ordering::Relaxed);
            return Admission::Serve;
        }
        if tag < mine {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Admission::Refuse(mine);
        }
        if tag > mine {
            self.newer_seen.fetch_add(1, Ordering::Relaxed);
            if self.pull_started.fetch_max(tag, Ordering::AcqRel) < tag {
                return Admission::ServeAndPull(tag);
            }
        }
        Admission::Serve
    }

    /// Counters.
    pub fn stats(&self) -> LayoutTagStats {
        LayoutTagStats {
            current: self.current(),
            refused: self.refused.load(Ordering::Relaxed),
            untagged: self.untagged.load(Ordering::Relaxed),
            newer_seen: self.newer_seen.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_tags_are_refused_newer_ones_pulled_once_untagged_ones_counted() {
        let tag = LayoutTag::default();
        tag.set(2);
        assert_eq!(tag.admit(1), Admission::Refuse(2));
        assert_eq!(tag.admit(2), Admission::Serve);
        assert_eq!(tag.admit(0), Admission::Serve);
        assert_eq!(tag.newest_known(), 2);
        assert_eq!(tag.admit(3), Admission::ServeAndPull(3));
        assert_eq!(tag.admit(3), Admission::Serve, "one fetch per version");
        assert_eq!(tag.admit(4), Admission::ServeAndPull(4));
        assert_eq!(
            tag.newest_known(),
            4,
            "seen on a request, not installed yet"
        );
        tag.set(1);
        assert_eq!(tag.current(), 2, "a tag never goes back");
        let s = tag.stats();
        assert_eq!((s.refused, s.untagged, s.newer_seen), (1, 1, 3));
    }
}
