//! `#[event_handler]`: on an impl block whose methods each take one event
//! type, the `EventHandler` impl (interest set, routing, decoding, metadata)
//! and the handler's registration.
//!
//! Whatever is wrong, `EventHandler` is still implemented for the type (a
//! method with a wrong signature is left out of the routing; an attribute in
//! the wrong place gets a stand-in impl bound on a failed check), so code
//! that hands the handler to an app adds no errors.

use crate::internals::ast::{
    HandlerArgs, HandlerImpl, HandlerMethod, ReturnShape, StartFrom, is_unit, type_name,
};
use crate::internals::ctxt::{Ctxt, Errors};
use crate::internals::symbol::{EVENT_HANDLER, HANDLE};
use crate::internals::{attr, check, debug_expansion, krate, respan};
use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: syn::Item = match syn::parse2(input) {
        Ok(item) => item,
        Err(e) => return e.into_compile_error(),
    };
    match item {
        syn::Item::Impl(i) => expand_impl(args, i),
        other => expand_other(args, other),
    }
}

/// The attribute on a struct, an enum or anything else: one error, and for a
/// type, a stand-in impl so that handing it to an app adds none.
fn expand_other(args: TokenStream, item: syn::Item) -> TokenStream {
    let cx = Ctxt::new();
    let args = HandlerArgs::from_args(&cx, args);
    let target = match &item {
        syn::Item::Struct(s) => Some((s.struct_token.span, &s.ident, &s.generics)),
        syn::Item::Enum(e) => Some((e.enum_token.span, &e.ident, &e.generics)),
        syn::Item::Union(u) => Some((u.union_token.span, &u.ident, &u.generics)),
        _ => None,
    };
    match target {
        Some((at, ident, _)) => cx.syn_error(syn::Error::new(
            at,
            format!(
                "`#[event_handler]` goes on the handler's impl block, not on the type: \
                 `#[event_handler] impl {ident} {{ fn on_event(&self, event: &YourEvent) {{ .. }} }}`"
            ),
        )),
        None => cx.error_spanned_by(
            item_head(&item),
            "`#[event_handler]` goes on an inherent impl block whose methods each handle one event type: \
             `#[event_handler] impl YourHandler { fn on_event(&self, event: &YourEvent) { .. } }`",
        ),
    }
    let mut errors = cx.check();
    let stand_in = target.map(|(_, ident, generics)| {
        let (_, ty_generics, _) = generics.split_for_impl();
        let self_ty: syn::Type = syn::parse_quote!(#ident #ty_generics);
        let name = args.name.clone().unwrap_or_else(|| ident.to_string());
        stand_in(&args, &self_ty, generics, &name, &mut errors)
    });
    let errors = errors.into_compile_errors();
    let out = quote! {
        #item
        #errors
        #stand_in
    };
    let name = target.map(|(_, ident, _)| ident.to_string());
    debug_expansion("event_handler", name.as_deref().unwrap_or_default(), &out);
    out
}

pub(crate) fn item_head(item: &syn::Item) -> TokenStream {
    match item {
        syn::Item::Fn(f) => f.sig.fn_token.to_token_stream(),
        syn::Item::Trait(t) => t.trait_token.to_token_stream(),
        syn::Item::Mod(m) => m.mod_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

fn expand_impl(args: TokenStream, mut item: syn::ItemImpl) -> TokenStream {
    let cx = Ctxt::new();
    // Every function is a handler method; per-method attributes are a habit
    // from `#[aggregate]` (or a wish for options there are none of).
    for member in &mut item.items {
        if let syn::ImplItem::Fn(f) = member {
            let handle = attr::take_attrs(&mut f.attrs, HANDLE);
            let nested = attr::take_attrs(&mut f.attrs, EVENT_HANDLER);
            for a in handle.iter().chain(&nested) {
                cx.error_spanned_by(
                    a,
                    format!(
                        "`#[{}]` does not go on a method of an `#[event_handler]` impl: every function there is already a handler method, \
                         for the event type it takes; remove the attribute (and move any helper functions to another impl block)",
                        a.path().to_token_stream()
                    ),
                );
            }
        }
    }
    let ir = HandlerImpl::from_ast(&cx, args, &item);
    let duplicates = check::one_method_per_event_type(&cx, &ir);
    let mut errors = cx.check();
    let name = ir.name();
    let generated = if let Some(path) = ir.trait_path {
        // A stand-in for the self type, unless the trait is `EventHandler`
        // itself, whose impl that would conflict with.
        let is_event_handler = path
            .segments
            .last()
            .is_some_and(|s| s.ident == "EventHandler");
        if is_event_handler {
            TokenStream::new()
        } else {
            stand_in(&ir.args, ir.self_ty, ir.generics, &name, &mut errors)
        }
    } else if !ir.generics.params.is_empty() {
        stand_in(&ir.args, ir.self_ty, ir.generics, &name, &mut errors)
    } else {
        impl_handler(&ir, &name, &duplicates, errors.is_empty())
    };
    let errors = errors.into_compile_errors();
    let out = quote! {
        #item
        #errors
        #generated
    };
    debug_expansion("event_handler", &type_name(ir.self_ty), &out);
    out
}

/// `EventHandler` for a declaration that could not be read (the attribute
/// on a struct, a trait impl, a generic impl), bound on a failed check that
/// carries its first error: the impl exists for uses of the type, and
/// neither it nor they report anything more.
fn stand_in(
    args: &HandlerArgs,
    self_ty: &syn::Type,
    generics: &syn::Generics,
    name: &str,
    errors: &mut Errors,
) -> TokenStream {
    let krate = krate(args.krate.as_ref());
    let failed = errors.take_as_check();
    let mut generics = generics.clone();
    generics
        .make_where_clause()
        .predicates
        .push(syn::parse_quote!([(); __HANDLER_OK as usize]:));
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    quote! {
        const _: () = {
            const __HANDLER_OK: bool = #failed;

            #[automatically_derived]
            impl #impl_generics #krate::handler::EventHandler for #self_ty #where_clause {
                const NAME: &'static str = #name;
                const INTEREST: &'static [&'static [#krate::EventType]] = &[];

                fn handle<'__a>(
                    &'__a self,
                    event: &'__a #krate::RecordedEvent,
                ) -> #krate::handler::HandlerFuture<'__a> {
                    let _ = event;
                    ::std::boxed::Box::pin(#krate::__private::ready(::core::result::Result::Ok(())))
                }
            }
        };
    }
}

/// A method the generated routing calls, with its index in `INTEREST`.
struct Routed<'m, 'a> {
    method: &'m HandlerMethod<'a>,
    event: &'a syn::Type,
    /// `__Handled{i}`: the event type, once checked.
    handled: syn::Ident,
}

/// `EventHandler` for the impl block: each thing it relies on (the handler
/// is `Send + Sync`, each event type is an `#[event]`, each return type is
/// `()` or a `Result` with an error) is checked once, at the user's token,
/// and what is built on it goes through `Checked`, so a failed check is one
/// error. A method whose signature was wrong, or whose event type another
/// method already takes, is left out. The registration is submitted only
/// when nothing was wrong.
fn impl_handler(ir: &HandlerImpl, name: &str, skip: &[usize], complete: bool) -> TokenStream {
    let krate = krate(ir.args.krate.as_ref());
    let self_ty = ir.self_ty;
    let routed: Vec<Routed> = ir
        .methods
        .iter()
        .enumerate()
        .filter(|(i, m)| !m.stub && !skip.contains(i))
        .filter_map(|(_, method)| method.event.map(|event| (method, event)))
        .enumerate()
        .map(|(i, (method, event))| Routed {
            method,
            event,
            handled: format_ident!("__Handled{}", i),
        })
        .collect();

    // `Sync` is checked behind `Send`, so an `Rc` in the handler is one error.
    let at_self = respan(&krate, self_ty.span());
    let self_check = quote_spanned! {self_ty.span()=>
        const __SEND_OK: bool = #at_self::__private::handler_send::<#self_ty>();
        type __Sendable = #krate::__private::Checked<#self_ty, { __SEND_OK }>;
        const __HANDLER_OK: bool = #at_self::__private::handler_sync::<__Sendable>();
    };
    let checks = routed
        .iter()
        .enumerate()
        .map(|(i, r)| method_checks(&krate, i, r));
    let ambiguities = ambiguity_checks(&krate, &type_name(self_ty), &routed);
    let interest = routed.iter().map(|r| {
        let handled = &r.handled;
        quote!(<#handled as #krate::Event>::TYPES)
    });
    let arms = routed
        .iter()
        .enumerate()
        .map(|(i, r)| route_arm(&krate, i, r));
    let start_from = ir.args.start_from.map(|s| {
        let variant = match s {
            StartFrom::Origin => quote!(Origin),
            StartFrom::Now => quote!(Now),
        };
        quote!(const START_FROM: #krate::handler::StartFrom = #krate::handler::StartFrom::#variant;)
    });
    let concurrency = ir.args.concurrency.map(|n| {
        let n = proc_macro2::Literal::usize_unsuffixed(n);
        quote!(const CONCURRENCY: usize = #n;)
    });
    let registration = complete.then(|| registration(&krate, name, self_ty));
    quote! {
        const _: () = {
            #self_check
            #(#checks)*
            #ambiguities

            #[automatically_derived]
            impl #krate::handler::EventHandler for #self_ty
            where
                [(); __HANDLER_OK as usize]:,
            {
                const NAME: &'static str = #name;
                const INTEREST: &'static [&'static [#krate::EventType]] = &[#(#interest),*];
                #start_from
                #concurrency

                fn handle<'__a>(
                    &'__a self,
                    event: &'__a #krate::RecordedEvent,
                ) -> #krate::handler::HandlerFuture<'__a> {
                    match #krate::handler::route(
                        <Self as #krate::handler::EventHandler>::INTEREST,
                        &event.event_type,
                        event.event_version,
                    ) {
                        #(#arms)*
                        _ => ::std::boxed::Box::pin(#krate::__private::ready(::core::result::Result::Ok(()))),
                    }
                }
            }

            #registration
        };
    }
}

/// The registration of a handler's durable name, from which the App
/// refuses two handler types with one name.
pub(crate) fn registration(krate: &TokenStream, name: &str, self_ty: &syn::Type) -> TokenStream {
    let type_name = type_name(self_ty);
    quote! {
        #krate::__private::inventory::submit! {
            #krate::handler::HandlerRegistration {
                name: #name,
                type_name: ::core::concat!(::core::module_path!(), "::", #type_name),
                location: ::core::concat!(::core::file!(), ":", ::core::line!()),
            }
        }
    }
}

/// The method's event type, named once as `__Event{i}` and checked at the
/// user's token. (The path to the check function is spanned there too:
/// rustc reports a bound that fails through a blanket impl at the whole
/// path.) A misspelt type is then one error: rustc reports it at the
/// signature and at the alias, the same error at the same token, once.
fn method_checks(krate: &TokenStream, i: usize, r: &Routed) -> TokenStream {
    event_type_check(krate, i, r.event, &r.handled)
}

/// See [`method_checks`]: `event` checked as the `i`th event type, named
/// `handled` once it passed.
pub(crate) fn event_type_check(
    krate: &TokenStream,
    i: usize,
    event: &syn::Type,
    handled: &syn::Ident,
) -> TokenStream {
    event_type_check_by(krate, i, event, handled, "handled_event")
}

/// [`event_type_check`] through the check function `check` of
/// `__private`, whose bound's message names what takes the event.
pub(crate) fn event_type_check_by(
    krate: &TokenStream,
    i: usize,
    event: &syn::Type,
    handled: &syn::Ident,
    check: &str,
) -> TokenStream {
    let event_alias = format_ident!("__Event{}", i, span = event.span());
    let event_ok = format_ident!("__EVENT_OK{}", i);
    let at_event = respan(krate, event.span());
    let check = format_ident!("{}", check, span = event.span());
    quote_spanned! {event.span()=>
        type #event_alias = #event;
        const #event_ok: bool = #at_event::__private::#check::<#event_alias>();
        type #handled = #krate::__private::Checked<#event_alias, { #event_ok }>;
    }
}

/// Events are routed by type name alone (the runner reads them from the
/// store by name), so two event types of one handler must not share a name:
/// checked for each pair when the generated constants are evaluated, since
/// the names live in each type's `Event::TYPES`. Reported at the second
/// method's event type.
fn ambiguity_checks(krate: &TokenStream, handler: &str, routed: &[Routed]) -> TokenStream {
    let types: Vec<RoutedType> = routed
        .iter()
        .map(|r| (r.event, &r.handled, &r.method.method.sig.ident))
        .collect();
    shared_name_checks(krate, handler, &types)
}

/// An event type routed to a method: as written, its checked alias
/// (`__Handled{i}`), the method.
pub(crate) type RoutedType<'a> = (&'a syn::Type, &'a syn::Ident, &'a syn::Ident);

/// See [`ambiguity_checks`]; `owner` is the type whose methods they are.
pub(crate) fn shared_name_checks(
    krate: &TokenStream,
    owner: &str,
    routed: &[RoutedType],
) -> TokenStream {
    let mut checks = TokenStream::new();
    for (j, &(b_event, b, b_method)) in routed.iter().enumerate() {
        for &(a_event, a, a_method) in &routed[..j] {
            let a_name = a_event.to_token_stream().to_string().replace(' ', "");
            let b_name = b_event.to_token_stream().to_string().replace(' ', "");
            let head = format!(
                "`{b_name}` (taken by `{b_method}`) and `{a_name}` (taken by `{a_method}`) both have an event type named `"
            );
            let tail = format!(
                "`: `{owner}` routes each event to a method by its type name alone, so events of that name would all go to `{a_method}`; \
                 give one of the two types another name with `#[event(rename = \"..\")]`"
            );
            checks.extend(quote_spanned! {b_event.span()=>
                const _: () = match #krate::__private::shared_event_type(
                    <#a as #krate::Event>::TYPES,
                    <#b as #krate::Event>::TYPES,
                ) {
                    ::core::option::Option::Some(name) => {
                        let message = #krate::__private::ConstMessage::new()
                            .push(#head)
                            .push(name)
                            .push(#tail);
                        ::core::panic!("{}", message.as_str())
                    }
                    ::core::option::Option::None => {}
                };
            });
        }
    }
    checks
}

/// The `match` arm routing the `i`th interest entry to its method: decode,
/// call (awaiting an async method), convert the outcome. Its future is
/// spanned at the method's name, where a future that is not `Send` is
/// reported.
fn route_arm(krate: &TokenStream, i: usize, r: &Routed) -> TokenStream {
    let method = &r.method.method.sig.ident;
    let handled = &r.handled;
    let meta = r
        .method
        .takes_meta
        .then(|| quote!(let meta = #krate::handler::EventMeta::of(event);));
    let meta_arg = r.method.takes_meta.then(|| quote!(, &meta));
    let awaited = r.method.is_async.then(|| quote!(.await));
    let call = quote_spanned!(method.span()=> Self::#method(self, &decoded #meta_arg) #awaited);
    // The return type is checked through the returned value, never named
    // here: naming it would repeat rustc's error for a misspelt one (with
    // different help than at the signature, so not merged with it).
    let outcome = match &r.method.output {
        ReturnShape::Unit => quote! {
            #call;
            ::core::result::Result::<(), #krate::handler::HandlerError>::Ok(())
        },
        ReturnShape::Result { ok, error } => {
            // One call checks both halves (its argument spanned there too,
            // as rustc reports an unmet bound at the argument), so its error
            // lands at the half that is most likely wrong: `T` unless it is `()`.
            let at = if is_unit(ok) { error.span() } else { ok.span() };
            let at_krate = respan(krate, at);
            let check = quote_spanned! {at=>
                #at_krate::__private::result_outcome(returned)
            };
            quote! {
                let returned = #call;
                #check.map_err(#krate::handler::HandlerError::Failed)
            }
        }
        ReturnShape::Other(ty) => {
            let at_krate = respan(krate, ty.span());
            let check = quote_spanned! {ty.span()=>
                #at_krate::__private::handler_outcome(returned)
            };
            quote! {
                let returned = #call;
                #check.map_err(#krate::handler::HandlerError::Failed)
            }
        }
    };
    // A stored event may read as several (an upcaster split it) or none.
    let future = quote! {
        async move {
            for decoded in #krate::handler::HandlerError::decode_all::<#handled>(event)? {
                #meta
                let outcome: ::core::result::Result<(), #krate::handler::HandlerError> = { #outcome };
                outcome?;
            }
            ::core::result::Result::Ok(())
        }
    };
    let boxed = quote_spanned!(method.span()=> ::std::boxed::Box::pin(#future));
    quote! {
        ::core::option::Option::Some(#i) => #boxed,
    }
}
