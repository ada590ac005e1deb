//! Checking a command value against a server's [`Schema`] before it is
//! sent: what the server does not know, and what it marks `deprecated`
//! or `unstable`.

use std::fmt;

use serde_json::Value;

use super::model::{json_kind, Kind, Member, ObjectInfo, Schema};

/// Something in a command value that the server does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unknown {
    /// Where, as a path that does not hold on the server's schema
    /// (`blockdev-add/arg-type/+file/aio/^io_uring`).
    pub path: String,
    /// What kind of thing.
    pub kind: UnknownKind,
}

/// What kind of thing an [`Unknown`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnknownKind {
    /// The command itself.
    Command,
    /// A member of an object.
    Member,
    /// An enum value.
    Value,
    /// A union branch.
    Branch,
    /// A value of a JSON type the server does not take there (e.g.
    /// `null` where an older QEMU has a plain string, not a
    /// string-or-null alternate).
    JsonType,
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            UnknownKind::Command => "command",
            UnknownKind::Member => "member",
            UnknownKind::Value => "enum value",
            UnknownKind::Branch => "union branch",
            UnknownKind::JsonType => "JSON type",
        };
        write!(f, "{what} {}", self.path)
    }
}

/// A `deprecated` or `unstable` part of the server's schema that a
/// command value uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Warning {
    /// The part, as a path: the command, a member, an enum value, or a
    /// branch (`block-commit/arg-type/base`).
    pub path: String,
    /// `deprecated` or `unstable`.
    pub feature: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QEMU marks {} as {}", self.path, self.feature)
    }
}

/// What [`Schema::check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// What the server does not know, in the value's order.
    pub unknown: Vec<Unknown>,
    /// The `deprecated` and `unstable` parts used.
    pub warnings: Vec<Warning>,
}

/// A command that [`Schema::check_command`] could not serialize (the
/// clients' `Error` converts from it, as `Error::Encode`).
#[derive(Debug)]
pub struct EncodeError(pub serde_json::Error);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot serialize the command: {}", self.0)
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn special(features: &[String]) -> impl Iterator<Item = &String> {
    features
        .iter()
        .filter(|f| *f == "deprecated" || *f == "unstable")
}

impl Schema {
    /// Check the command `name` with `arguments` (as sent: `None` or an
    /// object) against the server's schema.
    pub fn check(&self, name: &str, arguments: Option<&Value>) -> Report {
        let mut r = Report::default();
        let (Some(entity), Some(c)) = (self.get(name), self.command(name)) else {
            r.unknown.push(Unknown {
                path: name.to_string(),
                kind: UnknownKind::Command,
            });
            return r;
        };
        warn(&mut r, name, &entity.features);
        let empty = Value::Object(Default::default());
        self.check_value(
            &c.arg_type,
            arguments.unwrap_or(&empty),
            &format!("{name}/arg-type"),
            &mut r,
        );
        r
    }

    /// [`Schema::check`] for a typed command.
    pub fn check_command<C: crate::Command>(&self, command: &C) -> Result<Report, EncodeError> {
        let v = serde_json::to_value(command).map_err(EncodeError)?;
        Ok(self.check(C::NAME, Some(&v)))
    }

    fn check_value(&self, ty: &str, v: &Value, path: &str, r: &mut Report) {
        let Some(entity) = self.get(ty) else {
            return;
        };
        let mismatch = |r: &mut Report| {
            r.unknown.push(Unknown {
                path: format!("{path}/!{}", json_kind(v)),
                kind: UnknownKind::JsonType,
            })
        };
        match &entity.kind {
            Kind::Builtin(b) => {
                if !b.takes(v) {
                    mismatch(r);
                }
            }
            Kind::Enum(e) => match v.as_str() {
                None => mismatch(r),
                Some(s) => match e.member(s) {
                    Some(x) => warn(r, &format!("{path}/^{s}"), &x.features),
                    None => r.unknown.push(Unknown {
                        path: format!("{path}/^{s}"),
                        kind: UnknownKind::Value,
                    }),
                },
            },
            Kind::Array(a) => match v.as_array() {
                Some(items) => items
                    .iter()
                    .for_each(|x| self.check_value(&a.element_type, x, path, r)),
                None => mismatch(r),
            },
            Kind::Object(o) => match v.as_object() {
                Some(m) => self.check_object(o, m, path, r),
                None => mismatch(r),
            },
            Kind::Alternate(a) => {
                let fits: Vec<&str> = a
                    .branches
                    .iter()
                    .map(String::as_str)
                    .filter(|b| self.fits(b, v))
                    .collect();
                if fits.is_empty() {
                    mismatch(r);
                    return;
                }
                // The branch that knows the value best (as QEMU picks
                // by JSON type, there is one unless enum and str share
                // strings).
                let best = fits
                    .iter()
                    .map(|b| {
                        let mut sub = Report::default();
                        self.check_value(b, v, path, &mut sub);
                        sub
                    })
                    .min_by_key(|s| s.unknown.len())
                    .unwrap_or_default();
                r.unknown.extend(best.unknown);
                r.warnings.extend(best.warnings);
            }
            Kind::Command(_) | Kind::Event(_) => {}
        }
        if !matches!(entity.kind, Kind::Builtin(_) | Kind::Alternate(_)) {
            warn(r, path, &entity.features);
        }
    }

    /// Whether an alternate's branch `ty` takes a value of `v`'s JSON type.
    fn fits(&self, ty: &str, v: &Value) -> bool {
        match self.kind(ty) {
            Some(Kind::Builtin(b)) => b.takes(v),
            Some(Kind::Enum(_)) => v.is_string(),
            Some(Kind::Object(_)) => v.is_object(),
            Some(Kind::Array(_)) => v.is_array(),
            _ => false,
        }
    }

    fn check_object(
        &self,
        o: &ObjectInfo,
        v: &serde_json::Map<String, Value>,
        path: &str,
        r: &mut Report,
    ) {
        let tag = o.tag.as_ref();
        // The branch the tag selects, or whether the tag's value is one
        // the server does not know.
        let mut branch: Option<(&str, &str)> = None;
        let mut unknown_branch = false;
        if let Some(case) = tag.and_then(|t| v.get(t)).and_then(Value::as_str) {
            match o.variant(case) {
                Some(b) => branch = Some((&b.case, &b.ty)),
                None => {
                    let in_enum = o
                        .tag_member()
                        .and_then(|m| self.enumeration(&m.ty))
                        .is_some_and(|e| e.contains(case));
                    if !in_enum {
                        unknown_branch = true;
                        r.unknown.push(Unknown {
                            path: format!("{path}/+{case}"),
                            kind: UnknownKind::Branch,
                        });
                    }
                }
            }
        }
        let branch_members: &[Member] = branch
            .and_then(|(_, t)| self.object(t))
            .map_or(&[], |b| &b.members);
        if let Some((case, t)) = branch {
            warn(r, &format!("{path}/+{case}"), self.features_of(t));
        }
        for (k, x) in v {
            if let Some(m) = o.member(k) {
                let p = format!("{path}/{k}");
                warn(r, &p, &m.features);
                if Some(k) == tag && (branch.is_some() || unknown_branch) {
                    // The branch stands for the tag's value.
                    continue;
                }
                self.check_value(&m.ty, x, &p, r);
            } else if let (Some((case, _)), Some(m)) =
                (branch, branch_members.iter().find(|m| &m.name == k))
            {
                let p = format!("{path}/+{case}/{k}");
                warn(r, &p, &m.features);
                self.check_value(&m.ty, x, &p, r);
            } else if !unknown_branch {
                r.unknown.push(Unknown {
                    path: match branch {
                        Some((case, _)) => format!("{path}/+{case}/{k}"),
                        None => format!("{path}/{k}"),
                    },
                    kind: UnknownKind::Member,
                });
            }
        }
    }
}

fn warn(r: &mut Report, path: &str, features: &[String]) {
    for f in special(features) {
        r.warnings.push(Warning {
            path: path.to_string(),
            feature: f.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::schema;
    use super::*;
    use serde_json::json;

    #[test]
    fn check_names_every_unknown_part() {
        let s = schema();
        let r = s.check(
            "blockdev-add",
            Some(&json!({
                "driver": "file", "filename": "/x", "aio": "io_uring2",
                "locking": "on", "cache": {"direct": true, "no-flush": true},
                "discard": "unmap"
            })),
        );
        let unknown: Vec<String> = r.unknown.iter().map(|u| u.path.clone()).collect();
        assert_eq!(
            unknown,
            [
                "blockdev-add/arg-type/+file/aio/^io_uring2",
                "blockdev-add/arg-type/cache/no-flush",
                "blockdev-add/arg-type/+file/discard",
            ]
        );
        assert_eq!(r.unknown[0].kind, UnknownKind::Value);
        assert_eq!(r.unknown[1].kind, UnknownKind::Member);
        // Each unknown part is a path that does not hold.
        for u in &r.unknown {
            assert!(!s.query(&u.path).unwrap(), "{u}");
        }
        assert_eq!(
            r.warnings,
            [Warning {
                path: "blockdev-add/arg-type/+file/locking".into(),
                feature: "deprecated".into()
            }]
        );

        // A branch the server lacks, and one its tag enum has without
        // members.
        let r = s.check(
            "blockdev-add",
            Some(&json!({"driver": "vvfat", "dir": "/"})),
        );
        assert_eq!(
            r.unknown,
            [Unknown {
                path: "blockdev-add/arg-type/+vvfat".into(),
                kind: UnknownKind::Branch
            }]
        );
        assert!(s
            .check("blockdev-add", Some(&json!({"driver": "nbd"})))
            .unknown
            .is_empty());
        let r = s.check(
            "blockdev-add",
            Some(&json!({"driver": "file", "filename": "f",
                                                       "aio": "native"})),
        );
        assert!(r.unknown.is_empty());
        assert_eq!(
            r.warnings[0].path,
            "blockdev-add/arg-type/+file/aio/^native"
        );

        // Commands, JSON types, alternates.
        let r = s.check("blockdev-mirror", None);
        assert_eq!(r.unknown[0].kind, UnknownKind::Command);
        let r = s.check("STOP", None);
        assert_eq!(r.unknown[0].kind, UnknownKind::Command);
        let r = s.check(
            "blockdev-add",
            Some(&json!({"driver": "null-co", "node-name": 3})),
        );
        assert_eq!(r.unknown[0].path, "blockdev-add/arg-type/node-name/!int");
        let r = s.check("query-x", None);
        assert!(r.unknown.is_empty());
        assert_eq!(r.warnings[0].path, "query-x");
    }

    #[test]
    fn unchecked_schemas_do_not_panic() {
        // Types that are not described are passed over.
        let s = super::Schema::parse(&json!([
            {"name": "c", "meta-type": "command", "arg-type": "0", "ret-type": "9"},
            {"name": "0", "meta-type": "object", "tag": "t",
             "members": [{"name": "m", "type": "8"}], "variants": [{"case": "x", "type": "7"}]}
        ]))
        .unwrap();
        let r = s.check("c", Some(&json!({"m": 1, "t": "x"})));
        assert_eq!(r.unknown[0].path, "c/arg-type/+x/t");
        assert!(s.query("c/ret-type/x").is_ok_and(|h| !h));
    }
}
