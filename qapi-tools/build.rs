//! Embed the vendored QMP schema (schema/qemu/qapi) so qmp-shell can show
//! its documentation without the source tree.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/qemu");
    let mut files: Vec<_> = std::fs::read_dir(root.join("qapi"))
        .expect("schema/qemu/qapi")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = String::from("&[\n");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        let abs = f.canonicalize().expect("a schema file");
        writeln!(
            out,
            "    (\"qapi/{name}\", include_str!({:?})),",
            abs.display()
        )
        .unwrap();
        println!("cargo:rerun-if-changed={}", f.display());
    }
    out.push(']');
    let dest = Path::new(&std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("schema_files.rs");
    std::fs::write(dest, out).expect("write schema_files.rs");
    println!("cargo:rerun-if-changed={}", root.join("qapi").display());
}
