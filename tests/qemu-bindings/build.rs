//! Generate bindings for QEMU's real schemas (fetched into target/qemu-src
//! by the tests' helper) into OUT_DIR.

fn main() {
    const SCHEMAS: [(&str, &str); 3] = [
        ("qmp", "qapi/qapi-schema.json"),
        ("qga", "qga/qapi-schema.json"),
        ("storage_daemon", "storage-daemon/qapi/qapi-schema.json"),
    ];
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    for version in ["10.0.2", "7.2"] {
        let tree =
            qapi_tests::qemu_src::ensure(version).unwrap_or_else(|e| panic!("QEMU {version}: {e}"));
        for (name, schema) in SCHEMAS {
            let dir = out.join(format!("v{}", version.replace('.', "_")));
            let file = qapi_codegen::Config::new()
                .rules(qapi_codegen::Rules::Lenient)
                .out_dir(&dir)
                .generate(tree.join(schema))
                .unwrap_or_else(|e| panic!("{version} {schema}: {e}"));
            std::fs::rename(&file, dir.join(format!("{name}.rs"))).expect("rename");
        }
    }
}
