//! The Lua state scripts run in, set up as Redis sets up its own (docs/scripting.md,
//! "Sandbox"): Lua 5.1 with the base, table, string and math libraries plus cjson,
//! bit, cmsgpack and struct; no io, os, package, debug, loadfile, dofile, print, getfenv or setfenv; every
//! library table and the globals read-only (a script can neither define a global nor
//! change one another script relies on); reading an undefined global is an error; the
//! instruction hook that lets SCRIPT KILL, SHUTDOWN NOSAVE and `-BUSY` work; and a bound
//! on the state's memory.

use crate::compat_version::CompatVersion;
use crate::scripting::busy::Busy;
use crate::scripting::{api, bitop, cjson, cmsgpack, lua_struct, random};
use crate::shutdown::Shutdown;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Instructions between two runs of the hook (Redis's count hook uses the same).
const HOOK_EVERY: u32 = 100_000;

/// Libraries made read-only (their globals cannot be replaced either).
const PROTECTED_LIBRARIES: &[&str] = &[
    "string",
    "table",
    "math",
    "coroutine",
    "cjson",
    "bit",
    "cmsgpack",
    "struct",
    "redis",
];

/// Globals of the base library scripts may not see (Redis's deny list).
const REMOVED_GLOBALS: &[&str] = &[
    "print", "getfenv", "setfenv", "newproxy", "module", "require", "dofile", "loadfile", "debug",
    "package", "io", "os",
];

/// Runs once on the fresh state: the error handler that gives errors their script
/// position (Redis's `__redis__err__handler`), then makes everything read-only and
/// switches the state's globals to the read-only view. Returns the runner:
/// `run(f, keys, args)` = `xpcall(f(keys, args), handler)` (an EVAL body ignores them).
const SETUP: &str = r#"
local G, take_raised, getinfo, setfenv = ...
local error, type, tostring, setmetatable, rawset, xpcall = error, type, tostring, setmetatable, rawset, xpcall
local match, gsub = string.match, string.gsub

local function handler(err)
  -- The position is that of the script: past C functions (error, redis.call) and this
  -- setup's own metamethods.
  local level = 2
  local i = getinfo(level, 'Sl')
  while i and (i.what == 'C' or i.source == '=kvd_setup') do
    level = level + 1
    i = getinfo(level, 'Sl')
  end
  if type(err) == 'userdata' then
    -- Raised by a Rust function: redis.call's error text, or a library's message.
    local raised = take_raised()
    if raised then
      err = {err = raised}
    else
      err = gsub(match(tostring(err), '^[^\n]*'), '^runtime error: ', '')
    end
  end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if i then err.source = i.source; err.line = i.currentline end
  return err
end

local protected = setmetatable({}, {__mode = 'k'})
local function proxy(t)
  local function readonly() error('Attempt to modify a readonly table', 2) end
  local p = setmetatable({}, {__index = t, __newindex = readonly, __metatable = false})
  protected[p] = true
  return p
end
for _, name in ipairs({__LIBRARIES__}) do
  G[name] = proxy(G[name])
end
local strings = getmetatable('')
strings.__index = G.string
strings.__metatable = false
G.rawset = function(t, k, v)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end
setmetatable(G, {__index = function(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end})
local view = proxy(G)
G._G = view
setfenv(0, view)
return function(f, keys, args)
  take_raised() -- a stop text left by an error a script caught must not name a later one
  return xpcall(function() return f(keys, args) end, handler)
end
"#;

/// The Lua state and what runs scripts in it.
pub struct Vm {
    /// The state.
    pub lua: Lua,
    /// The real globals behind the read-only view (KEYS and ARGV are set here).
    pub globals: Table,
    /// `xpcall(f, handler)`.
    pub runner: Function,
    /// The protocol the running script asked for with redis.setresp (true: RESP3).
    pub resp3: Arc<AtomicBool>,
    /// The running script as other connections see it.
    pub busy: Arc<Busy>,
    shutdown: Shutdown,
}

impl Vm {
    /// Puts the hook back to counting instructions only, after a script that was stopped
    /// (its hook then also ran at every line).
    pub fn reset_hook(&self) -> mlua::Result<()> {
        install_hook(&self.lua, self.busy.clone(), self.shutdown.clone(), false)
    }
}

impl Vm {
    /// A fresh state; its hook consults `busy` and `shutdown`. `functions`: the state of
    /// FUNCTION libraries, whose `redis` table also has `register_function`. `version`:
    /// the Redis version scripts see.
    pub fn new(
        busy: Arc<Busy>,
        shutdown: Shutdown,
        functions: bool,
        version: CompatVersion,
    ) -> mlua::Result<Vm> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // SAFETY: `unsafe_new_with` only permits the debug library; SETUP keeps its
        // `getinfo` in a local of the error handler and the library is removed from the
        // globals before any script runs. No C module can be loaded (no package library).
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
        let globals = lua.globals();
        let math: Table = globals.get("math")?;
        random::install(&lua, &math)?;
        globals.set("cjson", cjson::library(&lua)?)?;
        globals.set("bit", bitop::library(&lua)?)?;
        globals.set("cmsgpack", cmsgpack::library(&lua)?)?;
        globals.set("struct", lua_struct::library(&lua)?)?;
        let resp3 = Arc::new(AtomicBool::new(false));
        let raised = api::Raised::default();
        let redis = api::library(&lua, resp3.clone(), raised.clone(), version)?;
        if functions {
            redis.set(
                "register_function",
                lua.create_function(crate::scripting::library::register_primitive)?,
            )?;
        }
        globals.set("redis", redis)?;
        let debug: Table = globals.get("debug")?;
        let getinfo: Function = debug.get("getinfo")?;
        let setfenv: Function = globals.get("setfenv")?;
        for name in REMOVED_GLOBALS {
            globals.raw_set(*name, Value::Nil)?;
        }
        let libraries = PROTECTED_LIBRARIES
            .iter()
            .map(|l| format!("'{l}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let setup = SETUP.replace("__LIBRARIES__", &libraries);
        let take_raised = lua.create_function(move |_, ()| Ok(raised.take()))?;
        let runner: Function = lua.load(setup).set_name("=kvd_setup").call((
            globals.clone(),
            take_raised,
            getinfo,
            setfenv,
        ))?;
        install_hook(&lua, busy.clone(), shutdown.clone(), false)?;
        Ok(Vm {
            lua,
            globals,
            runner,
            resp3,
            busy,
            shutdown,
        })
    }
}

/// The hook: every HOOK_EVERY instructions (and, once the script must stop, at every
/// line too, so a `pcall` that catches the stop error cannot keep the script alive, as
/// Redis does).
pub fn install_hook(
    lua: &Lua,
    busy: Arc<Busy>,
    shutdown: Shutdown,
    every_line: bool,
) -> mlua::Result<()> {
    let mut triggers = HookTriggers::new().every_nth_instruction(HOOK_EVERY);
    if every_line {
        triggers = triggers.every_line();
    }
    lua.set_global_hook(triggers, move |lua, debug| {
        match busy.check(shutdown.is_triggered()) {
            None => Ok(VmState::Continue),
            Some(stop) => {
                busy.set_line(debug.current_line().map_or(0, |l| l as i64));
                if !every_line {
                    install_hook(lua, busy.clone(), shutdown.clone(), true)?;
                }
                Err(mlua::Error::runtime(match stop {
                    crate::scripting::busy::Stop::Killed => {
                        "Script killed by user with SCRIPT KILL..."
                    }
                    crate::scripting::busy::Stop::Shutdown => "Script stopped: server shutdown",
                }))
            }
        }
    })
}
