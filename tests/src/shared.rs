//! What two QEMU releases share, for strict decoding across versions.
//!
//! A reply from QEMU 7.2 decoded with the 10.0.2 bindings may carry
//! members and enum values that 10.0.2's schema dropped (7.2's
//! `StatusInfo` has `singlestep`, for one).  Strict decoding rightly
//! rejects those; what must decode strictly is everything the two
//! releases share.  [`prune_older`] walks a reply along the newer
//! schema's types and removes exactly the members the newer type lacks
//! but the older release's type of the same name has, reporting each;
//! anything else unknown stays, so strict decoding still catches it.

use qapi_parser::{EntityId, EntityKind, Schema};
use serde_json::Value;

/// Remove from `value` (of the newer schema's type `ty`) what only the
/// older schema has; returns what was removed (`Type.member`), what
/// could not be (`Type value V`: an enum value only the older has), and
/// what the older release cannot send (`Type.member (required, newer
/// only)`).
pub fn prune_older(newer: &Schema, older: &Schema, ty: EntityId, value: &mut Value) -> Vec<String> {
    let mut log = Vec::new();
    walk(newer, older, ty, value, &mut log);
    log
}

/// Every member name (branches' too) and enum value the older schema's
/// type `name` has.
fn older_names(older: &Schema, name: &str) -> Vec<String> {
    let Some(id) = older.lookup(name) else {
        return Vec::new();
    };
    match &older.entity(id).kind {
        EntityKind::Enum(e) => e.values.iter().map(|v| v.name.clone()).collect(),
        EntityKind::Object(o) => {
            let mut names: Vec<String> = o.members.iter().map(|m| m.name.clone()).collect();
            if let Some(b) = &o.branches {
                for v in &b.variants {
                    if let EntityKind::Object(bo) = &older.entity(v.ty).kind {
                        names.extend(bo.members.iter().map(|m| m.name.clone()));
                    }
                }
            }
            names
        }
        _ => Vec::new(),
    }
}

fn walk(newer: &Schema, older: &Schema, ty: EntityId, value: &mut Value, log: &mut Vec<String>) {
    let entity = newer.entity(ty);
    match &entity.kind {
        EntityKind::Enum(e) => {
            if let Value::String(s) = value {
                if !e.values.iter().any(|v| &v.name == s)
                    && older_names(older, &entity.name).contains(s)
                {
                    log.push(format!("{} value {s}", entity.name));
                }
            }
        }
        EntityKind::Array(a) => {
            if let Value::Array(items) = value {
                for item in items {
                    walk(newer, older, a.element, item, log);
                }
            }
        }
        EntityKind::Alternate(alt) => {
            for v in &alt.variants {
                let fits = match &newer.entity(v.ty).kind {
                    EntityKind::Object(_) => value.is_object(),
                    EntityKind::Array(_) => value.is_array(),
                    EntityKind::Enum(_) => value.is_string(),
                    EntityKind::Builtin(_) => true,
                    _ => false,
                };
                if fits {
                    walk(newer, older, v.ty, value, log);
                    break;
                }
            }
        }
        EntityKind::Object(o) => {
            let Value::Object(map) = value else {
                return;
            };
            let mut members: Vec<(&str, EntityId)> =
                o.members.iter().map(|m| (m.name.as_str(), m.ty)).collect();
            let old = older_names(older, &entity.name);
            // Required in the newer type, unknown to the older one: the
            // older release cannot send it.
            for m in o.members.iter().filter(|m| !m.optional) {
                if !map.contains_key(&m.name) && !old.contains(&m.name) {
                    log.push(format!("{}.{} (required, newer only)", entity.name, m.name));
                }
            }
            if let Some(b) = &o.branches {
                let tag = map.get(&b.tag).and_then(Value::as_str).unwrap_or("");
                if let Some(v) = b.variants.iter().find(|v| v.name == tag) {
                    if let EntityKind::Object(bo) = &newer.entity(v.ty).kind {
                        members.extend(bo.members.iter().map(|m| (m.name.as_str(), m.ty)));
                    }
                }
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                match members.iter().find(|(n, _)| *n == key) {
                    Some(&(_, mty)) => {
                        if let Some(child) = map.get_mut(&key) {
                            walk(newer, older, mty, child, log);
                        }
                    }
                    None if old.contains(&key) => {
                        map.remove(&key);
                        log.push(format!("{}.{key}", entity.name));
                    }
                    None => {}
                }
            }
        }
        _ => {}
    }
}
