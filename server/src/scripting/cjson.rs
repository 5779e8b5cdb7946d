//! The `cjson` library scripts get (lua-cjson as Redis bundles it): `cjson.encode`,
//! `cjson.decode` and `cjson.null`, with lua-cjson's rules (tables whose keys are 1..n
//! are arrays, an empty table is `{}`, numbers printed with `%.14g`, `/` escaped).
//! The buffer and precision settings of lua-cjson are not offered.

use crate::scripting::numbers::format_g;
use mlua::{LightUserData, Lua, Table, Value};

/// Deepest nesting encode and decode accept (lua-cjson's default).
const MAX_DEPTH: usize = 1000;
/// lua-cjson's `encode_sparse_array` defaults: an array whose largest index passes both
/// `ratio` × its item count and `safe` is refused as excessively sparse.
const SPARSE_RATIO: usize = 2;
const SPARSE_SAFE: usize = 10;

fn fail(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::runtime(msg.into())
}

fn escape(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            8 => out.extend_from_slice(b"\\b"),
            12 => out.extend_from_slice(b"\\f"),
            0..=31 | 127 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

fn number(out: &mut Vec<u8>, n: f64) -> mlua::Result<()> {
    if !n.is_finite() {
        return Err(fail("Cannot serialise number: must not be NaN or Infinity"));
    }
    out.extend_from_slice(format_g(n, 14).as_bytes());
    Ok(())
}

/// The array length of `t` if every key is a positive integer (lua-cjson's test).
fn array_length(t: &Table) -> mlua::Result<Option<usize>> {
    let (mut max, mut items) = (0usize, 0usize);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let idx = match k {
            Value::Integer(i) if i >= 1 => i as usize,
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => n as usize,
            _ => return Ok(None),
        };
        max = max.max(idx);
        items += 1;
    }
    if max > items * SPARSE_RATIO && max > SPARSE_SAFE {
        return Err(fail("Cannot serialise table: excessively sparse array"));
    }
    Ok(Some(max))
}

fn encode_value(out: &mut Vec<u8>, v: &Value, depth: usize) -> mlua::Result<()> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(u) if u.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => number(out, *i as f64)?,
        Value::Number(n) => number(out, *n)?,
        Value::String(s) => escape(out, &s.as_bytes()),
        Value::Table(t) => {
            if depth >= MAX_DEPTH {
                return Err(fail(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 1
                )));
            }
            match array_length(t)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        encode_value(out, &t.raw_get::<Value>(i)?, depth + 1)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.pairs::<Value, Value>() {
                        let (k, v) = pair?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => escape(out, &s.as_bytes()),
                            Value::Integer(i) => escape(out, format_g(*i as f64, 14).as_bytes()),
                            Value::Number(n) => escape(out, format_g(*n, 14).as_bytes()),
                            _ => {
                                return Err(fail(
                                    "Cannot serialise table: table key must be a number or string",
                                ))
                            }
                        }
                        out.push(b':');
                        encode_value(out, &v, depth + 1)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(fail(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            )))
        }
    }
    Ok(())
}

fn decode_value(lua: &Lua, v: serde_json::Value, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(fail(format!(
            "Found too many nested data structures ({}) at character 1",
            depth
        )));
    }
    Ok(match v {
        serde_json::Value::Null => Value::LightUserData(LightUserData(std::ptr::null_mut())),
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, decode_value(lua, item, depth + 1)?)?;
            }
            Value::Table(t)
        }
        serde_json::Value::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, item) in map {
                t.raw_set(k, decode_value(lua, item, depth + 1)?)?;
            }
            Value::Table(t)
        }
    })
}

/// The `cjson` table.
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "encode",
        lua.create_function(|lua, v: Value| {
            let mut out = Vec::new();
            encode_value(&mut out, &v, 0)?;
            lua.create_string(out)
        })?,
    )?;
    t.set(
        "decode",
        lua.create_function(|lua, s: mlua::String| {
            let parsed: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| fail(format!("Expected value but found invalid token: {e}")))?;
            decode_value(lua, parsed, 0)
        })?,
    )?;
    t.set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_like_lua_cjson() {
        let lua = Lua::new();
        lua.globals().set("cjson", library(&lua).unwrap()).unwrap();
        let s: String = lua
            .load(r#"return cjson.encode({1, 2.5, "a/b", {x = true}, {}})"#)
            .eval()
            .unwrap();
        assert_eq!(s, r#"[1,2.5,"a\/b",{"x":true},{}]"#);
        let n: f64 = lua
            .load(r#"return cjson.decode('[1,{"a":1.5}]')[2].a"#)
            .eval()
            .unwrap();
        assert_eq!(n, 1.5);
        let null: bool = lua
            .load(r#"return cjson.decode('[null]')[1] == cjson.null"#)
            .eval()
            .unwrap();
        assert!(null);
        let err = lua
            .load(r#"return cjson.encode({[1] = 1, [100] = 2})"#)
            .eval::<String>()
            .unwrap_err();
        assert!(err.to_string().contains("excessively sparse"), "{err}");
    }
}
