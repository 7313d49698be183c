//! `#[event]`: stable type names, versions, serde and the decode table.
//!
//! With any error, a stub `Event` impl (no types, unreachable bodies) is
//! written in place of the real one, so aggregates and handlers using the
//! type add no errors of their own.

use crate::internals::ast::{EventItem, EventShape, EventVariant, Payload, PayloadField};
use crate::internals::ctxt::{Ctxt, Errors};
use crate::internals::symbol::EVENT;
use crate::internals::{attr, check, debug_expansion, krate};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut item: syn::Item = match syn::parse2(input) {
        Ok(item) => item,
        Err(e) => return e.into_compile_error(),
    };
    let variant_attrs: Vec<Vec<syn::Attribute>> = match &mut item {
        syn::Item::Enum(e) => e
            .variants
            .iter_mut()
            .map(|v| attr::take_attrs(&mut v.attrs, EVENT))
            .collect(),
        _ => Vec::new(),
    };
    let cx = Ctxt::new();
    let ir = EventItem::from_ast(&cx, args, &item, &variant_attrs);
    if let Some(ir) = &ir {
        check::event_names_unique(&cx, ir);
    }
    let mut errors = cx.check();
    let (generated, krate_path, name) = match &ir {
        Some(ir) => {
            let generated = if errors.is_empty() {
                impl_event(ir)
            } else {
                impl_event_stub(ir, &mut errors)
            };
            (generated, ir.krate.clone(), ir.ident.to_string())
        }
        None => (TokenStream::new(), None, String::new()),
    };
    let errors = errors.into_compile_errors();
    let krate = krate(krate_path.as_ref());
    add_derives(&mut item, &krate, &["Clone", "Debug", "PartialEq"], true);
    let out = quote! {
        #item
        #errors
        #generated
    };
    debug_expansion("event", &name, &out);
    out
}

/// Derives the traits in `std_traits` (and serde's two, if `serde`) that the item does not derive yet.
pub fn add_derives(item: &mut syn::Item, krate: &TokenStream, std_traits: &[&str], serde: bool) {
    let attrs = match item {
        syn::Item::Enum(e) => &mut e.attrs,
        syn::Item::Struct(s) => &mut s.attrs,
        _ => return,
    };
    let present = attr::derived(attrs);
    let mut wanted: Vec<TokenStream> = std_traits
        .iter()
        .filter(|t| !present.iter().any(|p| p == *t))
        .map(|t| {
            let ident = format_ident!("{}", t);
            quote!(::core::prelude::v1::#ident)
        })
        .collect();
    let mut needs_serde_crate = false;
    if serde {
        for t in ["Serialize", "Deserialize"] {
            if !present.iter().any(|p| p == t) {
                let ident = format_ident!("{}", t);
                wanted.push(quote!(#krate::__private::serde::#ident));
                needs_serde_crate = true;
            }
        }
    }
    if !wanted.is_empty() {
        attrs.insert(0, syn::parse_quote!(#[derive(#(#wanted),*)]));
    }
    if needs_serde_crate {
        let path = format!("{krate}::__private::serde").replace(' ', "");
        attrs.push(syn::parse_quote!(#[serde(crate = #path)]));
    }
}

fn impl_event(ir: &EventItem) -> TokenStream {
    let krate = krate(ir.krate.as_ref());
    let ident = ir.ident;
    let serde_crate = format!("{krate}::__private::serde").replace(' ', "");
    let variants: Vec<&EventVariant> = match &ir.shape {
        EventShape::Enum(v) => v.iter().collect(),
        EventShape::Struct(v) => vec![v],
    };
    let types = variants.iter().map(|v| {
        let (name, version) = (&v.name, v.version);
        quote!(#krate::EventType { name: #name, version: #version })
    });
    let (type_arms, version_arms, encode_arms, decode_arms): (Vec<_>, Vec<_>, Vec<_>, Vec<_>) =
        match &ir.shape {
            EventShape::Struct(v) => {
                let (name, version) = (&v.name, v.version);
                (
                    vec![quote!(_ => #name)],
                    vec![quote!(_ => #version)],
                    vec![quote!(_ => #krate::Payload::from_serialize(self))],
                    vec![
                        quote!((#name, #version) => #krate::__private::decode_payload::<Self>(event_type, event_version, payload)),
                    ],
                )
            }
            EventShape::Enum(vs) => {
                let mut parts = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for v in vs {
                    let vi = v.ident.expect("enum variants have idents");
                    let (name, version) = (&v.name, v.version);
                    parts.0.push(quote!(Self::#vi { .. } => #name));
                    parts.1.push(quote!(Self::#vi { .. } => #version));
                    let (enc, dec) = variant_codec(&krate, &serde_crate, vi, &v.payload);
                    parts.2.push(enc);
                    parts.3.push(quote!((#name, #version) => #dec));
                }
                parts
            }
        };
    // Each old name reads as this type at its version, through a step that
    // keeps the payload.
    let krate_ref = &krate;
    let renames: Vec<TokenStream> = variants.iter().flat_map(|v| {
        let (name, version) = (&v.name, v.version);
        let krate = krate_ref;
        v.rename_from.iter().map(move |old| {
            quote! {
                #krate::__private::inventory::submit! {
                    #krate::upcast::Upcaster {
                        from_type: #old,
                        from_version: #version,
                        to: &[#krate::EventType { name: #name, version: #version }],
                        to_events: false,
                        name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident), " (rename_from ", #old, ")"),
                        step: |payload, _| ::core::result::Result::Ok(::core::iter::FromIterator::from_iter([#krate::upcast::StoredShape {
                            event_type: #name,
                            event_version: #version,
                            payload: ::core::clone::Clone::clone(payload),
                        }])),
                    }
                }
            }
        })
    }).collect();
    let moved = (!ir.moved.is_empty()).then(|| {
        let moved = &ir.moved;
        quote!(const MOVED: &'static [&'static str] = &[#(#moved),*];)
    });
    quote! {
        #[allow(non_local_definitions)]
        const _: () = {
            #[automatically_derived]
            impl #krate::Event for #ident {
                const TYPES: &'static [#krate::EventType] = &[#(#types),*];
                #moved

                fn event_type(&self) -> &'static str {
                    match self { #(#type_arms,)* }
                }

                fn event_version(&self) -> u32 {
                    match self { #(#version_arms,)* }
                }

                fn encode(&self) -> ::core::result::Result<#krate::Payload, #krate::__private::serde_json::Error> {
                    match self { #(#encode_arms,)* }
                }

                fn decode(
                    event_type: &str,
                    event_version: u32,
                    payload: &#krate::Payload,
                ) -> ::core::result::Result<Self, #krate::DecodeError> {
                    match Self::__annals_decode(event_type, event_version, payload) {
                        ::core::option::Option::Some(decoded) => decoded,
                        // Not a declared shape: an older one, through its upcasters.
                        ::core::option::Option::None => {
                            #krate::upcast::decode_upcast::<Self>(event_type, event_version, payload)
                        }
                    }
                }

                fn decode_declared(
                    event_type: &str,
                    event_version: u32,
                    payload: &#krate::Payload,
                ) -> ::core::option::Option<::core::result::Result<Self, #krate::DecodeError>> {
                    Self::__annals_decode(event_type, event_version, payload)
                }
            }

            #(#renames)*

            impl #ident {
                /// The declared `(type, version)`s.
                fn __annals_decode(
                    event_type: &str,
                    event_version: u32,
                    payload: &#krate::Payload,
                ) -> ::core::option::Option<::core::result::Result<Self, #krate::DecodeError>> {
                    let _ = &payload;
                    ::core::option::Option::Some(match (event_type, event_version) {
                        #(#decode_arms,)*
                        _ => return ::core::option::Option::None,
                    })
                }
            }
        };
    }
}

/// What an erroneous declaration still provides: the type is an `Event`, so
/// `events = ..` and handlers accept it; it is never run, since the crate
/// does not compile. A generic type is bound on a failed check carrying its
/// error, so its impl (which could not hold for every parameter) stays quiet.
fn impl_event_stub(ir: &EventItem, errors: &mut Errors) -> TokenStream {
    let krate = krate(ir.krate.as_ref());
    let ident = ir.ident;
    let mut generics = ir.generics.clone();
    let failed = (!generics.params.is_empty()).then(|| {
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!([(); __EVENT_OK as usize]:));
        let failed = errors.take_as_check();
        quote!(const __EVENT_OK: bool = #failed;)
    });
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        const _: () = {
        #failed
        #[automatically_derived]
        impl #impl_generics #krate::Event for #ident #ty_generics #where_clause {
            const TYPES: &'static [#krate::EventType] = &[];

            fn event_type(&self) -> &'static str {
                ::core::unreachable!()
            }

            fn event_version(&self) -> u32 {
                ::core::unreachable!()
            }

            fn encode(&self) -> ::core::result::Result<#krate::Payload, #krate::__private::serde_json::Error> {
                ::core::unreachable!()
            }

            fn decode(
                _event_type: &str,
                _event_version: u32,
                _payload: &#krate::Payload,
            ) -> ::core::result::Result<Self, #krate::DecodeError> {
                ::core::unreachable!()
            }
        }
        };
    }
}

/// The encode arm and decode expression of one variant. The payload is the
/// variant's fields as a JSON object (or the wrapped value), without the type
/// name; the fields' own `#[serde(..)]` attributes apply.
fn variant_codec(
    krate: &TokenStream,
    serde_crate: &str,
    vi: &syn::Ident,
    payload: &Payload,
) -> (TokenStream, TokenStream) {
    let serde_path = quote!(#krate::__private::serde);
    match payload {
        Payload::Unit => (
            quote!(Self::#vi => #krate::Payload::from_json("{}")),
            quote!(::core::result::Result::Ok(Self::#vi)),
        ),
        Payload::Newtype(PayloadField { ty, serde, .. }) if serde.is_empty() => (
            quote!(Self::#vi(inner) => #krate::Payload::from_serialize(inner)),
            quote_spanned! {vi.span()=>
                #krate::__private::decode_payload::<#ty>(event_type, event_version, payload).map(Self::#vi)
            },
        ),
        // A newtype struct is stored as its one field, so this is the same
        // payload as above, with the field's attributes applied.
        Payload::Newtype(PayloadField { ty, serde, .. }) => (
            quote! {
                Self::#vi(inner) => {
                    #[derive(#serde_path::Serialize)]
                    #[serde(crate = #serde_crate)]
                    struct __Payload<'__payload>(#(#serde)* &'__payload #ty);
                    #krate::Payload::from_serialize(&__Payload(inner))
                }
            },
            quote! {{
                #[derive(#serde_path::Deserialize)]
                #[serde(crate = #serde_crate)]
                struct __Payload(#(#serde)* #ty);
                #krate::__private::decode_payload::<__Payload>(event_type, event_version, payload)
                    .map(|p| Self::#vi(p.0))
            }},
        ),
        Payload::Named(fields) => {
            let names: Vec<_> = fields
                .iter()
                .map(|f| f.ident.expect("named fields have idents"))
                .collect();
            let tys: Vec<_> = fields.iter().map(|f| f.ty).collect();
            let serde_attrs: Vec<&Vec<&syn::Attribute>> = fields.iter().map(|f| &f.serde).collect();
            let encode = quote! {
                Self::#vi { #(#names),* } => {
                    #[derive(#serde_path::Serialize)]
                    #[serde(crate = #serde_crate)]
                    struct __Payload<'__payload> { #( #(#serde_attrs)* #names: &'__payload #tys, )* }
                    #krate::Payload::from_serialize(&__Payload { #(#names),* })
                }
            };
            let decode = quote! {{
                #[derive(#serde_path::Deserialize)]
                #[serde(crate = #serde_crate)]
                struct __Payload { #( #(#serde_attrs)* #names: #tys, )* }
                #krate::__private::decode_payload::<__Payload>(event_type, event_version, payload)
                    .map(|p| Self::#vi { #(#names: p.#names),* })
            }};
            (encode, decode)
        }
    }
}
