//! `client-output-buffer-limit`: how much reply data one client may have waiting before it
//! is disconnected, in Redis's syntax (`normal 1gb 256mb 60 replica ... pubsub ...`).
//!
//! Redis leaves normal clients unlimited by default, so one client that pipelines GETs of
//! a large value and never reads grows the server until it dies. kvd limits normal clients
//! by default: a client whose pending replies pass the hard limit, or stay above the soft
//! limit for the soft seconds, is disconnected (docs/security.md).

use crate::config::parse_memory;

/// Limits of one client class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassLimit {
    /// Bytes; 0 = none. Passing it disconnects at once.
    pub hard: u64,
    /// Bytes; 0 = none. Staying above it for `soft_seconds` disconnects.
    pub soft: u64,
    /// Seconds above the soft limit that are tolerated.
    pub soft_seconds: u64,
}

/// Limits for every client class Redis names (kvd has only normal clients so far; the
/// others are kept so that redis.conf files and CONFIG GET round-trip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    /// Ordinary clients (and MONITOR clients, as in Redis).
    pub normal: ClassLimit,
    /// Replicas (`replica`, also spelled `slave`).
    pub replica: ClassLimit,
    /// Pub/sub subscribers.
    pub pubsub: ClassLimit,
}

const MB: u64 = 1024 * 1024;

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            // The hard limit leaves room for one reply of the largest value
            // (proto-max-bulk-len, 512 MiB) plus its framing.
            normal: ClassLimit {
                hard: 1024 * MB,
                soft: 256 * MB,
                soft_seconds: 60,
            },
            replica: ClassLimit {
                hard: 256 * MB,
                soft: 64 * MB,
                soft_seconds: 60,
            },
            pubsub: ClassLimit {
                hard: 32 * MB,
                soft: 8 * MB,
                soft_seconds: 60,
            },
        }
    }
}

impl OutputLimits {
    /// Applies `class hard soft seconds` triplets (one or more), as CONFIG SET and
    /// redis.conf give them; nothing changes unless all of them are valid.
    pub fn apply(&mut self, text: &str) -> Result<(), String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() || !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        let mut next = *self;
        for w in words.chunks(4) {
            let limit = ClassLimit {
                hard: parse_memory(w[1])?,
                soft: parse_memory(w[2])?,
                soft_seconds: w[3]
                    .parse()
                    .map_err(|_| "Error in soft_seconds setting in buffer limit configuration.")?,
            };
            match w[0].to_ascii_lowercase().as_str() {
                "normal" => next.normal = limit,
                "replica" | "slave" => next.replica = limit,
                "pubsub" => next.pubsub = limit,
                _ => {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".into(),
                    )
                }
            }
        }
        *self = next;
        Ok(())
    }

    /// CONFIG GET's text (Redis prints `slave` and plain byte counts).
    pub fn render(&self) -> String {
        [
            ("normal", self.normal),
            ("slave", self.replica),
            ("pubsub", self.pubsub),
        ]
        .iter()
        .map(|(n, l)| format!("{n} {} {} {}", l.hard, l.soft, l.soft_seconds))
        .collect::<Vec<_>>()
        .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_render_like_redis() {
        let mut l = OutputLimits::default();
        l.apply("normal 10mb 5mb 30 slave 0 0 0").unwrap();
        assert_eq!(
            l.normal,
            ClassLimit {
                hard: 10 * MB,
                soft: 5 * MB,
                soft_seconds: 30
            }
        );
        assert_eq!(l.replica.hard, 0);
        assert_eq!(
            l.render(),
            format!(
                "normal {} {} 30 slave 0 0 0 pubsub {} {} 60",
                10 * MB,
                5 * MB,
                32 * MB,
                8 * MB
            )
        );
        let before = l;
        assert!(l.apply("normal 1mb 1mb").is_err());
        assert!(l.apply("normal 1mb 1mb 1 bogus 1 1 1").is_err());
        assert!(l.apply("normal 1mb 1mb x").is_err());
        assert_eq!(l, before, "a rejected setting changes nothing");
    }
}
