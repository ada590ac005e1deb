//! The `commands` and `events` modules: one type per command and event, `check_return`, and `Event`.

use proc_macro2::{Ident, TokenStream};
use qapi_parser::{EntityId, EntityKind};
use quote::{format_ident, quote};

use super::{lit, Gen, Place};
use crate::naming::{ident, variant_name, Scope};

impl Gen<'_> {
    /// A command's or event's data type: its fields, or the named type it
    /// wraps.
    pub(super) fn data_item(
        &mut self,
        id: EntityId,
        arg: Option<EntityId>,
        boxed: bool,
    ) -> TokenStream {
        let name = format_ident!("{}", self.plan.names[&id]);
        match arg {
            Some(a) if boxed || !self.ent(a).is_implicit() => {
                let inner = self.type_path(a, Place::Module);
                // Said in the item's docs instead (see `deprecated_newtype`).
                let hidden = self
                    .deprecated_newtype(self.ent(id))
                    .map(|_| quote!(#[doc(hidden)]));
                let impls = self.newtype_serde(&name);
                let from =
                    Self::from_impl(&quote!(#name), &inner, &TokenStream::new(), quote!(Self(v)));
                quote! {
                    #[derive(Clone, Debug, PartialEq)]
                    pub struct #name(#hidden pub #inner);

                    #from
                    #impls
                }
            }
            Some(a) => {
                let EntityKind::Object(o) = &self.ent(a).kind else {
                    unreachable!()
                };
                let members = o.members.clone();
                let (mut fields, names, ctor) = self.fields(a, id, &members, None, Place::Module);
                let free_form = matches!(&self.ent(id).kind, EntityKind::Command(c) if !c.gen);
                let (impls, props) = if free_form {
                    fields.push(quote! {
                        /// Further arguments, of any JSON type, sent beside
                        /// the typed ones (the schema leaves them open:
                        /// for `device_add`, the device's properties).
                        /// Set them with [`prop`](Self::prop).
                        pub props: ::serde_json::Map<::std::string::String, ::serde_json::Value>,
                    });
                    (self.free_form_serde(&name, &names), self.prop_setter(&name))
                } else {
                    (self.object_serde(&name, &names), TokenStream::new())
                };
                let derive = if Self::all_optional(&ctor) {
                    quote!(#[derive(Clone, Debug, Default, PartialEq)])
                } else {
                    quote!(#[derive(Clone, Debug, PartialEq)])
                };
                let construct = self.constructors(&name, &ctor, None, free_form);
                quote! {
                    #derive
                    pub struct #name {
                        #(#fields)*
                    }

                    #construct
                    #props
                    #impls
                }
            }
            None => {
                let impls = self.object_serde(&name, &[]);
                quote! {
                    #[derive(Clone, Debug, Default, PartialEq)]
                    pub struct #name {}

                    #impls
                }
            }
        }
    }

    pub(super) fn command_item(&mut self, id: EntityId) -> TokenStream {
        let rt = self.rt.clone();
        let e = self.ent(id);
        let EntityKind::Command(c) = &e.kind else {
            unreachable!()
        };
        let name = format_ident!("{}", self.plan.names[&id]);
        let wire = &e.name;
        // A command that is its argument type is documented there.
        let (def, docs) = if self.plan.command_types.contains_key(&id) {
            let cfg = self.cfg(&e.cond);
            (quote!(#cfg pub use super::#name;), TokenStream::new())
        } else {
            (
                self.data_item(id, c.arg_type, c.boxed),
                self.item_docs(e, Some(wire)),
            )
        };
        let wire = lit(wire);
        let extra = self.extra_attrs(&e.name);
        let cfg = self.cfg(&e.cond);
        let oob = c.allow_oob;
        let avail = self.avail_const(id);
        let success = c.success_response;
        let (returns, decode) = match c.ret_type {
            Some(r) => {
                let t = self.type_path(r, Place::Module);
                (t, quote!(#rt::__private::typed_return(d)))
            }
            None => (quote!(()), quote!(#rt::__private::unit_return(d))),
        };
        quote! {
            #docs
            #extra
            #def

            #[allow(deprecated)]
            #cfg
            impl #rt::Command for #name {
                const NAME: &'static str = #wire;
                const ALLOW_OOB: bool = #oob;
                const SUCCESS_RESPONSE: bool = #success;
                #avail
                type Returns = #returns;
                fn decode_return<'de, D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self::Returns, D::Error> {
                    #decode
                }
            }
        }
    }

    pub(super) fn event_item(&mut self, id: EntityId) -> TokenStream {
        let rt = self.rt.clone();
        let e = self.ent(id);
        let EntityKind::Event(ev) = &e.kind else {
            unreachable!()
        };
        let name = format_ident!("{}", self.plan.names[&id]);
        let wire = &e.name;
        let def = self.data_item(id, ev.arg_type, ev.boxed);
        let avail = self.avail_const(id);
        let docs = self.item_docs(e, Some(wire));
        let wire = lit(wire);
        let extra = self.extra_attrs(&e.name);
        quote! {
            #docs
            #extra
            #def

            #[allow(deprecated)]
            impl #rt::Event for #name {
                const NAME: &'static str = #wire;
                #avail
            }
        }
    }

    /// The body of a function that picks by command name: `Some` of
    /// `arm(type)` for the command named `name`, `None` for another name
    /// (`input` is the function's other parameter).
    fn by_command(&self, input: TokenStream, arm: impl Fn(&Ident) -> TokenStream) -> TokenStream {
        let mut arms = Vec::new();
        for (id, e) in self.schema.iter() {
            if let EntityKind::Command(_) = e.kind {
                let ty = format_ident!("{}", self.plan.names[&id]);
                let (wire, cfg, body) = (lit(&e.name), self.cfg(&e.cond), arm(&ty));
                arms.push(quote!(#cfg #wire => #body,));
            }
        }
        if arms.is_empty() {
            quote!(let _ = (name, #input); ::std::option::Option::None)
        } else {
            quote!(::std::option::Option::Some(match name {
                #(#arms)*
                _ => return ::std::option::Option::None,
            }))
        }
    }

    /// `commands::check_return`: decode a reply by command name.
    pub(super) fn check_return(&self) -> TokenStream {
        let rt = &self.rt;
        let body = self.by_command(
            quote!(d),
            |ty| quote!(<#ty as #rt::Command>::decode_return(d).map(drop)),
        );
        quote! {
            /// Decode `d` (a `serde_json::Value`, or a reply's bytes) as
            /// the `return` of the command named `name`, and drop it: for
            /// tools that check replies by name. `None` when these
            /// bindings do not know the command.
            #[allow(deprecated)]
            pub fn check_return<'de, D: ::serde::Deserializer<'de>>(
                name: &str,
                d: D,
            ) -> ::std::option::Option<::std::result::Result<(), D::Error>> {
                #body
            }
        }
    }

    /// `commands::check_arguments`: decode a request's arguments by
    /// command name and encode them again. Generic over the input, like
    /// `check_return`, so `qapi-types` itself compiles no decoder or
    /// encoder for it: only a program that calls it does.
    pub(super) fn check_arguments(&self) -> TokenStream {
        let rt = &self.rt;
        let body = self.by_command(
            quote!(arguments),
            |ty| quote!(#rt::__private::recode::<#ty, D>(arguments)),
        );
        quote! {
            /// Decode `arguments` (a `serde_json::Value`, or a request's
            /// bytes) as those of the command named `name`, and encode
            /// them again: for tools that check requests by name. `None`
            /// when these bindings do not know the command.
            #[allow(deprecated)]
            pub fn check_arguments<'de, D: ::serde::Deserializer<'de>>(
                name: &str,
                arguments: D,
            ) -> ::std::option::Option<::std::result::Result<::serde_json::Value, D::Error>> {
                #body
            }
        }
    }

    pub(super) fn event_enum(&mut self) -> TokenStream {
        let rt = self.rt.clone();
        let mut scope = Scope::new("enum Event");
        let mut variants = Vec::new();
        let mut de_arms = Vec::new();
        let mut name_arms = Vec::new();
        for (id, e) in self.schema.iter() {
            if !matches!(e.kind, EntityKind::Event(_)) {
                continue;
            }
            let ty = format_ident!("{}", self.plan.names[&id]);
            let vname = ident(&scope.name(&e.name, variant_name(&e.name), &mut self.renames));
            let cfg = self.cfg(&e.cond);
            let dep = self.deprecated(&e.features, None);
            let doc = lit(&format!("`{}`", e.name));
            let wire = lit(&e.name);
            variants.push(quote!(#[doc = #doc] #dep #cfg #vname(#ty),));
            de_arms.push(quote!(#cfg #wire => #rt::__private::event(name, data, Event::#vname),));
            name_arms.push(quote!(#cfg Event::#vname(_) => #wire,));
        }
        let other = ident(&scope.name("(catch-all)", "Other".into(), &mut self.renames));
        let (name_body, decode_body) = if variants.is_empty() {
            (
                quote!(let Event::#other { name, .. } = self; name),
                quote!(::std::result::Result::Ok(Event::#other { name: name.to_string(), data })),
            )
        } else {
            (
                quote!(match self {
                    #(#name_arms)*
                    Event::#other { name, .. } => name,
                }),
                quote! {
                    match name {
                        #(#de_arms)*
                        _ => ::std::result::Result::Ok(Event::#other { name: name.to_string(), data }),
                    }
                },
            )
        };
        quote! {
            /// Any event, by name.
            #[derive(Clone, Debug, PartialEq)]
            #[allow(clippy::large_enum_variant, deprecated)]
            pub enum Event {
                #(#variants)*
                /// An event these bindings do not know (from a newer QEMU).
                #other {
                    /// The event's name.
                    name: ::std::string::String,
                    /// Its `data` member as sent.
                    data: ::serde_json::Value,
                },
            }

            #[allow(deprecated)]
            impl Event {
                /// The event's name on the wire.
                pub fn name(&self) -> &str {
                    #name_body
                }

                /// Decode an event from its name and `data` member. An
                /// event these bindings do not know is kept as it was sent
                /// (`Other`); a known one whose data does not decode is an
                /// error that keeps the name, the data and the reason.
                // `inline`: compiled only where it is used (like a generic
                // function), so `qapi-types` does not compile the decoding
                // of every event for programs that never call it.
                #[inline]
                pub fn decode(name: &str, data: ::serde_json::Value) -> ::std::result::Result<Self, #rt::EventError> {
                    #decode_body
                }
            }

            impl #rt::EventSet for Event {
                #[inline]
                fn decode(name: &str, data: ::serde_json::Value) -> ::std::result::Result<Self, #rt::EventError> {
                    Event::decode(name, data)
                }
            }

            /// An event message: the event and when QEMU sent it.
            #[derive(Clone, Debug, PartialEq)]
            pub struct EventMessage {
                /// The event.
                pub event: Event,
                /// When QEMU sent it.
                pub timestamp: #rt::Timestamp,
            }

            impl<'de> ::serde::Deserialize<'de> for EventMessage {
                fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                    let (name, data, timestamp) = #rt::__private::event_message(d)?;
                    let event = Event::decode(&name, data).map_err(<D::Error as ::serde::de::Error>::custom)?;
                    ::std::result::Result::Ok(EventMessage { event, timestamp })
                }
            }
        }
    }
}
