//! FUNCTION LOAD/DELETE/FLUSH/LIST/DUMP/RESTORE/STATS/KILL/HELP, FCALL and FCALL_RO.
//! Every change is written to the `kvd-functions` keyspace in the command's own batch,
//! so libraries survive a restart (docs/scripting.md, "Functions").

use crate::commands::args::err;
use crate::commands::glob::glob_match;
use crate::commands::{CmdResult, Ctx};
use crate::protocol::Reply;
use crate::scripting::eval::numkeys;
use crate::scripting::function_dump;
use crate::scripting::library::Functions;
use crate::scripting::run::{run_script, Run};
use crate::scripting::shebang::{FLAG_NAMES, NO_WRITES};
use bytes::Bytes;

fn is(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

/// FUNCTION LOAD [REPLACE] code
pub fn load(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let (replace, code) = match a.len() {
        3 => (false, &a[2]),
        4 if is(&a[2], "replace") => (true, &a[3]),
        4 => {
            return Err(Reply::error(format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(&a[2])
            )))
        }
        _ => {
            return Err(err(
                "ERR wrong number of arguments for 'function|load' command",
            ))
        }
    };
    let scripting = &ctx.srv.scripting;
    let mut f = scripting.functions();
    let name = f.load(code, replace)?;
    ctx.txn
        .put_record(scripting.functions_keyspace, name.as_bytes(), code);
    scripting.count(&f);
    Ok(Reply::bulk(name))
}

/// FUNCTION DELETE library
pub fn delete(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let scripting = &ctx.srv.scripting;
    let mut f = scripting.functions();
    let name = String::from_utf8_lossy(&a[2]).into_owned();
    if !f.delete(&name) {
        return Err(err("ERR Library not found"));
    }
    ctx.txn
        .delete_record(scripting.functions_keyspace, name.as_bytes());
    scripting.count(&f);
    Ok(Reply::Ok)
}

fn flush_all(ctx: &mut Ctx<'_>, f: &mut Functions) {
    let names: Vec<String> = f.libraries.keys().cloned().collect();
    for name in names {
        f.delete(&name);
        ctx.txn
            .delete_record(ctx.srv.scripting.functions_keyspace, name.as_bytes());
    }
}

/// FUNCTION FLUSH [ASYNC | SYNC]
pub fn flush(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len() == 3 && !(is(&a[2], "sync") || is(&a[2], "async")) || a.len() > 3 {
        return Err(err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"));
    }
    let scripting = &ctx.srv.scripting;
    let mut f = scripting.functions();
    flush_all(ctx, &mut f);
    scripting.count(&f);
    Ok(Reply::Ok)
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
pub fn list(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let (mut with_code, mut pattern) = (false, None);
    let mut i = 2;
    while i < a.len() {
        if is(&a[i], "withcode") && !with_code {
            with_code = true;
        } else if is(&a[i], "libraryname") && pattern.is_none() && i + 1 < a.len() {
            pattern = Some(a[i + 1].clone());
            i += 1;
        } else {
            return Err(Reply::error(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(&a[i])
            )));
        }
        i += 1;
    }
    let f = ctx.srv.scripting.functions();
    let s = |t: &str| Reply::bulk(t.to_string());
    let mut out = Vec::new();
    for (name, lib) in &f.libraries {
        if pattern
            .as_ref()
            .is_some_and(|p| !glob_match(p, name.as_bytes(), false))
        {
            continue;
        }
        let functions = lib
            .functions
            .iter()
            .filter_map(|n| f.functions.get(n))
            .map(|func| {
                let flags = FLAG_NAMES
                    .iter()
                    .filter(|(b, _)| func.flags & b != 0)
                    .map(|(_, n)| Reply::status(*n))
                    .collect();
                Reply::Map(vec![
                    (s("name"), s(&func.name)),
                    (
                        s("description"),
                        func.description.as_deref().map_or(Reply::Nil, s),
                    ),
                    (s("flags"), Reply::Set(flags)),
                ])
            })
            .collect();
        let mut entry = vec![
            (s("library_name"), s(name)),
            (s("engine"), s("LUA")),
            (s("functions"), Reply::Array(functions)),
        ];
        if with_code {
            entry.push((s("library_code"), Reply::Bulk(lib.code.clone())));
        }
        out.push(Reply::Map(entry));
    }
    Ok(Reply::Array(out))
}

/// FUNCTION DUMP: every library in Redis 7.0's payload format (function_dump.rs), in
/// name order (Redis's order is its hash table's, which varies from run to run).
pub fn dump(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let f = ctx.srv.scripting.functions();
    let payload = function_dump::encode(f.libraries.values().map(|lib| lib.code.as_ref()));
    Ok(Reply::Bulk(Bytes::from(payload)))
}

/// The library codes of a FUNCTION DUMP payload, if it decodes (the cluster's size
/// check reads them before RESTORE runs).
pub fn parse_dump(p: &[u8]) -> Option<Vec<Bytes>> {
    function_dump::decode(p).ok()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    Append,
    Replace,
    Flush,
}

/// FUNCTION RESTORE payload [FLUSH | APPEND | REPLACE], in Redis's order: the payload's
/// libraries load into a scratch engine first (their own errors), then they are joined
/// with the loaded ones (APPEND refuses a library that exists, none may bring a function
/// another library has); a refused restore changes nothing.
pub fn restore(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len() > 4 {
        return Err(Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(&a[1])
        )));
    }
    let policy =
        match a.get(3) {
            None => Policy::Append,
            Some(p) if is(p, "append") => Policy::Append,
            Some(p) if is(p, "replace") => Policy::Replace,
            Some(p) if is(p, "flush") => Policy::Flush,
            Some(_) => return Err(err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            )),
        };
    let scripting = &ctx.srv.scripting;
    let codes =
        function_dump::decode(&a[2]).map_err(|e| Reply::error(format!("ERR {}", e.message())))?;
    let mut scratch = scripting
        .scratch_functions()
        .map_err(|e| Reply::error(format!("ERR {e}")))?;
    let mut names = Vec::new();
    for code in &codes {
        names.push(scratch.load(code, false)?);
    }
    let mut f = scripting.functions();
    if policy != Policy::Flush {
        check_join(&f, &scratch, policy == Policy::Replace)?;
    }
    let before: Vec<(String, Bytes)> = f
        .libraries
        .iter()
        .map(|(name, lib)| (name.clone(), lib.code.clone()))
        .collect();
    if let Err(e) = apply(&mut f, &codes, policy) {
        // Only a failure the scratch load could not show (the memory limit) gets here.
        reload(&mut f, &before);
        scripting.count(&f);
        return Err(e);
    }
    for (name, _) in &before {
        if !f.libraries.contains_key(name) {
            ctx.txn
                .delete_record(scripting.functions_keyspace, name.as_bytes());
        }
    }
    for (code, name) in codes.iter().zip(&names) {
        ctx.txn
            .put_record(scripting.functions_keyspace, name.as_bytes(), code);
    }
    scripting.count(&f);
    Ok(Reply::Ok)
}

/// Redis's `libraryJoin` checks: with `replace` a restored library takes the place of
/// the one of its name, else that is refused; no function may collide with one of a
/// library that stays.
fn check_join(f: &Functions, restored: &Functions, replace: bool) -> Result<(), Reply> {
    for name in restored.libraries.keys() {
        if f.libraries.contains_key(name) && !replace {
            return Err(Reply::error(format!("ERR Library {name} already exists")));
        }
    }
    for name in restored.functions.keys() {
        let owner = f.functions.get(name).map(|g| g.library.as_str());
        if owner.is_some_and(|lib| !restored.libraries.contains_key(lib)) {
            return Err(Reply::error(format!("ERR Function {name} already exists")));
        }
    }
    Ok(())
}

fn apply(f: &mut Functions, codes: &[Bytes], policy: Policy) -> Result<(), Reply> {
    if policy == Policy::Flush {
        let names: Vec<String> = f.libraries.keys().cloned().collect();
        for name in names {
            f.delete(&name);
        }
    } else {
        // Replaced libraries go first, so a function moving between them is no collision.
        for code in codes {
            if let Ok((name, _)) = crate::scripting::library::library_name(code) {
                f.delete(&name);
            }
        }
    }
    for code in codes {
        f.load(code, false)?;
    }
    Ok(())
}

/// Puts back the libraries `before` held (after a restore failed half way).
fn reload(f: &mut Functions, before: &[(String, Bytes)]) {
    let names: Vec<String> = f.libraries.keys().cloned().collect();
    for name in names {
        f.delete(&name);
    }
    for (name, code) in before {
        if let Err(e) = f.load(code, false) {
            tracing::error!(library = %name, error = ?e, "library lost while undoing a failed FUNCTION RESTORE");
        }
    }
}

/// FUNCTION STATS (answers while a function runs: it reads no Lua state).
pub fn stats(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let scripting = &ctx.srv.scripting;
    let s = |t: &str| Reply::bulk(t.to_string());
    let running = match scripting.busy.running_for() {
        Some((name, millis)) => Reply::Map(vec![
            (s("name"), s(&name)),
            (s("duration_ms"), Reply::Int(millis as i64)),
        ]),
        None => Reply::Nil,
    };
    let (libraries, functions) = scripting.counts();
    Ok(Reply::Map(vec![
        (s("running_script"), running),
        (
            s("engines"),
            Reply::Map(vec![(
                s("LUA"),
                Reply::Map(vec![
                    (s("libraries_count"), Reply::Int(libraries as i64)),
                    (s("functions_count"), Reply::Int(functions as i64)),
                ]),
            )]),
        ),
    ]))
}

/// FUNCTION KILL
pub fn kill(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    ctx.srv.scripting.busy.kill(false)?;
    Ok(Reply::Ok)
}

/// FUNCTION HELP
pub fn help(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let lines = [
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "DELETE <LIBRARY NAME>",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "FLUSH [ASYNC|SYNC]",
        "DUMP",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "STATS",
        "KILL",
        "HELP",
    ];
    Ok(Reply::Array(
        lines.iter().map(|l| Reply::status(*l)).collect(),
    ))
}

/// FCALL function numkeys [key ...] [arg ...]
pub fn fcall(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    fcall_generic(ctx, a, false)
}

/// FCALL_RO function numkeys [key ...] [arg ...]
pub fn fcall_ro(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    fcall_generic(ctx, a, true)
}

fn fcall_generic(ctx: &mut Ctx<'_>, a: &[Bytes], ro: bool) -> CmdResult {
    let scripting = &ctx.srv.scripting;
    let f = scripting.functions();
    let name = String::from_utf8_lossy(&a[1]);
    let Some(func) = f.functions.get(name.as_ref()) else {
        return Err(err("ERR Function not found"));
    };
    let n = numkeys(a, "ERR Bad number of keys provided")?;
    if ro && func.flags & NO_WRITES == 0 {
        return Err(err(
            "ERR Can not execute a script with write flag using *_ro command.",
        ));
    }
    let read_only = ro || func.flags & NO_WRITES != 0;
    let run = Run::from_args(&func.func, &func.name, a, n, read_only, true);
    run_script(ctx, &f.vm, run)
}
