//! Who is subscribed to what, server-wide: channels, patterns and shard channels, each
//! mapping to the subscribed clients. PUBLISH walks it under one lock and hands each
//! subscriber its message through the subscriber's mailbox, never waiting for it.

use super::mailbox::{deliver, Push};
use crate::commands::glob::glob_match;
use crate::state::ClientInfo;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The three subscription namespaces of Redis 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE / PUBLISH.
    Channel = 0,
    /// PSUBSCRIBE (glob patterns over channel names).
    Pattern = 1,
    /// SSUBSCRIBE / SPUBLISH.
    Shard = 2,
}

impl Kind {
    /// The three kinds.
    pub const ALL: [Kind; 3] = [Kind::Channel, Kind::Pattern, Kind::Shard];

    /// The client's counter of this kind (CLIENT LIST `sub`, `psub`, `ssub`).
    pub fn counter(self, info: &ClientInfo) -> &AtomicUsize {
        match self {
            Kind::Channel => &info.mailbox.channels,
            Kind::Pattern => &info.mailbox.patterns,
            Kind::Shard => &info.mailbox.shard_channels,
        }
    }
}

type Subscribers = HashMap<Bytes, HashMap<u64, Arc<ClientInfo>>>;

/// The server's subscription registry.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<[Subscribers; 3]>,
}

/// One connection's subscriptions (sorted, so UNSUBSCRIBE without arguments answers in a
/// stable order).
#[derive(Debug, Default)]
pub struct Subscriptions {
    sets: [BTreeSet<Bytes>; 3],
}

impl Subscriptions {
    /// Names subscribed of `kind`.
    pub fn of(&self, kind: Kind) -> &BTreeSet<Bytes> {
        &self.sets[kind as usize]
    }

    /// The count Redis reports in SUBSCRIBE/PSUBSCRIBE (channels + patterns) or
    /// SSUBSCRIBE (shard channels) confirmations.
    pub fn count_for(&self, kind: Kind) -> i64 {
        match kind {
            Kind::Shard => self.sets[2].len() as i64,
            _ => (self.sets[0].len() + self.sets[1].len()) as i64,
        }
    }

    /// True if subscribed to anything.
    pub fn any(&self) -> bool {
        self.sets.iter().any(|s| !s.is_empty())
    }
}

impl Hub {
    /// Subscribes `info` to `name`; false if it already was.
    pub fn subscribe(
        &self,
        subs: &mut Subscriptions,
        info: &Arc<ClientInfo>,
        kind: Kind,
        name: Bytes,
    ) -> bool {
        if !subs.sets[kind as usize].insert(name.clone()) {
            return false;
        }
        self.inner.lock()[kind as usize]
            .entry(name)
            .or_default()
            .insert(info.id, info.clone());
        kind.counter(info).fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Unsubscribes `info` from `name`; false if it was not subscribed.
    pub fn unsubscribe(
        &self,
        subs: &mut Subscriptions,
        info: &ClientInfo,
        kind: Kind,
        name: &Bytes,
    ) -> bool {
        if !subs.sets[kind as usize].remove(name) {
            return false;
        }
        let mut g = self.inner.lock();
        let map = &mut g[kind as usize];
        if let Some(clients) = map.get_mut(name) {
            clients.remove(&info.id);
            if clients.is_empty() {
                map.remove(name);
            }
        }
        kind.counter(info).fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// Drops every subscription of a connection (disconnect, RESET).
    pub fn unsubscribe_all(&self, subs: &mut Subscriptions, info: &ClientInfo) {
        for kind in Kind::ALL {
            let names: Vec<Bytes> = subs.of(kind).iter().cloned().collect();
            for n in &names {
                self.unsubscribe(subs, info, kind, n);
            }
        }
    }

    /// Delivers `payload` on `channel` (of `Kind::Channel` or `Kind::Shard`) to its
    /// subscribers and, for plain channels, to every matching pattern's subscribers.
    /// Returns the number of deliveries, as PUBLISH replies (a client subscribed to the
    /// channel and to two matching patterns counts three times, as in Redis).
    pub fn publish(&self, kind: Kind, channel: &Bytes, payload: &Bytes) -> i64 {
        let g = self.inner.lock();
        let mut n = 0;
        let message_kind = if kind == Kind::Shard {
            "smessage"
        } else {
            "message"
        };
        if let Some(clients) = g[kind as usize].get(channel) {
            for info in clients.values() {
                deliver(
                    info,
                    Push::Message {
                        kind: message_kind,
                        channel: channel.clone(),
                        payload: payload.clone(),
                    },
                );
                n += 1;
            }
        }
        if kind == Kind::Channel {
            for (pattern, clients) in &g[Kind::Pattern as usize] {
                if !glob_match(pattern, channel, false) {
                    continue;
                }
                for info in clients.values() {
                    deliver(
                        info,
                        Push::PMessage {
                            pattern: pattern.clone(),
                            channel: channel.clone(),
                            payload: payload.clone(),
                        },
                    );
                    n += 1;
                }
            }
        }
        n
    }

    /// Names of `kind` with subscribers, matching `pattern` if given (PUBSUB CHANNELS).
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let g = self.inner.lock();
        let mut v: Vec<Bytes> = g[kind as usize]
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Subscribers of one name (PUBSUB NUMSUB).
    pub fn count(&self, kind: Kind, name: &[u8]) -> usize {
        self.inner.lock()[kind as usize]
            .get(name)
            .map_or(0, |c| c.len())
    }

    /// Distinct names of `kind` (PUBSUB NUMPAT for patterns).
    pub fn distinct(&self, kind: Kind) -> usize {
        self.inner.lock()[kind as usize].len()
    }
}
