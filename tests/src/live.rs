//! Real QEMU processes for tests: started on a Unix socket in a temporary
//! folder, killed and cleaned up when dropped, however the test ends; and
//! a minimal line-based QMP exchange (replies matched by id, events kept).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

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
    let child = Command::new(program)
        .args(&args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program:?}: {e}"));
    Process { child, dir }
}

impl Process {
    /// The child process (for its stdio).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

/// Start `program` with `args`, where `{sock}` stands for the QMP socket
/// path in a fresh folder; connect to it and read the greeting.
pub fn start(program: &str, args: &[&str]) -> (Process, Qmp) {
    let process = spawn(program, args);
    let sock = process.sock();
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(e) if Instant::now() > deadline => {
                panic!("cannot connect to {}: {e}", sock.display())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut qmp = Qmp {
        reader: BufReader::new(stream.try_clone().expect("clone")),
        writer: stream,
        next_id: 0,
        events: Vec::new(),
        greeting: Value::Null,
    };
    qmp.greeting = qmp.read();
    (process, qmp)
}

/// One JSON message per line, replies matched by id.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    /// Events read while waiting for replies.
    pub events: Vec<Value>,
    /// The greeting.
    pub greeting: Value,
}

impl Qmp {
    pub fn read(&mut self) -> Value {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read from QEMU");
        assert!(n > 0, "QEMU closed the connection");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Run a command; the whole reply (`return` or `error`).
    pub fn execute(&mut self, name: &str, args: Option<Value>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"execute": name, "id": id});
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        writeln!(self.writer, "{msg}").expect("write to QEMU");
        loop {
            let reply = self.read();
            if reply.get("id") == Some(&json!(id)) {
                return reply;
            }
            assert!(reply.get("event").is_some(), "unexpected message: {reply}");
            self.events.push(reply);
        }
    }

    /// Read until an event satisfies `until` (the read time limit applies).
    pub fn wait_event(&mut self, until: impl Fn(&Value) -> bool) {
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

/// The commands of `schema` that start with `query-` and need no
/// argument.
pub fn argument_free_queries(schema: &qapi_parser::Schema) -> Vec<String> {
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
            if e.name.starts_with("query-") && !needs_args {
                out.push(e.name.clone());
            }
        }
    }
    out
}
