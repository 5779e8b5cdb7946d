//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO (client-side caching), with Redis
//! 7's argument checks and error texts. The table and invalidations are in
//! `crate::pubsub::tracking`; docs/pubsub.md describes the behaviour.

use super::args::{err, int, is, SYNTAX};
use super::{CmdResult, Ctx};
use crate::protocol::Reply;
use crate::pubsub::tracking::{Mode, TrackingOptions};
use bytes::Bytes;

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX prefix ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
pub fn client_tracking(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let mut opts = TrackingOptions::default();
    let (mut bcast, mut optin, mut optout) = (false, false, false);
    let mut target = None;
    let mut j = 3;
    while j < a.len() {
        let more = j + 1 < a.len();
        if is(&a[j], "redirect") && more {
            j += 1;
            if opts.redirect != 0 {
                return Err(err(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let id = int(&a[j])?;
            let found = ctx.srv.clients.lock().get(&(id as u64)).cloned();
            let Some(info) = found.filter(|_| id > 0) else {
                return Err(err("ERR The client ID you want redirect to does not exist"));
            };
            opts.redirect = id as u64;
            target = Some(info);
        } else if is(&a[j], "bcast") {
            bcast = true;
        } else if is(&a[j], "optin") {
            optin = true;
        } else if is(&a[j], "optout") {
            optout = true;
        } else if is(&a[j], "noloop") {
            opts.noloop = true;
        } else if is(&a[j], "prefix") && more {
            j += 1;
            opts.prefixes.push(Bytes::copy_from_slice(&a[j]));
        } else {
            return Err(err(SYNTAX));
        }
        j += 1;
    }
    let id = ctx.client.info.id;
    let tracking = &ctx.srv.store.events.tracking;
    if is(&a[2], "off") {
        tracking.disable(id);
        ctx.client.pubsub.tracking = false;
        ctx.client.pubsub.caching = false;
        return Ok(Reply::Ok);
    }
    if !is(&a[2], "on") {
        return Err(err(SYNTAX));
    }
    // Redis's checks, in Redis's order.
    if !bcast && !opts.prefixes.is_empty() {
        return Err(err("ERR PREFIX option requires BCAST mode to be enabled"));
    }
    let current = tracking.view(id).map(|v| v.mode);
    if current.is_some_and(|m| (m == Mode::Bcast) != bcast) {
        return Err(err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if bcast && (optin || optout) {
        return Err(err("ERR OPTIN and OPTOUT are not compatible with BCAST"));
    }
    if optin && optout {
        return Err(err("ERR You can't specify both OPTIN mode and OPTOUT mode"));
    }
    if (optin && current == Some(Mode::OptOut)) || (optout && current == Some(Mode::OptIn)) {
        return Err(err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    opts.mode = match (bcast, optin, optout) {
        (true, _, _) => Mode::Bcast,
        (_, true, _) => Mode::OptIn,
        (_, _, true) => Mode::OptOut,
        _ => Mode::Default,
    };
    tracking
        .enable(&ctx.client.info, target.as_ref(), opts)
        .map_err(Reply::error)?;
    ctx.client.pubsub.tracking = true;
    Ok(Reply::Ok)
}

/// CLIENT CACHING YES|NO
pub fn client_caching(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let view = ctx.srv.store.events.tracking.view(ctx.client.info.id);
    let Some(view) = view else {
        return Err(err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    };
    if is(&a[2], "yes") {
        if view.mode != Mode::OptIn {
            return Err(err(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is(&a[2], "no") {
        if view.mode != Mode::OptOut {
            return Err(err(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(err(SYNTAX));
    }
    ctx.client.pubsub.caching = true;
    Ok(Reply::Ok)
}

/// CLIENT GETREDIR
pub fn client_getredir(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let view = ctx.srv.store.events.tracking.view(ctx.client.info.id);
    Ok(Reply::Int(view.map_or(-1, |v| v.redirect as i64)))
}

/// CLIENT TRACKINGINFO
pub fn client_trackinginfo(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let view = ctx.srv.store.events.tracking.view(ctx.client.info.id);
    let s = |x: &'static str| Reply::bulk(Bytes::from_static(x.as_bytes()));
    let mut flags = vec![s(if view.is_some() { "on" } else { "off" })];
    let caching = ctx.client.pubsub.caching;
    if let Some(v) = &view {
        match v.mode {
            Mode::Bcast => flags.push(s("bcast")),
            Mode::OptIn => {
                flags.push(s("optin"));
                if caching {
                    flags.push(s("caching-yes"));
                }
            }
            Mode::OptOut => {
                flags.push(s("optout"));
                if caching {
                    flags.push(s("caching-no"));
                }
            }
            Mode::Default => {}
        }
        if v.noloop {
            flags.push(s("noloop"));
        }
        if v.broken_redirect {
            flags.push(s("broken_redirect"));
        }
    }
    let prefixes = view
        .as_ref()
        .map(|v| v.prefixes.iter().cloned().map(Reply::Bulk).collect())
        .unwrap_or_default();
    Ok(Reply::Map(vec![
        (s("flags"), Reply::Set(flags)),
        (
            s("redirect"),
            Reply::Int(view.as_ref().map_or(-1, |v| v.redirect as i64)),
        ),
        (s("prefixes"), Reply::Array(prefixes)),
    ]))
}
