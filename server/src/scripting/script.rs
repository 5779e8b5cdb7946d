//! SCRIPT LOAD, EXISTS, FLUSH, KILL, DEBUG and HELP.

use crate::commands::args::err;
use crate::commands::{CmdResult, Ctx};
use crate::protocol::Reply;
use bytes::Bytes;

/// SCRIPT LOAD script
pub fn load(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let mut state = ctx.srv.scripting.eval_state();
    let state = &mut *state;
    let (sha, _) = state.cache.load(&state.vm, &a[2])?;
    Ok(Reply::bulk(sha))
}

/// SCRIPT EXISTS sha1 [sha1 ...]
pub fn exists(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let state = ctx.srv.scripting.eval_state();
    Ok(Reply::Array(
        a[2..]
            .iter()
            .map(|sha| Reply::Int(state.cache.contains(sha) as i64))
            .collect(),
    ))
}

/// SCRIPT FLUSH [ASYNC | SYNC]
pub fn flush(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let ok = match a.len() {
        2 => true,
        3 => a[2].eq_ignore_ascii_case(b"sync") || a[2].eq_ignore_ascii_case(b"async"),
        _ => false,
    };
    if !ok {
        return Err(err("ERR SCRIPT FLUSH only support SYNC|ASYNC option"));
    }
    ctx.srv
        .scripting
        .flush()
        .map_err(|e| Reply::error(format!("ERR {e}")))?;
    Ok(Reply::Ok)
}

/// SCRIPT KILL
pub fn kill(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    ctx.srv.scripting.busy.kill(true)?;
    Ok(Reply::Ok)
}

/// SCRIPT DEBUG YES|SYNC|NO: kvd has no Lua debugger (Redis's LDB), so only NO, which
/// leaves scripts running as usual, is accepted; YES and SYNC are refused rather than
/// answered OK, since a client would then wait for a debugging session that never comes.
pub fn debug(_ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let mode = &a[2];
    if mode.eq_ignore_ascii_case(b"no") {
        Ok(Reply::Ok)
    } else if mode.eq_ignore_ascii_case(b"yes") || mode.eq_ignore_ascii_case(b"sync") {
        Err(err(
            "ERR SCRIPT DEBUG YES and SYNC are not supported: kvd has no Lua debugger",
        ))
    } else {
        Err(err("ERR Use SCRIPT DEBUG YES/SYNC/NO"))
    }
}

/// SCRIPT HELP
pub fn help(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let lines = [
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed (kvd: only NO; it has no Lua debugger).",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Print this help.",
    ];
    Ok(Reply::Array(
        lines.iter().map(|l| Reply::status(*l)).collect(),
    ))
}
