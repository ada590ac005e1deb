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
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::net::{TcpStream, UnixListener, UnixStream};
use ::tokio::process::{Child, ChildStdin, ChildStdout};
use ::tokio::time::Instant;
use serde::Serialize;
use serde_json::Value;

use crate::conn::{AgentState, Core};
use crate::error::{Error, Result};
use crate::proto::{self, Closed, EventItem, Framed, Framer, Greeting, Keep, RawEvent};
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

/// `f`, within `t` when given: after it, [`Error::Timeout`] waiting for
/// `what`.
async fn limit<T>(
    t: Option<Duration>,
    what: impl FnOnce() -> String,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let Some(t) = t else { return f.await };
    ::tokio::time::timeout(t, f).await.unwrap_or_else(|_| {
        Err(Error::Timeout {
            what: what(),
            after: t,
        })
    })
}

/// `f`, before `deadline` when given (after it,
/// [`crate::conn::deadline_passed`]).
async fn before<T>(
    deadline: Option<Instant>,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let Some(d) = deadline else { return f.await };
    ::tokio::time::timeout_at(d, f)
        .await
        .unwrap_or_else(|_| Err(crate::conn::deadline_passed()))
}

crate::api::stream_api!();

impl Stream {
    /// Connect to a Unix socket, within `timeout` when given (retrying
    /// while it does not exist yet or refuses: QEMU may still be
    /// starting).
    pub async fn connect_unix(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<Stream> {
        let path = path.as_ref();
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let e = match UnixStream::connect(path).await {
                Ok(s) => return Ok(Stream::Unix(s)),
                Err(e) => e,
            };
            let passed = deadline.is_some_and(|d| Instant::now() >= d);
            if let Some(e) = crate::conn::connect_failed(e, path, passed, timeout) {
                return Err(e);
            }
            ::tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Connect over TCP (`host:port`), within `timeout` when given.
    pub async fn connect_tcp(addr: &str, timeout: Option<Duration>) -> Result<Stream> {
        limit(timeout, || format!("connect to {addr}"), async {
            let s = TcpStream::connect(addr).await?;
            let _ = s.set_nodelay(true);
            Ok(Stream::Tcp(s))
        })
        .await
    }

    fn split(self, opts: &Options) -> Result<(Reader, Sink)> {
        let (source, sink): (Box<dyn AsyncRead + Send + Unpin>, _) = match self {
            Stream::Unix(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Sink::Unix(w))
            }
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Sink::Other(Box::new(w)))
            }
            Stream::Stdio(o, i) => (Box::new(o), Sink::Other(Box::new(i))),
        };
        let framer = Framer::new(opts.max_message);
        Ok((Reader { source, framer }, sink))
    }
}

/// The writing half.
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
            _ if !fds.is_empty() => Err(crate::conn::no_fds()),
            Sink::Unix(w) => w.write_all(data).await,
            Sink::Other(w) => {
                w.write_all(data).await?;
                w.flush().await
            }
        }
    }
}

/// `data` sent before `deadline`.
async fn send_before(sink: &mut Sink, data: &[u8], deadline: Option<Instant>) -> Result<()> {
    before(deadline, async { Ok(sink.send(data, &[]).await?) }).await
}

/// Framed reading: the next message's bytes.
struct Reader {
    source: Box<dyn AsyncRead + Send + Unpin>,
    framer: Framer,
}

impl Reader {
    /// The next message, before `deadline` (after it:
    /// [`crate::conn::deadline_passed`]).
    async fn next(&mut self, deadline: Option<Instant>) -> Result<Framed<'_>> {
        let Reader { source, framer } = self;
        let range = before(deadline, async {
            loop {
                if let Some(f) = framer.next_range()? {
                    return Ok(f);
                }
                match source.read(framer.space()).await {
                    Ok(0) => return Err(crate::conn::ended(framer.mid_message())),
                    Ok(n) => framer.filled(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::from(e)),
                }
            }
        })
        .await?;
        Ok(self.framer.framed(range))
    }
}

struct State {
    core: Core,
    driver: Option<::tokio::task::AbortHandle>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// End the connection: the core, and the task reading it.
fn close(state: &Mutex<State>, why: Closed) {
    let mut st = lock(state);
    st.core.close(why);
    if let Some(d) = st.driver.take() {
        d.abort();
    }
}

/// The task that reads the connection for everybody.
async fn drive(state: Arc<Mutex<State>>, mut reader: Reader) {
    loop {
        match reader.next(None).await {
            Ok(msg) => {
                let mut st = lock(&state);
                st.core.deliver(msg);
                if st.core.is_closed() {
                    return;
                }
            }
            Err(e) => return close(&state, Closed::from_error(&e)),
        }
    }
}

struct Inner {
    state: Arc<Mutex<State>>,
    writer: ::tokio::sync::Mutex<(Sink, Vec<u8>)>,
    greeting: Greeting,
    oob: bool,
    options: Options,
    /// The server's schema, once fetched (`probe.rs`).
    probe: crate::probe::AsyncCache,
}

impl Drop for Inner {
    fn drop(&mut self) {
        close(&self.state, Closed::Disconnected);
    }
}

/// A QMP connection (tokio): greeting read, capabilities negotiated.
/// Clone it to share between tasks.
#[derive(Clone)]
pub struct Qmp {
    inner: Arc<Inner>,
}

/// Forgets a call when it ends without its reply (time limit, or the
/// caller dropped the future), so a late reply is dropped; and ends the
/// connection if its request was cut off halfway (the stream would be
/// out of step).
struct CallGuard<'a> {
    state: &'a Mutex<State>,
    key: u64,
    /// What became of the request: not sent (`None`), being written,
    /// written.
    writing: Option<bool>,
    done: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.writing == Some(true) {
            let why = "a request was cut off while being sent (time limit or cancellation)";
            close(self.state, Closed::Protocol(why.into()));
        }
        let sent = self.writing.is_some();
        lock(self.state).core.forget(self.key, sent);
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
        let (mut reader, sink) = stream.split(opts)?;
        let greeting = read_greeting(&mut reader, opts).await?;
        let state = Arc::new(Mutex::new(State {
            core: Core::new(opts),
            driver: None,
        }));
        let task = ::tokio::spawn(drive(state.clone(), reader));
        lock(&state).driver = Some(task.abort_handle());
        let qmp = Qmp {
            inner: Arc::new(Inner {
                state,
                writer: ::tokio::sync::Mutex::new((sink, Vec::with_capacity(256))),
                oob: opts.oob && greeting.offers("oob"),
                greeting,
                options: opts.clone(),
                probe: Default::default(),
            }),
        };
        qmp.negotiate().await?;
        Ok(qmp)
    }

    /// The server's `query-qmp-schema`, fetched on first use and kept for
    /// the connection (concurrent first uses fetch it once).  A reply
    /// that does not read as a schema is [`Error::Decode`] and is fetched
    /// again next time.
    pub async fn schema(&self) -> Result<Arc<crate::probe::Schema>> {
        let fetch = || async {
            // Boxed: a checked call fetches the schema through here.
            let v = Box::pin(self.execute_raw("query-qmp-schema", None)).await?;
            crate::probe::read_reply(v)
        };
        self.inner
            .probe
            .schema
            .get_or_try_init(fetch)
            .await
            .cloned()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    fn subscription(&self, id: u64) -> Subscription {
        Subscription {
            state: self.inner.state.clone(),
            id,
        }
    }

    /// Close the connection: calls in flight and subscribers end with
    /// [`Error::Disconnected`].
    pub async fn close(&self) {
        close(&self.inner.state, Closed::Disconnected);
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
        let state = &*self.inner.state;
        let (key, wire) = self.state().core.begin(oob)?;
        crate::trace::command_id(wire);
        let mut guard = CallGuard {
            state,
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
                    return Err(lock(state).core.send_failed(key, name, e, timeout));
                }
            }
            std::future::poll_fn(|cx| lock(state).core.poll_reply(key, Some(cx.waker()))).await
        })
        .await;
        guard.done |= !matches!(r, Err(Error::Timeout { .. }));
        r
    }
}

/// Events from a [`Qmp`] connection, for one subscriber.
pub struct Subscription {
    state: Arc<Mutex<State>>,
    id: u64,
}

impl Subscription {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    async fn recv_until(&self, deadline: Option<Instant>) -> Result<EventItem> {
        let next =
            std::future::poll_fn(|cx| self.state().core.poll_event(self.id, Some(cx.waker())));
        before(deadline, next).await
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

crate::api::agent_api!(async);

impl GuestAgent {
    /// Use an open connection; nothing is exchanged until the first call.
    pub fn start(stream: Stream, opts: &Options) -> Result<GuestAgent> {
        let (reader, sink) = stream.split(opts)?;
        Ok(GuestAgent {
            conn: ::tokio::sync::Mutex::new(AgentConn::new(reader, sink)),
            options: opts.clone(),
        })
    }

    async fn conn(&self) -> ::tokio::sync::MutexGuard<'_, AgentConn> {
        self.conn.lock().await
    }
}
