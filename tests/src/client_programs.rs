//! Running the client-library programs of tests/clients/ (tests/clients/README.md): each
//! takes HOST PORT last, prints one line per step and `OK` last when it passes.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Longest a client program may run: each waits at most 10 s for any one reply, so this
/// only catches a program stuck outside the library.
pub const PROGRAM_LIMIT: Duration = Duration::from_secs(60);

/// tests/clients/<rest>.
pub fn clients_dir(rest: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clients")
        .join(rest)
}

/// Says loudly that `lib`'s case did not run, and why.
pub fn skipped(lib: &str, why: &str) {
    eprintln!("SKIPPED: {lib}: {why} (CI installs it: .ci/run)");
}

/// True if `program args...` runs and exits 0 (a probe for a tool or library).
pub fn succeeds(program: &str, args: &[&str], env: &[(&str, &str)]) -> bool {
    Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How a program ended.
#[derive(Debug)]
pub struct ProgramRun {
    /// Its exit status; None if it was killed after [`PROGRAM_LIMIT`].
    pub status: Option<ExitStatus>,
    /// Everything it printed.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl ProgramRun {
    /// Its last non-empty line of output.
    pub fn last_line(&self) -> Option<&str> {
        self.stdout.lines().rev().find(|l| !l.trim().is_empty())
    }

    /// Its exit code (None if killed by a signal or after the limit).
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// Both outputs, for a failure message.
    pub fn describe(&self) -> String {
        format!(
            "status {:?} (None: killed after {PROGRAM_LIMIT:?})\nstdout:\n{}\nstderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `program` with `args` then host and port, within [`PROGRAM_LIMIT`].
pub fn run_to_end(
    lib: &str,
    program: &Path,
    args: &[&str],
    port: u16,
    env: &[(&str, &str)],
) -> ProgramRun {
    let port = port.to_string();
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(["127.0.0.1", port.as_str()])
        .collect();
    run_with_args(lib, program, &args, env)
}

/// Runs `program` with exactly `args`, within [`PROGRAM_LIMIT`] (the examples of
/// examples/ take the addresses of several nodes).
pub fn run_with_args(lib: &str, program: &Path, args: &[&str], env: &[(&str, &str)]) -> ProgramRun {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let stdout_path = out_dir.path().join("stdout");
    let stderr_path = out_dir.path().join("stderr");
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("{lib}: cannot start {}: {e}", program.display()));
    let deadline = Instant::now() + PROGRAM_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Err(e) => panic!("{lib}: waiting for the program: {e}"),
        }
    };
    ProgramRun {
        status,
        stdout: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    }
}

/// Runs the program as [`run_to_end`] does; panics with its output unless it exits 0
/// with `OK` as its last line.
pub fn run_program(
    lib: &str,
    server: &str,
    port: u16,
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) {
    let run = run_to_end(lib, program, args, port, env);
    assert!(
        run.status.is_some_and(|s| s.success()) && run.last_line() == Some("OK"),
        "{lib} against {server}: {}",
        run.describe()
    );
}
