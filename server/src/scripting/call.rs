//! One command run by a script (`redis.call` / `redis.pcall`, and the ACL check alone for
//! `redis.acl_check_cmd`), with Redis's checks in
//! Redis's order and texts: arguments, command name and arity, commands scripts may not
//! run, writes from read-only scripts, the ACL of the calling user. The command runs in
//! the script's transaction (its writes join the script's one engine batch) and its
//! reply is converted for the protocol the script chose.

use crate::acl::check::{check, Denial};
use crate::commands::table::{lookup, lookup_sub, CommandSpec, NOSCRIPT, WRITE};
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
    let argv = match script_argv(&args) {
        Ok(argv) => argv,
        Err(why) => return failure(lua, why),
    };
    if script_command(&argv).is_none() {
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

/// The arguments of a `redis` lib call as a command, or Redis's refusal.
fn script_argv(args: &MultiValue) -> Result<Vec<Bytes>, &'static str> {
    if args.is_empty() {
        return Err("Please specify at least one argument for this redis lib call");
    }
    args.iter()
        .map(|a| argument(a).ok_or("Lua redis lib command arguments must be strings or integers"))
        .collect()
}

/// The command `argv` names (a container's subcommand when one is given), as Redis's
/// `lookupCommand` finds it: no arity check.
fn script_command(argv: &[Bytes]) -> Option<&'static CommandSpec> {
    let command = lookup(&argv[0])?;
    if !command.subcommands.is_empty() && argv.len() >= 2 {
        return lookup_sub(command, &argv[1]);
    }
    Some(command)
}

/// `redis.acl_check_cmd(command, args...)`: whether the user running the script may run
/// that command with those arguments (command, keys and channels, as Redis's
/// `ACLCheckAllUserCommandPerm`); an unknown command raises Redis's error.
pub fn script_acl_check(lua: &Lua, ctx: &Ctx<'_>, args: MultiValue) -> mlua::Result<(Value, bool)> {
    let argv = match script_argv(&args) {
        Ok(argv) => argv,
        Err(why) => return failure(lua, why),
    };
    let Some(spec) = script_command(&argv) else {
        return failure(lua, "Invalid command passed to redis.acl_check_cmd()");
    };
    let user = ctx.client.acting_user(ctx.srv);
    Ok((
        Value::Boolean(check(&user.perms(), spec, &argv).is_ok()),
        false,
    ))
}

/// KEYS or ARGV as a Lua table of strings.
pub fn string_table(lua: &Lua, items: &[Bytes]) -> mlua::Result<mlua::Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, b) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(b)?)?;
    }
    Ok(t)
}
