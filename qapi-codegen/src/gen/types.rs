//! Type definitions: enums, structs, unions and alternates.

use proc_macro2::{Ident, TokenStream};
use qapi_parser::{Builtin, EntityId, EntityKind, ObjectMember};
use quote::{format_ident, quote};

use super::construct::CtorField;
use super::docs::BranchPayload;
use super::serde::{Branch, BranchKind, Member, UnionShape};
use super::{lit, Gen, Place};
use crate::naming::{field_name, ident, variant_name, Scope};

impl Gen<'_> {
    pub(super) fn enum_item(&mut self, id: EntityId) -> TokenStream {
        let e = self.ent(id);
        let EntityKind::Enum(en) = &e.kind else {
            unreachable!()
        };
        let name = format_ident!("{}", self.plan.names[&id]);
        let mut scope = Scope::new(format!("enum {}", e.name));
        let doc = e.doc.map(|d| &self.schema.docs[d]);
        let mut variants = Vec::new();
        let mut to_wire = Vec::new();
        let mut from_wire = Vec::new();
        let mut all = Vec::new();
        for v in &en.values {
            let vname = ident(&scope.name(&v.name, variant_name(&v.name), &mut self.renames));
            let wire = lit(&v.name);
            let note = self.value_note(id, &v.name);
            let docs = self.member_docs(doc, &v.name, &v.cond, &v.features, &note);
            let cfg = self.cfg(&v.cond);
            variants.push(quote!(#docs #vname,));
            to_wire.push(quote!(#cfg Self::#vname => #wire,));
            from_wire.push(quote!(#cfg #wire => Self::#vname,));
            all.push(quote!(#cfg Self::#vname,));
        }
        let other = ident(&scope.name("(catch-all)", "Other".into(), &mut self.renames));
        let docs = self.item_docs(e, None);
        let extra = self.extra_attrs(&e.name);
        let impls = self.enum_serde(&name, &other, &e.name);
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
                // `inline` (here and on the other small non-generic
                // functions of generated types): compiled in the crates
                // that use it, as generic code is, not in `qapi-types`
                // for every type whether used or not.
                #[inline]
                pub fn as_str(&self) -> &str {
                    match self {
                        #(#to_wire)*
                        Self::#other(s) => s,
                    }
                }

                /// The value for a wire name; unknown names are kept.
                #[inline]
                pub fn from_wire(s: &str) -> Self {
                    match s {
                        #(#from_wire)*
                        other => Self::#other(other.to_string()),
                    }
                }
            }

            impl ::std::fmt::Display for #name {
                #[inline]
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    f.write_str(self.as_str())
                }
            }

            #impls
        }
    }

    /// Fields for `members` of `owner`, skipping `skip` (a discriminator).
    pub(super) fn fields(
        &mut self,
        owner: EntityId,
        doc_owner: EntityId,
        members: &[ObjectMember],
        skip: Option<&str>,
        place: Place,
    ) -> Fields {
        // Every object is (de)serialized by generated impls that name the
        // wire members: no serde attributes on fields.
        let e = self.ent(owner);
        let mut scope = Scope::new(format!("fields of {}", e.name));
        // A command the schema leaves open (`gen: false`) also has the
        // free-form bag `props` and its setter `prop`: members give way.
        if matches!(&self.ent(doc_owner).kind, EntityKind::Command(c) if !c.gen) {
            scope.reserve("props");
            scope.reserve("prop");
        }
        let mut fields = Vec::new();
        let mut names = Vec::new();
        let mut ctor = Vec::new();
        for m in members {
            if Some(m.name.as_str()) == skip {
                continue;
            }
            let fname = scope.name(&m.name, field_name(&m.name), &mut self.renames);
            let fident = ident(&fname);
            let newer_only = self.newer_only(owner, m);
            let conditional = self.conditional_required(owner, m);
            let optional = m.optional || !newer_only.is_empty() || conditional;
            let ty = self.member_type(owner, m, optional, place, true);
            // A member whose older form differs is `Compat`: built as such.
            let compat = self.compat_member(owner, m, false, place);
            let ty = self.compat_member(owner, m, optional, place).unwrap_or(ty);
            let mdoc = self.member_doc(owner, doc_owner, m);
            let mut note = self.member_note(owner, m, &newer_only);
            if conditional {
                if !note.is_empty() {
                    note.push_str("\n\n");
                }
                note.push_str(
                    "*Required by this schema where QEMU has it: `None` from a QEMU built \
                     without it.*",
                );
            }
            let docs = self.member_docs(mdoc, &m.name, &m.cond, &m.features, &note);
            fields.push(quote!(#docs pub #fident: #ty,));
            let boxed = compat.is_none() && self.plan.boxed.contains(&(owner, m.name.clone()));
            let plain = compat.is_none()
                && !boxed
                && match &self.ent(m.ty).kind {
                    // A plain literal converts into `i32`, `i64` and `f64`
                    // (and a narrower number does): those stay `impl Into`.
                    EntityKind::Builtin(b) => !matches!(
                        b,
                        Builtin::Str
                            | Builtin::Any
                            | Builtin::Null
                            | Builtin::Int
                            | Builtin::Int64
                            | Builtin::Int32
                            | Builtin::Number
                    ),
                    EntityKind::Enum(_) => true,
                    _ => false,
                };
            ctor.push(CtorField {
                ident: fident.clone(),
                wire: m.name.clone(),
                optional: m.optional,
                option: optional,
                boxed,
                plain,
                inner: compat.unwrap_or_else(|| self.member_type(owner, m, false, place, false)),
                deprecated: m.features.iter().any(|f| f.name == "deprecated"),
                cfg: self.cfg(&m.cond),
            });
            names.push((fident, m.name.clone(), optional, ty.clone()));
        }
        (fields, names, ctor)
    }

    pub(super) fn struct_item(&mut self, id: EntityId) -> TokenStream {
        let e = self.ent(id);
        let EntityKind::Object(o) = &e.kind else {
            unreachable!()
        };
        let name = format_ident!("{}", self.plan.names[&id]);
        let (fields, names, ctor) = self.fields(id, id, &o.members.clone(), None, Place::Top);
        let mut docs = self.item_docs(e, None);
        docs.extend(self.command_docs_for(id));
        let extra = self.extra_attrs(&e.name);
        let impls = self.object_serde(&name, &names);
        let derive = if Self::all_optional(&ctor) {
            quote!(#[derive(Clone, Debug, Default, PartialEq)])
        } else {
            quote!(#[derive(Clone, Debug, PartialEq)])
        };
        let construct = self.constructors(&name, &ctor, None, false);
        quote! {
            #docs
            #derive
            #extra
            pub struct #name {
                #(#fields)*
            }

            #construct
            #impls
        }
    }

    /// For a struct with exactly one member, required and unconditional:
    /// that member's type (so the struct converts from it, via `new`).
    pub(super) fn single_member(&self, ty: EntityId) -> Option<TokenStream> {
        let e = self.ent(ty);
        match &e.kind {
            EntityKind::Object(o)
                if !e.is_implicit()
                    && o.branches.is_none()
                    && o.members.len() == 1
                    && !o.members[0].optional
                    && o.members[0].cond.is_none() =>
            {
                Some(self.type_path(o.members[0].ty, Place::Top))
            }
            _ => None,
        }
    }

    /// The type a simple union's wrapper type (`q_obj_T-wrapper`, QEMU
    /// before 6.2) wraps: the type of its one member `data`.
    pub(super) fn wrapped(&self, ty: EntityId) -> Option<EntityId> {
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
    pub(super) fn union_item(&mut self, id: EntityId) -> TokenStream {
        let e = self.ent(id);
        let EntityKind::Object(o) = &e.kind else {
            unreachable!()
        };
        let b = o.branches.as_ref().expect("a union");
        let name = format_ident!("{}", self.plan.names[&id]);
        let bname = format_ident!("{}", self.plan.branch_enums[&id]);
        let tag = b.tag.clone();
        let members = o.members.clone();
        let (fields, names, ctor) = self.fields(id, id, &members, Some(&tag), Place::Top);
        let mut scope = Scope::new(format!("branches of {}", e.name));
        let mut scope_fields = Scope::new(format!("fields of {}", e.name));
        for (f, ..) in &names {
            scope_fields.reserve(&f.to_string());
        }
        let branch_field =
            ident(&scope_fields.name("(branch)", "branch".into(), &mut self.renames));
        let UnionBranches {
            variants,
            tag_arms,
            branches,
            conversions,
        } = self.union_branches(id, &bname, &mut scope);
        let other = ident(&scope.name("(catch-all)", "Other".into(), &mut self.renames));
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
        let (untagged_variant, untagged_tag) = match &untagged {
            Some((v, vdoc)) => (
                quote! {
                    #[doc = #vdoc]
                    #v {
                        /// The members other than the common ones.
                        members: ::serde_json::Map<::std::string::String, ::serde_json::Value>,
                    },
                },
                quote!(#bname::#v { .. } => "",),
            ),
            None => (TokenStream::new(), TokenStream::new()),
        };
        let tag_doc = if untagged.is_some() {
            quote!(#[doc = " The discriminator's value, as on the wire (empty when it was not sent)."])
        } else {
            quote!(#[doc = " The discriminator's value, as on the wire."])
        };
        let mut docs = self.item_docs(e, None);
        docs.extend(self.command_docs_for(id));
        let extra = self.extra_attrs(&e.name);
        let tag_member_doc = o
            .members
            .iter()
            .find(|m| m.name == tag)
            .and_then(|m| self.member_doc(id, id, m));
        let (branch_doc, about_tag) =
            self.tag_docs(tag_member_doc, &tag, &branch_field.to_string());
        let bdoc = self.doc_attrs(&format!(
            "The branches of [`{name}`], chosen by its `{tag}` member (which is not stored separately: the variant is the value).\n\n{about_tag}"
        ));
        let mut construct = self.constructors(&name, &ctor, Some((&branch_field, &bname)), false);
        let bpath = quote!(#bname);
        let npath = quote!(#name);
        let from_branch = ctor.iter().all(|f| f.optional);
        if from_branch {
            construct.extend(Self::from_impl(
                &npath,
                &bpath,
                &TokenStream::new(),
                quote!(Self::new(v)),
            ));
        }
        for (source, cfg, body) in unique_sources(conversions, &[&name, &bname]) {
            construct.extend(Self::from_impl(&bpath, &source, &cfg, body));
            if from_branch {
                construct.extend(Self::from_impl(
                    &npath,
                    &source,
                    &cfg,
                    quote!(Self::new(<#bname as ::std::convert::From<#source>>::from(v))),
                ));
            }
        }
        let impls = self.union_serde(&UnionShape {
            qapi_name: &e.name,
            name: &name,
            bname: &bname,
            tag: &tag,
            fields: &names,
            branch_field: &branch_field,
            branches: &branches,
            other: &other,
            untagged: untagged.as_ref().map(|(v, _)| v),
        });
        quote! {
            #docs
            #[derive(Clone, Debug, PartialEq)]
            #extra
            pub struct #name {
                #(#fields)*
                #branch_doc
                pub #branch_field: #bname,
            }

            #bdoc
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

            #construct

            impl #bname {
                #tag_doc
                #[inline]
                pub fn tag(&self) -> &str {
                    match self {
                        #(#tag_arms)*
                        #untagged_tag
                        #bname::#other { tag, .. } => tag,
                    }
                }
            }

            #impls
        }
    }

    /// A union's branches, in schema order (named in `scope`): the
    /// branch enum's variants, the arms of its `tag()`, what its serde
    /// impls need, and the `From` conversions into it.
    fn union_branches(&mut self, id: EntityId, bname: &Ident, scope: &mut Scope) -> UnionBranches {
        let e = self.ent(id);
        let EntityKind::Object(o) = &e.kind else {
            unreachable!()
        };
        let b = o.branches.as_ref().expect("a union");
        let tag = &b.tag;
        let doc = e.doc.map(|d| &self.schema.docs[d]);
        let mut variants = Vec::new();
        let mut tag_arms = Vec::new();
        let mut branches = Vec::new();
        let mut conversions = Vec::new();
        for v in &b.variants {
            let vname = ident(&scope.name(&v.name, variant_name(&v.name), &mut self.renames));
            let wire = &v.name;
            let cfg = self.cfg(&v.cond);
            // A simple union's branch (QEMU before 6.2) holds its value
            // in the one member `data` of an implicit wrapper type.
            let wrapped = self.wrapped(v.ty);
            let payload = if v.implicit {
                BranchPayload::Nothing
            } else if wrapped.is_some() {
                BranchPayload::Data
            } else {
                let ty = self.plan.names.get(&v.ty).cloned();
                BranchPayload::Members(ty.unwrap_or_else(|| self.ent(v.ty).name.clone()))
            };
            let vdoc = self.union_branch_doc(doc, tag, wire, payload);
            let vdocs = self.doc_attrs(&self.branch_doc(id, wire, vdoc));
            let wire_lit = lit(wire);
            let kind = if let Some(inner) = wrapped {
                let mut ty = self.type_path(inner, Place::Top);
                if self.plan.boxed.contains(&(id, v.name.clone()))
                    || self.plan.boxed.contains(&(v.ty, "data".to_string()))
                {
                    ty = quote!(::std::boxed::Box<#ty>);
                }
                variants.push(quote!(#vdocs #cfg #vname(#ty),));
                tag_arms.push(quote!(#cfg #bname::#vname(_) => #wire_lit,));
                BranchKind::Wrapped
            } else if v.implicit || self.ent(v.ty).name == "q_empty" {
                variants.push(quote!(#vdocs #cfg #vname,));
                tag_arms.push(quote!(#cfg #bname::#vname => #wire_lit,));
                BranchKind::Empty
            } else {
                let plain = self.type_path(v.ty, Place::Top);
                let boxed = self.plan.boxed.contains(&(id, v.name.clone()));
                let ty = if boxed {
                    quote!(::std::boxed::Box<#plain>)
                } else {
                    plain.clone()
                };
                variants.push(quote!(#vdocs #cfg #vname(#ty),));
                tag_arms.push(quote!(#cfg #bname::#vname(_) => #wire_lit,));
                let wrap = |value: TokenStream| {
                    if boxed {
                        quote!(#bname::#vname(::std::boxed::Box::new(#value)))
                    } else {
                        quote!(#bname::#vname(#value))
                    }
                };
                conversions.push((plain.clone(), cfg.clone(), wrap(quote!(v))));
                // A branch type that only wraps one value (QEMU's
                // `*Wrapper` structs) also converts from that value.
                if let Some(inner) = self.single_member(v.ty) {
                    conversions.push((inner, cfg.clone(), wrap(quote!(#plain::new(v)))));
                }
                BranchKind::members(self.ent(v.ty))
            };
            branches.push(Branch {
                vname,
                wire: wire.clone(),
                cfg,
                kind,
            });
        }
        UnionBranches {
            variants,
            tag_arms,
            branches,
            conversions,
        }
    }

    pub(super) fn alternate_item(&mut self, id: EntityId) -> TokenStream {
        let e = self.ent(id);
        let EntityKind::Alternate(a) = &e.kind else {
            unreachable!()
        };
        let name = format_ident!("{}", self.plan.names[&id]);
        let doc = e.doc.map(|d| &self.schema.docs[d]);
        let mut scope = Scope::new(format!("alternate {}", e.name));
        let mut variants = Vec::new();
        let mut branches = Vec::new();
        let mut conversions = Vec::new();
        for v in &a.variants {
            let vname = ident(&scope.name(&v.name, variant_name(&v.name), &mut self.renames));
            let plain = self.type_path(v.ty, Place::Top);
            let cfg = self.cfg(&v.cond);
            let ty = if self.plan.boxed.contains(&(id, v.name.clone())) {
                conversions.push((
                    plain.clone(),
                    cfg.clone(),
                    quote!(Self::#vname(::std::boxed::Box::new(v))),
                ));
                quote!(::std::boxed::Box<#plain>)
            } else {
                conversions.push((plain.clone(), cfg.clone(), quote!(Self::#vname(v))));
                plain
            };
            if matches!(
                self.ent(v.ty).kind,
                EntityKind::Builtin(qapi_parser::Builtin::Str)
            ) {
                conversions.push((
                    quote!(&str),
                    cfg.clone(),
                    quote!(Self::#vname(::std::string::ToString::to_string(v))),
                ));
            }
            let docs = self.branch_docs(doc, &v.name, &v.cond, &self.branch_note(id, &v.name));
            variants.push(quote!(#docs #vname(#ty),));
            branches.push((vname, cfg, self.schema.json_type(v.ty)));
        }
        let docs = self.item_docs(e, None);
        let extra = self.extra_attrs(&e.name);
        let mut impls = self.alternate_serde(&name, &e.name, &branches);
        let npath = quote!(#name);
        for (source, cfg, body) in unique_sources(conversions, &[&name]) {
            impls.extend(Self::from_impl(&npath, &source, &cfg, body));
        }
        quote! {
            #docs
            #[derive(Clone, Debug, PartialEq)]
            #[allow(clippy::large_enum_variant)]
            #extra
            pub enum #name {
                #(#variants)*
            }

            #impls
        }
    }
}

/// What [`Gen::union_branches`] makes.
struct UnionBranches {
    variants: Vec<TokenStream>,
    tag_arms: Vec<TokenStream>,
    branches: Vec<Branch>,
    /// (source type, `cfg`, conversion body) of each `From`.
    conversions: Vec<(TokenStream, TokenStream, TokenStream)>,
}

/// A struct's fields: their definitions, (field, wire name, optional)
/// for the serde impls, and what construction needs.
pub(super) type Fields = (Vec<TokenStream>, Vec<Member>, Vec<CtorField>);

/// The conversions whose source type is not also another's: `From<T>`
/// is only generated where it picks one branch.
/// Nor where the source is one of `targets` (a recursive type: std's
/// `From<T> for T` is already there).
fn unique_sources(
    conversions: Vec<(TokenStream, TokenStream, TokenStream)>,
    targets: &[&Ident],
) -> Vec<(TokenStream, TokenStream, TokenStream)> {
    let key = |t: &TokenStream| t.to_string();
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    let mut count: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (source, _, _) in &conversions {
        *count.entry(key(source)).or_default() += 1;
    }
    conversions
        .into_iter()
        .filter(|(source, _, _)| count[&key(source)] == 1 && !targets.contains(&key(source)))
        .collect()
}
