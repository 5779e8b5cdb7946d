//! db_bench's command line: `--name=value` (gflags also takes `-name=value`, a bare
//! `--boolflag` and `--noboolflag`). Flags db_bench has but dbbench does not are ignored
//! with a warning so one command line can drive both tools.

use std::path::PathBuf;

/// The settings of one dbbench run, named and defaulted as in db_bench.
#[derive(Debug, Clone, PartialEq)]
pub struct Flags {
    /// Benchmarks to run in order.
    pub benchmarks: Vec<String>,
    /// Number of keys (and of operations per thread).
    pub num: u64,
    /// Read operations per thread; negative means `num`.
    pub reads: i64,
    /// Write operations per thread for every write benchmark; negative means `num`.
    pub writes: i64,
    /// Key size in bytes.
    pub key_size: usize,
    /// Value size in bytes.
    pub value_size: usize,
    /// Concurrent threads; each does the whole workload (db_bench semantics).
    pub threads: usize,
    /// Fsync every write (`FsyncPolicy::Always`) instead of leaving it to the OS.
    pub sync: bool,
    /// Bloom bits per key; negative means db_bench's default, which is no filter.
    pub bloom_bits: i64,
    /// Block cache capacity in bytes; zero or negative disables it.
    pub cache_size: i64,
    /// Database directory.
    pub db: PathBuf,
    /// Keep the existing database; fill benchmarks are then skipped.
    pub use_existing_db: bool,
    /// `none` or `lz4` (`snappy`, db_bench's default, is mapped to lz4 with a warning).
    pub compression_type: String,
    /// Fraction values shrink to under compression.
    pub compression_ratio: f64,
    /// Print a latency histogram after each benchmark.
    pub histogram: bool,
    /// Print the engine's statistics after each benchmark.
    pub statistics: bool,
    /// Seed base for the per-thread generators; 0 derives one from the clock.
    pub seed: u64,
    /// Memtable size that triggers a flush.
    pub write_buffer_size: usize,
    /// Data block size.
    pub block_size: usize,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            benchmarks: "fillseq,fillrandom,overwrite,readrandom,readseq,readmissing"
                .split(',')
                .map(String::from)
                .collect(),
            num: 1_000_000,
            reads: -1,
            writes: -1,
            key_size: 16,
            value_size: 100,
            threads: 1,
            sync: false,
            bloom_bits: -1,
            cache_size: 8 << 20,
            db: default_db_dir(),
            use_existing_db: false,
            compression_type: "lz4".to_string(),
            compression_ratio: 0.5,
            histogram: false,
            statistics: false,
            seed: 0,
            write_buffer_size: 64 << 20,
            block_size: 4096,
        }
    }
}

/// db_bench uses `/tmp/rocksdbtest-<uid>/dbbench`; we keep the same shape under our name.
fn default_db_dir() -> PathBuf {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    PathBuf::from(format!("/tmp/kvdbtest-{uid}/dbbench"))
}

/// Parsed flags plus the warnings to print (unknown flags, mapped values).
#[derive(Debug)]
pub struct Parsed {
    /// The settings.
    pub flags: Flags,
    /// One line per ignored or adjusted flag.
    pub warnings: Vec<String>,
}

/// Parses db_bench-style arguments (without the program name).
pub fn parse<I, S>(args: I) -> Result<Parsed, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut f = Flags::default();
    let mut warnings = Vec::new();
    for arg in args {
        let arg = arg.as_ref();
        let body = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .ok_or_else(|| format!("unexpected argument '{arg}' (flags look like --num=1000)"))?;
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        // A value-less flag is a boolean: `--histogram` sets it, `--nohistogram` clears it.
        let (name, value) = match (value, name.strip_prefix("no")) {
            (None, Some(rest)) if is_bool_flag(rest) => (rest, Some("false")),
            (None, _) if is_bool_flag(name) => (name, Some("true")),
            (None, _) if is_known(name) => return Err(format!("flag --{name} needs a value")),
            (v, _) => (name, v),
        };
        let v = value.unwrap_or("");
        match name {
            "benchmarks" => {
                f.benchmarks = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "num" => f.num = int(name, v)?,
            "reads" => f.reads = int(name, v)?,
            "writes" => f.writes = int(name, v)?,
            "key_size" => f.key_size = int(name, v)?,
            "value_size" => f.value_size = int(name, v)?,
            "threads" => f.threads = int::<usize>(name, v)?.max(1),
            "sync" => f.sync = boolean(name, v)?,
            "bloom_bits" => f.bloom_bits = int(name, v)?,
            "cache_size" => f.cache_size = int(name, v)?,
            "db" => f.db = PathBuf::from(v),
            "use_existing_db" => f.use_existing_db = boolean(name, v)?,
            "compression_type" => {
                f.compression_type = match v.to_ascii_lowercase().as_str() {
                    "none" => "none".to_string(),
                    "lz4" => "lz4".to_string(),
                    other @ ("snappy" | "lz4hc" | "zstd" | "zlib") => {
                        warnings.push(format!(
                            "WARNING: --compression_type={other} is not supported by kv-engine; using lz4"
                        ));
                        "lz4".to_string()
                    }
                    other => return Err(format!("unknown --compression_type={other} (none|lz4)")),
                }
            }
            "compression_ratio" => f.compression_ratio = float(name, v)?,
            "histogram" => f.histogram = boolean(name, v)?,
            "statistics" => f.statistics = boolean(name, v)?,
            "seed" => f.seed = int(name, v)?,
            "write_buffer_size" => f.write_buffer_size = int(name, v)?,
            "block_size" => f.block_size = int(name, v)?,
            _ => warnings.push(format!(
                "WARNING: ignoring db_bench flag --{name} (not supported by dbbench)"
            )),
        }
    }
    if f.key_size == 0 {
        return Err("--key_size must be at least 1".to_string());
    }
    Ok(Parsed { flags: f, warnings })
}

const BOOL_FLAGS: &[&str] = &["sync", "use_existing_db", "histogram", "statistics"];
const VALUE_FLAGS: &[&str] = &[
    "benchmarks",
    "num",
    "reads",
    "writes",
    "key_size",
    "value_size",
    "threads",
    "bloom_bits",
    "cache_size",
    "db",
    "compression_type",
    "compression_ratio",
    "seed",
    "write_buffer_size",
    "block_size",
];

fn is_bool_flag(name: &str) -> bool {
    BOOL_FLAGS.contains(&name)
}

fn is_known(name: &str) -> bool {
    is_bool_flag(name) || VALUE_FLAGS.contains(&name)
}

fn int<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("invalid value '{v}' for --{name}"))
}

fn float(name: &str, v: &str) -> Result<f64, String> {
    int(name, v)
}

/// gflags' spellings of a boolean.
fn boolean(name: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" => Ok(true),
        "0" | "false" | "f" | "no" | "n" => Ok(false),
        _ => Err(format!("invalid boolean '{v}' for --{name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Parsed {
        parse(args.iter().copied()).unwrap()
    }

    #[test]
    fn defaults_are_db_bench_defaults() {
        let f = p(&[]).flags;
        assert_eq!(
            (f.num, f.key_size, f.value_size, f.threads),
            (1_000_000, 16, 100, 1)
        );
        assert_eq!(f.cache_size, 8 << 20);
        assert_eq!(f.bloom_bits, -1);
        assert!(!f.sync && !f.use_existing_db);
        assert_eq!(f.compression_ratio, 0.5);
    }

    #[test]
    fn equals_syntax_and_single_dash() {
        let f = p(&[
            "--benchmarks=fillseq,readrandom",
            "--num=1000",
            "-key_size=20",
            "--value_size=400",
            "--threads=4",
            "--sync=1",
            "--bloom_bits=10",
            "--cache_size=1048576",
            "--db=/tmp/x",
            "--use_existing_db=true",
            "--compression_type=none",
        ])
        .flags;
        assert_eq!(f.benchmarks, vec!["fillseq", "readrandom"]);
        assert_eq!(
            (f.num, f.key_size, f.value_size, f.threads),
            (1000, 20, 400, 4)
        );
        assert!(f.sync && f.use_existing_db);
        assert_eq!((f.bloom_bits, f.cache_size), (10, 1 << 20));
        assert_eq!(f.db, PathBuf::from("/tmp/x"));
        assert_eq!(f.compression_type, "none");
    }

    #[test]
    fn bare_and_negated_booleans() {
        assert!(p(&["--histogram"]).flags.histogram);
        assert!(!p(&["--histogram", "--nohistogram"]).flags.histogram);
        assert!(p(&["--sync=yes"]).flags.sync);
        assert!(parse(["--sync=maybe"]).is_err());
    }

    #[test]
    fn unknown_flags_warn_and_are_ignored() {
        let parsed = p(&["--disable_wal=0", "--max_background_jobs=4", "--num=7"]);
        assert_eq!(parsed.flags.num, 7);
        assert_eq!(parsed.warnings.len(), 2);
        assert!(parsed.warnings[0].contains("--disable_wal"));
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(parse(["--num=ten"]).is_err());
        assert!(parse(["--num"]).is_err());
        assert!(parse(["num=3"]).is_err());
        assert!(parse(["--compression_type=brotli"]).is_err());
        assert!(parse(["--key_size=0"]).is_err());
    }

    #[test]
    fn snappy_maps_to_lz4_with_a_warning() {
        let parsed = p(&["--compression_type=snappy"]);
        assert_eq!(parsed.flags.compression_type, "lz4");
        assert_eq!(parsed.warnings.len(), 1);
    }
}
