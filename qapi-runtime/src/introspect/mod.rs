//! Introspection: the one model of QEMU's `query-qmp-schema` answer
//! ([`Schema`]), and what is done with it.
//!
//! - **The model.** [`Schema`] is the answer (a list of `SchemaInfo`
//!   objects, QEMU's `qapi/introspect.json`) read once into typed
//!   [`Entity`]s, in the answer's order and keyed by name, with lookups:
//!   an entity by name, a command's argument and return types, an
//!   object's members and branches, an enum's values, an array's element,
//!   an alternate's branches, features.  Probing (`qapi_client::probe`),
//!   `qmp-shell`, the fake QEMU and the comparison below all read it.
//! - **Paths** in libvirt's language, asked of a schema ([`Schema::query`],
//!   [`Schema::features`]; see [Paths](#paths)).
//! - **Checks** of a command value against a server's schema
//!   ([`Schema::check`]): what the server does not know ([`Unknown`]),
//!   and what it marks `deprecated` or `unstable` ([`Warning`]).
//! - **Conditions.** The bindings' own `SCHEMA_INFO` keeps QEMU's build
//!   conditions (`{"if": …, "then": …}`); [`resolve`] applies one build's
//!   to that JSON, the one place JSON is handled before it is read into
//!   the model.
//! - **Comparison.** [`differences`] compares two answers structurally
//!   (masked names by position, each difference at every path that
//!   reaches it).
//!
//! ```no_run
//! # fn f(qmp: qapi_types::blocking::Qmp) -> qapi_types::Result<()> {
//! use qapi_types::introspect::{differences, resolve};
//! let ours: serde_json::Value = serde_json::from_str(qapi_types::qmp::SCHEMA_INFO).unwrap();
//! // Conditions of the build you expect (here: a Linux host).
//! let ours = resolve(&ours, &|sym| matches!(sym, "CONFIG_LINUX" | "CONFIG_POSIX"));
//! let theirs = qmp.execute_raw("query-qmp-schema", None)?;
//! for d in differences(&ours, &theirs) {
//!     println!("{d}");
//! }
//! # Ok(()) }
//! ```
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
//! use qapi_types::introspect::Schema;
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
//! // The model itself.
//! let arg = &schema.command("blockdev-add").unwrap().arg_type;
//! let file = schema.object(arg).unwrap().variant("file").unwrap();
//! assert_eq!(schema.object(&file.ty).unwrap().members[0].name, "aio");
//! ```

use serde_json::Value;

mod check;
mod diff;
mod model;
mod path;

pub use check::{EncodeError, Report, Unknown, UnknownKind, Warning};
pub use diff::differences;
pub use model::{
    AlternateInfo, ArrayInfo, BuiltinInfo, CommandInfo, Entity, EnumInfo, EnumMember, EventInfo,
    Kind, Member, ObjectInfo, Schema, Variant,
};
pub use path::PathError;

/// Whether a condition (`"CONFIG_X"`, `{"all": […]}`, `{"any": […]}`,
/// `{"not": …}`) holds when `defined` says which symbols are set.
pub fn holds(cond: &Value, defined: &dyn Fn(&str) -> bool) -> bool {
    match cond {
        Value::String(s) => defined(s),
        Value::Object(m) => {
            if let Some(Value::Array(v)) = m.get("all") {
                v.iter().all(|c| holds(c, defined))
            } else if let Some(Value::Array(v)) = m.get("any") {
                v.iter().any(|c| holds(c, defined))
            } else if let Some(c) = m.get("not") {
                !holds(c, defined)
            } else {
                false
            }
        }
        _ => false,
    }
}

fn conditional(v: &Value) -> Option<(&Value, &Value)> {
    let m = v.as_object()?;
    if m.len() == 2 {
        Some((m.get("if")?, m.get("then")?))
    } else {
        None
    }
}

/// Resolve the conditions of annotated introspection data for one build:
/// conditional elements whose condition holds are kept (unwrapped), the
/// others dropped.  The result is what that build's QEMU answers, ready
/// for [`Schema::from_value`].
pub fn resolve(annotated: &Value, defined: &dyn Fn(&str) -> bool) -> Value {
    match annotated {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter_map(|item| match conditional(item) {
                    Some((cond, then)) => holds(cond, defined).then(|| resolve(then, defined)),
                    None => Some(resolve(item, defined)),
                })
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), resolve(v, defined)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A schema shaped like QEMU's: a union with branches, an alternate,
    /// an array, deprecated parts, masked names.
    pub(super) fn schema() -> Schema {
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
    fn conditions_resolve_per_build() {
        let data = json!([
            {"name": "a", "meta-type": "command", "arg-type": "0", "ret-type": "0"},
            {"if": {"all": ["X", {"not": "Y"}]}, "then": {"name": "b", "meta-type": "command",
                                                  "arg-type": "0", "ret-type": "0"}},
            {"name": "0", "meta-type": "object", "members": [
                {"if": {"any": ["Y", "Z"]}, "then": {"name": "m", "type": "int"}}]}
        ]);
        let only_x = resolve(&data, &|s| s == "X");
        assert_eq!(only_x.as_array().unwrap().len(), 3);
        assert_eq!(only_x[2]["members"], json!([]));
        let y = resolve(&data, &|s| s == "Y");
        assert_eq!(y.as_array().unwrap().len(), 2);
        assert_eq!(y[1]["members"][0]["name"], "m");
        let d = differences(&only_x, &y);
        assert!(
            d.contains(&"command b: only in the bindings".to_string()),
            "{d:?}"
        );
        assert!(
            d.iter()
                .any(|l| l.contains("member 'm' only on the server")),
            "{d:?}"
        );
    }
}
