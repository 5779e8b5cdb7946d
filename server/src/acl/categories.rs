//! ACL command categories and command ids, both derived from the command table the way
//! Redis derives them from its command JSON: flags give @write @read @admin @dangerous
//! @fast @slow @blocking, the command's group gives @string @bitmap @keyspace
//! @connection @transaction, and a short list below adds what flags cannot say.

use crate::commands::table::{self, CommandSpec, ADMIN, BLOCKING, COMMANDS, FAST, READONLY, WRITE};
use crate::commands::table_hash::TableHash;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Every category name in Redis 7.0's order (ACL CAT lists them all, even empty ones).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of category `name` (any case), if it exists.
pub fn category_bit(name: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

fn bit(name: &str) -> u32 {
    category_bit(name).unwrap_or(0)
}

/// Commands Redis marks @dangerous although they are not admin commands.
const DANGEROUS: &[&str] = &["keys", "flushdb", "flushall", "swapdb", "info", "lastsave"];
/// Commands Redis files under @admin although they are not admin commands.
const ADMIN_EXTRA: &[&str] = &["lastsave"];
/// Server-group commands Redis files under @keyspace.
const KEYSPACE: &[&str] = &["dbsize", "flushdb", "flushall", "swapdb"];

fn derive(spec: &CommandSpec, parent: Option<&CommandSpec>) -> u32 {
    let runnable = spec.handler.is_some() || spec.name == "command";
    if !runnable {
        // A container is only implicitly @slow, as in Redis, where `+@slow` therefore
        // reaches all its subcommands; they carry their own categories.
        return bit("slow");
    }
    let mut c = 0;
    for (flag, cat) in [(WRITE, "write"), (READONLY, "read"), (BLOCKING, "blocking")] {
        if spec.has(flag) {
            c |= bit(cat);
        }
    }
    if spec.has(ADMIN) || (parent.is_none() && ADMIN_EXTRA.contains(&spec.name)) {
        c |= bit("admin") | bit("dangerous");
    }
    c |= if spec.has(FAST) {
        bit("fast")
    } else {
        bit("slow")
    };
    c |= match spec.group {
        "string" => bit("string"),
        "bitmap" => bit("bitmap"),
        "generic" => bit("keyspace"),
        "connection" => bit("connection"),
        "transactions" => bit("transaction"),
        "pubsub" => bit("pubsub"),
        _ => 0,
    };
    let top = parent.unwrap_or(spec).name;
    if top == "command" {
        c |= bit("connection");
    }
    if parent.is_none() && KEYSPACE.contains(&spec.name) {
        c |= bit("keyspace");
    }
    if parent.is_none() && DANGEROUS.contains(&spec.name) {
        c |= bit("dangerous");
    }
    c
}

/// One entry of the flattened command table.
pub struct Indexed {
    /// The command or subcommand.
    pub spec: &'static CommandSpec,
    /// Its container, for subcommands.
    pub parent: Option<&'static CommandSpec>,
    /// Category bits.
    pub categories: u32,
}

impl Indexed {
    /// Redis's full name: `get`, `config|get`.
    pub fn full_name(&self) -> String {
        match self.parent {
            Some(p) => format!("{}|{}", p.name, self.spec.name),
            None => self.spec.name.to_string(),
        }
    }
}

/// Every command and subcommand with a dense id (the bit in a user's command set).
pub struct CommandIndex {
    /// By id.
    pub all: Vec<Indexed>,
    by_ptr: HashMap<usize, usize, TableHash>,
}

/// The index, built once from the command table.
pub fn index() -> &'static CommandIndex {
    static INDEX: OnceLock<CommandIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut all = Vec::new();
        for spec in COMMANDS {
            all.push(Indexed {
                spec,
                parent: None,
                categories: derive(spec, None),
            });
            for sub in spec.subcommands {
                all.push(Indexed {
                    spec: sub,
                    parent: Some(spec),
                    categories: derive(sub, Some(spec)),
                });
            }
        }
        let by_ptr = all
            .iter()
            .enumerate()
            .map(|(i, e)| (e.spec as *const CommandSpec as usize, i))
            .collect();
        CommandIndex { all, by_ptr }
    })
}

impl CommandIndex {
    /// The id of a command from the table.
    pub fn id(&self, spec: &CommandSpec) -> Option<usize> {
        self.by_ptr
            .get(&(spec as *const CommandSpec as usize))
            .copied()
    }

    /// Looks up `cmd` or `cmd|sub` (any case) as ACL rules name them.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        let spec = match name.split_once('|') {
            Some((c, s)) => table::lookup_sub(table::lookup(c.as_bytes())?, s.as_bytes())?,
            None => table::lookup(name.as_bytes())?,
        };
        self.id(spec)
    }

    /// Ids of `id` and, for a container, all its subcommands.
    pub fn with_subcommands(&self, id: usize) -> impl Iterator<Item = usize> + '_ {
        let n = self.all[id].spec.subcommands.len();
        id..=id + n
    }

    /// A command's categories as COMMAND INFO lists them (`@read`, ...), in Redis's order.
    pub fn category_names(&self, spec: &CommandSpec) -> Vec<String> {
        let bits = self.id(spec).map_or(0, |id| self.all[id].categories);
        CATEGORIES
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, c)| format!("@{c}"))
            .collect()
    }

    /// Full names of the commands in a category, as ACL CAT lists them.
    pub fn names_in(&self, category: u32) -> Vec<String> {
        self.all
            .iter()
            .filter(|e| e.categories & category != 0)
            .map(Indexed::full_name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cats(name: &str) -> u32 {
        let ix = index();
        ix.all[ix.by_name(name).unwrap()].categories
    }

    #[test]
    fn categories_follow_redis() {
        let has = |name: &str, cat: &str| cats(name) & bit(cat) != 0;
        assert!(has("get", "read") && has("get", "string") && has("get", "fast"));
        assert!(has("set", "write") && has("set", "slow") && !has("set", "read"));
        assert!(has("keys", "keyspace") && has("keys", "dangerous"));
        assert!(has("flushall", "keyspace") && has("flushall", "dangerous"));
        assert!(has("config|set", "admin") && has("config|set", "dangerous"));
        assert!(has("client|id", "connection") && !has("client|id", "admin"));
        assert!(has("multi", "transaction") && has("setbit", "bitmap"));
        assert!(has("lastsave", "admin") && has("client|id", "slow"));
        assert!(has("command|docs", "connection") && has("command", "connection"));
        assert_eq!(cats("config"), bit("slow"), "containers are only @slow");
        assert!(category_bit("NoSuch").is_none() && category_bit("ALL").is_none());
    }

    #[test]
    fn ids_cover_subcommands() {
        let ix = index();
        let config = ix.by_name("config").unwrap();
        let get = ix.by_name("CONFIG|GET").unwrap();
        assert!(ix.with_subcommands(config).any(|i| i == get));
        assert_eq!(ix.all[get].full_name(), "config|get");
        assert!(ix.by_name("config|nosuch").is_none());
    }
}
