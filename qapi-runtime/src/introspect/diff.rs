//! Comparing two `query-qmp-schema` answers structurally.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use serde_json::Value;

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

/// One difference below a pair of types: where (appended to the path
/// the pair was reached by) and what.
type Found = Vec<(String, String)>;

struct Compare<'a> {
    ours: Side<'a>,
    theirs: Side<'a>,
    /// The differences below each pair of types compared so far, for
    /// pairs whose comparison did not stop at a pair still in progress.
    done: HashMap<(&'a str, &'a str), Rc<Found>>,
    /// The pairs being compared, outermost first.
    stack: Vec<(&'a str, &'a str)>,
}

fn features(v: &Value) -> BTreeSet<String> {
    names(&v["features"], "")
}

/// The JSON type an alternate's branch takes, by which branches pair up.
fn branch_kind(e: &Value) -> String {
    match e["meta-type"].as_str() {
        Some("builtin") => e["json-type"].as_str().unwrap_or("?").to_string(),
        Some("enum") => "string".into(),
        Some(m) => m.to_string(),
        None => "?".into(),
    }
}

impl<'a> Compare<'a> {
    /// The differences below the types named `a` (ours) and `b`
    /// (theirs), wherever they pair up, and the depth of the outermost
    /// pair in progress that the comparison met again (a recursive type:
    /// what lies below it is reported where it was entered).
    fn types(&mut self, a: &'a str, b: &'a str) -> (Rc<Found>, usize) {
        if let Some(f) = self.done.get(&(a, b)) {
            return (f.clone(), usize::MAX);
        }
        if let Some(depth) = self.stack.iter().position(|p| *p == (a, b)) {
            return (Rc::new(Vec::new()), depth);
        }
        let depth = self.stack.len();
        self.stack.push((a, b));
        let mut out = Found::new();
        let reached = self.compare(a, b, &mut out);
        self.stack.pop();
        let out = Rc::new(out);
        if reached >= depth {
            // Complete: nothing outside this pair cut it short.
            self.done.insert((a, b), out.clone());
        }
        (out, reached)
    }

    /// Compare `a` and `b` and what they use into `out`; the outermost
    /// pair in progress met, as in [`Compare::types`].
    fn compare(&mut self, a: &'a str, b: &'a str, out: &mut Found) -> usize {
        let (Some(ea), Some(eb)) = (self.ours.entry(a), self.theirs.entry(b)) else {
            out.push((String::new(), format!("type {a} / {b} is not described")));
            return usize::MAX;
        };
        let (ma, mb) = (ea["meta-type"].as_str(), eb["meta-type"].as_str());
        if ma != mb {
            out.push((
                String::new(),
                format!(
                    "a {} in the bindings, a {} on the server",
                    ma.unwrap_or("?"),
                    mb.unwrap_or("?")
                ),
            ));
            return usize::MAX;
        }
        self.features("", ea, eb, out);
        let mut reached = usize::MAX;
        let mut below =
            |this: &mut Self, at: String, x: &'a Value, y: &'a Value, out: &mut Found| {
                let (found, r) = this.types(x.as_str().unwrap_or(""), y.as_str().unwrap_or(""));
                reached = reached.min(r);
                out.extend(found.iter().map(|(p, m)| (format!("{at}{p}"), m.clone())));
            };
        match ma.unwrap_or("") {
            "builtin" if ea["json-type"] != eb["json-type"] => {
                out.push((String::new(), format!("builtin {a} differs from {b}")));
            }
            "enum" => {
                let (va, vb) = (names(&ea["values"], ""), names(&eb["values"], ""));
                for v in va.difference(&vb) {
                    out.push((String::new(), format!("value '{v}' only in the bindings")));
                }
                for v in vb.difference(&va) {
                    out.push((String::new(), format!("value '{v}' only on the server")));
                }
                let by_name = |e: &'a Value| -> BTreeMap<&'a str, &'a Value> {
                    e["members"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|m| Some((m["name"].as_str()?, m)))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let (fa, fb) = (by_name(ea), by_name(eb));
                for (v, x) in &fa {
                    if let Some(y) = fb.get(v) {
                        self.features(&format!(" '{v}'"), x, y, out);
                    }
                }
            }
            "array" => below(
                self,
                "[]".into(),
                &ea["element-type"],
                &eb["element-type"],
                out,
            ),
            "alternate" => {
                let branches = |side: &Side<'a>, e: &'a Value| -> BTreeMap<String, &'a Value> {
                    e["members"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|m| {
                                    let kind = m["type"]
                                        .as_str()
                                        .and_then(|t| side.entry(t))
                                        .map_or("?".into(), branch_kind);
                                    (kind, &m["type"])
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let (ba, bb) = (branches(&self.ours, ea), branches(&self.theirs, eb));
                for (kind, ta) in &ba {
                    match bb.get(kind) {
                        None => out.push((
                            String::new(),
                            format!("branch of JSON type {kind} only in the bindings"),
                        )),
                        Some(tb) => below(self, format!("|{kind}"), ta, tb, out),
                    }
                }
                for kind in bb.keys().filter(|k| !ba.contains_key(*k)) {
                    out.push((
                        String::new(),
                        format!("branch of JSON type {kind} only on the server"),
                    ));
                }
            }
            "object" => {
                let members = |e: &'a Value| -> BTreeMap<&'a str, &'a Value> {
                    e["members"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|m| Some((m["name"].as_str()?, m)))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let (ma, mb) = (members(ea), members(eb));
                for (name, x) in &ma {
                    let Some(y) = mb.get(name) else {
                        out.push((
                            String::new(),
                            format!("member '{name}' only in the bindings"),
                        ));
                        continue;
                    };
                    let (oa, ob) = (x.get("default").is_some(), y.get("default").is_some());
                    if oa != ob {
                        let word = |o: bool| if o { "optional" } else { "required" };
                        out.push((
                            format!(".{name}"),
                            format!("{} in the bindings, {} on the server", word(oa), word(ob)),
                        ));
                    }
                    self.features(&format!(".{name}"), x, y, out);
                    below(self, format!(".{name}"), &x["type"], &y["type"], out);
                }
                for name in mb.keys().filter(|n| !ma.contains_key(*n)) {
                    out.push((String::new(), format!("member '{name}' only on the server")));
                }
                if ea.get("tag") != eb.get("tag") {
                    out.push((String::new(), "the union's tag differs".into()));
                }
                let variants = |e: &'a Value| -> BTreeMap<&'a str, &'a Value> {
                    e["variants"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| Some((v["case"].as_str()?, &v["type"])))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let (va, vb) = (variants(ea), variants(eb));
                for (case, ta) in &va {
                    match vb.get(case) {
                        None => out.push((
                            String::new(),
                            format!("branch '{case}' only in the bindings"),
                        )),
                        Some(tb) => below(self, format!("({case})"), ta, tb, out),
                    }
                }
                for case in vb.keys().filter(|c| !va.contains_key(*c)) {
                    out.push((String::new(), format!("branch '{case}' only on the server")));
                }
            }
            _ => {}
        }
        reached
    }

    /// Features that only one side's `x` / `y` has, at `at`.
    fn features(&self, at: &str, x: &Value, y: &Value, out: &mut Found) {
        let (fa, fb) = (features(x), features(y));
        for f in fa.difference(&fb) {
            out.push((
                at.to_string(),
                format!("feature '{f}' only in the bindings"),
            ));
        }
        for f in fb.difference(&fa) {
            out.push((at.to_string(), format!("feature '{f}' only on the server")));
        }
    }
}

/// How two resolved SchemaInfo lists differ, command by command and
/// event by event, following the types they use (masked names are
/// matched by position in the structure, not by number).  Every
/// difference is reported at every place a command or event reaches it
/// (a type used by two commands, or twice by one, is reported under
/// each; a recursive type's inside once, where it is first entered).
/// Alternates' branches pair up by JSON type.  Empty when they describe
/// the same protocol.
pub fn differences(ours: &Value, theirs: &Value) -> Vec<String> {
    let mut c = Compare {
        ours: Side::new(ours),
        theirs: Side::new(theirs),
        done: HashMap::new(),
        stack: Vec::new(),
    };
    let mut out = Vec::new();
    let entries = |side: &Side<'_>, meta: &str| -> BTreeSet<String> {
        side.by_name
            .iter()
            .filter(|(_, e)| e["meta-type"] == meta)
            .map(|(n, _)| n.to_string())
            .collect()
    };
    for meta in ["command", "event"] {
        let (a, b) = (entries(&c.ours, meta), entries(&c.theirs, meta));
        for n in a.difference(&b) {
            out.push(format!("{meta} {n}: only in the bindings"));
        }
        for n in b.difference(&a) {
            out.push(format!("{meta} {n}: only on the server"));
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
                let (found, _) = c.types(ta, tb);
                out.extend(found.iter().map(|(p, m)| format!("{meta} {n} {k}{p}: {m}")));
            }
            if ea.get("allow-oob") != eb.get("allow-oob") {
                out.push(format!("{meta} {n}: allow-oob differs"));
            }
            let mut found = Found::new();
            c.features("", ea, eb, &mut found);
            out.extend(found.iter().map(|(_, m)| format!("{meta} {n}: {m}")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_difference_at_every_place() {
        // Type "2" pairs with "2" four times: as two members of command
        // a's arguments, under command b, inside an alternate, and
        // inside itself (a recursive type).
        let ours = json!([
            {"name": "a", "meta-type": "command", "arg-type": "1", "ret-type": "0"},
            {"name": "b", "meta-type": "command", "arg-type": "2", "ret-type": "3"},
            {"name": "0", "meta-type": "object", "members": []},
            {"name": "1", "meta-type": "object", "members": [
                {"name": "x", "type": "2"}, {"name": "y", "type": "2", "default": null}]},
            {"name": "2", "meta-type": "object", "members": [
                {"name": "m", "type": "int"}, {"name": "next", "type": "2", "default": null}]},
            {"name": "3", "meta-type": "alternate", "members": [{"type": "2"}, {"type": "str"}]},
            {"name": "int", "meta-type": "builtin", "json-type": "int"},
            {"name": "str", "meta-type": "builtin", "json-type": "string"}
        ]);
        let mut theirs = ours.clone();
        theirs[4]["members"][0]["name"] = json!("n");
        theirs[4]["members"][1]["features"] = json!(["deprecated"]);
        theirs[5]["members"] = json!([{"type": "str"}, {"type": "2"}]);
        let d = differences(&ours, &theirs);
        let mut want = Vec::new();
        for at in [
            "command a arg-type.x",
            "command a arg-type.y",
            "command b arg-type",
            "command b ret-type|object",
        ] {
            want.push(format!("{at}: member 'm' only in the bindings"));
            want.push(format!(
                "{at}.next: feature 'deprecated' only on the server"
            ));
            want.push(format!("{at}: member 'n' only on the server"));
        }
        let mut got = d.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{d:#?}");

        // An alternate that lost a branch says so.
        theirs[5]["members"] = json!([{"type": "str"}]);
        let d = differences(&ours, &theirs);
        assert!(
            d.contains(
                &"command b ret-type: branch of JSON type object only in the bindings".into()
            ),
            "{d:#?}"
        );
    }
}
