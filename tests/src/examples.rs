//! QEMU's own schema examples as tests.
//!
//! The documentation of QEMU's schema shows the protocol at work: lines
//! starting `->` are what a client sends, `<-` what the server answers
//! (replies and events), inside `.. qmp-example::` blocks (QEMU 9.1 and
//! later) or `Example:` sections (older releases).  [`extract`] takes
//! them out of the parsed schema's documentation, one [`Example`] per
//! block, each message with its JSON or the reason it was skipped
//! (QEMU abbreviates long replies with `...`, and a few are not JSON).
//!
//! [`check`] then judges every message twice, independently:
//! - against the schema itself ([`conforms`]: a walk of the JSON along
//!   the IR's types, as QEMU's input visitor would check arguments), which
//!   tells an example that QEMU's documentation got wrong (with the
//!   member at fault and what the schema says);
//! - with the Rust bindings, through [`Bindings`] (supplied by the test
//!   that links them): requests decode strictly into their typed command
//!   and encode back to the same JSON, replies into the command's return
//!   type, events into their event type.
//!
//! What the schema accepts and the bindings reject (or the other way
//! round) is a bug of ours.  For an older release's examples read with
//! newer bindings (`Mode::Older`), what the release's own schema accepts
//! but the newest schema does not is reported apart: those are the
//! differences between releases that the bindings must be taught.

use std::fmt::Write as _;

use qapi_parser::{Builtin, EntityId, EntityKind, Schema, SectionKind};
use serde_json::Value;

/// Which way a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// `->`: client to server.
    Request,
    /// `<-`: server to client.
    Server,
}

/// One message of an example.
#[derive(Clone, Debug)]
pub struct Message {
    pub dir: Dir,
    /// Where it starts (`file:line`).
    pub place: String,
    /// The JSON, or why it was skipped.
    pub json: Result<Value, String>,
}

/// One example block.
#[derive(Clone, Debug)]
pub struct Example {
    /// The definition documented, or `(free-form)`.
    pub symbol: String,
    pub messages: Vec<Message>,
}

/// Every example in the schema's documentation, in reading order.
pub fn extract(schema: &Schema) -> Vec<Example> {
    let mut out = Vec::new();
    for doc in &schema.docs {
        let symbol = doc.symbol.clone().unwrap_or_else(|| "(free-form)".into());
        let file = schema.sources.file(doc.span.file);
        for section in &doc.sections {
            let blocks = if section.kind == SectionKind::Example {
                vec![section.text.as_str().lines().collect::<Vec<_>>()]
            } else {
                qmp_example_blocks(&section.text)
            };
            let mut from = section.span.start as usize;
            for lines in blocks {
                let messages = messages(&lines, &file.text, &file.name, &mut from);
                if !messages.is_empty() {
                    out.push(Example {
                        symbol: symbol.clone(),
                        messages,
                    });
                }
            }
        }
    }
    out
}

/// The contents of each `.. qmp-example::` directive in a section's text:
/// the lines after it that are blank or indented more than it.
fn qmp_example_blocks(text: &str) -> Vec<Vec<&str>> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some((depth, lines)) = &mut current {
            if line.trim().is_empty() || indent > *depth {
                lines.push(line);
                continue;
            }
            blocks.push(std::mem::take(lines));
            current = None;
        }
        if line.trim() == ".. qmp-example::" {
            current = Some((indent, Vec::new()));
        }
    }
    if let Some((_, lines)) = current {
        blocks.push(lines);
    }
    blocks
}

/// The messages in a block's lines: each starts at a line beginning
/// `->` or `<-` and runs until a blank line, the next message or the end
/// of the block (a line after the brackets closed makes it invalid JSON,
/// as QEMU's documentation sometimes has it: `-> { "execute": "x" }`
/// followed by its arguments).
/// `source` is the file's text, searched from `from` to find each
/// message's line.
fn messages(lines: &[&str], source: &str, file: &str, from: &mut usize) -> Vec<Message> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        let dir = if t.starts_with("->") {
            Dir::Request
        } else if t.starts_with("<-") {
            Dir::Server
        } else {
            i += 1;
            continue;
        };
        let line_no = match source[*from..].find(t) {
            Some(at) => {
                *from += at + t.len();
                qapi_parser::source::line_col(source, *from).line
            }
            None => 0,
        };
        let mut text = t[2..].to_string();
        let mut scan = Scan::default();
        scan.feed(&text);
        i += 1;
        while i < lines.len() {
            let next = lines[i].trim_start();
            if next.is_empty() || next.starts_with("->") || next.starts_with("<-") {
                break;
            }
            text.push('\n');
            text.push_str(lines[i]);
            scan.feed(lines[i]);
            i += 1;
        }
        out.push(Message {
            dir,
            place: format!("{file}:{line_no}"),
            json: parse(&text, &scan),
        });
    }
    out
}

/// Bracket depth outside strings, and whether `...` or `…` occurs there.
#[derive(Default)]
struct Scan {
    depth: i64,
    opened: bool,
    in_string: bool,
    escaped: bool,
    ellipsis: bool,
    dots: usize,
}

impl Scan {
    fn feed(&mut self, s: &str) {
        for c in s.chars() {
            if self.in_string {
                match (self.escaped, c) {
                    (true, _) => self.escaped = false,
                    (false, '\\') => self.escaped = true,
                    (false, '"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            self.dots = if c == '.' { self.dots + 1 } else { 0 };
            if self.dots == 3 || c == '…' {
                self.ellipsis = true;
            }
            match c {
                '"' => self.in_string = true,
                '{' | '[' => {
                    self.depth += 1;
                    self.opened = true;
                }
                '}' | ']' => self.depth -= 1,
                _ => {}
            }
        }
        // A line's end also ends a run of dots.
        self.dots = 0;
    }

    fn closed(&self) -> bool {
        self.opened && self.depth <= 0
    }
}

fn parse(text: &str, scan: &Scan) -> Result<Value, String> {
    if scan.ellipsis {
        return Err("abbreviated (`...`)".into());
    }
    if !scan.closed() {
        return Err("not JSON: its brackets never close".into());
    }
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

// ----------------------------------------------------------------------
// The schema's judgement

/// Why a value does not fit a type: where (`.member`, `[i]`) and what
/// the schema says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub path: String,
    pub what: String,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.what)
        } else {
            write!(f, "{}: {}", self.path, self.what)
        }
    }
}

fn fault(path: &str, what: String) -> Fault {
    Fault {
        path: path.to_string(),
        what,
    }
}

/// Whether `value` is a value of the schema's type `ty`, as QEMU's QMP
/// input visitor checks it: every required member present, no unknown
/// member, enum values and union branches the type has, integers in
/// their range, `null` only where the type takes it.  Conditional parts
/// count as present (no build is assumed).
pub fn conforms(schema: &Schema, ty: EntityId, value: &Value, path: &str) -> Result<(), Fault> {
    let e = schema.entity(ty);
    let kind = json_kind(value);
    match &e.kind {
        EntityKind::Builtin(b) => builtin(*b, value, path),
        EntityKind::Enum(en) => match value {
            Value::String(s) if en.values.iter().any(|v| &v.name == s) => Ok(()),
            Value::String(s) => Err(fault(
                path,
                format!("'{s}' is not a value of enum {}", e.name),
            )),
            _ => Err(fault(
                path,
                format!("{kind}, but enum {} is a string", e.name),
            )),
        },
        EntityKind::Array(a) => match value {
            Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
                conforms(schema, a.element, item, &format!("{path}[{i}]"))
            }),
            _ => Err(fault(path, format!("{kind}, but {} is an array", e.name))),
        },
        EntityKind::Alternate(alt) => {
            let branch = alt
                .variants
                .iter()
                .find(|v| takes(schema, v.ty, value))
                .ok_or_else(|| {
                    fault(
                        path,
                        format!("alternate {} has no branch for {kind}", e.name),
                    )
                })?;
            conforms(schema, branch.ty, value, path)
        }
        EntityKind::Object(_) => {
            let Value::Object(map) = value else {
                return Err(fault(
                    path,
                    format!("{kind}, but {} is an object", type_name(schema, ty)),
                ));
            };
            let members = object_members(schema, ty, map);
            for m in &members {
                if !m.optional && !map.contains_key(&m.name) {
                    return Err(fault(
                        path,
                        format!(
                            "missing member '{}' (required in {})",
                            m.name,
                            type_name(schema, m.defined_in)
                        ),
                    ));
                }
            }
            for (key, v) in map {
                match members.iter().find(|m| &m.name == key) {
                    Some(m) => conforms(schema, m.ty, v, &format!("{path}.{key}"))?,
                    None => {
                        return Err(fault(
                            &format!("{path}.{key}"),
                            format!("{} has no member '{key}'", type_name(schema, ty)),
                        ))
                    }
                }
            }
            Ok(())
        }
        EntityKind::Command(_) | EntityKind::Event(_) => {
            Err(fault(path, format!("{} is not a type", e.name)))
        }
    }
}

/// An object type's members for this value: its own (base included),
/// and those of the branch its tag selects, the branch's own branches
/// included (a union's branch may itself be a union).
fn object_members<'s>(
    schema: &'s Schema,
    ty: EntityId,
    map: &serde_json::Map<String, Value>,
) -> Vec<&'s qapi_parser::ObjectMember> {
    let EntityKind::Object(o) = &schema.entity(ty).kind else {
        return Vec::new();
    };
    let mut members: Vec<&qapi_parser::ObjectMember> = o.members.iter().collect();
    if let Some(b) = &o.branches {
        // A missing or non-string tag is reported by the tag's own check.
        if let Some(Value::String(tag)) = map.get(&b.tag) {
            if let Some(v) = b.variants.iter().find(|v| &v.name == tag) {
                for m in object_members(schema, v.ty, map) {
                    if !members.iter().any(|k| k.name == m.name) {
                        members.push(m);
                    }
                }
            }
        }
    }
    members
}

/// A type's name for people: an implicit object by what it belongs to.
fn type_name(schema: &Schema, ty: EntityId) -> String {
    let name = &schema.entity(ty).name;
    let implicit = name
        .strip_prefix("q_obj_")
        .and_then(|rest| rest.rsplit_once('-'));
    match implicit {
        Some((owner, "arg")) => format!("the arguments of {owner}"),
        Some((owner, "base")) => format!("the base of {owner}"),
        Some((owner, "wrapper")) => format!("the branch wrapper of {owner}"),
        _ => name.clone(),
    }
}

/// Whether an alternate's branch `ty` takes a value of this JSON type
/// (QEMU picks the branch by JSON type alone).
fn takes(schema: &Schema, ty: EntityId, value: &Value) -> bool {
    match (&schema.entity(ty).kind, value) {
        (EntityKind::Object(_), Value::Object(_)) => true,
        (EntityKind::Array(_), Value::Array(_)) => true,
        (EntityKind::Enum(_), Value::String(_)) => true,
        (EntityKind::Builtin(b), v) => match (b, v) {
            (Builtin::Str, Value::String(_)) => true,
            (Builtin::Bool, Value::Bool(_)) => true,
            (Builtin::Null, Value::Null) => true,
            (Builtin::Number, Value::Number(_)) => true,
            (Builtin::Any, _) => true,
            (Builtin::Str | Builtin::Bool | Builtin::Null | Builtin::Number, _) => false,
            (_, Value::Number(_)) => true,
            _ => false,
        },
        _ => false,
    }
}

fn builtin(b: Builtin, value: &Value, path: &str) -> Result<(), Fault> {
    let kind = json_kind(value);
    let want = |what: &str| Err(fault(path, format!("{kind}, but the schema says {what}")));
    let range = |lo: i128, hi: i128, name: &str| -> Result<(), Fault> {
        let n = value
            .as_i64()
            .map(i128::from)
            .or_else(|| value.as_u64().map(i128::from));
        match n {
            Some(n) if (lo..=hi).contains(&n) => Ok(()),
            Some(n) => Err(fault(path, format!("{n} is out of range for {name}"))),
            None => Err(fault(
                path,
                format!("{value}, but the schema says {name} (an integer)"),
            )),
        }
    };
    match b {
        Builtin::Str => match value {
            Value::String(_) => Ok(()),
            _ => want("str"),
        },
        Builtin::Bool => match value {
            Value::Bool(_) => Ok(()),
            _ => want("bool"),
        },
        Builtin::Null => match value {
            Value::Null => Ok(()),
            _ => want("null"),
        },
        Builtin::Number => match value {
            Value::Number(_) => Ok(()),
            _ => want("number"),
        },
        Builtin::Any => Ok(()),
        Builtin::Int | Builtin::Int64 => range(i64::MIN.into(), i64::MAX.into(), "int"),
        Builtin::Int8 => range(i8::MIN.into(), i8::MAX.into(), "int8"),
        Builtin::Int16 => range(i16::MIN.into(), i16::MAX.into(), "int16"),
        Builtin::Int32 => range(i32::MIN.into(), i32::MAX.into(), "int32"),
        Builtin::Uint8 => range(0, u8::MAX.into(), "uint8"),
        Builtin::Uint16 => range(0, u16::MAX.into(), "uint16"),
        Builtin::Uint32 => range(0, u32::MAX.into(), "uint32"),
        Builtin::Uint64 => range(0, u64::MAX.into(), "uint64"),
        Builtin::Size => range(0, u64::MAX.into(), "size"),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ----------------------------------------------------------------------
// The bindings' judgement

/// The Rust bindings under test, by command and event name.  Each
/// answers `None` when the bindings do not know the name.
pub trait Bindings {
    /// Decode a request's `arguments` strictly into the typed command and
    /// encode it back.
    fn arguments(&self, command: &str, arguments: Value) -> Option<Result<Value, String>>;
    /// Decode a reply's `return` strictly into the command's return type.
    fn returns(&self, command: &str, value: Value) -> Option<Result<(), String>>;
    /// Decode an event's `data` strictly into its event type.
    fn event(&self, event: &str, data: Value) -> Option<Result<(), String>>;
    /// What the client's envelope parser makes of a whole server message:
    /// `return`, `error`, `event` or `greeting`.
    fn envelope(&self, message: &Value) -> Result<&'static str, String>;
}

/// Whose examples are checked.
#[derive(Clone, Copy)]
pub enum Mode<'a> {
    /// The schema the bindings were generated from: requests, replies
    /// and events.
    Own,
    /// An older release's schema, with bindings generated from `newest`:
    /// replies and events only (arguments follow the newest schema).
    Older { newest: &'a Schema },
}

/// What [`check`] found.  Each finding reads `SYMBOL: MESSAGE: FAULT`,
/// without line numbers, so a pinned list survives edits elsewhere.
#[derive(Debug, Default)]
pub struct Report {
    pub decoded: usize,
    /// `(place, reason)`.
    pub skipped: Vec<(String, String)>,
    /// Examples QEMU's own schema rejects.
    pub wrong: Vec<String>,
    /// Older releases only: what the release's schema accepts and the
    /// newest does not (the bindings must learn the older form).
    pub folding: Vec<String>,
    /// Everything else that failed: our bugs.  With the place.
    pub failed: Vec<String>,
}

impl Report {
    /// `schema examples: N decoded, M skipped, Q wrong in QEMU's docs,
    /// K failed` (and the older-release differences when there are any).
    pub fn line(&self) -> String {
        let mut s = format!(
            "schema examples: {} decoded, {} skipped, {} wrong in QEMU's docs, {} failed",
            self.decoded,
            self.skipped.len(),
            self.wrong.len(),
            self.failed.len()
        );
        if !self.folding.is_empty() {
            let _ = write!(s, ", {} need older-release folding", self.folding.len());
        }
        s
    }

    /// Skip reasons with their counts, most frequent first.
    pub fn skip_reasons(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for (_, reason) in &self.skipped {
            let key = if reason.starts_with("not JSON") {
                "not JSON".to_string()
            } else {
                reason.clone()
            };
            match counts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => counts.push((key, 1)),
            }
        }
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        counts
    }
}

/// Check every example of `schema` (see the module's documentation).
pub fn check(schema: &Schema, mode: Mode, bindings: &dyn Bindings) -> Report {
    let mut report = Report::default();
    for example in extract(schema) {
        let mut last_command: Option<String> = schema
            .lookup(&example.symbol)
            .filter(|&id| matches!(schema.entity(id).kind, EntityKind::Command(_)))
            .map(|_| example.symbol.clone());
        for msg in &example.messages {
            let value = match &msg.json {
                Ok(v) => v,
                Err(reason) => {
                    if msg.dir == Dir::Server || matches!(mode, Mode::Own) {
                        report.skipped.push((msg.place.clone(), reason.clone()));
                    }
                    continue;
                }
            };
            let mut c = Checker {
                schema,
                mode,
                bindings,
                report: &mut report,
                symbol: &example.symbol,
                place: &msg.place,
            };
            match msg.dir {
                Dir::Request => {
                    if let Some(name) = c.request(value) {
                        last_command = Some(name);
                    }
                }
                Dir::Server => c.server(value, last_command.as_deref()),
            }
        }
    }
    report
}

struct Checker<'a, 'r> {
    schema: &'a Schema,
    mode: Mode<'a>,
    bindings: &'a dyn Bindings,
    report: &'r mut Report,
    symbol: &'a str,
    place: &'a str,
}

/// The result of judging one message's payload.
enum Verdict {
    Decoded,
    Wrong(String),
    Folding(String),
    Failed(String),
}

impl Checker<'_, '_> {
    fn record(&mut self, what: &str, verdict: Verdict) {
        let line = |f: &str| format!("{}: {what}: {f}", self.symbol);
        match verdict {
            Verdict::Decoded => self.report.decoded += 1,
            Verdict::Wrong(f) => self.report.wrong.push(line(&f)),
            Verdict::Folding(f) => self.report.folding.push(line(&f)),
            Verdict::Failed(f) => {
                let l = format!("{} ({})", line(&f), self.place);
                self.report.failed.push(l)
            }
        }
    }

    /// A `->` message; returns the command's name.
    fn request(&mut self, value: &Value) -> Option<String> {
        let Value::Object(map) = value else {
            let what = "request";
            self.record(what, Verdict::Wrong("not a JSON object".into()));
            return None;
        };
        let name = match (map.get("execute"), map.get("exec-oob")) {
            (Some(Value::String(n)), None) | (None, Some(Value::String(n))) => n.clone(),
            _ => {
                let v = Verdict::Wrong("no 'execute' or 'exec-oob' with a command name".into());
                self.record("request", v);
                return None;
            }
        };
        if matches!(self.mode, Mode::Older { .. }) {
            return Some(name);
        }
        let what = format!("request {name}");
        if let Some(k) = map
            .keys()
            .find(|k| !["execute", "exec-oob", "arguments", "id", "control"].contains(&k.as_str()))
        {
            self.record(
                &what,
                Verdict::Wrong(format!("'{k}' is not a member of a request")),
            );
            return Some(name);
        }
        let arguments = map
            .get("arguments")
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        let verdict = self.judge_arguments(&name, arguments);
        self.record(&what, verdict);
        Some(name)
    }

    fn judge_arguments(&self, name: &str, arguments: Value) -> Verdict {
        let schema = self.schema;
        let Some(cmd) = command(schema, name) else {
            return Verdict::Wrong(format!("the schema has no command '{name}'"));
        };
        let own = match cmd.arg_type {
            // A command whose arguments the schema leaves open ('gen':
            // false) takes members beyond the ones it names.
            Some(ty) if !cmd.gen => conforms_open(schema, ty, &arguments, "arguments"),
            Some(ty) => conforms(schema, ty, &arguments, "arguments"),
            None => empty(&arguments, "arguments"),
        };
        let ours = self.bindings.arguments(name, arguments.clone());
        match (own, ours) {
            (_, None) => Verdict::Failed(format!("the bindings have no command '{name}'")),
            (Err(f), Some(Err(_))) => Verdict::Wrong(f.to_string()),
            (Err(f), Some(Ok(_))) => Verdict::Failed(format!(
                "the bindings accept arguments the schema rejects ({f})"
            )),
            (Ok(()), Some(Err(e))) => Verdict::Failed(format!("arguments do not decode: {e}")),
            (Ok(()), Some(Ok(back))) => match difference(&arguments, &back, "arguments") {
                None => Verdict::Decoded,
                Some(d) => Verdict::Failed(format!("encoded back differently: {d}")),
            },
        }
    }

    /// A `<-` message: a reply to `command`, an event, an error, a
    /// greeting.
    fn server(&mut self, value: &Value, command: Option<&str>) {
        let Value::Object(map) = value else {
            self.record("server message", Verdict::Wrong("not a JSON object".into()));
            return;
        };
        let own = if map.contains_key("return") {
            "return"
        } else if map.contains_key("error") {
            "error"
        } else if map.contains_key("event") {
            "event"
        } else if map.contains_key("QMP") {
            "greeting"
        } else {
            let v = Verdict::Wrong(
                "not a QMP message (no 'return', 'error', 'event' or 'QMP' member)".into(),
            );
            self.record("server message", v);
            return;
        };
        let envelope = self.bindings.envelope(value);
        let what = match (own, command, map.get("event")) {
            ("return", Some(c), _) => format!("reply to {c}"),
            ("return", None, _) => "reply".to_string(),
            ("error", _, _) => "error reply".to_string(),
            ("event", _, Some(Value::String(e))) => format!("event {e}"),
            _ => own.to_string(),
        };
        match envelope {
            // QEMU left the timestamp out of the example: see below.
            Err(_) if own == "event" && !map.contains_key("timestamp") => {}
            Err(e) => {
                let v = match self.envelope_fault(map, own) {
                    Some(f) => Verdict::Wrong(f),
                    None => Verdict::Failed(format!("the client's envelope parser: {e}")),
                };
                return self.record(&what, v);
            }
            Ok(kind) if kind != own => {
                let v = Verdict::Failed(format!("the client reads it as {kind}, not {own}"));
                return self.record(&what, v);
            }
            Ok(_) => {}
        }
        let verdict = match own {
            "return" => match command {
                Some(c) => self.judge_return(c, map["return"].clone()),
                None => Verdict::Wrong("a reply without a request to match".into()),
            },
            // QEMU's documentation often leaves an event's timestamp out
            // (the client rightly refuses such a message, see above): the
            // event is judged by its data.
            "event" => match map.get("event") {
                Some(Value::String(name)) => {
                    let data = map
                        .get("data")
                        .cloned()
                        .unwrap_or_else(|| Value::Object(Default::default()));
                    self.judge_event(name, data)
                }
                _ => Verdict::Wrong("'event' is not a name".into()),
            },
            // The envelope parser took the error's class and description
            // and the greeting: nothing more to decode.
            _ => Verdict::Decoded,
        };
        self.record(&what, verdict)
    }

    /// Why QMP's rules reject this envelope, if they do.
    fn envelope_fault(&self, map: &serde_json::Map<String, Value>, own: &str) -> Option<String> {
        match own {
            "error" => {
                let e = map["error"].as_object()?;
                match (e.get("class"), e.get("desc")) {
                    (Some(Value::String(_)), Some(Value::String(_))) => None,
                    _ => Some("an error needs string members 'class' and 'desc'".into()),
                }
            }
            "event" => match map.get("timestamp") {
                Some(Value::Object(t))
                    if t.get("seconds").is_some_and(Value::is_i64)
                        && t.get("microseconds").is_some_and(Value::is_i64) =>
                {
                    None
                }
                _ => Some("'timestamp' needs integers 'seconds' and 'microseconds'".into()),
            },
            _ => None,
        }
    }

    fn judge_return(&self, name: &str, value: Value) -> Verdict {
        let own = match command(self.schema, name) {
            None => return Verdict::Wrong(format!("the schema has no command '{name}'")),
            Some(cmd) => match cmd.ret_type {
                Some(ty) => conforms(self.schema, ty, &value, "return"),
                None => empty(&value, "return"),
            },
        };
        if let Err(f) = own {
            return Verdict::Wrong(f.to_string());
        }
        // A command without a return type: `{}` is all there is, checked.
        let ours = self.bindings.returns(name, value.clone());
        self.judge_ours(
            ours,
            |newest| match command(newest, name) {
                None => Err(Fault {
                    path: String::new(),
                    what: format!("command '{name}' is not in the newest schema"),
                }),
                Some(cmd) => match cmd.ret_type {
                    Some(ty) => conforms(newest, ty, &value, "return"),
                    None => empty(&value, "return"),
                },
            },
            "reply",
        )
    }

    fn judge_event(&self, name: &str, data: Value) -> Verdict {
        let own = match event(self.schema, name) {
            None => return Verdict::Wrong(format!("the schema has no event '{name}'")),
            Some(ev) => match ev.arg_type {
                Some(ty) => conforms(self.schema, ty, &data, "data"),
                None => empty(&data, "data"),
            },
        };
        if let Err(f) = own {
            return Verdict::Wrong(f.to_string());
        }
        let ours = self.bindings.event(name, data.clone());
        self.judge_ours(
            ours,
            |newest| match event(newest, name) {
                None => Err(Fault {
                    path: String::new(),
                    what: format!("event '{name}' is not in the newest schema"),
                }),
                Some(ev) => match ev.arg_type {
                    Some(ty) => conforms(newest, ty, &data, "data"),
                    None => empty(&data, "data"),
                },
            },
            "data",
        )
    }

    /// The bindings' answer for a payload the release's own schema
    /// accepts.  For an older release, a rejection the newest schema
    /// explains (`newest`) is a difference between releases.
    fn judge_ours(
        &self,
        ours: Option<Result<(), String>>,
        newest: impl Fn(&Schema) -> Result<(), Fault>,
        what: &str,
    ) -> Verdict {
        let result = match ours {
            Some(r) => r,
            None => Err("the bindings do not know it".into()),
        };
        match (result, self.mode) {
            (Ok(()), _) => Verdict::Decoded,
            (Err(e), Mode::Own) => Verdict::Failed(format!("{what} does not decode: {e}")),
            (Err(e), Mode::Older { newest: n }) => match newest(n) {
                Err(f) => Verdict::Folding(f.to_string()),
                Ok(()) => Verdict::Failed(format!("{what} does not decode: {e}")),
            },
        }
    }
}

fn command<'s>(schema: &'s Schema, name: &str) -> Option<&'s qapi_parser::Command> {
    match &schema.entity(schema.lookup(name)?).kind {
        EntityKind::Command(c) => Some(c),
        _ => None,
    }
}

fn event<'s>(schema: &'s Schema, name: &str) -> Option<&'s qapi_parser::Event> {
    match &schema.entity(schema.lookup(name)?).kind {
        EntityKind::Event(e) => Some(e),
        _ => None,
    }
}

/// What a command without arguments or return type, or an event without
/// data, carries: an empty object.
fn empty(value: &Value, path: &str) -> Result<(), Fault> {
    match value {
        Value::Object(m) if m.is_empty() => Ok(()),
        Value::Object(m) => {
            let key = m.keys().next().map(String::as_str).unwrap_or("");
            Err(fault(
                &format!("{path}.{key}"),
                "the schema defines no members here".into(),
            ))
        }
        _ => Err(fault(
            path,
            format!("{}, but the schema says an empty object", json_kind(value)),
        )),
    }
}

/// [`conforms`] for a free-form command's arguments: the members it
/// names are checked, others pass.
fn conforms_open(schema: &Schema, ty: EntityId, value: &Value, path: &str) -> Result<(), Fault> {
    let (EntityKind::Object(o), Value::Object(map)) = (&schema.entity(ty).kind, value) else {
        return conforms(schema, ty, value, path);
    };
    let known: serde_json::Map<String, Value> = map
        .iter()
        .filter(|(k, _)| o.members.iter().any(|m| &m.name == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    conforms(schema, ty, &Value::Object(known), path)
}

/// Where two JSON values differ, numbers compared by value (`1` and
/// `1.0` are the same number).
pub fn difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let same = match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(p), Some(q), _, _) => p == q,
                (_, _, Some(p), Some(q)) => p == q,
                _ => x.as_f64() == y.as_f64(),
            };
            (!same).then(|| format!("{path}: {a} became {b}"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| difference(p, q, &format!("{path}[{i}]"))),
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = difference(v, w, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{path}.{k}: dropped")),
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{path}.{k}: added"))
        }
        _ => (a != b).then(|| format!("{path}: {a} became {b}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_runs_until_its_brackets_close() {
        let lines = [
            "-> { \"execute\": \"x\",",
            "     \"arguments\": { \"a\": \"}\" } }",
            "<- { \"return\": {} }",
            "text after",
        ];
        let src = lines.join("\n");
        let m = messages(&lines, &src, "f", &mut 0);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].json.as_ref().unwrap()["arguments"]["a"], "}");
        assert_eq!(m[1].dir, Dir::Server);
        assert_eq!(m[1].place, "f:3");
    }

    #[test]
    fn abbreviations_and_broken_json_are_skipped_with_a_reason() {
        let lines = [
            "<- { \"return\": [ ... ] }",
            "<- { \"return\": { \"desc\": \"...\" } }",
            "<- { \"return\": { \"a\": 1",
            "",
            "<- { \"return\": { \"a\": 1 \"b\": 2 } }",
        ];
        let m = messages(&lines, "", "f", &mut 0);
        assert_eq!(m[0].json.as_ref().unwrap_err(), "abbreviated (`...`)");
        // Dots inside a string are text, not an abbreviation.
        assert!(m[1].json.is_ok());
        assert!(m[2].json.as_ref().unwrap_err().contains("never close"));
        assert!(m[3].json.as_ref().unwrap_err().starts_with("not JSON"));
    }

    #[test]
    fn qmp_example_blocks_end_at_the_first_line_indented_as_little() {
        let text = "Intro.\n\n.. qmp-example::\n   :title: t\n\n   -> {}\n\nAfter.\n.. qmp-example::\n\n    <- {}\n";
        let blocks = qmp_example_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert!(blocks[0].iter().any(|l| l.contains("->")));
        assert!(!blocks[0].iter().any(|l| l.contains("After")));
        assert!(blocks[1].iter().any(|l| l.contains("<-")));
    }

    /// A small schema read from memory.
    fn schema(text: &str) -> Schema {
        let load = |_: &std::path::Path| Ok(text.as_bytes().to_vec());
        let options = qapi_parser::Options {
            rules: qapi_parser::Rules::Lenient,
        };
        Schema::from_file_with(std::path::Path::new("t.json"), options, &load)
            .unwrap_or_else(|f| panic!("{}", f.render()))
    }

    const SCHEMA: &str = "
{ 'enum': 'Kind', 'data': [ 'inet', 'unix' ] }
{ 'struct': 'Inet', 'data': { 'host': 'str', '*port': 'uint16' } }
{ 'struct': 'Unix', 'data': { 'path': 'str' } }
{ 'union': 'Addr', 'base': { 'type': 'Kind' }, 'discriminator': 'type',
  'data': { 'inet': 'Inet', 'unix': 'Unix' } }
{ 'enum': 'Transport', 'data': [ 'socket', 'file' ] }
{ 'struct': 'File', 'data': { 'filename': 'str' } }
{ 'union': 'Channel', 'base': { 'transport': 'Transport' },
  'discriminator': 'transport', 'data': { 'socket': 'Addr', 'file': 'File' } }
{ 'alternate': 'RefOrNull', 'data': { 'name': 'str', 'none': 'null' } }
{ 'command': 'connect', 'data': { 'addr': 'Channel', '*backing': 'RefOrNull' } }
";

    fn check_args(s: &Schema, args: Value) -> Result<(), Fault> {
        let cmd = command(s, "connect").unwrap();
        conforms(s, cmd.arg_type.unwrap(), &args, "arguments")
    }

    #[test]
    fn a_union_branch_that_is_a_union_takes_its_own_branch_members() {
        let s = schema(SCHEMA);
        let ok = serde_json::json!({"addr": {"transport": "socket", "type": "inet",
            "host": "h", "port": 4444}, "backing": null});
        assert_eq!(check_args(&s, ok), Ok(()));
        let other_branch = serde_json::json!({"addr": {"transport": "socket", "type": "unix",
            "host": "h"}});
        let f = check_args(&s, other_branch).unwrap_err();
        assert_eq!(f.path, "arguments.addr");
        assert_eq!(f.what, "missing member 'path' (required in Unix)");
    }

    #[test]
    fn faults_say_where_and_what_the_schema_says() {
        let s = schema(SCHEMA);
        let cases = [
            (
                serde_json::json!({"addr": {"transport": "file", "filename": "f", "x": 1}}),
                "arguments.addr.x: Channel has no member 'x'",
            ),
            (
                serde_json::json!({"addr": {"transport": "pipe"}}),
                "arguments.addr.transport: 'pipe' is not a value of enum Transport",
            ),
            (
                serde_json::json!({"addr": {"transport": "socket", "type": "inet",
                    "host": "h", "port": 70000}}),
                "arguments.addr.port: 70000 is out of range for uint16",
            ),
            (
                serde_json::json!({"addr": {"transport": "socket", "type": "inet",
                    "host": "h", "port": "1"}}),
                "arguments.addr.port: \"1\", but the schema says uint16 (an integer)",
            ),
            (
                serde_json::json!({"addr": {"transport": "file", "filename": "f"}, "backing": 1}),
                "arguments.backing: alternate RefOrNull has no branch for a number",
            ),
            (
                serde_json::json!({}),
                "arguments: missing member 'addr' (required in the arguments of connect)",
            ),
        ];
        for (value, want) in cases {
            let got = check_args(&s, value).unwrap_err().to_string();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn numbers_compare_by_value() {
        let a: Value = serde_json::json!({"x": 1, "y": [1.5]});
        let b: Value = serde_json::json!({"x": 1.0, "y": [1.5]});
        assert_eq!(difference(&a, &b, ""), None);
        let c: Value = serde_json::json!({"x": 2, "y": [1.5]});
        assert_eq!(difference(&a, &c, "").unwrap(), ".x: 1 became 2");
        let d: Value = serde_json::json!({"x": 1});
        assert_eq!(difference(&a, &d, "").unwrap(), ".y: dropped");
    }
}
