//! One command run by a script (`redis.call` / `redis.pcall`), with Redis's checks in
//! Redis's order and texts: arguments, command name and arity, commands scripts may not
//! run, writes from read-only scripts, the ACL of the calling user. The command runs in
//! the script's transaction (its writes join the script's one engine batch) and its
//! reply is converted for the protocol the script chose.

use crate::acl::check::{check, Denial};
use crate::commands::table::{lookup, lookup_sub, NOSCRIPT, WRITE};
use crate::commands::{call_inner, resolve, Ctx};
use crate::scripting::busy::Busy;
use crate::scripting::convert::{argument, error_table, reply_to_lua};
use crate::scripting::ring::{self, RingScope};
use bytes::Bytes;
use mlua::{Lua, MultiValue, Value};

/// What a script may do, fixed when it starts.
#[derive(Debug, Clone)]
pub struct Permissions {
    /// EVAL_RO, FCALL_RO or the no-writes flag: writes are refused.
    pub read_only: bool,
    /// On a cluster node: the key and database the script may touch.
    pub ring: Option<RingScope>,
}

fn failure(lua: &Lua, raw: &str) -> mlua::Result<(Value, bool)> {
    Ok((Value::Table(error_table(lua, raw)?), true))
}

/// Runs one command for the script; `(reply, failed)`.
pub fn script_call(
    lua: &Lua,
    ctx: &mut Ctx<'_>,
    busy: &Busy,
    resp3: bool,
    perms: &Permissions,
    args: MultiValue,
) -> mlua::Result<(Value, bool)> {
    if args.is_empty() {
        return failure(
            lua,
            "Please specify at least one argument for this redis lib call",
        );
    }
    let mut argv = Vec::with_capacity(args.len());
    for a in &args {
        match argument(a) {
            Some(b) => argv.push(b),
            None => {
                return failure(
                    lua,
                    "Lua redis lib command arguments must be strings or integers",
                )
            }
        }
    }
    let known = match lookup(&argv[0]) {
        Some(c) if !c.subcommands.is_empty() && argv.len() >= 2 => {
            lookup_sub(c, &argv[1]).is_some()
        }
        found => found.is_some(),
    };
    if !known {
        return failure(lua, "Unknown Redis command called from script");
    }
    let Ok(spec) = resolve(&argv) else {
        return failure(
            lua,
            "Wrong number of args calling Redis command from script",
        );
    };
    if spec.has(NOSCRIPT) {
        return failure(lua, "This Redis command is not allowed from script");
    }
    if spec.has(WRITE) && perms.read_only {
        return failure(
            lua,
            "Write commands are not allowed from read-only scripts.",
        );
    }
    if let Some(scope) = &perms.ring {
        if let Some(why) = ring::refusal(scope, ctx.client.db, spec, &argv) {
            return failure(lua, &why);
        }
    }
    let user = ctx.client.acting_user(ctx.srv);
    if let Err(denial) = check(&user.perms(), spec, &argv) {
        return failure(
            lua,
            match denial {
                Denial::Command => {
                    "The user executing the script can't run this command or subcommand"
                }
                Denial::Key(_) => {
                    "The user executing the script can't access at least one of the keys mentioned in the command"
                }
                Denial::Channel(_) => {
                    "The user executing the script can't publish to the channel mentioned in the command"
                }
            },
        );
    }
    let before = ctx.txn.pending_writes();
    let reply = call_inner(ctx, &argv);
    if ctx.txn.pending_writes() > before {
        busy.mark_wrote();
    }
    let failed = reply.is_error();
    Ok((reply_to_lua(lua, &reply, resp3)?, failed))
}

/// KEYS or ARGV as a Lua table of strings.
pub fn string_table(lua: &Lua, items: &[Bytes]) -> mlua::Result<mlua::Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, b) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(b)?)?;
    }
    Ok(t)
}
