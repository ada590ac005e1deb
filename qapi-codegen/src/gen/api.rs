//! The `commands` and `events` modules: one type per command and event, `check_return`, and `Event`.

use proc_macro2::TokenStream;
use qapi_parser::{EntityId, EntityKind};
use quote::{format_ident, quote};

use super::{lit, Gen, Place};
use crate::naming::{ident, Scope};

impl Gen<'_> {
    /// A command's or event's data type: its fields, or the named type it
    /// wraps.
    pub(super) fn data_item(
        &mut self,
        id: EntityId,
        arg: Option<EntityId>,
        boxed: bool,
    ) -> TokenStream {
        let name = format_ident!("{}", self.names[&id]);
        match arg {
            Some(a) if boxed || !self.ent(a).is_implicit() => {
                let inner = self.type_path(a, Place::Module);
                let impls = self.newtype_serde(&name);
                quote! {
                    #[derive(Clone, Debug, PartialEq)]
                    pub struct #name(pub #inner);

                    #impls
                }
            }
            Some(a) => {
                let EntityKind::Object(o) = &self.ent(a).kind else {
                    unreachable!()
                };
                let members = o.members.clone();
                let (fields, names) = self.fields(a, id, &members, None, Place::Module);
                let impls = self.object_serde(&name, &names);
                quote! {
                    #[derive(Clone, Debug, PartialEq)]
                    pub struct #name {
                        #(#fields)*
                    }

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
        let name = format_ident!("{}", self.names[&id]);
        let wire = &e.name;
        let def = self.data_item(id, c.arg_type, c.boxed);
        let docs = self.item_docs(e, Some(wire));
        let wire = lit(wire);
        let extra = self.extra_attrs(&e.name);
        let oob = c.allow_oob;
        let success = c.success_response;
        let (returns, decode) = match c.ret_type {
            Some(r) => {
                let t = self.type_path(r, Place::Module);
                (t, quote!(#rt::__private::typed_return(value)))
            }
            None => (quote!(()), quote!(#rt::__private::unit_return(value))),
        };
        quote! {
            #docs
            #extra
            #def

            #[allow(deprecated)]
            impl #rt::Command for #name {
                const NAME: &'static str = #wire;
                const ALLOW_OOB: bool = #oob;
                const SUCCESS_RESPONSE: bool = #success;
                type Returns = #returns;
                fn decode_return(value: ::serde_json::Value) -> ::std::result::Result<Self::Returns, ::serde_json::Error> {
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
        let name = format_ident!("{}", self.names[&id]);
        let wire = &e.name;
        let def = self.data_item(id, ev.arg_type, ev.boxed);
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
            }
        }
    }

    /// `commands::check_return`: decode a reply by command name.
    pub(super) fn check_return(&self) -> TokenStream {
        let rt = &self.rt;
        let mut arms = Vec::new();
        for (i, e) in self.schema.entities.iter().enumerate() {
            if let EntityKind::Command(_) = e.kind {
                let ty = format_ident!("{}", self.names[&EntityId(i as u32)]);
                let wire = lit(&e.name);
                let cfg = self.cfg(&e.cond);
                arms.push(
                    quote!(#cfg #wire => <#ty as #rt::Command>::decode_return(value).map(drop),),
                );
            }
        }
        let body = if arms.is_empty() {
            quote!(let _ = (name, value); ::std::option::Option::None)
        } else {
            quote!(::std::option::Option::Some(match name {
                #(#arms)*
                _ => return ::std::option::Option::None,
            }))
        };
        quote! {
            /// Decode `value` as the `return` of the command named `name`,
            /// and drop it: for tools that check replies by name. `None`
            /// when these bindings do not know the command.
            #[allow(deprecated)]
            pub fn check_return(
                name: &str,
                value: ::serde_json::Value,
            ) -> ::std::option::Option<::std::result::Result<(), ::serde_json::Error>> {
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
        for (i, e) in self.schema.entities.iter().enumerate() {
            let id = EntityId(i as u32);
            if !matches!(e.kind, EntityKind::Event(_)) {
                continue;
            }
            let ty = format_ident!("{}", self.names[&id]);
            let vname = ident(&scope.name(&e.name, self.names[&id].clone(), &mut self.renames));
            let cfg = self.cfg(&e.cond);
            let dep = self.deprecated(&e.features, None);
            let doc = lit(&format!("`{}`", e.name));
            let wire = lit(&e.name);
            variants.push(quote!(#[doc = #doc] #dep #cfg #vname(#ty),));
            de_arms
                .push(quote!(#cfg #wire => #rt::__private::typed_return(data).map(Event::#vname),));
            name_arms.push(quote!(#cfg Event::#vname(_) => #wire,));
        }
        let other = ident(&scope.name("(catch-all)", "Other".into(), &mut self.renames));
        let (name_body, decode_body) = if variants.is_empty() {
            (
                quote!(let Event::#other { name, .. } = self; name),
                quote!(Event::#other { name: name.to_string(), data }),
            )
        } else {
            (
                quote!(match self {
                    #(#name_arms)*
                    Event::#other { name, .. } => name,
                }),
                quote! {
                    let keep = data.clone();
                    let decoded: ::std::result::Result<Self, ::serde_json::Error> = match name {
                        #(#de_arms)*
                        _ => ::std::result::Result::Ok(Event::#other { name: name.to_string(), data }),
                    };
                    decoded.unwrap_or_else(|_| Event::#other { name: name.to_string(), data: keep })
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

                /// Decode an event from its name and `data` member; an
                /// unknown name, or data that does not decode, is kept as
                /// it was sent.
                pub fn decode(name: &str, data: ::serde_json::Value) -> Self {
                    #decode_body
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
                    let mut map = <#rt::__private::Object as ::serde::Deserialize>::deserialize(d)?;
                    let name: ::std::string::String = #rt::__private::required(&mut map, "event")?;
                    let timestamp = #rt::__private::required(&mut map, "timestamp")?;
                    let data = map
                        .remove("data")
                        .unwrap_or_else(|| ::serde_json::Value::Object(::serde_json::Map::new()));
                    ::std::result::Result::Ok(EventMessage { event: Event::decode(&name, data), timestamp })
                }
            }
        }
    }
}
