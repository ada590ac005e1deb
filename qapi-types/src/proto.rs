//! The protocol core both clients drive: framing, ids and reply
//! matching, the greeting and negotiation, event fan-out and the guest
//! agent's resynchronisation.  No I/O happens here, so the blocking and
//! the tokio client cannot drift apart: they only move bytes and wait.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::task::Waker;

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::{QmpError, ServerMessage, Timestamp};

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
    in_str: bool,
    escaped: bool,
    /// Discard everything up to and including a 0xFF byte first (the
    /// guest agent's delimiter).
    skip_to_ff: bool,
    limit: usize,
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
        Ok(self.next_range()?.map(|r| &self.buf[r]))
    }

    /// The bytes of a message [`Framer::next_range`] found.
    pub(crate) fn bytes(&self, r: std::ops::Range<usize>) -> &[u8] {
        crate::trace::received(&self.buf[r.clone()]);
        &self.buf[r]
    }

    /// Where the next complete message is, if one is buffered; valid
    /// until the next call to [`Framer::space`].
    pub(crate) fn next_range(&mut self) -> Result<Option<std::ops::Range<usize>>, FrameError> {
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
            let b = self.buf[i];
            if self.msg.is_none() {
                match b {
                    b' ' | b'\t' | b'\r' | b'\n' => {
                        i += 1;
                        self.start = i;
                        continue;
                    }
                    b'{' => {
                        self.msg = Some(i);
                        self.depth = 1;
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
            }
            if self.in_str {
                // Skip quickly to the next quote or backslash.
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                match self.buf[i..len]
                    .iter()
                    .position(|&c| c == b'"' || c == b'\\')
                {
                    Some(p) => {
                        i += p;
                        if self.buf[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_str = false;
                        }
                        i += 1;
                    }
                    None => i = len,
                }
                continue;
            }
            match b {
                b'"' => self.in_str = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        let m = self.msg.take().unwrap_or(self.start);
                        if i + 1 - m > self.limit {
                            return Err(FrameError::TooLarge { limit: self.limit });
                        }
                        self.start = i + 1;
                        self.scan = i + 1;
                        return Ok(Some(m..i + 1));
                    }
                }
                _ => {}
            }
            i += 1;
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
    pub fn decode<E: crate::Event>(&self) -> Option<Result<E, Error>> {
        (self.name == E::NAME).then(|| {
            crate::with_strict(self.strict, || E::deserialize(&self.data)).map_err(|error| {
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
    /// decode is an [`EventError`](crate::EventError) that keeps it.
    pub fn event<S: crate::EventSet>(&self) -> Result<S, crate::EventError> {
        crate::with_strict(self.strict, || S::decode(&self.name, self.data.clone()))
    }
}

/// For waiting on a typed event: whether `ev` is an `E` that `filter`
/// accepts (kept in `found`), or an `E` that does not decode (the error
/// kept in `found`, so waiting ends with it).
pub(crate) fn typed_match<E: crate::Event>(
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

    /// Classify one message.
    pub(crate) fn route(&mut self, bytes: &[u8]) -> Result<Routed, Error> {
        if let Some((value, id)) = reply_parts(bytes) {
            return self.reply(bytes, id, Ok(Returned(value.into())));
        }
        let msg = ServerMessage::parse(bytes).map_err(|e| Error::Protocol(e.to_string()))?;
        let (id, result) = match msg {
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
            ServerMessage::Greeting(_) => {
                return Err(Error::Protocol("a second greeting".into()));
            }
            ServerMessage::Return { value, id } => (id, Ok(Returned(value.get().into()))),
            ServerMessage::Error { error, id } => (id, Err(error)),
        };
        self.reply(bytes, id, result)
    }

    /// Match a reply to the command it answers.
    fn reply(
        &mut self,
        bytes: &[u8],
        id: Option<Value>,
        result: Result<Returned, QmpError>,
    ) -> Result<Routed, Error> {
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
                Ok(Routed::Reply(k, result))
            }
            Some(k) if self.abandoned.remove(&k) => Ok(Routed::Late),
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
        crate::trace::event(ev);
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

/// A reply's `return` member as sent, decoded once its caller knows
/// into what: copied out of the read buffer (the reply waits there for
/// its caller), UTF-8, and one JSON value as far as [`reply_parts`]'
/// scan can tell (the decoding reads it fully).
#[derive(Debug)]
pub(crate) struct Returned(Box<str>);

impl Returned {
    /// The text.
    pub(crate) fn get(&self) -> &str {
        &self.0
    }
}

/// What a command that sends no reply returns: `{}`.
pub(crate) fn empty_return() -> Returned {
    Returned("{}".into())
}

/// A reply, as the clients read it: the `return` member's text (kept
/// as it is in `bytes`) and the `id`, when the message is a reply whose
/// members are `return` and `id` only (what QEMU sends); `None` for
/// anything else, which [`ServerMessage::parse`] then reads in full
/// (errors, events, the greeting, and any message this scan does not
/// follow).
///
/// This is one quick pass over the bytes: strings are skipped eight
/// bytes at a time, brackets must pair up; the `return` text is checked
/// to be UTF-8 and is fully read (and any syntax error in it reported)
/// when it is decoded.  Decoding then reads it once, straight into the
/// command's type, which is what makes a reply cost about what a
/// serde-derived `from_slice` of the whole message costs.
pub(crate) fn reply_parts(bytes: &[u8]) -> Option<(&str, Option<Value>)> {
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    let (mut ret, mut id) = (None, None);
    loop {
        i = skip_ws(bytes, i + 1);
        // A key without escapes.
        if bytes.get(i) != Some(&b'"') {
            return None;
        }
        let end = string_end(bytes, i)?;
        let key = &bytes[i + 1..end - 1];
        i = skip_ws(bytes, end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(bytes, i + 1);
        let end = value_end(bytes, start)?;
        match key {
            b"return" if ret.is_none() => ret = Some(start..end),
            b"id" if id.is_none() => id = Some(parse_id(&bytes[start..end])?),
            _ => return None,
        }
        i = skip_ws(bytes, end);
        match bytes.get(i) {
            Some(b',') => continue,
            Some(b'}') => break,
            _ => return None,
        }
    }
    if skip_ws(bytes, i + 1) != bytes.len() {
        return None;
    }
    let text = std::str::from_utf8(&bytes[ret?]).ok()?;
    Some((text, id))
}

/// An `id`: the clients' own are small integers, read here directly;
/// anything else is read by serde_json.
fn parse_id(text: &[u8]) -> Option<Value> {
    let digits = text.iter().all(u8::is_ascii_digit);
    if digits && (1..=18).contains(&text.len()) && (text[0] != b'0' || text.len() == 1) {
        let n = text.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        return Some(Value::from(n));
    }
    serde_json::from_slice(text).ok()
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(i) {
        i += 1;
    }
    i
}

/// Where the string starting at `bytes[i]` (a quote) ends: after its
/// closing quote.  Eight bytes at a time, escapes included (QEMU's
/// `json:{\"driver\": …}` file names are dense with them): each word's
/// quotes and backslashes are found at once, and a backslash hides the
/// byte after it.
fn string_end(bytes: &[u8], i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // The high bit of each zero byte of `w`, exactly.
    let zeros = |w: u64| !(((w & LOW) + LOW) | w | LOW);
    let mut i = i + 1;
    // Short strings (member names, enum values) byte by byte.
    let short = bytes.len().min(i + 24);
    while i < short {
        match bytes[i] {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    // The word's first byte is escaped (the last one ended in `\`).
    let mut escaped = i > short;
    i = i.min(short);
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let mut quotes = zeros(w ^ (ONES * u64::from(b'"')));
        let mut slashes = zeros(w ^ (ONES * u64::from(b'\\')));
        if escaped {
            quotes &= !0x80;
            slashes &= !0x80;
            escaped = false;
        }
        while quotes | slashes != 0 {
            let bit = (quotes | slashes).trailing_zeros();
            if quotes & (1 << bit) != 0 {
                return Some(i + bit as usize / 8 + 1);
            }
            // A backslash: the next byte is not looked at.
            let next = bit + 8;
            if next > 63 {
                escaped = true;
                break;
            }
            let keep = if next == 63 { 0 } else { !0u64 << (next + 1) };
            quotes &= keep;
            slashes &= keep;
        }
        i += 8;
    }
    if escaped {
        i += 1;
    }
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// Where the JSON value starting at `bytes[i]` ends.  Objects and arrays
/// must close with their own bracket (up to 128 levels, serde_json's
/// limit); scalars run to the next delimiter.
fn value_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    // One bit per open bracket: 1 for an object.
    let mut open: u128 = 0;
    let mut depth = 0u32;
    loop {
        match *bytes.get(i)? {
            b'"' => i = string_end(bytes, i)?,
            c @ (b'{' | b'[') => {
                if depth == 128 {
                    return None;
                }
                open = (open << 1) | u128::from(c == b'{');
                depth += 1;
                i += 1;
            }
            c @ (b'}' | b']') => {
                if depth == 0 || (open & 1 == 1) != (c == b'}') {
                    return None;
                }
                open >>= 1;
                depth -= 1;
                i += 1;
            }
            _ if depth > 0 => i += 1,
            _ => {
                let n = bytes[i..]
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(bytes.len() - i);
                return (n > 0).then_some(i + n);
            }
        }
        if depth == 0 {
            return Some(i);
        }
    }
}

/// A reply's `return` member as JSON (`execute_raw`).
pub(crate) fn to_value(r: Returned) -> Result<Value, Error> {
    serde_json::from_str(r.get()).map_err(|error| {
        not_json(&error, &r).unwrap_or_else(|| Error::Decode {
            what: "a reply".into(),
            error,
            raw: Value::String(r.get().to_string()),
        })
    })
}

/// A `return` that is not JSON broke the protocol, as any message that
/// is not JSON does ([`reply_parts`] leaves its full reading to the
/// decoding).  The reply was framed, so the connection stays in step;
/// the command fails.
fn not_json(error: &serde_json::Error, r: &Returned) -> Option<Error> {
    (error.is_syntax() || error.is_eof()).then(|| {
        Error::Protocol(format!(
            "a reply that is not JSON: {error}: {{\"return\": {}}}",
            r.get()
        ))
    })
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
/// `return` member's bytes into the command's type, with the
/// connection's strictness (`None`: the process default).
pub(crate) fn decode_return<C: crate::Command>(
    value: Returned,
    strict: Option<bool>,
) -> Result<C::Returns, Error> {
    let mut d = serde_json::Deserializer::from_str(value.get());
    crate::with_strict(strict, || {
        C::decode_return(&mut d).and_then(|r| d.end().map(|()| r))
    })
    .map_err(|error| {
        if let Some(e) = not_json(&error, &value) {
            return e;
        }
        // The reply as JSON, for the error.
        let raw = serde_json::from_str(value.get())
            .unwrap_or_else(|_| Value::String(value.get().to_string()));
        crate::trace::decode_failed(C::NAME, &error, &raw);
        Error::Decode {
            what: format!("the reply to {}", C::NAME),
            error,
            raw,
        }
    })
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

/// The guest agent's reply to one command (no ids, no events).
pub(crate) fn agent_reply(bytes: &[u8]) -> Result<Result<Returned, QmpError>, Error> {
    any_reply(bytes, "the guest agent")
}

/// One reply from `peer`, whatever its id.
pub(crate) fn any_reply(bytes: &[u8], peer: &str) -> Result<Result<Returned, QmpError>, Error> {
    if let Some((value, _)) = reply_parts(bytes) {
        return Ok(Ok(Returned(value.into())));
    }
    match ServerMessage::parse(bytes).map_err(|e| Error::Protocol(e.to_string()))? {
        ServerMessage::Return { value, .. } => Ok(Ok(Returned(value.get().into()))),
        ServerMessage::Error { error, .. } => Ok(Err(error)),
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

    #[test]
    fn reply_scan_finds_return_and_id() {
        // Strings with escapes at every place in a word, and brackets
        // inside strings.
        for pad in 0..10 {
            let p = "x".repeat(pad);
            let ret =
                format!(r#"{{"a{p}": "{p}\"}}\\\\", "b": [1, {{"c": "]"}}], "d{p}\\": null}}"#);
            let expect: Value = serde_json::from_str(&ret).unwrap();
            for msg in [
                format!(r#"{{"return": {ret}, "id": 7}}"#),
                format!(" {{ \"return\" :\n{ret} , \"id\":7 }} "),
                format!(r#"{{"id": 7, "return": {ret}}}"#),
            ] {
                let (text, id) = reply_parts(msg.as_bytes()).unwrap_or_else(|| panic!("{msg}"));
                assert_eq!(
                    serde_json::from_str::<Value>(text).unwrap(),
                    expect,
                    "{msg}"
                );
                assert_eq!(id, Some(Value::from(7)), "{msg}");
            }
            let msg = format!(r#"{{"return": "{p}\\\\"}}"#);
            assert_eq!(
                reply_parts(msg.as_bytes()).unwrap().0,
                format!(r#""{p}\\\\""#)
            );
        }
        assert_eq!(reply_parts(br#"{"return": 12}"#).unwrap().0, "12");
        for id in [
            "0",
            "42",
            "123456789012345678",
            "18446744073709551615",
            "-1",
            "1.5",
        ] {
            let msg = format!(r#"{{"return": {{}}, "id": {id}}}"#);
            let expect: Value = serde_json::from_str(id).unwrap();
            assert_eq!(reply_parts(msg.as_bytes()).unwrap().1, Some(expect), "{id}");
        }
        assert!(reply_parts(br#"{"return": {}, "id": 01}"#).is_none());
        assert_eq!(
            reply_parts(br#"{"return": {}, "id": "a"}"#).unwrap().1,
            Some("a".into())
        );
        // Anything else is left to the full parse.
        for msg in [
            &br#"{"return": {}, "other": 1}"#[..],
            br#"{"error": {"class": "GenericError", "desc": "no"}}"#,
            br#"{"return": {]}"#,
            br#"{"return": [1}, "id": 1}"#,
            br#"{"return": "open"#,
            br#"{"return": {}} x"#,
            br#"{"return": {}, "id": {"a": 1}"#,
            br#"{"return": {}, "return": {}}"#,
            br#"{"ret\urn": {}}"#,
            b"{\"return\": \"\xff\"}",
            b"",
            b"{",
        ] {
            assert!(
                reply_parts(msg).is_none(),
                "{}",
                String::from_utf8_lossy(msg)
            );
        }
    }

    /// The scan against serde_json: random replies (every JSON shape in
    /// `return`, ids of every kind, pretty or compact, members in either
    /// order) give the same `return` and `id`; random bytes and random
    /// mutations of replies are either left to the full parse or read
    /// as serde_json reads them (or, for a `return` that is not JSON, as
    /// text its decoding will refuse).
    #[test]
    fn reply_scan_agrees_with_serde_json() {
        let mut rng = Rng(0x853c_49e6_748f_ea9b);
        let check = |bytes: &[u8]| {
            let Some((text, id)) = reply_parts(bytes) else {
                return;
            };
            let whole: Result<Value, _> = serde_json::from_slice(bytes);
            match (whole, serde_json::from_str::<Value>(text)) {
                (Ok(whole), Ok(ret)) => {
                    assert_eq!(
                        whole.get("return"),
                        Some(&ret),
                        "{}",
                        String::from_utf8_lossy(bytes)
                    );
                    assert_eq!(
                        whole.get("id").cloned(),
                        id,
                        "{}",
                        String::from_utf8_lossy(bytes)
                    );
                }
                // The message is not JSON and neither is what the scan
                // took for `return`: its decoding fails, as it must.
                (Err(_), Err(_)) => {}
                (whole, ret) => panic!(
                    "{}: whole {whole:?}, return {ret:?}",
                    String::from_utf8_lossy(bytes)
                ),
            }
        };
        for _ in 0..3000 {
            let mut msg = serde_json::Map::new();
            let ret = random_value(&mut rng, 0);
            let id = match rng.below(4) {
                0 => None,
                1 => Some(Value::from(rng.below(u64::MAX))),
                2 => Some(random_value(&mut rng, 2)),
                _ => Some(Value::from(-(rng.below(1000) as i64))),
            };
            if rng.below(2) == 0 {
                msg.insert("return".into(), ret.clone());
                msg.extend(id.clone().map(|id| ("id".to_string(), id)));
            } else {
                msg.extend(id.clone().map(|id| ("id".to_string(), id)));
                msg.insert("return".into(), ret.clone());
            }
            let v = Value::Object(msg);
            let text = if rng.below(2) == 0 {
                serde_json::to_string(&v).unwrap()
            } else {
                serde_json::to_string_pretty(&v).unwrap()
            };
            // A reply as serde_json writes it is always scanned, except
            // an id that is an object or array (left to the full parse).
            let scanned = reply_parts(text.as_bytes());
            if !matches!(id, Some(Value::Object(_) | Value::Array(_))) {
                let (t, i) = scanned.unwrap_or_else(|| panic!("{text}"));
                assert_eq!(serde_json::from_str::<Value>(t).unwrap(), ret, "{text}");
                assert_eq!(i, id, "{text}");
            }
            check(text.as_bytes());
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
            check(&bytes);
        }
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
        let strings = ["", "}", "{", "\"\\", "a\\\"b", "[]", "é", "\u{0}\n\t\u{ff}"];
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
            s.route(format!("{{\"return\": 1, \"id\": {b}}}").as_bytes()),
            Ok(Routed::Reply(x, Ok(_))) if x == b
        ));
        // Not reused until its caller took the reply.
        assert_eq!(s.start(false), (3, Some(3)));
        s.finish(b);
        s.abandon(3);
        s.abandon(a);
        assert!(matches!(
            s.route(format!("{{\"return\": 1, \"id\": {a}}}").as_bytes()),
            Ok(Routed::Late)
        ));
        assert!(s.route(b"{\"return\": 1, \"id\": 99}").is_err());
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
            s.route(b"{\"return\": 1, \"id\": 1}"),
            Ok(Routed::Reply(1, _))
        ));
        s.finish(1);
        // The abandoned anonymous reply is still due: ids again.
        assert_eq!(s.start(false), (1, Some(1)));
        assert!(matches!(s.route(b"{\"return\": 0}"), Ok(Routed::Late)));
        assert!(matches!(
            s.route(b"{\"return\": 1, \"id\": 1}"),
            Ok(Routed::Reply(1, _))
        ));
        s.finish(1);
        assert_eq!(s.start(false), (ANONYMOUS, None));
        assert!(matches!(
            s.route(b"{\"return\": 0}"),
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
