//! qmp-shell and vm-info against real QEMU: qemu-storage-daemon 10.0.2
//! and QEMU 7.2's qemu-system-x86_64 -machine pc.  The interactive test
//! runs the shell in a pseudo-terminal under tmux, types with tab
//! completion, and reads the screen.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use qapi_tests::live::{spawn, storage_daemon, Process};
use qapi_tests::qemu_bin::ensure_qemu72;

const SHELL: &str = env!("CARGO_BIN_EXE_qmp-shell");
const VM_INFO: &str = env!("CARGO_BIN_EXE_vm-info");

fn daemon() -> Process {
    let d = storage_daemon(&["--blockdev", "null-co,node-name=disk0,size=1073741824"]);
    wait_for(&d.sock());
    d
}

fn pc() -> Process {
    pc_with(&[
        "-name",
        "shelltest",
        "-uuid",
        "12345678-1234-1234-1234-123456789abc",
        "-smp",
        "2",
        "-blockdev",
        "null-co,node-name=disk0,size=1073741824",
        "-device",
        "ide-hd,drive=disk0,id=hd0",
        // A second monitor, to cause events while the shell is in use.
        "-qmp",
        "unix:{dir}/second.sock,server=on,wait=off",
    ])
}

/// QEMU 7.2's `-machine pc` with QMP on the process's socket and `extra`.
fn pc_with(extra: &[&str]) -> Process {
    let q = ensure_qemu72().unwrap();
    let mut args = q.firmware_args();
    for a in [
        "-machine",
        "pc",
        "-nodefaults",
        "-display",
        "none",
        "-qmp",
        "unix:{sock},server=on,wait=off",
    ]
    .iter()
    .chain(extra)
    {
        args.push(a.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = spawn(q.system_x86_64(), &args);
    wait_for(&d.sock());
    d
}

fn wait_for(sock: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Run qmp-shell with `input` on a pipe.
fn script(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(SHELL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn scripted_commands_bad_input_and_transactions() {
    qapi_tests::require_live!();
    let d = daemon();
    let sock = d.sock().display().to_string();
    let o = script(
        &[&sock],
        "query-version\n\
         nosuch-command\n\
         block-dirty-bitmap-add node=disk0 name=b0 bogus=1\n\
         block-dirty-bitmap-add node=disk0 name=b0 granularity=big\n\
         block-dirty-bitmap-add name=b0\n\
         {\"execute\": \"query-version\"\n\
         block-dirty-bitmap-add node=disk0 name=b0 granularity=65536 persistent=off\n\
         {\"execute\": \"query-named-block-nodes\", \"arguments\": {\"flat\": true}}\n\
         transaction(\n\
         block-dirty-bitmap-add node=disk0 name=t1\n\
         block-dirty-bitmap-add node=disk0 name=t2 granularity=131072\n\
         no-such-action x=1\n\
         )\n\
         help block-dirty-bitmap-add\n",
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("{\"return\":{\"package\""), "{out}");
    assert!(
        out.contains("error: unknown command 'nosuch-command'"),
        "{out}"
    );
    assert!(
        out.contains("unknown argument 'bogus'; expected: node: str, name: str"),
        "{out}"
    );
    assert!(
        out.contains("granularity: expected int, got \"big\""),
        "{out}"
    );
    assert!(out.contains("node: missing, expected str"), "{out}");
    assert!(out.contains("error: broken JSON"), "{out}");
    assert!(out.contains("unknown action 'no-such-action'"), "{out}");
    // The transaction went through with its two good actions.
    let d2 = qapi_types::blocking::Qmp::connect_unix(d.sock());
    drop(d2);
    let o = script(&[&sock], "query-named-block-nodes flat=true\n");
    let (out2, _) = text(&o);
    for b in ["\"b0\"", "\"t1\"", "\"t2\""] {
        assert!(out2.contains(b), "{b} missing: {out2}");
    }
    assert!(
        out.contains("Arguments:") && out.contains("granularity (optional): uint32"),
        "{out}"
    );
}

#[test]
fn the_server_going_away_ends_the_shell_cleanly() {
    qapi_tests::require_live!();
    let mut d = daemon();
    let sock = d.sock().display().to_string();
    let mut child = Command::new(SHELL)
        .arg(&sock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"query-version\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let _ = d.child().kill();
    let _ = d.child().wait();
    std::thread::sleep(Duration::from_millis(100));
    let _ = stdin.write_all(b"query-version\n");
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("closed"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Connecting to nothing is a message too.
    let o = script(&["/nonexistent/qmp.sock"], "");
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn hmp_mode_sizes_and_vm_info_on_qemu_7_2() {
    qapi_tests::require_live!();
    let d = pc();
    let sock = d.sock().display().to_string();
    let o = script(&["-H", &sock], "info version\ninfo name\n");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.starts_with("7.2."), "{out}");
    assert!(out.contains("shelltest"), "{out}");

    // size-typed members take suffixes.
    let o = script(
        &[&sock],
        "migrate-set-parameters max-bandwidth=1G\nquery-migrate-parameters\n",
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("\"max-bandwidth\":1073741824"), "{out}");

    let o = Command::new(VM_INFO).arg(&sock).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for want in [
        "QEMU       7.2.",
        "Run state  running",
        "Name       shelltest",
        "UUID       12345678-1234-1234-1234-123456789abc",
        "CPUs       2",
        "hd0",
        "disk0",
        "1.0 GiB",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
}

#[test]
fn vm_info_on_the_storage_daemon() {
    qapi_tests::require_live!();
    let d = daemon();
    let o = Command::new(VM_INFO).arg(d.sock()).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("QEMU       10.0.2"), "{out}");
    assert!(out.contains("CPUs       -"), "{out}");
    assert!(out.contains("disk0  null-co  1.0 GiB"), "{out}");
    let o = Command::new(VM_INFO)
        .arg("/nonexistent.sock")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

/// tmux, in a private server socket so nothing else is touched.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let o = Command::new("tmux")
            .args(["-S", &self.socket])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Run `cmd` in a 160×50 terminal, session `t`.
    fn start(&self, cmd: &str) {
        self.run(&["new-session", "-d", "-s", "t", "-x", "160", "-y", "50", cmd]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    fn wait_for(&self, want: &str) -> String {
        self.wait_until(want, |s| s.contains(want))
    }

    /// Wait until the screen satisfies `ok` (what is printed comes from
    /// two threads, so look again until it settles).
    fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what:?} never appeared:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

#[test]
fn interactive_completion_reply_event_and_history() {
    qapi_tests::require_live!();
    let d = pc();
    let history = d.dir.join("history");
    let tmux = Tmux {
        socket: d.dir.join("tmux.sock").display().to_string(),
    };
    let cmd = format!(
        "{SHELL} --history {} {}",
        history.display(),
        d.sock().display()
    );
    tmux.start(&cmd);
    tmux.wait_for("(QEMU)");
    // Tab completes a unique command name, then an argument name.
    tmux.run(&["send-keys", "-t", "t", "query-statu", "Tab"]);
    tmux.wait_for("(QEMU) query-status");
    tmux.run(&["send-keys", "-t", "t", "Enter"]);
    tmux.wait_for("\"status\":\"running\"");
    tmux.run(&["send-keys", "-t", "t", "human-monitor-command comm", "Tab"]);
    tmux.wait_for("human-monitor-command command-line=");
    tmux.run(&["send-keys", "-t", "t", "C-u"]);
    // A command that causes an event: the event shows up as well.
    tmux.run(&["send-keys", "-t", "t", "stop", "Enter"]);
    tmux.wait_until("the STOP event and the reply", |s| {
        s.contains("\"event\":\"STOP\"") && s.contains("{\"return\":{}}")
    });
    tmux.run(&["send-keys", "-t", "t", "cont", "Enter"]);
    tmux.wait_for("\"event\":\"RESUME\"");
    tmux.run(&["send-keys", "-t", "t", "C-l"]);
    // An event while a line is being typed: printed above it, and the
    // line stays as typed.
    tmux.run(&["send-keys", "-t", "t", "query-ver"]);
    tmux.wait_for("(QEMU) query-ver");
    let other = qapi_types::blocking::Qmp::connect_unix(d.dir.join("second.sock")).unwrap();
    other.execute_raw("stop", None).unwrap();
    tmux.wait_until("the event above the half-typed line", |s| {
        let last = s.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        s.contains("\"event\":\"STOP\"") && last.trim_end() == "(QEMU) query-ver"
    });
    other.execute_raw("cont", None).unwrap();
    tmux.run(&["send-keys", "-t", "t", "sion", "Enter"]);
    tmux.wait_for("\"qemu\":{\"major\":7");
    // Bad input keeps the shell going.
    tmux.run(&["send-keys", "-t", "t", "stop bogus=1", "Enter"]);
    tmux.wait_for("unknown argument 'bogus'");
    tmux.run(&["send-keys", "-t", "t", "C-d"]);
    // The shell writes its history as it exits.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = std::fs::read_to_string(&history).unwrap_or_default();
        if h.contains("query-status") && h.contains("cont") {
            break;
        }
        assert!(Instant::now() < deadline, "history not written: {h:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const QOM: &str = env!("CARGO_BIN_EXE_qom");
const WRAP: &str = env!("CARGO_BIN_EXE_qmp-shell-wrap");

fn run_tool(program: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(program).args(args).output().unwrap();
    let (out, err) = text(&o);
    assert!(!err.contains("panicked"), "{err}");
    (o.status.code(), out, err)
}

#[test]
fn qom_list_get_set_tree_on_qemu_7_2() {
    qapi_tests::require_live!();
    let d = pc_with(&["-object", "throttle-group,id=tg0,x-iops-total=100"]);
    let sock = d.sock().display().to_string();
    let (code, out, _) = run_tool(QOM, &[&sock, "list", "/objects/tg0"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("limits  (ThrottleLimits)"), "{out}");
    assert!(out.contains("type  (string)"), "{out}");
    let (_, out, _) = run_tool(QOM, &[&sock, "get", "/objects/tg0.x-iops-total"]);
    assert_eq!(out, "100\n");
    let (code, _, err) = run_tool(
        QOM,
        &[&sock, "set", "/objects/tg0.limits", "{\"iops-total\": 500}"],
    );
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = run_tool(QOM, &[&sock, "get", "/objects/tg0.x-iops-total"]);
    assert_eq!(out, "500\n");
    // The tree: objects indented under their parents, with their types.
    let (code, out, _) = run_tool(QOM, &[&sock, "tree", "/machine"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("/machine (pc-i440fx-7.2-machine)\n"),
        "{out}"
    );
    assert!(out.contains("\n  i440fx (i440FX-pcihost)\n"), "{out}");
    assert!(out.contains("\n    pci.0 (PCI)\n"), "{out}");
    let (code, out, _) = run_tool(QOM, &[&sock, "tree", "--values", "/objects"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("  tg0 (throttle-group)\n"), "{out}");
    assert!(out.contains("    @x-iops-total: 500  [int]\n"), "{out}");
    // Bad input ends in a message.
    let (code, _, err) = run_tool(QOM, &[&sock, "get", "/nope.x"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("qom: /nope.x: ") && err.contains("not found"),
        "{err}"
    );
    let (code, _, err) = run_tool(QOM, &[&sock, "get", "/machine"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is not PATH.PROPERTY"), "{err}");
    let (code, _, err) = run_tool(QOM, &[&sock, "set", "/objects/tg0.nosuch", "1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("has no property 'nosuch'"), "{err}");
    let (code, _, _) = run_tool(QOM, &[&sock, "frobnicate"]);
    assert_eq!(code, Some(2));
    drop(d);
    let (code, _, err) = run_tool(QOM, &[&sock, "list", "/"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot connect"), "{err}");
}

fn tmux_in(dir: &Path, cmd: &str) -> Tmux {
    // A server of its own each time (one being killed may still hold
    // its socket).
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let tmux = Tmux {
        socket: dir.join(format!("tmux-{n}.sock")).display().to_string(),
    };
    // The command's exit status stays on the screen.
    let cmd = format!("{cmd}; echo \"EXITED $?\"; sleep 60");
    tmux.start(&cmd);
    tmux
}

#[test]
fn guest_agent_shell_in_a_terminal() {
    qapi_tests::require_live!();
    let d = qapi_tests::live::guest_agent72();
    wait_for(&d.sock());
    let history = d.dir.join("history");
    let tmux = tmux_in(
        &d.dir,
        &format!(
            "{SHELL} --guest-agent --history {} {}",
            history.display(),
            d.sock().display()
        ),
    );
    tmux.wait_for("(QGA)");
    tmux.wait_for("Connected to qemu-ga 7.2");
    tmux.run(&["send-keys", "-t", "t", "guest-pin", "Tab"]);
    tmux.wait_for("(QGA) guest-ping");
    tmux.run(&["send-keys", "-t", "t", "Enter"]);
    tmux.wait_for("{\"return\":{}}");
    tmux.run(&["send-keys", "-t", "t", "guest-file-open mo", "Tab"]);
    tmux.wait_for("guest-file-open mode=");
    tmux.run(&["send-keys", "-t", "t", "r", "Enter"]);
    tmux.wait_for("error: guest-file-open.path: missing, expected str");
    tmux.run(&["send-keys", "-t", "t", "help guest-file-open", "Enter"]);
    tmux.wait_for("Open a file in the guest");
    // Disabled by the agent (-b): not offered.
    tmux.run(&["send-keys", "-t", "t", "guest-shutdown", "Enter"]);
    tmux.wait_for("unknown command 'guest-shutdown'");
    tmux.run(&["send-keys", "-t", "t", "guest-get-host-name", "Enter"]);
    tmux.wait_for("{\"return\":{\"host-name\":");
    tmux.run(&["send-keys", "-t", "t", "C-d"]);
    tmux.wait_for("EXITED 0");
    let h = std::fs::read_to_string(&history).unwrap_or_default();
    assert!(h.contains("guest-ping"), "{h:?}");
    assert!(!tmux.screen().contains("panicked"));
}

/// The QEMU pid qmp-shell-wrap reports.
fn wrapped_pid(screen: &str) -> i32 {
    let at = screen.find("(pid ").expect("the pid line") + 5;
    screen[at..]
        .split(')')
        .next()
        .unwrap()
        .parse()
        .expect("a pid")
}

fn gone(pid: i32) -> bool {
    // Ended (and reaped by the wrapper), or a zombie nobody waits for.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |s| s.split(' ').nth(2) == Some("Z"))
}

#[test]
fn wrapper_starts_and_stops_qemu_both_ways() {
    qapi_tests::require_live!();
    let q = ensure_qemu72().unwrap();
    let firmware = q.firmware_args().join(" ");
    let dir = qapi_tests::live::temp_dir();
    let qemu = format!(
        "{} {firmware} -machine none -nodefaults -display none",
        q.system_x86_64().display()
    );
    // The shell ends: QEMU is stopped.
    let tmux = tmux_in(&dir, &format!("{WRAP} {qemu}"));
    let s = tmux.wait_for("(QEMU)");
    let pid = wrapped_pid(&s);
    tmux.run(&["send-keys", "-t", "t", "query-status", "Enter"]);
    tmux.wait_for("\"status\":\"running\"");
    tmux.run(&["send-keys", "-t", "t", "C-d"]);
    let s = tmux.wait_for("EXITED 0");
    assert!(s.contains("the shell ended; QEMU stopped"), "{s}");
    assert!(gone(pid), "QEMU {pid} still runs");
    drop(tmux);
    // QEMU ends: the shell ends with a message.
    let tmux = tmux_in(&dir, &format!("{WRAP} {qemu}"));
    let s = tmux.wait_for("(QEMU)");
    let pid = wrapped_pid(&s);
    tmux.run(&["send-keys", "-t", "t", "quit", "Enter"]);
    let s = tmux.wait_for("EXITED 1");
    assert!(s.contains("the connection to QEMU is closed"), "{s}");
    assert!(s.contains("QEMU ended"), "{s}");
    assert!(gone(pid), "QEMU {pid} still runs");
    assert!(!s.contains("panicked"), "{s}");
    drop(tmux);
    // A program that cannot start is a message.
    let (code, _, err) = run_tool(WRAP, &["/nonexistent/qemu"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot start /nonexistent/qemu"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
