//! Replies to Lua values and back, with Redis's conversion rules (docs/scripting.md,
//! "Conversions"). What a command returns to `redis.call` depends on the protocol the
//! script chose with `redis.setresp` (2 by default); what the script returns is converted
//! once, and the connection then encodes it for the client's own protocol.

use crate::protocol::{Reply, Version};
use crate::scripting::numbers::format_g;
use bytes::Bytes;
use mlua::{Lua, Table, Value};

/// Deepest nesting of a table a script may return (a table that contains itself would
/// otherwise recurse forever); Redis stops at its Lua stack limit the same way.
const MAX_DEPTH: usize = 1000;

/// A Lua error table `{err = "CODE message"}` as Redis's `luaPushErrorBuff` builds it:
/// `raw` is either an error reply with its leading `-` (the code is its first word) or a
/// plain message, which gets the `ERR` code.
pub fn error_table(lua: &Lua, raw: &str) -> mlua::Result<Table> {
    let (code, msg) = match raw.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, msg)) => (code, msg),
            None => ("ERR", rest),
        },
        None => ("ERR", raw),
    };
    let msg = msg.trim_matches(|c| c == '\r' || c == '\n');
    let t = lua.create_table()?;
    t.raw_set("err", format!("{code} {msg}"))?;
    Ok(t)
}

/// A command's reply as the script sees it. Error replies become error tables.
pub fn reply_to_lua(lua: &Lua, reply: &Reply, resp3: bool) -> mlua::Result<Value> {
    let one = |k: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(k, v)?;
        Ok(Value::Table(t))
    };
    Ok(match reply {
        Reply::Ok => one("ok", Value::String(lua.create_string("OK")?))?,
        Reply::Status(s) => one("ok", Value::String(lua.create_string(s.as_bytes())?))?,
        Reply::Error(e) => Value::Table(error_table(lua, &format!("-{e}"))?),
        Reply::Int(n) => Value::Integer(*n),
        Reply::Version(Version::Committed(n)) => Value::Integer(*n as i64),
        // The version of a write of this very script is known only once it commits.
        Reply::Version(Version::Pending(_)) => Value::Boolean(false),
        Reply::Bulk(b) => Value::String(lua.create_string(b)?),
        Reply::Nil | Reply::NilArray if resp3 => Value::Nil,
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        // Pushes and frames come only from pub/sub commands, which scripts may not run
        // (NOSCRIPT); as arrays should one appear.
        Reply::Array(items) | Reply::Push(items) | Reply::Frames(items) => {
            Value::Table(array(lua, items, resp3)?)
        }
        Reply::Set(items) if resp3 => {
            let set = lua.create_table()?;
            for m in items {
                set.raw_set(reply_to_lua(lua, m, resp3)?, true)?;
            }
            one("set", Value::Table(set))?
        }
        Reply::Set(items) => Value::Table(array(lua, items, resp3)?),
        Reply::Map(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(reply_to_lua(lua, k, resp3)?, reply_to_lua(lua, v, resp3)?)?;
            }
            one("map", Value::Table(map))?
        }
        Reply::Map(pairs) => {
            let t = lua.create_table()?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                t.raw_set(2 * i + 1, reply_to_lua(lua, k, resp3)?)?;
                t.raw_set(2 * i + 2, reply_to_lua(lua, v, resp3)?)?;
            }
            Value::Table(t)
        }
        Reply::Double(d) if resp3 => one("double", Value::Number(*d))?,
        Reply::Double(d) => {
            Value::String(lua.create_string(crate::protocol::reply::format_double(*d))?)
        }
        Reply::Bool(b) if resp3 => Value::Boolean(*b),
        Reply::Bool(b) => Value::Integer(*b as i64),
        Reply::Verbatim(s) if resp3 => {
            let v = lua.create_table()?;
            v.raw_set("format", "txt")?;
            v.raw_set("string", s.as_str())?;
            one("verbatim_string", Value::Table(v))?
        }
        Reply::Verbatim(s) => Value::String(lua.create_string(s)?),
        Reply::BigNumber(s) if resp3 => one(
            "big_number",
            Value::String(lua.create_string(s.as_bytes())?),
        )?,
        Reply::BigNumber(s) => Value::String(lua.create_string(s.as_bytes())?),
    })
}

fn array(lua: &Lua, items: &[Reply], resp3: bool) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, reply_to_lua(lua, item, resp3)?)?;
    }
    Ok(t)
}

/// A script's return value as a reply. `resp3` is the script's protocol (redis.setresp):
/// it decides what booleans become, as in Redis.
pub fn lua_to_reply(v: &Value, resp3: bool) -> Reply {
    to_reply(v, resp3, 0)
}

fn to_reply(v: &Value, resp3: bool, depth: usize) -> Reply {
    match v {
        Value::Boolean(b) if resp3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) => Reply::Nil,
        Value::Integer(n) => Reply::Int(*n),
        // Lua numbers are doubles; Redis casts them to integers (so 3.99 is 3).
        Value::Number(n) => Reply::Int(*n as i64),
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(t) if depth >= MAX_DEPTH => {
            let _ = t;
            Reply::error("ERR reached lua stack limit")
        }
        Value::Table(t) => table_to_reply(t, resp3, depth),
        _ => Reply::Nil,
    }
}

fn text_field(t: &Table, name: &str) -> Option<mlua::String> {
    match t.raw_get::<Value>(name) {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn table_to_reply(t: &Table, resp3: bool, depth: usize) -> Reply {
    if let Some(e) = text_field(t, "err") {
        return Reply::error(e.to_string_lossy());
    }
    if let Some(s) = text_field(t, "ok") {
        return Reply::status(s.to_string_lossy());
    }
    match t.raw_get::<Value>("double") {
        Ok(Value::Number(d)) => return Reply::Double(d),
        Ok(Value::Integer(d)) => return Reply::Double(d as f64),
        _ => {}
    }
    if let Some(s) = text_field(t, "big_number") {
        // Redis maps CR and LF to spaces: the number is sent on one RESP3 line.
        let digits = s.to_string_lossy().replace(['\r', '\n'], " ");
        return Reply::BigNumber(digits);
    }
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        let pairs = m
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, v)| {
                (
                    to_reply(&k, resp3, depth + 1),
                    to_reply(&v, resp3, depth + 1),
                )
            })
            .collect();
        return Reply::Map(pairs);
    }
    if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
        let members = s
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| to_reply(&k, resp3, depth + 1))
            .collect();
        return Reply::Set(members);
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
        if let Some(s) = text_field(&v, "string") {
            return Reply::Verbatim(s.to_string_lossy());
        }
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(to_reply(&v, resp3, depth + 1)),
        }
    }
    Reply::Array(items)
}

/// A Lua argument of `redis.call` as a command argument: strings as they are, numbers
/// printed with `%.17g` as Redis does (so no precision is lost); `None` for other types.
pub fn argument(v: &Value) -> Option<Bytes> {
    match v {
        Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(n) => Some(Bytes::from(n.to_string())),
        Value::Number(n) => Some(Bytes::from(format_g(*n, 17))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_follow_redis_rules() {
        let lua = Lua::new();
        let v = reply_to_lua(&lua, &Reply::Nil, false).unwrap();
        assert_eq!(v, Value::Boolean(false));
        assert_eq!(lua_to_reply(&v, false), Reply::Nil);
        let t = error_table(&lua, "-WRONGTYPE Operation against a key").unwrap();
        assert_eq!(
            t.raw_get::<String>("err").unwrap(),
            "WRONGTYPE Operation against a key"
        );
        let t = error_table(&lua, "-boom").unwrap();
        assert_eq!(t.raw_get::<String>("err").unwrap(), "ERR boom");
        let nested = Reply::Array(vec![
            Reply::Int(1),
            Reply::bulk_from(b"x"),
            Reply::Array(vec![Reply::Ok]),
        ]);
        let v = reply_to_lua(&lua, &nested, false).unwrap();
        assert_eq!(
            lua_to_reply(&v, false),
            Reply::Array(vec![
                Reply::Int(1),
                Reply::bulk_from(b"x"),
                Reply::Array(vec![Reply::status("OK")])
            ])
        );
        assert_eq!(lua_to_reply(&Value::Number(3.99), false), Reply::Int(3));
        assert_eq!(lua_to_reply(&Value::Boolean(true), true), Reply::Bool(true));
        assert_eq!(
            argument(&Value::Number(0.1)).unwrap(),
            Bytes::from("0.10000000000000001")
        );
    }

    #[test]
    fn big_numbers_are_tables_in_resp3_and_strings_in_resp2() {
        let lua = Lua::new();
        let big = Reply::BigNumber("1234567890123456789012345678901234567890".into());
        let Value::Table(t) = reply_to_lua(&lua, &big, true).unwrap() else {
            panic!("a RESP3 big number reaches Lua as a table");
        };
        assert_eq!(
            t.raw_get::<String>("big_number").unwrap(),
            "1234567890123456789012345678901234567890"
        );
        assert_eq!(lua_to_reply(&Value::Table(t), true), big);
        let v = reply_to_lua(&lua, &big, false).unwrap();
        assert_eq!(
            v.as_string().unwrap().to_str().unwrap(),
            "1234567890123456789012345678901234567890"
        );
        let t = lua.create_table().unwrap();
        t.raw_set("big_number", "12\r\n3").unwrap();
        assert_eq!(
            lua_to_reply(&Value::Table(t), false),
            Reply::BigNumber("12  3".into())
        );
    }

    #[test]
    fn a_table_that_contains_itself_is_bounded() {
        let lua = Lua::new();
        let t = lua.create_table().unwrap();
        t.raw_set(1, t.clone()).unwrap();
        let mut r = lua_to_reply(&Value::Table(t), false);
        let mut depth = 0;
        while let Reply::Array(mut items) = r {
            r = items.remove(0);
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
        assert_eq!(r, Reply::error("ERR reached lua stack limit"));
    }
}
