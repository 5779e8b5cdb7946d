use super::*;
use proptest::prelude::*;

fn node(id: u64, zone: &str) -> NodeInfo {
    NodeInfo {
        id: NodeId(id),
        resp_addr: format!("127.0.0.1:{}", 7000 + id),
        bus_addr: format!("127.0.0.1:{}", 17000 + id),
        zone: zone.to_string(),
        capacity: 1,
    }
}

fn three_nodes() -> Vec<NodeInfo> {
    vec![node(3, "z"), node(1, "z"), node(2, "z")]
}

fn layout() -> Layout {
    Layout::initial(new_cluster_id(), three_nodes(), 3).unwrap()
}

#[test]
fn initial_layout_is_version_one_with_sorted_nodes() {
    let l = layout();
    assert_eq!(l.version, 1);
    assert_eq!(l.replicas, 3);
    let ids: Vec<u64> = l.nodes.iter().map(|n| n.id.0).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(l.partitions.len(), 256);
    assert!(l.validate().is_ok());
    // Three nodes, three replicas: every node holds every partition.
    for id in 1..=3 {
        assert_eq!(l.partitions_of(NodeId(id)).len(), 256);
    }
    assert_eq!(l.node(NodeId(2)).map(|n| n.zone.as_str()), Some("z"));
    assert!(l.node(NodeId(9)).is_none());
    assert!(l.partitions_of(NodeId(9)).is_empty());
}

#[test]
fn key_preflist_is_the_preflist_of_the_key_partition() {
    let l = Layout::initial(new_cluster_id(), (1..=5).map(|i| node(i, "z")).collect(), 3).unwrap();
    // "foo" is in slot 12182, partition 190; hash tags keep keys together.
    assert_eq!(l.key_preflist(b"foo"), l.preflist(190));
    assert_eq!(l.key_preflist(b"{foo}.x"), l.preflist(190));
    assert_eq!(l.preflist(256), &[] as &[NodeId]);
    let partitions = l.partitions_of(l.preflist(190)[0]);
    assert!(partitions.contains(&190));
    assert!(partitions.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn initial_refuses_bad_inputs() {
    let err = Layout::initial(new_cluster_id(), three_nodes(), 4).unwrap_err();
    assert!(matches!(
        err,
        LayoutError::Placement(PlacementError::TooFewNodes { .. })
    ));
    let mut dup = three_nodes();
    dup.push(node(1, "z"));
    assert!(Layout::initial(new_cluster_id(), dup, 3).is_err());
    let mut zero = three_nodes();
    zero[0].capacity = 0;
    assert!(Layout::initial(new_cluster_id(), zero, 3).is_err());
    assert!(matches!(
        Layout::initial("not-hex".into(), three_nodes(), 3),
        Err(LayoutError::BadClusterId(_))
    ));
    let mut no_addr = three_nodes();
    no_addr[1].bus_addr.clear();
    assert!(matches!(
        Layout::initial(new_cluster_id(), no_addr, 3),
        Err(LayoutError::MissingAddress { which: "bus", .. })
    ));
}

#[test]
fn a_rebalanced_layout_is_the_next_version_of_the_same_cluster() {
    let four: Vec<NodeInfo> = (1..=4).map(|i| node(i, "z")).collect();
    let old = Layout::initial(new_cluster_id(), four.clone(), 3).unwrap();
    let mut five = four;
    five.push(node(5, "z"));
    let new = old.rebalanced(five, 3).unwrap();
    assert_eq!(new.version, 2);
    assert_eq!(new.cluster_id, old.cluster_id);
    assert!(new.validate().is_ok());
    // Only the new node's assignments are copies: 768 / 5, about a fifth.
    let taken = new.partitions_of(NodeId(5)).len();
    assert_eq!(old.moved_assignments(&new), taken);
    assert!((153..=154).contains(&taken));
    assert_eq!(old.moved_assignments(&old), 0);
    // Shrinking below the replica count is refused.
    let two: Vec<NodeInfo> = (1..=2).map(|i| node(i, "z")).collect();
    assert!(old.rebalanced(two, 3).is_err());
}

#[test]
fn cluster_ids_are_random_hex() {
    let (a, b) = (new_cluster_id(), new_cluster_id());
    assert!(is_cluster_id(&a) && is_cluster_id(&b));
    assert_ne!(a, b);
}

#[test]
fn validate_catches_each_broken_invariant() {
    let good = layout();
    type Damage = Box<dyn Fn(&mut Layout)>;
    let broken: Vec<(&str, Damage)> = vec![
        ("version 0", Box::new(|l| l.version = 0)),
        ("unsorted", Box::new(|l| l.nodes.swap(0, 1))),
        (
            "too few partitions",
            Box::new(|l| {
                l.partitions.pop();
            }),
        ),
        (
            "short list",
            Box::new(|l| {
                l.partitions[7].pop();
            }),
        ),
        (
            "repeated node",
            Box::new(|l| l.partitions[9][1] = l.partitions[9][0]),
        ),
        (
            "unknown node",
            Box::new(|l| l.partitions[3][2] = NodeId(77)),
        ),
        ("replicas above nodes", Box::new(|l| l.replicas = 4)),
        ("bad cluster id", Box::new(|l| l.cluster_id = "ABC".into())),
    ];
    for (what, damage) in broken {
        let mut l = good.clone();
        damage(&mut l);
        assert!(l.validate().is_err(), "{what} passed validation");
    }
}

#[test]
fn validate_requires_distinct_zones_when_there_are_enough() {
    let nodes = vec![node(1, "a"), node(2, "b"), node(3, "c"), node(4, "c")];
    let mut l = Layout::initial(new_cluster_id(), nodes, 3).unwrap();
    // Put both zone-c nodes in one partition.
    l.partitions[0] = vec![NodeId(1), NodeId(3), NodeId(4)];
    let err = l.validate().unwrap_err();
    assert!(err.to_string().contains("zone"), "{err}");
}

#[test]
fn save_then_load_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout.json");
    assert!(Layout::load(&path).unwrap().is_none());
    let l = layout();
    l.save(&path).unwrap();
    assert_eq!(Layout::load(&path).unwrap(), Some(l.clone()));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"format\": 1"), "{text}");
    // Ids as CLUSTER NODES prints them, never as JSON numbers.
    assert!(
        text.contains("\"id\": \"0000000000000000000000000000000000000001\""),
        "{text}"
    );
    assert!(text.contains("\"0000000000000000000000000000000000000003\""));
}

#[test]
fn a_damaged_file_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout.json");
    let json = layout().to_json();
    let damaged = [
        json[..json.len() / 2].to_vec(),
        b"".to_vec(),
        b"\x00\xff garbage".to_vec(),
        String::from_utf8(json.clone())
            .unwrap()
            .replace("\"format\": 1", "\"format\": 3")
            .into_bytes(),
        String::from_utf8(json.clone())
            .unwrap()
            .replace("\"version\": 1", "\"version\": 0")
            .into_bytes(),
        String::from_utf8(json.clone())
            .unwrap()
            .replacen("0000000000000000000000000000000000000002", "2", 1)
            .into_bytes(),
    ];
    for content in damaged {
        std::fs::write(&path, &content).unwrap();
        let err = Layout::load(&path).unwrap_err();
        assert!(matches!(err, LayoutError::File { .. }), "{err}");
        assert!(err.to_string().contains("layout.json"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), content, "file was modified");
    }
}

#[test]
fn an_oversized_document_is_refused_before_parsing() {
    let big = vec![b' '; MAX_LAYOUT_BYTES + 1];
    assert!(matches!(
        Layout::from_json(&big),
        Err(LayoutError::Malformed(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn json_round_trips_and_placement_is_reproducible(count in 1u64..8, replicas in 1usize..4) {
        prop_assume!(replicas as u64 <= count);
        let nodes: Vec<NodeInfo> = (1..=count).map(|i| node(i * 7919, "z")).collect();
        let id = new_cluster_id();
        let a = Layout::initial(id.clone(), nodes.clone(), replicas).unwrap();
        let b = Layout::initial(id, nodes.into_iter().rev().collect(), replicas).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(Layout::from_json(&a.to_json()).unwrap(), a);
    }

    #[test]
    fn from_json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Layout::from_json(&bytes);
    }
}

// ---- layout changes (transition.rs) ----------------------------------------------------

fn four_nodes() -> Layout {
    let three = layout();
    three
        .plan(&[LayoutChange::Assign { node: node(4, "z") }])
        .unwrap()
        .next
        .settled()
        .and_then(|moved| moved.settled())
        .unwrap()
}

#[test]
fn a_join_keeps_the_previous_placement_until_it_settles() {
    let l = layout();
    let plan = l
        .plan(&[LayoutChange::Assign { node: node(4, "z") }])
        .unwrap();
    let next = &plan.next;
    assert_eq!(next.version, 2);
    let t = next.transition.as_ref().expect("data moves: a transition");
    assert_eq!(t.from_version, 1);
    assert!(t.departing.is_empty());
    assert_eq!(t.partitions, l.partitions);
    // Node 4 takes a quarter of the 768 assignments, each copied once.
    assert_eq!(plan.moved, 192);
    assert_eq!(next.incoming(NodeId(4)).len(), 192);
    assert!(
        next.incoming(NodeId(1)).is_empty(),
        "old members receive nothing"
    );
    for p in 0..PARTITIONS {
        assert_eq!(
            next.read_preflist(p),
            l.preflist(p),
            "reads stay on the old replicas"
        );
        let groups = next.write_groups(p);
        if next.preflist(p).contains(&NodeId(4)) {
            assert_eq!(
                groups,
                vec![next.preflist(p).to_vec(), l.preflist(p).to_vec()]
            );
            assert_eq!(next.holders(p).len(), 4);
        } else {
            assert_eq!(groups, vec![next.preflist(p).to_vec()]);
        }
    }
    let after: usize = plan.per_node.iter().map(|&(_, _, a)| a).sum();
    assert_eq!(after, 768);
    // Format 2 on the wire and on disk while moving; format 1 again once settled.
    let json = next.to_json();
    assert!(String::from_utf8_lossy(&json).contains("\"format\": 2"));
    assert_eq!(&Layout::from_json(&json).unwrap(), next);
    // Second version: reads move to the new replicas, writes still need both sets (a
    // node that has not learned it yet still reads the previous replicas).
    let moved = next.settled().unwrap();
    assert_eq!(moved.version, 3);
    assert!(moved.transition.as_ref().is_some_and(|t| t.reads_moved));
    assert!(moved.incoming(NodeId(4)).is_empty(), "nothing left to copy");
    assert_eq!(&Layout::from_json(&moved.to_json()).unwrap(), &moved);
    for p in 0..PARTITIONS {
        assert_eq!(moved.read_preflist(p), next.preflist(p));
        assert_eq!(moved.write_groups(p), next.write_groups(p));
        assert_eq!(moved.holders(p), next.holders(p));
    }
    // Third version: no transition; the previous replicas may let go.
    let settled = moved.settled().unwrap();
    assert_eq!(settled.version, 4);
    assert!(settled.transition.is_none());
    assert_eq!(settled.partitions, next.partitions);
    assert!(String::from_utf8_lossy(&settled.to_json()).contains("\"format\": 1"));
    for p in 0..PARTITIONS {
        assert_eq!(settled.read_preflist(p), next.preflist(p));
        assert_eq!(settled.write_groups(p), vec![next.preflist(p).to_vec()]);
    }
}

#[test]
fn a_leaving_node_stays_a_source_until_the_transition_ends() {
    let four = four_nodes();
    let held = four.partitions_of(NodeId(3));
    let plan = four
        .plan(&[LayoutChange::Remove { node: NodeId(3) }])
        .unwrap();
    let next = plan.next;
    assert!(next.member(NodeId(3)).is_none());
    assert_eq!(
        next.node(NodeId(3)).map(|n| n.id),
        Some(NodeId(3)),
        "still addressable"
    );
    assert_eq!(
        next.partitions_of(NodeId(3)),
        held,
        "still a source of what it held"
    );
    assert_eq!(next.all_nodes().count(), 4);
    assert_eq!(plan.moved, held.len());
    let moved = next.settled().unwrap();
    assert!(moved.node(NodeId(3)).is_some(), "a source until the end");
    let settled = moved.settled().unwrap();
    assert!(settled.node(NodeId(3)).is_none());
    assert!(settled.partitions_of(NodeId(3)).is_empty());
}

#[test]
fn a_replacement_takes_exactly_the_dead_nodes_place() {
    let l = layout();
    let plan = l
        .plan(&[LayoutChange::Replace {
            node: NodeId(2),
            with: node(9, "z"),
        }])
        .unwrap();
    for p in 0..PARTITIONS {
        let want: Vec<NodeId> = l
            .preflist(p)
            .iter()
            .map(|&n| if n == NodeId(2) { NodeId(9) } else { n })
            .collect();
        assert_eq!(plan.next.preflist(p), want.as_slice());
    }
    assert_eq!(plan.moved, 256, "only node 2's assignments move");
    let t = plan.next.transition.as_ref().expect("a transition");
    assert_eq!(
        t.replaced,
        vec![NodeId(2)],
        "the change does not wait for node 2"
    );
    assert_eq!(
        Layout::from_json(&plan.next.to_json()).unwrap(),
        plan.next,
        "replaced nodes survive the document"
    );
    assert_eq!(plan.next.incoming(NodeId(9)).len(), 256);
}

#[test]
fn changes_that_cannot_be_made_are_refused_with_the_reason() {
    let l = layout();
    let err = |changes: &[LayoutChange], base: &Layout| base.plan(changes).unwrap_err().to_string();
    assert!(err(&[], &l).contains("no layout changes"));
    assert!(err(&[LayoutChange::Remove { node: NodeId(7) }], &l).contains("not a member"));
    let mut zero = node(5, "z");
    zero.capacity = 0;
    assert!(err(&[LayoutChange::Assign { node: zero }], &l).contains("capacity"));
    let with_member = LayoutChange::Replace {
        node: NodeId(1),
        with: node(2, "z"),
    };
    assert!(err(&[with_member], &l).contains("member already"));
    // Three replicas cannot live on two nodes.
    assert!(err(&[LayoutChange::Remove { node: NodeId(1) }], &l).contains("at least 3"));
    // One change at a time.
    let moving = l
        .plan(&[LayoutChange::Assign { node: node(4, "z") }])
        .unwrap()
        .next;
    assert!(err(&[LayoutChange::Remove { node: NodeId(4) }], &moving).contains("under way"));
    assert!(l.settled().is_err(), "nothing to settle");
}

#[test]
fn a_damaged_transition_is_refused() {
    let l = layout();
    let good = l
        .plan(&[LayoutChange::Assign { node: node(4, "z") }])
        .unwrap()
        .next;
    let mut older = good.clone();
    older.transition.as_mut().unwrap().from_version = 2;
    let mut member_departing = good.clone();
    member_departing.transition.as_mut().unwrap().departing = vec![node(1, "z")];
    let mut unknown = good.clone();
    unknown.transition.as_mut().unwrap().partitions[7][0] = NodeId(77);
    let mut replaced_member = good.clone();
    replaced_member.transition.as_mut().unwrap().replaced = vec![NodeId(1)];
    let mut short = good;
    short.transition.as_mut().unwrap().partitions.pop();
    for bad in [older, member_departing, unknown, replaced_member, short] {
        assert!(
            bad.validate().is_err(),
            "{:?}",
            bad.transition.map(|t| t.from_version)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// A join or leave moves only what it must, and the transition covers every
    /// replica of both placements.
    #[test]
    fn changes_move_only_what_they_must(count in 3u64..=6, join in any::<bool>()) {
        let nodes: Vec<NodeInfo> = (1..=count).map(|i| node(i, "z")).collect();
        let base = Layout::initial(new_cluster_id(), nodes, 3).unwrap();
        let change = if join || count == 3 {
            LayoutChange::Assign { node: node(100, "z") }
        } else {
            LayoutChange::Remove { node: NodeId(count) }
        };
        let plan = base.plan(&[change]).unwrap();
        let total = 256 * 3;
        let members = plan.next.nodes.len();
        // The newcomer's fair share, or the leaver's holding, plus at most one per node
        // for rounding.
        let bound = if members as u64 > count {
            total / members + members
        } else {
            base.partitions_of(NodeId(count)).len() + members
        };
        prop_assert!(plan.moved <= bound, "moved {} > {}", plan.moved, bound);
        for p in 0..PARTITIONS {
            let holders = plan.next.holders(p);
            for n in base.preflist(p).iter().chain(plan.next.preflist(p)) {
                prop_assert!(holders.contains(n));
            }
        }
    }
}

#[test]
fn the_first_member_up_settles_at_once_and_the_others_after_their_patience() {
    use std::time::Duration;
    let l = layout();
    let patience = Duration::from_secs(5);
    let settles = |me: u64, down: Option<u64>, ready_for: Duration| {
        let is_down = |n: NodeId| Some(n.0) == down;
        driver::settles_now(&l, NodeId(me), is_down, ready_for, patience)
    };
    let now = Duration::ZERO;
    assert!(settles(1, None, now));
    assert!(!settles(2, None, now));
    assert!(!settles(3, None, now));
    // The first is down: the next member up takes its place at once.
    assert!(settles(2, Some(1), now));
    assert!(!settles(3, Some(1), now));
    // Paused or cut off without being down: the others settle once they waited.
    assert!(settles(3, None, patience));
    // A departing node (not a member) is never first.
    assert!(!settles(9, None, now));
}
