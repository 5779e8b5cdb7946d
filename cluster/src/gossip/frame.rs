//! The envelope around every gossip packet:
//!
//! ```text
//! packet := "KVG1" flags:u8 cluster-len:u8 cluster-id [mac:32 if flags&1] chitchat-message
//! mac    := HMAC-SHA256(secret, "kvd-gossip-v1" || flags || cluster-len || cluster-id || message)
//! ```
//!
//! A receiver with a secret drops packets without a MAC or with a wrong one; one without
//! a secret drops packets that carry one (the sender's cluster is configured with a
//! secret this node lacks); once both sides know their cluster id, packets of another
//! cluster are dropped. Every drop is counted. A replayed packet carries only gossip
//! state the receiver already has (chitchat's versions only grow), so no freshness
//! check is needed here.

use hmac::{Hmac, Mac};
use parking_lot::RwLock;
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};

type HmacSha256 = Hmac<Sha256>;

const MAGIC: &[u8; 4] = b"KVG1";
const HAS_MAC: u8 = 1;
const MAC_LEN: usize = 32;

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not a kvd gossip packet, or truncated, or an unreadable gossip message.
    Malformed,
    /// No MAC while this node has a secret.
    MissingMac,
    /// A MAC that does not match this node's secret.
    BadMac,
    /// A MAC while this node has no secret.
    UnexpectedMac,
    /// Another cluster's packet.
    OtherCluster,
}

/// The secret and cluster id every packet is sealed and checked with. The cluster id can
/// be learned after start (bootstrap).
pub struct GossipKey {
    secret: Option<Vec<u8>>,
    cluster_id: RwLock<Option<String>>,
}

impl GossipKey {
    /// A key; `secret` `None` (or empty) disables MACs.
    pub fn new(secret: Option<&[u8]>, cluster_id: Option<String>) -> GossipKey {
        GossipKey {
            secret: secret.filter(|s| !s.is_empty()).map(<[u8]>::to_vec),
            cluster_id: RwLock::new(cluster_id.filter(|c| c.len() <= u8::MAX as usize)),
        }
    }

    /// Records the cluster id (ids longer than 255 bytes are not ids kvd makes and are
    /// ignored).
    pub fn set_cluster_id(&self, id: String) {
        if id.len() <= u8::MAX as usize {
            *self.cluster_id.write() = Some(id);
        }
    }

    /// The cluster id, once known.
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id.read().clone()
    }

    fn mac(secret: &[u8], header: &[u8], message: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length: new_from_slice cannot fail.
        let mut m = match HmacSha256::new_from_slice(secret) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC-SHA256 accepts keys of every length"),
        };
        m.update(b"kvd-gossip-v1");
        m.update(header);
        m.update(message);
        m
    }

    /// Seals `message` into `out` (cleared first).
    pub fn seal(&self, message: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(MAGIC);
        let flags = if self.secret.is_some() { HAS_MAC } else { 0 };
        let cluster = self.cluster_id();
        let cluster = cluster.as_deref().unwrap_or("").as_bytes();
        let header_start = out.len();
        out.push(flags);
        out.push(cluster.len() as u8);
        out.extend_from_slice(cluster);
        if let Some(secret) = &self.secret {
            let mac = Self::mac(secret, &out[header_start..], message).finalize();
            out.extend_from_slice(&mac.into_bytes());
        }
        out.extend_from_slice(message);
    }

    /// Checks a packet and returns the gossip message inside.
    pub fn open<'a>(&self, packet: &'a [u8]) -> Result<&'a [u8], DropReason> {
        let rest = packet.strip_prefix(MAGIC).ok_or(DropReason::Malformed)?;
        let (&flags, rest) = rest.split_first().ok_or(DropReason::Malformed)?;
        let (&len, rest) = rest.split_first().ok_or(DropReason::Malformed)?;
        let header_len = 2 + len as usize;
        let cluster = rest.get(..len as usize).ok_or(DropReason::Malformed)?;
        let rest = &rest[len as usize..];
        let header = &packet[MAGIC.len()..MAGIC.len() + header_len];
        let message = match (&self.secret, flags & HAS_MAC != 0) {
            (Some(_), false) => return Err(DropReason::MissingMac),
            (None, true) => return Err(DropReason::UnexpectedMac),
            (None, false) => rest,
            (Some(secret), true) => {
                let mac = rest.get(..MAC_LEN).ok_or(DropReason::Malformed)?;
                let message = &rest[MAC_LEN..];
                Self::mac(secret, header, message)
                    .verify_slice(mac)
                    .map_err(|_| DropReason::BadMac)?;
                message
            }
        };
        if !cluster.is_empty() {
            if let Some(ours) = self.cluster_id.read().as_deref() {
                if ours.as_bytes() != cluster {
                    return Err(DropReason::OtherCluster);
                }
            }
        }
        Ok(message)
    }
}

/// Gossip traffic counters.
#[derive(Debug, Default)]
pub struct GossipStats {
    /// Packets accepted.
    pub received: AtomicU64,
    /// Packets sent.
    pub sent: AtomicU64,
    /// Packets dropped as malformed.
    pub dropped_malformed: AtomicU64,
    /// Packets dropped for a missing, wrong or unexpected MAC.
    pub dropped_unauthenticated: AtomicU64,
    /// Packets dropped as another cluster's.
    pub dropped_other_cluster: AtomicU64,
    /// Messages not sent because they would not fit one datagram once sealed.
    pub dropped_oversize: AtomicU64,
}

impl GossipStats {
    /// Counts a dropped packet.
    pub fn count_drop(&self, why: DropReason) {
        let counter = match why {
            DropReason::Malformed => &self.dropped_malformed,
            DropReason::MissingMac | DropReason::BadMac | DropReason::UnexpectedMac => {
                &self.dropped_unauthenticated
            }
            DropReason::OtherCluster => &self.dropped_other_cluster,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sealed(key: &GossipKey, msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        key.seal(msg, &mut out);
        out
    }

    #[test]
    fn refusals() {
        let with = GossipKey::new(Some(b"s"), Some("c1".into()));
        let other_secret = GossipKey::new(Some(b"t"), Some("c1".into()));
        let without = GossipKey::new(None, Some("c1".into()));
        let other_cluster = GossipKey::new(Some(b"s"), Some("c2".into()));
        let newcomer = GossipKey::new(Some(b"s"), None);
        let p = sealed(&with, b"hello");
        assert_eq!(with.open(&p), Ok(&b"hello"[..]));
        assert_eq!(other_secret.open(&p), Err(DropReason::BadMac));
        assert_eq!(without.open(&p), Err(DropReason::UnexpectedMac));
        assert_eq!(
            with.open(&sealed(&without, b"x")),
            Err(DropReason::MissingMac)
        );
        assert_eq!(other_cluster.open(&p), Err(DropReason::OtherCluster));
        assert_eq!(newcomer.open(&p), Ok(&b"hello"[..]));
        assert_eq!(with.open(&sealed(&newcomer, b"y")), Ok(&b"y"[..]));
        assert_eq!(with.open(b"junk"), Err(DropReason::Malformed));
    }

    #[test]
    fn the_mac_covers_the_cluster_id() {
        let a = GossipKey::new(Some(b"s"), Some("c1".into()));
        let mut p = sealed(&a, b"m");
        // Rewrite the cluster id to another of the same length.
        p[7] = b'2';
        let c2 = GossipKey::new(Some(b"s"), Some("c2".into()));
        assert_eq!(c2.open(&p), Err(DropReason::BadMac));
    }

    proptest! {
        #[test]
        fn any_damage_is_dropped(msg in proptest::collection::vec(any::<u8>(), 0..64),
                                 at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = GossipKey::new(Some(b"secret"), Some("c".into()));
            let mut p = sealed(&k, &msg);
            let i = at.index(p.len());
            p[i] ^= 1 << bit;
            prop_assert!(k.open(&p).is_err());
        }

        #[test]
        fn truncation_never_panics(msg in proptest::collection::vec(any::<u8>(), 0..64),
                                   cut in any::<prop::sample::Index>()) {
            let k = GossipKey::new(Some(b"secret"), None);
            let p = sealed(&k, &msg);
            let n = cut.index(p.len());
            prop_assert!(k.open(&p[..n]).is_err());
        }
    }
}
