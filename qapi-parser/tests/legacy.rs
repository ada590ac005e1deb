//! The language of QEMU releases before 6.2, read in lenient mode as
//! QEMU 5.2's front end read it, and rejected by the strict (10.2) rules.
//!
//! `schema/tests/legacy.json` uses every form; its definitions (and, with
//! the branch descriptions taken out, which 5.2 did not allow, its
//! documentation) dump the same as QEMU 5.2's `test-qapi.py` once that
//! release's notation for conditions is translated (checked by hand with
//! the 5.2 sources from Debian bullseye; see ARCHITECTURE.md).

use std::path::{Path, PathBuf};

use qapi_parser::{EntityKind, IfCond, Options, Rules, Schema};

fn legacy_json() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/tests/legacy.json")
}

fn read(mode: Rules) -> Result<Schema, String> {
    Schema::from_file(legacy_json(), Options { rules: mode }).map_err(|f| f.render())
}

fn read_text(text: &str, mode: Rules) -> Result<Schema, String> {
    let bytes = text.as_bytes().to_vec();
    let load = move |_: &Path| Ok(bytes.clone());
    Schema::from_file_with(Path::new("t.json"), Options { rules: mode }, &load)
        .map_err(|f| f.render())
}

#[test]
fn strict_rules_reject_the_legacy_language() {
    let e = read(Rules::Strict).unwrap_err();
    assert!(e.contains("unknown pragma 'returns-whitelist'"), "{e}");
    let cases = [
        (
            "{ 'struct': 'Aa', 'data': { 'a': 'int' }, 'if': 'defined(CONFIG_X)' }",
            "is not a valid configuration symbol",
        ),
        (
            "{ 'struct': 'Aa', 'data': { 'a': 'int' }, 'if': ['CONFIG_X'] }",
            "must be a string or an object",
        ),
        (
            "{ 'union': 'Un', 'data': { 'a': 'int' } }",
            "lacks the keys",
        ),
        (
            "{ 'struct': 'Aa', 'data': { 'a_b': 'int' } }",
            "must be lower case",
        ),
    ];
    for (text, message) in cases {
        let e = read_text(text, Rules::Strict).unwrap_err();
        assert!(e.contains(message), "{text}: {e}");
        read_text(text, Rules::Lenient).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

#[test]
fn simple_unions_are_modelled_as_qemu_modelled_them() {
    let s = read(Rules::Lenient).unwrap();
    let ent = |name: &str| {
        s.entities
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let EntityKind::Enum(kind) = &ent("AddressKind").kind else {
        panic!("AddressKind is an enum")
    };
    let values: Vec<&str> = kind.values.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(values, ["place", "path", "paths", "spice"]);
    assert_eq!(
        kind.values[3].cond,
        Some(IfCond::Name("CONFIG_SPICE".into()))
    );

    let EntityKind::Object(addr) = &ent("Address").kind else {
        panic!("Address is an object")
    };
    assert_eq!(addr.members.len(), 1);
    assert_eq!(addr.members[0].name, "type");
    assert_eq!(s.entity(addr.members[0].ty).name, "AddressKind");
    let b = addr.branches.as_ref().unwrap();
    assert_eq!(b.tag, "type");
    let wrappers: Vec<&str> = b
        .variants
        .iter()
        .map(|v| s.entity(v.ty).name.as_str())
        .collect();
    assert_eq!(
        wrappers,
        [
            "q_obj_Place-wrapper",
            "q_obj_str-wrapper",
            "q_obj_strList-wrapper",
            "q_obj_Spice-wrapper"
        ]
    );
    // A wrapper has one member, `data`, and its wrapped type's condition.
    let w = ent("q_obj_Spice-wrapper");
    assert!(w.is_implicit());
    assert_eq!(w.cond, Some(IfCond::Name("CONFIG_SPICE".into())));
    let EntityKind::Object(o) = &w.kind else {
        panic!()
    };
    assert_eq!(o.members.len(), 1);
    assert_eq!(o.members[0].name, "data");
    assert_eq!(s.entity(o.members[0].ty).name, "Spice");
    // Wrappers are shared between unions that wrap the same type.
    assert_eq!(
        s.entities
            .iter()
            .filter(|e| e.name == "q_obj_str-wrapper")
            .count(),
        1
    );
}

#[test]
fn c_conditions_and_old_pragmas_are_understood() {
    let s = read(Rules::Lenient).unwrap();
    let link = s.entities.iter().find(|e| e.name == "Link").unwrap();
    let EntityKind::Enum(e) = &link.kind else {
        panic!()
    };
    assert_eq!(e.values[0].name, "speed_2_5");
    assert_eq!(
        e.values[1].cond,
        Some(IfCond::Any(vec![
            IfCond::Name("TARGET_X86_64".into()),
            IfCond::Name("TARGET_ARM".into())
        ]))
    );
    assert_eq!(
        e.values[2].cond,
        Some(IfCond::All(vec![
            IfCond::Name("CONFIG_A".into()),
            IfCond::Not(Box::new(IfCond::Name("CONFIG_B".into())))
        ]))
    );
    assert_eq!(s.pragma.command_returns_exceptions, ["legacy_count"]);
    assert_eq!(s.pragma.member_name_exceptions, ["Register"]);

    // Precedence, parentheses and spacing as C has them.
    let cond = |c: &str| {
        let text = format!("{{ 'struct': 'Aa', 'data': {{ 'a': 'int' }}, 'if': '{c}' }}");
        read_text(&text, Rules::Lenient).map(|s| {
            s.entities
                .iter()
                .find(|e| e.name == "Aa")
                .unwrap()
                .cond
                .clone()
                .unwrap()
                .to_python_str()
        })
    };
    assert_eq!(
        cond("defined(A) || defined(B) && !defined(C)").unwrap(),
        "{'any': ['A', {'all': ['B', {'not': 'C'}]}]}"
    );
    assert_eq!(
        cond("( defined (A) || defined B ) && defined(C)").unwrap(),
        "{'all': [{'any': ['A', 'B']}, 'C']}"
    );
    assert_eq!(cond("CONFIG_PLAIN").unwrap(), "CONFIG_PLAIN");
    for bad in [
        "defined(A) ||",
        "defined(a)",
        "A > 1",
        "(defined(A)",
        "defined(A))",
        "!",
    ] {
        let e = cond(bad).unwrap_err();
        assert!(
            e.contains("neither a configuration symbol nor a C condition"),
            "{bad}: {e}"
        );
    }
    let deep = format!("{}defined(A){}", "(".repeat(200), ")".repeat(200));
    assert!(cond(&deep).is_err());
}

#[test]
fn legacy_unions_keep_their_checks() {
    for (text, message) in [
        (
            "{ 'union': 'Un', 'data': { 'a': 'Nope' } }",
            "'Nope', which is not a defined type",
        ),
        (
            "{ 'union': 'Un', 'base': { 'x': 'int' }, 'data': { 'a': 'int' } }",
            "lacks the key",
        ),
        (
            "{ 'union': 'Un', 'data': { 'A': 'int' } }",
            "must be lower case",
        ),
        ("{ 'union': 'Un', 'data': {} }", "no branches"),
        (
            "{ 'enum': 'UnKind', 'data': [] }\n{ 'union': 'Un', 'data': { 'a': 'int' } }",
            "'UnKind' is defined a second time",
        ),
    ] {
        let e = read_text(text, Rules::Lenient).unwrap_err();
        assert!(e.contains(message), "{text}: {e}");
    }
}
