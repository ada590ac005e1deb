//! Checks of each definition on its own (QEMU's `expr.py`): keys, names,
//! flags, conditions and features.  The result is a typed definition,
//! still referring to other types by name.

use crate::diag::{Context, Diagnostic, Result};
use crate::doc::Doc;
use crate::reader::Pragma;
use crate::source::Span;
use crate::syntax::{Member, Node, Value};
use crate::Rules;

/// An `if` condition.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IfCond {
    /// A configuration symbol, e.g. `CONFIG_LINUX`.
    Name(String),
    All(Vec<IfCond>),
    Any(Vec<IfCond>),
    Not(Box<IfCond>),
}

impl IfCond {
    /// The condition as Python prints it (`str()`), which is how QEMU's
    /// test dump shows it.
    pub fn to_python_str(&self) -> String {
        match self {
            IfCond::Name(n) => n.clone(),
            _ => self.to_python_repr(),
        }
    }

    fn to_python_repr(&self) -> String {
        match self {
            IfCond::Name(n) => format!("'{n}'"),
            IfCond::Not(c) => format!("{{'not': {}}}", c.to_python_repr()),
            IfCond::All(v) | IfCond::Any(v) => {
                let op = if matches!(self, IfCond::All(_)) {
                    "all"
                } else {
                    "any"
                };
                let parts: Vec<String> = v.iter().map(IfCond::to_python_repr).collect();
                format!("{{'{op}': [{}]}}", parts.join(", "))
            }
        }
    }

    /// Evaluate the condition against a set of defined symbols.
    pub fn eval(&self, defined: &dyn Fn(&str) -> bool) -> bool {
        match self {
            IfCond::Name(n) => defined(n),
            IfCond::All(v) => v.iter().all(|c| c.eval(defined)),
            IfCond::Any(v) => v.iter().any(|c| c.eval(defined)),
            IfCond::Not(c) => !c.eval(defined),
        }
    }
}

/// A feature as written on a definition, member or enum value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureDef {
    pub name: String,
    pub cond: Option<IfCond>,
}

/// A type as a member refers to it: `'T'` or `['T']`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TypeRef {
    Named(String),
    Array(String),
}

#[derive(Clone, Debug)]
pub(crate) struct MemberDef {
    pub name: String,
    pub optional: bool,
    pub ty: TypeRef,
    pub cond: Option<IfCond>,
    pub features: Vec<FeatureDef>,
}

#[derive(Clone, Debug)]
pub(crate) struct EnumValueDef {
    pub name: String,
    pub cond: Option<IfCond>,
    pub features: Vec<FeatureDef>,
}

#[derive(Clone, Debug)]
pub(crate) struct BranchDef {
    pub name: String,
    pub ty: TypeRef,
    pub cond: Option<IfCond>,
}

/// A type name, or members written in place.
#[derive(Clone, Debug)]
pub(crate) enum Members {
    Named(String),
    Inline(Vec<MemberDef>),
}

#[derive(Clone, Debug)]
pub(crate) enum DefKind {
    Enum {
        values: Vec<EnumValueDef>,
        prefix: Option<String>,
    },
    Struct {
        base: Option<String>,
        members: Vec<MemberDef>,
    },
    Union {
        base: Members,
        discriminator: String,
        branches: Vec<BranchDef>,
    },
    /// A union without base or discriminator, as QEMU wrote them before
    /// 6.2 (legacy language only): `{'type': 'BRANCH', 'data': VALUE}`
    /// on the wire.
    SimpleUnion {
        branches: Vec<BranchDef>,
    },
    Alternate {
        branches: Vec<BranchDef>,
    },
    Command {
        data: Option<Members>,
        returns: Option<TypeRef>,
        boxed: bool,
        gen: bool,
        success_response: bool,
        allow_oob: bool,
        allow_preconfig: bool,
        coroutine: bool,
    },
    Event {
        data: Option<Members>,
        boxed: bool,
    },
}

/// A checked definition.
#[derive(Clone, Debug)]
pub(crate) struct Def {
    pub name: String,
    pub span: Span,
    pub context: Context,
    pub doc: Option<usize>,
    pub cond: Option<IfCond>,
    pub features: Vec<FeatureDef>,
    pub kind: DefKind,
}

const METAS: [&str; 6] = ["enum", "struct", "union", "alternate", "command", "event"];

/// QEMU's `c_name(name, protect=False)`: every character other than an
/// ASCII letter, digit or `_` becomes `_`.
pub(crate) fn c_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The stem of a valid QAPI name (without `__vendor_` and `x-`), or
/// `None` when the name is not valid.
fn name_stem(name: &str) -> Option<&str> {
    fn stem_ok(s: &str) -> bool {
        let mut cs = s.chars();
        cs.next().is_some_and(|c| c.is_ascii_alphabetic())
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }
    let mut rest = name;
    if let Some(after) = rest.strip_prefix("__") {
        let n = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
            .count();
        if n == 0 || !after[n..].starts_with('_') {
            return None;
        }
        rest = &after[n + 1..];
    }
    if rest.len() > 2 && rest[..2].eq_ignore_ascii_case("x-") && stem_ok(&rest[2..]) {
        rest = &rest[2..];
    }
    if !stem_ok(rest) || c_name(name).starts_with("q_") {
        return None;
    }
    Some(rest)
}

/// QEMU reserves member names whose C name is `u` or starts with `has_`.
fn is_reserved_member_name(name: &str) -> bool {
    let c = |b: u8| {
        if b.is_ascii_alphanumeric() || b == b'_' {
            b
        } else {
            b'_'
        }
    };
    name == "u" || (name.len() >= 4 && name.bytes().take(4).map(c).eq(*b"has_"))
}

/// A configuration symbol: upper case, digits and `_`.
fn is_config_symbol(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next().is_some_and(|c| c.is_ascii_uppercase())
        && cs.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A condition as QEMU wrote it before 6.2: C preprocessor text such as
/// `defined(CONFIG_A) && !defined(CONFIG_B)`, with `||`, `&&`, `!` and
/// parentheses.  `None` when it is anything else.
fn c_condition(text: &str) -> Option<IfCond> {
    struct P<'t> {
        s: &'t str,
        /// Nesting, bounded like every other nesting in the reader.
        depth: u32,
    }
    impl P<'_> {
        fn eat(&mut self, tok: &str) -> bool {
            self.s = self.s.trim_start();
            match self.s.strip_prefix(tok) {
                Some(rest) => {
                    self.s = rest;
                    true
                }
                None => false,
            }
        }
        /// `next (op next)*`: one operand alone, or `make` of them all.
        fn chain(
            &mut self,
            op: &str,
            next: fn(&mut Self) -> Option<IfCond>,
            make: fn(Vec<IfCond>) -> IfCond,
        ) -> Option<IfCond> {
            let mut v = vec![next(self)?];
            while self.eat(op) {
                v.push(next(self)?);
            }
            Some(if v.len() == 1 { v.remove(0) } else { make(v) })
        }
        fn any(&mut self) -> Option<IfCond> {
            self.chain("||", Self::all, IfCond::Any)
        }
        fn all(&mut self) -> Option<IfCond> {
            self.chain("&&", Self::unary, IfCond::All)
        }
        fn unary(&mut self) -> Option<IfCond> {
            self.depth += 1;
            if self.depth > 64 {
                return None;
            }
            let r = if self.eat("!") {
                self.unary().map(|c| IfCond::Not(Box::new(c)))
            } else if self.eat("(") {
                let c = self.any()?;
                self.eat(")").then_some(c)
            } else if self.eat("defined") {
                let paren = self.eat("(");
                self.s = self.s.trim_start();
                let n = self
                    .s
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                let (sym, rest) = self.s.split_at(n);
                self.s = rest;
                (is_config_symbol(sym) && (!paren || self.eat(")")))
                    .then(|| IfCond::Name(sym.to_string()))
            } else {
                None
            };
            self.depth -= 1;
            r
        }
    }
    let mut p = P { s: text, depth: 0 };
    let c = p.any()?;
    p.s.trim().is_empty().then_some(c)
}

fn truthy(node: &Node) -> bool {
    match &node.value {
        Value::Str(s) => !s.is_empty(),
        Value::Bool(b) => *b,
        Value::Array(v) => !v.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn kind_of(node: &Node) -> &'static str {
    match node.value {
        Value::Str(_) => "a string",
        Value::Bool(_) => "a boolean",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks one definition at a time.
pub(crate) struct Checker<'a> {
    pragma: &'a Pragma,
    /// Also accept the language of QEMU releases before 6.2 (see
    /// [`crate::Rules::Lenient`]).
    legacy: bool,
    span: Span,
    context: Option<Context>,
}

impl<'a> Checker<'a> {
    fn err(&self, msg: impl Into<String>) -> Box<Diagnostic> {
        Diagnostic::at_line(self.span, self.context.clone(), msg)
    }

    fn name_str<'n>(&self, name: &'n str, what: &dyn Fn() -> String) -> Result<&'n str> {
        name_stem(name).ok_or_else(|| {
            self.err(format!(
                "{}: '{name}' is not a valid name (letters, digits, '-' and '_', starting with a letter; optional '__vendor_' and 'x-' prefixes)",
                what()
            ))
        })
    }

    fn name_lower(
        &self,
        name: &str,
        what: &dyn Fn() -> String,
        upper_ok: bool,
        underscore_ok: bool,
    ) -> Result<()> {
        let stem = self.name_str(name, what)?;
        if (!upper_ok && stem.bytes().any(|c| c.is_ascii_uppercase()))
            || (!underscore_ok && !self.legacy && stem.contains('_'))
        {
            return Err(self.err(format!(
                "{}: '{name}' must be lower case with '-' between words (no upper case, no '_')",
                what()
            )));
        }
        Ok(())
    }

    fn keys(
        &self,
        members: &[Member],
        what: &str,
        required: &[&str],
        optional: &[&str],
    ) -> Result<()> {
        let all_there = required.iter().all(|k| members.iter().any(|m| m.key == *k));
        let none_unknown = members
            .iter()
            .all(|m| required.contains(&m.key.as_str()) || optional.contains(&m.key.as_str()));
        if all_there && none_unknown {
            return Ok(());
        }
        let mut missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|k| !members.iter().any(|m| m.key == *k))
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            let list: Vec<String> = missing.iter().map(|k| format!("'{k}'")).collect();
            return Err(self.err(format!(
                "{what} lacks the key{} {}",
                if missing.len() > 1 { "s" } else { "" },
                list.join(", ")
            )));
        }
        let mut unknown: Vec<&str> = members
            .iter()
            .map(|m| m.key.as_str())
            .filter(|k| !required.contains(k) && !optional.contains(k))
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            let mut allowed: Vec<&str> = required.iter().chain(optional).copied().collect();
            allowed.sort_unstable();
            let list: Vec<String> = unknown.iter().map(|k| format!("'{k}'")).collect();
            let allowed: Vec<String> = allowed.iter().map(|k| format!("'{k}'")).collect();
            return Err(self.err(format!(
                "{what} has the unknown key{} {} (allowed: {})",
                if unknown.len() > 1 { "s" } else { "" },
                list.join(", "),
                allowed.join(", ")
            )));
        }
        Ok(())
    }

    /// An object's members, or an error naming what was given instead.
    fn object<'n>(&self, node: &'n Node, what: &str) -> Result<&'n [Member]> {
        node.as_object()
            .ok_or_else(|| self.err(format!("{what} must be an object, not {}", kind_of(node))))
    }

    fn cond(&self, holder: &[Member], what: &str) -> Result<Option<IfCond>> {
        match holder.iter().find(|m| m.key == "if") {
            None => Ok(None),
            Some(m) => self.cond_value(&m.value, what).map(Some),
        }
    }

    fn cond_value(&self, node: &Node, what: &str) -> Result<IfCond> {
        match &node.value {
            // Before 6.2 a condition was C preprocessor text, and a list
            // of them meant all of them.
            Value::Str(s) if self.legacy && !is_config_symbol(s) => {
                c_condition(s).ok_or_else(|| {
                    self.err(format!(
                        "'if' condition '{s}' of {what} is neither a configuration symbol nor a C condition of defined(SYMBOL), '!', '&&', '||' and parentheses"
                    ))
                })
            }
            Value::Array(items) if self.legacy => {
                if items.is_empty() {
                    return Err(self.err(format!("the 'if' condition [] of {what} is useless")));
                }
                let mut conds = items
                    .iter()
                    .map(|i| match i.value {
                        Value::Str(_) => self.cond_value(i, what),
                        _ => Err(self.err(format!(
                            "the 'if' condition of {what} must be a string or a list of strings"
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(if conds.len() == 1 {
                    conds.remove(0)
                } else {
                    IfCond::All(conds)
                })
            }
            Value::Str(s) => {
                if !is_config_symbol(s) {
                    return Err(self.err(format!(
                        "'if' condition '{s}' of {what} is not a valid configuration symbol (upper case, digits and '_')"
                    )));
                }
                Ok(IfCond::Name(s.clone()))
            }
            Value::Object(members) => {
                let src = format!("'if' condition of {what}");
                self.keys(members, &src, &[], &["all", "any", "not"])?;
                if members.len() != 1 {
                    return Err(self.err(format!(
                        "{src} must have exactly one of 'all', 'any' or 'not'"
                    )));
                }
                let m = &members[0];
                if m.key == "not" {
                    return Ok(IfCond::Not(Box::new(self.cond_value(&m.value, what)?)));
                }
                let Value::Array(operands) = &m.value.value else {
                    return Err(self.err(format!(
                        "'{}' in the 'if' condition of {what} takes an array",
                        m.key
                    )));
                };
                if operands.is_empty() {
                    return Err(self.err(format!(
                        "'{}' in the 'if' condition of {what} has no operands",
                        m.key
                    )));
                }
                let conds = operands
                    .iter()
                    .map(|o| self.cond_value(o, what))
                    .collect::<Result<Vec<_>>>()?;
                Ok(if m.key == "all" {
                    IfCond::All(conds)
                } else {
                    IfCond::Any(conds)
                })
            }
            _ => Err(self.err(format!(
                "the 'if' condition of {what} must be a string or an object"
            ))),
        }
    }

    fn features(&self, holder: &[Member]) -> Result<Vec<FeatureDef>> {
        let Some(m) = holder.iter().find(|m| m.key == "features") else {
            return Ok(Vec::new());
        };
        let Value::Array(list) = &m.value.value else {
            return Err(self.err("'features' must be an array"));
        };
        let mut out = Vec::new();
        for f in list {
            let what = "a member of 'features'";
            let (name_node, cond_holder): (&Node, &[Member]) = match &f.value {
                Value::Object(ms) => {
                    self.keys(ms, what, &["name"], &["if"])?;
                    (
                        &ms.iter().find(|m| m.key == "name").expect("checked").value,
                        ms,
                    )
                }
                _ => (f, &[]),
            };
            let Some(name) = name_node.as_str() else {
                return Err(self.err(format!("{what} needs a string name")));
            };
            let what = || format!("feature '{name}'");
            self.name_lower(name, &what, false, false)?;
            let cond = if cond_holder.is_empty() {
                None
            } else {
                self.cond(cond_holder, &what())?
            };
            out.push(FeatureDef {
                name: name.to_string(),
                cond,
            });
        }
        Ok(out)
    }

    /// Members written in place (`'data': { ... }`).
    fn implicit_members(
        &self,
        node: &Node,
        what: &str,
        parent: Option<&str>,
    ) -> Result<Vec<MemberDef>> {
        let members = self.object(node, what)?;
        let permissive =
            parent.is_some_and(|p| self.pragma.member_name_exceptions.iter().any(|e| e == p));
        let mut out = Vec::new();
        for m in members {
            let key_what = || format!("{what} member '{}'", m.key);
            let (name, optional) = match m.key.strip_prefix('*') {
                Some(n) => (n, true),
                None => (m.key.as_str(), false),
            };
            self.name_lower(name, &key_what, permissive, permissive)?;
            if is_reserved_member_name(name) {
                return Err(self.err(format!(
                    "{}: the name is reserved (it clashes with generated C code)",
                    key_what()
                )));
            }
            let (ty_node, holder): (&Node, &[Member]) = match &m.value.value {
                Value::Object(ms) => {
                    self.keys(ms, &key_what(), &["type"], &["if", "features"])?;
                    (
                        &ms.iter().find(|x| x.key == "type").expect("checked").value,
                        ms,
                    )
                }
                _ => (&m.value, &[]),
            };
            let (cond, features) = if holder.is_empty() {
                (None, Vec::new())
            } else {
                (self.cond(holder, &key_what())?, self.features(holder)?)
            };
            let ty = match &ty_node.value {
                Value::Str(s) => TypeRef::Named(s.clone()),
                _ => self.type_name_or_array(ty_node, &key_what())?,
            };
            out.push(MemberDef {
                name: name.to_string(),
                optional,
                ty,
                cond,
                features,
            });
        }
        Ok(out)
    }

    fn type_name(&self, node: &Node, what: &str) -> Result<String> {
        node.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.err(format!("{what} must be a type name, not {}", kind_of(node))))
    }

    fn type_name_or_array(&self, node: &Node, what: &str) -> Result<TypeRef> {
        match &node.value {
            Value::Str(s) => Ok(TypeRef::Named(s.clone())),
            Value::Array(items) => match items.as_slice() {
                [one] => match one.as_str() {
                    Some(s) => Ok(TypeRef::Array(s.to_string())),
                    None => Err(self.err(format!("{what}: an array type is written ['TypeName']"))),
                },
                _ => Err(self.err(format!(
                    "{what}: an array type is written ['TypeName'], with one name"
                ))),
            },
            _ => Err(self.err(format!(
                "{what} must be a type name or an array type, not {}",
                kind_of(node)
            ))),
        }
    }

    fn name_or_implicit(&self, node: &Node, what: &str, parent: Option<&str>) -> Result<Members> {
        match &node.value {
            Value::Str(s) => Ok(Members::Named(s.clone())),
            Value::Object(_) => Ok(Members::Inline(self.implicit_members(node, what, parent)?)),
            _ => Err(self.err(format!(
                "{what} must be an object or a type name, not {}",
                kind_of(node)
            ))),
        }
    }

    /// Union and alternate branches: `'name': 'T'` or `{'type': 'T', 'if': …}`.
    fn branches(
        &self,
        node: &Node,
        arrays_ok: bool,
        names_checked: bool,
    ) -> Result<Vec<BranchDef>> {
        let members = self.object(node, "'data'")?;
        let mut out = Vec::new();
        for m in members {
            let what = || format!("branch '{}'", m.key);
            if names_checked {
                self.name_lower(&m.key, &what, false, false)?;
            }
            let (ty_node, holder): (&Node, &[Member]) = match &m.value.value {
                Value::Object(ms) => {
                    self.keys(ms, &what(), &["type"], &["if"])?;
                    (
                        &ms.iter().find(|x| x.key == "type").expect("checked").value,
                        ms,
                    )
                }
                _ => (&m.value, &[]),
            };
            let cond = if holder.is_empty() {
                None
            } else {
                self.cond(holder, &what())?
            };
            let ty = match (&ty_node.value, arrays_ok) {
                (Value::Str(s), _) => TypeRef::Named(s.clone()),
                (_, true) => self.type_name_or_array(ty_node, &what())?,
                (_, false) => TypeRef::Named(self.type_name(ty_node, &what())?),
            };
            out.push(BranchDef {
                name: m.key.clone(),
                ty,
                cond,
            });
        }
        Ok(out)
    }
}

/// The value of the key `key` of a definition (or of any object).
fn get<'n>(members: &'n [Member], key: &str) -> Option<&'n Node> {
    members.iter().find(|m| m.key == key).map(|m| &m.value)
}

/// Check one top-level definition, as QEMU's `check_exprs` checks one
/// expression: its meta key and name, its documentation, then the keys
/// and values of its kind ([`Checker::check_enum`] and the others), its
/// `if` condition, its features and its flags.  QEMU stops at the first
/// problem, so this order decides which one a bad schema reports.
pub(crate) fn check_definition(
    node: &Node,
    doc: Option<(usize, &Doc)>,
    pragma: &Pragma,
    rules: Rules,
) -> Result<Def> {
    let mut ck = Checker {
        pragma,
        legacy: rules == Rules::Lenient,
        span: node.span.at_start(),
        context: None,
    };
    let members = node.as_object().expect("top-level values are objects");
    let (meta, name) = ck.check_meta(members)?;
    ck.check_defn_name(&meta, &name)?;
    ck.check_doc(doc.map(|(_, d)| d), &meta, &name, members, rules)?;
    let kind = match meta.as_str() {
        "enum" => ck.check_enum(members, &name)?,
        "union" => ck.check_union(members, &name)?,
        "alternate" => ck.check_alternate(members)?,
        "struct" => ck.check_struct(members, &name)?,
        "command" => ck.check_command(members)?,
        "event" => ck.check_event(members)?,
        _ => unreachable!("meta checked above"),
    };
    let cond = ck.cond(members, &meta)?;
    let features = ck.features(members)?;
    ck.check_flags(members)?;
    let context = ck.context.clone().expect("set by check_meta");
    Ok(Def {
        name,
        span: ck.span,
        context,
        doc: doc.map(|(i, _)| i),
        cond,
        features,
        kind,
    })
}

/// The checks [`check_definition`] makes, one kind of definition or one
/// concern each, in the order it makes them.
impl Checker<'_> {
    /// The one meta key (`enum`, `struct`, …) and the name it gives;
    /// from here on, errors say which definition they are in.
    fn check_meta(&mut self, members: &[Member]) -> Result<(String, String)> {
        let metas: Vec<&Member> = members
            .iter()
            .filter(|m| METAS.contains(&m.key.as_str()))
            .collect();
        if metas.len() != 1 {
            return Err(self.err(
                "a definition needs exactly one of the keys 'enum', 'struct', 'union', 'alternate', 'command', 'event'",
            ));
        }
        let meta = metas[0].key.clone();
        let Some(name) = metas[0].value.as_str().map(str::to_string) else {
            return Err(self.err(format!("'{meta}' needs a string name")));
        };
        self.context = Some(Context {
            meta: meta.clone(),
            name: name.clone(),
        });
        Ok((meta, name))
    }

    /// The definition's own name (QEMU's `check_defn_name_str`).  Before
    /// 6.0 it only had to be a valid name, in any case.
    fn check_defn_name(&self, meta: &str, name: &str) -> Result<()> {
        let list_suffix = || {
            self.err(format!(
                "type name '{name}' must not end in 'List' (that suffix names array types)"
            ))
        };
        match meta {
            _ if self.legacy => {
                self.name_str(name, &|| meta.to_string())?;
                if name.ends_with("List") {
                    return Err(list_suffix());
                }
            }
            "event" => {
                let stem = self.name_str(name, &|| "event".to_string())?;
                if stem.chars().any(|c| c.is_ascii_lowercase() || c == '-') {
                    return Err(self.err(format!(
                        "event name '{name}' must be upper case with '_' between words"
                    )));
                }
            }
            "command" => {
                let underscore_ok = self
                    .pragma
                    .command_name_exceptions
                    .iter()
                    .any(|e| e == name);
                self.name_lower(name, &|| "command".to_string(), false, underscore_ok)?;
            }
            _ => {
                let stem = self.name_str(name, &|| meta.to_string())?;
                let mut cs = stem.chars();
                let camel = cs.next().is_some_and(|c| c.is_ascii_uppercase())
                    && stem.chars().all(|c| c.is_ascii_alphanumeric())
                    && stem[1..].chars().any(|c| c.is_ascii_lowercase());
                if !camel {
                    return Err(self.err(format!(
                        "type name '{name}' must be CamelCase (upper-case first letter, a lower-case letter somewhere, no '-' or '_')"
                    )));
                }
                if name.ends_with("List") {
                    return Err(list_suffix());
                }
            }
        }
        Ok(())
    }

    /// The documentation block before the definition: for it, and (by
    /// the strict rules) with `Returns:` and `Errors:` only where they
    /// belong (QEMU's `QAPIDoc.check_expr`); or none, unless the pragma
    /// `doc-required` asks for one.
    fn check_doc(
        &self,
        doc: Option<&Doc>,
        meta: &str,
        name: &str,
        members: &[Member],
        rules: Rules,
    ) -> Result<()> {
        let Some(d) = doc else {
            if self.pragma.doc_required {
                return Err(self
                    .err("this definition needs a documentation comment (pragma 'doc-required')"));
            }
            return Ok(());
        };
        if d.symbol.as_deref() != Some(name) {
            return Err(self.err(format!(
                "the documentation before this definition is for '{}'",
                d.symbol.as_deref().unwrap_or("")
            )));
        }
        if rules == Rules::Lenient {
            return Ok(());
        }
        if meta == "command" {
            if let Some(r) = d.returns() {
                if get(members, "returns").is_none() {
                    return Err(Diagnostic::at_line(
                        r.span,
                        None,
                        "'Returns:' section, but the command returns nothing",
                    ));
                }
            }
            return Ok(());
        }
        if let Some(r) = d.returns() {
            return Err(Diagnostic::at_line(
                r.span,
                None,
                "'Returns:' sections are only for commands",
            ));
        }
        if let Some(e) = d.errors() {
            return Err(Diagnostic::at_line(
                e.span,
                None,
                "'Errors:' sections are only for commands",
            ));
        }
        Ok(())
    }

    fn check_enum(&self, members: &[Member], name: &str) -> Result<DefKind> {
        self.keys(
            members,
            "an enum",
            &["enum", "data"],
            &["if", "features", "prefix"],
        )?;
        let permissive = self.pragma.member_name_exceptions.iter().any(|e| e == name);
        let data = get(members, "data").expect("checked");
        let Value::Array(values) = &data.value else {
            return Err(self.err(format!(
                "an enum's 'data' must be an array, not {}",
                kind_of(data)
            )));
        };
        let prefix = match get(members, "prefix") {
            None => None,
            Some(p) => Some(
                p.as_str()
                    .ok_or_else(|| self.err("an enum's 'prefix' must be a string"))?
                    .to_string(),
            ),
        };
        let mut out = Vec::new();
        for v in values {
            let (name_node, holder): (&Node, &[Member]) = match &v.value {
                Value::Object(ms) => {
                    self.keys(ms, "a value in 'data'", &["name"], &["if", "features"])?;
                    (get(ms, "name").expect("checked"), ms)
                }
                _ => (v, &[]),
            };
            let Some(vname) = name_node.as_str() else {
                return Err(self.err("a value in 'data' needs a string name"));
            };
            let what = || format!("enum value '{vname}'");
            // Enum values may start with a digit.
            if vname.starts_with(|c: char| c.is_ascii_digit()) {
                self.name_lower(&format!("d{vname}"), &what, permissive, permissive)?;
            } else {
                self.name_lower(vname, &what, permissive, permissive)?;
            }
            let (cond, features) = if holder.is_empty() {
                (None, Vec::new())
            } else {
                (self.cond(holder, &what())?, self.features(holder)?)
            };
            out.push(EnumValueDef {
                name: vname.to_string(),
                cond,
                features,
            });
        }
        Ok(DefKind::Enum {
            values: out,
            prefix,
        })
    }

    /// A union; in the legacy language, one without base and
    /// discriminator is a simple union.
    fn check_union(&self, members: &[Member], name: &str) -> Result<DefKind> {
        if self.legacy && get(members, "discriminator").is_none() && get(members, "base").is_none()
        {
            self.keys(members, "a union", &["union", "data"], &["if", "features"])?;
            let branches = self.branches(get(members, "data").expect("checked"), true, true)?;
            return Ok(DefKind::SimpleUnion { branches });
        }
        self.keys(
            members,
            "a union",
            &["union", "base", "discriminator", "data"],
            &["if", "features"],
        )?;
        let base = get(members, "base").expect("checked");
        let base = self.name_or_implicit(base, "'base'", Some(name))?;
        let disc = get(members, "discriminator").expect("checked");
        let Some(discriminator) = disc.as_str().map(str::to_string) else {
            return Err(self.err("'discriminator' must be a member name (a string)"));
        };
        let branches = self.branches(get(members, "data").expect("checked"), false, false)?;
        Ok(DefKind::Union {
            base,
            discriminator,
            branches,
        })
    }

    fn check_alternate(&self, members: &[Member]) -> Result<DefKind> {
        self.keys(
            members,
            "an alternate",
            &["alternate", "data"],
            &["if", "features"],
        )?;
        let data = get(members, "data").expect("checked");
        if !truthy(data) {
            return Err(self.err("an alternate's 'data' must not be empty"));
        }
        let branches = self.branches(data, true, true)?;
        Ok(DefKind::Alternate { branches })
    }

    fn check_struct(&self, members: &[Member], name: &str) -> Result<DefKind> {
        self.keys(
            members,
            "a struct",
            &["struct", "data"],
            &["base", "if", "features"],
        )?;
        let data = get(members, "data").expect("checked");
        let data = self.implicit_members(data, "'data'", Some(name))?;
        let base = match get(members, "base") {
            None => None,
            Some(b) => Some(self.type_name(b, "'base'")?),
        };
        Ok(DefKind::Struct {
            base,
            members: data,
        })
    }

    /// A command.  Its flags are read here and checked later
    /// ([`Self::check_flags`]), as QEMU does.
    fn check_command(&self, members: &[Member]) -> Result<DefKind> {
        self.keys(
            members,
            "a command",
            &["command"],
            &[
                "data",
                "returns",
                "boxed",
                "if",
                "features",
                "gen",
                "success-response",
                "allow-oob",
                "allow-preconfig",
                "coroutine",
            ],
        )?;
        let (data, boxed) = self.arguments(members)?;
        let returns = match get(members, "returns") {
            None => None,
            Some(r) => Some(self.type_name_or_array(r, "'returns'")?),
        };
        let has = |key| get(members, key).is_some();
        Ok(DefKind::Command {
            data,
            returns,
            boxed,
            gen: !has("gen"),
            success_response: !has("success-response"),
            allow_oob: has("allow-oob"),
            allow_preconfig: has("allow-preconfig"),
            coroutine: has("coroutine"),
        })
    }

    fn check_event(&self, members: &[Member]) -> Result<DefKind> {
        self.keys(
            members,
            "an event",
            &["event"],
            &["data", "boxed", "if", "features"],
        )?;
        let (data, boxed) = self.arguments(members)?;
        Ok(DefKind::Event { data, boxed })
    }

    /// A command's or event's `data` and `boxed`: a type name when boxed,
    /// else a type name or members written in place.
    fn arguments(&self, members: &[Member]) -> Result<(Option<Members>, bool)> {
        let boxed = get(members, "boxed").is_some_and(truthy);
        let data = match get(members, "data") {
            None if boxed => return Err(self.err("'boxed': true needs 'data' (a type name)")),
            None => None,
            Some(d) if boxed => Some(Members::Named(self.type_name(d, "'data'")?)),
            Some(d) => Some(self.name_or_implicit(d, "'data'", None)?),
        };
        Ok((data, boxed))
    }

    /// The flags' values (QEMU's `check_flags`): each can only be the
    /// opposite of its default.
    fn check_flags(&self, members: &[Member]) -> Result<()> {
        for key in ["gen", "success-response"] {
            if let Some(v) = get(members, key) {
                if v.value != Value::Bool(false) {
                    return Err(self.err(format!("flag '{key}' can only be false")));
                }
            }
        }
        for key in ["boxed", "allow-oob", "allow-preconfig", "coroutine"] {
            if let Some(v) = get(members, key) {
                if v.value != Value::Bool(true) {
                    return Err(self.err(format!("flag '{key}' can only be true")));
                }
            }
        }
        if get(members, "allow-oob").is_some() && get(members, "coroutine").is_some() {
            return Err(self.err("a command cannot be both 'allow-oob' and 'coroutine'"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_qemu_rules() {
        assert_eq!(name_stem("foo-bar"), Some("foo-bar"));
        assert_eq!(name_stem("x-foo"), Some("foo"));
        assert_eq!(name_stem("__org.qemu_x-foo"), Some("foo"));
        assert_eq!(name_stem("x-1a"), Some("x-1a"));
        assert_eq!(name_stem("__foo"), None);
        assert_eq!(name_stem("q_foo"), None);
        assert_eq!(name_stem("q-foo"), None);
        assert_eq!(name_stem("1a"), None);
        assert_eq!(name_stem(""), None);
    }

    #[test]
    fn conditions_print_like_python() {
        let c = IfCond::All(vec![
            IfCond::Name("A".into()),
            IfCond::Not(Box::new(IfCond::Name("B".into()))),
        ]);
        assert_eq!(c.to_python_str(), "{'all': ['A', {'not': 'B'}]}");
        assert_eq!(IfCond::Name("A".into()).to_python_str(), "A");
    }
}
