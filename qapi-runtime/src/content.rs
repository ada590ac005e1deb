//! A value read before its type is known, kept as the deserializer gave
//! it: strings (and bytes) borrowed from the input when the deserializer
//! lends them, numbers as read, nothing converted; or, from serde_json,
//! the value's text ([`Stash`]).  The runtime holds a union's members
//! that come before its discriminator so, and decodes them into the
//! branch's type once the discriminator is known (QEMU's dicts come out
//! in hash order, so that is the common case for `SchemaInfo`).  It
//! works for any `Deserializer`; its error type is the original
//! deserializer's, so errors read the same either way.
//!
//! Memory: what it holds is what the input held (serde_json's text:
//! nothing, or a copy of the text when it reads a `Value` or a reader);
//! its depth is the input's (serde_json refuses more than 128 levels,
//! and again in a held text).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, value::MapDeserializer, value::SeqDeserializer, Deserializer, EnumAccess,
    IntoDeserializer, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde::Deserialize;

/// One JSON-like value, as read.
#[derive(Debug)]
pub(crate) enum Content<'de> {
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Char(char),
    Str(&'de str),
    String(String),
    Bytes(&'de [u8]),
    ByteBuf(Vec<u8>),
    /// `null`, or a unit.
    Unit,
    None,
    Some(Box<Content<'de>>),
    Newtype(Box<Content<'de>>),
    Seq(Vec<Content<'de>>),
    Map(Vec<(Content<'de>, Content<'de>)>),
}

impl<'de> Deserialize<'de> for Content<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ContentVisitor)
    }
}

struct ContentVisitor;

impl<'de> Visitor<'de> for ContentVisitor {
    type Value = Content<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Content<'de>, E> {
        Ok(Content::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Content<'de>, E> {
        Ok(Content::I64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Content<'de>, E> {
        Ok(Content::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Content<'de>, E> {
        Ok(Content::F64(v))
    }
    fn visit_char<E>(self, v: char) -> Result<Content<'de>, E> {
        Ok(Content::Char(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Content<'de>, E> {
        Ok(Content::Str(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Content<'de>, E> {
        Ok(Content::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Content<'de>, E> {
        Ok(Content::String(v))
    }
    fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Content<'de>, E> {
        Ok(Content::Bytes(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Content<'de>, E> {
        Ok(Content::ByteBuf(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Content<'de>, E> {
        Ok(Content::ByteBuf(v))
    }
    fn visit_unit<E>(self) -> Result<Content<'de>, E> {
        Ok(Content::Unit)
    }
    fn visit_none<E>(self) -> Result<Content<'de>, E> {
        Ok(Content::None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Content<'de>, D::Error> {
        Content::deserialize(d).map(|c| Content::Some(Box::new(c)))
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Content<'de>, D::Error> {
        Content::deserialize(d).map(|c| Content::Newtype(Box::new(c)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Content<'de>, A::Error> {
        // The size hint is the deserializer's guess: capped, so a
        // lying one cannot make us allocate.
        let mut v = Vec::with_capacity(a.size_hint().unwrap_or(0).min(64));
        while let Some(e) = a.next_element()? {
            v.push(e);
        }
        Ok(Content::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Content<'de>, A::Error> {
        map_from(None, a)
    }
}

/// An object's members as read (`first`, when given, read already).
fn map_from<'de, A: MapAccess<'de>>(
    first: Option<(Content<'de>, Content<'de>)>,
    mut a: A,
) -> Result<Content<'de>, A::Error> {
    let mut v = Vec::with_capacity(a.size_hint().unwrap_or(0).min(64) + 1);
    v.extend(first);
    while let Some(kv) = a.next_entry()? {
        v.push(kv);
    }
    Ok(Content::Map(v))
}

/// A value held until its type is known.  From serde_json, its text:
/// serde_json skips it (`RawValue`'s way: no string copied or checked
/// twice, nothing allocated) and lends the bytes it spans, which are
/// parsed again, once, into the type; from any other deserializer, a
/// [`Content`].  On `query-qmp-schema`, whose entries hold their
/// `members` lists before `meta-type`, building and replaying
/// `Content` trees was a quarter of the decoding's time.
pub(crate) enum Stash<'de> {
    /// The value's JSON text, borrowed from the input.
    Raw(&'de str),
    /// The value's JSON text, as an owned string (serde_json reading a
    /// `Value` or an `io::Read`).
    Text(String),
    /// The value, as read.
    Content(Content<'de>),
}

/// The name serde_json gives `RawValue`: asked for a newtype of this
/// name, its deserializers hand over the value's text as a map of one
/// member under this key (others ignore the name).
const RAW: &str = "$serde_json::private::RawValue";

std::thread_local! {
    /// Whether a held text is being parsed on this thread.
    static IN_TEXT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl<'de> Stash<'de> {
    /// Read a value to hold.  Inside a held text being parsed, as a
    /// [`Content`]: each text is parsed by a deserializer of its own,
    /// whose depth limit starts afresh, so texts held inside texts
    /// (a recursive union's) would take the depth past any limit; so the
    /// stack holds at most two of serde_json's 128 levels.
    pub(crate) fn read<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if IN_TEXT.with(|t| t.get()) {
            return Content::deserialize(d).map(Stash::Content);
        }
        d.deserialize_newtype_struct(RAW, StashVisitor)
    }

    /// Decode the held value into `T`, with error type `E`.
    pub(crate) fn decode<T: Deserialize<'de>, E: de::Error>(self) -> Result<T, E> {
        match self {
            Stash::Raw(text) => {
                in_text(|| T::deserialize(&mut serde_json::Deserializer::from_str(text)))
            }
            Stash::Text(text) => in_text(|| {
                T::deserialize(&mut serde_json::Deserializer::from_reader(text.as_bytes()))
            }),
            Stash::Content(c) => T::deserialize(ContentDeserializer::new(c)),
        }
    }

    /// The held value as a [`Content`].
    pub(crate) fn into_content<E: de::Error>(self) -> Result<Content<'de>, E> {
        match self {
            Stash::Content(c) => Ok(c),
            other => other.decode(),
        }
    }
}

/// Parse a held text (`parse`), marked as such for [`Stash::read`].
fn in_text<T, E: de::Error>(parse: impl FnOnce() -> Result<T, serde_json::Error>) -> Result<T, E> {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_TEXT.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(IN_TEXT.with(|t| t.replace(true)));
    parse().map_err(unplaced)
}

/// An error from parsing a held value's text again, as the reader's
/// own error: its message without the position in that text (the
/// reader adds its own, as for any error in a held value).
fn unplaced<E: de::Error>(e: serde_json::Error) -> E {
    let message = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    match message.strip_suffix(&at) {
        Some(plain) if e.line() != 0 => E::custom(plain),
        _ => E::custom(message),
    }
}

struct StashVisitor;

impl<'de> Visitor<'de> for StashVisitor {
    type Value = Stash<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Stash<'de>, E> {
        ContentVisitor.visit_bool(v).map(Stash::Content)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Stash<'de>, E> {
        ContentVisitor.visit_i64(v).map(Stash::Content)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Stash<'de>, E> {
        ContentVisitor.visit_u64(v).map(Stash::Content)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Stash<'de>, E> {
        ContentVisitor.visit_f64(v).map(Stash::Content)
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<Stash<'de>, E> {
        ContentVisitor.visit_char(v).map(Stash::Content)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Stash<'de>, E> {
        ContentVisitor.visit_borrowed_str(v).map(Stash::Content)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Stash<'de>, E> {
        ContentVisitor.visit_str(v).map(Stash::Content)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Stash<'de>, E> {
        ContentVisitor.visit_string(v).map(Stash::Content)
    }
    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Stash<'de>, E> {
        ContentVisitor.visit_borrowed_bytes(v).map(Stash::Content)
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Stash<'de>, E> {
        ContentVisitor.visit_bytes(v).map(Stash::Content)
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Stash<'de>, E> {
        ContentVisitor.visit_byte_buf(v).map(Stash::Content)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Stash<'de>, E> {
        Ok(Stash::Content(Content::Unit))
    }
    fn visit_none<E: de::Error>(self) -> Result<Stash<'de>, E> {
        Ok(Stash::Content(Content::None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Stash<'de>, D::Error> {
        ContentVisitor.visit_some(d).map(Stash::Content)
    }
    /// The newtype is the one asked for, not the value's: what it holds.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Stash<'de>, D::Error> {
        Content::deserialize(d).map(Stash::Content)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<Stash<'de>, A::Error> {
        ContentVisitor.visit_seq(a).map(Stash::Content)
    }
    /// serde_json's text (one member named [`RAW`], a name serde_json
    /// keeps for this), or an object from a deserializer that reads a
    /// newtype as what it holds.
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Stash<'de>, A::Error> {
        let Some(key) = a.next_key::<Content<'de>>()? else {
            return Ok(Stash::Content(Content::Map(Vec::new())));
        };
        if matches!(key, Content::Str(k) if k == RAW)
            || matches!(&key, Content::String(k) if k == RAW)
        {
            return a.next_value_seed(TextSeed);
        }
        let value = a.next_value()?;
        map_from(Some((key, value)), a).map(Stash::Content)
    }
}

/// serde_json's text of a held value: borrowed when it can be.
struct TextSeed;

impl<'de> de::DeserializeSeed<'de> for TextSeed {
    type Value = Stash<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = Stash<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value's text")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Stash::Raw(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Stash::Text(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Stash::Text(v))
    }
}

/// Replays a [`Content`] into any `Deserialize`, with error type `E`.
pub(crate) struct ContentDeserializer<'de, E> {
    content: Content<'de>,
    error: PhantomData<E>,
}

impl<'de, E> ContentDeserializer<'de, E> {
    pub(crate) fn new(content: Content<'de>) -> Self {
        ContentDeserializer {
            content,
            error: PhantomData,
        }
    }
}

impl<'de, E: de::Error> IntoDeserializer<'de, E> for Content<'de> {
    type Deserializer = ContentDeserializer<'de, E>;
    fn into_deserializer(self) -> Self::Deserializer {
        ContentDeserializer::new(self)
    }
}

impl<'de, E: de::Error> Deserializer<'de> for ContentDeserializer<'de, E> {
    type Error = E;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, E> {
        match self.content {
            Content::Bool(b) => v.visit_bool(b),
            Content::U64(n) => v.visit_u64(n),
            Content::I64(n) => v.visit_i64(n),
            Content::F64(n) => v.visit_f64(n),
            Content::Char(c) => v.visit_char(c),
            Content::Str(s) => v.visit_borrowed_str(s),
            Content::String(s) => v.visit_string(s),
            Content::Bytes(b) => v.visit_borrowed_bytes(b),
            Content::ByteBuf(b) => v.visit_byte_buf(b),
            Content::Unit => v.visit_unit(),
            Content::None => v.visit_none(),
            Content::Some(c) => v.visit_some(ContentDeserializer::new(*c)),
            Content::Newtype(c) => v.visit_newtype_struct(ContentDeserializer::new(*c)),
            Content::Seq(items) => SeqDeserializer::new(items.into_iter()).deserialize_any(v),
            Content::Map(entries) => MapDeserializer::new(entries.into_iter()).deserialize_any(v),
        }
    }

    /// `null` is `None`, anything else `Some` (as serde_json reads it).
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, E> {
        match self.content {
            Content::Unit | Content::None => v.visit_none(),
            Content::Some(c) => v.visit_some(ContentDeserializer::new(*c)),
            other => v.visit_some(ContentDeserializer::new(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, E> {
        match self.content {
            Content::Newtype(c) => v.visit_newtype_struct(ContentDeserializer::new(*c)),
            other => v.visit_newtype_struct(ContentDeserializer::new(other)),
        }
    }

    /// A string is a unit variant; an object with one member is the
    /// variant named by its key (as serde_json reads enums).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, E> {
        let (variant, value) = match self.content {
            Content::Map(entries) if entries.len() == 1 => {
                let (k, val) = entries.into_iter().next().expect("one entry");
                (k, Some(val))
            }
            s @ (Content::Str(_) | Content::String(_)) => (s, None),
            other => {
                return Err(de::Error::invalid_type(
                    unexpected(&other),
                    &"a string or an object with one member",
                ))
            }
        };
        v.visit_enum(Variant {
            variant,
            value,
            error: PhantomData,
        })
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, E> {
        drop(self);
        v.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier
    }
}

/// What a value is, for an error.
fn unexpected<'a>(c: &'a Content<'_>) -> de::Unexpected<'a> {
    use de::Unexpected as U;
    match c {
        Content::Bool(b) => U::Bool(*b),
        Content::U64(n) => U::Unsigned(*n),
        Content::I64(n) => U::Signed(*n),
        Content::F64(n) => U::Float(*n),
        Content::Char(c) => U::Char(*c),
        Content::Str(s) => U::Str(s),
        Content::String(s) => U::Str(s),
        Content::Bytes(b) => U::Bytes(b),
        Content::ByteBuf(b) => U::Bytes(b),
        Content::Unit | Content::None => U::Unit,
        Content::Some(_) => U::Option,
        Content::Newtype(_) => U::NewtypeStruct,
        Content::Seq(_) => U::Seq,
        Content::Map(_) => U::Map,
    }
}

/// An enum's variant and its value, if any.
struct Variant<'de, E> {
    variant: Content<'de>,
    value: Option<Content<'de>>,
    error: PhantomData<E>,
}

impl<'de, E: de::Error> EnumAccess<'de> for Variant<'de, E> {
    type Error = E;
    type Variant = VariantValue<'de, E>;
    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), E> {
        let tag = seed.deserialize(ContentDeserializer::new(self.variant))?;
        Ok((
            tag,
            VariantValue {
                value: self.value,
                error: PhantomData,
            },
        ))
    }
}

struct VariantValue<'de, E> {
    value: Option<Content<'de>>,
    error: PhantomData<E>,
}

impl<'de, E: de::Error> VariantAccess<'de> for VariantValue<'de, E> {
    type Error = E;
    fn unit_variant(self) -> Result<(), E> {
        match self.value {
            None | Some(Content::Unit) => Ok(()),
            Some(other) => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a unit variant",
            )),
        }
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, E> {
        match self.value {
            Some(c) => seed.deserialize(ContentDeserializer::new(c)),
            None => Err(de::Error::invalid_type(
                de::Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, E> {
        match self.value {
            Some(c) => ContentDeserializer::new(c).deserialize_any(v),
            None => Err(de::Error::invalid_type(
                de::Unexpected::UnitVariant,
                &"a tuple variant",
            )),
        }
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, E> {
        self.tuple_variant(0, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn replay(text: &str) -> Value {
        let mut d = serde_json::Deserializer::from_str(text);
        let c = Content::deserialize(&mut d).unwrap();
        Value::deserialize(ContentDeserializer::<serde_json::Error>::new(c)).unwrap()
    }

    #[test]
    fn replays_what_it_read() {
        let text = r#"{"a": [1, -2, 2.5, true, null, "x\"y", {"b": {}}], "c": "plain"}"#;
        assert_eq!(replay(text), serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn borrows_plain_strings() {
        let mut d = serde_json::Deserializer::from_str(r#"["plain", "esc\"aped"]"#);
        let Content::Seq(items) = Content::deserialize(&mut d).unwrap() else {
            panic!("a sequence")
        };
        assert!(matches!(items[0], Content::Str("plain")));
        assert!(matches!(&items[1], Content::String(s) if s == "esc\"aped"));
    }

    #[test]
    fn options_newtypes_and_enums() {
        #[derive(Deserialize, Debug, PartialEq)]
        enum E {
            Unit,
            New(u8),
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct N(String);
        #[derive(Deserialize, Debug, PartialEq)]
        struct S {
            a: Option<u8>,
            b: Option<u8>,
            n: N,
            e: Vec<E>,
        }
        let text = json!({"a": null, "b": 3, "n": "x", "e": ["Unit", {"New": 4}]}).to_string();
        let mut d = serde_json::Deserializer::from_str(&text);
        let c = Content::deserialize(&mut d).unwrap();
        let s = S::deserialize(ContentDeserializer::<serde_json::Error>::new(c)).unwrap();
        assert_eq!(
            s,
            S {
                a: None,
                b: Some(3),
                n: N("x".into()),
                e: vec![E::Unit, E::New(4)]
            }
        );
    }

    /// What is held: serde_json's text where it lies, its text as a
    /// string when reading a `Value`, a `Content` from any other
    /// deserializer (a map from one that ignores the newtype's name);
    /// each decodes to what was read.
    #[test]
    fn stashes_text_or_content() {
        let text = r#"{"a": [1, -2, 2.5, true, null, "x\"y", {"b": {}}], "c": "plain"}"#;
        let want: Value = serde_json::from_str(text).unwrap();
        let stash = Stash::read(&mut serde_json::Deserializer::from_str(text)).unwrap();
        assert!(matches!(stash, Stash::Raw(t) if t == text));
        assert_eq!(stash.decode::<Value, serde_json::Error>().unwrap(), want);
        let stash = Stash::read(&want).unwrap();
        assert!(matches!(stash, Stash::Text(_)));
        assert_eq!(stash.decode::<Value, serde_json::Error>().unwrap(), want);
        let content = Content::deserialize(&mut serde_json::Deserializer::from_str(text)).unwrap();
        let stash = Stash::read(ContentDeserializer::<serde_json::Error>::new(content)).unwrap();
        assert!(matches!(stash, Stash::Content(Content::Map(_))));
        assert_eq!(stash.decode::<Value, serde_json::Error>().unwrap(), want);
        let entries = [("k", 1u8)].into_iter();
        let stash = Stash::read(de::value::MapDeserializer::<_, serde_json::Error>::new(
            entries,
        ));
        let value = stash.unwrap().decode::<Value, serde_json::Error>().unwrap();
        assert_eq!(value, serde_json::json!({"k": 1}));
        // An error in the text reads as one in the value, without the
        // text's own position.
        let stash = Stash::read(&mut serde_json::Deserializer::from_str(r#"{"a": "x"}"#)).unwrap();
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct S {
            a: u8,
        }
        let e = stash.decode::<S, serde_json::Error>().unwrap_err();
        assert_eq!(e.to_string(), r#"invalid type: string "x", expected u8"#);
    }

    /// A value held inside a held text is a `Content`, read by that
    /// text's deserializer within its depth limit.
    #[test]
    fn texts_are_not_held_inside_texts() {
        struct Kind(&'static str);
        impl<'de> Deserialize<'de> for Kind {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Kind(match Stash::read(d)? {
                    Stash::Raw(_) => "raw",
                    Stash::Text(_) => "text",
                    Stash::Content(_) => "content",
                }))
            }
        }
        let text = r#"[[1]]"#;
        let outer = Stash::read(&mut serde_json::Deserializer::from_str(text)).unwrap();
        let inner: Vec<Kind> = outer.decode::<_, serde_json::Error>().unwrap();
        assert_eq!(inner[0].0, "content");
        let again = Stash::read(&mut serde_json::Deserializer::from_str(text)).unwrap();
        assert!(matches!(again, Stash::Raw(_)));
        // Deeper than serde_json's limit once held: an error, not a
        // crash, however many levels each text adds.
        #[derive(Debug)]
        struct Deep;
        impl<'de> Deserialize<'de> for Deep {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Deep;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("nested arrays")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Deep, A::Error> {
                        while let Some(s) = a.next_element_seed(Held)? {
                            s.decode::<Deep, A::Error>()?;
                        }
                        Ok(Deep)
                    }
                }
                d.deserialize_seq(V)
            }
        }
        struct Held;
        impl<'de> de::DeserializeSeed<'de> for Held {
            type Value = Stash<'de>;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Stash<'de>, D::Error> {
                Stash::read(d)
            }
        }
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let e = serde_json::from_str::<Deep>(&deep).unwrap_err();
        assert!(e.to_string().contains("recursion limit"), "{e}");
    }

    #[test]
    fn errors_are_the_readers() {
        let mut d = serde_json::Deserializer::from_str(r#"{"a": "not a number"}"#);
        let c = Content::deserialize(&mut d).unwrap();
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct S {
            a: u8,
        }
        let e = S::deserialize(ContentDeserializer::<serde_json::Error>::new(c)).unwrap_err();
        assert!(e.to_string().contains("invalid type: string"), "{e}");
    }
}
