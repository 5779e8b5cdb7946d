//! FUNCTION libraries (Redis 7 functions): `#!lua name=<library>` code that registers
//! functions with `redis.register_function` when loaded; the registry of loaded
//! libraries and functions; and their persistence, one record per library in the
//! `kvd-functions` keyspace of the engine (key: library name, value: its code), written
//! in the same batch as the FUNCTION command that changed it and loaded again at start.

use crate::compat_version::CompatVersion;
use crate::protocol::Reply;
use crate::scripting::busy::Busy;
use crate::scripting::sandbox::Vm;
use crate::scripting::shebang;
use crate::shutdown::Shutdown;
use bytes::Bytes;
use mlua::{Function, Lua, MultiValue, Table, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Name of the engine keyspace holding library code.
pub const FUNCTIONS_KEYSPACE: &str = "kvd-functions";
/// Registry slot of the collector `redis.register_function` adds to while a library loads.
const REGISTER_SLOT: &str = "kvd.register_function";

/// One registered function.
pub struct RegisteredFunction {
    /// Its name.
    pub name: String,
    /// The Lua callback.
    pub func: Function,
    /// Flag bits (shebang::NO_WRITES ...).
    pub flags: u32,
    /// Description, if given.
    pub description: Option<String>,
    /// Library it belongs to.
    pub library: String,
}

/// One loaded library.
pub struct Library {
    /// Its code, as loaded.
    pub code: Bytes,
    /// Names of its functions.
    pub functions: Vec<String>,
}

/// The function engine: its own Lua state, libraries and functions.
pub struct Functions {
    /// The Lua state libraries load into.
    pub vm: Vm,
    /// Libraries by name.
    pub libraries: BTreeMap<String, Library>,
    /// Functions by name.
    pub functions: BTreeMap<String, RegisteredFunction>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The library name of `code` (`#!lua name=<library>` first line), Redis's errors.
pub fn library_name(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    let line = String::from_utf8_lossy(&code[2..end]).into_owned();
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or("");
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    let mut name = None;
    for p in parts {
        match p.split_once('=') {
            Some(("name", v)) => name = Some(v.to_string()),
            _ => return Err(format!("Invalid metadata value given: {p}")),
        }
    }
    let name = name.ok_or("Library name was not given")?;
    if !valid_name(&name) {
        return Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    Ok((name, end))
}

/// `redis.register_function`'s primitive: adds to the collector of the library loading
/// now (errors are raised as strings: the load reports them).
pub fn register_primitive(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    let collector = match lua.named_registry_value::<Value>(REGISTER_SLOT)? {
        Value::Table(t) => t,
        _ => {
            return Err(mlua::Error::runtime(
                "redis.register_function can only be called on FUNCTION LOAD command",
            ))
        }
    };
    let entry = lua.create_table()?;
    match (args.len(), args.front()) {
        (2, Some(Value::String(name))) => {
            entry.set("function_name", name.clone())?;
            entry.set("callback", args[1].clone())?;
        }
        (1, Some(Value::Table(t))) => {
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let key = match &k {
                    Value::String(s) => s.to_string_lossy(),
                    _ => String::new(),
                };
                if !matches!(
                    key.as_str(),
                    "function_name" | "callback" | "flags" | "description"
                ) {
                    return Err(mlua::Error::runtime(
                        "unknown argument given to redis.register_function",
                    ));
                }
                entry.set(k, v)?;
            }
        }
        (1, _) => {
            return Err(mlua::Error::runtime("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."))
        }
        _ => {
            return Err(mlua::Error::runtime(
                "wrong number of arguments to redis.register_function",
            ))
        }
    }
    collector.raw_set(collector.raw_len() + 1, entry)?;
    Ok(())
}

fn registration(library: &str, entry: &Table) -> Result<RegisteredFunction, String> {
    let name = match entry.raw_get::<Value>("function_name") {
        Ok(Value::String(s)) => s.to_string_lossy(),
        _ => {
            return Err(
                "function_name argument given to redis.register_function must be a string".into(),
            )
        }
    };
    if !valid_name(&name) {
        return Err("Function names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    let func = match entry.raw_get::<Value>("callback") {
        Ok(Value::Function(f)) => f,
        _ => {
            return Err(
                "callback argument given to redis.register_function must be a function".into(),
            )
        }
    };
    let mut flags = 0;
    match entry.raw_get::<Value>("flags") {
        Ok(Value::Nil) => {}
        Ok(Value::Table(t)) => {
            for v in t.sequence_values::<String>() {
                let v = v.map_err(|_| "unknown flag given".to_string())?;
                flags |= shebang::flag(&v).ok_or("unknown flag given")?;
            }
        }
        _ => return Err(
            "flags argument to redis.register_function must be a table representing function flags"
                .into(),
        ),
    }
    let description = match entry.raw_get::<Value>("description") {
        Ok(Value::String(s)) => Some(s.to_string_lossy()),
        Ok(Value::Nil) => None,
        _ => {
            return Err(
                "description argument given to redis.register_function must be a string".into(),
            )
        }
    };
    Ok(RegisteredFunction {
        name,
        func,
        flags,
        description,
        library: library.to_string(),
    })
}

impl Functions {
    /// An empty engine whose scripts see Redis version `version`.
    pub fn new(
        busy: Arc<Busy>,
        shutdown: Shutdown,
        version: CompatVersion,
    ) -> Result<Functions, String> {
        Ok(Functions {
            vm: Vm::new(busy, shutdown, true, version)
                .map_err(|e| format!("cannot create the functions Lua state: {e}"))?,
            libraries: BTreeMap::new(),
            functions: BTreeMap::new(),
        })
    }

    /// Loads a library (FUNCTION LOAD, RESTORE, start-up): runs its code, which must
    /// register at least one function. Returns its name. Nothing changes on error.
    pub fn load(&mut self, code: &Bytes, replace: bool) -> Result<String, Reply> {
        let e = |m: String| Reply::error(format!("ERR {m}"));
        let (name, code_start) = library_name(code).map_err(e)?;
        if self.libraries.contains_key(&name) && !replace {
            return Err(e(format!("Library '{name}' already exists")));
        }
        let lua = &self.vm.lua;
        let registered = (|| -> mlua::Result<Result<Vec<RegisteredFunction>, String>> {
            let body = match lua
                .load(&code[code_start..])
                .set_name("@user_function")
                .into_function()
            {
                Ok(f) => f,
                Err(mlua::Error::SyntaxError { message, .. }) => {
                    return Ok(Err(format!("Error compiling function: {message}")))
                }
                Err(other) => return Ok(Err(format!("Error compiling function: {other}"))),
            };
            let collector = lua.create_table()?;
            lua.set_named_registry_value(REGISTER_SLOT, collector.clone())?;
            let (ok, err) = self
                .vm
                .runner
                .call::<(bool, Value)>((body, Value::Nil, Value::Nil))?;
            lua.set_named_registry_value(REGISTER_SLOT, Value::Nil)?;
            if !ok {
                let msg = match err {
                    Value::Table(t) => t.raw_get::<String>("err").unwrap_or_default(),
                    other => format!("{other:?}"),
                };
                return Ok(Err(format!("Error registering functions: {msg}")));
            }
            let mut out = Vec::new();
            for entry in collector.sequence_values::<Table>() {
                match registration(&name, &entry?) {
                    Ok(f) => out.push(f),
                    Err(m) => return Ok(Err(m)),
                }
            }
            Ok(Ok(out))
        })()
        .map_err(|err| e(format!("Error loading library: {err}")))?
        .map_err(e)?;
        if registered.is_empty() {
            return Err(e("No functions registered".into()));
        }
        for f in &registered {
            if let Some(existing) = self.functions.get(&f.name) {
                if existing.library != name {
                    return Err(e(format!("Function {} already exists", f.name)));
                }
            }
        }
        self.delete(&name);
        let names = registered.iter().map(|f| f.name.clone()).collect();
        for f in registered {
            self.functions.insert(f.name.clone(), f);
        }
        self.libraries.insert(
            name.clone(),
            Library {
                code: code.clone(),
                functions: names,
            },
        );
        Ok(name)
    }

    /// Removes a library and its functions; false if there was none.
    pub fn delete(&mut self, name: &str) -> bool {
        match self.libraries.remove(name) {
            Some(lib) => {
                for f in lib.functions {
                    self.functions.remove(&f);
                }
                true
            }
            None => false,
        }
    }
}
