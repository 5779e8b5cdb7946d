//! Who may talk on the bus. With a cluster secret, every request carries the sender's
//! node id, its cluster id, a timestamp and an HMAC-SHA256 over them (and the method)
//! keyed by the secret; the secret itself never travels. Replies carry an HMAC over the
//! request's MAC, so the caller knows the answer came from a holder of the secret too.
//! The MAC authenticates the peer, not the message body: integrity and confidentiality
//! of payloads need TLS on the bus (docs/cluster-protocol.md).

use crate::NodeId;
use hmac::{Hmac, Mac};
use parking_lot::RwLock;
use sha2::Sha256;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a MAC (HMAC-SHA256).
pub const MAC_LEN: usize = 32;

/// How far a request's timestamp may be from the receiver's clock: older (or newer)
/// requests are refused as replays. Wider than any clock skew a node tolerates.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(30);

/// Why a request (or reply) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// This node has a secret and the peer sent no MAC.
    #[error("peer sent no cluster MAC: every node needs the same --cluster-secret")]
    MissingMac,
    /// The MAC does not match: another secret, or tampering.
    #[error("wrong cluster MAC: the peer's --cluster-secret differs from this node's")]
    BadMac,
    /// The peer sent a MAC but this node has no secret.
    #[error("peer sent a cluster MAC but this node has no --cluster-secret")]
    UnexpectedMac,
    /// The timestamp is outside the replay window.
    #[error(
        "request timestamp {skew_ms} ms away from this node's clock (replay window {window_ms} ms)"
    )]
    Stale {
        /// Request time minus local time.
        skew_ms: i64,
        /// The allowed distance.
        window_ms: i64,
    },
    /// The peer belongs to another cluster.
    #[error("peer belongs to cluster {theirs}, this node to cluster {ours}")]
    OtherCluster {
        /// This node's cluster id.
        ours: String,
        /// The peer's.
        theirs: String,
    },
    /// The credentials could not be read.
    #[error("malformed bus credentials: {0}")]
    Malformed(String),
}

/// What a request carries to identify and authenticate its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The sender.
    pub node: NodeId,
    /// The sender's cluster id, once it has one.
    pub cluster_id: Option<String>,
    /// The sender's wall clock when it signed, Unix milliseconds.
    pub ts_ms: i64,
    /// HMAC over the fields above and the method; `None` without a secret.
    pub mac: Option<[u8; MAC_LEN]>,
}

/// This node's bus identity and secret, shared by its server and its clients. Cheap to
/// clone; the cluster id can be learned after start (bootstrap) and is then seen by all
/// clones.
#[derive(Clone)]
pub struct BusAuth {
    inner: Arc<Inner>,
}

struct Inner {
    node: NodeId,
    secret: Option<Vec<u8>>,
    cluster_id: RwLock<Option<String>>,
}

impl std::fmt::Debug for BusAuth {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusAuth")
            .field("node", &self.inner.node)
            .field("secret", &self.inner.secret.as_ref().map(|_| "<set>"))
            .field("cluster_id", &*self.inner.cluster_id.read())
            .finish()
    }
}

impl BusAuth {
    /// This node's identity; `secret` `None` (or empty) disables MACs.
    pub fn new(node: NodeId, secret: Option<&[u8]>, cluster_id: Option<String>) -> BusAuth {
        BusAuth {
            inner: Arc::new(Inner {
                node,
                secret: secret.filter(|s| !s.is_empty()).map(<[u8]>::to_vec),
                cluster_id: RwLock::new(cluster_id),
            }),
        }
    }

    /// This node.
    pub fn node(&self) -> NodeId {
        self.inner.node
    }

    /// Whether requests are authenticated.
    pub fn has_secret(&self) -> bool {
        self.inner.secret.is_some()
    }

    /// The cluster id, once known.
    pub fn cluster_id(&self) -> Option<String> {
        self.inner.cluster_id.read().clone()
    }

    /// Records the cluster id (at bootstrap, or when joining): from now on peers of
    /// another cluster are refused.
    pub fn set_cluster_id(&self, id: String) {
        *self.inner.cluster_id.write() = Some(id);
    }

    /// Signs a request for `method` at `now_ms`.
    pub fn sign(&self, method: &str, now_ms: i64) -> Credentials {
        let cluster_id = self.cluster_id();
        let mac = self.inner.secret.as_ref().map(|secret| {
            request_mac(
                secret,
                method,
                self.inner.node,
                cluster_id.as_deref(),
                now_ms,
            )
        });
        Credentials {
            node: self.inner.node,
            cluster_id,
            ts_ms: now_ms,
            mac,
        }
    }

    /// Checks a request for `method` received at `now_ms`.
    pub fn verify(&self, method: &str, c: &Credentials, now_ms: i64) -> Result<(), AuthError> {
        match (&self.inner.secret, &c.mac) {
            (Some(_), None) => return Err(AuthError::MissingMac),
            (None, Some(_)) => return Err(AuthError::UnexpectedMac),
            (None, None) => {}
            (Some(secret), Some(mac)) => {
                let m = request_hmac(secret, method, c.node, c.cluster_id.as_deref(), c.ts_ms);
                // verify_slice compares in constant time.
                if m.verify_slice(mac).is_err() {
                    return Err(AuthError::BadMac);
                }
                // Freshness only means something once the timestamp is authenticated.
                let skew_ms = c.ts_ms.saturating_sub(now_ms);
                let window_ms = REPLAY_WINDOW.as_millis() as i64;
                if skew_ms.abs() > window_ms {
                    return Err(AuthError::Stale { skew_ms, window_ms });
                }
            }
        }
        if let (Some(ours), Some(theirs)) = (self.cluster_id(), &c.cluster_id) {
            if &ours != theirs {
                return Err(AuthError::OtherCluster {
                    ours,
                    theirs: theirs.clone(),
                });
            }
        }
        Ok(())
    }

    /// The MAC a server puts on its reply to a request signed with `request_mac`.
    pub fn reply_mac(&self, request_mac: &[u8; MAC_LEN]) -> Option<[u8; MAC_LEN]> {
        let secret = self.inner.secret.as_ref()?;
        let mut m = keyed(secret);
        field(&mut m, b"kvd-bus-reply-v1");
        field(&mut m, request_mac);
        Some(m.finalize().into_bytes().into())
    }

    /// Checks a reply's MAC against the request's credentials.
    pub fn verify_reply(
        &self,
        request: &Credentials,
        reply_mac: Option<&[u8]>,
    ) -> Result<(), AuthError> {
        let (Some(secret), Some(req_mac)) = (&self.inner.secret, &request.mac) else {
            return Ok(());
        };
        let got = reply_mac.ok_or(AuthError::MissingMac)?;
        let mut m = keyed(secret);
        field(&mut m, b"kvd-bus-reply-v1");
        field(&mut m, req_mac);
        m.verify_slice(got).map_err(|_| AuthError::BadMac)
    }
}

/// HMAC accepts keys of any length, so this never happens; a function keeps the
/// impossible branch out of the way.
fn unreachable_hmac() -> HmacSha256 {
    unreachable!("HMAC-SHA256 accepts keys of every length")
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable_hmac())
}

/// Length-prefixed, so no two field lists hash the same bytes.
fn field(m: &mut HmacSha256, bytes: &[u8]) {
    m.update(&(bytes.len() as u32).to_be_bytes());
    m.update(bytes);
}

fn request_hmac(
    secret: &[u8],
    method: &str,
    node: NodeId,
    cluster_id: Option<&str>,
    ts_ms: i64,
) -> HmacSha256 {
    let mut m = keyed(secret);
    field(&mut m, b"kvd-bus-v1");
    field(&mut m, method.as_bytes());
    field(&mut m, &node.0.to_be_bytes());
    field(&mut m, cluster_id.unwrap_or("").as_bytes());
    field(&mut m, &ts_ms.to_be_bytes());
    m
}

fn request_mac(
    secret: &[u8],
    method: &str,
    node: NodeId,
    cluster_id: Option<&str>,
    ts_ms: i64,
) -> [u8; MAC_LEN] {
    request_hmac(secret, method, node, cluster_id, ts_ms)
        .finalize()
        .into_bytes()
        .into()
}

/// Refuses to expose the bus beyond loopback without a secret, as protected mode
/// refuses clients: anyone who reaches an unauthenticated bus can write any key.
pub fn check_exposure(bus_addr: &std::net::SocketAddr, has_secret: bool) -> Result<(), String> {
    if has_secret || bus_addr.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "refusing to listen for cluster peers on {bus_addr} without --cluster-secret: \
         set a secret shared by every node, or bind the cluster bus to loopback"
    ))
}

/// The system wall clock in Unix milliseconds (0 if the clock is before 1970).
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn auth(secret: Option<&[u8]>, cluster: Option<&str>) -> BusAuth {
        BusAuth::new(NodeId(7), secret, cluster.map(String::from))
    }

    #[test]
    fn signed_request_verifies_with_the_same_secret() {
        let a = auth(Some(b"s3cret"), Some("c1"));
        let c = a.sign("Write", NOW);
        assert!(c.mac.is_some());
        assert_eq!(
            auth(Some(b"s3cret"), Some("c1")).verify("Write", &c, NOW + 5),
            Ok(())
        );
    }

    #[test]
    fn mac_covers_every_field() {
        let a = auth(Some(b"s3cret"), Some("c1"));
        let server = auth(Some(b"s3cret"), None);
        let c = a.sign("Write", NOW);
        let mut other_method = c.clone();
        assert_eq!(
            server.verify("Read", &other_method, NOW),
            Err(AuthError::BadMac)
        );
        other_method.node = NodeId(8);
        assert_eq!(
            server.verify("Write", &other_method, NOW),
            Err(AuthError::BadMac)
        );
        let mut other_ts = c.clone();
        other_ts.ts_ms += 1;
        assert_eq!(
            server.verify("Write", &other_ts, NOW),
            Err(AuthError::BadMac)
        );
        let mut other_cluster = c.clone();
        other_cluster.cluster_id = Some("c2".into());
        assert_eq!(
            server.verify("Write", &other_cluster, NOW),
            Err(AuthError::BadMac)
        );
        let mut flipped = c;
        if let Some(m) = flipped.mac.as_mut() {
            m[0] ^= 1;
        }
        assert_eq!(
            server.verify("Write", &flipped, NOW),
            Err(AuthError::BadMac)
        );
    }

    #[test]
    fn refusals() {
        let with = auth(Some(b"s3cret"), None);
        let without = auth(None, None);
        let wrong = auth(Some(b"other"), None);
        assert_eq!(
            with.verify("Ping", &without.sign("Ping", NOW), NOW),
            Err(AuthError::MissingMac)
        );
        assert_eq!(
            without.verify("Ping", &with.sign("Ping", NOW), NOW),
            Err(AuthError::UnexpectedMac)
        );
        assert_eq!(
            with.verify("Ping", &wrong.sign("Ping", NOW), NOW),
            Err(AuthError::BadMac)
        );
        assert_eq!(
            without.verify("Ping", &without.sign("Ping", NOW), NOW),
            Ok(())
        );
        let window = REPLAY_WINDOW.as_millis() as i64;
        let old = with.sign("Ping", NOW - window - 1);
        assert!(matches!(
            with.verify("Ping", &old, NOW),
            Err(AuthError::Stale { .. })
        ));
        let edge = with.sign("Ping", NOW - window);
        assert_eq!(with.verify("Ping", &edge, NOW), Ok(()));
    }

    #[test]
    fn other_cluster_refused_once_both_know_theirs() {
        let mine = auth(Some(b"s"), Some("c1"));
        let theirs = auth(Some(b"s"), Some("c2"));
        let newcomer = auth(Some(b"s"), None);
        assert!(matches!(
            mine.verify("Hello", &theirs.sign("Hello", NOW), NOW),
            Err(AuthError::OtherCluster { .. })
        ));
        // A node not yet bootstrapped may introduce itself, and ask.
        assert_eq!(
            mine.verify("Hello", &newcomer.sign("Hello", NOW), NOW),
            Ok(())
        );
        assert_eq!(
            newcomer.verify("Hello", &mine.sign("Hello", NOW), NOW),
            Ok(())
        );
        // Learning the id later takes effect on every clone.
        let clone = newcomer.clone();
        newcomer.set_cluster_id("c2".into());
        assert!(matches!(
            clone.verify("Hello", &mine.sign("Hello", NOW), NOW),
            Err(AuthError::OtherCluster { .. })
        ));
    }

    #[test]
    fn reply_mac_binds_to_the_request() {
        let a = auth(Some(b"s"), None);
        let req = a.sign("Read", NOW);
        let reply = req.mac.as_ref().and_then(|m| a.reply_mac(m));
        assert_eq!(a.verify_reply(&req, reply.as_ref().map(|m| &m[..])), Ok(()));
        let other = a.sign("Read", NOW + 1);
        assert_eq!(
            a.verify_reply(&other, reply.as_ref().map(|m| &m[..])),
            Err(AuthError::BadMac)
        );
        assert_eq!(a.verify_reply(&req, None), Err(AuthError::MissingMac));
        let forged = auth(Some(b"x"), None).reply_mac(req.mac.as_ref().unwrap());
        assert_eq!(
            a.verify_reply(&req, forged.as_ref().map(|m| &m[..])),
            Err(AuthError::BadMac)
        );
    }

    #[test]
    fn a_non_loopback_bus_needs_a_secret() {
        let lan: std::net::SocketAddr = "10.0.0.5:17001".parse().unwrap();
        let any: std::net::SocketAddr = "0.0.0.0:17001".parse().unwrap();
        let lo: std::net::SocketAddr = "127.0.0.1:17001".parse().unwrap();
        let lo6: std::net::SocketAddr = "[::1]:17001".parse().unwrap();
        assert!(check_exposure(&lan, false)
            .unwrap_err()
            .contains("--cluster-secret"));
        assert!(check_exposure(&any, false).is_err());
        assert!(check_exposure(&lan, true).is_ok());
        assert!(check_exposure(&lo, false).is_ok());
        assert!(check_exposure(&lo6, false).is_ok());
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let s = format!("{:?}", auth(Some(b"topsecret"), None));
        assert!(!s.contains("topsecret"));
    }
}
