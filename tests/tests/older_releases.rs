//! The shipped bindings decode what each older release vendored in
//! `schema/older/` sends.
//!
//! For every command's return and every event of an older release's QMP
//! and guest agent schemas, replies are written as that release's schema
//! shapes them (every member, optional ones too; each union and
//! alternate branch in turn over several rounds; enum values in turn),
//! then decoded with the bindings in `qapi-types`.  Each must decode in
//! the default mode.  Strictly, it must too, unless it carries what the
//! newest schema no longer has (a member, an enum value, a branch): the
//! default mode only differs from the strict one there, so the test
//! lists those instead of failing.  Commands and events the newest
//! schema dropped are listed too.

use std::path::Path;

use qapi_parser::{Builtin, EntityId, EntityKind, Options, Rules, Schema};
use serde_json::{Map, Value};

/// Writes values of an older schema's types.
struct Synth<'a> {
    s: &'a Schema,
    /// Turns the choice of enum values and branches.
    turn: usize,
}

impl Synth<'_> {
    fn pick(&mut self, n: usize) -> usize {
        self.turn += 1;
        self.turn % n.max(1)
    }

    fn value(&mut self, ty: EntityId, depth: usize) -> Value {
        let s = self.s;
        match &s.entity(ty).kind {
            EntityKind::Builtin(b) => match b {
                Builtin::Str => Value::from("x"),
                Builtin::Number => Value::from(1.5),
                Builtin::Bool => Value::from(true),
                Builtin::Null => Value::Null,
                Builtin::Any => Value::Object(Map::new()),
                _ => Value::from(1),
            },
            EntityKind::Enum(e) => {
                let i = self.pick(e.values.len());
                Value::from(e.values[i].name.as_str())
            }
            EntityKind::Array(a) if depth < 8 => {
                Value::Array(vec![self.value(a.element, depth + 1)])
            }
            EntityKind::Array(_) => Value::Array(Vec::new()),
            EntityKind::Alternate(a) => {
                let i = self.pick(a.variants.len());
                self.value(a.variants[i].ty, depth + 1)
            }
            EntityKind::Object(o) => {
                let mut map = Map::new();
                for m in &o.members {
                    // Deep inside recursive types, only what is required.
                    if m.optional && depth >= 8 {
                        continue;
                    }
                    map.insert(m.name.clone(), self.value(m.ty, depth + 1));
                }
                if let Some(b) = &o.branches {
                    let v = &b.variants[self.pick(b.variants.len())];
                    map.insert(b.tag.clone(), Value::from(v.name.as_str()));
                    if let Value::Object(more) = self.value(v.ty, depth + 1) {
                        map.extend(more);
                    }
                }
                Value::Object(map)
            }
            EntityKind::Command(_) | EntityKind::Event(_) => Value::Null,
        }
    }
}

/// What one release's replies and events gave.
#[derive(Default)]
struct Tally {
    decoded: usize,
    /// Decoded in the default mode only: they carry what the newest
    /// schema no longer has.
    older_parts: Vec<String>,
    /// Not in the newest schema.
    dropped: Vec<String>,
    failures: Vec<String>,
}

fn read(path: &Path) -> Schema {
    Schema::from_file(
        path,
        Options {
            rules: Rules::Lenient,
        },
    )
    .unwrap_or_else(|f| panic!("{}", f.render()))
}

type CheckReturn = fn(&str, Value) -> Option<Result<(), serde_json::Error>>;
type DecodeEvent = fn(&str, Value) -> Option<bool>;

fn qmp_event(name: &str, data: Value) -> Option<bool> {
    use qapi_types::qmp::events::Event;
    // Known and decoded: `Ok` and not the catch-all `Other`.
    Some(matches!(Event::decode(name, data), Ok(e) if !matches!(e, Event::Other { .. })))
}

fn qga_event(_name: &str, _data: Value) -> Option<bool> {
    // The guest agent has no events.
    None
}

fn check(
    release: &str,
    schema: &Schema,
    newest: &Schema,
    ret: CheckReturn,
    ev: DecodeEvent,
    t: &mut Tally,
) {
    for (i, e) in schema.entities.iter().enumerate() {
        let (arg, is_command) = match &e.kind {
            EntityKind::Command(c) => match c.ret_type {
                Some(r) => (r, true),
                None => continue,
            },
            EntityKind::Event(ev) => match ev.arg_type {
                Some(a) => (a, false),
                None => continue,
            },
            _ => continue,
        };
        let still = newest
            .lookup(&e.name)
            .is_some_and(|n| newest.entity(n).meta() == e.meta());
        if !still {
            t.dropped.push(format!("{} {}", e.meta(), e.name));
            continue;
        }
        for round in 0..4 {
            let mut synth = Synth {
                s: schema,
                turn: i + round * 7,
            };
            let value = synth.value(arg, 0);
            let decode = |strict: bool| -> Result<(), String> {
                qapi_types::set_strict(strict);
                if is_command {
                    match ret(&e.name, value.clone()) {
                        Some(r) => r.map_err(|e| e.to_string()),
                        None => Err("not in the bindings".into()),
                    }
                } else {
                    match ev(&e.name, value.clone()) {
                        Some(true) => Ok(()),
                        Some(false) => Err("kept as Event::Other".into()),
                        None => Err("no events".into()),
                    }
                }
            };
            let what = format!("QEMU {release} {} {}", e.meta(), e.name);
            match (decode(true), decode(false)) {
                (Ok(()), _) => t.decoded += 1,
                (Err(strict), Ok(())) => {
                    t.decoded += 1;
                    t.older_parts.push(format!("{what}: {strict}"));
                }
                (Err(_), Err(lax)) => t.failures.push(format!("{what}: {lax}\n  sent: {value}")),
            }
        }
    }
}

#[test]
fn the_bindings_decode_every_older_release() {
    let root = qapi_tests::qemu_src::workspace_root();
    let mut releases: Vec<String> = std::fs::read_dir(root.join("schema/older"))
        .expect("schema/older")
        .flatten()
        .filter(|e| e.path().join("MANIFEST").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let version =
        |r: &String| -> Vec<u32> { r.split('.').filter_map(|p| p.parse().ok()).collect() };
    releases.sort_by_key(version);
    assert!(releases.len() >= 5, "older releases: {releases:?}");
    let modules: [(&str, CheckReturn, DecodeEvent); 2] = [
        (
            "qapi/qapi-schema.json",
            qapi_types::qmp::commands::check_return,
            qmp_event,
        ),
        (
            "qga/qapi-schema.json",
            qapi_types::qga::commands::check_return,
            qga_event,
        ),
    ];
    let mut failures = Vec::new();
    for (file, ret, ev) in modules {
        let newest = read(&root.join("schema/qemu").join(file));
        for release in &releases {
            let schema = read(&root.join("schema/older").join(release).join(file));
            let mut t = Tally::default();
            check(release, &schema, &newest, ret, ev, &mut t);
            t.older_parts.dedup();
            println!(
                "QEMU {release} {file}: {} replies and events decoded ({} only in the default mode); \
                 not in the newest schema: {}",
                t.decoded,
                t.older_parts.len(),
                if t.dropped.is_empty() { "none".to_string() } else { t.dropped.join(", ") }
            );
            for p in &t.older_parts {
                println!("  carries what the newest schema lacks: {p}");
            }
            assert!(t.decoded > 0, "QEMU {release} {file}: nothing decoded");
            failures.extend(t.failures);
        }
    }
    qapi_types::set_strict(false);
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
