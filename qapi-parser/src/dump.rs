//! The schema as text, in the format of QEMU's front-end test suite
//! (`tests/qapi-schema/*.out`, printed by its `test-qapi.py`).

use std::fmt::Write as _;

use crate::expr::IfCond;
use crate::schema::{Entity, EntityKind, Feature, ModuleItem, Schema, Variant};

/// Render the whole schema: modules with their entities, then every
/// documentation block.
pub fn dump(schema: &Schema) -> String {
    let mut out = String::new();
    for module in &schema.modules {
        let _ = writeln!(out, "module {}", module.name);
        for item in &module.items {
            match item {
                ModuleItem::Include { module, .. } => {
                    let _ = writeln!(out, "include {}", schema.modules[module.0 as usize].name);
                }
                ModuleItem::Entity(id) => entity(&mut out, schema, schema.entity(*id)),
            }
        }
    }
    for doc in &schema.docs {
        match &doc.symbol {
            Some(s) => {
                let _ = writeln!(out, "doc symbol={s}");
            }
            None => out.push_str("doc freeform\n"),
        }
        let _ = writeln!(out, "    body=\n{}", doc.body());
        for &i in &doc.args {
            let s = &doc.sections[i];
            let _ = writeln!(
                out,
                "    arg={}\n{}",
                s.name.as_deref().unwrap_or(""),
                s.text
            );
        }
        for &i in &doc.features {
            let s = &doc.sections[i];
            let _ = writeln!(
                out,
                "    feature={}\n{}",
                s.name.as_deref().unwrap_or(""),
                s.text
            );
        }
        for &i in &doc.others {
            let s = &doc.sections[i];
            let _ = writeln!(out, "    section={}\n{}", s.kind.title(), s.text);
        }
    }
    out
}

fn cond(out: &mut String, c: &Option<IfCond>, indent: usize) {
    if let Some(c) = c {
        let _ = writeln!(out, "{:indent$}if {}", "", c.to_python_str());
    }
}

fn features(out: &mut String, fs: &[Feature], indent: usize) {
    for f in fs {
        let _ = writeln!(out, "{:indent$}feature {}", "", f.name);
        cond(out, &f.cond, indent + 4);
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

fn variants(out: &mut String, schema: &Schema, tag: &str, vs: &[Variant]) {
    let _ = writeln!(out, "    tag {tag}");
    for v in vs {
        let _ = writeln!(out, "    case {}: {}", v.name, schema.entity(v.ty).name);
        cond(out, &v.cond, 8);
    }
}

fn entity(out: &mut String, schema: &Schema, e: &Entity) {
    let name = &e.name;
    let opt_name = |id: Option<crate::schema::EntityId>| {
        id.map_or_else(|| "None".to_string(), |i| schema.entity(i).name.clone())
    };
    match &e.kind {
        EntityKind::Builtin(_) => return,
        EntityKind::Enum(en) => {
            let _ = writeln!(out, "enum {name}");
            if let Some(p) = &en.prefix {
                let _ = writeln!(out, "    prefix {p}");
            }
            for v in &en.values {
                let _ = writeln!(out, "    member {}", v.name);
                cond(out, &v.cond, 8);
                features(out, &v.features, 8);
            }
        }
        EntityKind::Array(a) => {
            if e.span.is_none() {
                return;
            }
            let _ = writeln!(out, "array {name} {}", schema.entity(a.element).name);
            // An array has its element type's condition.
            cond(out, &schema.entity(a.element).cond, 4);
            return;
        }
        EntityKind::Object(o) => {
            let _ = writeln!(out, "object {name}");
            if let Some(b) = o.base {
                let _ = writeln!(out, "    base {}", schema.entity(b).name);
            }
            for m in &o.local_members {
                let _ = writeln!(
                    out,
                    "    member {}: {} optional={}",
                    m.name,
                    schema.entity(m.ty).name,
                    py_bool(m.optional)
                );
                cond(out, &m.cond, 8);
                features(out, &m.features, 8);
            }
            if let Some(b) = &o.branches {
                variants(out, schema, &b.tag, &b.variants);
            }
        }
        EntityKind::Alternate(a) => {
            let _ = writeln!(out, "alternate {name}");
            variants(out, schema, "type", &a.variants);
        }
        EntityKind::Command(c) => {
            let _ = writeln!(
                out,
                "command {name} {} -> {}",
                opt_name(c.arg_type),
                opt_name(c.ret_type)
            );
            let _ = writeln!(
                out,
                "    gen={} success_response={} boxed={} oob={} preconfig={}{}",
                py_bool(c.gen),
                py_bool(c.success_response),
                py_bool(c.boxed),
                py_bool(c.allow_oob),
                py_bool(c.allow_preconfig),
                if c.coroutine { " coroutine=True" } else { "" }
            );
        }
        EntityKind::Event(ev) => {
            let _ = writeln!(out, "event {name} {}", opt_name(ev.arg_type));
            let _ = writeln!(out, "    boxed={}", py_bool(ev.boxed));
        }
    }
    cond(out, &e.cond, 4);
    features(out, &e.features, 4);
}
