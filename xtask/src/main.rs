//! `cargo xtask`: the project's developer commands.

mod bench_build;
mod older;
mod regen;

use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask COMMAND

  test               run every test, the live tier included (QAPI_LIVE=1
                     for every cargo it runs: tests that need QEMU or
                     sources from the network run, and fail when what they
                     need is missing): fetch QEMU's sources (Debian source
                     package, cached in target/qemu-src), then cargo test
                     (QEMU's qapi-schema suite, real-schema comparisons,
                     generated code, the checked-in bindings' freshness,
                     unit, property and robustness tests, live QEMU),
                     qapi-types' feature combinations (none, each alone,
                     default; all in the workspace's run),
                     clippy and rustdoc with warnings denied (generated
                     QEMU bindings included), a check that the generated
                     bindings have no doctests, the schema examples
                     (xtask examples), the registry dry run
                     (cargo publish --workspace --dry-run), and build
                     the benchmarks
  features           qapi-types' feature combinations (run by test): none
                     and each alone checked, the library and its unit
                     tests (those in a scratch copy without the
                     dev-dependencies, which turn qmp and qga on); the
                     default ones' unit tests run
  qemu-src VERSION   verify and extract QEMU's sources (10.2.0, 9.2.0, 8.2.0,
                     6.2.0 from ../shared/qemu; 10.0.2, 7.2 fetched);
                     prints the tree's path
  qemu-bin           fetch QEMU 7.2's qemu-system-x86_64 and qemu-ga from
                     Debian's packages, unpacked in target/qemu-7.2 (the
                     system's QEMU is left alone); prints the folder
  qemu-bin 10        fetch QEMU 10.0.2's qemu-system-x86_64 and its
                     firmware from bookworm-backports (private apt state),
                     unpacked in target/qemu-10.0; prints the binary
  fake-diff          the fake QEMU (qapi-fake) against QEMU 10.0.2 (the
                     storage daemon and the system emulator): schema-made
                     requests, verdicts compared; prints the differences
                     and how many of N requests were answered the same
  regen [--qemu-src DIR|TARBALL]
                     vendor QEMU's schema into schema/qemu (default: the
                     pinned 10.2.0 release) and regenerate the bindings in
                     qapi-qemu/src/generated; prints the API changes
  regen --check      fail when the checked-in bindings are stale
  regen --qemu-src DIR|TARBALL --into SCRATCH
                     regenerate into a scratch copy of qapi-runtime and
                     qapi-qemu and build it, leaving the repository alone
  type-differences [TREE]
                     list the reply and event members whose type in an
                     older release (schema/older) sends values the newest
                     schema's type (schema/qemu, or TREE's) does not take
  examples           QEMU's own schema examples decoded strictly with the
                     bindings (schema/qemu, and QEMU 6.2.0, 8.2.0, 9.2.0
                     from the release extracts in shared/qemu); prints
                     `schema examples: N decoded, M skipped, Q wrong in
                     QEMU's docs, K failed` per release
  bench              run the benchmarks (parser, codegen, transport)
  bench-transport    commands per second against qemu-storage-daemon:
                     raw loop, blocking and tokio clients, 8 in flight
  bench-scale        one tokio process on 200 qemu-storage-daemon monitors:
                     memory per connection, commands per second, and
                     every job event on its own connection
  bench-build        time a clean debug build of qapi-types beside the
                     incumbent qapi-qmp 0.15 + qapi-qga 0.13
  bench-decode       decode four real QEMU replies (captured from QEMU 10.0.2's
                     system emulator and storage daemon) with the
                     bindings and with the incumbent's serde-derived types
                     (tests/bench-decode, a workspace of its own)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["test"] => test(),
        ["qemu-src", version] => {
            qapi_tests::qemu_src::ensure(version).map(|p| println!("{}", p.display()))
        }
        ["qemu-bin"] => {
            qapi_tests::qemu_bin::ensure_qemu72().map(|q| println!("{}", q.root.display()))
        }
        ["examples"] => examples(),
        ["features"] => features(),
        ["qemu-bin", "10"] => qapi_tests::qemu_bin::ensure_qemu10()
            .map(|q| println!("{}", q.system_x86_64().display())),
        ["fake-diff"] => fake_diff(),
        ["bench"] => cargo(&["bench", "--workspace"]),
        ["bench-transport"] => cargo(&["bench", "-p", "qapi-tests", "--bench", "transport"]),
        ["bench-scale"] => cargo(&["bench", "-p", "qapi-tests", "--bench", "scale"]),
        ["bench-build"] => bench_build::bench_build(&qapi_tests::qemu_src::workspace_root()),
        ["bench-decode"] => bench_decode(),
        ["type-differences"] => {
            older::type_differences(&qapi_tests::qemu_src::workspace_root(), None)
        }
        ["type-differences", tree] => older::type_differences(
            &qapi_tests::qemu_src::workspace_root(),
            Some(std::path::Path::new(tree)),
        ),
        ["regen"] => regen::regen(&qapi_tests::qemu_src::workspace_root(), None),
        ["regen", "--qemu-src", src] => {
            regen::regen(&qapi_tests::qemu_src::workspace_root(), Some(src))
        }
        ["regen", "--check"] => regen::check(&qapi_tests::qemu_src::workspace_root()),
        ["regen", "--qemu-src", src, "--into", dir] => regen::regen_into(
            &qapi_tests::qemu_src::workspace_root(),
            src,
            std::path::Path::new(dir),
        ),
        ["-h" | "--help"] => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo` (the one running xtask) in the workspace, with `QAPI_LIVE=1`:
/// every test xtask runs is of the live tier (QEMU, qemu-ga, tmux,
/// sources from the network), and fails when what it needs is missing
/// (`tests/src/live.rs`).
fn cargo_command() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(qapi_tests::qemu_src::workspace_root())
        .env(qapi_tests::live::LIVE_VAR, "1");
    cmd
}

fn cargo(args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = cargo_command()
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed ({status})", args.join(" ")))
    }
}

/// `bench-decode`: the benchmark is a workspace of its own (it depends
/// on the incumbent), built in release mode in `target/bench-decode`.
fn bench_decode() -> Result<(), String> {
    let root = qapi_tests::qemu_src::workspace_root();
    let status = cargo_command()
        .current_dir(root.join("tests/bench-decode"))
        .args(["run", "-q", "--release"])
        .env("CARGO_TARGET_DIR", root.join("target/bench-decode"))
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the decode benchmark failed ({status})"))
    }
}

/// The differential test, its output shown (the differences, then
/// `N requests: M answered the same by the fake and QEMU`).  A test, not
/// a library call: xtask must not link the bindings, or a broken
/// regeneration could not be regenerated away.
fn fake_diff() -> Result<(), String> {
    cargo(&[
        "test",
        "-q",
        "-p",
        "qapi-tests",
        "--test",
        "fake_diff",
        "--",
        "--nocapture",
    ])
}

fn test() -> Result<(), String> {
    // That the checked-in bindings are what the generator makes of the
    // vendored schema is a test (xtask's own) in the run below.
    for version in ["10.2.0", "10.0.2", "9.2.0", "8.2.0", "7.2", "6.2.0"] {
        let tree = qapi_tests::qemu_src::ensure(version)?;
        eprintln!("xtask: QEMU {version} sources in {}", tree.display());
    }
    let q72 = qapi_tests::qemu_bin::ensure_qemu72()?;
    eprintln!("xtask: QEMU 7.2 binaries in {}", q72.root.display());
    let q10 = qapi_tests::qemu_bin::ensure_qemu10()?;
    eprintln!(
        "xtask: QEMU 10.0.2 system emulator in {}",
        q10.root.display()
    );
    // The way from one release to another: regenerate from QEMU 7.2 into
    // a scratch copy and build it.
    let root = qapi_tests::qemu_src::workspace_root();
    let tree72 = qapi_tests::qemu_src::ensure("7.2")?;
    regen::regen_into(
        &root,
        &tree72.display().to_string(),
        &root.join("target/regen-7.2"),
    )?;
    cargo(&["test", "--workspace"])?;
    features()?;
    examples()?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    std::env::set_var("RUSTDOCFLAGS", "-D warnings");
    cargo(&["doc", "--workspace", "--no-deps"])?;
    // The tokio client's pages too.
    cargo(&[
        "doc",
        "-p",
        "qapi-types",
        "--features",
        "tokio",
        "--no-deps",
    ])?;
    no_doctests("qapi-qemu-bindings-check")?;
    // Every published crate packages, and builds from its package alone,
    // in dependency order (the workspace's own crates from a local
    // registry cargo makes; only the crates.io index is read).
    cargo(&["publish", "--workspace", "--dry-run", "--allow-dirty"])?;
    // The benchmarks must keep compiling; running them is `cargo xtask bench`.
    cargo(&["bench", "--workspace", "--no-run"])
}

/// Each crate's optional features, as users may pick them.
const FEATURES: [(&str, &[&str]); 4] = [
    (
        "qapi-types",
        &["qmp", "qga", "tokio", "tracing", "schema-source"],
    ),
    ("qapi-client", &["qmp", "tokio", "tracing"]),
    ("qapi-qemu", &["qmp", "qga"]),
    ("qapi-runtime", &["introspect"]),
];

/// Every crate's feature combinations that users build: none and each
/// alone, the library checked; then the runtime-only crate's and the
/// facade's unit tests without features.  All features at once:
/// `cargo test --workspace` builds every crate with every feature
/// (qapi-tests asks for tokio, qapi-tools for tracing and
/// schema-source) and runs its tests, and clippy checks every target so.
fn features() -> Result<(), String> {
    for (package, features) in FEATURES {
        let combinations = std::iter::once("").chain(features.iter().copied());
        for f in combinations {
            let args = [
                "check",
                "-q",
                "-p",
                package,
                "--lib",
                "--no-default-features",
                "--features",
                f,
            ];
            eprintln!("xtask: cargo {}", args.join(" "));
            cargo(&args)?;
        }
    }
    cargo(&["test", "-q", "-p", "qapi-runtime", "--lib"])?;
    cargo(&[
        "test",
        "-q",
        "-p",
        "qapi-types",
        "--no-default-features",
        "--lib",
    ])?;
    cargo(&[
        "check",
        "-q",
        "-p",
        "qapi-types",
        "--no-default-features",
        "--lib",
        "--tests",
    ])
}

/// `cargo xtask examples`: the schema-examples test
/// (`tests/tests/schema_examples.rs`), showing its summary lines; the
/// whole output when it fails.  The xtask itself does not link the
/// bindings, so `regen` works even when they do not compile.
fn examples() -> Result<(), String> {
    let args = [
        "test",
        "-p",
        "qapi-tests",
        "--test",
        "schema_examples",
        "--",
        "--nocapture",
    ];
    eprintln!("xtask: cargo {}", args.join(" "));
    let out = cargo_command()
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("schema examples failed:\n{text}"));
    }
    for line in text.lines().filter(|l| l.contains("schema examples:")) {
        println!("{line}");
    }
    Ok(())
}

/// Schema examples must never run as doctests: the crate's doctest run
/// must find none.
fn no_doctests(package: &str) -> Result<(), String> {
    eprintln!("xtask: cargo test --doc -p {package} (expecting no doctests)");
    let out = cargo_command()
        .args(["test", "--doc", "-p", package])
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("running 0 tests") {
        return Err(format!(
            "{package}: doctests found or failed:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!("xtask: {package}: 0 doctests");
    Ok(())
}
