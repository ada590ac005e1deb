//! The rustdoc of generated items: each item's page (description,
//! tagged sections, examples, members) laid out as `#[doc]` attributes,
//! its text converted from the schema's rST by [`crate::rst`].

use proc_macro2::TokenStream;
use qapi_parser::{Doc, Entity, EntityId, EntityKind, Feature, IfCond, ObjectMember, SectionKind};
use quote::quote;

use super::{cond_text, lit, Gen};
use crate::naming::{field_name, variant_name};
use crate::rst;

impl<'a> Gen<'a> {
    pub(super) fn doc_attrs(&self, text: &str) -> TokenStream {
        if !self.config.docs || text.trim().is_empty() {
            return TokenStream::new();
        }
        let lines = text.lines().map(|l| lit(&format!(" {l}")));
        quote!(#(#[doc = #lines])*)
    }

    /// An item's documentation: the description (body, notes,
    /// condition, wire name), then the tagged sections under a heading
    /// each, then the examples under a heading of their own.
    pub(super) fn item_docs(&self, e: &Entity, wire: Option<&str>) -> TokenStream {
        let mut text = String::new();
        let mut headed = String::new();
        let mut examples = String::new();
        let doc = e.doc.map(|d| &self.schema.docs[d]);
        if let Some(doc) = doc {
            let (rest, ex) = rst::split_examples(doc.body());
            text.push_str(&rst::markdown(&rest));
            append(&mut examples, &rst::markdown(&ex));
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
                    _ => None,
                };
                match (s.kind, heading) {
                    // Older releases' `Example:` sections are QMP
                    // transcripts.
                    (SectionKind::Example, _) => append(&mut examples, &rst::literal(&s.text)),
                    (_, Some(h)) => {
                        let body = rst::markdown(&s.text);
                        if !body.trim().is_empty() {
                            append(&mut headed, &format!("# {h}\n\n{body}"));
                        }
                    }
                    _ => {
                        let (rest, ex) = rst::split_examples(&s.text);
                        append(&mut text, &rst::markdown(&rest));
                        append(&mut examples, &rst::markdown(&ex));
                    }
                }
            }
            if let Some(f) = doc.feature("unstable") {
                append(
                    &mut text,
                    &format!("**Unstable:** {}", rst::markdown(&f.text)),
                );
            }
        }
        text.push_str(&self.avail_item_note(e));
        if let Some(arg) = self.deprecated_newtype(e) {
            // rustdoc repeats a deprecated type's banner on each field:
            // the one field is hidden, so this says what it holds.
            let n = &self.plan.names[&arg];
            let (of, what) = match e.kind {
                EntityKind::Event(_) => ("event", "data"),
                _ => ("command", "arguments"),
            };
            append(
                &mut text,
                &format!("The one field, `.0`, is the {of}'s {what}: a [`{n}`](super::{n})."),
            );
        }
        if let Some(c) = &e.cond {
            append(
                &mut text,
                &format!("*Only when QEMU is built with* `{}`.", cond_text(c)),
            );
        }
        if let Some(w) = wire {
            append(&mut text, &format!("Wire name: `{w}`."));
        }
        // Both start with their paragraph break.
        text.push_str(&headed);
        if !examples.is_empty() {
            append(&mut text, &format!("# Examples{examples}"));
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

    /// For a deprecated command or event that wraps a named type (its
    /// arguments or data, `boxed` or not inline): that type.  Its field
    /// is `#[doc(hidden)]`, since rustdoc repeats the type's deprecation
    /// banner on every field.
    pub(super) fn deprecated_newtype(&self, e: &Entity) -> Option<EntityId> {
        let (arg, boxed) = match &e.kind {
            EntityKind::Command(c) => (c.arg_type, c.boxed),
            EntityKind::Event(ev) => (ev.arg_type, ev.boxed),
            _ => return None,
        };
        let id = self.schema.lookup(&e.name)?;
        if self.plan.command_types.contains_key(&id)
            || !e.features.iter().any(|f| f.name == "deprecated")
        {
            return None;
        }
        arg.filter(|&a| boxed || !self.ent(a).is_implicit())
    }

    /// A member's or enum value's documentation: its description, its
    /// name on the wire (shown, and a search alias), its deprecation
    /// with the schema's reason.
    pub(super) fn member_docs(
        &self,
        doc: Option<&Doc>,
        name: &str,
        m_cond: &Option<IfCond>,
        features: &[Feature],
        note: &str,
    ) -> TokenStream {
        let mut out = self.described(doc, name, m_cond, features, note, true);
        out.extend(self.deprecated(features, doc));
        out.extend(self.cfg(m_cond));
        out
    }

    /// An alternate's branch: its name is the schema's only (QEMU picks
    /// the branch by the JSON type), so no wire name.
    pub(super) fn branch_docs(
        &self,
        doc: Option<&Doc>,
        name: &str,
        m_cond: &Option<IfCond>,
        note: &str,
    ) -> TokenStream {
        let mut out = self.described(doc, name, m_cond, &[], note, false);
        out.extend(self.cfg(m_cond));
        out
    }

    fn described(
        &self,
        doc: Option<&Doc>,
        name: &str,
        m_cond: &Option<IfCond>,
        features: &[Feature],
        note: &str,
        on_wire: bool,
    ) -> TokenStream {
        let desc = doc
            .and_then(|d| d.member(name))
            .map(|s| rst::markdown(&s.text))
            .unwrap_or_default();
        // The wire name is shown when it is not the Rust name: always
        // for an enum's values (the Rust name is CamelCase).  Without a
        // description, the name is the text.
        let of_enum = doc
            .and_then(|d| d.symbol.as_deref())
            .and_then(|s| self.schema.lookup(s))
            .is_some_and(|id| matches!(self.ent(id).kind, EntityKind::Enum(_)));
        let mut text = if desc.trim().is_empty() {
            format!("`{name}`")
        } else if on_wire && (of_enum || field_name(name) != name) {
            format!("{desc}\n\nOn the wire: `{name}`.")
        } else {
            desc
        };
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
        // Found by its wire name in rustdoc's search, unless that is the
        // Rust name itself (rustdoc rejects such an alias).
        let rust = [field_name(name), variant_name(name)];
        if on_wire && !rust.iter().any(|r| r == name) {
            let w = lit(name);
            out.extend(quote!(#[doc(alias = #w)]));
        }
        out
    }

    /// The documentation that describes member `m` of `owner`, whose own
    /// block is `doc_owner`'s: an inherited member is documented by the
    /// type it comes from, unless that is implicit (an inline base).
    pub(super) fn member_doc(
        &self,
        owner: EntityId,
        doc_owner: EntityId,
        m: &ObjectMember,
    ) -> Option<&'a Doc> {
        let of = if m.defined_in == owner || self.ent(m.defined_in).is_implicit() {
            doc_owner
        } else {
            m.defined_in
        };
        self.ent(of).doc.map(|d| &self.schema.docs[d])
    }

    /// A union branch's variant: its description when the schema gives
    /// one, then always the discriminator's value on the wire and what
    /// the branch carries.
    pub(super) fn union_branch_doc(
        &self,
        doc: Option<&Doc>,
        tag: &str,
        wire: &str,
        payload: BranchPayload,
    ) -> String {
        let line = match payload {
            BranchPayload::Nothing => format!("`\"{tag}\": \"{wire}\"`: no further members."),
            BranchPayload::Members(ty) => {
                format!("`\"{tag}\": \"{wire}\"`: the members of [`{ty}`].")
            }
            BranchPayload::Data => {
                format!("On the wire: `{{\"{tag}\": \"{wire}\", \"data\": VALUE}}`.")
            }
        };
        let desc = doc
            .and_then(|d| d.member(wire))
            .map(|s| rst::markdown(&s.text))
            .unwrap_or_default();
        if desc.trim().is_empty() {
            line
        } else {
            format!("{}\n\n{line}", desc.trim_end())
        }
    }

    /// A union's discriminator has no field (the branch enum's variant
    /// is its value), so its description goes to the `branch` field and
    /// to the branch enum: `(field's doc, a paragraph for the enum)`.
    /// `doc` documents the member (see `fields`).
    pub(super) fn tag_docs(
        &self,
        doc: Option<&Doc>,
        tag: &str,
        branch_field: &str,
    ) -> (TokenStream, String) {
        let desc = doc
            .and_then(|d| d.member(tag))
            .map(|s| rst::markdown(&s.text))
            .unwrap_or_default();
        let desc = desc.trim();
        let about = if desc.is_empty() {
            String::new()
        } else {
            format!("`{tag}`: {desc}")
        };
        let mut text = format!(
            "The members that depend on the discriminator `{tag}`, which is not \
             stored separately: the variant is its value."
        );
        append(&mut text, &about);
        let mut field = self.doc_attrs(&text);
        if tag != branch_field {
            let w = lit(tag);
            field.extend(quote!(#[doc(alias = #w)]));
        }
        (field, about)
    }

    pub(super) fn deprecated(&self, features: &[Feature], doc: Option<&Doc>) -> TokenStream {
        if !features.iter().any(|f| f.name == "deprecated") {
            return TokenStream::new();
        }
        let note = doc
            .and_then(|d| d.feature("deprecated"))
            .map(|s| rst::inline(&s.text.split_whitespace().collect::<Vec<_>>().join(" ")))
            .filter(|s| !s.is_empty());
        match note {
            Some(n) => {
                let n = lit(&n);
                quote!(#[deprecated = #n])
            }
            None => quote!(#[deprecated]),
        }
    }

    /// `manual`: the reference by the sections of QEMU's manual (the
    /// schema's `= Heading` lines in free-form blocks): one module per
    /// section with its text and links to the commands, events and types
    /// it defines, and the list of sections in the module's own page.
    /// Nothing when the schema has no headings.  Only inner doc
    /// attributes, so links resolve from inside each module.
    pub(super) fn manual_module(&self) -> TokenStream {
        struct Section {
            level: usize,
            title: String,
            ident: String,
            intro: Vec<String>,
            links: [Vec<String>; 3],
        }
        if !self.config.docs {
            return TokenStream::new();
        }
        let mut sections: Vec<Section> = Vec::new();
        let mut idents: Vec<String> = Vec::new();
        let mut section_of_doc = Vec::with_capacity(self.schema.docs.len());
        for d in &self.schema.docs {
            if d.symbol.is_none() {
                for line in d.body().lines() {
                    let t = line.trim();
                    let level = t.chars().take_while(|&c| c == '=').count();
                    let title = t[level..].trim();
                    if level > 0 && t[level..].starts_with(' ') && !title.is_empty() {
                        let base = field_name(title);
                        let mut ident = base.clone();
                        let mut n = 1;
                        while idents.contains(&ident) {
                            n += 1;
                            ident = format!("{base}_{n}");
                        }
                        idents.push(ident.clone());
                        sections.push(Section {
                            level,
                            title: title.to_string(),
                            ident,
                            intro: Vec::new(),
                            links: Default::default(),
                        });
                    } else if let Some(s) = sections.last_mut() {
                        s.intro.push(line.to_string());
                    }
                }
            }
            section_of_doc.push(sections.len().checked_sub(1));
        }
        if sections.is_empty() {
            return TokenStream::new();
        }
        for (id, e) in self.schema.iter() {
            let Some(sec) = e.doc.and_then(|d| section_of_doc[d]) else {
                continue;
            };
            let (group, path) = match &e.kind {
                EntityKind::Command(_) => (0, "commands::"),
                EntityKind::Event(_) => (1, "events::"),
                EntityKind::Enum(_) | EntityKind::Alternate(_) => (2, ""),
                EntityKind::Object(_) if !e.is_implicit() => (2, ""),
                _ => continue,
            };
            let Some(name) = self.plan.names.get(&id) else {
                continue;
            };
            // An item compiled out by its condition has nothing to link to.
            let link = if e.cond.is_some() && self.config.cfg_conditions {
                format!("- `{}`", e.name)
            } else {
                format!("- [`{}`](super::super::{path}{name})", e.name)
            };
            sections[sec].links[group].push(link);
        }
        let mut modules = Vec::new();
        let mut index = String::from(
            "QEMU's manual, section by section: each section's text and what it defines.\n",
        );
        for s in &sections {
            index.push_str(&format!(
                "\n{}- [{}](self::{})",
                "  ".repeat(s.level.saturating_sub(1)),
                rst::inline(&s.title),
                s.ident
            ));
            let mut text = rst::inline(&s.title);
            append(&mut text, rst::markdown(&s.intro.join("\n")).trim_start());
            for (heading, links) in ["Commands", "Events", "Types"].iter().zip(&s.links) {
                if !links.is_empty() {
                    append(&mut text, &format!("# {heading}\n\n{}", links.join("\n")));
                }
            }
            let lines = text
                .trim()
                .lines()
                .map(|l| lit(&format!(" {l}")))
                .collect::<Vec<_>>();
            let ident = crate::naming::ident(&s.ident);
            modules.push(quote! {
                pub mod #ident {
                    #(#![doc = #lines])*
                }
            });
        }
        let index = index
            .lines()
            .map(|l| lit(&format!(" {l}")))
            .collect::<Vec<_>>();
        quote! {
            pub mod manual {
                #(#![doc = #index])*
                #(#modules)*
            }
        }
    }
}

/// What a union branch carries, for its documentation.
pub(super) enum BranchPayload {
    /// No members beyond the common ones.
    Nothing,
    /// The members of this type (its Rust name).
    Members(String),
    /// One value in the member `data` (a simple union, QEMU before 6.2).
    Data,
}

/// Add a paragraph (nothing when it is empty).
fn append(text: &mut String, paragraph: &str) {
    if !paragraph.trim().is_empty() {
        text.push_str("\n\n");
        text.push_str(paragraph);
    }
}
