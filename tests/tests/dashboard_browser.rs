//! The dashboard (`GET /`) in a real browser: Debian's chromium, headless, runs the
//! page's scripts against node 1 of a 3-node cluster and prints the DOM they built
//! (`--dump-dom`) and the console (`--enable-logging=stderr`). The page must load
//! without console errors, show all three nodes up with the partition map, and show
//! node 3 down within seconds of its kill -9. Without chromium the test prints
//! `SKIPPED` and returns (.ci/run installs it).

use kv_tests::eventually;
use kv_tests::http::start_cluster;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one page load may take before the test fails.
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Virtual time the page's scripts get: its first poll runs at load, the next after 2 s.
const VIRTUAL_TIME_MS: u32 = 3000;
/// How long node 1's dashboard may take to show a killed node as down (gossip's
/// failure detector, then `--cluster-down-after-ms`).
const DOWN_WITHIN: Duration = Duration::from_secs(20);

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// What one page load produced.
struct Page {
    /// The DOM after the scripts ran.
    dom: String,
    /// Console messages the page produced (uncaught errors included).
    console: Vec<String>,
}

impl Page {
    /// The `data-state` of the node row whose RESP address is on `port`.
    fn node_state(&self, port: u16) -> Option<&str> {
        let marker = format!("data-resp=\"127.0.0.1:{port}\" data-state=\"");
        let at = self.dom.find(&marker)? + marker.len();
        let rest = &self.dom[at..];
        rest.find('"').map(|end| &rest[..end])
    }
}

/// Loads `url` in headless chromium with a fresh profile in `scratch`.
fn load(browser: &Path, url: &str, scratch: &Path) -> Page {
    let profile = tempfile::tempdir_in(scratch).expect("profile dir");
    let (out, err) = (scratch.join("dom.html"), scratch.join("stderr.txt"));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={VIRTUAL_TIME_MS}"))
        .args(["--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("dom file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", browser.display()));
    let deadline = Instant::now() + LOAD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish loading {url} within {LOAD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}):\n{stderr}");
    Page {
        dom: std::fs::read_to_string(&out).expect("dom"),
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_string)
            .collect(),
    }
}

#[test]
fn the_dashboard_shows_every_node_and_a_killed_one_as_down() {
    let Some(browser) = chromium() else {
        println!("SKIPPED: chromium not installed (apt-get install chromium; .ci/run does)");
        return;
    };
    let (mut cluster, http) = start_cluster(3, &["--cluster-down-after-ms", "2000"]);
    // A peer gossip has not reported yet counts as up for a grace period, and a node
    // never reported up is only ever suspect, never down (LiveView): wait until gossip
    // itself has reported every peer up, or node 3's kill could leave it suspect.
    cluster.wait_all_up();
    let resp: Vec<u16> = cluster.nodes.iter().map(|k| k.port).collect();
    let scratch = tempfile::tempdir().expect("scratch dir");
    let url = format!("http://127.0.0.1:{}/", http[0]);

    // Gossip may still be settling right after the cluster formed: the page reloads
    // until it shows every node up.
    let mut loaded = None;
    eventually(
        "the dashboard shows all three nodes up",
        DOWN_WITHIN,
        || {
            let page = load(&browser, &url, scratch.path());
            let all_up = resp.iter().all(|&p| page.node_state(p) == Some("up"));
            loaded = Some(page);
            all_up
        },
    );
    let page = loaded.expect("eventually loaded the page at least once");
    assert!(
        page.console.is_empty(),
        "console messages: {:#?}",
        page.console
    );
    assert!(
        page.dom.contains("<div id=\"error\"></div>"),
        "the page reported an error:\n{}",
        page.dom
    );
    assert!(page.dom.contains("3 of 3 nodes up"), "{}", page.dom);
    let cells = page.dom.matches("title=\"partition ").count();
    assert_eq!(cells, 256, "the partition map shows every partition");
    assert!(
        page.dom.contains("<canvas id=\"chart\""),
        "the throughput chart stays"
    );

    cluster.nodes[2].kill9();
    let deadline = Instant::now() + DOWN_WITHIN;
    let last = loop {
        let page = load(&browser, &url, scratch.path());
        assert!(page.console.is_empty(), "console: {:#?}", page.console);
        let state = page.node_state(resp[2]);
        if state == Some("down") {
            break page.dom;
        }
        assert!(
            Instant::now() < deadline,
            "node 1's dashboard does not show node 3 down within {DOWN_WITHIN:?}: {state:?}"
        );
    };
    assert!(last.contains("2 of 3 nodes up"), "{last}");
    assert!(last.contains("class=\"degraded\""), "{last}");
}
