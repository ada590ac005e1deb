//! `Serialize` and `Deserialize` impls, over the runtime's `__private` helpers.

use proc_macro2::{Ident, Literal, TokenStream};
use qapi_parser::JsonType;
use quote::quote;
use syn::Index;

use super::{lit, Gen};

/// A member as the serde impls need it: field, wire name, optional,
/// the field's type.
pub(super) type Member = (Ident, String, bool, TokenStream);

impl Gen<'_> {
    /// The runtime's description of a struct's (or a union's common)
    /// members: the table of wire names, the slots' type (the runtime
    /// stores into them by index; past 12 members a generated `store`
    /// does), the values for the fields, and the call that writes them.
    fn members_desc(&self, names: &[Member]) -> MembersDesc {
        let rt = &self.rt;
        let wires: Vec<Literal> = names.iter().map(|(_, w, _, _)| lit(w)).collect();
        let mut slot_tys = Vec::new();
        let mut builds = Vec::new();
        let mut entries = Vec::new();
        for (i, (f, wire, opt, ty)) in names.iter().enumerate() {
            let idx = slot_path(i, names.len());
            let wire = lit(wire);
            // The forms below are the ones rustc checks fastest: a path
            // call with nothing to infer but the slot, a `match` where `?`
            // would make it resolve the `Try` conversions once per member,
            // and the members written by one call on a tuple of them
            // (ARCHITECTURE.md, "Where `qapi-types`' build time goes").
            if *opt {
                slot_tys.push(quote!(#ty));
                builds.push(quote!(#f: ::std::mem::take(&mut s.#idx),));
                entries.push(quote!(#rt::__private::Opt(#wire, &self.#f)));
            } else {
                slot_tys.push(quote!(::std::option::Option<#ty>));
                builds.push(quote! {
                    #f: match ::std::mem::take(&mut s.#idx) {
                        ::std::option::Option::Some(v) => v,
                        ::std::option::Option::None => {
                            return ::std::result::Result::Err(#rt::__private::missing(#wire))
                        }
                    },
                });
                entries.push(quote!(#rt::__private::Req(#wire, &self.#f)));
            }
        }
        let puts = if entries.is_empty() {
            None
        } else {
            let members = slot_tuple(entries);
            Some(quote!(#rt::__private::entries(m, #members)))
        };
        // The runtime's `Slot` stores by index into the slots' tuple,
        // except past 12 members, where its tuples nest and it would
        // dispatch twice per member: those types (a few dozen, among
        // them the largest replies' elements) keep one generated
        // `match`.
        let slots = if names.is_empty() {
            quote!(
                type Slots = ();
            )
        } else {
            let slot_tys = slot_tuple(slot_tys);
            quote!(type Slots = #slot_tys;)
        };
        let store = if names.len() > SLOT_CHUNK {
            let arms = (0..names.len()).map(|i| {
                let path = slot_path(i, names.len());
                let i = Literal::usize_unsuffixed(i);
                quote!(#i => #rt::__private::put(&mut s.#path, v),)
            });
            quote! {
                #[inline]
                fn store<V: #rt::__private::Take<'de>>(s: &mut Self::Slots, i: usize, v: V) -> ::std::result::Result<bool, V::Error> {
                    match i {
                        #(#arms)*
                        _ => ::std::result::Result::Ok(true),
                    }
                }
            }
        } else {
            TokenStream::new()
        };
        let param = if names.is_empty() {
            quote!(_: &mut Self::Slots)
        } else {
            quote!(s: &mut Self::Slots)
        };
        let index = match member_index(names.iter().map(|(_, w, _, _)| w.as_str())) {
            Some(index) => {
                let index = Literal::byte_string(&index);
                quote!(const INDEX: &'static [u8] = #index;)
            }
            None => TokenStream::new(),
        };
        MembersDesc {
            table: quote! {
                const MEMBERS: &'static [&'static str] = &[#(#wires),*];
                #index
            },
            slots,
            store,
            param,
            builds,
            puts,
        }
    }

    /// `Serialize` and `Deserialize` for a struct of `names`, over the
    /// runtime's `Fields` and `Object`.
    pub(super) fn object_serde(&self, name: &Ident, names: &[Member]) -> TokenStream {
        let rt = &self.rt;
        let MembersDesc {
            table,
            slots,
            store,
            param,
            builds,
            puts,
        } = self.members_desc(names);
        let type_name = lit(&name.to_string());
        let puts = puts.unwrap_or_else(|| quote!(::std::result::Result::Ok(())));
        let m = if names.is_empty() {
            quote!(_)
        } else {
            quote!(m)
        };
        quote! {
            #[allow(deprecated)]
            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    #rt::__private::ser_object(self, s)
                }
            }

            #[allow(deprecated)]
            impl #rt::__private::Fields for #name {
                fn fields<M: ::serde::ser::SerializeMap>(&self, #m: &mut M) -> ::std::result::Result<(), M::Error> {
                    #puts
                }
            }

            #[allow(deprecated)]
            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    #rt::__private::object(d)
                }
            }

            #[allow(deprecated)]
            impl<'de> #rt::__private::Object<'de> for #name {
                const NAME: &'static str = #type_name;
                #table
                #slots
                #store
                #[inline]
                fn build<E: ::serde::de::Error>(#param) -> ::std::result::Result<Self, E> {
                    ::std::result::Result::Ok(Self { #(#builds)* })
                }
            }
        }
    }

    /// `Serialize` and `Deserialize` for a command's or event's data that
    /// wraps a named type: the wrapped value's.
    pub(super) fn newtype_serde(&self, name: &Ident) -> TokenStream {
        quote! {
            #[allow(deprecated)]
            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    ::serde::Serialize::serialize(&self.0, s)
                }
            }

            #[allow(deprecated)]
            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    ::serde::Deserialize::deserialize(d).map(Self)
                }
            }
        }
    }

    /// `Serialize` and `Deserialize` for a free-form command's arguments:
    /// the typed members, then `props` flat beside them; on decoding,
    /// members that are not typed go to `props`.
    pub(super) fn free_form_serde(&self, name: &Ident, names: &[Member]) -> TokenStream {
        let rt = &self.rt;
        let put = names.iter().map(|(f, wire, opt, _)| {
            let wire = lit(wire);
            if *opt {
                quote!(#rt::__private::opt(&mut m, #wire, &self.#f)?;)
            } else {
                quote!(::serde::ser::SerializeMap::serialize_entry(&mut m, #wire, &self.#f)?;)
            }
        });
        let take = names.iter().map(|(f, wire, opt, _)| {
            let wire = lit(wire);
            if *opt {
                quote!(#f: #rt::__private::take_member(&mut m, #wire)?,)
            } else {
                quote!(#f: #rt::__private::need(#rt::__private::take_member(&mut m, #wire)?, #wire)?,)
            }
        });
        let typed = names.iter().map(|(_, wire, _, _)| lit(wire));
        quote! {
            #[allow(deprecated)]
            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    let mut m = ::serde::Serializer::serialize_map(s, ::std::option::Option::None)?;
                    #(#put)*
                    #rt::__private::props(&mut m, &[#(#typed),*], &self.props)?;
                    ::serde::ser::SerializeMap::end(m)
                }
            }

            #[allow(deprecated)]
            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    let mut m = <::serde_json::Map<::std::string::String, ::serde_json::Value> as ::serde::Deserialize>::deserialize(d)?;
                    ::std::result::Result::Ok(Self { #(#take)* props: m })
                }
            }
        }
    }

    /// `Serialize` and `Deserialize` for an enum: its wire name, through
    /// `as_str` and `from_wire`.
    pub(super) fn enum_serde(&self, name: &Ident, other: &Ident, qapi_name: &str) -> TokenStream {
        let rt = &self.rt;
        let ename = lit(qapi_name);
        quote! {
            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    s.serialize_str(self.as_str())
                }
            }

            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    #rt::__private::wire_enum(d)
                }
            }

            impl #rt::__private::Enum for #name {
                const NAME: &'static str = #ename;
                fn from_wire(s: &str) -> Self {
                    Self::from_wire(s)
                }
                fn is_known(&self) -> bool {
                    !matches!(self, Self::#other(_))
                }
            }
        }
    }

    /// `Serialize` and `Deserialize` for an alternate: the branch is
    /// chosen by the value's JSON type, one runtime entry per type.
    pub(super) fn alternate_serde(
        &self,
        name: &Ident,
        qapi_name: &str,
        branches: &[(Ident, TokenStream, JsonType)],
    ) -> TokenStream {
        let rt = &self.rt;
        let ename = lit(qapi_name);
        let mut ser_arms = Vec::new();
        let mut de_fns = Vec::new();
        for (vname, cfg, json) in branches {
            ser_arms.push(quote!(#cfg Self::#vname(v) => ::serde::Serialize::serialize(v, s),));
            de_fns.push(match json {
                JsonType::String => quote! {
                    #cfg
                    fn string<E: ::serde::de::Error>(v: &str) -> ::std::result::Result<Self, E> {
                        #rt::__private::from_str(v).map(Self::#vname)
                    }
                },
                JsonType::Number | JsonType::Int => quote! {
                    #cfg
                    fn number<E: ::serde::de::Error>(v: ::serde_json::Number) -> ::std::result::Result<Self, E> {
                        #rt::__private::from_number(v).map(Self::#vname)
                    }
                },
                JsonType::Boolean => quote! {
                    #cfg
                    fn boolean<E: ::serde::de::Error>(v: bool) -> ::std::result::Result<Self, E> {
                        #rt::__private::from_bool(v).map(Self::#vname)
                    }
                },
                JsonType::Null => quote! {
                    #cfg
                    fn null<E: ::serde::de::Error>() -> ::std::result::Result<Self, E> {
                        #rt::__private::from_null().map(Self::#vname)
                    }
                },
                JsonType::Array => quote! {
                    #cfg
                    fn array<A: ::serde::de::SeqAccess<'de>>(v: A) -> ::std::result::Result<Self, A::Error> {
                        #rt::__private::from_seq(v).map(Self::#vname)
                    }
                },
                JsonType::Object | JsonType::Value => quote! {
                    #cfg
                    fn object<A: ::serde::de::MapAccess<'de>>(v: A) -> ::std::result::Result<Self, A::Error> {
                        #rt::__private::from_map(v).map(Self::#vname)
                    }
                },
            });
        }
        quote! {
            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    match self {
                        #(#ser_arms)*
                    }
                }
            }

            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    #rt::__private::alternate(d)
                }
            }

            impl<'de> #rt::__private::Alternate<'de> for #name {
                const NAME: &'static str = #ename;
                #(#de_fns)*
            }
        }
    }

    /// `Serialize` and `Deserialize` for a union, over the runtime's
    /// `Fields` and `Union`.
    pub(super) fn union_serde(&self, u: &UnionShape<'_>) -> TokenStream {
        let rt = &self.rt;
        let UnionShape {
            name,
            bname,
            branch_field,
            other,
            ..
        } = *u;
        let tag_lit = lit(u.tag);
        let uname = lit(u.qapi_name);
        let MembersDesc {
            table,
            slots,
            store,
            param,
            builds,
            puts,
        } = self.members_desc(u.fields);
        let mut de_arms = Vec::new();
        let mut ser_arms = Vec::new();
        for Branch {
            vname,
            wire,
            cfg,
            kind,
        } in u.branches
        {
            let wire = lit(wire);
            match kind {
                BranchKind::Wrapped => {
                    de_arms.push(quote!(#cfg #wire => rest.data().map(#bname::#vname),));
                    ser_arms.push(quote!(#cfg #bname::#vname(v) => m.serialize_entry("data", v),));
                }
                BranchKind::Empty => {
                    de_arms.push(quote!(#cfg #wire => rest.empty().map(|()| #bname::#vname),));
                    ser_arms.push(quote!(#cfg #bname::#vname => ::std::result::Result::Ok(()),));
                }
                BranchKind::Members => {
                    de_arms.push(quote!(#cfg #wire => rest.members().map(#bname::#vname),));
                    ser_arms.push(
                        quote!(#cfg #bname::#vname(v) => #rt::__private::Fields::fields(v, m),),
                    );
                }
                BranchKind::Nested => {
                    de_arms.push(quote!(#cfg #wire => rest.nested().map(#bname::#vname),));
                    ser_arms.push(
                        quote!(#cfg #bname::#vname(v) => #rt::__private::Fields::fields(v, m),),
                    );
                }
            }
        }
        let puts = puts.map(returns_err);
        let tag = returns_err(quote!(#rt::__private::tag(m, #tag_lit, self.#branch_field.tag())));
        let (untagged_ser, untagged_de) = match u.untagged {
            Some(v) => (
                quote!(#bname::#v { members } => #rt::__private::kept(m, members),),
                quote! {
                    fn untagged(members: #rt::__private::Kept) -> ::std::option::Option<#bname> {
                        ::std::option::Option::Some(#bname::#v { members })
                    }
                },
            ),
            None => (TokenStream::new(), TokenStream::new()),
        };
        quote! {
            #[allow(deprecated)]
            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    #rt::__private::ser_object(self, s)
                }
            }

            #[allow(deprecated)]
            impl #rt::__private::Fields for #name {
                fn fields<M: ::serde::ser::SerializeMap>(&self, m: &mut M) -> ::std::result::Result<(), M::Error> {
                    #tag
                    #puts
                    match &self.#branch_field {
                        #(#ser_arms)*
                        #untagged_ser
                        #bname::#other { members, .. } => #rt::__private::kept(m, members),
                    }
                }
            }

            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    #rt::__private::union(d)
                }
            }

            #[allow(deprecated)]
            impl<'de> #rt::__private::Union<'de> for #name {
                const NAME: &'static str = #uname;
                const TAG: &'static str = #tag_lit;
                #table
                type Branch = #bname;
                #slots
                #store
                fn branch<A: ::serde::de::MapAccess<'de>>(
                    tag: &str,
                    rest: #rt::__private::Rest<'_, 'de, Self, A>,
                ) -> ::std::result::Result<#bname, A::Error> {
                    match tag {
                        #(#de_arms)*
                        _ => rest.other(tag).map(|(tag, members)| #bname::#other { tag, members }),
                    }
                }
                #untagged_de
                fn build<E: ::serde::de::Error>(#param, #branch_field: #bname) -> ::std::result::Result<Self, E> {
                    ::std::result::Result::Ok(Self { #(#builds)* #branch_field })
                }
            }
        }
    }
}

/// `call;` that returns its error: `if let`, which rustc checks faster
/// than `?` (no `Try` conversion to resolve).
fn returns_err(call: TokenStream) -> TokenStream {
    quote! {
        if let ::std::result::Result::Err(e) = #call {
            return ::std::result::Result::Err(e);
        }
    }
}

/// A member table's hash index, for the runtime's `find`: a seed, then
/// a power-of-two table mapping each member's hash to its place (0xff:
/// none), so a key is found with one hash and one comparison.  `None`
/// (searched in order) for no members, and should no seed separate the
/// names (two names of the same length alike in the bytes
/// `words` reads; none in QEMU's schemas).
pub(crate) fn member_index<'a>(names: impl Iterator<Item = &'a str> + Clone) -> Option<Vec<u8>> {
    let n = names.clone().count();
    if n == 0 || n >= 0xff {
        return None;
    }
    let mut bits = (2 * n).next_power_of_two().trailing_zeros();
    while bits <= 12 {
        for seed in 0..=u8::MAX {
            let mut table = vec![0xffu8; 1 << bits];
            let free = names.clone().enumerate().all(|(i, name)| {
                let h = member_hash(name)(seed);
                let h = (h >> (64 - bits)) as usize;
                let free = table[h] == 0xff;
                table[h] = i as u8;
                free
            });
            if free {
                table.insert(0, seed);
                return Some(table);
            }
        }
        bits += 1;
    }
    None
}

/// A member name's hash for each seed: the runtime's own function
/// (`qapi_runtime::__private::hash`), which looks names up by it.
fn member_hash(name: &str) -> impl Fn(u8) -> u64 + '_ {
    use qapi_runtime::__private::{hash, words};
    let w = words(name.as_bytes());
    move |seed| hash(name.len(), w, seed)
}

/// The pieces of a struct's (or a union's common) member description.
struct MembersDesc {
    table: TokenStream,
    slots: TokenStream,
    /// `store`, for a type whose slots nest (none otherwise).
    store: TokenStream,
    param: TokenStream,
    builds: Vec<TokenStream>,
    /// The call that writes the members (none without members).
    puts: Option<TokenStream>,
}

/// How a union branch carries its members.
pub(super) enum BranchKind {
    /// No members beyond the common ones.
    Empty,
    /// The members of a struct type, beside the common ones.
    Members,
    /// A simple union's branch (QEMU before 6.2): the value under `data`.
    Wrapped,
    /// The members of a union type, beside the common ones.
    Nested,
}

impl BranchKind {
    /// How a branch of type `ty` (an object type) carries its members.
    pub fn members(ty: &qapi_parser::Entity) -> BranchKind {
        match &ty.kind {
            qapi_parser::EntityKind::Object(o) if o.branches.is_some() => BranchKind::Nested,
            _ => BranchKind::Members,
        }
    }
}

/// One branch of a union, as its serde impls need it.
pub(super) struct Branch {
    pub vname: Ident,
    pub wire: String,
    pub cfg: TokenStream,
    pub kind: BranchKind,
}

/// What a union's serde impls need.
pub(super) struct UnionShape<'s> {
    pub qapi_name: &'s str,
    pub name: &'s Ident,
    pub bname: &'s Ident,
    pub tag: &'s str,
    /// The common members other than the discriminator: (field, wire
    /// name, optional).
    pub fields: &'s [Member],
    pub branch_field: &'s Ident,
    pub branches: &'s [Branch],
    pub other: &'s Ident,
    pub untagged: Option<&'s Ident>,
}

/// Tuples are `Default` up to 12 elements: past that, slots are nested
/// in tuples of at most 12 (so `Object::slots` needs no generated
/// function).
const SLOT_CHUNK: usize = 12;

/// The slots' tuple type for these member types.
fn slot_tuple(mut tys: Vec<TokenStream>) -> TokenStream {
    while tys.len() > SLOT_CHUNK {
        tys = tys.chunks(SLOT_CHUNK).map(|c| quote!((#(#c,)*))).collect();
    }
    quote!((#(#tys,)*))
}

/// The field path to slot `i` of `n` in [`slot_tuple`]'s nesting: `3`,
/// or `1.3` for member 15 of 20 (base-12 digits of `i`).
fn slot_path(i: usize, n: usize) -> TokenStream {
    let (mut levels, mut cap) = (0, SLOT_CHUNK);
    while cap < n {
        cap *= SLOT_CHUNK;
        levels += 1;
    }
    let path = (0..=levels)
        .rev()
        .map(|l| Index::from(i / SLOT_CHUNK.pow(l) % SLOT_CHUNK));
    quote!(#(#path).*)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(i: usize, n: usize) -> String {
        slot_path(i, n).to_string().replace(' ', "")
    }

    /// Each name gets its own place in its table (checked as the runtime
    /// finds it: top bits of the runtime's `hash`).
    fn places(names: &[&str]) -> Option<Vec<usize>> {
        let index = member_index(names.iter().copied())?;
        let (seed, table) = index.split_first().unwrap();
        let bits = table.len().trailing_zeros();
        Some(
            names
                .iter()
                .map(|n| {
                    let h = member_hash(n)(*seed);
                    let i = table[(h >> (64 - bits)) as usize];
                    assert_eq!(names[usize::from(i)], *n);
                    usize::from(i)
                })
                .collect(),
        )
    }

    #[test]
    fn every_member_table_gets_an_index() {
        assert_eq!(places(&["data"]), Some(vec![0]));
        assert_eq!(
            places(&["a", "b", "ab", "ba", "aba"]),
            Some(vec![0, 1, 2, 3, 4])
        );
        // Alike in their first and last eight bytes: bytes 8 to 16 count.
        assert!(places(&["invalid_rd_operations", "invalid_wr_operations"]).is_some());
        // Alike in every byte the hash reads: no index (searched in order).
        assert_eq!(
            places(&[
                "0123456789abcdef_x_0123456789",
                "0123456789abcdef_y_0123456789"
            ]),
            None
        );
        assert_eq!(places(&[]), None);
    }

    #[test]
    fn slots_nest_past_twelve_members() {
        assert_eq!(path(3, 12), "3");
        assert_eq!(path(15, 20), "1.3");
        assert_eq!(path(143, 144), "11.11");
        // 150 members: 13 tuples of 12 (the last of 6), nested once more.
        assert_eq!(path(149, 150), "1.0.5");
        assert_eq!(path(0, 150), "0.0.0");
        let tys: Vec<TokenStream> = (0..150usize).map(|i| quote!(T<#i>)).collect();
        let t = slot_tuple(tys).to_string().replace(' ', "");
        // Two elements at the top: twelve tuples of twelve, then one
        // tuple holding the last six.
        assert!(t.starts_with("(((T<0usize>,"), "{t}");
        assert!(
            t.ends_with(
                "),((T<144usize>,T<145usize>,T<146usize>,T<147usize>,T<148usize>,T<149usize>,),),)"
            ),
            "{t}"
        );
    }
}
