//! `Serialize` and `Deserialize` impls, over the runtime's `__private` helpers.

use proc_macro2::{Ident, TokenStream};
use qapi_parser::JsonType;
use quote::quote;

use super::{lit, Gen};

impl Gen<'_> {
    /// `Serialize` and `Deserialize` for a struct of `names` (field,
    /// wire name, optional), through the runtime's object helpers.
    pub(super) fn object_serde(
        &self,
        name: &Ident,
        names: &[(Ident, String, bool)],
    ) -> TokenStream {
        let rt = &self.rt;
        let put = names.iter().map(|(f, wire, opt)| {
            let wire = lit(wire);
            if *opt {
                quote!(m.opt(#wire, &self.#f)?;)
            } else {
                quote!(m.field(#wire, &self.#f)?;)
            }
        });
        let take = names.iter().map(|(f, wire, opt)| {
            let wire = lit(wire);
            if *opt {
                quote!(#f: #rt::__private::optional(&mut m, #wire)?,)
            } else {
                quote!(#f: #rt::__private::required(&mut m, #wire)?,)
            }
        });
        let (m_ser, m_de, m_ref) = if names.is_empty() {
            (quote!(m), quote!(m), quote!(m))
        } else {
            (quote!(mut m), quote!(mut m), quote!(m))
        };
        let type_name = lit(&name.to_string());
        quote! {
            #[allow(deprecated)]
            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    let #m_ser = #rt::__private::object_ser(s)?;
                    #(#put)*
                    m.end()
                }
            }

            #[allow(deprecated)]
            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    let #m_de = #rt::__private::object(d)?;
                    let v = Self { #(#take)* };
                    #rt::__private::finish(&#m_ref, #type_name)?;
                    ::std::result::Result::Ok(v)
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
                    let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                    let v = Self::from_wire(&s);
                    #rt::__private::known(!matches!(v, Self::#other(_)), #ename, &s)?;
                    ::std::result::Result::Ok(v)
                }
            }
        }
    }

    /// `Serialize` and `Deserialize` for an alternate: the branch is
    /// chosen by the value's JSON type.
    pub(super) fn alternate_serde(
        &self,
        name: &Ident,
        qapi_name: &str,
        branches: &[(Ident, TokenStream, JsonType)],
    ) -> TokenStream {
        let rt = &self.rt;
        let ename = lit(qapi_name);
        let mut ser_arms = Vec::new();
        let mut de_arms = Vec::new();
        for (vname, cfg, json) in branches {
            ser_arms.push(quote!(#cfg Self::#vname(v) => ::serde::Serialize::serialize(v, s),));
            let pattern = match json {
                JsonType::String => quote!(::serde_json::Value::String(_)),
                JsonType::Number | JsonType::Int => quote!(::serde_json::Value::Number(_)),
                JsonType::Boolean => quote!(::serde_json::Value::Bool(_)),
                JsonType::Null => quote!(::serde_json::Value::Null),
                JsonType::Array => quote!(::serde_json::Value::Array(_)),
                JsonType::Object | JsonType::Value => quote!(::serde_json::Value::Object(_)),
            };
            de_arms.push(quote!(#cfg #pattern => Self::#vname(#rt::__private::from_value(v)?),));
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
                    let v = <::serde_json::Value as ::serde::Deserialize>::deserialize(d)?;
                    ::std::result::Result::Ok(match v {
                        #(#de_arms)*
                        other => return ::std::result::Result::Err(#rt::__private::no_branch(#ename, &other)),
                    })
                }
            }
        }
    }

    /// `Serialize` and `Deserialize` for a union.
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
                    de_arms.push(quote!(#cfg #wire => {
                        let v = #rt::__private::required(&mut map, "data")?;
                        #rt::__private::finish(&map, #uname)?;
                        #bname::#vname(v)
                    },));
                    ser_arms.push(quote!(#cfg #bname::#vname(v) => {
                        map.insert(#tag_lit.into(), #wire.into());
                        #rt::__private::put(&mut map, "data", v)?;
                    }));
                }
                BranchKind::Empty => {
                    de_arms.push(quote!(#cfg #wire => { #rt::__private::finish(&map, #uname)?; #bname::#vname },));
                    ser_arms.push(
                        quote!(#cfg #bname::#vname => { map.insert(#tag_lit.into(), #wire.into()); }),
                    );
                }
                BranchKind::Members => {
                    de_arms.push(quote!(#cfg #wire => #bname::#vname(#rt::__private::rest(map)?),));
                    ser_arms.push(quote!(#cfg #bname::#vname(v) => {
                        map.insert(#tag_lit.into(), #wire.into());
                        #rt::__private::merge(&mut map, v)?;
                    }));
                }
            }
        }
        let field_idents: Vec<&Ident> = u.fields.iter().map(|(f, _, _)| f).collect();
        let (untagged_ser, tag_de) = match u.untagged {
            Some(v) => (
                quote!(#bname::#v { members } => map.extend(members.clone()),),
                quote! {
                    let tag: ::std::string::String = match #rt::__private::optional(&mut map, #tag_lit)? {
                        ::std::option::Option::Some(tag) => tag,
                        ::std::option::Option::None => {
                            let #branch_field = #bname::#v { members: map };
                            return ::std::result::Result::Ok(Self { #(#field_idents,)* #branch_field });
                        }
                    };
                },
            ),
            None => (
                TokenStream::new(),
                quote!(let tag: ::std::string::String = #rt::__private::required(&mut map, #tag_lit)?;),
            ),
        };
        let take: Vec<TokenStream> = u
            .fields
            .iter()
            .map(|(f, wire, opt)| {
                let wire = lit(wire);
                if *opt {
                    quote!(let #f = #rt::__private::optional(&mut map, #wire)?;)
                } else {
                    quote!(let #f = #rt::__private::required(&mut map, #wire)?;)
                }
            })
            .collect();
        let put: Vec<TokenStream> = u
            .fields
            .iter()
            .map(|(f, wire, opt)| {
                let wire = lit(wire);
                if *opt {
                    quote!(if let ::std::option::Option::Some(v) = &self.#f { #rt::__private::put(&mut map, #wire, v)?; })
                } else {
                    quote!(#rt::__private::put(&mut map, #wire, &self.#f)?;)
                }
            })
            .collect();
        quote! {
            #[allow(deprecated)]
            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                    let mut map = ::serde_json::Map::new();
                    #(#put)*
                    match &self.#branch_field {
                        #(#ser_arms)*
                        #untagged_ser
                        #bname::#other { tag, members } => {
                            map.insert(#tag_lit.into(), tag.clone().into());
                            map.extend(members.clone());
                        }
                    }
                    ::serde::Serialize::serialize(&map, s)
                }
            }

            #[allow(deprecated)]
            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    let mut map = <#rt::__private::Object as ::serde::Deserialize>::deserialize(d)?;
                    #(#take)*
                    #tag_de
                    let #branch_field = match tag.as_str() {
                        #(#de_arms)*
                        _ => {
                            #rt::__private::known(false, #uname, &tag)?;
                            #bname::#other { tag, members: map }
                        }
                    };
                    ::std::result::Result::Ok(Self { #(#field_idents,)* #branch_field })
                }
            }
        }
    }
}

/// How a union branch carries its members.
pub(super) enum BranchKind {
    /// No members beyond the common ones.
    Empty,
    /// The members of a struct type, beside the common ones.
    Members,
    /// A simple union's branch (QEMU before 6.2): the value under `data`.
    Wrapped,
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
    pub fields: &'s [(Ident, String, bool)],
    pub branch_field: &'s Ident,
    pub branches: &'s [Branch],
    pub other: &'s Ident,
    pub untagged: Option<&'s Ident>,
}
