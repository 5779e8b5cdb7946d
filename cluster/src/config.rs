//! The cluster's settings, their defaults and the rules they must meet. Each error
//! names the kvd option to change, because it becomes a startup error.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Most replicas a cluster may keep of each key: every write costs a copy per replica,
/// so a larger number is far more likely a typo than a plan.
pub const MAX_REPLICAS: usize = 16;

/// The cluster settings. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// N: replicas of each key (`--cluster-replicas`, default 3).
    pub replicas: usize,
    /// W: replicas that must acknowledge a write before the client is told it succeeded
    /// (`--cluster-write-quorum`, default 2).
    pub write_quorum: usize,
    /// R: replicas whose answers a read waits for (`--cluster-read-quorum`, default 2).
    pub read_quorum: usize,
    /// Allows W + R <= N, where a read may miss an acknowledged write
    /// (`--cluster-unsafe-allow-weak-quorums`, default no).
    pub unsafe_allow_weak_quorums: bool,
    /// How long a coordinator waits for W or R answers before it reports a timeout
    /// (`--cluster-request-timeout`, default 2 s).
    pub request_timeout: Duration,
    /// Bytes of hints a node keeps for peers that are down, in all (`--cluster-hint-max-bytes`,
    /// default 256 MiB; 0 keeps none). Past it, new hints are dropped and anti-entropy
    /// repairs what they would have.
    pub hint_max_bytes: u64,
    /// Age after which a hint is dropped (`--cluster-hint-max-age-ms`, default 3 h, as
    /// Cassandra's hint window). With the request timeout and the clock offset it must
    /// stay shorter than `tombstone_grace`, or a replayed hint could resurrect a key whose
    /// tombstone was already collected.
    pub hint_max_age: Duration,
    /// Age (from its version) before which no tombstone is collected
    /// (`--cluster-tombstone-grace-ms`, default 10 days, as Cassandra's
    /// gc_grace_seconds); collection also needs every replica to hold it. A node not in
    /// sync with its replicas for about as long must be wiped before it rejoins.
    pub tombstone_grace: Duration,
    /// At start, delete this node's replica data if it is too old to rejoin safely
    /// (`--cluster-wipe-stale-data`, default no: such a node refuses to start).
    pub wipe_stale_data: bool,
    /// Largest clock offset between nodes (`--cluster-max-clock-offset`, default
    /// 500 ms): a node further from the majority stops coordinating, and versions from
    /// further in the future are refused.
    pub max_clock_offset: Duration,
    /// How often each partition is compared with its other replicas
    /// (`--cluster-anti-entropy-interval`, default 10 min, as Garage).
    pub anti_entropy_interval: Duration,
    /// How long one pass of the slow Merkle rebuild from data over every partition
    /// takes, one partition at a time (`--cluster-merkle-rebuild-interval-ms`, default
    /// 7 days, as Riak's active anti-entropy rebuilds its trees weekly; zero = never).
    /// It finds what the incremental trees cannot see (a damaged leaf, a write behind
    /// their back); anti-entropy then repairs the keys.
    pub merkle_rebuild_interval: Duration,
    /// Bytes per second that background traffic (hint replay, anti-entropy, later
    /// streaming) may use, shared (`--cluster-background-bytes-per-sec`, default 16 MiB/s).
    pub background_bytes_per_sec: u64,
    /// Bytes per second a new replica pulls when it streams its incoming partitions
    /// during a layout change (`--cluster-stream-bytes-per-sec`, default 50 MiB/s; 0 =
    /// unlimited). Separate from the background budget: a join should not wait behind
    /// repair, nor take the bandwidth clients need.
    pub stream_bytes_per_sec: u64,
    /// Requests in flight to one peer at most (`--cluster-max-in-flight-per-peer`,
    /// default 1024); beyond it a write becomes a hint and a read counts as no answer.
    pub max_in_flight_per_peer: usize,
    /// How long one consensus command may take, contended rounds included
    /// (`--cluster-consensus-timeout-ms`, default 5 s).
    pub consensus_timeout: Duration,
    /// A peer the failure detector suspects and that stays silent this long is down
    /// (`--cluster-down-after-ms`, default 30 s): coordinators stop sending to it and
    /// hint at once. Shorter makes a dead node show as down sooner; too short makes a
    /// node that paused (a long GC-free stall, a VM migration) lose its writes to hints.
    pub down_after: Duration,
    /// Send consensus commands to their key's proposer, the first replica up
    /// (`--cluster-forward-consensus`, default no; crate::forward): proposers on
    /// several nodes duel on a hot key, which this avoids, but a proposer that stops
    /// answering (paused, cut off) holds its keys' writes until failure detection
    /// suspects it, where every node proposing keeps a majority writable at once.
    pub forward_consensus: bool,
    /// Phi-accrual threshold above which failure detection suspects a peer
    /// (`--cluster-phi-threshold`, default 8, as Cassandra's `phi_convict_threshold`):
    /// higher tolerates longer stalls (loaded or virtualised machines) and notices a
    /// dead node later.
    pub phi_threshold: u32,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            replicas: 3,
            write_quorum: 2,
            read_quorum: 2,
            unsafe_allow_weak_quorums: false,
            request_timeout: Duration::from_secs(2),
            hint_max_bytes: 256 << 20,
            hint_max_age: Duration::from_secs(3 * 3600),
            tombstone_grace: Duration::from_secs(10 * 24 * 3600),
            wipe_stale_data: false,
            max_clock_offset: Duration::from_millis(500),
            anti_entropy_interval: Duration::from_secs(600),
            merkle_rebuild_interval: Duration::from_secs(7 * 24 * 3600),
            background_bytes_per_sec: 16 << 20,
            stream_bytes_per_sec: 50 << 20,
            max_in_flight_per_peer: 1024,
            consensus_timeout: Duration::from_secs(5),
            down_after: Duration::from_secs(30),
            forward_consensus: false,
            phi_threshold: 8,
        }
    }
}

/// A setting that breaks a rule; the message says which option and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// N out of range.
    #[error("--cluster-replicas must be between 1 and {MAX_REPLICAS}, got {0}")]
    Replicas(usize),
    /// W or R out of range.
    #[error("{option} must be between 1 and --cluster-replicas ({replicas}), got {value}")]
    Quorum {
        /// The option.
        option: &'static str,
        /// Its value.
        value: usize,
        /// N.
        replicas: usize,
    },
    /// W + R <= N without the unsafe option.
    #[error("--cluster-write-quorum ({write}) + --cluster-read-quorum ({read}) must be greater than --cluster-replicas ({replicas}), or a read may miss an acknowledged write; set --cluster-unsafe-allow-weak-quorums yes to accept that")]
    WeakQuorums {
        /// W.
        write: usize,
        /// R.
        read: usize,
        /// N.
        replicas: usize,
    },
    /// A setting that must be positive is zero.
    #[error("{0} must be greater than 0")]
    Zero(&'static str),
    /// Hints would outlive tombstones.
    #[error("--cluster-hint-max-age-ms ({hint_max_age:?}) plus the request timeout and the maximum clock offset must be shorter than --cluster-tombstone-grace-ms ({tombstone_grace:?}), or a late hint could bring back a deleted key")]
    HintsOutliveTombstones {
        /// The hint age limit.
        hint_max_age: Duration,
        /// The tombstone grace.
        tombstone_grace: Duration,
    },
}

impl ClusterConfig {
    /// Checks every rule; the first broken one is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_REPLICAS).contains(&self.replicas) {
            return Err(ConfigError::Replicas(self.replicas));
        }
        for (option, value) in [
            ("--cluster-write-quorum", self.write_quorum),
            ("--cluster-read-quorum", self.read_quorum),
        ] {
            if !(1..=self.replicas).contains(&value) {
                return Err(ConfigError::Quorum {
                    option,
                    value,
                    replicas: self.replicas,
                });
            }
        }
        if self.write_quorum + self.read_quorum <= self.replicas && !self.unsafe_allow_weak_quorums
        {
            return Err(ConfigError::WeakQuorums {
                write: self.write_quorum,
                read: self.read_quorum,
                replicas: self.replicas,
            });
        }
        let positive = [
            ("--cluster-request-timeout", self.request_timeout.is_zero()),
            (
                "--cluster-tombstone-grace-ms",
                self.tombstone_grace.is_zero(),
            ),
            (
                "--cluster-max-clock-offset",
                self.max_clock_offset.is_zero(),
            ),
            (
                "--cluster-anti-entropy-interval",
                self.anti_entropy_interval.is_zero(),
            ),
            (
                "--cluster-background-bytes-per-sec",
                self.background_bytes_per_sec == 0,
            ),
            (
                "--cluster-max-in-flight-per-peer",
                self.max_in_flight_per_peer == 0,
            ),
            ("--cluster-down-after-ms", self.down_after.is_zero()),
        ];
        if let Some((option, _)) = positive.iter().find(|(_, zero)| *zero) {
            return Err(ConfigError::Zero(option));
        }
        if self.tombstone_arrival_bound() >= self.tombstone_grace {
            return Err(ConfigError::HintsOutliveTombstones {
                hint_max_age: self.hint_max_age,
                tombstone_grace: self.tombstone_grace,
            });
        }
        Ok(())
    }

    /// How long after its version a write can first reach a replica: sent with the
    /// request (timeout), or replayed from a hint (hint age bound), with clocks up to the
    /// maximum offset apart. A tombstone older than this is on a replica or nowhere.
    pub fn tombstone_arrival_bound(&self) -> Duration {
        self.hint_max_age + self.request_timeout + self.max_clock_offset
    }

    /// How long a node may go without a complete anti-entropy round before it must be
    /// wiped to rejoin: the grace minus [`Self::tombstone_arrival_bound`], so that every
    /// tombstone another replica may have collected reached some replica before this
    /// node's last sync (docs/cluster.md, "The wipe rule").
    pub fn stale_after(&self) -> Duration {
        self.tombstone_grace
            .saturating_sub(self.tombstone_arrival_bound())
    }

    /// Acknowledgements a write at `level` waits for.
    pub fn writes_need(&self, level: Consistency) -> usize {
        level.required(self.replicas, self.write_quorum)
    }

    /// Answers a read at `level` waits for.
    pub fn reads_need(&self, level: Consistency) -> usize {
        level.required(self.replicas, self.read_quorum)
    }
}

/// How many replicas a client's request waits for: a per-connection choice, as cqlsh's
/// CONSISTENCY. The default is the configured quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Consistency {
    /// One replica: fastest, and a read may miss the latest acknowledged write.
    One,
    /// The configured W (writes) or R (reads).
    #[default]
    Quorum,
    /// Every replica: fails when any replica is down.
    All,
    /// Reads of named keys run through the key's consensus (a Paxos round that
    /// settles any half-finished write before answering), so they are linearizable;
    /// everything else waits for the configured quorum, as `Quorum`.
    Serial,
}

impl Consistency {
    /// Replicas to wait for, out of `n`, when the configured quorum is `quorum`: never
    /// more than `n`, never less than one (a request that waits for no answer would be
    /// a silent success).
    pub fn required(&self, n: usize, quorum: usize) -> usize {
        let want = match self {
            Consistency::One => 1,
            Consistency::Quorum | Consistency::Serial => quorum,
            Consistency::All => n,
        };
        want.clamp(1, n.max(1))
    }

    /// The name clients use: `ONE`, `QUORUM`, `ALL`, `SERIAL`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Consistency::One => "ONE",
            Consistency::Quorum => "QUORUM",
            Consistency::All => "ALL",
            Consistency::Serial => "SERIAL",
        }
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The level name was not ONE, QUORUM, ALL or SERIAL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consistency level must be ONE, QUORUM, ALL or SERIAL")]
pub struct UnknownConsistency;

impl FromStr for Consistency {
    type Err = UnknownConsistency;

    /// Case-insensitive, as client commands are.
    fn from_str(s: &str) -> Result<Consistency, UnknownConsistency> {
        [
            Consistency::One,
            Consistency::Quorum,
            Consistency::All,
            Consistency::Serial,
        ]
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(s))
        .ok_or(UnknownConsistency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let c = ClusterConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!((c.replicas, c.write_quorum, c.read_quorum), (3, 2, 2));
        assert!(!c.unsafe_allow_weak_quorums);
        assert_eq!(c.request_timeout, Duration::from_secs(2));
        assert_eq!(c.max_clock_offset, Duration::from_millis(500));
        assert!(c.hint_max_age < c.tombstone_grace);
        assert!(!c.wipe_stale_data);
        assert_eq!(
            c.stale_after(),
            c.tombstone_grace - c.hint_max_age - c.request_timeout - c.max_clock_offset
        );
    }

    #[test]
    fn weak_quorums_need_the_unsafe_option() {
        let mut c = ClusterConfig {
            write_quorum: 1,
            read_quorum: 1,
            ..ClusterConfig::default()
        };
        let err = c.validate().unwrap_err();
        assert!(matches!(err, ConfigError::WeakQuorums { .. }));
        assert!(err
            .to_string()
            .contains("--cluster-unsafe-allow-weak-quorums"));
        c.unsafe_allow_weak_quorums = true;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn each_rule_names_its_option() {
        let d = ClusterConfig::default;
        let cases = [
            (ClusterConfig { replicas: 0, ..d() }, "--cluster-replicas"),
            (
                ClusterConfig {
                    replicas: MAX_REPLICAS + 1,
                    ..d()
                },
                "--cluster-replicas",
            ),
            (
                ClusterConfig {
                    write_quorum: 4,
                    ..d()
                },
                "--cluster-write-quorum",
            ),
            (
                ClusterConfig {
                    read_quorum: 0,
                    ..d()
                },
                "--cluster-read-quorum",
            ),
            (
                ClusterConfig {
                    request_timeout: Duration::ZERO,
                    ..d()
                },
                "--cluster-request-timeout",
            ),
            (
                ClusterConfig {
                    max_in_flight_per_peer: 0,
                    ..d()
                },
                "--cluster-max-in-flight-per-peer",
            ),
            (
                ClusterConfig {
                    background_bytes_per_sec: 0,
                    ..d()
                },
                "--cluster-background-bytes-per-sec",
            ),
            (
                ClusterConfig {
                    hint_max_age: Duration::from_secs(11 * 24 * 3600),
                    ..d()
                },
                "--cluster-hint-max-age-ms",
            ),
            (
                ClusterConfig {
                    hint_max_age: Duration::from_secs(3),
                    request_timeout: Duration::from_secs(2),
                    tombstone_grace: Duration::from_secs(5),
                    ..d()
                },
                "--cluster-tombstone-grace-ms",
            ),
        ];
        for (config, option) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(option), "{option}: {err}");
        }
    }

    #[test]
    fn consistency_levels() {
        assert_eq!(Consistency::One.required(3, 2), 1);
        assert_eq!(Consistency::Quorum.required(3, 2), 2);
        assert_eq!(Consistency::All.required(3, 2), 3);
        assert_eq!(Consistency::default(), Consistency::Quorum);
        assert_eq!("quorum".parse(), Ok(Consistency::Quorum));
        assert_eq!("ALL".parse(), Ok(Consistency::All));
        assert_eq!("One".parse(), Ok(Consistency::One));
        assert_eq!("serial".parse(), Ok(Consistency::Serial));
        assert_eq!(Consistency::Serial.required(3, 2), 2);
        assert_eq!("two".parse::<Consistency>(), Err(UnknownConsistency));
        assert_eq!(Consistency::All.to_string(), "ALL");
        let c = ClusterConfig::default();
        assert_eq!(c.writes_need(Consistency::All), 3);
        assert_eq!(c.reads_need(Consistency::Quorum), 2);
    }

    proptest! {
        /// A valid configuration's quorums always overlap unless the operator said
        /// otherwise: every read set meets every write set.
        #[test]
        fn valid_safe_quorums_overlap(n in 0usize..20, w in 0usize..20, r in 0usize..20) {
            let c = ClusterConfig { replicas: n, write_quorum: w, read_quorum: r, ..ClusterConfig::default() };
            if c.validate().is_ok() {
                prop_assert!(w + r > n);
                prop_assert!((1..=n).contains(&w) && (1..=n).contains(&r));
            }
        }
    }
}
