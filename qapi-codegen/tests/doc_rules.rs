//! Which documentation rules code generation reads a schema with: the
//! current ones, falling back to the lenient ones (with a note) for a
//! schema documented the way another QEMU release does it.

use std::path::PathBuf;

/// A schema file in a fresh folder under the target directory.
fn schema(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("doc_rules");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// QEMU 7.2's style: a `Note:` section, which QEMU 10.0 rejects.
const OLD_STYLE: &str = "\
##
# @Thing:
#
# A thing.
#
# @size: how big
#
# Note: an old-style note.
##
{ 'struct': 'Thing', 'data': { 'size': 'int' } }
";

#[test]
fn other_releases_documentation_falls_back_to_lenient_with_a_note() {
    let path = schema("old-style.json", OLD_STYLE);
    let out = qapi_codegen::Config::new().generate_string(&path).unwrap();
    assert!(out.text.contains("pub struct Thing"));
    assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
    assert!(
        out.notes[0].contains("lenient") && out.notes[0].contains("Note:"),
        "{}",
        out.notes[0]
    );
    // Asked for leniency: no note.
    let out = qapi_codegen::Config::new()
        .rules(qapi_codegen::Rules::Lenient)
        .generate_string(&path)
        .unwrap();
    assert!(out.notes.is_empty());
    // Asked for the current rules: an error that says where.
    let err = qapi_codegen::Config::new()
        .rules(qapi_codegen::Rules::Strict)
        .generate_string(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("old-style.json:8:"), "{err}");
}

#[test]
fn a_schema_both_rule_sets_reject_reports_its_real_problem() {
    let path = schema(
        "broken.json",
        &format!("{OLD_STYLE}{{ 'struct': 'Thing', 'data': {{}} }}\n"),
    );
    let err = qapi_codegen::Config::new()
        .generate_string(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("broken.json:11:"), "{err}");
    assert!(err.contains("Thing"), "{err}");
}

#[test]
fn current_documentation_needs_no_note() {
    let path = schema(
        "current.json",
        "##\n# @Thing:\n#\n# A thing.\n#\n# @size: how big\n##\n\
         { 'struct': 'Thing', 'data': { 'size': 'int' } }\n",
    );
    let out = qapi_codegen::Config::new().generate_string(&path).unwrap();
    assert!(out.notes.is_empty(), "{:?}", out.notes);
}
