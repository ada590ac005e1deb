//! The clients' error type.

use std::fmt;
use std::time::Duration;

use qapi_runtime::introspect::{EncodeError, Unknown};
use serde_json::Value;

use crate::QmpError;

/// Everything a client call can end in besides success.  Every failure
/// is one of these: the clients never panic and never wait without a
/// time limit unless told to.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// QEMU ran the command and it failed; `class` and `desc` as sent.
    Qmp(QmpError),
    /// Connecting, reading or writing failed.
    Io(std::io::Error),
    /// The peer closed the connection, or it was closed after an earlier
    /// error; commands in flight fail with this at once.
    Disconnected,
    /// The peer broke the protocol: bytes that are not JSON, a message
    /// of no known shape, a reply nobody asked for.
    Protocol(String),
    /// A time limit passed: `what` names the step.
    Timeout {
        /// `connect`, `greeting`, `negotiation`, the command's name, …
        what: String,
        /// The limit that passed.
        after: Duration,
    },
    /// One message was larger than the configured limit.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A reply or event did not decode into its generated type; the JSON
    /// is kept.
    Decode {
        /// What was decoded (`the reply to query-status`).
        what: String,
        error: serde_json::Error,
        raw: Value,
    },
    /// The request could not be serialized.
    Encode(serde_json::Error),
    /// A background job ended without success: QEMU's own message (the
    /// `error` of `query-jobs`, or of `BLOCK_JOB_COMPLETED`; `cancelled`
    /// when it was cancelled without one).
    Job {
        /// The job's id.
        id: String,
        /// Why it failed, as QEMU put it.
        message: String,
    },
    /// A subscriber waiting for an event fell behind and `count` events
    /// were dropped, so the one awaited may have been among them.
    EventsLost {
        /// How many were dropped.
        count: u64,
    },
    /// The call cannot be made on this connection (an out-of-band
    /// command when `oob` was not negotiated, file descriptors over a
    /// connection that is not a Unix socket, …), or the server does not
    /// know parts of a command checked against its schema (then
    /// [`Unsupported::unknown`] names each).
    Unsupported(Unsupported),
}

impl Error {
    /// Whether the connection is unusable after this error (reconnect to
    /// go on), as opposed to this one call failing.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::Io(_) | Error::Disconnected | Error::Protocol(_) | Error::TooLarge { .. }
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Qmp(e) => write!(f, "QEMU returned an error: {e}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Disconnected => f.write_str("the connection to QEMU is closed"),
            Error::Protocol(m) => write!(f, "protocol violation: {m}"),
            Error::Timeout { what, after } => {
                write!(f, "time limit of {after:?} passed waiting for {what}")
            }
            Error::TooLarge { limit } => {
                write!(f, "a message is larger than the limit of {limit} bytes")
            }
            Error::Decode { what, error, raw } => {
                let mut text = raw.to_string();
                if text.len() > 200 {
                    let mut cut = 200;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                    text.push('…');
                }
                write!(f, "cannot decode {what}: {error} (JSON: {text})")
            }
            Error::Encode(e) => write!(f, "cannot serialize the request: {e}"),
            Error::Job { id, message } => write!(f, "job {id} failed: {message}"),
            Error::EventsLost { count } => write!(
                f,
                "{count} events were dropped while waiting (the subscriber fell behind)"
            ),
            Error::Unsupported(u) if !u.unknown.is_empty() => f.write_str(&u.reason),
            Error::Unsupported(u) => write!(f, "not possible on this connection: {}", u.reason),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Qmp(e) => Some(e),
            Error::Io(e) => Some(e),
            Error::Decode { error, .. } | Error::Encode(error) => Some(error),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    /// A connection reset or a broken pipe is the peer going away:
    /// [`Error::Disconnected`].  Other I/O errors stay [`Error::Io`].
    fn from(e: std::io::Error) -> Error {
        use std::io::ErrorKind::*;
        match e.kind() {
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => Error::Disconnected,
            _ => Error::Io(e),
        }
    }
}

impl From<QmpError> for Error {
    fn from(e: QmpError) -> Error {
        Error::Qmp(e)
    }
}

/// A command `Schema::check_command` could not serialize.
impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Error {
        Error::Encode(e.0)
    }
}

/// Why a call cannot be made ([`Error::Unsupported`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unsupported {
    /// Why, in words.
    pub reason: String,
    /// When a command was checked against the server's schema
    /// (`check`, [`Options::check_commands`](crate::Options::check_commands)):
    /// every member, enum value, union branch or JSON type in it that the
    /// server does not know, as probe paths.  Empty otherwise.
    pub unknown: Vec<Unknown>,
}

impl Unsupported {
    /// A reason without unknown parts.
    pub fn new(reason: impl Into<String>) -> Unsupported {
        Unsupported {
            reason: reason.into(),
            unknown: Vec::new(),
        }
    }

    /// Parts of a command the server does not know.
    pub fn unknown(reason: impl Into<String>, unknown: Vec<Unknown>) -> Unsupported {
        Unsupported {
            reason: reason.into(),
            unknown,
        }
    }
}

impl From<String> for Unsupported {
    fn from(reason: String) -> Unsupported {
        Unsupported::new(reason)
    }
}

impl From<&str> for Unsupported {
    fn from(reason: &str) -> Unsupported {
        Unsupported::new(reason)
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The clients' result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
impl From<qapi_runtime::EventError> for Error {
    fn from(e: qapi_runtime::EventError) -> Error {
        Error::Decode {
            what: format!("event {}", e.name),
            error: e.error,
            raw: e.data,
        }
    }
}
