//! `cargo xtask bench-build`: a clean debug build of `qapi-types` (with
//! its default features, the QMP and QGA bindings; all four of our crates
//! it is made of: qapi-runtime, qapi-qemu, qapi-client and the facade)
//! beside the incumbent
//! `qapi-qmp` 0.15 + `qapi-qga` 0.13, in one run, in a scratch workspace
//! under `target/bench-build`. Only this measuring tool depends on the
//! incumbent.
//!
//! The dependencies both sides share (serde, serde_json, …) are built
//! first; then each side's own crates are cleaned and built once more,
//! timed. The incumbent generates its code in its build scripts, so its
//! time includes that.
//!
//! Both sides are built as a program that depends on them from the
//! registry builds them: without incremental compilation. Cargo uses it
//! only for path dependencies and workspace members, which `qapi-types`
//! is here and is not for its users; left on, it would add its own
//! bookkeeping to our side alone (it is printed apart, for reference).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn run(dir: &Path, args: &[&str]) -> Result<(), String> {
    run_with(dir, args, false)
}

/// `cargo ARGS` in `dir`, with incremental compilation on or off.
fn run_with(dir: &Path, args: &[&str], incremental: bool) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(&cargo)
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("CARGO_INCREMENTAL", if incremental { "1" } else { "0" })
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

/// CPU time (user + system, seconds) of this process's children that
/// were waited for: cargo and, through it, every rustc it ran. Linux
/// only (`/proc/self/stat`, in clock ticks of 1/100 s).
fn children_cpu() -> Result<f64, String> {
    let stat = fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
    // Fields after the command name (which may hold spaces, in parens).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("unexpected /proc/self/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17 of the line (1-based), 14
    // and 15 here (the first two fields are before the parenthesis).
    let tick = |i: usize| -> Result<f64, String> {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| "unexpected /proc/self/stat".to_string())
    };
    Ok((tick(13)? + tick(14)?) / 100.0)
}

/// One clean build of `build`'s own crates: (wall seconds, CPU seconds).
fn timed(dir: &Path, clean: &[&str], build: &str, incremental: bool) -> Result<(f64, f64), String> {
    let mut args = vec!["clean", "-q"];
    for c in clean {
        args.extend(["-p", c]);
    }
    run(dir, &args)?;
    let cpu = children_cpu()?;
    let start = Instant::now();
    run_with(dir, &["build", "-q", "-p", build], incremental)?;
    Ok((start.elapsed().as_secs_f64(), children_cpu()? - cpu))
}

/// Our side's crates, cleaned before each of its builds.
const OURS: &[&str] = &[
    "qapi-runtime",
    "qapi-qemu",
    "qapi-client",
    "qapi-types",
    "ours",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
    // Rounds alternate between the two sides, so a machine that gets
    // busier or quieter during the run weighs on both alike; CPU time is
    // reported beside wall time because it depends far less on what
    // else the machine runs (the two sides use the cores differently:
    // the incumbent builds two crates at once).
    const ROUNDS: usize = 3;
    let (mut ours, mut theirs, mut path_dep) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        eprintln!("xtask: round {round} of {ROUNDS}");
        ours.push(timed(&dir, OURS, "ours", false)?);
        theirs.push(timed(
            &dir,
            &["qapi-qmp", "qapi-qga", "qapi-codegen", "theirs"],
            "theirs",
            false,
        )?);
        path_dep.push(timed(&dir, OURS, "ours", true)?);
    }
    let wall = |v: &[(f64, f64)]| median(v.iter().map(|t| t.0).collect());
    let cpu = |v: &[(f64, f64)]| median(v.iter().map(|t| t.1).collect());
    let (ow, tw, oc, tc) = (wall(&ours), wall(&theirs), cpu(&ours), cpu(&theirs));
    let (pw, pc) = (wall(&path_dep), cpu(&path_dep));
    println!("clean debug build as a dependency from the registry builds it (no incremental");
    println!("compilation), same run, median of {ROUNDS} alternating rounds:");
    println!("                                     wall       CPU");
    println!("  qapi-types (qmp + qga, docs):    {ow:6.1} s  {oc:6.1} s");
    println!("  qapi-qmp 0.15 + qapi-qga 0.13:   {tw:6.1} s  {tc:6.1} s");
    println!(
        "  ratio ours / theirs:             {:6.2}    {:6.2}   (goal: at most 0.50)",
        ow / tw,
        oc / tc
    );
    // Each round's own ratio: a round's two builds ran closest in time.
    let rounds: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .map(|(o, t)| format!("{:.2}/{:.2}", o.0 / t.0, o.1 / t.1))
        .collect();
    println!("  each round's ratio (wall/CPU):   {}", rounds.join("  "));
    println!(
        "  for reference, qapi-types with incremental compilation (a path dependency): {pw:.1} s wall, {pc:.1} s CPU, {:.2} of theirs",
        pw / tw
    );
    Ok(())
}
