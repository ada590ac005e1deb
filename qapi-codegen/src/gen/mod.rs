//! The IR as Rust items: one `quote!` per item, in schema order.
//!
//! `plan.rs` analyses the whole schema once, before anything is emitted
//! (names, boxed members and branches, the types replies carry, the older
//! releases); `mod.rs` drives generation and holds the helpers every room
//! shares (type paths, `cfg`); `types.rs` defines enums, structs, unions
//! and alternates; `serde.rs` writes their `Serialize`/`Deserialize`
//! impls; `api.rs` the `commands` and `events` modules; `docs.rs` the
//! rustdoc attributes.

mod api;
mod avail;
mod construct;
mod docs;
mod plan;
mod serde;
mod types;

use proc_macro2::{Literal, TokenStream};
use qapi_parser::{Builtin, Entity, EntityId, EntityKind, IfCond, ObjectMember, Schema};
use quote::{format_ident, quote};
use syn::parse::Parser;

use crate::naming::Rename;
use crate::{Config, Error};
use plan::Plan;

/// Generated items, and the renames made to keep names apart.
pub struct Output {
    pub tokens: TokenStream,
    pub renames: Vec<Rename>,
}

pub(super) struct Gen<'a> {
    schema: &'a Schema,
    config: &'a Config,
    /// `Config::runtime_path`, parsed.
    rt: TokenStream,
    /// `Config::type_attributes`, parsed: (QAPI name or `.`, attributes).
    type_attributes: Vec<(String, TokenStream)>,
    /// The analysis of the whole schema, made before any item.
    plan: Plan<'a>,
    /// The renames made: the plan's, then those made while emitting
    /// (fields, variants).
    renames: Vec<Rename>,
}

/// Where an item is emitted, for paths to the top-level types.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Place {
    Top,
    Module,
}

/// Parse the settings, then plan.  A setting that does not parse is an
/// error: it is never left out of the output.
fn prepare<'a>(schema: &'a Schema, config: &'a Config) -> Result<Gen<'a>, Error> {
    let rt = runtime_path(&config.runtime_path)?;
    let type_attributes = config
        .type_attributes
        .iter()
        .map(|(name, attrs)| Ok((name.clone(), type_attribute(name, attrs)?)))
        .collect::<Result<_, Error>>()?;
    let older = config.older.iter().map(|o| ("older_schema", &o.release));
    for (setting, release) in config.release.iter().map(|r| ("release", r)).chain(older) {
        if avail::version(release).is_none() {
            return Err(Error::Config(format!(
                "{setting}: the release {release:?} is not a QEMU version (MAJOR.MINOR or MAJOR.MINOR.MICRO)"
            )));
        }
    }
    let mut plan = Plan::new(schema, config);
    let renames = std::mem::take(&mut plan.renames);
    Ok(Gen {
        schema,
        config,
        rt,
        type_attributes,
        plan,
        renames,
    })
}

/// `Config::runtime_path`: a module path (`::qapi_types`, `crate`).
fn runtime_path(path: &str) -> Result<TokenStream, Error> {
    let bad =
        |why: String| Error::Config(format!("runtime_path: {path:?} is not a Rust path: {why}"));
    let tokens: TokenStream = path.parse().map_err(|e| bad(format!("{e}")))?;
    Parser::parse2(syn::Path::parse_mod_style, tokens.clone()).map_err(|e| bad(e.to_string()))?;
    Ok(tokens)
}

/// A `Config::type_attribute`: outer attributes (`#[derive(Hash)]`).
fn type_attribute(name: &str, attrs: &str) -> Result<TokenStream, Error> {
    let bad = |why: String| {
        Error::Config(format!(
            "type_attribute for {name:?}: {attrs:?} is not Rust attributes (#[...]): {why}"
        ))
    };
    let tokens: TokenStream = attrs.parse().map_err(|e| bad(format!("{e}")))?;
    Parser::parse2(syn::Attribute::parse_outer, tokens.clone()).map_err(|e| bad(e.to_string()))?;
    Ok(tokens)
}

/// See `Config::type_differences`.
pub fn type_differences(schema: &Schema, config: &Config) -> Result<Vec<String>, Error> {
    Ok(prepare(schema, config)?.differing_members())
}

pub fn generate(schema: &Schema, config: &Config) -> Result<Output, Error> {
    let mut g = prepare(schema, config)?;
    // Items are moved into the streams that hold them: interpolating a
    // `TokenStream` with `quote!` copies every token of it.
    let mut top = TokenStream::new();
    let mut commands = TokenStream::new();
    let mut events = TokenStream::new();
    for (id, e) in schema.iter() {
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
    commands.extend(g.check_arguments());
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
    tokens.extend(g.releases_const());
    tokens.extend(top);
    tokens.extend(g.manual_module());
    tokens.extend(quote! {
        /// One type per command, carrying its arguments; each implements
        /// the runtime's `Command` trait.
        pub mod commands #commands

        /// One type per event's data, and [`Event`](events::Event) over
        /// all of them.
        pub mod events #events
    });
    Ok(Output {
        tokens,
        renames: g.renames,
    })
}

impl<'a> Gen<'a> {
    pub(super) fn ent(&self, id: EntityId) -> &'a Entity {
        self.schema.entity(id)
    }

    /// The documentation of the command that `ty` is (see
    /// `Plan::command_types`), for the type's own page.
    pub(super) fn command_docs_for(&self, ty: EntityId) -> TokenStream {
        let Some((&cmd, _)) = self.plan.command_types.iter().find(|(_, &t)| t == ty) else {
            return TokenStream::new();
        };
        let e = self.ent(cmd);
        let intro = self.doc_attrs(&format!(
            "# The `{}` command\n\nThis type is the command's arguments and the \
             command itself: execute it as it is.",
            e.name
        ));
        let docs = self.item_docs(e, Some(&e.name));
        quote!(#intro #docs)
    }

    /// The older releases (see `Config::older_schema`) whose type
    /// matching `owner` lacks the member `m`, when `owner` is carried by
    /// replies or events and `m` is required.
    pub(super) fn newer_only(&self, owner: EntityId, m: &ObjectMember) -> Vec<String> {
        match &self.plan.avail {
            Some(av) if !m.optional && self.plan.output.contains(&owner) => av
                .lacking(owner, &m.name)
                .into_iter()
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the required member `m` of `owner` (carried by replies or
    /// events) is there only when QEMU is built with its condition, which
    /// these bindings do not turn into `cfg` (`Config::cfg_conditions`
    /// off): a QEMU built without it does not send the member, so it is
    /// an `Option` (`deprecated-props` of `CpuModelExpansionInfo` in
    /// 10.0, only on s390x).
    pub(super) fn conditional_required(&self, owner: EntityId, m: &ObjectMember) -> bool {
        !m.optional
            && m.cond.is_some()
            && !self.config.cfg_conditions
            && self.plan.output.contains(&owner)
    }

    /// The Rust type of a built-in type.
    pub(super) fn builtin_path(&self, b: Builtin) -> TokenStream {
        let rt = &self.rt;
        match b {
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
        }
    }

    /// The path to a type from `place`.
    pub(super) fn type_path(&self, id: EntityId, place: Place) -> TokenStream {
        let e = self.ent(id);
        match &e.kind {
            EntityKind::Builtin(b) => self.builtin_path(*b),
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
                let name = format_ident!("{}", self.plan.names[&id]);
                match place {
                    Place::Top => quote!(#name),
                    Place::Module => quote!(super::#name),
                }
            }
        }
    }

    /// A member's type: `Option` when `optional`, boxed where recursion
    /// needs it unless `with_box` is off (constructors box for the user).
    pub(super) fn member_type(
        &self,
        owner: EntityId,
        m: &ObjectMember,
        optional: bool,
        place: Place,
        with_box: bool,
    ) -> TokenStream {
        let mut t = self.type_path(m.ty, place);
        if with_box && self.plan.boxed.contains(&(owner, m.name.clone())) {
            t = quote!(::std::boxed::Box<#t>);
        }
        if optional {
            t = quote!(::std::option::Option<#t>);
        }
        t
    }

    pub(super) fn cfg(&self, cond: &Option<IfCond>) -> TokenStream {
        match (cond, self.config.cfg_conditions) {
            (Some(c), true) => {
                let pred = cfg_pred(c);
                quote!(#[cfg(#pred)])
            }
            _ => TokenStream::new(),
        }
    }

    pub(super) fn extra_attrs(&self, qapi_name: &str) -> TokenStream {
        let mut out = TokenStream::new();
        for (pattern, attrs) in &self.type_attributes {
            if pattern == "." || pattern == qapi_name {
                out.extend(attrs.clone());
            }
        }
        out
    }
}

/// `{ tokens }`, taking them rather than copying them.
pub(super) fn braced(tokens: TokenStream) -> proc_macro2::Group {
    proc_macro2::Group::new(proc_macro2::Delimiter::Brace, tokens)
}

/// A string literal.  proc-macro2's `Literal::string` escapes character
/// by character, which made it the largest single cost of generation;
/// text that needs no escape is quoted as it is, and text with quotes or
/// backslashes (JSON, rST) becomes a raw string, which also reads better.
/// Anything else (control characters) is escaped as before.
pub(super) fn lit(s: &str) -> Literal {
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
pub(super) fn cond_text(c: &IfCond) -> String {
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
pub(super) fn cfg_pred(c: &IfCond) -> TokenStream {
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
