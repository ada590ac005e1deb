//! Introspection: the bindings' own `SCHEMA_INFO` (what QEMU's
//! `query-qmp-schema` returns, conditions kept) resolved for one build,
//! and compared with what a server answers.
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

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

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
/// others dropped.
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

/// One side of a comparison: its entries by name.
struct Side<'a> {
    by_name: BTreeMap<&'a str, &'a Value>,
}

impl<'a> Side<'a> {
    fn new(list: &'a Value) -> Side<'a> {
        let mut by_name = BTreeMap::new();
        for e in list.as_array().map(Vec::as_slice).unwrap_or_default() {
            if let Some(n) = e["name"].as_str() {
                by_name.insert(n, e);
            }
        }
        Side { by_name }
    }

    fn entry(&self, name: &str) -> Option<&'a Value> {
        self.by_name.get(name).copied()
    }
}

fn names(v: &Value, key: &str) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| {
                    if key.is_empty() {
                        x.as_str().map(str::to_string)
                    } else {
                        x[key].as_str().map(str::to_string)
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

struct Compare<'a> {
    ours: Side<'a>,
    theirs: Side<'a>,
    seen: HashSet<(String, String)>,
    out: Vec<String>,
}

impl Compare<'_> {
    /// Compare the types named `a` (ours) and `b` (theirs), reached by
    /// `path`.
    fn types(&mut self, path: &str, a: &str, b: &str) {
        if !self.seen.insert((a.to_string(), b.to_string())) {
            return;
        }
        let (Some(ea), Some(eb)) = (self.ours.entry(a), self.theirs.entry(b)) else {
            self.out
                .push(format!("{path}: type {a} / {b} is not described"));
            return;
        };
        let (ma, mb) = (ea["meta-type"].as_str(), eb["meta-type"].as_str());
        if ma != mb {
            self.out.push(format!(
                "{path}: a {} in the bindings, a {} on the server",
                ma.unwrap_or("?"),
                mb.unwrap_or("?")
            ));
            return;
        }
        match ma.unwrap_or("") {
            "builtin" if ea["json-type"] != eb["json-type"] => {
                self.out
                    .push(format!("{path}: builtin {a} differs from {b}"));
            }
            "enum" => {
                let (va, vb) = (names(&ea["values"], ""), names(&eb["values"], ""));
                for v in va.difference(&vb) {
                    self.out
                        .push(format!("{path}: value '{v}' only in the bindings"));
                }
                for v in vb.difference(&va) {
                    self.out
                        .push(format!("{path}: value '{v}' only on the server"));
                }
            }
            "array" => {
                let (xa, xb) = (ea["element-type"].as_str(), eb["element-type"].as_str());
                self.types(&format!("{path}[]"), xa.unwrap_or(""), xb.unwrap_or(""));
            }
            "alternate" => {
                let (la, lb) = (
                    ea["members"].as_array().cloned().unwrap_or_default(),
                    eb["members"].as_array().cloned().unwrap_or_default(),
                );
                if la.len() != lb.len() {
                    self.out.push(format!(
                        "{path}: {} alternatives in the bindings, {} on the server",
                        la.len(),
                        lb.len()
                    ));
                }
            }
            "object" => self.object(path, ea, eb),
            _ => {}
        }
    }

    fn object(&mut self, path: &str, ea: &Value, eb: &Value) {
        let members = |e: &Value| -> BTreeMap<String, (String, bool)> {
            e["members"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| {
                            Some((
                                m["name"].as_str()?.to_string(),
                                (m["type"].as_str()?.to_string(), m.get("default").is_some()),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let (ma, mb) = (members(ea), members(eb));
        for (name, (ta, opt_a)) in &ma {
            match mb.get(name) {
                None => self
                    .out
                    .push(format!("{path}: member '{name}' only in the bindings")),
                Some((tb, opt_b)) => {
                    if opt_a != opt_b {
                        self.out.push(format!(
                            "{path}.{name}: {} in the bindings, {} on the server",
                            if *opt_a { "optional" } else { "required" },
                            if *opt_b { "optional" } else { "required" }
                        ));
                    }
                    self.types(&format!("{path}.{name}"), ta, tb);
                }
            }
        }
        for name in mb.keys().filter(|n| !ma.contains_key(*n)) {
            self.out
                .push(format!("{path}: member '{name}' only on the server"));
        }
        let variants = |e: &Value| -> BTreeMap<String, String> {
            e["variants"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| {
                            Some((
                                v["case"].as_str()?.to_string(),
                                v["type"].as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let (va, vb) = (variants(ea), variants(eb));
        for (case, ta) in &va {
            match vb.get(case) {
                None => self
                    .out
                    .push(format!("{path}: branch '{case}' only in the bindings")),
                Some(tb) => self.types(&format!("{path}({case})"), ta, tb),
            }
        }
        for case in vb.keys().filter(|c| !va.contains_key(*c)) {
            self.out
                .push(format!("{path}: branch '{case}' only on the server"));
        }
    }
}

/// How two resolved SchemaInfo lists differ, command by command and
/// event by event, following the types they use (masked names are
/// matched by position in the structure, not by number).  Empty when
/// they describe the same protocol.
pub fn differences(ours: &Value, theirs: &Value) -> Vec<String> {
    let mut c = Compare {
        ours: Side::new(ours),
        theirs: Side::new(theirs),
        seen: HashSet::new(),
        out: Vec::new(),
    };
    let entries = |side: &Side, meta: &str| -> BTreeSet<String> {
        side.by_name
            .iter()
            .filter(|(_, e)| e["meta-type"] == meta)
            .map(|(n, _)| n.to_string())
            .collect()
    };
    for meta in ["command", "event"] {
        let (a, b) = (entries(&c.ours, meta), entries(&c.theirs, meta));
        for n in a.difference(&b) {
            c.out.push(format!("{meta} {n}: only in the bindings"));
        }
        for n in b.difference(&a) {
            c.out.push(format!("{meta} {n}: only on the server"));
        }
        for n in a.intersection(&b) {
            let (ea, eb) = (c.ours.by_name[n.as_str()], c.theirs.by_name[n.as_str()]);
            let keys: &[&str] = if meta == "command" {
                &["arg-type", "ret-type"]
            } else {
                &["arg-type"]
            };
            for k in keys {
                let (ta, tb) = (ea[*k].as_str().unwrap_or(""), eb[*k].as_str().unwrap_or(""));
                c.types(&format!("{meta} {n} {k}"), ta, tb);
            }
            if ea.get("allow-oob") != eb.get("allow-oob") {
                c.out.push(format!("{meta} {n}: allow-oob differs"));
            }
        }
    }
    c.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
