//! Child processes for the comparisons: peak RSS by polling `/proc/<pid>/status` and by
//! `wait4`'s rusage, servers that die with us, and commands with a deadline.

use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A `kB` field of `/proc/<pid>/status`, such as `VmRSS` or `VmHWM`, in KiB.
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kb(&text, field)
}

fn parse_status_kb(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Polls a process's resident set size and keeps the peak per phase: the caller marks
/// the end of a phase (one benchmark) with [`RssSampler::take_phase_peak`].
pub struct RssSampler {
    pid: u32,
    phase_peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl RssSampler {
    /// Starts polling `pid` every `every`.
    pub fn start(pid: u32, every: Duration) -> RssSampler {
        let phase_peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (peak, halt) = (phase_peak.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                match status_kb(pid, "VmRSS") {
                    Some(kb) => {
                        peak.fetch_max(kb, Ordering::Relaxed);
                    }
                    None => break,
                }
                std::thread::sleep(every);
            }
        });
        RssSampler {
            pid,
            phase_peak,
            stop,
            handle: Some(handle),
        }
    }

    /// Peak RSS (KiB) seen since the previous call; the next phase starts from the
    /// current RSS so a phase shorter than one poll still reports something real.
    pub fn take_phase_peak(&self) -> u64 {
        let now = status_kb(self.pid, "VmRSS").unwrap_or(0);
        self.phase_peak.swap(now, Ordering::Relaxed).max(now)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Waits for `child` with `wait4`, returning its exit status and peak RSS (KiB,
/// `ru_maxrss`). The child must not have been waited for already.
pub fn wait_with_max_rss(child: &Child) -> io::Result<(ExitStatus, u64)> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; zeroed is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unwaited child; status and usage point to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((ExitStatus::from_raw(status), usage.ru_maxrss as u64));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Makes the command's process receive SIGKILL if we die first (Linux
/// `PR_SET_PDEATHSIG`), so no server outlives a crashed or interrupted comparison.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure runs between fork and exec and only calls prctl, which is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Runs the command's process on CPU `cpu` only (`sched_setaffinity`, what `taskset -c`
/// does), so a server and its load generator do not take turns on the same core.
pub fn pin_to_cpu(cmd: &mut Command, cpu: usize) -> &mut Command {
    // SAFETY: the closure runs between fork and exec and only fills a cpu_set_t on the
    // stack and calls sched_setaffinity, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// The machine's load averages over 1, 5 and 15 minutes (`/proc/loadavg`), printed
/// beside each measurement so that a run on a busy machine shows as one.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let three: Vec<&str> = text.split_whitespace().take(3).collect();
    (three.len() == 3).then(|| three.join(" "))
}

/// A child that is stopped when dropped: SIGTERM, up to `grace` to exit, then SIGKILL.
pub struct KillOnDrop {
    /// The process.
    pub child: Child,
    /// A name for messages.
    pub name: String,
    grace: Duration,
}

impl KillOnDrop {
    /// Takes ownership of `child`.
    pub fn new(child: Child, name: &str, grace: Duration) -> Self {
        KillOnDrop {
            child,
            name: name.to_string(),
            grace,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !self.is_running() {
            return;
        }
        // SAFETY: kill on our own child's pid; it has not been reaped (try_wait said so).
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not exit on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes held stopped (SIGSTOP) while this lives, continued (SIGCONT) when it is
/// dropped, on every return path. A comparison pauses the servers it is not measuring:
/// both run on the same core, and one server's background work (kvd's compactions
/// after its own run) would otherwise take CPU from the other's measurement.
pub struct Paused(Vec<u32>);

impl Paused {
    /// Stops each of `pids` (our own children).
    pub fn new(pids: Vec<u32>) -> Paused {
        for &pid in &pids {
            // SAFETY: a signal to our own living child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
        }
        Paused(pids)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: as in `new`.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
        }
    }
}

/// Output of a command run with a deadline.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// Runs `cmd` to completion, killing it after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> io::Result<Finished> {
    let mut child = die_with_parent(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("command did not finish within {timeout:?}: {cmd:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let _ = r.read_to_string(&mut s);
        }
        s
    })
}

/// A TCP port that was free a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_child_runs_on_that_cpu_only() {
        let out = pin_to_cpu(&mut Command::new("grep"), 0)
            .args(["^Cpus_allowed_list", "/proc/self/status"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let line = String::from_utf8(out.stdout).unwrap();
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }

    /// The state letter of /proc/PID/stat (R, S, T, ...).
    fn state(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.chars().next().unwrap()
    }

    #[test]
    fn a_paused_child_is_stopped_until_the_guard_goes() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let mut child = KillOnDrop::new(child, "sleep", Duration::from_secs(5));
        let pid = child.pid();
        let wait_for = |want: &dyn Fn(char) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !want(state(pid)) {
                assert!(Instant::now() < deadline, "state {}", state(pid));
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let paused = Paused::new(vec![pid]);
        wait_for(&|s| s == 'T');
        drop(paused);
        wait_for(&|s| s != 'T');
        assert!(child.is_running());
    }

    #[test]
    fn load_average_has_three_numbers() {
        let load = load_average().unwrap();
        let parsed: Vec<f64> = load.split(' ').map(|v| v.parse().unwrap()).collect();
        assert_eq!(parsed.len(), 3, "{load}");
    }

    #[test]
    fn status_fields_parse() {
        let text = "Name:\tdb_bench\nVmHWM:\t  123456 kB\nVmRSS:\t   65432 kB\n";
        assert_eq!(parse_status_kb(text, "VmHWM"), Some(123456));
        assert_eq!(parse_status_kb(text, "VmRSS"), Some(65432));
        assert_eq!(parse_status_kb(text, "VmSwap"), None);
        assert!(status_kb(std::process::id(), "VmRSS").unwrap() > 0);
    }

    #[test]
    #[allow(clippy::zombie_processes)] // wait_with_max_rss reaps it with wait4
    fn wait4_reports_peak_rss_of_a_child() {
        let child = Command::new("sh").arg("-c").arg("exit 3").spawn().unwrap();
        let (status, maxrss) = wait_with_max_rss(&child).unwrap();
        assert_eq!(status.code(), Some(3));
        assert!(maxrss > 0);
    }

    #[test]
    fn timeout_kills_a_slow_command() {
        let r = run_with_timeout(Command::new("sleep").arg("5"), Duration::from_millis(200));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
        let ok = run_with_timeout(Command::new("echo").arg("hi"), Duration::from_secs(5)).unwrap();
        assert_eq!(ok.stdout, "hi\n");
    }
}
