//! With feature `schema-source`: list the QAPI schema files in `schema/`
//! (the vendored `schema/qemu` of the repository, a symbolic link there
//! and real files in the package) as `include_str!`s, for
//! `qapi_types::schema_source`.  Without it, nothing is read.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_SCHEMA_SOURCE").is_none() {
        return;
    }
    let root = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
        .join("schema");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    for (dir, dest) in [("qapi", "schema_qmp.rs"), ("qga", "schema_qga.rs")] {
        let folder = root.join(dir);
        println!("cargo:rerun-if-changed={}", folder.display());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut text = String::from("&[\n");
        for f in &files {
            let name = f.file_name().expect("a file name").to_string_lossy();
            writeln!(
                text,
                "    ({:?}, include_str!({:?})),",
                format!("{dir}/{name}"),
                f.display()
            )
            .expect("write to a String");
            println!("cargo:rerun-if-changed={}", f.display());
        }
        text.push(']');
        std::fs::write(out.join(dest), text).expect("write to OUT_DIR");
    }
}
