//! Asking the running QEMU what it has: its `query-qmp-schema`, read
//! into a [`Schema`] you can query by command and event names, by paths
//! in libvirt's path language, and check command values against.
//!
//! [`Schema`] is the one model of that answer,
//! [`qapi_runtime::introspect::Schema`] (also `qapi_types::introspect::Schema`):
//! its lookups, [paths](qapi_runtime::introspect#paths)
//! ([`Schema::query`], [`Schema::features`]) and checks
//! ([`Schema::check`]) are documented there.  The clients fetch the
//! schema once per connection, when first needed
//! (`blocking::Qmp::schema`, `tokio::Qmp::schema`); everything also
//! works on a schema you read yourself ([`Schema::from_value`]).
//!
//! ```
//! use qapi_types::probe::Schema;
//! let schema = Schema::from_value(&serde_json::json!([
//!     {"name": "blockdev-add", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
//!     {"name": "0", "meta-type": "object", "tag": "driver",
//!      "members": [{"name": "driver", "type": "2"}],
//!      "variants": [{"case": "file", "type": "1"}]},
//!     {"name": "1", "meta-type": "object", "members": []},
//!     {"name": "2", "meta-type": "enum", "values": ["file", "nbd"]}
//! ])).unwrap();
//! assert!(schema.supports::<qapi_types::qmp::commands::BlockdevAdd>());
//! assert!(schema.query("blockdev-add/arg-type/driver/^nbd").unwrap());
//! assert!(!schema.query("blockdev-add/arg-type/+nbd").unwrap());
//! ```
//!
//! # Checking a command before sending it
//!
//! [`Schema::check`] walks a command's arguments (as JSON) along the
//! server's schema and names, as paths, every member, enum value, union
//! branch and JSON type in it that the server does not know
//! ([`Unknown`]), and every `deprecated` or `unstable` part it uses
//! ([`Warning`]).  The clients turn the first list into
//! [`Error::Unsupported`] and hand the second
//! to [`Options::on_warning`](crate::Options::on_warning).  Each unknown
//! path is one that [`Schema::query`] answers `false` to.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::{Error, Result};

pub use qapi_runtime::introspect::{PathError, Report, Schema, Unknown, UnknownKind, Warning};

/// The error for a command value with parts the server does not know.
pub(crate) fn unsupported(command: &str, unknown: Vec<Unknown>) -> Error {
    Error::Unsupported(crate::Unsupported::unknown(
        format!(
            "the server does not know {} in this {command}",
            unknown
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        unknown,
    ))
}

/// A hook called with each [`Warning`] (see [`Options::on_warning`](crate::Options::on_warning)).
#[derive(Clone)]
pub struct WarningHook(pub Arc<dyn Fn(&Warning) + Send + Sync>);

impl fmt::Debug for WarningHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WarningHook")
    }
}

/// Per connection: the warnings already given (each is given once).
#[derive(Default)]
pub(crate) struct Warned {
    seen: Mutex<HashSet<Warning>>,
}

impl Warned {
    /// Give each warning not given before on this connection: to the
    /// hook, or else as a line on standard error.
    pub(crate) fn give(&self, hook: Option<&WarningHook>, warnings: Vec<Warning>) {
        for w in warnings {
            let new = self
                .seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(w.clone());
            if new {
                match hook {
                    Some(h) => (h.0)(&w),
                    None => eprintln!("qapi-types: warning: {w}"),
                }
            }
        }
    }
}

/// Read a `query-qmp-schema` reply, or say why it cannot be read.
pub(crate) fn read_reply(value: Value) -> Result<Arc<Schema>> {
    Schema::from_value(&value)
        .map(Arc::new)
        .map_err(|m| Error::Decode {
            what: "the reply to query-qmp-schema".into(),
            error: serde::de::Error::custom(m),
            raw: value,
        })
}

/// Check a request before sending it, as [`Options::check_commands`](crate::Options::check_commands) asks.
pub(crate) fn check_request<A: serde::Serialize + ?Sized>(
    schema: &Schema,
    warned: &Warned,
    hook: Option<&WarningHook>,
    name: &str,
    args: Option<&A>,
) -> Result<()> {
    let args = args
        .map(serde_json::to_value)
        .transpose()
        .map_err(Error::Encode)?;
    let r = schema.check(name, args.as_ref());
    warned.give(hook, r.warnings);
    if r.unknown.is_empty() {
        Ok(())
    } else {
        Err(unsupported(name, r.unknown))
    }
}

/// Commands the clients never check: the negotiation, and the fetch of
/// the schema itself.
pub(crate) fn exempt(name: &str) -> bool {
    matches!(name, "qmp_capabilities" | "query-qmp-schema")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A blocking connection's schema: fetched once, on first use; callers
/// that need it while it is being fetched wait for that fetch.
#[derive(Default)]
pub(crate) struct Cache {
    schema: Mutex<Option<Arc<Schema>>>,
    fetching: Mutex<()>,
    pub(crate) warned: Warned,
}

impl Cache {
    pub(crate) fn get_or_fetch(
        &self,
        fetch: impl FnOnce() -> Result<Value>,
    ) -> Result<Arc<Schema>> {
        if let Some(s) = lock(&self.schema).clone() {
            return Ok(s);
        }
        let _one = lock(&self.fetching);
        if let Some(s) = lock(&self.schema).clone() {
            return Ok(s);
        }
        let s = read_reply(fetch()?)?;
        *lock(&self.schema) = Some(s.clone());
        Ok(s)
    }
}

/// [`Cache`] for the tokio client.
#[cfg(feature = "tokio")]
#[derive(Default)]
pub(crate) struct AsyncCache {
    pub(crate) schema: ::tokio::sync::OnceCell<Arc<Schema>>,
    pub(crate) warned: Warned,
}
