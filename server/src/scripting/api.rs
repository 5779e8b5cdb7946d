//! The `redis` table scripts get, as Redis 7 gives it: `call` and `pcall` (over the
//! primitive that runs one command, see `call.rs`), `error_reply`, `status_reply`,
//! `sha1hex`, `log`, `setresp`, `set_repl` (accepted: kvd has no replicas to send script
//! effects to), `acl_check_cmd`, `replicate_commands`, `breakpoint`, and the `LOG_*`,
//! `REPL_*` constants.
//!
//! The functions are Rust (C functions to Lua), so the script's frame stays on the stack
//! when one raises, even from a tail call, and the error handler finds the script's
//! line: errors read exactly as Redis's `ERR ... script: <sha>, on @user_script:<line>.`
//! A raised error's text is left in [`Raised`] for the handler to build the error table
//! Redis raises (mlua raises errors as userdata, not tables).

use crate::compat_version::CompatVersion;
use crate::scripting::convert::error_table;
use mlua::{Function, Lua, MultiValue, Table, Value};
use parking_lot::Mutex;
use sha1::{Digest, Sha1};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Registry slot of the function that runs a command for the script running now.
pub const CALL_SLOT: &str = "kvd.script_call";

/// Lowercase hex SHA-1 of `data` (script ids and `redis.sha1hex`).
pub fn sha1hex(data: &[u8]) -> String {
    let digest = Sha1::digest(data);
    let mut s = String::with_capacity(40);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The text of the error a `redis` function raised last, for the error handler.
#[derive(Clone, Default)]
pub struct Raised(Arc<Mutex<Option<String>>>);

impl Raised {
    /// Takes the stored text.
    pub fn take(&self) -> Option<String> {
        self.0.lock().take()
    }

    /// Raises `table` (an error table): stores its text and returns the Lua error.
    fn raise(&self, table: &Table) -> mlua::Error {
        let text: String = table.raw_get("err").unwrap_or_default();
        *self.0.lock() = Some(text.clone());
        mlua::Error::runtime(text)
    }

    /// A function that raises the error table of a `(value, failed)` primitive.
    fn raising<F>(&self, lua: &Lua, f: F) -> mlua::Result<Function>
    where
        F: Fn(&Lua, MultiValue) -> mlua::Result<(Value, bool)> + Send + 'static,
    {
        let raised = self.clone();
        lua.create_function(move |lua, args: MultiValue| match f(lua, args)? {
            (Value::Table(t), true) => Err(raised.raise(&t)),
            (v, _) => Ok(v),
        })
    }
}

fn raise(lua: &Lua, msg: &str) -> mlua::Result<(Value, bool)> {
    Ok((Value::Table(error_table(lua, msg)?), true))
}

fn done(v: Value) -> mlua::Result<(Value, bool)> {
    Ok((v, false))
}

/// `redis.call` / `redis.pcall`'s primitive: runs the command through the function the
/// running script installed in the registry (none outside a script run).
pub fn call_primitive(lua: &Lua, args: MultiValue) -> mlua::Result<(Value, bool)> {
    match lua.named_registry_value::<Value>(CALL_SLOT)? {
        Value::Function(f) => f.call((false, args)),
        _ => raise(lua, "redis.call is only available while a script runs"),
    }
}

/// `redis.acl_check_cmd`'s primitive: the ACL check alone, through the same function.
fn acl_check_primitive(lua: &Lua, args: MultiValue) -> mlua::Result<(Value, bool)> {
    match lua.named_registry_value::<Value>(CALL_SLOT)? {
        Value::Function(f) => f.call((true, args)),
        _ => raise(
            lua,
            "redis.acl_check_cmd can only be called inside a script invocation",
        ),
    }
}

fn number_arg(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => s.to_str().ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn text_arg(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(i.to_string().into_bytes()),
        Value::Number(n) => Some(crate::scripting::numbers::format_g(*n, 14).into_bytes()),
        _ => None,
    }
}

/// `redis.error_reply` / `status_reply`: the table `make` builds from the one string
/// argument, or (as Redis) an error table for anything else, returned, not raised.
fn reply_table(
    lua: &Lua,
    args: &MultiValue,
    make: impl Fn(&Lua, &mlua::String) -> mlua::Result<Table>,
) -> mlua::Result<(Value, bool)> {
    let t = match (args.len(), args.front()) {
        (1, Some(Value::String(s))) => make(lua, s)?,
        _ => error_table(lua, "wrong number or type of arguments")?,
    };
    done(Value::Table(t))
}

/// The `redis` table; `version` is what `redis.REDIS_VERSION` reports (`compat-version`).
pub fn library(
    lua: &Lua,
    resp3: Arc<AtomicBool>,
    raised: Raised,
    version: CompatVersion,
) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("LOG_DEBUG", 0)?;
    t.set("LOG_VERBOSE", 1)?;
    t.set("LOG_NOTICE", 2)?;
    t.set("LOG_WARNING", 3)?;
    t.set("REPL_NONE", 0)?;
    t.set("REPL_AOF", 1)?;
    t.set("REPL_SLAVE", 2)?;
    t.set("REPL_REPLICA", 2)?;
    t.set("REPL_ALL", 3)?;
    t.set("REDIS_VERSION", version.text())?;
    t.set("REDIS_VERSION_NUM", version.num())?;
    t.set("call", raised.raising(lua, call_primitive)?)?;
    t.set(
        "pcall",
        lua.create_function(|lua, args: MultiValue| Ok(call_primitive(lua, args)?.0))?,
    )?;
    let raw = t.clone();
    raw.set(
        "error_reply",
        raised.raising(lua, |lua, args: MultiValue| {
            reply_table(lua, &args, |lua, s| {
                let s = s.to_string_lossy();
                let raw = if s.starts_with('-') {
                    s
                } else {
                    format!("-{s}")
                };
                error_table(lua, &raw)
            })
        })?,
    )?;
    raw.set(
        "status_reply",
        raised.raising(lua, |lua, args: MultiValue| {
            reply_table(lua, &args, |lua, s| {
                let t = lua.create_table()?;
                t.raw_set("ok", s.clone())?;
                Ok(t)
            })
        })?,
    )?;
    raw.set(
        "sha1hex",
        raised.raising(lua, |lua, args: MultiValue| {
            match (args.len(), args.front()) {
                (1, Some(v)) => {
                    let data = text_arg(v).unwrap_or_default();
                    done(Value::String(lua.create_string(sha1hex(&data))?))
                }
                _ => raise(lua, "wrong number of arguments"),
            }
        })?,
    )?;
    raw.set(
        "log",
        raised.raising(lua, |lua, args: MultiValue| {
            if args.len() < 2 {
                return raise(lua, "redis.log() requires two arguments or more.");
            }
            let Some(level) = number_arg(args.front()) else {
                return raise(lua, "First argument must be a number (log level).");
            };
            let text = args
                .iter()
                .skip(1)
                .filter_map(text_arg)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            match level as i64 {
                0 => tracing::debug!(target: "script", "{text}"),
                1 | 2 => tracing::info!(target: "script", "{text}"),
                3 => tracing::warn!(target: "script", "{text}"),
                _ => return raise(lua, "Invalid debug level."),
            }
            done(Value::Nil)
        })?,
    )?;
    raw.set(
        "setresp",
        raised.raising(lua, move |lua, args: MultiValue| {
            if args.len() != 1 {
                return raise(lua, "redis.setresp() requires one argument.");
            }
            match number_arg(args.front()).map(|n| n as i64) {
                Some(2) => resp3.store(false, Ordering::Relaxed),
                Some(3) => resp3.store(true, Ordering::Relaxed),
                _ => return raise(lua, "RESP version must be 2 or 3."),
            }
            done(Value::Nil)
        })?,
    )?;
    raw.set(
        "set_repl",
        raised.raising(lua, |lua, args: MultiValue| {
            if args.len() != 1 {
                return raise(lua, "redis.set_repl() requires two arguments.");
            }
            match number_arg(args.front()).map(|n| n as i64) {
                Some(0..=3) => done(Value::Nil),
                _ => raise(
                    lua,
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ),
            }
        })?,
    )?;
    raw.set("acl_check_cmd", raised.raising(lua, acl_check_primitive)?)?;
    raw.set(
        "replicate_commands",
        raised.raising(lua, |_, _: MultiValue| done(Value::Boolean(true)))?,
    )?;
    raw.set(
        "breakpoint",
        raised.raising(lua, |_, _: MultiValue| done(Value::Boolean(false)))?,
    )?;
    raw.set(
        "debug",
        raised.raising(lua, |_, _: MultiValue| done(Value::Nil))?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_of_the_empty_string() {
        assert_eq!(sha1hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}
