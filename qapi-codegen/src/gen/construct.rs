//! Construction: `new` with the required members, a chained setter per
//! optional member, `From` conversions into unions and alternates.
//!
//! The rule users see: they name only what they set. A struct without
//! required members derives `Default`; any other gets `T::new(required…)`
//! taking each member as `impl Into<_>` (so `&str` works for strings and
//! `BlockdevRef::from("node")` is implied, and `2` for a `number`), except
//! where that would refuse a plain literal or gains nothing: unsigned
//! numbers, `int8` and `int16` are taken as their own type, since an
//! integer literal that no type pins down is an `i32` and `u64` has no
//! `From<i32>` (`impl Into<u64>` refused `.size(1024)`); booleans and
//! enums too, since nothing else converts into them. Every optional member has a
//! setter of the field's name (`.node_name("disk0")`), prefixed `set_`
//! where the name is a method every value has (`clone`, `eq`, …) or
//! `new`. Boxing is hidden: a boxed member's setter boxes. Members a
//! user does not set are never named, so a deprecated one warns only
//! when set.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::Gen;

/// What construction needs of one member.
pub(super) struct CtorField {
    pub ident: Ident,
    pub wire: String,
    /// Optional in the schema (a setter); otherwise a parameter of `new`.
    pub optional: bool,
    /// The field is an `Option` (optional, or required but missing from
    /// an older release these bindings also read).
    pub option: bool,
    pub boxed: bool,
    /// The type without `Option` and `Box`.
    pub inner: TokenStream,
    /// Taken as `inner` itself, not `impl Into<inner>` (unsigned
    /// numbers, `int8`, `int16`, booleans, enums).
    pub plain: bool,
    pub deprecated: bool,
    pub cfg: TokenStream,
}

/// Methods of every value (from derives and common traits) that a setter
/// must not shadow: a setter named `clone` would break `x.clone()`.
const TAKEN_METHODS: &[&str] = &[
    "new",
    "clone",
    "clone_from",
    "eq",
    "ne",
    "fmt",
    "hash",
    "serialize",
    "deserialize",
    "into",
    "try_into",
    "from",
    "to_owned",
    "to_string",
    "borrow",
    "borrow_mut",
    "type_id",
    "tag",
    "branch",
];

impl CtorField {
    /// The type of a parameter or setter argument.
    fn param(&self) -> TokenStream {
        let ty = &self.inner;
        if self.plain {
            ty.clone()
        } else {
            quote!(impl ::std::convert::Into<#ty>)
        }
    }

    /// The value stored for a parameter or setter argument `v`.
    fn store(&self, v: &Ident) -> TokenStream {
        let mut value = if self.plain {
            quote!(#v)
        } else {
            quote!(::std::convert::Into::into(#v))
        };
        if self.boxed {
            value = quote!(::std::boxed::Box::new(#value));
        }
        if self.option {
            value = quote!(::std::option::Option::Some(#value));
        }
        value
    }

    fn setter_name(&self) -> Ident {
        let plain = self.ident.to_string();
        let plain = plain.trim_start_matches("r#");
        if TAKEN_METHODS.contains(&plain) || self.ident.to_string().starts_with("r#") {
            format_ident!("set_{}", plain)
        } else {
            self.ident.clone()
        }
    }
}

impl Gen<'_> {
    /// Whether a struct of these fields can derive `Default`.
    pub(super) fn all_optional(fields: &[CtorField]) -> bool {
        fields.iter().all(|f| f.optional && f.option)
    }

    /// `new` and the setters for a struct (or a union, whose `new` also
    /// takes the branch as `branch_field: impl Into<branch_ty>`).
    pub(super) fn constructors(
        &self,
        name: &Ident,
        fields: &[CtorField],
        branch: Option<(&Ident, &Ident)>,
        props: bool,
    ) -> TokenStream {
        let mut params = Vec::new();
        let mut inits = Vec::new();
        for f in fields {
            let id = &f.ident;
            let cfg = &f.cfg;
            if f.optional {
                inits.push(quote!(#cfg #id: ::std::option::Option::None,));
            } else {
                let param = f.param();
                params.push(quote!(#cfg #id: #param));
                if f.plain && !f.boxed && !f.option {
                    inits.push(quote!(#cfg #id,));
                } else {
                    let value = f.store(id);
                    inits.push(quote!(#cfg #id: #value,));
                }
            }
        }
        if props {
            inits.push(quote!(props: ::serde_json::Map::new(),));
        }
        if let Some((field, ty)) = branch {
            params.push(quote!(#field: impl ::std::convert::Into<#ty>));
            inits.push(quote!(#field: ::std::convert::Into::into(#field),));
        }
        let new = if Self::all_optional(fields) && branch.is_none() {
            // `Default` is derived; `new` would only repeat it.
            TokenStream::new()
        } else {
            let doc = format!(
                " A `{name}` with the given required members; the optional \
                 ones are left out (set them with the methods of their names)."
            );
            quote! {
                #[doc = #doc]
                #[allow(clippy::too_many_arguments)]
                #[inline]
                pub fn new(#(#params),*) -> Self {
                    Self { #(#inits)* }
                }
            }
        };
        let setters = fields.iter().filter(|f| f.optional).map(|f| {
            let id = &f.ident;
            let setter = f.setter_name();
            let param = f.param();
            let cfg = &f.cfg;
            let value = f.store(id);
            let doc = format!(" Set `{}` (`{}` on the wire).", id, f.wire);
            let dep = if f.deprecated {
                quote!(#[deprecated = "this member is deprecated: see its documentation"])
            } else {
                TokenStream::new()
            };
            quote! {
                #[doc = #doc]
                #dep
                #cfg
                #[inline]
                pub fn #setter(mut self, #id: #param) -> Self {
                    self.#id = #value;
                    self
                }
            }
        });
        quote! {
            #[allow(deprecated)]
            impl #name {
                #new
                #(#setters)*
            }
        }
    }

    /// `prop` for a free-form command's further arguments.
    pub(super) fn prop_setter(&self, name: &Ident) -> TokenStream {
        quote! {
            impl #name {
                /// Add a further argument: any JSON value (`true` stays a
                /// boolean, `1` a number: QEMU checks each property's type).
                /// A name that is also a typed argument is an error when
                /// the command is sent.
                pub fn prop(
                    mut self,
                    name: impl ::std::convert::Into<::std::string::String>,
                    value: impl ::std::convert::Into<::serde_json::Value>,
                ) -> Self {
                    self.props.insert(name.into(), value.into());
                    self
                }
            }
        }
    }

    /// `From<source>` for `target`, building it with `body` from `v`.
    pub(super) fn from_impl(
        target: &TokenStream,
        source: &TokenStream,
        cfg: &TokenStream,
        body: TokenStream,
    ) -> TokenStream {
        quote! {
            #cfg
            #[allow(deprecated)]
            impl ::std::convert::From<#source> for #target {
                #[inline]
                fn from(v: #source) -> Self {
                    #body
                }
            }
        }
    }
}
