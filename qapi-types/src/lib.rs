//! QEMU's QMP and guest-agent protocols in Rust: typed bindings
//! generated from QEMU's schema ([`qmp`], [`qga`]), the runtime generated
//! code builds on ([`Command`], [`Event`]), and a thin transport: a
//! blocking client ([`blocking`], std only) and a tokio client
//! (`qapi_types::tokio`, feature `tokio`) on one protocol core.
//!
//! # Guide
//!
//! ## Connect
//!
//! Start QEMU with a QMP socket, e.g. `qemu-system-x86_64 -qmp
//! unix:/run/vm.sock,server=on,wait=off` or `qemu-storage-daemon
//! --chardev socket,path=/run/sd.sock,server=on,wait=off,id=m --monitor
//! chardev=m`, then:
//!
//! ```no_run
//! use qapi_types::blocking::Qmp;
//! use qapi_types::qmp::commands::{QueryStatus, Stop};
//!
//! # fn main() -> qapi_types::Result<()> {
//! let qmp = Qmp::connect_unix("/run/vm.sock")?;
//! println!("connected to {}", qmp.greeting());
//! let status = qmp.execute(&QueryStatus {})?; // a qmp::StatusInfo
//! println!("running: {}", status.running);
//! qmp.execute(&Stop {})?;
//! # Ok(()) }
//! ```
//!
//! Connecting reads the greeting and negotiates capabilities, enabling
//! out-of-band execution when QEMU offers it.  Other ways in: TCP
//! ([`blocking::Qmp::connect_tcp`]), a QEMU started with `-qmp stdio`
//! ([`blocking::Stream::from_child`] then [`blocking::Qmp::start`]), QEMU
//! dialling out to you with `server=off` ([`blocking::Qmp::accept`]), or
//! any socket you opened yourself (`Qmp::start(stream.into(), &opts)`).
//!
//! ## Execute
//!
//! Every command of the schema is a type in `qmp::commands`; its fields
//! are the arguments, [`Command::Returns`] is what `execute` gives back.
//! A [`blocking::Qmp`] is `Clone + Send + Sync`, and the tokio
//! `tokio::Qmp` is `Clone`: call it from many threads or
//! tasks at once and every reply goes to its caller.
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn f() -> qapi_types::Result<()> {
//! use qapi_types::qmp::commands::QueryNamedBlockNodes;
//! let qmp = qapi_types::tokio::Qmp::connect_unix("/run/sd.sock").await?;
//! let (a, b) = tokio::join!(
//!     qmp.execute(&QueryNamedBlockNodes { flat: Some(true) }),
//!     qmp.execute_raw("query-jobs", None), // by name, JSON in and out
//! );
//! println!("{} nodes, jobs: {}", a?.len(), b?);
//! let text = qmp.human_command("info version").await?; // HMP
//! # Ok(()) }
//! ```
//!
//! ## Build commands
//!
//! Name only what you set. A command, struct or union branch with no
//! required member is `Default`; any other has `new` taking its required
//! members (as `impl Into`, so `&str` works for strings), and every
//! optional member has a chained setter of the field's name. Boxing is
//! hidden by the setters. Unions are built from their branch (the
//! discriminator is never repeated): a branch type that only one branch
//! uses converts `Into` the union; alternates convert from each of their
//! types (`BlockdevRef::from("node")`). A deprecated member you do not set
//! is never named, so it never warns.
//!
//! [Stories 2 and 3](#six-stories) build a qcow2 node over a file node and
//! hot-plug it with `device_add`, which takes its typed arguments plus
//! properties of any JSON type.
//!
//! Names never break your code: `use qapi_types::qmp::*` and `use
//! qapi_types::qmp::commands::*` compile together, and neither shadows
//! the prelude (QAPI's `String` type is `QapiString`). A command whose
//! arguments are a type of the same name is that type
//! (`commands::DriveMirror` is `qmp::DriveMirror`); any other clash gets
//! a `Command` or `Event` suffix (`events::StopEvent`, the `STOP` event
//! beside the `stop` command).
//!
//! `execute_oob` sends an `allow-oob` command with `exec-oob`;
//! `execute_with_fds` attaches file descriptors (SCM_RIGHTS) to the same
//! message, for `getfd` and `add-fd`.
//!
//! ## Events
//!
//! Each subscriber gets every event (or those its filter takes) in a
//! bounded queue of its own; a subscriber that falls behind loses the
//! oldest and is told how many with [`EventItem::Lagged`], and never
//! holds up replies or other subscribers.  Decode with the generated
//! [`RawEvent::event`] into the generated `qmp::events::Event` (with
//! the connection's strictness: an event the bindings do not know is the
//! catch-all `Other`, a known one whose data does not decode is an
//! [`EventError`] that keeps it), or one event type with
//! [`RawEvent::decode`].
//!
//! ```no_run
//! use qapi_types::qmp::events::Event;
//! use qapi_types::EventItem;
//! # fn f(qmp: qapi_types::blocking::Qmp) -> qapi_types::Result<()> {
//! let jobs = qmp.subscribe_filter(|e| e.name == "JOB_STATUS_CHANGE");
//! loop {
//!     match jobs.recv()? {
//!         EventItem::Event(raw) => match raw.event::<Event>() {
//!             Ok(Event::JobStatusChange(e)) => println!("{}: {:?}", e.id, e.status),
//!             Ok(other) => println!("{}", other.name()),
//!             Err(bad) => eprintln!("{bad}"),
//!         },
//!         EventItem::Lagged(n) => eprintln!("missed {n} events"),
//!     }
//! }
//! # }
//! ```
//!
//! ## Six stories
//!
//! What people do with QMP, each as a function to copy: the typed API
//! only (no JSON), and only the members that are set.  The same text
//! runs against QEMU 10.0.2's system emulator (q35, no guest OS) in the
//! workspace's `tests/tests/stories.rs`, which starts it with `-device
//! pcie-root-port,id=root0,chassis=1 -device qemu-xhci,id=xhci` and
//! calls them in this order.
//!
//! ### 1. Connect and print the run state
//!
#![doc = concat!("```no_run\n", include_str!("stories/connect.rs"), "```")]
//!
//! ### 2. A qcow2 disk over a file node
//!
//! Two `blockdev-create` jobs make the image, and `blockdev-add` opens
//! it, one node per layer.
//!
#![doc = concat!("```no_run\n", include_str!("stories/qcow2_disk.rs"), "```")]
//!
//! ### 3. Hot-plug it as a virtio-blk-pci device on a PCIe root port
//!
#![doc = concat!("```no_run\n", include_str!("stories/hotplug.rs"), "```")]
//!
//! ### 4. Mirror it to a new node, complete the job, report its events
//!
//! The new node is a second disk from story 2 (`copy0`); the mirror
//! copies `disk0` to it while the guest may go on writing, and
//! completing the job switches the device over to the copy.
//!
#![doc = concat!("```no_run\n", include_str!("stories/mirror.rs"), "```")]
//!
//! ### 5. Migrate to a file and wait for completion
//!
//! A migration to `file:PATH` saves the VM's state; `-incoming
//! file:PATH` starts a QEMU from it.
//!
#![doc = concat!("```no_run\n", include_str!("stories/migrate.rs"), "```")]
//!
//! ### 6. Hot-unplug a device and wait for `DEVICE_DELETED`
//!
#![doc = concat!("```no_run\n", include_str!("stories/unplug.rs"), "```")]
//!
//! ## The guest agent
//!
//! [`blocking::GuestAgent`] (and `tokio::GuestAgent`)
//! talk to `qemu-ga`: no greeting, no negotiation, one command at a
//! time.  Before its first command, and after any time limit passes, the
//! client resynchronises (a 0xFF byte and `guest-sync-delimited` with a
//! random id, skipping everything up to the agent's 0xFF), so stale
//! replies never reach you.  Commands whose schema says `success-response:
//! false` (`guest-shutdown`, `guest-suspend-*`) return once sent.
//!
//! ```no_run
//! use qapi_types::blocking::GuestAgent;
//! use qapi_types::qga::commands::GuestInfo;
//! # fn main() -> qapi_types::Result<()> {
//! let ga = GuestAgent::connect_unix("/run/vm-agent.sock")?;
//! println!("agent {}", ga.execute(&GuestInfo {})?.version);
//! # Ok(()) }
//! ```
//!
//! ## Errors and time limits
//!
//! Every call ends in a value or an [`Error`]: `Qmp` (QEMU's own error,
//! with its `class` and `desc`), `Timeout` (which step, which limit),
//! `Disconnected`, `Protocol` (garbage or an unexpected message),
//! `TooLarge`, `Decode` (the reply's JSON kept), `Io`, `Unsupported`
//! (not possible on this connection, or parts of a checked command the
//! server lacks).
//! [`Error::is_fatal`] tells whether the connection is over; to go on,
//! connect again (a fresh client on the same address negotiates anew).
//! Calls in flight fail at once when the connection ends, and
//! subscribers see the end.
//!
//! [`Options`] sets the limits: connect and greeting (5 s), each command
//! (30 s; a reply that comes later is dropped), the largest message
//! (128 MiB), each subscriber's queue (1024 events), whether to enable
//! `oob`, and [`IdPolicy`].
//!
//! ```no_run
//! use std::time::Duration;
//! use qapi_types::{blocking::Qmp, Error, Options};
//! use qapi_types::qmp::commands::QueryVersion;
//! # fn main() -> qapi_types::Result<()> {
//! let opts = Options::new().command_timeout(Some(Duration::from_secs(2)));
//! let qmp = Qmp::connect_unix_with("/run/vm.sock", &opts)?;
//! match qmp.execute(&QueryVersion {}) {
//!     Ok(v) => println!("QEMU {}.{}", v.qemu.major, v.qemu.minor),
//!     Err(Error::Qmp(e)) => eprintln!("QEMU said no: {}", e.desc),
//!     Err(e) if e.is_fatal() => eprintln!("connection lost: {e}"),
//!     Err(e) => eprintln!("{e}"),
//! }
//! # Ok(()) }
//! ```
//!
//! ## Asking the running QEMU
//!
//! What a QEMU has depends on its release and build.  Each client reads
//! the server's `query-qmp-schema` once per connection, when first
//! needed, into a [`probe::Schema`]; ask it about commands and events,
//! or with paths in libvirt's language that start at a command or event
//! name (see [`probe`] for the exact rules):
//!
//! ```no_run
//! use qapi_types::blocking::Qmp;
//! use qapi_types::qmp::commands::BlockdevAdd;
//! use qapi_types::qmp::events::BlockJobCompleted;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let qmp = Qmp::connect_unix("/run/vm.sock")?;
//! if qmp.supports::<BlockdevAdd>()? && qmp.supports_event::<BlockJobCompleted>()? {
//!     let schema = qmp.schema()?; // cached: no second query
//!     let aio = if schema.query("blockdev-add/arg-type/+file/aio/^io_uring")? {
//!         "io_uring"
//!     } else {
//!         "threads"
//!     };
//!     println!("using {aio}");
//!     // Features of a command or member: `deprecated`, `unstable`, …
//!     println!("{:?}", schema.features("block-commit/arg-type/top")?);
//! }
//! # Ok(()) }
//! ```
//!
//! Before sending, `check` tells whether the server knows every part of
//! a command value; [`Options::check_commands`] checks every command
//! that way.  What it lacks comes back as one [`Error::Unsupported`]
//! whose [`Unsupported::unknown`] names each part as a path; parts it
//! marks `deprecated` or `unstable` go to [`Options::on_warning`] (by
//! default a line on standard error), once per connection.
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn f() -> qapi_types::Result<()> {
//! use qapi_types::{Error, Options};
//! let opts = Options::new()
//!     .check_commands(true)
//!     .on_warning(|w| eprintln!("{w}")); // QEMU marks … as deprecated
//! let qmp = qapi_types::tokio::Qmp::connect_unix_with("/run/vm.sock", &opts).await?;
//! let args = serde_json::json!({"driver": "file", "node-name": "d0",
//!                               "filename": "/img", "aio": "io_uring"});
//! match qmp.execute_raw("blockdev-add", Some(&args)).await {
//!     Err(Error::Unsupported(u)) => {
//!         for part in &u.unknown {
//!             eprintln!("this QEMU lacks {part}"); // e.g. …/+file/aio/^io_uring
//!         }
//!     }
//!     other => println!("{other:?}"),
//! }
//! # Ok(()) }
//! ```
//! ## Tracing
//!
//! With the feature `tracing`, the clients report through the
//! [`tracing`](https://docs.rs/tracing) crate (install any subscriber;
//! `qmp-shell -v` shows it):
//!
//! | what | level | target |
//! |---|---|---|
//! | a span per command: `qmp.command{name, id}`, then an event with `outcome` and `elapsed_us` | DEBUG (the event WARN when the connection failed) | `qapi_types::command` |
//! | the raw JSON sent and received (secrets redacted) | TRACE | `qapi_types::wire` |
//! | each event received | DEBUG | `qapi_types::event` |
//! | a subscriber that lagged, with how many events it lost | WARN | `qapi_types::event` |
//! | connection state: greeting read, capabilities negotiated, closed | INFO (WARN for a close on an error) | `qapi_types::connection` |
//! | a reply that did not decode, with its JSON | WARN | `qapi_types::command` |
//!
//! Secrets are kept out, whatever the level.
//! Before any JSON is logged:
//! - the whole arguments of commands that exist to carry a secret are
//!   replaced by `"<redacted>"`: `set_password`, `change-vnc-password`,
//!   `guest-set-user-password`, and `object-add` of a secret object
//!   (`qom-type` `secret` or `secret_keyring`: every member but
//!   `qom-type` and `id`);
//! - `qom-set` of a property whose name says secret (as below) has its
//!   `value` redacted;
//! - a `human-monitor-command` whose command line mentions a password
//!   or a secret has its command line redacted;
//! - anywhere in a message (arguments, replies, events), the value of a
//!   member whose name contains `password`, `passwd`, `passphrase`,
//!   `secret`, `token` or `cookie` (`password`, `key-secret`,
//!   `password-secret`, …) is redacted.
//!
//! A message that is not valid JSON is logged by its length only.
//!
//! Without the feature nothing of this is compiled in.
//!
//! # The runtime
//!
//! Generated code implements [`Command`] for one type per QAPI command
//! and [`Event`] for one type per event; the clients only know these
//! traits, so bindings generated from any schema by `qapi-codegen` work
//! with them.  The wire forms follow QEMU's `docs/interop/qmp-spec.rst`.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `qmp` | yes | [`qmp`]: the bindings of QEMU's QMP schema |
//! | `qga` | yes | [`qga`]: the bindings of QEMU's guest-agent schema |
//! | `tokio` | no | `qapi_types::tokio`: the async clients |
//! | `tracing` | no | spans and events through the `tracing` crate: see below |
//! | `schema-source` | no | `qapi_types::schema_source`: the schema files the bindings come from, embedded (for tools that show their documentation) |

#![cfg_attr(docsrs, feature(doc_cfg))]

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod blocking;
mod content;
mod error;
pub mod introspect;
pub mod probe;
pub mod proto;
pub mod releases;
#[cfg(feature = "schema-source")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema-source")))]
pub mod schema_source;
mod sys;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
mod trace;
#[cfg(feature = "qmp")]
mod wait;

pub use error::{Error, Result, Unsupported};
pub use proto::{EventItem, Greeting, IdPolicy, RawEvent};
pub use releases::{Availability, Compat, QemuVersion};
#[cfg(feature = "qmp")]
pub use wait::FdSetInfo;

/// Settings shared by the clients.  Every wait has a time limit by
/// default; `None` waits as long as it takes.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Connecting (default 5 s; a Unix socket that does not exist yet is
    /// retried until then, as QEMU may still be starting).
    pub connect_timeout: Option<std::time::Duration>,
    /// The greeting and capability negotiation (default 5 s).
    pub greeting_timeout: Option<std::time::Duration>,
    /// Each command, from sending to its reply (default 30 s).  A reply
    /// that comes later is dropped.
    pub command_timeout: Option<std::time::Duration>,
    /// The largest message accepted, in bytes (default 128 MiB, above
    /// the largest replies QEMU and its guest agent really send; see
    /// ARCHITECTURE.md); a larger one ends the connection with
    /// [`Error::TooLarge`].  A connection's read buffer never holds more
    /// than this plus 64 KiB, whatever the peer sends.
    pub max_message: usize,
    /// Events each subscriber may have waiting (default 1024); when more
    /// come, the oldest are dropped and [`EventItem::Lagged`] says how
    /// many.
    pub event_buffer: usize,
    /// Enable out-of-band execution when the server offers it (default
    /// on).
    pub oob: bool,
    /// When requests carry an `id` (default: [`IdPolicy::WhenNeeded`],
    /// only when another command is unanswered; replies are matched
    /// exactly either way).
    pub ids: IdPolicy,
    /// Check every command against the server's `query-qmp-schema`
    /// before sending it (default off): a command, member, enum value or
    /// union branch the server does not know fails with
    /// [`Error::Unsupported`] naming each, without being sent.  The
    /// schema is fetched once per connection, on the first command (an
    /// ordinary, in-band command: fetch it with `schema()` beforehand if
    /// the first command is an out-of-band one that must not wait).
    /// Only what the schema describes is checked: a missing required
    /// member or a value QEMU rejects for other reasons is still QEMU's
    /// error.
    pub check_commands: bool,
    /// Where warnings go when a checked command uses a part of the
    /// server's schema marked `deprecated` or `unstable`: this hook, or
    /// (when `None`, the default) a line on standard error.  Each
    /// warning is given once per connection.
    pub on_warning: Option<probe::WarningHook>,
    /// Strict decoding for this connection's replies and events: `Some(true)`
    /// makes a member, enum value or branch the bindings do not know an
    /// error, `Some(false)` never does; `None` (the default) follows the
    /// process-wide [`set_strict`].
    pub strict: Option<bool>,
}

impl Default for Options {
    fn default() -> Options {
        use std::time::Duration;
        Options {
            connect_timeout: Some(Duration::from_secs(5)),
            greeting_timeout: Some(Duration::from_secs(5)),
            command_timeout: Some(Duration::from_secs(30)),
            max_message: 128 << 20,
            event_buffer: 1024,
            oob: true,
            ids: IdPolicy::WhenNeeded,
            check_commands: false,
            on_warning: None,
            strict: None,
        }
    }
}

impl Options {
    /// The defaults.
    pub fn new() -> Options {
        Options::default()
    }

    /// Set [`Options::connect_timeout`].
    pub fn connect_timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Set [`Options::greeting_timeout`].
    pub fn greeting_timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.greeting_timeout = t;
        self
    }

    /// Set [`Options::command_timeout`].
    pub fn command_timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.command_timeout = t;
        self
    }

    /// Set [`Options::max_message`].
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// Set [`Options::event_buffer`].
    pub fn event_buffer(mut self, n: usize) -> Self {
        self.event_buffer = n;
        self
    }

    /// Set [`Options::ids`].
    pub fn ids(mut self, policy: IdPolicy) -> Self {
        self.ids = policy;
        self
    }

    /// Set [`Options::check_commands`].
    pub fn check_commands(mut self, on: bool) -> Self {
        self.check_commands = on;
        self
    }

    /// Set [`Options::on_warning`]: `hook` is called with each warning
    /// (once per connection); `|_| {}` silences them.
    pub fn on_warning(mut self, hook: impl Fn(&probe::Warning) + Send + Sync + 'static) -> Self {
        self.on_warning = Some(probe::WarningHook(std::sync::Arc::new(hook)));
        self
    }

    /// Set [`Options::strict`] for this connection.
    pub fn strict(mut self, on: bool) -> Self {
        self.strict = Some(on);
        self
    }

    /// Set [`Options::oob`].
    pub fn oob(mut self, on: bool) -> Self {
        self.oob = on;
        self
    }
}

/// QEMU's machine protocol (QMP), generated from QEMU 10.2.0's
/// `qapi/qapi-schema.json` (vendored in `schema/qemu`) by
/// `cargo xtask regen`.
// Generated code is formatted by the generator (prettyplease); rustfmt
// would reformat it and `cargo xtask regen --check` would call it stale.
#[cfg(feature = "qmp")]
#[cfg_attr(docsrs, doc(cfg(feature = "qmp")))]
#[rustfmt::skip]
#[path = "generated/qmp.rs"]
pub mod qmp;

/// QEMU's guest agent (QGA), generated from QEMU 10.2.0's
/// `qga/qapi-schema.json` by `cargo xtask regen`.
#[cfg(feature = "qga")]
#[cfg_attr(docsrs, doc(cfg(feature = "qga")))]
#[rustfmt::skip]
#[path = "generated/qga.rs"]
pub mod qga;

/// A QAPI command: its arguments are the value itself.
pub trait Command: Serialize {
    /// The command's name on the wire, e.g. `query-status`.
    const NAME: &'static str;
    /// May be sent with `exec-oob` once out-of-band is negotiated.
    const ALLOW_OOB: bool;
    /// `false` for commands that send no reply on success
    /// (`guest-shutdown`, …).
    const SUCCESS_RESPONSE: bool;
    /// Which of the QEMU releases the bindings were made with have the
    /// command ([`releases`]).
    const AVAILABILITY: Availability = Availability::UNKNOWN;
    /// What a successful reply's `return` decodes into (`()` when the
    /// command returns nothing: QEMU then sends `{}`).
    type Returns;

    /// Decode a successful reply's `return` value, straight from any
    /// deserializer: the reply's bytes (what the clients do), or a
    /// `serde_json::Value`.
    fn decode_return<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self::Returns, D::Error>;
}

/// QAPI's `null` type: serializes as JSON `null`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Null;

impl Serialize for Null {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for Null {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| Null)
    }
}

static STRICT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

std::thread_local! {
    /// Strictness chosen for the decoding in progress on this thread
    /// (by [`with_strict`]); `None` means the process-wide default.
    static SCOPED_STRICT: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Strict decoding by default, for the whole process: while on, a member,
/// enum value or union branch that the bindings do not know is an error
/// instead of being ignored or kept in a catch-all. Off by default. A
/// client decodes with its own connection's choice
/// ([`Options::strict`]) when one is set; see also [`with_strict`].
pub fn set_strict(on: bool) {
    STRICT.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// Whether decoding on this thread is strict now: the innermost
/// [`with_strict`] if any, else the process-wide [`set_strict`].
pub fn strict() -> bool {
    SCOPED_STRICT
        .with(|s| s.get())
        .unwrap_or_else(|| STRICT.load(std::sync::atomic::Ordering::Relaxed))
}

/// Run `f` (which decodes) with strictness `on` on this thread, whatever
/// the process-wide default; `None` keeps the default. The clients use
/// this with their [`Options::strict`]; use it to decode one value
/// strictly yourself.
///
/// ```
/// use qapi_types::qmp::StatusInfo;
/// let json = r#"{"running": true, "status": "running", "new-member": 1}"#;
/// let lenient: Result<StatusInfo, _> = serde_json::from_str(json);
/// assert!(lenient.is_ok());
/// let strict = qapi_types::with_strict(Some(true), || serde_json::from_str::<StatusInfo>(json));
/// assert!(strict.is_err());
/// ```
pub fn with_strict<T>(on: Option<bool>, f: impl FnOnce() -> T) -> T {
    if on.is_none() {
        // Nothing to change (the clients' default).
        return f();
    }
    struct Restore(Option<bool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED_STRICT.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SCOPED_STRICT.with(|s| s.replace(on.or_else(|| s.get()))));
    f()
}

/// A known event whose data did not decode into its type (an unknown
/// event is not an error: it decodes to the catch-all `Other`). Keeps
/// the name, the data as sent and the decoding error.
#[derive(Debug)]
pub struct EventError {
    /// The event's name.
    pub name: String,
    /// Its `data` member as sent.
    pub data: Value,
    /// Why it did not decode.
    pub error: serde_json::Error,
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "event {}: data does not decode: {}",
            self.name, self.error
        )
    }
}

impl std::error::Error for EventError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<EventError> for Error {
    fn from(e: EventError) -> Error {
        Error::Decode {
            what: format!("event {}", e.name),
            error: e.error,
            raw: e.data,
        }
    }
}

/// What generated serde impls build on; not a stable API.
#[doc(hidden)]
#[path = "runtime.rs"]
pub mod __private;

/// The set of all events of one schema (the generated
/// `qmp::events::Event`), decoded by name.
pub trait EventSet: Sized {
    /// Decode an event from its name and `data`: an unknown name is the
    /// catch-all; a known event whose data does not decode is an error.
    fn decode(name: &str, data: Value) -> Result<Self, EventError>;
}

/// A QAPI event's data.
pub trait Event: serde::de::DeserializeOwned {
    /// The event's name on the wire, e.g. `STOP`.
    const NAME: &'static str;
    /// Which of the QEMU releases the bindings were made with have the
    /// event ([`releases`]).
    const AVAILABILITY: Availability = Availability::UNKNOWN;
}

/// A request: `{"execute" | "exec-oob": NAME, "arguments": {...}, "id": ID}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Request<'a, A: Serialize> {
    #[serde(rename = "execute", skip_serializing_if = "Option::is_none")]
    pub execute: Option<&'a str>,
    #[serde(rename = "exec-oob", skip_serializing_if = "Option::is_none")]
    pub exec_oob: Option<&'a str>,
    /// Left out when the command has no arguments (an empty object
    /// serializes to `{}`, which QEMU also accepts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<&'a A>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

impl<'a, C: Command> From<(&'a C, Option<u64>, bool)> for Request<'a, C> {
    /// A request for `command` with `id`, out-of-band when `oob`.
    fn from((command, id, oob): (&'a C, Option<u64>, bool)) -> Self {
        Request {
            execute: (!oob).then_some(C::NAME),
            exec_oob: oob.then_some(C::NAME),
            arguments: Some(command),
            id,
        }
    }
}

/// A QMP error reply's `error` member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QmpError {
    /// `GenericError`, `CommandNotFound`, `DeviceNotActive`,
    /// `DeviceNotFound`, `KVMMissingCap`, or a class a newer QEMU adds.
    pub class: String,
    pub desc: String,
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.class, self.desc)
    }
}

impl std::error::Error for QmpError {}

/// An event's `timestamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    pub seconds: i64,
    pub microseconds: i64,
}

/// One message from a QMP server.
#[derive(Clone, Debug)]
pub enum ServerMessage {
    /// `{"QMP": {...}}`, sent once on connect.
    Greeting(Value),
    Return {
        /// The `return` member, as sent: decode it with
        /// [`Command::decode_return`] (`&mut
        /// serde_json::Deserializer::from_str(value.get())`).
        value: Box<serde_json::value::RawValue>,
        id: Option<Value>,
    },
    Error {
        error: QmpError,
        id: Option<Value>,
    },
    Event {
        name: String,
        data: Value,
        timestamp: Timestamp,
    },
}

/// A `return` is compared as sent (its text).
impl PartialEq for ServerMessage {
    fn eq(&self, other: &Self) -> bool {
        use ServerMessage::*;
        match (self, other) {
            (Greeting(a), Greeting(b)) => a == b,
            (Return { value: a, id: i }, Return { value: b, id: j }) => {
                a.get() == b.get() && i == j
            }
            (Error { error: a, id: i }, Error { error: b, id: j }) => a == b && i == j,
            (
                Event {
                    name: a,
                    data: d,
                    timestamp: t,
                },
                Event {
                    name: b,
                    data: e,
                    timestamp: u,
                },
            ) => a == b && d == e && t == u,
            _ => false,
        }
    }
}

/// Why a server message could not be understood.
#[derive(Debug)]
pub enum MessageError {
    /// Not JSON.
    Json(serde_json::Error),
    /// JSON, but none of QMP's message shapes.
    Shape(Value),
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::Json(e) => write!(f, "not JSON: {e}"),
            MessageError::Shape(v) => write!(f, "not a QMP message: {v}"),
        }
    }
}

impl std::error::Error for MessageError {}

impl ServerMessage {
    /// Classify one JSON message.  The envelope's members are read one
    /// by one (unknown ones skipped); a reply's `return` is kept as its
    /// bytes, to be decoded once, straight into the command's type.
    /// A message that is not UTF-8 is not JSON, wherever the bytes are
    /// (also in a member that is skipped), as the clients' quick route
    /// reads it.
    pub fn parse(bytes: &[u8]) -> Result<ServerMessage, MessageError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| MessageError::Json(proto::not_utf8(bytes, e)))?;
        let env: Envelope = serde_json::from_str(text).map_err(|e| {
            serde_json::from_str(text).map_or(MessageError::Json(e), MessageError::Shape)
        })?;
        let Envelope {
            ret,
            error,
            qmp,
            event,
            data,
            timestamp,
            id,
        } = env;
        if let Some(value) = ret {
            return Ok(ServerMessage::Return { value, id });
        }
        if let Some(Ok(error)) = error.as_ref().map(QmpError::deserialize) {
            return Ok(ServerMessage::Error { error, id });
        }
        if let Some(g) = qmp {
            return Ok(ServerMessage::Greeting(g));
        }
        if let (Some(Value::String(name)), Some(Ok(timestamp))) =
            (event, timestamp.as_ref().map(Timestamp::deserialize))
        {
            return Ok(ServerMessage::Event {
                name,
                data: data.unwrap_or(Value::Object(Default::default())),
                timestamp,
            });
        }
        // Not one of QMP's shapes: the whole message, for the error.
        Err(serde_json::from_str(text).map_or_else(MessageError::Json, MessageError::Shape))
    }
}

/// Decode one reply message to command `C` the way the clients do: the
/// same quick look at its first and last members routes it (QEMU's
/// `{"return": …, "id": N}`; anything else, such as an `error` reply,
/// is read in full first), then read once where it lies, `return`
/// straight into `C::Returns` with the process-wide strictness and `id`
/// checked against the routing: no copy, as the clients do with a large
/// reply (they hand their read buffer over to its caller; a reply under
/// 64 KiB they copy).  Any `id` is accepted.  An `error` reply is
/// [`Error::Qmp`].  For a transport of your own, and for `cargo xtask
/// bench-decode`, which measures exactly this.
pub fn decode_reply<C: Command>(bytes: &[u8]) -> Result<C::Returns, Error> {
    proto::decode_any_reply::<C>(bytes)
}

/// The members of a server message that say what it is.
struct Envelope {
    ret: Option<Box<serde_json::value::RawValue>>,
    error: Option<Value>,
    qmp: Option<Value>,
    event: Option<Value>,
    data: Option<Value>,
    timestamp: Option<Value>,
    id: Option<Value>,
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

/// An envelope member's name.
enum Field {
    Return,
    Error,
    Qmp,
    Event,
    Data,
    Timestamp,
    Id,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(FieldVisitor)
    }
}

struct FieldVisitor;

impl serde::de::Visitor<'_> for FieldVisitor {
    type Value = Field;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(match v {
            "return" => Field::Return,
            "error" => Field::Error,
            "QMP" => Field::Qmp,
            "event" => Field::Event,
            "data" => Field::Data,
            "timestamp" => Field::Timestamp,
            "id" => Field::Id,
            _ => Field::Other,
        })
    }
}

impl<'de> serde::de::Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut env = Envelope {
            ret: None,
            error: None,
            qmp: None,
            event: None,
            data: None,
            timestamp: None,
            id: None,
        };
        while let Some(key) = map.next_key()? {
            match key {
                Field::Return => env.ret = Some(map.next_value()?),
                Field::Error => env.error = Some(map.next_value()?),
                Field::Qmp => env.qmp = Some(map.next_value()?),
                Field::Event => env.event = Some(map.next_value()?),
                Field::Data => env.data = Some(map.next_value()?),
                Field::Timestamp => env.timestamp = Some(map.next_value()?),
                Field::Id => env.id = Some(map.next_value()?),
                Field::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct QueryStatus {}

    #[derive(Deserialize, Debug, PartialEq)]
    struct StatusInfo {
        running: bool,
        status: String,
    }

    impl Command for QueryStatus {
        const NAME: &'static str = "query-status";
        const ALLOW_OOB: bool = false;
        const SUCCESS_RESPONSE: bool = true;
        type Returns = StatusInfo;
        fn decode_return<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StatusInfo, D::Error> {
            StatusInfo::deserialize(d)
        }
    }

    #[test]
    fn requests_serialize_as_qmp_expects() {
        let r = Request::from((&QueryStatus {}, Some(7), false));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"execute":"query-status","arguments":{},"id":7}"#
        );
        let r = Request::from((&QueryStatus {}, None, true));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"exec-oob":"query-status","arguments":{}}"#
        );
    }

    /// `decode_reply`: QEMU's replies by the route, any other reply by
    /// the full parse, errors as the clients report them.
    #[test]
    fn decode_reply_reads_any_reply() {
        let want = StatusInfo {
            running: true,
            status: "running".into(),
        };
        let ret = r#"{"running": true, "status": "running"}"#;
        for msg in [
            format!(r#"{{"return": {ret}, "id": 3}}"#),
            format!("{{\"return\": {ret}, \"id\": 3}}\r\n"),
            format!(r#"{{"return": {ret}}}"#),
            format!(r#"{{"return": {ret}, "x": 1, "id": "a"}}"#),
            format!(r#"{{"id": 3, "return": {ret}}}"#),
        ] {
            assert_eq!(
                decode_reply::<QueryStatus>(msg.as_bytes()).unwrap(),
                want,
                "{msg}"
            );
        }
        let r = decode_reply::<QueryStatus>(
            br#"{"error": {"class": "GenericError", "desc": "no"}, "id": 3}"#,
        );
        assert!(
            matches!(r, Err(Error::Qmp(ref e)) if e.desc == "no"),
            "{r:?}"
        );
        let r = decode_reply::<QueryStatus>(br#"{"return": {"running": 1}, "id": 3}"#);
        assert!(
            matches!(r, Err(Error::Decode { ref raw, .. }) if raw["running"] == 1),
            "{r:?}"
        );
        // The id's tail is inside `return`, whose object is not closed.
        let r = decode_reply::<QueryStatus>(
            br#"{"return": {"running": true, "status": "running", "id": 3}"#,
        );
        assert!(
            matches!(r, Err(Error::Protocol(ref m)) if m.contains("not JSON")),
            "{r:?}"
        );
        // Text that is not UTF-8, in `return` and in the envelope: not
        // JSON, and the error says where.
        for (msg, column) in [
            (
                &b"{\"return\": {\"running\": true, \"status\": \"ru\xffn\"}, \"id\": 3}"[..],
                43,
            ),
            (
                b"{\"return\": {\"running\": true, \"status\": \"run\"}, \"i\xc3\": 3}",
                50,
            ),
        ] {
            let r = decode_reply::<QueryStatus>(msg);
            assert!(
                matches!(r, Err(Error::Protocol(ref m))
                    if m.contains("not JSON") && m.contains(&format!("column {column}"))),
                "{r:?}"
            );
        }
        // With the generated types, and wherever the bytes are: in
        // `return`, in a member `return`'s type skips, in one the
        // envelope skips, on the quick route or not.
        #[cfg(feature = "qmp")]
        for msg in [
            &b"{\"return\": {\"running\": true, \"status\": \"ru\xffn\"}, \"id\": 3}"[..],
            b"{\"return\": {\"running\": true, \"status\": \"running\", \"zz\": \"\xff\"}, \"id\": 3}",
            b"{\"return\": {\"running\": true, \"status\": \"running\"}, \"x\": \"\xff\", \"id\": 3}",
            b"{\"id\": 3, \"return\": {\"running\": true, \"status\": \"running\"}, \"x\": \"\xff\"}",
        ] {
            let r = with_strict(Some(false), || {
                decode_reply::<crate::qmp::commands::QueryStatus>(msg)
            });
            assert!(
                matches!(r, Err(Error::Protocol(ref m))
                    if m.contains("not JSON") && m.contains("invalid unicode code point")),
                "{}: {r:?}",
                String::from_utf8_lossy(msg)
            );
        }
        // Text in other scripts decodes as it is.
        #[cfg(feature = "qmp")]
        {
            let msg = "{\"return\": {\"name\": \"é€😀\"}, \"id\": 3}";
            let r = decode_reply::<crate::qmp::commands::QueryName>(msg.as_bytes()).unwrap();
            assert_eq!(r.name.as_deref(), Some("é€😀"));
        }
    }

    #[test]
    fn server_messages_are_classified() {
        let m = ServerMessage::parse(
            br#"{"return": {"running": true, "status": "running", "new": 1}, "id": 3}"#,
        )
        .unwrap();
        let ServerMessage::Return { value, id } = m else {
            panic!()
        };
        assert_eq!(id, Some(Value::from(3)));
        let s: StatusInfo = serde_json::from_str(value.get()).unwrap();
        assert_eq!(
            s,
            StatusInfo {
                running: true,
                status: "running".into()
            }
        );

        let m =
            ServerMessage::parse(br#"{"error": {"class": "GenericError", "desc": "no"}}"#).unwrap();
        assert!(
            matches!(m, ServerMessage::Error { ref error, .. } if error.class == "GenericError")
        );

        let m = ServerMessage::parse(
            br#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}"#,
        )
        .unwrap();
        assert!(matches!(m, ServerMessage::Event { ref name, .. } if name == "STOP"));

        assert!(matches!(
            ServerMessage::parse(b"{\"what\": 1}"),
            Err(MessageError::Shape(_))
        ));
        assert!(matches!(
            ServerMessage::parse(b"{garbage"),
            Err(MessageError::Json(_))
        ));
    }
}
