//! Asking the running QEMU what it has: its `query-qmp-schema`, read
//! into a [`Schema`] you can query by command and event names, by paths
//! in libvirt's path language, and check command values against.
//!
//! The clients fetch the schema once per connection, when first needed
//! (`blocking::Qmp::schema`, `tokio::Qmp::schema`); everything here also
//! works on a schema you read yourself ([`Schema::from_value`]).
//!
//! # Paths
//!
//! QEMU masks the names of its types in `query-qmp-schema` (`"0"`,
//! `"1"`, …, different in every build), so a path never names a type: it
//! starts at a command or event and goes down through members, branches
//! and values.  A path is steps separated by `/`:
//!
//! | step | meaning |
//! |------|---------|
//! | `NAME` (first) | the command or event `NAME` |
//! | `arg-type` | a command's or event's arguments (an object) |
//! | `ret-type` | a command's return type |
//! | `name` | the member `name` of the object reached (base members only: a union's branch members need `+case` first) |
//! | `*name` | the same, and the member must be optional |
//! | `+case` | the union branch `case` of the object reached: the branch's own members |
//! | `^value` | the enum reached has `value` (may be followed by `$feature` only) |
//! | `!type` | the type reached has JSON type `type`: `string`, `int`, `number`, `boolean`, `null`, `value` (QEMU's `any`), or `object`; an enum is a `string` (last step) |
//! | `$feature` | what the previous step named has `feature`: the command or event, the member, the enum value, or the type reached (last step) |
//!
//! Arrays are looked through: a step after a member of type `[T]`
//! applies to `T`.  Alternates are tried branch by branch: a step after
//! an alternate applies to each of its branches, and the path holds when
//! it holds through any of them.  A path that names something the schema
//! does not have does not hold ([`Schema::query`] is `false`); a path
//! that is not well formed (an empty step, a step after `!type`, an
//! unknown JSON type, …) is an error ([`PathError`]).
//!
//! ```
//! use qapi_types::probe::Schema;
//! let schema = Schema::from_value(&serde_json::json!([
//!     {"name": "blockdev-add", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
//!     {"name": "0", "meta-type": "object", "tag": "driver",
//!      "members": [{"name": "driver", "type": "2"},
//!                  {"name": "node-name", "type": "str", "default": null}],
//!      "variants": [{"case": "file", "type": "3"}]},
//!     {"name": "1", "meta-type": "object", "members": []},
//!     {"name": "2", "meta-type": "enum", "values": ["file"]},
//!     {"name": "3", "meta-type": "object", "members": [
//!         {"name": "aio", "type": "4", "default": null},
//!         {"name": "locking", "type": "str", "default": null, "features": ["deprecated"]}]},
//!     {"name": "4", "meta-type": "enum", "values": ["threads", "io_uring"]},
//!     {"name": "str", "meta-type": "builtin", "json-type": "string"}
//! ])).unwrap();
//! assert!(schema.query("blockdev-add/arg-type/+file/aio/^io_uring").unwrap());
//! assert!(schema.query("blockdev-add/arg-type/*node-name/!string").unwrap());
//! assert!(!schema.query("blockdev-add/arg-type/+nbd").unwrap());
//! assert!(schema.query("blockdev-add/arg-type/+file/locking/$deprecated").unwrap());
//! assert!(schema.query("blockdev-add/arg-type//aio").is_err());
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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::{Command, Error, Result};

/// One entry of `query-qmp-schema` (a `SchemaInfo`).
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    features: Vec<String>,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Builtin {
        json: String,
    },
    Enum {
        values: Vec<Named>,
    },
    Array {
        element: String,
    },
    Object {
        members: Vec<Member>,
        tag: Option<String>,
        variants: Vec<(String, String)>,
    },
    Alternate {
        branches: Vec<String>,
    },
    Command {
        arg: String,
        ret: String,
        allow_oob: bool,
    },
    Event {
        arg: String,
    },
}

/// An enum value with its features.
#[derive(Clone, Debug, PartialEq)]
struct Named {
    name: String,
    features: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
struct Member {
    name: String,
    ty: String,
    optional: bool,
    features: Vec<String>,
}

/// A server's `query-qmp-schema`, indexed by name.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    entries: HashMap<String, Entry>,
}

fn strings(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{what}: {x} is not a string"))
            })
            .collect(),
        Some(other) => Err(format!("{what}: {other} is not a list")),
    }
}

fn text(e: &Value, key: &str, what: &str) -> Result<String, String> {
    e.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{what}: no string '{key}'"))
}

fn list<'a>(e: &'a Value, key: &str, what: &str) -> Result<&'a [Value], String> {
    match e.get(key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(format!("{what}: '{key}' is {other}, not a list")),
    }
}

fn entry(e: &Value, what: &str) -> Result<(String, Entry), String> {
    let name = text(e, "name", what)?;
    let what = &format!("{what} ('{name}')");
    let features = strings(e.get("features"), &format!("{what} features"))?;
    let meta = text(e, "meta-type", what)?;
    let kind = match meta.as_str() {
        "builtin" => Kind::Builtin {
            json: text(e, "json-type", what)?,
        },
        "enum" => {
            // `members` (with features) since QEMU 6.2; `values` before.
            let values = match e.get("members") {
                Some(_) => list(e, "members", what)?
                    .iter()
                    .map(|m| {
                        Ok(Named {
                            name: text(m, "name", &format!("{what} value"))?,
                            features: strings(m.get("features"), what)?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
                None => strings(e.get("values"), &format!("{what} values"))?
                    .into_iter()
                    .map(|name| Named {
                        name,
                        features: Vec::new(),
                    })
                    .collect(),
            };
            Kind::Enum { values }
        }
        "array" => Kind::Array {
            element: text(e, "element-type", what)?,
        },
        "object" => Kind::Object {
            members: list(e, "members", what)?
                .iter()
                .map(|m| {
                    let name = text(m, "name", &format!("{what} member"))?;
                    let w = format!("{what} member '{name}'");
                    Ok(Member {
                        ty: text(m, "type", &w)?,
                        optional: m.get("default").is_some(),
                        features: strings(m.get("features"), &w)?,
                        name,
                    })
                })
                .collect::<Result<_, String>>()?,
            tag: match e.get("tag") {
                None => None,
                Some(_) => Some(text(e, "tag", what)?),
            },
            variants: list(e, "variants", what)?
                .iter()
                .map(|v| {
                    let w = format!("{what} variant");
                    Ok((text(v, "case", &w)?, text(v, "type", &w)?))
                })
                .collect::<Result<_, String>>()?,
        },
        "alternate" => Kind::Alternate {
            branches: list(e, "members", what)?
                .iter()
                .map(|m| text(m, "type", &format!("{what} branch")))
                .collect::<Result<_, String>>()?,
        },
        "command" => Kind::Command {
            arg: text(e, "arg-type", what)?,
            ret: text(e, "ret-type", what)?,
            allow_oob: e.get("allow-oob").and_then(Value::as_bool) == Some(true),
        },
        "event" => Kind::Event {
            arg: text(e, "arg-type", what)?,
        },
        other => return Err(format!("{what}: unknown meta-type '{other}'")),
    };
    Ok((name, Entry { features, kind }))
}

impl Schema {
    /// Read a `query-qmp-schema` reply.  Every entry must be well formed
    /// and every type it names described; otherwise the error says which
    /// entry and what is wrong.
    pub fn from_value(value: &Value) -> Result<Schema, String> {
        let items = value
            .as_array()
            .ok_or_else(|| "the schema is not a list".to_string())?;
        let mut entries = HashMap::with_capacity(items.len());
        for (i, e) in items.iter().enumerate() {
            let (name, entry) = entry(e, &format!("entry {i}"))?;
            if entries.insert(name.clone(), entry).is_some() {
                return Err(format!("entry {i}: '{name}' is described twice"));
            }
        }
        let schema = Schema { entries };
        schema.check_references()?;
        Ok(schema)
    }

    fn check_references(&self) -> Result<(), String> {
        for (name, e) in &self.entries {
            let mut refs: Vec<&str> = Vec::new();
            match &e.kind {
                Kind::Builtin { .. } | Kind::Enum { .. } => {}
                Kind::Array { element } => refs.push(element),
                Kind::Object {
                    members,
                    tag,
                    variants,
                } => {
                    refs.extend(members.iter().map(|m| m.ty.as_str()));
                    refs.extend(variants.iter().map(|(_, t)| t.as_str()));
                    if let Some(tag) = tag {
                        if !members.iter().any(|m| &m.name == tag) {
                            return Err(format!("'{name}': tag '{tag}' is not a member"));
                        }
                    }
                }
                Kind::Alternate { branches } => refs.extend(branches.iter().map(String::as_str)),
                Kind::Command { arg, ret, .. } => refs.extend([arg.as_str(), ret.as_str()]),
                Kind::Event { arg } => refs.push(arg),
            }
            for r in refs {
                match self.entries.get(r).map(|e| &e.kind) {
                    None => return Err(format!("'{name}' uses '{r}', which is not described")),
                    Some(Kind::Command { .. } | Kind::Event { .. }) => {
                        return Err(format!("'{name}' uses '{r}' as a type, but it is not one"))
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// The commands the server has, in no particular order.
    pub fn commands(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|(_, e)| matches!(e.kind, Kind::Command { .. }))
            .map(|(n, _)| n.as_str())
    }

    /// The events the server can send, in no particular order.
    pub fn events(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|(_, e)| matches!(e.kind, Kind::Event { .. }))
            .map(|(n, _)| n.as_str())
    }

    /// Whether the server has the command `name`.
    pub fn has_command(&self, name: &str) -> bool {
        matches!(
            self.entries.get(name).map(|e| &e.kind),
            Some(Kind::Command { .. })
        )
    }

    /// Whether the server has the event `name`.
    pub fn has_event(&self, name: &str) -> bool {
        matches!(
            self.entries.get(name).map(|e| &e.kind),
            Some(Kind::Event { .. })
        )
    }

    /// Whether the server has the command `C` ([`Command::NAME`]).
    pub fn supports<C: Command>(&self) -> bool {
        self.has_command(C::NAME)
    }

    /// Whether the server has the event `E` ([`Event::NAME`](crate::Event::NAME)).
    pub fn supports_event<E: crate::Event>(&self) -> bool {
        self.has_event(E::NAME)
    }

    /// Whether the server's `allow-oob` is set for command `name`.
    pub fn allows_oob(&self, name: &str) -> bool {
        matches!(
            self.entries.get(name).map(|e| &e.kind),
            Some(Kind::Command {
                allow_oob: true,
                ..
            })
        )
    }

    /// Whether `path` holds (see the [module documentation](self)).
    pub fn query(&self, path: &str) -> Result<bool, PathError> {
        Ok(!self.walk(path)?.is_empty())
    }

    /// The features of what `path` names (without a final `$feature`):
    /// of the command or event, the member, the enum value, and of the
    /// type reached; when alternates make the path reach several things,
    /// the features of all of them.  Empty when the path does not hold.
    /// `deprecated` and `unstable` are QEMU's special features.
    pub fn features(&self, path: &str) -> Result<Vec<String>, PathError> {
        let mut out: Vec<String> = Vec::new();
        for at in self.walk(path)? {
            for f in self.features_at(&at) {
                if !out.iter().any(|x| x == f) {
                    out.push(f.clone());
                }
            }
        }
        Ok(out)
    }

    fn features_at<'a>(&'a self, at: &At<'a>) -> Vec<&'a String> {
        let mut out: Vec<&String> = at.named.iter().flat_map(|f| f.iter()).collect();
        if let Some(ty) = at.ty {
            out.extend(self.entries[ty].features.iter());
            for t in self.look_through(ty) {
                out.extend(self.entries[t].features.iter());
            }
        }
        out
    }

    /// The types a step after type `ty` applies to: arrays looked
    /// through, alternates replaced by their branches (each once).
    fn look_through<'a>(&'a self, ty: &'a str) -> Vec<&'a str> {
        let mut out = Vec::new();
        let mut todo = vec![ty];
        let mut seen = HashSet::new();
        while let Some(t) = todo.pop() {
            if !seen.insert(t) {
                continue;
            }
            match &self.entries[t].kind {
                Kind::Array { element } => todo.push(element),
                Kind::Alternate { branches } => {
                    todo.extend(branches.iter().rev().map(String::as_str))
                }
                _ => out.push(t),
            }
        }
        out
    }

    fn json_type(&self, ty: &str) -> &str {
        match &self.entries[ty].kind {
            Kind::Builtin { json } => json,
            Kind::Enum { .. } => "string",
            Kind::Object { .. } => "object",
            _ => "",
        }
    }

    /// Everything `path` reaches.
    fn walk(&self, path: &str) -> Result<Vec<At<'_>>, PathError> {
        let steps = parse(path)?;
        let (root, rest) = steps.split_first().expect("parse gives a root");
        let Step::Member { name, .. } = root else {
            unreachable!("parse checks the root");
        };
        let Some(entry) = self
            .entries
            .get(*name)
            .filter(|e| matches!(e.kind, Kind::Command { .. } | Kind::Event { .. }))
        else {
            return Ok(Vec::new());
        };
        let mut at = vec![At {
            entry: Some(entry),
            ty: None,
            named: Some(&entry.features),
        }];
        for step in rest {
            let mut next = Vec::new();
            for a in &at {
                self.step(a, step, &mut next);
            }
            at = next;
            if at.is_empty() {
                break;
            }
        }
        Ok(at)
    }

    fn step<'a>(&'a self, at: &At<'a>, step: &Step<'_>, out: &mut Vec<At<'a>>) {
        let types = at.ty.map(|t| self.look_through(t)).unwrap_or_default();
        match step {
            Step::Arg | Step::Ret => {
                let ty = match (at.entry.map(|e| &e.kind), step) {
                    (Some(Kind::Command { arg, .. } | Kind::Event { arg }), Step::Arg) => arg,
                    (Some(Kind::Command { ret, .. }), Step::Ret) => ret,
                    _ => return,
                };
                out.push(At {
                    entry: None,
                    ty: Some(ty),
                    named: None,
                });
            }
            Step::Member { name, optional } => {
                for t in types {
                    if let Kind::Object { members, .. } = &self.entries[t].kind {
                        for m in members {
                            if m.name == *name && (m.optional || !optional) {
                                out.push(At {
                                    entry: None,
                                    ty: Some(&m.ty),
                                    named: Some(&m.features),
                                });
                            }
                        }
                    }
                }
            }
            Step::Branch(case) => {
                for t in types {
                    if let Kind::Object { variants, .. } = &self.entries[t].kind {
                        for (c, ty) in variants {
                            if c == case {
                                out.push(At {
                                    entry: None,
                                    ty: Some(ty),
                                    named: None,
                                });
                            }
                        }
                    }
                }
            }
            Step::Value(v) => {
                for t in types {
                    if let Kind::Enum { values } = &self.entries[t].kind {
                        for x in values {
                            if x.name == *v {
                                out.push(At {
                                    entry: None,
                                    ty: None,
                                    named: Some(&x.features),
                                });
                            }
                        }
                    }
                }
            }
            Step::Json(j) => {
                if types.iter().any(|t| self.json_type(t) == *j) {
                    out.push(at.clone());
                }
            }
            Step::Feature(f) => {
                if self.features_at(at).iter().any(|x| x == f) {
                    out.push(at.clone());
                }
            }
        }
    }
}

/// Where a path has got to.
#[derive(Clone)]
struct At<'a> {
    /// The command or event (the root only).
    entry: Option<&'a Entry>,
    /// The type reached (none after `^value` and at the root).
    ty: Option<&'a str>,
    /// The features of what the last step named.
    named: Option<&'a Vec<String>>,
}

#[derive(Debug, PartialEq)]
enum Step<'p> {
    Arg,
    Ret,
    Member { name: &'p str, optional: bool },
    Branch(&'p str),
    Value(&'p str),
    Json(&'p str),
    Feature(&'p str),
}

/// The JSON types `!type` accepts.
const JSON_TYPES: [&str; 7] = [
    "string", "int", "number", "boolean", "null", "value", "object",
];

/// A path that is not well formed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathError {
    /// The path.
    pub path: String,
    /// The 1-based number of the step at fault.
    pub step: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad probe path '{}', step {}: {}",
            self.path, self.step, self.message
        )
    }
}

impl std::error::Error for PathError {}

fn parse(path: &str) -> Result<Vec<Step<'_>>, PathError> {
    let err = |step: usize, message: String| PathError {
        path: path.to_string(),
        step,
        message,
    };
    let mut steps = Vec::new();
    for (i, s) in path.split('/').enumerate() {
        let n = i + 1;
        if s.is_empty() {
            return Err(err(n, "empty step".into()));
        }
        let (head, rest) = s.split_at(1);
        let need = |what: &str| {
            if rest.is_empty() {
                Err(err(n, format!("'{head}' needs {what} after it")))
            } else {
                Ok(rest)
            }
        };
        let step = if i == 0 {
            if "*+^!$".contains(head) {
                return Err(err(n, "a path starts with a command or event name".into()));
            }
            Step::Member {
                name: s,
                optional: false,
            }
        } else {
            match head {
                "*" => Step::Member {
                    name: need("a member name")?,
                    optional: true,
                },
                "+" => Step::Branch(need("a branch name")?),
                "^" => Step::Value(need("an enum value")?),
                "!" => {
                    let j = need("a JSON type")?;
                    if !JSON_TYPES.contains(&j) {
                        return Err(err(
                            n,
                            format!("unknown JSON type '{j}' (one of {})", JSON_TYPES.join(", ")),
                        ));
                    }
                    Step::Json(j)
                }
                "$" => Step::Feature(need("a feature name")?),
                _ if i == 1 && s == "arg-type" => Step::Arg,
                _ if i == 1 && s == "ret-type" => Step::Ret,
                _ if i == 1 => {
                    return Err(err(
                        n,
                        format!(
                            "'{s}': after a command or event comes arg-type, ret-type or $feature"
                        ),
                    ))
                }
                _ => Step::Member {
                    name: s,
                    optional: false,
                },
            }
        };
        match steps.last() {
            Some(Step::Json(_) | Step::Feature(_)) => {
                return Err(err(
                    n,
                    "nothing may follow a '!type' or '$feature' step".into(),
                ))
            }
            Some(Step::Value(_)) if !matches!(step, Step::Feature(_)) => {
                return Err(err(
                    n,
                    "only a '$feature' may follow a '^value' step".into(),
                ))
            }
            _ => {}
        }
        steps.push(step);
    }
    Ok(steps)
}

/// Something in a command value that the server does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unknown {
    /// Where, as a path that does not hold on the server's schema
    /// (`blockdev-add/arg-type/+file/aio/^io_uring`).
    pub path: String,
    /// What kind of thing.
    pub kind: UnknownKind,
}

/// What kind of thing an [`Unknown`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnknownKind {
    /// The command itself.
    Command,
    /// A member of an object.
    Member,
    /// An enum value.
    Value,
    /// A union branch.
    Branch,
    /// A value of a JSON type the server does not take there (e.g.
    /// `null` where an older QEMU has a plain string, not a
    /// string-or-null alternate).
    JsonType,
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            UnknownKind::Command => "command",
            UnknownKind::Member => "member",
            UnknownKind::Value => "enum value",
            UnknownKind::Branch => "union branch",
            UnknownKind::JsonType => "JSON type",
        };
        write!(f, "{what} {}", self.path)
    }
}

/// A `deprecated` or `unstable` part of the server's schema that a
/// command value uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Warning {
    /// The part, as a path: the command, a member, an enum value, or a
    /// branch (`block-commit/arg-type/base`).
    pub path: String,
    /// `deprecated` or `unstable`.
    pub feature: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QEMU marks {} as {}", self.path, self.feature)
    }
}

/// What [`Schema::check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// What the server does not know, in the value's order.
    pub unknown: Vec<Unknown>,
    /// The `deprecated` and `unstable` parts used.
    pub warnings: Vec<Warning>,
}

fn special(features: &[String]) -> impl Iterator<Item = &String> {
    features
        .iter()
        .filter(|f| *f == "deprecated" || *f == "unstable")
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Schema {
    /// Check the command `name` with `arguments` (as sent: `None` or an
    /// object) against the server's schema.
    pub fn check(&self, name: &str, arguments: Option<&Value>) -> Report {
        let mut r = Report::default();
        let Some(Entry {
            features,
            kind: Kind::Command { arg, .. },
        }) = self.entries.get(name)
        else {
            r.unknown.push(Unknown {
                path: name.to_string(),
                kind: UnknownKind::Command,
            });
            return r;
        };
        self.warn(&mut r, name, features);
        let empty = Value::Object(Default::default());
        self.value(
            arg,
            arguments.unwrap_or(&empty),
            &format!("{name}/arg-type"),
            &mut r,
        );
        r
    }

    /// [`Schema::check`] for a typed command.
    pub fn check_command<C: Command>(&self, command: &C) -> Result<Report> {
        let v = serde_json::to_value(command).map_err(Error::Encode)?;
        Ok(self.check(C::NAME, Some(&v)))
    }

    fn warn(&self, r: &mut Report, path: &str, features: &[String]) {
        for f in special(features) {
            r.warnings.push(Warning {
                path: path.to_string(),
                feature: f.clone(),
            });
        }
    }

    fn value(&self, ty: &str, v: &Value, path: &str, r: &mut Report) {
        let entry = &self.entries[ty];
        let mismatch = |r: &mut Report| {
            r.unknown.push(Unknown {
                path: format!("{path}/!{}", json_kind(v)),
                kind: UnknownKind::JsonType,
            })
        };
        match &entry.kind {
            Kind::Builtin { json } => {
                let ok = match json.as_str() {
                    "value" => true,
                    "number" => v.is_number(),
                    j => j == json_kind(v),
                };
                if !ok {
                    mismatch(r);
                }
            }
            Kind::Enum { values } => match v.as_str() {
                None => mismatch(r),
                Some(s) => match values.iter().find(|x| x.name == s) {
                    Some(x) => self.warn(r, &format!("{path}/^{s}"), &x.features),
                    None => r.unknown.push(Unknown {
                        path: format!("{path}/^{s}"),
                        kind: UnknownKind::Value,
                    }),
                },
            },
            Kind::Array { element } => match v.as_array() {
                Some(items) => items.iter().for_each(|x| self.value(element, x, path, r)),
                None => mismatch(r),
            },
            Kind::Object { .. } => match v.as_object() {
                Some(m) => self.object(ty, m, path, r),
                None => mismatch(r),
            },
            Kind::Alternate { branches } => {
                let fits: Vec<&str> = branches
                    .iter()
                    .map(String::as_str)
                    .filter(|b| self.fits(b, v))
                    .collect();
                if fits.is_empty() {
                    mismatch(r);
                    return;
                }
                // The branch that knows the value best (as QEMU picks
                // by JSON type, there is one unless enum and str share
                // strings).
                let best = fits
                    .iter()
                    .map(|b| {
                        let mut sub = Report::default();
                        self.value(b, v, path, &mut sub);
                        sub
                    })
                    .min_by_key(|s| s.unknown.len())
                    .unwrap_or_default();
                r.unknown.extend(best.unknown);
                r.warnings.extend(best.warnings);
            }
            Kind::Command { .. } | Kind::Event { .. } => {}
        }
        if !matches!(entry.kind, Kind::Builtin { .. } | Kind::Alternate { .. }) {
            self.warn(r, path, &entry.features);
        }
    }

    /// Whether an alternate's branch `ty` takes a value of `v`'s JSON type.
    fn fits(&self, ty: &str, v: &Value) -> bool {
        match &self.entries[ty].kind {
            Kind::Builtin { json } => match json.as_str() {
                "value" => true,
                "number" => v.is_number(),
                j => j == json_kind(v),
            },
            Kind::Enum { .. } => v.is_string(),
            Kind::Object { .. } => v.is_object(),
            Kind::Array { .. } => v.is_array(),
            _ => false,
        }
    }

    fn object(&self, ty: &str, v: &serde_json::Map<String, Value>, path: &str, r: &mut Report) {
        let Kind::Object {
            members,
            tag,
            variants,
        } = &self.entries[ty].kind
        else {
            return;
        };
        // The branch the tag selects: Ok(its type), or Err(whether the
        // tag's value is one the server does not know).
        let mut branch: Option<(&str, &str)> = None;
        let mut unknown_branch = false;
        if let Some(tag) = tag {
            if let Some(case) = v.get(tag).and_then(Value::as_str) {
                match variants.iter().find(|(c, _)| c == case) {
                    Some((c, t)) => branch = Some((c, t)),
                    None => {
                        let tag_ty = &members.iter().find(|m| &m.name == tag).expect("checked").ty;
                        let in_enum = matches!(&self.entries[tag_ty.as_str()].kind,
                            Kind::Enum { values } if values.iter().any(|x| x.name == case));
                        if !in_enum {
                            unknown_branch = true;
                            r.unknown.push(Unknown {
                                path: format!("{path}/+{case}"),
                                kind: UnknownKind::Branch,
                            });
                        }
                    }
                }
            }
        }
        let branch_members = match branch {
            Some((_, t)) => match &self.entries[t].kind {
                Kind::Object { members, .. } => members.as_slice(),
                _ => &[],
            },
            None => &[],
        };
        if let Some((case, t)) = branch {
            self.warn(r, &format!("{path}/+{case}"), &self.entries[t].features);
        }
        for (k, x) in v {
            if let Some(m) = members.iter().find(|m| &m.name == k) {
                let p = format!("{path}/{k}");
                self.warn(r, &p, &m.features);
                if Some(k) == tag.as_ref() && (branch.is_some() || unknown_branch) {
                    // The branch stands for the tag's value.
                    continue;
                }
                self.value(&m.ty, x, &p, r);
            } else if let (Some((case, _)), Some(m)) =
                (branch, branch_members.iter().find(|m| &m.name == k))
            {
                let p = format!("{path}/+{case}/{k}");
                self.warn(r, &p, &m.features);
                self.value(&m.ty, x, &p, r);
            } else if !unknown_branch {
                r.unknown.push(Unknown {
                    path: match branch {
                        Some((case, _)) => format!("{path}/+{case}/{k}"),
                        None => format!("{path}/{k}"),
                    },
                    kind: UnknownKind::Member,
                });
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A schema shaped like QEMU's: a union with branches, an alternate,
    /// an array, deprecated parts, masked names.
    fn schema() -> Schema {
        Schema::from_value(&json!([
            {"name": "blockdev-add", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
            {"name": "query-x", "meta-type": "command", "arg-type": "1", "ret-type": "[5]",
             "features": ["unstable"]},
            {"name": "STOP", "meta-type": "event", "arg-type": "1"},
            {"name": "0", "meta-type": "object", "tag": "driver",
             "members": [{"name": "driver", "type": "2"},
                         {"name": "node-name", "type": "str", "default": null},
                         {"name": "cache", "type": "6", "default": null}],
             "variants": [{"case": "file", "type": "3"}, {"case": "null-co", "type": "1"}]},
            {"name": "1", "meta-type": "object", "members": []},
            {"name": "2", "meta-type": "enum", "values": ["file", "null-co", "nbd"]},
            {"name": "3", "meta-type": "object", "features": ["dynamic-auto-read-only"],
             "members": [
                {"name": "filename", "type": "str"},
                {"name": "aio", "type": "4", "default": null},
                {"name": "locking", "type": "str", "default": null, "features": ["deprecated"]}]},
            {"name": "4", "meta-type": "enum", "values": ["threads", "native", "io_uring"],
             "members": [{"name": "threads"}, {"name": "native", "features": ["deprecated"]},
                         {"name": "io_uring"}]},
            {"name": "[5]", "meta-type": "array", "element-type": "5"},
            {"name": "5", "meta-type": "object", "members": [
                {"name": "tls", "type": "7"}]},
            {"name": "6", "meta-type": "object", "members": [
                {"name": "direct", "type": "bool", "default": null}]},
            {"name": "7", "meta-type": "alternate", "members": [{"type": "str"}, {"type": "null"}]},
            {"name": "str", "meta-type": "builtin", "json-type": "string"},
            {"name": "bool", "meta-type": "builtin", "json-type": "boolean"},
            {"name": "null", "meta-type": "builtin", "json-type": "null"}
        ]))
        .unwrap()
    }

    #[test]
    fn paths() {
        let s = schema();
        // (path, whether it holds)
        let table: &[(&str, bool)] = &[
            ("blockdev-add", true),
            ("STOP", true),
            ("query-y", false),
            ("query-x/$unstable", true),
            ("blockdev-add/$unstable", false),
            ("blockdev-add/arg-type/driver/^nbd", true),
            ("blockdev-add/arg-type/driver/^vvfat", false),
            ("blockdev-add/arg-type/*node-name", true),
            ("blockdev-add/arg-type/*driver", false),
            ("blockdev-add/arg-type/driver", true),
            ("blockdev-add/arg-type/cache/direct/!boolean", true),
            ("blockdev-add/arg-type/cache/direct/!string", false),
            // Branch members only through their branch.
            ("blockdev-add/arg-type/filename", false),
            ("blockdev-add/arg-type/+file/filename/!string", true),
            ("blockdev-add/arg-type/+file/aio/^io_uring", true),
            ("blockdev-add/arg-type/+file/aio/^native/$deprecated", true),
            (
                "blockdev-add/arg-type/+file/aio/^threads/$deprecated",
                false,
            ),
            ("blockdev-add/arg-type/+file/locking/$deprecated", true),
            ("blockdev-add/arg-type/+file/$dynamic-auto-read-only", true),
            ("blockdev-add/arg-type/+nbd", false),
            ("blockdev-add/arg-type/+file/+file", false),
            // Arrays looked through, alternates tried branch by branch.
            ("query-x/ret-type/tls", true),
            ("query-x/ret-type/tls/!null", true),
            ("query-x/ret-type/tls/!string", true),
            ("query-x/ret-type/tls/!int", false),
            ("STOP/ret-type", false),
            ("STOP/arg-type", true),
        ];
        for (p, holds) in table {
            assert_eq!(s.query(p), Ok(*holds), "{p}");
        }
        assert_eq!(
            s.features("blockdev-add/arg-type/+file/locking").unwrap(),
            ["deprecated"]
        );
        assert_eq!(s.features("query-x").unwrap(), ["unstable"]);
        assert!(s.features("nothing/arg-type").unwrap().is_empty());
    }

    #[test]
    fn bad_paths_are_errors() {
        let s = schema();
        for (p, step, what) in [
            ("", 1, "empty step"),
            ("blockdev-add//x", 2, "empty step"),
            ("+file", 1, "starts with a command"),
            ("blockdev-add/driver", 2, "after a command or event"),
            ("blockdev-add/arg-type/driver/!text", 4, "unknown JSON type"),
            (
                "blockdev-add/arg-type/driver/!string/x",
                5,
                "nothing may follow",
            ),
            ("query-x/$unstable/$x", 3, "nothing may follow"),
            (
                "blockdev-add/arg-type/driver/^nbd/x",
                5,
                "only a '$feature'",
            ),
            ("blockdev-add/arg-type/^", 3, "needs an enum value"),
        ] {
            let e = s.query(p).unwrap_err();
            assert_eq!(e.step, step, "{p}: {e}");
            assert!(e.to_string().contains(what), "{p}: {e}");
        }
    }

    #[test]
    fn bad_schemas_say_where() {
        for (v, what) in [
            (json!({}), "not a list"),
            (
                json!([{"name": "a"}]),
                "entry 0 ('a'): no string 'meta-type'",
            ),
            (
                json!([{"name": "a", "meta-type": "thing"}]),
                "unknown meta-type 'thing'",
            ),
            (
                json!([{"name": "a", "meta-type": "command", "arg-type": "0", "ret-type": "0"}]),
                "'a' uses '0', which is not described",
            ),
            (
                json!([{"name": "0", "meta-type": "object", "members": [{"name": "m"}]}]),
                "member 'm': no string 'type'",
            ),
            (
                json!([{"name": "0", "meta-type": "enum", "values": []},
                       {"name": "0", "meta-type": "enum", "values": []}]),
                "described twice",
            ),
            (
                json!([{"name": "0", "meta-type": "object", "members": [], "tag": "t"}]),
                "tag 't' is not a member",
            ),
        ] {
            let e = Schema::from_value(&v).unwrap_err();
            assert!(e.contains(what), "{v}: {e}");
        }
    }

    #[test]
    fn check_names_every_unknown_part() {
        let s = schema();
        let r = s.check(
            "blockdev-add",
            Some(&json!({
                "driver": "file", "filename": "/x", "aio": "io_uring2",
                "locking": "on", "cache": {"direct": true, "no-flush": true},
                "discard": "unmap"
            })),
        );
        let unknown: Vec<String> = r.unknown.iter().map(|u| u.path.clone()).collect();
        assert_eq!(
            unknown,
            [
                "blockdev-add/arg-type/+file/aio/^io_uring2",
                "blockdev-add/arg-type/cache/no-flush",
                "blockdev-add/arg-type/+file/discard",
            ]
        );
        assert_eq!(r.unknown[0].kind, UnknownKind::Value);
        assert_eq!(r.unknown[1].kind, UnknownKind::Member);
        // Each unknown part is a path that does not hold.
        for u in &r.unknown {
            assert!(!s.query(&u.path).unwrap(), "{u}");
        }
        assert_eq!(
            r.warnings,
            [Warning {
                path: "blockdev-add/arg-type/+file/locking".into(),
                feature: "deprecated".into()
            }]
        );

        // A branch the server lacks, and one its tag enum has without
        // members.
        let r = s.check(
            "blockdev-add",
            Some(&json!({"driver": "vvfat", "dir": "/"})),
        );
        assert_eq!(
            r.unknown,
            [Unknown {
                path: "blockdev-add/arg-type/+vvfat".into(),
                kind: UnknownKind::Branch
            }]
        );
        assert!(s
            .check("blockdev-add", Some(&json!({"driver": "nbd"})))
            .unknown
            .is_empty());
        let r = s.check(
            "blockdev-add",
            Some(&json!({"driver": "file", "filename": "f",
                                                       "aio": "native"})),
        );
        assert!(r.unknown.is_empty());
        assert_eq!(
            r.warnings[0].path,
            "blockdev-add/arg-type/+file/aio/^native"
        );

        // Commands, JSON types, alternates.
        let r = s.check("blockdev-mirror", None);
        assert_eq!(r.unknown[0].kind, UnknownKind::Command);
        let r = s.check(
            "blockdev-add",
            Some(&json!({"driver": "null-co", "node-name": 3})),
        );
        assert_eq!(r.unknown[0].path, "blockdev-add/arg-type/node-name/!int");
        let r = s.check("query-x", None);
        assert!(r.unknown.is_empty());
        assert_eq!(r.warnings[0].path, "query-x");
    }
}
