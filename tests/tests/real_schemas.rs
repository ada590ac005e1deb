//! QEMU's real schemas, read by us and by QEMU's own front end.

use std::path::Path;

use qapi_parser::{Options, Rules, Schema};
use qapi_tests::{qemu_src, reference_dump};

const SCHEMAS: [&str; 3] = [
    "qapi/qapi-schema.json",
    "qga/qapi-schema.json",
    "storage-daemon/qapi/qapi-schema.json",
];

fn ours(tree: &Path, schema: &str, mode: Rules) -> String {
    let s = Schema::from_file(tree.join(schema), Options { rules: mode })
        .unwrap_or_else(|f| panic!("{schema}: {f}"));
    qapi_parser::dump::dump(&s)
}

/// The dump up to the first documentation block.
fn definitions(dump: &str) -> &str {
    match dump.find("\ndoc ") {
        Some(i) => &dump[..i + 1],
        None => dump,
    }
}

/// Panics with the first line where two dumps differ.
fn assert_same(what: &str, got: &str, want: &str) {
    if got != want {
        let line = got.lines().zip(want.lines()).position(|(a, b)| a != b);
        panic!("{what}: dump differs from QEMU's at line {line:?}");
    }
}

/// Read the way code generation reads a schema: the strict rules first,
/// the lenient ones when they reject it.  Returns the dump and whether
/// the strict rules rejected it.
fn strict_then_lenient(tree: &Path, schema: &str) -> (String, bool) {
    match Schema::from_file(tree.join(schema), Options::default()) {
        Ok(s) => (qapi_parser::dump::dump(&s), false),
        Err(_) => (ours(tree, schema, Rules::Lenient), true),
    }
}

#[test]
fn qemu_10_2_0_dumps_equal_qemu_reference() {
    let tree = qemu_src::ensure("10.2.0").unwrap();
    for schema in SCHEMAS {
        let want =
            reference_dump(&tree, &tree, schema).unwrap_or_else(|e| panic!("reference: {e}"));
        let got = ours(&tree, schema, Rules::Strict);
        assert!(got.len() > 10_000, "{schema}: dump too short");
        assert_same(schema, &got, &want);
        // A schema the strict rules accept reads the same leniently.
        assert_same(schema, &ours(&tree, schema, Rules::Lenient), &want);
    }
}

#[test]
fn qemu_10_0_2_reads_leniently_as_its_own_front_end_reads_it() {
    qapi_tests::require_live!("needs QEMU 10.0.2's sources");
    let tree = qemu_src::ensure("10.0.2").unwrap();
    for schema in SCHEMAS {
        let want =
            reference_dump(&tree, &tree, schema).unwrap_or_else(|e| panic!("reference: {e}"));
        let (got, lenient) = strict_then_lenient(&tree, schema);
        // 10.2's line rules reject 10.0.2's documentation…
        assert!(lenient, "{schema}: 10.0.2's docs pass the 10.2 rules");
        // …and the lenient mode reads all of it, documentation included.
        assert_same(&format!("10.0.2 {schema}"), &got, &want);
    }
}

/// A release older than the strict rules: the strict rules reject its
/// documentation, the lenient mode reads it with the same definitions as
/// the release's own front end and keeps every definition's
/// documentation.
fn older_release_reads_leniently(version: &str) {
    let tree = qemu_src::ensure(version).unwrap();
    for schema in SCHEMAS {
        // The release's own front end, on its own schema.
        let want =
            reference_dump(&tree, &tree, schema).unwrap_or_else(|e| panic!("reference: {e}"));
        let (got, lenient) = strict_then_lenient(&tree, schema);
        assert!(
            lenient,
            "{version} {schema}: the docs unexpectedly pass the current rules"
        );
        // Front ends before 8.0 gave the built-in enum QType the C prefix
        // QTYPE; that is the front end's own definition, not the schema's.
        let want_defs =
            definitions(&want).replacen("enum QType\n    prefix QTYPE\n", "enum QType\n", 1);
        let got_defs = definitions(&got);
        assert!(
            got_defs.lines().count() > 300,
            "{version} {schema}: dump too short"
        );
        assert_same(&format!("{version} {schema}"), got_defs, &want_defs);
        // Every definition's documentation is kept.
        let docs = |d: &str| d.matches("\ndoc symbol=").count();
        assert_eq!(
            docs(&got),
            docs(&want),
            "{version} {schema}: documented definitions"
        );
    }
}

#[test]
fn qemu_9_2_0_reads_leniently_as_its_own_front_end_reads_it() {
    let tree = qemu_src::ensure("9.2.0").unwrap();
    for schema in SCHEMAS {
        let want =
            reference_dump(&tree, &tree, schema).unwrap_or_else(|e| panic!("reference: {e}"));
        // 9.2's test-qapi.py printed a plain section's kind as `None` and
        // `TODO:` as `TODO`; the reading is the same.
        let want = want
            .replace("\n    section=None\n", "\n    section=Plain\n")
            .replace("\n    section=TODO\n", "\n    section=Todo\n");
        let (got, lenient) = strict_then_lenient(&tree, schema);
        assert!(lenient, "{schema}: 9.2.0's docs pass the 10.2 rules");
        assert_same(&format!("9.2.0 {schema}"), &got, &want);
    }
}

#[test]
fn qemu_8_2_0_reads_leniently() {
    older_release_reads_leniently("8.2.0");
}

#[test]
fn qemu_7_2_reads_leniently() {
    qapi_tests::require_live!("needs QEMU 7.2's sources");
    older_release_reads_leniently("7.2");
}

#[test]
fn qemu_6_2_0_reads_leniently() {
    older_release_reads_leniently("6.2.0");
}

#[test]
fn project_demo_schema_dumps_equal_qemu_reference() {
    let tree = qemu_src::ensure("10.2.0").unwrap();
    let dir = qemu_src::workspace_root().join("schema/examples");
    let want =
        reference_dump(&tree, &dir, "demo.json").unwrap_or_else(|e| panic!("reference: {e}"));
    let got = ours(&dir, "demo.json", Rules::Strict);
    assert_eq!(got, want);
}
