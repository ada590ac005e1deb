//! `-v`: what the clients report through `tracing` (qapi-types' feature
//! `tracing`), one line per event, with the command span it belongs to:
//!
//! ```text
//! DEBUG qmp.command{name=query-version id=1}: done elapsed_us=412 outcome=ok
//! TRACE qmp.command{name=query-version id=1}: sent json={"execute":"query-version","id":1}
//! ```
//!
//! A subscriber of our own rather than `tracing-subscriber`'s: the tools
//! need one format at one level for one crate's spans, which is this
//! page of code; `tracing-subscriber` would bring its registry, filters
//! and formatters (and their dependencies) into every tool.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Prints the events of `qapi_types` at `max` and more severe to a
/// writer.
pub struct Printer<W> {
    max: Level,
    out: Mutex<W>,
    spans: Mutex<HashMap<u64, Span>>,
    next: AtomicU64,
}

struct Span {
    meta: &'static Metadata<'static>,
    fields: String,
    refs: usize,
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static STACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

impl<W: Write> Printer<W> {
    pub fn new(max: Level, out: W) -> Printer<W> {
        Printer {
            max,
            out: Mutex::new(out),
            spans: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        }
    }
}

/// The level for `-v` given `count` times: none, DEBUG, then TRACE.
pub fn level(count: usize) -> Option<Level> {
    match count {
        0 => None,
        1 => Some(Level::DEBUG),
        _ => Some(Level::TRACE),
    }
}

/// Print to standard error from now on, for the whole program.
pub fn install(max: Level) {
    // Only fails when a subscriber is already installed: then that one
    // shows what it wants.
    let _ = tracing::subscriber::set_global_default(Printer::new(max, std::io::stderr()));
}

/// Fields as `key=value`, the message first and bare.
#[derive(Default)]
struct Fields(String);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format_args!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: std::fmt::Arguments<'_>) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = self.0.write_fmt(value);
        } else {
            let _ = write!(self.0, "{}={value}", field.name());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<W: Write + Send + 'static> Subscriber for Printer<W> {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max && meta.target().starts_with("qapi_types")
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.spans).insert(
            id,
            Span {
                meta: attrs.metadata(),
                fields: fields.0,
                refs: 1,
            },
        );
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(s) = lock(&self.spans).get_mut(&span.into_u64()) {
            let mut fields = Fields(std::mem::take(&mut s.fields));
            values.record(&mut fields);
            s.fields = fields.0;
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let span = match event.parent() {
            Some(id) => Some(id.into_u64()),
            None if event.is_contextual() => STACK.with(|s| s.borrow().last().copied()),
            None => None,
        };
        let context = span
            .and_then(|id| {
                lock(&self.spans)
                    .get(&id)
                    .map(|s| format!("{}{{{}}}: ", s.meta.name(), s.fields))
            })
            .unwrap_or_default();
        let line = format!("{:>5} {context}{}\n", event.metadata().level(), fields.0);
        let _ = lock(&self.out).write_all(line.as_bytes());
    }

    fn current_span(&self) -> tracing_core::span::Current {
        let top = STACK.with(|s| s.borrow().last().copied());
        match top.and_then(|id| lock(&self.spans).get(&id).map(|s| (id, s.meta))) {
            Some((id, meta)) => tracing_core::span::Current::new(Id::from_u64(id), meta),
            None => tracing_core::span::Current::none(),
        }
    }

    fn enter(&self, span: &Id) {
        STACK.with(|s| s.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(i) = s.iter().rposition(|&x| x == span.into_u64()) {
                s.remove(i);
            }
        });
    }

    fn clone_span(&self, id: &Id) -> Id {
        if let Some(s) = lock(&self.spans).get_mut(&id.into_u64()) {
            s.refs += 1;
        }
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        let mut spans = lock(&self.spans);
        let Some(s) = spans.get_mut(&id.into_u64()) else {
            return false;
        };
        s.refs -= 1;
        if s.refs == 0 {
            spans.remove(&id.into_u64());
            true
        } else {
            false
        }
    }
}
