//! Per-command call counts and time (INFO commandstats) and the full names Redis shows
//! for commands (`get`, `client|info`), by the dense ids of the ACL command index.

use super::table::CommandSpec;
use crate::acl::categories::index;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Calls and microseconds of every command and subcommand since start or CONFIG RESETSTAT.
pub struct CommandStats {
    calls: Vec<AtomicU64>,
    usec: Vec<AtomicU64>,
}

impl Default for CommandStats {
    fn default() -> Self {
        let n = index().all.len();
        CommandStats {
            calls: (0..n).map(|_| AtomicU64::new(0)).collect(),
            usec: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl CommandStats {
    /// Counts one call that took `micros` of the command with index id `id`
    /// (`index().id(spec)`, looked up once by the caller for every counter).
    pub fn record(&self, id: Option<usize>, micros: u64) {
        if let Some(id) = id {
            self.calls[id].fetch_add(1, Ordering::Relaxed);
            self.usec[id].fetch_add(micros, Ordering::Relaxed);
        }
    }

    /// Forgets every count (CONFIG RESETSTAT).
    pub fn reset(&self) {
        for c in self.calls.iter().chain(&self.usec) {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// INFO commandstats lines, `cmdstat_<name>` for every command called at least once.
    pub fn info_lines(&self) -> Vec<(String, String)> {
        let names = full_names();
        let mut out = Vec::new();
        for (id, calls) in self.calls.iter().enumerate() {
            let calls = calls.load(Ordering::Relaxed);
            if calls == 0 {
                continue;
            }
            let usec = self.usec[id].load(Ordering::Relaxed);
            out.push((
                format!("cmdstat_{}", names[id]),
                format!(
                    "calls={calls},usec={usec},usec_per_call={:.2},rejected_calls=0,failed_calls=0",
                    usec as f64 / calls as f64
                ),
            ));
        }
        out
    }
}

fn full_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        index()
            .all
            .iter()
            .map(|e| &*Box::leak(e.full_name().into_boxed_str()))
            .collect()
    })
}

/// Redis's full name of a command of the table: `get`, `client|info` (CLIENT LIST's `cmd=`).
pub fn full_name(spec: &'static CommandSpec) -> &'static str {
    full_name_by_id(spec, index().id(spec))
}

/// [`full_name`] for a caller that looked the id up (`index().id(spec)`).
pub fn full_name_by_id(spec: &'static CommandSpec, id: Option<usize>) -> &'static str {
    match id {
        Some(id) => full_names()[id],
        None => spec.name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::resolve;
    use bytes::Bytes;

    #[test]
    fn subcommands_are_named_with_their_container() {
        let args: Vec<Bytes> = ["client", "info"].iter().map(|s| Bytes::from(*s)).collect();
        let spec = resolve(&args).expect("known");
        assert_eq!(full_name(spec), "client|info");
        let stats = CommandStats::default();
        stats.record(index().id(spec), 10);
        stats.record(index().id(spec), 20);
        let lines = stats.info_lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, "cmdstat_client|info");
        assert!(lines[0]
            .1
            .starts_with("calls=2,usec=30,usec_per_call=15.00,"));
    }
}
