//! The EVAL script cache: compiled scripts by the SHA-1 of their body (EVALSHA, SCRIPT
//! LOAD/EXISTS/FLUSH). Like Redis's, it lives in memory only and is empty after a
//! restart (clients such as redis-py fall back from NOSCRIPT to EVAL); SCRIPT FLUSH
//! drops it with the whole Lua state.

use crate::protocol::Reply;
use crate::scripting::api::sha1hex;
use crate::scripting::sandbox::Vm;
use crate::scripting::shebang;
use mlua::Function;
use std::collections::HashMap;

/// A compiled EVAL script.
pub struct Script {
    /// The compiled body.
    pub func: Function,
    /// Its shebang flags (shebang::EVAL_COMPAT without one).
    pub flags: u32,
}

/// Compiled scripts by SHA-1.
#[derive(Default)]
pub struct ScriptCache {
    scripts: HashMap<String, Script>,
}

impl ScriptCache {
    /// The script of `sha` (any case), if loaded.
    pub fn get(&self, sha: &[u8]) -> Option<&Script> {
        if sha.len() != 40 {
            return None;
        }
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.scripts.get(&sha)
    }

    /// True if `sha` is loaded (SCRIPT EXISTS).
    pub fn contains(&self, sha: &[u8]) -> bool {
        self.get(sha).is_some()
    }

    /// The script of `body`, compiled now if new; its SHA-1 and the script.
    pub fn load(&mut self, vm: &Vm, body: &[u8]) -> Result<(String, &Script), Reply> {
        let sha = sha1hex(body);
        if !self.scripts.contains_key(&sha) {
            let script = compile(vm, body)?;
            self.scripts.insert(sha.clone(), script);
        }
        match self.scripts.get(&sha) {
            Some(s) => Ok((sha, s)),
            None => Err(Reply::error(
                "ERR script cache lost the script it just stored",
            )),
        }
    }

    /// Forgets every script.
    pub fn clear(&mut self) {
        self.scripts.clear();
    }

    /// Number of scripts (INFO).
    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }
}

/// Parses the shebang and compiles the body as the chunk `@user_script`.
pub fn compile(vm: &Vm, body: &[u8]) -> Result<Script, Reply> {
    let parsed = shebang::parse(body).map_err(|e| Reply::error(format!("ERR {e}")))?;
    let func = vm
        .lua
        .load(&body[parsed.code_start..])
        .set_name("@user_script")
        .into_function()
        .map_err(|e| {
            let msg = match &e {
                mlua::Error::SyntaxError { message, .. } => message.clone(),
                other => other.to_string(),
            };
            Reply::error(format!("ERR Error compiling script (new function): {msg}"))
        })?;
    Ok(Script {
        func,
        flags: parsed.flags,
    })
}
