//! The blocking clients, on std alone: [`Qmp`] for QEMU's monitor and
//! [`GuestAgent`] for `qemu-ga`.
//!
//! [`Qmp`] is `Clone + Send + Sync`: share it between threads and call
//! it from all of them at once.  There is no background thread; a
//! caller that waits for its reply reads the socket for everybody while
//! it waits (and hands replies and events to their owners), so one
//! command at a time costs no thread switch.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::conn::{AgentState, Core};
use crate::error::{Error, Result};
use crate::proto::{self, Closed, EventItem, Framed, Framer, Greeting, Keep, RawEvent};
use crate::{Command, Options};

/// A call, as the shared methods (`api.rs`) write it.
macro_rules! aw {
    ($e:expr) => {
        $e
    };
}

/// A call in its tracing span.
macro_rules! traced {
    ($name:expr, $e:expr) => {
        crate::trace::command($name, || $e)
    };
}

crate::api::stream_api!();

impl Stream {
    /// Connect to a Unix socket, within `timeout` when given (retrying
    /// while the socket does not exist yet or refuses: QEMU may still be
    /// starting).
    pub fn connect_unix(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<Stream> {
        let path = path.as_ref();
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let e = match UnixStream::connect(path) {
                Ok(s) => return Ok(Stream::Unix(s)),
                Err(e) => e,
            };
            let passed = deadline.is_some_and(|d| Instant::now() >= d);
            if let Some(e) = crate::conn::connect_failed(e, path, passed, timeout) {
                return Err(e);
            }
            std::thread::sleep(Duration::from_millis(10));
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

    fn split(self, opts: &Options) -> Result<(Reader, Sink)> {
        let (source, sink) = match self {
            Stream::Unix(s) => {
                s.set_write_timeout(opts.command_timeout)?;
                (
                    Source::Socket(Box::new(s.try_clone()?), None),
                    Sink::Unix(s),
                )
            }
            Stream::Tcp(s) => {
                s.set_write_timeout(opts.command_timeout)?;
                (Source::Socket(Box::new(s.try_clone()?), None), Sink::Tcp(s))
            }
            Stream::Stdio(o, i) => {
                crate::sys::set_nonblocking(o.as_raw_fd())?;
                crate::sys::set_nonblocking(i.as_raw_fd())?;
                (Source::Pipe(o), Sink::Pipe(i, opts.command_timeout))
            }
        };
        let framer = Framer::new(opts.max_message);
        Ok((Reader { source, framer }, sink))
    }
}

/// A socket whose receive timeout can be set.
trait Socket: Read + Send {
    fn set_timeout(&self, t: Option<Duration>) -> io::Result<()>;
}

impl Socket for UnixStream {
    fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(t)
    }
}

impl Socket for TcpStream {
    fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(t)
    }
}

/// The reading half, with a time limit on every read.
enum Source {
    /// The socket and the receive timeout currently set on it.
    Socket(Box<dyn Socket>, Option<Duration>),
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
            Source::Socket(s, cur) => {
                if retime(*cur, want) {
                    s.set_timeout(want)?;
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
        match self {
            Sink::Unix(s) if !fds.is_empty() => {
                let n = loop {
                    match crate::sys::send_with_fds(s.as_raw_fd(), data, fds) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            crate::sys::wait_ready(s.as_raw_fd(), crate::sys::POLLOUT, None)?
                        }
                        r => break r?,
                    }
                };
                s.write_all(&data[n..])
            }
            _ if !fds.is_empty() => Err(crate::conn::no_fds()),
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

/// `data` sent; the socket's own write time limit bounds it.
fn send_before(sink: &mut Sink, data: &[u8], _: Option<Instant>) -> Result<()> {
    Ok(sink.send(data, &[])?)
}

/// Framed reading: the next message's bytes.
struct Reader {
    source: Source,
    framer: Framer,
}

impl Reader {
    /// The next message, before `deadline` (after it:
    /// [`crate::conn::deadline_passed`]).
    fn next(&mut self, deadline: Option<Instant>) -> Result<Framed<'_>> {
        loop {
            if let Some(f) = self.framer.next_range()? {
                return Ok(self.framer.framed(f));
            }
            let space = self.framer.space();
            match self.source.read(space, deadline) {
                Ok(0) => return Err(crate::conn::ended(self.framer.mid_message())),
                Ok(n) => self.framer.filled(n),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(crate::conn::deadline_passed())
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::from(e)),
            }
        }
    }
}

/// The core, and who is reading for everybody.
struct State {
    core: Core,
    /// Some caller is reading for everybody.
    reading: bool,
    /// Callers waiting on the condvar (notifying nobody would still cost
    /// a system call).
    waiting: usize,
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

crate::api::qmp_api!();

impl Qmp {
    /// Wait for QEMU to dial in (`-qmp unix:PATH,server=off` or a
    /// `-chardev socket,...,server=off`), within the connect time limit.
    pub fn accept(listener: &UnixListener, opts: &Options) -> Result<Qmp> {
        let deadline = opts.connect_timeout.map(|t| Instant::now() + t);
        crate::sys::wait_ready(listener.as_raw_fd(), crate::sys::POLLIN, deadline).map_err(
            |e| {
                let e = match e.kind() {
                    io::ErrorKind::TimedOut => crate::conn::deadline_passed(),
                    _ => Error::from(e),
                };
                crate::conn::timed(e, || "QEMU to connect".into(), opts.connect_timeout)
            },
        )?;
        let (s, _) = listener.accept()?;
        s.set_nonblocking(false)?;
        Self::start(Stream::Unix(s), opts)
    }

    /// Start the protocol on a connection that is already open: read
    /// the greeting, negotiate (enabling `oob` when offered and
    /// [`Options::oob`] is on).
    pub fn start(stream: Stream, opts: &Options) -> Result<Qmp> {
        let (mut reader, sink) = stream.split(opts)?;
        let greeting = read_greeting(&mut reader, opts)?;
        let qmp = Qmp {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    core: Core::new(opts),
                    reading: false,
                    waiting: 0,
                }),
                cond: Condvar::new(),
                reader: Mutex::new(reader),
                writer: Mutex::new((sink, Vec::with_capacity(256))),
                oob: opts.oob && greeting.offers("oob"),
                greeting,
                options: opts.clone(),
                probe: Default::default(),
            }),
        };
        qmp.negotiate()?;
        Ok(qmp)
    }

    /// The server's `query-qmp-schema`, fetched on first use and kept for
    /// the connection (concurrent first uses fetch it once).  A reply
    /// that does not read as a schema is [`Error::Decode`] and is fetched
    /// again next time.
    pub fn schema(&self) -> Result<Arc<crate::probe::Schema>> {
        let fetch = || self.execute_raw("query-qmp-schema", None);
        self.inner.probe.get_or_fetch(fetch)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    fn subscription(&self, id: u64) -> Subscription {
        Subscription {
            inner: self.inner.clone(),
            id,
        }
    }

    /// Close the connection: calls in flight and subscribers end with
    /// [`Error::Disconnected`].
    pub fn close(&self) {
        lock(&self.inner.writer).0.shutdown();
        self.state().core.close(Closed::Disconnected);
        self.inner.cond.notify_all();
    }

    /// Write the request, then wait for its reply (reading for everybody
    /// while nobody else does).
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
        let (key, wire) = self.state().core.begin(oob)?;
        crate::trace::command_id(wire);
        {
            let mut w = lock(&inner.writer);
            let (sink, buf) = &mut *w;
            buf.clear();
            if let Err(e) = proto::encode_request(buf, name, args, wire, oob) {
                self.state().core.forget(key, false);
                return Err(e);
            }
            if let Err(e) = sink.send(buf, fds) {
                drop(w);
                let e = self.state().core.send_failed(key, name, e, timeout);
                inner.cond.notify_all();
                return Err(e);
            }
        }
        let mut st = self.state();
        loop {
            if let Poll::Ready(r) = st.core.poll_reply(key, None) {
                return r;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                st.core.forget(key, true);
                return Err(crate::conn::timed(
                    crate::conn::deadline_passed(),
                    || name.into(),
                    timeout,
                ));
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
        let read = reader.next(deadline);
        let mut st = lock(&self.state);
        match read {
            Ok(msg) => st.core.deliver(msg),
            Err(Error::Timeout { .. }) => {}
            Err(e) => st.core.close(Closed::from_error(&e)),
        }
        drop(reader);
        st.reading = false;
        if st.waiting > 0 || st.core.is_closed() {
            self.cond.notify_all();
        }
        st
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
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<EventItem> {
        let mut st = self.state();
        loop {
            if let Poll::Ready(r) = st.core.poll_event(self.id, None) {
                return r;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(crate::conn::deadline_passed());
            }
            st = self.inner.wait_or_read(st, deadline);
        }
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

crate::api::agent_api!();

impl GuestAgent {
    /// Use a connection that is already open.  Nothing is exchanged until
    /// the first command.
    pub fn start(stream: Stream, opts: &Options) -> Result<GuestAgent> {
        let (reader, sink) = stream.split(opts)?;
        Ok(GuestAgent {
            conn: Mutex::new(AgentConn::new(reader, sink)),
            options: opts.clone(),
        })
    }

    fn conn(&self) -> MutexGuard<'_, AgentConn> {
        lock(&self.conn)
    }
}
