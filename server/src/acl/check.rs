//! The permission check run before every command (Redis 7.0's `ACLCheckAllUserCommandPerm`):
//! the command must be allowed, and every key argument, found through the command
//! table's key positions, must match a key pattern granting the access the command
//! needs, and every channel a pub/sub command publishes or subscribes to must match a
//! channel pattern (`&pattern`; a PSUBSCRIBE pattern must be one of them literally). A
//! user passes if its root permissions or any of its selectors allow the call.

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
    /// This channel (or PSUBSCRIBE pattern) is not covered by a channel pattern.
    Channel(Bytes),
}

impl Denial {
    /// Redis's order of relevance when no selector passes: a key denial says more than a
    /// command denial.
    fn rank(&self) -> u8 {
        match self {
            Denial::Command => 1,
            Denial::Key(_) => 2,
            Denial::Channel(_) => 3, // Redis's ACL_DENIED_CHANNEL ranks above the others
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

/// The channel arguments of a command that publishes or subscribes, and whether they
/// are patterns (Redis's `getChannelsFromCommand`; the UNSUBSCRIBEs are not checked).
fn channels<'a>(spec: &CommandSpec, args: &'a [Bytes]) -> (&'a [Bytes], bool) {
    let rest = args.get(1..).unwrap_or_default();
    match spec.name {
        "subscribe" | "ssubscribe" => (rest, false),
        "psubscribe" => (rest, true),
        "publish" | "spublish" => (args.get(1..2).unwrap_or_default(), false),
        _ => (&[], false),
    }
}

/// Redis's `ACLCheckChannelAgainstList`: a channel must match one of the patterns; a
/// pattern argument must equal one of them (it could match channels the others do not).
fn check_channel(sel: &Selector, channel: &[u8], is_pattern: bool) -> bool {
    sel.channels.iter().any(|p| {
        if is_pattern {
            p.as_bytes() == channel
        } else {
            glob_match(p.as_bytes(), channel, false)
        }
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
    if !sel.all_keys {
        for (n, key) in spec.key_args(args).enumerate() {
            if !check_key(sel, key, key_access(spec, args, n)) {
                return Err(Denial::Key(key.clone()));
            }
        }
    }
    if !sel.all_channels {
        let (channels, is_pattern) = channels(spec, args);
        if let Some(c) = channels.iter().find(|c| !check_channel(sel, c, is_pattern)) {
            return Err(Denial::Channel(c.clone()));
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
    fn channels_of_publish_and_subscribe() {
        let perms = ["+@all", "~*", "&news.*"];
        assert_eq!(run(&perms, &["publish", "news.a", "m"]), Ok(()));
        assert_eq!(
            run(&perms, &["publish", "sport", "m"]),
            Err(Denial::Channel("sport".into()))
        );
        assert_eq!(
            run(&perms, &["subscribe", "news.a", "sport", "x"]),
            Err(Denial::Channel("sport".into()))
        );
        assert_eq!(run(&perms, &["ssubscribe", "news.b"]), Ok(()));
        assert!(run(&perms, &["spublish", "x", "m"]).is_err());
        // A pattern argument must be one of the user's patterns exactly.
        assert_eq!(run(&perms, &["psubscribe", "news.*"]), Ok(()));
        assert_eq!(
            run(&perms, &["psubscribe", "news.a*"]),
            Err(Denial::Channel("news.a*".into()))
        );
        assert_eq!(run(&perms, &["unsubscribe", "sport"]), Ok(()));
        assert_eq!(
            run(&["+@all", "~*"], &["publish", "c", "m"]),
            Err(Denial::Channel("c".into()))
        );
        assert_eq!(
            run(&["+@all", "~*", "allchannels"], &["publish", "c", "m"]),
            Ok(())
        );
        // A channel denial outranks a command denial in another selector.
        assert_eq!(
            run(
                &["+get", "~*", "(+publish ~* resetchannels)"],
                &["publish", "c", "m"]
            ),
            Err(Denial::Channel("c".into()))
        );
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
