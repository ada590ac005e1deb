//! The generator's analysis of a schema, done once, before any item is
//! emitted: the Rust name of every item, the members and branches that
//! are boxed, the types replies and events carry and the older
//! releases' availability.  The emitting rooms only read the [`Plan`].

use std::collections::{HashMap, HashSet};

use qapi_parser::{Builtin, EntityId, EntityKind, Schema};

use super::avail::Avail;
use crate::naming::{item_name, Rename, Scope};
use crate::Config;

/// A union branch estimated at this many bytes or more is boxed
/// ([`Plan::box_large_branches`]).
const LARGE_BRANCH: usize = 128;

/// What the emitting rooms need to know about the whole schema.
pub(super) struct Plan<'a> {
    /// Rust names of the generated types (enums, structs, unions,
    /// alternates), and of commands and events in their modules.
    pub names: HashMap<EntityId, String>,
    /// Commands whose arguments are a top-level type of the same name:
    /// that type is the command (see [`Plan::assign_names`]).
    pub command_types: HashMap<EntityId, EntityId>,
    /// Union branch enums.
    pub branch_enums: HashMap<EntityId, String>,
    /// (container, member or branch name) edges that need a `Box`.
    pub boxed: HashSet<(EntityId, String)>,
    /// Types that replies and events carry, directly or inside another.
    pub output: HashSet<EntityId>,
    /// The older releases' availability (when there are any).
    pub avail: Option<Avail<'a>>,
    /// The renames made to keep the items' names apart.
    pub renames: Vec<Rename>,
}

impl<'a> Plan<'a> {
    pub fn new(schema: &'a Schema, config: &'a Config) -> Plan<'a> {
        let mut plan = Plan {
            names: HashMap::new(),
            command_types: HashMap::new(),
            branch_enums: HashMap::new(),
            boxed: HashSet::new(),
            output: HashSet::new(),
            avail: None,
            renames: Vec::new(),
        };
        plan.assign_names(schema);
        plan.find_recursion(schema);
        plan.find_output(schema);
        plan.box_large_branches(schema);
        if !config.older.is_empty() {
            plan.avail = Some(Avail::new(schema, config));
        }
        plan
    }

    /// Names for every generated item. Top-level types come first (a
    /// name from Rust's prelude gets a `Qapi` prefix, so `use
    /// qmp::*` never shadows `String`); then commands and events, which
    /// users glob-import beside the types: a command whose name is a
    /// type's and whose arguments are exactly that type (and no other
    /// command's) is that type, re-exported; any other clash gets a
    /// `Command` or `Event` suffix.
    fn assign_names(&mut self, schema: &Schema) {
        let mut types = Scope::new("types");
        let mut commands = Scope::new("commands");
        let mut events = Scope::new("events");
        events.reserve("Event");
        events.reserve("EventMessage");
        events.reserve("EventError");
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
                if let Some(a) = c.arg_type.filter(|&a| !schema.entity(a).is_implicit()) {
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

    /// Box the members and branches that make a type contain itself
    /// (edges inside one strongly connected component).
    fn find_recursion(&mut self, schema: &Schema) {
        let n = schema.entities.len();
        // Direct containment edges, labelled by member or branch name.
        let mut edges: Vec<Vec<(usize, String)>> = vec![Vec::new(); n];
        for (id, e) in schema.iter() {
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
        for (id, _) in schema.iter() {
            for (j, label) in &edges[id.index()] {
                if comp[id.index()] == comp[*j] {
                    self.boxed.insert((id, label.clone()));
                }
            }
        }
    }

    /// The types replies and events carry: command returns and event
    /// data, and everything they contain.
    fn find_output(&mut self, schema: &Schema) {
        let mut stack: Vec<EntityId> = Vec::new();
        for e in &schema.entities {
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
            match &schema.entity(id).kind {
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

    /// Box the union branches estimated at [`LARGE_BRANCH`] bytes or
    /// more.  A union value is as large as its largest branch, whichever
    /// it holds, and every value is moved a few times as it is decoded
    /// (into its parent, into a `Vec` that grows): one large branch
    /// (`ImageInfoSpecific`'s qcow2 and luks) made every node of
    /// `query-named-block-nodes` 1,096 bytes instead of 840, and its
    /// decoding measurably slower (ARCHITECTURE.md, "How replies are
    /// decoded").  A boxed branch costs one allocation when it is there.
    fn box_large_branches(&mut self, schema: &Schema) {
        let mut large = Vec::new();
        for (id, e) in schema.iter() {
            let EntityKind::Object(o) = &e.kind else {
                continue;
            };
            for v in o.branches.iter().flat_map(|b| &b.variants) {
                if self.output.contains(&id)
                    && !v.implicit
                    && !self.boxed.contains(&(id, v.name.clone()))
                    && self.estimated_size(schema, v.ty, 0) >= LARGE_BRANCH
                {
                    large.push((id, v.name.clone()));
                }
            }
        }
        self.boxed.extend(large);
    }

    /// A rough size in bytes of a type's values: strings, lists and
    /// enums (whose catch-all holds a string) 24, numbers 8, booleans 1,
    /// `any` 32, an object its members' and its largest branch's, an
    /// alternate its largest alternative's and a tag; boxed parts 8.
    fn estimated_size(&self, schema: &Schema, ty: EntityId, depth: u32) -> usize {
        if depth > 16 {
            return 8;
        }
        let member = |owner: EntityId, name: &str, ty: EntityId, optional: bool| {
            if self.boxed.contains(&(owner, name.to_string())) {
                return 8;
            }
            let size = self.estimated_size(schema, ty, depth + 1);
            // An optional number needs room for `None`.
            match &schema.entity(ty).kind {
                EntityKind::Builtin(b) if optional && !matches!(b, Builtin::Bool) => {
                    size.max(8) + 8
                }
                _ => size,
            }
        };
        match &schema.entity(ty).kind {
            EntityKind::Builtin(Builtin::Str) => 24,
            EntityKind::Builtin(Builtin::Bool) => 1,
            EntityKind::Builtin(Builtin::Any) => 32,
            EntityKind::Builtin(Builtin::Null) => 0,
            EntityKind::Builtin(_) => 8,
            EntityKind::Enum(_) | EntityKind::Array(_) => 24,
            EntityKind::Object(o) => {
                let members: usize = o
                    .members
                    .iter()
                    .map(|m| member(ty, &m.name, m.ty, m.optional))
                    .sum();
                let branch = o
                    .branches
                    .iter()
                    .flat_map(|b| &b.variants)
                    .map(|v| member(ty, &v.name, v.ty, false));
                members + branch.max().unwrap_or(0)
            }
            EntityKind::Alternate(a) => {
                let largest = a.variants.iter().map(|v| member(ty, &v.name, v.ty, false));
                largest.max().unwrap_or(0) + 8
            }
            EntityKind::Command(_) | EntityKind::Event(_) => 0,
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
