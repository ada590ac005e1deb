//! The blocking clients, on std alone: [`Qmp`] for QEMU's monitor and
//! [`GuestAgent`] for `qemu-ga`.
//!
//! [`Qmp`] is `Clone + Send + Sync`: share it between threads and call
//! it from all of them at once.  There is no background thread; a
//! caller that waits for its reply reads the socket for everybody while
//! it waits (and hands replies and events to their owners), so one
//! command at a time costs no thread switch.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::proto::{
    self, Closed, EventFilter, EventHub, EventItem, Framed, Framer, Greeting, Keep, Polled, Routed,
    Session,
};
use crate::{Command, Options, QmpError};

/// A connection, before the protocol starts.
#[derive(Debug)]
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    /// A child's stdout (QEMU's output) and stdin (its input), for
    /// `-qmp stdio`.
    Stdio(ChildStdout, ChildStdin),
}

impl From<UnixStream> for Stream {
    fn from(s: UnixStream) -> Stream {
        Stream::Unix(s)
    }
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Stream {
        Stream::Tcp(s)
    }
}

impl Stream {
    /// Connect to a Unix socket, within `timeout` when given (retrying
    /// while the socket does not exist yet or refuses: QEMU may still be
    /// starting).
    pub fn connect_unix(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<Stream> {
        let path = path.as_ref();
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match UnixStream::connect(path) {
                Ok(s) => return Ok(Stream::Unix(s)),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                    ) && deadline.is_some_and(|d| Instant::now() < d) =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Err(Error::Timeout {
                        what: format!("connect to {} ({e})", path.display()),
                        after: timeout.unwrap_or_default(),
                    })
                }
                Err(e) => return Err(Error::from(e)),
            }
        }
    }

    /// Connect over TCP (`host:port`), within `timeout` when given.
    pub fn connect_tcp(addr: &str, timeout: Option<Duration>) -> Result<Stream> {
        use std::net::ToSocketAddrs;
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            let r = match timeout {
                Some(t) => TcpStream::connect_timeout(&a, t),
                None => TcpStream::connect(a),
            };
            match r {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(Stream::Tcp(s));
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    last = Some(Error::Timeout {
                        what: format!("connect to {a}"),
                        after: timeout.unwrap_or_default(),
                    })
                }
                Err(e) => last = Some(Error::from(e)),
            }
        }
        Err(last.unwrap_or_else(|| Error::Unsupported(format!("{addr} names no address").into())))
    }

    /// Take a spawned QEMU's stdin and stdout (started with piped stdio
    /// and `-qmp stdio`).
    pub fn from_child(child: &mut Child) -> Result<Stream> {
        match (child.stdout.take(), child.stdin.take()) {
            (Some(o), Some(i)) => Ok(Stream::Stdio(o, i)),
            _ => Err(Error::Unsupported(
                "the child's stdin and stdout must both be piped".into(),
            )),
        }
    }

    fn split(self, opts: &Options) -> Result<(Source, Sink)> {
        Ok(match self {
            Stream::Unix(s) => {
                s.set_write_timeout(opts.command_timeout)?;
                (Source::Unix(s.try_clone()?, None), Sink::Unix(s))
            }
            Stream::Tcp(s) => {
                s.set_write_timeout(opts.command_timeout)?;
                (Source::Tcp(s.try_clone()?, None), Sink::Tcp(s))
            }
            Stream::Stdio(o, i) => {
                crate::sys::set_nonblocking(o.as_raw_fd())?;
                crate::sys::set_nonblocking(i.as_raw_fd())?;
                (Source::Pipe(o), Sink::Pipe(i, opts.command_timeout))
            }
        })
    }
}

/// The reading half, with a time limit on every read.
enum Source {
    /// The socket and the receive timeout currently set on it.
    Unix(UnixStream, Option<Duration>),
    Tcp(TcpStream, Option<Duration>),
    Pipe(ChildStdout),
}

/// Whether to change a socket's receive timeout from `cur` to `want`:
/// only when the wait would overshoot by more than a little, or end far
/// too early, so one command at a time makes no extra system call.
fn retime(cur: Option<Duration>, want: Option<Duration>) -> bool {
    const SLACK: Duration = Duration::from_millis(5);
    match (cur, want) {
        (None, None) => false,
        (Some(c), Some(w)) => c > w + SLACK || w > c * 2,
        _ => true,
    }
}

impl Source {
    fn read(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<usize> {
        let want = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                Some(left.max(Duration::from_millis(1)))
            }
            None => None,
        };
        let r = match self {
            Source::Unix(s, cur) => {
                if retime(*cur, want) {
                    s.set_read_timeout(want)?;
                    *cur = want;
                }
                s.read(buf)
            }
            Source::Tcp(s, cur) => {
                if retime(*cur, want) {
                    s.set_read_timeout(want)?;
                    *cur = want;
                }
                s.read(buf)
            }
            Source::Pipe(p) => loop {
                match p.read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        crate::sys::wait_ready(p.as_raw_fd(), crate::sys::POLLIN, deadline)?
                    }
                    r => break r,
                }
            },
        };
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io::ErrorKind::TimedOut.into()),
            r => r,
        }
    }
}

/// The writing half.
enum Sink {
    Unix(UnixStream),
    Tcp(TcpStream),
    Pipe(ChildStdin, Option<Duration>),
}

impl Sink {
    fn send(&mut self, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        if !fds.is_empty() {
            let Sink::Unix(s) = self else {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "file descriptors can only be passed over a Unix socket",
                ));
            };
            let n = loop {
                match crate::sys::send_with_fds(s.as_raw_fd(), data, fds) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        crate::sys::wait_ready(s.as_raw_fd(), crate::sys::POLLOUT, None)?
                    }
                    r => break r?,
                }
            };
            return s.write_all(&data[n..]);
        }
        match self {
            Sink::Unix(s) => s.write_all(data),
            Sink::Tcp(s) => s.write_all(data),
            Sink::Pipe(p, timeout) => {
                let deadline = timeout.map(|t| Instant::now() + t);
                let mut data = data;
                while !data.is_empty() {
                    match p.write(data) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => data = &data[n..],
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            crate::sys::wait_ready(p.as_raw_fd(), crate::sys::POLLOUT, deadline)?
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }

    fn shutdown(&mut self) {
        match self {
            Sink::Unix(s) => drop(s.shutdown(std::net::Shutdown::Both)),
            Sink::Tcp(s) => drop(s.shutdown(std::net::Shutdown::Both)),
            Sink::Pipe(..) => {}
        }
    }
}

/// Framed reading: the next message's bytes, within the deadline.
struct Reader {
    source: Source,
    framer: Framer,
}

/// What ended a read.
enum ReadEnd {
    /// The deadline passed (the connection is fine).
    Timeout,
    /// The connection is over.
    Fatal(Error),
}

impl Reader {
    fn next(&mut self, deadline: Option<Instant>) -> std::result::Result<Framed<'_>, ReadEnd> {
        loop {
            match self.framer.next_range() {
                Ok(Some(f)) => return Ok(self.framer.framed(f)),
                Ok(None) => {}
                Err(e) => return Err(ReadEnd::Fatal(e.into())),
            }
            let space = self.framer.space();
            match self.source.read(space, deadline) {
                Ok(0) => {
                    return Err(ReadEnd::Fatal(if self.framer.mid_message() {
                        Error::Protocol("the connection closed in the middle of a message".into())
                    } else {
                        Error::Disconnected
                    }))
                }
                Ok(n) => self.framer.filled(n),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(ReadEnd::Timeout),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadEnd::Fatal(Error::from(e))),
            }
        }
    }
}

struct State {
    session: Session,
    replies: HashMap<u64, std::result::Result<proto::Returned, QmpError>>,
    hub: EventHub,
    /// Some caller is reading for everybody.
    reading: bool,
    /// Callers waiting on the condvar (notifying nobody would still cost
    /// a system call).
    waiting: usize,
    closed: Option<Closed>,
}

struct Inner {
    state: Mutex<State>,
    cond: Condvar,
    reader: Mutex<Reader>,
    writer: Mutex<(Sink, Vec<u8>)>,
    greeting: Greeting,
    oob: bool,
    options: Options,
    /// The server's schema, once fetched (`probe.rs`).
    probe: crate::probe::Cache,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding a lock leaves consistent data
    // behind (every update is one step), so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A QMP connection to QEMU (`qemu-system-*`, `qemu-storage-daemon`):
/// greeting read, capabilities negotiated, ready for commands.
#[derive(Clone)]
pub struct Qmp {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Qmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qmp")
            .field("greeting", &self.inner.greeting)
            .field("oob", &self.inner.oob)
            .finish()
    }
}

impl Qmp {
    /// Connect to QEMU's QMP Unix socket with the default [`Options`].
    pub fn connect_unix(path: impl AsRef<Path>) -> Result<Qmp> {
        Self::connect_unix_with(path, &Options::default())
    }

    /// Connect to QEMU's QMP Unix socket.
    pub fn connect_unix_with(path: impl AsRef<Path>, opts: &Options) -> Result<Qmp> {
        Self::start(Stream::connect_unix(path, opts.connect_timeout)?, opts)
    }

    /// Connect to QEMU's QMP TCP socket (`host:port`).
    pub fn connect_tcp(addr: &str, opts: &Options) -> Result<Qmp> {
        Self::start(Stream::connect_tcp(addr, opts.connect_timeout)?, opts)
    }

    /// Wait for QEMU to dial in (`-qmp unix:PATH,server=off` or a
    /// `-chardev socket,...,server=off`), within the connect time limit.
    pub fn accept(listener: &UnixListener, opts: &Options) -> Result<Qmp> {
        let fd = listener.as_raw_fd();
        let deadline = opts.connect_timeout.map(|t| Instant::now() + t);
        crate::sys::wait_ready(fd, crate::sys::POLLIN, deadline).map_err(|e| {
            if e.kind() == io::ErrorKind::TimedOut {
                Error::Timeout {
                    what: "QEMU to connect".into(),
                    after: opts.connect_timeout.unwrap_or_default(),
                }
            } else {
                Error::from(e)
            }
        })?;
        let (s, _) = listener.accept()?;
        s.set_nonblocking(false)?;
        Self::start(Stream::Unix(s), opts)
    }

    /// Start the protocol on a connection that is already open: read
    /// the greeting, negotiate (enabling `oob` when offered and
    /// [`Options::oob`] is on).
    pub fn start(stream: Stream, opts: &Options) -> Result<Qmp> {
        let (source, sink) = stream.split(opts)?;
        let mut reader = Reader {
            source,
            framer: Framer::new(opts.max_message),
        };
        let deadline = opts.greeting_timeout.map(|t| Instant::now() + t);
        // Events sent before the greeting are skipped (`Greeting::parse`).
        let greeting = loop {
            match reader.next(deadline) {
                Ok(msg) => match Greeting::parse(msg.message().bytes)? {
                    Some(g) => break g,
                    None => continue,
                },
                Err(ReadEnd::Timeout) => {
                    return Err(Error::Timeout {
                        what: "the greeting".into(),
                        after: opts.greeting_timeout.unwrap_or_default(),
                    })
                }
                Err(ReadEnd::Fatal(e)) => return Err(e),
            }
        };
        let oob = opts.oob && greeting.offers("oob");
        let qmp = Qmp {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    session: Session::new(opts.ids, opts.strict),
                    replies: HashMap::new(),
                    hub: EventHub::default(),
                    reading: false,
                    waiting: 0,
                    closed: None,
                }),
                cond: Condvar::new(),
                reader: Mutex::new(reader),
                writer: Mutex::new((sink, Vec::with_capacity(256))),
                greeting,
                oob,
                options: opts.clone(),
                probe: Default::default(),
            }),
        };
        let caps: Vec<&str> = if oob { vec!["oob"] } else { vec![] };
        qmp.call(
            "qmp_capabilities",
            Some(&serde_json::json!({ "enable": caps })),
            false,
            &[],
            opts.greeting_timeout,
        )?;
        crate::trace::ready(oob);
        Ok(qmp)
    }

    /// The server's greeting.
    pub fn greeting(&self) -> &Greeting {
        &self.inner.greeting
    }

    /// Whether out-of-band execution was negotiated.
    pub fn oob(&self) -> bool {
        self.inner.oob
    }

    /// The schema cache and options, for `probe.rs`.
    pub(crate) fn probing(&self) -> (&crate::probe::Cache, &Options) {
        (&self.inner.probe, &self.inner.options)
    }

    /// Run a command and decode its reply.
    pub fn execute<C: Command>(&self, command: &C) -> Result<C::Returns> {
        let v = self.call(
            C::NAME,
            Some(command),
            false,
            &[],
            self.inner.options.command_timeout,
        )?;
        proto::decode_return::<C>(v, self.inner.options.strict)
    }

    /// Run a command with its own time limit (`None`: wait as long as it
    /// takes).
    pub fn execute_timeout<C: Command>(
        &self,
        command: &C,
        timeout: Option<Duration>,
    ) -> Result<C::Returns> {
        let v = self.call(C::NAME, Some(command), false, &[], timeout)?;
        proto::decode_return::<C>(v, self.inner.options.strict)
    }

    /// Run a command out of band (`exec-oob`): QEMU answers it at once,
    /// even while other commands are still running.  Only for commands
    /// the schema marks `allow-oob`, once `oob` was negotiated.
    pub fn execute_oob<C: Command>(&self, command: &C) -> Result<C::Returns> {
        if !C::ALLOW_OOB {
            return Err(Error::Unsupported(
                format!("{} does not allow out-of-band execution", C::NAME).into(),
            ));
        }
        if !self.inner.oob {
            return Err(Error::Unsupported(
                "out-of-band execution was not negotiated".into(),
            ));
        }
        let v = self.call(
            C::NAME,
            Some(command),
            true,
            &[],
            self.inner.options.command_timeout,
        )?;
        proto::decode_return::<C>(v, self.inner.options.strict)
    }

    /// Run a command with file descriptors attached (SCM_RIGHTS, in the
    /// same message), for `getfd` and `add-fd`.  Unix sockets only.
    pub fn execute_with_fds<C: Command>(
        &self,
        command: &C,
        fds: &[BorrowedFd<'_>],
    ) -> Result<C::Returns> {
        let v = self.call(
            C::NAME,
            Some(command),
            false,
            fds,
            self.inner.options.command_timeout,
        )?;
        proto::decode_return::<C>(v, self.inner.options.strict)
    }

    /// Run a command by name with JSON arguments (for commands the
    /// bindings lack); returns the reply's `return` as JSON.
    pub fn execute_raw(&self, name: &str, arguments: Option<&Value>) -> Result<Value> {
        self.call(
            name,
            arguments,
            false,
            &[],
            self.inner.options.command_timeout,
        )
        .and_then(proto::to_value)
    }

    /// Run a human monitor command (HMP) and return its text.
    pub fn human_command(&self, command_line: &str) -> Result<String> {
        let v = self.execute_raw(
            "human-monitor-command",
            Some(&serde_json::json!({ "command-line": command_line })),
        )?;
        proto::hmp_text(v)
    }

    /// Receive every event from now on (up to [`Options::event_buffer`]
    /// waiting; older ones are dropped and reported as lagged).
    pub fn subscribe(&self) -> Subscription {
        self.subscribe_filtered(None)
    }

    /// Receive the events `filter` accepts.
    pub fn subscribe_filter(
        &self,
        filter: impl Fn(&proto::RawEvent) -> bool + Send + Sync + 'static,
    ) -> Subscription {
        self.subscribe_filtered(Some(Arc::new(filter)))
    }

    fn subscribe_filtered(&self, filter: Option<EventFilter>) -> Subscription {
        let id = lock(&self.inner.state)
            .hub
            .subscribe(self.inner.options.event_buffer, filter);
        Subscription {
            inner: self.inner.clone(),
            id,
        }
    }

    /// Close the connection: calls in flight and subscribers end with
    /// [`Error::Disconnected`].
    pub fn close(&self) {
        lock(&self.inner.writer).0.shutdown();
        let mut st = lock(&self.inner.state);
        self.inner.close(&mut st, Closed::Disconnected);
    }

    fn call<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: Option<&A>,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<proto::Returned> {
        if self.inner.options.check_commands && !crate::probe::exempt(name) {
            self.check_before_send(name, args)?;
        }
        crate::trace::command(name, || self.exchange(name, args, oob, fds, timeout))
    }

    fn exchange<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: Option<&A>,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<proto::Returned> {
        let inner = &*self.inner;
        let deadline = timeout.map(|t| Instant::now() + t);
        let (id, wire) = {
            let mut st = lock(&inner.state);
            if let Some(c) = &st.closed {
                return Err(c.error());
            }
            st.session.start(oob)
        };
        crate::trace::command_id(wire);
        {
            let mut w = lock(&inner.writer);
            let (sink, buf) = &mut *w;
            buf.clear();
            if let Err(e) = proto::encode_request(buf, name, args, wire, oob) {
                lock(&inner.state).session.cancel(id);
                return Err(e);
            }
            if let Err(e) = sink.send(buf, fds) {
                drop(w);
                let mut st = lock(&inner.state);
                if e.kind() == io::ErrorKind::Unsupported {
                    // Refused before anything was written.
                    st.session.cancel(id);
                    return Err(Error::Unsupported(e.to_string().into()));
                }
                st.session.abandon(id);
                if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock {
                    // Part of the request may have gone out: the stream
                    // cannot be trusted any more.
                    let c =
                        Closed::Io(io::ErrorKind::TimedOut, format!("sending {name} timed out"));
                    inner.close(&mut st, c);
                    return Err(Error::Timeout {
                        what: format!("sending {name}"),
                        after: timeout.unwrap_or_default(),
                    });
                }
                let c = Closed::from_error(&Error::from(e));
                inner.close(&mut st, c.clone());
                return Err(c.error());
            }
        }
        let mut st = lock(&inner.state);
        loop {
            if let Some(r) = st.replies.remove(&id) {
                st.session.finish(id);
                return r.map_err(Error::Qmp);
            }
            if let Some(c) = &st.closed {
                return Err(c.error());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                st.session.abandon(id);
                return Err(Error::Timeout {
                    what: name.to_string(),
                    after: timeout.unwrap_or_default(),
                });
            }
            st = inner.wait_or_read(st, deadline);
        }
    }
}

impl Inner {
    /// Read one message for everybody if nobody else is, else wait for
    /// whoever is; returns with the state locked again.
    fn wait_or_read<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, State> {
        if st.reading {
            st.waiting += 1;
            let mut st = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    self.cond
                        .wait_timeout(st, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
            st.waiting -= 1;
            return st;
        }
        st.reading = true;
        drop(st);
        let mut reader = lock(&self.reader);
        let outcome = reader.next(deadline).map(|msg| {
            let mut st = lock(&self.state);
            let routed = st.session.route(msg);
            (st, routed)
        });
        let mut st = match outcome {
            Ok((mut st, Ok(routed))) => {
                match routed {
                    Routed::Reply(id, r) => {
                        st.replies.insert(id, r);
                    }
                    Routed::Event(ev) => st.hub.publish(&ev),
                    Routed::Late => {}
                }
                st
            }
            Ok((mut st, Err(e))) => {
                self.close(&mut st, Closed::from_error(&e));
                st
            }
            Err(ReadEnd::Timeout) => lock(&self.state),
            Err(ReadEnd::Fatal(e)) => {
                let mut st = lock(&self.state);
                self.close(&mut st, Closed::from_error(&e));
                st
            }
        };
        drop(reader);
        st.reading = false;
        if st.waiting > 0 {
            self.cond.notify_all();
        }
        st
    }

    fn close(&self, st: &mut State, why: Closed) {
        if st.closed.is_none() {
            crate::trace::closed(&why.error());
            st.closed = Some(why);
        }
        st.session.drain();
        st.hub.close();
        self.cond.notify_all();
    }
}

/// Events from a [`Qmp`] connection, for one subscriber.  Receiving also
/// reads the connection when no command is waiting, so events flow
/// while nothing else happens.
pub struct Subscription {
    inner: Arc<Inner>,
    id: u64,
}

impl Subscription {
    /// The next event, or how many were lost; waits as long as it takes.
    /// Ends with [`Error::Disconnected`] (or the error that ended the
    /// connection) once the queue is empty and the connection is over.
    pub fn recv(&self) -> Result<EventItem> {
        self.recv_until(None)
    }

    /// As [`Subscription::recv`], within `timeout` ([`Error::Timeout`]
    /// after it).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<EventItem> {
        self.recv_until(Some(Instant::now() + timeout))
            .map_err(|e| match e {
                Error::Timeout { .. } => Error::Timeout {
                    what: "an event".into(),
                    after: timeout,
                },
                e => e,
            })
    }

    /// An event already received, if any (reads nothing).
    pub fn try_recv(&self) -> Option<EventItem> {
        match lock(&self.inner.state).hub.poll(self.id, None) {
            Polled::Item(i) => Some(i),
            _ => None,
        }
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<EventItem> {
        let mut st = lock(&self.inner.state);
        loop {
            match st.hub.poll(self.id, None) {
                Polled::Item(i) => return Ok(i),
                Polled::Closed => {
                    return Err(st
                        .closed
                        .as_ref()
                        .map_or(Error::Disconnected, Closed::error))
                }
                Polled::Empty => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout {
                    what: "an event".into(),
                    after: Duration::ZERO,
                });
            }
            st = self.inner.wait_or_read(st, deadline);
        }
    }
}

impl Subscription {
    /// The first event `filter` accepts, within `timeout`; the others
    /// are passed over.  Subscribe before doing what causes the event,
    /// so it cannot come before the wait starts.  Ends with
    /// [`Error::EventsLost`] if this subscriber fell behind (the event
    /// may have been dropped), [`Error::Timeout`] when the time is up.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut filter: impl FnMut(&proto::RawEvent) -> bool,
    ) -> Result<proto::RawEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.recv_until(Some(deadline)) {
                Ok(EventItem::Event(ev)) if filter(&ev) => return Ok(ev),
                Ok(EventItem::Event(_)) => {}
                Ok(EventItem::Lagged(count)) => return Err(Error::EventsLost { count }),
                Err(Error::Timeout { .. }) => {
                    return Err(Error::Timeout {
                        what: "a matching event".into(),
                        after: timeout,
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The first event `E` that `filter` accepts, decoded, within
    /// `timeout` (as [`Subscription::wait_for`]; an `E` whose data does
    /// not decode ends the wait with [`Error::Decode`]).
    pub fn wait_event<E: crate::Event>(
        &self,
        timeout: Duration,
        mut filter: impl FnMut(&E) -> bool,
    ) -> Result<E> {
        let mut found = None;
        self.wait_for(timeout, |ev| {
            proto::typed_match(ev, &mut filter, &mut found)
        })?;
        found.unwrap_or(Err(Error::Disconnected))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&self.inner.state).hub.unsubscribe(self.id);
    }
}

/// Waiting for jobs and devices, and fd sets, on the bindings' commands.
#[cfg(feature = "qmp")]
impl Qmp {
    /// Run the job `start` starts (`blockdev-create`, `blockdev-mirror`,
    /// `blockdev-backup`, `block-stream`, `block-commit`, …) to its end,
    /// within `timeout` (`None`: as long as it takes).
    ///
    /// The job is followed by its `job-id` (or, for a block job without
    /// one, its `device`, which QEMU then names it after), through
    /// `JOB_STATUS_CHANGE` events subscribed to before the job starts.
    /// A job that waits in `ready` (a mirror, an active commit) is
    /// completed with `job-complete`.  Once it concluded, its outcome is
    /// read from `query-jobs` and it is dismissed (`job-dismiss`); a
    /// block job QEMU dismissed by itself (`auto-dismiss`, the default)
    /// reports through `BLOCK_JOB_COMPLETED` instead.  A failed job is
    /// [`Error::Job`] with QEMU's message.  On a time limit the job is
    /// left as it is.
    pub fn run_job<C: Command>(&self, start: &C, timeout: Option<Duration>) -> Result<()> {
        let id = crate::wait::job_id_of(start)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let sub = self.subscribe_filter(crate::wait::job_filter(id.clone()));
        self.execute(start)?;
        let mut watch = crate::wait::JobWatch::new(id);
        loop {
            let step = match sub.recv_until(deadline) {
                Ok(EventItem::Event(ev)) => watch.event(&ev)?,
                Ok(EventItem::Lagged(_)) => {
                    watch.caught_up(&self.execute(&crate::wait::query_jobs())?)
                }
                Err(Error::Timeout { .. }) => {
                    return Err(Error::Timeout {
                        what: format!("job {}", watch.id),
                        after: timeout.unwrap_or_default(),
                    })
                }
                Err(e) => return Err(e),
            };
            match step {
                crate::wait::JobStep::Wait => {}
                crate::wait::JobStep::Complete(c) => self.execute(&c)?,
                crate::wait::JobStep::Concluded => {
                    let jobs = self.execute(&crate::wait::query_jobs())?;
                    let (dismiss, result) = watch.conclude(&jobs);
                    if let Some(d) = dismiss {
                        self.execute(&d)?;
                    }
                    return result;
                }
            }
        }
    }

    /// `device_del` of `id` (a device's id or QOM path), then wait for
    /// its `DEVICE_DELETED` within `timeout` (`None`: as long as it
    /// takes; a PCI device goes only once the guest lets it).
    pub fn device_del(&self, id: &str, timeout: Option<Duration>) -> Result<()> {
        let sub = self.subscribe_filter(crate::wait::device_deleted_filter(id.to_string()));
        self.execute(&crate::wait::device_del(id))?;
        let deadline = timeout.map(|t| Instant::now() + t);
        match sub.recv_until(deadline) {
            Ok(EventItem::Event(_)) => Ok(()),
            Ok(EventItem::Lagged(count)) => Err(Error::EventsLost { count }),
            Err(Error::Timeout { .. }) => Err(Error::Timeout {
                what: format!("DEVICE_DELETED of {id}"),
                after: timeout.unwrap_or_default(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Pass `fd` to QEMU with `add-fd` (into the fd set `fdset_id`, or a
    /// new one); the guard removes the whole fd set (`remove-fd`) when
    /// dropped, or when [`FdSet::remove`] is called to see the outcome.
    /// Unix sockets only.
    pub fn add_fd(
        &self,
        fd: BorrowedFd<'_>,
        fdset_id: Option<i64>,
        opaque: Option<&str>,
    ) -> Result<FdSet> {
        let info = self.execute_with_fds(&crate::wait::add_fd(fdset_id, opaque), &[fd])?;
        Ok(FdSet {
            qmp: self.clone(),
            info: info.into(),
            removed: false,
        })
    }
}

/// An fd set QEMU holds, from [`Qmp::add_fd`]: removed with `remove-fd`
/// when dropped (errors then are ignored: call [`FdSet::remove`] to see
/// them).
#[cfg(feature = "qmp")]
pub struct FdSet {
    qmp: Qmp,
    info: crate::FdSetInfo,
    removed: bool,
}

#[cfg(feature = "qmp")]
impl FdSet {
    /// The fd set's id and the descriptor's number in QEMU.
    pub fn info(&self) -> crate::FdSetInfo {
        self.info
    }

    /// Remove the fd set now.
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        self.qmp
            .execute(&crate::wait::remove_fdset(self.info.fdset_id))
    }
}

#[cfg(feature = "qmp")]
impl Drop for FdSet {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self
                .qmp
                .execute(&crate::wait::remove_fdset(self.info.fdset_id));
        }
    }
}

/// A guest agent connection (`qemu-ga`, through the virtio-serial or
/// vsock channel QEMU exposes, or its Unix socket).  The agent sends no
/// greeting and may hold stale replies from an earlier client, so the
/// client resynchronises (0xFF and `guest-sync-delimited` with a random
/// id) before its first command and after any time limit passes; it
/// never relies on the agent echoing ids.  One command at a time.
pub struct GuestAgent {
    conn: Mutex<AgentConn>,
    options: Options,
}

struct AgentConn {
    reader: Reader,
    sink: Sink,
    buf: Vec<u8>,
    synced: bool,
    closed: Option<Closed>,
}

impl GuestAgent {
    /// Connect to the agent's Unix socket with the default [`Options`].
    pub fn connect_unix(path: impl AsRef<Path>) -> Result<GuestAgent> {
        Self::connect_unix_with(path, &Options::default())
    }

    /// Connect to the agent's Unix socket.
    pub fn connect_unix_with(path: impl AsRef<Path>, opts: &Options) -> Result<GuestAgent> {
        Self::start(Stream::connect_unix(path, opts.connect_timeout)?, opts)
    }

    /// Use a connection that is already open.  Nothing is exchanged until
    /// the first command.
    pub fn start(stream: Stream, opts: &Options) -> Result<GuestAgent> {
        let (source, sink) = stream.split(opts)?;
        Ok(GuestAgent {
            conn: Mutex::new(AgentConn {
                reader: Reader {
                    source,
                    framer: Framer::new(opts.max_message),
                },
                sink,
                buf: Vec::with_capacity(256),
                synced: false,
                closed: None,
            }),
            options: opts.clone(),
        })
    }

    /// Resynchronise now (done before the first command anyway).
    pub fn sync(&self) -> Result<()> {
        let mut c = lock(&self.conn);
        let deadline = self.options.command_timeout.map(|t| Instant::now() + t);
        c.sync(deadline, self.options.command_timeout)
    }

    /// Run a command and decode its reply.  Commands whose schema says
    /// `success-response: false` (`guest-shutdown`, `guest-suspend-*`)
    /// return as soon as they are sent: the agent answers them only if
    /// they fail, and that answer is skipped by the next resync.
    pub fn execute<C: Command>(&self, command: &C) -> Result<C::Returns> {
        let v = self.call(
            C::NAME,
            Some(command),
            C::SUCCESS_RESPONSE,
            self.options.command_timeout,
        )?;
        proto::decode_return::<C>(v, self.options.strict)
    }

    /// Run a command with its own time limit.
    pub fn execute_timeout<C: Command>(
        &self,
        command: &C,
        timeout: Option<Duration>,
    ) -> Result<C::Returns> {
        let v = self.call(C::NAME, Some(command), C::SUCCESS_RESPONSE, timeout)?;
        proto::decode_return::<C>(v, self.options.strict)
    }

    /// Run a command by name with JSON arguments; waits for a reply.
    pub fn execute_raw(&self, name: &str, arguments: Option<&Value>) -> Result<Value> {
        self.call(name, arguments, true, self.options.command_timeout)
            .and_then(proto::to_value)
    }

    fn call<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: Option<&A>,
        wait: bool,
        timeout: Option<Duration>,
    ) -> Result<proto::Returned> {
        crate::trace::command(name, || self.exchange(name, args, wait, timeout))
    }

    fn exchange<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: Option<&A>,
        wait: bool,
        timeout: Option<Duration>,
    ) -> Result<proto::Returned> {
        let mut c = lock(&self.conn);
        if let Some(cl) = &c.closed {
            return Err(cl.error());
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        if !c.synced {
            c.sync(deadline, timeout)?;
        }
        let c = &mut *c;
        c.buf.clear();
        proto::encode_request(&mut c.buf, name, args, None, false)?;
        if let Err(e) = c.sink.send(&c.buf, &[]) {
            let e = Error::from(e);
            c.closed = Some(Closed::from_error(&e));
            return Err(e);
        }
        if !wait {
            // An error reply may still come: resync before the next one.
            c.synced = false;
            return Ok(proto::empty_return());
        }
        match c.reader.next(deadline) {
            Ok(msg) => proto::agent_reply(msg)
                .and_then(|r| r.map_err(Error::Qmp))
                .inspect_err(|e| {
                    if e.is_fatal() {
                        c.synced = false;
                    }
                }),
            Err(ReadEnd::Timeout) => {
                c.synced = false;
                Err(Error::Timeout {
                    what: name.to_string(),
                    after: timeout.unwrap_or_default(),
                })
            }
            Err(ReadEnd::Fatal(e)) => {
                c.closed = Some(Closed::from_error(&e));
                Err(e)
            }
        }
    }
}

impl AgentConn {
    fn sync(&mut self, deadline: Option<Instant>, timeout: Option<Duration>) -> Result<()> {
        let (id, bytes) = proto::agent_sync_request();
        self.framer_resync();
        if let Err(e) = self.sink.send(&bytes, &[]) {
            let e = Error::from(e);
            self.closed = Some(Closed::from_error(&e));
            return Err(e);
        }
        loop {
            match self.reader.next(deadline) {
                // Anything but our id is a stale reply: skip it.
                Ok(msg) => {
                    if proto::is_sync_reply(msg.message().bytes, id) {
                        crate::trace::synced();
                        self.synced = true;
                        return Ok(());
                    }
                }
                Err(ReadEnd::Timeout) => {
                    return Err(Error::Timeout {
                        what: "guest-sync-delimited".into(),
                        after: timeout.unwrap_or_default(),
                    })
                }
                Err(ReadEnd::Fatal(e)) => {
                    self.closed = Some(Closed::from_error(&e));
                    return Err(e);
                }
            }
        }
    }

    fn framer_resync(&mut self) {
        self.reader.framer.resync();
    }
}
