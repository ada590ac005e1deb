//! Real QEMU processes for tests: started on a Unix socket in a temporary
//! folder, killed and cleaned up when dropped, however the test ends.
//! Tests talk to them with `qapi_types`' own clients.
//!
//! # Tiers
//!
//! `cargo test` is fast and offline: a test that needs a QEMU process
//! (or `qemu-ga`, or tmux driving a tool) or sources fetched from the
//! network starts with [`require_live!`](crate::require_live), which
//! prints `skipped: no QEMU (set QAPI_LIVE=1)` and returns unless the
//! environment has `QAPI_LIVE=1`.  With it the test runs, and fails
//! when what it needs is missing: it never skips itself.  `cargo xtask
//! test` (the README's test command, and CI) sets `QAPI_LIVE=1`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable that asks for the live tier: `QAPI_LIVE=1`.
pub const LIVE_VAR: &str = "QAPI_LIVE";

/// Whether the environment asks for the live tier (`QAPI_LIVE=1`; any
/// other value, or none, does not).
pub fn asked() -> bool {
    std::env::var_os(LIVE_VAR).is_some_and(|v| v == "1")
}

/// Whether a test that needs QEMU runs: `true` with `QAPI_LIVE=1`;
/// otherwise prints `skipped: no QEMU (set QAPI_LIVE=1)` and is `false`.
pub fn live() -> bool {
    live_or_skip("no QEMU")
}

/// [`live`] for a test that needs something else the offline tier does
/// not have: the line printed is `skipped: {missing} (set QAPI_LIVE=1)`,
/// `missing` being, say, `needs QEMU 7.2's sources`.
pub fn live_or_skip(missing: &str) -> bool {
    if asked() {
        return true;
    }
    println!("skipped: {missing} (set {LIVE_VAR}=1)");
    false
}

/// [`live_or_skip`] for a test that uses the bindings of
/// `qapi-qemu-bindings-check`, which its build script generates (from
/// sources fetched from the network) only with `QAPI_LIVE=1`; the test's
/// use of them is under `#[cfg(qapi_live)]`, which this package's build
/// script sets in the same case.  With `QAPI_LIVE=1` in a program built
/// without it (run by hand, not by cargo, which rebuilds when the
/// variable changes) this panics rather than pass having run nothing.
pub fn qemu_bindings(missing: &str) -> bool {
    if !live_or_skip(missing) {
        return false;
    }
    if !cfg!(qapi_live) {
        panic!(
            "{LIVE_VAR}=1, but this test was built without it, so \
             qapi-qemu-bindings-check is empty: build it again with {LIVE_VAR}=1"
        );
    }
    true
}

/// Return from the test unless the live tier is asked for:
/// `require_live!()` for a test that needs QEMU ([`live`]),
/// `require_live!("needs QEMU 7.2's sources")` for one that needs
/// something else ([`live_or_skip`]), and `require_live!(bindings,
/// "…")` for one that uses `qapi-qemu-bindings-check` ([`qemu_bindings`]).
#[macro_export]
macro_rules! require_live {
    () => {
        if !$crate::live::live() {
            return;
        }
    };
    (bindings, $missing:expr) => {
        if !$crate::live::qemu_bindings($missing) {
            return;
        }
    };
    ($missing:expr) => {
        if !$crate::live::live_or_skip($missing) {
            return;
        }
    };
}

/// A QEMU process and its folder, cleaned up on drop.
pub struct Process {
    child: Child,
    pub dir: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Process {
    /// The QMP socket's path (`{sock}` in the arguments).
    pub fn sock(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }
}

/// A fresh temporary folder, removed by the [`Process`] that uses it.
pub fn temp_dir() -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("qapi-live-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary folder");
    dir
}

/// Start `program` with `args` in a fresh folder, where `{sock}` stands
/// for the QMP socket's path and `{dir}` for the folder.  The socket may
/// not exist yet when this returns; the clients retry connecting.
pub fn spawn(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Process {
    spawn_in(temp_dir(), program, args, Stdio::null(), Stdio::null())
}

/// [`spawn`] in `dir`, with the given stdin and stdout.
pub fn spawn_in(
    dir: PathBuf,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    stdin: Stdio,
    stdout: Stdio,
) -> Process {
    let sock = dir.join("qmp.sock");
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("{sock}", &sock.display().to_string())
                .replace("{dir}", &dir.display().to_string())
        })
        .collect();
    let program = program.as_ref();
    // Run in the folder: whatever a command writes to a relative path
    // (a test's generated file names) stays inside it.
    let child = Command::new(program)
        .current_dir(&dir)
        .args(&args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program:?}: {e}"));
    Process { child, dir }
}

/// `/usr/bin/qemu-storage-daemon` (QEMU 10.0.2) with its monitor on the
/// process's socket, and `extra` arguments.
pub fn storage_daemon(extra: &[&str]) -> Process {
    let mut args = vec![
        "--chardev",
        "socket,path={sock},server=on,wait=off,id=m",
        "--monitor",
        "chardev=m",
    ];
    args.extend_from_slice(extra);
    spawn("/usr/bin/qemu-storage-daemon", &args)
}

impl Process {
    /// The child process (for its stdio).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

/// The commands of `schema` that start with `query-` and need no
/// argument.
pub fn argument_free_queries(schema: &qapi_parser::Schema) -> Vec<String> {
    argument_free(schema, |name| name.starts_with("query-"))
}

/// The commands of `schema` whose name `keep` accepts and that need no
/// argument (every member of their arguments is optional).
pub fn argument_free(schema: &qapi_parser::Schema, keep: impl Fn(&str) -> bool) -> Vec<String> {
    use qapi_parser::EntityKind;
    let mut out = Vec::new();
    for e in &schema.entities {
        if let EntityKind::Command(c) = &e.kind {
            let needs_args = c.arg_type.is_some_and(|a| match &schema.entity(a).kind {
                EntityKind::Object(o) => {
                    o.members.iter().any(|m| !m.optional) || o.branches.is_some()
                }
                _ => true,
            });
            if keep(&e.name) && !needs_args {
                out.push(e.name.clone());
            }
        }
    }
    out
}

/// QEMU 7.2's `qemu-ga` (unpacked by [`crate::qemu_bin::ensure_qemu72`])
/// on the host, listening on the process's socket.  The commands that
/// would shut down or suspend this machine are disabled (`-b`): the
/// agent answers them with an error, which is exactly what a
/// `success-response: false` command's caller must never wait for.
pub fn guest_agent72() -> Process {
    let q = crate::qemu_bin::ensure_qemu72().unwrap_or_else(|e| panic!("QEMU 7.2: {e}"));
    spawn(
        q.guest_agent(),
        &[
            "--method",
            "unix-listen",
            "--path",
            "{sock}",
            "--pidfile",
            "{dir}/qga.pid",
            "--statedir",
            "{dir}",
            "-b",
            "guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid",
        ],
    )
}

/// QEMU 10.0.2's `qemu-system-x86_64` (unpacked by
/// [`crate::qemu_bin::ensure_qemu10`]) as a q35 machine with no devices,
/// no display and TCG, QMP on the process's socket, and `extra`
/// arguments.  Virtio NICs get no option ROM (`romfile=`): there is no
/// iPXE among the unpacked packages.
pub fn system_emulator10(extra: &[&str]) -> Process {
    system_emulator10_in(temp_dir(), extra)
}

/// [`system_emulator10`] in `dir` (a [`temp_dir`] the caller has put
/// files in, such as a disk image).
pub fn system_emulator10_in(dir: PathBuf, extra: &[&str]) -> Process {
    let q = crate::qemu_bin::ensure_qemu10().unwrap_or_else(|e| panic!("QEMU 10.0.2: {e}"));
    let mut args = q.firmware_args();
    for a in [
        "-machine",
        "q35",
        "-nodefaults",
        "-display",
        "none",
        "-accel",
        "tcg",
        "-global",
        "virtio-net-pci.romfile=",
        "-qmp",
        "unix:{sock},server=on,wait=off",
    ] {
        args.push(a.into());
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_in(dir, q.system_x86_64(), &args, Stdio::null(), Stdio::null())
}

/// Starting QEMU 7.2's emulator (here, not in `qemu_bin.rs`, which only
/// unpacks: the live tier depends on the fetchers, not the reverse).
impl crate::qemu_bin::Qemu72 {
    /// Start `qemu-system-x86_64 -machine MACHINE -nodefaults -display
    /// none` with QMP on the process's socket.
    pub fn spawn_system(&self, machine: &str) -> Process {
        let mut args = self.firmware_args();
        for a in [
            "-machine",
            machine,
            "-nodefaults",
            "-display",
            "none",
            "-qmp",
            "unix:{sock},server=on,wait=off",
        ] {
            args.push(a.into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        spawn(self.system_x86_64(), &args)
    }
}
