//! Wall-clock time as kvd records it: expiry times and idempotency records are absolute
//! Unix milliseconds, so the server and kvtool must read the clock the same way.

/// Milliseconds since the Unix epoch (0 if the clock is before the epoch).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
