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
    to: String,
    to_version: u32,
    item: &'a syn::ItemFn,
    input: &'a syn::Type,
    fallible: bool,
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
                to.set(&meta.path, attr::lit_str(meta)?);
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
    let input = match (inputs.next(), inputs.next()) {
        (Some(syn::FnArg::Typed(arg)), None) => Some(&*arg.ty),
        (Some(syn::FnArg::Receiver(r)), _) => {
            cx.error_spanned_by(r, "an upcaster is a free function, not a method");
            None
        }
        (_, Some(extra)) => {
            cx.error_spanned_by(extra, "an upcaster takes one argument: the old payload (a struct of the old fields, or `serde_json::Value`)");
            None
        }
        (None, _) => {
            cx.error_spanned_by(
                &sig.ident,
                "an upcaster takes the old payload: a struct of the old fields, or `serde_json::Value`",
            );
            None
        }
    };
    let fallible = match &sig.output {
        syn::ReturnType::Default => {
            cx.error_spanned_by(
                sig,
                "an upcaster returns the next payload: a struct of the new fields, `serde_json::Value`, or `Result` of one",
            );
            false
        }
        syn::ReturnType::Type(_, ty) => returns_result(ty),
    };
    let (from, (_, version)) = (from?, version?);
    let (to, to_version) = match (to.get(), to_version.get()) {
        (Some(to), Some((_, v))) => (to.value(), v),
        // A rename keeps the version unless told.
        (Some(to), None) => (to.value(), version),
        (None, Some((_, v))) => (from.value(), v),
        (None, None) => (from.value(), version.saturating_add(1)),
    };
    if to == from.value() && to_version <= version {
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
        to_version,
        item,
        input: input?,
        fallible,
    })
}

/// Whether the return type is a `Result` (by its last path segment).
fn returns_result(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Result"))
}

fn register(ir: &Upcaster) -> TokenStream {
    let krate = krate(ir.krate.as_ref());
    let item = ir.item;
    let name = &item.sig.ident;
    let input = ir.input;
    let (from, version, to, to_version) = (&ir.from, ir.version, &ir.to, ir.to_version);
    let call = if ir.fallible {
        quote!(#name(old).map_err(|e| -> #krate::BoxError { ::core::convert::Into::into(e) })?)
    } else {
        quote!(#name(old))
    };
    // Spanned at the user's argument type: "the trait `Deserialize` is not
    // implemented" lands there.
    let decode = quote_spanned! {input.span()=>
        #krate::__private::serde_json::from_value::<#input>(value)?
    };
    quote! {
        #item

        const _: () = {
            fn __annals_upcast(
                value: #krate::__private::serde_json::Value,
            ) -> ::core::result::Result<#krate::__private::serde_json::Value, #krate::BoxError> {
                let old = #decode;
                let new = #call;
                ::core::result::Result::Ok(#krate::__private::serde_json::to_value(new)?)
            }

            #krate::__private::inventory::submit! {
                #krate::upcast::Upcaster {
                    from_type: #from,
                    from_version: #version,
                    to_type: #to,
                    to_version: #to_version,
                    name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                    step: __annals_upcast,
                }
            }
        };
    }
}
