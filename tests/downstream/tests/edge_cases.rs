//! Keywords, collisions and recursion: generated code compiles (with
//! warnings denied) and keeps the wire names.

use qapi_example_downstream::{collisions, keywords, recursion};
use qapi_runtime::Command;
use serde_json::json;

#[test]
fn keywords_become_raw_or_mangled_identifiers() {
    let k = keywords::Keywords {
        r#type: keywords::Kind::Self_,
        self_: "s".into(),
        r#fn: 1,
        r#match: None,
        r#async: "a".into(),
        crate_: "c".into(),
        super_: "p".into(),
    };
    let v = serde_json::to_value(&k).unwrap();
    assert_eq!(
        v,
        json!({"type": "Self", "self": "s", "fn": 1, "async": "a", "crate": "c", "super": "p"})
    );
    assert_eq!(
        serde_json::from_value::<keywords::Kind>(json!("1st")).unwrap(),
        keywords::Kind::V1st
    );
    assert_eq!(
        keywords::Kind::OrgExampleVendor.as_str(),
        "__org.example_vendor"
    );
    assert_eq!(keywords::Kind::XExperimental.as_str(), "x-experimental");
    assert_eq!(keywords::commands::Loop::NAME, "loop");
}

#[test]
fn collisions_are_told_apart() {
    let p = collisions::Pair {
        a_b: 1,
        a_b2: "x".into(),
    };
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        json!({"a-b": 1, "aB": "x"})
    );
    let _: collisions::FooBar = serde_json::from_value(json!({"x": 1})).unwrap();
    let _: collisions::FooBar2 = serde_json::from_value(json!({"y": 1})).unwrap();
    assert_eq!(collisions::commands::DoIt::NAME, "do-it");
    assert_eq!(collisions::commands::DoIt2::NAME, "do_it");
    // The enum value `other` and the catch-all both exist.
    assert_eq!(
        collisions::Other::from_wire("other"),
        collisions::Other::Other
    );
    assert_eq!(
        collisions::Other::from_wire("new"),
        collisions::Other::Other2("new".into())
    );
}

#[test]
fn recursive_types_are_boxed_and_round_trip() {
    let t = recursion::Tree {
        value: 1,
        left: Some(Box::new(recursion::Tree {
            value: 2,
            left: None,
            right: None,
            children: None,
        })),
        right: None,
        children: Some(vec![recursion::Tree {
            value: 3,
            left: None,
            right: None,
            children: None,
        }]),
    };
    let wire = json!({"value": 1, "left": {"value": 2}, "children": [{"value": 3}]});
    assert_eq!(serde_json::to_value(&t).unwrap(), wire);
    assert_eq!(serde_json::from_value::<recursion::Tree>(wire).unwrap(), t);

    let e: recursion::Expr =
        serde_json::from_value(json!({"kind": "neg", "inner": {"kind": "leaf", "n": 5}})).unwrap();
    let recursion::ExprBranch::Neg(neg) = &e.branch else {
        panic!("{e:?}")
    };
    assert!(matches!(&neg.inner.branch, recursion::ExprBranch::Leaf(l) if l.n == 5));
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"kind": "neg", "inner": {"kind": "leaf", "n": 5}})
    );

    let a: recursion::NumOrExpr = serde_json::from_value(json!({"inner": 7})).unwrap();
    assert!(
        matches!(a, recursion::NumOrExpr::Expr(ref w) if *w.inner == recursion::NumOrExpr::Num(7))
    );
}

#[test]
fn type_attributes_are_applied() {
    use std::collections::HashSet;
    let mut set = HashSet::new();
    set.insert(qapi_example_downstream::Named { id: "x".into() });
    assert_eq!(set.len(), 1);
}

/// A required member under a condition is there only when QEMU was
/// built with it: without `cfg` conditions the bindings cannot know the
/// build, so the reply decodes either way (strictly too).
#[test]
fn a_required_member_under_a_condition_may_be_missing_from_a_reply() {
    use qapi_example_downstream::conditions::commands::QueryModel;
    let decode = |v: serde_json::Value| {
        qapi_runtime::with_strict(Some(true), || QueryModel::decode_return(v))
    };
    let without = decode(json!({"name": "qemu64"})).unwrap();
    assert_eq!(without.name, "qemu64");
    assert_eq!(without.extra, None);
    let with = decode(json!({"name": "z14", "extra": ["vx"]})).unwrap();
    assert_eq!(with.extra, Some(vec!["vx".to_string()]));
    assert!(decode(json!({"extra": []})).is_err());
}

/// A command the schema leaves open whose members are named like its
/// free-form bag (`props`) and the bag's setter (`prop`): the members
/// give way (`props2`, `prop2`), and all three travel under their own
/// wire names.  Before, the struct had two fields named `props` and did
/// not compile (QEMU 5.0's `object-add`).
#[test]
fn an_open_commands_members_never_collide_with_its_bag() {
    let c = collisions::commands::OpenEnded::new("typed")
        .prop2(3)
        .prop("extra", true);
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"props": "typed", "prop": 3, "extra": true})
    );
    let back: collisions::commands::OpenEnded = serde_json::from_value(v).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.props["extra"], true);
}
