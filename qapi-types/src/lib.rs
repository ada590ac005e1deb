//! QEMU's QMP and guest-agent protocols in Rust: typed bindings
//! generated from QEMU's schema ([`qmp`], [`qga`]), the runtime generated
//! code builds on ([`Command`], [`Event`]), and a thin transport: a
//! blocking client ([`blocking`], std only) and a tokio client
//! (`qapi_types::tokio`, feature `tokio`) on one protocol core.
//!
//! # Guide
//!
//! ## Connect
//!
//! Start QEMU with a QMP socket, e.g. `qemu-system-x86_64 -qmp
//! unix:/run/vm.sock,server=on,wait=off` or `qemu-storage-daemon
//! --chardev socket,path=/run/sd.sock,server=on,wait=off,id=m --monitor
//! chardev=m`, then:
//!
//! ```no_run
//! use qapi_types::blocking::Qmp;
//! use qapi_types::qmp::commands::{QueryStatus, Stop};
//!
//! # fn main() -> qapi_types::Result<()> {
//! let qmp = Qmp::connect_unix("/run/vm.sock")?;
//! println!("connected to {}", qmp.greeting());
//! let status = qmp.execute(&QueryStatus {})?; // a qmp::StatusInfo
//! println!("running: {}", status.running);
//! qmp.execute(&Stop {})?;
//! # Ok(()) }
//! ```
//!
//! Connecting reads the greeting and negotiates capabilities, enabling
//! out-of-band execution when QEMU offers it.  Other ways in: TCP
//! ([`blocking::Qmp::connect_tcp`]), a QEMU started with `-qmp stdio`
//! ([`blocking::Stream::from_child`] then [`blocking::Qmp::start`]), QEMU
//! dialling out to you with `server=off` ([`blocking::Qmp::accept`]), or
//! any socket you opened yourself (`Qmp::start(stream.into(), &opts)`).
//!
//! ## Execute
//!
//! Every command of the schema is a type in `qmp::commands`; its fields
//! are the arguments, [`Command::Returns`] is what `execute` gives back.
//! A [`blocking::Qmp`] is `Clone + Send + Sync`, and the tokio
//! `tokio::Qmp` is `Clone`: call it from many threads or
//! tasks at once and every reply goes to its caller.
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn f() -> qapi_types::Result<()> {
//! use qapi_types::qmp::commands::QueryNamedBlockNodes;
//! let qmp = qapi_types::tokio::Qmp::connect_unix("/run/sd.sock").await?;
//! let (a, b) = tokio::join!(
//!     qmp.execute(&QueryNamedBlockNodes { flat: Some(true) }),
//!     qmp.execute_raw("query-jobs", None), // by name, JSON in and out
//! );
//! println!("{} nodes, jobs: {}", a?.len(), b?);
//! let text = qmp.human_command("info version").await?; // HMP
//! # Ok(()) }
//! ```
//!
//! `execute_oob` sends an `allow-oob` command with `exec-oob`;
//! `execute_with_fds` attaches file descriptors (SCM_RIGHTS) to the same
//! message, for `getfd` and `add-fd`.
//!
//! ## Events
//!
//! Each subscriber gets every event (or those its filter takes) in a
//! bounded queue of its own; a subscriber that falls behind loses the
//! oldest and is told how many with [`EventItem::Lagged`], and never
//! holds up replies or other subscribers.  Decode with the generated
//! `qmp::events::Event::decode`, or one event type with
//! [`RawEvent::decode`].
//!
//! ```no_run
//! use qapi_types::qmp::events::Event;
//! use qapi_types::EventItem;
//! # fn f(qmp: qapi_types::blocking::Qmp) -> qapi_types::Result<()> {
//! let jobs = qmp.subscribe_filter(|e| e.name == "JOB_STATUS_CHANGE");
//! loop {
//!     match jobs.recv()? {
//!         EventItem::Event(raw) => match Event::decode(&raw.name, raw.data) {
//!             Event::JobStatusChange(e) => println!("{}: {:?}", e.id, e.status),
//!             other => println!("{}", other.name()),
//!         },
//!         EventItem::Lagged(n) => eprintln!("missed {n} events"),
//!     }
//! }
//! # }
//! ```
//!
//! ## The guest agent
//!
//! [`blocking::GuestAgent`] (and `tokio::GuestAgent`)
//! talk to `qemu-ga`: no greeting, no negotiation, one command at a
//! time.  Before its first command, and after any time limit passes, the
//! client resynchronises (a 0xFF byte and `guest-sync-delimited` with a
//! random id, skipping everything up to the agent's 0xFF), so stale
//! replies never reach you.  Commands whose schema says `success-response:
//! false` (`guest-shutdown`, `guest-suspend-*`) return once sent.
//!
//! ```no_run
//! use qapi_types::blocking::GuestAgent;
//! use qapi_types::qga::commands::GuestInfo;
//! # fn main() -> qapi_types::Result<()> {
//! let ga = GuestAgent::connect_unix("/run/vm-agent.sock")?;
//! println!("agent {}", ga.execute(&GuestInfo {})?.version);
//! # Ok(()) }
//! ```
//!
//! ## Errors and time limits
//!
//! Every call ends in a value or an [`Error`]: `Qmp` (QEMU's own error,
//! with its `class` and `desc`), `Timeout` (which step, which limit),
//! `Disconnected`, `Protocol` (garbage or an unexpected message),
//! `TooLarge`, `Decode` (the reply's JSON kept), `Io`, `Unsupported`.
//! [`Error::is_fatal`] tells whether the connection is over; to go on,
//! connect again (a fresh client on the same address negotiates anew).
//! Calls in flight fail at once when the connection ends, and
//! subscribers see the end.
//!
//! [`Options`] sets the limits: connect and greeting (5 s), each command
//! (30 s; a reply that comes later is dropped), the largest message
//! (256 MiB), each subscriber's queue (1024 events), whether to enable
//! `oob`, and [`IdPolicy`].
//!
//! ```no_run
//! use std::time::Duration;
//! use qapi_types::{blocking::Qmp, Error, Options};
//! use qapi_types::qmp::commands::QueryVersion;
//! # fn main() -> qapi_types::Result<()> {
//! let opts = Options::new().command_timeout(Some(Duration::from_secs(2)));
//! let qmp = Qmp::connect_unix_with("/run/vm.sock", &opts)?;
//! match qmp.execute(&QueryVersion {}) {
//!     Ok(v) => println!("QEMU {}.{}", v.qemu.major, v.qemu.minor),
//!     Err(Error::Qmp(e)) => eprintln!("QEMU said no: {}", e.desc),
//!     Err(e) if e.is_fatal() => eprintln!("connection lost: {e}"),
//!     Err(e) => eprintln!("{e}"),
//! }
//! # Ok(()) }
//! ```
//!
//! ## Tracing
//!
//! With the feature `tracing`, the clients report through the
//! [`tracing`](https://docs.rs/tracing) crate (install any subscriber;
//! `qmp-shell -v` shows it):
//!
//! | what | level | target |
//! |---|---|---|
//! | a span per command: `qmp.command{name, id}`, then an event with `outcome` and `elapsed_us` | DEBUG (the event WARN when the connection failed) | `qapi_types::command` |
//! | the raw JSON sent and received (secrets redacted) | TRACE | `qapi_types::wire` |
//! | each event received | DEBUG | `qapi_types::event` |
//! | a subscriber that lagged, with how many events it lost | WARN | `qapi_types::event` |
//! | connection state: greeting read, capabilities negotiated, closed | INFO (WARN for a close on an error) | `qapi_types::connection` |
//! | a reply that did not decode, with its JSON | WARN | `qapi_types::command` |
//!
//! Secrets are kept out, whatever the level.
//! Before any JSON is logged:
//! - the whole arguments of commands that exist to carry a secret are
//!   replaced by `"<redacted>"`: `set_password`, `change-vnc-password`,
//!   `guest-set-user-password`, and `object-add` of a secret object
//!   (`qom-type` `secret` or `secret_keyring`: every member but
//!   `qom-type` and `id`);
//! - `qom-set` of a property whose name says secret (as below) has its
//!   `value` redacted;
//! - a `human-monitor-command` whose command line mentions a password
//!   or a secret has its command line redacted;
//! - anywhere in a message (arguments, replies, events), the value of a
//!   member whose name contains `password`, `passwd`, `passphrase`,
//!   `secret`, `token` or `cookie` (`password`, `key-secret`,
//!   `password-secret`, …) is redacted.
//!
//! A message that is not valid JSON is logged by its length only.
//!
//! Without the feature nothing of this is compiled in.
//!
//! # The runtime
//!
//! Generated code implements [`Command`] for one type per QAPI command
//! and [`Event`] for one type per event; the clients only know these
//! traits, so bindings generated from any schema by `qapi-codegen` work
//! with them.  The wire forms follow QEMU's `docs/interop/qmp-spec.rst`.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `qmp` | yes | [`qmp`]: the bindings of QEMU's QMP schema |
//! | `qga` | yes | [`qga`]: the bindings of QEMU's guest-agent schema |
//! | `tokio` | no | `qapi_types::tokio`: the async clients |
//! | `tracing` | no | spans and events through the `tracing` crate: see below |
//! | `schema-source` | no | `qapi_types::schema_source`: the schema files the bindings come from, embedded (for tools that show their documentation) |

#![cfg_attr(docsrs, feature(doc_cfg))]

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod blocking;
mod error;
pub mod introspect;
pub mod proto;
#[cfg(feature = "schema-source")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema-source")))]
pub mod schema_source;
mod sys;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
mod trace;

pub use error::{Error, Result};
pub use proto::{EventItem, Greeting, IdPolicy, RawEvent};

/// Settings shared by the clients.  Every wait has a time limit by
/// default; `None` waits as long as it takes.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Connecting (default 5 s; a Unix socket that does not exist yet is
    /// retried until then, as QEMU may still be starting).
    pub connect_timeout: Option<std::time::Duration>,
    /// The greeting and capability negotiation (default 5 s).
    pub greeting_timeout: Option<std::time::Duration>,
    /// Each command, from sending to its reply (default 30 s).  A reply
    /// that comes later is dropped.
    pub command_timeout: Option<std::time::Duration>,
    /// The largest message accepted, in bytes (default 256 MiB); a larger
    /// one ends the connection with [`Error::TooLarge`].
    pub max_message: usize,
    /// Events each subscriber may have waiting (default 1024); when more
    /// come, the oldest are dropped and [`EventItem::Lagged`] says how
    /// many.
    pub event_buffer: usize,
    /// Enable out-of-band execution when the server offers it (default
    /// on).
    pub oob: bool,
    /// When requests carry an `id` (default: always).
    pub ids: IdPolicy,
}

impl Default for Options {
    fn default() -> Options {
        use std::time::Duration;
        Options {
            connect_timeout: Some(Duration::from_secs(5)),
            greeting_timeout: Some(Duration::from_secs(5)),
            command_timeout: Some(Duration::from_secs(30)),
            max_message: 256 << 20,
            event_buffer: 1024,
            oob: true,
            ids: IdPolicy::Always,
        }
    }
}

impl Options {
    /// The defaults.
    pub fn new() -> Options {
        Options::default()
    }

    /// Set [`Options::connect_timeout`].
    pub fn connect_timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Set [`Options::greeting_timeout`].
    pub fn greeting_timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.greeting_timeout = t;
        self
    }

    /// Set [`Options::command_timeout`].
    pub fn command_timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.command_timeout = t;
        self
    }

    /// Set [`Options::max_message`].
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// Set [`Options::event_buffer`].
    pub fn event_buffer(mut self, n: usize) -> Self {
        self.event_buffer = n;
        self
    }

    /// Set [`Options::ids`].
    pub fn ids(mut self, policy: IdPolicy) -> Self {
        self.ids = policy;
        self
    }

    /// Set [`Options::oob`].
    pub fn oob(mut self, on: bool) -> Self {
        self.oob = on;
        self
    }
}

/// QEMU's machine protocol (QMP), generated from QEMU 10.0.2's
/// `qapi/qapi-schema.json` (vendored in `schema/qemu`) by
/// `cargo xtask regen`.
// Generated code is formatted by the generator (prettyplease); rustfmt
// would reformat it and `cargo xtask regen --check` would call it stale.
#[cfg(feature = "qmp")]
#[cfg_attr(docsrs, doc(cfg(feature = "qmp")))]
#[rustfmt::skip]
#[path = "generated/qmp.rs"]
pub mod qmp;

/// QEMU's guest agent (QGA), generated from QEMU 10.0.2's
/// `qga/qapi-schema.json` by `cargo xtask regen`.
#[cfg(feature = "qga")]
#[cfg_attr(docsrs, doc(cfg(feature = "qga")))]
#[rustfmt::skip]
#[path = "generated/qga.rs"]
pub mod qga;

/// A QAPI command: its arguments are the value itself.
pub trait Command: Serialize {
    /// The command's name on the wire, e.g. `query-status`.
    const NAME: &'static str;
    /// May be sent with `exec-oob` once out-of-band is negotiated.
    const ALLOW_OOB: bool;
    /// `false` for commands that send no reply on success
    /// (`guest-shutdown`, …).
    const SUCCESS_RESPONSE: bool;
    /// What a successful reply's `return` decodes into (`()` when the
    /// command returns nothing: QEMU then sends `{}`).
    type Returns;

    /// Decode a successful reply's `return` value.
    fn decode_return(value: Value) -> Result<Self::Returns, serde_json::Error>;
}

/// QAPI's `null` type: serializes as JSON `null`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Null;

impl Serialize for Null {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for Null {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| Null)
    }
}

static STRICT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Strict decoding, for tests: while on, a member, enum value or union
/// branch that the bindings do not know is an error instead of being
/// ignored or kept in a catch-all. Off by default; global to the process.
pub fn set_strict(on: bool) {
    STRICT.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// Whether strict decoding is on (see [`set_strict`]).
pub fn strict() -> bool {
    STRICT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Helpers for generated code; not a stable API.
#[doc(hidden)]
pub mod __private {
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::{Map, Value};

    pub type Object = Map<String, Value>;

    /// Read an object's members (for a generated `Deserialize`).
    pub fn object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Object, D::Error> {
        <Object as serde::Deserialize>::deserialize(d)
    }

    /// Write an object member by member (for a generated `Serialize`).
    pub struct ObjectSer<M> {
        map: M,
    }

    /// Start writing an object.
    pub fn object_ser<S: serde::Serializer>(s: S) -> Result<ObjectSer<S::SerializeMap>, S::Error> {
        Ok(ObjectSer {
            map: s.serialize_map(None)?,
        })
    }

    impl<M: serde::ser::SerializeMap> ObjectSer<M> {
        /// A member that is always present.
        pub fn field<T: Serialize + ?Sized>(
            &mut self,
            key: &'static str,
            value: &T,
        ) -> Result<(), M::Error> {
            self.map.serialize_entry(key, value)
        }

        /// An optional member: left out when `None`.
        pub fn opt<T: Serialize>(
            &mut self,
            key: &'static str,
            value: &Option<T>,
        ) -> Result<(), M::Error> {
            match value {
                Some(v) => self.map.serialize_entry(key, v),
                None => Ok(()),
            }
        }

        /// Finish the object.
        pub fn end(self) -> Result<M::Ok, M::Error> {
            self.map.end()
        }
    }

    /// After the known members were taken: in strict mode, any left is
    /// an error.
    pub fn finish<E: serde::de::Error>(map: &Object, type_name: &str) -> Result<(), E> {
        if crate::strict() && !map.is_empty() {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            return Err(E::custom(format_args!(
                "{type_name}: unknown members {keys:?}"
            )));
        }
        Ok(())
    }

    /// In strict mode, a value the bindings do not know is an error.
    pub fn known<E: serde::de::Error>(known: bool, type_name: &str, value: &str) -> Result<(), E> {
        if crate::strict() && !known {
            return Err(E::custom(format_args!(
                "{type_name}: unknown value or branch '{value}'"
            )));
        }
        Ok(())
    }

    /// Take a required member out of an object.
    pub fn required<T: DeserializeOwned, E: serde::de::Error>(
        map: &mut Object,
        key: &str,
    ) -> Result<T, E> {
        match map.remove(key) {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| E::custom(format_args!("member '{key}': {e}"))),
            None => Err(E::custom(format_args!("missing member '{key}'"))),
        }
    }

    /// Take an optional member out of an object.
    pub fn optional<T: DeserializeOwned, E: serde::de::Error>(
        map: &mut Object,
        key: &str,
    ) -> Result<Option<T>, E> {
        match map.remove(key) {
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| E::custom(format_args!("member '{key}': {e}"))),
            None => Ok(None),
        }
    }

    /// Decode what is left of an object as a branch's members.
    pub fn rest<T: DeserializeOwned, E: serde::de::Error>(map: Object) -> Result<T, E> {
        serde_json::from_value(Value::Object(map)).map_err(E::custom)
    }

    /// Decode a value already read.
    pub fn from_value<T: DeserializeOwned, E: serde::de::Error>(value: Value) -> Result<T, E> {
        serde_json::from_value(value).map_err(E::custom)
    }

    /// Add a member to an object being built.
    pub fn put<T: Serialize + ?Sized, E: serde::ser::Error>(
        map: &mut Object,
        key: &str,
        value: &T,
    ) -> Result<(), E> {
        let v = serde_json::to_value(value).map_err(E::custom)?;
        map.insert(key.to_string(), v);
        Ok(())
    }

    /// Add the members of a branch's value to an object being built.
    pub fn merge<T: Serialize + ?Sized, E: serde::ser::Error>(
        map: &mut Object,
        value: &T,
    ) -> Result<(), E> {
        match serde_json::to_value(value).map_err(E::custom)? {
            Value::Object(m) => {
                map.extend(m);
                Ok(())
            }
            other => Err(E::custom(format_args!(
                "a branch serialized to {other}, not an object"
            ))),
        }
    }

    /// The JSON type of a value, as alternates choose their branch.
    pub fn json_kind(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// "no branch for JSON type X".
    pub fn no_branch<E: serde::de::Error>(type_name: &str, value: &Value) -> E {
        E::custom(format_args!(
            "{type_name}: no branch takes a JSON {}",
            json_kind(value)
        ))
    }

    /// Decode the return value of a command that returns nothing.
    pub fn unit_return(_value: Value) -> Result<(), serde_json::Error> {
        Ok(())
    }

    /// Decode a command's return value.
    pub fn typed_return<T: DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
        serde_json::from_value(value)
    }
}

/// A QAPI event's data.
pub trait Event: serde::de::DeserializeOwned {
    /// The event's name on the wire, e.g. `STOP`.
    const NAME: &'static str;
}

/// A request: `{"execute" | "exec-oob": NAME, "arguments": {...}, "id": ID}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Request<'a, A: Serialize> {
    #[serde(rename = "execute", skip_serializing_if = "Option::is_none")]
    pub execute: Option<&'a str>,
    #[serde(rename = "exec-oob", skip_serializing_if = "Option::is_none")]
    pub exec_oob: Option<&'a str>,
    /// Left out when the command has no arguments (an empty object
    /// serializes to `{}`, which QEMU also accepts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<&'a A>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

impl<'a, C: Command> From<(&'a C, Option<u64>, bool)> for Request<'a, C> {
    /// A request for `command` with `id`, out-of-band when `oob`.
    fn from((command, id, oob): (&'a C, Option<u64>, bool)) -> Self {
        Request {
            execute: (!oob).then_some(C::NAME),
            exec_oob: oob.then_some(C::NAME),
            arguments: Some(command),
            id,
        }
    }
}

/// A QMP error reply's `error` member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QmpError {
    /// `GenericError`, `CommandNotFound`, `DeviceNotActive`,
    /// `DeviceNotFound`, `KVMMissingCap`, or a class a newer QEMU adds.
    pub class: String,
    pub desc: String,
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.class, self.desc)
    }
}

impl std::error::Error for QmpError {}

/// An event's `timestamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    pub seconds: i64,
    pub microseconds: i64,
}

/// One message from a QMP server.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMessage {
    /// `{"QMP": {...}}`, sent once on connect.
    Greeting(Value),
    Return {
        value: Value,
        id: Option<Value>,
    },
    Error {
        error: QmpError,
        id: Option<Value>,
    },
    Event {
        name: String,
        data: Value,
        timestamp: Timestamp,
    },
}

/// Why a server message could not be understood.
#[derive(Debug)]
pub enum MessageError {
    /// Not JSON.
    Json(serde_json::Error),
    /// JSON, but none of QMP's message shapes.
    Shape(Value),
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::Json(e) => write!(f, "not JSON: {e}"),
            MessageError::Shape(v) => write!(f, "not a QMP message: {v}"),
        }
    }
}

impl std::error::Error for MessageError {}

impl ServerMessage {
    /// Classify one JSON message.  Keys are looked at, never the whole
    /// message decoded at once, so unknown members are ignored.
    pub fn parse(bytes: &[u8]) -> Result<ServerMessage, MessageError> {
        let value: Value = serde_json::from_slice(bytes).map_err(MessageError::Json)?;
        let Value::Object(mut map) = value else {
            return Err(MessageError::Shape(value));
        };
        let id = map.remove("id");
        if let Some(v) = map.remove("return") {
            return Ok(ServerMessage::Return { value: v, id });
        }
        if let Some(e) = map.get("error") {
            if let Ok(error) = QmpError::deserialize(e) {
                return Ok(ServerMessage::Error { error, id });
            }
        }
        if let Some(g) = map.remove("QMP") {
            return Ok(ServerMessage::Greeting(g));
        }
        if let (Some(Value::String(name)), Some(ts)) = (map.get("event"), map.get("timestamp")) {
            if let Ok(timestamp) = Timestamp::deserialize(ts) {
                return Ok(ServerMessage::Event {
                    name: name.clone(),
                    data: map
                        .remove("data")
                        .unwrap_or(Value::Object(Default::default())),
                    timestamp,
                });
            }
        }
        if let Some(id) = id {
            map.insert("id".into(), id);
        }
        Err(MessageError::Shape(Value::Object(map)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct QueryStatus {}

    #[derive(Deserialize, Debug, PartialEq)]
    struct StatusInfo {
        running: bool,
        status: String,
    }

    impl Command for QueryStatus {
        const NAME: &'static str = "query-status";
        const ALLOW_OOB: bool = false;
        const SUCCESS_RESPONSE: bool = true;
        type Returns = StatusInfo;
        fn decode_return(value: Value) -> Result<StatusInfo, serde_json::Error> {
            serde_json::from_value(value)
        }
    }

    #[test]
    fn requests_serialize_as_qmp_expects() {
        let r = Request::from((&QueryStatus {}, Some(7), false));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"execute":"query-status","arguments":{},"id":7}"#
        );
        let r = Request::from((&QueryStatus {}, None, true));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"exec-oob":"query-status","arguments":{}}"#
        );
    }

    #[test]
    fn server_messages_are_classified() {
        let m = ServerMessage::parse(
            br#"{"return": {"running": true, "status": "running", "new": 1}, "id": 3}"#,
        )
        .unwrap();
        let ServerMessage::Return { value, id } = m else {
            panic!()
        };
        assert_eq!(id, Some(Value::from(3)));
        let s: StatusInfo = serde_json::from_value(value).unwrap();
        assert_eq!(
            s,
            StatusInfo {
                running: true,
                status: "running".into()
            }
        );

        let m =
            ServerMessage::parse(br#"{"error": {"class": "GenericError", "desc": "no"}}"#).unwrap();
        assert!(
            matches!(m, ServerMessage::Error { ref error, .. } if error.class == "GenericError")
        );

        let m = ServerMessage::parse(
            br#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}"#,
        )
        .unwrap();
        assert!(matches!(m, ServerMessage::Event { ref name, .. } if name == "STOP"));

        assert!(matches!(
            ServerMessage::parse(b"{\"what\": 1}"),
            Err(MessageError::Shape(_))
        ));
        assert!(matches!(
            ServerMessage::parse(b"{garbage"),
            Err(MessageError::Json(_))
        ));
    }
}
