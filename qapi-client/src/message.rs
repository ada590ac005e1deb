//! QMP's messages as values: the [`Request`] the clients send, and any
//! [`ServerMessage`] read in full (the clients' own replies take a
//! quicker route, `proto.rs`), with QEMU's [`QmpError`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use qapi_runtime::{Command, Timestamp};

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
        let text =
            std::str::from_utf8(bytes).map_err(|e| MessageError::Json(not_utf8(bytes, e)))?;
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
pub(crate) enum Field {
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

/// The error for a message that is not UTF-8: serde_json's, which
/// says where (reading it into a `Value` checks every string), or, were
/// it to find none, where the first byte that is not UTF-8 is.
pub(crate) fn not_utf8(bytes: &[u8], e: std::str::Utf8Error) -> serde_json::Error {
    match serde_json::from_slice::<Value>(bytes) {
        Err(error) => error,
        Ok(_) => serde::de::Error::custom(format_args!(
            "not UTF-8 at byte {} of {}",
            e.valid_up_to(),
            bytes.len()
        )),
    }
}
