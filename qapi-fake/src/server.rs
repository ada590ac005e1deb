//! Serving: accepting clients, framing their bytes into JSON values as
//! QEMU's JSON streamer does, answering each request, and the faults.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::{lock, Fake, Fault, Mode, QmpError, QmpErrorExt};

/// The largest message the fake reads (QEMU's streamer allows 64 MiB
/// tokens; a test has no use for more than this); a longer one is
/// answered with an error and skipped.
const MAX_MESSAGE: usize = 16 << 20;
/// QEMU's `MAX_NESTING`.
const MAX_NESTING: usize = 1024;

/// One client's socket, shared by its thread and the event sender.
#[derive(Clone)]
pub(crate) struct Writer(Arc<Mutex<UnixStream>>);

impl Writer {
    /// Write all of `bytes`; a client gone is not the fake's problem.
    pub(crate) fn write(&self, bytes: &[u8]) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = s.write_all(bytes);
    }

    fn hang_up(&self) {
        let s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = s.shutdown(Shutdown::Both);
    }
}

/// QEMU's event timestamp: seconds and microseconds since the epoch.
pub(crate) fn timestamp() -> Value {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    json!({"seconds": t.as_secs(), "microseconds": t.subsec_micros()})
}

/// A fake serving clients; stops (and disconnects them) when dropped.
pub struct Server {
    fake: Fake,
    stop: Arc<AtomicBool>,
    clients: Arc<Mutex<Vec<Writer>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: Option<JoinHandle<()>>,
    path: Option<PathBuf>,
}

static CONNECTION: AtomicU64 = AtomicU64::new(0);

impl Server {
    /// The fake being served (to steer it: handlers, faults, events,
    /// recorded requests).
    pub fn handle(&self) -> &Fake {
        &self.fake
    }

    /// The socket's path (for [`Fake::serve_unix`]).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub(crate) fn unix(fake: Fake, path: &Path) -> std::io::Result<Server> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let mut server = Server::new(fake);
        server.path = Some(path.to_path_buf());
        let (stop, clients, threads, fake) = (
            server.stop.clone(),
            server.clients.clone(),
            server.threads.clone(),
            server.fake.clone(),
        );
        server.accept = Some(std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let t = spawn_client(fake.clone(), conn, &clients);
                let mut threads = threads.lock().unwrap_or_else(|e| e.into_inner());
                // Finished clients' threads are joined as new ones come,
                // so 1,000 clients one after another hold no memory.
                threads.retain(|t| !t.is_finished());
                threads.push(t);
            }
        }));
        Ok(server)
    }

    pub(crate) fn pair(fake: Fake) -> (UnixStream, Server) {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let server = Server::new(fake);
        let t = spawn_client(server.fake.clone(), ours, &server.clients);
        server
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(t);
        (theirs, server)
    }

    fn new(fake: Fake) -> Server {
        Server {
            fake,
            stop: Arc::new(AtomicBool::new(false)),
            clients: Arc::new(Mutex::new(Vec::new())),
            threads: Arc::new(Mutex::new(Vec::new())),
            accept: None,
            path: None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let (Some(t), Some(p)) = (self.accept.take(), &self.path) {
            // Wake the accept loop.
            let _ = UnixStream::connect(p);
            let _ = t.join();
            let _ = std::fs::remove_file(p);
        }
        for c in self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            c.hang_up();
        }
        let threads: Vec<_> = self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

fn spawn_client(fake: Fake, conn: UnixStream, clients: &Arc<Mutex<Vec<Writer>>>) -> JoinHandle<()> {
    let reader = conn.try_clone();
    let writer = Writer(Arc::new(Mutex::new(conn)));
    {
        let mut c = clients.lock().unwrap_or_else(|e| e.into_inner());
        c.retain(|w| Arc::strong_count(&w.0) > 1);
        c.push(writer.clone());
    }
    std::thread::spawn(move || {
        if let Ok(reader) = reader {
            Connection::new(fake, writer.clone()).run(reader);
        }
        writer.hang_up();
    })
}

/// Splits a byte stream into JSON texts the way QEMU's streamer does:
/// a value ends when its brackets balance (outside strings); a scalar at
/// the top ends at white space.
#[derive(Default)]
struct Framer {
    buf: Vec<u8>,
    /// Where scanning resumes, and the scanner's state there.
    pos: usize,
    depth: usize,
    in_string: bool,
    escape: bool,
    start: Option<usize>,
}

enum Frame {
    Text(Vec<u8>),
    Error(String),
}

impl Framer {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn next(&mut self) -> Option<Frame> {
        while self.pos < self.buf.len() {
            let b = self.buf[self.pos];
            self.pos += 1;
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                    if self.depth == 0 {
                        return Some(self.take());
                    }
                }
                continue;
            }
            match b {
                // The guest agent's reset: whatever came before it is
                // dropped, silently (clients send it before
                // `guest-sync-delimited`).
                0xFF => {
                    let pos = self.pos;
                    self.reset_state();
                    self.buf.drain(..pos);
                    self.pos = 0;
                }
                b' ' | b'\t' | b'\r' | b'\n' if self.depth == 0 => {
                    if self.start.is_some() {
                        self.pos -= 1;
                        let f = self.take();
                        self.pos += 1;
                        self.drop_consumed();
                        return Some(f);
                    }
                    self.drop_consumed();
                }
                b'{' | b'[' => {
                    if self.depth == 0 && self.start.is_some() {
                        // A scalar ran into a bracket: it ends here.
                        self.pos -= 1;
                        return Some(self.take());
                    }
                    self.start.get_or_insert(self.pos - 1);
                    self.depth += 1;
                    if self.depth > MAX_NESTING {
                        self.reset();
                        return Some(Frame::Error("JSON nesting depth limit exceeded".into()));
                    }
                }
                b'}' | b']' => {
                    if self.depth == 0 {
                        self.drop_consumed();
                        return Some(Frame::Error(format!(
                            "JSON parse error, stray '{}'",
                            b as char
                        )));
                    }
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(self.take());
                    }
                }
                b'"' => {
                    self.start.get_or_insert(self.pos - 1);
                    self.in_string = true;
                }
                _ => {
                    self.start.get_or_insert(self.pos - 1);
                }
            }
        }
        if self.start.is_some_and(|s| self.buf.len() - s > MAX_MESSAGE) {
            self.reset();
            return Some(Frame::Error("JSON token size limit exceeded".into()));
        }
        if self.start.is_none() {
            self.drop_consumed();
        }
        None
    }

    fn take(&mut self) -> Frame {
        let start = self.start.take().unwrap_or(self.pos);
        let text = self.buf[start..self.pos].to_vec();
        self.drop_consumed();
        Frame::Text(text)
    }

    fn drop_consumed(&mut self) {
        let upto = self.start.unwrap_or(self.pos);
        self.buf.drain(..upto);
        self.pos -= upto;
        if let Some(s) = &mut self.start {
            *s -= upto;
        }
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.reset_state();
    }

    fn reset_state(&mut self) {
        self.depth = 0;
        self.in_string = false;
        self.escape = false;
        self.start = None;
    }
}

/// One client's session.
struct Connection {
    fake: Fake,
    writer: Writer,
    id: u64,
    negotiated: bool,
    oob: bool,
    /// A reply held back by [`Fault::OutOfOrder`].
    held: Option<Vec<u8>>,
}

/// What to do after answering.
enum Next {
    Go,
    HangUp,
}

impl Connection {
    fn new(fake: Fake, writer: Writer) -> Connection {
        let mode = lock(&fake.state).mode;
        Connection {
            fake,
            writer,
            id: CONNECTION.fetch_add(1, Ordering::SeqCst),
            negotiated: mode == Mode::GuestAgent,
            oob: false,
            held: None,
        }
    }

    fn run(mut self, mut reader: UnixStream) {
        let greeting = {
            let st = lock(&self.fake.state);
            (st.mode == Mode::Qmp).then(|| {
                let g = &st.greeting;
                json!({"QMP": {
                    "version": {"qemu": {"major": g.version.0, "minor": g.version.1, "micro": g.version.2},
                                "package": g.package},
                    "capabilities": g.capabilities}})
            })
        };
        if let Some(g) = greeting {
            self.send(&g);
        }
        let mut framer = Framer::default();
        let mut chunk = [0u8; 65536];
        'read: loop {
            let n = match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            framer.push(&chunk[..n]);
            while let Some(frame) = framer.next() {
                let next = match frame {
                    Frame::Error(e) => {
                        self.send(&json!({"error": QmpError::generic(e).to_json()}));
                        Next::Go
                    }
                    Frame::Text(t) => match serde_json::from_slice::<Value>(&t) {
                        Ok(v) => self.request(v),
                        Err(e) => {
                            let e = QmpError::generic(format!("JSON parse error, {e}"));
                            self.send(&json!({"error": e.to_json()}));
                            Next::Go
                        }
                    },
                };
                if let Next::HangUp = next {
                    break 'read;
                }
            }
        }
        let mut st = lock(&self.fake.state);
        st.listeners.retain(|(id, _)| *id != self.id);
    }

    fn send(&self, v: &Value) {
        let mut line = serde_json::to_vec(v).expect("JSON");
        line.extend_from_slice(b"\r\n");
        self.writer.write(&line);
    }

    /// Answer one request, applying a fault queued for it.
    fn request(&mut self, req: Value) -> Next {
        let name = req
            .get("execute")
            .or_else(|| req.get("exec-oob"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let fault = {
            let mut st = lock(&self.fake.state);
            // Bounded: a client that floods the fake costs no more.
            if st.requests.len() >= crate::MAX_RECORDED {
                st.requests.pop_front();
            }
            st.requests.push_back(req.clone());
            let i = st.faults.iter().position(|(c, _)| c == "*" || *c == name);
            i.and_then(|i| st.faults.remove(i)).map(|(_, f)| f)
        };
        let (reply, delimited) = match self.answer(&req) {
            Some(r) => r,
            None => return Next::Go,
        };
        let mut bytes = Vec::new();
        if delimited {
            bytes.push(0xFF);
        }
        bytes.extend(serde_json::to_vec(&reply).expect("JSON"));
        bytes.extend_from_slice(b"\r\n");
        match fault {
            None => {}
            Some(Fault::Delay(d)) => std::thread::sleep(d),
            Some(Fault::NeverAnswer) => return Next::Go,
            Some(Fault::OutOfOrder) => {
                if let Some(prev) = self.held.replace(bytes) {
                    self.writer.write(&prev);
                }
                return Next::Go;
            }
            Some(Fault::CutReply) => {
                self.writer.write(&bytes[..bytes.len() / 2]);
                return Next::HangUp;
            }
            Some(Fault::Garbage(g)) => {
                self.writer.write(&g);
                return Next::Go;
            }
            Some(Fault::HangUp) => return Next::HangUp,
        }
        self.writer.write(&bytes);
        if let Some(prev) = self.held.take() {
            self.writer.write(&prev);
        }
        Next::Go
    }

    /// The reply to `req` (None: no reply), and whether it is preceded
    /// by the guest agent's 0xFF delimiter.
    fn answer(&mut self, req: &Value) -> Option<(Value, bool)> {
        let Value::Object(dict) = req else {
            return Some((
                json!({"error": QmpError::generic("QMP input must be a JSON object").to_json()}),
                false,
            ));
        };
        let id = dict.get("id").cloned();
        let mut delimited = false;
        let result = self.dispatch(dict, &mut delimited);
        let mut reply = Map::new();
        match result {
            Ok(v) => {
                reply.insert("return".into(), v);
            }
            Err(e) => {
                reply.insert("error".into(), e.to_json());
            }
        }
        if let Some(id) = id {
            reply.insert("id".into(), id);
        }
        Some((Value::Object(reply), delimited))
    }

    /// `qmp_dispatch()` with the monitor's negotiation rules.
    fn dispatch(
        &mut self,
        dict: &Map<String, Value>,
        delimited: &mut bool,
    ) -> Result<Value, QmpError> {
        let r = self.dispatch_inner(dict, delimited);
        if !self.negotiated {
            // monitor_qmp_dispatch(): "Provide a more useful error message"
            if let Err(e) = &r {
                if e.class == "CommandNotFound" {
                    return Err(QmpError::command_not_found(
                        "Expecting capabilities negotiation with 'qmp_capabilities'",
                    ));
                }
            }
        }
        r
    }

    fn dispatch_inner(
        &mut self,
        dict: &Map<String, Value>,
        delimited: &mut bool,
    ) -> Result<Value, QmpError> {
        // qmp_dispatch_check_obj()
        let mut exec_key: Option<&str> = None;
        for (k, v) in dict {
            if k == "execute" || (k == "exec-oob" && self.oob) {
                if !v.is_string() {
                    return Err(QmpError::generic(format!(
                        "QMP input member '{k}' must be a string"
                    )));
                }
                if let Some(prev) = exec_key {
                    return Err(QmpError::generic(format!(
                        "QMP input member '{k}' clashes with '{prev}'"
                    )));
                }
                exec_key = Some(k);
            } else if k == "arguments" {
                if !v.is_object() {
                    return Err(QmpError::generic(
                        "QMP input member 'arguments' must be an object",
                    ));
                }
            } else if k != "id" {
                return Err(QmpError::generic(format!(
                    "QMP input member '{k}' is unexpected"
                )));
            }
        }
        let Some(exec_key) = exec_key else {
            return Err(QmpError::generic("QMP input lacks member 'execute'"));
        };
        let oob = exec_key == "exec-oob";
        let command = dict[exec_key].as_str().unwrap_or("").to_string();
        let st = lock(&self.fake.state);
        let info = st.schema.command(&command).cloned();
        let info = match info {
            Some(i) if self.negotiated || command == "qmp_capabilities" => i,
            _ => {
                return Err(QmpError::command_not_found(format!(
                    "The command {command} has not been found"
                )))
            }
        };
        if oob && !info.allow_oob {
            return Err(QmpError::generic(format!(
                "The command {command} does not support OOB"
            )));
        }
        let empty = Map::new();
        let args = dict
            .get("arguments")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        if st.open_arguments.contains(&command) {
            let declared: Map<String, Value> = args
                .iter()
                .filter(|(k, _)| {
                    st.schema
                        .info()
                        .object(&info.arg_type)
                        .is_some_and(|o| o.member(k).is_some())
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            st.schema.check_arguments(&command, &declared)?;
        } else {
            st.schema.check_arguments(&command, args)?;
        }
        let mode = st.mode;
        // The protocol's own command is never a test's to answer.
        let handler = match command.as_str() {
            "qmp_capabilities" => None,
            _ => st.handlers.get(&command).cloned(),
        };
        let schema = st.schema.clone();
        let offered = st.greeting.capabilities.clone();
        drop(st);
        if let Some(h) = handler {
            let ret = {
                let mut h = h.lock().unwrap_or_else(|e| e.into_inner());
                (*h)(args)?
            };
            // QEMU sends {} for a command that returns nothing.
            let nothing = schema
                .info()
                .object(&info.ret_type)
                .is_some_and(|o| o.members.is_empty());
            let ret = if ret.is_null() && nothing {
                json!({})
            } else {
                ret
            };
            schema.check_value(&info.ret_type, &ret).map_err(|e| {
                QmpError::generic(format!(
                    "fake QEMU: the handler of {command} returned a value the schema rejects: {}",
                    e.desc
                ))
            })?;
            if command == "guest-sync-delimited" {
                *delimited = true;
            }
            return Ok(ret);
        }
        match (mode, command.as_str()) {
            (Mode::Qmp, "qmp_capabilities") => {
                if self.negotiated {
                    return Err(QmpError::command_not_found(
                        "Capabilities negotiation is already complete, command ignored",
                    ));
                }
                let mut oob = false;
                for cap in args
                    .get("enable")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let cap = cap.as_str().unwrap_or("");
                    if !offered.iter().any(|o| o == cap) {
                        return Err(QmpError::generic(format!(
                            "Capability '{cap}' not available"
                        )));
                    }
                    oob |= cap == "oob";
                }
                self.negotiated = true;
                self.oob = oob;
                let mut st = lock(&self.fake.state);
                st.listeners.push((self.id, self.writer.clone()));
                Ok(json!({}))
            }
            (Mode::Qmp, "query-qmp-schema") => {
                Ok(lock(&self.fake.state).schema.introspection().clone())
            }
            (Mode::GuestAgent, "guest-sync-delimited") => {
                *delimited = true;
                Ok(args.get("id").cloned().unwrap_or(Value::Null))
            }
            (Mode::GuestAgent, "guest-sync") => Ok(args.get("id").cloned().unwrap_or(Value::Null)),
            _ => Err(QmpError::generic(format!(
                "fake QEMU: no handler for command {command} (the request is valid; \
                 give the fake a handler with Fake::on or Fake::on_raw)"
            ))),
        }
    }
}
