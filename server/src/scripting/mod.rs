//! Lua scripting (docs/scripting.md): EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT, with
//! Redis 7's semantics and error texts.
//!
//! `sandbox` makes the Lua state, `api` the `redis` table, `call` runs one command for a
//! script, `convert` maps replies to Lua values and back, `cache` holds compiled scripts,
//! `shebang` parses script flags, `run` runs a script atomically, `busy` is the running
//! script as other connections see it (-BUSY, SCRIPT KILL), `eval` and `script` are the
//! commands; `cjson`, `bitop` and `random` are the libraries Redis gives scripts.

pub mod api;
pub mod bitop;
pub mod busy;
pub mod cache;
pub mod call;
pub mod cjson;
pub mod convert;
pub mod eval;
pub mod numbers;
pub mod random;
pub mod run;
pub mod sandbox;
pub mod script;
pub mod shebang;

use crate::shutdown::Shutdown;
use busy::Busy;
use cache::ScriptCache;
use parking_lot::{Mutex, MutexGuard};
use sandbox::Vm;
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
    eval: Mutex<EvalState>,
}

impl Scripting {
    /// A fresh Lua state; the hook stops scripts when `shutdown` triggers.
    pub fn new(shutdown: Shutdown) -> Result<Scripting, String> {
        let busy = Arc::new(Busy::default());
        let vm = Vm::new(busy.clone(), shutdown.clone())
            .map_err(|e| format!("cannot create the Lua state: {e}"))?;
        Ok(Scripting {
            busy,
            shutdown,
            eval: Mutex::new(EvalState {
                vm,
                cache: ScriptCache::default(),
            }),
        })
    }

    /// The EVAL state.
    pub fn eval_state(&self) -> MutexGuard<'_, EvalState> {
        self.eval.lock()
    }

    /// SCRIPT FLUSH: a new Lua state without any script (Redis also starts over).
    pub fn flush(&self) -> Result<(), String> {
        let vm = Vm::new(self.busy.clone(), self.shutdown.clone())
            .map_err(|e| format!("cannot create the Lua state: {e}"))?;
        let mut state = self.eval.lock();
        state.vm = vm;
        state.cache.clear();
        Ok(())
    }
}
