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
//! # The crates behind this one
//!
//! `qapi-types` is a facade: the same items come from three crates, each
//! with one job, which a program may also use on their own.
//!
//! | crate | what it holds | re-exported here as |
//! |---|---|---|
//! | `qapi-runtime` | the traits generated code implements ([`Command`], [`Event`]), strictness, [`releases`], [`introspect`], the serde support; serde and serde_json only, no I/O | the crate root, [`releases`], [`introspect`] |
//! | `qapi-qemu` | the bindings generated from QEMU's schemas | [`qmp`], [`qga`] |
//! | `qapi-client` | the protocol core and the clients, probing, waiting, tracing, [`Error`] | [`blocking`], `tokio`, [`proto`], [`probe`], [`Options`], [`Error`] |
//!
//! Generated code implements [`Command`] for one type per QAPI command
//! and [`Event`] for one type per event; the clients only know these
//! traits, so bindings generated from any schema by `qapi-codegen` work
//! with them (a `build.rs` that generates its own needs `qapi-runtime`
//! alone, the code generator's default runtime path).  The wire forms
//! follow QEMU's `docs/interop/qmp-spec.rst`.
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

pub use qapi_runtime::{
    introspect, releases, set_strict, strict, with_strict, Availability, Command, Compat, Event,
    EventError, EventSet, Null, QemuVersion, Timestamp,
};

/// What generated serde impls build on; not a stable API.
#[doc(hidden)]
pub use qapi_runtime::__private;

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use qapi_client::tokio;
#[cfg(feature = "qmp")]
pub use qapi_client::FdSetInfo;
pub use qapi_client::{
    blocking, decode_reply, probe, proto, Error, EventItem, Greeting, IdPolicy, MessageError,
    Options, QmpError, RawEvent, Request, Result, ServerMessage, Unsupported,
};

#[cfg(feature = "qmp")]
#[cfg_attr(docsrs, doc(cfg(feature = "qmp")))]
#[doc(inline)]
pub use qapi_qemu::qmp;

#[cfg(feature = "qga")]
#[cfg_attr(docsrs, doc(cfg(feature = "qga")))]
#[doc(inline)]
pub use qapi_qemu::qga;

#[cfg(feature = "schema-source")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema-source")))]
pub mod schema_source;
