//! Documentation: the schema's doc comments as rustdoc attributes.

use proc_macro2::TokenStream;
use qapi_parser::{Doc, Entity, Feature, IfCond, SectionKind};
use quote::quote;

use super::{cond_text, lit, Gen};
use crate::docs;

impl Gen<'_> {
    pub(super) fn doc_attrs(&self, text: &str) -> TokenStream {
        if !self.config.docs || text.trim().is_empty() {
            return TokenStream::new();
        }
        let lines = text.lines().map(|l| lit(&format!(" {l}")));
        quote!(#(#[doc = #lines])*)
    }

    /// An item's documentation: body, sections, condition, wire name.
    pub(super) fn item_docs(&self, e: &Entity, wire: Option<&str>) -> TokenStream {
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

    pub(super) fn member_docs(
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

    pub(super) fn deprecated(&self, features: &[Feature], doc: Option<&Doc>) -> TokenStream {
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
}
