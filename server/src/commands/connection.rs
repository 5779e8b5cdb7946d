//! Connection commands: PING, ECHO, QUIT, RESET, AUTH, HELLO, SELECT, CLIENT ...

use super::args::{err, int, is, text, SYNTAX};
use super::{CmdResult, Ctx};
use crate::protocol::Reply;
use crate::pubsub::tracking::{Mode, TrackingView};
use crate::state::ClientInfo;
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// PING [message]
pub fn ping(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    if !ctx.client.resp3 && ctx.client.pubsub.subs.any() && a.len() <= 2 {
        // A RESP2 subscriber gets a message-shaped reply (Redis's pingCommand).
        let msg = a.get(1).cloned().unwrap_or_default();
        return Ok(Reply::Array(vec![
            Reply::bulk(Bytes::from_static(b"pong")),
            Reply::Bulk(msg),
        ]));
    }
    match a.len() {
        1 => Ok(Reply::status("PONG")),
        2 => Ok(Reply::Bulk(a[1].clone())),
        _ => Err(err("ERR wrong number of arguments for 'ping' command")),
    }
}

/// ECHO message
pub fn echo(_ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    Ok(Reply::Bulk(a[1].clone()))
}

/// QUIT
pub fn quit(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    ctx.client.close = true;
    Ok(Reply::Ok)
}

/// RESET
pub fn reset(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let c = &mut *ctx.client;
    c.multi = None;
    c.multi_error = false;
    c.info.multi.store(-1, Ordering::Relaxed);
    c.unwatch_all(&ctx.srv.store);
    crate::pubsub::leave(ctx.srv, c);
    c.select(0);
    c.resp3 = false;
    c.info.resp.store(2, Ordering::Relaxed);
    c.info.name.lock().clear();
    // Back to the default user, authenticated only if it needs no password (Redis's
    // clientSetDefaultAuth).
    let user = ctx.srv.acl.open_default();
    c.set_user(user);
    Ok(Reply::status("RESET"))
}

/// Authenticates as `user` with `pass` (constant-time digest comparison); a failure is
/// recorded in ACL LOG, as Redis does.
fn check_password(ctx: &mut Ctx<'_>, cmd: &[u8], user: &[u8], pass: &[u8]) -> Result<(), Reply> {
    if let Some(u) = ctx.srv.acl.authenticate(user, pass) {
        ctx.client.set_user(Some(u));
        return Ok(());
    }
    let context = if ctx.client.multi.is_some() {
        "multi"
    } else {
        "toplevel"
    };
    let max = ctx.srv.config.read().acllog_max_len as usize;
    ctx.srv.acl.log_denial(
        crate::acl::log::Reason::Auth,
        context,
        text(cmd), // Redis logs the command name as the client typed it
        &String::from_utf8_lossy(user),
        super::acl::log_client_info(ctx.srv, &ctx.client.info),
        max,
    );
    Err(err(
        "WRONGPASS invalid username-password pair or user is disabled.",
    ))
}

/// AUTH [username] password
pub fn auth(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len() > 3 {
        return Err(err(SYNTAX));
    }
    if a.len() == 2 && ctx.srv.acl.default_user().perms().nopass {
        return Err(err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
    }
    let (user, pass) = if a.len() == 3 {
        (&a[1][..], &a[2])
    } else {
        (crate::acl::DEFAULT_USER.as_bytes(), &a[1])
    };
    check_password(ctx, &a[0], user, pass)?;
    Ok(Reply::Ok)
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
pub fn hello(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let mut proto = None;
    if a.len() >= 2 {
        let v = int(&a[1])
            .map_err(|_| err("ERR Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(err("NOPROTO unsupported protocol version"));
        }
        proto = Some(v);
    }
    let mut j = 2;
    let mut name = None;
    while j < a.len() {
        if is(&a[j], "auth") && j + 2 < a.len() {
            check_password(ctx, &a[0], &a[j + 1], &a[j + 2])?;
            j += 3;
        } else if is(&a[j], "setname") && j + 1 < a.len() {
            validate_name(&a[j + 1])?;
            name = Some(text(&a[j + 1]));
            j += 2;
        } else {
            return Err(Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                text(&a[j])
            )));
        }
    }
    if ctx.client.auth_required(ctx.srv) {
        return Err(err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    if let Some(n) = name {
        *ctx.client.info.name.lock() = n;
    }
    if let Some(p) = proto {
        ctx.client.resp3 = p == 3;
        ctx.client.info.resp.store(p as u8, Ordering::Relaxed);
    }
    let s = |x: &str| Reply::bulk(Bytes::from(x.to_string()));
    let version = ctx.srv.config.read().compat_version.text();
    Ok(Reply::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(version)),
        (s("proto"), Reply::Int(if ctx.client.resp3 { 3 } else { 2 })),
        (s("id"), Reply::Int(ctx.client.info.id as i64)),
        (
            s("mode"),
            s(super::cluster_compat::redis_mode(&ctx.srv.config.read())),
        ),
        (s("role"), s("master")),
        (s("modules"), Reply::Array(vec![])),
    ]))
}

/// SELECT index
pub fn select(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let n = int(&a[1])?;
    if n < 0 || n as usize >= ctx.srv.store.databases() {
        return Err(err("ERR DB index is out of range"));
    }
    ctx.client.select(n as usize);
    Ok(Reply::Ok)
}

/// CLIENT ID
pub fn client_id(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.client.info.id as i64))
}

fn validate_name(n: &[u8]) -> Result<(), Reply> {
    if n.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(err(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

/// CLIENT SETNAME name
pub fn client_setname(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    validate_name(&a[2])?;
    *ctx.client.info.name.lock() = text(&a[2]);
    Ok(Reply::Ok)
}

/// CLIENT GETNAME
pub fn client_getname(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let n = ctx.client.info.name.lock().clone();
    Ok(if n.is_empty() {
        Reply::Nil
    } else {
        Reply::bulk(Bytes::from(n))
    })
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value
pub fn client_setinfo(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let v = text(&a[3]);
    if a[3].iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Reply::error(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            text(&a[2]).to_ascii_lowercase()
        )));
    }
    let mut lib = ctx.client.info.lib.lock();
    if is(&a[2], "lib-name") {
        lib.0 = v;
    } else if is(&a[2], "lib-ver") {
        lib.1 = v;
    } else {
        return Err(Reply::error(format!(
            "ERR Unrecognized option '{}'",
            text(&a[2])
        )));
    }
    Ok(Reply::Ok)
}

/// One CLIENT LIST line for `c` (whose tracking state is `tracking`), in Redis's field
/// order.
pub fn client_line(c: &ClientInfo, now_ms: i64, tracking: Option<&TrackingView>) -> String {
    let lib = c.lib.lock().clone();
    let multi = c.multi.load(Ordering::Relaxed);
    let count = |n: &std::sync::atomic::AtomicUsize| n.load(Ordering::Relaxed);
    // Redis's letters in its order: P subscribed (RESP2 or 3), x inside MULTI, t
    // tracking, R its redirect target went away, B broadcast mode; else N.
    let mut flags = String::new();
    if c.mailbox.subscribed() {
        flags.push('P');
    }
    if multi >= 0 {
        flags.push('x');
    }
    if let Some(t) = tracking {
        flags.push('t');
        if t.broken_redirect {
            flags.push('R');
        }
        if t.mode == Mode::Bcast {
            flags.push('B');
        }
    }
    if flags.is_empty() {
        flags.push('N');
    }
    format!(
        "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        c.name.lock(),
        c.created.elapsed().as_secs(),
        ((now_ms - c.last_active.load(Ordering::Relaxed)).max(0)) / 1000,
        flags,
        c.db.load(Ordering::Relaxed),
        count(&c.mailbox.channels),
        count(&c.mailbox.patterns),
        count(&c.mailbox.shard_channels),
        multi,
        c.last_cmd.lock(),
        c.user.lock(),
        tracking.map_or(-1, |t| t.redirect as i64),
        c.resp.load(Ordering::Relaxed),
        lib.0,
        lib.1,
    )
}

/// CLIENT INFO
pub fn client_info(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Reply::Verbatim(format!(
        "{}\n",
        client_line(
            &ctx.client.info,
            ctx.txn.now,
            ctx.srv
                .store
                .events
                .tracking
                .view(ctx.client.info.id)
                .as_ref()
        )
    )))
}

/// CLIENT LIST [TYPE normal] [ID id ...]
pub fn client_list(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut j = 2;
    while j < a.len() {
        if is(&a[j], "type") && j + 1 < a.len() {
            j += 2; // only "normal" clients exist
        } else if is(&a[j], "id") && j + 1 < a.len() {
            let mut v = Vec::new();
            for x in &a[j + 1..] {
                match crate::protocol::parser::parse_i64(x) {
                    Some(n) if n > 0 => v.push(n as u64),
                    _ => return Err(err("ERR Invalid client ID")),
                }
            }
            ids = Some(v);
            j = a.len();
        } else {
            return Err(err(SYNTAX));
        }
    }
    let clients: Vec<_> = ctx.srv.clients.lock().values().cloned().collect();
    let mut s = String::new();
    for c in clients {
        if ids.as_ref().is_none_or(|ids| ids.contains(&c.id)) {
            let tracking = ctx.srv.store.events.tracking.view(c.id);
            s.push_str(&client_line(&c, ctx.txn.now, tracking.as_ref()));
            s.push('\n');
        }
    }
    Ok(Reply::Verbatim(s))
}

/// CLIENT KILL addr | CLIENT KILL [ID id] [ADDR addr] [LADDR addr] [SKIPME yes|no] ...
pub fn client_kill(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let me = ctx.client.info.id;
    let clients: Vec<_> = ctx.srv.clients.lock().values().cloned().collect();
    if a.len() == 3 {
        let addr = text(&a[2]);
        let Some(c) = clients.iter().find(|c| c.addr == addr) else {
            return Err(err("ERR No such client"));
        };
        kill(ctx, c, me);
        return Ok(Reply::Ok);
    }
    let (mut id, mut addr, mut laddr, mut skipme) = (None, None, None, true);
    let mut user = None;
    let mut j = 2;
    while j + 1 < a.len() {
        let v = &a[j + 1];
        if is(&a[j], "id") {
            id = Some(
                crate::protocol::parser::parse_i64(v)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| err("ERR client-id should be greater than 0"))?
                    as u64,
            );
        } else if is(&a[j], "addr") {
            addr = Some(text(v));
        } else if is(&a[j], "laddr") {
            laddr = Some(text(v));
        } else if is(&a[j], "skipme") {
            skipme = if is(v, "yes") {
                true
            } else if is(v, "no") {
                false
            } else {
                return Err(err(SYNTAX));
            };
        } else if is(&a[j], "user") {
            let name = text(v);
            if ctx.srv.acl.get(&name).is_none() {
                return Err(Reply::error(format!("ERR No such user '{name}'")));
            }
            user = Some(name);
        } else if !(is(&a[j], "type") || is(&a[j], "maxage")) {
            return Err(err(SYNTAX));
        }
        j += 2;
    }
    if j != a.len() {
        return Err(err(SYNTAX));
    }
    let mut n = 0;
    for c in &clients {
        let hit = id.is_none_or(|i| i == c.id)
            && addr.as_ref().is_none_or(|x| *x == c.addr)
            && laddr.as_ref().is_none_or(|x| *x == c.laddr)
            && user.as_ref().is_none_or(|u| *u == *c.user.lock())
            && !(skipme && c.id == me);
        if hit {
            kill(ctx, c, me);
            n += 1;
        }
    }
    Ok(Reply::Int(n))
}

fn kill(ctx: &mut Ctx<'_>, c: &ClientInfo, me: u64) {
    if c.id == me {
        ctx.client.close = true;
    }
    c.killed.store(true, Ordering::Release);
    c.kill.notify_one();
}

/// CLIENT HELP
pub fn client_help(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help(
        "CLIENT",
        &[
            "ID",
            "    Return the ID of the current connection.",
            "GETNAME",
            "    Return the name of the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <LIB-NAME|LIB-VER> <value>",
            "    Set client library name or version.",
            "INFO",
            "    Return information about the current client connection.",
            "LIST [TYPE normal] [ID <id> [<id> ...]]",
            "    Return information about client connections.",
            "KILL <ip:port> | KILL [ID <id>] [ADDR <ip:port>] [LADDR <ip:port>] [SKIPME yes|no]",
            "    Kill connections.",
        ],
    ))
}

/// A `<CMD> HELP` reply in Redis's layout.
pub fn help(cmd: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::status(format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    out.extend(lines.iter().map(|l| Reply::status(l.to_string())));
    out.push(Reply::status("HELP"));
    out.push(Reply::status("    Print this help."));
    Reply::Array(out)
}
