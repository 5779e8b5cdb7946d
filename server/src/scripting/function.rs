//! FUNCTION LOAD/DELETE/FLUSH/LIST/DUMP/RESTORE/STATS/KILL/HELP, FCALL and FCALL_RO.
//! Every change is written to the `kvd-functions` keyspace in the command's own batch,
//! so libraries survive a restart (docs/scripting.md, "Functions").

use crate::commands::args::err;
use crate::commands::glob::glob_match;
use crate::commands::{CmdResult, Ctx};
use crate::protocol::Reply;
use crate::scripting::eval::numkeys;
use crate::scripting::library::Functions;
use crate::scripting::run::{run_script, Run};
use crate::scripting::shebang::{FLAG_NAMES, NO_WRITES};
use bytes::{BufMut, Bytes, BytesMut};

/// FUNCTION DUMP payloads start with this (kvd's own format, docs/scripting.md).
const DUMP_MAGIC: &[u8] = b"KVDFUNC1";

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

/// FUNCTION DUMP: `KVDFUNC1`, the number of libraries (u32 LE), each library's code
/// (u32 LE length, bytes), then a CRC32 of everything before it (u32 LE).
pub fn dump(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let f = ctx.srv.scripting.functions();
    let mut out = BytesMut::new();
    out.put_slice(DUMP_MAGIC);
    out.put_u32_le(f.libraries.len() as u32);
    for lib in f.libraries.values() {
        out.put_u32_le(lib.code.len() as u32);
        out.put_slice(&lib.code);
    }
    let crc = crc32fast::hash(&out);
    out.put_u32_le(crc);
    Ok(Reply::Bulk(out.freeze()))
}

/// The library codes of a FUNCTION DUMP payload, if it is whole.
pub fn parse_dump(p: &[u8]) -> Option<Vec<Bytes>> {
    let body_len = p.len().checked_sub(4)?;
    let (body, crc) = p.split_at(body_len);
    if crc32fast::hash(body).to_le_bytes() != crc || !body.starts_with(DUMP_MAGIC) {
        return None;
    }
    let mut rest = &body[DUMP_MAGIC.len()..];
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
        rest = tail;
        Some(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().ok()?);
    let mut codes = Vec::new();
    for _ in 0..count {
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        codes.push(Bytes::copy_from_slice(take(len)?));
    }
    take(1).is_none().then_some(codes)
}

/// FUNCTION RESTORE payload [FLUSH | APPEND | REPLACE]
pub fn restore(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let policy =
        match a.get(3) {
            None => "append",
            Some(p) if is(p, "append") => "append",
            Some(p) if is(p, "replace") => "replace",
            Some(p) if is(p, "flush") => "flush",
            Some(_) => return Err(err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            )),
        };
    if a.len() > 4 {
        return Err(err("ERR syntax error"));
    }
    let codes =
        parse_dump(&a[2]).ok_or_else(|| err("ERR DUMP payload version or checksum are wrong"))?;
    let scripting = &ctx.srv.scripting;
    let mut f = scripting.functions();
    // Check everything first: a refused restore changes nothing.
    let mut names = Vec::new();
    for code in &codes {
        let (name, _) = crate::scripting::library::library_name(code)
            .map_err(|m| Reply::error(format!("ERR {m}")))?;
        if policy == "append" && f.libraries.contains_key(&name) {
            return Err(Reply::error(format!("ERR Library {name} already exists")));
        }
        names.push(name);
    }
    if policy == "flush" {
        flush_all(ctx, &mut f);
    }
    for (code, name) in codes.iter().zip(&names) {
        f.load(code, true)?;
        ctx.txn
            .put_record(scripting.functions_keyspace, name.as_bytes(), code);
    }
    scripting.count(&f);
    Ok(Reply::Ok)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_payloads_round_trip_and_damage_is_refused() {
        let mut out = BytesMut::new();
        out.put_slice(DUMP_MAGIC);
        out.put_u32_le(1);
        out.put_u32_le(3);
        out.put_slice(b"abc");
        let crc = crc32fast::hash(&out);
        out.put_u32_le(crc);
        assert_eq!(parse_dump(&out).unwrap(), vec![Bytes::from("abc")]);
        let mut bad = out.to_vec();
        bad[10] ^= 1;
        assert!(parse_dump(&bad).is_none());
        assert!(parse_dump(b"x").is_none());
    }
}
