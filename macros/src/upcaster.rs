//! `#[upcaster]`: one step of a stored event's chain from an old shape to
//! the next, registered at compile time.
//!
//! With any error, the function is written back unchanged and nothing is
//! registered, so the one error is all the user sees.

use crate::internals::attr::{self, Attr};
use crate::internals::ctxt::Ctxt;
use crate::internals::symbol::{CRATE, FROM, TO, TO_VERSION, UPCASTER, VERSION};
use crate::internals::{debug_expansion, krate};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// What `#[upcaster(..)]` says and what the function looks like.
struct Upcaster<'a> {
    krate: Option<syn::Path>,
    from: String,
    version: u32,
    to: Target,
    item: &'a syn::ItemFn,
    input: &'a syn::Type,
    takes_meta: bool,
    output: Output,
}

/// What the step returns: payloads of one stored `(type, version)`, or
/// values of an `#[event]` type, each stored under its own name.
enum Target {
    Shape(String, u32),
    Events(syn::Path),
}

/// `T`, `Option<T>` (one or none) or `Vec<T>` (any number), optionally in
/// a `Result`, as written.
struct Output {
    fallible: bool,
    many: Many,
    /// `T`, where its checks are reported.
    item: syn::Type,
}

#[derive(Clone, Copy, PartialEq)]
enum Many {
    One,
    Optional,
    Any,
}

/// `to = "Name"` or `to = path::To::EventType`.
enum To {
    Name(syn::LitStr),
    Events(syn::Path),
}

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: syn::ItemFn = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            let e = syn::Error::new_spanned(
                &input,
                "`#[upcaster]` goes on a function from the old payload to the next one",
            );
            return quote!(#input)
                .into_iter()
                .chain(e.into_compile_error())
                .collect();
        }
    };
    let cx = Ctxt::new();
    let ir = parse(&cx, args, &item);
    let errors = cx.check();
    let out = match ir {
        Some(ir) if errors.is_empty() => register(&ir),
        _ => {
            let errors = errors.into_compile_errors();
            quote!(#item #errors)
        }
    };
    debug_expansion("upcaster", &item.sig.ident.to_string(), &out);
    out
}

fn parse<'a>(cx: &Ctxt, args: TokenStream, item: &'a syn::ItemFn) -> Option<Upcaster<'a>> {
    let mut krate = Attr::none(cx, UPCASTER, CRATE);
    let mut from = Attr::none(cx, UPCASTER, FROM);
    let mut version = Attr::none(cx, UPCASTER, VERSION);
    let mut to = Attr::none(cx, UPCASTER, TO);
    let mut to_version = Attr::none(cx, UPCASTER, TO_VERSION);
    let clean = attr::parse_keys(
        cx,
        UPCASTER,
        &[FROM, VERSION, TO, TO_VERSION, CRATE],
        &[],
        args.clone(),
        |meta| {
            if meta.path == FROM {
                from.set(&meta.path, attr::lit_str(meta)?);
            } else if meta.path == VERSION {
                version.set(
                    &meta.path,
                    attr::positive::<u32>(meta, "stored versions start at 1")?,
                );
            } else if meta.path == TO {
                let value = meta.value()?;
                if value.peek(syn::LitStr) {
                    let lit: syn::LitStr = value.parse()?;
                    if lit.value().trim().is_empty() {
                        return Err(syn::Error::new_spanned(&lit, "this name must not be empty"));
                    }
                    to.set(&meta.path, To::Name(lit));
                } else {
                    let path: syn::Path = value.parse().map_err(|e| {
                        syn::Error::new(
                            e.span(),
                            "`to` names the next stored type (`to = \"NewName\"`) or the `#[event]` type whose events the upcaster returns (`to = AccountEvent`)",
                        )
                    })?;
                    to.set(&meta.path, To::Events(path));
                }
            } else if meta.path == TO_VERSION {
                to_version.set(
                    &meta.path,
                    attr::positive::<u32>(meta, "stored versions start at 1")?,
                );
            } else if meta.path == CRATE {
                krate.set(&meta.path, attr::crate_path(meta)?);
            } else {
                return Ok(false);
            }
            Ok(true)
        },
    );
    let (from, version) = (from.get(), version.get());
    if clean && (from.is_none() || version.is_none()) {
        cx.error_spanned_by(
            if args.is_empty() {
                quote!(#[upcaster])
            } else {
                args
            },
            "`#[upcaster]` needs the stored type and version it upcasts: \
             `#[upcaster(from = \"MoneyDeposited\", version = 1)]`",
        );
    }
    let sig = &item.sig;
    if let Some(asyncness) = &sig.asyncness {
        cx.error_spanned_by(
            asyncness,
            "an upcaster is a plain `fn`: events are decoded synchronously",
        );
    }
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(
            &sig.generics,
            "an upcaster cannot be generic: it is registered once, for one stored shape",
        );
    }
    let mut inputs = sig.inputs.iter();
    let (input, takes_meta) = match (inputs.next(), inputs.next(), inputs.next()) {
        (Some(syn::FnArg::Receiver(r)), _, _) => {
            cx.error_spanned_by(r, "an upcaster is a free function, not a method");
            (None, false)
        }
        (Some(syn::FnArg::Typed(arg)), meta, None) => {
            if let Some(meta) = meta
                && !is_meta(meta)
            {
                cx.error_spanned_by(
                    meta,
                    "an upcaster's second argument is the stored event's metadata: `meta: &EventMeta`",
                );
            }
            (Some(&*arg.ty), meta.is_some())
        }
        (_, _, Some(extra)) => {
            cx.error_spanned_by(
                extra,
                "an upcaster takes the old payload and, optionally, the stored event's metadata (`meta: &EventMeta`); nothing more",
            );
            (None, false)
        }
        (None, _, _) => {
            cx.error_spanned_by(
                &sig.ident,
                "an upcaster takes the old payload: a struct of the old fields, or `serde_json::Value`",
            );
            (None, false)
        }
    };
    let output = match &sig.output {
        syn::ReturnType::Default => {
            cx.error_spanned_by(
                sig,
                "an upcaster returns the next payload: a struct of the new fields, `serde_json::Value`, \
                 `Option` of one (none drops the event), `Vec` of them (a split), or `Result` of any of these",
            );
            None
        }
        syn::ReturnType::Type(_, ty) => Some(output(ty)),
    };
    let (from, (_, version)) = (from?, version?);
    let to = match (to.get(), to_version.get()) {
        (Some(To::Events(path)), Some((lit, _))) => {
            cx.error_spanned_by(
                lit,
                format!(
                    "`to_version` goes with a type name: the events of `{}` are each stored under their own name and version",
                    path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default()
                ),
            );
            return None;
        }
        (Some(To::Events(path)), None) => Target::Events(path),
        // A rename keeps the version unless told.
        (Some(To::Name(to)), Some((_, v))) => Target::Shape(to.value(), v),
        (Some(To::Name(to)), None) => Target::Shape(to.value(), version),
        (None, Some((_, v))) => Target::Shape(from.value(), v),
        (None, None) => Target::Shape(from.value(), version.saturating_add(1)),
    };
    if let Target::Shape(to, to_version) = &to
        && *to == from.value()
        && *to_version <= version
    {
        cx.error_spanned_by(
            &from,
            format!("an upcaster of `{}` version {version} must lead to a later version (`to_version` > {version}) or another type (`to = \"..\"`)", from.value()),
        );
    }
    Some(Upcaster {
        krate: krate.get(),
        from: from.value(),
        version,
        to,
        item,
        input: input?,
        takes_meta,
        output: output?,
    })
}

/// `_: &EventMeta` or `_: &EventMeta<'_>`, by the last path segment.
fn is_meta(arg: &syn::FnArg) -> bool {
    let syn::FnArg::Typed(arg) = arg else {
        return false;
    };
    let syn::Type::Reference(r) = &*arg.ty else {
        return false;
    };
    matches!(&*r.elem, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "EventMeta"))
}

/// Reads the return type: `Result<X, _>` or `X`, then `Option<T>`,
/// `Vec<T>` or `T`, by the last path segment as written.
fn output(ty: &syn::Type) -> Output {
    let (fallible, ty) = match single_arg(ty, "Result") {
        Some(ok) => (true, ok),
        None => (false, ty),
    };
    let (many, item) = if let Some(t) = single_arg(ty, "Option") {
        (Many::Optional, t)
    } else if let Some(t) = single_arg(ty, "Vec") {
        (Many::Any, t)
    } else {
        (Many::One, ty)
    };
    Output {
        fallible,
        many,
        item: item.clone(),
    }
}

/// `T` of `Name<T, ..>` (the first type argument), if `ty` is written so.
fn single_arg<'t>(ty: &'t syn::Type, name: &str) -> Option<&'t syn::Type> {
    let syn::Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

fn register(ir: &Upcaster) -> TokenStream {
    let krate = krate(ir.krate.as_ref());
    let item = ir.item;
    let name = &item.sig.ident;
    let input = ir.input;
    let from = (&ir.from, ir.version);
    let (from, version) = from;
    let meta = ir.takes_meta.then(|| quote!(, meta));
    let call = if ir.output.fallible {
        quote!(#name(old #meta).map_err(|e| -> #krate::BoxError { ::core::convert::Into::into(e) })?)
    } else {
        quote!(#name(old #meta))
    };
    // Spanned at the user's argument type: "the trait `Deserialize` is not
    // implemented" lands there.
    let decode = quote_spanned! {input.span()=>
        #krate::__private::serde_json::from_str::<#input>(#krate::Payload::as_str(payload))?
    };
    let items = match ir.output.many {
        Many::One => quote!([new]),
        Many::Optional | Many::Any => quote!(new),
    };
    // Each returned item's bound (`Serialize`, or `Event`) is reported at
    // its type.
    let at = ir.output.item.span();
    let at_krate = crate::internals::respan(&krate, at);
    let to_events = matches!(ir.to, Target::Events(_));
    let (to, shapes) = match &ir.to {
        Target::Shape(to, to_version) => (
            quote!(&[#krate::EventType { name: #to, version: #to_version }]),
            quote_spanned!(at=> #at_krate::__private::payload_shapes(#to, #to_version, #items)?),
        ),
        Target::Events(path) => {
            let at_path = crate::internals::respan(&krate, path.span());
            (
                quote_spanned!(path.span()=> <#path as #at_path::__private::EventTarget>::TYPES),
                quote_spanned!(path.span()=> <#path as #at_path::__private::EventTarget>::shapes(#items)?),
            )
        }
    };
    let meta_param = if ir.takes_meta {
        quote!(meta)
    } else {
        quote!(_meta)
    };
    quote! {
        #item

        const _: () = {
            fn __annals_upcast(
                payload: &#krate::Payload,
                #meta_param: &#krate::handler::EventMeta<'_>,
            ) -> ::core::result::Result<#krate::upcast::Decoded<#krate::upcast::StoredShape>, #krate::BoxError> {
                let old = #decode;
                let new = #call;
                ::core::result::Result::Ok(#shapes)
            }

            #krate::__private::inventory::submit! {
                #krate::upcast::Upcaster {
                    from_type: #from,
                    from_version: #version,
                    to: #to,
                    to_events: #to_events,
                    name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                    step: __annals_upcast,
                }
            }
        };
    }
}
