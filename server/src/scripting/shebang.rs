//! Script flags: the `#!lua flags=no-writes,allow-oom` first line of an EVAL script (and
//! the `flags` of a registered function), parsed with Redis's rules and error texts.

/// `no-writes`: the script may only read.
pub const NO_WRITES: u32 = 1;
/// `allow-oom`: may run when the server is out of memory (kvd has no maxmemory: accepted).
pub const ALLOW_OOM: u32 = 1 << 1;
/// `allow-stale`: may run on a stale replica (kvd has none: accepted).
pub const ALLOW_STALE: u32 = 1 << 2;
/// `no-cluster`: refused in cluster mode (kvd refuses every script there for now).
pub const NO_CLUSTER: u32 = 1 << 3;
/// `allow-cross-slot-keys`: may touch keys of several slots (cluster only).
pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
/// No shebang: Redis's compatibility mode (writes allowed, also from EVAL_RO until one
/// is attempted).
pub const EVAL_COMPAT: u32 = 1 << 5;

/// Flag names as scripts and FUNCTION LIST spell them.
pub const FLAG_NAMES: &[(u32, &str)] = &[
    (NO_WRITES, "no-writes"),
    (ALLOW_OOM, "allow-oom"),
    (ALLOW_STALE, "allow-stale"),
    (NO_CLUSTER, "no-cluster"),
    (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
];

/// One flag by name.
pub fn flag(name: &str) -> Option<u32> {
    FLAG_NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
}

/// A parsed script: its flags and where its code starts (the shebang line is cut but its
/// newline kept, so line numbers in errors stay those of the text the client sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// Flag bits.
    pub flags: u32,
    /// Offset of the code in the body.
    pub code_start: usize,
}

/// Parses the optional shebang of an EVAL body. Errors are Redis's texts (without `ERR`).
pub fn parse(body: &[u8]) -> Result<Parsed, String> {
    if !body.starts_with(b"#!") {
        return Ok(Parsed {
            flags: EVAL_COMPAT,
            code_start: 0,
        });
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let parts: Vec<&str> = line.split_ascii_whitespace().collect();
    let Some(engine) = parts.first() else {
        return Err("Invalid engine in script shebang".into());
    };
    if *engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = 0;
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {part}"));
        };
        for name in list.split(',') {
            flags |=
                flag(name).ok_or_else(|| format!("Unexpected flag in script shebang: {name}"))?;
        }
    }
    Ok(Parsed {
        flags,
        code_start: end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs_parse_like_redis() {
        assert_eq!(parse(b"return 1").unwrap().flags, EVAL_COMPAT);
        let p = parse(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert_eq!(p.flags, NO_WRITES | ALLOW_OOM);
        assert_eq!(
            &b"#!lua flags=no-writes,allow-oom\nreturn 1"[p.code_start..],
            b"\nreturn 1"
        );
        assert_eq!(parse(b"#!lua\nreturn 1").unwrap().flags, 0);
        assert_eq!(parse(b"#!lua").unwrap_err(), "Invalid script shebang");
        assert_eq!(
            parse(b"#!python\n").unwrap_err(),
            "Unexpected engine in script shebang: #!python"
        );
        assert_eq!(
            parse(b"#!lua flags=bogus\n").unwrap_err(),
            "Unexpected flag in script shebang: bogus"
        );
        assert_eq!(
            parse(b"#!lua name=x\n").unwrap_err(),
            "Unknown lua shebang option: name=x"
        );
    }
}
