//! chitchat's UDP transport, with every packet sealed and checked by [`GossipKey`]. The
//! socket is bound before chitchat starts, so the caller learns the real port (and bind
//! errors) first.

use super::frame::{GossipKey, GossipStats};
use chitchat::transport::{Socket, Transport};
use chitchat::{ChitchatMessage, Deserializable, Serializable};
use parking_lot::Mutex;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The largest UDP payload (IPv4). chitchat fills messages up to it; the few dozen bytes
/// of our envelope could push the largest over, and those are counted and not sent
/// (kvd's gossip state is a handful of short keys per node, far below this).
const MAX_DATAGRAM: usize = 65_507;

/// A transport over one pre-bound UDP socket.
pub(crate) struct SealedUdpTransport {
    socket: Mutex<Option<tokio::net::UdpSocket>>,
    key: Arc<GossipKey>,
    stats: Arc<GossipStats>,
}

impl SealedUdpTransport {
    pub(crate) fn new(
        socket: tokio::net::UdpSocket,
        key: Arc<GossipKey>,
        stats: Arc<GossipStats>,
    ) -> SealedUdpTransport {
        SealedUdpTransport {
            socket: Mutex::new(Some(socket)),
            key,
            stats,
        }
    }
}

#[async_trait::async_trait]
impl Transport for SealedUdpTransport {
    async fn open(&self, _listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let socket = self
            .socket
            .lock()
            .take()
            .ok_or_else(|| anyhow::anyhow!("gossip socket already opened"))?;
        Ok(Box::new(SealedSocket {
            socket,
            key: self.key.clone(),
            stats: self.stats.clone(),
            message: Vec::new(),
            packet: Vec::with_capacity(MAX_DATAGRAM),
            recv: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
        }))
    }
}

struct SealedSocket {
    socket: tokio::net::UdpSocket,
    key: Arc<GossipKey>,
    stats: Arc<GossipStats>,
    message: Vec<u8>,
    packet: Vec<u8>,
    recv: Box<[u8]>,
}

/// Errors a later packet can recover from (an ICMP port unreachable from a stopped
/// peer surfaces as ConnectionRefused on the next socket call).
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::OutOfMemory
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::Interrupted
    )
}

#[async_trait::async_trait]
impl Socket for SealedSocket {
    async fn send(&mut self, to: SocketAddr, msg: ChitchatMessage) -> anyhow::Result<()> {
        self.message.clear();
        msg.serialize(&mut self.message);
        self.key.seal(&self.message, &mut self.packet);
        if self.packet.len() > MAX_DATAGRAM {
            self.stats.dropped_oversize.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        match self.socket.send_to(&self.packet, to).await {
            Ok(_) => {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            // A peer that is gone (or a route that is down) must not stop gossip with
            // the others: chitchat treats a send error as a broken transport.
            Err(e) => {
                tracing::debug!(%to, error = %e, "gossip send failed");
                Ok(())
            }
        }
    }

    async fn recv(&mut self) -> anyhow::Result<(SocketAddr, ChitchatMessage)> {
        loop {
            let (n, from) = match self.socket.recv_from(&mut self.recv).await {
                Ok(r) => r,
                Err(e) if is_transient(&e) => continue,
                Err(e) => return Err(anyhow::Error::new(e).context("gossip socket failed")),
            };
            let mut message = match self.key.open(&self.recv[..n]) {
                Ok(m) => m,
                Err(why) => {
                    tracing::debug!(%from, ?why, "gossip packet dropped");
                    self.stats.count_drop(why);
                    continue;
                }
            };
            match ChitchatMessage::deserialize(&mut message) {
                Ok(msg) => {
                    self.stats.received.fetch_add(1, Ordering::Relaxed);
                    return Ok((from, msg));
                }
                Err(_) => self.stats.count_drop(super::DropReason::Malformed),
            }
        }
    }
}
