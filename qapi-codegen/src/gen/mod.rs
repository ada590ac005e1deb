//! The IR as Rust items: one `quote!` per item, in schema order.
//!
//! `mod.rs` drives generation and holds what every room shares (names,
//! recursion, type paths); `types.rs` defines enums, structs, unions and
//! alternates; `serde.rs` writes their `Serialize`/`Deserialize` impls;
//! `api.rs` the `commands` and `events` modules; `docs.rs` the rustdoc.

mod api;
mod avail;
mod construct;
mod docs;
mod serde;
mod types;

use std::collections::{HashMap, HashSet};

use proc_macro2::{Literal, TokenStream};
use qapi_parser::{Builtin, Entity, EntityId, EntityKind, IfCond, ObjectMember, Schema};
use quote::{format_ident, quote};

use crate::naming::{item_name, Rename, Scope};
use crate::Config;

/// Generated items, and the renames made to keep names apart.
pub struct Output {
    pub tokens: TokenStream,
    pub renames: Vec<Rename>,
}

pub(super) struct Gen<'a> {
    schema: &'a Schema,
    config: &'a Config,
    rt: TokenStream,
    /// Rust names of the generated types (enums, structs, unions,
    /// alternates), and of commands and events in their modules.
    names: HashMap<EntityId, String>,
    /// Commands whose arguments are a top-level type of the same name:
    /// that type is the command (see `assign_names`).
    pub(super) command_types: HashMap<EntityId, EntityId>,
    /// Union branch enums.
    branch_enums: HashMap<EntityId, String>,
    /// (container, member or branch name) edges that need a `Box`.
    boxed: HashSet<(EntityId, String)>,
    /// Types that replies and events carry, directly or inside another.
    output: HashSet<EntityId>,
    /// The older releases' availability (when there are any).
    avail: Option<avail::Avail<'a>>,
    renames: Vec<Rename>,
}

/// Where an item is emitted, for paths to the top-level types.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Place {
    Top,
    Module,
}

fn prepare<'a>(schema: &'a Schema, config: &'a Config) -> Gen<'a> {
    let rt: TokenStream = config
        .runtime_path
        .parse()
        .unwrap_or_else(|_| quote!(::qapi_types));
    let mut g = Gen {
        schema,
        config,
        rt,
        names: HashMap::new(),
        command_types: HashMap::new(),
        branch_enums: HashMap::new(),
        boxed: HashSet::new(),
        output: HashSet::new(),
        avail: None,
        renames: Vec::new(),
    };
    g.assign_names();
    g.find_recursion();
    g.find_output();
    g.box_large_branches();
    if !config.older.is_empty() {
        g.avail = Some(avail::Avail::new(schema, config));
    }
    g
}

/// See `Config::type_differences`.
pub fn type_differences(schema: &Schema, config: &Config) -> Vec<String> {
    prepare(schema, config).differing_members()
}

pub fn generate(schema: &Schema, config: &Config) -> Output {
    let mut g = prepare(schema, config);
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
    Output {
        tokens,
        renames: g.renames,
    }
}

impl<'a> Gen<'a> {
    pub(super) fn ent(&self, id: EntityId) -> &'a Entity {
        self.schema.entity(id)
    }

    /// Names for every generated item. Top-level types come first (a
    /// name from Rust's prelude gets a `Qapi` prefix, so `use
    /// qmp::*` never shadows `String`); then commands and events, which
    /// users glob-import beside the types: a command whose name is a
    /// type's and whose arguments are exactly that type (and no other
    /// command's) is that type, re-exported; any other clash gets a
    /// `Command` or `Event` suffix.
    pub(super) fn assign_names(&mut self) {
        let mut types = Scope::new("types");
        let mut commands = Scope::new("commands");
        let mut events = Scope::new("events");
        events.reserve("Event");
        events.reserve("EventMessage");
        events.reserve("EventError");
        let schema = self.schema;
        let mut top: HashMap<String, EntityId> = HashMap::new();
        for (id, e) in schema.iter() {
            let name = match &e.kind {
                EntityKind::Enum(_) | EntityKind::Alternate(_) => {
                    types.name(&e.name, item_name(&e.name), &mut self.renames)
                }
                EntityKind::Object(_) if !e.is_implicit() => {
                    types.name(&e.name, item_name(&e.name), &mut self.renames)
                }
                _ => continue,
            };
            top.insert(name.clone(), id);
            self.names.insert(id, name);
        }
        // Branch enums of unions come after every schema name, so a
        // schema type never has to give way to one.
        for (id, e) in schema.iter() {
            if let EntityKind::Object(o) = &e.kind {
                if o.branches.is_some() && !e.is_implicit() {
                    let n = types.name(
                        &format!("{} branches", e.name),
                        format!("{}Branch", self.names[&id]),
                        &mut self.renames,
                    );
                    top.insert(n.clone(), id);
                    self.branch_enums.insert(id, n);
                }
            }
        }
        // How many commands take each named type as their arguments.
        let mut arg_users: HashMap<EntityId, usize> = HashMap::new();
        for e in &schema.entities {
            if let EntityKind::Command(c) = &e.kind {
                if let Some(a) = c.arg_type.filter(|&a| !self.ent(a).is_implicit()) {
                    *arg_users.entry(a).or_default() += 1;
                }
            }
        }
        let mut command_names: HashSet<String> = HashSet::new();
        for (id, e) in schema.iter() {
            let EntityKind::Command(c) = &e.kind else {
                continue;
            };
            let natural = item_name(&e.name);
            let name = match top.get(&natural) {
                Some(&t)
                    if c.arg_type == Some(t)
                        && arg_users.get(&t) == Some(&1)
                        && !e.features.iter().any(|f| f.name == "deprecated") =>
                {
                    self.command_types.insert(id, t);
                    commands.reserve(&natural);
                    natural
                }
                Some(_) => commands.name(&e.name, format!("{natural}Command"), &mut self.renames),
                None => commands.name(&e.name, natural, &mut self.renames),
            };
            command_names.insert(name.clone());
            self.names.insert(id, name);
        }
        for (id, e) in schema.iter() {
            if let EntityKind::Event(_) = &e.kind {
                let natural = item_name(&e.name);
                let natural = if top.contains_key(&natural) || command_names.contains(&natural) {
                    format!("{natural}Event")
                } else {
                    natural
                };
                let name = events.name(&e.name, natural, &mut self.renames);
                self.names.insert(id, name);
            }
        }
    }

    /// The documentation of the command that `ty` is (see
    /// `assign_names`), for the type's own page.
    pub(super) fn command_docs_for(&self, ty: EntityId) -> TokenStream {
        let Some((&cmd, _)) = self.command_types.iter().find(|(_, &t)| t == ty) else {
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

    /// Box the members and branches that make a type contain itself
    /// (edges inside one strongly connected component).
    pub(super) fn find_recursion(&mut self) {
        let n = self.schema.entities.len();
        // Direct containment edges, labelled by member or branch name.
        let mut edges: Vec<Vec<(usize, String)>> = vec![Vec::new(); n];
        for (id, e) in self.schema.iter() {
            let out = &mut edges[id.index()];
            match &e.kind {
                EntityKind::Object(o) => {
                    for m in &o.members {
                        out.push((m.ty.index(), m.name.clone()));
                    }
                    if let Some(b) = &o.branches {
                        for v in &b.variants {
                            out.push((v.ty.index(), v.name.clone()));
                        }
                    }
                }
                EntityKind::Alternate(a) => {
                    for v in &a.variants {
                        out.push((v.ty.index(), v.name.clone()));
                    }
                }
                _ => {}
            }
        }
        let comp = scc(&edges);
        for (id, _) in self.schema.iter() {
            for (j, label) in &edges[id.index()] {
                if comp[id.index()] == comp[*j] {
                    self.boxed.insert((id, label.clone()));
                }
            }
        }
    }

    /// The types replies and events carry: command returns and event
    /// data, and everything they contain.
    pub(super) fn find_output(&mut self) {
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

    /// The older releases (see `Config::older_schema`) whose type
    /// matching `owner` lacks the member `m`, when `owner` is carried by
    /// replies or events and `m` is required.
    pub(super) fn newer_only(&self, owner: EntityId, m: &ObjectMember) -> Vec<String> {
        match &self.avail {
            Some(av) if !m.optional && self.output.contains(&owner) => av
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
            && self.output.contains(&owner)
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
                let name = format_ident!("{}", self.names[&id]);
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
        if with_box && self.boxed.contains(&(owner, m.name.clone())) {
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
        for (pattern, attr) in &self.config.type_attributes {
            if pattern == "." || pattern == qapi_name {
                if let Ok(ts) = attr.parse::<TokenStream>() {
                    out.extend(ts);
                }
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

/// Strongly connected components (Tarjan, iterative): a component index
/// for each node.
pub(super) fn scc(edges: &[Vec<(usize, String)>]) -> Vec<usize> {
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
