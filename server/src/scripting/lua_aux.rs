//! What Lua's auxiliary library (lauxlib) does for C libraries, for the libraries kvd
//! writes in Rust (`cmsgpack`, `struct`): argument checks and error texts worded as
//! `luaL_error`, `luaL_argerror` and `luaL_check*` word them, with the script position
//! they add (`user_script:3: bad argument #2 to 'unpack' (data string too short)`), so
//! a script sees the same errors as on Redis.

use mlua::{Lua, MultiValue, Value};

/// `luaL_where(L, 1)`: the position of the Lua code that called the running function
/// (`user_script:3: `), or nothing for C code.
pub fn position(lua: &Lua) -> String {
    lua.inspect_stack(1, |d| {
        let line = d.current_line();
        let src = d.source().short_src.map(|s| s.into_owned());
        match (src, line) {
            (Some(src), Some(line)) if line > 0 => format!("{src}:{line}: "),
            _ => String::new(),
        }
    })
    .unwrap_or_default()
}

/// `luaL_error`: `msg` after the caller's position.
pub fn error(lua: &Lua, msg: impl AsRef<str>) -> mlua::Error {
    mlua::Error::runtime(format!("{}{}", position(lua), msg.as_ref()))
}

/// `luaL_argerror(L, narg, extramsg)` raised from the function `name` (Lua names the
/// function from the calling code; the libraries are called by their field names).
pub fn arg_error(lua: &Lua, narg: usize, name: &str, extramsg: &str) -> mlua::Error {
    error(
        lua,
        format!("bad argument #{narg} to '{name}' ({extramsg})"),
    )
}

/// `luaL_typename` of argument `i` (1-based) of `args`.
pub fn type_name(args: &MultiValue, i: usize) -> &'static str {
    match args.get(i - 1) {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::LightUserData(_)) | Some(Value::UserData(_)) => "userdata",
        Some(Value::Integer(_)) | Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(_) => "userdata",
    }
}

/// Argument `i` as `lua_tonumber` reads it (numbers, and strings that read as one).
pub fn to_number(lua: &Lua, args: &MultiValue, i: usize) -> Option<f64> {
    match args.get(i - 1)? {
        Value::Integer(n) => Some(*n as f64),
        Value::Number(n) => Some(*n),
        v @ Value::String(_) => lua.coerce_number(v.clone()).ok().flatten(),
        _ => None,
    }
}

/// `luaL_checknumber(L, i)` of the function `name`.
pub fn check_number(lua: &Lua, args: &MultiValue, i: usize, name: &str) -> mlua::Result<f64> {
    to_number(lua, args, i).ok_or_else(|| type_error(lua, args, i, name, "number"))
}

/// `luaL_checkinteger(L, i)`: the number truncated toward zero (as the C cast).
pub fn check_integer(lua: &Lua, args: &MultiValue, i: usize, name: &str) -> mlua::Result<i64> {
    check_number(lua, args, i, name).map(|n| n as i64)
}

/// `luaL_optinteger(L, i, default)`.
pub fn opt_integer(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    name: &str,
    default: i64,
) -> mlua::Result<i64> {
    match args.get(i - 1) {
        None | Some(Value::Nil) => Ok(default),
        Some(_) => check_integer(lua, args, i, name),
    }
}

/// `luaL_checklstring(L, i)`: strings, and numbers as Lua prints them.
pub fn check_bytes(lua: &Lua, args: &MultiValue, i: usize, name: &str) -> mlua::Result<Vec<u8>> {
    match args.get(i - 1) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => lua
            .coerce_string(v.clone())?
            .map(|s| s.as_bytes().to_vec())
            .ok_or_else(|| type_error(lua, args, i, name, "string")),
        _ => Err(type_error(lua, args, i, name, "string")),
    }
}

/// `luaL_typerror`: `<expected> expected, got <type>`.
fn type_error(lua: &Lua, args: &MultiValue, i: usize, name: &str, expected: &str) -> mlua::Error {
    let got = type_name(args, i);
    arg_error(lua, i, name, &format!("{expected} expected, got {got}"))
}
