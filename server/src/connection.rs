//! One client connection: frames requests from the socket, runs them in order and writes
//! the replies, batching a whole pipeline into one write. Commands that may block (writes
//! that wait for an fsync, lock waits) leave the async worker via `block_in_place`, once
//! per pipeline batch, so no runtime thread sleeps on the disk.

use crate::cluster_mode::lock_wait;
use crate::cluster_mode::pipelined_reads::{read_ahead, InRun, ReadAhead};
use crate::cluster_mode::pipelined_writes::run_grouped;
use crate::commands;
use crate::commands::table::CommandSpec;
use crate::keyspace::now_ms;
use crate::protocol::{Limits, Parsed, Reply, RequestParser};
use crate::state::{Client, ClientInfo, Shared};
use bytes::{Bytes, BytesMut};
use kv_cluster::wal_deferral;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Commands taken from the input buffer before replies are written.
const MAX_BATCH: usize = 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;

/// Removes the client from the registry however the connection ends.
struct Registration<'a> {
    srv: &'a Shared,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.srv.clients.lock().remove(&self.id);
    }
}

/// Serves one connection until it closes, errs, is killed, or the server shuts down.
/// `stream` is a TCP socket or a TLS session over one (`tls::listener`).
pub async fn serve<S>(srv: Arc<Shared>, mut stream: S, info: Arc<ClientInfo>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let _reg = Registration {
        srv: &srv,
        id: info.id,
    };
    let mut client = Client::new(info.clone(), srv.acl.open_default());
    // Every reply leaves through `flush`, which writes the WAL out first.
    client.defers_wal_writes = true;
    serve_client(&srv, &mut stream, &mut client, &info).await;
    client.unwatch_all(&srv.store); // a client that disconnects forgets its WATCHes
    crate::pubsub::leave(&srv, &mut client);
    info.mailbox.close();
    if info.mailbox.overflowed() {
        srv.counters
            .output_limit_disconnects
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(client = %info.addr, "closing client whose pub/sub messages passed the output buffer limit (client-output-buffer-limit)");
    }
}

async fn serve_client<S>(
    srv: &Arc<Shared>,
    stream: &mut S,
    client: &mut Client,
    info: &Arc<ClientInfo>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let srv: &Shared = srv;
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut parser = RequestParser::new();
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    let mut need = 1usize;
    loop {
        info.mailbox
            .set_limits(srv.config.read().client_output_buffer_limit);
        // Frame every complete command already buffered (up to MAX_BATCH).
        let mut batch: Vec<Vec<Bytes>> = Vec::new();
        let mut protocol_error = None;
        let limits = Limits {
            max_bulk: srv.config.read().proto_max_bulk_len as i64,
            unauthenticated: client.auth_required(srv),
        };
        while inbuf.len() >= need && batch.len() < MAX_BATCH {
            match parser.parse(&mut inbuf, limits) {
                Ok(Parsed::Command(args)) => {
                    need = 1;
                    if !args.is_empty() {
                        batch.push(args);
                        if client.auth_required(srv) {
                            break; // AUTH changes the limits for what follows
                        }
                    }
                }
                Ok(Parsed::Incomplete(n)) => {
                    need = n;
                    break;
                }
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        let mut i = 0;
        if let Some(ring) = srv.ring.get() {
            // A cluster node: every command may wait for replicas, so each is awaited in
            // order (crate::cluster_mode); nothing blocks a runtime thread meanwhile. A
            // run of reads has its keys read together first (cluster_mode::pipelined_reads).
            // With cluster-group-pipelined-writes, a run of blind writes is replicated
            // in one round (cluster_mode::pipelined_writes).
            let mut ahead: Option<(usize, ReadAhead)> = None;
            while i < batch.len() && !client.close && !client.monitor {
                // This connection writes the WAL out before its replies (`flush`), so
                // this node's own replica may leave its copy buffered
                // (kv_cluster::wal_deferral).
                let defers = client.defers_wal_writes;
                let grouped = run_grouped(srv, ring, client, &batch[i..]);
                let replies = match wal_deferral::scope(defers, grouped).await {
                    Some(replies) => replies,
                    None => {
                        if ahead.as_ref().is_none_or(|(end, _)| i >= *end) {
                            ahead = read_ahead(srv, ring, client, &batch[i..])
                                .await
                                .map(|a| (i + a.commands, a));
                        }
                        // Command i is in the run that ends before `end`.
                        let reads = ahead.as_ref().and_then(|(end, a)| {
                            let index = (i + a.commands).checked_sub(*end)?;
                            Some(InRun { ahead: a, index })
                        });
                        let one = crate::cluster_mode::execute_read_ahead(
                            srv, ring, client, &batch[i], reads,
                        );
                        let mut reply = wal_deferral::scope(defers, one).await;
                        if client.wait.is_some() {
                            // LOCK ... WAIT found the lock held: the replies before it
                            // go out first, as on one node.
                            if !flush(srv, stream, &mut out).await {
                                return;
                            }
                            reply =
                                lock_wait(srv, Some(ring), client, &batch[i], stream, &mut inbuf)
                                    .await;
                        }
                        vec![reply]
                    }
                };
                i += replies.len();
                if !client.silent {
                    for reply in &replies {
                        reply.encode(&mut out, client.resp3);
                    }
                }
                let hard = srv.config.read().client_output_buffer_limit.normal.hard;
                if hard > 0 && out.len() as u64 > hard {
                    client.output_limit_reached = true;
                    client.close = true;
                }
            }
            i = batch.len();
        }
        while i < batch.len() && !client.close {
            i += run_batch(srv, client, &batch[i..], &mut out);
            if client.wait.is_some() {
                if !flush(srv, stream, &mut out).await {
                    return;
                }
                let reply = lock_wait(srv, None, client, &batch[i], stream, &mut inbuf).await;
                reply.encode(&mut out, client.resp3);
                i += 1;
            }
        }
        if let Some(e) = protocol_error {
            srv.counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(client = %client.info.addr, error = %e.0, "protocol error, closing");
            Reply::error(format!("ERR {}", e.0)).encode(&mut out, client.resp3);
            client.close = true;
        }
        if client.silent {
            return;
        }
        crate::pubsub::drain(client, &mut out, crate::pubsub::DRAIN_BYTES);
        if client.output_limit_reached {
            srv.counters
                .output_limit_disconnects
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(client = %info.addr, pending = out.len(), "closing client that reached the output buffer hard limit (client-output-buffer-limit)");
            return;
        }
        // A new MONITOR joins the feed before its +OK is sent, so every command the
        // client sees run after that reply is shown.
        let feed = client.monitor.then(|| {
            let rx = srv.monitor.subscribe();
            srv.monitors.fetch_add(1, Ordering::Relaxed);
            rx
        });
        // A client killed while its write waits (CLIENT KILL, or its pub/sub messages
        // passing the output buffer limit) stops waiting at once.
        // Replies go out after every other ready connection has run its commands, as
        // Redis writes its replies at the end of an event-loop iteration: they then
        // reach a client in one burst, and a client woken by the first finds the rest
        // waiting, where a reply sent the moment it is ready wakes a sleeping client
        // (a cross-CPU wakeup, the largest kernel cost in a profile) for each one.
        // With nothing else ready the task is polled again at once.
        // docs/performance.md, "Replies in bursts, lookups that end at the bucket".
        if !out.is_empty() {
            tokio::task::yield_now().await;
        }
        // The write first: it usually completes on its first poll, and then the kill
        // notification is never polled, so it never registers as a waiter (a lock on
        // the way in and out, 2% of a -P 1 profile between it and the read's below).
        let flushed = tokio::select! {
            biased;
            ok = flush(srv, stream, &mut out) => ok,
            _ = info.kill.notified() => false,
        };
        if let Some(rx) = feed {
            if flushed && !client.close {
                monitor(stream, info, srv, rx).await;
            }
            srv.monitors.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        if !flushed || client.close {
            return;
        }
        if inbuf.len() >= need {
            continue; // more complete commands than one batch
        }
        let query_bytes = inbuf.len() + parser.held_bytes();
        if query_bytes as u64 > srv.config.read().client_query_buffer_limit {
            tracing::warn!(client = %info.addr, "closing client that reached max query buffer length");
            return;
        }
        let want = need.saturating_sub(inbuf.len()).clamp(READ_CHUNK, 1 << 20);
        if inbuf.capacity() - inbuf.len() < want {
            inbuf.reserve(want);
        }
        // Subscribers wait for messages however long (Redis exempts them from `timeout`).
        let timeout = srv.config.read().timeout;
        let idle = async {
            if timeout == 0 || client.pubsub.subs.any() {
                std::future::pending::<()>().await
            } else {
                tokio::time::sleep(Duration::from_secs(timeout)).await
            }
        };
        // Input first, so a stream of messages never keeps a subscriber's commands
        // (UNSUBSCRIBE) waiting; then queued messages, written without waiting.
        tokio::select! {
            biased;
            r = stream.read_buf(&mut inbuf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    srv.counters.net_input.fetch_add(n as u64, Ordering::Relaxed);
                    info.last_active.store(now_ms(), Ordering::Relaxed);
                }
            },
            _ = srv.shutdown.wait() => return,
            _ = info.kill.notified() => return,
            _ = std::future::ready(()), if info.mailbox.has_pending() => {}
            _ = info.mailbox.wake.notified() => {}
            _ = idle => return,
        }
        if info.killed.load(Ordering::Acquire) {
            return;
        }
    }
}

/// Writes `out`. Replies above the soft output limit must be taken by the client within
/// the soft seconds, else it is disconnected (Redis's soft limit: the buffer stayed above
/// it that long); smaller writes may wait as long as the client likes.
async fn flush<S>(srv: &Shared, stream: &mut S, out: &mut BytesMut) -> bool
where
    S: AsyncWrite + Unpin,
{
    if out.is_empty() {
        return true;
    }
    // The round's deferred commits (this client's and others', which these replies may
    // have read) reach the operating system before any reply that depends on them: a
    // process crash then loses nothing a client was told. Failing that, the client is
    // disconnected unanswered (the engine now refuses writes).
    if let Err(e) = srv.store.db.write_out_wal() {
        tracing::error!(error = %e, "writing the WAL out failed; closing the client unanswered");
        return false;
    }
    srv.counters
        .net_output
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    let soft = srv.config.read().client_output_buffer_limit.normal;
    let ok = if soft.soft > 0 && out.len() as u64 > soft.soft {
        let limit = Duration::from_secs(soft.soft_seconds);
        match tokio::time::timeout(limit, write_down_to(stream, out, soft.soft)).await {
            Ok(true) => write_all_flushed(stream, out).await,
            Ok(false) => false,
            Err(_) => {
                srv.counters
                    .output_limit_disconnects
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(pending = out.len(), seconds = soft.soft_seconds, "closing client that stayed above the output buffer soft limit (client-output-buffer-limit)");
                false
            }
        }
    } else {
        write_all_flushed(stream, out).await
    };
    out.clear();
    if out.capacity() > 4 * 1024 * 1024 {
        *out = BytesMut::with_capacity(READ_CHUNK); // don't keep a huge reply's buffer
    }
    ok
}

/// Writes from the front of `out` until at most `left` bytes remain (dropping what was
/// written); false if the client went away.
async fn write_down_to<S>(stream: &mut S, out: &mut BytesMut, left: u64) -> bool
where
    S: AsyncWrite + Unpin,
{
    while out.len() as u64 > left {
        match stream.write(out).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                let _ = out.split_to(n);
            }
        }
    }
    true
}

/// Writes all of `out` and flushes the stream: for TLS the last record may wait in the
/// session until flushed.
async fn write_all_flushed<S>(stream: &mut S, out: &[u8]) -> bool
where
    S: AsyncWrite + Unpin,
{
    stream.write_all(out).await.is_ok() && stream.flush().await.is_ok()
}

/// Runs commands until the batch ends, the client must close, or a LOCK must wait
/// (its reply is then left to [`lock_wait`]). Returns how many commands were consumed
/// excluding a waiting one.
fn run_batch(srv: &Shared, client: &mut Client, batch: &[Vec<Bytes>], out: &mut BytesMut) -> usize {
    // Each name is looked up once here, for may_block, grouping and admission alike; a
    // name spelled as the one before it (a pipeline of one command) reuses its lookup.
    let mut previous: Option<(&[u8], Option<&'static CommandSpec>)> = None;
    let looked_up: Vec<_> = batch
        .iter()
        .map(|a| match previous {
            Some((name, spec)) if name == &a[0][..] => spec,
            _ => {
                let spec = commands::table::lookup(&a[0]);
                previous = Some((&a[0][..], spec));
                spec
            }
        })
        .collect();
    let hard = srv.config.read().client_output_buffer_limit.normal.hard;
    let over_hard_limit = move |client: &mut Client, out: &BytesMut| {
        if hard > 0 && out.len() as u64 > hard {
            client.output_limit_reached = true;
            client.close = true;
        }
        client.output_limit_reached
    };
    let body = |client: &mut Client, out: &mut BytesMut| {
        client.reply_bytes = 0;
        let mut n = 0;
        let mut grouped = Vec::new();
        let mut alone = 0; // commands to run one by one before trying a group again
        while n < batch.len() {
            if alone == 0 {
                match run_group(srv, client, &batch[n..], &looked_up[n..], &mut grouped) {
                    Ok(ran) => {
                        grouped.drain(..).for_each(|r| r.encode(out, client.resp3));
                        n += ran;
                        if client.close || over_hard_limit(client, out) {
                            break;
                        }
                        continue;
                    }
                    Err(k) => alone = k,
                }
            }
            alone -= 1;
            let args = &batch[n];
            let reply = run_looked_up(srv, client, args, looked_up[n]);
            if client.wait.is_some() {
                return n;
            }
            n += 1;
            if !client.silent {
                reply.encode(out, client.resp3);
            }
            if client.close || client.monitor || over_hard_limit(client, out) {
                break;
            }
        }
        n
    };
    // While a script runs, any command may wait for the lock it holds (scripting/busy.rs).
    let may_block = || {
        (batch.iter().zip(&looked_up))
            .any(|(a, &spec)| commands::may_block_looked_up(spec, a, &srv.store.db))
    };
    if srv.scripting.busy.running() || may_block() {
        tokio::task::block_in_place(|| body(client, out))
    } else {
        body(client, out)
    }
}

/// Group-commits the leading run of plain commands (see `commands::execute_group`);
/// a panic closes the connection like in [`run_one`].
fn run_group(
    srv: &Shared,
    client: &mut Client,
    batch: &[Vec<Bytes>],
    looked_up: &[Option<&'static CommandSpec>],
    replies: &mut Vec<Reply>,
) -> Result<usize, usize> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        commands::execute_group(srv, client, batch, looked_up, replies)
    }));
    r.unwrap_or_else(|_| {
        tracing::error!("pipelined command panicked; closing its connection");
        client.close = true;
        replies.clear();
        replies.push(Reply::error("ERR internal error"));
        Ok(1)
    })
}

/// Runs one command; a panic inside it becomes an error reply and closes the connection.
pub(crate) fn run_one(srv: &Shared, client: &mut Client, args: &[Bytes]) -> Reply {
    run_looked_up(srv, client, args, commands::table::lookup(&args[0]))
}

/// [`run_one`] with the name already looked up (`table::lookup(&args[0])`).
fn run_looked_up(
    srv: &Shared,
    client: &mut Client,
    args: &[Bytes],
    looked_up: Option<&'static CommandSpec>,
) -> Reply {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        commands::execute_looked_up(srv, client, args, looked_up)
    }));
    match r {
        Ok(reply) => reply,
        Err(_) => {
            tracing::error!(command = %String::from_utf8_lossy(&args[0]), "command panicked; closing its connection");
            client.close = true;
            client.wait = None;
            Reply::error("ERR internal error")
        }
    }
}

/// Sleeps until the lock key is written or the holder's lease ends, then retries the LOCK,
/// until it is acquired or its deadline passes. Meanwhile it keeps reading the socket
/// (buffering any pipelined commands, as Redis does for blocked clients) so that a client
/// that disconnects stops waiting at once, instead of later taking the lock for nobody.
///
/// On a cluster node (`ring`) the release may come through any node, and no local commit
/// announces it: the lock is polled with a quorum read at growing intervals (from
/// [`RING_LOCK_POLL_MIN`] to [`RING_LOCK_POLL_MAX`], with jitter so that waiters on
/// several nodes do not poll in step) and at the holder's lease end, and the LOCK is
/// retried through consensus once a poll finds the lock free or ended.
async fn lock_wait<S>(
    srv: &Shared,
    ring: Option<&Arc<dyn kv_cluster::ring::Ring>>,
    client: &mut Client,
    args: &[Bytes],
    stream: &mut S,
    inbuf: &mut BytesMut,
) -> Reply
where
    S: AsyncRead + Unpin,
{
    let mut reply = Reply::Nil;
    let mut poll = RING_LOCK_POLL_MIN;
    let _blocked = Blocked::enter(&srv.counters.blocked_clients);
    while let Some(w) = client.wait.take() {
        client.lock_deadline = Some(w.deadline);
        let notify = srv.store.events.wait(w.db, w.key.clone());
        {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Retry after registering, so a release between the attempts is not missed.
            reply = match ring {
                None => tokio::task::block_in_place(|| run_one(srv, client, args)),
                // A quorum read first: a LOCK attempt is a consensus round, whose
                // ballot would outbid the release under way (cluster_mode::lock_wait).
                // `args[2]`, the owner, is there: the LOCK that set `wait` was admitted.
                Some(ring) => match lock_wait::poll(srv, ring, &w, &args[2]).await {
                    lock_wait::Poll::Held(next) => {
                        client.wait = next;
                        Reply::Nil
                    }
                    lock_wait::Poll::Attempt => {
                        crate::cluster_mode::execute(srv, ring, client, args).await
                    }
                },
            };
            if let Some(next) = &client.wait {
                let mut sleep =
                    Duration::from_millis((next.wake_at - now_ms()).clamp(0, i64::MAX) as u64);
                if ring.is_some() {
                    let jitter = rand::random::<f64>() * 0.5 + 0.75;
                    sleep = sleep.min(poll.mul_f64(jitter));
                    poll = (poll * 2).min(RING_LOCK_POLL_MAX);
                }
                let query_limit = srv.config.read().client_query_buffer_limit;
                tokio::select! {
                    biased;
                    r = stream.read_buf(inbuf) => {
                        let gone = !matches!(r, Ok(n) if n > 0);
                        if gone || inbuf.len() as u64 > query_limit {
                            tracing::debug!(client = %client.info.addr, "client left (or overflowed its query buffer) during LOCK ... WAIT");
                            client.wait = None;
                            client.close = true;
                        }
                    }
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(sleep) => {}
                    _ = srv.shutdown.wait() => { client.wait = None; }
                    _ = client.info.kill.notified() => { client.wait = None; client.close = true; }
                }
            }
        }
        srv.store.events.unwait(w.db, w.key, notify);
    }
    client.lock_deadline = None;
    reply
}

/// Counts a client in INFO `blocked_clients` while it waits.
struct Blocked<'a>(&'a AtomicU64);

impl<'a> Blocked<'a> {
    fn enter(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Blocked(gauge)
    }
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The first retry interval of LOCK ... WAIT on a cluster node (see [`lock_wait`]).
const RING_LOCK_POLL_MIN: Duration = Duration::from_millis(10);
/// The longest: a release is noticed within about this long, at the cost of one
/// quorum read per waiter per interval.
const RING_LOCK_POLL_MAX: Duration = Duration::from_millis(100);

/// Streams the MONITOR feed `rx` until the client leaves, is killed or the server stops.
async fn monitor<S>(
    stream: &mut S,
    info: &ClientInfo,
    srv: &Shared,
    mut rx: tokio::sync::broadcast::Receiver<Bytes>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut scratch = [0u8; 1024];
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Ok(line) => if stream.write_all(&line).await.is_err() || stream.flush().await.is_err() { break },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            },
            r = stream.read(&mut scratch) => if matches!(r, Ok(0) | Err(_)) { break },
            _ = srv.shutdown.wait() => break,
            _ = info.kill.notified() => break,
        }
    }
}
