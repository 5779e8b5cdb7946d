//! A connection's mailbox: pub/sub messages and client-side-caching invalidations that
//! other connections hand to it without ever waiting for it. The connection drains it
//! into its socket between commands (and whenever it is woken while idle).
//!
//! The mailbox is the subscriber's output buffer as far as asynchronous data goes, so
//! `client-output-buffer-limit` applies to it as Redis applies it to a client's output
//! buffer: the `pubsub` class while the client has subscriptions, `normal` otherwise.
//! Passing the hard limit, or staying above the soft limit longer than its seconds,
//! drops what is queued and disconnects the client; a publisher never blocks on a slow
//! subscriber.

use crate::output_limits::{ClassLimit, OutputLimits};
use crate::protocol::Reply;
use crate::state::ClientInfo;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The channel RESP2 clients receive redirected invalidations on (Redis's name).
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// Framing bytes counted per message on top of its payload (array and bulk headers).
const FRAMING: usize = 32;

/// One asynchronous message for a client.
#[derive(Debug, Clone, PartialEq)]
pub enum Push {
    /// `message` (SUBSCRIBE) or `smessage` (SSUBSCRIBE).
    Message {
        /// `message` or `smessage`.
        kind: &'static str,
        /// The channel published to.
        channel: Bytes,
        /// The payload.
        payload: Bytes,
    },
    /// `pmessage` for a PSUBSCRIBE pattern.
    PMessage {
        /// The pattern that matched.
        pattern: Bytes,
        /// The channel published to.
        channel: Bytes,
        /// The payload.
        payload: Bytes,
    },
    /// Keys a tracking client must drop from its cache; `None`: all of them (a flush).
    Invalidate(Option<Vec<Bytes>>),
    /// The client a tracking client redirects to went away (RESP3 only).
    RedirBroken(u64),
}

impl Push {
    /// Bytes this message stands for in the output buffer (close to its encoding).
    pub fn cost(&self) -> usize {
        FRAMING
            + match self {
                Push::Message {
                    channel, payload, ..
                } => channel.len() + payload.len(),
                Push::PMessage {
                    pattern,
                    channel,
                    payload,
                } => pattern.len() + channel.len() + payload.len(),
                Push::Invalidate(Some(keys)) => keys.iter().map(|k| k.len() + 16).sum(),
                Push::Invalidate(None) | Push::RedirBroken(_) => 0,
            }
    }

    /// The message as the client sees it: a RESP3 push, or for RESP2 the array of a
    /// pub/sub message (invalidations then arrive as messages of `__redis__:invalidate`,
    /// which is how Redis redirects them to a RESP2 subscriber).
    pub fn to_reply(&self, resp3: bool) -> Reply {
        let b = |s: &'static str| Reply::bulk(Bytes::from_static(s.as_bytes()));
        match self {
            Push::Message {
                kind,
                channel,
                payload,
            } => Reply::Push(vec![
                b(kind),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(payload.clone()),
            ]),
            Push::PMessage {
                pattern,
                channel,
                payload,
            } => Reply::Push(vec![
                b("pmessage"),
                Reply::Bulk(pattern.clone()),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(payload.clone()),
            ]),
            Push::Invalidate(keys) => {
                let keys = match keys {
                    Some(k) => Reply::Array(k.iter().cloned().map(Reply::Bulk).collect()),
                    None => Reply::Nil,
                };
                if resp3 {
                    Reply::Push(vec![b("invalidate"), keys])
                } else {
                    Reply::Push(vec![
                        b("message"),
                        Reply::bulk(Bytes::from_static(INVALIDATE_CHANNEL)),
                        keys,
                    ])
                }
            }
            Push::RedirBroken(id) => {
                Reply::Push(vec![b("tracking-redir-broken"), Reply::Int(*id as i64)])
            }
        }
    }
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Push>,
    bytes: usize,
    /// When the queue last went above the soft limit (reset when it drops below).
    above_soft_since: Option<Instant>,
    limits: OutputLimits,
}

/// What happened to a message handed to a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queued for the connection.
    Queued,
    /// The connection is closing (or was already cut off): dropped.
    Dropped,
    /// This message passed the output buffer limit: the queue was dropped and the
    /// client must be disconnected.
    Overflowed,
}

/// Per-connection queue of asynchronous messages.
#[derive(Default)]
pub struct Mailbox {
    queue: Mutex<Queue>,
    /// Woken when a message arrives (a stored permit if the connection is busy).
    pub wake: Notify,
    queued: AtomicUsize,
    overflowed: AtomicBool,
    closed: AtomicBool,
    /// Channels subscribed (CLIENT LIST `sub`).
    pub channels: AtomicUsize,
    /// Patterns subscribed (CLIENT LIST `psub`).
    pub patterns: AtomicUsize,
    /// Shard channels subscribed (CLIENT LIST `ssub`).
    pub shard_channels: AtomicUsize,
}

impl Mailbox {
    /// True while the client has any subscription (Redis's CLIENT_PUBSUB flag).
    pub fn subscribed(&self) -> bool {
        self.channels.load(Ordering::Relaxed)
            + self.patterns.load(Ordering::Relaxed)
            + self.shard_channels.load(Ordering::Relaxed)
            > 0
    }

    /// The limits to enforce (the connection refreshes them from the config).
    pub fn set_limits(&self, limits: OutputLimits) {
        self.queue.lock().limits = limits;
    }

    /// True if messages wait.
    pub fn has_pending(&self) -> bool {
        self.queued.load(Ordering::Acquire) > 0
    }

    /// True once a message passed the output buffer limit.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The connection ended: later messages are dropped.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut q = self.queue.lock();
        q.items.clear();
        q.bytes = 0;
        self.queued.store(0, Ordering::Release);
    }

    /// Queues `push`, enforcing the output buffer limit of the client's class.
    pub fn push(&self, push: Push) -> Delivery {
        if self.is_closed() || self.overflowed() {
            return Delivery::Dropped;
        }
        let mut q = self.queue.lock();
        q.bytes += push.cost();
        q.items.push_back(push);
        let limit = if self.subscribed() {
            q.limits.pubsub
        } else {
            q.limits.normal
        };
        if over_limit(&mut q, limit) {
            q.items.clear();
            q.bytes = 0;
            self.queued.store(0, Ordering::Release);
            self.overflowed.store(true, Ordering::Release);
            drop(q);
            self.wake.notify_one();
            return Delivery::Overflowed;
        }
        self.queued.store(q.items.len(), Ordering::Release);
        drop(q);
        self.wake.notify_one();
        Delivery::Queued
    }

    /// Takes queued messages, oldest first, until about `max_bytes` are taken (at least
    /// one if any wait), so what the connection has not written yet stays counted here.
    pub fn take(&self, max_bytes: usize) -> Vec<Push> {
        let mut q = self.queue.lock();
        let mut out = Vec::new();
        let mut taken = 0;
        while taken < max_bytes {
            let Some(p) = q.items.pop_front() else { break };
            taken += p.cost();
            q.bytes = q.bytes.saturating_sub(p.cost());
            out.push(p);
        }
        let soft = if self.subscribed() {
            q.limits.pubsub.soft
        } else {
            q.limits.normal.soft
        };
        if soft == 0 || q.bytes as u64 <= soft {
            q.above_soft_since = None;
        }
        self.queued.store(q.items.len(), Ordering::Release);
        out
    }
}

/// Redis's `checkClientOutputBufferLimits`: over the hard limit, or above the soft limit
/// for longer than its seconds.
fn over_limit(q: &mut Queue, limit: ClassLimit) -> bool {
    let bytes = q.bytes as u64;
    if limit.hard > 0 && bytes >= limit.hard {
        return true;
    }
    if limit.soft > 0 && bytes >= limit.soft {
        let since = *q.above_soft_since.get_or_insert_with(Instant::now);
        return since.elapsed() > Duration::from_secs(limit.soft_seconds);
    }
    q.above_soft_since = None;
    false
}

/// Hands `push` to `info`'s connection; a client that passes its output buffer limit is
/// disconnected (its connection counts and logs it). False if nothing was queued.
pub fn deliver(info: &ClientInfo, push: Push) -> bool {
    match info.mailbox.push(push) {
        Delivery::Queued => true,
        Delivery::Dropped => false,
        Delivery::Overflowed => {
            info.killed.store(true, Ordering::Release);
            info.kill.notify_one();
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn msg(n: usize) -> Push {
        Push::Message {
            kind: "message",
            channel: Bytes::from_static(b"ch"),
            payload: Bytes::from(vec![b'x'; n]),
        }
    }

    #[test]
    fn encodings_match_redis() {
        let enc = |p: &Push, resp3| {
            let mut b = BytesMut::new();
            p.to_reply(resp3).encode(&mut b, resp3);
            String::from_utf8(b.to_vec()).unwrap()
        };
        assert_eq!(
            enc(&msg(1), false),
            "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n"
        );
        assert_eq!(
            enc(
                &Push::Invalidate(Some(vec![Bytes::from_static(b"k")])),
                true
            ),
            ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
        );
        assert_eq!(
            enc(&Push::Invalidate(None), false),
            "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n"
        );
    }

    #[test]
    fn hard_limit_drops_the_queue_and_refuses_more() {
        let m = Mailbox::default();
        m.channels.store(1, Ordering::Relaxed);
        m.set_limits(OutputLimits {
            pubsub: ClassLimit {
                hard: 1000,
                soft: 0,
                soft_seconds: 0,
            },
            ..OutputLimits::default()
        });
        assert_eq!(m.push(msg(100)), Delivery::Queued);
        assert_eq!(m.take(usize::MAX).len(), 1);
        assert_eq!(m.push(msg(500)), Delivery::Queued);
        assert_eq!(m.push(msg(500)), Delivery::Overflowed);
        assert!(m.overflowed() && !m.has_pending());
        assert_eq!(m.push(msg(1)), Delivery::Dropped);
    }

    #[test]
    fn take_is_bounded_but_always_makes_progress() {
        let m = Mailbox::default();
        for _ in 0..10 {
            m.push(msg(100));
        }
        assert_eq!(m.take(1).len(), 1);
        assert_eq!(m.take(300).len(), 3);
        assert_eq!(m.take(usize::MAX).len(), 6);
        assert!(!m.has_pending());
    }
}
