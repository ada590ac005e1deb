//! The tokio clients: [`Qmp`] and [`GuestAgent`], on the same protocol
//! core as [`crate::blocking`] (feature `tokio`).
//!
//! [`Qmp`] spawns one task that reads the connection and hands each
//! reply to the call waiting for it and each event to the subscribers;
//! calls from any number of tasks are in flight at once.  Create it
//! inside a tokio runtime.  Dropping every clone of a [`Qmp`] stops the
//! task and closes the connection.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::net::{UnixListener, UnixStream};
use ::tokio::time::Instant;
use serde::Serialize;
use serde_json::Value;

use crate::conn::{AgentState, Core};
use crate::error::{Error, Result};
use crate::proto::{
    self, Closed, EventFilter, EventItem, Framed, Framer, Greeting, Keep, RawEvent,
};
use crate::{Command, Options};

/// A call, as the shared methods (`api.rs`) write it: awaited.
macro_rules! aw {
    ($e:expr) => {
        $e.await
    };
}

/// A call in its tracing span.
macro_rules! traced {
    ($name:expr, $e:expr) => {
        crate::trace::command_async($name, $e).await
    };
}

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;

/// A connection, before the protocol starts.
pub enum Stream {
    Unix(UnixStream),
    Tcp(::tokio::net::TcpStream),
    /// A child's stdout and stdin, for `-qmp stdio`.
    Stdio(::tokio::process::ChildStdout, ::tokio::process::ChildStdin),
}

impl From<UnixStream> for Stream {
    fn from(s: UnixStream) -> Stream {
        Stream::Unix(s)
    }
}

impl From<::tokio::net::TcpStream> for Stream {
    fn from(s: ::tokio::net::TcpStream) -> Stream {
        Stream::Tcp(s)
    }
}

async fn limit<T>(
    t: Option<Duration>,
    what: impl FnOnce() -> String,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match t {
        Some(t) => ::tokio::time::timeout(t, f).await.unwrap_or_else(|_| {
            Err(Error::Timeout {
                what: what(),
                after: t,
            })
        }),
        None => f.await,
    }
}

impl Stream {
    /// Connect to a Unix socket, retrying while it does not exist yet or
    /// refuses, within `timeout`.
    pub async fn connect_unix(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<Stream> {
        let path = path.as_ref();
        limit(
            timeout,
            || format!("connect to {}", path.display()),
            async {
                loop {
                    match UnixStream::connect(path).await {
                        Ok(s) => return Ok(Stream::Unix(s)),
                        Err(e)
                            if timeout.is_some()
                                && matches!(
                                    e.kind(),
                                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                                ) =>
                        {
                            ::tokio::time::sleep(Duration::from_millis(10)).await
                        }
                        Err(e) => return Err(Error::from(e)),
                    }
                }
            },
        )
        .await
    }

    /// Connect over TCP (`host:port`) within `timeout`.
    pub async fn connect_tcp(addr: &str, timeout: Option<Duration>) -> Result<Stream> {
        limit(timeout, || format!("connect to {addr}"), async {
            let s = ::tokio::net::TcpStream::connect(addr).await?;
            let _ = s.set_nodelay(true);
            Ok(Stream::Tcp(s))
        })
        .await
    }

    /// Take a spawned QEMU's stdin and stdout (`-qmp stdio`).
    pub fn from_child(child: &mut ::tokio::process::Child) -> Result<Stream> {
        match (child.stdout.take(), child.stdin.take()) {
            (Some(o), Some(i)) => Ok(Stream::Stdio(o, i)),
            _ => Err(Error::Unsupported(
                "the child's stdin and stdout must both be piped".into(),
            )),
        }
    }

    fn split(self) -> (BoxRead, Sink) {
        match self {
            Stream::Unix(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Sink::Unix(w))
            }
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Sink::Other(Box::new(w)))
            }
            Stream::Stdio(o, i) => (Box::new(o), Sink::Other(Box::new(i))),
        }
    }
}

enum Sink {
    Unix(::tokio::net::unix::OwnedWriteHalf),
    Other(Box<dyn AsyncWrite + Send + Unpin>),
}

impl Sink {
    async fn send(&mut self, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        match self {
            Sink::Unix(w) if !fds.is_empty() => {
                let s: &UnixStream = w.as_ref();
                let n = loop {
                    s.writable().await?;
                    match s.try_io(::tokio::io::Interest::WRITABLE, || {
                        crate::sys::send_with_fds(s.as_raw_fd(), data, fds)
                    }) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        r => break r?,
                    }
                };
                w.write_all(&data[n..]).await
            }
            Sink::Unix(w) => w.write_all(data).await,
            Sink::Other(_) if !fds.is_empty() => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "file descriptors can only be passed over a Unix socket",
            )),
            Sink::Other(w) => {
                w.write_all(data).await?;
                w.flush().await
            }
        }
    }
}

/// Read the next message's bytes.
async fn next_message<'a>(reader: &mut BoxRead, framer: &'a mut Framer) -> Result<Framed<'a>> {
    loop {
        if let Some(f) = framer.next_range()? {
            return Ok(framer.framed(f));
        }
        let space = framer.space();
        match reader.read(space).await {
            Ok(0) if framer.mid_message() => {
                return Err(Error::Protocol(
                    "the connection closed in the middle of a message".into(),
                ))
            }
            Ok(0) => return Err(Error::Disconnected),
            Ok(n) => framer.filled(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::from(e)),
        }
    }
}

struct State {
    core: Core,
    driver: Option<::tokio::task::AbortHandle>,
}

struct Shared {
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn close(&self, why: Closed) {
        let mut st = lock(&self.state);
        st.core.close(why);
        if let Some(d) = st.driver.take() {
            d.abort();
        }
    }
}

/// The task that reads the connection for everybody.
async fn drive(shared: Arc<Shared>, mut reader: BoxRead, mut framer: Framer) {
    let end = loop {
        match next_message(&mut reader, &mut framer).await {
            Ok(msg) => {
                let mut st = lock(&shared.state);
                st.core.deliver(msg);
                if st.core.is_closed() {
                    return;
                }
            }
            Err(e) => break e,
        }
    };
    shared.close(Closed::from_error(&end));
}

struct Inner {
    shared: Arc<Shared>,
    writer: ::tokio::sync::Mutex<(Sink, Vec<u8>)>,
    greeting: Greeting,
    oob: bool,
    options: Options,
    /// The server's schema, once fetched (`probe.rs`).
    probe: crate::probe::AsyncCache,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.close(Closed::Disconnected);
    }
}

/// A QMP connection (tokio): greeting read, capabilities negotiated.
/// Clone it to share between tasks.
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

/// Forgets a call when it ends without its reply (time limit, or the
/// caller dropped the future), so a late reply is dropped; and ends the
/// connection if its request was cut off halfway (the stream would be
/// out of step).
struct CallGuard<'a> {
    shared: &'a Shared,
    key: u64,
    /// What became of the request: not sent, being written, written.
    writing: Option<bool>,
    done: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.writing == Some(true) {
            self.shared.close(Closed::Protocol(
                "a request was cut off while being sent (time limit or cancellation)".into(),
            ));
        }
        lock(&self.shared.state)
            .core
            .forget(self.key, self.writing.is_some());
    }
}

crate::api::qmp_api!(async);

impl Qmp {
    /// Wait for QEMU to dial in (`server=off`), within the connect limit.
    pub async fn accept(listener: &UnixListener, opts: &Options) -> Result<Qmp> {
        let (s, _) = limit(opts.connect_timeout, || "QEMU to connect".into(), async {
            Ok(listener.accept().await?)
        })
        .await?;
        Self::start(Stream::Unix(s), opts).await
    }

    /// Start the protocol on an open connection: greeting, negotiation
    /// (`oob` enabled when offered and [`Options::oob`] is on).
    pub async fn start(stream: Stream, opts: &Options) -> Result<Qmp> {
        let (mut reader, sink) = stream.split();
        let mut framer = Framer::new(opts.max_message);
        // Events sent before the greeting are skipped (`Greeting::parse`).
        let greeting = limit(opts.greeting_timeout, || "the greeting".into(), async {
            loop {
                let msg = next_message(&mut reader, &mut framer).await?;
                if let Some(g) = Greeting::parse(msg.message().bytes)? {
                    return Ok(g);
                }
            }
        })
        .await?;
        let oob = opts.oob && greeting.offers("oob");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                core: Core::new(opts),
                driver: None,
            }),
        });
        let task = ::tokio::spawn(drive(shared.clone(), reader, framer));
        lock(&shared.state).driver = Some(task.abort_handle());
        let qmp = Qmp {
            inner: Arc::new(Inner {
                shared,
                writer: ::tokio::sync::Mutex::new((sink, Vec::with_capacity(256))),
                greeting,
                oob,
                options: opts.clone(),
                probe: Default::default(),
            }),
        };
        let caps = crate::conn::capabilities(oob);
        let t = opts.greeting_timeout;
        qmp.call("qmp_capabilities", Some(&caps), false, &[], t)
            .await?;
        crate::trace::ready(oob);
        Ok(qmp)
    }

    /// The schema cache and options, for `probe.rs`.
    pub(crate) fn probing(&self) -> (&crate::probe::AsyncCache, &Options) {
        (&self.inner.probe, &self.inner.options)
    }

    fn subscribe_filtered(&self, filter: Option<EventFilter>) -> Subscription {
        let id = lock(&self.inner.shared.state).core.subscribe(filter);
        Subscription {
            shared: self.inner.shared.clone(),
            id,
        }
    }

    /// Close the connection: calls in flight and subscribers end with
    /// [`Error::Disconnected`].
    pub async fn close(&self) {
        self.inner.shared.close(Closed::Disconnected);
        let mut w = self.inner.writer.lock().await;
        if let Sink::Unix(s) = &mut w.0 {
            let _ = s.shutdown().await;
        }
    }

    /// Write the request, then wait for the reading task to deliver its
    /// reply.
    async fn exchange<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: Option<&A>,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<proto::Returned> {
        let shared = &*self.inner.shared;
        let (key, wire) = lock(&shared.state).core.begin(oob)?;
        crate::trace::command_id(wire);
        let mut guard = CallGuard {
            shared,
            key,
            writing: None,
            done: false,
        };
        let r = limit(timeout, || name.to_string(), async {
            {
                let mut w = self.inner.writer.lock().await;
                let (sink, buf) = &mut *w;
                buf.clear();
                proto::encode_request(buf, name, args, wire, oob)?;
                guard.writing = Some(true);
                let sent = sink.send(buf, fds).await;
                guard.writing = Some(false);
                if let Err(e) = sent {
                    guard.done = true;
                    let mut st = lock(&shared.state);
                    return Err(st.core.send_failed(key, name, e, timeout));
                }
            }
            std::future::poll_fn(|cx| lock(&shared.state).core.poll_reply(key, Some(cx.waker())))
                .await
        })
        .await;
        guard.done |= !matches!(r, Err(Error::Timeout { .. }));
        r
    }
}

/// Events from a [`Qmp`] connection, for one subscriber.
pub struct Subscription {
    shared: Arc<Shared>,
    id: u64,
}

impl Subscription {
    /// An event already received, if any.
    pub fn try_recv(&self) -> Option<EventItem> {
        match lock(&self.shared.state).core.poll_event(self.id, None) {
            Poll::Ready(Ok(i)) => Some(i),
            _ => None,
        }
    }

    async fn recv_until(&self, deadline: Option<Instant>) -> Result<EventItem> {
        let next = std::future::poll_fn(|cx| {
            lock(&self.shared.state)
                .core
                .poll_event(self.id, Some(cx.waker()))
        });
        match deadline {
            Some(d) => ::tokio::time::timeout_at(d, next)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::Timeout {
                        what: "an event".into(),
                        after: Duration::ZERO,
                    })
                }),
            None => next.await,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&self.shared.state).core.unsubscribe(self.id);
    }
}

/// Dropped, it removes the set from a task spawned on the current tokio
/// runtime (with no runtime, QEMU keeps the set until the connection
/// closes).
#[cfg(feature = "qmp")]
impl Drop for FdSet {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        if let Ok(rt) = ::tokio::runtime::Handle::try_current() {
            let qmp = self.qmp.clone();
            let remove = crate::wait::remove_fdset(self.info.fdset_id);
            rt.spawn(async move {
                let _ = qmp.execute(&remove).await;
            });
        }
    }
}

/// A guest agent connection (tokio); see [`crate::blocking::GuestAgent`]
/// for the protocol.  One command at a time.
pub struct GuestAgent {
    conn: ::tokio::sync::Mutex<AgentConn>,
    options: Options,
}

struct AgentConn {
    reader: BoxRead,
    framer: Framer,
    sink: Sink,
    buf: Vec<u8>,
    state: AgentState,
}

crate::api::agent_api!(async);

impl GuestAgent {
    /// Use an open connection; nothing is exchanged until the first call.
    pub fn start(stream: Stream, opts: &Options) -> Result<GuestAgent> {
        let (reader, sink) = stream.split();
        Ok(GuestAgent {
            conn: ::tokio::sync::Mutex::new(AgentConn {
                reader,
                framer: Framer::new(opts.max_message),
                sink,
                buf: Vec::with_capacity(256),
                state: AgentState::default(),
            }),
            options: opts.clone(),
        })
    }

    /// Resynchronise now (done before the first command anyway).
    pub async fn sync(&self) -> Result<()> {
        let mut c = self.conn.lock().await;
        c.state.check()?;
        let t = self.options.command_timeout;
        let r = limit(t, || "guest-sync-delimited".into(), c.sync()).await;
        c.state.end(r)
    }

    async fn exchange<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: Option<&A>,
        wait: bool,
        timeout: Option<Duration>,
    ) -> Result<proto::Returned> {
        let mut c = self.conn.lock().await;
        let c = &mut *c;
        let work = async {
            if c.state.check()? {
                c.sync().await?;
            }
            c.state.sending();
            c.buf.clear();
            proto::encode_request(&mut c.buf, name, args, None, false)?;
            c.sink.send(&c.buf, &[]).await?;
            if !wait {
                return Ok(proto::empty_return());
            }
            let r = proto::agent_reply(next_message(&mut c.reader, &mut c.framer).await?)?;
            c.state.answered();
            r.map_err(Error::Qmp)
        };
        let r = limit(timeout, || name.to_string(), work).await;
        c.state.end(r)
    }
}

impl AgentConn {
    /// `guest-sync-delimited`: skip everything up to its reply.
    async fn sync(&mut self) -> Result<()> {
        let (id, bytes) = proto::agent_sync_request();
        self.framer.resync();
        self.sink.send(&bytes, &[]).await?;
        loop {
            let msg = next_message(&mut self.reader, &mut self.framer).await?;
            if proto::is_sync_reply(msg.message().bytes, id) {
                crate::trace::synced();
                self.state.answered();
                return Ok(());
            }
        }
    }
}
