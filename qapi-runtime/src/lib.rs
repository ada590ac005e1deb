//! The runtime that code generated from a QAPI schema by
//! `qapi-codegen` builds on: the [`Command`] and [`Event`] traits a
//! generated type implements, QAPI's [`Null`], the strictness of
//! decoding ([`set_strict`], [`with_strict`]), which QEMU releases have
//! an item ([`releases`]), the model of QEMU's `query-qmp-schema`
//! answer (`introspect`, feature `introspect`), and the serde support generated impls call
//! (`__private`, not a stable API).
//!
//! It does no I/O and depends on serde and serde_json only, so a crate
//! that generates bindings from its own schema in `build.rs` and brings
//! its own transport pays for nothing else.  The clients are in
//! `qapi-client`; QEMU's own bindings in `qapi-qemu`; `qapi-types`
//! gathers all three under one name.
//!
//! ```
//! # #[derive(serde::Serialize)]
//! # struct QueryStatus {}
//! # #[derive(serde::Deserialize)]
//! # struct StatusInfo { running: bool }
//! impl qapi_runtime::Command for QueryStatus {
//!     const NAME: &'static str = "query-status";
//!     const ALLOW_OOB: bool = false;
//!     const SUCCESS_RESPONSE: bool = true;
//!     type Returns = StatusInfo;
//!     fn decode_return<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StatusInfo, D::Error> {
//!         serde::Deserialize::deserialize(d)
//!     }
//! }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod content;
#[cfg(feature = "introspect")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspect")))]
pub mod introspect;
pub mod releases;

pub use releases::{Availability, Compat, QemuVersion};

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
/// (`qapi_client::Options::strict`) when one is set; see also
/// [`with_strict`].
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
/// this with their `Options::strict`; use it to decode one value
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

/// What generated serde impls build on; not a stable API.
#[doc(hidden)]
#[path = "private.rs"]
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

/// An event's `timestamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    pub seconds: i64,
    pub microseconds: i64,
}
