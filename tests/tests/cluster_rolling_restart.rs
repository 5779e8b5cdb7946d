//! Rolling restart (docs/operations.md, "Rolling upgrade"), with real processes: three
//! nodes, clients writing (INCR and SET, both through consensus in the default
//! linearizable database) and reading continuously through every node, while each node
//! in turn stops with SIGTERM and starts again on its directory, and then one is killed
//! with kill -9 and restarted. Each restart waits for the node to rejoin (CLUSTER INFO).
//! Afterwards every acknowledged SET reads back through every node, and every counter
//! holds at least its acknowledged increments and at most those plus the ones of unknown
//! outcome. The longest stretch in which a client saw only errors is printed: a
//! measurement, not a bound.

use kv_tests::cluster::Cluster;
use kv_tests::rolling::{assert_every_write_survived, rejoined, report, RollingClients};

#[test]
fn every_acknowledged_write_survives_a_rolling_restart_of_every_node() {
    let mut c = Cluster::start(3, &[]);
    let clients = RollingClients::start(&c, None);
    clients.progress(50, "clients running");

    // SIGTERM each node in turn, then kill -9 one: clients keep going throughout.
    let steps: [(usize, bool); 4] = [(0, false), (1, false), (2, false), (1, true)];
    for (i, kill9) in steps {
        if kill9 {
            c.nodes[i].kill9();
        } else {
            let status = c.nodes[i].signal_and_wait(libc::SIGTERM);
            assert!(status.success(), "node {i} stopped with {status:?}");
        }
        clients.progress(150, &format!("clients served while node {i} is down"));
        c.nodes[i].restart();
        clients.node_moved(&c, i);
        rejoined(&c, i);
        clients.progress(150, &format!("clients served after node {i} rejoined"));
    }

    let logs = clients.finish();
    assert_every_write_survived(&c, &logs, None);
    report("rolling restart", &logs);
}
