//! The `cluster-*` parameters: flags, config-file directives and CONFIG GET names for
//! running kvd as a node of a ring (docs/cluster.md, "Starting a cluster"). All are fixed
//! at start; a node's cluster identity lives in its data directory, not here.

use crate::config::{num, yes_no, yes_no_text, Config, Param};

/// How this node takes part in a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Run as a cluster node (`cluster-enabled`).
    pub enabled: bool,
    /// Bus port (gRPC over TCP, gossip over UDP); 0 = client port + 10000 as in Redis
    /// (`cluster-port`).
    pub port: u16,
    /// Bus addresses of nodes to introduce ourselves to (`cluster-seeds`).
    pub seeds: Vec<String>,
    /// Nodes that must have met before the first layout is made; 0 = the number of seeds
    /// (`cluster-bootstrap-expect`).
    pub bootstrap_expect: usize,
    /// Replicas of every key, N (`cluster-replicas`).
    pub replicas: usize,
    /// Acknowledgements a write waits for, W (`cluster-write-quorum`).
    pub write_quorum: usize,
    /// Answers a read waits for, R (`cluster-read-quorum`).
    pub read_quorum: usize,
    /// Allow W + R <= N, where a read may miss an acknowledged write
    /// (`cluster-unsafe-allow-weak-quorums`).
    pub unsafe_weak_quorums: bool,
    /// Shared secret authenticating nodes to each other (`cluster-secret`).
    pub secret: Option<String>,
    /// Address other nodes and clients reach this node at; default: the first `bind`
    /// address (`cluster-announce-ip`).
    pub announce_ip: Option<String>,
    /// Deadline of one replicated request, ms (`cluster-request-timeout-ms`).
    pub request_timeout_ms: u64,
    /// How often each partition is compared with its other replicas, ms
    /// (`cluster-anti-entropy-interval-ms`).
    pub anti_entropy_interval_ms: u64,
    /// How long one pass of the slow Merkle rebuild over every partition takes, ms; 0 =
    /// never (`cluster-merkle-rebuild-interval-ms`).
    pub merkle_rebuild_interval_ms: u64,
    /// Bytes per second that hint replay and anti-entropy share, 0 = unlimited
    /// (`cluster-background-bytes-per-sec`).
    pub background_bytes_per_sec: u64,
    /// Bytes per second a new replica streams its incoming partitions at during a layout
    /// change, 0 = unlimited (`cluster-stream-bytes-per-sec`).
    pub stream_bytes_per_sec: u64,
    /// Mutual TLS on the bus (`tls-cluster`, Redis's name).
    pub tls: bool,
    /// Largest clock offset to a majority of peers before this node stops coordinating,
    /// ms (`cluster-max-clock-offset-ms`).
    pub max_clock_offset_ms: u64,
    /// TEST ONLY: shifts this node's wall clock (its versions and clock pings) by this
    /// many ms, so end-to-end tests can run a node with a skewed clock
    /// (`cluster-test-clock-offset-ms`, hidden from --help).
    pub test_clock_offset_ms: i64,
    /// Age before which no tombstone is collected, ms (`cluster-tombstone-grace-ms`).
    pub tombstone_grace_ms: u64,
    /// Age after which an undelivered hint is dropped, ms (`cluster-hint-max-age-ms`).
    pub hint_max_age_ms: u64,
    /// Delete this node's replica data at start if it is too old to rejoin
    /// (`cluster-wipe-stale-data`).
    pub wipe_stale_data: bool,
    /// Send consensus commands to their key's proposer (`cluster-forward-consensus`).
    pub forward_consensus: bool,
    /// Databases whose plain writes are last-writer-wins and whose read-modify-write
    /// commands are refused; every other database runs every write through single-key
    /// consensus (`cluster-eventual-databases`; docs/consistency.md).
    pub eventual_databases: Vec<usize>,
    /// Databases whose keys keep concurrent writes as siblings with dotted version
    /// vectors, read and resolved with SIBGET/SIBSET/SIBDEL
    /// (`cluster-siblings-databases`; docs/consistency.md, "Siblings").
    pub siblings_databases: Vec<usize>,
    /// How long a consensus command may take, contention included, ms
    /// (`cluster-consensus-timeout-ms`).
    pub consensus_timeout_ms: u64,
    /// How long a suspect peer stays silent before it is down, ms
    /// (`cluster-down-after-ms`).
    pub down_after_ms: u64,
    /// Phi-accrual threshold of failure detection (`cluster-phi-threshold`).
    pub phi_threshold: u32,
    /// Present the ring to Redis Cluster-aware clients: CLUSTER SLOTS/SHARDS, each node a
    /// primary of slots, per-node KEYS/SCAN/DBSIZE (`cluster-compat`; docs/cluster.md,
    /// "Redis Cluster-aware clients").
    pub compat: bool,
    /// Run a pipeline's consecutive blind writes of an eventual database as one round
    /// instead of one after another (`cluster-group-pipelined-writes`; docs/cluster.md,
    /// "Pipelining": another client may then see a later write of the run before an
    /// earlier one).
    pub group_pipelined_writes: bool,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            enabled: false,
            port: 0,
            seeds: Vec::new(),
            bootstrap_expect: 0,
            replicas: 3,
            write_quorum: 2,
            read_quorum: 2,
            unsafe_weak_quorums: false,
            secret: None,
            announce_ip: None,
            request_timeout_ms: 2000,
            anti_entropy_interval_ms: 600_000,
            merkle_rebuild_interval_ms: 7 * 24 * 3600 * 1000,
            background_bytes_per_sec: 16 << 20,
            stream_bytes_per_sec: 50 << 20,
            tls: false,
            max_clock_offset_ms: 500,
            test_clock_offset_ms: 0,
            tombstone_grace_ms: 10 * 24 * 3600 * 1000,
            hint_max_age_ms: 3 * 3600 * 1000,
            wipe_stale_data: false,
            forward_consensus: false,
            eventual_databases: Vec::new(),
            siblings_databases: Vec::new(),
            consensus_timeout_ms: 5000,
            down_after_ms: 30_000,
            phi_threshold: 8,
            compat: false,
            group_pipelined_writes: false,
        }
    }
}

impl ClusterSettings {
    /// The bus port for a node whose client port is `client_port`.
    pub fn bus_port(&self, client_port: u16) -> u16 {
        match self.port {
            0 => client_port.wrapping_add(10000),
            p => p,
        }
    }

    /// How many nodes must meet before the first layout.
    pub fn expected_nodes(&self) -> usize {
        match self.bootstrap_expect {
            0 => self.seeds.len().max(1),
            n => n,
        }
    }
}

/// Checks the cluster settings of a configuration at start; the error is printed and
/// kvd exits, so it says what to change.
pub fn validate(c: &Config) -> Result<(), String> {
    let s = &c.cluster;
    if !s.enabled {
        if s.tls {
            return Err(
                "tls-cluster yes encrypts the cluster bus, which needs cluster-enabled yes".into(),
            );
        }
        if s.compat {
            return Err(
                "cluster-compat yes presents a kvd cluster to Redis Cluster clients, \
                        which needs cluster-enabled yes"
                    .into(),
            );
        }
        return Ok(());
    }
    let (n, w, r) = (s.replicas, s.write_quorum, s.read_quorum);
    if n == 0 || w == 0 || r == 0 || w > n || r > n {
        return Err(format!(
            "cluster quorums must satisfy 1 <= W, R <= N (N={n} W={w} R={r})"
        ));
    }
    if w + r <= n && !s.unsafe_weak_quorums {
        return Err(format!(
            "W + R must exceed N so that every read overlaps the last acknowledged write \
             (N={n} W={w} R={r}); pass --cluster-unsafe-allow-weak-quorums yes to run \
             with weaker quorums anyway"
        ));
    }
    if s.expected_nodes() < n {
        return Err(format!(
            "cluster-bootstrap-expect ({}) must be at least cluster-replicas ({n}): each key \
             needs N distinct nodes",
            s.expected_nodes()
        ));
    }
    if s.secret.is_none() && !c.binds_loopback_only() {
        return Err(
            "the cluster bus would listen on a non-loopback address without \
             --cluster-secret: any host could join the ring and read or write every key. \
             Set --cluster-secret (the same on every node) or bind to loopback only"
                .into(),
        );
    }
    if s.tls && (c.tls.cert_file.is_empty() || c.tls.ca_cert_file.is_empty()) {
        return Err(
            "tls-cluster yes needs tls-cert-file, tls-key-file and tls-ca-cert-file".into(),
        );
    }
    if c.port == 0 && s.port == 0 {
        return Err("cluster mode needs --port or an explicit --cluster-port".into());
    }
    Ok(())
}

fn opt(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

/// A number of at least `min`.
fn at_least(v: &str, min: u64) -> Result<u64, String> {
    let n: u64 = num(v)?;
    if n < min {
        return Err(format!("argument must be at least {min}"));
    }
    Ok(n)
}

fn count(v: &str) -> Result<usize, String> {
    num::<usize>(v).and_then(|n| {
        if n > 64 {
            Err("argument must be at most 64".into())
        } else {
            Ok(n)
        }
    })
}

/// The `cluster-*` parameters (see [`crate::config::param`]).
pub static CLUSTER_PARAMS: &[Param] = &[
    Param {
        name: "cluster-enabled",
        mutable: false,
        get: |c| yes_no_text(c.cluster.enabled),
        set: |c, v| {
            c.cluster.enabled = yes_no(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-port",
        mutable: false,
        get: |c| c.cluster.bus_port(c.port).to_string(),
        set: |c, v| {
            c.cluster.port = num(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-seeds",
        mutable: false,
        get: |c| c.cluster.seeds.join(","),
        set: |c, v| {
            c.cluster.seeds = v
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            Ok(())
        },
    },
    Param {
        name: "cluster-bootstrap-expect",
        mutable: false,
        get: |c| c.cluster.expected_nodes().to_string(),
        set: |c, v| {
            c.cluster.bootstrap_expect = count(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-replicas",
        mutable: false,
        get: |c| c.cluster.replicas.to_string(),
        set: |c, v| {
            c.cluster.replicas = count(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-write-quorum",
        mutable: false,
        get: |c| c.cluster.write_quorum.to_string(),
        set: |c, v| {
            c.cluster.write_quorum = count(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-read-quorum",
        mutable: false,
        get: |c| c.cluster.read_quorum.to_string(),
        set: |c, v| {
            c.cluster.read_quorum = count(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-unsafe-allow-weak-quorums",
        mutable: false,
        get: |c| yes_no_text(c.cluster.unsafe_weak_quorums),
        set: |c, v| {
            c.cluster.unsafe_weak_quorums = yes_no(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-secret",
        mutable: false,
        // Never shown, like masterauth in Redis's CONFIG GET of a redacted config.
        get: |c| {
            if c.cluster.secret.is_some() {
                "(set)"
            } else {
                ""
            }
            .into()
        },
        set: |c, v| {
            c.cluster.secret = opt(v);
            Ok(())
        },
    },
    Param {
        name: "cluster-announce-ip",
        mutable: false,
        get: |c| c.cluster.announce_ip.clone().unwrap_or_default(),
        set: |c, v| {
            c.cluster.announce_ip = opt(v);
            Ok(())
        },
    },
    Param {
        name: "cluster-request-timeout-ms",
        mutable: false,
        get: |c| c.cluster.request_timeout_ms.to_string(),
        set: |c, v| {
            c.cluster.request_timeout_ms = positive_ms(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-down-after-ms",
        mutable: false,
        get: |c| c.cluster.down_after_ms.to_string(),
        set: |c, v| {
            c.cluster.down_after_ms = at_least(v, 100)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-phi-threshold",
        mutable: false,
        get: |c| c.cluster.phi_threshold.to_string(),
        set: |c, v| {
            c.cluster.phi_threshold = match v.parse::<u32>() {
                Ok(phi) if (1..=100).contains(&phi) => phi,
                _ => return Err(format!("a number from 1 to 100, not '{v}'")),
            };
            Ok(())
        },
    },
    Param {
        name: "cluster-compat",
        mutable: false,
        get: |c| yes_no_text(c.cluster.compat),
        set: |c, v| {
            c.cluster.compat = yes_no(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-group-pipelined-writes",
        mutable: true,
        get: |c| yes_no_text(c.cluster.group_pipelined_writes),
        set: |c, v| {
            c.cluster.group_pipelined_writes = yes_no(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-anti-entropy-interval-ms",
        mutable: false,
        get: |c| c.cluster.anti_entropy_interval_ms.to_string(),
        set: |c, v| {
            c.cluster.anti_entropy_interval_ms = at_least(v, 100)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-merkle-rebuild-interval-ms",
        mutable: false,
        get: |c| c.cluster.merkle_rebuild_interval_ms.to_string(),
        set: |c, v| {
            c.cluster.merkle_rebuild_interval_ms = match num::<u64>(v)? {
                0 => 0,
                _ => at_least(v, 1000)?,
            };
            Ok(())
        },
    },
    Param {
        name: "cluster-background-bytes-per-sec",
        mutable: false,
        get: |c| c.cluster.background_bytes_per_sec.to_string(),
        set: |c, v| {
            c.cluster.background_bytes_per_sec = num(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-stream-bytes-per-sec",
        mutable: false,
        get: |c| c.cluster.stream_bytes_per_sec.to_string(),
        set: |c, v| {
            c.cluster.stream_bytes_per_sec = num(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-max-clock-offset-ms",
        mutable: false,
        get: |c| c.cluster.max_clock_offset_ms.to_string(),
        set: |c, v| {
            c.cluster.max_clock_offset_ms = at_least(v, 1)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-test-clock-offset-ms",
        mutable: false,
        get: |c| c.cluster.test_clock_offset_ms.to_string(),
        set: |c, v| {
            c.cluster.test_clock_offset_ms = num(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-tombstone-grace-ms",
        mutable: false,
        get: |c| c.cluster.tombstone_grace_ms.to_string(),
        set: |c, v| {
            c.cluster.tombstone_grace_ms = positive_ms(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-hint-max-age-ms",
        mutable: false,
        get: |c| c.cluster.hint_max_age_ms.to_string(),
        set: |c, v| {
            c.cluster.hint_max_age_ms = positive_ms(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-wipe-stale-data",
        mutable: false,
        get: |c| yes_no_text(c.cluster.wipe_stale_data),
        set: |c, v| {
            c.cluster.wipe_stale_data = yes_no(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-forward-consensus",
        mutable: false,
        get: |c| yes_no_text(c.cluster.forward_consensus),
        set: |c, v| {
            c.cluster.forward_consensus = yes_no(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-eventual-databases",
        mutable: false,
        get: |c| database_list_text(&c.cluster.eventual_databases),
        set: |c, v| {
            c.cluster.eventual_databases = database_list(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-siblings-databases",
        mutable: false,
        get: |c| database_list_text(&c.cluster.siblings_databases),
        set: |c, v| {
            c.cluster.siblings_databases = database_list(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-consensus-timeout-ms",
        mutable: false,
        get: |c| c.cluster.consensus_timeout_ms.to_string(),
        set: |c, v| {
            c.cluster.consensus_timeout_ms = positive_ms(v)?;
            Ok(())
        },
    },
];

/// A list of databases as CONFIG GET shows it (`1,2`).
fn database_list_text<'a>(dbs: impl IntoIterator<Item = &'a usize>) -> String {
    let dbs: Vec<String> = dbs.into_iter().map(|d| d.to_string()).collect();
    dbs.join(",")
}

/// `1,2,5` (or empty): distinct database numbers (checked against `databases` at start,
/// which may be set after this).
fn database_list(v: &str) -> Result<Vec<usize>, String> {
    let mut dbs = Vec::new();
    for word in v.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let db: usize = num(word)?;
        if !dbs.contains(&db) {
            dbs.push(db);
        }
    }
    Ok(dbs)
}

fn positive_ms(v: &str) -> Result<u64, String> {
    let n: u64 = num(v)?;
    if n == 0 {
        return Err("argument must be at least 1".into());
    }
    Ok(n)
}

/// The `--cluster-*` command-line flags.
#[derive(clap::Args, Debug, Default)]
pub struct ClusterFlags {
    /// Run as a node of a kvd cluster: yes or no [default: no].
    #[arg(long = "cluster-enabled")]
    pub cluster_enabled: Option<String>,
    /// Bus port for other nodes (gRPC over TCP, gossip over UDP) [default: port + 10000].
    #[arg(long = "cluster-port")]
    pub cluster_port: Option<String>,
    /// Bus addresses (host:port,...) of nodes to meet at start.
    #[arg(long = "cluster-seeds")]
    pub cluster_seeds: Option<String>,
    /// Nodes that must meet before the first layout is made [default: the number of seeds].
    #[arg(long = "cluster-bootstrap-expect")]
    pub cluster_bootstrap_expect: Option<String>,
    /// Replicas of every key, N [default: 3].
    #[arg(long = "cluster-replicas")]
    pub cluster_replicas: Option<String>,
    /// Replica acknowledgements a write waits for, W [default: 2].
    #[arg(long = "cluster-write-quorum")]
    pub cluster_write_quorum: Option<String>,
    /// Replica answers a read waits for, R [default: 2].
    #[arg(long = "cluster-read-quorum")]
    pub cluster_read_quorum: Option<String>,
    /// Accept W + R <= N (reads may miss acknowledged writes) [default: no].
    #[arg(long = "cluster-unsafe-allow-weak-quorums")]
    pub cluster_unsafe_allow_weak_quorums: Option<String>,
    /// Secret shared by all nodes; required when the bus is not on loopback only. Prefer
    /// the config file (`cluster-secret ...`): command lines are visible to other users.
    #[arg(long = "cluster-secret")]
    pub cluster_secret: Option<String>,
    /// Address other nodes and clients use to reach this node [default: first --bind].
    #[arg(long = "cluster-announce-ip")]
    pub cluster_announce_ip: Option<String>,
    /// Deadline of one replicated request in ms [default: 2000].
    #[arg(long = "cluster-request-timeout-ms")]
    pub cluster_request_timeout_ms: Option<String>,
    /// How often each partition is compared with its other replicas, ms [default: 600000].
    #[arg(long = "cluster-anti-entropy-interval-ms")]
    pub cluster_anti_entropy_interval_ms: Option<String>,
    /// How long one pass of the slow Merkle rebuild from data over every partition
    /// takes, ms; 0 = never [default: 604800000, 7 days].
    #[arg(long = "cluster-merkle-rebuild-interval-ms")]
    pub cluster_merkle_rebuild_interval_ms: Option<String>,
    /// Bytes per second that hint replay and anti-entropy share; 0 = unlimited
    /// [default: 16777216].
    #[arg(long = "cluster-background-bytes-per-sec")]
    pub cluster_background_bytes_per_sec: Option<String>,
    /// Bytes per second a new replica streams its partitions at during a layout change;
    /// 0 = unlimited [default: 52428800].
    #[arg(long = "cluster-stream-bytes-per-sec")]
    pub cluster_stream_bytes_per_sec: Option<String>,
    /// Largest clock offset (ms) to a majority of peers before this node stops
    /// coordinating and reports not ready [default: 500].
    #[arg(long = "cluster-max-clock-offset-ms")]
    pub cluster_max_clock_offset_ms: Option<String>,
    /// TEST ONLY: shift this node's wall clock by this many ms (skew tests).
    #[arg(
        long = "cluster-test-clock-offset-ms",
        hide = true,
        allow_hyphen_values = true
    )]
    pub cluster_test_clock_offset_ms: Option<String>,
    /// Age in ms before which no tombstone is collected; a node out of sync for about as
    /// long must be wiped to rejoin [default: 864000000, 10 days].
    #[arg(long = "cluster-tombstone-grace-ms")]
    pub cluster_tombstone_grace_ms: Option<String>,
    /// Age in ms after which an undelivered hint is dropped; must stay below the
    /// tombstone grace [default: 10800000, 3 h].
    #[arg(long = "cluster-hint-max-age-ms")]
    pub cluster_hint_max_age_ms: Option<String>,
    /// At start, delete this node's replica data if it is too old to rejoin safely and
    /// let anti-entropy refill it: yes or no [default: no, such a node refuses to start].
    #[arg(long = "cluster-wipe-stale-data")]
    pub cluster_wipe_stale_data: Option<String>,
    /// Send each consensus command to its key's proposer, the first of its replicas that
    /// is up, so proposers on several nodes do not duel on a hot key; a proposer that
    /// stops answering then holds its keys' writes until it is suspected: yes or no
    /// [default: no].
    #[arg(long = "cluster-forward-consensus")]
    pub cluster_forward_consensus: Option<String>,
    /// Databases (e.g. 1,2) that are eventual: plain writes last-writer-wins, commands
    /// that read before writing refused; every other database is linearizable, every
    /// write through single-key consensus [default: none].
    #[arg(long = "cluster-eventual-databases")]
    pub cluster_eventual_databases: Option<String>,
    /// Databases (e.g. 2,3) whose keys keep concurrent writes as siblings with dotted
    /// version vectors, read with SIBGET and resolved with SIBSET/SIBDEL; disjoint from
    /// the eventual ones [default: none].
    #[arg(long = "cluster-siblings-databases")]
    pub cluster_siblings_databases: Option<String>,
    /// How long a consensus command may take, contention included, ms [default: 5000].
    #[arg(long = "cluster-consensus-timeout-ms")]
    pub cluster_consensus_timeout_ms: Option<String>,
    /// A suspect peer silent this long (ms) is down: coordinators hint for it without
    /// trying it [default: 30000].
    #[arg(long = "cluster-down-after-ms")]
    pub cluster_down_after_ms: Option<String>,
    /// Phi-accrual threshold above which a silent peer is suspect; higher tolerates
    /// longer stalls and notices dead nodes later [default: 8].
    #[arg(long = "cluster-phi-threshold")]
    pub cluster_phi_threshold: Option<String>,
    /// Present the cluster to Redis Cluster-aware clients (CLUSTER SLOTS/SHARDS, per-node
    /// KEYS/SCAN/DBSIZE): yes or no [default: no].
    #[arg(long = "cluster-compat")]
    pub cluster_compat: Option<String>,
    /// Run a pipeline's consecutive SET/SETEX/PSETEX/MSET of an eventual database as
    /// one replication round; another client may then see a later write of the run
    /// before an earlier one: yes or no [default: no].
    #[arg(long = "cluster-group-pipelined-writes")]
    pub cluster_group_pipelined_writes: Option<String>,
}

impl ClusterFlags {
    /// `(parameter name, value)` for each flag given.
    pub fn settings(self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("cluster-enabled", self.cluster_enabled),
            ("cluster-port", self.cluster_port),
            ("cluster-seeds", self.cluster_seeds),
            ("cluster-bootstrap-expect", self.cluster_bootstrap_expect),
            ("cluster-replicas", self.cluster_replicas),
            ("cluster-write-quorum", self.cluster_write_quorum),
            ("cluster-read-quorum", self.cluster_read_quorum),
            (
                "cluster-unsafe-allow-weak-quorums",
                self.cluster_unsafe_allow_weak_quorums,
            ),
            ("cluster-secret", self.cluster_secret),
            ("cluster-announce-ip", self.cluster_announce_ip),
            (
                "cluster-request-timeout-ms",
                self.cluster_request_timeout_ms,
            ),
            (
                "cluster-anti-entropy-interval-ms",
                self.cluster_anti_entropy_interval_ms,
            ),
            (
                "cluster-merkle-rebuild-interval-ms",
                self.cluster_merkle_rebuild_interval_ms,
            ),
            (
                "cluster-background-bytes-per-sec",
                self.cluster_background_bytes_per_sec,
            ),
            (
                "cluster-stream-bytes-per-sec",
                self.cluster_stream_bytes_per_sec,
            ),
            (
                "cluster-max-clock-offset-ms",
                self.cluster_max_clock_offset_ms,
            ),
            (
                "cluster-test-clock-offset-ms",
                self.cluster_test_clock_offset_ms,
            ),
            (
                "cluster-tombstone-grace-ms",
                self.cluster_tombstone_grace_ms,
            ),
            ("cluster-hint-max-age-ms", self.cluster_hint_max_age_ms),
            ("cluster-wipe-stale-data", self.cluster_wipe_stale_data),
            ("cluster-forward-consensus", self.cluster_forward_consensus),
            (
                "cluster-eventual-databases",
                self.cluster_eventual_databases,
            ),
            (
                "cluster-siblings-databases",
                self.cluster_siblings_databases,
            ),
            (
                "cluster-consensus-timeout-ms",
                self.cluster_consensus_timeout_ms,
            ),
            ("cluster-down-after-ms", self.cluster_down_after_ms),
            ("cluster-phi-threshold", self.cluster_phi_threshold),
            ("cluster-compat", self.cluster_compat),
            (
                "cluster-group-pipelined-writes",
                self.cluster_group_pipelined_writes,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cli;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, String> {
        let mut all = vec!["kvd"];
        all.extend_from_slice(args);
        let c = Cli::try_parse_from(all)
            .map_err(|e| e.to_string())?
            .into_config()?;
        validate(&c)?;
        Ok(c)
    }

    #[test]
    fn the_contract_flags_parse_with_redis_defaults() {
        let c = config(&[
            "--port",
            "7001",
            "--cluster-enabled",
            "yes",
            "--cluster-seeds",
            "127.0.0.1:17001,127.0.0.1:17002,127.0.0.1:17003",
            "--cluster-bootstrap-expect",
            "3",
        ])
        .unwrap();
        let s = &c.cluster;
        assert!(s.enabled);
        assert_eq!(s.bus_port(c.port), 17001);
        assert_eq!(s.seeds.len(), 3);
        assert_eq!((s.replicas, s.write_quorum, s.read_quorum), (3, 2, 2));
        assert_eq!(s.expected_nodes(), 3);
    }

    #[test]
    fn weak_quorums_need_the_unsafe_flag() {
        let weak = ["--cluster-enabled", "yes", "--cluster-write-quorum", "1"];
        let mut seeds = weak.to_vec();
        seeds.extend([
            "--cluster-seeds",
            "a:1,b:1,c:1",
            "--cluster-read-quorum",
            "1",
        ]);
        assert!(config(&seeds).unwrap_err().contains("W + R must exceed N"));
        seeds.extend(["--cluster-unsafe-allow-weak-quorums", "yes"]);
        assert!(config(&seeds).is_ok());
        let too_big = [
            "--cluster-enabled",
            "yes",
            "--cluster-seeds",
            "a:1,b:1,c:1",
            "--cluster-write-quorum",
            "4",
        ];
        assert!(config(&too_big).unwrap_err().contains("1 <= W, R <= N"));
    }

    #[test]
    fn a_public_bus_needs_a_secret() {
        let public = [
            "--cluster-enabled",
            "yes",
            "--cluster-seeds",
            "a:1,b:1,c:1",
            "--bind",
            "0.0.0.0",
            "--requirepass",
            "x",
        ];
        assert!(config(&public).unwrap_err().contains("--cluster-secret"));
        let mut with_secret = public.to_vec();
        with_secret.extend(["--cluster-secret", "s3cret"]);
        let c = config(&with_secret).unwrap();
        assert_eq!(
            (crate::config::param("cluster-secret").unwrap().get)(&c),
            "(set)"
        );
    }

    #[test]
    fn too_few_nodes_for_n_replicas_is_refused() {
        let c = config(&["--cluster-enabled", "yes", "--cluster-seeds", "a:1,b:1"]);
        assert!(c.unwrap_err().contains("at least cluster-replicas"));
    }

    #[test]
    fn the_timing_flags_reach_the_config() {
        let c = config(&[
            "--cluster-enabled",
            "yes",
            "--cluster-seeds",
            "a:1,b:1,c:1",
            "--cluster-request-timeout-ms",
            "1234",
            "--cluster-anti-entropy-interval-ms",
            "1500",
            "--cluster-max-clock-offset-ms",
            "250",
            "--cluster-test-clock-offset-ms",
            "-3000",
            "--cluster-tombstone-grace-ms",
            "60000",
            "--cluster-hint-max-age-ms",
            "20000",
            "--cluster-wipe-stale-data",
            "yes",
        ])
        .unwrap();
        assert_eq!(c.cluster.request_timeout_ms, 1234);
        assert_eq!(c.cluster.anti_entropy_interval_ms, 1500);
        assert_eq!(c.cluster.max_clock_offset_ms, 250);
        assert_eq!(c.cluster.test_clock_offset_ms, -3000);
        let node = crate::cluster_start::node_config(&c).unwrap();
        assert_eq!(node.cluster.max_clock_offset.as_millis(), 250);
        assert_eq!(node.test_clock_offset_ms, -3000);
        assert!(!node.fsync_always, "appendfsync everysec by default");
        let mut bad = Config::default();
        assert!(bad.apply("cluster-max-clock-offset-ms", "0").is_err());
        assert_eq!(c.cluster.tombstone_grace_ms, 60000);
        assert_eq!(c.cluster.hint_max_age_ms, 20000);
        assert!(c.cluster.wipe_stale_data);
    }

    #[test]
    fn a_wildcard_bind_needs_and_takes_an_announce_address() {
        let base = [
            "--bind",
            "0.0.0.0",
            "--port",
            "6379",
            "--cluster-enabled",
            "yes",
            "--cluster-secret",
            "s",
            "--cluster-bootstrap-expect",
            "3",
        ];
        let c = config(&base).unwrap();
        let e = crate::cluster_start::node_config(&c).unwrap_err();
        assert!(e.contains("--cluster-announce-ip"), "{e}");
        let mut announced = base.to_vec();
        announced.extend(["--cluster-announce-ip", "10.1.2.3"]);
        let node = crate::cluster_start::node_config(&config(&announced).unwrap()).unwrap();
        assert_eq!(node.announce_ip, "10.1.2.3");
    }

    #[test]
    fn config_file_directives_work_too() {
        let mut c = Config::default();
        c.apply_file_text("cluster-enabled yes\ncluster-port 17009\ncluster-seeds x:1 y:2\n")
            .unwrap();
        assert_eq!((c.cluster.port, c.cluster.seeds.len()), (17009, 2));
        let flags = Cli::try_parse_from(["kvd", "--cluster-anti-entropy-interval-ms", "1000"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(flags.cluster.anti_entropy_interval_ms, 1000);
        assert!(c
            .apply("cluster-background-bytes-per-sec", "1048576")
            .is_ok());
        assert_eq!(c.cluster.background_bytes_per_sec, 1 << 20);
        assert!(c.apply("cluster-stream-bytes-per-sec", "0").is_ok());
        assert_eq!(c.cluster.stream_bytes_per_sec, 0);
        assert!(c.apply("cluster-replicas", "100").is_err());
    }

    #[test]
    fn compat_mode_is_a_flag_and_a_directive_and_needs_cluster_mode() {
        let c = config(&[
            "--cluster-enabled",
            "yes",
            "--cluster-seeds",
            "a:1,b:1,c:1",
            "--cluster-compat",
            "yes",
        ])
        .unwrap();
        assert!(c.cluster.compat);
        assert_eq!(
            (crate::config::param("cluster-compat").unwrap().get)(&c),
            "yes"
        );
        let mut file = Config::default();
        file.apply_file_text("cluster-enabled yes\ncluster-compat yes\n")
            .unwrap();
        assert!(file.cluster.compat);
        let e = config(&["--cluster-compat", "yes"]).unwrap_err();
        assert!(e.contains("needs cluster-enabled yes"), "{e}");
        assert!(!config(&[]).unwrap().cluster.compat, "off by default");
    }
}
