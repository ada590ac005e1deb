//! What generated `Serialize`/`Deserialize` impls build on: each
//! generated type describes itself (its wire names, a `match` that
//! stores one member, a constructor), and the loops live here, written
//! once.  Not a stable API.
//!
//! Decoding reads members as they come, straight from the deserializer:
//! a key is found in the type's table of wire names through the table's
//! hash index (one cheap hash, one comparison: `find`), its value is
//! decoded into a slot, unknown members are skipped without being built
//! (`IgnoredAny`), or reported in strict mode.  A union reads its
//! common members and its discriminator the same way, then hands the
//! rest of the object to the branch's type; members that come before the
//! discriminator and are not common ones are held until it comes
//! (`content::Stash`: from serde_json their text, where it lies; from
//! other deserializers a `content::Content`), then decoded into the
//! branch's type.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::content::{Content, ContentDeserializer, Stash};

/// An object's members as kept by a catch-all branch.
pub type Kept = Map<String, Value>;

// ---------------------------------------------------------------------
// Serializing

/// A type that writes its members into an object being serialized (a
/// struct, or a union, which may be another union's branch).
pub trait Fields {
    fn fields<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error>;
}

impl<T: Fields + ?Sized> Fields for Box<T> {
    fn fields<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        (**self).fields(m)
    }
}

/// Serialize a value as an object of its members.
pub fn ser_object<T: Fields + ?Sized, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(None)?;
    v.fields(&mut m)?;
    m.end()
}

/// A required member, as a struct's `fields` lists it for [`entries`].
pub struct Req<'a, T>(pub &'static str, pub &'a T);

/// An optional member, as a struct's `fields` lists it for [`entries`]:
/// left out when `None`.
pub struct Opt<'a, T>(pub &'static str, pub &'a Option<T>);

/// Members written in order: a [`Req`], an [`Opt`], or a tuple of up to
/// 12 of them (tuples nest, for types with more members: the generator
/// chunks them as it chunks `Object::Slots`).
///
/// Generated `fields` hand all their members to [`entries`] as one
/// tuple instead of one call each: rustc then checks one call per type,
/// not one per member, which made `fields` about 2.7 times cheaper to
/// compile (ARCHITECTURE.md, "Where `qapi-types`' build time goes").
/// Writing is the same calls, inlined.
pub trait Entries {
    fn put<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error>;
}

impl<T: Serialize> Entries for Req<'_, T> {
    #[inline]
    fn put<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        m.serialize_entry(self.0, self.1)
    }
}

impl<T: Serialize> Entries for Opt<'_, T> {
    #[inline]
    fn put<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        opt(m, self.0, self.1)
    }
}

macro_rules! tuple_entries {
    ($($n:tt $t:ident),*) => {
        impl<$($t: Entries),*> Entries for ($($t,)*) {
            #[inline]
            fn put<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
                $(self.$n.put(m)?;)*
                Ok(())
            }
        }
    };
}

tuple_entries!(0 A);
tuple_entries!(0 A, 1 B);
tuple_entries!(0 A, 1 B, 2 C);
tuple_entries!(0 A, 1 B, 2 C, 3 D);
tuple_entries!(0 A, 1 B, 2 C, 3 D, 4 E);
tuple_entries!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F);
tuple_entries!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
tuple_entries!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);
tuple_entries!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I);
tuple_entries!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J);
tuple_entries!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K);
tuple_entries!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L);

/// Write `members` (see [`Entries`]).
#[inline]
pub fn entries<M: SerializeMap, E: Entries>(m: &mut M, members: E) -> Result<(), M::Error> {
    members.put(m)
}

/// An optional member: left out when `None`.
pub fn opt<M: SerializeMap, T: Serialize>(
    m: &mut M,
    key: &'static str,
    value: &Option<T>,
) -> Result<(), M::Error> {
    match value {
        Some(v) => m.serialize_entry(key, v),
        None => Ok(()),
    }
}

/// A union's discriminator, written first (none for an object from a
/// release where the type had none: `value` is then empty).
pub fn tag<M: SerializeMap>(m: &mut M, key: &'static str, value: &str) -> Result<(), M::Error> {
    if value.is_empty() {
        return Ok(());
    }
    m.serialize_entry(key, value)
}

/// Members kept as sent (a catch-all branch).
pub fn kept<M: SerializeMap>(m: &mut M, members: &Kept) -> Result<(), M::Error> {
    for (k, v) in members {
        m.serialize_entry(k, v)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------
// Decoding: where a member's value comes from

/// Where a member's value is read from: the object being read, or a
/// value held because it came before the union's discriminator.
pub trait Take<'de> {
    type Error: de::Error;
    fn take<T: Deserialize<'de>>(self) -> Result<T, Self::Error>;
}

impl<'de, A: MapAccess<'de>> Take<'de> for &mut A {
    type Error = A::Error;
    fn take<T: Deserialize<'de>>(self) -> Result<T, A::Error> {
        self.next_value()
    }
}

/// A member's value read before it could be placed, with the error type
/// of the deserializer it came from.
pub struct Held<'de, E>(Stash<'de>, PhantomData<E>);

impl<'de, E: de::Error> Take<'de> for Held<'de, E> {
    type Error = E;
    fn take<T: Deserialize<'de>>(self) -> Result<T, E> {
        self.0.decode()
    }
}

/// Members read before the discriminator that are not common ones.
type HeldMembers<'de> = Vec<(Cow<'de, str>, Stash<'de>)>;

/// A value to hold (see [`Stash`]).
struct StashSeed;

impl<'de> DeserializeSeed<'de> for StashSeed {
    type Value = Stash<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Stash<'de>, D::Error> {
        Stash::read(d)
    }
}

/// Held members as JSON (a catch-all branch keeps them so); a member
/// sent twice is an error.
fn to_kept<E: de::Error>(type_name: &str, held: HeldMembers<'_>) -> Result<Kept, E> {
    let mut kept = Kept::new();
    for (k, v) in held {
        if kept.contains_key(k.as_ref()) {
            return Err(duplicate(type_name, &k));
        }
        let v = v.decode::<Value, E>()?;
        kept.insert(k.into_owned(), v);
    }
    Ok(kept)
}

/// Store a member's value; `false` (and nothing read) when it was
/// already there.  An optional member that is present is `Some`, even
/// when it is `null`: an optional member whose type takes `null`
/// (`BlockdevRefOrNull`) keeps it, and one whose type does not refuses
/// it, as QEMU does.
#[inline]
pub fn put<'de, T: Deserialize<'de>, V: Take<'de>>(
    slot: &mut Option<T>,
    v: V,
) -> Result<bool, V::Error> {
    if slot.is_some() {
        return Ok(false);
    }
    *slot = Some(v.take()?);
    Ok(true)
}

/// Slots that store a member's value by its index: an `Option` (one
/// member) or a tuple of up to 12 slots, nested past 12 members the way
/// the generator nests `Object::Slots` (member `i`'s path is `i`'s
/// base-12 digits).  The `match` on the index that each type used to
/// have generated is written once here and instantiated per slot type,
/// so no type's `store` is compiled in `qapi-types` itself
/// (ARCHITECTURE.md, "Where `qapi-types`' build time goes").
pub trait Slot<'de>: Default {
    /// How many members one such slot holds, as an element of a tuple:
    /// 1 for an `Option`, 12 times its elements' for a tuple.
    const SPAN: usize;
    /// Store member `i` (counted within this slot); `true` for an index
    /// past the end (nothing to store), `false` when already filled.
    fn store<V: Take<'de>>(&mut self, i: usize, v: V) -> Result<bool, V::Error>;
}

impl<'de, T: Deserialize<'de>> Slot<'de> for Option<T> {
    const SPAN: usize = 1;
    #[inline]
    fn store<V: Take<'de>>(&mut self, _: usize, v: V) -> Result<bool, V::Error> {
        put(self, v)
    }
}

impl<'de> Slot<'de> for () {
    const SPAN: usize = 1;
    #[inline]
    fn store<V: Take<'de>>(&mut self, _: usize, _: V) -> Result<bool, V::Error> {
        Ok(true)
    }
}

macro_rules! tuple_slots {
    ($($n:tt $t:ident),*) => {
        impl<'de, A: Slot<'de>, $($t: Slot<'de>),*> Slot<'de> for (A, $($t,)*) {
            const SPAN: usize = 12 * A::SPAN;
            #[inline]
            fn store<V: Take<'de>>(&mut self, i: usize, v: V) -> Result<bool, V::Error> {
                match i / A::SPAN {
                    0 => self.0.store(i % A::SPAN, v),
                    $($n => self.$n.store(i % A::SPAN, v),)*
                    _ => Ok(true),
                }
            }
        }
    };
}

tuple_slots!();
tuple_slots!(1 B);
tuple_slots!(1 B, 2 C);
tuple_slots!(1 B, 2 C, 3 D);
tuple_slots!(1 B, 2 C, 3 D, 4 E);
tuple_slots!(1 B, 2 C, 3 D, 4 E, 5 F);
tuple_slots!(1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
tuple_slots!(1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);
tuple_slots!(1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I);
tuple_slots!(1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J);
tuple_slots!(1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K);
tuple_slots!(1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L);

/// A required member's value, or the error naming it.
pub fn need<T, E: de::Error>(slot: Option<T>, key: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| missing(key))
}

/// The error for a required member that is missing.
#[cold]
pub fn missing<E: de::Error>(key: &'static str) -> E {
    E::custom(format_args!("missing member '{key}'"))
}

/// An error in a member's value, with the member's name in front (so
/// nested errors read as a path).
fn at<E: de::Error>(key: &str, e: E) -> E {
    E::custom(format_args!("member '{key}': {e}"))
}

fn duplicate<E: de::Error>(type_name: &str, key: &str) -> E {
    E::custom(format_args!("{type_name}: duplicate member '{key}'"))
}

fn unknown<E: de::Error>(type_name: &str, key: &str) -> E {
    E::custom(format_args!("{type_name}: unknown member '{key}'"))
}

// ---------------------------------------------------------------------
// Decoding: structs

/// What a generated struct tells the runtime about its members.
pub trait Object<'de>: Sized {
    /// The QAPI type's name, for errors.
    const NAME: &'static str;
    /// The members' wire names; a member's index is its place here.
    const MEMBERS: &'static [&'static str];
    /// `MEMBERS`' hash index (see `find`); empty: searched in order.
    const INDEX: &'static [u8] = &[];
    /// One `Option` per member (tuples, nested past 12 members, so
    /// that they are `Default`: no generated function makes them, and
    /// [`Slot`] stores into them).
    type Slots: Slot<'de>;
    fn slots() -> Self::Slots {
        Self::Slots::default()
    }
    /// Decode member `i`'s value into its slot; `false` when the slot
    /// was already filled.
    #[inline]
    fn store<V: Take<'de>>(s: &mut Self::Slots, i: usize, v: V) -> Result<bool, V::Error> {
        s.store(i, v)
    }
    /// The value, once every member was read.
    fn build<E: de::Error>(s: &mut Self::Slots) -> Result<Self, E>;
}

impl<'de, T: Object<'de>> Object<'de> for Box<T> {
    const NAME: &'static str = T::NAME;
    const MEMBERS: &'static [&'static str] = T::MEMBERS;
    const INDEX: &'static [u8] = T::INDEX;
    type Slots = T::Slots;
    fn build<E: de::Error>(s: &mut T::Slots) -> Result<Self, E> {
        T::build(s).map(Box::new)
    }
}

/// A simple union's branch (QEMU before 6.2): the value under `data`.
pub struct Data<T>(pub T);

impl<'de, T: Deserialize<'de>> Object<'de> for Data<T> {
    const NAME: &'static str = "branch";
    const MEMBERS: &'static [&'static str] = &["data"];
    type Slots = Option<T>;
    fn build<E: de::Error>(s: &mut Option<T>) -> Result<Self, E> {
        need(s.take(), "data").map(Data)
    }
}

/// Where a key is in a table of wire names, with the table's hash
/// `index` (written by the generator for every table: a seed, then a
/// power-of-two table from a name's hash to its place, 0xff for none):
/// one cheap hash (the key's length and the words of [`words`]) and one
/// comparison, eight bytes at a time, inlined where keys are read, with
/// no call.  QEMU sends members in its dicts' hash order, not the
/// schema's, so a search in order (or guessing the next one) does not
/// pay.  `None` for a table without an index (the runtime's own, of one
/// member: see [`find_in_order`]).
#[inline(always)]
fn find(names: &[&str], index: &[u8], key: &str) -> Option<usize> {
    let (&seed, table) = index.split_first()?;
    let key = key.as_bytes();
    let w = words(key);
    // The hash's top bits: as many as the table's length has.
    let place = hash(key.len(), w, seed).wrapping_shr(64 - table.len().trailing_zeros());
    let i = usize::from(*table.get(place as usize)?);
    let name = names.get(i)?.as_bytes();
    (name.len() == key.len() && same(name, key, w)).then_some(i)
}

/// Whether `name` is `key`, of the same length and whose [`words`] are
/// `w`: eight bytes at a time (no call to `memcmp`).
#[inline(always)]
fn same(name: &[u8], key: &[u8], w: (u64, u64)) -> bool {
    let n = key.len();
    if n < 8 {
        return words(name) == w;
    }
    let word =
        |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or_default());
    let mut at = 0;
    while at + 8 < n {
        if word(name, at) != word(key, at) {
            return false;
        }
        at += 8;
    }
    word(name, n - 8) == word(key, n - 8)
}

/// [`find`] for a held member: not inlined, and tables without an index
/// searched in order.
fn find_held(names: &[&str], index: &[u8], key: &str) -> Option<usize> {
    if index.is_empty() {
        return find_in_order(names, key);
    }
    find(names, index, key)
}

/// A table without an index, searched in order.
fn find_in_order(names: &[&str], key: &str) -> Option<usize> {
    names.iter().position(|n| *n == key)
}

/// The words a member name is hashed and compared by: its first and
/// last eight bytes (which overlap below 16), four for names of four to
/// seven bytes, the bytes themselves below that; past 16 bytes, bytes 8
/// to 16 are folded into the first word (`invalid_rd_operations` and
/// `invalid_wr_operations` differ there only), and names are compared in
/// full.  The generator calls this function to build the index, so the
/// two can never disagree.
#[inline(always)]
pub fn words(key: &[u8]) -> (u64, u64) {
    let n = key.len();
    let word = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().unwrap_or_default());
    let half = |at: usize| u32::from_le_bytes(key[at..at + 4].try_into().unwrap_or_default());
    if n > 16 {
        (word(0) ^ word(8).rotate_left(29), word(n - 8))
    } else if n >= 8 {
        (word(0), word(n - 8))
    } else if n >= 4 {
        (u64::from(half(0)), u64::from(half(n - 4)))
    } else if n > 0 {
        let w = u64::from(key[0]) | u64::from(key[n / 2]) << 8 | u64::from(key[n - 1]) << 16;
        (w, 0)
    } else {
        (0, 0)
    }
}

/// A member name's hash, from its length and [`words`]: its top bits
/// are its place in a power-of-two table, and the generator picks the
/// `seed` that gives each member of a table its own place (calling this
/// very function).
#[inline(always)]
pub fn hash(len: usize, (a, b): (u64, u64), seed: u8) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    const L: u64 = 0xc2b2_ae3d_27d4_eb4f;
    ((a ^ (len as u64) << 56 ^ u64::from(seed)).wrapping_mul(K) ^ b).wrapping_mul(L)
}

/// What a key is, for the object being read: small, so that it comes
/// back in registers.
#[derive(Clone, Copy)]
enum Found {
    /// A member of the type being read (index in its table).
    Member(u32),
    /// A union's common member (index in the union's table).
    Common(u32),
    /// A union's discriminator.
    Tag,
    /// Not known here, and to be skipped (not strict).
    Skip,
}

/// A key, for a reader that keeps unknown members.
enum Key<'de> {
    Found(Found),
    Unknown(Cow<'de, str>),
}

/// The tables a key is looked up in.
#[derive(Clone, Copy)]
struct Keys<'a> {
    /// The type being read, for errors.
    name: &'static str,
    names: &'a [&'static str],
    index: &'a [u8],
    common: &'a [&'static str],
    common_index: &'a [u8],
    tag: Option<&'a str>,
}

impl Keys<'_> {
    /// What `key` is, without allocating; `None`: unknown.
    #[inline(always)]
    fn look(&self, key: &str) -> Option<Found> {
        match find(self.names, self.index, key) {
            Some(i) => Some(Found::Member(i as u32)),
            None => self.other(key),
        }
    }

    /// A key that [`find`] did not find among the type's members: one
    /// of them after all if the table has no index, else a union's
    /// common member or discriminator, or unknown.  Out of the common
    /// path.
    #[cold]
    #[inline(never)]
    fn other(&self, key: &str) -> Option<Found> {
        if self.index.is_empty() {
            if let Some(i) = find_in_order(self.names, key) {
                return Some(Found::Member(i as u32));
            }
        }
        if self.tag == Some(key) {
            return Some(Found::Tag);
        }
        find_held(self.common, self.common_index, key).map(|i| Found::Common(i as u32))
    }

    /// [`Keys::other`], for a reader that skips unknown members (in strict
    /// mode, an error).
    #[cold]
    #[inline(never)]
    fn other_or_skip<E: de::Error>(&self, key: &str) -> Result<Found, E> {
        if let Some(found) = self.other(key) {
            return Ok(found);
        }
        if crate::strict() {
            return Err(unknown(self.name, key));
        }
        Ok(Found::Skip)
    }
}

/// Reads one key for [`fill`]: an unknown one is to be skipped, or in
/// strict mode an error naming it.
struct SkipSeed<'a>(&'a Keys<'a>);

impl<'de> DeserializeSeed<'de> for SkipSeed<'_> {
    type Value = Found;
    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for SkipSeed<'_> {
    type Value = Found;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }
    #[inline]
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Found, E> {
        match find(self.0.names, self.0.index, key) {
            Some(i) => Ok(Found::Member(i as u32)),
            None => self.0.other_or_skip(key),
        }
    }
}

/// Reads one key, keeping an unknown one (borrowed when it can be).
struct KeepSeed<'a>(&'a Keys<'a>);

impl<'de> DeserializeSeed<'de> for KeepSeed<'_> {
    type Value = Key<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeepSeed<'_> {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
        Ok(match self.0.look(key) {
            Some(found) => Key::Found(found),
            None => Key::Unknown(key.into()),
        })
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
        Ok(match self.0.look(key) {
            Some(found) => Key::Found(found),
            None => Key::Unknown(key.to_string().into()),
        })
    }
}

/// Read the rest of an object into `T`'s slots; a union's common
/// members and discriminator go to `other`, unknown keys are skipped.
fn fill<'de, T: Object<'de>, A: MapAccess<'de>>(
    map: &mut A,
    s: &mut T::Slots,
    mut other: impl FnMut(&mut A, Found) -> Result<(), A::Error>,
    common: &[&'static str],
    common_index: &[u8],
    tag: Option<&str>,
) -> Result<(), A::Error> {
    let keys = Keys {
        name: T::NAME,
        names: T::MEMBERS,
        index: T::INDEX,
        common,
        common_index,
        tag,
    };
    loop {
        match map.next_key_seed(SkipSeed(&keys))? {
            None => return Ok(()),
            Some(Found::Member(i)) => {
                let i = i as usize;
                if !T::store(s, i, &mut *map).map_err(|e| at(T::MEMBERS[i], e))? {
                    return Err(duplicate(T::NAME, T::MEMBERS[i]));
                }
            }
            Some(Found::Skip) => drop(map.next_value::<IgnoredAny>()?),
            Some(k) => other(map, k)?,
        }
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Object<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON object ({})", T::NAME)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut s = T::slots();
        fill::<T, A>(&mut map, &mut s, |_, _| Ok(()), &[], &[], None)?;
        T::build(&mut s)
    }
}

/// `Deserialize` for a generated struct.
pub fn object<'de, T: Object<'de>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_map(ObjectVisitor(PhantomData))
}

// ---------------------------------------------------------------------
// Decoding: unions

/// What a generated union tells the runtime: its common members (as an
/// [`Object`] of them, the discriminator left out), the discriminator,
/// and how to read a branch.
pub trait Union<'de>: Sized {
    const NAME: &'static str;
    /// The discriminator's wire name.
    const TAG: &'static str;
    /// The common members other than the discriminator.
    const MEMBERS: &'static [&'static str];
    /// `MEMBERS`' hash index (see `find`); empty: searched in order.
    const INDEX: &'static [u8] = &[];
    /// As [`Object::Slots`].
    type Slots: Slot<'de>;
    type Branch;
    fn slots() -> Self::Slots {
        Self::Slots::default()
    }
    /// As [`Object::store`].
    #[inline]
    fn store<V: Take<'de>>(s: &mut Self::Slots, i: usize, v: V) -> Result<bool, V::Error> {
        s.store(i, v)
    }
    /// Read the branch for discriminator value `tag` from the rest.
    fn branch<A: MapAccess<'de>>(
        tag: &str,
        rest: Rest<'_, 'de, Self, A>,
    ) -> Result<Self::Branch, A::Error>;
    /// The branch of an object without the discriminator (a release
    /// where the type had none), if this union reads such objects.
    fn untagged(_members: Kept) -> Option<Self::Branch> {
        None
    }
    fn build<E: de::Error>(s: &mut Self::Slots, branch: Self::Branch) -> Result<Self, E>;
}

/// The rest of a union's object, once the discriminator is read.
pub struct Rest<'a, 'de, U: Union<'de>, A> {
    map: &'a mut A,
    common: &'a mut U::Slots,
    /// Members that came before the discriminator and are not common.
    held: HeldMembers<'de>,
}

impl<'de, U: Union<'de>, A: MapAccess<'de>> Rest<'_, 'de, U, A> {
    /// The branch's members are those of `B`.
    pub fn members<B: Object<'de>>(mut self) -> Result<B, A::Error> {
        let mut s = B::slots();
        for (k, v) in std::mem::take(&mut self.held) {
            match find_held(B::MEMBERS, B::INDEX, &k) {
                Some(i) => {
                    let stored = B::store(&mut s, i, Held::<A::Error>(v, PhantomData));
                    if !stored.map_err(|e| at(&k, e))? {
                        return Err(duplicate(B::NAME, &k));
                    }
                }
                None if crate::strict() => return Err(unknown(U::NAME, &k)),
                None => {}
            }
        }
        let map = &mut *self.map;
        let common = &mut *self.common;
        fill::<B, A>(
            map,
            &mut s,
            |map, k| match k {
                Found::Common(i) => common_member::<U, A>(common, map, i as usize),
                _ => Err(duplicate(U::NAME, U::TAG)),
            },
            U::MEMBERS,
            U::INDEX,
            Some(U::TAG),
        )?;
        B::build(&mut s)
    }

    /// A branch with no members of its own.
    pub fn empty(self) -> Result<(), A::Error> {
        self.members::<Empty>().map(drop)
    }

    /// A simple union's branch: the value under `data`.
    pub fn data<T: Deserialize<'de>>(self) -> Result<T, A::Error> {
        self.members::<Data<T>>().map(|d| d.0)
    }

    /// A branch whose type is itself a union: its members are gathered
    /// as read and decoded as one object (which finds duplicates).
    pub fn nested<T: Deserialize<'de>>(self) -> Result<T, A::Error> {
        let members = self
            .gather()?
            .into_iter()
            .map(|(k, v)| Ok((Content::String(k.into_owned()), v.into_content()?)))
            .collect::<Result<_, A::Error>>()?;
        T::deserialize(ContentDeserializer::new(Content::Map(members)))
    }

    /// A branch these bindings do not know: in strict mode an error;
    /// otherwise the discriminator's value and the other members as sent.
    pub fn other(self, tag: &str) -> Result<(String, Kept), A::Error> {
        if crate::strict() {
            return Err(de::Error::custom(format_args!(
                "{}: unknown value or branch '{tag}'",
                U::NAME
            )));
        }
        Ok((tag.to_string(), to_kept(U::NAME, self.gather()?)?))
    }

    /// Every member left that is not a common one, as read.
    fn gather(mut self) -> Result<HeldMembers<'de>, A::Error> {
        let mut members = std::mem::take(&mut self.held);
        let keys = union_keys::<U>();
        loop {
            match self.map.next_key_seed(KeepSeed(&keys))? {
                None => return Ok(members),
                Some(Key::Found(Found::Member(i))) => {
                    common_member::<U, A>(self.common, self.map, i as usize)?
                }
                Some(Key::Found(_)) => return Err(duplicate(U::NAME, U::TAG)),
                Some(Key::Unknown(k)) => {
                    let v = self.map.next_value_seed(StashSeed)?;
                    members.push((k, v));
                }
            }
        }
    }
}

/// A union's table of common members, and its discriminator.
fn union_keys<'de, U: Union<'de>>() -> Keys<'static> {
    Keys {
        name: U::NAME,
        names: U::MEMBERS,
        index: U::INDEX,
        common: &[],
        common_index: &[],
        tag: Some(U::TAG),
    }
}

/// Store a union's common member `i`.
fn common_member<'de, U: Union<'de>, A: MapAccess<'de>>(
    s: &mut U::Slots,
    map: &mut A,
    i: usize,
) -> Result<(), A::Error> {
    if U::store(s, i, map).map_err(|e| at(U::MEMBERS[i], e))? {
        Ok(())
    } else {
        Err(duplicate(U::NAME, U::MEMBERS[i]))
    }
}

/// No members.
struct Empty;

impl<'de> Object<'de> for Empty {
    const NAME: &'static str = "branch";
    const MEMBERS: &'static [&'static str] = &[];
    type Slots = ();
    fn build<E: de::Error>(_: &mut ()) -> Result<Self, E> {
        Ok(Empty)
    }
}

struct UnionVisitor<U>(PhantomData<U>);

impl<'de, U: Union<'de>> Visitor<'de> for UnionVisitor<U> {
    type Value = U;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON object ({})", U::NAME)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<U, A::Error> {
        let mut s = U::slots();
        let mut held = Vec::new();
        let keys = union_keys::<U>();
        loop {
            match map.next_key_seed(KeepSeed(&keys))? {
                Some(Key::Found(Found::Member(i))) => {
                    common_member::<U, A>(&mut s, &mut map, i as usize)?
                }
                Some(Key::Found(_)) => {
                    // An enum's wire name: usually borrowed from the input.
                    let tag: Cow<'de, str> = map.next_value_seed(CowStr)?;
                    let rest = Rest {
                        map: &mut map,
                        common: &mut s,
                        held,
                    };
                    let branch = U::branch(&tag, rest)?;
                    return U::build(&mut s, branch);
                }
                Some(Key::Unknown(k)) => {
                    let v = map.next_value_seed(StashSeed)?;
                    held.push((k, v));
                }
                None => break,
            }
        }
        match U::untagged(to_kept(U::NAME, held)?) {
            Some(branch) => U::build(&mut s, branch),
            None => Err(de::Error::custom(format_args!(
                "missing member '{}'",
                U::TAG
            ))),
        }
    }
}

/// A string, borrowed from the input when it can be.
struct CowStr;

impl<'de> DeserializeSeed<'de> for CowStr {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for CowStr {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.to_string().into())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
}

/// `Deserialize` for a generated union.
pub fn union<'de, U: Union<'de>, D: Deserializer<'de>>(d: D) -> Result<U, D::Error> {
    d.deserialize_map(UnionVisitor(PhantomData))
}

// ---------------------------------------------------------------------
// Decoding: enums

/// What a generated enum tells the runtime.
pub trait Enum: Sized {
    const NAME: &'static str;
    /// The value for a wire name, known or not.
    fn from_wire(s: &str) -> Self;
    fn is_known(&self) -> bool;
}

struct EnumVisitor<T>(PhantomData<T>);

impl<T: Enum> Visitor<'_> for EnumVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a string ({})", T::NAME)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        let v = T::from_wire(s);
        known(v.is_known(), T::NAME, s)?;
        Ok(v)
    }
}

/// `Deserialize` for a generated enum.
pub fn wire_enum<'de, T: Enum, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_str(EnumVisitor(PhantomData))
}

/// In strict mode, a value the bindings do not know is an error.
pub fn known<E: de::Error>(known: bool, type_name: &str, value: &str) -> Result<(), E> {
    if !known && crate::strict() {
        return Err(E::custom(format_args!(
            "{type_name}: unknown value or branch '{value}'"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------
// Decoding: alternates

/// What a generated alternate tells the runtime: one function per JSON
/// type it has a branch for (the others are errors), so a value is
/// decoded into its branch without being built first.
pub trait Alternate<'de>: Sized {
    const NAME: &'static str;
    fn string<E: de::Error>(_: &str) -> Result<Self, E> {
        Err(no_branch(Self::NAME, "string"))
    }
    fn number<E: de::Error>(_: serde_json::Number) -> Result<Self, E> {
        Err(no_branch(Self::NAME, "number"))
    }
    fn boolean<E: de::Error>(_: bool) -> Result<Self, E> {
        Err(no_branch(Self::NAME, "boolean"))
    }
    fn null<E: de::Error>() -> Result<Self, E> {
        Err(no_branch(Self::NAME, "null"))
    }
    fn array<A: SeqAccess<'de>>(_: A) -> Result<Self, A::Error> {
        Err(no_branch(Self::NAME, "array"))
    }
    fn object<A: MapAccess<'de>>(_: A) -> Result<Self, A::Error> {
        Err(no_branch(Self::NAME, "object"))
    }
}

fn no_branch<E: de::Error>(type_name: &str, kind: &str) -> E {
    E::custom(format_args!("{type_name}: no branch takes a JSON {kind}"))
}

/// Decode a branch from a string.
pub fn from_str<'de, T: Deserialize<'de>, E: de::Error>(s: &str) -> Result<T, E> {
    T::deserialize(de::value::StrDeserializer::<E>::new(s))
}

/// Decode a branch from a number.
pub fn from_number<'de, T: Deserialize<'de>, E: de::Error>(n: serde_json::Number) -> Result<T, E> {
    T::deserialize(n).map_err(E::custom)
}

/// Decode a branch from a boolean.
pub fn from_bool<'de, T: Deserialize<'de>, E: de::Error>(b: bool) -> Result<T, E> {
    T::deserialize(de::value::BoolDeserializer::<E>::new(b))
}

/// Decode a branch from `null`.
pub fn from_null<'de, T: Deserialize<'de>, E: de::Error>() -> Result<T, E> {
    T::deserialize(de::value::UnitDeserializer::<E>::new())
}

/// Decode a branch from an array.
pub fn from_seq<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(a: A) -> Result<T, A::Error> {
    T::deserialize(de::value::SeqAccessDeserializer::new(a))
}

/// Decode a branch from an object.
pub fn from_map<'de, T: Deserialize<'de>, A: MapAccess<'de>>(m: A) -> Result<T, A::Error> {
    T::deserialize(de::value::MapAccessDeserializer::new(m))
}

struct AlternateVisitor<T>(PhantomData<T>);

impl<'de, T: Alternate<'de>> Visitor<'de> for AlternateVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON value ({})", T::NAME)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::string(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::number(v.into())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::number(v.into())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        match serde_json::Number::from_f64(v) {
            Some(n) => T::number(n),
            None => Err(E::custom("a number that JSON cannot hold")),
        }
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        T::boolean(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        T::null()
    }
    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        T::null()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<T, A::Error> {
        T::array(a)
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<T, A::Error> {
        T::object(m)
    }
}

/// `Deserialize` for a generated alternate.
pub fn alternate<'de, T: Alternate<'de>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(AlternateVisitor(PhantomData))
}

// ---------------------------------------------------------------------
// Commands and events

/// Decode the return value of a command that returns nothing (QEMU
/// sends `{}`; whatever it sends is skipped).
pub fn unit_return<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    IgnoredAny::deserialize(d).map(drop)
}

/// Decode a command's return value.
pub fn typed_return<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    T::deserialize(d)
}

/// Decode a command's arguments and encode them again (the generated
/// `check_arguments`).
pub fn recode<'de, T: Deserialize<'de> + Serialize, D: Deserializer<'de>>(
    d: D,
) -> Result<Value, D::Error> {
    let v = T::deserialize(d)?;
    serde_json::to_value(&v).map_err(de::Error::custom)
}

/// An event message's parts: name, `data` (an empty object when none was
/// sent) and timestamp.
pub fn event_message<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<(String, Value, crate::Timestamp), D::Error> {
    #[derive(Deserialize)]
    struct Message {
        event: String,
        #[serde(default = "no_data")]
        data: Value,
        timestamp: crate::Timestamp,
    }
    fn no_data() -> Value {
        Value::Object(Map::new())
    }
    let m = Message::deserialize(d)?;
    Ok((m.event, m.data, m.timestamp))
}

/// Decode a known event's data (`wrap` makes it the `Event` variant),
/// keeping what was sent when it does not decode.
pub fn event<T: de::DeserializeOwned, E>(
    name: &str,
    data: Value,
    wrap: fn(T) -> E,
) -> Result<E, crate::EventError> {
    match T::deserialize(&data) {
        Ok(v) => Ok(wrap(v)),
        Err(error) => Err(crate::EventError {
            name: name.to_string(),
            data,
            error,
        }),
    }
}

/// A free-form command's further arguments, written after its typed
/// members; a name that is also a typed member (`typed`) is an error, as
/// QEMU would refuse the duplicate.
pub fn props<M: SerializeMap>(
    m: &mut M,
    typed: &[&str],
    props: &Map<String, Value>,
) -> Result<(), M::Error> {
    for (k, v) in props {
        if typed.contains(&k.as_str()) {
            return Err(<M::Error as serde::ser::Error>::custom(format_args!(
                "property '{k}' is also a typed argument: set it there"
            )));
        }
        m.serialize_entry(k, v)?;
    }
    Ok(())
}

/// Take a typed member out of a free-form command's arguments (`None`
/// when absent).
pub fn take_member<T: de::DeserializeOwned, E: de::Error>(
    m: &mut Map<String, Value>,
    key: &'static str,
) -> Result<Option<T>, E> {
    match m.remove(key) {
        Some(v) => T::deserialize(v)
            .map(Some)
            .map_err(|e| E::custom(format_args!("member '{key}': {e}"))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member's value for `Slot::store`, from a number.
    struct Val(u8);

    impl<'de> Take<'de> for Val {
        type Error = serde_json::Error;
        fn take<T: Deserialize<'de>>(self) -> Result<T, serde_json::Error> {
            T::deserialize(Value::from(self.0))
        }
    }

    type O = Option<u8>;

    #[test]
    fn slots_store_by_index_flat_and_nested() {
        let mut flat = <(O, O, O)>::default();
        assert!(flat.store(2, Val(7)).unwrap());
        assert!(!flat.store(2, Val(8)).unwrap(), "a second value is refused");
        assert!(flat.store(3, Val(9)).unwrap(), "past the end: nothing");
        assert_eq!(flat, (None, None, Some(7)));
        // 13 members as the generator nests them: member 12 is the first
        // of the second tuple.
        let mut nested = <((O, O, O, O, O, O, O, O, O, O, O, O), (O,))>::default();
        assert!(nested.store(12, Val(5)).unwrap());
        assert!(nested.store(11, Val(4)).unwrap());
        assert_eq!((nested.0 .11, nested.1 .0), (Some(4), Some(5)));
        assert_eq!(nested.0 .0, None);
    }
}
