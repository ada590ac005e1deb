//! Older releases (`Config::older_schema`): which of them have each
//! command, event, type, member, enum value and branch, and what their
//! replies and events send that this schema's types would not take.
//!
//! A release's types are matched to this schema's along the ways values
//! travel, not by name alone: a command's arguments and return, an
//! event's data, then member by member, branch by branch and element by
//! element from there (QEMU renames types; the wire does not see it).
//! Types of the same name are matched too, for types no command or
//! event reaches.
//!
//! The releases form a timeline, oldest first, ending with this schema's
//! own (`Config::release`); each definition's availability is a bit mask
//! over it (bit `i` for the `i`-th release).

use std::collections::{HashMap, HashSet};

use proc_macro2::TokenStream;
use qapi_parser::{Builtin, Entity, EntityId, EntityKind, JsonType, ObjectMember, Schema};
use quote::quote;

use super::{Gen, Place};

/// The releases and how each older one's types match this schema's.
pub(super) struct Avail<'a> {
    /// Display names (`6.2`), oldest first; the last is this schema's
    /// (`None` when not given).
    names: Vec<Option<String>>,
    /// For each older release (same index): its schema and, for each of
    /// this schema's types, the release's matching types.
    older: Vec<(&'a Schema, HashMap<EntityId, Vec<EntityId>>)>,
}

/// A member whose type in an older release sends values this schema's
/// type does not take.
pub(super) struct Differs<'a> {
    pub release: &'a str,
    /// The older release's type (its QAPI name).
    pub older: String,
}

/// `major.minor` of a release name (`10.0.2` → (10, 0)).
pub(super) fn version(name: &str) -> Option<(u16, u16)> {
    let mut parts = name.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// How a release is shown: `major.minor` when it parses.
fn shown(name: &str) -> String {
    match version(name) {
        Some((a, b)) => format!("{a}.{b}"),
        None => name.to_string(),
    }
}

impl<'a> Avail<'a> {
    pub(super) fn new(schema: &'a Schema, config: &'a crate::Config) -> Avail<'a> {
        let newest = config.release.as_deref().map(shown);
        let mut older: Vec<&'a crate::OlderRelease> = config
            .older
            .iter()
            // The same release twice is no timeline.
            .filter(|o| Some(shown(&o.release)) != newest)
            .collect();
        older.sort_by_key(|o| version(&o.release).unwrap_or((u16::MAX, 0)));
        let mut names: Vec<Option<String>> =
            older.iter().map(|o| Some(shown(&o.release))).collect();
        names.push(newest);
        let older = older
            .iter()
            .map(|o| (&*o.schema, correspond(schema, &o.schema)))
            .collect();
        Avail { names, older }
    }

    fn newest_bit(&self) -> u64 {
        1 << (self.names.len() - 1)
    }

    /// The releases whose types matching `id` satisfy `has`.
    fn mask(&self, id: EntityId, has: impl Fn(&Schema, EntityId) -> bool) -> u64 {
        let mut mask = self.newest_bit();
        for (i, (s, pairs)) in self.older.iter().enumerate() {
            if pairs
                .get(&id)
                .is_some_and(|os| os.iter().any(|&o| has(s, o)))
            {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// A command's or event's releases (by name), or a type's.
    pub(super) fn entity_mask(&self, schema: &Schema, id: EntityId) -> u64 {
        let e = schema.entity(id);
        if e.is_type() {
            return self.mask(id, |_, _| true);
        }
        let mut mask = self.newest_bit();
        for (i, (s, _)) in self.older.iter().enumerate() {
            let same = s.lookup(&e.name).map(|o| &s.entity(o).kind);
            let found = matches!(
                (&e.kind, same),
                (EntityKind::Command(_), Some(EntityKind::Command(_)))
                    | (EntityKind::Event(_), Some(EntityKind::Event(_)))
            );
            if found {
                mask |= 1 << i;
            }
        }
        mask
    }

    pub(super) fn member_mask(&self, owner: EntityId, name: &str) -> u64 {
        self.mask(owner, |s, e| match &s.entity(e).kind {
            EntityKind::Object(o) => o.members.iter().any(|m| m.name == name),
            _ => false,
        })
    }

    pub(super) fn value_mask(&self, owner: EntityId, name: &str) -> u64 {
        self.mask(owner, |s, e| match &s.entity(e).kind {
            EntityKind::Enum(en) => en.values.iter().any(|v| v.name == name),
            _ => false,
        })
    }

    /// A union's branch, or an alternate's (an older type that is not an
    /// alternate has the branch of its JSON type).
    pub(super) fn branch_mask(&self, schema: &Schema, owner: EntityId, name: &str) -> u64 {
        let json = match &schema.entity(owner).kind {
            EntityKind::Alternate(a) => a
                .variants
                .iter()
                .find(|v| v.name == name)
                .map(|v| schema.json_type(v.ty)),
            _ => None,
        };
        self.mask(owner, |s, e| match &s.entity(e).kind {
            EntityKind::Object(o) => o
                .branches
                .as_ref()
                .is_some_and(|b| b.variants.iter().any(|v| v.name == name)),
            EntityKind::Alternate(a) => a.variants.iter().any(|v| v.name == name),
            _ => json.is_some_and(|j| fits(j, s.json_type(e))),
        })
    }

    /// The older releases whose matching type lacks the member `name`
    /// of `owner`.
    pub(super) fn lacking(&self, owner: EntityId, name: &str) -> Vec<&str> {
        let mask = self.member_mask(owner, name);
        (0..self.older.len())
            .filter(|i| {
                mask & (1 << i) == 0 && self.older[*i].1.get(&owner).is_some_and(|v| !v.is_empty())
            })
            .filter_map(|i| self.names[i].as_deref())
            .collect()
    }

    /// The older releases whose matching type has the member `m` of
    /// `owner` with a type whose values `m`'s type does not take.
    pub(super) fn differing(
        &self,
        schema: &Schema,
        owner: EntityId,
        m: &ObjectMember,
    ) -> Vec<Differs<'_>> {
        let mut out = Vec::new();
        for (i, (s, pairs)) in self.older.iter().enumerate() {
            for &o in pairs.get(&owner).into_iter().flatten() {
                let EntityKind::Object(oo) = &s.entity(o).kind else {
                    continue;
                };
                let Some(om) = oo.members.iter().find(|x| x.name == m.name) else {
                    continue;
                };
                if !accepts(schema, m.ty, s, om.ty) {
                    out.push(Differs {
                        release: self.names[i].as_deref().unwrap_or_default(),
                        older: s.entity(om.ty).name.clone(),
                    });
                }
            }
        }
        out
    }

    /// "QEMU 8.2 and later", "QEMU 6.2 to 7.2, 9.2 and later; removed
    /// in 8.2".
    pub(super) fn text(&self, mask: u64) -> String {
        let n = self.names.len();
        let name = |i: usize| {
            self.names[i]
                .clone()
                .unwrap_or_else(|| "this schema's release".into())
        };
        let mut runs = Vec::new();
        let mut i = 0;
        while i < n {
            if mask & (1 << i) == 0 {
                i += 1;
                continue;
            }
            let start = i;
            while i + 1 < n && mask & (1 << (i + 1)) != 0 {
                i += 1;
            }
            // What this schema's release has, later ones most likely do.
            runs.push(if i == n - 1 {
                format!("{} and later", name(start))
            } else if start == i {
                name(start)
            } else {
                format!("{} to {}", name(start), name(i))
            });
            i += 1;
        }
        let mut text = format!("QEMU {}", runs.join(", "));
        // Name the releases that dropped it for a while.
        let gone: Vec<String> = (1..n)
            .filter(|&j| mask & (1 << j) == 0 && mask & (1 << (j - 1)) != 0)
            .map(name)
            .collect();
        if !gone.is_empty() {
            text.push_str(&format!("; removed in {}", gone.join(", ")));
        }
        text
    }

    /// The timeline's releases with a version, as generated constants'
    /// values (`(major, minor)`), and whether every bit has one.
    pub(super) fn versions(&self) -> Vec<(u16, u16)> {
        self.names
            .iter()
            .map_while(|n| n.as_deref().and_then(version))
            .collect()
    }
}

/// Whether a JSON value of type `value` may go to a branch taking `branch`.
fn fits(branch: JsonType, value: JsonType) -> bool {
    branch == value || (branch == JsonType::Number && value == JsonType::Int)
}

/// Match an older schema's types to this one's (see the module's
/// documentation): for each of this schema's types, the older ones.
fn correspond(new: &Schema, old: &Schema) -> HashMap<EntityId, Vec<EntityId>> {
    let mut work: Vec<(EntityId, EntityId)> = Vec::new();
    for (id, e) in new.iter() {
        let Some(o) = old.lookup(&e.name) else {
            continue;
        };
        match (&e.kind, &old.entity(o).kind) {
            (EntityKind::Command(a), EntityKind::Command(b)) => {
                work.extend(a.arg_type.zip(b.arg_type));
                work.extend(a.ret_type.zip(b.ret_type));
            }
            (EntityKind::Event(a), EntityKind::Event(b)) => work.extend(a.arg_type.zip(b.arg_type)),
            (EntityKind::Command(_) | EntityKind::Event(_), _)
            | (_, EntityKind::Command(_) | EntityKind::Event(_)) => {}
            _ => work.push((id, o)),
        }
    }
    let mut seen: HashSet<(EntityId, EntityId)> = HashSet::new();
    let mut out: HashMap<EntityId, Vec<EntityId>> = HashMap::new();
    while let Some((n, o)) = work.pop() {
        let (ne, oe) = (new.entity(n), old.entity(o));
        if matches!(ne.kind, EntityKind::Builtin(_)) || !seen.insert((n, o)) {
            continue;
        }
        out.entry(n).or_default().push(o);
        match (&ne.kind, &oe.kind) {
            (EntityKind::Object(a), EntityKind::Object(b)) => {
                for m in &a.members {
                    if let Some(om) = b.members.iter().find(|x| x.name == m.name) {
                        work.push((m.ty, om.ty));
                    }
                }
                if let (Some(ab), Some(bb)) = (&a.branches, &b.branches) {
                    for v in &ab.variants {
                        if let Some(ov) = bb.variants.iter().find(|x| x.name == v.name) {
                            work.push((v.ty, ov.ty));
                        }
                    }
                }
            }
            (EntityKind::Array(a), EntityKind::Array(b)) => work.push((a.element, b.element)),
            (EntityKind::Alternate(a), EntityKind::Alternate(b)) => {
                for v in &a.variants {
                    if let Some(ov) = b.variants.iter().find(|x| x.name == v.name) {
                        work.push((v.ty, ov.ty));
                    }
                }
            }
            (EntityKind::Alternate(a), _) => {
                let j = old.json_type(o);
                for v in a.variants.iter().filter(|v| fits(new.json_type(v.ty), j)) {
                    work.push((v.ty, o));
                }
            }
            (_, EntityKind::Alternate(b)) => {
                let j = new.json_type(n);
                for v in b.variants.iter().filter(|v| fits(j, old.json_type(v.ty))) {
                    work.push((n, v.ty));
                }
            }
            _ => {}
        }
    }
    out
}

/// The range of an integer type.
fn range(b: Builtin) -> Option<(i128, i128)> {
    Some(match b {
        Builtin::Int | Builtin::Int64 => (i64::MIN.into(), i64::MAX.into()),
        Builtin::Int8 => (i8::MIN.into(), i8::MAX.into()),
        Builtin::Int16 => (i16::MIN.into(), i16::MAX.into()),
        Builtin::Int32 => (i32::MIN.into(), i32::MAX.into()),
        Builtin::Uint8 => (0, u8::MAX.into()),
        Builtin::Uint16 => (0, u16::MAX.into()),
        Builtin::Uint32 => (0, u32::MAX.into()),
        Builtin::Uint64 | Builtin::Size => (0, u64::MAX.into()),
        _ => return None,
    })
}

/// Whether every value of the older type `o` decodes as the newer type
/// `n`, as far as this level goes: objects are compared member by member
/// where they are matched, enums take unknown values in their catch-all.
fn accepts(new: &Schema, n: EntityId, old: &Schema, o: EntityId) -> bool {
    match (&new.entity(n).kind, &old.entity(o).kind) {
        (EntityKind::Builtin(Builtin::Any), _) => true,
        (_, EntityKind::Alternate(b)) => b.variants.iter().all(|v| accepts(new, n, old, v.ty)),
        (EntityKind::Alternate(a), _) => {
            let j = old.json_type(o);
            a.variants
                .iter()
                .any(|v| fits(new.json_type(v.ty), j) && accepts(new, v.ty, old, o))
        }
        (EntityKind::Builtin(a), EntityKind::Builtin(b)) => match (range(*a), range(*b)) {
            (Some((alo, ahi)), Some((blo, bhi))) => alo <= blo && bhi <= ahi,
            (None, Some(_)) => *a == Builtin::Number,
            _ => a == b,
        },
        (EntityKind::Array(a), EntityKind::Array(b)) => accepts(new, a.element, old, b.element),
        // Strings: an enum keeps a value it does not know (in its
        // catch-all).
        (EntityKind::Enum(_) | EntityKind::Builtin(Builtin::Str), EntityKind::Enum(_))
        | (EntityKind::Enum(_), EntityKind::Builtin(Builtin::Str))
        | (EntityKind::Object(_), EntityKind::Object(_)) => true,
        _ => false,
    }
}

impl Gen<'_> {
    /// What `cargo:warning`/regen notes say about members whose type
    /// differs: `Type.member: QEMU R sends OLD`.
    pub(super) fn differing_members(&self) -> Vec<String> {
        let Some(av) = &self.plan.avail else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for &id in &self.output_sorted() {
            let EntityKind::Object(o) = &self.ent(id).kind else {
                continue;
            };
            for m in &o.members {
                for d in av.differing(self.schema, id, m) {
                    out.push(format!(
                        "{}.{}: {} ({}) in this schema, {} in QEMU {}",
                        self.ent(id).name,
                        m.name,
                        self.ent(m.ty).name,
                        json_name(self.schema.json_type(m.ty)),
                        d.older,
                        d.release
                    ));
                }
            }
        }
        out
    }

    fn output_sorted(&self) -> Vec<EntityId> {
        let mut v: Vec<EntityId> = self.plan.output.iter().copied().collect();
        v.sort();
        v
    }

    /// The availability constant of a command or event (in its
    /// `Command`/`Event` impl).
    pub(super) fn avail_const(&self, id: EntityId) -> TokenStream {
        let Some(av) = &self.plan.avail else {
            return TokenStream::new();
        };
        let rt = &self.rt;
        // In binary: bit `i` for `RELEASES[i]`.
        let mask: proc_macro2::Literal = format!("0b{:b}", av.entity_mask(self.schema, id))
            .parse()
            .expect("a binary literal");
        quote!(const AVAILABILITY: #rt::Availability = #rt::Availability::new(super::RELEASES, #mask);)
    }

    /// `RELEASES`: the releases availability masks count.
    pub(super) fn releases_const(&self) -> TokenStream {
        let Some(av) = &self.plan.avail else {
            return TokenStream::new();
        };
        let rt = &self.rt;
        let versions = av.versions().into_iter().map(|(a, b)| {
            let (a, b) = (
                proc_macro2::Literal::u16_unsuffixed(a),
                proc_macro2::Literal::u16_unsuffixed(b),
            );
            quote!(#rt::QemuVersion::new(#a, #b))
        });
        quote! {
            /// The QEMU releases these bindings read, oldest first, the
            /// schema's own last: what `AVAILABILITY` of commands and
            /// events counts.
            pub const RELEASES: &[#rt::QemuVersion] = &[#(#versions),*];
        }
    }

    /// A definition's releases, for its documentation: "\n\n*QEMU 8.2
    /// and later.*", or nothing without older releases.
    pub(super) fn avail_item_note(&self, e: &Entity) -> String {
        match (&self.plan.avail, self.schema.lookup(&e.name)) {
            (Some(av), Some(id)) => format!("\n\n*{}.*", av.text(av.entity_mask(self.schema, id))),
            _ => String::new(),
        }
    }

    /// What a part's documentation adds: its releases when they are not
    /// all of its owner's.
    fn part_note(&self, owner: EntityId, mask: impl Fn(&Avail) -> u64) -> String {
        let Some(av) = &self.plan.avail else {
            return String::new();
        };
        let (own, whole) = (mask(av), av.entity_mask(self.schema, owner));
        if own == whole {
            String::new()
        } else {
            format!("*{}.*", av.text(own))
        }
    }

    /// An enum value's note.
    pub(super) fn value_note(&self, owner: EntityId, value: &str) -> String {
        self.part_note(owner, |av| av.value_mask(owner, value))
    }

    /// A union branch's or an alternate's branch's note.
    pub(super) fn branch_note(&self, owner: EntityId, branch: &str) -> String {
        self.part_note(owner, |av| av.branch_mask(self.schema, owner, branch))
    }

    /// A union branch's documentation with its note.
    pub(super) fn branch_doc(&self, owner: EntityId, branch: &str, doc: String) -> String {
        let note = self.branch_note(owner, branch);
        if note.is_empty() {
            doc
        } else {
            format!("{doc}\n\n{note}")
        }
    }

    /// A member's note: its releases, the releases that do not send it
    /// (`newer_only`), and those that send another type.
    pub(super) fn member_note(
        &self,
        owner: EntityId,
        m: &ObjectMember,
        newer_only: &[String],
    ) -> String {
        let mut notes = vec![self.part_note(owner, |av| av.member_mask(owner, &m.name))];
        if !newer_only.is_empty() {
            notes.push(format!(
                "*Required by this schema, but not sent by QEMU {}, whose replies \
                 these bindings also read: `None` there.*",
                newer_only.join(", ")
            ));
        }
        if let Some(av) = self
            .plan
            .avail
            .as_ref()
            .filter(|_| self.plan.output.contains(&owner))
        {
            let differs = av.differing(self.schema, owner, m);
            if !differs.is_empty() {
                // By older type: "QEMU 6.2 and 7.2 send `int`".
                let mut by_type: Vec<(&str, Vec<&str>)> = Vec::new();
                for d in &differs {
                    match by_type.iter_mut().find(|(t, _)| *t == d.older) {
                        Some((_, rs)) => rs.push(d.release),
                        None => by_type.push((&d.older, vec![d.release])),
                    }
                }
                let sent: Vec<String> = by_type
                    .iter()
                    .map(|(t, rs)| match rs.split_last() {
                        Some((last, [])) => format!("QEMU {last} sends `{t}`"),
                        Some((last, rest)) => {
                            format!("QEMU {} and {last} send `{t}`", rest.join(", "))
                        }
                        None => String::new(),
                    })
                    .collect();
                notes.push(format!(
                    "*{} here, whose values this schema's `{}` does not take: \
                     those are kept in `Compat::Older`.*",
                    sent.join("; "),
                    self.ent(m.ty).name
                ));
            }
        }
        notes.retain(|n| !n.is_empty());
        notes.join("\n\n")
    }

    /// The type of a member whose type changed in a way an older
    /// release's values do not decode as: `Compat<current, older>`, the
    /// older form a built-in type's Rust type when every such release
    /// sends the same one, else JSON.
    pub(super) fn compat_member(
        &self,
        owner: EntityId,
        m: &ObjectMember,
        optional: bool,
        place: Place,
    ) -> Option<TokenStream> {
        let av = self
            .plan
            .avail
            .as_ref()
            .filter(|_| self.plan.output.contains(&owner))?;
        let differs = av.differing(self.schema, owner, m);
        let first = differs.first()?;
        let rt = &self.rt;
        let current = self.member_type(owner, m, false, place, true);
        let older = match builtin_named(&first.older) {
            Some(b) if differs.iter().all(|d| d.older == first.older) => self.builtin_path(b),
            _ => quote!(::serde_json::Value),
        };
        let t = quote!(#rt::Compat<#current, #older>);
        Some(if optional {
            quote!(::std::option::Option<#t>)
        } else {
            t
        })
    }
}

/// The built-in type of a QAPI name.
fn builtin_named(name: &str) -> Option<Builtin> {
    Builtin::ALL
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
}

fn json_name(j: JsonType) -> &'static str {
    match j {
        JsonType::String => "string",
        JsonType::Number => "number",
        JsonType::Int => "integer",
        JsonType::Boolean => "boolean",
        JsonType::Null => "null",
        JsonType::Value => "any",
        JsonType::Array => "array",
        JsonType::Object => "object",
    }
}
