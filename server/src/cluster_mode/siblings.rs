//! Siblings databases (`cluster-siblings-databases`; docs/consistency.md, "Siblings";
//! docs/commands.md): concurrent writes to a key are all kept, with dotted version
//! vectors (kv_cluster::dvv), and read and resolved with causality tokens, as in
//! Garage K2V and Riak 2.0.
//!
//! - `SIBGET key` -> `[token, value1, value2, ...]` (values in dot order; none once
//!   deleted). The token is opaque: base64url of `1` and the causal context.
//! - `SIBSET key token|- value`: the value supersedes exactly what the token covers;
//!   `-` supersedes nothing (a new sibling). `+OK`.
//! - `SIBDEL key token`: removes what the token covers. `+OK`.
//! - `GET key`: the value when there is one, nil when none, and an error naming the
//!   count when there are several: a plain client must not mistake one of several
//!   concurrent values for the value.
//! - `SET key value` (no options): a write without a token, a new sibling, as a Riak
//!   put without a vclock: plain clients keep working and lose nothing. With options
//!   (NX, EX, GET, ...) it is refused: they read or expire, which siblings do not do.
//! - Every other command naming keys is refused (they would see one value of several).

use super::route::Route;
use super::{entry_of, ring_error};
use crate::commands::table::CommandSpec;
use crate::protocol::Reply;
use crate::state::Client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use kv_cluster::config::Consistency;
use kv_cluster::dvv::{Context, SiblingsWrite};
use kv_cluster::replica_api::ItemKey;
use kv_cluster::ring::Ring;
use kv_cluster::{Body, Record};
use std::sync::Arc;

/// The commands of siblings databases.
const SIBLINGS_COMMANDS: &[&str] = &["sibget", "sibset", "sibdel"];

/// The first byte of a token: its format.
const TOKEN_FORMAT: u8 = 1;

/// The route of a command in a siblings database (`siblings_db`) or of a siblings
/// command elsewhere; `None`: the ordinary routing decides (commands that touch no
/// key's value: connection, server, SCAN/KEYS/DBSIZE, FLUSHDB...).
pub fn route(
    spec: &CommandSpec,
    parent: Option<&str>,
    args: &[Bytes],
    siblings_db: bool,
) -> Option<Route> {
    let name = spec.name;
    let ours = SIBLINGS_COMMANDS.contains(&name);
    if !siblings_db {
        return ours.then(|| {
            Route::Refused(format!(
                "ERR '{name}' needs a siblings database: this one is not in \
                 cluster-siblings-databases (docs/consistency.md, \"Siblings\")"
            ))
        });
    }
    if ours || name == "get" || (name == "set" && args.len() == 3) {
        return Some(Route::Siblings);
    }
    // Whatever would read or write a key's value elsewhere (scripts and IDEMPOTENT
    // included) would see or replace one value of several here.
    let touches_values = !spec.keys(args).is_empty()
        || matches!(
            super::route::route(spec, parent, args, true),
            Route::Keys { .. } | Route::Consensus | Route::Idempotent
        );
    touches_values.then(|| {
        Route::Refused(format!(
            "ERR '{name}' is not available in a siblings database \
             (cluster-siblings-databases): a key there may hold several concurrent values; \
             use SIBGET, SIBSET and SIBDEL (plain GET and SET key value work too; \
             docs/consistency.md, \"Siblings\")"
        ))
    })
}

/// Runs a command routed [`Route::Siblings`].
pub async fn run(
    ring: &Arc<dyn Ring>,
    client: &Client,
    spec: &CommandSpec,
    args: &[Bytes],
) -> Reply {
    let level = match client.consistency {
        // A SERIAL read promises one order of a key's writes; siblings have none.
        Consistency::Serial => {
            return Reply::error(
                "ERR SERIAL needs a linearizable database: a siblings database keeps \
                 concurrent writes, it does not order them (use CLUSTER CONSISTENCY QUORUM \
                 or ONE)",
            )
        }
        level => level,
    };
    let key = ItemKey {
        db: client.db as u32,
        key: args[1].clone(),
    };
    let write = |context: Context, value: Option<Bytes>| {
        let key = key.clone();
        async move {
            let body = Body::SiblingsWrite(SiblingsWrite { context, value });
            match ring.put(key, body, None, level).await {
                Ok(_) => Reply::Ok,
                Err(e) => ring_error(&e),
            }
        }
    };
    match spec.name {
        "sibget" | "get" => {
            let record = match ring.get(key.clone(), level).await {
                Ok(r) => r,
                Err(e) => return ring_error(&e),
            };
            if spec.name == "get" {
                plain_get(&key, record.as_ref())
            } else {
                sibget(record.as_ref())
            }
        }
        "set" => write(Context::default(), Some(args[2].clone())).await,
        "sibset" | "sibdel" => {
            let (token, value) = match (spec.name, args) {
                ("sibset", [_, _, token, value]) => (token, Some(value.clone())),
                ("sibdel", [_, _, token]) => (token, None),
                _ => {
                    return Reply::error(format!(
                        "ERR wrong number of arguments for '{}' command",
                        spec.name
                    ))
                }
            };
            let context = match (&token[..], &value) {
                (b"-", Some(_)) => Context::default(),
                _ => match decode_token(token) {
                    Some(c) => c,
                    None => {
                        return Reply::error(
                            "ERR invalid causality token: pass the token SIBGET returned \
                             (or - to supersede nothing)",
                        )
                    }
                },
            };
            write(context, value).await
        }
        other => Reply::error(format!("ERR '{other}' is not a siblings command")),
    }
}

/// `[token, values...]`; a key never written has the empty token and no values.
fn sibget(record: Option<&Record>) -> Reply {
    let (context, values) = match record.map(|r| &r.body) {
        Some(Body::Siblings(s)) => (
            s.context().clone(),
            s.values().map(|(_, v)| Reply::Bulk(v.clone())).collect(),
        ),
        // A record from before the database kept siblings (or a tombstone): its value
        // is superseded by the first siblings write, token or not.
        _ => (
            Context::default(),
            record
                .and_then(entry_of)
                .map(|e| vec![Reply::Bulk(e.value)])
                .unwrap_or_default(),
        ),
    };
    let mut reply = vec![Reply::Bulk(Bytes::from(encode_token(&context)))];
    reply.extend(values);
    Reply::Array(reply)
}

fn plain_get(key: &ItemKey, record: Option<&Record>) -> Reply {
    match record.map(|r| &r.body) {
        Some(Body::Siblings(s)) if s.len() > 1 => Reply::error(format!(
            "SIBLINGS key '{}' has {} concurrent values: read them with SIBGET and write \
             the resolution with SIBSET key token value",
            key.key.escape_ascii(),
            s.len()
        )),
        _ => match record.and_then(entry_of) {
            Some(e) => Reply::Bulk(e.value),
            None => Reply::Nil,
        },
    }
}

/// base64url (no padding) of `format:u8 context` (kv_cluster::dvv's context grammar).
pub fn encode_token(context: &Context) -> String {
    let mut b = vec![TOKEN_FORMAT];
    context.encode_into(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The context of a token; `None` if it is not one this server makes.
pub fn decode_token(token: &[u8]) -> Option<Context> {
    let b = URL_SAFE_NO_PAD.decode(token).ok()?;
    let (&format, mut rest) = b.split_first()?;
    if format != TOKEN_FORMAT {
        return None;
    }
    let context = Context::decode_from(&mut rest)?;
    rest.is_empty().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_cluster::dvv::Siblings;
    use kv_cluster::{NodeId, Version};

    fn route_of(words: &[&str], siblings_db: bool) -> Option<Route> {
        let args: Vec<Bytes> = words.iter().map(|w| Bytes::from(w.to_string())).collect();
        let spec = crate::commands::resolve(&args).expect("known command");
        let parent = crate::commands::table::lookup(&args[0])
            .filter(|p| !p.subcommands.is_empty())
            .map(|p| p.name);
        route(spec, parent, &args, siblings_db)
    }

    #[test]
    fn a_siblings_database_runs_its_commands_and_refuses_the_rest() {
        for ok in [
            &["GET", "k"][..],
            &["SET", "k", "v"],
            &["SIBGET", "k"],
            &["SIBSET", "k", "-", "v"],
            &["SIBDEL", "k", "t"],
        ] {
            assert_eq!(route_of(ok, true), Some(Route::Siblings), "{ok:?}");
        }
        for refused in [
            &["SET", "k", "v", "NX"][..],
            &["INCR", "k"],
            &["DEL", "k"],
            &["MGET", "a", "b"],
            &["EXPIRE", "k", "10"],
            &["IDEMPOTENT", "r1", "SET", "k", "v"],
            &["EVAL", "return 1", "1", "k"],
        ] {
            match route_of(refused, true) {
                Some(Route::Refused(why)) => assert!(why.contains("siblings database"), "{why}"),
                other => panic!("{refused:?} took {other:?}"),
            }
        }
        for elsewhere in [&["PING"][..], &["SCAN", "0"], &["DBSIZE"], &["FLUSHDB"]] {
            assert_eq!(route_of(elsewhere, true), None, "{elsewhere:?}");
        }
        // Other databases: the siblings commands are refused, the rest is not ours.
        match route_of(&["SIBGET", "k"], false) {
            Some(Route::Refused(why)) => assert!(why.contains("needs a siblings database")),
            other => panic!("{other:?}"),
        }
        assert_eq!(route_of(&["GET", "k"], false), None);
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let mut s = Siblings::default();
        let w = SiblingsWrite {
            context: Context::default(),
            value: Some(Bytes::from_static(b"v")),
        };
        s.accept(&w, NodeId(3), 7);
        let token = encode_token(s.context());
        assert_eq!(decode_token(token.as_bytes()).as_ref(), Some(s.context()));
        assert_eq!(decode_token(b"-"), None);
        assert_eq!(decode_token(b"AgA"), None, "format 2 does not exist");
        assert_eq!(decode_token(format!("{token}AA").as_bytes()), None);
        assert_eq!(
            decode_token(encode_token(&Context::default()).as_bytes()),
            Some(Context::default())
        );
    }

    #[test]
    fn plain_get_refuses_to_pick_one_of_several_values() {
        let key = ItemKey {
            db: 2,
            key: Bytes::from_static(b"k"),
        };
        let mut s = Siblings::default();
        for (node, v) in [(1, &b"a"[..]), (2, b"b")] {
            let w = SiblingsWrite {
                context: Context::default(),
                value: Some(Bytes::copy_from_slice(v)),
            };
            s.accept(&w, NodeId(node), 0);
        }
        let record = |s: Siblings| Record {
            version: Version::ZERO,
            expire_at: None,
            body: Body::Siblings(s),
            requests: Vec::new(),
            txn: Default::default(),
        };
        match plain_get(&key, Some(&record(s.clone()))) {
            Reply::Error(e) => assert!(e.starts_with("SIBLINGS") && e.contains(" 2 "), "{e}"),
            other => panic!("{other:?}"),
        }
        let mut one = s.clone();
        one.accept(
            &SiblingsWrite {
                context: s.context().clone(),
                value: Some(Bytes::from_static(b"c")),
            },
            NodeId(1),
            0,
        );
        assert_eq!(
            plain_get(&key, Some(&record(one))),
            Reply::Bulk(Bytes::from_static(b"c"))
        );
        assert_eq!(plain_get(&key, None), Reply::Nil);
    }
}
