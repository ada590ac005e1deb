//! What changed for users between two schemas: the changelog of a QEMU
//! bump.
//!
//! [`changes`] compares commands, events and named types, and within
//! them arguments, members, return types, enum values and branches.
//! Implicit types (a command's or event's inline `data`, `q_obj_*`) are
//! compared as parts of their owner and never named.  A change to a
//! named type is listed once, under its name: not again under a command
//! or event whose arguments or data it is, nor under a type built on it
//! as a base (unless they came to use it or stopped using it, when all
//! their members are compared).  A type is named
//! as the schema writes it: builtins by name, arrays as `[T]`.  Only the
//! special features (`deprecated`, `unstable`) are followed.
//!
//! The order is stable: commands, events, then types; each kind in the
//! newer schema's order, a removed definition after the one it followed
//! in the older schema (the same for members, values and branches).

use std::collections::{HashMap, HashSet};
use std::fmt;

use qapi_parser::{
    EntityId, EntityKind, EnumType, Feature, ObjectMember, ObjectType, Schema, Variant,
};

/// One user-facing change; its `Display` is one line, such as
/// `command migrate: argument detach removed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: DefKind,
    /// The definition's name.
    pub name: String,
    /// The part of the definition that changed; `None` for the
    /// definition itself.
    pub part: Option<Part>,
    pub action: Action,
}

/// The kinds of definitions, in the order changes are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DefKind {
    Command,
    Event,
    /// Any named type: struct, union, alternate or enum.
    Type,
}

/// A part of a definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// A command's argument (a member of its arguments' type).
    Argument(String),
    /// A member of an event's data or of an object type.
    Member(String),
    /// An enum's value.
    Value(String),
    /// A union's or an alternate's branch.
    Branch(String),
    /// A command's arguments' type, when it is named on either side.
    Arguments,
    /// An event's data type, when it is named on either side.
    Data,
    /// A command's return type.
    Return,
}

/// What happened to a definition or part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Added, with what it is: a type's kind (`struct`), a member's
    /// `optional str` or `required [int]`, a branch's or return's type;
    /// empty for commands, events and enum values.
    Added(String),
    Removed,
    MadeRequired,
    MadeOptional,
    /// A member's, branch's or return's type changed.
    Retyped {
        from: String,
        to: String,
    },
    /// A type became another kind: `a struct`, `a union on type`, …
    Became {
        from: String,
        to: String,
    },
    /// A special feature appeared.
    Now(Flag),
    /// A special feature went away.
    NoLonger(Flag),
}

/// The special features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    Deprecated,
    Unstable,
}

impl Flag {
    const ALL: [Flag; 2] = [Flag::Deprecated, Flag::Unstable];

    fn name(self) -> &'static str {
        match self {
            Flag::Deprecated => "deprecated",
            Flag::Unstable => "unstable",
        }
    }
}

impl Action {
    /// Its heading in [`summary`].
    pub fn label(&self) -> &'static str {
        match self {
            Action::Added(_) => "added",
            Action::Removed => "removed",
            Action::MadeRequired => "made required",
            Action::MadeOptional => "made optional",
            Action::Retyped { .. } => "retyped",
            Action::Became { .. } => "changed kind",
            Action::Now(Flag::Deprecated) => "newly deprecated",
            Action::Now(Flag::Unstable) => "newly unstable",
            Action::NoLonger(Flag::Deprecated) => "no longer deprecated",
            Action::NoLonger(Flag::Unstable) => "no longer unstable",
        }
    }

    /// Every label, in the summary's order.
    const LABELS: [&'static str; 10] = [
        "added",
        "removed",
        "made required",
        "made optional",
        "retyped",
        "changed kind",
        "newly deprecated",
        "newly unstable",
        "no longer deprecated",
        "no longer unstable",
    ];
}

impl fmt::Display for DefKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DefKind::Command => "command",
            DefKind::Event => "event",
            DefKind::Type => "type",
        })
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Argument(n) => write!(f, "argument {n}"),
            Part::Member(n) => write!(f, "member {n}"),
            Part::Value(n) => write!(f, "value {n}"),
            Part::Branch(n) => write!(f, "branch {n}"),
            Part::Arguments => f.write_str("arguments"),
            Part::Data => f.write_str("data"),
            Part::Return => f.write_str("return"),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Added(what) if what.is_empty() => f.write_str("added"),
            Action::Added(what) => write!(f, "added ({what})"),
            Action::Removed => f.write_str("removed"),
            Action::MadeRequired => f.write_str("made required"),
            Action::MadeOptional => f.write_str("made optional"),
            Action::Retyped { from, to } => write!(f, "retyped from {from} to {to}"),
            Action::Became { from, to } => write!(f, "now {to} (was {from})"),
            Action::Now(flag) => write!(f, "now {}", flag.name()),
            Action::NoLonger(flag) => write!(f, "no longer {}", flag.name()),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.part {
            None => write!(f, "{} {} {}", self.kind, self.name, self.action),
            Some(part) => write!(f, "{} {}: {part} {}", self.kind, self.name, self.action),
        }
    }
}

/// One line counting `changes` by [`Action::label`], in a fixed order:
/// `5 changes: 3 added, 1 removed, 1 made required` (`0 changes` when
/// there are none).
pub fn summary(changes: &[Change]) -> String {
    let n = changes.len();
    let mut line = format!("{n} change{}", if n == 1 { "" } else { "s" });
    let counts: Vec<String> = Action::LABELS
        .iter()
        .filter_map(|label| {
            let k = changes
                .iter()
                .filter(|c| c.action.label() == *label)
                .count();
            (k > 0).then(|| format!("{k} {label}"))
        })
        .collect();
    if !counts.is_empty() {
        line.push_str(": ");
        line.push_str(&counts.join(", "));
    }
    line
}

/// The user-facing changes from `old` to `new`, in a stable order (see
/// the module's documentation).
pub fn changes(old: &Schema, new: &Schema) -> Vec<Change> {
    let mut out = Vec::new();
    for kind in [DefKind::Command, DefKind::Event, DefKind::Type] {
        let (a, b) = (definitions(old, kind), definitions(new, kind));
        for name in merged(&names(&a), &names(&b)) {
            let mut d = Def {
                kind,
                name,
                old,
                new,
                out: &mut out,
            };
            match (find(&a, name), find(&b, name)) {
                (None, Some(id)) => d.push(None, Action::Added(added_detail(new, id))),
                (Some(_), None) => d.push(None, Action::Removed),
                (Some(x), Some(y)) => d.definition(x, y),
                (None, None) => unreachable!("a merged name is in one of the lists"),
            }
        }
    }
    out
}

/// The schema's definitions of `kind`, in definition order.
fn definitions(s: &Schema, kind: DefKind) -> Vec<(&str, EntityId)> {
    s.iter()
        .filter(|(_, e)| match (&e.kind, kind) {
            (EntityKind::Command(_), DefKind::Command) => true,
            (EntityKind::Event(_), DefKind::Event) => true,
            (_, DefKind::Type) => e.is_type() && !e.is_implicit(),
            _ => false,
        })
        .map(|(id, e)| (e.name.as_str(), id))
        .collect()
}

fn names<'a>(list: &[(&'a str, EntityId)]) -> Vec<&'a str> {
    list.iter().map(|(n, _)| *n).collect()
}

fn find(list: &[(&str, EntityId)], name: &str) -> Option<EntityId> {
    list.iter().find(|(n, _)| *n == name).map(|(_, id)| *id)
}

/// `new`'s names in order, each name only `old` has placed after the
/// name it followed in `old` that `new` still has (first if none).
fn merged<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<&'a str> {
    let kept: HashSet<&str> = new.iter().copied().collect();
    let mut after: HashMap<Option<&str>, Vec<&'a str>> = HashMap::new();
    let mut anchor = None;
    for &o in old {
        if kept.contains(o) {
            anchor = Some(o);
        } else {
            after.entry(anchor).or_default().push(o);
        }
    }
    let mut out = after.remove(&None).unwrap_or_default();
    for &n in new {
        out.push(n);
        out.extend(after.remove(&Some(n)).unwrap_or_default());
    }
    out
}

/// What an added definition is: a type's kind, nothing for the rest.
fn added_detail(s: &Schema, id: EntityId) -> String {
    let e = s.entity(id);
    if e.is_type() {
        e.meta().to_string()
    } else {
        String::new()
    }
}

/// A type as the schema writes it: `str`, `[BlockInfo]`, `JobType`; an
/// implicit object (an older simple union's branch) by its members.
fn type_name(s: &Schema, id: EntityId) -> String {
    let e = s.entity(id);
    match &e.kind {
        EntityKind::Array(a) => format!("[{}]", type_name(s, a.element)),
        EntityKind::Object(o) if e.is_implicit() => {
            let members: Vec<String> = o
                .members
                .iter()
                .map(|m| {
                    let opt = if m.optional { "*" } else { "" };
                    format!("{opt}{}: {}", m.name, type_name(s, m.ty))
                })
                .collect();
            format!("{{{}}}", members.join(", "))
        }
        _ => e.name.clone(),
    }
}

/// A type's kind with its article: `a struct`, `a union on type`, `an
/// enum`, `an alternate`.
fn kind_of(s: &Schema, id: EntityId) -> String {
    let e = s.entity(id);
    match &e.kind {
        EntityKind::Object(ObjectType {
            branches: Some(b), ..
        }) => format!("a union on {}", b.tag),
        EntityKind::Enum(_) | EntityKind::Alternate(_) => format!("an {}", e.meta()),
        _ => format!("a {}", e.meta()),
    }
}

/// The members of a command's arguments or an event's data.
fn members_of(s: &Schema, t: Option<EntityId>) -> &[ObjectMember] {
    match t.map(|t| &s.entity(t).kind) {
        Some(EntityKind::Object(o)) => &o.members,
        _ => &[],
    }
}

/// Whether two object types have the same named base, whose changes
/// are then listed under its own name, not again under every type
/// built on it.  An inline base (a union's) is the type's own.
fn same_named_base(old: &Schema, o: &ObjectType, new: &Schema, p: &ObjectType) -> bool {
    let base = |s: &Schema, o: &ObjectType| {
        o.base
            .filter(|&b| !s.entity(b).is_implicit())
            .map(|b| s.entity(b).name.clone())
    };
    let a = base(old, o);
    a.is_some() && a == base(new, p)
}

fn has(features: &[Feature], flag: Flag) -> bool {
    features.iter().any(|f| f.name == flag.name())
}

/// A definition present in both schemas, and where its changes go.
struct Def<'a> {
    kind: DefKind,
    name: &'a str,
    old: &'a Schema,
    new: &'a Schema,
    out: &'a mut Vec<Change>,
}

/// A command's arguments or an event's data: which part names the type,
/// and what a member is called.
struct Payload {
    whole: Part,
    member: fn(String) -> Part,
}

impl<'a> Def<'a> {
    fn push(&mut self, part: Option<Part>, action: Action) {
        self.out.push(Change {
            kind: self.kind,
            name: self.name.to_string(),
            part,
            action,
        });
    }

    fn features(&mut self, part: Option<Part>, old: &[Feature], new: &[Feature]) {
        for flag in Flag::ALL {
            match (has(old, flag), has(new, flag)) {
                (false, true) => self.push(part.clone(), Action::Now(flag)),
                (true, false) => self.push(part.clone(), Action::NoLonger(flag)),
                _ => {}
            }
        }
    }

    fn definition(&mut self, x: EntityId, y: EntityId) {
        let (a, b) = (self.old.entity(x), self.new.entity(y));
        self.features(None, &a.features, &b.features);
        match (&a.kind, &b.kind) {
            (EntityKind::Command(c), EntityKind::Command(d)) => {
                let args = Payload {
                    whole: Part::Arguments,
                    member: Part::Argument,
                };
                self.payload(&args, c.arg_type, d.arg_type);
                let ret = |s: &Schema, t: Option<EntityId>| t.map(|t| type_name(s, t));
                self.typed(
                    Part::Return,
                    ret(self.old, c.ret_type),
                    ret(self.new, d.ret_type),
                );
            }
            (EntityKind::Event(e), EntityKind::Event(f)) => {
                let data = Payload {
                    whole: Part::Data,
                    member: Part::Member,
                };
                self.payload(&data, e.arg_type, f.arg_type);
            }
            _ => self.types(x, y),
        }
    }

    /// A part that has a type, or not: added, removed or retyped.
    fn typed(&mut self, part: Part, old: Option<String>, new: Option<String>) {
        match (old, new) {
            (None, Some(t)) => self.push(Some(part), Action::Added(t)),
            (Some(_), None) => self.push(Some(part), Action::Removed),
            (Some(from), Some(to)) if from != to => {
                self.push(Some(part), Action::Retyped { from, to })
            }
            _ => {}
        }
    }

    /// A command's arguments or an event's data.  The same named type on
    /// both sides has its changes listed under its own name; otherwise
    /// the members are compared here, and a named type on either side is
    /// reported as a retyping (`inline` for an implicit one).
    fn payload(&mut self, p: &Payload, x: Option<EntityId>, y: Option<EntityId>) {
        let named = |s: &Schema, t: Option<EntityId>| {
            t.filter(|&t| !s.entity(t).is_implicit())
                .map(|t| s.entity(t).name.clone())
        };
        let (na, nb) = (named(self.old, x), named(self.new, y));
        if na.is_some() && na == nb {
            return;
        }
        if na.is_some() || nb.is_some() {
            let show = |n: Option<String>, t: Option<EntityId>| match (n, t) {
                (Some(n), _) => n,
                (None, Some(_)) => "inline".to_string(),
                (None, None) => "none".to_string(),
            };
            let (from, to) = (show(na, x), show(nb, y));
            self.push(Some(p.whole.clone()), Action::Retyped { from, to });
        }
        let (old, new) = (self.old, self.new);
        self.members(p.member, members_of(old, x), members_of(new, y));
    }

    /// Two named types of the same name.
    fn types(&mut self, x: EntityId, y: EntityId) {
        let (from, to) = (kind_of(self.old, x), kind_of(self.new, y));
        if from != to {
            self.push(None, Action::Became { from, to });
        }
        let (a, b) = (&self.old.entity(x).kind, &self.new.entity(y).kind);
        match (a, b) {
            (EntityKind::Object(o), EntityKind::Object(p)) => {
                let (old, new) = (self.old, self.new);
                let (ma, mb) = if same_named_base(old, o, new, p) {
                    (&o.local_members, &p.local_members)
                } else {
                    (&o.members, &p.members)
                };
                self.members(Part::Member, ma, mb);
                let explicit = |o: &ObjectType| -> Vec<Variant> {
                    let all = o.branches.as_ref().map(|b| b.variants.as_slice());
                    let all = all.unwrap_or_default().iter();
                    all.filter(|v| !v.implicit).cloned().collect()
                };
                self.branches(&explicit(o), &explicit(p));
            }
            (EntityKind::Alternate(o), EntityKind::Alternate(p)) => {
                self.branches(&o.variants, &p.variants);
            }
            (EntityKind::Enum(o), EntityKind::Enum(p)) => {
                let names = |e: &'a EnumType| -> Vec<&'a str> {
                    e.values.iter().map(|v| v.name.as_str()).collect()
                };
                for name in merged(&names(o), &names(p)) {
                    let part = Some(Part::Value(name.to_string()));
                    let a = o.values.iter().find(|v| v.name == name);
                    let b = p.values.iter().find(|v| v.name == name);
                    match (a, b) {
                        (None, _) => self.push(part, Action::Added(String::new())),
                        (_, None) => self.push(part, Action::Removed),
                        (Some(a), Some(b)) => self.features(part, &a.features, &b.features),
                    }
                }
            }
            _ => {}
        }
    }

    fn members<'m>(
        &mut self,
        part: fn(String) -> Part,
        old: &'m [ObjectMember],
        new: &'m [ObjectMember],
    ) {
        let names = |ms: &'m [ObjectMember]| -> Vec<&'m str> {
            ms.iter().map(|m| m.name.as_str()).collect()
        };
        for name in merged(&names(old), &names(new)) {
            let p = Some(part(name.to_string()));
            let a = old.iter().find(|m| m.name == name);
            let b = new.iter().find(|m| m.name == name);
            match (a, b) {
                (None, Some(b)) => {
                    let how = if b.optional { "optional" } else { "required" };
                    let what = format!("{how} {}", type_name(self.new, b.ty));
                    self.push(p, Action::Added(what));
                }
                (Some(_), None) => self.push(p, Action::Removed),
                (Some(a), Some(b)) => {
                    let (from, to) = (type_name(self.old, a.ty), type_name(self.new, b.ty));
                    if from != to {
                        self.push(p.clone(), Action::Retyped { from, to });
                    }
                    match (a.optional, b.optional) {
                        (true, false) => self.push(p.clone(), Action::MadeRequired),
                        (false, true) => self.push(p.clone(), Action::MadeOptional),
                        _ => {}
                    }
                    self.features(p, &a.features, &b.features);
                }
                (None, None) => unreachable!("a merged name is in one of the lists"),
            }
        }
    }

    fn branches<'v>(&mut self, old: &'v [Variant], new: &'v [Variant]) {
        let names =
            |vs: &'v [Variant]| -> Vec<&'v str> { vs.iter().map(|v| v.name.as_str()).collect() };
        for name in merged(&names(old), &names(new)) {
            let ty = |s: &Schema, vs: &[Variant]| {
                vs.iter()
                    .find(|v| v.name == name)
                    .map(|v| type_name(s, v.ty))
            };
            let (a, b) = (ty(self.old, old), ty(self.new, new));
            self.typed(Part::Branch(name.to_string()), a, b);
        }
    }
}
