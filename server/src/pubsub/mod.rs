//! Pub/sub (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, PUBLISH, PUBSUB) and client-side caching
//! (CLIENT TRACKING) with Redis 7's semantics (docs/pubsub.md).
//!
//! Both are asynchronous data for a connection: another connection's PUBLISH or write
//! produces a message for it. Each connection has a [`Mailbox`] (in its `ClientInfo`)
//! that producers append to without waiting; the connection writes what is queued
//! between commands, or as soon as it is woken while idle. Slow readers are bounded by
//! `client-output-buffer-limit` (the `pubsub` class while subscribed).

pub mod hub;
pub mod mailbox;
pub mod tracking;

pub use hub::{Hub, Kind, Subscriptions};
pub use mailbox::{Mailbox, Push};

use crate::commands::table::{CommandSpec, READONLY};
use crate::state::{Client, Shared};
use bytes::{Bytes, BytesMut};

/// Pub/sub and tracking state of one connection.
#[derive(Debug, Default)]
pub struct ClientPubSub {
    /// What it is subscribed to.
    pub subs: Subscriptions,
    /// CLIENT TRACKING is on.
    pub tracking: bool,
    /// CLIENT CACHING yes|no was given for the next command.
    pub caching: bool,
}

/// The connection ends or RESETs: every subscription and tracking go.
pub fn leave(srv: &Shared, client: &mut Client) {
    srv.pubsub
        .unsubscribe_all(&mut client.pubsub.subs, &client.info);
    if client.pubsub.tracking {
        srv.store.events.tracking.disable(client.info.id);
    }
    client.pubsub.tracking = false;
    client.pubsub.caching = false;
}

/// After a command ran (inside EXEC too): a tracking client's reads are remembered.
pub fn note_reads(srv: &Shared, client: &Client, spec: &CommandSpec, args: &[Bytes]) {
    if client.pubsub.tracking && spec.has(READONLY) {
        let keys = spec.keys(args);
        srv.store
            .events
            .tracking
            .remember(client.info.id, keys.into_iter(), client.pubsub.caching);
    }
}

/// After a top-level command: the reads are remembered, and CLIENT CACHING applies to
/// one command only (outside MULTI; any CLIENT subcommand keeps it, as in Redis).
pub fn after_command(srv: &Shared, client: &mut Client, spec: &CommandSpec, args: &[Bytes]) {
    if !client.pubsub.tracking {
        return;
    }
    note_reads(srv, client, spec, args);
    if client.multi.is_none() && !args[0].eq_ignore_ascii_case(b"client") {
        client.pubsub.caching = false;
    }
}

/// Messages taken from the mailbox per write, so that what the socket has not taken yet
/// stays in the mailbox where the output buffer limit counts it.
pub const DRAIN_BYTES: usize = 64 * 1024;

/// Appends up to about `max` bytes of queued messages to `out`, encoded for the client's
/// protocol.
pub fn drain(client: &Client, out: &mut BytesMut, max: usize) {
    if !client.info.mailbox.has_pending() {
        return;
    }
    for p in client.info.mailbox.take(max) {
        p.to_reply(client.resp3).encode(out, client.resp3);
    }
}

/// Queued messages as replies, to put ahead of a (un)subscribe confirmation so that the
/// client sees them in the order they happened.
pub fn pending_replies(client: &Client) -> Vec<crate::protocol::Reply> {
    if !client.info.mailbox.has_pending() {
        return Vec::new();
    }
    client
        .info
        .mailbox
        .take(usize::MAX)
        .iter()
        .map(|p| p.to_reply(client.resp3))
        .collect()
}
