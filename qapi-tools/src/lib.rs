//! The core of `qmp-shell`, without a terminal: reading a command line
//! (`command key=value …`, dotted keys for nested members, or a whole
//! JSON request), turning values into the JSON the argument's type wants,
//! checking arguments against the server's own schema before anything is
//! sent, completion candidates, and `help` text from the schema's
//! documentation.
//!
//! What a server accepts comes from its `query-qmp-schema` answer, read
//! into the one model of it (`qapi_types::introspect::Schema`, the
//! clients' probing schema) and wrapped in a [`Catalog`], so checks are
//! right for whatever QEMU is on the other end.  Documentation, and which integers are sizes (`size=1G`), come
//! from the schema the bindings were generated from ([`Docs`]).

pub mod term;
pub mod verbose;

use std::collections::BTreeMap;
use std::sync::Arc;

use qapi_parser::{EntityKind, Schema, SectionKind};
use qapi_types::introspect::{self, Kind};
use serde_json::{Map, Value};

/// One argument or member as the server describes it.
pub use qapi_types::introspect::Member as MemberInfo;

/// Connect to `address`: a Unix socket path, or `HOST:PORT` when it is
/// not an existing path and ends in a port number.
pub fn connect(address: &str) -> Result<qapi_types::blocking::Qmp, qapi_types::Error> {
    use qapi_types::blocking::Qmp;
    let opts = qapi_types::Options::default();
    let tcp = !std::path::Path::new(address).exists()
        && address
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    if tcp {
        Qmp::connect_tcp(address, &opts)
    } else {
        Qmp::connect_unix_with(address, &opts)
    }
}

/// The guest agent's commands: the bindings' guest-agent schema
/// (`qapi_types::qga::SCHEMA_INFO`, resolved for a POSIX host, the
/// agent having no `query-qmp-schema`), keeping the commands the
/// agent's `guest-info` answer lists as enabled.
pub fn agent_catalog(guest_info: &Value) -> Catalog {
    let all: Value =
        serde_json::from_str(qapi_types::qga::SCHEMA_INFO).unwrap_or(Value::Array(Vec::new()));
    let resolved = qapi_types::introspect::resolve(&all, &|c| c != "CONFIG_WIN32");
    let enabled: Vec<&str> = guest_info["supported_commands"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["enabled"] == true)
        .filter_map(|c| c["name"].as_str())
        .collect();
    let kept: Vec<Value> = resolved
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["meta-type"] != "command" || e["name"].as_str().is_some_and(|n| enabled.contains(&n))
        })
        .cloned()
        .collect();
    Catalog::new(&Value::Array(kept))
}

/// The server's schema, from its `query-qmp-schema` answer: the model
/// and its commands, sorted, for completion and checks.
#[derive(Default)]
pub struct Catalog {
    schema: Arc<introspect::Schema>,
    commands: Vec<String>,
}

impl Catalog {
    /// Index a `query-qmp-schema` answer.  A list that does not read as
    /// one gives an empty catalog ([`Catalog::try_new`] says why).
    pub fn new(schema_info: &Value) -> Catalog {
        Catalog::try_new(schema_info).unwrap_or_default()
    }

    /// Index a `query-qmp-schema` answer, or say why it does not read.
    pub fn try_new(schema_info: &Value) -> Result<Catalog, String> {
        // Read, not checked: the lookups pass over types that are not
        // described, and a list made from the bindings may have some.
        introspect::Schema::parse(schema_info).map(|s| Catalog::from_schema(Arc::new(s)))
    }

    /// A schema already read (a client's `schema()`).
    pub fn from_schema(schema: Arc<introspect::Schema>) -> Catalog {
        let mut commands: Vec<String> = schema.commands().map(str::to_string).collect();
        commands.sort();
        Catalog { schema, commands }
    }

    /// The schema.
    pub fn schema(&self) -> &introspect::Schema {
        &self.schema
    }

    /// The server's commands, sorted.
    pub fn commands(&self) -> &[String] {
        &self.commands
    }

    /// The command's argument type name.
    pub fn arg_type(&self, command: &str) -> Option<&str> {
        self.schema.command(command).map(|c| c.arg_type.as_str())
    }

    /// The members of object type `ty`, with the branch chosen by the
    /// tag's value in `value` (when it has one).
    pub fn members(&self, ty: &str, value: Option<&Map<String, Value>>) -> Vec<MemberInfo> {
        let Some(o) = self.schema.object(ty) else {
            return Vec::new();
        };
        let mut out = o.members.clone();
        let case = o
            .tag
            .as_ref()
            .zip(value)
            .and_then(|(tag, value)| value.get(tag))
            .and_then(Value::as_str);
        if let Some(b) = case.and_then(|c| o.variant(c)) {
            out.extend(self.members(&b.ty, None));
        }
        out
    }

    /// The argument names of `command` (for completion).
    pub fn argument_names(&self, command: &str) -> Vec<MemberInfo> {
        self.arg_type(command)
            .map(|t| self.members(t, None))
            .unwrap_or_default()
    }

    /// A type as a person reads it: `int`, `str`, `bool`, `one of a|b`,
    /// `object`, `list of …`.
    pub fn describe(&self, ty: &str) -> String {
        let Some(kind) = self.schema.kind(ty) else {
            return ty.to_string();
        };
        match kind {
            Kind::Builtin(b) => match b.json_type.as_str() {
                "string" => "str".into(),
                "boolean" => "bool".into(),
                "value" => "any".into(),
                other => other.into(),
            },
            Kind::Enum(e) => {
                let values: Vec<&str> = e.names().collect();
                if values.len() <= 8 {
                    format!("one of {}", values.join("|"))
                } else {
                    format!(
                        "one of {}|… ({} values)",
                        values[..8].join("|"),
                        values.len()
                    )
                }
            }
            Kind::Array(a) => format!("list of {}", self.describe(&a.element_type)),
            Kind::Alternate(a) => {
                let alts: Vec<String> = a.branches.iter().map(|t| self.describe(t)).collect();
                alts.join(" or ")
            }
            Kind::Object(_) => "object (JSON)".into(),
            other => other.meta_type().into(),
        }
    }

    fn signature(&self, ty: &str, value: Option<&Map<String, Value>>) -> String {
        let parts: Vec<String> = self
            .members(ty, value)
            .iter()
            .map(|m| {
                format!(
                    "{}{}: {}",
                    m.name,
                    if m.optional { "?" } else { "" },
                    self.describe(&m.ty)
                )
            })
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }

    /// Check `value` against type `ty`; `path` names it in messages.
    pub fn check(&self, value: &Value, ty: &str, path: &str) -> Result<(), String> {
        let expected = || format!("{path}: expected {}, got {value}", self.describe(ty));
        match self.schema.kind(ty) {
            Some(Kind::Builtin(b)) => {
                if b.takes(value) {
                    Ok(())
                } else {
                    let hint = if value.as_str().is_some_and(|v| parse_int(v, true).is_some()) {
                        " (size suffixes such as 1G are for members of type size only)"
                    } else {
                        ""
                    };
                    Err(format!("{}{hint}", expected()))
                }
            }
            Some(Kind::Enum(e)) => match value.as_str() {
                Some(s) if e.contains(s) => Ok(()),
                _ => Err(expected()),
            },
            Some(Kind::Array(a)) => {
                let Some(items) = value.as_array() else {
                    return Err(expected());
                };
                for (i, item) in items.iter().enumerate() {
                    self.check(item, &a.element_type, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            Some(Kind::Alternate(a)) => {
                let mut first_err = None;
                for b in &a.branches {
                    match self.check(value, b, path) {
                        Ok(()) => return Ok(()),
                        Err(e) => {
                            first_err.get_or_insert(e);
                        }
                    }
                }
                Err(first_err.unwrap_or_else(|| format!("{path}: no alternative fits {value}")))
            }
            Some(Kind::Object(_)) => {
                let Some(map) = value.as_object() else {
                    return Err(format!("{path}: expected an object, got {value}"));
                };
                let members = self.members(ty, Some(map));
                for (k, v) in map {
                    match members.iter().find(|m| &m.name == k) {
                        Some(m) => self.check(v, &m.ty, &join(path, k))?,
                        None => {
                            return Err(format!(
                                "{}: unknown {}; expected: {}",
                                join(path, k),
                                if path.contains('.') || path.contains('[') {
                                    "member"
                                } else {
                                    "argument"
                                },
                                self.signature(ty, Some(map))
                            ))
                        }
                    }
                }
                for m in members.iter().filter(|m| !m.optional) {
                    if !map.contains_key(&m.name) {
                        return Err(format!(
                            "{}: missing, expected {}",
                            join(path, &m.name),
                            self.describe(&m.ty)
                        ));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn join(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

/// The schema the bindings were generated from: documentation, and the
/// real integer types (which are sizes).
pub struct Docs {
    schema: Schema,
}

impl Docs {
    pub fn new(schema: Schema) -> Docs {
        Docs { schema }
    }

    /// The QMP schema the bindings were generated from, embedded in
    /// `qapi-types` (feature `schema-source`), read leniently (its
    /// documentation may follow another release's rules).
    pub fn embedded_qmp() -> Result<Docs, String> {
        Docs::embedded("qapi/qapi-schema.json")
    }

    /// The guest-agent schema the bindings were generated from.
    pub fn embedded_qga() -> Result<Docs, String> {
        Docs::embedded("qga/qapi-schema.json")
    }

    fn embedded(main: &str) -> Result<Docs, String> {
        let load = |p: &std::path::Path| -> std::io::Result<Vec<u8>> {
            let path = p.to_string_lossy();
            qapi_types::schema_source::file(&path)
                .map(|text| text.as_bytes().to_vec())
                .ok_or_else(|| std::io::ErrorKind::NotFound.into())
        };
        let options = qapi_parser::Options {
            rules: qapi_parser::Rules::Lenient,
        };
        Schema::from_file_with(std::path::Path::new(main), options, &load)
            .map(Docs::new)
            .map_err(|f| f.render())
    }

    /// Whether the member at `path` (argument names, then member names)
    /// of `command` has QAPI type `size`.
    pub fn is_size(&self, command: &str, path: &[&str]) -> bool {
        let s = &self.schema;
        let Some(id) = s.lookup(command) else {
            return false;
        };
        let EntityKind::Command(c) = &s.entity(id).kind else {
            return false;
        };
        self.is_size_in(c.arg_type, path)
    }

    /// Whether the member at `path` of a `transaction` action's data has
    /// QAPI type `size`.
    pub fn is_size_in_action(&self, action: &str, path: &[&str]) -> bool {
        let s = &self.schema;
        let Some(EntityKind::Object(o)) = s.lookup("TransactionAction").map(|i| &s.entity(i).kind)
        else {
            return false;
        };
        let wrapper = o
            .branches
            .iter()
            .flat_map(|b| &b.variants)
            .find(|v| v.name == action)
            .map(|v| v.ty);
        let mut full = vec!["data"];
        full.extend_from_slice(path);
        self.is_size_in(wrapper, &full)
    }

    fn is_size_in(&self, mut ty: Option<qapi_parser::EntityId>, path: &[&str]) -> bool {
        let s = &self.schema;
        for (i, key) in path.iter().enumerate() {
            let Some(t) = ty else { return false };
            let EntityKind::Object(o) = &s.entity(t).kind else {
                return false;
            };
            let mut found = o.members.iter().find(|m| m.name == *key).map(|m| m.ty);
            if found.is_none() {
                // A branch's member.
                for v in o.branches.iter().flat_map(|b| &b.variants) {
                    if let EntityKind::Object(bo) = &s.entity(v.ty).kind {
                        if let Some(m) = bo.members.iter().find(|m| m.name == *key) {
                            found = Some(m.ty);
                            break;
                        }
                    }
                }
            }
            let Some(f) = found else { return false };
            if i + 1 == path.len() {
                return s.entity(f).name == "size";
            }
            ty = Some(f);
        }
        false
    }

    /// `help COMMAND`: its documentation, arguments, return type, errors,
    /// since, and whether it is deprecated.
    pub fn help(&self, command: &str) -> Option<String> {
        let s = &self.schema;
        let id = s.lookup(command)?;
        let e = s.entity(id);
        let EntityKind::Command(c) = &e.kind else {
            return None;
        };
        let mut out = format!("{command}\n");
        let doc = s.doc_of(id);
        if let Some(d) = doc {
            push_text(&mut out, d.body(), "  ");
        }
        let described = |name: &str| -> String {
            doc.and_then(|d| {
                d.sections.iter().find(|sec| {
                    sec.kind == SectionKind::Member && sec.name.as_deref() == Some(name)
                })
            })
            .map(|sec| sec.text.clone())
            .unwrap_or_default()
        };
        match c.arg_type.map(|a| &s.entity(a).kind) {
            Some(EntityKind::Object(o)) if !o.members.is_empty() => {
                out.push_str("\nArguments:\n");
                for m in &o.members {
                    out.push_str(&format!(
                        "  {}{}: {}\n",
                        m.name,
                        if m.optional { " (optional)" } else { "" },
                        s.entity(m.ty).name
                    ));
                    push_text(&mut out, &described(&m.name), "      ");
                }
            }
            Some(_) if c.boxed => {
                let name = &s.entity(c.arg_type.expect("checked")).name;
                out.push_str(&format!("\nArguments: the members of {name}\n"));
            }
            _ => out.push_str("\nArguments: none\n"),
        }
        match c.ret_type {
            Some(r) => out.push_str(&format!("\nReturns: {}\n", s.entity(r).name)),
            None => out.push_str("\nReturns: nothing\n"),
        }
        if let Some(d) = doc {
            for sec in &d.sections {
                let label = match sec.kind {
                    SectionKind::Returns => "Returns",
                    SectionKind::Errors => "Errors",
                    SectionKind::Since => "Since",
                    _ => continue,
                };
                out.push_str(&format!("{label}:\n"));
                push_text(&mut out, &sec.text, "  ");
            }
        }
        let flags: Vec<&str> = e.features.iter().map(|f| f.name.as_str()).collect();
        if flags.contains(&"deprecated") {
            out.push_str("\nDeprecated.\n");
        }
        if flags.contains(&"unstable") {
            out.push_str("\nUnstable.\n");
        }
        if c.allow_oob {
            out.push_str("\nMay run out of band.\n");
        }
        Some(out)
    }
}

fn push_text(out: &mut String, text: &str, indent: &str) {
    for line in text.lines() {
        if line.trim().is_empty() {
            out.push('\n');
        } else {
            out.push_str(indent);
            out.push_str(line);
            out.push('\n');
        }
    }
}

/// Split a command line into words at spaces outside quotes and
/// brackets, so `opts={"a": 1}` stays one word.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let (mut depth, mut quote) = (0i32, None::<char>);
    let mut escaped = false;
    for ch in line.chars() {
        if let Some(q) = quote {
            cur.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            '"' | '\'' => {
                quote = Some(ch);
                cur.push(ch);
            }
            '{' | '[' => {
                depth += 1;
                cur.push(ch);
            }
            '}' | ']' => {
                depth -= 1;
                cur.push(ch);
            }
            c if c.is_whitespace() && depth <= 0 => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err("a quote is not closed".into());
    }
    if depth != 0 {
        return Err("brackets do not balance".into());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

/// Parse an integer, with a size suffix (K, M, G, T, P, E: powers of
/// 1024) when `size`.
fn parse_int(text: &str, size: bool) -> Option<Value> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(i.into());
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(u.into());
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(Value::from);
    }
    if size {
        let (num, suffix) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
        let shift = match suffix.to_ascii_uppercase().trim_end_matches('B') {
            "K" => 10,
            "M" => 20,
            "G" => 30,
            "T" => 40,
            "P" => 50,
            "E" => 60,
            _ => return None,
        };
        let n: f64 = num.parse().ok()?;
        let v = n * (1u64 << shift) as f64;
        if v >= 0.0 && v <= u64::MAX as f64 && v.fract() == 0.0 {
            return Some((v as u64).into());
        }
    }
    None
}

/// A `key=value` word's value as the JSON the type `ty` wants.
fn convert(catalog: &Catalog, text: &str, ty: &str, size: bool) -> Value {
    let unquoted = || {
        let t = text.trim();
        if t.len() >= 2
            && ((t.starts_with('\'') && t.ends_with('\''))
                || (t.starts_with('"') && t.ends_with('"')))
        {
            t[1..t.len() - 1].to_string()
        } else {
            t.to_string()
        }
    };
    match catalog.schema.kind(ty) {
        Some(Kind::Builtin(b)) => match b.json_type.as_str() {
            "int" => parse_int(text, size).unwrap_or_else(|| Value::String(unquoted())),
            "number" => text
                .parse::<f64>()
                .ok()
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                .unwrap_or_else(|| Value::String(unquoted())),
            "boolean" => match text {
                "true" | "on" | "yes" => Value::Bool(true),
                "false" | "off" | "no" => Value::Bool(false),
                _ => Value::String(unquoted()),
            },
            "null" if text == "null" => Value::Null,
            "string" => Value::String(unquoted()),
            _ => serde_json::from_str(text).unwrap_or_else(|_| Value::String(unquoted())),
        },
        Some(Kind::Enum(_)) => Value::String(unquoted()),
        Some(Kind::Alternate(_)) => {
            // A JSON value when it reads as one, else a string.
            match serde_json::from_str::<Value>(text) {
                Ok(v) if catalog.check(&v, ty, "").is_ok() => v,
                _ => {
                    let s = Value::String(unquoted());
                    if catalog.check(&s, ty, "").is_ok() {
                        return s;
                    }
                    parse_int(text, size).unwrap_or(s)
                }
            }
        }
        _ => serde_json::from_str(text).unwrap_or_else(|_| Value::String(unquoted())),
    }
}

/// A request read from a line.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub command: String,
    pub arguments: Option<Value>,
}

/// Read `command key=value …` (dotted keys build nested objects) or a
/// JSON request `{"execute": …, "arguments": …}`, and check it against
/// the server's schema.
pub fn parse_request(
    catalog: &Catalog,
    docs: Option<&Docs>,
    line: &str,
) -> Result<Request, String> {
    let line = line.trim();
    if line.starts_with('{') {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("broken JSON: {e}"))?;
        let command = v["execute"]
            .as_str()
            .or_else(|| v["exec-oob"].as_str())
            .ok_or("a JSON request needs \"execute\"")?
            .to_string();
        let arguments = v.get("arguments").cloned();
        check_request(catalog, &command, arguments.as_ref())?;
        return Ok(Request { command, arguments });
    }
    let words = split_words(line)?;
    let Some((command, rest)) = words.split_first() else {
        return Err("empty line".into());
    };
    let pairs: Vec<(Vec<&str>, &str)> = rest
        .iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("'{w}' is not key=value"))?;
            if k.is_empty() {
                return Err(format!("'{w}' has no key"));
            }
            Ok((k.split('.').collect(), v))
        })
        .collect::<Result<_, String>>()?;
    let Some(arg_type) = catalog.arg_type(command) else {
        return Err(format!(
            "unknown command '{command}' (`help` lists the commands)"
        ));
    };
    // Build the tree with the value texts, then convert each leaf by its
    // member's type (looked up with the tree built so far, so union
    // branches chosen by a tag are found).
    let mut tree = Map::new();
    for (path, text) in &pairs {
        insert(&mut tree, path, Value::String((*text).to_string()))?;
    }
    let mut out = Map::new();
    for (path, text) in &pairs {
        let ty = type_at(catalog, arg_type, &tree, path).ok_or_else(|| {
            format!(
                "{command}: unknown argument '{}'; expected: {}",
                path.join("."),
                catalog.signature(arg_type, Some(&tree))
            )
        })?;
        let size = docs.is_some_and(|d| d.is_size(command, path));
        insert(&mut out, path, convert(catalog, text, &ty, size))?;
    }
    let arguments = (!out.is_empty()).then_some(Value::Object(out));
    check_request(catalog, command, arguments.as_ref())?;
    Ok(Request {
        command: command.clone(),
        arguments,
    })
}

fn insert(map: &mut Map<String, Value>, path: &[&str], value: Value) -> Result<(), String> {
    let (last, parents) = path.split_last().expect("a key");
    let mut cur = map;
    for p in parents {
        let next = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        cur = next
            .as_object_mut()
            .ok_or_else(|| format!("'{p}' is given a value and members"))?;
    }
    if cur.contains_key(*last) {
        return Err(format!("'{}' is given twice", path.join(".")));
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

/// The type of the member at `path` under object type `ty`.
fn type_at(
    catalog: &Catalog,
    ty: &str,
    tree: &Map<String, Value>,
    path: &[&str],
) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let m = catalog
        .members(ty, Some(tree))
        .into_iter()
        .find(|m| m.name == *first)?;
    if rest.is_empty() {
        return Some(m.ty);
    }
    let sub = tree.get(*first)?.as_object()?;
    type_at(catalog, &m.ty, sub, rest)
}

fn check_request(
    catalog: &Catalog,
    command: &str,
    arguments: Option<&Value>,
) -> Result<(), String> {
    let arg_type = catalog
        .arg_type(command)
        .ok_or_else(|| format!("unknown command '{command}' (`help` lists the commands)"))?;
    let empty = Value::Object(Map::new());
    catalog.check(arguments.unwrap_or(&empty), arg_type, command)
}

/// Completion candidates for `line` up to the cursor: command names for
/// the first word, `name=` for the command's arguments after it.
/// Returns where the completed word starts.
pub fn complete(catalog: &Catalog, extra: &[&str], line: &str) -> (usize, Vec<String>) {
    let start = line.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &line[start..];
    let first = line[..start].split_whitespace().next();
    let mut out: Vec<String> = match first {
        None => catalog
            .commands()
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
            .filter(|c| c.starts_with(word))
            .map(str::to_string)
            .collect(),
        Some("help") => catalog
            .commands()
            .iter()
            .filter(|c| c.starts_with(word))
            .cloned()
            .collect(),
        Some(cmd) => {
            if word.contains('=') {
                Vec::new()
            } else {
                let given: Vec<&str> = line[..start]
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|w| w.split_once('=').map(|(k, _)| k))
                    .collect();
                catalog
                    .argument_names(cmd)
                    .into_iter()
                    .filter(|m| m.name.starts_with(word) && !given.contains(&m.name.as_str()))
                    .map(|m| format!("{}=", m.name))
                    .collect()
            }
        }
    };
    out.sort();
    out.dedup();
    (start, out)
}

/// A `transaction`'s actions, as `type key=value …` lines: the action
/// type is a branch of `TransactionAction`, its members are checked like
/// arguments.
pub fn parse_action(catalog: &Catalog, docs: Option<&Docs>, line: &str) -> Result<Value, String> {
    let words = split_words(line)?;
    let Some((kind, rest)) = words.split_first() else {
        return Err("empty action".into());
    };
    // Check through the transaction command's own types: one action.
    let arg_type = catalog
        .arg_type("transaction")
        .ok_or("this server has no transaction command")?;
    let actions_ty = catalog
        .members(arg_type, None)
        .into_iter()
        .find(|m| m.name == "actions")
        .map(|m| m.ty)
        .ok_or("the transaction command has no actions")?;
    let action_ty = catalog
        .schema
        .array(&actions_ty)
        .map(|a| a.element_type.clone())
        .unwrap_or_default();
    let probe: Map<String, Value> = [("type".to_string(), Value::String(kind.clone()))]
        .into_iter()
        .collect();
    let members = catalog.members(&action_ty, Some(&probe));
    let data_ty = members
        .iter()
        .find(|m| m.name == "data")
        .map(|m| m.ty.clone())
        .ok_or_else(|| {
            format!(
                "unknown action '{kind}'; expected: {}",
                catalog.describe(
                    &members
                        .iter()
                        .find(|m| m.name == "type")
                        .map(|m| m.ty.clone())
                        .unwrap_or_default()
                )
            )
        })?;
    let mut tree = Map::new();
    let pairs = split_pairs(rest)?;
    for (path, text) in &pairs {
        insert(&mut tree, path, Value::String((*text).to_string()))?;
    }
    let mut data = Map::new();
    for (path, text) in &pairs {
        let ty = type_at(catalog, &data_ty, &tree, path)
            .ok_or_else(|| format!("{kind}: unknown member '{}'", path.join(".")))?;
        let size = docs.is_some_and(|d| d.is_size_in_action(kind, path));
        insert(&mut data, path, convert(catalog, text, &ty, size))?;
    }
    let data = Value::Object(data);
    catalog.check(&data, &data_ty, kind)?;
    let mut action = Map::new();
    action.insert("type".into(), Value::String(kind.clone()));
    action.insert("data".into(), data);
    Ok(Value::Object(action))
}

fn split_pairs(words: &[String]) -> Result<Vec<(Vec<&str>, &str)>, String> {
    words
        .iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("'{w}' is not key=value"))?;
            Ok((k.split('.').collect(), v))
        })
        .collect()
}

/// A short one-line summary of each command for `help` without a name.
pub fn command_list(catalog: &Catalog) -> String {
    let mut by_prefix: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in catalog.commands() {
        let prefix = c.split(['-', '_']).next().unwrap_or(c);
        by_prefix.entry(prefix).or_default().push(c);
    }
    let mut out = String::new();
    for names in by_prefix.values() {
        out.push_str(&names.join("  "));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> Catalog {
        Catalog::new(&json!([
            {"name": "blockdev-add", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
            {"name": "stop", "meta-type": "command", "arg-type": "1", "ret-type": "1"},
            {"name": "0", "meta-type": "object", "tag": "driver",
             "members": [{"name": "driver", "type": "2"}, {"name": "node-name", "type": "str", "default": null},
                         {"name": "read-only", "type": "bool", "default": null}],
             "variants": [{"case": "null-co", "type": "3"}]},
            {"name": "1", "meta-type": "object", "members": []},
            {"name": "2", "meta-type": "enum", "values": ["file", "null-co"]},
            {"name": "3", "meta-type": "object", "members": [{"name": "size", "type": "int", "default": null}]},
            {"name": "str", "meta-type": "builtin", "json-type": "string"},
            {"name": "int", "meta-type": "builtin", "json-type": "int"},
            {"name": "bool", "meta-type": "builtin", "json-type": "boolean"}
        ]))
    }

    #[test]
    fn key_values_follow_the_schema() {
        let c = catalog();
        let r = parse_request(
            &c,
            None,
            "blockdev-add driver=null-co node-name=n0 size=4096 read-only=on",
        )
        .unwrap();
        assert_eq!(
            r.arguments.unwrap(),
            json!({"driver": "null-co", "node-name": "n0", "size": 4096, "read-only": true})
        );
        let e = parse_request(&c, None, "blockdev-add driver=null-co bogus=1").unwrap_err();
        assert!(
            e.contains("unknown argument 'bogus'") && e.contains("node-name?: str"),
            "{e}"
        );
        let e = parse_request(&c, None, "blockdev-add node-name=x").unwrap_err();
        assert!(
            e.contains("driver: missing, expected one of file|null-co"),
            "{e}"
        );
        let e = parse_request(&c, None, "blockdev-add driver=nope").unwrap_err();
        assert!(e.contains("expected one of file|null-co"), "{e}");
        let e = parse_request(&c, None, "blockdev-add driver=null-co size=big").unwrap_err();
        assert!(e.contains("expected int"), "{e}");
        assert!(parse_request(&c, None, "nosuch")
            .unwrap_err()
            .contains("unknown command"));
        assert!(parse_request(&c, None, "{\"execute\": ")
            .unwrap_err()
            .contains("broken JSON"));
        assert_eq!(
            parse_request(&c, None, "{\"execute\": \"stop\"}")
                .unwrap()
                .command,
            "stop"
        );
    }

    #[test]
    fn sizes_and_words() {
        assert_eq!(parse_int("1G", true), Some(json!(1u64 << 30)));
        assert_eq!(parse_int("1.5K", true), Some(json!(1536)));
        assert_eq!(parse_int("1G", false), None);
        assert_eq!(
            split_words("a b={\"x\": [1, 2]} c='d e'").unwrap(),
            ["a", "b={\"x\": [1, 2]}", "c='d e'"]
        );
        assert!(split_words("a {").is_err());
    }

    #[test]
    fn completion() {
        let c = catalog();
        assert_eq!(complete(&c, &["help"], "st"), (0, vec!["stop".to_string()]));
        let (start, words) = complete(&c, &[], "blockdev-add driver=file n");
        assert_eq!((start, words), (25, vec!["node-name=".to_string()]));
    }

    #[test]
    fn lists_alternates_and_bad_schemas() {
        let c = Catalog::new(&json!([
            {"name": "x", "meta-type": "command", "arg-type": "0", "ret-type": "0"},
            {"name": "0", "meta-type": "object", "members": [
                {"name": "l", "type": "[1]", "default": null},
                {"name": "a", "type": "2", "default": null}]},
            {"name": "[1]", "meta-type": "array", "element-type": "1"},
            {"name": "1", "meta-type": "builtin", "json-type": "int"},
            {"name": "2", "meta-type": "alternate", "members": [{"type": "1"}, {"type": "3"}]},
            {"name": "3", "meta-type": "builtin", "json-type": "string"}
        ]));
        assert_eq!(c.describe("2"), "int or str");
        assert_eq!(c.describe("[1]"), "list of int");
        let e = parse_request(
            &c,
            None,
            "{\"execute\": \"x\", \"arguments\": {\"l\": [1, \"two\"]}}",
        )
        .unwrap_err();
        assert_eq!(e, "x.l[1]: expected int, got \"two\"");
        let r = parse_request(&c, None, "x a=7 l=[3]").unwrap();
        assert_eq!(r.arguments.unwrap(), json!({"a": 7, "l": [3]}));
        let r = parse_request(&c, None, "x a=seven").unwrap();
        assert_eq!(r.arguments.unwrap(), json!({"a": "seven"}));
        let e = Catalog::try_new(&json!([{"name": "y"}])).err().unwrap();
        assert!(e.contains("no string 'meta-type'"), "{e}");
        assert!(Catalog::new(&json!({})).commands().is_empty());
    }
}
