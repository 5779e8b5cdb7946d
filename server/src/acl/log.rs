//! ACL LOG: refused commands, keys and authentications, newest first, bounded at
//! `acllog-max-len`. Like Redis 7.0, a repeat of a recent entry (same reason, context,
//! object and user, within a minute, among the newest ten) bumps its count and moves it
//! to the front instead of adding a line, so a client retrying in a loop cannot flood it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How recent an entry must be to absorb a repeat (ACL_LOG_GROUPING_MAX_TIME_DELTA).
const GROUPING_WINDOW: Duration = Duration::from_secs(60);
/// How many of the newest entries are searched for a repeat.
const GROUPING_SEARCH: usize = 10;
/// Longest object (key) or user name kept in an entry. Redis keeps them whole, so 128
/// refused 512 MB key names would hold 64 GB; kvd keeps the start and the length.
pub const MAX_FIELD: usize = 1024;

/// `s` cut to [`MAX_FIELD`] bytes (on a character boundary), saying how much was cut.
pub fn bounded(mut s: String) -> String {
    if s.len() <= MAX_FIELD {
        return s;
    }
    let total = s.len();
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(&format!("... ({} more bytes)", total - end));
    s
}

/// Why an entry was logged (Redis's `reason` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Command not allowed.
    Command,
    /// Key not allowed.
    Key,
    /// Wrong user or password.
    Auth,
    /// Channel not allowed.
    Channel,
}

impl Reason {
    /// Redis's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Auth => "auth",
            Reason::Channel => "channel",
        }
    }
}

/// One ACL LOG entry.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// How many times it happened.
    pub count: u64,
    /// Why.
    pub reason: Reason,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    /// The command's full name, the key, or `AUTH`.
    pub object: String,
    /// The user (for AUTH: the name that was tried).
    pub username: String,
    /// When it last happened.
    pub last: Instant,
    /// CLIENT INFO line of the last client it happened to.
    pub client_info: String,
}

/// The log itself.
#[derive(Default)]
pub struct AclLog {
    entries: VecDeque<LogEntry>,
}

impl AclLog {
    /// Adds an entry (or bumps a recent identical one), keeping at most `max_len`.
    pub fn add(&mut self, e: LogEntry, max_len: usize) {
        let similar = self.entries.iter().take(GROUPING_SEARCH).position(|o| {
            o.reason == e.reason
                && o.context == e.context
                && o.object == e.object
                && o.username == e.username
                && e.last.duration_since(o.last) < GROUPING_WINDOW
        });
        match similar.and_then(|i| self.entries.remove(i)) {
            Some(mut o) => {
                o.count += 1;
                o.last = e.last;
                o.client_info = e.client_info;
                self.entries.push_front(o);
            }
            None => self.entries.push_front(e),
        }
        self.entries.truncate(max_len);
    }

    /// Newest first, at most `n`.
    pub fn newest(&self, n: usize) -> Vec<LogEntry> {
        self.entries.iter().take(n).cloned().collect()
    }

    /// ACL LOG RESET.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Applies a lower `acllog-max-len`.
    pub fn truncate(&mut self, max_len: usize) {
        self.entries.truncate(max_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(object: &str) -> LogEntry {
        LogEntry {
            count: 1,
            reason: Reason::Command,
            context: "toplevel",
            object: object.into(),
            username: "u".into(),
            last: Instant::now(),
            client_info: String::new(),
        }
    }

    #[test]
    fn repeats_group_and_length_is_bounded() {
        let mut log = AclLog::default();
        log.add(entry("get"), 3);
        log.add(entry("set"), 3);
        log.add(entry("get"), 3);
        let v = log.newest(10);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].object.as_str(), v[0].count), ("get", 2));
        for i in 0..10 {
            log.add(entry(&format!("c{i}")), 3);
        }
        assert_eq!(log.newest(10).len(), 3);
        assert_eq!(log.newest(1)[0].object, "c9");
    }

    #[test]
    fn long_fields_are_cut() {
        assert_eq!(bounded("key".into()), "key");
        let long = bounded("é".repeat(MAX_FIELD));
        assert!(long.len() < MAX_FIELD + 32, "{}", long.len());
        assert!(long.ends_with(&format!("... ({} more bytes)", MAX_FIELD)));
    }
}
