//! Client-side caching (CLIENT TRACKING), as Redis 7 does it: in the default mode the
//! server remembers which clients read which keys and tells them, once, when such a key
//! changes; in BCAST mode a client hears about every changed key under its prefixes.
//! Invalidations go to the client itself as RESP3 pushes, or to the client it redirects
//! to (RESP3 push, or for a RESP2 subscriber a message on `__redis__:invalidate`).
//!
//! Like Redis's table, it is keyed by key name alone, not by database. Every commit
//! reports the keys it wrote ([`KeyTracking::invalidate_keys`]); flushes and SWAPDB
//! invalidate everything ([`KeyTracking::invalidate_all`]).

use super::mailbox::{deliver, Push};
use crate::state::ClientInfo;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// Keys remembered for default-mode clients before the oldest are invalidated to make
/// room (Redis's `tracking-table-max-keys` default), so the table is bounded.
pub const MAX_TRACKED_KEYS: usize = 1_000_000;

/// How a tracking client chose to be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every key it reads is remembered.
    #[default]
    Default,
    /// Only keys read right after CLIENT CACHING yes.
    OptIn,
    /// Keys read, except right after CLIENT CACHING no.
    OptOut,
    /// Every changed key under its prefixes, read or not.
    Bcast,
}

/// Options of one CLIENT TRACKING ON.
#[derive(Debug, Clone, Default)]
pub struct TrackingOptions {
    /// Client id to send invalidations to (0: none).
    pub redirect: u64,
    /// The mode.
    pub mode: Mode,
    /// Do not tell a client about its own writes.
    pub noloop: bool,
    /// BCAST prefixes (none: every key).
    pub prefixes: Vec<Bytes>,
}

/// One tracking client, as CLIENT TRACKINGINFO shows it.
#[derive(Debug, Clone, Default)]
pub struct TrackingView {
    /// Redirect target (0: none).
    pub redirect: u64,
    /// The mode.
    pub mode: Mode,
    /// NOLOOP.
    pub noloop: bool,
    /// The redirect target went away.
    pub broken_redirect: bool,
    /// BCAST prefixes.
    pub prefixes: BTreeSet<Bytes>,
}

struct Tracker {
    info: Arc<ClientInfo>,
    target: Option<Weak<ClientInfo>>,
    view: TrackingView,
}

#[derive(Default)]
struct Table {
    keys: HashMap<Bytes, HashSet<u64>>,
    clients: HashMap<u64, Tracker>,
}

/// The server's tracking table.
#[derive(Default)]
pub struct KeyTracking {
    /// Tracking clients, read without the lock so untracked servers pay nothing.
    on: AtomicUsize,
    table: Mutex<Table>,
}

/// Two prefixes overlap when one starts with the other (Redis's `stringCheckPrefix`).
fn overlap(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

impl KeyTracking {
    /// CLIENT TRACKING ON for `info` (options already checked against each other and the
    /// current mode by the command); refuses BCAST prefixes that overlap each other or the
    /// client's earlier ones. `target` is the redirect client, if any.
    pub fn enable(
        &self,
        info: &Arc<ClientInfo>,
        target: Option<&Arc<ClientInfo>>,
        opts: TrackingOptions,
    ) -> Result<(), String> {
        let mut t = self.table.lock();
        let current = t.clients.get(&info.id).map(|c| &c.view);
        if opts.mode == Mode::Bcast {
            let existing = current.map(|c| &c.prefixes);
            for (i, p) in opts.prefixes.iter().enumerate() {
                if let Some(old) = existing.and_then(|e| e.iter().find(|o| overlap(o, p))) {
                    return Err(format!(
                        "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                        String::from_utf8_lossy(p),
                        String::from_utf8_lossy(old)
                    ));
                }
                if let Some(other) = opts.prefixes[i + 1..].iter().find(|o| overlap(p, o)) {
                    return Err(format!(
                        "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                        String::from_utf8_lossy(p),
                        String::from_utf8_lossy(other)
                    ));
                }
            }
        }
        let mut prefixes = current.map(|c| c.prefixes.clone()).unwrap_or_default();
        if opts.mode == Mode::Bcast {
            if opts.prefixes.is_empty() {
                prefixes.insert(Bytes::new());
            }
            prefixes.extend(opts.prefixes.iter().cloned());
        }
        let tracker = Tracker {
            info: info.clone(),
            target: target.map(Arc::downgrade),
            view: TrackingView {
                redirect: opts.redirect,
                mode: opts.mode,
                noloop: opts.noloop,
                broken_redirect: false,
                prefixes,
            },
        };
        if t.clients.insert(info.id, tracker).is_none() {
            self.on.fetch_add(1, Ordering::Release);
        }
        Ok(())
    }

    /// CLIENT TRACKING OFF (and disconnect, RESET).
    pub fn disable(&self, id: u64) {
        if self.table.lock().clients.remove(&id).is_some() {
            self.on.fetch_sub(1, Ordering::Release);
        }
    }

    /// How many clients have tracking on (INFO `tracking_clients`).
    pub fn clients(&self) -> usize {
        self.on.load(Ordering::Acquire)
    }

    /// The client's tracking state, if tracking is on.
    pub fn view(&self, id: u64) -> Option<TrackingView> {
        if self.on.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.table.lock().clients.get(&id).map(|c| c.view.clone())
    }

    /// Remembers that client `id` read `keys` (a read-only command ran), unless its mode
    /// says otherwise: BCAST needs no table, OPTIN only after CACHING yes, OPTOUT not
    /// after CACHING no.
    pub fn remember<'a>(&self, id: u64, keys: impl Iterator<Item = &'a Bytes>, caching: bool) {
        if self.on.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut t = self.table.lock();
        let Some(c) = t.clients.get(&id) else { return };
        let skip = match c.view.mode {
            Mode::Bcast => true,
            Mode::OptIn => !caching,
            Mode::OptOut => caching,
            Mode::Default => false,
        };
        if skip {
            return;
        }
        for k in keys {
            t.keys
                .entry(Bytes::copy_from_slice(k))
                .or_default()
                .insert(id);
        }
        while t.keys.len() > MAX_TRACKED_KEYS {
            let Some(victim) = t.keys.keys().next().cloned() else {
                break;
            };
            invalidate_one(&mut t, &victim, 0);
        }
    }

    /// Keys written by client `writer` (0: the server itself, as the expiry sweep) were
    /// committed: tells default-mode clients that read them (once: they are forgotten)
    /// and BCAST clients whose prefixes match, one message per client for BCAST.
    pub fn invalidate_keys<'a>(&self, keys: impl Iterator<Item = &'a Bytes>, writer: u64) {
        if self.on.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut t = self.table.lock();
        let mut bcast: HashMap<u64, Vec<Bytes>> = HashMap::new();
        for key in keys {
            invalidate_one(&mut t, key, writer);
            for (id, c) in &t.clients {
                let hears = c.view.mode == Mode::Bcast
                    && !(c.view.noloop && *id == writer)
                    && c.view.prefixes.iter().any(|p| key.starts_with(p));
                if hears {
                    bcast.entry(*id).or_default().push(key.clone());
                }
            }
        }
        for (id, keys) in bcast {
            if let Some(c) = t.clients.get_mut(&id) {
                send(c, Push::Invalidate(Some(keys)));
            }
        }
    }

    /// Every key may have changed (FLUSHALL, FLUSHDB, SWAPDB): every tracking client
    /// gets a null invalidation, and the table is emptied.
    pub fn invalidate_all(&self) {
        if self.on.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut t = self.table.lock();
        t.keys.clear();
        for c in t.clients.values_mut() {
            send(c, Push::Invalidate(None));
        }
    }
}

/// Forgets `key` and tells its default-mode readers (except a NOLOOP writer).
fn invalidate_one(t: &mut Table, key: &Bytes, writer: u64) {
    let Some(ids) = t.keys.remove(key) else {
        return;
    };
    for id in ids {
        if let Some(c) = t.clients.get_mut(&id) {
            if c.view.mode == Mode::Bcast || (c.view.noloop && id == writer) {
                continue;
            }
            send(c, Push::Invalidate(Some(vec![key.clone()])));
        }
    }
}

/// Redis's `sendTrackingMessage`: to the redirect target if one was given (a RESP3 push,
/// or a `__redis__:invalidate` message if it is a RESP2 subscriber, else nothing), else
/// to the client itself if it speaks RESP3. A redirect target that went away marks the
/// client `broken_redirect` and, in RESP3, tells it.
fn send(c: &mut Tracker, push: Push) {
    let resp3 = |i: &ClientInfo| i.resp.load(Ordering::Relaxed) == 3;
    let Some(target) = &c.target else {
        if resp3(&c.info) {
            deliver(&c.info, push);
        }
        return;
    };
    match target.upgrade().filter(|t| !t.mailbox.is_closed()) {
        Some(t) => {
            if resp3(&t) || t.mailbox.subscribed() {
                deliver(&t, push);
            }
        }
        None => {
            c.view.broken_redirect = true;
            if resp3(&c.info) {
                deliver(&c.info, Push::RedirBroken(c.view.redirect));
            }
        }
    }
}
