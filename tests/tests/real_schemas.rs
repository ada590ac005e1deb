//! QEMU's real schemas, read by us and by QEMU's own front end.

use std::path::Path;

use qapi_parser::{DocMode, Options, Schema};
use qapi_tests::{qemu_src, reference_dump};

const SCHEMAS: [&str; 3] = [
    "qapi/qapi-schema.json",
    "qga/qapi-schema.json",
    "storage-daemon/qapi/qapi-schema.json",
];

fn ours(tree: &Path, schema: &str, mode: DocMode) -> String {
    let s = Schema::from_file(tree.join(schema), Options { doc_mode: mode })
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

#[test]
fn qemu_10_0_2_dumps_equal_qemu_reference() {
    let tree = qemu_src::ensure("10.0.2").unwrap();
    for schema in SCHEMAS {
        let want =
            reference_dump(&tree, &tree, schema).unwrap_or_else(|e| panic!("reference: {e}"));
        let got = ours(&tree, schema, DocMode::Strict);
        assert!(got.len() > 10_000, "{schema}: dump too short");
        if got != want {
            let line = got.lines().zip(want.lines()).position(|(a, b)| a != b);
            panic!("{schema}: dump differs from QEMU's at line {line:?}");
        }
    }
}

#[test]
fn qemu_7_2_reads_with_lenient_docs_and_same_definitions() {
    let tree = qemu_src::ensure("7.2").unwrap();
    for schema in SCHEMAS {
        // QEMU 7.2's own front end, on its own schema.
        let want =
            reference_dump(&tree, &tree, schema).unwrap_or_else(|e| panic!("reference: {e}"));
        // The strict (10.0) rules reject 7.2's documentation…
        let strict = Schema::from_file(tree.join(schema), Options::default());
        assert!(
            strict.is_err(),
            "{schema}: 7.2's docs unexpectedly pass the 10.0 rules"
        );
        // …the lenient mode reads it, with the same definitions.
        let got = ours(&tree, schema, DocMode::Lenient);
        // 7.2's front end gave the built-in enum QType the C prefix QTYPE;
        // that is the front end's own definition, not the schema's.
        let want_defs =
            definitions(&want).replacen("enum QType\n    prefix QTYPE\n", "enum QType\n", 1);
        let got_defs = definitions(&got);
        assert!(got_defs.lines().count() > 400, "{schema}: dump too short");
        if got_defs != want_defs {
            let line = got_defs
                .lines()
                .zip(want_defs.lines())
                .position(|(a, b)| a != b);
            panic!("{schema}: definitions differ from QEMU 7.2's at line {line:?}");
        }
        // Every definition's documentation is kept.
        let docs = |d: &str| d.matches("\ndoc symbol=").count();
        assert_eq!(docs(&got), docs(&want), "{schema}: documented definitions");
    }
}

#[test]
fn project_demo_schema_dumps_equal_qemu_reference() {
    let tree = qemu_src::ensure("10.0.2").unwrap();
    let dir = qemu_src::workspace_root().join("schema/examples");
    let want =
        reference_dump(&tree, &dir, "demo.json").unwrap_or_else(|e| panic!("reference: {e}"));
    let got = ours(&dir, "demo.json", DocMode::Strict);
    assert_eq!(got, want);
}
