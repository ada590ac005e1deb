//! Decoding reads members as they come: any order, unknown members
//! skipped, duplicates refused, a union's discriminator anywhere, nested
//! unions, alternates by JSON type, deep nesting. Each case is decoded
//! from bytes (what the clients do) and from a `Value` (what
//! `check_return` and `Event::decode` are given), and both must agree.

use qapi_example_downstream::recursion::{Expr, ExprBranch};
use qapi_example_downstream::unions::{
    Any, InnerX, Middle, MiddleBranch, Nested, NestedBranch, Text,
};
use qapi_example_downstream::{Console, ConsoleBranch, DriveBus, DriveInfo};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Decode `text` from bytes and from a `Value`; both ways agree.
fn both<T: DeserializeOwned + PartialEq + std::fmt::Debug>(text: &str) -> Result<T, String> {
    let from_bytes = serde_json::from_str::<T>(text).map_err(|e| e.to_string());
    let value: Value = serde_json::from_str(text).unwrap();
    let from_value = serde_json::from_value::<T>(value).map_err(|e| e.to_string());
    assert_eq!(
        from_bytes.is_ok(),
        from_value.is_ok(),
        "{from_bytes:?} / {from_value:?}"
    );
    if let (Ok(a), Ok(b)) = (&from_bytes, &from_value) {
        assert_eq!(a, b);
    }
    from_bytes
}

fn bytes<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str::<T>(text).map_err(|e| e.to_string())
}

#[test]
fn members_in_any_order() {
    let want = DriveInfo {
        id: "d".into(),
        bus: DriveBus::Ide,
        size: 1,
        read_only: Some(true),
        tags: None,
    };
    for text in [
        r#"{"id": "d", "bus": "ide", "size": 1, "read-only": true}"#,
        r#"{"read-only": true, "size": 1, "bus": "ide", "id": "d"}"#,
        r#"{"size": 1, "id": "d", "read-only": true, "bus": "ide"}"#,
    ] {
        assert_eq!(both::<DriveInfo>(text).unwrap(), want, "{text}");
    }
}

#[test]
fn unknown_members_are_skipped_whatever_they_hold() {
    let d: DriveInfo = both(
        r#"{"new": {"deep": [1, {"x": null}], "s": "\u00e9"}, "id": "d", "bus": "ide",
            "more": [[[]]], "size": 1, "last": "x"}"#,
    )
    .unwrap();
    assert_eq!(d.id, "d");
    assert_eq!(d.size, 1);
}

#[test]
fn missing_and_bad_members_are_errors_that_say_which() {
    let e = both::<DriveInfo>(r#"{"id": "d", "bus": "ide"}"#).unwrap_err();
    assert!(e.contains("missing member 'size'"), "{e}");
    let e = both::<DriveInfo>(r#"{"id": "d", "bus": "ide", "size": "big"}"#).unwrap_err();
    assert!(e.contains("member 'size'"), "{e}");
    let e = both::<DriveInfo>(r#"[1, 2]"#).unwrap_err();
    assert!(e.contains("DriveInfo"), "{e}");
    // Errors in nested members read as a path.
    let e = both::<Expr>(r#"{"kind": "neg", "inner": {"kind": "leaf", "n": "x"}}"#).unwrap_err();
    assert!(e.contains("member 'inner': member 'n'"), "{e}");
}

#[test]
fn duplicate_members_are_errors_as_with_serde_derive() {
    // serde's derive refuses a member given twice; so do the bindings
    // (QEMU never sends one, and which of the two to keep is a guess).
    // From bytes only: a `Value` cannot hold a duplicate.
    let e = bytes::<DriveInfo>(r#"{"id": "d", "bus": "ide", "size": 1, "size": 2}"#).unwrap_err();
    assert!(e.contains("duplicate member 'size'"), "{e}");
    let e = bytes::<Console>(r#"{"kind": "vnc", "id": "c", "port": 1, "port": 2}"#).unwrap_err();
    assert!(e.contains("duplicate member 'port'"), "{e}");
    let e = bytes::<Console>(r#"{"kind": "vnc", "id": "c", "id": "d", "port": 1}"#).unwrap_err();
    assert!(e.contains("duplicate member 'id'"), "{e}");
    let e =
        bytes::<Console>(r#"{"kind": "vnc", "port": 1, "kind": "vnc", "id": "c"}"#).unwrap_err();
    assert!(e.contains("duplicate member 'kind'"), "{e}");
}

#[test]
fn a_discriminator_anywhere() {
    let want = Console {
        id: "c".into(),
        branch: ConsoleBranch::Vnc(qapi_example_downstream::ConsoleVnc { port: 5900 }),
    };
    for text in [
        r#"{"kind": "vnc", "id": "c", "port": 5900}"#,
        r#"{"id": "c", "kind": "vnc", "port": 5900}"#,
        r#"{"port": 5900, "id": "c", "kind": "vnc"}"#,
        r#"{"port": 5900, "extra": [1], "kind": "vnc", "id": "c"}"#,
    ] {
        assert_eq!(both::<Console>(text).unwrap(), want, "{text}");
    }
    let e = both::<Console>(r#"{"id": "c", "port": 5900}"#).unwrap_err();
    assert!(e.contains("missing member 'kind'"), "{e}");
    let e = both::<Console>(r#"{"id": "c", "kind": "vnc"}"#).unwrap_err();
    assert!(e.contains("missing member 'port'"), "{e}");
    let e = both::<Console>(r#"{"port": "x", "id": "c", "kind": "vnc"}"#).unwrap_err();
    assert!(e.contains("member 'port'"), "{e}");
}

#[test]
fn an_unknown_branch_is_kept_and_written_back() {
    let c: Console = both(r#"{"port": 1, "kind": "spice", "id": "c", "gl": true}"#).unwrap();
    let ConsoleBranch::Other { tag, members } = &c.branch else {
        panic!("{c:?}")
    };
    assert_eq!(tag, "spice");
    assert_eq!(
        Value::Object(members.clone()),
        json!({"port": 1, "gl": true})
    );
    assert_eq!(
        serde_json::to_value(&c).unwrap(),
        json!({"kind": "spice", "id": "c", "port": 1, "gl": true})
    );
}

#[test]
fn a_union_whose_branch_is_a_union() {
    let want = Nested {
        id: "n".into(),
        branch: NestedBranch::A(Middle {
            label: Some("l".into()),
            branch: MiddleBranch::Y(qapi_example_downstream::unions::InnerY { name: "y".into() }),
        }),
    };
    for text in [
        r#"{"id": "n", "outer": "a", "inner": "y", "label": "l", "name": "y"}"#,
        r#"{"name": "y", "inner": "y", "outer": "a", "label": "l", "id": "n"}"#,
    ] {
        assert_eq!(both::<Nested>(text).unwrap(), want, "{text}");
    }
    let wire = serde_json::to_value(&want).unwrap();
    assert_eq!(
        wire,
        json!({"id": "n", "outer": "a", "inner": "y", "label": "l", "name": "y"})
    );
    assert_eq!(serde_json::from_value::<Nested>(wire).unwrap(), want);
    let b: Nested = both(r#"{"outer": "b", "id": "n", "flag": true}"#).unwrap();
    assert!(matches!(b.branch, NestedBranch::B(ref o) if o.flag));
}

#[test]
fn alternates_choose_by_json_type() {
    assert_eq!(both::<Text>(r#""s""#).unwrap(), Text::S("s".into()));
    assert_eq!(both::<Text>("[3]").unwrap(), Text::L(vec![3]));
    let e = both::<Text>("3").unwrap_err();
    assert!(e.contains("no branch takes a JSON number"), "{e}");
    assert_eq!(both::<Any>("1.5").unwrap(), Any::N(1.5));
    assert_eq!(both::<Any>("-3").unwrap(), Any::N(-3.0));
    assert_eq!(both::<Any>("true").unwrap(), Any::B(true));
    assert_eq!(both::<Any>("null").unwrap(), Any::Z(qapi_runtime::Null));
    assert_eq!(both::<Any>("[1, 2]").unwrap(), Any::L(vec![1, 2]));
    assert_eq!(
        both::<Any>(r#"{"size": 3, "x": 0}"#).unwrap(),
        Any::O(InnerX { size: 3 })
    );
    let e = both::<Any>("[1, \"x\"]").unwrap_err();
    assert!(e.contains("invalid type"), "{e}");
    for v in [Any::N(2.5), Any::L(vec![1]), Any::O(InnerX { size: 1 })] {
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(both::<Any>(&text).unwrap(), v);
    }
    // An alternate without an array branch says so.
    let e = both::<qapi_example_downstream::SizeOrName>("[1]").unwrap_err();
    assert!(e.contains("no branch takes a JSON array"), "{e}");
}

fn negations(depth: usize) -> String {
    let mut text = String::new();
    for _ in 0..depth {
        text.push_str(r#"{"kind": "neg", "inner": "#);
    }
    text.push_str(r#"{"kind": "leaf", "n": 7}"#);
    for _ in 0..depth {
        text.push('}');
    }
    text
}

#[test]
fn deep_nesting_decodes_and_too_deep_is_an_error() {
    let mut e: Expr = serde_json::from_str(&negations(60)).unwrap();
    let mut depth = 0;
    while let ExprBranch::Neg(n) = e.branch {
        e = *n.inner;
        depth += 1;
    }
    assert_eq!(depth, 60);
    assert!(matches!(e.branch, ExprBranch::Leaf(ref l) if l.n == 7));
    // serde_json's recursion limit, not a stack overflow.
    let err = serde_json::from_str::<Expr>(&negations(100_000)).unwrap_err();
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

#[test]
fn replies_decode_straight_from_bytes() {
    use qapi_example_downstream::commands::QueryDrives;
    use qapi_runtime::Command;
    let text = r#"[{"id": "a", "bus": "virtio", "size": 2, "x": {}}]"#;
    let drives = QueryDrives::decode_return(&mut serde_json::Deserializer::from_str(text)).unwrap();
    assert_eq!(drives[0].bus, DriveBus::Virtio);
    let same = QueryDrives::decode_return(serde_json::from_str::<Value>(text).unwrap()).unwrap();
    assert_eq!(drives, same);
}
