//! What layout each node holds at each version, as its CLUSTER LAYOUT SHOW reports it
//! while a test runs, to check that no version ever names two different layouts (issue
//! 10: a layout is committed through consensus). A node may hold a version only briefly
//! (a change ends two versions after the one applied), so a background thread samples
//! every node's SHOW continuously rather than once at the end.

use crate::info_field;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Per version, the layouts shown for it (normalized SHOW text) and which nodes (their
/// index in the recorder's URL list) showed each.
pub type History = BTreeMap<u64, BTreeMap<String, BTreeSet<usize>>>;

/// A thread sampling every node's CLUSTER LAYOUT SHOW until [`LayoutHistory::finish`].
pub struct LayoutHistory {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<History>>,
}

impl LayoutHistory {
    /// Starts sampling the nodes at `urls` (`redis://host:port/`). A node that does not
    /// answer (not started yet, removed, holding no layout) is skipped at that sample.
    pub fn start(urls: Vec<String>) -> LayoutHistory {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut history = History::new();
            let mut conns: Vec<Option<redis::Connection>> = urls.iter().map(|_| None).collect();
            while !stopped.load(Ordering::Relaxed) {
                for (i, url) in urls.iter().enumerate() {
                    let Some(shown) = show(&mut conns[i], url) else {
                        continue;
                    };
                    if let Some(version) = layout_version(&shown) {
                        history
                            .entry(version)
                            .or_default()
                            .entry(normalize(&shown))
                            .or_default()
                            .insert(i);
                    }
                }
                // The sampling rate, not a wait for anything: every version lasts at
                // least a drain time (seconds), which many samples cover.
                std::thread::sleep(Duration::from_millis(20));
            }
            history
        });
        LayoutHistory {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns what was seen.
    pub fn finish(mut self) -> History {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("layout history thread")
    }
}

impl Drop for LayoutHistory {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Panics, naming the nodes and the layouts, if some version was shown as two different
/// layouts.
pub fn assert_one_layout_per_version(history: &History) {
    for (version, layouts) in history {
        if layouts.len() > 1 {
            let shown: Vec<String> = layouts
                .iter()
                .map(|(text, nodes)| format!("nodes {nodes:?} showed:\n{text}"))
                .collect();
            panic!(
                "layout version {version} names {} different layouts:\n{}",
                layouts.len(),
                shown.join("\n----\n")
            );
        }
    }
}

/// The layout version of a SHOW reply.
pub fn layout_version(shown: &str) -> Option<u64> {
    info_field(shown, "layout_version").and_then(|v| v.parse().ok())
}

/// A SHOW reply reduced to the layout itself: the node's own view (each member's state
/// and acknowledged versions, the candidates it met, the staged changes, which are
/// metadata that spreads on its own) is dropped, so that two nodes holding the same
/// layout show the same text.
pub fn normalize(shown: &str) -> String {
    let per_node_field = |field: &&str| {
        ["state=", "acked=", "synced="]
            .iter()
            .any(|p| field.starts_with(p))
    };
    shown
        .lines()
        .filter(|l| !l.starts_with("candidate:") && !l.starts_with("staged"))
        .map(|l| {
            let fields: Vec<&str> = l.split(' ').filter(|f| !per_node_field(f)).collect();
            fields.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One CLUSTER LAYOUT SHOW through `conn`, connecting to `url` first when there is no
/// connection; a failed call drops the connection (the next sample reconnects).
fn show(conn: &mut Option<redis::Connection>, url: &str) -> Option<String> {
    if conn.is_none() {
        let c = redis::Client::open(url)
            .ok()?
            .get_connection_with_timeout(Duration::from_secs(2))
            .ok()?;
        c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        *conn = Some(c);
    }
    let c = conn.as_mut()?;
    let shown = redis::cmd("CLUSTER").arg("LAYOUT").arg("SHOW").query(c);
    if shown.is_err() {
        *conn = None;
    }
    shown.ok()
}
