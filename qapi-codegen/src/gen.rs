//! The IR as Rust items: one `quote!` per item, in schema order.

use std::collections::{HashMap, HashSet};

use proc_macro2::{Ident, Literal, TokenStream};
use qapi_parser::{
    Builtin, Doc, Entity, EntityId, EntityKind, Feature, IfCond, ObjectMember, Schema, SectionKind,
};
use quote::{format_ident, quote};

use crate::docs;
use crate::naming::{field_name, ident, type_name, variant_name, Rename, Scope};
use crate::Config;

/// Generated items, and the renames made to keep names apart.
pub struct Output {
    pub tokens: TokenStream,
    pub renames: Vec<Rename>,
}

struct Gen<'a> {
    schema: &'a Schema,
    config: &'a Config,
    rt: TokenStream,
    /// Rust names of the generated types (enums, structs, unions,
    /// alternates), and of commands and events in their modules.
    names: HashMap<EntityId, String>,
    /// Union branch enums.
    branch_enums: HashMap<EntityId, String>,
    /// (container, member or branch name) edges that need a `Box`.
    boxed: HashSet<(EntityId, String)>,
    /// Types that replies and events carry, directly or inside another.
    output: HashSet<EntityId>,
    renames: Vec<Rename>,
}

/// Where an item is emitted, for paths to the top-level types.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Top,
    Module,
}

pub fn generate(schema: &Schema, config: &Config) -> Output {
    let rt: TokenStream = config
        .runtime_path
        .parse()
        .unwrap_or_else(|_| quote!(::qapi_types));
    let mut g = Gen {
        schema,
        config,
        rt,
        names: HashMap::new(),
        branch_enums: HashMap::new(),
        boxed: HashSet::new(),
        output: HashSet::new(),
        renames: Vec::new(),
    };
    g.assign_names();
    g.find_recursion();
    if !config.older.is_empty() {
        g.find_output();
    }
    // Items are moved into the streams that hold them: interpolating a
    // `TokenStream` with `quote!` copies every token of it.
    let mut top = TokenStream::new();
    let mut commands = TokenStream::new();
    let mut events = TokenStream::new();
    for (i, e) in schema.entities.iter().enumerate() {
        let id = EntityId(i as u32);
        match &e.kind {
            EntityKind::Enum(_) => top.extend(g.enum_item(id)),
            EntityKind::Object(o) if !e.is_implicit() => {
                if o.branches.is_some() {
                    top.extend(g.union_item(id));
                } else {
                    top.extend(g.struct_item(id));
                }
            }
            EntityKind::Alternate(_) => top.extend(g.alternate_item(id)),
            EntityKind::Command(_) => commands.extend(g.command_item(id)),
            EntityKind::Event(_) => events.extend(g.event_item(id)),
            _ => {}
        }
    }
    events.extend(g.event_enum());
    commands.extend(g.check_return());
    let commands = braced(commands);
    let events = braced(events);
    let introspection = config.introspection.then(|| {
        let text = lit(&crate::introspect::schema_info(schema).to_string());
        quote! {
            /// The schema's introspection data, as JSON: the `SchemaInfo`
            /// list QEMU's `query-qmp-schema` returns, with `if` conditions
            /// kept as `{"if": COND, "then": VALUE}`.  Resolve them for
            /// one build and compare with a server's answer with the
            /// runtime's `introspect` module.
            pub const SCHEMA_INFO: &str = #text;
        }
    });
    let mut tokens = introspection.unwrap_or_default();
    tokens.extend(top);
    tokens.extend(quote! {
        /// One type per command, carrying its arguments; each implements
        /// the runtime's `Command` trait.
        pub mod commands #commands

        /// One type per event's data, and [`Event`](events::Event) over
        /// all of them.
        pub mod events #events
    });
    Output {
        tokens,
        renames: g.renames,
    }
}

impl<'a> Gen<'a> {
    fn ent(&self, id: EntityId) -> &'a Entity {
        self.schema.entity(id)
    }

    fn assign_names(&mut self) {
        let mut types = Scope::new("types");
        let mut commands = Scope::new("commands");
        let mut events = Scope::new("events");
        events.reserve("Event");
        events.reserve("EventMessage");
        let schema = self.schema;
        for (i, e) in schema.entities.iter().enumerate() {
            let id = EntityId(i as u32);
            let name = match &e.kind {
                EntityKind::Enum(_) | EntityKind::Alternate(_) => {
                    types.name(&e.name, type_name(&e.name), &mut self.renames)
                }
                EntityKind::Object(_) if !e.is_implicit() => {
                    types.name(&e.name, type_name(&e.name), &mut self.renames)
                }
                EntityKind::Command(_) => {
                    commands.name(&e.name, type_name(&e.name), &mut self.renames)
                }
                EntityKind::Event(_) => events.name(&e.name, type_name(&e.name), &mut self.renames),
                _ => continue,
            };
            self.names.insert(id, name);
        }
        // Branch enums of unions come after every schema name, so a
        // schema type never has to give way to one.
        for (i, e) in schema.entities.iter().enumerate() {
            let id = EntityId(i as u32);
            if let EntityKind::Object(o) = &e.kind {
                if o.branches.is_some() && !e.is_implicit() {
                    let n = types.name(
                        &format!("{} branches", e.name),
                        format!("{}Branch", self.names[&id]),
                        &mut self.renames,
                    );
                    self.branch_enums.insert(id, n);
                }
            }
        }
    }

    /// Box the members and branches that make a type contain itself
    /// (edges inside one strongly connected component).
    fn find_recursion(&mut self) {
        let n = self.schema.entities.len();
        // Direct containment edges, labelled by member or branch name.
        let mut edges: Vec<Vec<(usize, String)>> = vec![Vec::new(); n];
        for (i, e) in self.schema.entities.iter().enumerate() {
            match &e.kind {
                EntityKind::Object(o) => {
                    for m in &o.members {
                        edges[i].push((m.ty.0 as usize, m.name.clone()));
                    }
                    if let Some(b) = &o.branches {
                        for v in &b.variants {
                            edges[i].push((v.ty.0 as usize, v.name.clone()));
                        }
                    }
                }
                EntityKind::Alternate(a) => {
                    for v in &a.variants {
                        edges[i].push((v.ty.0 as usize, v.name.clone()));
                    }
                }
                _ => {}
            }
        }
        let comp = scc(&edges);
        for (i, out) in edges.iter().enumerate() {
            for (j, label) in out {
                if comp[i] == comp[*j] {
                    self.boxed.insert((EntityId(i as u32), label.clone()));
                }
            }
        }
    }

    /// The types replies and events carry: command returns and event
    /// data, and everything they contain.
    fn find_output(&mut self) {
        let mut stack: Vec<EntityId> = Vec::new();
        for e in &self.schema.entities {
            match &e.kind {
                EntityKind::Command(c) => stack.extend(c.ret_type),
                EntityKind::Event(ev) => stack.extend(ev.arg_type),
                _ => {}
            }
        }
        while let Some(id) = stack.pop() {
            if !self.output.insert(id) {
                continue;
            }
            match &self.ent(id).kind {
                EntityKind::Object(o) => {
                    stack.extend(o.members.iter().map(|m| m.ty));
                    if let Some(b) = &o.branches {
                        stack.extend(b.variants.iter().map(|v| v.ty));
                    }
                }
                EntityKind::Alternate(a) => stack.extend(a.variants.iter().map(|v| v.ty)),
                EntityKind::Array(a) => stack.push(a.element),
                _ => {}
            }
        }
    }

    /// The older releases (see `Config::older_schema`) whose type of
    /// the same name lacks the member `m` of `owner`, when `owner` is
    /// carried by replies or events and `m` is required.
    fn newer_only(&self, owner: EntityId, m: &ObjectMember) -> Vec<&'a str> {
        if m.optional || !self.output.contains(&owner) {
            return Vec::new();
        }
        let name = &self.ent(owner).name;
        self.config
            .older
            .iter()
            .filter(|o| o.members.get(name).is_some_and(|ms| !ms.contains(&m.name)))
            .map(|o| o.release.as_str())
            .collect()
    }

    /// The path to a type from `place`.
    fn type_path(&self, id: EntityId, place: Place) -> TokenStream {
        let rt = &self.rt;
        let e = self.ent(id);
        match &e.kind {
            EntityKind::Builtin(b) => match b {
                Builtin::Str => quote!(::std::string::String),
                Builtin::Number => quote!(f64),
                Builtin::Int | Builtin::Int64 => quote!(i64),
                Builtin::Int8 => quote!(i8),
                Builtin::Int16 => quote!(i16),
                Builtin::Int32 => quote!(i32),
                Builtin::Uint8 => quote!(u8),
                Builtin::Uint16 => quote!(u16),
                Builtin::Uint32 => quote!(u32),
                Builtin::Uint64 | Builtin::Size => quote!(u64),
                Builtin::Bool => quote!(bool),
                Builtin::Any => quote!(::serde_json::Value),
                Builtin::Null => quote!(#rt::Null),
            },
            EntityKind::Array(a) => {
                let inner = self.type_path(a.element, place);
                quote!(::std::vec::Vec<#inner>)
            }
            EntityKind::Object(_) if e.is_implicit() => {
                // Only q_empty is referred to as a type (implicit union
                // branches, which have no payload).
                quote!(())
            }
            _ => {
                let name = format_ident!("{}", self.names[&id]);
                match place {
                    Place::Top => quote!(#name),
                    Place::Module => quote!(super::#name),
                }
            }
        }
    }

    fn member_type(
        &self,
        owner: EntityId,
        m: &ObjectMember,
        optional: bool,
        place: Place,
    ) -> TokenStream {
        let mut t = self.type_path(m.ty, place);
        if self.boxed.contains(&(owner, m.name.clone())) {
            t = quote!(::std::boxed::Box<#t>);
        }
        if optional {
            t = quote!(::std::option::Option<#t>);
        }
        t
    }

    // ------------------------------------------------------------------
    // Documentation

    fn doc_attrs(&self, text: &str) -> TokenStream {
        if !self.config.docs || text.trim().is_empty() {
            return TokenStream::new();
        }
        let lines = text.lines().map(|l| lit(&format!(" {l}")));
        quote!(#(#[doc = #lines])*)
    }

    /// An item's documentation: body, sections, condition, wire name.
    fn item_docs(&self, e: &Entity, wire: Option<&str>) -> TokenStream {
        let mut text = String::new();
        let doc = e.doc.map(|d| &self.schema.docs[d]);
        if let Some(doc) = doc {
            text.push_str(&docs::markdown(doc.body()));
        }
        if text.trim().is_empty() {
            text = if e.name == "QType" {
                "The type of a JSON value, as QEMU names it (`QType`).".to_string()
            } else {
                format!("`{}` (not documented in the schema).", e.name)
            };
        }
        if let Some(doc) = doc {
            for &i in &doc.others {
                let s = &doc.sections[i];
                let heading = match s.kind {
                    SectionKind::Returns => Some("Returns"),
                    SectionKind::Errors => Some("Errors"),
                    SectionKind::Since => Some("Since"),
                    SectionKind::Todo => Some("To do"),
                    SectionKind::Note => Some("Note"),
                    SectionKind::Example => Some("Example"),
                    _ => None,
                };
                // Older releases' `Example:` sections are QMP transcripts.
                let body = if s.kind == SectionKind::Example {
                    docs::literal(&s.text)
                } else {
                    docs::markdown(&s.text)
                };
                if body.trim().is_empty() {
                    continue;
                }
                match heading {
                    Some(h) => text.push_str(&format!("\n\n# {h}\n\n{body}")),
                    None => text.push_str(&format!("\n\n{body}")),
                }
            }
            if let Some(f) = doc.feature("unstable") {
                text.push_str(&format!("\n\n**Unstable:** {}", docs::markdown(&f.text)));
            }
        }
        if let Some(c) = &e.cond {
            text.push_str(&format!(
                "\n\n*Only when QEMU is built with* `{}`.",
                cond_text(c)
            ));
        }
        if let Some(w) = wire {
            text.push_str(&format!("\n\nWire name: `{w}`."));
        }
        let mut out = self.doc_attrs(&text);
        if let Some(w) = wire {
            let w = lit(w);
            out.extend(quote!(#[doc(alias = #w)]));
        }
        out.extend(self.deprecated(&e.features, doc));
        out.extend(self.cfg(&e.cond));
        out
    }

    fn member_docs(
        &self,
        doc: Option<&Doc>,
        name: &str,
        m_cond: &Option<IfCond>,
        features: &[Feature],
        note: &str,
    ) -> TokenStream {
        let mut text = doc
            .and_then(|d| d.member(name))
            .map(|s| docs::markdown(&s.text))
            .unwrap_or_default();
        if text.trim().is_empty() {
            text = format!("`{name}`");
        }
        if features.iter().any(|f| f.name == "unstable") {
            text.push_str("\n\n**Unstable.**");
        }
        if !note.is_empty() {
            text.push_str("\n\n");
            text.push_str(note);
        }
        if let Some(c) = m_cond {
            text.push_str(&format!(
                "\n\n*Only when QEMU is built with* `{}`.",
                cond_text(c)
            ));
        }
        let mut out = self.doc_attrs(text.trim());
        out.extend(self.deprecated(features, None));
        out.extend(self.cfg(m_cond));
        out
    }

    fn deprecated(&self, features: &[Feature], doc: Option<&Doc>) -> TokenStream {
        if !features.iter().any(|f| f.name == "deprecated") {
            return TokenStream::new();
        }
        let note = doc
            .and_then(|d| d.feature("deprecated"))
            .map(|s| s.text.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty());
        match note {
            Some(n) => {
                let n = lit(&n);
                quote!(#[deprecated = #n])
            }
            None => quote!(#[deprecated]),
        }
    }

    fn cfg(&self, cond: &Option<IfCond>) -> TokenStream {
        match (cond, self.config.cfg_conditions) {
            (Some(c), true) => {
                let pred = cfg_pred(c);
                quote!(#[cfg(#pred)])
            }
            _ => TokenStream::new(),
        }
    }

    fn extra_attrs(&self, qapi_name: &str) -> TokenStream {
        let mut out = TokenStream::new();
        for (pattern, attr) in &self.config.type_attributes {
            if pattern == "." || pattern == qapi_name {
                if let Ok(ts) = attr.parse::<TokenStream>() {
                    out.extend(ts);
                }
            }
        }
        out
    }

    // ------------------------------------------------------------------
    // Items

    fn enum_item(&mut self, id: EntityId) -> TokenStream {
        let e = self.ent(id);
        let EntityKind::Enum(en) = &e.kind else {
            unreachable!()
        };
        let name = format_ident!("{}", self.names[&id]);
        let mut scope = Scope::new(format!("enum {}", e.name));
        let doc = e.doc.map(|d| &self.schema.docs[d]);
        let mut variants = Vec::new();
        let mut to_wire = Vec::new();
        let mut from_wire = Vec::new();
        let mut all = Vec::new();
        for v in &en.values {
            let vname = ident(&scope.name(&v.name, variant_name(&v.name), &mut self.renames));
            let wire = lit(&v.name);
            let docs = self.member_docs(doc, &v.name, &v.cond, &v.features, "");
            let cfg = self.cfg(&v.cond);
            variants.push(quote!(#docs #vname,));
            to_wire.push(quote!(#cfg Self::#vname => #wire,));
            from_wire.push(quote!(#cfg #wire => Self::#vname,));
            all.push(quote!(#cfg Self::#vname,));
        }
        let other = ident(&scope.name("(catch-all)", "Other".into(), &mut self.renames));
        let docs = self.item_docs(e, None);
        let extra = self.extra_attrs(&e.name);
        let rt = &self.rt;
        let ename = lit(&e.name);
        quote! {
            #docs
            #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
            #extra
            pub enum #name {
                #(#variants)*
                /// A value these bindings do not know (from a newer QEMU),
                /// kept as it was on the wire.
                #other(::std::string::String),
            }

            #[allow(deprecated)]
            impl #name {
                /// Every value these bindings know, in schema order.
                pub const ALL: &'static [Self] = &[#(#all)*];

                /// The value's name on the wire.
                pub fn as_str(&self) -> &str {
                    match self {
                        #(#to_wire)*
                        Self::#other(s) => s,
                    }
                }

                /// The value for a wire name; unknown names are kept.
                pub fn from_wire(s: &str) -> Self {
                    match s {
                        #(#from_wire)*
                        other => Self::#other(other.to_string()),
                    }
                }
            }

            impl ::std::fmt::Display for #name {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    f.write_str(self.as_str())
                }
            }

            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    s.serialize_str(self.as_str())
                }
            }

            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                    let v = Self::from_wire(&s);
                    #rt::__private::known(!matches!(v, Self::#other(_)), #ename, &s)?;
                    ::std::result::Result::Ok(v)
                }
            }
        }
    }

    /// Fields for `members` of `owner`, skipping `skip` (a discriminator).
    fn fields(
        &mut self,
        owner: EntityId,
        doc_owner: EntityId,
        members: &[ObjectMember],
        skip: Option<&str>,
        place: Place,
    ) -> (Vec<TokenStream>, Vec<(Ident, String, bool)>) {
        // Every object is (de)serialized by generated impls that name the
        // wire members: no serde attributes on fields.
        let e = self.ent(owner);
        let doc = self.ent(doc_owner).doc.map(|d| &self.schema.docs[d]);
        let mut scope = Scope::new(format!("fields of {}", e.name));
        let mut fields = Vec::new();
        let mut names = Vec::new();
        for m in members {
            if Some(m.name.as_str()) == skip {
                continue;
            }
            let fname = scope.name(&m.name, field_name(&m.name), &mut self.renames);
            let fident = ident(&fname);
            let newer_only = self.newer_only(owner, m);
            let optional = m.optional || !newer_only.is_empty();
            let ty = self.member_type(owner, m, optional, place);
            // Inherited members are documented by their own type.
            let mdoc = if m.defined_in == owner || self.ent(m.defined_in).is_implicit() {
                doc
            } else {
                self.ent(m.defined_in).doc.map(|d| &self.schema.docs[d])
            };
            let note = if newer_only.is_empty() {
                String::new()
            } else {
                format!(
                    "*Required by this schema, but not sent by QEMU {}, whose replies \
                     these bindings also read: `None` there.*",
                    newer_only.join(", ")
                )
            };
            let docs = self.member_docs(mdoc, &m.name, &m.cond, &m.features, &note);
            fields.push(quote!(#docs pub #fident: #ty,));
            names.push((fident, m.name.clone(), optional));
        }
        (fields, names)
    }

    fn struct_item(&mut self, id: EntityId) -> TokenStream {
        let e = self.ent(id);
        let EntityKind::Object(o) = &e.kind else {
            unreachable!()
        };
        let name = format_ident!("{}", self.names[&id]);
        let (fields, names) = self.fields(id, id, &o.members.clone(), None, Place::Top);
        let docs = self.item_docs(e, None);
        let extra = self.extra_attrs(&e.name);
        let impls = self.object_serde(&name, &names);
        quote! {
            #docs
            #[derive(Clone, Debug, PartialEq)]
            #extra
            pub struct #name {
                #(#fields)*
            }

            #impls
        }
    }

    /// `Serialize` and `Deserialize` for a struct of `names` (field,
    /// wire name, optional), through the runtime's object helpers.
    fn object_serde(&self, name: &Ident, names: &[(Ident, String, bool)]) -> TokenStream {
        let rt = &self.rt;
        let put = names.iter().map(|(f, wire, opt)| {
            let wire = lit(wire);
            if *opt {
                quote!(m.opt(#wire, &self.#f)?;)
            } else {
                quote!(m.field(#wire, &self.#f)?;)
            }
        });
        let take = names.iter().map(|(f, wire, opt)| {
            let wire = lit(wire);
            if *opt {
                quote!(#f: #rt::__private::optional(&mut m, #wire)?,)
            } else {
                quote!(#f: #rt::__private::required(&mut m, #wire)?,)
            }
        });
        let (m_ser, m_de, m_ref) = if names.is_empty() {
            (quote!(m), quote!(m), quote!(m))
        } else {
            (quote!(mut m), quote!(mut m), quote!(m))
        };
        let type_name = lit(&name.to_string());
        quote! {
            #[allow(deprecated)]
            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    let #m_ser = #rt::__private::object_ser(s)?;
                    #(#put)*
                    m.end()
                }
            }

            #[allow(deprecated)]
            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    let #m_de = #rt::__private::object(d)?;
                    let v = Self { #(#take)* };
                    #rt::__private::finish(&#m_ref, #type_name)?;
                    ::std::result::Result::Ok(v)
                }
            }
        }
    }

    /// The type a simple union's wrapper type (`q_obj_T-wrapper`, QEMU
    /// before 6.2) wraps: the type of its one member `data`.
    fn wrapped(&self, ty: EntityId) -> Option<EntityId> {
        let e = self.ent(ty);
        match &e.kind {
            EntityKind::Object(o)
                if e.is_implicit()
                    && e.name.ends_with("-wrapper")
                    && o.members.len() == 1
                    && o.members[0].name == "data" =>
            {
                Some(o.members[0].ty)
            }
            _ => None,
        }
    }

    // Branch enums, alternates and `Event` allow clippy's
    // `large_enum_variant`: boxing the large payloads would make every
    // value harder to build and match for a size saving on values that
    // are built once and rarely moved.
    fn union_item(&mut self, id: EntityId) -> TokenStream {
        let rt = self.rt.clone();
        let e = self.ent(id);
        let EntityKind::Object(o) = &e.kind else {
            unreachable!()
        };
        let b = o.branches.as_ref().expect("a union");
        let name = format_ident!("{}", self.names[&id]);
        let bname = format_ident!("{}", self.branch_enums[&id]);
        let tag = b.tag.clone();
        let tag_lit = lit(&tag);
        let members = o.members.clone();
        let (fields, names) = self.fields(id, id, &members, Some(&tag), Place::Top);
        let doc = e.doc.map(|d| &self.schema.docs[d]);
        let mut scope = Scope::new(format!("branches of {}", e.name));
        let mut scope_fields = Scope::new(format!("fields of {}", e.name));
        for (f, _, _) in &names {
            scope_fields.reserve(&f.to_string());
        }
        let branch_field =
            ident(&scope_fields.name("(branch)", "branch".into(), &mut self.renames));
        let mut variants = Vec::new();
        let mut de_arms = Vec::new();
        let mut ser_arms = Vec::new();
        let mut tag_arms = Vec::new();
        for v in &b.variants {
            let vname = ident(&scope.name(&v.name, variant_name(&v.name), &mut self.renames));
            let wire = &v.name;
            let cfg = self.cfg(&v.cond);
            // A simple union's branch (QEMU before 6.2) holds its value
            // in the one member `data` of an implicit wrapper type.
            let wrapped = self.wrapped(v.ty);
            let vdoc = if v.implicit {
                format!("`{wire}`: no further members.")
            } else if wrapped.is_some() {
                let base = doc
                    .and_then(|d| d.member(wire))
                    .map(|s| docs::markdown(&s.text))
                    .unwrap_or_default();
                let sent = format!("On the wire: `{{\"{tag}\": \"{wire}\", \"data\": VALUE}}`.");
                if base.is_empty() {
                    format!("`{wire}`. {sent}")
                } else {
                    format!("{base}\n\n{sent}")
                }
            } else {
                let ty = &self.ent(v.ty).name;
                let base = doc
                    .and_then(|d| d.member(wire))
                    .map(|s| docs::markdown(&s.text))
                    .unwrap_or_default();
                if base.is_empty() {
                    format!(
                        "`{wire}`: the members of [`{}`].",
                        self.names.get(&v.ty).cloned().unwrap_or_else(|| ty.clone())
                    )
                } else {
                    base
                }
            };
            let vdocs = self.doc_attrs(&vdoc);
            let wire = lit(wire);
            if let Some(inner) = wrapped {
                let mut ty = self.type_path(inner, Place::Top);
                if self.boxed.contains(&(id, v.name.clone()))
                    || self.boxed.contains(&(v.ty, "data".to_string()))
                {
                    ty = quote!(::std::boxed::Box<#ty>);
                }
                let uname = lit(&e.name);
                variants.push(quote!(#vdocs #cfg #vname(#ty),));
                tag_arms.push(quote!(#cfg #bname::#vname(_) => #wire,));
                de_arms.push(quote!(#cfg #wire => {
                    let v = #rt::__private::required(&mut map, "data")?;
                    #rt::__private::finish(&map, #uname)?;
                    #bname::#vname(v)
                },));
                ser_arms.push(quote!(#cfg #bname::#vname(v) => {
                    map.insert(#tag_lit.into(), #wire.into());
                    #rt::__private::put(&mut map, "data", v)?;
                }));
            } else if v.implicit || self.ent(v.ty).name == "q_empty" {
                variants.push(quote!(#vdocs #cfg #vname,));
                tag_arms.push(quote!(#cfg #bname::#vname => #wire,));
                let uname = lit(&e.name);
                de_arms.push(quote!(#cfg #wire => { #rt::__private::finish(&map, #uname)?; #bname::#vname },));
                ser_arms.push(
                    quote!(#cfg #bname::#vname => { map.insert(#tag_lit.into(), #wire.into()); }),
                );
            } else {
                let mut ty = self.type_path(v.ty, Place::Top);
                if self.boxed.contains(&(id, v.name.clone())) {
                    ty = quote!(::std::boxed::Box<#ty>);
                }
                variants.push(quote!(#vdocs #cfg #vname(#ty),));
                tag_arms.push(quote!(#cfg #bname::#vname(_) => #wire,));
                de_arms.push(quote!(#cfg #wire => #bname::#vname(#rt::__private::rest(map)?),));
                ser_arms.push(quote!(#cfg #bname::#vname(v) => {
                    map.insert(#tag_lit.into(), #wire.into());
                    #rt::__private::merge(&mut map, v)?;
                }));
            }
        }
        let other = ident(&scope.name("(catch-all)", "Other".into(), &mut self.renames));
        let field_idents: Vec<&Ident> = names.iter().map(|(f, _, _)| f).collect();
        // An older release this binding also reads may lack the
        // discriminator altogether (the type was a plain struct there).
        let untagged_in = o
            .members
            .iter()
            .find(|m| m.name == tag)
            .map(|m| self.newer_only(id, m))
            .unwrap_or_default();
        let untagged = (!untagged_in.is_empty()).then(|| {
            let v = ident(&scope.name("(untagged)", "Untagged".into(), &mut self.renames));
            let vdoc = lit(&format!(
                " Sent by QEMU {}, where this type had no `{tag}` member: the members \
                 other than the common ones, as sent.",
                untagged_in.join(", ")
            ));
            (v, vdoc)
        });
        let (untagged_variant, untagged_tag, untagged_ser, tag_de) = match &untagged {
            Some((v, vdoc)) => (
                quote! {
                    #[doc = #vdoc]
                    #v {
                        /// The members other than the common ones.
                        members: ::serde_json::Map<::std::string::String, ::serde_json::Value>,
                    },
                },
                quote!(#bname::#v { .. } => "",),
                quote!(#bname::#v { members } => map.extend(members.clone()),),
                quote! {
                    let tag: ::std::string::String = match #rt::__private::optional(&mut map, #tag_lit)? {
                        ::std::option::Option::Some(tag) => tag,
                        ::std::option::Option::None => {
                            let #branch_field = #bname::#v { members: map };
                            return ::std::result::Result::Ok(Self { #(#field_idents,)* #branch_field });
                        }
                    };
                },
            ),
            None => (
                TokenStream::new(),
                TokenStream::new(),
                TokenStream::new(),
                quote!(let tag: ::std::string::String = #rt::__private::required(&mut map, #tag_lit)?;),
            ),
        };
        let tag_doc = if untagged.is_some() {
            quote!(#[doc = " The discriminator's value, as on the wire (empty when it was not sent)."])
        } else {
            quote!(#[doc = " The discriminator's value, as on the wire."])
        };
        let uname = lit(&e.name);
        let take: Vec<TokenStream> = names
            .iter()
            .map(|(f, wire, opt)| {
                let wire = lit(wire);
                if *opt {
                    quote!(let #f = #rt::__private::optional(&mut map, #wire)?;)
                } else {
                    quote!(let #f = #rt::__private::required(&mut map, #wire)?;)
                }
            })
            .collect();
        let put: Vec<TokenStream> = names
            .iter()
            .map(|(f, wire, opt)| {
                let wire = lit(wire);
                if *opt {
                    quote!(if let ::std::option::Option::Some(v) = &self.#f { #rt::__private::put(&mut map, #wire, v)?; })
                } else {
                    quote!(#rt::__private::put(&mut map, #wire, &self.#f)?;)
                }
            })
            .collect();
        let docs = self.item_docs(e, None);
        let extra = self.extra_attrs(&e.name);
        let bdoc = lit(&format!(
            " The branches of [`{name}`], chosen by its `{tag}` member (which is not stored separately: the variant is the value)."
        ));
        quote! {
            #docs
            #[derive(Clone, Debug, PartialEq)]
            #extra
            pub struct #name {
                #(#fields)*
                /// The members that depend on the discriminator.
                pub #branch_field: #bname,
            }

            #[doc = #bdoc]
            #[derive(Clone, Debug, PartialEq)]
            #[allow(clippy::large_enum_variant)]
            pub enum #bname {
                #(#variants)*
                #untagged_variant
                /// A branch these bindings do not know (from a newer QEMU):
                /// the discriminator's value and the other members as sent.
                #other {
                    /// The discriminator's value.
                    tag: ::std::string::String,
                    /// The members other than the common ones.
                    members: ::serde_json::Map<::std::string::String, ::serde_json::Value>,
                },
            }

            impl #bname {
                #tag_doc
                pub fn tag(&self) -> &str {
                    match self {
                        #(#tag_arms)*
                        #untagged_tag
                        #bname::#other { tag, .. } => tag,
                    }
                }
            }

            #[allow(deprecated)]
            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    let mut map = ::serde_json::Map::new();
                    #(#put)*
                    match &self.#branch_field {
                        #(#ser_arms)*
                        #untagged_ser
                        #bname::#other { tag, members } => {
                            map.insert(#tag_lit.into(), tag.clone().into());
                            map.extend(members.clone());
                        }
                    }
                    ::serde::Serialize::serialize(&map, s)
                }
            }

            #[allow(deprecated)]
            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    let mut map = <#rt::__private::Object as ::serde::Deserialize>::deserialize(d)?;
                    #(#take)*
                    #tag_de
                    let #branch_field = match tag.as_str() {
                        #(#de_arms)*
                        _ => {
                            #rt::__private::known(false, #uname, &tag)?;
                            #bname::#other { tag, members: map }
                        }
                    };
                    ::std::result::Result::Ok(Self { #(#field_idents,)* #branch_field })
                }
            }
        }
    }

    fn alternate_item(&mut self, id: EntityId) -> TokenStream {
        let rt = self.rt.clone();
        let e = self.ent(id);
        let EntityKind::Alternate(a) = &e.kind else {
            unreachable!()
        };
        let name = format_ident!("{}", self.names[&id]);
        let doc = e.doc.map(|d| &self.schema.docs[d]);
        let mut scope = Scope::new(format!("alternate {}", e.name));
        let mut variants = Vec::new();
        let mut ser_arms = Vec::new();
        let mut de_arms = Vec::new();
        for v in &a.variants {
            let vname = ident(&scope.name(&v.name, variant_name(&v.name), &mut self.renames));
            let mut ty = self.type_path(v.ty, Place::Top);
            if self.boxed.contains(&(id, v.name.clone())) {
                ty = quote!(::std::boxed::Box<#ty>);
            }
            let docs = self.member_docs(doc, &v.name, &v.cond, &[], "");
            let cfg = self.cfg(&v.cond);
            variants.push(quote!(#docs #vname(#ty),));
            ser_arms.push(quote!(#cfg Self::#vname(v) => ::serde::Serialize::serialize(v, s),));
            let pattern = match self.schema.json_type(v.ty) {
                qapi_parser::JsonType::String => quote!(::serde_json::Value::String(_)),
                qapi_parser::JsonType::Number | qapi_parser::JsonType::Int => {
                    quote!(::serde_json::Value::Number(_))
                }
                qapi_parser::JsonType::Boolean => quote!(::serde_json::Value::Bool(_)),
                qapi_parser::JsonType::Null => quote!(::serde_json::Value::Null),
                qapi_parser::JsonType::Array => quote!(::serde_json::Value::Array(_)),
                qapi_parser::JsonType::Object | qapi_parser::JsonType::Value => {
                    quote!(::serde_json::Value::Object(_))
                }
            };
            de_arms.push(quote!(#cfg #pattern => Self::#vname(#rt::__private::from_value(v)?),));
        }
        let docs = self.item_docs(e, None);
        let extra = self.extra_attrs(&e.name);
        let ename = lit(&e.name);
        quote! {
            #docs
            #[derive(Clone, Debug, PartialEq)]
            #[allow(clippy::large_enum_variant)]
            #extra
            pub enum #name {
                #(#variants)*
            }

            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    match self {
                        #(#ser_arms)*
                    }
                }
            }

            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    let v = <::serde_json::Value as ::serde::Deserialize>::deserialize(d)?;
                    ::std::result::Result::Ok(match v {
                        #(#de_arms)*
                        other => return ::std::result::Result::Err(#rt::__private::no_branch(#ename, &other)),
                    })
                }
            }
        }
    }

    /// A command's or event's data type: its fields, or the named type it
    /// wraps.
    fn data_item(&mut self, id: EntityId, arg: Option<EntityId>, boxed: bool) -> TokenStream {
        let name = format_ident!("{}", self.names[&id]);
        match arg {
            Some(a) if boxed || !self.ent(a).is_implicit() => {
                let inner = self.type_path(a, Place::Module);
                quote! {
                    #[derive(Clone, Debug, PartialEq)]
                    pub struct #name(pub #inner);

                    #[allow(deprecated)]
                    impl ::serde::Serialize for #name {
                        fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                            ::serde::Serialize::serialize(&self.0, s)
                        }
                    }

                    #[allow(deprecated)]
                    impl<'de> ::serde::Deserialize<'de> for #name {
                        fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                            ::serde::Deserialize::deserialize(d).map(Self)
                        }
                    }
                }
            }
            Some(a) => {
                let EntityKind::Object(o) = &self.ent(a).kind else {
                    unreachable!()
                };
                let members = o.members.clone();
                let (fields, names) = self.fields(a, id, &members, None, Place::Module);
                let impls = self.object_serde(&name, &names);
                quote! {
                    #[derive(Clone, Debug, PartialEq)]
                    pub struct #name {
                        #(#fields)*
                    }

                    #impls
                }
            }
            None => {
                let impls = self.object_serde(&name, &[]);
                quote! {
                    #[derive(Clone, Debug, Default, PartialEq)]
                    pub struct #name {}

                    #impls
                }
            }
        }
    }

    fn command_item(&mut self, id: EntityId) -> TokenStream {
        let rt = self.rt.clone();
        let e = self.ent(id);
        let EntityKind::Command(c) = &e.kind else {
            unreachable!()
        };
        let name = format_ident!("{}", self.names[&id]);
        let wire = &e.name;
        let def = self.data_item(id, c.arg_type, c.boxed);
        let docs = self.item_docs(e, Some(wire));
        let wire = lit(wire);
        let extra = self.extra_attrs(&e.name);
        let oob = c.allow_oob;
        let success = c.success_response;
        let (returns, decode) = match c.ret_type {
            Some(r) => {
                let t = self.type_path(r, Place::Module);
                (t, quote!(#rt::__private::typed_return(value)))
            }
            None => (quote!(()), quote!(#rt::__private::unit_return(value))),
        };
        quote! {
            #docs
            #extra
            #def

            #[allow(deprecated)]
            impl #rt::Command for #name {
                const NAME: &'static str = #wire;
                const ALLOW_OOB: bool = #oob;
                const SUCCESS_RESPONSE: bool = #success;
                type Returns = #returns;
                fn decode_return(value: ::serde_json::Value) -> ::std::result::Result<Self::Returns, ::serde_json::Error> {
                    #decode
                }
            }
        }
    }

    fn event_item(&mut self, id: EntityId) -> TokenStream {
        let rt = self.rt.clone();
        let e = self.ent(id);
        let EntityKind::Event(ev) = &e.kind else {
            unreachable!()
        };
        let name = format_ident!("{}", self.names[&id]);
        let wire = &e.name;
        let def = self.data_item(id, ev.arg_type, ev.boxed);
        let docs = self.item_docs(e, Some(wire));
        let wire = lit(wire);
        let extra = self.extra_attrs(&e.name);
        quote! {
            #docs
            #extra
            #def

            #[allow(deprecated)]
            impl #rt::Event for #name {
                const NAME: &'static str = #wire;
            }
        }
    }

    /// `commands::check_return`: decode a reply by command name.
    fn check_return(&self) -> TokenStream {
        let rt = &self.rt;
        let mut arms = Vec::new();
        for (i, e) in self.schema.entities.iter().enumerate() {
            if let EntityKind::Command(_) = e.kind {
                let ty = format_ident!("{}", self.names[&EntityId(i as u32)]);
                let wire = lit(&e.name);
                let cfg = self.cfg(&e.cond);
                arms.push(
                    quote!(#cfg #wire => <#ty as #rt::Command>::decode_return(value).map(drop),),
                );
            }
        }
        let body = if arms.is_empty() {
            quote!(let _ = (name, value); ::std::option::Option::None)
        } else {
            quote!(::std::option::Option::Some(match name {
                #(#arms)*
                _ => return ::std::option::Option::None,
            }))
        };
        quote! {
            /// Decode `value` as the `return` of the command named `name`,
            /// and drop it: for tools that check replies by name. `None`
            /// when these bindings do not know the command.
            #[allow(deprecated)]
            pub fn check_return(
                name: &str,
                value: ::serde_json::Value,
            ) -> ::std::option::Option<::std::result::Result<(), ::serde_json::Error>> {
                #body
            }
        }
    }

    fn event_enum(&mut self) -> TokenStream {
        let rt = self.rt.clone();
        let mut scope = Scope::new("enum Event");
        let mut variants = Vec::new();
        let mut de_arms = Vec::new();
        let mut name_arms = Vec::new();
        for (i, e) in self.schema.entities.iter().enumerate() {
            let id = EntityId(i as u32);
            if !matches!(e.kind, EntityKind::Event(_)) {
                continue;
            }
            let ty = format_ident!("{}", self.names[&id]);
            let vname = ident(&scope.name(&e.name, self.names[&id].clone(), &mut self.renames));
            let cfg = self.cfg(&e.cond);
            let dep = self.deprecated(&e.features, None);
            let doc = lit(&format!("`{}`", e.name));
            let wire = lit(&e.name);
            variants.push(quote!(#[doc = #doc] #dep #cfg #vname(#ty),));
            de_arms
                .push(quote!(#cfg #wire => #rt::__private::typed_return(data).map(Event::#vname),));
            name_arms.push(quote!(#cfg Event::#vname(_) => #wire,));
        }
        let other = ident(&scope.name("(catch-all)", "Other".into(), &mut self.renames));
        let (name_body, decode_body) = if variants.is_empty() {
            (
                quote!(let Event::#other { name, .. } = self; name),
                quote!(Event::#other { name: name.to_string(), data }),
            )
        } else {
            (
                quote!(match self {
                    #(#name_arms)*
                    Event::#other { name, .. } => name,
                }),
                quote! {
                    let keep = data.clone();
                    let decoded: ::std::result::Result<Self, ::serde_json::Error> = match name {
                        #(#de_arms)*
                        _ => ::std::result::Result::Ok(Event::#other { name: name.to_string(), data }),
                    };
                    decoded.unwrap_or_else(|_| Event::#other { name: name.to_string(), data: keep })
                },
            )
        };
        quote! {
            /// Any event, by name.
            #[derive(Clone, Debug, PartialEq)]
            #[allow(clippy::large_enum_variant, deprecated)]
            pub enum Event {
                #(#variants)*
                /// An event these bindings do not know (from a newer QEMU).
                #other {
                    /// The event's name.
                    name: ::std::string::String,
                    /// Its `data` member as sent.
                    data: ::serde_json::Value,
                },
            }

            #[allow(deprecated)]
            impl Event {
                /// The event's name on the wire.
                pub fn name(&self) -> &str {
                    #name_body
                }

                /// Decode an event from its name and `data` member; an
                /// unknown name, or data that does not decode, is kept as
                /// it was sent.
                pub fn decode(name: &str, data: ::serde_json::Value) -> Self {
                    #decode_body
                }
            }

            /// An event message: the event and when QEMU sent it.
            #[derive(Clone, Debug, PartialEq)]
            pub struct EventMessage {
                /// The event.
                pub event: Event,
                /// When QEMU sent it.
                pub timestamp: #rt::Timestamp,
            }

            impl<'de> ::serde::Deserialize<'de> for EventMessage {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    let mut map = <#rt::__private::Object as ::serde::Deserialize>::deserialize(d)?;
                    let name: ::std::string::String = #rt::__private::required(&mut map, "event")?;
                    let timestamp = #rt::__private::required(&mut map, "timestamp")?;
                    let data = map
                        .remove("data")
                        .unwrap_or_else(|| ::serde_json::Value::Object(::serde_json::Map::new()));
                    ::std::result::Result::Ok(EventMessage { event: Event::decode(&name, data), timestamp })
                }
            }
        }
    }
}

/// `{ tokens }`, taking them rather than copying them.
fn braced(tokens: TokenStream) -> proc_macro2::Group {
    proc_macro2::Group::new(proc_macro2::Delimiter::Brace, tokens)
}

/// A string literal.  proc-macro2's `Literal::string` escapes character
/// by character, which made it the largest single cost of generation;
/// text that needs no escape is quoted as it is, and text with quotes or
/// backslashes (JSON, rST) becomes a raw string, which also reads better.
/// Anything else (control characters) is escaped as before.
fn lit(s: &str) -> Literal {
    let plain = |c: char| c != '"' && c != '\\' && !c.is_control();
    let repr = if s.chars().all(plain) {
        format!("\"{s}\"")
    } else if s.chars().all(|c| c == '"' || c == '\\' || plain(c)) {
        // One more `#` than the longest run of them after a quote.
        let mut longest = 0;
        for (i, _) in s.match_indices('"') {
            let run = s[i + 1..].bytes().take_while(|&b| b == b'#').count();
            longest = longest.max(run);
        }
        let hashes = "#".repeat(longest + 1);
        format!("r{hashes}\"{s}\"{hashes}")
    } else {
        return Literal::string(s);
    };
    repr.parse().unwrap_or_else(|_| Literal::string(s))
}

/// A condition in Rust-like notation, for documentation.
fn cond_text(c: &IfCond) -> String {
    match c {
        IfCond::Name(n) => n.clone(),
        IfCond::Not(c) => format!("!{}", cond_text(c)),
        IfCond::All(v) => format!(
            "({})",
            v.iter().map(cond_text).collect::<Vec<_>>().join(" && ")
        ),
        IfCond::Any(v) => format!(
            "({})",
            v.iter().map(cond_text).collect::<Vec<_>>().join(" || ")
        ),
    }
}

/// A condition as a `cfg` predicate: `CONFIG_X` becomes `qapi = "CONFIG_X"`.
fn cfg_pred(c: &IfCond) -> TokenStream {
    match c {
        IfCond::Name(n) => {
            let n = lit(n);
            quote!(qapi = #n)
        }
        IfCond::Not(c) => {
            let p = cfg_pred(c);
            quote!(not(#p))
        }
        IfCond::All(v) => {
            let ps = v.iter().map(cfg_pred);
            quote!(all(#(#ps),*))
        }
        IfCond::Any(v) => {
            let ps = v.iter().map(cfg_pred);
            quote!(any(#(#ps),*))
        }
    }
}

/// Strongly connected components (Tarjan, iterative): a component index
/// for each node.
fn scc(edges: &[Vec<(usize, String)>]) -> Vec<usize> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![usize::MAX; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut ncomp = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut ei)) = work.last_mut() {
            if let Some((w, _)) = edges[v].get(*ei) {
                *ei += 1;
                let w = *w;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp[w] = ncomp;
                        if w == v {
                            break;
                        }
                    }
                    ncomp += 1;
                }
            }
        }
    }
    comp
}

#[cfg(test)]
mod tests {
    use super::lit;

    #[test]
    fn literals_keep_their_value() {
        for s in [
            "",
            "plain text, with 'single' quotes and é",
            r#"{"json": ["with", "quotes"]}"#,
            r"back\slash",
            r##"a "# in the text"##,
            r###"and "## too"###,
            "tab\tand newline\n and NUL\0 and CR\r",
            "\"",
            "#\"#",
        ] {
            let l = lit(s);
            let parsed: syn::LitStr = syn::parse2(quote::quote!(#l)).expect("a string literal");
            assert_eq!(parsed.value(), s, "{l}");
        }
    }
}
