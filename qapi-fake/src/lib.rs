//! A fake QEMU for tests of programs that use the bindings.
//!
//! It speaks QMP as QEMU does (greeting, `qmp_capabilities` negotiation
//! and its rules, ids echoed, `exec-oob`, events with timestamps) or the
//! guest-agent protocol, and checks every request against a schema the way
//! QEMU's QMP input visitor does, answering a bad one with the error class
//! and text QEMU sends (`Parameter 'file.driver' is missing`).  A request
//! that passes goes to the test's handler: typed ([`Fake::on`], the
//! return value checked against the schema too) or raw JSON
//! ([`Fake::on_raw`]); a command with no handler is answered with an error
//! that says so, never an invented success.  Faults ([`Fault`]) on demand
//! test a program's time limits and error handling.
//!
//! ```
//! use qapi_fake::Fake;
//! use qapi_types::qmp::commands::QueryStatus;
//! use qapi_types::qmp::{RunState, StatusInfo};
//!
//! let fake = Fake::qmp();
//! fake.on::<QueryStatus>(|_| Ok(StatusInfo { running: true, status: RunState::Running }));
//! let (stream, server) = fake.pair();
//! let qmp = qapi_types::blocking::Qmp::start(stream.into(), &Default::default()).unwrap();
//! assert!(qmp.execute(&QueryStatus {}).unwrap().running);
//! // The request went through the fake, recorded.
//! assert_eq!(server.handle().requests().last().unwrap()["execute"], "query-status");
//! ```

mod schema;
mod server;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

pub use qapi_types::QmpError;
pub use schema::{CommandInfo, Schema, SchemaError};
pub use server::Server;

/// The errors the fake sends, made as QEMU makes them: the clients'
/// [`QmpError`] with QEMU's classes (`use qapi_fake::QmpErrorExt` for
/// `QmpError::generic(…)`).
pub trait QmpErrorExt {
    /// A `GenericError`.
    fn generic(desc: impl Into<String>) -> Self;
    /// A `CommandNotFound`.
    fn command_not_found(desc: impl Into<String>) -> Self;
    /// The error as the wire's `error` member.
    fn to_json(&self) -> Value;
}

impl QmpErrorExt for QmpError {
    fn generic(desc: impl Into<String>) -> QmpError {
        QmpError {
            class: "GenericError".into(),
            desc: desc.into(),
        }
    }

    fn command_not_found(desc: impl Into<String>) -> QmpError {
        QmpError {
            class: "CommandNotFound".into(),
            desc: desc.into(),
        }
    }

    fn to_json(&self) -> Value {
        serde_json::json!({"class": self.class, "desc": self.desc})
    }
}

/// How many requests [`Fake::requests`] keeps (the oldest go first).
pub const MAX_RECORDED: usize = 100_000;

/// A raw handler: the request's arguments (checked against the schema)
/// to the reply's `return` value, or an error.
pub type RawHandler = Box<dyn FnMut(&Map<String, Value>) -> Result<Value, QmpError> + Send>;

/// Something the fake does wrong on purpose, to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Send the reply after this long.
    Delay(Duration),
    /// Never answer (the connection stays open and keeps working).
    NeverAnswer,
    /// Hold the reply back and send it after the next one.
    OutOfOrder,
    /// Send the first half of the reply, then hang up.
    CutReply,
    /// Send these bytes instead of the reply.
    Garbage(Vec<u8>),
    /// Hang up instead of answering.
    HangUp,
}

/// Which protocol the fake speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// QMP: greeting, negotiation, events.
    Qmp,
    /// The guest agent's protocol: no greeting, no negotiation;
    /// `guest-sync-delimited` is answered with a 0xFF byte first.
    GuestAgent,
}

/// The greeting's contents.
#[derive(Clone, Debug)]
pub struct Greeting {
    /// `(major, minor, micro)`.
    pub version: (i64, i64, i64),
    /// The `package` string.
    pub package: String,
    /// The capabilities offered (`oob`).
    pub capabilities: Vec<String>,
}

impl Default for Greeting {
    fn default() -> Greeting {
        Greeting {
            version: (10, 0, 2),
            package: "qapi-fake".into(),
            capabilities: vec!["oob".into()],
        }
    }
}

pub(crate) struct State {
    pub(crate) schema: Arc<Schema>,
    pub(crate) mode: Mode,
    pub(crate) greeting: Greeting,
    pub(crate) handlers: std::collections::HashMap<String, Arc<Mutex<RawHandler>>>,
    pub(crate) faults: VecDeque<(String, Fault)>,
    pub(crate) requests: VecDeque<Value>,
    /// Commands whose arguments QEMU does not visit as a whole
    /// (`'gen': false`: `device_add`): members beyond the schema's pass.
    pub(crate) open_arguments: Vec<String>,
    /// The connections that receive events (negotiated ones).
    pub(crate) listeners: Vec<(u64, server::Writer)>,
}

/// A fake QEMU being set up, and the handle tests keep to steer it
/// while it serves (clones share everything).
#[derive(Clone)]
pub struct Fake {
    pub(crate) state: Arc<Mutex<State>>,
}

pub(crate) fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bindings' QMP schema resolved for a Linux x86 build of QEMU (the
/// conditions a Debian `qemu-system-x86` meets).
pub fn bindings_qmp_schema() -> Schema {
    let v: Value = serde_json::from_str(qapi_types::qmp::SCHEMA_INFO).expect("SCHEMA_INFO is JSON");
    let v = qapi_types::introspect::resolve(&v, &linux_x86);
    Schema::from_introspection(&v).expect("the bindings' schema is consistent")
}

/// The bindings' guest-agent schema resolved for Linux.
pub fn bindings_qga_schema() -> Schema {
    let v: Value = serde_json::from_str(qapi_types::qga::SCHEMA_INFO).expect("SCHEMA_INFO is JSON");
    let v = qapi_types::introspect::resolve(&v, &linux_x86);
    Schema::from_introspection(&v).expect("the bindings' schema is consistent")
}

fn linux_x86(sym: &str) -> bool {
    matches!(
        sym,
        "CONFIG_LINUX"
            | "CONFIG_POSIX"
            | "TARGET_I386"
            | "CONFIG_KVM"
            | "CONFIG_VNC"
            | "CONFIG_SPICE"
            | "CONFIG_TPM"
            | "CONFIG_PIXMAN"
            | "CONFIG_SLIRP"
            | "CONFIG_REPLICATION"
            | "CONFIG_BLKIO"
            | "CONFIG_FDT"
            | "HAVE_VHOST_USER_BLK_SERVER"
            | "CONFIG_VHOST_USER_BLK_SERVER"
            | "CONFIG_FUSE"
    )
}

impl Fake {
    /// A QMP fake loaded with the bindings' schema (QEMU 10.2.0, Linux
    /// x86 conditions).
    pub fn qmp() -> Fake {
        Fake::with_schema(bindings_qmp_schema(), Mode::Qmp)
    }

    /// A guest-agent fake loaded with the bindings' guest-agent schema.
    pub fn guest_agent() -> Fake {
        Fake::with_schema(bindings_qga_schema(), Mode::GuestAgent)
    }

    /// A fake with any schema (e.g. a live QEMU's `query-qmp-schema`
    /// answer, read with [`Schema::from_introspection`]).
    pub fn with_schema(schema: Schema, mode: Mode) -> Fake {
        Fake {
            state: Arc::new(Mutex::new(State {
                schema: Arc::new(schema),
                mode,
                greeting: Greeting::default(),
                handlers: Default::default(),
                faults: VecDeque::new(),
                requests: VecDeque::new(),
                open_arguments: vec!["device_add".into()],
                listeners: Vec::new(),
            })),
        }
    }

    /// Set the greeting (version, package, capabilities).
    pub fn greeting(&self, greeting: Greeting) -> &Fake {
        lock(&self.state).greeting = greeting;
        self
    }

    /// The schema the fake checks against.
    pub fn schema(&self) -> Arc<Schema> {
        lock(&self.state).schema.clone()
    }

    /// Answer command `C` with `f`: its arguments decoded into `C`, its
    /// return value encoded and checked against the schema's return type
    /// (a mismatch is answered as an error naming the handler).  Replaces
    /// an earlier handler of the same command.
    pub fn on<C>(
        &self,
        mut f: impl FnMut(C) -> Result<C::Returns, QmpError> + Send + 'static,
    ) -> &Fake
    where
        C: qapi_types::Command + DeserializeOwned,
        C::Returns: Serialize,
    {
        self.on_raw(C::NAME, move |args| {
            let c: C = serde_json::from_value(Value::Object(args.clone())).map_err(|e| {
                QmpError::generic(format!(
                    "fake QEMU: the arguments of {} passed the schema but do not decode \
                     into the handler's type: {e}",
                    C::NAME
                ))
            })?;
            let ret = f(c)?;
            serde_json::to_value(ret).map_err(|e| {
                QmpError::generic(format!(
                    "fake QEMU: the return value of {} does not encode: {e}",
                    C::NAME
                ))
            })
        })
    }

    /// Answer command `name` with `f` (raw JSON).  Replaces an earlier
    /// handler of the same command.
    pub fn on_raw(
        &self,
        name: &str,
        f: impl FnMut(&Map<String, Value>) -> Result<Value, QmpError> + Send + 'static,
    ) -> &Fake {
        lock(&self.state)
            .handlers
            .insert(name.to_string(), Arc::new(Mutex::new(Box::new(f))));
        self
    }

    /// Let requests of `command` carry members beyond its schema
    /// arguments (QEMU's `'gen': false` commands; `device_add` is one by
    /// default).
    pub fn open_arguments(&self, command: &str) -> &Fake {
        lock(&self.state).open_arguments.push(command.to_string());
        self
    }

    /// Apply `fault` to the next request of `command` (`*`: of any
    /// command).  Faults queue up in the order given.
    pub fn fault(&self, command: &str, fault: Fault) -> &Fake {
        lock(&self.state)
            .faults
            .push_back((command.to_string(), fault));
        self
    }

    /// Every request received so far (parsed JSON, valid or not), in
    /// order; the last [`MAX_RECORDED`] of them.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.state).requests.iter().cloned().collect()
    }

    /// The names of the commands received so far, in order (requests
    /// with no command name left out).
    pub fn commands(&self) -> Vec<String> {
        lock(&self.state)
            .requests
            .iter()
            .filter_map(|r| r.get("execute").or_else(|| r.get("exec-oob")))
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect()
    }

    /// Send event `name` with `data` to every negotiated client, stamped
    /// with the current time.  `data` is checked against the event's
    /// schema type first (`Value::Null` for an event without data).
    pub fn emit_raw(&self, name: &str, data: Value) -> Result<(), QmpError> {
        let st = lock(&self.state);
        let ty = st
            .schema
            .event(name)
            .ok_or_else(|| QmpError::generic(format!("fake QEMU: the schema has no event {name}")))?
            .to_string();
        let empty = st
            .schema
            .info()
            .object(&ty)
            .is_some_and(qapi_types::introspect::ObjectInfo::is_empty);
        let mut msg = Map::new();
        msg.insert("event".into(), Value::String(name.into()));
        if !(empty && (data.is_null() || data == Value::Object(Map::new()))) {
            st.schema.check_value(&ty, &data).map_err(|e| {
                QmpError::generic(format!(
                    "fake QEMU: event {name}'s data does not fit the schema: {}",
                    e.desc
                ))
            })?;
            msg.insert("data".into(), data);
        }
        msg.insert("timestamp".into(), server::timestamp());
        let mut line = serde_json::to_vec(&Value::Object(msg)).expect("JSON");
        line.extend_from_slice(b"\r\n");
        for (_, w) in &st.listeners {
            w.write(&line);
        }
        Ok(())
    }

    /// Send a typed event (see [`Fake::emit_raw`]).
    pub fn emit<E: qapi_types::Event + Serialize>(&self, event: &E) -> Result<(), QmpError> {
        let data = serde_json::to_value(event).map_err(|e| {
            QmpError::generic(format!("fake QEMU: event {} does not encode: {e}", E::NAME))
        })?;
        self.emit_raw(E::NAME, data)
    }

    /// Serve on a Unix socket at `path` (created; removed when the
    /// [`Server`] is dropped), one thread per client.
    pub fn serve_unix(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<Server> {
        Server::unix(self.clone(), path.as_ref())
    }

    /// An in-process connection: the client's end of a socket pair, and
    /// the server serving the other end.
    pub fn pair(&self) -> (std::os::unix::net::UnixStream, Server) {
        Server::pair(self.clone())
    }
}
