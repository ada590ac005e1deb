//! `cfg(qapi_live)` with `QAPI_LIVE=1`: the tests that use
//! `qapi-qemu-bindings-check` (whose build script generates its bindings
//! only then) compile their use of them under it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(qapi_live)");
    println!("cargo::rerun-if-env-changed=QAPI_LIVE");
    if std::env::var_os("QAPI_LIVE").is_some_and(|v| v == "1") {
        println!("cargo::rustc-cfg=qapi_live");
    }
}
