//! Lua scripting (docs/scripting.md): EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT, with
//! Redis 7's semantics and error texts.
//!
//! `sandbox` makes the Lua state, `api` the `redis` table, `call` runs one command for a
//! script, `convert` maps replies to Lua values and back, `cache` holds compiled scripts,
//! `shebang` parses script flags, `run` runs a script atomically, `busy` is the running
//! script as other connections see it (-BUSY, SCRIPT KILL), `eval` and `script` are the
//! commands; `library` holds FUNCTION libraries, `function` their commands and FCALL,
//! `function_dump` the FUNCTION DUMP / RESTORE payload in Redis's format;
//! `cjson`, `bitop`, `cmsgpack`, `lua_struct` (with `lua_aux`, lauxlib's checks and
//! error texts) and `random` are the libraries Redis gives scripts; `ring` is how
//! scripts run on a cluster node.

pub mod api;
pub mod bitop;
pub mod busy;
pub mod cache;
pub mod call;
pub mod cjson;
pub mod cmsgpack;
pub mod convert;
pub mod eval;
pub mod function;
pub mod function_dump;
pub mod library;
pub mod lua_aux;
pub mod lua_struct;
pub mod numbers;
pub mod random;
pub mod ring;
pub mod run;
pub mod sandbox;
pub mod script;
pub mod shebang;

use crate::compat_version::CompatVersion;
use crate::shutdown::Shutdown;
use busy::Busy;
use bytes::Bytes;
use cache::ScriptCache;
use library::{Functions, FUNCTIONS_KEYSPACE};
use parking_lot::{Mutex, MutexGuard};
use sandbox::Vm;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The EVAL Lua state and its script cache. Only used under the exclusive world lock (by
/// scripts, SCRIPT LOAD/EXISTS/FLUSH), so the mutex is never waited for.
pub struct EvalState {
    /// The Lua state.
    pub vm: Vm,
    /// Compiled scripts.
    pub cache: ScriptCache,
}

/// Everything scripting keeps for the server.
pub struct Scripting {
    /// The running script as other connections see it.
    pub busy: Arc<Busy>,
    shutdown: Shutdown,
    /// The Redis version scripts see (`compat-version`).
    version: CompatVersion,
    eval: Mutex<EvalState>,
    functions: Mutex<Functions>,
    /// Engine keyspace of library code (library::FUNCTIONS_KEYSPACE).
    pub functions_keyspace: kv_engine::Keyspace,
    /// Libraries and functions loaded (FUNCTION STATS reads them without the Lua state,
    /// which a running function holds).
    library_count: AtomicUsize,
    function_count: AtomicUsize,
    /// On a cluster node: held by the script running now (scripts there run without the
    /// world lock, inside their key's consensus round; see `ring::turn`).
    pub ring_turn: Mutex<()>,
}

impl Scripting {
    /// Fresh Lua states, with the function libraries stored in `db` loaded; the hook
    /// stops scripts when `shutdown` triggers; scripts see Redis version `version`.
    pub fn new(
        shutdown: Shutdown,
        db: &kv_engine::Db,
        version: CompatVersion,
    ) -> Result<Scripting, String> {
        let busy = Arc::new(Busy::default());
        let vm = Vm::new(busy.clone(), shutdown.clone(), false, version)
            .map_err(|e| format!("cannot create the Lua state: {e}"))?;
        let functions_keyspace = db
            .keyspace(FUNCTIONS_KEYSPACE)
            .map_err(|e| format!("cannot open the functions keyspace: {e}"))?;
        let mut functions = Functions::new(busy.clone(), shutdown.clone(), version)?;
        let stored = db
            .iter(functions_keyspace, None, None, None)
            .map_err(|e| format!("cannot read the stored functions: {e}"))?;
        for entry in stored {
            let entry = entry.map_err(|e| format!("cannot read the stored functions: {e}"))?;
            if let Err(e) = functions.load(&entry.value, false) {
                tracing::error!(library = %String::from_utf8_lossy(&entry.key), error = ?e, "stored function library does not load; skipped");
            }
        }
        let scripting = Scripting {
            busy,
            shutdown,
            version,
            eval: Mutex::new(EvalState {
                vm,
                cache: ScriptCache::default(),
            }),
            functions: Mutex::new(functions),
            functions_keyspace,
            library_count: AtomicUsize::new(0),
            function_count: AtomicUsize::new(0),
            ring_turn: Mutex::new(()),
        };
        scripting.count(&scripting.functions());
        Ok(scripting)
    }

    /// The function engine.
    pub fn functions(&self) -> MutexGuard<'_, Functions> {
        self.functions.lock()
    }

    /// An empty function engine of its own Lua state: FUNCTION RESTORE loads a payload
    /// there first, so a payload that does not load changes nothing (as Redis loads it
    /// into a fresh library context).
    pub fn scratch_functions(&self) -> Result<Functions, String> {
        Functions::new(self.busy.clone(), self.shutdown.clone(), self.version)
    }

    /// Records how many libraries and functions `f` holds (after a change).
    pub fn count(&self, f: &Functions) {
        self.library_count
            .store(f.libraries.len(), Ordering::Relaxed);
        self.function_count
            .store(f.functions.len(), Ordering::Relaxed);
    }

    /// (libraries, functions) loaded.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.library_count.load(Ordering::Relaxed),
            self.function_count.load(Ordering::Relaxed),
        )
    }

    /// Each library's code, by name.
    pub fn library_codes(&self) -> BTreeMap<String, Bytes> {
        let f = self.functions();
        f.libraries
            .iter()
            .map(|(name, lib)| (name.clone(), lib.code.clone()))
            .collect()
    }

    /// Applies a library written through another node of a cluster (or this one):
    /// `code` loads it (replacing the one held), empty deletes it; the change is stored
    /// in `db` as FUNCTION LOAD and DELETE store theirs. Code the node already holds
    /// changes nothing.
    pub fn apply_replicated_library(
        &self,
        db: &kv_engine::Db,
        name: &str,
        code: &Bytes,
    ) -> Result<(), String> {
        let mut f = self.functions();
        let mut batch = kv_engine::WriteBatch::new();
        if code.is_empty() {
            if !f.delete(name) {
                return Ok(());
            }
            batch.delete(self.functions_keyspace, name.as_bytes());
        } else {
            if f.libraries.get(name).is_some_and(|l| l.code == *code) {
                return Ok(());
            }
            match library::library_name(code) {
                Ok((named, _)) if named == name => {}
                _ => return Err(format!("the code does not declare library '{name}'")),
            }
            f.load(code, true).map_err(|e| format!("{e:?}"))?;
            batch.put(self.functions_keyspace, name.as_bytes(), code);
        }
        self.count(&f);
        db.write(batch)
            .map(|_| ())
            .map_err(|e| format!("cannot store the library: {e}"))
    }

    /// The EVAL state.
    pub fn eval_state(&self) -> MutexGuard<'_, EvalState> {
        self.eval.lock()
    }

    /// SCRIPT FLUSH: a new Lua state without any script (Redis also starts over).
    pub fn flush(&self) -> Result<(), String> {
        let vm = Vm::new(
            self.busy.clone(),
            self.shutdown.clone(),
            false,
            self.version,
        )
        .map_err(|e| format!("cannot create the Lua state: {e}"))?;
        let mut state = self.eval.lock();
        state.vm = vm;
        state.cache.clear();
        Ok(())
    }
}
