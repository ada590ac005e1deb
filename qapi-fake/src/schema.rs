//! The schema the fake checks requests against, in its introspection form
//! (the `SchemaInfo` list `query-qmp-schema` returns, read into the one
//! model of it, `qapi_types::introspect::Schema`), and the checks
//! themselves: what QEMU's QMP input visitor (`qapi/qobject-input-visitor.c`
//! and the generated visitors over it) says about the same arguments,
//! word for word.
//!
//! The introspection form keeps what the wire needs and loses two things
//! QEMU's messages use: the width and signedness of integers (every
//! integer type is `int` there) and the names of alternate types (masked
//! as numbers).  A non-number for a `uint64`/`size` member is therefore
//! answered as for an `int` member, and an alternate's wrong type names
//! the alternate as the introspection does, unless [`Schema::refine`]
//! put them back (kept beside the model, which stays QEMU's answer).

use std::collections::{HashMap, HashSet};

use qapi_types::introspect::{self, Entity, Kind, Member, ObjectInfo};
use qapi_types::QmpError;
use serde_json::{Map, Value};

pub use qapi_types::introspect::CommandInfo;

use crate::QmpErrorExt;

/// A schema in introspection form: the answer read into the one model of
/// it ([`introspect::Schema`]), the list itself (the fake's answer to
/// `query-qmp-schema`), and what [`Schema::refine`] put back.
#[derive(Clone, Debug)]
pub struct Schema {
    info: introspect::Schema,
    raw: Value,
    /// Per object type, its members whose integer type is not plain
    /// `int` (`uint64`, `int32`, …), by name.
    ints: HashMap<String, HashMap<String, &'static str>>,
    /// The alternates' names in the parsed schema.
    alternates: HashMap<String, String>,
}

/// A schema that could not be read: what and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SchemaError {}

/// The nesting QEMU's JSON parser allows (`MAX_NESTING`); deeper values
/// are refused before they are checked.
const MAX_DEPTH: usize = 1024;

/// Builtins QEMU always lists; a hand-made list may leave them out.
const BUILTINS: [(&str, &str); 6] = [
    ("int", "int"),
    ("number", "number"),
    ("str", "string"),
    ("bool", "boolean"),
    ("null", "null"),
    ("any", "value"),
];

impl Schema {
    /// Read a `SchemaInfo` list (conditions already resolved, as QEMU
    /// answers it).  Every type a command, event or type refers to must
    /// be defined in the list.
    pub fn from_introspection(list: &Value) -> Result<Schema, SchemaError> {
        let items = list
            .as_array()
            .ok_or_else(|| SchemaError("the schema is not a JSON array".into()))?;
        if let Some(i) = items.iter().position(|e| e.get("if").is_some()) {
            return Err(SchemaError(format!(
                "entry {i} still has a condition: resolve the schema first \
                 (qapi_types::introspect::resolve)"
            )));
        }
        let mut info = introspect::Schema::parse(list).map_err(SchemaError)?;
        for (n, j) in BUILTINS {
            if info.get(n).is_none() {
                info.insert(Entity {
                    name: n.into(),
                    features: Vec::new(),
                    kind: Kind::Builtin(introspect::BuiltinInfo {
                        json_type: j.into(),
                    }),
                });
            }
        }
        check_references(&info)?;
        Ok(Schema {
            info,
            raw: list.clone(),
            ints: HashMap::new(),
            alternates: HashMap::new(),
        })
    }

    /// The model of the list.
    pub fn info(&self) -> &introspect::Schema {
        &self.info
    }

    /// The list this schema was read from (what the fake answers to
    /// `query-qmp-schema`).
    pub fn introspection(&self) -> &Value {
        &self.raw
    }

    /// A command's entry.
    pub fn command(&self, name: &str) -> Option<&CommandInfo> {
        self.info.command(name)
    }

    /// The commands' names.
    pub fn command_names(&self) -> impl Iterator<Item = &str> {
        self.info.commands()
    }

    /// An event's argument type.
    pub fn event(&self, name: &str) -> Option<&str> {
        self.info.event(name).map(|e| e.arg_type.as_str())
    }

    /// A type's entry as the list has it (`meta-type`, `members`, …;
    /// [`Schema::info`] has it read).
    pub fn entry(&self, name: &str) -> Option<&Value> {
        self.raw.get(self.info.position(name)?)
    }

    /// Check a command's `arguments` (an object; `{}` when the request
    /// had none) as QEMU's generated marshaller does: the arguments'
    /// object visited with the QMP input visitor, then checked for
    /// members left over.
    pub fn check_arguments(
        &self,
        command: &str,
        args: &Map<String, Value>,
    ) -> Result<(), QmpError> {
        let info = self.command(command).ok_or_else(|| {
            QmpError::command_not_found(format!("The command {command} has not been found"))
        })?;
        let wrapped = Value::Object(args.clone());
        Visitor {
            schema: self,
            path: Vec::new(),
            depth: 0,
        }
        .visit(&info.arg_type, None, Some(&wrapped), None)
    }

    /// Check a value (a command's return, an event's data) against type
    /// `ty`, with the same rules as arguments.
    pub fn check_value(&self, ty: &str, value: &Value) -> Result<(), QmpError> {
        Visitor {
            schema: self,
            path: Vec::new(),
            depth: 0,
        }
        .visit(ty, None, Some(value), None)
    }

    /// Put back what the introspection form lost, from the schema the
    /// introspection was made of: which integer members are unsigned or
    /// narrower than 64 bits (QEMU's messages for them differ:
    /// `Parameter 'size' expects uint64`), and the alternates' names
    /// (`expected: BlockdevRef`).  The two are walked side by side from
    /// each command and event, by member and branch names; what does not
    /// match is left as it is.
    pub fn refine(&mut self, parsed: &qapi_parser::Schema) {
        use qapi_parser::EntityKind;
        let mut seen = HashSet::new();
        for e in &parsed.entities {
            let (intro, pid) = match &e.kind {
                EntityKind::Command(c) => {
                    (self.info.command(&e.name).map(|c| &c.arg_type), c.arg_type)
                }
                EntityKind::Event(ev) => {
                    (self.info.event(&e.name).map(|e| &e.arg_type), ev.arg_type)
                }
                _ => continue,
            };
            if let (Some(intro), Some(pid)) = (intro, pid) {
                refine_walk(
                    &self.info,
                    parsed,
                    intro,
                    pid,
                    &mut seen,
                    &mut self.ints,
                    &mut self.alternates,
                );
            }
        }
    }
}

/// Every type reachable from a command or event must be defined (an
/// unreachable array whose element was left out by a condition is
/// harmless, and `resolve` may leave one).
fn check_references(info: &introspect::Schema) -> Result<(), SchemaError> {
    let mut todo: Vec<(&str, String)> = Vec::new();
    for e in info.entities() {
        let whose = match &e.kind {
            Kind::Command(_) => format!("command '{}'", e.name),
            Kind::Event(_) => format!("event '{}'", e.name),
            _ => continue,
        };
        todo.extend(e.kind.references().into_iter().map(|t| (t, whose.clone())));
    }
    let mut seen = HashSet::new();
    while let Some((t, whose)) = todo.pop() {
        if !seen.insert(t) {
            continue;
        }
        let e = info
            .get(t)
            .ok_or_else(|| SchemaError(format!("{whose} refers to undefined type '{t}'")))?;
        let whose = format!("type '{t}'");
        todo.extend(e.kind.references().into_iter().map(|r| (r, whose.clone())));
    }
    Ok(())
}

/// [`Schema::refine`]'s walk: the introspection's type `intro` beside
/// the parsed schema's `pid`.
fn refine_walk<'a>(
    info: &'a introspect::Schema,
    parsed: &qapi_parser::Schema,
    intro: &'a str,
    pid: qapi_parser::EntityId,
    seen: &mut HashSet<&'a str>,
    ints: &mut HashMap<String, HashMap<String, &'static str>>,
    alternates: &mut HashMap<String, String>,
) {
    use qapi_parser::EntityKind;
    if !seen.insert(intro) {
        return;
    }
    let Some(kind) = info.kind(intro) else {
        return;
    };
    let pe = parsed.entity(pid);
    // A member's integer kind (its own, or its array's elements')
    // when it is not plain int64.
    let int_kind = |id: qapi_parser::EntityId| -> Option<&'static str> {
        let id = match &parsed.entity(id).kind {
            EntityKind::Array(a) => a.element,
            _ => id,
        };
        match &parsed.entity(id).kind {
            EntityKind::Builtin(b) => qapi_parser::Builtin::ALL
                .iter()
                .find(|(_, x)| x == b)
                .map(|(n, _)| *n)
                .filter(|n| {
                    matches!(
                        *n,
                        "int8"
                            | "int16"
                            | "int32"
                            | "uint8"
                            | "uint16"
                            | "uint32"
                            | "uint64"
                            | "size"
                    )
                }),
            _ => None,
        }
    };
    match (&pe.kind, kind) {
        (EntityKind::Object(o), Kind::Object(io)) => {
            for m in &io.members {
                let Some(pm) = o.members.iter().find(|pm| pm.name == m.name) else {
                    continue;
                };
                if let Some(k) = int_kind(pm.ty) {
                    ints.entry(intro.to_string())
                        .or_default()
                        .insert(m.name.clone(), k);
                }
                refine_walk(info, parsed, &m.ty, pm.ty, seen, ints, alternates);
            }
            if let Some(b) = &o.branches {
                for v in &io.variants {
                    if let Some(pv) = b.variants.iter().find(|pv| pv.name == v.case) {
                        refine_walk(info, parsed, &v.ty, pv.ty, seen, ints, alternates);
                    }
                }
            }
        }
        (EntityKind::Array(a), Kind::Array(ia)) => {
            refine_walk(
                info,
                parsed,
                &ia.element_type,
                a.element,
                seen,
                ints,
                alternates,
            );
        }
        (EntityKind::Alternate(a), Kind::Alternate(ia)) => {
            alternates.insert(intro.to_string(), pe.name.clone());
            for t in &ia.branches {
                let same = a.variants.iter().find(|v| {
                    matches!(
                        (&parsed.entity(v.ty).kind, info.kind(t)),
                        (EntityKind::Object(_), Some(Kind::Object(_)))
                            | (EntityKind::Array(_), Some(Kind::Array(_)))
                    )
                });
                if let Some(v) = same {
                    refine_walk(info, parsed, t, v.ty, seen, ints, alternates);
                }
            }
        }
        _ => {}
    }
}

/// A step of the visitor's stack, for `full_name()`.
#[derive(Clone)]
enum Seg {
    Member(String),
    Index(usize),
}

struct Visitor<'a> {
    schema: &'a Schema,
    /// The containers entered: each with the segment that names the
    /// value being visited in it.
    path: Vec<Seg>,
    depth: usize,
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl<'a> Visitor<'a> {
    /// QEMU's `full_name(qiv, name)`: the members and indexes from the
    /// arguments' object down, `a.b[2].c`; `<anonymous>` at the root.
    fn full_name(&self, name: Option<&str>) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Seg::Member(m) => {
                    s.push('.');
                    s.push_str(m);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        if let Some(n) = name {
            s.push('.');
            s.push_str(n);
        }
        match s.strip_prefix('.') {
            Some(r) => r.to_string(),
            None if s.is_empty() => "<anonymous>".into(),
            None => s,
        }
    }

    fn missing(&self, name: Option<&str>) -> QmpError {
        QmpError::generic(format!("Parameter '{}' is missing", self.full_name(name)))
    }

    fn wrong_type(&self, name: Option<&str>, expected: &str) -> QmpError {
        QmpError::generic(format!(
            "Invalid parameter type for '{}', expected: {expected}",
            self.full_name(name)
        ))
    }

    fn entry(&self, ty: &str) -> Result<&'a Entity, QmpError> {
        let schema: &'a Schema = self.schema;
        schema
            .info
            .get(ty)
            .ok_or_else(|| QmpError::generic(format!("the fake's schema has no type '{ty}'")))
    }

    /// Visit `value` (None: absent) as type `ty` under `name` (None for
    /// the root and list elements), as `visit_type_TY(v, name, …)` does.
    fn visit(
        &mut self,
        ty: &str,
        name: Option<&str>,
        value: Option<&Value>,
        int: Option<&str>,
    ) -> Result<(), QmpError> {
        let entry = self.entry(ty)?;
        let Some(value) = value else {
            return Err(self.missing(name));
        };
        if self.depth > MAX_DEPTH {
            return Err(QmpError::generic(
                "JSON parse error, too many nested data structures",
            ));
        }
        match &entry.kind {
            Kind::Builtin(b) => self.builtin(&b.json_type, name, value, int),
            Kind::Enum(e) => {
                let Value::String(s) = value else {
                    return Err(self.wrong_type(name, "string"));
                };
                if e.contains(s) {
                    Ok(())
                } else {
                    // input_type_enum() names the member, not its path.
                    Err(QmpError::generic(format!(
                        "Parameter '{}' does not accept value '{s}'",
                        name.unwrap_or("null")
                    )))
                }
            }
            Kind::Array(a) => {
                let Value::Array(items) = value else {
                    return Err(self.wrong_type(name, "array"));
                };
                self.enter(name);
                let mut r = Ok(());
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    r = self.visit(&a.element_type, None, Some(item), int);
                    self.path.pop();
                    if r.is_err() {
                        break;
                    }
                }
                self.leave(name);
                r
            }
            Kind::Object(o) => {
                let Value::Object(map) = value else {
                    return Err(self.wrong_type(name, "object"));
                };
                self.enter(name);
                let r = self.object(o, ty, map);
                self.leave(name);
                r
            }
            Kind::Alternate(a) => self.alternate(&a.branches, ty, name, value),
            other => Err(QmpError::generic(format!(
                "type '{ty}' has meta-type '{}'",
                other.meta_type()
            ))),
        }
    }

    fn enter(&mut self, name: Option<&str>) {
        self.depth += 1;
        if let Some(n) = name {
            self.path.push(Seg::Member(n.to_string()));
        }
    }

    fn leave(&mut self, name: Option<&str>) {
        self.depth -= 1;
        if name.is_some() {
            self.path.pop();
        }
    }

    fn builtin(
        &self,
        json: &str,
        name: Option<&str>,
        value: &Value,
        int: Option<&str>,
    ) -> Result<(), QmpError> {
        if json == "int" {
            return self.integer(name, value, int.unwrap_or("int"));
        }
        let ok = match json {
            "number" => value.is_number(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => true,
        };
        if ok {
            return Ok(());
        }
        let expected = match json {
            "number" => "number",
            "string" => "string",
            "boolean" => "boolean",
            _ => "null",
        };
        Err(self.wrong_type(name, expected))
    }

    /// `visit_type_KIND()`: int64 or uint64 from the JSON number, then
    /// the narrower kinds' range (their message names the member only).
    fn integer(&self, name: Option<&str>, value: &Value, kind: &str) -> Result<(), QmpError> {
        let out_of_range = || {
            QmpError::generic(format!(
                "Parameter '{}' expects {kind}",
                name.unwrap_or("null")
            ))
        };
        if kind.starts_with('u') || kind == "size" {
            // qobject_input_type_uint64(): negative numbers are accepted
            // (and wrap) for backward compatibility.
            let v = match (value.as_u64(), value.as_i64()) {
                (Some(v), _) => v,
                (None, Some(v)) => v as u64,
                _ => {
                    return Err(QmpError::generic(format!(
                        "Parameter '{}' expects uint64",
                        self.full_name(name)
                    )))
                }
            };
            let max = match kind {
                "uint8" => u8::MAX as u64,
                "uint16" => u16::MAX as u64,
                "uint32" => u32::MAX as u64,
                _ => u64::MAX,
            };
            return if v > max { Err(out_of_range()) } else { Ok(()) };
        }
        let Some(v) = value.as_i64() else {
            return Err(self.wrong_type(name, "integer"));
        };
        let (min, max) = match kind {
            "int8" => (i8::MIN as i64, i8::MAX as i64),
            "int16" => (i16::MIN as i64, i16::MAX as i64),
            "int32" => (i32::MIN as i64, i32::MAX as i64),
            _ => (i64::MIN, i64::MAX),
        };
        if v < min || v > max {
            Err(out_of_range())
        } else {
            Ok(())
        }
    }

    /// An object's (or union's) members in schema order, then its
    /// branch's, then members left over (`visit_check_struct`).
    fn object(
        &mut self,
        o: &'a ObjectInfo,
        ty: &str,
        map: &Map<String, Value>,
    ) -> Result<(), QmpError> {
        let mut visited: Vec<&str> = Vec::new();
        self.object_members(o, ty, map, &mut visited)?;
        // g_hash_table order is QEMU's; with one member left over the
        // message is the same.
        if let Some(k) = map.keys().find(|k| !visited.contains(&k.as_str())) {
            return Err(QmpError::generic(format!(
                "Parameter '{}' is unexpected",
                self.full_name(Some(k))
            )));
        }
        Ok(())
    }

    /// `visit_type_T_members()`: the members, then for a union the
    /// members of the branch its tag selects (itself maybe a union).
    fn object_members<'m>(
        &mut self,
        o: &'a ObjectInfo,
        ty: &str,
        map: &'m Map<String, Value>,
        visited: &mut Vec<&'m str>,
    ) -> Result<(), QmpError> {
        self.members(&o.members, ty, map, visited)?;
        let Some(tag) = &o.tag else {
            return Ok(());
        };
        let case = map.get(tag).and_then(Value::as_str).unwrap_or("");
        if let Some(b) = o.variant(case) {
            if let Kind::Object(bo) = &self.entry(&b.ty)?.kind {
                self.object_members(bo, &b.ty, map, visited)?;
            }
        }
        Ok(())
    }

    /// The members of object type `ty`, in order.
    fn members<'m>(
        &mut self,
        members: &[Member],
        ty: &str,
        map: &'m Map<String, Value>,
        visited: &mut Vec<&'m str>,
    ) -> Result<(), QmpError> {
        let schema: &'a Schema = self.schema;
        let ints = schema.ints.get(ty);
        for m in members {
            let present = map.get_key_value(&m.name);
            if let Some((k, _)) = present {
                visited.push(k.as_str());
            }
            if m.optional && present.is_none() {
                continue;
            }
            let int = ints.and_then(|i| i.get(&m.name)).copied();
            self.visit(&m.ty, Some(&m.name), present.map(|(_, v)| v), int)?;
        }
        Ok(())
    }

    fn alternate(
        &mut self,
        branches: &[String],
        ty: &str,
        name: Option<&str>,
        value: &Value,
    ) -> Result<(), QmpError> {
        let want = json_type(value);
        let mut number_branch = None;
        for bt in branches {
            let qtype = match &self.entry(bt)?.kind {
                Kind::Builtin(b) => match b.json_type.as_str() {
                    "int" | "number" => "number",
                    "string" => "string",
                    "boolean" => "boolean",
                    "null" => "null",
                    _ => "any",
                },
                Kind::Enum(_) => "string",
                Kind::Object(_) => "object",
                Kind::Array(_) => "array",
                _ => "",
            };
            if qtype == want {
                if want == "number" {
                    number_branch = Some(bt);
                    continue;
                }
                return self.visit(bt, name, Some(value), None);
            }
        }
        if let Some(bt) = number_branch {
            return self.visit(bt, name, Some(value), None);
        }
        // The generated visitor names the member, not its path, and the
        // alternate by its type name.
        Err(QmpError::generic(format!(
            "Invalid parameter type for '{}', expected: {}",
            name.unwrap_or("null"),
            self.schema.alternates.get(ty).map_or(ty, String::as_str)
        )))
    }
}
