//! The licences the crates declare cover what they ship.  Our own code
//! is MIT OR Apache-2.0; the crates that ship QEMU's schema text
//! (`qapi-qemu`, whose generated documentation is that text, and
//! `qapi-types`, which packages the schema files for `schema-source`)
//! add QEMU's licence, GPL-2.0-or-later: every vendored schema file
//! says so in its header, or has none, and QEMU's LICENSE puts a file
//! without licensing information under GPL-2.0-or-later.

use std::fs;
use std::path::{Path, PathBuf};

use qapi_tests::qemu_src::workspace_root;

const OURS: &str = "MIT OR Apache-2.0";
const WITH_QEMU_TEXT: &str = "(MIT OR Apache-2.0) AND GPL-2.0-or-later";

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

/// What a schema file's header says of its licence: `Some` SPDX id, or
/// `None` for no licensing information.
fn header_licence(text: &str) -> Option<String> {
    let head: String = text.lines().take(30).collect::<Vec<_>>().join("\n");
    if let Some(at) = head.find("SPDX-License-Identifier:") {
        let id = head[at + "SPDX-License-Identifier:".len()..]
            .split_whitespace()
            .next()
            .unwrap_or("");
        return Some(id.to_string());
    }
    let plain = head.replace("\n#", " ");
    if plain.contains("GNU GPL, version 2 or later") {
        return Some("GPL-2.0-or-later".into());
    }
    let lower = plain.to_lowercase();
    assert!(
        !(lower.contains("licen") || lower.contains("gpl") || lower.contains("copyright")),
        "a licence header this test does not know: {head}"
    );
    None
}

#[test]
fn every_shipped_schema_file_is_gpl_2_or_later() {
    let mut files = Vec::new();
    json_files(&workspace_root().join("schema/qemu"), &mut files);
    assert!(files.len() > 40, "{} schema files", files.len());
    let mut without = 0;
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        match header_licence(&text) {
            Some(id) => assert_eq!(id, "GPL-2.0-or-later", "{}", f.display()),
            None => without += 1,
        }
    }
    println!(
        "{} schema files: {} GPL-2.0-or-later by their header, {without} without one",
        files.len(),
        files.len() - without
    );
    // QEMU's own rule for those without one, and its licence text.
    let copying = fs::read_to_string(workspace_root().join("schema/qemu/COPYING")).unwrap();
    assert!(copying.contains("GNU GENERAL PUBLIC LICENSE") && copying.contains("Version 2"));
}

/// A package's `license`, as cargo reads it (a workspace value
/// resolved).
fn licence(package: &str) -> String {
    let root = workspace_root();
    let manifest = fs::read_to_string(root.join(package).join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.starts_with("license"))
        .unwrap_or_else(|| panic!("{package}: no license"));
    if line.contains("workspace = true") {
        let ws = fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let line = ws.lines().find(|l| l.starts_with("license")).unwrap();
        return line.split('"').nth(1).unwrap().to_string();
    }
    line.split('"').nth(1).unwrap().to_string()
}

#[test]
fn the_crates_that_ship_qemu_text_declare_its_licence() {
    for package in ["qapi-qemu", "qapi-types"] {
        assert_eq!(licence(package), WITH_QEMU_TEXT, "{package}");
    }
    // QEMU's licence text travels with each.
    for copying in ["qapi-qemu/COPYING", "qapi-types/schema/COPYING"] {
        let text = fs::read_to_string(workspace_root().join(copying)).unwrap();
        assert!(text.contains("GNU GENERAL PUBLIC LICENSE"), "{copying}");
    }
    // The generated bindings carry the schema's documentation text.
    let qmp = fs::read_to_string(workspace_root().join("qapi-qemu/src/generated/qmp.rs")).unwrap();
    assert!(qmp.contains("QEMU 10.2.0's qapi/qapi-schema.json"));
    for package in [
        "qapi-parser",
        "qapi-codegen",
        "qapi-runtime",
        "qapi-client",
        "qapi-fake",
        "qapi-tools",
    ] {
        assert_eq!(licence(package), OURS, "{package}");
    }
}
