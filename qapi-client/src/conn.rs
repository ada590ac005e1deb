//! The connection core both drivers poll (quinn-proto's and rustls's
//! way): everything a QMP connection knows and decides, and no I/O.
//!
//! A driver reads messages and hands each to [`Core::deliver`]; writes
//! the requests [`Core::begin`] numbered; and waits, in its own way
//! (a condition variable, a waker), until [`Core::poll_reply`] or
//! [`Core::poll_event`] is ready.  Which reply goes to which call, what
//! a late reply or a broken message means, when the connection is over
//! and what every later call then says, and what a failed write costs
//! are all decided here, once.

use std::collections::HashMap;
use std::io;
use std::task::{Poll, Waker};
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::proto::{Closed, EventFilter, EventHub, EventItem, Keep, Polled, Returned, Session};
use crate::{Options, QmpError};

/// A call in flight: waiting (with whom to wake), or answered.
enum Slot {
    Waiting(Option<Waker>),
    Done(std::result::Result<Returned, QmpError>),
}

/// One QMP connection's state: ids and reply matching ([`Session`]),
/// the calls in flight and their replies, the event subscribers
/// ([`EventHub`]), and why the connection ended, once it has.
pub(crate) struct Core {
    session: Session,
    calls: HashMap<u64, Slot>,
    hub: EventHub,
    closed: Option<Closed>,
    event_buffer: usize,
    /// `qmp_capabilities` was answered.
    negotiated: bool,
}

impl Core {
    pub(crate) fn new(opts: &Options) -> Core {
        Core {
            session: Session::new(opts.ids, opts.strict),
            calls: HashMap::new(),
            hub: EventHub::default(),
            closed: None,
            event_buffer: opts.event_buffer,
            negotiated: false,
        }
    }

    /// A command about to be sent: its key, and the id to send (`None`:
    /// none).  Fails once the connection is over.
    pub(crate) fn begin(&mut self, oob: bool) -> Result<(u64, Option<u64>)> {
        if let Some(c) = &self.closed {
            return Err(c.error());
        }
        let (key, wire) = self.session.start(oob);
        self.calls.insert(key, Slot::Waiting(None));
        Ok((key, wire))
    }

    /// One message read from the server: a reply is kept for its caller
    /// (who is woken), an event goes to every subscriber, a reply whose
    /// caller gave up is dropped.  A message that breaks the protocol
    /// ends the connection.
    pub(crate) fn deliver(&mut self, msg: impl Keep) {
        match self.session.route(msg) {
            Ok(crate::proto::Routed::Reply(key, reply)) => {
                if let Some(Slot::Waiting(Some(w))) = self.calls.insert(key, Slot::Done(reply)) {
                    w.wake();
                }
            }
            Ok(crate::proto::Routed::Event(ev)) => self.hub.publish(&ev),
            Ok(crate::proto::Routed::Late) => {}
            // A greeting again while negotiating: QEMU set its monitor up
            // twice as the client connected; the negotiation that follows
            // is the one that counts.  Once negotiated, it would have
            // reset the monitor under the client: the connection ends.
            Ok(crate::proto::Routed::Greeting) if !self.negotiated => {}
            Ok(crate::proto::Routed::Greeting) => self.close(Closed::Protocol(
                "a second greeting: QEMU reset the monitor to capabilities negotiation".into(),
            )),
            Err(e) => self.close(Closed::from_error(&e)),
        }
    }

    /// The reply to `key` if it came (the key is free again once taken),
    /// the error that ended the connection if it did first; else
    /// pending, and `waker` is woken when that changes.
    pub(crate) fn poll_reply(&mut self, key: u64, waker: Option<&Waker>) -> Poll<Result<Returned>> {
        match self.calls.get_mut(&key) {
            Some(Slot::Waiting(w)) if self.closed.is_none() => {
                if let Some(waker) = waker {
                    if !w.as_ref().is_some_and(|w| w.will_wake(waker)) {
                        *w = Some(waker.clone());
                    }
                }
                Poll::Pending
            }
            Some(Slot::Done(_)) => {
                let Some(Slot::Done(reply)) = self.calls.remove(&key) else {
                    return Poll::Ready(Err(self.closed_error()));
                };
                self.session.finish(key);
                Poll::Ready(reply.map_err(Error::Qmp))
            }
            _ => Poll::Ready(Err(self.closed_error())),
        }
    }

    /// The caller of `key` gives up (a time limit passed, or its future
    /// was dropped): its reply, should it come, is dropped.  `sent`:
    /// whether any of the request may have gone out (if not, the key is
    /// simply free again).
    pub(crate) fn forget(&mut self, key: u64, sent: bool) {
        match self.calls.remove(&key) {
            Some(Slot::Done(_)) => self.session.finish(key),
            _ if sent => self.session.abandon(key),
            _ => self.session.cancel(key),
        }
    }

    /// Writing the request of `key` (command `name`) failed with `e`:
    /// what that costs.  Refused before anything was written (fds over a
    /// socket that cannot carry them): this call fails, the connection
    /// goes on.  Timed out: part of the request may be out, so the
    /// stream cannot be trusted and the connection ends.  Anything else
    /// ends the connection too.
    pub(crate) fn send_failed(
        &mut self,
        key: u64,
        name: &str,
        e: io::Error,
        timeout: Option<Duration>,
    ) -> Error {
        if e.kind() == io::ErrorKind::Unsupported {
            self.forget(key, false);
            return Error::Unsupported(e.to_string().into());
        }
        self.forget(key, true);
        if matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ) {
            let why = format!("sending {name} timed out");
            self.close(Closed::Io(io::ErrorKind::TimedOut, why));
            return Error::Timeout {
                what: format!("sending {name}"),
                after: timeout.unwrap_or_default(),
            };
        }
        self.close(Closed::from_error(&Error::from(e)));
        self.closed_error()
    }

    /// End the connection (the first reason is kept): every call in
    /// flight and every subscriber is woken and told; replies that came
    /// before stay for their callers.
    pub(crate) fn close(&mut self, why: Closed) {
        if self.closed.is_none() {
            crate::trace::closed(&why.error());
            self.closed = Some(why);
        }
        self.session.drain();
        self.calls.retain(|_, slot| match slot {
            Slot::Waiting(w) => {
                if let Some(w) = w.take() {
                    w.wake();
                }
                false
            }
            Slot::Done(_) => true,
        });
        self.hub.close();
    }

    /// `qmp_capabilities` was answered: a greeting from now on is an
    /// error.
    pub(crate) fn negotiated(&mut self) {
        self.negotiated = true;
    }

    /// Whether the connection is over.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// What every call says once the connection is over.
    pub(crate) fn closed_error(&self) -> Error {
        self.closed
            .as_ref()
            .map_or(Error::Disconnected, Closed::error)
    }

    /// A new subscriber (see [`EventHub`]).
    pub(crate) fn subscribe(&mut self, filter: Option<EventFilter>) -> u64 {
        self.hub.subscribe(self.event_buffer, filter)
    }

    pub(crate) fn unsubscribe(&mut self, id: u64) {
        self.hub.unsubscribe(id);
    }

    /// The subscriber's next item; once the queue is empty and the
    /// connection over, the error that ended it; else pending, and
    /// `waker` is woken when that changes.
    pub(crate) fn poll_event(&mut self, id: u64, waker: Option<&Waker>) -> Poll<Result<EventItem>> {
        match self.hub.poll(id, waker) {
            Polled::Item(i) => Poll::Ready(Ok(i)),
            Polled::Closed => Poll::Ready(Err(self.closed_error())),
            Polled::Empty => Poll::Pending,
        }
    }
}

/// Connecting to the Unix socket `path` failed with `e`: `None` to try
/// again (it does not exist yet, or refuses: QEMU may still be starting,
/// and the time limit has not `passed`), else the error to return.
pub(crate) fn connect_failed(
    e: io::Error,
    path: &std::path::Path,
    passed: bool,
    timeout: Option<Duration>,
) -> Option<Error> {
    let starting = matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    );
    match timeout {
        Some(after) if passed => Some(Error::Timeout {
            what: format!("connect to {} ({e})", path.display()),
            after,
        }),
        Some(_) if starting => None,
        _ => Some(Error::from(e)),
    }
}

/// What a driver's read says when its deadline passed: a time limit
/// whose step and length the caller fills in ([`timed`]).
pub(crate) fn deadline_passed() -> Error {
    Error::Timeout {
        what: String::new(),
        after: Duration::ZERO,
    }
}

/// `e`, with a passed deadline ([`deadline_passed`]) said as the time
/// limit `after` waiting for `what`.
pub(crate) fn timed(e: Error, what: impl FnOnce() -> String, after: Option<Duration>) -> Error {
    match e {
        Error::Timeout { what: w, .. } if w.is_empty() => Error::Timeout {
            what: what(),
            after: after.unwrap_or_default(),
        },
        e => e,
    }
}

/// What the end of the stream means: mid-message, a broken message.
pub(crate) fn ended(mid_message: bool) -> Error {
    if mid_message {
        Error::Protocol("the connection closed in the middle of a message".into())
    } else {
        Error::Disconnected
    }
}

/// File descriptors asked for over a connection that cannot carry them.
pub(crate) fn no_fds() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "file descriptors can only be passed over a Unix socket",
    )
}

/// Whether `C` may be sent out of band on a connection that negotiated
/// it (`negotiated`) or not.
pub(crate) fn check_oob<C: crate::Command>(negotiated: bool) -> Result<()> {
    if !C::ALLOW_OOB {
        return Err(Error::Unsupported(
            format!("{} does not allow out-of-band execution", C::NAME).into(),
        ));
    }
    if !negotiated {
        return Err(Error::Unsupported(
            "out-of-band execution was not negotiated".into(),
        ));
    }
    Ok(())
}

/// The arguments of `qmp_capabilities`: `oob` enabled when `oob`.
pub(crate) fn capabilities(oob: bool) -> Value {
    let caps: &[&str] = if oob { &["oob"] } else { &[] };
    serde_json::json!({ "enable": caps })
}

/// The arguments of `human-monitor-command`.
pub(crate) fn hmp(command_line: &str) -> Value {
    serde_json::json!({ "command-line": command_line })
}

/// What waiting for an event makes of the next item: the event if
/// `filter` takes it (`Some(Ok)`), an error if events were lost (the one
/// awaited may have been among them), `None` to go on waiting.
pub(crate) fn matching(
    item: EventItem,
    filter: &mut impl FnMut(&crate::RawEvent) -> bool,
) -> Option<Result<crate::RawEvent>> {
    match item {
        EventItem::Event(ev) if filter(&ev) => Some(Ok(ev)),
        EventItem::Event(_) => None,
        EventItem::Lagged(count) => Some(Err(Error::EventsLost { count })),
    }
}

/// The guest agent's side of a connection: whether the stream is known
/// to be in step (resynchronised, and every command since answered), and
/// why it ended, once it has.  The agent has no ids and no events, so
/// this is all there is to decide.
#[derive(Default)]
pub(crate) struct AgentState {
    synced: bool,
    closed: Option<Closed>,
}

impl AgentState {
    /// Before a command: fails once the connection is over; else whether
    /// a resync must come first.
    pub(crate) fn check(&self) -> Result<bool> {
        match &self.closed {
            Some(c) => Err(c.error()),
            None => Ok(!self.synced),
        }
    }

    /// A request goes out: until [`AgentState::answered`], the stream is
    /// out of step (a call cut short, or a command that is answered only
    /// when it fails, leaves it so, and the next call resyncs).
    pub(crate) fn sending(&mut self) {
        self.synced = false;
    }

    /// The reply came (or the resync's did): in step again.
    pub(crate) fn answered(&mut self) {
        self.synced = true;
    }

    /// A call ended with `r`: a fatal error ends the connection.
    pub(crate) fn end<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if e.is_fatal() {
                self.closed = Some(Closed::from_error(e));
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Message;

    fn msg(text: &str) -> Message<'_> {
        Message {
            bytes: text.as_bytes(),
            commas: text.matches(',').count(),
        }
    }

    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": ""}, "capabilities": ["oob"]}}"#;

    /// QEMU greets twice when a client connects as its monitor is set up:
    /// while negotiating, the second greeting is passed over; once
    /// negotiated, a greeting means QEMU reset the monitor, and the
    /// connection ends with a protocol error every call then reports.
    #[test]
    fn a_second_greeting_is_passed_over_only_while_negotiating() {
        let mut core = Core::new(&Options::default());
        let (key, wire) = core.begin(false).unwrap();
        assert_eq!(wire, None);
        core.deliver(msg(GREETING));
        assert!(!core.is_closed());
        core.deliver(msg(r#"{"return": {}}"#));
        assert!(matches!(core.poll_reply(key, None), Poll::Ready(Ok(_))));
        core.negotiated();
        let (key, _) = core.begin(false).unwrap();
        core.deliver(msg(GREETING));
        assert!(core.is_closed());
        let r = core.poll_reply(key, None);
        assert!(
            matches!(r, Poll::Ready(Err(Error::Protocol(ref m))) if m.contains("second greeting")),
            "{r:?}"
        );
        assert!(matches!(core.begin(false), Err(Error::Protocol(_))));
    }

    /// A reply that came before the connection ended stays for its
    /// caller; calls still waiting get the reason it ended.
    #[test]
    fn replies_outlive_the_close_and_waiters_get_its_reason() {
        let mut core = Core::new(&Options::default());
        let (a, _) = core.begin(false).unwrap();
        let (b, wire) = core.begin(false).unwrap();
        core.deliver(msg(r#"{"return": 7}"#));
        core.close(Closed::Protocol("broken".into()));
        assert!(matches!(core.poll_reply(a, None), Poll::Ready(Ok(_))));
        assert!(wire.is_some());
        let r = core.poll_reply(b, None);
        assert!(
            matches!(r, Poll::Ready(Err(Error::Protocol(ref m))) if m == "broken"),
            "{r:?}"
        );
    }
}
