//! The clients' public methods, written once for both drivers.
//!
//! Everything a client decides is in the I/O-free core (`conn.rs`,
//! `proto.rs`, `wait.rs`); what is left above it is the same for the
//! blocking and the tokio driver but for `async` and `.await`.  So it is
//! written here once, as macros each driver expands, over the few
//! primitives a driver provides in its own way:
//!
//! - `Stream::connect_unix(path, timeout)` and `Stream::connect_tcp`;
//!   `Qmp::start(stream, opts)` and `GuestAgent::start(stream, opts)`;
//! - `Qmp::exchange(name, args, oob, fds, timeout)` (write the request,
//!   wait for its reply) and `Qmp::subscribe_filtered(filter)`;
//! - `Subscription::recv_until(deadline)` (the next item, or
//!   [`Error::Timeout`](crate::Error::Timeout) once `deadline` passed);
//! - `GuestAgent::exchange(name, args, wait, timeout)`;
//! - the macros `aw!(expr)` (the expression, awaited in the tokio
//!   driver) and `traced!(name, expr)` (the call in its tracing span),
//!   and the type `Instant` (std's, or tokio's).

/// `Stream`: a connection before the protocol starts, the same in both
/// drivers but for its types (`UnixStream`, `TcpStream`, `Child`, …).
macro_rules! stream_api {
    () => {
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
            /// Take a spawned QEMU's stdin and stdout (started with piped
            /// stdio and `-qmp stdio`).
            pub fn from_child(child: &mut Child) -> Result<Stream> {
                match (child.stdout.take(), child.stdin.take()) {
                    (Some(o), Some(i)) => Ok(Stream::Stdio(o, i)),
                    _ => Err(Error::Unsupported(
                        "the child's stdin and stdout must both be piped".into(),
                    )),
                }
            }
        }
    };
}

/// `Qmp`'s methods, its `Subscription`'s and `FdSet`; `$async` is
/// `async` in the tokio driver, nothing in the blocking one.
macro_rules! qmp_api {
    ($($async:ident)?) => {
        impl std::fmt::Debug for Qmp {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Qmp")
                    .field("greeting", &self.inner.greeting)
                    .field("oob", &self.inner.oob)
                    .finish()
            }
        }

        /// The greeting (events before it are skipped), within the
        /// greeting's time limit.
        $($async)? fn read_greeting(reader: &mut Reader, opts: &Options) -> Result<Greeting> {
            let deadline = opts.greeting_timeout.map(|t| Instant::now() + t);
            loop {
                let msg = aw!(reader.next(deadline)).map_err(|e| {
                    crate::conn::timed(e, || "the greeting".into(), opts.greeting_timeout)
                })?;
                if let Some(g) = Greeting::parse(msg.message().bytes)? {
                    return Ok(g);
                }
            }
        }

        impl Qmp {
            /// Connect to QEMU's QMP Unix socket with the default
            /// [`Options`].
            pub $($async)? fn connect_unix(path: impl AsRef<Path>) -> Result<Qmp> {
                aw!(Self::connect_unix_with(path, &Options::default()))
            }

            /// Connect to QEMU's QMP Unix socket.
            pub $($async)? fn connect_unix_with(path: impl AsRef<Path>, opts: &Options) -> Result<Qmp> {
                let stream = aw!(Stream::connect_unix(path, opts.connect_timeout))?;
                aw!(Self::start(stream, opts))
            }

            /// Connect to QEMU's QMP TCP socket (`host:port`).
            pub $($async)? fn connect_tcp(addr: &str, opts: &Options) -> Result<Qmp> {
                let stream = aw!(Stream::connect_tcp(addr, opts.connect_timeout))?;
                aw!(Self::start(stream, opts))
            }

            /// The server's greeting.
            pub fn greeting(&self) -> &Greeting {
                &self.inner.greeting
            }

            /// Whether out-of-band execution was negotiated.
            pub fn oob(&self) -> bool {
                self.inner.oob
            }

            /// Run a command and decode its reply.
            pub $($async)? fn execute<C: Command>(&self, command: &C) -> Result<C::Returns> {
                aw!(self.execute_timeout(command, self.inner.options.command_timeout))
            }

            /// Run a command with its own time limit (`None`: wait as long
            /// as it takes).
            pub $($async)? fn execute_timeout<C: Command>(
                &self,
                command: &C,
                timeout: Option<Duration>,
            ) -> Result<C::Returns> {
                let v = aw!(self.call(C::NAME, Some(command), false, &[], timeout))?;
                proto::decode_return::<C>(v, self.inner.options.strict)
            }

            /// Run a command out of band (`exec-oob`): QEMU answers it at
            /// once, even while other commands are still running.  Only for
            /// commands the schema marks `allow-oob`, once `oob` was
            /// negotiated.
            pub $($async)? fn execute_oob<C: Command>(&self, command: &C) -> Result<C::Returns> {
                crate::conn::check_oob::<C>(self.inner.oob)?;
                let t = self.inner.options.command_timeout;
                let v = aw!(self.call(C::NAME, Some(command), true, &[], t))?;
                proto::decode_return::<C>(v, self.inner.options.strict)
            }

            /// Run a command with file descriptors attached (SCM_RIGHTS, in
            /// the same message), for `getfd` and `add-fd`.  Unix sockets
            /// only.
            pub $($async)? fn execute_with_fds<C: Command>(
                &self,
                command: &C,
                fds: &[BorrowedFd<'_>],
            ) -> Result<C::Returns> {
                let t = self.inner.options.command_timeout;
                let v = aw!(self.call(C::NAME, Some(command), false, fds, t))?;
                proto::decode_return::<C>(v, self.inner.options.strict)
            }

            /// Run a command by name with JSON arguments (for commands the
            /// bindings lack); returns the reply's `return` as JSON.
            pub $($async)? fn execute_raw(&self, name: &str, arguments: Option<&Value>) -> Result<Value> {
                let t = self.inner.options.command_timeout;
                aw!(self.call(name, arguments, false, &[], t)).and_then(proto::to_value)
            }

            /// Run a human monitor command (HMP) and return its text.
            pub $($async)? fn human_command(&self, command_line: &str) -> Result<String> {
                let args = crate::conn::hmp(command_line);
                proto::hmp_text(aw!(self.execute_raw("human-monitor-command", Some(&args)))?)
            }

            /// Negotiate capabilities (`oob` when [`Qmp::oob`]).
            $($async)? fn negotiate(&self) -> Result<()> {
                let caps = crate::conn::capabilities(self.inner.oob);
                let t = self.inner.options.greeting_timeout;
                aw!(self.call("qmp_capabilities", Some(&caps), false, &[], t))?;
                self.state().core.negotiated();
                crate::trace::ready(self.inner.oob);
                Ok(())
            }

            fn subscribe_filtered(&self, filter: Option<crate::proto::EventFilter>) -> Subscription {
                let id = self.state().core.subscribe(filter);
                self.subscription(id)
            }

            /// Receive every event from now on (up to
            /// [`Options::event_buffer`] waiting; older ones are dropped
            /// and reported as lagged).
            pub fn subscribe(&self) -> Subscription {
                self.subscribe_filtered(None)
            }

            /// Receive the events `filter` accepts.
            pub fn subscribe_filter(
                &self,
                filter: impl Fn(&RawEvent) -> bool + Send + Sync + 'static,
            ) -> Subscription {
                self.subscribe_filtered(Some(std::sync::Arc::new(filter)))
            }

            /// A command checked against the server's schema when
            /// [`Options::check_commands`] is on, then exchanged in its
            /// tracing span.
            $($async)? fn call<A: Serialize + ?Sized>(
                &self,
                name: &str,
                args: Option<&A>,
                oob: bool,
                fds: &[BorrowedFd<'_>],
                timeout: Option<Duration>,
            ) -> Result<proto::Returned> {
                if self.inner.options.check_commands && !crate::probe::exempt(name) {
                    aw!(self.check_before_send(name, args))?;
                }
                traced!(name, self.exchange(name, args, oob, fds, timeout))
            }
        }

        /// Asking the server what it has (see [`crate::probe`]).
        impl Qmp {
            /// Whether the server has the command `C`.
            pub $($async)? fn supports<C: Command>(&self) -> Result<bool> {
                Ok(aw!(self.schema())?.supports::<C>())
            }

            /// Whether the server has the event `E`.
            pub $($async)? fn supports_event<E: crate::Event>(&self) -> Result<bool> {
                Ok(aw!(self.schema())?.supports_event::<E>())
            }

            /// Check `command` against the server's schema without
            /// sending it: [`Error::Unsupported`] names every part the
            /// server does not know; the `deprecated` and `unstable` parts
            /// it uses go to [`Options::on_warning`](crate::Options::on_warning).
            pub $($async)? fn check<C: Command>(&self, command: &C) -> Result<()> {
                aw!(self.check_before_send(C::NAME, Some(command)))
            }

            /// [`check`](Self::check) for a command by name with JSON
            /// arguments (as `execute_raw` sends them).
            pub $($async)? fn check_raw(&self, name: &str, arguments: Option<&Value>) -> Result<()> {
                aw!(self.check_before_send(name, arguments))
            }

            $($async)? fn check_before_send<A: Serialize + ?Sized>(
                &self,
                name: &str,
                args: Option<&A>,
            ) -> Result<()> {
                let schema = aw!(self.schema())?;
                let hook = self.inner.options.on_warning.as_ref();
                crate::probe::check_request(&schema, &self.inner.probe.warned, hook, name, args)
            }
        }

        /// Waiting for jobs and devices, and fd sets, on the bindings'
        /// commands.
        #[cfg(feature = "qmp")]
        impl Qmp {
            /// Run the job `start` starts (`blockdev-create`,
            /// `blockdev-mirror`, `blockdev-backup`, `block-stream`,
            /// `block-commit`, …) to its end, within `timeout` (`None`: as
            /// long as it takes).
            ///
            /// The job is followed by its `job-id` (or, for a block job
            /// without one, its `device`, which QEMU then names it after),
            /// through `JOB_STATUS_CHANGE` events subscribed to before the
            /// job starts.  A job that waits in `ready` (a mirror, an active
            /// commit) is completed with `job-complete`.  Once it concluded,
            /// its outcome is read from `query-jobs` and it is dismissed
            /// (`job-dismiss`); a block job QEMU dismissed by itself
            /// (`auto-dismiss`, the default) reports through
            /// `BLOCK_JOB_COMPLETED` instead.  A failed job is
            /// [`Error::Job`] with QEMU's message.  On a time limit the job
            /// is left as it is.
            pub $($async)? fn run_job<C: Command>(&self, start: &C, timeout: Option<Duration>) -> Result<()> {
                aw!(self.wait(crate::wait::JobWait::new(start)?, timeout))
            }

            /// `device_del` of `id` (a device's id or QOM path), then wait
            /// for its `DEVICE_DELETED` within `timeout` (`None`: as long
            /// as it takes; a PCI device goes only once the guest lets it).
            pub $($async)? fn device_del(&self, id: &str, timeout: Option<Duration>) -> Result<()> {
                aw!(self.wait(crate::wait::DeviceWait::new(id), timeout))
            }

            /// Pass `fd` to QEMU with `add-fd` (into the fd set `fdset_id`,
            /// or a new one); the guard removes the whole fd set
            /// (`remove-fd`) when dropped, or when [`FdSet::remove`] is
            /// called to see the outcome.  Unix sockets only.
            pub $($async)? fn add_fd(
                &self,
                fd: BorrowedFd<'_>,
                fdset_id: Option<i64>,
                opaque: Option<&str>,
            ) -> Result<FdSet> {
                let add = crate::wait::add_fd(fdset_id, opaque);
                let info = aw!(self.execute_with_fds(&add, &[fd]))?;
                Ok(FdSet {
                    qmp: self.clone(),
                    info: info.into(),
                    removed: false,
                })
            }

            /// Run a wait (`wait.rs`) to its end: subscribe, then send
            /// and receive as it says, within `timeout`.
            $($async)? fn wait(&self, mut w: impl crate::wait::Wait, timeout: Option<Duration>) -> Result<()> {
                use crate::wait::Step;
                let deadline = timeout.map(|t| Instant::now() + t);
                let sub = self.subscribe_filtered(Some(w.filter()));
                let mut step = w.start();
                loop {
                    step = match step {
                        Step::Send(name, args) => {
                            let args = (!args.is_null()).then_some(&args);
                            let t = self.inner.options.command_timeout;
                            let reply = aw!(self.call(name, args, false, &[], t))?;
                            w.replied(reply, self.inner.options.strict)?
                        }
                        Step::Recv => match aw!(sub.recv_until(deadline)) {
                            Err(Error::Timeout { .. }) => {
                                return Err(w.timed_out(timeout.unwrap_or_default()))
                            }
                            item => w.received(item?)?,
                        },
                        Step::Done => return Ok(()),
                    }
                }
            }
        }

        impl Drop for Subscription {
            fn drop(&mut self) {
                self.state().core.unsubscribe(self.id);
            }
        }

        impl Subscription {
            /// An event already received, if any (reads nothing).
            pub fn try_recv(&self) -> Option<EventItem> {
                match self.state().core.poll_event(self.id, None) {
                    std::task::Poll::Ready(Ok(i)) => Some(i),
                    _ => None,
                }
            }

            /// The next event, or how many were lost; waits as long as it
            /// takes.  Ends with [`Error::Disconnected`] (or the error that
            /// ended the connection) once the queue is empty and the
            /// connection is over.
            pub $($async)? fn recv(&self) -> Result<EventItem> {
                aw!(self.recv_until(None))
            }

            /// As [`Subscription::recv`], within `timeout`
            /// ([`Error::Timeout`] after it).
            pub $($async)? fn recv_timeout(&self, timeout: Duration) -> Result<EventItem> {
                aw!(self.recv_until(Some(Instant::now() + timeout))).map_err(|e| match e {
                    Error::Timeout { .. } => Error::Timeout {
                        what: "an event".into(),
                        after: timeout,
                    },
                    e => e,
                })
            }

            /// The first event `filter` accepts, within `timeout`; the
            /// others are passed over.  Subscribe before doing what causes
            /// the event, so it cannot come before the wait starts.  Ends
            /// with [`Error::EventsLost`] if this subscriber fell behind
            /// (the event may have been dropped), [`Error::Timeout`] when
            /// the time is up.
            pub $($async)? fn wait_for(
                &self,
                timeout: Duration,
                mut filter: impl FnMut(&RawEvent) -> bool,
            ) -> Result<RawEvent> {
                let deadline = Instant::now() + timeout;
                loop {
                    match aw!(self.recv_until(Some(deadline))) {
                        Ok(item) => {
                            if let Some(r) = crate::conn::matching(item, &mut filter) {
                                return r;
                            }
                        }
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
            /// `timeout` (as [`Subscription::wait_for`]; an `E` whose data
            /// does not decode ends the wait with [`Error::Decode`]).
            pub $($async)? fn wait_event<E: crate::Event>(
                &self,
                timeout: Duration,
                mut filter: impl FnMut(&E) -> bool,
            ) -> Result<E> {
                let mut found = None;
                aw!(self.wait_for(timeout, |ev| {
                    proto::typed_match(ev, &mut filter, &mut found)
                }))?;
                found.unwrap_or(Err(Error::Disconnected))
            }
        }

        /// An fd set QEMU holds, from [`Qmp::add_fd`]: removed with
        /// `remove-fd` when dropped (errors then are ignored: call
        /// [`FdSet::remove`] to see them).
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
            pub $($async)? fn remove(mut self) -> Result<()> {
                self.removed = true;
                aw!(self.qmp.execute(&crate::wait::remove_fdset(self.info.fdset_id)))
            }
        }
    };
}

/// `GuestAgent`'s methods; `$async` as for [`qmp_api`].
macro_rules! agent_api {
    ($($async:ident)?) => {
        impl GuestAgent {
            /// Connect to the agent's Unix socket with the default
            /// [`Options`].
            pub $($async)? fn connect_unix(path: impl AsRef<Path>) -> Result<GuestAgent> {
                aw!(Self::connect_unix_with(path, &Options::default()))
            }

            /// Connect to the agent's Unix socket.
            pub $($async)? fn connect_unix_with(path: impl AsRef<Path>, opts: &Options) -> Result<GuestAgent> {
                let stream = aw!(Stream::connect_unix(path, opts.connect_timeout))?;
                Self::start(stream, opts)
            }

            /// Run a command and decode its reply.  Commands whose schema
            /// says `success-response: false` (`guest-shutdown`,
            /// `guest-suspend-*`) return as soon as they are sent: the agent
            /// answers them only if they fail, and that answer is skipped
            /// by the next resync.
            pub $($async)? fn execute<C: Command>(&self, command: &C) -> Result<C::Returns> {
                aw!(self.execute_timeout(command, self.options.command_timeout))
            }

            /// Run a command with its own time limit.
            pub $($async)? fn execute_timeout<C: Command>(
                &self,
                command: &C,
                timeout: Option<Duration>,
            ) -> Result<C::Returns> {
                let v = aw!(self.call(C::NAME, Some(command), C::SUCCESS_RESPONSE, timeout))?;
                proto::decode_return::<C>(v, self.options.strict)
            }

            /// Run a command by name with JSON arguments; waits for a
            /// reply.
            pub $($async)? fn execute_raw(&self, name: &str, arguments: Option<&Value>) -> Result<Value> {
                let t = self.options.command_timeout;
                aw!(self.call(name, arguments, true, t)).and_then(proto::to_value)
            }

            /// Resynchronise now (done before the first command anyway).
            pub $($async)? fn sync(&self) -> Result<()> {
                let mut c = aw!(self.conn());
                c.state.check()?;
                let t = self.options.command_timeout;
                let r = aw!(c.sync(t.map(|t| Instant::now() + t), t));
                c.state.end(r)
            }

            $($async)? fn call<A: Serialize + ?Sized>(
                &self,
                name: &str,
                args: Option<&A>,
                wait: bool,
                timeout: Option<Duration>,
            ) -> Result<proto::Returned> {
                traced!(name, self.exchange(name, args, wait, timeout))
            }

            $($async)? fn exchange<A: Serialize + ?Sized>(
                &self,
                name: &str,
                args: Option<&A>,
                wait: bool,
                timeout: Option<Duration>,
            ) -> Result<proto::Returned> {
                let mut c = aw!(self.conn());
                let r = aw!(c.exchange(name, args, wait, timeout));
                c.state.end(r)
            }
        }

        /// The guest agent's connection: the stream, and whether it is in
        /// step (`conn.rs`'s [`AgentState`]).
        struct AgentConn {
            reader: Reader,
            sink: Sink,
            buf: Vec<u8>,
            state: AgentState,
        }

        impl AgentConn {
            fn new(reader: Reader, sink: Sink) -> AgentConn {
                AgentConn {
                    reader,
                    sink,
                    buf: Vec::with_capacity(256),
                    state: AgentState::default(),
                }
            }

            /// One command: a resync first when the stream may be out of
            /// step, then the request, then (when one is due) its reply.
            $($async)? fn exchange<A: Serialize + ?Sized>(
                &mut self,
                name: &str,
                args: Option<&A>,
                wait: bool,
                timeout: Option<Duration>,
            ) -> Result<proto::Returned> {
                let deadline = timeout.map(|t| Instant::now() + t);
                if self.state.check()? {
                    aw!(self.sync(deadline, timeout))?;
                }
                self.state.sending();
                self.buf.clear();
                proto::encode_request(&mut self.buf, name, args, None, false)?;
                aw!(send_before(&mut self.sink, &self.buf, deadline))
                    .map_err(|e| crate::conn::timed(e, || format!("sending {name}"), timeout))?;
                if !wait {
                    return Ok(proto::empty_return());
                }
                let msg = aw!(self.reader.next(deadline))
                    .map_err(|e| crate::conn::timed(e, || name.into(), timeout))?;
                let reply = proto::agent_reply(msg)?;
                self.state.answered();
                reply.map_err(Error::Qmp)
            }

            /// `guest-sync-delimited`: everything up to its reply skipped.
            $($async)? fn sync(&mut self, deadline: Option<Instant>, timeout: Option<Duration>) -> Result<()> {
                let (id, bytes) = proto::agent_sync_request();
                self.reader.framer.resync();
                let what = || "guest-sync-delimited".to_string();
                aw!(send_before(&mut self.sink, &bytes, deadline))
                    .map_err(|e| crate::conn::timed(e, what, timeout))?;
                loop {
                    let msg = aw!(self.reader.next(deadline))
                        .map_err(|e| crate::conn::timed(e, what, timeout))?;
                    // Anything but our id is a stale reply: skip it.
                    if proto::is_sync_reply(msg.message().bytes, id) {
                        crate::trace::synced();
                        self.state.answered();
                        return Ok(());
                    }
                }
            }
        }
    };
}

pub(crate) use {agent_api, qmp_api, stream_api};
