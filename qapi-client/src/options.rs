//! [`Options`]: the settings shared by the clients.

use crate::proto::IdPolicy;

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
    /// [`Error::TooLarge`](crate::Error::TooLarge).  A connection's read buffer never holds more
    /// than this plus 64 KiB, whatever the peer sends.
    pub max_message: usize,
    /// Events each subscriber may have waiting (default 1024); when more
    /// come, the oldest are dropped and [`EventItem::Lagged`](crate::EventItem::Lagged) says how
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
    /// [`Error::Unsupported`](crate::Error::Unsupported) naming each, without being sent.  The
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
    pub on_warning: Option<crate::probe::WarningHook>,
    /// Strict decoding for this connection's replies and events: `Some(true)`
    /// makes a member, enum value or branch the bindings do not know an
    /// error, `Some(false)` never does; `None` (the default) follows the
    /// process-wide [`set_strict`](qapi_runtime::set_strict).
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
    pub fn on_warning(
        mut self,
        hook: impl Fn(&crate::probe::Warning) + Send + Sync + 'static,
    ) -> Self {
        self.on_warning = Some(crate::probe::WarningHook(std::sync::Arc::new(hook)));
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
