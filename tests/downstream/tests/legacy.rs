//! Bindings from a schema in the language of QEMU releases before 6.2:
//! a simple union's branch holds its value directly, and travels as
//! `{"type": BRANCH, "data": VALUE}`. (Its own test binary: one test
//! turns on strict decoding, which is global to the process.)

use qapi_example_downstream::legacy::commands::{LegacyConnect, LegacyCount};
use qapi_example_downstream::legacy::{
    Address, AddressBranch, AddressKind, Link, Node, NodeBranch, NodePair, Place, Register,
};
use qapi_runtime::Command;
use serde_json::json;

fn address(branch: AddressBranch) -> Address {
    Address { branch }
}

#[test]
fn simple_union_branches_travel_under_data() {
    let cases = [
        (
            address(AddressBranch::Place(Place {
                host: "h".into(),
                port: 1,
            })),
            json!({"type": "place", "data": {"host": "h", "port": 1}}),
        ),
        (
            address(AddressBranch::Path("/p".into())),
            json!({"type": "path", "data": "/p"}),
        ),
        (
            address(AddressBranch::Paths(vec!["a".into(), "b".into()])),
            json!({"type": "paths", "data": ["a", "b"]}),
        ),
    ];
    for (value, wire) in cases {
        assert_eq!(serde_json::to_value(&value).unwrap(), wire);
        assert_eq!(serde_json::from_value::<Address>(wire).unwrap(), value);
    }
    assert_eq!(AddressKind::Paths.as_str(), "paths");
}

#[test]
fn a_simple_union_may_contain_itself() {
    let leaf = |n| Node {
        branch: NodeBranch::Leaf(n),
    };
    let tree = Node {
        branch: NodeBranch::Pair(Box::new(NodePair {
            left: Box::new(leaf(1)),
            right: Box::new(leaf(2)),
        })),
    };
    let wire = json!({"type": "pair", "data": {
        "left": {"type": "leaf", "data": 1},
        "right": {"type": "leaf", "data": 2}}});
    assert_eq!(serde_json::to_value(&tree).unwrap(), wire);
    assert_eq!(serde_json::from_value::<Node>(wire).unwrap(), tree);
}

#[test]
fn bad_simple_union_values_are_errors_that_say_what() {
    let e = serde_json::from_value::<Address>(json!({"type": "path"})).unwrap_err();
    assert!(e.to_string().contains("missing member 'data'"), "{e}");
    let e = serde_json::from_value::<Address>(json!({"type": "path", "data": 5})).unwrap_err();
    assert!(e.to_string().contains("member 'data'"), "{e}");
    // A branch from a newer QEMU is kept as sent.
    let v: Address = serde_json::from_value(json!({"type": "tube", "data": {"x": 1}})).unwrap();
    match &v.branch {
        AddressBranch::Other { tag, members } => {
            assert_eq!(tag, "tube");
            assert_eq!(members["data"], json!({"x": 1}));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        serde_json::to_value(&v).unwrap(),
        json!({"type": "tube", "data": {"x": 1}})
    );

    // Extra members beside `data` are kept out in normal mode and are an
    // error in strict mode.
    let extra = json!({"type": "path", "data": "/p", "more": 1});
    assert!(serde_json::from_value::<Address>(extra.clone()).is_ok());
    qapi_runtime::set_strict(true);
    let e = serde_json::from_value::<Address>(extra).unwrap_err();
    assert!(e.to_string().contains("more"), "{e}");
    qapi_runtime::set_strict(false);
}

#[test]
fn commands_names_and_values_keep_their_wire_form() {
    let cmd = LegacyConnect {
        addr: address(AddressBranch::Path("/s".into())),
        link: Some(Link::Speed25),
    };
    assert_eq!(LegacyConnect::NAME, "legacy-connect");
    assert_eq!(
        serde_json::to_value(&cmd).unwrap(),
        json!({"addr": {"type": "path", "data": "/s"}, "link": "speed_2_5"})
    );
    assert_eq!(LegacyCount::NAME, "legacy_count");
    let r = Register {
        eax: 1,
        cpu_index: 2,
    };
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({"EAX": 1, "cpu_index": 2})
    );
}
