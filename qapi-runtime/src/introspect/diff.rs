//! Comparing two `query-qmp-schema` answers structurally.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use serde_json::Value;

use super::model::{Entity, Kind, Schema};

/// One difference below a pair of types: where (appended to the path
/// the pair was reached by) and what.
type Found = Vec<(String, String)>;

struct Compare<'a> {
    ours: &'a Schema,
    theirs: &'a Schema,
    /// The differences below each pair of types compared so far, for
    /// pairs whose comparison did not stop at a pair still in progress.
    done: HashMap<(&'a str, &'a str), Rc<Found>>,
    /// The pairs being compared, outermost first.
    stack: Vec<(&'a str, &'a str)>,
}

/// The JSON type an alternate's branch takes, by which branches pair up.
fn branch_kind(e: Option<&Entity>) -> String {
    match e.map(|e| &e.kind) {
        Some(Kind::Builtin(b)) => b.json_type.clone(),
        Some(Kind::Enum(_)) => "string".into(),
        Some(k) => k.meta_type().into(),
        None => "?".into(),
    }
}

/// Features that only one side has, at `at`.
fn features(at: &str, x: &[String], y: &[String], out: &mut Found) {
    let (fa, fb): (BTreeSet<&String>, BTreeSet<&String>) = (x.iter().collect(), y.iter().collect());
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
        let (Some(ea), Some(eb)) = (self.ours.get(a), self.theirs.get(b)) else {
            out.push((String::new(), format!("type {a} / {b} is not described")));
            return usize::MAX;
        };
        let (ma, mb) = (ea.kind.meta_type(), eb.kind.meta_type());
        if ma != mb {
            out.push((
                String::new(),
                format!("a {ma} in the bindings, a {mb} on the server"),
            ));
            return usize::MAX;
        }
        features("", &ea.features, &eb.features, out);
        let mut reached = usize::MAX;
        let mut below = |this: &mut Self, at: String, x: &'a str, y: &'a str, out: &mut Found| {
            let (found, r) = this.types(x, y);
            reached = reached.min(r);
            out.extend(found.iter().map(|(p, m)| (format!("{at}{p}"), m.clone())));
        };
        match (&ea.kind, &eb.kind) {
            (Kind::Builtin(x), Kind::Builtin(y)) if x.json_type != y.json_type => {
                out.push((String::new(), format!("builtin {a} differs from {b}")));
            }
            (Kind::Enum(x), Kind::Enum(y)) => {
                let (va, vb): (BTreeSet<&str>, BTreeSet<&str>) =
                    (x.names().collect(), y.names().collect());
                for v in va.difference(&vb) {
                    out.push((String::new(), format!("value '{v}' only in the bindings")));
                }
                for v in vb.difference(&va) {
                    out.push((String::new(), format!("value '{v}' only on the server")));
                }
                let by_name: BTreeMap<&str, _> =
                    y.members.iter().map(|m| (m.name.as_str(), m)).collect();
                let fa: BTreeMap<&str, _> =
                    x.members.iter().map(|m| (m.name.as_str(), m)).collect();
                for (v, m) in &fa {
                    if let Some(n) = by_name.get(v) {
                        features(&format!(" '{v}'"), &m.features, &n.features, out);
                    }
                }
            }
            (Kind::Array(x), Kind::Array(y)) => {
                below(self, "[]".into(), &x.element_type, &y.element_type, out)
            }
            (Kind::Alternate(x), Kind::Alternate(y)) => {
                let branches =
                    |side: &'a Schema, types: &'a [String]| -> BTreeMap<String, &'a str> {
                        types
                            .iter()
                            .map(|t| (branch_kind(side.get(t)), t.as_str()))
                            .collect()
                    };
                let (ba, bb) = (
                    branches(self.ours, &x.branches),
                    branches(self.theirs, &y.branches),
                );
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
            (Kind::Object(x), Kind::Object(y)) => {
                let (ma, mb): (BTreeMap<&str, _>, BTreeMap<&str, _>) = (
                    x.members.iter().map(|m| (m.name.as_str(), m)).collect(),
                    y.members.iter().map(|m| (m.name.as_str(), m)).collect(),
                );
                for (name, p) in &ma {
                    let Some(q) = mb.get(name) else {
                        out.push((
                            String::new(),
                            format!("member '{name}' only in the bindings"),
                        ));
                        continue;
                    };
                    if p.optional != q.optional {
                        let word = |o: bool| if o { "optional" } else { "required" };
                        out.push((
                            format!(".{name}"),
                            format!(
                                "{} in the bindings, {} on the server",
                                word(p.optional),
                                word(q.optional)
                            ),
                        ));
                    }
                    features(&format!(".{name}"), &p.features, &q.features, out);
                    below(self, format!(".{name}"), &p.ty, &q.ty, out);
                }
                for name in mb.keys().filter(|n| !ma.contains_key(*n)) {
                    out.push((String::new(), format!("member '{name}' only on the server")));
                }
                if x.tag != y.tag {
                    out.push((String::new(), "the union's tag differs".into()));
                }
                let (va, vb): (BTreeMap<&str, &str>, BTreeMap<&str, &str>) = (
                    x.variants
                        .iter()
                        .map(|v| (v.case.as_str(), v.ty.as_str()))
                        .collect(),
                    y.variants
                        .iter()
                        .map(|v| (v.case.as_str(), v.ty.as_str()))
                        .collect(),
                );
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
}

/// How two resolved SchemaInfo lists differ, command by command and
/// event by event, following the types they use (masked names are
/// matched by position in the structure, not by number).  Every
/// difference is reported at every place a command or event reaches it
/// (a type used by two commands, or twice by one, is reported under
/// each; a recursive type's inside once, where it is first entered).
/// Alternates' branches pair up by JSON type.  Empty when they describe
/// the same protocol.
///
/// Each list is read with [`Schema::parse`] (a type it names but does
/// not describe is a difference where it is reached); a list that does
/// not read is the one difference reported.  [`Schema::differences`]
/// compares schemas already read.
pub fn differences(ours: &Value, theirs: &Value) -> Vec<String> {
    match (Schema::parse(ours), Schema::parse(theirs)) {
        (Ok(a), Ok(b)) => a.differences(&b),
        (Err(e), _) => vec![format!("the bindings' list does not read: {e}")],
        (_, Err(e)) => vec![format!("the server's list does not read: {e}")],
    }
}

impl Schema {
    /// How this schema (ours: the bindings') and `theirs` (the server's)
    /// differ, as [`differences`] says.
    pub fn differences<'a>(&'a self, theirs: &'a Schema) -> Vec<String> {
        let mut c = Compare {
            ours: self,
            theirs,
            done: HashMap::new(),
            stack: Vec::new(),
        };
        let mut out = Vec::new();
        let names = |s: &'a Schema, meta: &str| -> BTreeSet<&'a str> {
            s.entities()
                .iter()
                .filter(|e| e.kind.meta_type() == meta)
                .map(|e| e.name.as_str())
                .collect()
        };
        for meta in ["command", "event"] {
            let (a, b) = (names(self, meta), names(theirs, meta));
            for n in a.difference(&b) {
                out.push(format!("{meta} {n}: only in the bindings"));
            }
            for n in b.difference(&a) {
                out.push(format!("{meta} {n}: only on the server"));
            }
            for n in a.intersection(&b) {
                let (ea, eb) = (self.get(n).expect("listed"), theirs.get(n).expect("listed"));
                let (pairs, oob): (Vec<(&str, &str, &str)>, bool) = match (&ea.kind, &eb.kind) {
                    (Kind::Command(x), Kind::Command(y)) => (
                        vec![
                            ("arg-type", &x.arg_type, &y.arg_type),
                            ("ret-type", &x.ret_type, &y.ret_type),
                        ],
                        x.allow_oob != y.allow_oob,
                    ),
                    (Kind::Event(x), Kind::Event(y)) => {
                        (vec![("arg-type", &x.arg_type, &y.arg_type)], false)
                    }
                    _ => (Vec::new(), false),
                };
                for (k, ta, tb) in pairs {
                    let (found, _) = c.types(ta, tb);
                    out.extend(found.iter().map(|(p, m)| format!("{meta} {n} {k}{p}: {m}")));
                }
                if oob {
                    out.push(format!("{meta} {n}: allow-oob differs"));
                }
                let mut found = Found::new();
                features("", &ea.features, &eb.features, &mut found);
                out.extend(found.iter().map(|(_, m)| format!("{meta} {n}: {m}")));
            }
        }
        out
    }
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

    #[test]
    fn a_list_that_does_not_read_is_the_difference() {
        let ok = json!([{"name": "int", "meta-type": "builtin", "json-type": "int"}]);
        let bad = json!([{"name": "x", "meta-type": "thing"}]);
        assert_eq!(
            differences(&ok, &bad),
            ["the server's list does not read: entry 0 ('x'): unknown meta-type 'thing'"]
        );
        assert!(differences(&bad, &ok)[0].starts_with("the bindings' list does not read"));
        assert!(differences(&ok, &ok).is_empty());
    }
}
