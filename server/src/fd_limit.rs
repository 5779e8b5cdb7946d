//! File descriptors: raise RLIMIT_NOFILE at start and fit `maxclients` under it, as Redis's
//! `adjustOpenFilesLimit` does, with the engine's own needs reserved.
//!
//! Without this, about 1000 idle connections under the common soft limit of 1024 took the
//! descriptors the engine needs for a memtable switch, a flush or a compaction; the write
//! failed and the database went read-only. Now clients can never take the engine's share.

/// Everything but the engine: listeners, the log, stdio, the runtime's epoll and wakers,
/// tools' short-lived files (Redis reserves 32 for the same).
pub const OTHER_FDS: u64 = 32;

/// Descriptors kept away from clients: the most the engine holds at once with kvd's
/// options (`Options::file_descriptor_budget`: table cache, WALs, manifest, flush and
/// compaction files) plus [`OTHER_FDS`].
pub fn reserved_fds() -> u64 {
    kv_engine::Options::default().file_descriptor_budget() as u64 + OTHER_FDS
}

/// The soft and hard RLIMIT_NOFILE.
pub fn current() -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0).then_some((r.rlim_cur, r.rlim_max))
}

fn set_soft(soft: u64, hard: u64) -> bool {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) == 0 }
}

/// Makes room for `maxclients` clients plus [`reserved_fds`], raising the soft limit up to
/// the hard one. Returns the number of clients that fit (at most `maxclients`), or an error
/// when not even one client fits beside the engine.
pub fn fit_clients(maxclients: usize) -> Result<usize, String> {
    let reserved = reserved_fds();
    let want = maxclients as u64 + reserved;
    let Some((soft, hard)) = current() else {
        return Ok(maxclients); // not a Unix limit we can read: leave it to the OS
    };
    let mut limit = soft;
    if soft < want {
        let target = want.min(hard);
        if set_soft(target, hard) {
            limit = target;
        }
    }
    if limit >= want {
        return Ok(maxclients);
    }
    let fit = limit.saturating_sub(reserved);
    if fit < 1 {
        return Err(format!(
            "the open files limit is {limit}, but kvd needs {reserved} descriptors for the \
             storage engine and the server before any client; raise it (ulimit -n)"
        ));
    }
    Ok(fit as usize)
}
