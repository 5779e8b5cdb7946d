//! INFO fields that client libraries and monitoring tools read and that kvd can answer
//! like a standalone Redis 7 primary: the build and OS lines of `server`, `cpu`,
//! `replication`, process memory and `cluster` (docs/compatibility.md lists them).

use std::sync::atomic::{AtomicU64, Ordering};

type Lines = Vec<(String, String)>;

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// `os` as Redis prints it: `<sysname> <release> <machine>` from uname(2).
pub fn os_line() -> String {
    // SAFETY: uname fills the zeroed struct it is given; the fields are NUL-terminated.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return std::env::consts::OS.to_string();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!(
        "{} {} {}",
        field(&u.sysname),
        field(&u.release),
        field(&u.machine)
    )
}

/// The `server` lines between `redis_mode` and `process_id` that Redis has and the
/// original kvd lines lacked: fixed build identifiers (kvd is not built from Redis's tree).
pub fn server_build_lines() -> Lines {
    vec![
        kv("redis_git_sha1", "00000000"),
        kv("redis_git_dirty", 0),
        kv("redis_build_id", "0"),
        kv("monotonic_clock", "POSIX clock_gettime"),
        kv("atomicvar_api", "c11-builtin"),
        kv("gcc_version", "0.0.0"),
        kv("process_supervised", "no"),
    ]
}

/// The clock lines of `server`: microseconds now and Redis's 24-bit LRU clock (seconds).
pub fn server_clock_lines(now_ms: i64, hz: impl ToString) -> Lines {
    let hz = hz.to_string();
    vec![
        kv("server_time_usec", now_ms.saturating_mul(1000)),
        kv("configured_hz", hz),
        kv("lru_clock", (now_ms / 1000) & ((1 << 24) - 1)),
        kv("io_threads_active", 0),
    ]
}

/// The `clients` lines after `maxclients` (no tracking, no blocking, no buffers kept).
pub fn clients_lines() -> Lines {
    vec![
        kv("client_recent_max_input_buffer", 0),
        kv("client_recent_max_output_buffer", 0),
    ]
}

/// The `clients` lines after `blocked_clients`.
pub fn clients_tail_lines(tracking_clients: usize) -> Lines {
    vec![
        kv("tracking_clients", tracking_clients),
        kv("clients_in_timeout_table", 0),
    ]
}

/// Resident set size of this process in bytes (/proc/self/statm), 0 if unknown.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    pages * page
}

fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages.max(0) as u64).saturating_mul(page.max(0) as u64)
}

/// Redis's `bytesToHuman`: `942.50K`, `6.82M`, `0B`.
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    const UNITS: &[(f64, &str)] = &[
        (1024f64 * 1024.0 * 1024.0 * 1024.0 * 1024.0, "P"),
        (1024f64 * 1024.0 * 1024.0 * 1024.0, "T"),
        (1024f64 * 1024.0 * 1024.0, "G"),
        (1024f64 * 1024.0, "M"),
        (1024f64, "K"),
    ];
    for (size, unit) in UNITS {
        if n >= *size {
            return format!("{:.2}{unit}", n / size);
        }
    }
    format!("{}B", n as u64)
}

/// The `memory` lines: what the engine holds in memory (memtables and block cache) as
/// `used_memory`, the process's RSS, and the highest `used_memory` INFO has seen.
pub fn memory_lines(used: u64) -> Lines {
    static PEAK: AtomicU64 = AtomicU64::new(0);
    let peak = PEAK.fetch_max(used, Ordering::Relaxed).max(used);
    let rss = rss_bytes();
    let system = total_system_memory();
    let ratio = if used == 0 {
        0.0
    } else {
        rss as f64 / used as f64
    };
    vec![
        kv("used_memory", used),
        kv("used_memory_human", human_bytes(used)),
        kv("used_memory_rss", rss),
        kv("used_memory_rss_human", human_bytes(rss)),
        kv("used_memory_peak", peak),
        kv("used_memory_peak_human", human_bytes(peak)),
        kv("total_system_memory", system),
        kv("total_system_memory_human", human_bytes(system)),
        kv("maxmemory", 0),
        kv("maxmemory_human", "0B"),
        kv("maxmemory_policy", "noeviction"),
        kv("mem_fragmentation_ratio", format!("{ratio:.2}")),
        kv("mem_allocator", "libc"),
    ]
}

/// The `replication` section of a primary with no replicas (kvd's cluster replicates
/// on its own ring, not through Redis replication).
pub fn replication_lines(run_id: &str) -> Lines {
    vec![
        kv("role", "master"),
        kv("connected_slaves", 0),
        kv("master_failover_state", "no-failover"),
        kv("master_replid", run_id),
        kv("master_replid2", "0".repeat(40)),
        kv("master_repl_offset", 0),
        kv("second_repl_offset", -1),
        kv("repl_backlog_active", 0),
        kv("repl_backlog_size", 1048576),
        kv("repl_backlog_first_byte_offset", 0),
        kv("repl_backlog_histlen", 0),
    ]
}

/// The `cpu` section from getrusage(2), seconds with six decimals as Redis prints them.
pub fn cpu_lines() -> Lines {
    let usage = |who| {
        // SAFETY: getrusage fills the zeroed struct it is given.
        let mut r: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut r) } != 0 {
            return (0.0, 0.0);
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        (secs(r.ru_stime), secs(r.ru_utime))
    };
    let (sys, user) = usage(libc::RUSAGE_SELF);
    let (csys, cuser) = usage(libc::RUSAGE_CHILDREN);
    let (tsys, tuser) = usage(libc::RUSAGE_THREAD);
    vec![
        kv("used_cpu_sys", format!("{sys:.6}")),
        kv("used_cpu_user", format!("{user:.6}")),
        kv("used_cpu_sys_children", format!("{csys:.6}")),
        kv("used_cpu_user_children", format!("{cuser:.6}")),
        kv("used_cpu_sys_main_thread", format!("{tsys:.6}")),
        kv("used_cpu_user_main_thread", format!("{tuser:.6}")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_like_redis() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(965120), "942.50K");
        assert_eq!(human_bytes(7155712), "6.82M");
    }
}
