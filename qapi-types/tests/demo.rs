//! The README's first command (`cargo run --example demo`) stays
//! working: the example's own code, run against
//! `/usr/bin/qemu-storage-daemon` (10.0.2) and without any QEMU.

#[allow(dead_code)]
#[path = "../examples/demo.rs"]
mod demo;

fn run(daemon: Option<&std::path::Path>) -> String {
    let mut out = Vec::new();
    demo::run(&mut out, daemon)
        .unwrap_or_else(|e| panic!("demo failed: {e}\n{}", String::from_utf8_lossy(&out)));
    String::from_utf8(out).unwrap()
}

#[test]
fn with_the_storage_daemon() {
    qapi_tests::require_live!();
    let out = run(Some(std::path::Path::new("/usr/bin/qemu-storage-daemon")));
    for want in [
        "connected to QEMU 10.0.2",
        "blockdev-create: job create-file: created running waiting pending concluded; dismissed",
        "blockdev-create: job format: created running waiting pending concluded; dismissed",
        "blockdev-add: node disk0 (qcow2 on file0)",
        "  disk0  qcow2   67108864 bytes  qcow2",
        "  file0  file",
        "quit: the daemon stopped",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
}

#[test]
fn without_qemu() {
    let out = run(None);
    assert!(out.starts_with("No qemu-storage-daemon found"), "{out}");
    assert!(out.contains("// @generated"), "{out}");
    assert!(out.contains("pub struct"), "{out}");
}

#[test]
fn a_daemon_that_cannot_start_is_an_error() {
    let mut out = Vec::new();
    let e = demo::run(&mut out, Some(std::path::Path::new("/nonexistent/qsd"))).unwrap_err();
    assert!(
        e.to_string().contains("cannot start /nonexistent/qsd"),
        "{e}"
    );
}
