//! The transport for QEMU's machine protocol (QMP) and guest agent
//! (QGA): one I/O-free protocol core ([`proto`]) and two thin drivers
//! over it, [`blocking`] (std only) and `tokio` (feature `tokio`);
//! probing a running QEMU's schema ([`probe`]); waiting for jobs,
//! unplugs and fd sets (feature `qmp`, the one module that names
//! generated commands); tracing (feature `tracing`); and the [`Error`]
//! every call ends in.
//!
//! The clients know commands and events only through
//! `qapi_runtime`'s [`Command`] and [`Event`] traits, so bindings
//! generated from any schema work with them.  Most programs use this
//! crate through `qapi-types`, which adds QEMU's own bindings under
//! the same names; the guide is there.

#![cfg_attr(docsrs, feature(doc_cfg))]

use serde::{Deserialize, Serialize};
use serde_json::Value;

use qapi_runtime::{with_strict, Command, Event, EventError, EventSet, Timestamp};

mod api;
pub mod blocking;
mod conn;
mod error;
pub mod probe;
pub mod proto;
mod sys;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
mod trace;
#[cfg(feature = "qmp")]
mod wait;

pub use error::{Error, Result, Unsupported};
pub use proto::{EventItem, Greeting, IdPolicy, RawEvent};
#[cfg(feature = "qmp")]
pub use wait::FdSetInfo;

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
    /// The largest message accepted, in bytes (default 128 MiB, above
    /// the largest replies QEMU and its guest agent really send; see
    /// ARCHITECTURE.md); a larger one ends the connection with
    /// [`Error::TooLarge`].  A connection's read buffer never holds more
    /// than this plus 64 KiB, whatever the peer sends.
    pub max_message: usize,
    /// Events each subscriber may have waiting (default 1024); when more
    /// come, the oldest are dropped and [`EventItem::Lagged`] says how
    /// many.
    pub event_buffer: usize,
    /// Enable out-of-band execution when the server offers it (default
    /// on).
    pub oob: bool,
    /// When requests carry an `id` (default: [`IdPolicy::WhenNeeded`],
    /// only when another command is unanswered; replies are matched
    /// exactly either way).
    pub ids: IdPolicy,
    /// Check every command against the server's `query-qmp-schema`
    /// before sending it (default off): a command, member, enum value or
    /// union branch the server does not know fails with
    /// [`Error::Unsupported`] naming each, without being sent.  The
    /// schema is fetched once per connection, on the first command (an
    /// ordinary, in-band command: fetch it with `schema()` beforehand if
    /// the first command is an out-of-band one that must not wait).
    /// Only what the schema describes is checked: a missing required
    /// member or a value QEMU rejects for other reasons is still QEMU's
    /// error.
    pub check_commands: bool,
    /// Where warnings go when a checked command uses a part of the
    /// server's schema marked `deprecated` or `unstable`: this hook, or
    /// (when `None`, the default) a line on standard error.  Each
    /// warning is given once per connection.
    pub on_warning: Option<probe::WarningHook>,
    /// Strict decoding for this connection's replies and events: `Some(true)`
    /// makes a member, enum value or branch the bindings do not know an
    /// error, `Some(false)` never does; `None` (the default) follows the
    /// process-wide [`set_strict`](qapi_runtime::set_strict).
    pub strict: Option<bool>,
}

impl Default for Options {
    fn default() -> Options {
        use std::time::Duration;
        Options {
            connect_timeout: Some(Duration::from_secs(5)),
            greeting_timeout: Some(Duration::from_secs(5)),
            command_timeout: Some(Duration::from_secs(30)),
            max_message: 128 << 20,
            event_buffer: 1024,
            oob: true,
            ids: IdPolicy::WhenNeeded,
            check_commands: false,
            on_warning: None,
            strict: None,
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

    /// Set [`Options::check_commands`].
    pub fn check_commands(mut self, on: bool) -> Self {
        self.check_commands = on;
        self
    }

    /// Set [`Options::on_warning`]: `hook` is called with each warning
    /// (once per connection); `|_| {}` silences them.
    pub fn on_warning(mut self, hook: impl Fn(&probe::Warning) + Send + Sync + 'static) -> Self {
        self.on_warning = Some(probe::WarningHook(std::sync::Arc::new(hook)));
        self
    }

    /// Set [`Options::strict`] for this connection.
    pub fn strict(mut self, on: bool) -> Self {
        self.strict = Some(on);
        self
    }

    /// Set [`Options::oob`].
    pub fn oob(mut self, on: bool) -> Self {
        self.oob = on;
        self
    }
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

/// One message from a QMP server.
#[derive(Clone, Debug)]
pub enum ServerMessage {
    /// `{"QMP": {...}}`, sent once on connect.
    Greeting(Value),
    Return {
        /// The `return` member, as sent: decode it with
        /// [`Command::decode_return`] (`&mut
        /// serde_json::Deserializer::from_str(value.get())`).
        value: Box<serde_json::value::RawValue>,
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

/// A `return` is compared as sent (its text).
impl PartialEq for ServerMessage {
    fn eq(&self, other: &Self) -> bool {
        use ServerMessage::*;
        match (self, other) {
            (Greeting(a), Greeting(b)) => a == b,
            (Return { value: a, id: i }, Return { value: b, id: j }) => {
                a.get() == b.get() && i == j
            }
            (Error { error: a, id: i }, Error { error: b, id: j }) => a == b && i == j,
            (
                Event {
                    name: a,
                    data: d,
                    timestamp: t,
                },
                Event {
                    name: b,
                    data: e,
                    timestamp: u,
                },
            ) => a == b && d == e && t == u,
            _ => false,
        }
    }
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
    /// Classify one JSON message.  The envelope's members are read one
    /// by one (unknown ones skipped); a reply's `return` is kept as its
    /// bytes, to be decoded once, straight into the command's type.
    /// A message that is not UTF-8 is not JSON, wherever the bytes are
    /// (also in a member that is skipped), as the clients' quick route
    /// reads it.
    pub fn parse(bytes: &[u8]) -> Result<ServerMessage, MessageError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| MessageError::Json(proto::not_utf8(bytes, e)))?;
        let env: Envelope = serde_json::from_str(text).map_err(|e| {
            serde_json::from_str(text).map_or(MessageError::Json(e), MessageError::Shape)
        })?;
        let Envelope {
            ret,
            error,
            qmp,
            event,
            data,
            timestamp,
            id,
        } = env;
        if let Some(value) = ret {
            return Ok(ServerMessage::Return { value, id });
        }
        if let Some(Ok(error)) = error.as_ref().map(QmpError::deserialize) {
            return Ok(ServerMessage::Error { error, id });
        }
        if let Some(g) = qmp {
            return Ok(ServerMessage::Greeting(g));
        }
        if let (Some(Value::String(name)), Some(Ok(timestamp))) =
            (event, timestamp.as_ref().map(Timestamp::deserialize))
        {
            return Ok(ServerMessage::Event {
                name,
                data: data.unwrap_or(Value::Object(Default::default())),
                timestamp,
            });
        }
        // Not one of QMP's shapes: the whole message, for the error.
        Err(serde_json::from_str(text).map_or_else(MessageError::Json, MessageError::Shape))
    }
}

/// Decode one reply message to command `C` the way the clients do: the
/// same quick look at its first and last members routes it (QEMU's
/// `{"return": …, "id": N}`; anything else, such as an `error` reply,
/// is read in full first), then read once where it lies, `return`
/// straight into `C::Returns` with the process-wide strictness and `id`
/// checked against the routing: no copy, as the clients do with a large
/// reply (they hand their read buffer over to its caller; a reply under
/// 64 KiB they copy).  Any `id` is accepted.  An `error` reply is
/// [`Error::Qmp`].  For a transport of your own, and for `cargo xtask
/// bench-decode`, which measures exactly this.
pub fn decode_reply<C: Command>(bytes: &[u8]) -> Result<C::Returns, Error> {
    proto::decode_any_reply::<C>(bytes)
}

/// The members of a server message that say what it is.
struct Envelope {
    ret: Option<Box<serde_json::value::RawValue>>,
    error: Option<Value>,
    qmp: Option<Value>,
    event: Option<Value>,
    data: Option<Value>,
    timestamp: Option<Value>,
    id: Option<Value>,
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

/// An envelope member's name.
enum Field {
    Return,
    Error,
    Qmp,
    Event,
    Data,
    Timestamp,
    Id,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(FieldVisitor)
    }
}

struct FieldVisitor;

impl serde::de::Visitor<'_> for FieldVisitor {
    type Value = Field;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(match v {
            "return" => Field::Return,
            "error" => Field::Error,
            "QMP" => Field::Qmp,
            "event" => Field::Event,
            "data" => Field::Data,
            "timestamp" => Field::Timestamp,
            "id" => Field::Id,
            _ => Field::Other,
        })
    }
}

impl<'de> serde::de::Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut env = Envelope {
            ret: None,
            error: None,
            qmp: None,
            event: None,
            data: None,
            timestamp: None,
            id: None,
        };
        while let Some(key) = map.next_key()? {
            match key {
                Field::Return => env.ret = Some(map.next_value()?),
                Field::Error => env.error = Some(map.next_value()?),
                Field::Qmp => env.qmp = Some(map.next_value()?),
                Field::Event => env.event = Some(map.next_value()?),
                Field::Data => env.data = Some(map.next_value()?),
                Field::Timestamp => env.timestamp = Some(map.next_value()?),
                Field::Id => env.id = Some(map.next_value()?),
                Field::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(env)
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
        fn decode_return<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StatusInfo, D::Error> {
            StatusInfo::deserialize(d)
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

    /// `decode_reply`: QEMU's replies by the route, any other reply by
    /// the full parse, errors as the clients report them.
    #[test]
    fn decode_reply_reads_any_reply() {
        let want = StatusInfo {
            running: true,
            status: "running".into(),
        };
        let ret = r#"{"running": true, "status": "running"}"#;
        for msg in [
            format!(r#"{{"return": {ret}, "id": 3}}"#),
            format!("{{\"return\": {ret}, \"id\": 3}}\r\n"),
            format!(r#"{{"return": {ret}}}"#),
            format!(r#"{{"return": {ret}, "x": 1, "id": "a"}}"#),
            format!(r#"{{"id": 3, "return": {ret}}}"#),
        ] {
            assert_eq!(
                decode_reply::<QueryStatus>(msg.as_bytes()).unwrap(),
                want,
                "{msg}"
            );
        }
        let r = decode_reply::<QueryStatus>(
            br#"{"error": {"class": "GenericError", "desc": "no"}, "id": 3}"#,
        );
        assert!(
            matches!(r, Err(Error::Qmp(ref e)) if e.desc == "no"),
            "{r:?}"
        );
        let r = decode_reply::<QueryStatus>(br#"{"return": {"running": 1}, "id": 3}"#);
        assert!(
            matches!(r, Err(Error::Decode { ref raw, .. }) if raw["running"] == 1),
            "{r:?}"
        );
        // The id's tail is inside `return`, whose object is not closed.
        let r = decode_reply::<QueryStatus>(
            br#"{"return": {"running": true, "status": "running", "id": 3}"#,
        );
        assert!(
            matches!(r, Err(Error::Protocol(ref m)) if m.contains("not JSON")),
            "{r:?}"
        );
        // Text that is not UTF-8, in `return` and in the envelope: not
        // JSON, and the error says where.
        for (msg, column) in [
            (
                &b"{\"return\": {\"running\": true, \"status\": \"ru\xffn\"}, \"id\": 3}"[..],
                43,
            ),
            (
                b"{\"return\": {\"running\": true, \"status\": \"run\"}, \"i\xc3\": 3}",
                50,
            ),
        ] {
            let r = decode_reply::<QueryStatus>(msg);
            assert!(
                matches!(r, Err(Error::Protocol(ref m))
                    if m.contains("not JSON") && m.contains(&format!("column {column}"))),
                "{r:?}"
            );
        }
        // With the generated types, and wherever the bytes are: in
        // `return`, in a member `return`'s type skips, in one the
        // envelope skips, on the quick route or not.
        for msg in [
            &b"{\"return\": {\"running\": true, \"status\": \"ru\xffn\"}, \"id\": 3}"[..],
            b"{\"return\": {\"running\": true, \"status\": \"running\", \"zz\": \"\xff\"}, \"id\": 3}",
            b"{\"return\": {\"running\": true, \"status\": \"running\"}, \"x\": \"\xff\", \"id\": 3}",
            b"{\"id\": 3, \"return\": {\"running\": true, \"status\": \"running\"}, \"x\": \"\xff\"}",
        ] {
            let r = with_strict(Some(false), || {
                decode_reply::<qapi_qemu::qmp::commands::QueryStatus>(msg)
            });
            assert!(
                matches!(r, Err(Error::Protocol(ref m))
                    if m.contains("not JSON") && m.contains("invalid unicode code point")),
                "{}: {r:?}",
                String::from_utf8_lossy(msg)
            );
        }
        // Text in other scripts decodes as it is.
        let msg = "{\"return\": {\"name\": \"é€😀\"}, \"id\": 3}";
        let r = decode_reply::<qapi_qemu::qmp::commands::QueryName>(msg.as_bytes()).unwrap();
        assert_eq!(r.name.as_deref(), Some("é€😀"));
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
        let s: StatusInfo = serde_json::from_str(value.get()).unwrap();
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
