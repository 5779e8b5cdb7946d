//! What SLOWLOG and MONITOR may show of a command's arguments: secrets redacted as Redis 7
//! does (`redactClientCommandArgument`), long arguments and long argument lists cut, and
//! every shown byte copied, so that a log entry never keeps a client's whole input buffer
//! alive through a slice of it.

use super::args::is;
use bytes::Bytes;

/// Redis's replacement text for a secret.
const REDACTED: &[u8] = b"(redacted)";

/// Configuration parameters whose values are secrets (Redis's `SENSITIVE_CONFIG`).
const SENSITIVE_CONFIGS: &[&str] = &[
    "requirepass",
    "masterauth",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

/// How much of a command a log shows.
#[derive(Debug, Clone, Copy)]
pub struct ShowLimits {
    /// Arguments shown; past it the last shown one says how many more there were.
    pub max_args: usize,
    /// Bytes shown of one argument; past it the rest is summarised.
    pub max_arg_bytes: usize,
}

/// SLOWLOG's limits (Redis's SLOWLOG_ENTRY_MAX_ARGC and SLOWLOG_ENTRY_MAX_STRING).
pub const SLOWLOG: ShowLimits = ShowLimits {
    max_args: 32,
    max_arg_bytes: 128,
};

/// MONITOR's limits: Redis shows everything; kvd bounds a line so that a feed of large
/// values cannot hold gigabytes in the monitor queue (docs/security.md).
pub const MONITOR: ShowLimits = ShowLimits {
    max_args: 256,
    max_arg_bytes: 1024,
};

/// Indexes of `args` that hold secrets.
fn secret_positions(args: &[Bytes]) -> Vec<usize> {
    let Some(cmd) = args.first() else {
        return Vec::new();
    };
    let mut secret = Vec::new();
    if is(cmd, "auth") {
        secret.extend(1..args.len());
    } else if is(cmd, "hello") {
        let mut j = 2;
        while j < args.len() {
            if is(&args[j], "auth") {
                secret.extend((j + 1..j + 3).filter(|&i| i < args.len()));
                j += 3;
            } else {
                j += 2; // SETNAME name
            }
        }
    } else if is(cmd, "migrate") {
        for (j, a) in args.iter().enumerate() {
            if is(a, "auth") {
                secret.push(j + 1);
            } else if is(a, "auth2") {
                secret.extend([j + 1, j + 2]);
            }
        }
    } else if is(cmd, "config") && args.get(1).is_some_and(|s| is(s, "set")) {
        for j in (2..args.len()).step_by(2) {
            if SENSITIVE_CONFIGS.iter().any(|c| is(&args[j], c)) {
                secret.push(j + 1);
            }
        }
    } else if is(cmd, "acl") && args.get(1).is_some_and(|s| is(s, "setuser")) {
        // Redis shows these; kvd hides password rules (>pass <pass #hash !hash) too.
        let is_password_rule = |a: &Bytes| matches!(a.first(), Some(b'>' | b'<' | b'#' | b'!'));
        secret.extend((3..args.len()).filter(|&j| is_password_rule(&args[j])));
    }
    secret.retain(|&i| i < args.len());
    secret
}

/// Copies of the arguments a log may show.
pub fn shown_args(args: &[Bytes], limits: ShowLimits) -> Vec<Bytes> {
    let secret = secret_positions(args);
    let mut shown: Vec<Bytes> = args
        .iter()
        .take(limits.max_args)
        .enumerate()
        .map(|(i, a)| {
            if secret.contains(&i) {
                Bytes::from_static(REDACTED)
            } else if a.len() > limits.max_arg_bytes {
                let mut v = a[..limits.max_arg_bytes].to_vec();
                let more = a.len() - limits.max_arg_bytes;
                v.extend_from_slice(format!("... ({more} more bytes)").as_bytes());
                Bytes::from(v)
            } else {
                Bytes::copy_from_slice(a)
            }
        })
        .collect();
    if args.len() > limits.max_args {
        let more = args.len() - limits.max_args + 1;
        shown[limits.max_args - 1] = Bytes::from(format!("... ({more} more arguments)"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(parts: &[&str]) -> Vec<Bytes> {
        parts.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    fn shown(parts: &[&str]) -> Vec<String> {
        shown_args(&a(parts), SLOWLOG)
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn secrets_are_redacted_like_redis() {
        assert_eq!(shown(&["AUTH", "pw"]), ["AUTH", "(redacted)"]);
        assert_eq!(
            shown(&["auth", "user", "pw"]),
            ["auth", "(redacted)", "(redacted)"]
        );
        assert_eq!(
            shown(&["HELLO", "3", "SETNAME", "n", "AUTH", "u", "p"]),
            [
                "HELLO",
                "3",
                "SETNAME",
                "n",
                "AUTH",
                "(redacted)",
                "(redacted)"
            ]
        );
        assert_eq!(
            shown(&["CONFIG", "SET", "timeout", "5", "requirepass", "s"]),
            ["CONFIG", "SET", "timeout", "5", "requirepass", "(redacted)"]
        );
        assert_eq!(
            shown(&["ACL", "SETUSER", "bob", "on", ">secret", "~*"]),
            ["ACL", "SETUSER", "bob", "on", "(redacted)", "~*"]
        );
        assert_eq!(shown(&["SET", "auth", "x"]), ["SET", "auth", "x"]);
    }

    #[test]
    fn long_arguments_and_lists_are_cut_and_copied() {
        let big = Bytes::from(vec![b'x'; 1000]);
        let out = shown_args(&[Bytes::from_static(b"SET"), big.clone()], SLOWLOG);
        assert_eq!(out[1].len(), 128 + "... (872 more bytes)".len());
        assert!(out[1].ends_with(b"... (872 more bytes)"));
        // A copy: not a view into the argument's buffer.
        let inside = big.as_ptr_range();
        assert!(!inside.contains(&out[1].as_ptr()));
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let out = shown(&refs);
        assert_eq!(out.len(), 32);
        assert_eq!(out[31], "... (9 more arguments)");
    }
}
