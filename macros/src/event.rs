//! `#[event]`: stable type names, versions, serde and the decode table.

use crate::internals::ast::{EventItem, EventShape, EventVariant};
use crate::internals::symbol::EVENT;
use crate::internals::{attr, check, ctxt::Ctxt, debug_expansion, krate};
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
    let (generated, krate_path, name) = match EventItem::from_ast(&cx, args, &item, &variant_attrs)
    {
        Some(ir) => {
            check::event_names_unique(&cx, &ir);
            let generated = if cx.has_errors() {
                TokenStream::new()
            } else {
                impl_event(&ir)
            };
            (generated, ir.krate.clone(), ir.ident.to_string())
        }
        None => (TokenStream::new(), None, String::new()),
    };
    let errors = cx.check().err().map(syn::Error::into_compile_error);
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
                    let (enc, dec) = variant_codec(&krate, &serde_crate, vi, v.fields);
                    parts.2.push(enc);
                    parts.3.push(quote!((#name, #version) => #dec));
                }
                parts
            }
        };
    quote! {
        #[allow(non_local_definitions)]
        const _: () = {
            #[automatically_derived]
            impl #krate::Event for #ident {
                const TYPES: &'static [#krate::EventType] = &[#(#types),*];

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
                    match (event_type, event_version) {
                        #(#decode_arms,)*
                        _ => ::core::result::Result::Err(#krate::__private::unknown_type(event_type, event_version)),
                    }
                }
            }
        };
    }
}

/// The encode arm and decode expression of one variant. The payload is the
/// variant's fields as a JSON object (or the wrapped value), without the type name.
fn variant_codec(
    krate: &TokenStream,
    serde_crate: &str,
    vi: &syn::Ident,
    fields: &syn::Fields,
) -> (TokenStream, TokenStream) {
    match fields {
        syn::Fields::Unit => (
            quote!(Self::#vi => #krate::Payload::from_json("{}")),
            quote!(::core::result::Result::Ok(Self::#vi)),
        ),
        syn::Fields::Unnamed(f) => {
            let ty = &f.unnamed[0].ty;
            (
                quote!(Self::#vi(inner) => #krate::Payload::from_serialize(inner)),
                quote_spanned! {vi.span()=>
                    #krate::__private::decode_payload::<#ty>(event_type, event_version, payload).map(Self::#vi)
                },
            )
        }
        syn::Fields::Named(f) => {
            let names: Vec<_> = f
                .named
                .iter()
                .map(|f| f.ident.as_ref().expect("named field"))
                .collect();
            let tys: Vec<_> = f.named.iter().map(|f| &f.ty).collect();
            let serde_attrs: Vec<Vec<&syn::Attribute>> = f
                .named
                .iter()
                .map(|f| {
                    f.attrs
                        .iter()
                        .filter(|a| a.path().is_ident("serde"))
                        .collect()
                })
                .collect();
            let serde_path = quote!(#krate::__private::serde);
            let encode = quote! {
                Self::#vi { #(#names),* } => {
                    #[derive(#serde_path::Serialize)]
                    #[serde(crate = #serde_crate)]
                    struct __Payload<'__a> { #( #(#serde_attrs)* #names: &'__a #tys, )* }
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
