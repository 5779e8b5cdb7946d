//! ACL SETUSER / GETUSER / DELUSER / LIST / USERS / WHOAMI / CAT / GENPASS / LOG / SAVE /
//! LOAD / DRYRUN / HELP: Redis 7.0's replies over the users in `crate::acl`.

use super::args::{err, int, is, text};
use super::connection::{client_line, help};
use super::{CmdResult, Ctx};
use crate::acl::categories::{category_bit, index, CATEGORIES};
use crate::acl::check::{check, Denial};
use crate::acl::file::valid_name;
use crate::acl::password;
use crate::acl::rules::Selector;
use crate::protocol::Reply;
use bytes::Bytes;
use std::sync::atomic::Ordering;

fn s(x: impl Into<String>) -> Reply {
    Reply::bulk(Bytes::from(x.into()))
}

fn words(a: &[Bytes]) -> Vec<String> {
    a.iter().map(|w| text(w)).collect()
}

/// Closes every connection authenticated as one of `names` (ACL DELUSER, ACL LOAD); the
/// caller's own closes after this reply.
fn disconnect_users(ctx: &mut Ctx<'_>, names: &[String]) {
    if close_connections_of(ctx.srv, names, ctx.client.info.id) {
        ctx.client.close = true;
    }
}

/// Closes every connection authenticated as one of `names` (also when another cluster
/// node deleted the user); returns whether connection `me` is one of them.
pub fn close_connections_of(srv: &crate::state::Shared, names: &[String], me: u64) -> bool {
    if names.is_empty() {
        return false;
    }
    let mut mine = false;
    let clients: Vec<_> = srv.clients.lock().values().cloned().collect();
    for c in clients {
        if names.contains(&*c.user.lock()) {
            mine |= c.id == me;
            c.killed.store(true, Ordering::Release);
            c.kill.notify_one();
        }
    }
    mine
}

/// ACL SETUSER username [rule ...]
pub fn setuser(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let name = text(&a[2]);
    if !valid_name(&name) {
        return Err(err("ERR Usernames can't contain spaces or null characters"));
    }
    ctx.srv
        .acl
        .set_user(&ctx.srv.config, &name, &words(&a[3..]))
        .map_err(|e| Reply::error(format!("ERR {e}")))?;
    Ok(Reply::Ok)
}

fn selector_fields(sel: &Selector) -> Vec<(Reply, Reply)> {
    vec![
        (s("commands"), s(sel.command_rules())),
        (s("keys"), s(sel.keys_text())),
        (s("channels"), s(sel.channels_text())),
    ]
}

/// ACL GETUSER username
pub fn getuser(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let Some(user) = ctx.srv.acl.get(&text(&a[2])) else {
        return Ok(Reply::Nil);
    };
    let p = user.perms();
    let mut fields = vec![
        (
            s("flags"),
            Reply::Set(p.flags().into_iter().map(s).collect()),
        ),
        (
            s("passwords"),
            Reply::Array(p.passwords.iter().map(|h| s(password::to_hex(h))).collect()),
        ),
    ];
    fields.extend(selector_fields(&p.root));
    fields.push((
        s("selectors"),
        Reply::Array(
            p.selectors
                .iter()
                .map(|sel| Reply::Map(selector_fields(sel)))
                .collect(),
        ),
    ));
    Ok(Reply::Map(fields))
}

/// ACL DELUSER username [username ...]
pub fn deluser(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let removed = ctx
        .srv
        .acl
        .delete_users(&words(&a[2..]))
        .map_err(|e| Reply::error(format!("ERR {e}")))?;
    disconnect_users(ctx, &removed);
    Ok(Reply::Int(removed.len() as i64))
}

/// ACL LIST
pub fn list(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let users = ctx.srv.acl.all();
    Ok(Reply::Array(
        users
            .iter()
            .map(|u| s(format!("user {} {}", u.name, u.perms().describe())))
            .collect(),
    ))
}

/// ACL USERS
pub fn users(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let users = ctx.srv.acl.all();
    Ok(Reply::Array(
        users.iter().map(|u| s(u.name.clone())).collect(),
    ))
}

/// ACL WHOAMI
pub fn whoami(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let name = ctx.client.info.user.lock().clone();
    Ok(s(name))
}

/// ACL CAT [category]
pub fn cat(_ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    match a.get(2) {
        None => Ok(Reply::Array(CATEGORIES.iter().map(|c| s(*c)).collect())),
        Some(name) => {
            let name = text(name);
            let bit = category_bit(&name)
                .ok_or_else(|| Reply::error(format!("ERR Unknown category '{name}'")))?;
            Ok(Reply::Array(
                index().names_in(bit).into_iter().map(s).collect(),
            ))
        }
    }
}

/// Largest ACL GENPASS size (Redis's bound).
const GENPASS_MAX_BITS: i64 = 4096;
/// ACL GENPASS default: 256 bits, 64 hex characters.
const GENPASS_DEFAULT_BITS: i64 = 256;

/// ACL GENPASS [bits]
pub fn genpass(_ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let bits = match a.get(2) {
        Some(b) => int(b)?,
        None => GENPASS_DEFAULT_BITS,
    };
    if bits <= 0 || bits > GENPASS_MAX_BITS {
        return Err(err("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"));
    }
    Ok(s(password::generate(bits as usize)))
}

/// ACL LOG [count | RESET]
pub fn log(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let mut count = 10usize;
    if let Some(arg) = a.get(2) {
        if is(arg, "reset") {
            ctx.srv.acl.log.lock().clear();
            return Ok(Reply::Ok);
        }
        count = int(arg)?.max(0) as usize; // Redis 7.0: a negative count lists nothing
    }
    let entries = ctx.srv.acl.log.lock().newest(count);
    Ok(Reply::Array(
        entries
            .into_iter()
            .map(|e| {
                Reply::Map(vec![
                    (s("count"), Reply::Int(e.count as i64)),
                    (s("reason"), s(e.reason.name())),
                    (s("context"), s(e.context)),
                    (s("object"), s(e.object)),
                    (s("username"), s(e.username)),
                    (
                        s("age-seconds"),
                        Reply::Double(e.last.elapsed().as_millis() as f64 / 1000.0),
                    ),
                    (s("client-info"), s(e.client_info)),
                ])
            })
            .collect(),
    ))
}

/// ACL SAVE
pub fn save(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    ctx.srv
        .acl
        .save(&ctx.srv.config)
        .map_err(|e| Reply::error(format!("ERR {e}")))?;
    Ok(Reply::Ok)
}

/// ACL LOAD
pub fn load(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let replaced = ctx
        .srv
        .acl
        .load(&ctx.srv.config)
        .map_err(|e| Reply::error(format!("ERR {e}")))?;
    disconnect_users(ctx, &replaced);
    Ok(Reply::Ok)
}

/// ACL DRYRUN username command [arg ...]
pub fn dryrun(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let name = text(&a[2]);
    let user = ctx
        .srv
        .acl
        .get(&name)
        .ok_or_else(|| Reply::error(format!("ERR User '{name}' not found")))?;
    let cmd = &a[3..];
    let spec = super::resolve(cmd).map_err(|e| match e {
        Reply::Error(m) if m.starts_with("ERR unknown command") => {
            Reply::error(format!("ERR Command '{}' not found", text(&cmd[0])))
        }
        other => other,
    })?;
    Ok(match check(&user.perms(), spec, cmd) {
        Ok(()) => Reply::Ok,
        Err(Denial::Command) => s(format!(
            "This user has no permissions to run the '{}' command",
            full_name(spec)
        )),
        Err(Denial::Key(k)) => s(format!(
            "This user has no permissions to access the '{}' key",
            text(&k)
        )),
        Err(Denial::Channel(c)) => s(format!(
            "This user has no permissions to access the '{}' channel",
            text(&c)
        )),
    })
}

/// `get`, `config|get`: how Redis names a command in ACL errors and the log.
pub fn full_name(spec: &'static super::table::CommandSpec) -> String {
    let ix = index();
    ix.id(spec)
        .map(|id| ix.all[id].full_name())
        .unwrap_or_else(|| spec.name.to_string())
}

/// ACL HELP
pub fn acl_help(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help(
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    ))
}

/// The CLIENT INFO line ACL LOG records for the calling client.
pub fn log_client_info(srv: &crate::state::Shared, client: &crate::state::ClientInfo) -> String {
    let tracking = srv.store.events.tracking.view(client.id);
    client_line(client, crate::keyspace::now_ms(), tracking.as_ref())
}
