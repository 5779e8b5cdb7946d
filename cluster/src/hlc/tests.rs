use super::*;
use proptest::prelude::*;

const NODE: NodeId = NodeId(7);
const START_MS: u64 = 1_700_000_000_000;

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Hlc {
    Hlc::open(&dir.join("hlc"), clock.clone(), NODE).unwrap()
}

fn persisted_floor(dir: &Path) -> u64 {
    read_floor(&dir.join("hlc")).unwrap()
}

#[test]
fn the_system_clock_reads_unix_milliseconds() {
    // After 2020-01-01 and before 2100-01-01.
    let now = SystemClock.now_ms();
    assert!(
        (1_577_836_800_000..4_102_444_800_000).contains(&now),
        "{now}"
    );
}

#[test]
fn follows_the_wall_clock_and_counts_within_a_millisecond() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let hlc = open(dir.path(), &clock);
    let a = hlc.next().unwrap();
    let b = hlc.next().unwrap();
    assert_eq!(a.ts, START_MS << 16);
    assert_eq!(b.ts, (START_MS << 16) + 1);
    assert_eq!(a.node, NODE);
    clock.advance(5);
    assert_eq!(hlc.next().unwrap().ts, (START_MS + 5) << 16);
}

#[test]
fn stays_monotonic_when_the_wall_clock_steps_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let hlc = open(dir.path(), &clock);
    let before = hlc.next().unwrap();
    clock.set(START_MS - 60_000);
    let after = hlc.next().unwrap();
    assert!(after > before);
    assert_eq!(after.millis(), START_MS, "logical counting, not a jump");
}

#[test]
fn stays_monotonic_across_reopen_with_the_clock_set_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let last = {
        let hlc = open(dir.path(), &clock);
        (0..10).map(|_| hlc.next().unwrap()).last().unwrap()
    };
    clock.set(START_MS - 3_600_000);
    let hlc = open(dir.path(), &clock);
    assert!(hlc.next().unwrap() > last);
}

#[test]
fn the_floor_is_persisted_ahead_of_every_issued_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let hlc = open(dir.path(), &clock);
    let v = hlc.next().unwrap();
    assert_eq!(persisted_floor(dir.path()), START_MS + FLOOR_LEAD_MS);
    // Within the lead no new floor is needed; past it one is written first.
    clock.advance(FLOOR_LEAD_MS - 1);
    hlc.next().unwrap();
    assert_eq!(persisted_floor(dir.path()), START_MS + FLOOR_LEAD_MS);
    clock.advance(1);
    let w = hlc.next().unwrap();
    assert!(persisted_floor(dir.path()) > w.millis());
    assert!(w > v);
}

#[test]
fn an_unclean_restart_runs_ahead_until_the_wall_clock_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    open(dir.path(), &clock).next().unwrap();
    let hlc = open(dir.path(), &clock);
    assert_eq!(hlc.ahead_of_wall_ms(), FLOOR_LEAD_MS);
    clock.advance(FLOOR_LEAD_MS);
    assert_eq!(hlc.ahead_of_wall_ms(), 0);
}

#[test]
fn a_clean_shutdown_lets_the_next_start_begin_at_the_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let last = {
        let hlc = open(dir.path(), &clock);
        let v = hlc.next().unwrap();
        hlc.shutdown().unwrap();
        v
    };
    let hlc = open(dir.path(), &clock);
    assert!(hlc.ahead_of_wall_ms() <= 1);
    assert!(hlc.next().unwrap() > last);
}

#[test]
fn observing_a_peer_version_moves_the_clock_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let hlc = open(dir.path(), &clock);
    let peer = Version {
        ts: ((START_MS + 200) << 16) | 5,
        node: NodeId(9),
    };
    hlc.observe(peer).unwrap();
    let v = hlc.next().unwrap();
    assert!(v > peer);
    assert_eq!(v.ts, peer.ts + 1);
    // An older version changes nothing.
    hlc.observe(Version {
        ts: 1 << 16,
        node: NodeId(9),
    })
    .unwrap();
    assert_eq!(hlc.next().unwrap().ts, peer.ts + 2);
}

#[test]
fn a_version_too_far_ahead_is_refused_and_not_observed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let hlc = open(dir.path(), &clock).with_max_offset_ms(500);
    let at_limit = Version {
        ts: (START_MS + 500) << 16,
        node: NodeId(9),
    };
    assert!(hlc.observe(at_limit).is_ok());
    let too_far = Version {
        ts: (START_MS + 10_000) << 16,
        node: NodeId(9),
    };
    assert_eq!(
        hlc.observe(too_far),
        Err(ClockSkewError {
            ahead_ms: 10_000,
            max_offset_ms: 500
        })
    );
    let hostile = Version {
        ts: u64::MAX,
        node: NodeId(9),
    };
    assert!(hlc.observe(hostile).is_err());
    assert_eq!(hlc.next().unwrap().ts, at_limit.ts + 1);
}

#[test]
fn the_logical_counter_overflows_into_the_next_millisecond() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let hlc = open(dir.path(), &clock);
    hlc.observe(Version {
        ts: (START_MS << 16) | 0xfffe,
        node: NodeId(9),
    })
    .unwrap();
    let a = hlc.next().unwrap();
    let b = hlc.next().unwrap();
    assert_eq!(a.ts, (START_MS << 16) | 0xffff);
    assert_eq!(b.ts, (START_MS + 1) << 16);
    assert!(b > a);
}

#[test]
fn a_damaged_floor_file_is_an_error_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hlc");
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(START_MS));
    for content in [
        &b"{\"format\":1,\"floor_"[..],
        b"",
        b"{\"format\":9,\"floor_ms\":1}",
        b"{\"format\":1,\"floor_ms\":18446744073709551615}",
    ] {
        std::fs::write(&path, content).unwrap();
        let err = Hlc::open(&path, clock.clone(), NODE).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("hlc"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), content);
    }
}

#[test]
fn concurrent_callers_get_distinct_versions() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let hlc = Arc::new(open(dir.path(), &clock));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let hlc = hlc.clone();
            std::thread::spawn(move || (0..500).map(|_| hlc.next().unwrap()).collect::<Vec<_>>())
        })
        .collect();
    let mut all: Vec<Version> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 2000);
}

#[derive(Debug, Clone)]
enum Op {
    SetClock(u64),
    Next,
    Observe(u64),
    Reopen,
    Shutdown,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..100_000).prop_map(Op::SetClock),
        Just(Op::Next),
        Just(Op::Next),
        (0u64..1_000).prop_map(Op::Observe),
        Just(Op::Reopen),
        Just(Op::Shutdown),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the wall clock does, each issued version is greater than every version
    /// issued before (also before a restart) and every version observed since the last
    /// restart, and below the persisted floor.
    #[test]
    fn every_version_is_newer_than_all_before(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(START_MS));
        let mut hlc = open(dir.path(), &clock);
        let mut newest = Version::ZERO;
        let mut newest_issued = Version::ZERO;
        for op in ops {
            match op {
                Op::SetClock(offset) => clock.set(START_MS - 50_000 + offset),
                Op::Next => {
                    let v = hlc.next().unwrap();
                    prop_assert!(v > newest, "{} after {}", v, newest);
                    prop_assert!(persisted_floor(dir.path()) > v.millis());
                    newest = v;
                    newest_issued = v;
                }
                Op::Observe(ahead) => {
                    let v = Version { ts: (clock.now_ms() + ahead) << 16, node: NodeId(1) };
                    if hlc.observe(v).is_ok() {
                        newest = newest.max(v);
                    }
                }
                Op::Reopen => {
                    hlc = open(dir.path(), &clock);
                    newest = newest_issued;
                }
                Op::Shutdown => hlc.shutdown().unwrap(),
            }
        }
    }
}
