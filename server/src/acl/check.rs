//! The permission check run before every command (Redis 7.0's `ACLCheckAllUserCommandPerm`):
//! the command must be allowed, and every key argument, found through the command
//! table's key positions, must match a key pattern granting the access the command
//! needs. A user passes if its root permissions or any of its selectors allow the call.

use super::categories::index;
use super::rules::{Perms, Selector};
use crate::commands::table::{CommandSpec, NO_AUTH, READONLY, WRITE};
use crate::commands::{args::glob_match, resolve};
use bytes::Bytes;

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The command (or subcommand) is not allowed.
    Command,
    /// This key argument is not covered by a pattern.
    Key(Bytes),
}

impl Denial {
    /// Redis's order of relevance when no selector passes: a key denial says more than a
    /// command denial.
    fn rank(&self) -> u8 {
        match self {
            Denial::Command => 1,
            Denial::Key(_) => 2,
        }
    }
}

/// Read access needed.
const R: u8 = 1;
/// Write access needed.
const W: u8 = 2;

/// Reads that only look at a key's existence, type or metadata: Redis gives their keys
/// no access flag, so any matching pattern will do.
const METADATA_READS: &[&str] = &["exists", "touch", "type", "strlen"];
/// Writes that overwrite or delete without returning the old value: write access only.
const BLIND_WRITES: &[&str] = &[
    "del",
    "unlink",
    "mset",
    "msetnx",
    "setnx",
    "setex",
    "psetex",
    "expire",
    "pexpire",
    "expireat",
    "pexpireat",
    "persist",
    "append",
    "setrange",
];

/// The access a command needs on its `n`-th key.
fn key_access(spec: &CommandSpec, args: &[Bytes], n: usize) -> u8 {
    if spec.has(READONLY) {
        return if METADATA_READS.contains(&spec.name) {
            0
        } else {
            R
        };
    }
    if !spec.has(WRITE) {
        return 0; // WATCH: a matching pattern is enough
    }
    match spec.name {
        // Source is read (and removed), destination only written.
        "copy" if n == 0 => R,
        "rename" | "renamenx" | "copy" => {
            if n == 0 {
                R | W
            } else {
                W
            }
        }
        "set" if !args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")) => W,
        name if BLIND_WRITES.contains(&name) => W,
        _ => R | W,
    }
}

fn check_key(sel: &Selector, key: &[u8], need: u8) -> bool {
    sel.keys.iter().any(|p| {
        let grants = if p.read { R } else { 0 } | if p.write { W } else { 0 };
        grants & need == need && glob_match(p.pattern.as_bytes(), key, false)
    })
}

fn check_selector(
    sel: &Selector,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> Result<(), Denial> {
    if !spec.has(NO_AUTH) {
        let id = index().id(spec).ok_or(Denial::Command)?;
        if !sel.allows(id) {
            let first = args
                .get(1)
                .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase());
            let allowed = match (first, sel.first_args.get(&id)) {
                (Some(f), Some(list)) => list.contains(&f),
                _ => false,
            };
            if !allowed {
                return Err(Denial::Command);
            }
        }
    }
    if sel.all_keys {
        return Ok(()); // the common case: no key list to build
    }
    for (n, key) in spec.keys(args).into_iter().enumerate() {
        if !check_key(sel, key, key_access(spec, args, n)) {
            return Err(Denial::Key(key.clone()));
        }
    }
    Ok(())
}

/// Checks one call against a user's permissions; `spec` is what `resolve(args)` gave.
/// For IDEMPOTENT, the wrapped command is checked too.
pub fn check(perms: &Perms, spec: &'static CommandSpec, args: &[Bytes]) -> Result<(), Denial> {
    let mut worst: Option<Denial> = None;
    for sel in std::iter::once(&perms.root).chain(&perms.selectors) {
        match check_selector(sel, spec, args) {
            Ok(()) => {
                worst = None;
                break;
            }
            Err(d) => {
                if worst.as_ref().is_none_or(|w| d.rank() > w.rank()) {
                    worst = Some(d);
                }
            }
        }
    }
    if let Some(d) = worst {
        return Err(d);
    }
    if spec.name == "idempotent" && spec.first_key == 0 && args.len() > 2 {
        if let Ok(inner) = resolve(&args[2..]) {
            if inner.name != "idempotent" {
                return check(perms, inner, &args[2..]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(parts: &[&str]) -> Vec<Bytes> {
        parts.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    fn run(rules: &[&str], cmd: &[&str]) -> Result<(), Denial> {
        let mut p = Perms::new_user();
        p.apply_all(rules.iter().copied()).unwrap();
        let args = a(cmd);
        check(&p, resolve(&args).unwrap(), &args)
    }

    #[test]
    fn commands_keys_and_access() {
        assert_eq!(run(&["+get"], &["get", "k"]), Err(Denial::Key("k".into())));
        assert_eq!(run(&["+get", "~k*"], &["get", "k1"]), Ok(()));
        assert_eq!(
            run(&["+get", "~k*"], &["set", "k1", "v"]),
            Err(Denial::Command)
        );
        assert_eq!(run(&["+@all", "%R~r:*"], &["get", "r:1"]), Ok(()));
        assert!(run(&["+@all", "%R~r:*"], &["set", "r:1", "v"]).is_err());
        assert_eq!(run(&["+@all", "%W~w:*"], &["set", "w:1", "v"]), Ok(()));
        assert!(run(&["+@all", "%W~w:*"], &["set", "w:1", "v", "GET"]).is_err());
        assert!(run(&["+@all", "%W~w:*"], &["get", "w:1"]).is_err());
        assert_eq!(
            run(&["+@all", "~a", "%W~b"], &["mset", "a", "1", "b", "2"]),
            Ok(())
        );
        assert_eq!(
            run(&["+@all", "~a"], &["mget", "a", "zz"]),
            Err(Denial::Key("zz".into()))
        );
        assert_eq!(run(&["+auth"], &["auth", "x"]), Ok(())); // no-auth commands always run
        assert_eq!(run(&[], &["auth", "x"]), Ok(()));
    }

    #[test]
    fn subcommands_first_args_selectors_and_wrappers() {
        assert_eq!(run(&["+config|get"], &["config", "get", "x"]), Ok(()));
        assert_eq!(
            run(&["+config|get"], &["config", "set", "x", "y"]),
            Err(Denial::Command)
        );
        assert_eq!(run(&["+select|0"], &["select", "0"]), Ok(()));
        assert_eq!(run(&["+select|0"], &["select", "1"]), Err(Denial::Command));
        let sel = ["+get", "~a", "(+set ~b)"];
        assert_eq!(run(&sel, &["set", "b", "1"]), Ok(()));
        assert_eq!(run(&sel, &["get", "a"]), Ok(()));
        assert_eq!(run(&sel, &["get", "b"]), Err(Denial::Key("b".into())));
        assert_eq!(
            run(
                &["+idempotent", "~*"],
                &["idempotent", "r1", "set", "k", "v"]
            ),
            Err(Denial::Command)
        );
        assert_eq!(
            run(
                &["+idempotent", "+set", "~a"],
                &["idempotent", "r1", "set", "b", "v"]
            ),
            Err(Denial::Key("b".into()))
        );
    }
}
