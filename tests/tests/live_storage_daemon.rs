//! The generated QMP bindings against a real QEMU: qemu-storage-daemon
//! (QEMU 10.0.2, on every machine here). Every command of the storage
//! daemon's schema that starts with `query-` and needs no argument is
//! run, and each reply is decoded into its generated return type with
//! strict decoding on (an unknown member, enum value or branch fails).
//!
//! The daemon runs on a Unix socket in a temporary folder and is killed
//! when the test ends, however it ends.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qapi_parser::{EntityKind, Options, Schema};
use serde_json::{json, Value};

const DAEMON: &str = "/usr/bin/qemu-storage-daemon";

/// Strict decoding is global to the process: the tests take turns.
static STRICT_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The daemon and its folder, cleaned up on drop.
struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start() -> (Daemon, UnixStream) {
    // One folder per daemon: tests run in parallel.
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("qapi-live-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("qmp.sock");
    let child = Command::new(DAEMON)
        .arg("--chardev")
        .arg(format!(
            "socket,path={},server=on,wait=off,id=m",
            sock.display()
        ))
        .args(["--monitor", "chardev=m"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {DAEMON}: {e}"));
    let daemon = Daemon { child, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match UnixStream::connect(&sock) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                return (daemon, s);
            }
            Err(e) if Instant::now() > deadline => {
                panic!("cannot connect to {}: {e}", sock.display())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A minimal exchange for this test (the transport is a separate crate
/// module): one JSON message per line, replies matched by id.
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    /// Events read while waiting for replies.
    events: Vec<Value>,
}

impl Qmp {
    fn read(&mut self) -> Value {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read from QEMU");
        assert!(n > 0, "QEMU closed the connection");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    fn execute(&mut self, name: &str, args: Option<Value>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"execute": name, "id": id});
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        writeln!(self.writer, "{msg}").unwrap();
        loop {
            let reply = self.read();
            if reply.get("id") == Some(&json!(id)) {
                return reply;
            }
            assert!(reply.get("event").is_some(), "unexpected message: {reply}");
            self.events.push(reply);
        }
    }

    /// Read until an event satisfies `until` (10 s at most).
    fn wait_event(&mut self, until: impl Fn(&Value) -> bool) {
        if self.events.iter().any(&until) {
            return;
        }
        loop {
            let msg = self.read();
            assert!(msg.get("event").is_some(), "unexpected message: {msg}");
            let done = until(&msg);
            self.events.push(msg);
            if done {
                return;
            }
        }
    }
}

#[test]
fn every_query_command_decodes_strictly() {
    let _turn = STRICT_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let root = qapi_tests::qemu_src::workspace_root();
    let schema = Schema::from_file(
        root.join("schema/qemu/storage-daemon/qapi/qapi-schema.json"),
        Options::default(),
    )
    .unwrap_or_else(|f| panic!("{f}"));
    // Commands starting with query- that need no argument.
    let mut queries: Vec<String> = Vec::new();
    for e in &schema.entities {
        if let EntityKind::Command(c) = &e.kind {
            let needs_args = c.arg_type.is_some_and(|a| match &schema.entity(a).kind {
                EntityKind::Object(o) => {
                    o.members.iter().any(|m| !m.optional) || o.branches.is_some()
                }
                _ => true,
            });
            if e.name.starts_with("query-") && !needs_args {
                queries.push(e.name.clone());
            }
        }
    }
    assert!(queries.len() >= 10, "only {} query commands", queries.len());

    let (_daemon, stream) = start();
    let mut qmp = Qmp {
        reader: BufReader::new(stream.try_clone().unwrap()),
        writer: stream,
        next_id: 0,
        events: Vec::new(),
    };
    let greeting = qmp.read();
    let version = &greeting["QMP"]["version"]["qemu"];
    assert_eq!(version["major"], 10, "greeting: {greeting}");
    assert!(qmp
        .execute("qmp_capabilities", None)
        .get("return")
        .is_some());

    // Something for the block queries to report.
    let r = qmp.execute(
        "blockdev-add",
        Some(json!({"driver": "null-co", "node-name": "n0", "size": 1048576})),
    );
    assert!(r.get("return").is_some(), "{r}");

    qapi_types::set_strict(true);
    let (mut decoded, mut failed_in_qemu, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    for name in &queries {
        let reply = qmp.execute(name, None);
        match reply.get("return") {
            Some(value) => match qapi_types::qmp::commands::check_return(name, value.clone()) {
                Some(Ok(())) => decoded.push(name.clone()),
                Some(Err(e)) => problems.push(format!("{name}: {e}\n  reply: {value}")),
                None => problems.push(format!("{name}: not in the QMP bindings")),
            },
            None => failed_in_qemu.push(format!("{name}: {}", reply["error"])),
        }
    }
    qapi_types::set_strict(false);
    println!(
        "decoded strictly: {} of {} query commands",
        decoded.len(),
        queries.len()
    );
    for f in &failed_in_qemu {
        println!("QEMU answered with an error: {f}");
    }
    assert!(
        problems.is_empty(),
        "replies that did not decode strictly:\n{}",
        problems.join("\n")
    );
    assert!(
        decoded.len() * 2 >= queries.len(),
        "too few replies decoded: {decoded:?}"
    );
    assert!(
        decoded.iter().any(|n| n == "query-named-block-nodes"),
        "{decoded:?}"
    );
}

#[test]
fn job_events_decode_into_typed_events() {
    use qapi_types::qmp::events::{Event, EventMessage};
    use qapi_types::qmp::JobStatus;
    let _turn = STRICT_TURN.lock().unwrap_or_else(|e| e.into_inner());

    let (daemon, stream) = start();
    let mut qmp = Qmp {
        reader: BufReader::new(stream.try_clone().unwrap()),
        writer: stream,
        next_id: 0,
        events: Vec::new(),
    };
    qmp.read();
    qmp.execute("qmp_capabilities", None);
    let image = daemon.dir.join("new.img");
    let r = qmp.execute(
        "blockdev-create",
        Some(json!({"job-id": "j0", "options": {"driver": "file", "filename": image, "size": 1048576}})),
    );
    assert!(r.get("return").is_some(), "{r}");
    let status =
        |e: &Value| e["event"] == "JOB_STATUS_CHANGE" && e["data"]["status"] == "concluded";
    qmp.wait_event(status);
    let r = qmp.execute("job-dismiss", Some(json!({"id": "j0"})));
    assert!(r.get("return").is_some(), "{r}");
    qmp.wait_event(|e| e["event"] == "JOB_STATUS_CHANGE" && e["data"]["status"] == "null");

    qapi_types::set_strict(true);
    let mut seen = Vec::new();
    for raw in &qmp.events {
        let msg: EventMessage =
            serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{e}: {raw}"));
        match msg.event {
            Event::JobStatusChange(change) => {
                assert_eq!(change.id, "j0");
                seen.push(change.status);
            }
            other => panic!("not decoded into a known event: {other:?}"),
        }
    }
    qapi_types::set_strict(false);
    assert!(seen.contains(&JobStatus::Created), "{seen:?}");
    assert!(seen.contains(&JobStatus::Concluded), "{seen:?}");
    assert_eq!(seen.last(), Some(&JobStatus::Null), "{seen:?}");
    assert!(image.exists());
}
