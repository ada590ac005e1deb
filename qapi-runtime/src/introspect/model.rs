//! The model: a `query-qmp-schema` answer read into typed entities,
//! keyed by name, and the lookups every reader of it needs.

use std::collections::HashMap;

use serde_json::Value;

/// A `query-qmp-schema` answer (QEMU's `[SchemaInfo]`): its entities in
/// the answer's order, keyed by name.  Names of types are masked
/// (`"0"`, `"1"`, …) in a live QEMU's answer; commands and events keep
/// theirs.
///
/// [`Schema::from_value`] reads an answer and checks that every type it
/// names is described; [`Schema::parse`] only reads it.  The lookups
/// never panic: a type that is not described is `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schema {
    entities: Vec<Entity>,
    index: HashMap<String, usize>,
}

/// One `SchemaInfo`: a name, features, and what it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Entity {
    /// The name: a command's or event's own, a builtin's (`int`,
    /// `str`, …), a type's masked number or `[T]` array name.
    pub name: String,
    /// Its features (`deprecated`, `unstable`, and others).
    pub features: Vec<String>,
    /// What it is (QEMU's `meta-type` and the members that go with it).
    pub kind: Kind,
}

/// What an entity is, by its `meta-type`.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Builtin(BuiltinInfo),
    Enum(EnumInfo),
    Array(ArrayInfo),
    Object(ObjectInfo),
    Alternate(AlternateInfo),
    Command(CommandInfo),
    Event(EventInfo),
}

/// `SchemaInfoBuiltin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltinInfo {
    /// The JSON type: `string`, `number`, `int`, `boolean`, `null`,
    /// `value` (QEMU's `any`), …
    pub json_type: String,
}

/// `SchemaInfoEnum`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumInfo {
    /// The values, with their features (QEMU 6.2's `members`; read from
    /// `values` for older releases, without features).
    pub members: Vec<EnumMember>,
}

/// An enum value (`SchemaInfoEnumMember`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumMember {
    pub name: String,
    pub features: Vec<String>,
}

/// `SchemaInfoArray`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayInfo {
    /// The elements' type.
    pub element_type: String,
}

/// `SchemaInfoObject`: a struct, or a union with its tag and variants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The members, in order (a union's common members, the tag among
    /// them).
    pub members: Vec<Member>,
    /// A union's discriminator: the name of one of `members`.
    pub tag: Option<String>,
    /// A union's branches with members of their own.
    pub variants: Vec<Variant>,
}

/// An object's member (`SchemaInfoObjectMember`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// The member's type (`type`).
    pub ty: String,
    /// Whether it may be left out (it has a `default`, always `null`).
    pub optional: bool,
    pub features: Vec<String>,
}

/// A union's branch (`SchemaInfoObjectVariant`): the tag's value and the
/// object type whose members the branch adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub case: String,
    pub ty: String,
}

/// `SchemaInfoAlternate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlternateInfo {
    /// The branches' types (the `type` of each member), in order.
    pub branches: Vec<String>,
}

/// `SchemaInfoCommand`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandInfo {
    /// The arguments' type (an object).
    pub arg_type: String,
    /// The return type.
    pub ret_type: String,
    /// Whether `exec-oob` may run it.
    pub allow_oob: bool,
}

/// `SchemaInfoEvent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventInfo {
    /// The data's type (an object).
    pub arg_type: String,
}

/// The JSON type of a value, in `json-type`'s words.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl BuiltinInfo {
    /// Whether a value of this builtin type may be `v`: any value for
    /// `value`, an integer or not for `number`, else `v`'s own JSON type.
    pub fn takes(&self, v: &Value) -> bool {
        match self.json_type.as_str() {
            "value" => true,
            "number" => v.is_number(),
            j => j == json_kind(v),
        }
    }
}

impl Kind {
    /// QEMU's `meta-type`.
    pub fn meta_type(&self) -> &'static str {
        match self {
            Kind::Builtin(_) => "builtin",
            Kind::Enum(_) => "enum",
            Kind::Array(_) => "array",
            Kind::Object(_) => "object",
            Kind::Alternate(_) => "alternate",
            Kind::Command(_) => "command",
            Kind::Event(_) => "event",
        }
    }

    /// Whether this is a type (not a command or event).
    pub fn is_type(&self) -> bool {
        !matches!(self, Kind::Command(_) | Kind::Event(_))
    }

    /// The JSON type a value of this type has: a builtin's `json-type`,
    /// `string` for an enum, `object`, `array`; `None` for an alternate
    /// (its branches have theirs), a command or an event.
    pub fn json_type(&self) -> Option<&str> {
        match self {
            Kind::Builtin(b) => Some(&b.json_type),
            Kind::Enum(_) => Some("string"),
            Kind::Object(_) => Some("object"),
            Kind::Array(_) => Some("array"),
            _ => None,
        }
    }

    /// The types this one names (members', branches', elements', a
    /// command's or event's), in order.
    pub fn references(&self) -> Vec<&str> {
        match self {
            Kind::Builtin(_) | Kind::Enum(_) => Vec::new(),
            Kind::Array(a) => vec![&a.element_type],
            Kind::Object(o) => o
                .members
                .iter()
                .map(|m| m.ty.as_str())
                .chain(o.variants.iter().map(|v| v.ty.as_str()))
                .collect(),
            Kind::Alternate(a) => a.branches.iter().map(String::as_str).collect(),
            Kind::Command(c) => vec![&c.arg_type, &c.ret_type],
            Kind::Event(e) => vec![&e.arg_type],
        }
    }
}

impl EnumInfo {
    /// The value `name`.
    pub fn member(&self, name: &str) -> Option<&EnumMember> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Whether `name` is one of the values.
    pub fn contains(&self, name: &str) -> bool {
        self.member(name).is_some()
    }

    /// The values' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.name.as_str())
    }
}

impl ObjectInfo {
    /// The member `name` (common members only; a branch's are in its
    /// variant's type).
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The branch for the tag's value `case`.
    pub fn variant(&self, case: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.case == case)
    }

    /// The tag's member, for a union.
    pub fn tag_member(&self) -> Option<&Member> {
        self.member(self.tag.as_deref()?)
    }

    /// Whether it has no members and no tag: the arguments of a command
    /// that takes none, the return of one that returns nothing (`{}`).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.tag.is_none()
    }
}

impl Schema {
    /// Read a `query-qmp-schema` reply.  Every entry must be well formed
    /// and every type it names described; otherwise the error says which
    /// entry and what is wrong.
    pub fn from_value(value: &Value) -> Result<Schema, String> {
        let schema = Schema::parse(value)?;
        schema.check_references()?;
        Ok(schema)
    }

    /// Read a `query-qmp-schema` reply, every entry well formed and each
    /// name once, without checking that the types it names are
    /// described (see [`Schema::check_references`]).
    pub fn parse(value: &Value) -> Result<Schema, String> {
        let items = value
            .as_array()
            .ok_or_else(|| "the schema is not a list".to_string())?;
        let mut schema = Schema {
            entities: Vec::with_capacity(items.len()),
            index: HashMap::with_capacity(items.len()),
        };
        for (i, e) in items.iter().enumerate() {
            let entity = entity(e, &format!("entry {i}"))?;
            if schema.index.contains_key(&entity.name) {
                return Err(format!("entry {i}: '{}' is described twice", entity.name));
            }
            schema.index.insert(entity.name.clone(), i);
            schema.entities.push(entity);
        }
        Ok(schema)
    }

    /// Check that every type an entity names is described (and is a
    /// type), and that each union's tag is one of its members.
    pub fn check_references(&self) -> Result<(), String> {
        for e in &self.entities {
            let name = &e.name;
            if let Kind::Object(o) = &e.kind {
                if let Some(tag) = &o.tag {
                    if o.member(tag).is_none() {
                        return Err(format!("'{name}': tag '{tag}' is not a member"));
                    }
                }
            }
            for r in e.kind.references() {
                match self.get(r) {
                    None => return Err(format!("'{name}' uses '{r}', which is not described")),
                    Some(t) if !t.kind.is_type() => {
                        return Err(format!("'{name}' uses '{r}' as a type, but it is not one"))
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Add `entity`, or replace the one of the same name where it is.
    pub fn insert(&mut self, entity: Entity) {
        match self.index.get(&entity.name) {
            Some(&i) => self.entities[i] = entity,
            None => {
                self.index.insert(entity.name.clone(), self.entities.len());
                self.entities.push(entity);
            }
        }
    }

    /// Every entity, in the answer's order.
    pub fn entities(&self) -> &[Entity] {
        &self.entities
    }

    /// Where the entity `name` is in [`Schema::entities`] (its index in
    /// the answer read).
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The entity `name`.
    pub fn get(&self, name: &str) -> Option<&Entity> {
        self.position(name).map(|i| &self.entities[i])
    }

    /// What the entity `name` is.
    pub fn kind(&self, name: &str) -> Option<&Kind> {
        self.get(name).map(|e| &e.kind)
    }

    /// The features of the entity `name` (none when there is no such
    /// entity).
    pub fn features_of(&self, name: &str) -> &[String] {
        self.get(name).map_or(&[], |e| &e.features)
    }

    /// The command `name`.
    pub fn command(&self, name: &str) -> Option<&CommandInfo> {
        match self.kind(name)? {
            Kind::Command(c) => Some(c),
            _ => None,
        }
    }

    /// The event `name`.
    pub fn event(&self, name: &str) -> Option<&EventInfo> {
        match self.kind(name)? {
            Kind::Event(e) => Some(e),
            _ => None,
        }
    }

    /// The builtin type `name`.
    pub fn builtin(&self, name: &str) -> Option<&BuiltinInfo> {
        match self.kind(name)? {
            Kind::Builtin(b) => Some(b),
            _ => None,
        }
    }

    /// The enum type `name`.
    pub fn enumeration(&self, name: &str) -> Option<&EnumInfo> {
        match self.kind(name)? {
            Kind::Enum(e) => Some(e),
            _ => None,
        }
    }

    /// The array type `name`.
    pub fn array(&self, name: &str) -> Option<&ArrayInfo> {
        match self.kind(name)? {
            Kind::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The object type `name`.
    pub fn object(&self, name: &str) -> Option<&ObjectInfo> {
        match self.kind(name)? {
            Kind::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The alternate type `name`.
    pub fn alternate(&self, name: &str) -> Option<&AlternateInfo> {
        match self.kind(name)? {
            Kind::Alternate(a) => Some(a),
            _ => None,
        }
    }

    /// The commands' names, in the answer's order.
    pub fn commands(&self) -> impl Iterator<Item = &str> {
        self.entities
            .iter()
            .filter(|e| matches!(e.kind, Kind::Command(_)))
            .map(|e| e.name.as_str())
    }

    /// The events' names, in the answer's order.
    pub fn events(&self) -> impl Iterator<Item = &str> {
        self.entities
            .iter()
            .filter(|e| matches!(e.kind, Kind::Event(_)))
            .map(|e| e.name.as_str())
    }

    /// Whether the server has the command `name`.
    pub fn has_command(&self, name: &str) -> bool {
        self.command(name).is_some()
    }

    /// Whether the server has the event `name`.
    pub fn has_event(&self, name: &str) -> bool {
        self.event(name).is_some()
    }

    /// Whether the server has the command `C` ([`Command::NAME`](crate::Command::NAME)).
    pub fn supports<C: crate::Command>(&self) -> bool {
        self.has_command(C::NAME)
    }

    /// Whether the server has the event `E` ([`Event::NAME`](crate::Event::NAME)).
    pub fn supports_event<E: crate::Event>(&self) -> bool {
        self.has_event(E::NAME)
    }

    /// Whether the server's `allow-oob` is set for command `name`.
    pub fn allows_oob(&self, name: &str) -> bool {
        self.command(name).is_some_and(|c| c.allow_oob)
    }
}

fn strings(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{what}: {x} is not a string"))
            })
            .collect(),
        Some(other) => Err(format!("{what}: {other} is not a list")),
    }
}

fn text(e: &Value, key: &str, what: &str) -> Result<String, String> {
    e.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{what}: no string '{key}'"))
}

fn list<'a>(e: &'a Value, key: &str, what: &str) -> Result<&'a [Value], String> {
    match e.get(key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(format!("{what}: '{key}' is {other}, not a list")),
    }
}

fn entity(e: &Value, what: &str) -> Result<Entity, String> {
    let name = text(e, "name", what)?;
    let what = &format!("{what} ('{name}')");
    let features = strings(e.get("features"), &format!("{what} features"))?;
    let meta = text(e, "meta-type", what)?;
    let kind = match meta.as_str() {
        "builtin" => Kind::Builtin(BuiltinInfo {
            json_type: text(e, "json-type", what)?,
        }),
        "enum" => {
            // `members` (with features) since QEMU 6.2; `values` before.
            let members = match e.get("members") {
                Some(_) => list(e, "members", what)?
                    .iter()
                    .map(|m| {
                        Ok(EnumMember {
                            name: text(m, "name", &format!("{what} value"))?,
                            features: strings(m.get("features"), what)?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
                None => strings(e.get("values"), &format!("{what} values"))?
                    .into_iter()
                    .map(|name| EnumMember {
                        name,
                        features: Vec::new(),
                    })
                    .collect(),
            };
            Kind::Enum(EnumInfo { members })
        }
        "array" => Kind::Array(ArrayInfo {
            element_type: text(e, "element-type", what)?,
        }),
        "object" => Kind::Object(ObjectInfo {
            members: list(e, "members", what)?
                .iter()
                .map(|m| {
                    let name = text(m, "name", &format!("{what} member"))?;
                    let w = format!("{what} member '{name}'");
                    Ok(Member {
                        ty: text(m, "type", &w)?,
                        optional: m.get("default").is_some(),
                        features: strings(m.get("features"), &w)?,
                        name,
                    })
                })
                .collect::<Result<_, String>>()?,
            tag: match e.get("tag") {
                None => None,
                Some(_) => Some(text(e, "tag", what)?),
            },
            variants: list(e, "variants", what)?
                .iter()
                .map(|v| {
                    let w = format!("{what} variant");
                    Ok(Variant {
                        case: text(v, "case", &w)?,
                        ty: text(v, "type", &w)?,
                    })
                })
                .collect::<Result<_, String>>()?,
        }),
        "alternate" => Kind::Alternate(AlternateInfo {
            branches: list(e, "members", what)?
                .iter()
                .map(|m| text(m, "type", &format!("{what} branch")))
                .collect::<Result<_, String>>()?,
        }),
        "command" => Kind::Command(CommandInfo {
            arg_type: text(e, "arg-type", what)?,
            ret_type: text(e, "ret-type", what)?,
            allow_oob: e.get("allow-oob").and_then(Value::as_bool) == Some(true),
        }),
        "event" => Kind::Event(EventInfo {
            arg_type: text(e, "arg-type", what)?,
        }),
        other => return Err(format!("{what}: unknown meta-type '{other}'")),
    };
    Ok(Entity {
        name,
        features,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_schemas_say_where() {
        for (v, what) in [
            (json!({}), "not a list"),
            (
                json!([{"name": "a"}]),
                "entry 0 ('a'): no string 'meta-type'",
            ),
            (
                json!([{"name": "a", "meta-type": "thing"}]),
                "unknown meta-type 'thing'",
            ),
            (
                json!([{"name": "a", "meta-type": "command", "arg-type": "0", "ret-type": "0"}]),
                "'a' uses '0', which is not described",
            ),
            (
                json!([{"name": "0", "meta-type": "object", "members": [{"name": "m"}]}]),
                "member 'm': no string 'type'",
            ),
            (
                json!([{"name": "0", "meta-type": "enum", "values": []},
                       {"name": "0", "meta-type": "enum", "values": []}]),
                "described twice",
            ),
            (
                json!([{"name": "0", "meta-type": "object", "members": [], "tag": "t"}]),
                "tag 't' is not a member",
            ),
            (
                json!([{"name": "a", "meta-type": "event", "arg-type": "b"},
                       {"name": "b", "meta-type": "event", "arg-type": "c"},
                       {"name": "c", "meta-type": "object", "members": []}]),
                "'a' uses 'b' as a type, but it is not one",
            ),
        ] {
            let e = Schema::from_value(&v).unwrap_err();
            assert!(e.contains(what), "{v}: {e}");
        }
        // Read without the reference check.
        let s = Schema::parse(&json!([
            {"name": "a", "meta-type": "command", "arg-type": "0", "ret-type": "0"}
        ]))
        .unwrap();
        assert!(s.has_command("a") && s.object("0").is_none());
    }

    #[test]
    fn lookups() {
        let s = Schema::from_value(&json!([
            {"name": "c", "meta-type": "command", "arg-type": "0", "ret-type": "[1]",
             "allow-oob": true},
            {"name": "E", "meta-type": "event", "arg-type": "0"},
            {"name": "0", "meta-type": "object", "tag": "t",
             "members": [{"name": "t", "type": "1"}, {"name": "o", "type": "str", "default": null}],
             "variants": [{"case": "x", "type": "2"}]},
            {"name": "1", "meta-type": "enum", "values": ["x", "y"],
             "members": [{"name": "x"}, {"name": "y", "features": ["deprecated"]}]},
            {"name": "[1]", "meta-type": "array", "element-type": "1"},
            {"name": "2", "meta-type": "object", "members": []},
            {"name": "3", "meta-type": "alternate", "members": [{"type": "str"}, {"type": "1"}]},
            {"name": "str", "meta-type": "builtin", "json-type": "string"}
        ]))
        .unwrap();
        let c = s.command("c").unwrap();
        assert!(s.allows_oob("c") && !s.allows_oob("E") && s.has_event("E"));
        assert_eq!(s.array(&c.ret_type).unwrap().element_type, "1");
        let o = s.object(&c.arg_type).unwrap();
        assert_eq!(o.tag_member().unwrap().ty, "1");
        assert!(o.member("o").unwrap().optional && !o.member("t").unwrap().optional);
        assert!(s.object(&o.variant("x").unwrap().ty).unwrap().is_empty());
        assert!(o.variant("y").is_none());
        let e = s.enumeration("1").unwrap();
        assert_eq!(e.names().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(e.member("y").unwrap().features, ["deprecated"]);
        assert_eq!(s.alternate("3").unwrap().branches, ["str", "1"]);
        assert_eq!(s.builtin("str").unwrap().json_type, "string");
        assert_eq!(s.kind("1").unwrap().json_type(), Some("string"));
        assert_eq!(s.commands().collect::<Vec<_>>(), ["c"]);
        assert_eq!(s.position("0"), Some(2));
        assert!(s.get("9").is_none() && s.features_of("9").is_empty());
    }
}
