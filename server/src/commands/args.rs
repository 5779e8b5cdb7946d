//! Argument parsing shared by commands, with Redis's exact error texts.

use crate::protocol::parser::parse_i64;
use crate::protocol::Reply;

/// `-ERR syntax error`
pub const SYNTAX: &str = "ERR syntax error";
/// `-ERR value is not an integer or out of range`
pub const NOT_INT: &str = "ERR value is not an integer or out of range";
/// `-ERR value is not a valid float`
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
/// `-WRONGTYPE ...`
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// `-ERR no such key`
pub const NO_SUCH_KEY: &str = "ERR no such key";
/// Growing a string past proto-max-bulk-len.
pub const TOO_BIG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// An error reply with a static text.
pub fn err(s: &'static str) -> Reply {
    Reply::error(s)
}

/// Parses an integer argument (Redis's `string2ll`).
pub fn int(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(|| err(NOT_INT))
}

/// Parses a non-negative integer that fits `usize`-like ranges, else `NOT_INT`.
pub fn uint(arg: &[u8]) -> Result<u64, Reply> {
    match parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(err(NOT_INT)),
    }
}

/// Parses a float like Redis's `string2ld`/`strtod` (no spaces, no NaN).
pub fn float(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let v: f64 = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ if lower.contains("nan") || lower.contains("inf") => return None,
        _ => s.parse().ok()?,
    };
    if v.is_nan() {
        return None;
    }
    Some(v)
}

/// Case-insensitive comparison with an ASCII keyword.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Lossy text of an argument (for messages).
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// Expiry units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireUnit {
    /// EX / EXPIRE: relative seconds.
    Seconds,
    /// PX / PEXPIRE: relative milliseconds.
    Millis,
    /// EXAT / EXPIREAT: absolute seconds.
    UnixSeconds,
    /// PXAT / PEXPIREAT: absolute milliseconds.
    UnixMillis,
}

/// The unit named by an `EX`/`PX`/`EXAT`/`PXAT` option keyword.
pub fn expire_unit(opt: &[u8]) -> Option<ExpireUnit> {
    [
        ("ex", ExpireUnit::Seconds),
        ("px", ExpireUnit::Millis),
        ("exat", ExpireUnit::UnixSeconds),
        ("pxat", ExpireUnit::UnixMillis),
    ]
    .into_iter()
    .find(|(n, _)| is(opt, n))
    .map(|(_, u)| u)
}

/// Absolute expiry for SET/GETEX options, as `getExpireMillisecondsOrReply` does it.
pub fn expire_option(unit: ExpireUnit, arg: &[u8], now: i64, cmd: &str) -> Result<i64, Reply> {
    let v = int(arg)?;
    let invalid = || Reply::error(format!("ERR invalid expire time in '{cmd}' command"));
    let secs = matches!(unit, ExpireUnit::Seconds | ExpireUnit::UnixSeconds);
    if v <= 0 || (secs && v > i64::MAX / 1000) {
        return Err(invalid());
    }
    let ms = if secs { v * 1000 } else { v };
    match unit {
        ExpireUnit::Seconds | ExpireUnit::Millis => {
            if ms > i64::MAX - now {
                return Err(invalid());
            }
            Ok(ms + now)
        }
        _ => Ok(ms),
    }
}

pub use super::glob::glob_match;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_expiry_options() {
        assert_eq!(float(b"1.5"), Some(1.5));
        assert_eq!(float(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(float(b"nan"), None);
        assert_eq!(float(b" 1"), None);
        assert_eq!(
            expire_option(ExpireUnit::Seconds, b"10", 1000, "set"),
            Ok(11_000)
        );
        assert!(expire_option(ExpireUnit::Seconds, b"0", 1000, "set").is_err());
        assert!(expire_option(ExpireUnit::Seconds, b"9223372036854775807", 0, "set").is_err());
        assert_eq!(
            expire_option(ExpireUnit::UnixMillis, b"5", 1000, "set"),
            Ok(5)
        );
    }
}
