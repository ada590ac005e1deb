//! `cargo xtask bench-build`: a clean debug build of `qapi-types` (with
//! its default features, the QMP and QGA bindings) beside the incumbent
//! `qapi-qmp` 0.15 + `qapi-qga` 0.13, in one run, in a scratch workspace
//! under `target/bench-build`. Only this measuring tool depends on the
//! incumbent.
//!
//! The dependencies both sides share (serde, serde_json, …) are built
//! first; then each side's own crates are cleaned and built once more,
//! timed. The incumbent generates its code in its build scripts, so its
//! time includes that.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn run(dir: &Path, args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(&cargo)
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo {} failed in {}",
            args.join(" "),
            dir.display()
        ))
    }
}

fn timed(dir: &Path, clean: &[&str], build: &str) -> Result<f64, String> {
    let mut args = vec!["clean", "-q"];
    for c in clean {
        args.extend(["-p", c]);
    }
    run(dir, &args)?;
    let start = Instant::now();
    run(dir, &["build", "-q", "-p", build])?;
    Ok(start.elapsed().as_secs_f64())
}

pub fn bench_build(root: &Path) -> Result<(), String> {
    let dir = root.join("target/bench-build");
    for sub in ["ours/src", "theirs/src"] {
        fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
    }
    let types = root.join("qapi-types");
    let write = |p: &str, text: &str| fs::write(dir.join(p), text).map_err(|e| e.to_string());
    write(
        "Cargo.toml",
        "[workspace]\nresolver = \"2\"\nmembers = [\"ours\", \"theirs\"]\n",
    )?;
    write(
        "ours/Cargo.toml",
        &format!(
            "[package]\nname = \"ours\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\nqapi-types = {{ path = {:?} }}\n",
            types.display().to_string()
        ),
    )?;
    write(
        "theirs/Cargo.toml",
        "[package]\nname = \"theirs\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\nqapi-qmp = \"=0.15\"\nqapi-qga = \"=0.13\"\n",
    )?;
    write("ours/src/lib.rs", "pub use qapi_types::{qga, qmp};\n")?;
    write(
        "theirs/src/lib.rs",
        "pub use qapi_qga as qga;\npub use qapi_qmp as qmp;\n",
    )?;
    // Warm: every dependency built once.
    eprintln!("xtask: building both once (dependencies)");
    run(&dir, &["build", "-q", "-p", "ours", "-p", "theirs"])?;
    let ours = timed(&dir, &["qapi-types", "ours"], "ours")?;
    let theirs = timed(
        &dir,
        &["qapi-qmp", "qapi-qga", "qapi-codegen", "theirs"],
        "theirs",
    )?;
    println!("clean debug build, same run:");
    println!("  qapi-types (qmp + qga, docs):      {ours:6.1} s");
    println!("  qapi-qmp 0.15 + qapi-qga 0.13:     {theirs:6.1} s");
    println!(
        "  ratio ours / theirs:               {:6.2} (goal: at most 0.50)",
        ours / theirs
    );
    Ok(())
}
