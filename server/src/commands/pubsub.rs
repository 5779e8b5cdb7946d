//! SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs, PUBLISH, SPUBLISH and PUBSUB,
//! with Redis 7's replies (docs/pubsub.md). The registry and delivery are in
//! `crate::pubsub`.

use super::args::text;
use super::table::CommandSpec;
use super::{CmdResult, Ctx};
use crate::protocol::Reply;
use crate::pubsub::{pending_replies, Kind};
use crate::state::Client;
use bytes::Bytes;

/// Commands a RESP2 client may send while subscribed (Redis's list).
const ALLOWED_WHILE_SUBSCRIBED: &[&str] = &[
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "ping",
    "quit",
    "reset",
];

/// Redis's refusal of other commands from a RESP2 client in subscribed mode (its replies
/// could not be told apart from messages); RESP3 clients may run anything.
pub fn refused_while_subscribed(
    client: &Client,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> Option<String> {
    if client.resp3 || !client.pubsub.subs.any() {
        return None;
    }
    let name = args[0].to_ascii_lowercase();
    if ALLOWED_WHILE_SUBSCRIBED
        .iter()
        .any(|a| a.as_bytes() == name.as_slice())
    {
        return None;
    }
    Some(format!(
        "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
        super::acl::full_name(spec)
    ))
}

fn word(s: &'static str) -> Reply {
    Reply::bulk(Bytes::from_static(s.as_bytes()))
}

/// Confirmation verbs of each kind: (subscribe, unsubscribe).
fn verbs(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Channel => ("subscribe", "unsubscribe"),
        Kind::Pattern => ("psubscribe", "punsubscribe"),
        Kind::Shard => ("ssubscribe", "sunsubscribe"),
    }
}

fn subscribe_to(ctx: &mut Ctx<'_>, a: &[Bytes], kind: Kind) -> CmdResult {
    // Messages already queued were published before this command: they go first.
    let mut frames = pending_replies(ctx.client);
    for name in &a[1..] {
        let name = Bytes::copy_from_slice(name);
        let c = &mut *ctx.client;
        ctx.srv
            .pubsub
            .subscribe(&mut c.pubsub.subs, &c.info, kind, name.clone());
        frames.push(Reply::Push(vec![
            word(verbs(kind).0),
            Reply::Bulk(name),
            Reply::Int(c.pubsub.subs.count_for(kind)),
        ]));
    }
    Ok(Reply::Frames(frames))
}

fn unsubscribe_from(ctx: &mut Ctx<'_>, a: &[Bytes], kind: Kind) -> CmdResult {
    let c = &mut *ctx.client;
    let names: Vec<Bytes> = if a.len() > 1 {
        a[1..].iter().map(|n| Bytes::copy_from_slice(n)).collect()
    } else {
        c.pubsub.subs.of(kind).iter().cloned().collect()
    };
    let mut confirmations = Vec::new();
    for name in names {
        ctx.srv
            .pubsub
            .unsubscribe(&mut c.pubsub.subs, &c.info, kind, &name);
        confirmations.push(Reply::Push(vec![
            word(verbs(kind).1),
            Reply::Bulk(name),
            Reply::Int(c.pubsub.subs.count_for(kind)),
        ]));
    }
    if confirmations.is_empty() {
        confirmations.push(Reply::Push(vec![
            word(verbs(kind).1),
            Reply::Nil,
            Reply::Int(c.pubsub.subs.count_for(kind)),
        ]));
    }
    // Messages published before the unsubscription still come before its confirmation.
    let mut frames = pending_replies(c);
    frames.extend(confirmations);
    Ok(Reply::Frames(frames))
}

/// SUBSCRIBE channel [channel ...]
pub fn subscribe(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    subscribe_to(ctx, a, Kind::Channel)
}

/// PSUBSCRIBE pattern [pattern ...]
pub fn psubscribe(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    subscribe_to(ctx, a, Kind::Pattern)
}

/// SSUBSCRIBE shardchannel [shardchannel ...]
pub fn ssubscribe(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    subscribe_to(ctx, a, Kind::Shard)
}

/// UNSUBSCRIBE [channel ...]
pub fn unsubscribe(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    unsubscribe_from(ctx, a, Kind::Channel)
}

/// PUNSUBSCRIBE [pattern ...]
pub fn punsubscribe(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    unsubscribe_from(ctx, a, Kind::Pattern)
}

/// SUNSUBSCRIBE [shardchannel ...]
pub fn sunsubscribe(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    unsubscribe_from(ctx, a, Kind::Shard)
}

/// PUBLISH channel message
pub fn publish(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let (channel, payload) = (Bytes::copy_from_slice(&a[1]), Bytes::copy_from_slice(&a[2]));
    Ok(Reply::Int(ctx.srv.pubsub.publish(
        Kind::Channel,
        &channel,
        &payload,
    )))
}

/// SPUBLISH shardchannel message
pub fn spublish(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let (channel, payload) = (Bytes::copy_from_slice(&a[1]), Bytes::copy_from_slice(&a[2]));
    Ok(Reply::Int(ctx.srv.pubsub.publish(
        Kind::Shard,
        &channel,
        &payload,
    )))
}

/// Redis's `addReplySubcommandSyntaxError` for PUBSUB.
fn syntax(a: &[Bytes]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
        text(&a[1]).chars().take(128).collect::<String>()
    ))
}

fn names(ctx: &Ctx<'_>, a: &[Bytes], kind: Kind) -> CmdResult {
    if a.len() > 3 {
        return Err(syntax(a));
    }
    let pattern = a.get(2).map(|p| &p[..]);
    let list = ctx.srv.pubsub.names(kind, pattern);
    Ok(Reply::Array(list.into_iter().map(Reply::Bulk).collect()))
}

fn counts(ctx: &Ctx<'_>, a: &[Bytes], kind: Kind) -> CmdResult {
    let mut out = Vec::new();
    for ch in &a[2..] {
        out.push(Reply::Bulk(ch.clone()));
        out.push(Reply::Int(ctx.srv.pubsub.count(kind, ch) as i64));
    }
    Ok(Reply::Array(out))
}

/// PUBSUB CHANNELS [pattern]
pub fn pubsub_channels(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    names(ctx, a, Kind::Channel)
}

/// PUBSUB SHARDCHANNELS [pattern]
pub fn pubsub_shardchannels(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    names(ctx, a, Kind::Shard)
}

/// PUBSUB NUMSUB [channel ...]
pub fn pubsub_numsub(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    counts(ctx, a, Kind::Channel)
}

/// PUBSUB SHARDNUMSUB [shardchannel ...]
pub fn pubsub_shardnumsub(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    counts(ctx, a, Kind::Shard)
}

/// PUBSUB NUMPAT
pub fn pubsub_numpat(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.srv.pubsub.distinct(Kind::Pattern) as i64))
}

/// PUBSUB HELP
pub fn pubsub_help(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(super::connection::help(
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    ))
}
