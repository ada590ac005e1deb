//! The checked schema: every entity with an id, references resolved.
//!
//! Entities are created in QEMU's order (builtins, then each definition
//! in reading order, the implicit types a definition needs just before
//! it) and given an [`EntityId`] before anything is resolved, so forward
//! references, references across includes and recursive types need no
//! special case.  Checks then run over the entities in that order, the
//! way QEMU's `schema.py` runs them, so a bad schema reports the same
//! first problem.

use std::collections::HashMap;
use std::path::Path;

use crate::diag::{Context, Diagnostic, Result};
use crate::doc::Doc;
use crate::expr::{self, c_name, Def, DefKind, FeatureDef, IfCond, MemberDef, Members, TypeRef};
use crate::reader::{Pragma, TopExpr};
use crate::source::{abs_path, dir_name, rel_path, SourceMap, Span};
use crate::Rules;

/// An entity of a [`Schema`]: [`Schema::entity`] finds it,
/// [`Schema::iter`] gives every entity with its id.  Only the schema
/// makes ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId(u32);

impl EntityId {
    const UNRESOLVED: EntityId = EntityId(u32::MAX);

    /// The id of the entity at `index` in [`Schema::entities`].
    fn at(index: usize) -> EntityId {
        EntityId(index as u32)
    }

    /// The entity's position in [`Schema::entities`] (and in
    /// [`Schema::iter`]), e.g. to index a table of one value per entity.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a module in [`Schema::modules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModuleId(pub u32);

/// A schema file (or `./builtin` for the built-in types), with what it
/// defines, in order.
#[derive(Clone, Debug)]
pub struct Module {
    /// The file's path relative to the main file's folder, or `./builtin`.
    pub name: String,
    pub items: Vec<ModuleItem>,
}

#[derive(Clone, Debug)]
pub enum ModuleItem {
    /// An `include` of another module (listed even when that file was
    /// already read).
    Include {
        module: ModuleId,
        span: Span,
    },
    Entity(EntityId),
}

/// A feature of a definition, member or enum value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feature {
    pub name: String,
    pub cond: Option<IfCond>,
}

impl Feature {
    /// `deprecated` and `unstable` have a meaning for every schema.
    pub fn is_special(&self) -> bool {
        self.name == "deprecated" || self.name == "unstable"
    }
}

/// The built-in types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    Str,
    Number,
    Int,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Size,
    Bool,
    Any,
    Null,
}

/// The JSON type of a QAPI type's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JsonType {
    String,
    Number,
    Int,
    Boolean,
    Null,
    /// Any JSON value (`any`, alternates).
    Value,
    Array,
    Object,
}

impl Builtin {
    pub const ALL: [(&'static str, Builtin); 15] = [
        ("str", Builtin::Str),
        ("number", Builtin::Number),
        ("int", Builtin::Int),
        ("int8", Builtin::Int8),
        ("int16", Builtin::Int16),
        ("int32", Builtin::Int32),
        ("int64", Builtin::Int64),
        ("uint8", Builtin::Uint8),
        ("uint16", Builtin::Uint16),
        ("uint32", Builtin::Uint32),
        ("uint64", Builtin::Uint64),
        ("size", Builtin::Size),
        ("bool", Builtin::Bool),
        ("any", Builtin::Any),
        ("null", Builtin::Null),
    ];

    pub fn json_type(self) -> JsonType {
        match self {
            Builtin::Str => JsonType::String,
            Builtin::Number => JsonType::Number,
            Builtin::Bool => JsonType::Boolean,
            Builtin::Any => JsonType::Value,
            Builtin::Null => JsonType::Null,
            _ => JsonType::Int,
        }
    }
}

#[derive(Clone, Debug)]
pub struct EnumValue {
    pub name: String,
    pub cond: Option<IfCond>,
    pub features: Vec<Feature>,
}

#[derive(Clone, Debug)]
pub struct EnumType {
    pub values: Vec<EnumValue>,
    /// The `prefix` for C constants, if given.
    pub prefix: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ArrayType {
    pub element: EntityId,
    element_name: String,
}

/// A member of an object type.
#[derive(Clone, Debug)]
pub struct ObjectMember {
    pub name: String,
    pub ty: EntityId,
    pub optional: bool,
    pub cond: Option<IfCond>,
    pub features: Vec<Feature>,
    /// The object type that declares the member (a base, for inherited
    /// members).
    pub defined_in: EntityId,
    ty_name: String,
}

/// A union branch or an alternate's alternative.
#[derive(Clone, Debug)]
pub struct Variant {
    pub name: String,
    pub ty: EntityId,
    pub cond: Option<IfCond>,
    /// A union branch that the schema does not list: an enum value of the
    /// discriminator without a branch gets an empty one.
    pub implicit: bool,
    ty_name: String,
}

/// A union's branches.
#[derive(Clone, Debug)]
pub struct Branches {
    /// The discriminator: a member of the base.
    pub tag: String,
    pub variants: Vec<Variant>,
}

/// A struct or union (or an implicit object type).
#[derive(Clone, Debug)]
pub struct ObjectType {
    pub base: Option<EntityId>,
    /// The members the type declares itself.
    pub local_members: Vec<ObjectMember>,
    /// All members: the base's first, then the local ones.
    pub members: Vec<ObjectMember>,
    pub branches: Option<Branches>,
    base_name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct AlternateType {
    pub variants: Vec<Variant>,
}

#[derive(Clone, Debug)]
pub struct Command {
    pub arg_type: Option<EntityId>,
    pub ret_type: Option<EntityId>,
    pub boxed: bool,
    pub gen: bool,
    pub success_response: bool,
    pub allow_oob: bool,
    pub allow_preconfig: bool,
    pub coroutine: bool,
    arg_name: Option<String>,
    ret_name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Event {
    pub arg_type: Option<EntityId>,
    pub boxed: bool,
    arg_name: Option<String>,
}

#[derive(Clone, Debug)]
pub enum EntityKind {
    Builtin(Builtin),
    Enum(EnumType),
    Array(ArrayType),
    Object(ObjectType),
    Alternate(AlternateType),
    Command(Command),
    Event(Event),
}

/// A definition, built-in type or implicit type.
#[derive(Clone, Debug)]
pub struct Entity {
    pub name: String,
    /// Where it is defined; for an implicit type, the definition that
    /// made it.  `None` for built-in types and their arrays.
    pub span: Option<Span>,
    /// The definition the span belongs to.
    pub context: Option<Context>,
    /// Its documentation block, an index into [`Schema::docs`].
    pub doc: Option<usize>,
    pub cond: Option<IfCond>,
    pub features: Vec<Feature>,
    pub module: ModuleId,
    pub kind: EntityKind,
}

impl Entity {
    /// Built-in, implicit (`q_obj_…`, `q_empty`, `QType`) or array types,
    /// which the schema does not define by name.
    pub fn is_implicit(&self) -> bool {
        match &self.kind {
            EntityKind::Builtin(_) | EntityKind::Array(_) => true,
            EntityKind::Object(_) => self.name.starts_with("q_"),
            EntityKind::Enum(_) => self.name == "QType",
            _ => false,
        }
    }

    /// What kind of definition this is: `enum`, `struct`, `union`, …
    pub fn meta(&self) -> &'static str {
        match &self.kind {
            EntityKind::Builtin(_) => "built-in",
            EntityKind::Enum(_) => "enum",
            EntityKind::Array(_) => "array",
            EntityKind::Object(o) if o.branches.is_some() => "union",
            EntityKind::Object(_) => "struct",
            EntityKind::Alternate(_) => "alternate",
            EntityKind::Command(_) => "command",
            EntityKind::Event(_) => "event",
        }
    }

    pub fn is_type(&self) -> bool {
        !matches!(self.kind, EntityKind::Command(_) | EntityKind::Event(_))
    }

    fn describe(&self) -> String {
        match &self.kind {
            EntityKind::Array(a) => format!("array type ['{}']", a.element_name),
            EntityKind::Command(_) | EntityKind::Event(_) => {
                format!("{} '{}'", self.meta(), self.name)
            }
            _ => format!("{} type '{}'", self.meta(), self.name),
        }
    }
}

/// Options for reading a schema.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// The rules the schema is read with (default: the strict ones,
    /// QEMU 10.2.0's); see [`Rules`].
    pub rules: Rules,
}

/// A checked QAPI schema.
#[derive(Clone, Debug)]
pub struct Schema {
    pub sources: SourceMap,
    /// `./builtin`, the main file, then included files in first-include
    /// order.
    pub modules: Vec<Module>,
    /// Every entity, in definition order.
    pub entities: Vec<Entity>,
    /// Every documentation block, in reading order.
    pub docs: Vec<Doc>,
    pub pragma: Pragma,
    /// Every feature name used, `deprecated` and `unstable` first.
    pub feature_names: Vec<String>,
    by_name: HashMap<String, EntityId>,
}

/// The most distinct feature names a schema may use.
pub const MAX_FEATURES: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum CheckState {
    Unchecked,
    InProgress,
    Done,
}

/// A member already seen while checking for clashes.
#[derive(Clone)]
struct Seen {
    name: String,
    role: &'static str,
    defined_in: String,
}

impl Schema {
    /// Read and check the schema whose main file is `path`.
    pub fn from_file(
        path: impl AsRef<Path>,
        options: Options,
    ) -> std::result::Result<Schema, Failure> {
        let load = |p: &Path| std::fs::read(p);
        Schema::from_file_with(path.as_ref(), options, &load)
    }

    /// Like [`from_file`](Self::from_file), reading files through `load`.
    pub fn from_file_with(
        path: &Path,
        options: Options,
        load: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
    ) -> std::result::Result<Schema, Failure> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
        let name = path.to_string_lossy().into_owned();
        let mut reader = crate::reader::Reader::new(options.rules, cwd.clone(), load);
        if let Err(e) = reader.read_main(&name) {
            return Err(Failure {
                diagnostic: e,
                sources: reader.sources,
            });
        }
        let crate::reader::Reader {
            sources,
            exprs,
            docs,
            pragma,
            ..
        } = reader;
        let mut b = Builder {
            schema: Schema {
                sources,
                modules: Vec::new(),
                entities: Vec::new(),
                docs,
                pragma,
                feature_names: vec!["deprecated".into(), "unstable".into()],
                by_name: HashMap::new(),
            },
            feature_spans: vec![None, None],
            module_names: HashMap::new(),
            schema_dir: abs_path(Path::new(dir_name(&name)), &cwd),
            cwd,
            state: Vec::new(),
            mode: options.rules,
            wrappers: Vec::new(),
        };
        match b.build(&name, exprs) {
            Ok(()) => Ok(b.schema),
            Err(e) => Err(Failure {
                diagnostic: e,
                sources: b.schema.sources,
            }),
        }
    }

    pub fn entity(&self, id: EntityId) -> &Entity {
        &self.entities[id.index()]
    }

    /// Every entity with its id, in definition order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (EntityId, &Entity)> + ExactSizeIterator {
        self.entities
            .iter()
            .enumerate()
            .map(|(i, e)| (EntityId::at(i), e))
    }

    /// The entity named `name`.
    pub fn lookup(&self, name: &str) -> Option<EntityId> {
        self.by_name.get(name).copied()
    }

    /// The documentation block of an entity.
    pub fn doc_of(&self, id: EntityId) -> Option<&Doc> {
        self.entity(id).doc.map(|d| &self.docs[d])
    }

    /// The JSON type of a type's values.
    pub fn json_type(&self, id: EntityId) -> JsonType {
        match &self.entity(id).kind {
            EntityKind::Builtin(b) => b.json_type(),
            EntityKind::Enum(_) => JsonType::String,
            EntityKind::Array(_) => JsonType::Array,
            EntityKind::Object(_) => JsonType::Object,
            EntityKind::Alternate(_) => JsonType::Value,
            EntityKind::Command(_) | EntityKind::Event(_) => JsonType::Value,
        }
    }
}

/// A schema that could not be read, with the files read so far (to
/// render the diagnostic).
#[derive(Debug)]
pub struct Failure {
    pub diagnostic: Box<Diagnostic>,
    pub sources: SourceMap,
}

impl Failure {
    pub fn render(&self) -> String {
        self.diagnostic.render(&self.sources)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for Failure {}

/// A type the schema does not define by name, made for the definition
/// at `info`.
fn implicit_entity(name: String, info: &Info, cond: Option<IfCond>, kind: EntityKind) -> Entity {
    Entity {
        name,
        span: Some(info.0),
        context: info.1.clone(),
        doc: None,
        cond,
        features: Vec::new(),
        module: ModuleId(0),
        kind,
    }
}

/// A required, unconditional member of an implicit type.
fn required_member(name: &str, ty_name: String) -> ObjectMember {
    ObjectMember {
        name: name.into(),
        ty: EntityId::UNRESOLVED,
        optional: false,
        cond: None,
        features: Vec::new(),
        defined_in: EntityId::UNRESOLVED,
        ty_name,
    }
}

struct Builder {
    schema: Schema,
    feature_spans: Vec<Option<Span>>,
    module_names: HashMap<String, ModuleId>,
    schema_dir: std::path::PathBuf,
    cwd: std::path::PathBuf,
    state: Vec<CheckState>,
    mode: Rules,
    /// Simple unions' wrapper types and the types they wrap.
    wrappers: Vec<(String, String)>,
}

type Info = (Span, Option<Context>);

impl Builder {
    fn strict(&self) -> bool {
        self.mode == Rules::Strict
    }

    fn module_name(&self, file_name: &str) -> String {
        rel_path(&abs_path(Path::new(file_name), &self.cwd), &self.schema_dir)
    }

    fn make_module(&mut self, name: String) -> ModuleId {
        if let Some(&m) = self.module_names.get(&name) {
            return m;
        }
        let id = ModuleId(self.schema.modules.len() as u32);
        self.schema.modules.push(Module {
            name: name.clone(),
            items: Vec::new(),
        });
        self.module_names.insert(name, id);
        id
    }

    fn build(&mut self, main: &str, exprs: Vec<TopExpr>) -> Result<()> {
        self.make_module("./builtin".into());
        let main_module = self.module_name(main);
        self.make_module(main_module);
        self.predefine();
        // Definitions are checked one by one, in order, before any is
        // turned into entities (QEMU's check_exprs, then _def_exprs).
        let mut defs = Vec::new();
        for e in exprs {
            match e {
                TopExpr::Include { span, name } => defs.push(Err((span, name))),
                TopExpr::Definition { node, doc } => {
                    let d = doc.map(|i| (i, &self.schema.docs[i]));
                    defs.push(Ok(expr::check_definition(
                        &node,
                        d,
                        &self.schema.pragma,
                        self.mode,
                    )?));
                }
            }
        }
        let mut includes = Vec::new();
        for d in defs {
            match d {
                Ok(def) => self.define(def)?,
                Err((span, name)) => {
                    let module = self.make_module(self.module_name(&name));
                    includes.push((self.schema.entities.len(), module, span));
                }
            }
        }
        self.wrapper_conditions();
        self.check()?;
        self.assign_modules(includes);
        Ok(())
    }

    // ----------------------------------------------------------------
    // Defining entities

    fn add(&mut self, entity: Entity) -> Result<EntityId> {
        if let Some(&other) = self.schema.by_name.get(&entity.name) {
            let o = self.schema.entity(other);
            let span = entity.span.expect("only predefined entities lack a span");
            return Err(match o.span {
                Some(prev) => Diagnostic::at_line(
                    span,
                    entity.context.clone(),
                    format!("'{}' is defined a second time", entity.name),
                )
                .with_note(prev, o.context.clone(), "the first definition is here"),
                None => Diagnostic::at_line(
                    span,
                    entity.context.clone(),
                    format!(
                        "'{}' is already defined as the {}",
                        entity.name,
                        o.describe()
                    ),
                ),
            });
        }
        let id = EntityId::at(self.schema.entities.len());
        self.schema.by_name.insert(entity.name.clone(), id);
        self.schema.entities.push(entity);
        self.state.push(CheckState::Unchecked);
        Ok(id)
    }

    fn predefine(&mut self) {
        let builtin = ModuleId(0);
        let plain = |name: &str, kind: EntityKind| Entity {
            name: name.to_string(),
            span: None,
            context: None,
            doc: None,
            cond: None,
            features: Vec::new(),
            module: builtin,
            kind,
        };
        for (name, b) in Builtin::ALL {
            let id = self
                .add(plain(name, EntityKind::Builtin(b)))
                .expect("fresh names");
            self.add(plain(
                &format!("{name}List"),
                EntityKind::Array(ArrayType {
                    element: id,
                    element_name: name.to_string(),
                }),
            ))
            .expect("fresh names");
        }
        self.add(plain(
            "q_empty",
            EntityKind::Object(ObjectType {
                base: None,
                local_members: Vec::new(),
                members: Vec::new(),
                branches: None,
                base_name: None,
            }),
        ))
        .expect("fresh names");
        let values = [
            "none", "qnull", "qnum", "qstring", "qdict", "qlist", "qbool",
        ]
        .iter()
        .map(|n| crate::schema::EnumValue {
            name: n.to_string(),
            cond: None,
            features: Vec::new(),
        })
        .collect();
        self.add(plain(
            "QType",
            EntityKind::Enum(EnumType {
                values,
                prefix: None,
            }),
        ))
        .expect("fresh names");
    }

    fn features(&mut self, defs: Vec<FeatureDef>, span: Span) -> Vec<Feature> {
        for f in &defs {
            if !self.schema.feature_names.contains(&f.name) {
                self.schema.feature_names.push(f.name.clone());
                self.feature_spans.push(Some(span));
            }
        }
        defs.into_iter()
            .map(|f| Feature {
                name: f.name,
                cond: f.cond,
            })
            .collect()
    }

    /// The name of `['T']`'s type, defining it on first use.
    fn array_of(&mut self, element: &str, info: &Info) -> Result<String> {
        let name = format!("{element}List");
        let exists = self
            .schema
            .lookup(&name)
            .is_some_and(|id| self.schema.entity(id).is_type());
        if !exists {
            self.add(Entity {
                name: name.clone(),
                span: Some(info.0),
                context: info.1.clone(),
                doc: None,
                cond: None,
                features: Vec::new(),
                module: ModuleId(0),
                kind: EntityKind::Array(ArrayType {
                    element: EntityId::UNRESOLVED,
                    element_name: element.to_string(),
                }),
            })?;
        }
        Ok(name)
    }

    fn type_ref(&mut self, r: TypeRef, info: &Info) -> Result<String> {
        match r {
            TypeRef::Named(n) => Ok(n),
            TypeRef::Array(e) => self.array_of(&e, info),
        }
    }

    fn members(&mut self, defs: Vec<MemberDef>, info: &Info) -> Result<Vec<ObjectMember>> {
        let mut out = Vec::new();
        for m in defs {
            let ty_name = self.type_ref(m.ty, info)?;
            let features = self.features(m.features, info.0);
            out.push(ObjectMember {
                name: m.name,
                ty: EntityId::UNRESOLVED,
                optional: m.optional,
                cond: m.cond,
                features,
                defined_in: EntityId::UNRESOLVED,
                ty_name,
            });
        }
        Ok(out)
    }

    /// `q_obj_NAME-ROLE` for members written in place; `None` when there
    /// are none.
    fn implicit_object(
        &mut self,
        name: &str,
        role: &str,
        members: Vec<ObjectMember>,
        info: &Info,
        cond: &Option<IfCond>,
    ) -> Result<Option<String>> {
        if members.is_empty() {
            return Ok(None);
        }
        let name = format!("q_obj_{name}-{role}");
        if self.schema.lookup(&name).is_none() {
            // An existing one means the definition itself is a duplicate,
            // which is reported when it is added.
            self.add(implicit_entity(
                name.clone(),
                info,
                cond.clone(),
                EntityKind::Object(ObjectType {
                    base: None,
                    local_members: members,
                    members: Vec::new(),
                    branches: None,
                    base_name: None,
                }),
            ))?;
        }
        Ok(Some(name))
    }

    fn variants(&mut self, defs: Vec<expr::BranchDef>, info: &Info) -> Result<Vec<Variant>> {
        let mut out = Vec::new();
        for b in defs {
            let ty_name = self.type_ref(b.ty, info)?;
            out.push(Variant {
                name: b.name,
                ty: EntityId::UNRESOLVED,
                cond: b.cond,
                implicit: false,
                ty_name,
            });
        }
        Ok(out)
    }

    fn define(&mut self, def: Def) -> Result<()> {
        let info: Info = (def.span, Some(def.context.clone()));
        let features = self.features(def.features, def.span);
        let kind = match def.kind {
            DefKind::Enum { values, prefix } => {
                let mut out = Vec::new();
                for v in values {
                    let features = self.features(v.features, def.span);
                    out.push(EnumValue {
                        name: v.name,
                        cond: v.cond,
                        features,
                    });
                }
                EntityKind::Enum(EnumType {
                    values: out,
                    prefix,
                })
            }
            DefKind::Struct { base, members } => {
                let members = self.members(members, &info)?;
                EntityKind::Object(ObjectType {
                    base: None,
                    local_members: members,
                    members: Vec::new(),
                    branches: None,
                    base_name: base,
                })
            }
            DefKind::Union {
                base,
                discriminator,
                branches,
            } => {
                let base_name = match base {
                    Members::Named(n) => Some(n),
                    Members::Inline(ms) => {
                        let ms = self.members(ms, &info)?;
                        self.implicit_object(&def.name, "base", ms, &info, &def.cond)?
                    }
                };
                let variants = self.variants(branches, &info)?;
                EntityKind::Object(ObjectType {
                    base: None,
                    local_members: Vec::new(),
                    members: Vec::new(),
                    branches: Some(Branches {
                        tag: discriminator,
                        variants,
                    }),
                    base_name,
                })
            }
            DefKind::SimpleUnion { branches } => {
                self.simple_union(&def.name, &def.cond, branches, &info)?
            }
            DefKind::Alternate { branches } => EntityKind::Alternate(AlternateType {
                variants: self.variants(branches, &info)?,
            }),
            DefKind::Command {
                data,
                returns,
                boxed,
                gen,
                success_response,
                allow_oob,
                allow_preconfig,
                coroutine,
            } => {
                let arg_name = self.args(&def.name, data, &info, &def.cond)?;
                let ret_name = match returns {
                    None => None,
                    Some(r) => Some(self.type_ref(r, &info)?),
                };
                EntityKind::Command(Command {
                    arg_type: None,
                    ret_type: None,
                    boxed,
                    gen,
                    success_response,
                    allow_oob,
                    allow_preconfig,
                    coroutine,
                    arg_name,
                    ret_name,
                })
            }
            DefKind::Event { data, boxed } => {
                let arg_name = self.args(&def.name, data, &info, &def.cond)?;
                EntityKind::Event(Event {
                    arg_type: None,
                    boxed,
                    arg_name,
                })
            }
        };
        self.add(Entity {
            name: def.name,
            span: Some(def.span),
            context: Some(def.context),
            doc: def.doc,
            cond: def.cond,
            features,
            module: ModuleId(0),
            kind,
        })?;
        Ok(())
    }

    /// A union as QEMU wrote them before 6.2, modelled as QEMU modelled
    /// it: an implicit enum `NAMEKind` of the branch names, a member
    /// `type` of that enum as discriminator, and each branch's type
    /// wrapped in an implicit object `q_obj_TYPE-wrapper` whose one
    /// member `data` holds the value.
    fn simple_union(
        &mut self,
        name: &str,
        cond: &Option<IfCond>,
        branches: Vec<expr::BranchDef>,
        info: &Info,
    ) -> Result<EntityKind> {
        let mut variants = Vec::new();
        let mut values = Vec::new();
        for b in branches {
            let wrapped = self.type_ref(b.ty, info)?;
            let data = required_member("data", wrapped.clone());
            let wrapper = self
                .implicit_object(&wrapped, "wrapper", vec![data], info, &None)?
                .expect("a wrapper has a member");
            self.wrappers.push((wrapper.clone(), wrapped));
            values.push(EnumValue {
                name: b.name.clone(),
                cond: b.cond.clone(),
                features: Vec::new(),
            });
            variants.push(Variant {
                name: b.name,
                ty: EntityId::UNRESOLVED,
                cond: b.cond,
                implicit: false,
                ty_name: wrapper,
            });
        }
        let kind_name = format!("{name}Kind");
        self.add(implicit_entity(
            kind_name.clone(),
            info,
            cond.clone(),
            EntityKind::Enum(EnumType {
                values,
                prefix: None,
            }),
        ))?;
        Ok(EntityKind::Object(ObjectType {
            base: None,
            local_members: vec![required_member("type", kind_name)],
            members: Vec::new(),
            branches: Some(Branches {
                tag: "type".into(),
                variants,
            }),
            base_name: None,
        }))
    }

    /// A wrapper type of a simple union has its wrapped type's condition
    /// (an array's: its element's), known once every definition is.
    fn wrapper_conditions(&mut self) {
        for (wrapper, wrapped) in std::mem::take(&mut self.wrappers) {
            let mut cond = None;
            if let Some(id) = self.schema.lookup(&wrapped) {
                let e = self.schema.entity(id);
                cond = match &e.kind {
                    EntityKind::Array(a) => self
                        .schema
                        .lookup(&a.element_name)
                        .and_then(|el| self.schema.entity(el).cond.clone()),
                    _ => e.cond.clone(),
                };
            }
            if let Some(w) = self.schema.lookup(&wrapper) {
                self.schema.entities[w.index()].cond = cond;
            }
        }
    }

    fn args(
        &mut self,
        name: &str,
        data: Option<Members>,
        info: &Info,
        cond: &Option<IfCond>,
    ) -> Result<Option<String>> {
        match data {
            None => Ok(None),
            Some(Members::Named(n)) => Ok(Some(n)),
            Some(Members::Inline(ms)) => {
                let ms = self.members(ms, info)?;
                self.implicit_object(name, "arg", ms, info, cond)
            }
        }
    }

    // ----------------------------------------------------------------
    // Checking

    fn ent(&self, id: EntityId) -> &Entity {
        self.schema.entity(id)
    }

    fn info(&self, id: EntityId) -> Info {
        let e = self.ent(id);
        (
            e.span.expect("checked entities with problems have a span"),
            e.context.clone(),
        )
    }

    fn err(info: &Info, msg: impl Into<String>) -> Box<Diagnostic> {
        Diagnostic::at_line(info.0, info.1.clone(), msg)
    }

    /// A type by name, or "WHAT uses unknown type".
    fn resolve(&self, name: &str, info: &Info, what: &str) -> Result<EntityId> {
        self.resolve_with(name, info, || what.to_string())
    }

    /// Like `resolve`, making the description only when needed.
    fn resolve_with(
        &self,
        name: &str,
        info: &Info,
        what: impl FnOnce() -> String,
    ) -> Result<EntityId> {
        match self.schema.lookup(name) {
            Some(id) if self.ent(id).is_type() => Ok(id),
            _ => Err(Self::err(
                info,
                format!("{} refers to '{name}', which is not a defined type", what()),
            )),
        }
    }

    /// How a member is described in messages, seen from the definition
    /// `info` is in.
    fn describe_member(role: &'static str, name: &str, defined_in: &str, info: &Info) -> String {
        let (mut role, mut meta, mut owner) = (role.to_string(), "type", defined_in.to_string());
        if let Some(rest) = defined_in.strip_prefix("q_obj_") {
            if let Some(cmd) = rest.strip_suffix("-arg") {
                role = "argument".into();
                meta = "command";
                owner = cmd.to_string();
            } else if let Some(u) = rest.strip_suffix("-base") {
                role = format!("base {role}");
                owner = u.to_string();
            }
        }
        let here = info.1.as_ref().map(|c| c.name.as_str());
        if here != Some(owner.as_str()) {
            format!("{role} '{name}' of {meta} '{owner}'")
        } else {
            format!("{role} '{name}'")
        }
    }

    fn clash(seen: &mut Vec<(String, Seen)>, new: Seen, info: &Info) -> Result<()> {
        let cname = c_name(&new.name);
        if let Some((_, old)) = seen.iter().find(|(c, _)| *c == cname) {
            return Err(Self::err(
                info,
                format!(
                    "{} clashes with {} (the same name once '-' and '.' become '_')",
                    Self::describe_member(new.role, &new.name, &new.defined_in, info),
                    Self::describe_member(old.role, &old.name, &old.defined_in, info),
                ),
            ));
        }
        seen.push((cname, new));
        Ok(())
    }

    fn check_features(&self, features: &[Feature], owner: &str, info: &Info) -> Result<()> {
        let mut seen = Vec::new();
        for f in features {
            Self::clash(
                &mut seen,
                Seen {
                    name: f.name.clone(),
                    role: "feature",
                    defined_in: owner.to_string(),
                },
                info,
            )?;
        }
        Ok(())
    }

    /// QEMU's checks common to definitions, and to types.
    fn check_definition(&self, id: EntityId) -> Result<()> {
        let e = self.ent(id);
        if e.span.is_none() {
            return Ok(());
        }
        let info = self.info(id);
        self.check_features(&e.features, &e.name, &info)?;
        if e.is_type() {
            if let Some(f) = e.features.iter().find(|f| f.is_special()) {
                return Err(Self::err(
                    &info,
                    format!(
                        "feature '{}' is for commands, events and members, not types",
                        f.name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check(&mut self) -> Result<()> {
        for i in 0..self.schema.entities.len() {
            let id = EntityId::at(i);
            self.check_entity(id)?;
            self.connect_doc(id, None)?;
        }
        if self.strict() {
            for d in &self.schema.docs {
                d.check_described()?;
            }
        }
        if self.schema.feature_names.len() > MAX_FEATURES {
            let span = self.feature_spans[MAX_FEATURES].expect("only special features lack a span");
            return Err(Diagnostic::at_line(
                span,
                None,
                format!(
                    "feature '{}' is one too many: a schema may use at most {MAX_FEATURES} feature names",
                    self.schema.feature_names[MAX_FEATURES]
                ),
            ));
        }
        Ok(())
    }

    fn check_entity(&mut self, id: EntityId) -> Result<()> {
        match &self.ent(id).kind {
            EntityKind::Builtin(_) => Ok(()),
            EntityKind::Enum(en) => {
                self.check_definition(id)?;
                let info = self.info_or_builtin(id);
                let mut seen = Vec::new();
                let name = self.ent(id).name.clone();
                for v in &en.values {
                    if let Some(info) = &info {
                        Self::clash(
                            &mut seen,
                            Seen {
                                name: v.name.clone(),
                                role: "value",
                                defined_in: name.clone(),
                            },
                            info,
                        )?;
                    }
                }
                Ok(())
            }
            EntityKind::Array(a) => {
                let element_name = a.element_name.clone();
                if a.element != EntityId::UNRESOLVED {
                    return Ok(());
                }
                let info = self.info(id);
                let what = info.1.as_ref().map(|c| c.meta.clone()).unwrap_or_default();
                let element = self.resolve(&element_name, &info, &format!("this {what}"))?;
                if matches!(self.ent(element).kind, EntityKind::Array(_)) {
                    return Err(Self::err(
                        &info,
                        format!(
                            "['{element_name}'] is an array of arrays, which QAPI does not support"
                        ),
                    ));
                }
                if let EntityKind::Array(a) = &mut self.schema.entities[id.index()].kind {
                    a.element = element;
                }
                Ok(())
            }
            EntityKind::Object(_) => self.check_object(id),
            EntityKind::Alternate(_) => self.check_alternate(id),
            EntityKind::Command(_) | EntityKind::Event(_) => self.check_command_or_event(id),
        }
    }

    fn info_or_builtin(&self, id: EntityId) -> Option<Info> {
        let e = self.ent(id);
        e.span.map(|s| (s, e.context.clone()))
    }

    fn object(&self, id: EntityId) -> &ObjectType {
        match &self.ent(id).kind {
            EntityKind::Object(o) => o,
            _ => unreachable!("not an object"),
        }
    }

    fn object_mut(&mut self, id: EntityId) -> &mut ObjectType {
        match &mut self.schema.entities[id.index()].kind {
            EntityKind::Object(o) => o,
            _ => unreachable!("not an object"),
        }
    }

    /// Resolve a member's type and check its features.
    fn check_member(
        &self,
        m: &mut ObjectMember,
        role: &'static str,
        owner: &str,
        info: &Info,
    ) -> Result<()> {
        m.ty = self.resolve_with(&m.ty_name, info, || {
            Self::describe_member(role, &m.name, owner, info)
        })?;
        self.check_features(&m.features, &m.name, info)
    }

    fn check_object(&mut self, id: EntityId) -> Result<()> {
        match self.state[id.index()] {
            CheckState::Done => return Ok(()),
            CheckState::InProgress => {
                let info = self.info(id);
                return Err(Self::err(
                    &info,
                    format!("object type '{}' contains itself", self.ent(id).name),
                ));
            }
            CheckState::Unchecked => {}
        }
        self.state[id.index()] = CheckState::InProgress;
        self.check_definition(id)?;
        let Some(info) = self.info_or_builtin(id) else {
            // q_empty
            self.state[id.index()] = CheckState::Done;
            return Ok(());
        };
        let name = self.ent(id).name.clone();
        let mut seen: Vec<(String, Seen)> = Vec::new();
        let mut all: Vec<ObjectMember> = Vec::new();
        if let Some(base_name) = self.object(id).base_name.clone() {
            let base = self.resolve(&base_name, &info, "'base'")?;
            let is_struct =
                matches!(&self.ent(base).kind, EntityKind::Object(o) if o.branches.is_none());
            if !is_struct {
                return Err(Self::err(
                    &info,
                    format!(
                        "'base' must be a struct type, but {} is not",
                        self.ent(base).describe()
                    ),
                ));
            }
            self.check_object(base)?;
            self.object_mut(id).base = Some(base);
            for m in &self.object(base).members {
                let defined_in = self.ent(m.defined_in).name.clone();
                Self::clash(
                    &mut seen,
                    Seen {
                        name: m.name.clone(),
                        role: "member",
                        defined_in,
                    },
                    &info,
                )?;
                all.push(m.clone());
            }
        }
        let mut locals = std::mem::take(&mut self.object_mut(id).local_members);
        let mut result = Ok(());
        for m in &mut locals {
            m.defined_in = id;
            result = self.check_member(m, "member", &name, &info).and_then(|()| {
                Self::clash(
                    &mut seen,
                    Seen {
                        name: m.name.clone(),
                        role: "member",
                        defined_in: name.clone(),
                    },
                    &info,
                )
            });
            if result.is_err() {
                break;
            }
            all.push(m.clone());
        }
        self.object_mut(id).local_members = locals;
        result?;
        if self.object(id).branches.is_some() {
            self.check_branches(id, &info, &all, &seen)?;
        }
        self.object_mut(id).members = all;
        self.state[id.index()] = CheckState::Done;
        Ok(())
    }

    fn check_branches(
        &mut self,
        id: EntityId,
        info: &Info,
        members: &[ObjectMember],
        seen: &[(String, Seen)],
    ) -> Result<()> {
        let name = self.ent(id).name.clone();
        let tag_name = self
            .object(id)
            .branches
            .as_ref()
            .expect("a union")
            .tag
            .clone();
        let tag = members
            .iter()
            .find(|m| c_name(&m.name) == c_name(&tag_name))
            .filter(|m| m.name == tag_name);
        let Some(tag) = tag.cloned() else {
            return Err(Self::err(
                info,
                format!("the discriminator '{tag_name}' is not a member of the base"),
            ));
        };
        let base_desc = {
            let owner = self.ent(tag.defined_in);
            if owner.is_implicit() {
                "the base".to_string()
            } else {
                format!("base type '{}'", owner.name)
            }
        };
        let EntityKind::Enum(tag_enum) = &self.ent(tag.ty).kind else {
            return Err(Self::err(
                info,
                format!("the discriminator '{tag_name}' of {base_desc} must have an enum type"),
            ));
        };
        if tag.optional {
            return Err(Self::err(
                info,
                format!("the discriminator '{tag_name}' of {base_desc} must not be optional"),
            ));
        }
        if tag.cond.is_some() {
            return Err(Self::err(
                info,
                format!("the discriminator '{tag_name}' of {base_desc} must not be conditional"),
            ));
        }
        let tag_values = tag_enum.values.clone();
        let tag_enum_desc = self.ent(tag.ty).describe();
        let q_empty = self.schema.lookup("q_empty").expect("predefined");
        {
            let branches = self.object_mut(id).branches.as_mut().expect("a union");
            for v in &tag_values {
                if !branches.variants.iter().any(|b| b.name == v.name) {
                    branches.variants.push(Variant {
                        name: v.name.clone(),
                        ty: q_empty,
                        cond: v.cond.clone(),
                        implicit: true,
                        ty_name: "q_empty".into(),
                    });
                }
            }
            if branches.variants.is_empty() {
                return Err(Self::err(info, "this union has no branches"));
            }
        }
        let count = self
            .object(id)
            .branches
            .as_ref()
            .expect("a union")
            .variants
            .len();
        for i in 0..count {
            let v = self.object(id).branches.as_ref().expect("a union").variants[i].clone();
            let what = || Self::describe_member("branch", &v.name, &name, info);
            let ty = self.resolve_with(&v.ty_name, info, what)?;
            self.object_mut(id)
                .branches
                .as_mut()
                .expect("a union")
                .variants[i]
                .ty = ty;
            if !tag_values.iter().any(|t| t.name == v.name) {
                return Err(Self::err(
                    info,
                    format!(
                        "branch '{}' is not a value of the discriminator's {tag_enum_desc}",
                        v.name
                    ),
                ));
            }
            if !matches!(self.ent(ty).kind, EntityKind::Object(_)) {
                return Err(Self::err(
                    info,
                    format!(
                        "{} must be an object type, not the {}",
                        what(),
                        self.ent(ty).describe()
                    ),
                ));
            }
            self.check_object(ty)?;
        }
        // Each branch's members against the common ones.
        for i in 0..count {
            let ty = self.object(id).branches.as_ref().expect("a union").variants[i].ty;
            let mut seen = seen.to_vec();
            self.clash_object(ty, &mut seen, info)?;
        }
        Ok(())
    }

    /// Add an object's members (and its branches') to `seen`.
    fn clash_object(
        &self,
        id: EntityId,
        seen: &mut Vec<(String, Seen)>,
        info: &Info,
    ) -> Result<()> {
        let o = self.object(id);
        for m in &o.members {
            Self::clash(
                seen,
                Seen {
                    name: m.name.clone(),
                    role: "member",
                    defined_in: self.ent(m.defined_in).name.clone(),
                },
                info,
            )?;
        }
        if let Some(b) = &o.branches {
            for v in &b.variants {
                let mut s = seen.clone();
                self.clash_object(v.ty, &mut s, info)?;
            }
        }
        Ok(())
    }

    fn check_alternate(&mut self, id: EntityId) -> Result<()> {
        self.check_definition(id)?;
        let info = self.info(id);
        let name = self.ent(id).name.clone();
        let EntityKind::Alternate(alt) = &self.ent(id).kind else {
            unreachable!()
        };
        let mut variants = alt.variants.clone();
        for v in &mut variants {
            v.ty = self.resolve_with(&v.ty_name, &info, || {
                Self::describe_member("branch", &v.name, &name, &info)
            })?;
        }
        if let EntityKind::Alternate(alt) = &mut self.schema.entities[id.index()].kind {
            alt.variants = variants.clone();
        }
        let mut seen = Vec::new();
        let mut types_seen: Vec<(JsonType, String)> = Vec::new();
        for v in &variants {
            Self::clash(
                &mut seen,
                Seen {
                    name: v.name.clone(),
                    role: "branch",
                    defined_in: name.clone(),
                },
                &info,
            )?;
            let what = Self::describe_member("branch", &v.name, &name, &info);
            // The JSON types that would select this branch.
            let qtype = match self.schema.json_type(v.ty) {
                JsonType::Value => {
                    return Err(Self::err(
                        &info,
                        format!(
                            "{what} cannot be the {}: an alternate tells its branches apart by JSON type",
                            self.ent(v.ty).describe()
                        ),
                    ))
                }
                JsonType::Int => JsonType::Number,
                t => t,
            };
            let mut conflicting = vec![qtype];
            if qtype == JsonType::String {
                match &self.ent(v.ty).kind {
                    EntityKind::Enum(e) => {
                        for m in &e.values {
                            if m.name == "on" || m.name == "off" {
                                conflicting.push(JsonType::Boolean);
                            }
                            if m.name.starts_with(['-', '+', '.'])
                                || m.name.starts_with(|c: char| c.is_ascii_digit())
                            {
                                conflicting.push(JsonType::Number);
                            }
                        }
                    }
                    _ => {
                        conflicting.push(JsonType::Number);
                        conflicting.push(JsonType::Boolean);
                    }
                }
            }
            for qt in conflicting {
                if let Some((_, other)) = types_seen.iter().find(|(t, _)| *t == qt) {
                    return Err(Self::err(
                        &info,
                        format!("{what} cannot be told apart from branch '{other}' (both accept the same JSON values)"),
                    ));
                }
                types_seen.push((qt, v.name.clone()));
            }
        }
        Ok(())
    }

    fn check_command_or_event(&mut self, id: EntityId) -> Result<()> {
        self.check_definition(id)?;
        let info = self.info(id);
        let meta = self.ent(id).meta();
        let (arg_name, boxed) = match &self.ent(id).kind {
            EntityKind::Command(c) => (c.arg_name.clone(), c.boxed),
            EntityKind::Event(e) => (e.arg_name.clone(), e.boxed),
            _ => unreachable!(),
        };
        let mut arg_type = None;
        if let Some(arg_name) = arg_name {
            let arg = self.resolve(&arg_name, &info, &format!("the {meta}'s 'data'"))?;
            let EntityKind::Object(o) = &self.ent(arg).kind else {
                return Err(Self::err(
                    &info,
                    format!(
                        "the {meta}'s 'data' must be an object type, not the {}",
                        self.ent(arg).describe()
                    ),
                ));
            };
            if o.branches.is_some() && !boxed {
                return Err(Self::err(
                    &info,
                    format!(
                        "the {meta}'s 'data' can be the {} only with 'boxed': true",
                        self.ent(arg).describe()
                    ),
                ));
            }
            self.check_object(arg)?;
            if !boxed && self.object(arg).members.iter().any(|m| m.cond.is_some()) {
                return Err(Self::err(
                    &info,
                    format!("a {meta} with conditional arguments needs 'boxed': true"),
                ));
            }
            arg_type = Some(arg);
        }
        let mut ret_type = None;
        if let EntityKind::Command(c) = &self.ent(id).kind {
            if let Some(ret_name) = c.ret_name.clone() {
                let name = self.ent(id).name.clone();
                let ret = self.resolve(&ret_name, &info, "the command's 'returns'")?;
                if !self
                    .schema
                    .pragma
                    .command_returns_exceptions
                    .contains(&name)
                {
                    let mut t = ret;
                    if let EntityKind::Array(a) = &self.ent(t).kind {
                        t = a.element;
                    }
                    if !matches!(self.ent(t).kind, EntityKind::Object(_)) {
                        return Err(Self::err(
                            &info,
                            format!(
                                "the command's 'returns' must be an object type or an array of one, not the {} (pragma 'command-returns-exceptions' lists exceptions)",
                                self.ent(ret).describe()
                            ),
                        ));
                    }
                }
                ret_type = Some(ret);
            }
        }
        match &mut self.schema.entities[id.index()].kind {
            EntityKind::Command(c) => {
                c.arg_type = arg_type;
                c.ret_type = ret_type;
            }
            EntityKind::Event(e) => e.arg_type = arg_type,
            _ => unreachable!(),
        }
        Ok(())
    }

    // ----------------------------------------------------------------
    // Documentation

    fn connect_doc(&mut self, id: EntityId, doc: Option<usize>) -> Result<()> {
        let Some(doc) = doc.or(self.ent(id).doc) else {
            return Ok(());
        };
        let info = self.info(id);
        let features: Vec<String> = self
            .ent(id)
            .features
            .iter()
            .map(|f| f.name.clone())
            .collect();
        for f in &features {
            self.connect_feature(doc, f, &info)?;
        }
        // (role, name, features) of what the block should describe, and
        // an implicit type whose members it describes too.
        let mut described: Vec<(&'static str, String, Vec<String>)> = Vec::new();
        let mut implicit = None;
        let names = |fs: &[Feature]| fs.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        match &self.ent(id).kind {
            EntityKind::Enum(e) => {
                for v in &e.values {
                    described.push(("value", v.name.clone(), names(&v.features)));
                }
            }
            EntityKind::Object(o) => {
                implicit = o.base.filter(|&b| self.ent(b).is_implicit());
                for m in &o.local_members {
                    described.push(("member", m.name.clone(), names(&m.features)));
                }
            }
            EntityKind::Alternate(a) => {
                for v in &a.variants {
                    described.push(("branch", v.name.clone(), Vec::new()));
                }
            }
            EntityKind::Command(Command { arg_type, .. })
            | EntityKind::Event(Event { arg_type, .. }) => {
                implicit = arg_type.filter(|&a| self.ent(a).is_implicit());
            }
            EntityKind::Builtin(_) | EntityKind::Array(_) => {}
        }
        if let Some(i) = implicit {
            self.connect_doc(i, Some(doc))?;
        }
        for (role, name, features) in &described {
            self.connect_member(doc, role, name, &info)?;
            for f in features {
                self.connect_feature(doc, f, &info)?;
            }
        }
        Ok(())
    }

    fn connect_member(&mut self, doc: usize, role: &str, name: &str, info: &Info) -> Result<()> {
        let d = &mut self.schema.docs[doc];
        if !d.connect_member(name) && self.mode == Rules::Strict {
            let symbol = d.symbol.clone().unwrap_or_default();
            if !self
                .schema
                .pragma
                .documentation_exceptions
                .contains(&symbol)
            {
                return Err(Self::err(
                    info,
                    format!("{role} '{name}' is not described in the documentation comment"),
                ));
            }
        }
        Ok(())
    }

    fn connect_feature(&mut self, doc: usize, name: &str, info: &Info) -> Result<()> {
        if !self.schema.docs[doc].connect_feature(name) && self.mode == Rules::Strict {
            return Err(Self::err(
                info,
                format!("feature '{name}' is not described in the documentation comment"),
            ));
        }
        Ok(())
    }

    // ----------------------------------------------------------------
    // Modules

    fn assign_modules(&mut self, includes: Vec<(usize, ModuleId, Span)>) {
        let mut file_module: HashMap<crate::source::FileId, ModuleId> = HashMap::new();
        let files: Vec<(crate::source::FileId, String)> = self
            .schema
            .sources
            .files()
            .map(|(id, f)| (id, f.name.clone()))
            .collect();
        for (id, name) in files {
            let m = self.make_module(self.module_name(&name));
            file_module.insert(id, m);
        }
        let module_of_span = |s: Option<Span>| s.map_or(ModuleId(0), |s| file_module[&s.file]);
        let mut includes = includes.into_iter().peekable();
        for i in 0..self.schema.entities.len() {
            while let Some((_, module, span)) = includes.next_if(|(at, _, _)| *at <= i) {
                let from = module_of_span(Some(span));
                self.schema.modules[from.0 as usize]
                    .items
                    .push(ModuleItem::Include { module, span });
            }
            let e = &self.schema.entities[i];
            let module = match &e.kind {
                EntityKind::Array(a) => {
                    module_of_span(self.schema.entities[a.element.index()].span)
                }
                _ => module_of_span(e.span),
            };
            self.schema.entities[i].module = module;
            self.schema.modules[module.0 as usize]
                .items
                .push(ModuleItem::Entity(EntityId::at(i)));
        }
        for (_, module, span) in includes {
            let from = module_of_span(Some(span));
            self.schema.modules[from.0 as usize]
                .items
                .push(ModuleItem::Include { module, span });
        }
    }
}
