//! The schema the fake checks requests against, in its introspection form
//! (the `SchemaInfo` list `query-qmp-schema` returns), and the checks
//! themselves: what QEMU's QMP input visitor (`qapi/qobject-input-visitor.c`
//! and the generated visitors over it) says about the same arguments,
//! word for word.
//!
//! The introspection form keeps what the wire needs and loses two things
//! QEMU's messages use: the width and signedness of integers (every
//! integer type is `int` there) and the names of alternate types (masked
//! as numbers).  A non-number for a `uint64`/`size` member is therefore
//! answered as for an `int` member, and an alternate's wrong type names
//! the alternate as the introspection does.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// An error as QEMU sends it: `{"class": …, "desc": …}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QmpError {
    pub class: String,
    pub desc: String,
}

impl QmpError {
    /// A `GenericError`.
    pub fn generic(desc: impl Into<String>) -> QmpError {
        QmpError {
            class: "GenericError".into(),
            desc: desc.into(),
        }
    }

    /// A `CommandNotFound`.
    pub fn command_not_found(desc: impl Into<String>) -> QmpError {
        QmpError {
            class: "CommandNotFound".into(),
            desc: desc.into(),
        }
    }

    /// The error as the wire's `error` member.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"class": self.class, "desc": self.desc})
    }
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.class, self.desc)
    }
}

impl std::error::Error for QmpError {}

/// A command's entry.
#[derive(Clone, Debug)]
pub struct CommandInfo {
    pub arg_type: String,
    pub ret_type: String,
    pub allow_oob: bool,
}

/// A schema in introspection form, indexed by name.
#[derive(Clone, Debug)]
pub struct Schema {
    entries: HashMap<String, Value>,
    commands: HashMap<String, CommandInfo>,
    events: HashMap<String, String>,
    raw: Value,
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

impl Schema {
    /// Read a `SchemaInfo` list (conditions already resolved, as QEMU
    /// answers it).  Every type a command, event or type refers to must
    /// be defined in the list.
    pub fn from_introspection(list: &Value) -> Result<Schema, SchemaError> {
        let items = list
            .as_array()
            .ok_or_else(|| SchemaError("the schema is not a JSON array".into()))?;
        let mut s = Schema {
            entries: HashMap::new(),
            commands: HashMap::new(),
            events: HashMap::new(),
            raw: list.clone(),
        };
        for (i, item) in items.iter().enumerate() {
            let name = item["name"]
                .as_str()
                .ok_or_else(|| SchemaError(format!("entry {i} has no string 'name'")))?;
            if item.get("if").is_some() {
                return Err(SchemaError(format!(
                    "entry {i} still has a condition: resolve the schema first \
                     (qapi_types::introspect::resolve)"
                )));
            }
            let meta = item["meta-type"].as_str().unwrap_or("");
            let field = |f: &str| -> Result<String, SchemaError> {
                item[f].as_str().map(str::to_string).ok_or_else(|| {
                    SchemaError(format!("{meta} '{name}' (entry {i}) has no string '{f}'"))
                })
            };
            match meta {
                "command" => {
                    let info = CommandInfo {
                        arg_type: field("arg-type")?,
                        ret_type: field("ret-type")?,
                        allow_oob: item["allow-oob"].as_bool().unwrap_or(false),
                    };
                    s.commands.insert(name.to_string(), info);
                }
                "event" => {
                    s.events.insert(name.to_string(), field("arg-type")?);
                }
                "builtin" | "enum" | "array" | "object" | "alternate" => {
                    s.entries.insert(name.to_string(), item.clone());
                }
                other => {
                    return Err(SchemaError(format!(
                        "entry {i} ('{name}') has unknown meta-type '{other}'"
                    )))
                }
            }
        }
        // Builtins QEMU always lists; a hand-made list may leave them out.
        for (n, j) in [
            ("int", "int"),
            ("number", "number"),
            ("str", "string"),
            ("bool", "boolean"),
            ("null", "null"),
            ("any", "value"),
        ] {
            s.entries.entry(n.to_string()).or_insert_with(
                || serde_json::json!({"name": n, "meta-type": "builtin", "json-type": j}),
            );
        }
        s.check_references()?;
        Ok(s)
    }

    /// Every type reachable from a command or event must be defined (an
    /// unreachable array whose element was left out by a condition is
    /// harmless, and `resolve` may leave one).
    fn check_references(&self) -> Result<(), SchemaError> {
        let mut todo: Vec<(String, String)> = Vec::new();
        for (n, c) in &self.commands {
            todo.push((c.arg_type.clone(), format!("command '{n}'")));
            todo.push((c.ret_type.clone(), format!("command '{n}'")));
        }
        for (n, t) in &self.events {
            todo.push((t.clone(), format!("event '{n}'")));
        }
        let mut seen = std::collections::HashSet::new();
        while let Some((t, whose)) = todo.pop() {
            if !seen.insert(t.clone()) {
                continue;
            }
            let e = self
                .entries
                .get(&t)
                .ok_or_else(|| SchemaError(format!("{whose} refers to undefined type '{t}'")))?;
            let whose = format!("type '{t}'");
            for m in e["members"].as_array().into_iter().flatten() {
                if let Some(mt) = m["type"].as_str() {
                    todo.push((mt.to_string(), whose.clone()));
                }
            }
            for v in e["variants"].as_array().into_iter().flatten() {
                todo.push((v["type"].as_str().unwrap_or("").to_string(), whose.clone()));
            }
            if let Some(et) = e["element-type"].as_str() {
                todo.push((et.to_string(), whose.clone()));
            }
        }
        Ok(())
    }

    /// The list this schema was read from (what the fake answers to
    /// `query-qmp-schema`).
    pub fn introspection(&self) -> &Value {
        &self.raw
    }

    /// A command's entry.
    pub fn command(&self, name: &str) -> Option<&CommandInfo> {
        self.commands.get(name)
    }

    /// The commands' names.
    pub fn command_names(&self) -> impl Iterator<Item = &str> {
        self.commands.keys().map(String::as_str)
    }

    /// An event's argument type.
    pub fn event(&self, name: &str) -> Option<&str> {
        self.events.get(name).map(String::as_str)
    }

    /// A type's entry (`meta-type`, `members`, …).
    pub fn entry(&self, name: &str) -> Option<&Value> {
        self.entries.get(name)
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
        let info = self.commands.get(command).ok_or_else(|| {
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
        let mut edits: Vec<Edit> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for e in &parsed.entities {
            let (intro, pid) = match &e.kind {
                EntityKind::Command(c) => (
                    self.commands.get(&e.name).map(|c| c.arg_type.clone()),
                    c.arg_type,
                ),
                EntityKind::Event(ev) => (self.events.get(&e.name).cloned(), ev.arg_type),
                _ => continue,
            };
            if let (Some(intro), Some(pid)) = (intro, pid) {
                self.refine_walk(parsed, &intro, pid, &mut seen, &mut edits);
            }
        }
        for (entry, member, key, value) in edits {
            let Some(e) = self.entries.get_mut(&entry) else {
                continue;
            };
            let target = match member {
                Some(i) => &mut e["members"][i],
                None => e,
            };
            if let Value::Object(m) = target {
                m.insert(key.into(), Value::String(value));
            }
        }
    }

    fn refine_walk(
        &self,
        parsed: &qapi_parser::Schema,
        intro: &str,
        pid: qapi_parser::EntityId,
        seen: &mut std::collections::HashSet<String>,
        edits: &mut Vec<Edit>,
    ) {
        use qapi_parser::EntityKind;
        if !seen.insert(intro.to_string()) {
            return;
        }
        let Some(entry) = self.entries.get(intro) else {
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
        match &pe.kind {
            EntityKind::Object(o) => {
                for (i, m) in entry["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let name = m["name"].as_str().unwrap_or("");
                    let Some(pm) = o.members.iter().find(|pm| pm.name == name) else {
                        continue;
                    };
                    if let Some(k) = int_kind(pm.ty) {
                        edits.push((intro.to_string(), Some(i), "x-int", k.to_string()));
                    }
                    if let Some(t) = m["type"].as_str() {
                        self.refine_walk(parsed, t, pm.ty, seen, edits);
                    }
                }
                if let Some(b) = &o.branches {
                    for v in entry["variants"].as_array().into_iter().flatten() {
                        let case = v["case"].as_str().unwrap_or("");
                        if let (Some(pv), Some(t)) = (
                            b.variants.iter().find(|pv| pv.name == case),
                            v["type"].as_str(),
                        ) {
                            self.refine_walk(parsed, t, pv.ty, seen, edits);
                        }
                    }
                }
            }
            EntityKind::Array(a) => {
                if let Some(t) = entry["element-type"].as_str() {
                    self.refine_walk(parsed, t, a.element, seen, edits);
                }
            }
            EntityKind::Alternate(a) => {
                edits.push((intro.to_string(), None, "x-name", pe.name.clone()));
                for m in entry["members"].as_array().into_iter().flatten() {
                    let Some(t) = m["type"].as_str() else {
                        continue;
                    };
                    let meta = self
                        .entries
                        .get(t)
                        .and_then(|e| e["meta-type"].as_str())
                        .unwrap_or("");
                    let same = a.variants.iter().find(|v| {
                        matches!(
                            (&parsed.entity(v.ty).kind, meta),
                            (EntityKind::Object(_), "object") | (EntityKind::Array(_), "array")
                        )
                    });
                    if let Some(v) = same {
                        self.refine_walk(parsed, t, v.ty, seen, edits);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A note [`Schema::refine`] adds: the entry, the member's index (None:
/// the entry itself), the key and its value.
type Edit = (String, Option<usize>, &'static str, String);

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

    fn entry(&self, ty: &str) -> Result<&'a Value, QmpError> {
        let schema: &'a Schema = self.schema;
        schema
            .entries
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
        match entry["meta-type"].as_str().unwrap_or("") {
            "builtin" => self.builtin(entry["json-type"].as_str().unwrap_or(""), name, value, int),
            "enum" => {
                let Value::String(s) = value else {
                    return Err(self.wrong_type(name, "string"));
                };
                let ok = entry["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|v| v.as_str() == Some(s));
                if ok {
                    Ok(())
                } else {
                    // input_type_enum() names the member, not its path.
                    Err(QmpError::generic(format!(
                        "Parameter '{}' does not accept value '{s}'",
                        name.unwrap_or("null")
                    )))
                }
            }
            "array" => {
                let Value::Array(items) = value else {
                    return Err(self.wrong_type(name, "array"));
                };
                let elem = entry["element-type"].as_str().unwrap_or("");
                self.enter(name);
                let mut r = Ok(());
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    r = self.visit(elem, None, Some(item), int);
                    self.path.pop();
                    if r.is_err() {
                        break;
                    }
                }
                self.leave(name);
                r
            }
            "object" => {
                let Value::Object(map) = value else {
                    return Err(self.wrong_type(name, "object"));
                };
                self.enter(name);
                let r = self.object(entry, map);
                self.leave(name);
                r
            }
            "alternate" => self.alternate(entry, ty, name, value),
            other => Err(QmpError::generic(format!(
                "type '{ty}' has meta-type '{other}'"
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
    fn object(&mut self, entry: &Value, map: &Map<String, Value>) -> Result<(), QmpError> {
        let mut visited: Vec<&str> = Vec::new();
        self.object_members(entry, map, &mut visited)?;
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
        entry: &Value,
        map: &'m Map<String, Value>,
        visited: &mut Vec<&'m str>,
    ) -> Result<(), QmpError> {
        let members: Vec<&Value> = entry["members"].as_array().into_iter().flatten().collect();
        self.members(&members, map, visited)?;
        let Some(tag) = entry["tag"].as_str() else {
            return Ok(());
        };
        let case = map.get(tag).and_then(Value::as_str).unwrap_or("");
        let branch = entry["variants"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["case"].as_str() == Some(case));
        if let Some(b) = branch {
            let be = self.entry(b["type"].as_str().unwrap_or(""))?;
            self.object_members(be, map, visited)?;
        }
        Ok(())
    }

    fn members<'m>(
        &mut self,
        members: &[&Value],
        map: &'m Map<String, Value>,
        visited: &mut Vec<&'m str>,
    ) -> Result<(), QmpError> {
        for m in members {
            let Some(mname) = m["name"].as_str() else {
                continue;
            };
            let optional = m.get("default").is_some();
            let present = map.get_key_value(mname);
            if let Some((k, _)) = present {
                visited.push(k.as_str());
            }
            if optional && present.is_none() {
                continue;
            }
            let ty = m["type"].as_str().unwrap_or("");
            self.visit(
                ty,
                Some(mname),
                present.map(|(_, v)| v),
                m["x-int"].as_str(),
            )?;
        }
        Ok(())
    }

    fn alternate(
        &mut self,
        entry: &Value,
        ty: &str,
        name: Option<&str>,
        value: &Value,
    ) -> Result<(), QmpError> {
        let want = json_type(value);
        let mut number_branch = None;
        for m in entry["members"].as_array().into_iter().flatten() {
            let bt = m["type"].as_str().unwrap_or("");
            let be = self.entry(bt)?;
            let qtype = match be["meta-type"].as_str().unwrap_or("") {
                "builtin" => match be["json-type"].as_str().unwrap_or("") {
                    "int" | "number" => "number",
                    "string" => "string",
                    "boolean" => "boolean",
                    "null" => "null",
                    _ => "any",
                },
                "enum" => "string",
                "object" => "object",
                "array" => "array",
                _ => "",
            };
            if qtype == want {
                if want == "number" {
                    number_branch = Some(bt.to_string());
                    continue;
                }
                return self.visit(bt, name, Some(value), None);
            }
        }
        if let Some(bt) = number_branch {
            return self.visit(&bt, name, Some(value), None);
        }
        // The generated visitor names the member, not its path, and the
        // alternate by its type name.
        Err(QmpError::generic(format!(
            "Invalid parameter type for '{}', expected: {}",
            name.unwrap_or("null"),
            entry["x-name"].as_str().unwrap_or(ty)
        )))
    }
}
