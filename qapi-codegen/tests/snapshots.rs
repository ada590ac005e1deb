//! The code generated for the project's own schemas, compared with the
//! checked-in snapshots in `tests/snapshots/`. After an intended change,
//! regenerate them with `QAPI_UPDATE_SNAPSHOTS=1 cargo test -p
//! qapi-codegen --test snapshots` and review the diff.

use std::path::Path;

const SCHEMAS: [&str; 4] = [
    "examples/demo.json",
    "tests/keywords.json",
    "tests/collisions.json",
    "tests/recursion.json",
];

fn generate(schema: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    qapi_codegen::Config::new()
        .generate_string(root.join(schema))
        .unwrap_or_else(|e| panic!("{schema}: {e}"))
        .text
}

#[test]
fn generated_code_matches_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let update = std::env::var_os("QAPI_UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    for schema in SCHEMAS {
        let name = Path::new(schema)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let path = dir.join(format!("{name}.rs"));
        let got = generate(schema);
        if update {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "generated code differs from {stale:?}; if intended, run QAPI_UPDATE_SNAPSHOTS=1 cargo test -p qapi-codegen --test snapshots"
    );
}

#[test]
fn generation_is_deterministic() {
    for schema in SCHEMAS {
        assert_eq!(generate(schema), generate(schema), "{schema}");
    }
}
