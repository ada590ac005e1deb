//! The tokio clients: [`Qmp`] and [`GuestAgent`], on the same protocol
//! core as [`crate::blocking`] (feature `tokio`).
//!
//! [`Qmp`] spawns one task that reads the connection and hands each
//! reply to the call waiting for it and each event to the subscribers;
//! calls from any number of tasks are in flight at once.  Create it
//! inside a tokio runtime.  Dropping every clone of a [`Qmp`] stops the
//! task and closes the connection.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::net::{UnixListener, UnixStream};
use ::tokio::sync::oneshot;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::proto::{
    self, Closed, EventFilter, EventHub, EventItem, Framed, Framer, Greeting, Keep, Polled,
    RawEvent, Routed, Session,
};
use crate::{Command, Options, QmpError};

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

type Reply = std::result::Result<proto::Returned, QmpError>;

struct State {
    session: Session,
    waiters: HashMap<u64, oneshot::Sender<Reply>>,
    hub: EventHub,
    closed: Option<Closed>,
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
        if st.closed.is_none() {
            crate::trace::closed(&why.error());
            st.closed = Some(why);
        }
        st.session.drain();
        // Dropping the senders wakes every waiting call.
        st.waiters.clear();
        st.hub.close();
        if let Some(d) = st.driver.take() {
            d.abort();
        }
    }

    fn closed_error(&self) -> Error {
        lock(&self.state)
            .closed
            .as_ref()
            .map_or(Error::Disconnected, Closed::error)
    }

    /// Dispatch one message; `Err` ends the connection.
    fn dispatch(&self, msg: Framed<'_>) -> Result<()> {
        let mut st = lock(&self.state);
        match st.session.route(msg)? {
            Routed::Reply(id, r) => {
                // The reply is the caller's from here on.
                st.session.finish(id);
                if let Some(tx) = st.waiters.remove(&id) {
                    let _ = tx.send(r);
                }
            }
            Routed::Event(ev) => st.hub.publish(&ev),
            Routed::Late => {}
        }
        Ok(())
    }
}

async fn drive(shared: Arc<Shared>, mut reader: BoxRead, mut framer: Framer) {
    let end = loop {
        let msg = match next_message(&mut reader, &mut framer).await {
            Ok(m) => m,
            Err(e) => break e,
        };
        if let Err(e) = shared.dispatch(msg) {
            break e;
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
/// caller dropped the future), so a late reply is dropped.
struct CallGuard<'a> {
    shared: &'a Shared,
    id: u64,
    done: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut st = lock(&self.shared.state);
            st.waiters.remove(&self.id);
            st.session.abandon(self.id);
        }
    }
}

/// Ends the connection if a request was cut off halfway (its future
/// dropped mid-write): the stream would be out of step.
struct WriteGuard<'a> {
    shared: &'a Shared,
    done: bool,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.shared.close(Closed::Protocol(
                "a request was cut off while being sent (time limit or cancellation)".into(),
            ));
        }
    }
}

impl Qmp {
    /// Connect to QEMU's QMP Unix socket with the default [`Options`].
    pub async fn connect_unix(path: impl AsRef<Path>) -> Result<Qmp> {
        Self::connect_unix_with(path, &Options::default()).await
    }

    /// Connect to QEMU's QMP Unix socket.
    pub async fn connect_unix_with(path: impl AsRef<Path>, opts: &Options) -> Result<Qmp> {
        Self::start(
            Stream::connect_unix(path, opts.connect_timeout).await?,
            opts,
        )
        .await
    }

    /// Connect to QEMU's QMP TCP socket (`host:port`).
    pub async fn connect_tcp(addr: &str, opts: &Options) -> Result<Qmp> {
        Self::start(Stream::connect_tcp(addr, opts.connect_timeout).await?, opts).await
    }

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
                if let Some(g) = Greeting::parse(
                    next_message(&mut reader, &mut framer)
                        .await?
                        .message()
                        .bytes,
                )? {
                    return Ok(g);
                }
            }
        })
        .await?;
        let oob = opts.oob && greeting.offers("oob");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                session: Session::new(opts.ids, opts.strict),
                waiters: HashMap::new(),
                hub: EventHub::default(),
                closed: None,
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
        let caps: Vec<&str> = if oob { vec!["oob"] } else { vec![] };
        qmp.call(
            "qmp_capabilities",
            Some(&serde_json::json!({ "enable": caps })),
            false,
            &[],
            opts.greeting_timeout,
        )
        .await?;
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
    pub(crate) fn probing(&self) -> (&crate::probe::AsyncCache, &Options) {
        (&self.inner.probe, &self.inner.options)
    }

    /// Run a command and decode its reply.
    pub async fn execute<C: Command>(&self, command: &C) -> Result<C::Returns> {
        let t = self.inner.options.command_timeout;
        let v = self.call(C::NAME, Some(command), false, &[], t).await?;
        proto::decode_return::<C>(v, self.inner.options.strict)
    }

    /// Run a command with its own time limit.
    pub async fn execute_timeout<C: Command>(
        &self,
        command: &C,
        timeout: Option<Duration>,
    ) -> Result<C::Returns> {
        let v = self
            .call(C::NAME, Some(command), false, &[], timeout)
            .await?;
        proto::decode_return::<C>(v, self.inner.options.strict)
    }

    /// Run an `allow-oob` command out of band (`exec-oob`).
    pub async fn execute_oob<C: Command>(&self, command: &C) -> Result<C::Returns> {
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
        let t = self.inner.options.command_timeout;
        let v = self.call(C::NAME, Some(command), true, &[], t).await?;
        proto::decode_return::<C>(v, self.inner.options.strict)
    }

    /// Run a command with file descriptors attached (SCM_RIGHTS), for
    /// `getfd` and `add-fd`.  Unix sockets only.
    pub async fn execute_with_fds<C: Command>(
        &self,
        command: &C,
        fds: &[BorrowedFd<'_>],
    ) -> Result<C::Returns> {
        let t = self.inner.options.command_timeout;
        let v = self.call(C::NAME, Some(command), false, fds, t).await?;
        proto::decode_return::<C>(v, self.inner.options.strict)
    }

    /// Run a command by name with JSON arguments; the reply's `return`.
    pub async fn execute_raw(&self, name: &str, arguments: Option<&Value>) -> Result<Value> {
        let t = self.inner.options.command_timeout;
        self.call(name, arguments, false, &[], t)
            .await
            .and_then(proto::to_value)
    }

    /// Run a human monitor command (HMP) and return its text.
    pub async fn human_command(&self, command_line: &str) -> Result<String> {
        let v = self
            .execute_raw(
                "human-monitor-command",
                Some(&serde_json::json!({ "command-line": command_line })),
            )
            .await?;
        proto::hmp_text(v)
    }

    /// Receive every event from now on.
    pub fn subscribe(&self) -> Subscription {
        self.subscribe_filtered(None)
    }

    /// Receive the events `filter` accepts.
    pub fn subscribe_filter(
        &self,
        filter: impl Fn(&RawEvent) -> bool + Send + Sync + 'static,
    ) -> Subscription {
        self.subscribe_filtered(Some(Arc::new(filter)))
    }

    fn subscribe_filtered(&self, filter: Option<EventFilter>) -> Subscription {
        let id = lock(&self.inner.shared.state)
            .hub
            .subscribe(self.inner.options.event_buffer, filter);
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

    async fn call<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: Option<&A>,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<proto::Returned> {
        if self.inner.options.check_commands && !crate::probe::exempt(name) {
            self.check_before_send(name, args).await?;
        }
        let work = self.exchange(name, args, oob, fds, timeout);
        crate::trace::command_async(name, work).await
    }

    async fn exchange<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: Option<&A>,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<proto::Returned> {
        let shared = &*self.inner.shared;
        let (tx, rx) = oneshot::channel();
        let (id, wire) = {
            let mut st = lock(&shared.state);
            if let Some(c) = &st.closed {
                return Err(c.error());
            }
            let (key, wire) = st.session.start(oob);
            st.waiters.insert(key, tx);
            (key, wire)
        };
        crate::trace::command_id(wire);
        let mut guard = CallGuard {
            shared,
            id,
            done: false,
        };
        let unsent = std::sync::atomic::AtomicBool::new(false);
        let work = async {
            {
                let mut w = self.inner.writer.lock().await;
                let (sink, buf) = &mut *w;
                buf.clear();
                if let Err(e) = proto::encode_request(buf, name, args, wire, oob) {
                    unsent.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(e);
                }
                let mut wg = WriteGuard {
                    shared,
                    done: false,
                };
                match sink.send(buf, fds).await {
                    Ok(()) => wg.done = true,
                    Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                        // Refused before anything was written.
                        wg.done = true;
                        unsent.store(true, std::sync::atomic::Ordering::Relaxed);
                        return Err(Error::Unsupported(e.to_string().into()));
                    }
                    Err(e) => {
                        wg.done = true;
                        let e = Error::from(e);
                        shared.close(Closed::from_error(&e));
                        return Err(e);
                    }
                }
            }
            match rx.await {
                Ok(r) => r.map_err(Error::Qmp),
                Err(_) => Err(shared.closed_error()),
            }
        };
        let r = match timeout {
            Some(t) => match ::tokio::time::timeout(t, work).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout {
                    what: name.to_string(),
                    after: t,
                }),
            },
            None => work.await,
        };
        if unsent.load(std::sync::atomic::Ordering::Relaxed) {
            // Never sent: forget the id rather than wait for a reply.
            let mut st = lock(&shared.state);
            st.waiters.remove(&id);
            st.session.cancel(id);
            guard.done = true;
        } else {
            guard.done = !matches!(r, Err(Error::Timeout { .. }));
        }
        r
    }
}

/// Events from a [`Qmp`] connection, for one subscriber.
pub struct Subscription {
    shared: Arc<Shared>,
    id: u64,
}

impl Subscription {
    /// The next event, or how many were lost.  Ends with
    /// [`Error::Disconnected`] (or what ended the connection) once the
    /// queue is empty and the connection is over.
    pub async fn recv(&mut self) -> Result<EventItem> {
        std::future::poll_fn(|cx| {
            let mut st = lock(&self.shared.state);
            match st.hub.poll(self.id, Some(cx.waker())) {
                Polled::Item(i) => std::task::Poll::Ready(Ok(i)),
                Polled::Closed => std::task::Poll::Ready(Err(st
                    .closed
                    .as_ref()
                    .map_or(Error::Disconnected, Closed::error))),
                Polled::Empty => std::task::Poll::Pending,
            }
        })
        .await
    }

    /// As [`Subscription::recv`], within `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<EventItem> {
        match ::tokio::time::timeout(timeout, self.recv()).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                what: "an event".into(),
                after: timeout,
            }),
        }
    }

    /// An event already received, if any.
    pub fn try_recv(&mut self) -> Option<EventItem> {
        match lock(&self.shared.state).hub.poll(self.id, None) {
            Polled::Item(i) => Some(i),
            _ => None,
        }
    }
}

impl Subscription {
    /// The next item before `deadline` (`None`: no limit); `Ok(None)`
    /// when it passed.
    async fn recv_before(
        &mut self,
        deadline: Option<::tokio::time::Instant>,
    ) -> Result<Option<EventItem>> {
        match deadline {
            Some(d) => match ::tokio::time::timeout_at(d, self.recv()).await {
                Ok(r) => r.map(Some),
                Err(_) => Ok(None),
            },
            None => self.recv().await.map(Some),
        }
    }

    /// The first event `filter` accepts, within `timeout`; see
    /// [`crate::blocking::Subscription::wait_for`].
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut filter: impl FnMut(&RawEvent) -> bool,
    ) -> Result<RawEvent> {
        let deadline = ::tokio::time::Instant::now() + timeout;
        loop {
            match self.recv_before(Some(deadline)).await? {
                Some(EventItem::Event(ev)) if filter(&ev) => return Ok(ev),
                Some(EventItem::Event(_)) => {}
                Some(EventItem::Lagged(count)) => return Err(Error::EventsLost { count }),
                None => {
                    return Err(Error::Timeout {
                        what: "a matching event".into(),
                        after: timeout,
                    })
                }
            }
        }
    }

    /// The first event `E` that `filter` accepts, decoded, within
    /// `timeout`; see [`crate::blocking::Subscription::wait_event`].
    pub async fn wait_event<E: crate::Event>(
        &mut self,
        timeout: Duration,
        mut filter: impl FnMut(&E) -> bool,
    ) -> Result<E> {
        let mut found = None;
        self.wait_for(timeout, |ev| {
            proto::typed_match(ev, &mut filter, &mut found)
        })
        .await?;
        found.unwrap_or(Err(Error::Disconnected))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&self.shared.state).hub.unsubscribe(self.id);
    }
}

/// Waiting for jobs and devices, and fd sets; see the blocking client's
/// methods of the same names for what each does.
#[cfg(feature = "qmp")]
impl Qmp {
    /// Run the job `start` starts to its end, within `timeout`; see
    /// [`crate::blocking::Qmp::run_job`].
    pub async fn run_job<C: Command>(&self, start: &C, timeout: Option<Duration>) -> Result<()> {
        let id = crate::wait::job_id_of(start)?;
        let deadline = timeout.map(|t| ::tokio::time::Instant::now() + t);
        let mut sub = self.subscribe_filter(crate::wait::job_filter(id.clone()));
        self.execute(start).await?;
        let mut watch = crate::wait::JobWatch::new(id);
        loop {
            let step = match sub.recv_before(deadline).await? {
                Some(EventItem::Event(ev)) => watch.event(&ev)?,
                Some(EventItem::Lagged(_)) => {
                    watch.caught_up(&self.execute(&crate::wait::query_jobs()).await?)
                }
                None => {
                    return Err(Error::Timeout {
                        what: format!("job {}", watch.id),
                        after: timeout.unwrap_or_default(),
                    })
                }
            };
            match step {
                crate::wait::JobStep::Wait => {}
                crate::wait::JobStep::Complete(c) => self.execute(&c).await?,
                crate::wait::JobStep::Concluded => {
                    let jobs = self.execute(&crate::wait::query_jobs()).await?;
                    let (dismiss, result) = watch.conclude(&jobs);
                    if let Some(d) = dismiss {
                        self.execute(&d).await?;
                    }
                    return result;
                }
            }
        }
    }

    /// `device_del` of `id`, then its `DEVICE_DELETED` within `timeout`;
    /// see [`crate::blocking::Qmp::device_del`].
    pub async fn device_del(&self, id: &str, timeout: Option<Duration>) -> Result<()> {
        let mut sub = self.subscribe_filter(crate::wait::device_deleted_filter(id.to_string()));
        self.execute(&crate::wait::device_del(id)).await?;
        let deadline = timeout.map(|t| ::tokio::time::Instant::now() + t);
        match sub.recv_before(deadline).await? {
            Some(EventItem::Event(_)) => Ok(()),
            Some(EventItem::Lagged(count)) => Err(Error::EventsLost { count }),
            None => Err(Error::Timeout {
                what: format!("DEVICE_DELETED of {id}"),
                after: timeout.unwrap_or_default(),
            }),
        }
    }

    /// Pass `fd` with `add-fd`; the guard removes the fd set when
    /// dropped; see [`crate::blocking::Qmp::add_fd`].
    pub async fn add_fd(
        &self,
        fd: BorrowedFd<'_>,
        fdset_id: Option<i64>,
        opaque: Option<&str>,
    ) -> Result<FdSet> {
        let info = self
            .execute_with_fds(&crate::wait::add_fd(fdset_id, opaque), &[fd])
            .await?;
        Ok(FdSet {
            qmp: self.clone(),
            info: info.into(),
            removed: false,
        })
    }
}

/// An fd set QEMU holds, from [`Qmp::add_fd`].  Dropped, it removes the
/// set from a task spawned on the current tokio runtime (errors are
/// ignored; with no runtime, QEMU keeps the set until the connection
/// closes): call [`FdSet::remove`] to wait for it and see the outcome.
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
    pub async fn remove(mut self) -> Result<()> {
        self.removed = true;
        self.qmp
            .execute(&crate::wait::remove_fdset(self.info.fdset_id))
            .await
    }
}

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
    synced: bool,
    closed: Option<Closed>,
}

impl GuestAgent {
    /// Connect to the agent's Unix socket with the default [`Options`].
    pub async fn connect_unix(path: impl AsRef<Path>) -> Result<GuestAgent> {
        Self::connect_unix_with(path, &Options::default()).await
    }

    /// Connect to the agent's Unix socket.
    pub async fn connect_unix_with(path: impl AsRef<Path>, opts: &Options) -> Result<GuestAgent> {
        Ok(Self::start(
            Stream::connect_unix(path, opts.connect_timeout).await?,
            opts,
        ))
    }

    /// Use an open connection; nothing is exchanged until the first call.
    pub fn start(stream: Stream, opts: &Options) -> GuestAgent {
        let (reader, sink) = stream.split();
        GuestAgent {
            conn: ::tokio::sync::Mutex::new(AgentConn {
                reader,
                framer: Framer::new(opts.max_message),
                sink,
                buf: Vec::with_capacity(256),
                synced: false,
                closed: None,
            }),
            options: opts.clone(),
        }
    }

    /// Resynchronise now (done before the first command anyway).
    pub async fn sync(&self) -> Result<()> {
        let mut c = self.conn.lock().await;
        let t = self.options.command_timeout;
        limit(t, || "guest-sync-delimited".into(), c.sync()).await
    }

    /// Run a command and decode its reply; `success-response: false`
    /// commands return once sent (see
    /// [`crate::blocking::GuestAgent::execute`]).
    pub async fn execute<C: Command>(&self, command: &C) -> Result<C::Returns> {
        let t = self.options.command_timeout;
        let v = self
            .call(C::NAME, Some(command), C::SUCCESS_RESPONSE, t)
            .await?;
        proto::decode_return::<C>(v, self.options.strict)
    }

    /// Run a command by name with JSON arguments; waits for a reply.
    pub async fn execute_raw(&self, name: &str, arguments: Option<&Value>) -> Result<Value> {
        let t = self.options.command_timeout;
        self.call(name, arguments, true, t)
            .await
            .and_then(proto::to_value)
    }

    async fn call<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: Option<&A>,
        wait: bool,
        timeout: Option<Duration>,
    ) -> Result<proto::Returned> {
        let work = self.exchange(name, args, wait, timeout);
        crate::trace::command_async(name, work).await
    }

    async fn exchange<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: Option<&A>,
        wait: bool,
        timeout: Option<Duration>,
    ) -> Result<proto::Returned> {
        let mut c = self.conn.lock().await;
        if let Some(cl) = &c.closed {
            return Err(cl.error());
        }
        let c = &mut *c;
        // Until this call completes, a cancelled or timed-out call leaves
        // the stream out of step: resync next time.
        let work = async {
            if !c.synced {
                c.sync().await?;
            }
            c.synced = false;
            c.buf.clear();
            proto::encode_request(&mut c.buf, name, args, None, false)?;
            c.sink.send(&c.buf, &[]).await?;
            if !wait {
                return Ok(proto::empty_return());
            }
            let r = proto::agent_reply(next_message(&mut c.reader, &mut c.framer).await?)?;
            c.synced = true;
            r.map_err(Error::Qmp)
        };
        let r = limit(timeout, || name.to_string(), work).await;
        if let Err(e) = &r {
            if e.is_fatal() {
                c.closed = Some(Closed::from_error(e));
            }
        }
        r
    }
}

impl AgentConn {
    async fn sync(&mut self) -> Result<()> {
        let (id, bytes) = proto::agent_sync_request();
        self.framer.resync();
        self.sink.send(&bytes, &[]).await?;
        loop {
            let msg = next_message(&mut self.reader, &mut self.framer).await?;
            if proto::is_sync_reply(msg.message().bytes, id) {
                crate::trace::synced();
                self.synced = true;
                return Ok(());
            }
        }
    }
}
