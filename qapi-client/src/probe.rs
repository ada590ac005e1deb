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

use crate::{Command, Error, Result};

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
    warned: Warned,
}

impl Cache {
    fn get_or_fetch(&self, fetch: impl FnOnce() -> Result<Value>) -> Result<Arc<Schema>> {
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
    schema: ::tokio::sync::OnceCell<Arc<Schema>>,
    warned: Warned,
}

/// Asking the server what it has (see [`crate::probe`]).
impl crate::blocking::Qmp {
    /// The server's `query-qmp-schema`, fetched on first use and kept for
    /// the connection (concurrent first uses fetch it once).  A reply
    /// that does not read as a schema is [`Error::Decode`] and is fetched
    /// again next time.
    pub fn schema(&self) -> Result<Arc<Schema>> {
        let (cache, _) = self.probing();
        cache.get_or_fetch(|| self.execute_raw("query-qmp-schema", None))
    }

    /// Whether the server has the command `C`.
    pub fn supports<C: Command>(&self) -> Result<bool> {
        Ok(self.schema()?.supports::<C>())
    }

    /// Whether the server has the event `E`.
    pub fn supports_event<E: crate::Event>(&self) -> Result<bool> {
        Ok(self.schema()?.supports_event::<E>())
    }

    /// Check `command` against the server's schema without sending it:
    /// [`Error::Unsupported`] names every part the server does not
    /// know; the `deprecated` and `unstable` parts it uses go to
    /// [`Options::on_warning`](crate::Options::on_warning).
    pub fn check<C: Command>(&self, command: &C) -> Result<()> {
        self.check_before_send(C::NAME, Some(command))
    }

    /// [`check`](Self::check) for a command by name with JSON arguments
    /// (as `execute_raw` sends them).
    pub fn check_raw(&self, name: &str, arguments: Option<&Value>) -> Result<()> {
        self.check_before_send(name, arguments)
    }

    pub(crate) fn check_before_send<A: serde::Serialize + ?Sized>(
        &self,
        name: &str,
        args: Option<&A>,
    ) -> Result<()> {
        let schema = self.schema()?;
        let (cache, options) = self.probing();
        check_request(
            &schema,
            &cache.warned,
            options.on_warning.as_ref(),
            name,
            args,
        )
    }
}

/// Asking the server what it has (see [`crate::probe`]).
#[cfg(feature = "tokio")]
impl crate::tokio::Qmp {
    /// The server's `query-qmp-schema`, fetched on first use and kept for
    /// the connection (concurrent first uses fetch it once).  A reply
    /// that does not read as a schema is [`Error::Decode`] and is fetched
    /// again next time.
    pub async fn schema(&self) -> Result<Arc<Schema>> {
        let (cache, _) = self.probing();
        cache
            .schema
            .get_or_try_init(|| async {
                // Boxed: a checked call fetches the schema through here.
                let v = Box::pin(self.execute_raw("query-qmp-schema", None)).await?;
                read_reply(v)
            })
            .await
            .cloned()
    }

    /// Whether the server has the command `C`.
    pub async fn supports<C: Command>(&self) -> Result<bool> {
        Ok(self.schema().await?.supports::<C>())
    }

    /// Whether the server has the event `E`.
    pub async fn supports_event<E: crate::Event>(&self) -> Result<bool> {
        Ok(self.schema().await?.supports_event::<E>())
    }

    /// Check `command` against the server's schema without sending it
    /// (see [`blocking::Qmp::check`](crate::blocking::Qmp::check)).
    pub async fn check<C: Command>(&self, command: &C) -> Result<()> {
        self.check_before_send(C::NAME, Some(command)).await
    }

    /// [`check`](Self::check) by name with JSON arguments.
    pub async fn check_raw(&self, name: &str, arguments: Option<&Value>) -> Result<()> {
        self.check_before_send(name, arguments).await
    }

    pub(crate) async fn check_before_send<A: serde::Serialize + ?Sized>(
        &self,
        name: &str,
        args: Option<&A>,
    ) -> Result<()> {
        let schema = self.schema().await?;
        let (cache, options) = self.probing();
        check_request(
            &schema,
            &cache.warned,
            options.on_warning.as_ref(),
            name,
            args,
        )
    }
}
