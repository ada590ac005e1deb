//! The protocol core both clients drive: framing, ids and reply
//! matching, the greeting and negotiation, event fan-out and the guest
//! agent's resynchronisation.  No I/O happens here, so the blocking and
//! the tokio client cannot drift apart: they only move bytes and wait.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::Waker;

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::message::{not_utf8, Field};
use crate::{QmpError, ServerMessage};
use qapi_runtime::Timestamp;

/// Splits a byte stream into JSON objects without assuming one message
/// per line: QEMU with `pretty=on` spreads one over many lines.  Tracks
/// nesting and strings, so braces inside strings do not count.
pub(crate) struct Framer {
    /// Always initialized; bytes `start..end` are unconsumed.
    buf: Vec<u8>,
    end: usize,
    /// Start of unconsumed bytes.
    start: usize,
    /// Bytes before this were scanned already.
    scan: usize,
    /// Start of the message being scanned, once its `{` was seen.
    msg: Option<usize>,
    depth: u32,
    /// Commas outside strings at depth 1 in the message being scanned:
    /// its members less one ([`Session::route`] routes by it).
    commas: usize,
    in_str: bool,
    escaped: bool,
    /// Discard everything up to and including a 0xFF byte first (the
    /// guest agent's delimiter).
    skip_to_ff: bool,
    limit: usize,
}

/// Where a complete message is in the [`Framer`]'s buffer.
pub(crate) struct Frame {
    range: std::ops::Range<usize>,
    commas: usize,
}

/// A message just framed, still in the [`Framer`]'s buffer: read in
/// place ([`Keep::message`]), taken out only for a caller who keeps it
/// ([`Keep::keep`]).
pub(crate) struct Framed<'a> {
    framer: &'a mut Framer,
    frame: Frame,
}

/// A framed message as the clients handle it: read in place, kept past
/// the next read only when a caller needs it (a reply).
pub(crate) trait Keep {
    /// The message, in place.
    fn message(&self) -> Message<'_>;
    /// The message, out of the read buffer: for its caller.
    fn keep(self) -> Kept;
}

impl Keep for Framed<'_> {
    fn message(&self) -> Message<'_> {
        Message {
            bytes: &self.framer.buf[self.frame.range.clone()],
            commas: self.frame.commas,
        }
    }
    fn keep(self) -> Kept {
        self.framer.keep(self.frame)
    }
}

/// Bytes that are not in a read buffer (tests): kept as a copy.
impl Keep for Message<'_> {
    fn message(&self) -> Message<'_> {
        *self
    }
    fn keep(self) -> Kept {
        Kept::copy(self.bytes)
    }
}

/// A message kept for its caller: `buf[start..]`, the read buffer
/// itself for a large message ([`Framer::keep`]), else a copy.
pub(crate) struct Kept {
    buf: Vec<u8>,
    start: usize,
}

impl Kept {
    pub(crate) fn copy(bytes: &[u8]) -> Kept {
        Kept {
            buf: bytes.to_vec(),
            start: 0,
        }
    }
}

impl std::ops::Deref for Kept {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl fmt::Debug for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

/// One message as framed: its bytes, and its commas outside strings at
/// depth 1 (for an object, its members less one; counted while framing,
/// so routing a reply needs no second look at its body).
#[derive(Clone, Copy)]
pub(crate) struct Message<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) commas: usize,
}

/// Why the byte stream cannot be split into messages.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// A byte that cannot start a message.
    Garbage { byte: u8, context: String },
    /// One message is larger than the limit.
    TooLarge { limit: usize },
}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Error {
        match e {
            FrameError::Garbage { byte, context } => Error::Protocol(format!(
                "unexpected byte 0x{byte:02x} between messages, near {context:?}"
            )),
            FrameError::TooLarge { limit } => Error::TooLarge { limit },
        }
    }
}

/// Read at least this much at once.
const READ_CHUNK: usize = 64 * 1024;

impl Framer {
    pub(crate) fn new(limit: usize) -> Framer {
        Framer {
            buf: vec![0; READ_CHUNK],
            end: 0,
            start: 0,
            scan: 0,
            msg: None,
            depth: 0,
            commas: 0,
            in_str: false,
            escaped: false,
            skip_to_ff: false,
            limit,
        }
    }

    /// Room to read into; call [`Framer::filled`] with what was read.
    ///
    /// Call it only once [`Framer::next_range`] has no complete message
    /// left: then what is kept is at most one unfinished message, which
    /// `next_range` allows up to the limit, so the buffer never grows
    /// past the limit plus one read ([`READ_CHUNK`]), whatever the peer
    /// sends.  After a large message it shrinks back to one read.
    pub(crate) fn space(&mut self) -> &mut [u8] {
        if self.start == self.end && self.buf.len() > 4 * READ_CHUNK {
            self.buf = vec![0; READ_CHUNK];
            self.msg = None;
            (self.start, self.end, self.scan) = (0, 0, 0);
        }
        let short = self.buf.len() - self.end < READ_CHUNK / 4;
        if self.start > 0 && (self.start == self.end || self.start > self.buf.len() / 2 || short) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scan -= self.start;
            self.msg = self.msg.map(|m| m - self.start);
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK / 4 {
            // Double, but never past what one message may need: the
            // limit and one more read (at least a quarter read of room,
            // should a caller break the rule above).
            let cap = self.limit.saturating_add(READ_CHUNK);
            let grow = self.buf.len().max(READ_CHUNK);
            let len = (self.buf.len() + grow)
                .min(cap)
                .max(self.end + READ_CHUNK / 4);
            // Exactly: `resize` alone would let the capacity double.
            self.buf.reserve_exact(len - self.buf.len());
            self.buf.resize(len, 0);
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into the slice [`Framer::space`] gave.
    pub(crate) fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// Drop whatever is buffered and skip input up to the next 0xFF.
    pub(crate) fn resync(&mut self) {
        self.start = self.end;
        self.scan = self.end;
        self.msg = None;
        self.depth = 0;
        self.in_str = false;
        self.escaped = false;
        self.skip_to_ff = true;
    }

    /// Whether bytes of an unfinished message are buffered.
    pub(crate) fn mid_message(&self) -> bool {
        self.msg.is_some()
    }

    /// The next complete message, if one is buffered.
    #[cfg(test)]
    pub(crate) fn next(&mut self) -> Result<Option<&[u8]>, FrameError> {
        Ok(self.next_range()?.map(|f| &self.buf[f.range]))
    }

    /// A message [`Framer::next_range`] found, read in place and taken
    /// out of the buffer only if it is kept ([`Framed::keep`]).
    pub(crate) fn framed(&mut self, f: Frame) -> Framed<'_> {
        crate::trace::received(&self.buf[f.range.clone()]);
        Framed {
            framer: self,
            frame: f,
        }
    }

    /// Take the message `f` (just framed) out of the buffer for a caller
    /// to keep.  A large message is not copied: the buffer is handed
    /// over with it, and the bytes after it (fewer than the message's)
    /// start a fresh buffer of one read.  A smaller one is copied.
    fn keep(&mut self, f: Frame) -> Kept {
        let range = f.range;
        let rest = self.end - range.end;
        if range.len() < READ_CHUNK || rest > range.len() {
            return Kept {
                buf: self.buf[range].to_vec(),
                start: 0,
            };
        }
        let mut fresh = vec![0; READ_CHUNK.max(rest)];
        fresh[..rest].copy_from_slice(&self.buf[range.end..self.end]);
        let mut buf = std::mem::replace(&mut self.buf, fresh);
        // Framed, so nothing of it is pending and the scan is past it.
        self.start -= range.end;
        self.scan -= range.end;
        self.end = rest;
        self.msg = self.msg.map(|m| m - range.end);
        // Only the message is kept: the caller holds no more than it
        // (a shrink in place, no copy, with glibc).
        buf.truncate(range.end);
        buf.shrink_to_fit();
        Kept {
            buf,
            start: range.start,
        }
    }

    /// Where the next complete message is, if one is buffered; valid
    /// until the next call to [`Framer::space`].
    pub(crate) fn next_range(&mut self) -> Result<Option<Frame>, FrameError> {
        let mut i = self.scan;
        let len = self.end;
        if self.skip_to_ff {
            match self.buf[i..len].iter().position(|&b| b == 0xff) {
                Some(p) => {
                    i += p + 1;
                    self.start = i;
                    self.skip_to_ff = false;
                }
                None => {
                    self.start = len;
                    self.scan = len;
                    return Ok(None);
                }
            }
        }
        while i < len {
            let Some(m) = self.msg else {
                let b = self.buf[i];
                match b {
                    b' ' | b'\t' | b'\r' | b'\n' => {
                        i += 1;
                        self.start = i;
                        continue;
                    }
                    b'{' => {
                        self.msg = Some(i);
                        self.depth = 1;
                        self.commas = 0;
                        i += 1;
                        continue;
                    }
                    _ => {
                        let end = (i + 40).min(len);
                        let context = String::from_utf8_lossy(&self.buf[i..end]).into_owned();
                        self.scan = i;
                        return Err(FrameError::Garbage { byte: b, context });
                    }
                }
            };
            // Inside a message: the state in locals, the loop tight (a
            // reply is mostly strings: skipped a word at a time).
            let bytes = &self.buf[..len];
            let (mut depth, mut commas) = (self.depth, self.commas);
            let mut in_str = self.in_str;
            if in_str && self.escaped {
                self.escaped = false;
                i += 1;
            }
            while i < len {
                if in_str {
                    match string_rest(bytes, i) {
                        Ok(after) => {
                            in_str = false;
                            i = after;
                        }
                        Err(escaped) => {
                            self.escaped = escaped;
                            i = len;
                        }
                    }
                    continue;
                }
                match bytes[i] {
                    b'"' => in_str = true,
                    b',' if depth == 1 => commas += 1,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            (self.depth, self.commas, self.in_str) = (0, commas, false);
                            self.msg = None;
                            if i + 1 - m > self.limit {
                                return Err(FrameError::TooLarge { limit: self.limit });
                            }
                            self.start = i + 1;
                            self.scan = i + 1;
                            return Ok(Some(Frame {
                                range: m..i + 1,
                                commas,
                            }));
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            (self.depth, self.commas, self.in_str) = (depth, commas, in_str);
        }
        self.scan = len;
        let pending = len - self.msg.unwrap_or(len);
        if pending > self.limit {
            return Err(FrameError::TooLarge { limit: self.limit });
        }
        Ok(None)
    }
}

/// The server's greeting: its version and what it offers.
#[derive(Clone, Debug, PartialEq)]
pub struct Greeting {
    /// `major.minor.micro`.
    pub version: (i64, i64, i64),
    /// The distributor's package string (`Debian 1:10.0.2+ds-…`).
    pub package: String,
    /// The capabilities offered (`oob`, …).
    pub capabilities: Vec<String>,
    /// The whole `QMP` object, as sent.
    pub raw: Value,
}

impl Greeting {
    /// Read a message sent before negotiation: the greeting, or `None`
    /// for an event. QEMU 7.2 can send an event (`RESUME` as the
    /// machine starts) ahead of the greeting to a client that connects
    /// at that moment: the monitor sends events until the connection's
    /// open handler, which runs in the monitor's I/O thread, has put it
    /// into negotiation mode and written the greeting. Such an event
    /// predates the connection for the program, so it is skipped.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Option<Greeting>, Error> {
        let msg = ServerMessage::parse(bytes)
            .map_err(|e| Error::Protocol(format!("expected the QMP greeting, got {e}")))?;
        let raw = match msg {
            ServerMessage::Greeting(raw) => raw,
            ServerMessage::Event { .. } => return Ok(None),
            _ => {
                return Err(Error::Protocol(format!(
                    "expected the QMP greeting, got {}",
                    String::from_utf8_lossy(bytes)
                )))
            }
        };
        let num = |k: &str| raw["version"]["qemu"][k].as_i64().unwrap_or(0);
        let g = Greeting {
            version: (num("major"), num("minor"), num("micro")),
            package: raw["version"]["package"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            capabilities: raw["capabilities"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            raw,
        };
        crate::trace::greeting(&g);
        Ok(Some(g))
    }

    /// Whether the server offers `cap`.
    pub fn offers(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c == cap)
    }
}

impl fmt::Display for Greeting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.version;
        write!(f, "QEMU {a}.{b}.{c}")?;
        if !self.package.is_empty() {
            write!(f, " ({})", self.package)?;
        }
        Ok(())
    }
}

/// An event as it came from the server; decode it with
/// [`RawEvent::decode`] or a generated event set (`qmp::events::Event`).
#[derive(Clone, Debug, PartialEq)]
pub struct RawEvent {
    /// The event's name, e.g. `STOP`.
    pub name: String,
    /// Its `data` (an empty object when the server sent none).
    pub data: Value,
    /// When QEMU sent it.
    pub timestamp: Timestamp,
    /// The strictness of the connection it came from.
    pub(crate) strict: Option<bool>,
}

impl RawEvent {
    /// Decode into the generated event type `E`; `None` when this is a
    /// different event.  Decodes with the connection's strictness.
    pub fn decode<E: qapi_runtime::Event>(&self) -> Option<Result<E, Error>> {
        (self.name == E::NAME).then(|| {
            qapi_runtime::with_strict(self.strict, || E::deserialize(&self.data)).map_err(|error| {
                Error::Decode {
                    what: format!("event {}", self.name),
                    error,
                    raw: self.data.clone(),
                }
            })
        })
    }

    /// Decode into the generated set of all events (`qmp::events::Event`),
    /// with the connection's strictness: an event the bindings do not know
    /// is `Ok` (the catch-all `Other`); a known one whose data does not
    /// decode is an [`EventError`](qapi_runtime::EventError) that keeps it.
    pub fn event<S: qapi_runtime::EventSet>(&self) -> Result<S, qapi_runtime::EventError> {
        qapi_runtime::with_strict(self.strict, || S::decode(&self.name, self.data.clone()))
    }
}

/// For waiting on a typed event: whether `ev` is an `E` that `filter`
/// accepts (kept in `found`), or an `E` that does not decode (the error
/// kept in `found`, so waiting ends with it).
pub(crate) fn typed_match<E: qapi_runtime::Event>(
    ev: &RawEvent,
    filter: &mut impl FnMut(&E) -> bool,
    found: &mut Option<Result<E, Error>>,
) -> bool {
    match ev.decode::<E>() {
        Some(Ok(e)) if filter(&e) => {
            *found = Some(Ok(e));
            true
        }
        Some(Err(e)) => {
            *found = Some(Err(e));
            true
        }
        _ => false,
    }
}

/// Encode a request; `id` is left out when `None`.
pub(crate) fn encode_request<A: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    name: &str,
    args: Option<&A>,
    id: Option<u64>,
    oob: bool,
) -> Result<(), Error> {
    out.extend_from_slice(if oob {
        b"{\"exec-oob\":"
    } else {
        b"{\"execute\":"
    });
    serde_json::to_writer(&mut *out, name).map_err(Error::Encode)?;
    if let Some(a) = args {
        let start = out.len();
        out.extend_from_slice(b",\"arguments\":");
        let before = out.len();
        serde_json::to_writer(&mut *out, a).map_err(Error::Encode)?;
        if out.get(before) != Some(&b'{') {
            return Err(Error::Unsupported(
                format!(
                    "the arguments of {name} must serialize to a JSON object, not {}",
                    String::from_utf8_lossy(&out[before..])
                )
                .into(),
            ));
        }
        // No arguments: leave the member out.  QEMU takes both, but
        // reads `"arguments": {}` measurably slower (see the transport
        // benchmark's notes in ARCHITECTURE.md).
        if &out[before..] == b"{}" {
            out.truncate(start);
        }
    }
    if let Some(id) = id {
        out.extend_from_slice(b",\"id\":");
        out.extend_from_slice(id.to_string().as_bytes());
    }
    // No newline: QEMU reads the request one byte per turn of its main
    // loop, and the closing brace ends it.
    out.push(b'}');
    crate::trace::sent(out);
    Ok(())
}

/// Why a connection ended; kept so every later call reports it.
#[derive(Clone, Debug)]
pub(crate) enum Closed {
    Disconnected,
    Protocol(String),
    Io(std::io::ErrorKind, String),
    TooLarge(usize),
}

impl Closed {
    pub(crate) fn from_error(e: &Error) -> Closed {
        match e {
            Error::Protocol(m) => Closed::Protocol(m.clone()),
            Error::Io(e) => Closed::Io(e.kind(), e.to_string()),
            Error::TooLarge { limit } => Closed::TooLarge(*limit),
            _ => Closed::Disconnected,
        }
    }

    pub(crate) fn error(&self) -> Error {
        match self {
            Closed::Disconnected => Error::Disconnected,
            Closed::Protocol(m) => Error::Protocol(m.clone()),
            Closed::Io(k, m) => Error::Io(std::io::Error::new(*k, m.clone())),
            Closed::TooLarge(l) => Error::TooLarge { limit: *l },
        }
    }
}

/// What a message from the server means for the clients.
pub(crate) enum Routed {
    /// The reply to the pending command `id`.
    Reply(u64, Result<Returned, QmpError>),
    /// An event, for the subscribers.
    Event(RawEvent),
    /// A reply whose caller gave up; dropped.
    Late,
    /// A greeting: QEMU sends a second one when a client connects just as
    /// its monitor is set up (the chardev's "opened" event reaches the
    /// monitor twice).
    Greeting,
}

/// Ids and reply matching for one QMP connection.
///
/// Ids are small: the smallest number not in use.  QEMU's monitor reads
/// a request one byte per turn of its main loop, so every byte of a
/// request costs a few microseconds of round trip; the transport
/// benchmark shows it.  For the same reason a command sent while nothing
/// else is unanswered goes without an id under [`IdPolicy::WhenNeeded`]
/// (the default): its reply is the only one without an id, so matching
/// stays exact.
#[derive(Default)]
pub(crate) struct Session {
    /// Keys of the commands in flight; 0 is the one sent without an id.
    pending: HashSet<u64>,
    /// Keys answered whose callers have not taken the reply yet: not
    /// reused until [`Session::finish`].
    answered: HashSet<u64>,
    /// Keys whose callers gave up: their replies are dropped.
    abandoned: HashSet<u64>,
    policy: IdPolicy,
    /// The connection's strictness, given to its events.
    strict: Option<bool>,
}

/// The key of the command sent without an id.
const ANONYMOUS: u64 = 0;

/// When requests carry an `id` (see [`crate::Options::ids`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdPolicy {
    /// Every request has an id.
    Always,
    /// The default: a request sent while no other is unanswered (and
    /// not out-of-band) goes without one; replies are still matched
    /// exactly.  Faster one at a time against QEMU, whose monitor reads
    /// requests one byte at a time.
    #[default]
    WhenNeeded,
}

impl Session {
    pub(crate) fn new(policy: IdPolicy, strict: Option<bool>) -> Session {
        Session {
            policy,
            strict,
            ..Session::default()
        }
    }

    /// A key for a command about to be sent, and the id to send (`None`:
    /// none); it is pending from now.
    pub(crate) fn start(&mut self, oob: bool) -> (u64, Option<u64>) {
        if self.policy == IdPolicy::WhenNeeded
            && !oob
            && self.pending.is_empty()
            && !self.answered.contains(&ANONYMOUS)
            && !self.abandoned.contains(&ANONYMOUS)
        {
            self.pending.insert(ANONYMOUS);
            return (ANONYMOUS, None);
        }
        let mut id = 1;
        while self.pending.contains(&id)
            || self.answered.contains(&id)
            || self.abandoned.contains(&id)
        {
            id += 1;
        }
        self.pending.insert(id);
        (id, Some(id))
    }

    /// The command `key` was never sent (it could not be encoded or
    /// written at all): forget it.
    pub(crate) fn cancel(&mut self, key: u64) {
        self.pending.remove(&key);
    }

    /// The caller of `key` took its reply: the key may be reused.
    pub(crate) fn finish(&mut self, key: u64) {
        self.answered.remove(&key);
    }

    /// The caller of `key` gave up (time limit): its reply, should it
    /// come, is dropped.
    pub(crate) fn abandon(&mut self, key: u64) {
        if self.pending.remove(&key) {
            self.abandoned.insert(key);
        }
    }

    /// The keys still waiting, which fail when the connection ends.
    pub(crate) fn drain(&mut self) -> Vec<u64> {
        self.abandoned.clear();
        self.pending.drain().collect()
    }

    /// Classify one message: a reply QEMU writes by [`reply_route`]'s
    /// quick look (kept for its caller, who decodes it in one pass),
    /// anything else by the full parse.
    pub(crate) fn route(&mut self, msg: impl Keep) -> Result<Routed, Error> {
        let m = msg.message();
        let bytes = m.bytes;
        if let Some(route) = reply_route(bytes, Some(m.commas)) {
            let id = match route.id {
                IdCheck::Is(n) => Some(Value::from(n)),
                _ => None,
            };
            return Ok(match self.reply(bytes, id)? {
                Some(key) => Routed::Reply(
                    key,
                    Ok(Returned::Message {
                        bytes: msg.keep(),
                        route,
                    }),
                ),
                None => Routed::Late,
            });
        }
        let parsed = ServerMessage::parse(bytes).map_err(|e| Error::Protocol(e.to_string()))?;
        let (id, result) = match parsed {
            ServerMessage::Event {
                name,
                data,
                timestamp,
            } => {
                return Ok(Routed::Event(RawEvent {
                    name,
                    data,
                    timestamp,
                    strict: self.strict,
                }))
            }
            ServerMessage::Greeting(_) => return Ok(Routed::Greeting),
            ServerMessage::Return { value, id } => (id, Ok(Returned::Text(value.get().into()))),
            ServerMessage::Error { error, id } => (id, Err(error)),
        };
        Ok(match self.reply(bytes, id)? {
            Some(key) => Routed::Reply(key, result),
            None => Routed::Late,
        })
    }

    /// Match a reply to the command it answers: `Some(key)`, or `None`
    /// for a reply whose caller gave up.
    fn reply(&mut self, bytes: &[u8], id: Option<Value>) -> Result<Option<u64>, Error> {
        let key = match id {
            Some(Value::Number(n)) => n.as_u64().filter(|&k| k != ANONYMOUS),
            Some(_) => None,
            None if self.pending.contains(&ANONYMOUS) || self.abandoned.contains(&ANONYMOUS) => {
                Some(ANONYMOUS)
            }
            // QEMU leaves the id out when it could not read the request
            // at all; with one command in flight it is that one.
            None if self.pending.len() == 1 => self.pending.iter().next().copied(),
            None => {
                return Err(Error::Protocol(format!(
                    "a reply without an id while {} commands are in flight: {}",
                    self.pending.len(),
                    String::from_utf8_lossy(bytes)
                )))
            }
        };
        match key {
            Some(k) if self.pending.remove(&k) => {
                self.answered.insert(k);
                Ok(Some(k))
            }
            Some(k) if self.abandoned.remove(&k) => Ok(None),
            _ => Err(Error::Protocol(format!(
                "a reply to no command in flight: {}",
                String::from_utf8_lossy(bytes)
            ))),
        }
    }
}

/// What a subscription yields.
#[derive(Clone, Debug, PartialEq)]
pub enum EventItem {
    /// The next event.
    Event(RawEvent),
    /// This subscriber was too slow: `n` events were dropped before the
    /// next one.
    Lagged(u64),
}

/// A filter on events, per subscriber.
pub type EventFilter = Arc<dyn Fn(&RawEvent) -> bool + Send + Sync>;

struct Subscriber {
    queue: VecDeque<RawEvent>,
    capacity: usize,
    lagged: u64,
    filter: Option<EventFilter>,
    waker: Option<Waker>,
}

/// Every subscriber gets every event its filter takes, in a bounded
/// queue of its own; when one is full its oldest event is dropped and
/// counted, so a slow subscriber never stalls replies or other
/// subscribers.
#[derive(Default)]
pub(crate) struct EventHub {
    subs: HashMap<u64, Subscriber>,
    next: u64,
    closed: bool,
}

/// The result of polling a subscription.
pub(crate) enum Polled {
    Item(EventItem),
    Empty,
    Closed,
}

impl EventHub {
    pub(crate) fn subscribe(&mut self, capacity: usize, filter: Option<EventFilter>) -> u64 {
        self.next += 1;
        self.subs.insert(
            self.next,
            Subscriber {
                queue: VecDeque::new(),
                capacity: capacity.max(1),
                lagged: 0,
                filter,
                waker: None,
            },
        );
        self.next
    }

    pub(crate) fn unsubscribe(&mut self, id: u64) {
        self.subs.remove(&id);
    }

    pub(crate) fn publish(&mut self, ev: &RawEvent) {
        crate::trace::event(&ev.name, &ev.data);
        for s in self.subs.values_mut() {
            if s.filter.as_ref().is_some_and(|f| !f(ev)) {
                continue;
            }
            if s.queue.len() == s.capacity {
                s.queue.pop_front();
                s.lagged += 1;
            }
            s.queue.push_back(ev.clone());
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
        for s in self.subs.values_mut() {
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    }

    pub(crate) fn poll(&mut self, id: u64, waker: Option<&Waker>) -> Polled {
        let Some(s) = self.subs.get_mut(&id) else {
            return Polled::Closed;
        };
        if s.lagged > 0 {
            let n = std::mem::take(&mut s.lagged);
            crate::trace::lagged(id, n);
            return Polled::Item(EventItem::Lagged(n));
        }
        if let Some(ev) = s.queue.pop_front() {
            return Polled::Item(EventItem::Event(ev));
        }
        if self.closed {
            return Polled::Closed;
        }
        if let Some(w) = waker {
            s.waker = Some(w.clone());
        }
        Polled::Empty
    }
}

/// A reply kept for its caller, who knows the command and decodes it
/// once, straight into the command's type ([`Reply::decode`]).
#[derive(Debug)]
pub(crate) enum Returned {
    /// A whole reply that [`reply_route`] took, as framed (out of the
    /// read buffer, where the next message goes: [`Framer::keep`]), and
    /// its route.
    Message { bytes: Kept, route: Route },
    /// The `return` member's text alone: a reply that
    /// [`ServerMessage::parse`] read, or `{}` for a command that gets no
    /// reply.
    Text(Box<str>),
}

impl Returned {
    fn as_reply(&self) -> Reply<'_> {
        match self {
            Returned::Message { bytes, route } => Reply::Message { bytes, route },
            Returned::Text(text) => Reply::Text(text),
        }
    }
}

/// A reply to decode, where it lies: kept for a caller ([`Returned`]),
/// or the bytes [`crate::decode_reply`] is given.
#[derive(Clone, Copy)]
enum Reply<'a> {
    /// A whole reply that [`reply_route`] took, and its route.
    Message { bytes: &'a [u8], route: &'a Route },
    /// The `return` member's text alone.
    Text(&'a str),
}

/// A reply as [`reply_route`] read it: its `id`, and where the value of
/// `return` is if the message is exactly `{"return": …, "id": N}` (or
/// `{"return": …}`): from after the colon to the tail's comma (or the
/// closing brace).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Route {
    pub(crate) id: IdCheck,
    value: std::ops::Range<usize>,
}

/// What a reply's `id` must be, as [`reply_route`] read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum IdCheck {
    /// No `id` (the reply has one member).
    Absent,
    /// This number (the reply's last member).
    Is(u64),
    /// Any or none: the only reply awaited (the guest agent,
    /// [`crate::decode_reply`]).
    Any,
}

/// What a command that sends no reply returns: `{}`.
pub(crate) fn empty_return() -> Returned {
    Returned::Text("{}".into())
}

/// The quick route: whether a message is a reply as QEMU writes them,
/// from its first member's name, its last member and its number of
/// members (`commas`, counted by the [`Framer`]), without reading its
/// body.  `Some` for `{"return": …, "id": N}` (N a small unsigned
/// integer: the clients' own ids) and `{"return": …}` (one member: no
/// id); with `commas` unknown (`None`: one reply awaited, whatever its
/// id), for any message whose first member is `return`.  `None` for
/// anything else (errors, events, other orders or ids), which
/// [`ServerMessage::parse`] reads in full.
///
/// On valid JSON this agrees with the full parse, which reads any
/// message with a `return` member as a reply and keeps the last `id`:
/// a number right before the closing brace is the value of the
/// object's last member (a nested one would close its own bracket
/// first, a string its quote); that member is `id` when `"id"` comes
/// before it, after a comma (so no backslash hides its first quote);
/// no comma at depth 1 means one member, hence no `id`.  The decoding
/// checks the rest ([`Returned::decode`]).
pub(crate) fn reply_route(bytes: &[u8], commas: Option<usize>) -> Option<Route> {
    // The colon after `"return"`: where QEMU writes it, else step by step.
    let i = if bytes.starts_with(b"{\"return\":") {
        9
    } else {
        let i = skip_ws(bytes, 0);
        if bytes.get(i) != Some(&b'{') {
            return None;
        }
        let i = skip_ws(bytes, i + 1);
        if bytes.get(i..i + 8) != Some(b"\"return\"") {
            return None;
        }
        let i = skip_ws(bytes, i + 8);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        i
    };
    let close = back_ws(bytes, bytes.len()).checked_sub(1)?;
    if bytes[close] != b'}' || close <= i {
        return None;
    }
    let tail = if commas == Some(0) {
        // One member: no `id` (its tail would need a comma at depth 1).
        None
    } else {
        id_tail(bytes, close)
    };
    let (id, end) = match (tail, commas) {
        (Some((n, comma)), _) => (IdCheck::Is(n), comma),
        (None, Some(0)) => (IdCheck::Absent, close),
        (None, None) => (IdCheck::Any, close),
        (None, Some(_)) => return None,
    };
    Some(Route {
        id,
        value: i + 1..end.max(i + 1),
    })
}

/// N and where its member's comma is, when `bytes[..close]` (`close`:
/// the closing brace) end with `, "id": N` (whitespace allowed), N of
/// one to 18 digits without a leading zero.  Read backwards.
fn id_tail(bytes: &[u8], close: usize) -> Option<(u64, usize)> {
    let end = back_ws(bytes, close);
    let (mut n, mut scale) = (0, 1);
    let mut i = end;
    while i > 0 && bytes[i - 1].is_ascii_digit() {
        if end - i == 18 {
            return None;
        }
        i -= 1;
        n += u64::from(bytes[i] - b'0') * scale;
        scale *= 10;
    }
    if i == end || (bytes[i] == b'0' && end - i > 1) {
        return None;
    }
    // What QEMU writes before N at once, else step by step.
    if i >= 8 && bytes[i - 8..i] == *b", \"id\": " {
        return Some((n, i - 8));
    }
    i = back_ws(bytes, i);
    if i == 0 || bytes[i - 1] != b':' {
        return None;
    }
    i = back_ws(bytes, i - 1);
    if i < 4 || bytes[i - 4..i] != *b"\"id\"" {
        return None;
    }
    i = back_ws(bytes, i - 4);
    (i > 0 && bytes[i - 1] == b',').then_some((n, i - 1))
}

/// Where the rest of a string that starts at `bytes[i]` (inside its
/// quotes) ends: `Ok(after its closing quote)`, or `Err(escaped)` when
/// `bytes` ends first (`escaped`: its last byte is a backslash whose
/// escaped byte is still to come).  Eight bytes at a time: QEMU's
/// replies are mostly strings.
fn string_rest(bytes: &[u8], mut i: usize) -> Result<usize, bool> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // The high bit of each zero byte of `w`, exactly (no false hits).
    let zeros = |w: u64| !(((w & LOW) + LOW) | w | LOW);
    loop {
        // The next quote or backslash.
        let mut hit = None;
        while let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            let m = zeros(w ^ (ONES * u64::from(b'"'))) | zeros(w ^ (ONES * u64::from(b'\\')));
            if m != 0 {
                hit = Some(i + m.trailing_zeros() as usize / 8);
                break;
            }
            i += 8;
        }
        let at = match hit {
            Some(at) => at,
            None => match bytes[i..].iter().position(|&c| c == b'"' || c == b'\\') {
                Some(p) => i + p,
                None => return Err(false),
            },
        };
        if bytes[at] == b'"' {
            return Ok(at + 1);
        }
        // A backslash hides the byte after it.
        if at + 1 >= bytes.len() {
            return Err(true);
        }
        i = at + 2;
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(i) {
        i += 1;
    }
    i
}

/// Where whitespace that ends `bytes[..i]` starts.
fn back_ws(bytes: &[u8], mut i: usize) -> usize {
    while i > 0 && matches!(bytes[i - 1], b' ' | b'\t' | b'\n' | b'\r') {
        i -= 1;
    }
    i
}

/// What a reply's `return` decodes into.
pub(crate) trait Decode {
    type Out;
    fn decode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self::Out, D::Error>;
}

/// A command's return type.
pub(crate) struct Returns<C>(PhantomData<C>);

impl<C: qapi_runtime::Command> Decode for Returns<C> {
    type Out = C::Returns;
    fn decode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<C::Returns, D::Error> {
        C::decode_return(d)
    }
}

/// Any type that deserializes itself (`Value` for `execute_raw`).
pub(crate) struct Plain<T>(PhantomData<T>);

impl<T: serde::de::DeserializeOwned> Decode for Plain<T> {
    type Out = T;
    fn decode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        T::deserialize(d)
    }
}

/// Why a reply did not decode.
enum Failure {
    /// It is not JSON (a syntax error or an early end, anywhere).
    NotJson(serde_json::Error),
    /// Its envelope is not the reply it was routed as (another `id`, a
    /// member twice, no `return`).
    Envelope(serde_json::Error),
    /// Its `return` is not of the type asked for.
    Return(serde_json::Error),
}

impl Reply<'_> {
    /// Decode `return` into `D::Out` with strictness `strict` (`None`:
    /// the process default): one pass over the message.
    ///
    /// A routed message is first read as its route says QEMU writes it:
    /// the value between `"return":` and the tail the route checked,
    /// which must be one JSON value (whitespace around it allowed).  If
    /// it is, the message is exactly `{"return": value, "id": N}` (or
    /// `{"return": value}`): nothing else to check.  If it is not JSON
    /// (other members in between, or a syntax error), the whole message
    /// is read by [`Envelope`], which says which.
    fn decode<D: Decode>(&self, strict: Option<bool>) -> Result<D::Out, Failure> {
        // The message's UTF-8 is checked once, in one call; serde_json
        // then reads text and does not check each string again (a
        // tenth of the time of a reply of short strings).  Reading only
        // text also keeps one instance of each command's decoding.
        let (text, route) = match *self {
            Reply::Message { bytes, route } => match std::str::from_utf8(bytes) {
                Ok(text) => (text, Some(route)),
                Err(e) => return Err(Failure::NotJson(not_utf8(bytes, e))),
            },
            Reply::Text(text) => (text, None),
        };
        // Errors are the command's when they are in `return`.
        let mut in_return = true;
        let r = qapi_runtime::with_strict(strict, || {
            // `return`'s value where the route says it is (on ASCII
            // bytes, so the range is on characters' bounds), else the
            // whole text (`Reply::Text` is `return`'s value).
            let value = match route {
                Some(route) => text.get(route.value.clone()).unwrap_or(""),
                None => text,
            };
            let mut d = serde_json::Deserializer::from_str(value);
            match (D::decode(&mut d).and_then(|r| d.end().map(|()| r)), route) {
                (Err(e), Some(route)) if e.is_syntax() || e.is_eof() => {
                    let mut d = serde_json::Deserializer::from_str(text);
                    let envelope = Envelope::<D> {
                        id: route.id,
                        in_return: &mut in_return,
                        decode: PhantomData,
                    };
                    serde::Deserializer::deserialize_map(&mut d, envelope)
                        .and_then(|r| d.end().map(|()| r))
                }
                (r, _) => r,
            }
        });
        r.map_err(|e| match () {
            () if e.is_syntax() || e.is_eof() => Failure::NotJson(e),
            () if in_return => Failure::Return(e),
            () => Failure::Envelope(e),
        })
    }

    /// The error for `f`, decoding into what `what` says.
    fn error(&self, f: Failure, what: impl FnOnce() -> String) -> Error {
        let (error, why) = match f {
            Failure::Return(error) => {
                return Error::Decode {
                    what: what(),
                    error,
                    raw: self.raw(),
                }
            }
            // A reply that is not JSON broke the protocol, as any
            // message that is not JSON does.  It was framed, so the
            // connection stays in step; the command fails.
            Failure::NotJson(e) => (e, "that is not JSON"),
            Failure::Envelope(e) => (e, "not as it was routed"),
        };
        let text = match self {
            Reply::Message { bytes, .. } => String::from_utf8_lossy(bytes),
            Reply::Text(t) => format!("{{\"return\": {t}}}").into(),
        };
        Error::Protocol(format!("a reply {why}: {error}: {text}"))
    }

    /// The `return` member as JSON, for an error (as text when it is not
    /// JSON).
    fn raw(&self) -> Value {
        let text = match self {
            Reply::Text(t) => t.to_string(),
            Reply::Message { bytes, .. } => match ServerMessage::parse(bytes) {
                Ok(ServerMessage::Return { value, .. }) => value.get().to_string(),
                _ => String::from_utf8_lossy(bytes).into_owned(),
            },
        };
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// Reads a whole reply routed by [`reply_route`] whose value is not
/// where the route put it (other members, or not JSON), decoding
/// `return` as it comes; other members are skipped, as
/// [`ServerMessage::parse`] skips them, and `id` is checked.
struct Envelope<'a, D> {
    id: IdCheck,
    /// Set while `return` is being decoded (its errors are the
    /// command's), cleared after.
    in_return: &'a mut bool,
    decode: PhantomData<D>,
}

/// Decodes a `return` member for [`Envelope`].
struct Seed<D>(PhantomData<D>);

impl<'de, D: Decode> serde::de::DeserializeSeed<'de> for Seed<D> {
    type Value = D::Out;
    fn deserialize<X: serde::Deserializer<'de>>(self, d: X) -> Result<D::Out, X::Error> {
        D::decode(d)
    }
}

impl<'de, D: Decode> serde::de::Visitor<'de> for Envelope<'_, D> {
    type Value = D::Out;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a reply, {\"return\": …}")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<D::Out, A::Error> {
        use serde::de::Error as _;
        *self.in_return = false;
        let (mut ret, mut id) = (None, false);
        while let Some(key) = map.next_key()? {
            match key {
                Field::Return if ret.is_none() => {
                    *self.in_return = true;
                    ret = Some(map.next_value_seed(Seed::<D>(PhantomData))?);
                    *self.in_return = false;
                }
                Field::Id if !id => {
                    id = true;
                    match self.id {
                        IdCheck::Is(n) => {
                            let got: u64 = map.next_value()?;
                            if got != n {
                                return Err(A::Error::custom(format_args!(
                                    "its `id` is {got}, where routing read {n}"
                                )));
                            }
                        }
                        IdCheck::Absent => {
                            return Err(A::Error::custom("an `id`, where routing read none"))
                        }
                        IdCheck::Any => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Field::Return | Field::Id => {
                    return Err(A::Error::custom("a member twice (`return` or `id`)"));
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        if let (IdCheck::Is(n), false) = (self.id, id) {
            return Err(A::Error::custom(format_args!(
                "no `id`, where routing read {n}"
            )));
        }
        ret.ok_or_else(|| A::Error::missing_field("return"))
    }
}

/// A reply's `return` member as JSON (`execute_raw`).
pub(crate) fn to_value(r: Returned) -> Result<Value, Error> {
    let r = r.as_reply();
    r.decode::<Plain<Value>>(None)
        .map_err(|f| r.error(f, || "a reply".into()))
}

/// The text of a `human-monitor-command` reply.
pub(crate) fn hmp_text(v: Value) -> Result<String, Error> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(Error::Decode {
            what: "the reply to human-monitor-command".into(),
            error: <serde_json::Error as serde::de::Error>::custom("expected a string"),
            raw: other,
        }),
    }
}

/// Decode a successful reply for a typed command: straight from the
/// bytes into the command's type, with the connection's strictness
/// (`None`: the process default).
pub(crate) fn decode_return<C: qapi_runtime::Command>(
    value: Returned,
    strict: Option<bool>,
) -> Result<C::Returns, Error> {
    value.as_reply().decode_return::<C>(strict)
}

impl Reply<'_> {
    fn decode_return<C: qapi_runtime::Command>(
        self,
        strict: Option<bool>,
    ) -> Result<C::Returns, Error> {
        let value = self;
        value.decode::<Returns<C>>(strict).map_err(|f| {
            let e = value.error(f, || format!("the reply to {}", C::NAME));
            if let Error::Decode { error, raw, .. } = &e {
                crate::trace::decode_failed(C::NAME, error, raw);
            }
            e
        })
    }
}

/// The guest agent's resynchronisation: a random id for
/// `guest-sync-delimited`, and the bytes that start it (0xFF flushes the
/// agent's parser).
pub(crate) fn agent_sync_request() -> (u64, Vec<u8>) {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    // QGA's id is an int: keep it in the positive i32 range that every
    // agent version reads back unchanged.
    let id = h.finish() % (i32::MAX as u64);
    let mut out = vec![0xff];
    let _ = encode_request(
        &mut out,
        "guest-sync-delimited",
        Some(&serde_json::json!({ "id": id })),
        None,
        false,
    );
    (id, out)
}

/// The guest agent's reply to one command (no ids, no events), kept
/// for its caller.
pub(crate) fn agent_reply(msg: impl Keep) -> Result<Result<Returned, QmpError>, Error> {
    Ok(match any_reply(msg.message().bytes, "the guest agent")? {
        AnyReply::Routed(route) => Ok(Returned::Message {
            bytes: msg.keep(),
            route,
        }),
        AnyReply::Text(text) => Ok(Returned::Text(text)),
        AnyReply::Error(e) => Err(e),
    })
}

/// Whether `bytes` are the guest agent's reply to
/// `guest-sync-delimited` with `id` (anything else is a stale reply).
pub(crate) fn is_sync_reply(bytes: &[u8], id: u64) -> bool {
    let got = match any_reply(bytes, "the guest agent") {
        Ok(AnyReply::Routed(route)) => Reply::Message {
            bytes,
            route: &route,
        }
        .decode::<Plain<u64>>(None)
        .ok(),
        Ok(AnyReply::Text(text)) => Reply::Text(&text).decode::<Plain<u64>>(None).ok(),
        _ => None,
    };
    got == Some(id)
}

/// [`crate::decode_reply`]: one reply from the server, whatever its id,
/// decoded where it lies (no copy) into `C::Returns`.
pub(crate) fn decode_any_reply<C: qapi_runtime::Command>(
    bytes: &[u8],
) -> Result<C::Returns, Error> {
    match any_reply(bytes, "the server")? {
        AnyReply::Routed(route) => Reply::Message {
            bytes,
            route: &route,
        }
        .decode_return::<C>(None),
        AnyReply::Text(text) => Reply::Text(&text).decode_return::<C>(None),
        AnyReply::Error(e) => Err(Error::Qmp(e)),
    }
}

/// What [`any_reply`] read.
enum AnyReply {
    /// A reply [`reply_route`] took (decoded from the message's bytes).
    Routed(Route),
    /// Another reply's `return` member, as text.
    Text(Box<str>),
    /// An error reply.
    Error(QmpError),
}

/// One reply from `peer`, whatever its id.
fn any_reply(bytes: &[u8], peer: &str) -> Result<AnyReply, Error> {
    if let Some(route) = reply_route(bytes, None) {
        return Ok(AnyReply::Routed(route));
    }
    match ServerMessage::parse(bytes).map_err(|e| Error::Protocol(e.to_string()))? {
        ServerMessage::Return { value, .. } => Ok(AnyReply::Text(value.get().into())),
        ServerMessage::Error { error, .. } => Ok(AnyReply::Error(error)),
        _ => Err(Error::Protocol(format!(
            "{peer} sent something that is not a reply: {}",
            String::from_utf8_lossy(bytes)
        ))),
    }
}

/// The randomized tests' generator, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/common/rng.rs"]
mod test_rng;

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]]) -> Result<Vec<String>, FrameError> {
        let mut f = Framer::new(1 << 20);
        let mut out = Vec::new();
        for c in chunks {
            let space = f.space();
            let n = c.len().min(space.len());
            space[..n].copy_from_slice(&c[..n]);
            f.filled(n);
            while let Some(m) = f.next()? {
                out.push(String::from_utf8_lossy(m).into_owned());
            }
        }
        Ok(out)
    }

    /// The message `bytes` hold (whitespace around it allowed), with the
    /// commas the framer counted; `None` unless it frames as one message.
    fn framed(bytes: &[u8]) -> Option<Message<'_>> {
        let mut f = Framer::new(1 << 24);
        let (mut fed, mut found) = (0, None);
        while fed < bytes.len() {
            let space = f.space();
            let n = space.len().min(bytes.len() - fed);
            space[..n].copy_from_slice(&bytes[fed..fed + n]);
            f.filled(n);
            fed += n;
            while let Some(frame) = f.next_range().ok()? {
                let framed = f.framed(frame);
                let m = framed.message();
                if found.replace((m.bytes.to_vec(), m.commas)).is_some() {
                    return None;
                }
            }
        }
        let (msg, commas) = found?;
        let start = skip_ws(bytes, 0);
        let end = start + msg.len();
        (bytes.get(start..end) == Some(&msg[..]) && skip_ws(bytes, end) == bytes.len()).then_some(
            Message {
                bytes: &bytes[start..end],
                commas,
            },
        )
    }

    fn full_route(text: &str) -> Option<Route> {
        let m = framed(text.as_bytes()).unwrap_or_else(|| panic!("not one message: {text}"));
        reply_route(m.bytes, Some(m.commas))
    }

    fn route(text: &str) -> Option<IdCheck> {
        full_route(text).map(|r| r.id)
    }

    fn decode<T: serde::de::DeserializeOwned>(text: &str, route: Route) -> Result<T, Error> {
        let r = Reply::Message {
            bytes: text.as_bytes(),
            route: &route,
        };
        r.decode::<Plain<T>>(None)
            .map_err(|f| r.error(f, || "a test reply".into()))
    }

    /// Decoded as routed.
    fn quick<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
        decode(text, full_route(text).unwrap_or_else(|| panic!("{text}")))
    }

    /// Decoded by the envelope alone (no value where the route puts
    /// it), checking `id`.
    fn decoded<T: serde::de::DeserializeOwned>(text: &str, id: IdCheck) -> Result<T, Error> {
        decode(text, Route { id, value: 0..0 })
    }

    #[test]
    fn replies_as_qemu_writes_them_are_routed_by_a_look_at_their_ends() {
        // `return` of every kind, strings with escapes and brackets
        // anywhere, compact or spread over lines.
        for pad in 0..10 {
            let p = "x".repeat(pad);
            let ret =
                format!(r#"{{"a{p}": "{p}\"}}\\\\", "b": [1, {{"c": "]"}}], "d{p}\\": null}}"#);
            let expect: Value = serde_json::from_str(&ret).unwrap();
            for (msg, id) in [
                (format!(r#"{{"return": {ret}, "id": 7}}"#), IdCheck::Is(7)),
                (
                    format!(" {{ \"return\" :\n{ret} ,\n \"id\":7 }} "),
                    IdCheck::Is(7),
                ),
                (format!(r#"{{"return": {ret}}}"#), IdCheck::Absent),
                (format!("{{\n  \"return\": {ret}\n}}\n"), IdCheck::Absent),
            ] {
                assert_eq!(route(&msg), Some(id), "{msg}");
                assert_eq!(quick::<Value>(&msg).unwrap(), expect, "{msg}");
                assert_eq!(decoded::<Value>(&msg, id).unwrap(), expect, "{msg}");
            }
        }
        for (id, want) in [
            ("0", Some(IdCheck::Is(0))),
            ("42", Some(IdCheck::Is(42))),
            ("123456789012345678", Some(IdCheck::Is(123456789012345678))),
            // Left to the full parse.
            ("1234567890123456789", None),
            ("01", None),
            ("-1", None),
            ("1.5", None),
            ("1e3", None),
            (r#""7""#, None),
            ("[7]", None),
            (r#"{"id": 7}"#, None),
            ("null", None),
        ] {
            let msg = format!(r#"{{"return": {{}}, "id": {id}}}"#);
            assert_eq!(route(&msg), want, "{msg}");
        }
        // An `id` that only looks like the last member, a first member
        // that is not `return`, and other shapes: the full parse.
        for msg in [
            r#"{"id": 7, "return": {}}"#,
            r#"{"return": {}, "x\"id": 7}"#,
            r#"{"return": {}, "x": 1}"#,
            r#"{"ret\u0075rn": {}}"#,
            r#"{"error": {"class": "GenericError", "desc": "no"}, "id": 7}"#,
            r#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}"#,
            r#"{"QMP": {"version": {}, "capabilities": []}}"#,
        ] {
            assert_eq!(route(msg), None, "{msg}");
        }
        // Nested `id`s are not the reply's.
        assert_eq!(route(r#"{"return": {"id": 7}}"#), Some(IdCheck::Absent));
        assert_eq!(route(r#"{"return": [1, "id", 7]}"#), Some(IdCheck::Absent));
        assert_eq!(
            route(r#"{"return": {"a": 1, "id": 7}}"#),
            Some(IdCheck::Absent)
        );
        // Other members before `id`: routed by it, and skipped.
        let msg = r#"{"return": 5, "error": {"class": "X"}, "id": 7}"#;
        assert_eq!(route(msg), Some(IdCheck::Is(7)));
        assert_eq!(quick::<u64>(msg).unwrap(), 5);
        assert_eq!(decoded::<u64>(msg, IdCheck::Is(7)).unwrap(), 5);
        // With the members unknown (one reply awaited): any id.
        for msg in [r#"{"return": 5, "id": "x"}"#, r#"{"return": 5, "x": 1}"#] {
            let r = reply_route(msg.as_bytes(), None).unwrap();
            assert_eq!(r.id, IdCheck::Any);
            assert_eq!(decode::<u64>(msg, r).unwrap(), 5);
            assert_eq!(decoded::<u64>(msg, IdCheck::Any).unwrap(), 5);
        }
    }

    #[test]
    fn a_reply_that_is_not_as_routed_is_an_error() {
        fn protocol<T: fmt::Debug>(r: Result<T, Error>, want: &str) {
            match r {
                Err(Error::Protocol(m)) => assert!(m.contains(want), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        // Not JSON, in `return` or around it.
        for msg in [
            r#"{"return": nope}"#,
            r#"{"return": 5 "id": 7}"#,
            r#"{"return": 5, "id": 7"#,
            r#"{"return": 5, "id": 7} x"#,
            r#"{"return": [1}, "id": 7}"#,
        ] {
            protocol(decoded::<Value>(msg, IdCheck::Any), "not JSON");
            // As `decode_reply` reads it: the same error, from the route
            // and the decoding or from the full parse.
            protocol(
                agent_reply(Message {
                    bytes: msg.as_bytes(),
                    commas: 0,
                })
                .and_then(|r| to_value(r.unwrap())),
                "not JSON",
            );
        }
        protocol(
            decoded::<u64>(r#"{"return": 1, "return": 2, "id": 3}"#, IdCheck::Is(3)),
            "twice",
        );
        protocol(
            decoded::<u64>(r#"{"return": 1, "id": 3, "id": 3}"#, IdCheck::Is(3)),
            "twice",
        );
        protocol(
            decoded::<u64>(r#"{"return": 1, "id": 4}"#, IdCheck::Is(5)),
            "its `id` is 4, where routing read 5",
        );
        protocol(
            decoded::<u64>(r#"{"return": 1, "id": 4}"#, IdCheck::Absent),
            "an `id`, where routing read none",
        );
        protocol(
            decoded::<u64>(r#"{"return": 1}"#, IdCheck::Is(4)),
            "no `id`, where routing read 4",
        );
        protocol(
            decoded::<u64>(r#"{"id": 4}"#, IdCheck::Is(4)),
            "missing field `return`",
        );
        // A `return` of another type: the command's decoding error, with
        // the `return` member as JSON.
        match decoded::<u64>(r#"{"return": {"a": "x"}, "id": 1}"#, IdCheck::Is(1)) {
            Err(Error::Decode { raw, what, .. }) => {
                assert_eq!(raw, serde_json::json!({"a": "x"}));
                assert_eq!(what, "a test reply");
            }
            other => panic!("{other:?}"),
        }
        // Through a session: the reply reaches the caller it names, whose
        // decoding fails; the connection goes on.
        let mut s = Session::new(IdPolicy::Always, None);
        let (a, _) = s.start(false);
        let msg = br#"{"return": 1, "return": 2, "id": 1}"#;
        let Ok(Routed::Reply(k, Ok(r))) = s.route(framed(msg).unwrap()) else {
            panic!()
        };
        assert_eq!(k, a);
        assert!(matches!(to_value(r), Err(Error::Protocol(_))));
    }

    fn random_key(rng: &mut Rng) -> &'static str {
        // Keys that end like `id`, and the envelope's other members.
        let keys = [
            "x",
            "error",
            "event",
            "data",
            "a\\\"id",
            "\\\",\\\"id",
            "ID",
            "id ",
            "Return",
        ];
        keys[rng.below(keys.len() as u64) as usize]
    }

    /// A random envelope: `return` (mostly), an `id` of any kind (often),
    /// other members (sometimes), in any order (often QEMU's), no key
    /// twice, with random whitespace between the tokens.  Whether it is
    /// a reply as QEMU writes one comes with it.
    fn random_envelope(rng: &mut Rng) -> (String, bool) {
        let mut members = Vec::new();
        if rng.below(8) != 0 {
            members.push(("return".to_string(), random_value(rng, 0)));
        }
        let id = match rng.below(8) {
            0..=2 => None,
            3 | 4 => Some(Value::from(rng.below(1000))),
            5 => Some(Value::from(rng.next())),
            6 => Some(Value::from(-(rng.below(1000) as i64))),
            _ => Some(random_value(rng, 3)),
        };
        let extra = rng.below(4) == 0;
        if extra {
            for _ in 0..rng.below(3) + 1 {
                let key = random_key(rng).to_string();
                let key: String = serde_json::from_str(&format!("\"{key}\"")).unwrap();
                if members.iter().all(|(k, _)| *k != key) {
                    members.push((key, random_value(rng, 1)));
                }
            }
        }
        let qemu_id = matches!(id, None | Some(Value::Number(_)))
            && id
                .as_ref()
                .is_none_or(|v| v.as_u64().is_some_and(|n| n < 1 << 59));
        members.extend(id.map(|id| ("id".to_string(), id)));
        let ordered = rng.below(2) == 0;
        if !ordered {
            for i in (1..members.len()).rev() {
                members.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        let is_qemu = members.first().is_some_and(|(k, _)| k == "return") && !extra && qemu_id;
        let ws = |rng: &mut Rng| ["", " ", "\n  ", "\t", "\r\n"][rng.below(5) as usize];
        let mut text = format!("{}{{", ws(rng));
        for (i, (k, v)) in members.iter().enumerate() {
            let v = if rng.below(2) == 0 {
                serde_json::to_string(v).unwrap()
            } else {
                serde_json::to_string_pretty(v).unwrap()
            };
            let k = serde_json::to_string(k).unwrap();
            let comma = if i > 0 { "," } else { "" };
            text += &format!("{comma}{}{k}{}:{}{v}{}", ws(rng), ws(rng), ws(rng), ws(rng));
        }
        text += &format!("}}{}", ws(rng));
        (text, is_qemu)
    }

    /// The quick route against the full parse (serde_json): on valid
    /// JSON, whatever it takes is a reply with the `id` the full parse
    /// reads, and decodes to the same `return`; every reply as QEMU
    /// writes it is taken.  On random mutations of the same messages
    /// nothing panics, and whatever is valid JSON still agrees.
    #[test]
    fn the_quick_route_agrees_with_the_full_parse() {
        let mut rng = Rng(0x853c_49e6_748f_ea9b);
        let check = |bytes: &[u8], commas: Option<usize>| -> Option<IdCheck> {
            let route = reply_route(bytes, commas)?;
            let check = route.id;
            // As routed, and by the envelope alone.
            let span = route.value.clone();
            let envelope = Route {
                id: check,
                value: 0..0,
            };
            let both = [route, envelope].map(|route| {
                let returned = Reply::Message {
                    bytes,
                    route: &route,
                };
                let decoded = returned.decode::<Plain<Value>>(None);
                decoded.map_err(|f| returned.error(f, || "x".into()))
            });
            let text = String::from_utf8_lossy(bytes);
            let Ok(whole) = serde_json::from_slice::<Value>(bytes) else {
                // Not JSON: an error, or (a member the envelope skips is
                // not checked as closely) a value; never a panic.
                return Some(check);
            };
            let Ok(ServerMessage::Return { value, id }) = ServerMessage::parse(bytes) else {
                panic!("routed, but not a reply: {text}");
            };
            match check {
                IdCheck::Is(n) => assert_eq!(id, Some(Value::from(n)), "{text}"),
                IdCheck::Absent => assert_eq!(id, None, "{text}"),
                IdCheck::Any => assert!(commas.is_none(), "{text}"),
            }
            let ret: Value = serde_json::from_str(value.get()).unwrap();
            assert_eq!(whole["return"], ret, "{text}");
            for decoded in both {
                assert_eq!(decoded.unwrap(), ret, "{text} ({span:?})");
            }
            Some(check)
        };
        let mut quick = 0;
        for _ in 0..4000 {
            let (text, is_qemu) = random_envelope(&mut rng);
            let m = framed(text.as_bytes()).unwrap_or_else(|| panic!("{text}"));
            let members = serde_json::from_str::<Value>(&text).unwrap();
            let members = members.as_object().unwrap().len();
            assert_eq!(m.commas, members.saturating_sub(1), "{text}");
            let routed = check(m.bytes, Some(m.commas));
            assert!(!is_qemu || routed.is_some(), "{text}");
            quick += usize::from(routed.is_some());
            check(text.as_bytes(), None);
            // Mutations: a byte changed, dropped or doubled.
            let mut bytes = text.into_bytes();
            for _ in 0..rng.below(3) + 1 {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.below(bytes.len() as u64) as usize;
                match rng.below(3) {
                    0 => bytes[at] = b"{}[]\\\",:0x \n\xff"[rng.below(13) as usize],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, bytes[at]),
                }
            }
            if let Some(m) = framed(&bytes) {
                check(m.bytes, Some(m.commas));
            }
            check(&bytes, None);
        }
        // Most are taken quickly (the rest is the full parse's).
        assert!(quick > 1500, "{quick}");
    }

    #[test]
    fn frames_split_anywhere_and_span_lines() {
        let text = b"{\"a\": \"}{\\\"\", \"b\": [1, {\"c\": 2}]}\n{\n  \"return\": {}\n}\n";
        let whole = frames(&[text]).unwrap();
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0], "{\"a\": \"}{\\\"\", \"b\": [1, {\"c\": 2}]}");
        assert_eq!(whole[1], "{\n  \"return\": {}\n}");
        for cut in 0..text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(frames(&[a, b]).unwrap(), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(frames(&bytes).unwrap(), whole);
    }

    use super::test_rng::Rng;

    fn random_value(rng: &mut Rng, depth: u32) -> Value {
        // Short ones, and long ones with quotes and backslashes at every
        // place in a word (the framer reads strings eight bytes at a time).
        let strings = [
            "",
            "}",
            "{",
            "\"\\",
            "a\\\"b",
            "[]",
            "é",
            "\u{0}\n\t\u{ff}",
            "json:{\"driver\": \"qcow2\", \"file\": {\"filename\": \"/a\\\\b\"}}",
            "0123456\\89abcdef\"hijklmn\\\\\\\"",
            "\\\\\\\\\\\\\\\\\\",
            "abcdefgh}ijklmnop,qrstuvwx]",
        ];
        match rng.below(if depth > 4 { 4 } else { 6 }) {
            0 => Value::Null,
            1 => Value::from(rng.next() as i64),
            2 => Value::from(strings[rng.below(strings.len() as u64) as usize]),
            3 => Value::from(rng.below(2) == 0),
            4 => (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
            _ => Value::Object(
                (0..rng.below(4))
                    .map(|i| {
                        (
                            format!("k{i}{}", strings[i as usize]),
                            random_value(rng, depth + 1),
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// Messages of every shape (strings holding braces, quotes and
    /// escapes; pretty and compact), read in random pieces: the framer
    /// gives back exactly the messages serde_json wrote.
    #[test]
    fn random_messages_in_random_pieces_frame_exactly() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let mut wire = Vec::new();
            let mut want = Vec::new();
            for _ in 0..rng.below(8) + 1 {
                let mut msg = serde_json::Map::new();
                msg.insert("return".into(), random_value(&mut rng, 0));
                let v = Value::Object(msg);
                let text = if rng.below(2) == 0 {
                    serde_json::to_string(&v).unwrap()
                } else {
                    serde_json::to_string_pretty(&v).unwrap()
                };
                wire.extend_from_slice(text.as_bytes());
                wire.extend_from_slice(
                    [&b"\n"[..], b"\r\n", b"", b"  \n\t"][rng.below(4) as usize],
                );
                want.push(text);
            }
            let mut pieces = Vec::new();
            let mut rest = &wire[..];
            while !rest.is_empty() {
                let n = (rng.below(rest.len() as u64 + 1) as usize).clamp(1, rest.len());
                let n = if rng.below(3) == 0 { n.min(3) } else { n };
                pieces.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(frames(&pieces).unwrap(), want, "round {round}");
        }
    }

    /// Random bytes never make the framer panic or loop: each piece ends
    /// in messages, a wait for more, or an error.
    #[test]
    fn random_bytes_end_in_messages_or_an_error() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let alphabet = b"{}[]\"\\ \nax\xff";
        for _ in 0..2000 {
            let mut f = Framer::new(64);
            'stream: for _ in 0..rng.below(6) + 1 {
                let len = rng.below(100) as usize;
                let bytes: Vec<u8> = (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                    .collect();
                let space = f.space();
                space[..len].copy_from_slice(&bytes);
                f.filled(len);
                loop {
                    match f.next() {
                        Ok(Some(m)) => {
                            assert!(m.len() <= 64 && m[0] == b'{', "{m:?}");
                            assert!(matches!(m.last(), Some(b'}' | b']')));
                        }
                        Ok(None) => break,
                        Err(_) => break 'stream,
                    }
                }
                if rng.below(8) == 0 {
                    f.resync();
                }
            }
        }
    }

    #[test]
    fn garbage_and_oversize_are_errors() {
        assert!(matches!(
            frames(&[b"{}\nhello"]),
            Err(FrameError::Garbage { byte: b'h', .. })
        ));
        let mut f = Framer::new(10);
        let s = f.space();
        s[..12].copy_from_slice(b"{\"aaaaaaaaaa");
        f.filled(12);
        assert!(matches!(f.next(), Err(FrameError::TooLarge { limit: 10 })));
    }

    /// An endless message grows the buffer to the limit and one read at
    /// most, then fails; a large message's buffer is given back after.
    #[test]
    fn the_buffer_stays_within_the_limit() {
        let limit = 1 << 20;
        let mut f = Framer::new(limit);
        let fill = |f: &mut Framer, byte: u8| {
            let space = f.space();
            let n = space.len().min(5000);
            space[..n].fill(byte);
            f.filled(n);
        };
        let space = f.space();
        space[..2].copy_from_slice(b"{\"");
        f.filled(2);
        let err = loop {
            assert!(
                f.buf.capacity() <= limit + READ_CHUNK,
                "{}",
                f.buf.capacity()
            );
            match f.next_range() {
                Ok(None) => fill(&mut f, b'a'),
                Ok(Some(_)) => panic!("a message out of nothing"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, FrameError::TooLarge { limit: l } if l == limit));

        let mut f = Framer::new(limit);
        let big = format!("{{\"return\": \"{}\"}}", "b".repeat(limit - 20));
        for chunk in big.as_bytes().chunks(7000) {
            let space = f.space();
            space[..chunk.len()].copy_from_slice(chunk);
            f.filled(chunk.len());
        }
        assert_eq!(f.next().unwrap().unwrap().len(), big.len());
        assert!(f.next().unwrap().is_none());
        f.space();
        assert_eq!(f.buf.len(), READ_CHUNK);
    }

    /// Kept messages ([`Framed::keep`]): a large one takes the read
    /// buffer with it, a small one is copied; either way each comes out
    /// exactly, and so do the messages after it, whatever the reads'
    /// sizes, and the buffer stays within the limit.
    #[test]
    fn kept_messages_come_out_exactly() {
        let mut rng = Rng(0x6a09_e667_f3bc_c908);
        let limit = 1 << 20;
        let (mut handed, mut copied) = (0, 0);
        for round in 0..60 {
            let mut f = Framer::new(limit);
            let (mut wire, mut want) = (Vec::new(), Vec::new());
            for i in 0..rng.below(6) + 1 {
                let len = [10, 1000, READ_CHUNK - 40, READ_CHUNK + 5, 200_000, 700_000]
                    [rng.below(6) as usize];
                let body: String = (0..len / 8)
                    .map(|_| ["abcdefgh", "ab\\\"}{,]", "\\\\xyz"][rng.below(3) as usize])
                    .collect();
                let text = format!("{{\"return\": \"{body}\", \"id\": {i}}}");
                wire.extend_from_slice(text.as_bytes());
                wire.extend_from_slice([&b"\n"[..], b""][rng.below(2) as usize]);
                want.push(text);
            }
            let (mut fed, mut got) = (0, 0);
            while got < want.len() {
                let space = f.space();
                let n = match rng.below(3) {
                    0 => rng.below(100) as usize + 1,
                    1 => rng.below(space.len() as u64) as usize + 1,
                    _ => space.len(),
                }
                .min(space.len())
                .min(wire.len() - fed);
                space[..n].copy_from_slice(&wire[fed..fed + n]);
                f.filled(n);
                fed += n;
                while let Some(frame) = f.next_range().unwrap() {
                    let before = f.buf.as_ptr();
                    let framed = f.framed(frame);
                    if rng.below(4) == 0 {
                        let m = framed.message();
                        assert_eq!(m.bytes, want[got].as_bytes(), "round {round}");
                    } else {
                        let kept = framed.keep();
                        assert_eq!(&*kept, want[got].as_bytes(), "round {round}");
                        if kept.buf.as_ptr() == before {
                            handed += 1;
                            assert!(want[got].len() >= READ_CHUNK);
                            assert_eq!(kept.buf.len(), kept.start + want[got].len());
                        } else {
                            copied += 1;
                        }
                    }
                    got += 1;
                    assert!(f.buf.len() <= limit + READ_CHUNK, "{}", f.buf.len());
                }
            }
            assert_eq!(fed, wire.len());
        }
        assert!(
            handed > 20 && copied > 20,
            "{handed} handed over, {copied} copied"
        );
    }

    #[test]
    fn resync_skips_to_the_delimiter() {
        let mut f = Framer::new(1 << 20);
        f.resync();
        let data = b"{\"error\": {}}\n\xff{\"return\": 5}\n";
        let s = f.space();
        s[..data.len()].copy_from_slice(data);
        f.filled(data.len());
        assert_eq!(f.next().unwrap().unwrap(), b"{\"return\": 5}");
    }

    #[test]
    fn replies_are_matched_by_id() {
        let mut s = Session::new(IdPolicy::Always, None);
        let (a, _) = s.start(false);
        let (b, wire) = s.start(false);
        assert_eq!((a, b, wire), (1, 2, Some(2)));
        assert!(matches!(
            s.route(framed(format!("{{\"return\": 1, \"id\": {b}}}").as_bytes()).unwrap()),
            Ok(Routed::Reply(x, Ok(_))) if x == b
        ));
        // Not reused until its caller took the reply.
        assert_eq!(s.start(false), (3, Some(3)));
        s.finish(b);
        s.abandon(3);
        s.abandon(a);
        assert!(matches!(
            s.route(framed(format!("{{\"return\": 1, \"id\": {a}}}").as_bytes()).unwrap()),
            Ok(Routed::Late)
        ));
        assert!(s
            .route(framed(b"{\"return\": 1, \"id\": 99}").unwrap())
            .is_err());
        // Ids are reused once answered (1's late reply came), never
        // while abandoned.
        assert_eq!(s.start(false), (1, Some(1)));
        s.abandon(1);
        assert_eq!(s.start(false), (2, Some(2)));

        let mut s = Session::new(IdPolicy::WhenNeeded, None);
        assert_eq!(s.start(false), (ANONYMOUS, None));
        // Never sent (it could not be encoded): forgotten, not awaited.
        s.cancel(ANONYMOUS);
        assert_eq!(s.start(false), (ANONYMOUS, None));
        // Something is in flight: the next one needs an id.
        assert_eq!(s.start(false), (1, Some(1)));
        s.abandon(ANONYMOUS);
        assert!(matches!(
            s.route(framed(b"{\"return\": 1, \"id\": 1}").unwrap()),
            Ok(Routed::Reply(1, _))
        ));
        s.finish(1);
        // The abandoned anonymous reply is still due: ids again.
        assert_eq!(s.start(false), (1, Some(1)));
        assert!(matches!(
            s.route(framed(b"{\"return\": 0}").unwrap()),
            Ok(Routed::Late)
        ));
        assert!(matches!(
            s.route(framed(b"{\"return\": 1, \"id\": 1}").unwrap()),
            Ok(Routed::Reply(1, _))
        ));
        s.finish(1);
        assert_eq!(s.start(false), (ANONYMOUS, None));
        assert!(matches!(
            s.route(framed(b"{\"return\": 0}").unwrap()),
            Ok(Routed::Reply(ANONYMOUS, _))
        ));
        // Not again until its caller took the reply.
        assert_eq!(s.start(false), (1, Some(1)));
        s.finish(ANONYMOUS);
        s.abandon(1);
        // Out of band always has an id.
        assert_eq!(s.start(true), (2, Some(2)));
        let mut out = Vec::new();
        encode_request(&mut out, "stop", None::<&()>, Some(3), false).unwrap();
        assert_eq!(out, b"{\"execute\":\"stop\",\"id\":3}");
        out.clear();
        assert!(encode_request(&mut out, "x", Some(&5), None, true).is_err());
    }

    #[test]
    fn slow_subscribers_lag_visibly() {
        let mut hub = EventHub::default();
        let fast = hub.subscribe(100, None);
        let slow = hub.subscribe(2, None);
        let only_stop = hub.subscribe(10, Some(Arc::new(|e: &RawEvent| e.name == "STOP")));
        for i in 0..5 {
            hub.publish(&RawEvent {
                name: if i == 4 { "STOP".into() } else { "X".into() },
                data: Value::from(i),
                timestamp: Timestamp {
                    seconds: 0,
                    microseconds: 0,
                },
                strict: None,
            });
        }
        let mut n = 0;
        while let Polled::Item(_) = hub.poll(fast, None) {
            n += 1;
        }
        assert_eq!(n, 5);
        assert!(matches!(
            hub.poll(slow, None),
            Polled::Item(EventItem::Lagged(3))
        ));
        assert!(matches!(hub.poll(slow, None), Polled::Item(EventItem::Event(e)) if e.data == 3));
        assert!(
            matches!(hub.poll(only_stop, None), Polled::Item(EventItem::Event(e)) if e.name == "STOP")
        );
        assert!(matches!(hub.poll(only_stop, None), Polled::Empty));
        hub.close();
        assert!(matches!(hub.poll(only_stop, None), Polled::Closed));
    }
}
