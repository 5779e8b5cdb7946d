//! Gossip membership and failure detection: chitchat (scuttlebutt gossip with a
//! phi-accrual failure detector) over UDP on the bus port number (gRPC uses TCP on the
//! same number). Every packet is sealed with the cluster id and, with a secret, an
//! HMAC ([`frame`]); [`Membership`] publishes this node's addresses, cluster id and
//! layout version and serves the [`crate::replica_api::Liveness`] view.

pub mod frame;
pub mod heartbeats;
pub mod membership;
mod transport;

#[cfg(test)]
mod tests;

pub use frame::{DropReason, GossipKey, GossipStats};
pub use membership::{GossipConfig, GossipError, LayoutSeen, Member, Membership};
