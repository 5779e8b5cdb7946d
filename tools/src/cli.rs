//! The command line: one subcommand per job, each with an example in its `--help`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Inspect, verify, compact and back up kvd data directories, offline or through a
/// running kvd.
#[derive(Debug, Parser)]
#[command(
    name = "kvtool",
    version,
    after_help = "Examples:\n  kvtool inspect ./data\n  kvtool verify ./data && echo healthy\n  kvtool compact --addr 127.0.0.1:6380\n  kvtool backup ./data /backups/2026-11-21\n  kvtool dump ./data --out keys.jsonl\n  kvtool load keys.jsonl --addr 127.0.0.1:6380\n  kvtool cluster demo                      # watch a 3-node ring work\n\nExit status: 0 success (verify: healthy), 1 failure or problems found, 2 usage error,\n3 the data directory is in use by a running kvd."
)]
pub struct Cli {
    /// Print one JSON document instead of tables (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    #[allow(missing_docs)] // clap would print a doc comment here as help text
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(missing_docs)] // each variant's help is its Args struct's doc comment
pub enum Command {
    Inspect(InspectArgs),
    Verify(VerifyArgs),
    Compact(CompactArgs),
    Backup(BackupArgs),
    Dump(crate::dump::DumpArgs),
    Load(crate::load::LoadArgs),
    Cluster(crate::cluster::ClusterArgs),
}

/// Show what is inside a data directory, an SSTable, a WAL or a MANIFEST.
///
/// Read-only and lock-free: safe while kvd runs.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kvtool inspect ./data                 # levels, WALs, keys, amplification\n  kvtool inspect ./data --exact         # count live keys by reading everything\n  kvtool inspect ./data/000012.sst      # blocks, bloom filter, properties\n  kvtool inspect ./data/000015.log --keys --limit 20\n  kvtool inspect ./data/MANIFEST-000003 # the version edits"
)]
pub struct InspectArgs {
    /// A data directory, or one of its files: NNNNNN.sst, NNNNNN.log or MANIFEST-NNNNNN.
    pub path: PathBuf,
    /// Directory: count live keys and live bytes exactly by merging every table and WAL.
    #[arg(long)]
    pub exact: bool,
    /// Files: print each key and value (escaped) as well.
    #[arg(long)]
    pub keys: bool,
    /// Files: print at most this many records (WAL batches, table entries, manifest edits).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Tables: key samples used to measure the bloom filter's false-positive rate.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub bloom_samples: usize,
}

/// Check every file of a data directory; exit 0 when healthy.
///
/// Reads every byte the engine would read: CURRENT, MANIFEST, every table block, every
/// WAL record; checks level invariants and that the manifest names exactly the files
/// present. Read-only; exits 0 when healthy, 1 with one line per problem otherwise.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  $ kvtool verify ./data\n  HEALTHY ./data: 11 files, 50.4 KiB read, 0 errors, 0 warnings\n\n  $ kvtool verify ./broken\n  severity  file                 offset  problem\n  ERROR     ./broken/000119.sst       0  block checksum mismatch\n\n  DAMAGED ./broken: 10 files, 49.1 KiB read, 1 error, 0 warnings\n\n  kvtool verify ./data || alert 'kvd data damaged'"
)]
pub struct VerifyArgs {
    /// The data directory.
    pub dir: PathBuf,
}

/// Where an operation runs: on a directory no server holds, or through a running kvd.
#[derive(Debug, Args)]
pub struct Target {
    /// Talk to a running kvd at HOST:PORT instead of opening a directory.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// Password for kvd's AUTH (with --addr).
    #[arg(long, env = "KVD_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

/// Compact a data directory (offline) or ask a running kvd to compact (online).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kvtool compact ./data                       # everything, every keyspace\n  kvtool compact ./data --range user:0 user:9 # one key range of the default keyspace\n  kvtool compact ./data --level 0             # push L0's key range down\n  kvtool compact --addr 127.0.0.1:6380        # ask a running kvd\n\nOffline compaction needs the directory to itself: it refuses (exit 3) while kvd runs on it."
)]
pub struct CompactArgs {
    /// The data directory (offline). Omit with --addr.
    #[arg(required_unless_present = "addr", conflicts_with = "addr")]
    pub dir: Option<PathBuf>,
    #[allow(missing_docs)] // documented on `Target`
    #[command(flatten)]
    pub target: Target,
    /// Compact the key range covered by level N's files down to the bottom level (offline).
    #[arg(long, value_name = "N", conflicts_with_all = ["range", "addr"])]
    pub level: Option<usize>,
    /// Compact only keys in [START, END] (escapes like \x00 allowed).
    #[arg(long, num_args = 2, value_names = ["START", "END"])]
    pub range: Option<Vec<String>>,
    /// Keyspace the range is in (offline; default: every keyspace, or "default" with --range).
    #[arg(long, value_name = "NAME", conflicts_with = "addr")]
    pub keyspace: Option<String>,
}

/// Take a consistent backup, offline or of a running kvd.
///
/// Offline: of a directory no server holds. Online (--addr): through kvd's checkpoint.
/// Start a server on the copy with `kvd --dir DEST`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kvtool backup ./data /backups/today                  # offline\n  kvtool backup --addr 127.0.0.1:6380 /backups/today  # online; DEST is on kvd's machine\n\nDEST must not exist or be empty. Tables are hard-linked where the file system allows."
)]
pub struct BackupArgs {
    /// Offline: DIR DEST. Online (--addr): DEST only.
    #[arg(required = true, num_args = 1..=2, value_names = ["DIR", "DEST"])]
    pub paths: Vec<PathBuf>,
    #[allow(missing_docs)] // documented on `Target`
    #[command(flatten)]
    pub target: Target,
    /// Offline: skip verifying the backup after writing it.
    #[arg(long)]
    pub no_verify: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
