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
            .replace("\"format\": 1", "\"format\": 2")
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
