//! Paths in libvirt's language, asked of a [`Schema`] (the module
//! documentation's [Paths](super#paths)).

use std::collections::HashSet;
use std::fmt;

use super::model::{Entity, Kind, Schema};

impl Schema {
    /// Whether `path` holds (see [Paths](super#paths)).
    pub fn query(&self, path: &str) -> Result<bool, PathError> {
        Ok(!self.walk(path)?.is_empty())
    }

    /// The features of what `path` names (without a final `$feature`):
    /// of the command or event, the member, the enum value, and of the
    /// type reached; when alternates make the path reach several things,
    /// the features of all of them.  Empty when the path does not hold.
    /// `deprecated` and `unstable` are QEMU's special features.
    pub fn features(&self, path: &str) -> Result<Vec<String>, PathError> {
        let mut out: Vec<String> = Vec::new();
        for at in self.walk(path)? {
            for f in self.features_at(&at) {
                if !out.iter().any(|x| x == f) {
                    out.push(f.clone());
                }
            }
        }
        Ok(out)
    }

    fn features_at<'a>(&'a self, at: &At<'a>) -> Vec<&'a String> {
        let mut out: Vec<&String> = at.named.iter().flat_map(|f| f.iter()).collect();
        if let Some(ty) = at.ty {
            out.extend(self.features_of(ty));
            for t in self.look_through(ty) {
                out.extend(self.features_of(t));
            }
        }
        out
    }

    /// The types a step after type `ty` applies to: arrays looked
    /// through, alternates replaced by their branches (each once).
    fn look_through<'a>(&'a self, ty: &'a str) -> Vec<&'a str> {
        let mut out = Vec::new();
        let mut todo = vec![ty];
        let mut seen = HashSet::new();
        while let Some(t) = todo.pop() {
            if !seen.insert(t) {
                continue;
            }
            match self.kind(t) {
                Some(Kind::Array(a)) => todo.push(&a.element_type),
                Some(Kind::Alternate(a)) => {
                    todo.extend(a.branches.iter().rev().map(String::as_str))
                }
                _ => out.push(t),
            }
        }
        out
    }

    /// Everything `path` reaches.
    fn walk(&self, path: &str) -> Result<Vec<At<'_>>, PathError> {
        let steps = parse(path)?;
        let (root, rest) = steps.split_first().expect("parse gives a root");
        let Step::Member { name, .. } = root else {
            unreachable!("parse checks the root");
        };
        let Some(entity) = self.get(name).filter(|e| !e.kind.is_type()) else {
            return Ok(Vec::new());
        };
        let mut at = vec![At {
            entity: Some(entity),
            ty: None,
            named: Some(&entity.features),
        }];
        for step in rest {
            let mut next = Vec::new();
            for a in &at {
                self.step(a, step, &mut next);
            }
            at = next;
            if at.is_empty() {
                break;
            }
        }
        Ok(at)
    }

    fn step<'a>(&'a self, at: &At<'a>, step: &Step<'_>, out: &mut Vec<At<'a>>) {
        let types = at.ty.map(|t| self.look_through(t)).unwrap_or_default();
        match step {
            Step::Arg | Step::Ret => {
                let ty = match (at.entity.map(|e| &e.kind), step) {
                    (Some(Kind::Command(c)), Step::Arg) => &c.arg_type,
                    (Some(Kind::Event(e)), Step::Arg) => &e.arg_type,
                    (Some(Kind::Command(c)), Step::Ret) => &c.ret_type,
                    _ => return,
                };
                out.push(At {
                    entity: None,
                    ty: Some(ty),
                    named: None,
                });
            }
            Step::Member { name, optional } => {
                for o in types.iter().filter_map(|t| self.object(t)) {
                    for m in &o.members {
                        if m.name == *name && (m.optional || !optional) {
                            out.push(At {
                                entity: None,
                                ty: Some(&m.ty),
                                named: Some(&m.features),
                            });
                        }
                    }
                }
            }
            Step::Branch(case) => {
                for o in types.iter().filter_map(|t| self.object(t)) {
                    for v in o.variants.iter().filter(|v| v.case == *case) {
                        out.push(At {
                            entity: None,
                            ty: Some(&v.ty),
                            named: None,
                        });
                    }
                }
            }
            Step::Value(v) => {
                for e in types.iter().filter_map(|t| self.enumeration(t)) {
                    for x in e.members.iter().filter(|x| x.name == *v) {
                        out.push(At {
                            entity: None,
                            ty: None,
                            named: Some(&x.features),
                        });
                    }
                }
            }
            Step::Json(j) => {
                if types
                    .iter()
                    .any(|t| self.kind(t).and_then(Kind::json_type) == Some(j))
                {
                    out.push(at.clone());
                }
            }
            Step::Feature(f) => {
                if self.features_at(at).iter().any(|x| x == f) {
                    out.push(at.clone());
                }
            }
        }
    }
}

/// Where a path has got to.
#[derive(Clone)]
struct At<'a> {
    /// The command or event (the root only).
    entity: Option<&'a Entity>,
    /// The type reached (none after `^value` and at the root).
    ty: Option<&'a str>,
    /// The features of what the last step named.
    named: Option<&'a Vec<String>>,
}

#[derive(Debug, PartialEq)]
enum Step<'p> {
    Arg,
    Ret,
    Member { name: &'p str, optional: bool },
    Branch(&'p str),
    Value(&'p str),
    Json(&'p str),
    Feature(&'p str),
}

/// The JSON types `!type` accepts.
const JSON_TYPES: [&str; 7] = [
    "string", "int", "number", "boolean", "null", "value", "object",
];

/// A path that is not well formed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathError {
    /// The path.
    pub path: String,
    /// The 1-based number of the step at fault.
    pub step: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad probe path '{}', step {}: {}",
            self.path, self.step, self.message
        )
    }
}

impl std::error::Error for PathError {}

fn parse(path: &str) -> Result<Vec<Step<'_>>, PathError> {
    let err = |step: usize, message: String| PathError {
        path: path.to_string(),
        step,
        message,
    };
    let mut steps = Vec::new();
    for (i, s) in path.split('/').enumerate() {
        let n = i + 1;
        if s.is_empty() {
            return Err(err(n, "empty step".into()));
        }
        let (head, rest) = s.split_at(1);
        let need = |what: &str| {
            if rest.is_empty() {
                Err(err(n, format!("'{head}' needs {what} after it")))
            } else {
                Ok(rest)
            }
        };
        let step = if i == 0 {
            if "*+^!$".contains(head) {
                return Err(err(n, "a path starts with a command or event name".into()));
            }
            Step::Member {
                name: s,
                optional: false,
            }
        } else {
            match head {
                "*" => Step::Member {
                    name: need("a member name")?,
                    optional: true,
                },
                "+" => Step::Branch(need("a branch name")?),
                "^" => Step::Value(need("an enum value")?),
                "!" => {
                    let j = need("a JSON type")?;
                    if !JSON_TYPES.contains(&j) {
                        return Err(err(
                            n,
                            format!("unknown JSON type '{j}' (one of {})", JSON_TYPES.join(", ")),
                        ));
                    }
                    Step::Json(j)
                }
                "$" => Step::Feature(need("a feature name")?),
                _ if i == 1 && s == "arg-type" => Step::Arg,
                _ if i == 1 && s == "ret-type" => Step::Ret,
                _ if i == 1 => {
                    return Err(err(
                        n,
                        format!(
                            "'{s}': after a command or event comes arg-type, ret-type or $feature"
                        ),
                    ))
                }
                _ => Step::Member {
                    name: s,
                    optional: false,
                },
            }
        };
        match steps.last() {
            Some(Step::Json(_) | Step::Feature(_)) => {
                return Err(err(
                    n,
                    "nothing may follow a '!type' or '$feature' step".into(),
                ))
            }
            Some(Step::Value(_)) if !matches!(step, Step::Feature(_)) => {
                return Err(err(
                    n,
                    "only a '$feature' may follow a '^value' step".into(),
                ))
            }
            _ => {}
        }
        steps.push(step);
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::super::tests::schema;

    #[test]
    fn paths() {
        let s = schema();
        // (path, whether it holds)
        let table: &[(&str, bool)] = &[
            ("blockdev-add", true),
            ("STOP", true),
            ("query-y", false),
            ("query-x/$unstable", true),
            ("blockdev-add/$unstable", false),
            ("blockdev-add/arg-type/driver/^nbd", true),
            ("blockdev-add/arg-type/driver/^vvfat", false),
            ("blockdev-add/arg-type/*node-name", true),
            ("blockdev-add/arg-type/*driver", false),
            ("blockdev-add/arg-type/driver", true),
            ("blockdev-add/arg-type/cache/direct/!boolean", true),
            ("blockdev-add/arg-type/cache/direct/!string", false),
            // Branch members only through their branch.
            ("blockdev-add/arg-type/filename", false),
            ("blockdev-add/arg-type/+file/filename/!string", true),
            ("blockdev-add/arg-type/+file/aio/^io_uring", true),
            ("blockdev-add/arg-type/+file/aio/^native/$deprecated", true),
            (
                "blockdev-add/arg-type/+file/aio/^threads/$deprecated",
                false,
            ),
            ("blockdev-add/arg-type/+file/locking/$deprecated", true),
            ("blockdev-add/arg-type/+file/$dynamic-auto-read-only", true),
            ("blockdev-add/arg-type/+nbd", false),
            ("blockdev-add/arg-type/+file/+file", false),
            // Arrays looked through, alternates tried branch by branch.
            ("query-x/ret-type/tls", true),
            ("query-x/ret-type/tls/!null", true),
            ("query-x/ret-type/tls/!string", true),
            ("query-x/ret-type/tls/!int", false),
            ("STOP/ret-type", false),
            ("STOP/arg-type", true),
        ];
        for (p, holds) in table {
            assert_eq!(s.query(p), Ok(*holds), "{p}");
        }
        assert_eq!(
            s.features("blockdev-add/arg-type/+file/locking").unwrap(),
            ["deprecated"]
        );
        assert_eq!(s.features("query-x").unwrap(), ["unstable"]);
        assert!(s.features("nothing/arg-type").unwrap().is_empty());
    }

    #[test]
    fn bad_paths_are_errors() {
        let s = schema();
        for (p, step, what) in [
            ("", 1, "empty step"),
            ("blockdev-add//x", 2, "empty step"),
            ("+file", 1, "starts with a command"),
            ("blockdev-add/driver", 2, "after a command or event"),
            ("blockdev-add/arg-type/driver/!text", 4, "unknown JSON type"),
            (
                "blockdev-add/arg-type/driver/!string/x",
                5,
                "nothing may follow",
            ),
            ("query-x/$unstable/$x", 3, "nothing may follow"),
            (
                "blockdev-add/arg-type/driver/^nbd/x",
                5,
                "only a '$feature'",
            ),
            ("blockdev-add/arg-type/^", 3, "needs an enum value"),
        ] {
            let e = s.query(p).unwrap_err();
            assert_eq!(e.step, step, "{p}: {e}");
            assert!(e.to_string().contains(what), "{p}: {e}");
        }
    }
}
