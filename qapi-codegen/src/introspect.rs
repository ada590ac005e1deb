//! The introspection data QEMU's `query-qmp-schema` returns, computed
//! from the IR by QEMU's rules (docs/devel/qapi-code-gen.rst,
//! "Client JSON Protocol introspection"):
//!
//! - only what commands and events reach: commands and events in schema
//!   order, then every type they use, in order of first use;
//! - type names other than builtins, arrays, commands and events are
//!   masked as numbers in order of first use (`"0"`, `"1"`, …; an array
//!   is `[` its element's name `]`);
//! - every integer type is folded into `int` (and arrays of them into
//!   `[int]`);
//! - a missing argument or return type is the empty object `q_empty`.
//!
//! Conditions stay in the data, as `{"if": COND, "then": VALUE}` around
//! any conditional element (an entry, member, branch, enum value or
//! feature), COND written as in the schema (`"CONFIG_X"`, `{"all": […]}`,
//! `{"any": […]}`, `{"not": …}`).  Numbers are given before conditions
//! are resolved, as QEMU does, so a build without some symbol shows gaps
//! in the numbering.  `qapi_runtime::introspect::resolve` turns this into
//! what one build of QEMU answers.

use std::collections::HashMap;

use qapi_parser::{EntityId, EntityKind, Feature, IfCond, JsonType, Schema};
use serde_json::{json, Map, Value};

/// The annotated SchemaInfo list of `schema` (see the module docs).
pub fn schema_info(schema: &Schema) -> Value {
    let mut g = Gen {
        schema,
        used: Vec::new(),
        names: HashMap::new(),
        out: Vec::new(),
    };
    let empty = schema.lookup("q_empty");
    for e in &schema.entities {
        match &e.kind {
            EntityKind::Command(c) => {
                let mut obj = Map::new();
                let arg = c.arg_type.or(empty).map(|t| g.use_type(t));
                let ret = c.ret_type.or(empty).map(|t| g.use_type(t));
                obj.insert("arg-type".into(), arg.into());
                obj.insert("ret-type".into(), ret.into());
                if c.allow_oob {
                    obj.insert("allow-oob".into(), true.into());
                }
                g.tree(&e.name, "command", obj, &e.cond, &e.features);
            }
            EntityKind::Event(ev) => {
                let mut obj = Map::new();
                let arg = ev.arg_type.or(empty).map(|t| g.use_type(t));
                obj.insert("arg-type".into(), arg.into());
                g.tree(&e.name, "event", obj, &e.cond, &e.features);
            }
            _ => {}
        }
    }
    // Types used while visiting types join the end of the list.
    let mut i = 0;
    while i < g.used.len() {
        let id = g.used[i];
        g.visit_type(id);
        i += 1;
    }
    Value::Array(g.out)
}

struct Gen<'a> {
    schema: &'a Schema,
    used: Vec<EntityId>,
    names: HashMap<String, String>,
    out: Vec<Value>,
}

/// A condition as the schema writes it.
fn cond_json(c: &IfCond) -> Value {
    match c {
        IfCond::Name(n) => Value::String(n.clone()),
        IfCond::All(v) => json!({ "all": v.iter().map(cond_json).collect::<Vec<_>>() }),
        IfCond::Any(v) => json!({ "any": v.iter().map(cond_json).collect::<Vec<_>>() }),
        IfCond::Not(c) => json!({ "not": cond_json(c) }),
    }
}

/// `value`, wrapped in its condition if it has one.
fn annotated(value: Value, cond: &Option<IfCond>) -> Value {
    match cond {
        Some(c) => json!({ "if": cond_json(c), "then": value }),
        None => value,
    }
}

fn features(fs: &[Feature]) -> Vec<Value> {
    fs.iter()
        .map(|f| annotated(Value::String(f.name.clone()), &f.cond))
        .collect()
}

impl Gen<'_> {
    fn name(&mut self, name: &str) -> String {
        let n = self.names.len();
        self.names
            .entry(name.to_string())
            .or_insert_with(|| n.to_string())
            .clone()
    }

    /// Note a type as used; the name it goes by.
    fn use_type(&mut self, mut id: EntityId) -> String {
        let s = self.schema;
        match &s.entity(id).kind {
            _ if s.json_type(id) == JsonType::Int => {
                id = s.lookup("int").expect("builtin int");
            }
            EntityKind::Array(a) if s.json_type(a.element) == JsonType::Int => {
                id = s.lookup("intList").expect("builtin intList");
            }
            _ => {}
        }
        if !self.used.contains(&id) {
            self.used.push(id);
        }
        let e = s.entity(id);
        match &e.kind {
            EntityKind::Builtin(_) => e.name.clone(),
            EntityKind::Array(a) => format!("[{}]", self.use_type(a.element)),
            _ => self.name(&e.name),
        }
    }

    fn tree(
        &mut self,
        name: &str,
        meta: &str,
        mut obj: Map<String, Value>,
        cond: &Option<IfCond>,
        feats: &[Feature],
    ) {
        let name = match meta {
            "command" | "event" | "builtin" | "array" => name.to_string(),
            _ => self.name(name),
        };
        obj.insert("name".into(), name.into());
        obj.insert("meta-type".into(), meta.into());
        if !feats.is_empty() {
            obj.insert("features".into(), features(feats).into());
        }
        self.out.push(annotated(Value::Object(obj), cond));
    }

    fn visit_type(&mut self, id: EntityId) {
        let s = self.schema;
        let e = s.entity(id);
        let mut obj = Map::new();
        match &e.kind {
            EntityKind::Builtin(b) => {
                let jt = match b.json_type() {
                    JsonType::String => "string",
                    JsonType::Number => "number",
                    JsonType::Int => "int",
                    JsonType::Boolean => "boolean",
                    JsonType::Null => "null",
                    _ => "value",
                };
                obj.insert("json-type".into(), jt.into());
                self.tree(&e.name, "builtin", obj, &None, &[]);
            }
            EntityKind::Enum(en) => {
                let members: Vec<Value> = en
                    .values
                    .iter()
                    .map(|v| {
                        let mut m = Map::new();
                        m.insert("name".into(), v.name.clone().into());
                        if !v.features.is_empty() {
                            m.insert("features".into(), features(&v.features).into());
                        }
                        annotated(Value::Object(m), &v.cond)
                    })
                    .collect();
                let values: Vec<Value> = en
                    .values
                    .iter()
                    .map(|v| annotated(v.name.clone().into(), &v.cond))
                    .collect();
                obj.insert("members".into(), members.into());
                obj.insert("values".into(), values.into());
                self.tree(&e.name, "enum", obj, &e.cond, &e.features);
            }
            EntityKind::Array(a) => {
                let element = self.use_type(a.element);
                obj.insert("element-type".into(), element.clone().into());
                // An array has its element type's condition (QEMU's
                // QAPISchemaArrayType.ifcond).
                let cond = &s.entity(a.element).cond;
                self.tree(&format!("[{element}]"), "array", obj, cond, &[]);
            }
            EntityKind::Object(o) => {
                let mut members = Vec::new();
                for m in &o.members {
                    let mut mo = Map::new();
                    mo.insert("name".into(), m.name.clone().into());
                    mo.insert("type".into(), self.use_type(m.ty).into());
                    if m.optional {
                        mo.insert("default".into(), Value::Null);
                    }
                    if !m.features.is_empty() {
                        mo.insert("features".into(), features(&m.features).into());
                    }
                    members.push(annotated(Value::Object(mo), &m.cond));
                }
                obj.insert("members".into(), members.into());
                if let Some(b) = &o.branches {
                    obj.insert("tag".into(), b.tag.clone().into());
                    let mut variants = Vec::new();
                    for v in &b.variants {
                        let ty = self.use_type(v.ty);
                        variants.push(annotated(json!({ "case": v.name, "type": ty }), &v.cond));
                    }
                    obj.insert("variants".into(), variants.into());
                }
                self.tree(&e.name, "object", obj, &e.cond, &e.features);
            }
            EntityKind::Alternate(a) => {
                let mut members = Vec::new();
                for v in &a.variants {
                    let ty = self.use_type(v.ty);
                    members.push(annotated(json!({ "type": ty }), &v.cond));
                }
                obj.insert("members".into(), members.into());
                self.tree(&e.name, "alternate", obj, &e.cond, &e.features);
            }
            EntityKind::Command(_) | EntityKind::Event(_) => {}
        }
    }
}
