//! Start-up, the accept loop, background work (active expiry, stall warnings) and the
//! orderly stop.

use crate::acl::{self, Acl};
use crate::config::Config;
use crate::connection;
use crate::fd_limit;
use crate::keyspace::{idempotency_sweep, now_ms, ExpiryFilter, Store, Txn};
use crate::shutdown::{self, Shutdown};
use crate::state::{ClientInfo, Shared, SlowLog};
use crate::tls;
use bytes::Bytes;
use kv_engine::{Db, Options};
use kv_keyspace::data_key::ScanPosition;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Keys the active expiry sweep examines per database per cycle (Redis samples 20 keys
/// per loop, up to 25% CPU; we bound the work instead).
const EXPIRE_SCAN_PER_CYCLE: usize = 200;
/// How long shutdown waits for connections to finish their command.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the ACL users and refuses configurations kvd refuses: no listener at all, or
/// a non-loopback bind whose default user needs no password while protected mode is on.
pub fn check_config(c: &Config) -> Result<Acl, String> {
    let acl = Acl::from_config(c)?;
    acl.check_start(c)?;
    if c.port == 0 && c.tls.port == 0 {
        return Err("configured to not listen anywhere (port and tls-port are both 0)".into());
    }
    Ok(acl)
}

/// Listens on `port` at every bind address; port 0 means no listener (Redis's meaning,
/// so `--port 0 --tls-port N` serves TLS only).
async fn bind_all(bind: &[String], port: u16) -> Result<(Vec<TcpListener>, Vec<String>), String> {
    if port == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let addrs: Vec<String> = bind
        .iter()
        .map(|b| format!("{}:{port}", b.trim_start_matches('-')))
        .collect();
    let mut listeners = Vec::new();
    for a in &addrs {
        listeners.push(
            TcpListener::bind(a)
                .await
                .map_err(|e| format!("cannot listen on {a}: {e}"))?,
        );
    }
    Ok((listeners, addrs))
}

/// Opens the data directory and builds the shared server state.
pub fn open(config: Config) -> Result<Arc<Shared>, String> {
    let acl = check_config(&config)?;
    open_with(config, acl)
}

/// Nice value of the engine's flush and compaction threads (`Options::background_nice`):
/// commands run first and background work takes the idle time; at 10 a thread weighs
/// about a tenth of a nice-0 worker, so it still gets that share of a busy core
/// (docs/performance.md, "Background work at nice 10").
const BACKGROUND_NICE: i32 = 10;

fn open_with(config: Config, acl: Acl) -> Result<Arc<Shared>, String> {
    let filter = ExpiryFilter::new(config.idempotency_window_ms);
    let options = Options {
        fsync: config.appendfsync,
        compaction_filter: Some(filter.clone()),
        background_nice: BACKGROUND_NICE,
        ..Options::default()
    };
    let db = Db::open(&config.dir, options)
        .map_err(|e| format!("cannot open data directory {}: {e}", config.dir.display()))?;
    let store = Store::new(db, config.databases, filter)
        .map_err(|e| format!("cannot load keyspace metadata: {e}"))?;
    let (monitor, _) = tokio::sync::broadcast::channel(4096);
    let shutdown = Shutdown::default();
    let scripting =
        crate::scripting::Scripting::new(shutdown.clone(), &store.db, config.compat_version)?;
    Ok(Arc::new(Shared {
        store,
        config: RwLock::new(config),
        clients: Mutex::new(BTreeMap::new()),
        next_client_id: AtomicU64::new(1),
        counters: Default::default(),
        slowlog: Mutex::new(SlowLog::default()),
        monitor,
        monitors: AtomicUsize::new(0),
        shutdown,
        started: Instant::now(),
        last_save: AtomicI64::new(now_ms() / 1000),
        run_id: format!(
            "{:040x}",
            (now_ms() as u128) << 64 | std::process::id() as u128
        ),
        acl,
        ring: std::sync::OnceLock::new(),
        command_stats: Default::default(),
        scripting,
        command_metrics: Default::default(),
        pubsub: Default::default(),
    }))
}

/// Runs the server until SIGTERM/SIGINT/SHUTDOWN; returns after the engine is closed.
pub async fn run(mut config: Config) -> Result<(), String> {
    let acl = check_config(&config)?;
    let fit = fd_limit::fit_clients(config.maxclients)?;
    if fit < config.maxclients {
        tracing::warn!(
            requested = config.maxclients,
            granted = fit,
            reserved_for_engine_and_server = fd_limit::reserved_fds(),
            "maxclients reduced to fit the open files limit (raise it with ulimit -n)"
        );
        config.maxclients = fit;
    }
    // Certificates are read before anything listens: a bad file stops kvd at once.
    let acceptor = tls::listener::acceptor(&config.tls)?;
    let https_acceptor = crate::http::tls_serve::acceptor(&config)?;
    let (listeners, addrs) = bind_all(&config.bind, config.port).await?;
    let (tls_listeners, tls_addrs) = match acceptor {
        Some(_) => bind_all(&config.bind, config.tls.port).await?,
        None => (Vec::new(), Vec::new()),
    };
    let http_listeners = crate::http::bind(&config, config.http.port).await?;
    let https_listeners = crate::http::bind(&config, config.http.tls_port).await?;
    let policy = format!("{:?}", config.appendfsync).to_ascii_lowercase();
    let dir = config.dir.display().to_string();
    let dbs = config.databases;
    let config_port = config.port;
    let node_config = if config.cluster.enabled {
        Some(crate::cluster_start::node_config(&config)?)
    } else {
        None
    };
    let cluster_dir = node_config.as_ref().map(|nc| nc.data_dir.clone());
    let srv = tokio::task::spawn_blocking(move || open_with(config, acl))
        .await
        .map_err(|e| format!("start-up failed: {e}"))??;
    let cluster_node = match node_config {
        Some(nc) => {
            let bus = nc.bus_port;
            let node = crate::cluster_start::start(&srv, nc).await?;
            tracing::info!(node = %node.me().id, bus_port = bus, "cluster node started");
            Some(node)
        }
        None => None,
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        port = config_port,
        listen = %addrs.join(","),
        tls_listen = %tls_addrs.join(","),
        dir = %dir,
        appendfsync = %policy,
        databases = dbs,
        "kvd ready to accept connections"
    );
    tokio::spawn(shutdown::on_signals(srv.shutdown.clone()));
    let background = {
        let srv = srv.clone();
        std::thread::Builder::new()
            .name("kvd-expire".into())
            .spawn(move || background_loop(&srv))
            .map_err(|e| format!("cannot start background thread: {e}"))?
    };
    let mut accepts = JoinSet::new();
    for l in listeners {
        accepts.spawn(accept_loop(srv.clone(), l));
    }
    if let Some(acceptor) = acceptor {
        for l in tls_listeners {
            accepts.spawn(tls::listener::accept_loop(srv.clone(), l, acceptor.clone()));
        }
    }
    for l in http_listeners {
        accepts.spawn(crate::http::accept_loop(srv.clone(), l, None));
    }
    for l in https_listeners {
        let tls = https_acceptor.clone();
        accepts.spawn(crate::http::accept_loop(srv.clone(), l, tls));
    }
    srv.shutdown.wait().await;
    accepts.abort_all();
    while accepts.join_next().await.is_some() {}
    // Connections see the shutdown flag between commands and close; wait for them.
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while !srv.clients.lock().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = background.join();
    if let Some(node) = cluster_node {
        node.shutdown().await;
    }
    let db = srv.store.db.clone();
    tokio::task::spawn_blocking(move || db.close())
        .await
        .map_err(|e| format!("close failed: {e}"))?
        .map_err(|e| format!("closing the engine failed: {e}"))?;
    if let Some(dir) = cluster_dir {
        // Only now that everything is synced: the next start need not catch up.
        kv_cluster::node::mark_clean_stop(&dir)
            .map_err(|e| format!("cannot record the clean stop: {e}"))?;
    }
    tracing::info!("kvd stopped; data flushed and synced");
    Ok(())
}

async fn accept_loop(srv: Arc<Shared>, listener: TcpListener) {
    loop {
        let (stream, peer) = next_connection(&listener).await;
        if srv.acl.deny_at_accept(&srv.config.read(), peer.ip()) {
            tokio::spawn(refuse(stream, acl::DENIED)); // protected mode (defect 11)
            continue;
        }
        let Some(info) = admit(&srv, &stream, peer) else {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut s = stream;
                let _ = s.write_all(b"-ERR max number of clients reached\r\n").await;
            });
            continue;
        };
        tokio::spawn(connection::serve(srv.clone(), stream, info));
    }
}

/// Sends one error line to a refused connection and closes it.
async fn refuse(mut stream: TcpStream, line: &'static str) {
    use tokio::io::AsyncWriteExt;
    let _ = stream.write_all(line.as_bytes()).await;
}

/// The next accepted TCP connection. Accept errors (a full descriptor table, for one) are
/// logged and retried after a pause, so they neither stop the listener nor spin it.
pub async fn next_connection(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    let mut last_warning: Option<Instant> = None;
    loop {
        match listener.accept().await {
            Ok(x) => return x,
            Err(e) => {
                // Out of descriptors (or another passing error): back off instead of
                // spinning, and say so once a second rather than at every attempt.
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(error = %e, "accept failed");
                    last_warning = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Registers an accepted connection as a client, so it counts toward `maxclients` from
/// now on (for a TLS client, during its handshake too). `None` if the server is full;
/// the caller refuses the connection as its protocol allows.
pub fn admit(srv: &Shared, stream: &TcpStream, peer: SocketAddr) -> Option<Arc<ClientInfo>> {
    let _ = stream.set_nodelay(true);
    let laddr = stream
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    register(srv, peer.to_string(), laddr)
}

/// Registers a client connected from `addr` to `laddr` (see [`admit`]).
pub fn register(srv: &Shared, addr: String, laddr: String) -> Option<Arc<ClientInfo>> {
    srv.counters.connections.fetch_add(1, Ordering::Relaxed);
    let max = srv.config.read().maxclients;
    if srv.clients.lock().len() >= max {
        srv.counters.rejected.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let info = client_info(srv, addr, laddr);
    srv.clients.lock().insert(info.id, info.clone());
    Some(info)
}

/// A client that is no connection (a command another cluster node sent here to run as
/// its key's proposer): not in CLIENT LIST, not counted toward `maxclients`.
pub fn internal_client(srv: &Shared, name: &str) -> Arc<ClientInfo> {
    let info = client_info(srv, name.to_string(), String::new());
    *info.name.lock() = name.into();
    info
}

/// A new client's bookkeeping, with the next client id.
fn client_info(srv: &Shared, addr: String, laddr: String) -> Arc<ClientInfo> {
    let id = srv.next_client_id.fetch_add(1, Ordering::Relaxed);
    Arc::new(ClientInfo {
        id,
        addr,
        laddr,
        created: Instant::now(),
        name: Mutex::new(String::new()),
        lib: Mutex::new((String::new(), String::new())),
        db: AtomicUsize::new(0),
        last_cmd: Mutex::new("NULL"),
        last_active: AtomicI64::new(now_ms()),
        resp: AtomicU8::new(2),
        killed: AtomicBool::new(false),
        kill: tokio::sync::Notify::new(),
        user: Mutex::new(acl::DEFAULT_USER.into()),
        multi: AtomicI64::new(-1),
        mailbox: Default::default(),
    })
}

/// Active expiry and stall warnings, on a plain thread (engine calls block), at the
/// lowest CPU priority.
fn background_loop(srv: &Shared) {
    lower_this_threads_priority();
    let mut cursors: Vec<ScanPosition> = Vec::new();
    let mut idempotency_cursor = idempotency_sweep::SweepCursor::default();
    let mut last_stalls = (0u64, 0u64);
    let mut last_check = Instant::now();
    while !srv.shutdown.is_triggered() {
        let hz = srv.config.read().hz.max(1);
        std::thread::sleep(Duration::from_millis(1000 / hz));
        let dbs = srv.store.databases();
        cursors.resize(dbs, ScanPosition::START);
        for (db, cursor) in cursors.iter_mut().enumerate() {
            if srv.shutdown.is_triggered() {
                break;
            }
            match expire_cycle(srv, db, cursor) {
                Ok(n) => {
                    srv.counters.expired_keys.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "active expiry failed"),
            }
        }
        let window = srv.config.read().idempotency_window_ms;
        match idempotency_sweep::sweep_cycle(&srv.store, window, &mut idempotency_cursor) {
            Ok(n) => {
                srv.counters
                    .expired_idempotency_records
                    .fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "idempotency record sweep failed"),
        }
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = Instant::now();
            let s = srv.store.db.stats();
            if s.stall_stops > last_stalls.1 {
                tracing::warn!(
                    stops = s.stall_stops - last_stalls.1,
                    "writes stopped: too many L0 files or memtables awaiting flush"
                );
            } else if s.stall_slowdowns > last_stalls.0 {
                tracing::warn!(
                    slowdowns = s.stall_slowdowns - last_stalls.0,
                    "writes slowed down: compaction is behind"
                );
            }
            if let Some(e) = &s.background_error {
                tracing::error!(error = %e, "engine background error");
            }
            last_stalls = (s.stall_slowdowns, s.stall_stops);
        }
    }
}

/// Moves the calling thread to nice 19, as RocksDB's `LowerThreadPoolCPUPriority` does
/// for its background pools. The sweeps wake every 1/hz s and run a burst (a scan page,
/// which first makes the memtable order the keys new since the last one); at normal
/// priority the scheduler let such a burst run its whole slice while a command waited
/// on the same core, which set -P 1's p99 at about 4.7 ms against 2 ms
/// (docs/performance.md, "Ordering at the first ordered access"). At nice 19 a waking
/// worker takes the core back at once, and the sweeps still progress whenever it idles.
/// Not SCHED_IDLE: the sweep takes key locks, and a thread that may never run while
/// the machine is busy must not hold them.
fn lower_this_threads_priority() {
    // SAFETY: plain system calls on the calling thread; no memory is passed.
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19)
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the background thread's priority");
    }
}

/// Examines about EXPIRE_SCAN_PER_CYCLE keys of `db` from `cursor` (a page of a
/// stateless scan, see `Txn::scan_page`), deleting expired ones (re-checked under their
/// stripe locks); returns how many were deleted.
pub fn expire_cycle(srv: &Shared, db: usize, cursor: &mut ScanPosition) -> kv_engine::Result<u64> {
    let mut expired: Vec<Bytes> = Vec::new();
    {
        let _g = srv.store.lock_keys(std::iter::empty());
        // Only keys with a TTL expire: a database without any costs nothing (its walk
        // would only seek past other databases' keys).
        if srv.store.counts.get(srv.store.namespace(db)).expires == 0 {
            return Ok(0);
        }
        let mut t = Txn::new(&srv.store);
        t.use_snapshot();
        let next = t.scan_page(db, *cursor, EXPIRE_SCAN_PER_CYCLE, |k, e| {
            if e.expired(t.now) {
                expired.push(Bytes::copy_from_slice(k));
            }
        })?;
        *cursor = next.unwrap_or(ScanPosition::START); // the end: wrap around
    }
    if expired.is_empty() {
        return Ok(0);
    }
    let _g = srv.store.lock_keys(expired.iter().map(|k| &k[..]));
    let mut t = Txn::new(&srv.store);
    let mut n = 0;
    for k in &expired {
        if t.get_any(db, k)?.is_some_and(|e| e.expired(t.now)) {
            t.delete(db, k);
            n += 1;
        }
    }
    t.commit()?;
    Ok(n)
}
