//! Configuration: defaults, Redis-style command-line flags, config files, and the parameter
//! table that CONFIG GET/SET read (one table for all three).

use crate::tls::{suites, AuthClients, TlsSettings};
use clap::Parser;
use kv_engine::FsyncPolicy;
use std::path::PathBuf;

/// Effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// TCP port (`port`).
    pub port: u16,
    /// Addresses to listen on (`bind`).
    pub bind: Vec<String>,
    /// Data directory (`dir`).
    pub dir: PathBuf,
    /// Password of the default user (`requirepass`).
    pub requirepass: Option<String>,
    /// WAL fsync policy (`appendfsync`), fixed at start.
    pub appendfsync: FsyncPolicy,
    /// Number of logical databases (`databases`).
    pub databases: usize,
    /// Maximum simultaneous clients (`maxclients`).
    pub maxclients: usize,
    /// Close idle clients after this many seconds; 0 = never (`timeout`).
    pub timeout: u64,
    /// Accepted for compatibility; kvd persists every write (`save`).
    pub save: String,
    /// Log file; empty = stderr (`logfile`).
    pub logfile: String,
    /// Log level: debug, verbose, notice, warning (`loglevel`).
    pub loglevel: String,
    /// Refuse non-loopback binds without a password (`protected-mode`).
    pub protected_mode: bool,
    /// Largest bulk string accepted (`proto-max-bulk-len`).
    pub proto_max_bulk_len: u64,
    /// Largest unprocessed input per client (`client-query-buffer-limit`).
    pub client_query_buffer_limit: u64,
    /// Pending reply bytes per client before it is disconnected (`client-output-buffer-limit`).
    pub client_output_buffer_limit: crate::output_limits::OutputLimits,
    /// Slow log threshold in microseconds; negative disables (`slowlog-log-slower-than`).
    pub slowlog_log_slower_than: i64,
    /// Slow log length (`slowlog-max-len`).
    pub slowlog_max_len: u64,
    /// kvd: how long a request id's reply is remembered, ms (`idempotency-window-ms`).
    pub idempotency_window_ms: u64,
    /// Active expiry cycles per second (`hz`).
    pub hz: u64,
    /// Where CHECKPOINT may write (`backup-dir`); fixed at start.
    pub backup_dir: Option<PathBuf>,
    /// Whether CHECKPOINT may write outside `backup-dir` (`enable-checkpoint-anywhere`).
    pub checkpoint_anywhere: crate::checkpoint_policy::Anywhere,
    /// The config file read at start, if any.
    pub config_file: Option<PathBuf>,
    /// ACL users file for ACL LOAD/SAVE (`aclfile`).
    pub aclfile: Option<PathBuf>,
    /// `user <name> <rules...>` lines of the config file (the words after `user`).
    pub users: Vec<Vec<String>>,
    /// Longest ACL LOG (`acllog-max-len`).
    pub acllog_max_len: u64,
    /// TLS for clients (`tls-*`).
    pub tls: TlsSettings,
    /// Cluster membership (`cluster-*`, see cluster_config.rs).
    pub cluster: crate::cluster_config::ClusterSettings,
    /// ms a script runs before other clients get -BUSY (`busy-reply-threshold`, alias
    /// `lua-time-limit`).
    pub busy_reply_threshold: u64,
    /// kvd: bytes the Lua state may allocate (`lua-memory-limit`); 0 = no limit.
    pub lua_memory_limit: u64,
    /// The HTTP front end (`http-*`, see http/settings.rs).
    pub http: crate::http::settings::HttpSettings,
    /// kvd: the Redis version reported to clients (`compat-version`), fixed at start.
    pub compat_version: crate::compat_version::CompatVersion,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 6380,
            bind: vec!["127.0.0.1".into()],
            dir: PathBuf::from("./data"),
            requirepass: None,
            appendfsync: FsyncPolicy::EverySec,
            databases: 16,
            maxclients: 10000,
            timeout: 0,
            save: String::new(),
            logfile: String::new(),
            loglevel: "notice".into(),
            protected_mode: true,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            client_output_buffer_limit: Default::default(),
            slowlog_log_slower_than: 10_000,
            slowlog_max_len: 128,
            idempotency_window_ms: 24 * 3600 * 1000,
            hz: 10,
            backup_dir: None,
            checkpoint_anywhere: Default::default(),
            config_file: None,
            aclfile: None,
            users: Vec::new(),
            acllog_max_len: 128,
            tls: TlsSettings::default(),
            cluster: Default::default(),
            busy_reply_threshold: 5000,
            lua_memory_limit: 256 * 1024 * 1024,
            http: Default::default(),
            compat_version: Default::default(),
        }
    }
}

/// Parses a Redis memory size: `1024`, `1k`, `1kb`, `512mb`, `1gb` (k=1000, kb=1024).
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let l = s.to_ascii_lowercase();
    let split = l.find(|c: char| !c.is_ascii_digit()).unwrap_or(l.len());
    let (num, unit) = l.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("argument must be a memory value: '{s}'"))?;
    let mul = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err(format!("argument must be a memory value: '{s}'")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("argument out of range: '{s}'"))
}

pub(crate) fn yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

/// `yes` or `no`, as CONFIG GET shows a flag.
pub(crate) fn yes_no_text(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

pub(crate) fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())
}

/// One configuration parameter.
pub struct Param {
    /// Name as CONFIG GET/SET and config files spell it.
    pub name: &'static str,
    /// Whether CONFIG SET may change it at run time.
    pub mutable: bool,
    /// Current value as text.
    pub get: fn(&Config) -> String,
    /// Sets it from text.
    pub set: fn(&mut Config, &str) -> Result<(), String>,
}

fn fsync_name(p: FsyncPolicy) -> &'static str {
    match p {
        FsyncPolicy::Always => "always",
        FsyncPolicy::EverySec => "everysec",
        FsyncPolicy::No => "no",
    }
}

/// A `tls-*` text parameter, fixed at start (the certificates are read then), checked by
/// `$check` when set.
macro_rules! tls_text {
    ($name:literal, $field:ident, $check:expr) => {
        Param {
            name: $name,
            mutable: false,
            get: |c| c.tls.$field.clone(),
            set: |c, v| {
                let check: fn(&str) -> Result<(), String> = $check;
                check(v)?;
                c.tls.$field = v.to_string();
                Ok(())
            },
        }
    };
}

fn any_text(_: &str) -> Result<(), String> {
    Ok(())
}

/// Parameters that only make sense with a cluster, which kvd does not have yet: `no` is
/// accepted so Redis config files load.
fn needs_replication(v: &str) -> Result<(), String> {
    if yes_no(v)? {
        Err("kvd has no replication from a Redis primary, so there is nothing to encrypt".into())
    } else {
        Ok(())
    }
}

fn set_busy_reply_threshold(c: &mut Config, v: &str) -> Result<(), String> {
    c.busy_reply_threshold = num(v)?;
    Ok(())
}

/// Every parameter kvd knows.
pub static PARAMS: &[Param] = &[
    Param {
        name: "port",
        mutable: false,
        get: |c| c.port.to_string(),
        set: |c, v| {
            c.port = num(v)?;
            Ok(())
        },
    },
    Param {
        name: "tls-port",
        mutable: false,
        get: |c| c.tls.port.to_string(),
        set: |c, v| {
            c.tls.port = num(v)?;
            Ok(())
        },
    },
    tls_text!("tls-cert-file", cert_file, any_text),
    tls_text!("tls-key-file", key_file, any_text),
    tls_text!("tls-key-file-pass", key_file_pass, any_text),
    tls_text!("tls-client-cert-file", client_cert_file, any_text),
    tls_text!("tls-client-key-file", client_key_file, any_text),
    tls_text!("tls-client-key-file-pass", client_key_file_pass, any_text),
    tls_text!("tls-ca-cert-file", ca_cert_file, any_text),
    tls_text!("tls-ca-cert-dir", ca_cert_dir, any_text),
    tls_text!("tls-protocols", protocols, |v| suites::protocols(v)
        .map(|_| ())),
    tls_text!("tls-ciphersuites", ciphersuites, |v| suites::tls13_suites(
        v
    )
    .map(|_| ())),
    tls_text!("tls-ciphers", ciphers, |v| suites::tls12_suites(v)
        .map(|_| ())),
    Param {
        name: "tls-auth-clients",
        mutable: false,
        get: |c| c.tls.auth_clients.name().into(),
        set: |c, v| {
            c.tls.auth_clients = AuthClients::parse(v)?;
            Ok(())
        },
    },
    Param {
        name: "tls-prefer-server-ciphers",
        mutable: false,
        get: |c| {
            if c.tls.prefer_server_ciphers {
                "yes"
            } else {
                "no"
            }
            .into()
        },
        set: |c, v| {
            c.tls.prefer_server_ciphers = yes_no(v)?;
            Ok(())
        },
    },
    Param {
        name: "tls-handshake-timeout-ms",
        mutable: true,
        get: |c| c.tls.handshake_timeout_ms.to_string(),
        set: |c, v| {
            let n: u64 = num(v)?;
            if n == 0 {
                return Err("argument must be at least 1".into());
            }
            c.tls.handshake_timeout_ms = n;
            Ok(())
        },
    },
    Param {
        name: "tls-cluster",
        mutable: false,
        get: |c| if c.cluster.tls { "yes" } else { "no" }.into(),
        set: |c, v| {
            c.cluster.tls = yes_no(v)?;
            Ok(())
        },
    },
    Param {
        name: "tls-replication",
        mutable: false,
        get: |_| "no".into(),
        set: |_, v| needs_replication(v),
    },
    Param {
        name: "bind",
        mutable: false,
        get: |c| c.bind.join(" "),
        set: |c, v| {
            c.bind = v.split_whitespace().map(String::from).collect();
            if c.bind.is_empty() {
                return Err("bind needs an address".into());
            }
            Ok(())
        },
    },
    Param {
        name: "dir",
        mutable: false,
        get: |c| c.dir.display().to_string(),
        set: |c, v| {
            c.dir = PathBuf::from(v);
            Ok(())
        },
    },
    Param {
        name: "requirepass",
        mutable: true,
        get: |c| c.requirepass.clone().unwrap_or_default(),
        set: |c, v| {
            c.requirepass = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        },
    },
    Param {
        name: "appendfsync",
        mutable: false,
        get: |c| fsync_name(c.appendfsync).into(),
        set: |c, v| {
            c.appendfsync = v.parse().map_err(|_| {
                "argument(s) must be one of the following: always, everysec, no".to_string()
            })?;
            Ok(())
        },
    },
    Param {
        name: "appendonly",
        mutable: false,
        get: |_| "yes".into(),
        set: |_, v| yes_no(v).map(|_| ()),
    },
    Param {
        name: "databases",
        mutable: false,
        get: |c| c.databases.to_string(),
        set: |c, v| {
            let n: usize = num(v)?;
            if !(1..=65536).contains(&n) {
                return Err("argument must be between 1 and 65536 inclusive".into());
            }
            c.databases = n;
            Ok(())
        },
    },
    Param {
        name: "maxclients",
        mutable: true,
        get: |c| c.maxclients.to_string(),
        set: |c, v| {
            let n: usize = num(v)?;
            if n < 1 {
                return Err("argument must be between 1 and 4294967295 inclusive".into());
            }
            c.maxclients = n;
            Ok(())
        },
    },
    Param {
        name: "timeout",
        mutable: true,
        get: |c| c.timeout.to_string(),
        set: |c, v| {
            c.timeout = num(v)?;
            Ok(())
        },
    },
    Param {
        name: "save",
        mutable: true,
        get: |c| c.save.clone(),
        set: |c, v| {
            c.save = v.to_string();
            Ok(())
        },
    },
    Param {
        name: "logfile",
        mutable: false,
        get: |c| c.logfile.clone(),
        set: |c, v| {
            c.logfile = v.to_string();
            Ok(())
        },
    },
    Param {
        name: "loglevel",
        mutable: false,
        get: |c| c.loglevel.clone(),
        set: |c, v| {
            match v { "debug" | "verbose" | "notice" | "warning" | "nothing" => { c.loglevel = v.into(); Ok(()) } _ => Err("argument(s) must be one of the following: debug, verbose, notice, warning, nothing".into()) }
        },
    },
    Param {
        name: "protected-mode",
        mutable: true,
        get: |c| if c.protected_mode { "yes" } else { "no" }.into(),
        set: |c, v| {
            c.protected_mode = yes_no(v)?;
            Ok(())
        },
    },
    Param {
        name: "aclfile",
        mutable: false,
        get: |c| {
            c.aclfile
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        },
        set: |c, v| {
            c.aclfile = (!v.is_empty()).then(|| PathBuf::from(v));
            Ok(())
        },
    },
    Param {
        name: "acllog-max-len",
        mutable: true,
        get: |c| c.acllog_max_len.to_string(),
        set: |c, v| {
            c.acllog_max_len = num(v)?;
            Ok(())
        },
    },
    Param {
        name: "proto-max-bulk-len",
        mutable: true,
        get: |c| c.proto_max_bulk_len.to_string(),
        set: |c, v| {
            let n = parse_memory(v)?;
            if n < 1024 * 1024 {
                return Err("argument must be a memory value of at least 1mb".into());
            }
            c.proto_max_bulk_len = n;
            Ok(())
        },
    },
    Param {
        name: "client-query-buffer-limit",
        mutable: true,
        get: |c| c.client_query_buffer_limit.to_string(),
        set: |c, v| {
            let n = parse_memory(v)?;
            if n < 1024 * 1024 {
                return Err("argument must be a memory value of at least 1mb".into());
            }
            c.client_query_buffer_limit = n;
            Ok(())
        },
    },
    Param {
        name: "client-output-buffer-limit",
        mutable: true,
        get: |c| c.client_output_buffer_limit.render(),
        set: |c, v| c.client_output_buffer_limit.apply(v),
    },
    Param {
        name: "slowlog-log-slower-than",
        mutable: true,
        get: |c| c.slowlog_log_slower_than.to_string(),
        set: |c, v| {
            c.slowlog_log_slower_than = num(v)?;
            Ok(())
        },
    },
    Param {
        name: "slowlog-max-len",
        mutable: true,
        get: |c| c.slowlog_max_len.to_string(),
        set: |c, v| {
            c.slowlog_max_len = num(v)?;
            Ok(())
        },
    },
    Param {
        name: "idempotency-window-ms",
        mutable: true,
        get: |c| c.idempotency_window_ms.to_string(),
        set: |c, v| {
            let n: u64 = num(v)?;
            let max = crate::keyspace::idempotency::MAX_WINDOW_MS;
            if n > max {
                return Err(format!("argument must be between 0 and {max} inclusive"));
            }
            c.idempotency_window_ms = n;
            Ok(())
        },
    },
    Param {
        name: "hz",
        mutable: true,
        get: |c| c.hz.to_string(),
        set: |c, v| {
            let n: u64 = num(v)?;
            c.hz = n.clamp(1, 500);
            Ok(())
        },
    },
    Param {
        name: "daemonize",
        mutable: false,
        get: |_| "no".into(),
        set: |_, v| {
            if yes_no(v)? {
                Err("kvd does not daemonize; run it under a supervisor".into())
            } else {
                Ok(())
            }
        },
    },
    Param {
        name: "backup-dir",
        mutable: false,
        get: |c| {
            c.backup_dir
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        },
        set: |c, v| {
            let p = PathBuf::from(v);
            if !v.is_empty() && !p.is_absolute() {
                return Err("backup-dir must be an absolute path".into());
            }
            c.backup_dir = (!v.is_empty()).then_some(p);
            Ok(())
        },
    },
    Param {
        name: "enable-checkpoint-anywhere",
        mutable: false,
        get: |c| c.checkpoint_anywhere.name().into(),
        set: |c, v| {
            c.checkpoint_anywhere = crate::checkpoint_policy::Anywhere::parse(v)?;
            Ok(())
        },
    },
    Param {
        name: "compat-version",
        mutable: false,
        get: |c| c.compat_version.text().into(),
        set: |c, v| {
            c.compat_version = crate::compat_version::CompatVersion::parse(v)?;
            Ok(())
        },
    },
    Param {
        name: "maxmemory",
        mutable: true,
        get: |_| "0".into(),
        set: |_, v| parse_memory(v).map(|_| ()),
    },
    Param {
        name: "busy-reply-threshold",
        mutable: true,
        get: |c| c.busy_reply_threshold.to_string(),
        set: set_busy_reply_threshold,
    },
    Param {
        name: "lua-time-limit", // Redis's older name of busy-reply-threshold
        mutable: true,
        get: |c| c.busy_reply_threshold.to_string(),
        set: set_busy_reply_threshold,
    },
    Param {
        name: "lua-memory-limit",
        mutable: true,
        get: |c| c.lua_memory_limit.to_string(),
        set: |c, v| {
            let n = parse_memory(v)?;
            if n != 0 && n < 1024 * 1024 {
                return Err("argument must be 0 (no limit) or at least 1mb".into());
            }
            c.lua_memory_limit = n;
            Ok(())
        },
    },
];

/// Every parameter: the general table, then the cluster's, then the HTTP front end's.
pub fn all_params() -> impl Iterator<Item = &'static Param> {
    PARAMS
        .iter()
        .chain(crate::cluster_config::CLUSTER_PARAMS.iter())
        .chain(crate::http::settings::HTTP_PARAMS.iter())
}

/// Looks a parameter up by name (any case).
pub fn param(name: &str) -> Option<&'static Param> {
    all_params().find(|p| p.name.eq_ignore_ascii_case(name))
}

impl Config {
    /// Applies one `name value` setting.
    pub fn apply(&mut self, name: &str, value: &str) -> Result<(), String> {
        let p = param(name).ok_or_else(|| format!("unknown parameter '{name}'"))?;
        (p.set)(self, value)
    }

    /// Applies a config file's text (`name value...` lines, `#` comments, Redis quoting).
    pub fn apply_file_text(&mut self, text: &str) -> Result<(), String> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = crate::protocol::parser::split_args(line.as_bytes())
                .ok_or_else(|| format!("line {}: unbalanced quotes", i + 1))?;
            let words: Vec<String> = words
                .iter()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            let Some((name, rest)) = words.split_first() else {
                continue;
            };
            if name.eq_ignore_ascii_case("include") {
                return Err(format!("line {}: 'include' is not supported", i + 1));
            }
            if name.eq_ignore_ascii_case("user") {
                // ACL users: checked when the server builds them (acl::Acl::from_config).
                self.users.push(rest.to_vec());
                continue;
            }
            self.apply(name, &rest.join(" "))
                .map_err(|e| format!("line {}: {e}", i + 1))?;
        }
        Ok(())
    }

    /// True if every bind address is a loopback address.
    pub fn binds_loopback_only(&self) -> bool {
        self.bind.iter().all(|b| {
            let b = b.trim_start_matches('-');
            b == "localhost"
                || b.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
    }
}

/// kvd's command line. Every flag is also a config-file directive and a CONFIG parameter.
#[derive(Parser, Debug, Default)]
#[command(
    name = "kvd",
    version,
    about = "kvd: a persistent, Redis-compatible key-value server on the kv-engine LSM store.",
    long_about = "kvd speaks RESP2/RESP3 and Redis 7 command semantics; data lives on disk in --dir.\n\
                  Usage like redis-server: `kvd [/path/to/kvd.conf] [--port 6380] [--dir ./data] ...`.\n\
                  Flags override the config file; the config file uses redis.conf syntax (`port 6380`)."
)]
pub struct Cli {
    /// Config file in redis.conf syntax (`name value` per line).
    pub config_file: Option<PathBuf>,
    /// TCP port to listen on [default: 6380].
    #[arg(long)]
    pub port: Option<String>,
    /// TLS port for clients; 0 = no TLS. With --port 0, kvd serves TLS only [default: 0].
    #[arg(long = "tls-port")]
    pub tls_port: Option<String>,
    /// Server certificate chain (PEM), needed with --tls-port.
    #[arg(long = "tls-cert-file")]
    pub tls_cert_file: Option<String>,
    /// Private key of --tls-cert-file (PEM; encrypted PKCS#8 with --tls-key-file-pass).
    #[arg(long = "tls-key-file")]
    pub tls_key_file: Option<String>,
    /// Passphrase of an encrypted (PKCS#8) --tls-key-file.
    #[arg(long = "tls-key-file-pass")]
    pub tls_key_file_pass: Option<String>,
    /// Certificate kvd presents when it is the client (the future cluster bus)
    /// [default: --tls-cert-file].
    #[arg(long = "tls-client-cert-file")]
    pub tls_client_cert_file: Option<String>,
    /// Key of --tls-client-cert-file [default: --tls-key-file].
    #[arg(long = "tls-client-key-file")]
    pub tls_client_key_file: Option<String>,
    /// Passphrase of an encrypted --tls-client-key-file.
    #[arg(long = "tls-client-key-file-pass")]
    pub tls_client_key_file_pass: Option<String>,
    /// CA certificates (PEM) that sign client certificates.
    #[arg(long = "tls-ca-cert-file")]
    pub tls_ca_cert_file: Option<String>,
    /// Directory of CA certificate PEM files.
    #[arg(long = "tls-ca-cert-dir")]
    pub tls_ca_cert_dir: Option<String>,
    /// yes, no or optional: must TLS clients present a certificate signed by the CA?
    /// [default: yes].
    #[arg(long = "tls-auth-clients")]
    pub tls_auth_clients: Option<String>,
    /// TLS versions to accept, e.g. "TLSv1.2 TLSv1.3" [default: both].
    #[arg(long = "tls-protocols")]
    pub tls_protocols: Option<String>,
    /// TLSv1.3 cipher suites, colon-separated [default: all rustls offers].
    #[arg(long = "tls-ciphersuites")]
    pub tls_ciphersuites: Option<String>,
    /// TLSv1.2 ciphers, colon-separated OpenSSL names [default: all rustls offers].
    #[arg(long = "tls-ciphers")]
    pub tls_ciphers: Option<String>,
    /// yes/no: pick the cipher by the server's preference [default: no].
    #[arg(long = "tls-prefer-server-ciphers")]
    pub tls_prefer_server_ciphers: Option<String>,
    /// Close a TLS connection whose handshake takes longer, ms [default: 10000].
    #[arg(long = "tls-handshake-timeout-ms")]
    pub tls_handshake_timeout_ms: Option<String>,
    /// Only "no" for now: kvd has no cluster bus yet.
    #[arg(long = "tls-cluster")]
    pub tls_cluster: Option<String>,
    /// Only "no" for now: kvd has no replication yet.
    #[arg(long = "tls-replication")]
    pub tls_replication: Option<String>,
    /// Addresses to listen on, space-separated [default: 127.0.0.1]. Non-loopback addresses
    /// need --requirepass unless --protected-mode no.
    #[arg(long)]
    pub bind: Option<String>,
    /// Data directory [default: ./data].
    #[arg(long)]
    pub dir: Option<String>,
    /// Password clients must give with AUTH or HELLO.
    #[arg(long)]
    pub requirepass: Option<String>,
    /// When acknowledged writes are fsynced: always, everysec or no [default: everysec].
    #[arg(long)]
    pub appendfsync: Option<String>,
    /// Number of databases (SELECT 0..n-1) [default: 16].
    #[arg(long)]
    pub databases: Option<String>,
    /// Maximum simultaneous clients [default: 10000].
    #[arg(long)]
    pub maxclients: Option<String>,
    /// Close a client idle for this many seconds; 0 = never [default: 0].
    #[arg(long)]
    pub timeout: Option<String>,
    /// Accepted for redis-server compatibility and ignored: every write is persisted.
    #[arg(long)]
    pub save: Option<String>,
    /// Log to this file instead of stderr.
    #[arg(long)]
    pub logfile: Option<String>,
    /// debug, verbose, notice or warning [default: notice].
    #[arg(long)]
    pub loglevel: Option<String>,
    /// yes/no: refuse non-loopback binds and clients while the default user has no
    /// password [default: yes].
    #[arg(long = "protected-mode")]
    pub protected_mode: Option<String>,
    /// Largest bulk string accepted, e.g. 512mb [default: 512mb].
    #[arg(long = "proto-max-bulk-len")]
    pub proto_max_bulk_len: Option<String>,
    /// Largest pending input per client, e.g. 1gb [default: 1gb].
    #[arg(long = "client-query-buffer-limit")]
    pub client_query_buffer_limit: Option<String>,
    /// Reply bytes a client may have pending before it is disconnected, as
    /// `class hard soft seconds` [default: "normal 1gb 256mb 60"].
    #[arg(long = "client-output-buffer-limit")]
    pub client_output_buffer_limit: Option<String>,
    /// Slow log threshold in microseconds; negative disables [default: 10000].
    #[arg(long = "slowlog-log-slower-than", allow_negative_numbers = true)]
    pub slowlog_log_slower_than: Option<String>,
    /// Slow log length [default: 128].
    #[arg(long = "slowlog-max-len")]
    pub slowlog_max_len: Option<String>,
    /// How long the reply to an IDEMPOTENT request id is remembered, ms [default: 86400000].
    #[arg(long = "idempotency-window-ms")]
    pub idempotency_window_ms: Option<String>,
    /// Active expiry cycles per second [default: 10].
    #[arg(long)]
    pub hz: Option<String>,
    /// Accepted for compatibility (always yes: every write goes to the WAL).
    #[arg(long)]
    pub appendonly: Option<String>,
    /// Accepted for compatibility; only "no" (run kvd under a supervisor).
    #[arg(long)]
    pub daemonize: Option<String>,
    /// Accepted for compatibility and ignored.
    #[arg(long)]
    pub maxmemory: Option<String>,
    /// File of ACL users (`user <name> <rules>` lines) for ACL LOAD and ACL SAVE; it must
    /// exist at start.
    #[arg(long)]
    pub aclfile: Option<String>,
    /// Longest ACL LOG [default: 128].
    #[arg(long = "acllog-max-len")]
    pub acllog_max_len: Option<String>,
    /// Absolute directory CHECKPOINT (and `kvtool backup --addr`) may write into.
    #[arg(long = "backup-dir")]
    pub backup_dir: Option<String>,
    /// Let CHECKPOINT write outside --backup-dir: no, yes, or local (loopback clients
    /// only) [default: no].
    #[arg(long = "enable-checkpoint-anywhere")]
    pub enable_checkpoint_anywhere: Option<String>,
    /// The `--cluster-*` flags.
    #[command(flatten)]
    pub cluster: crate::cluster_config::ClusterFlags,
    /// ms a script may run before other clients get -BUSY [default: 5000].
    #[arg(long = "busy-reply-threshold")]
    pub busy_reply_threshold: Option<String>,
    /// Alias of --busy-reply-threshold (Redis's older name).
    #[arg(long = "lua-time-limit")]
    pub lua_time_limit: Option<String>,
    /// Memory the Lua state may use, e.g. 64mb; 0 = no limit [default: 256mb].
    #[arg(long = "lua-memory-limit")]
    pub lua_memory_limit: Option<String>,
    /// The `--http-*` flags.
    #[command(flatten)]
    pub http: crate::http::settings::HttpFlags,
    /// Redis version to report to clients: 7.0.15 (the semantics kvd implements) or 7.4.0
    /// (for redis-py's client-side cache; see docs/compatibility.md) [default: 7.0.15].
    #[arg(long = "compat-version")]
    pub compat_version: Option<String>,
}

impl Cli {
    /// Builds the effective configuration: defaults, then the file, then flags.
    pub fn into_config(self) -> Result<Config, String> {
        let mut c = Config::default();
        if let Some(path) = &self.config_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
            c.apply_file_text(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            c.config_file = Some(path.clone());
        }
        let flags = [
            ("port", self.port),
            ("tls-port", self.tls_port),
            ("tls-cert-file", self.tls_cert_file),
            ("tls-key-file", self.tls_key_file),
            ("tls-key-file-pass", self.tls_key_file_pass),
            ("tls-client-cert-file", self.tls_client_cert_file),
            ("tls-client-key-file", self.tls_client_key_file),
            ("tls-client-key-file-pass", self.tls_client_key_file_pass),
            ("tls-ca-cert-file", self.tls_ca_cert_file),
            ("tls-ca-cert-dir", self.tls_ca_cert_dir),
            ("tls-auth-clients", self.tls_auth_clients),
            ("tls-protocols", self.tls_protocols),
            ("tls-ciphersuites", self.tls_ciphersuites),
            ("tls-ciphers", self.tls_ciphers),
            ("tls-prefer-server-ciphers", self.tls_prefer_server_ciphers),
            ("tls-handshake-timeout-ms", self.tls_handshake_timeout_ms),
            ("tls-cluster", self.tls_cluster),
            ("tls-replication", self.tls_replication),
            ("bind", self.bind),
            ("dir", self.dir),
            ("requirepass", self.requirepass),
            ("appendfsync", self.appendfsync),
            ("databases", self.databases),
            ("maxclients", self.maxclients),
            ("timeout", self.timeout),
            ("save", self.save),
            ("logfile", self.logfile),
            ("loglevel", self.loglevel),
            ("protected-mode", self.protected_mode),
            ("proto-max-bulk-len", self.proto_max_bulk_len),
            ("client-query-buffer-limit", self.client_query_buffer_limit),
            (
                "client-output-buffer-limit",
                self.client_output_buffer_limit,
            ),
            ("slowlog-log-slower-than", self.slowlog_log_slower_than),
            ("slowlog-max-len", self.slowlog_max_len),
            ("idempotency-window-ms", self.idempotency_window_ms),
            ("hz", self.hz),
            ("appendonly", self.appendonly),
            ("daemonize", self.daemonize),
            ("maxmemory", self.maxmemory),
            ("aclfile", self.aclfile),
            ("acllog-max-len", self.acllog_max_len),
            ("backup-dir", self.backup_dir),
            (
                "enable-checkpoint-anywhere",
                self.enable_checkpoint_anywhere,
            ),
            ("lua-time-limit", self.lua_time_limit),
            ("busy-reply-threshold", self.busy_reply_threshold),
            ("lua-memory-limit", self.lua_memory_limit),
            ("compat-version", self.compat_version),
        ];
        let cluster = self.cluster.settings();
        let http = self.http.settings();
        for (name, v) in flags.into_iter().chain(cluster).chain(http) {
            if let Some(v) = v {
                c.apply(name, &v).map_err(|e| format!("--{name}: {e}"))?;
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_file_and_flags_layer() {
        let mut c = Config::default();
        assert_eq!((c.port, c.dir.to_str()), (6380, Some("./data")));
        c.apply_file_text(
            "# comment\nport 7000\nsave \"\"\nrequirepass \"s e\"\nappendfsync always\n",
        )
        .unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.requirepass.as_deref(), Some("s e"));
        assert_eq!(c.appendfsync, FsyncPolicy::Always);
        assert!(c.apply_file_text("bogus 1").unwrap_err().contains("line 1"));
        let cli =
            Cli::try_parse_from(["kvd", "--port", "7001", "--save", "", "--appendfsync", "no"])
                .unwrap();
        let c = cli.into_config().unwrap();
        assert_eq!((c.port, c.appendfsync), (7001, FsyncPolicy::No));
    }

    /// As redis-server takes `--slowlog-log-slower-than -1` (disabled), not only the
    /// `=-1` form.
    #[test]
    fn a_negative_slowlog_threshold_is_a_flag_value() {
        let cli = Cli::try_parse_from(["kvd", "--slowlog-log-slower-than", "-1"]).unwrap();
        assert_eq!(cli.into_config().unwrap().slowlog_log_slower_than, -1);
    }

    #[test]
    fn compat_version_from_file_and_flag() {
        use crate::compat_version::CompatVersion;
        let mut c = Config::default();
        assert_eq!((param("compat-version").unwrap().get)(&c), "7.0.15");
        c.apply_file_text("compat-version 7.4.0\n").unwrap();
        assert_eq!(c.compat_version, CompatVersion::Redis7_4);
        assert!(c.apply("compat-version", "8.0.0").is_err());
        let cli = Cli::try_parse_from(["kvd", "--compat-version", "7.4.0"]).unwrap();
        let c = cli.into_config().unwrap();
        assert_eq!(c.compat_version.text(), "7.4.0");
        let cli = Cli::try_parse_from(["kvd", "--compat-version", "7.2.4"]).unwrap();
        assert!(cli.into_config().unwrap_err().contains("--compat-version"));
    }

    #[test]
    fn memory_values_and_loopback() {
        assert_eq!(parse_memory("512mb"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_memory("1k"), Ok(1000));
        assert!(parse_memory("x").is_err());
        let mut c = Config::default();
        assert!(c.binds_loopback_only());
        c.bind = vec!["0.0.0.0".into()];
        assert!(!c.binds_loopback_only());
    }

    #[test]
    fn tls_settings_from_file_and_flags() {
        let mut c = Config::default();
        assert_eq!((c.tls.port, c.tls.auth_clients), (0, AuthClients::Yes));
        c.apply_file_text(
            "tls-port 6390\ntls-cert-file /c/server.crt\ntls-auth-clients optional\n\
             tls-protocols \"TLSv1.2 TLSv1.3\"\ntls-cluster no\n",
        )
        .unwrap();
        assert_eq!(c.tls.port, 6390);
        assert_eq!(c.tls.cert_file, "/c/server.crt");
        assert_eq!(c.tls.auth_clients, AuthClients::Optional);
        assert_eq!((param("tls-protocols").unwrap().get)(&c), "TLSv1.2 TLSv1.3");
        assert!(c.apply("tls-auth-clients", "maybe").is_err());
        assert!(c.apply("tls-protocols", "TLSv1").is_err());
        assert!(c.apply("tls-ciphers", "HIGH").is_err());
        assert!(c
            .apply("tls-replication", "yes")
            .unwrap_err()
            .contains("replication"));
        c.apply("tls-cluster", "yes").unwrap();
        assert!(c.cluster.tls);
        let cli = Cli::try_parse_from([
            "kvd",
            "--port",
            "0",
            "--tls-port",
            "7002",
            "--tls-key-file",
            "k.pem",
        ])
        .unwrap();
        let c = cli.into_config().unwrap();
        assert_eq!(
            (c.port, c.tls.port, c.tls.key_file.as_str()),
            (0, 7002, "k.pem")
        );
    }
}
