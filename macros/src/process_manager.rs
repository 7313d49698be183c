//! `#[process_manager]`: on an impl block of `#[route]`, `#[handle]` and
//! `#[apply]` functions, each taking one event type, the `ProcessManager`
//! impl (interest set, routing by type name, decoding, metadata) and the
//! registration of its name among the event handlers'.
//!
//! The event types' checks, the check that two of them do not share a type
//! name, and the registration are `#[event_handler]`'s.
//!
//! Whatever is wrong, `ProcessManager` is still implemented for the type (a
//! function with a wrong signature is left out; an attribute in the wrong
//! place gets a stand-in impl bound on a failed check), so code that hands
//! the process manager to an app adds no errors.

use crate::event_handler::{
    RoutedType, event_type_check, item_head, registration, shared_name_checks,
};
use crate::internals::ast::{
    ProcessArgs, ProcessImpl, ProcessMethod, ProcessRole, ReturnShape, return_shape, type_name,
};
use crate::internals::ctxt::{Ctxt, Errors};
use crate::internals::{attr, check, debug_expansion, krate, respan};
use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    match syn::parse2(input) {
        Ok(syn::Item::Impl(item)) => expand_impl(args, item),
        Ok(other) => expand_other(args, other),
        Err(e) => e.into_compile_error(),
    }
}

/// The attribute on a struct, an enum or anything else: one error, and for a
/// type, a stand-in impl so that handing it to an app adds none.
fn expand_other(args: TokenStream, item: syn::Item) -> TokenStream {
    let cx = Ctxt::new();
    let args = ProcessArgs::from_args(&cx, args);
    let target = match &item {
        syn::Item::Struct(s) => Some((&s.ident, &s.generics)),
        syn::Item::Enum(e) => Some((&e.ident, &e.generics)),
        _ => None,
    };
    match target {
        Some((ident, _)) => cx.error_spanned_by(
            ident,
            format!(
                "`#[process_manager]` goes on the process manager's impl block, not on the type: \
                 `#[process_manager] impl {ident} {{ #[route] fn route(event: &YourEvent) -> Route {{ .. }} .. }}`"
            ),
        ),
        None => cx.error_spanned_by(
            item_head(&item),
            "`#[process_manager]` goes on an inherent impl block of `#[route]`, `#[handle]` and `#[apply]` functions: \
             `#[process_manager] impl YourProcess { #[route] fn route(event: &YourEvent) -> Route { .. } .. }`",
        ),
    }
    let mut errors = cx.check();
    let stand_in = target.map(|(ident, generics)| {
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
    let name = target.map(|(ident, _)| ident.to_string());
    debug_expansion("process_manager", name.as_deref().unwrap_or_default(), &out);
    out
}

fn expand_impl(args: TokenStream, mut item: syn::ItemImpl) -> TokenStream {
    let cx = Ctxt::new();
    let roles = take_roles(&cx, &mut item);
    let ir = ProcessImpl::from_ast(&cx, args, &item, &roles);
    let skip = check::process_methods(&cx, &ir);
    let mut errors = cx.check();
    let name = ir.name();
    let generated = match ir.trait_path {
        // No stand-in for `ProcessManager` itself, whose impl is the user's.
        Some(path)
            if path
                .segments
                .last()
                .is_some_and(|s| s.ident == "ProcessManager") =>
        {
            TokenStream::new()
        }
        Some(_) => stand_in(&ir.args, ir.self_ty, ir.generics, &name, &mut errors),
        None if !ir.generics.params.is_empty() => {
            stand_in(&ir.args, ir.self_ty, ir.generics, &name, &mut errors)
        }
        None => impl_process(&ir, &name, &skip, errors.is_empty()),
    };
    let errors = errors.into_compile_errors();
    let out = quote! {
        #item
        #errors
        #generated
    };
    debug_expansion("process_manager", &type_name(ir.self_ty), &out);
    out
}

/// Takes each function's `#[route]`, `#[handle]` or `#[apply]` off it:
/// its role, `None` for a function without one (reported, unless the block
/// is a trait impl, which is reported as a whole).
fn take_roles(cx: &Ctxt, item: &mut syn::ItemImpl) -> Vec<Option<ProcessRole>> {
    let self_name = type_name(&item.self_ty);
    let in_trait = item.trait_.is_some();
    let mut roles = Vec::new();
    for member in &mut item.items {
        let syn::ImplItem::Fn(f) = member else {
            continue;
        };
        let marks: Vec<(ProcessRole, syn::Attribute)> = ProcessRole::ALL
            .into_iter()
            .flat_map(|role| {
                attr::take_attrs(&mut f.attrs, role.symbol())
                    .into_iter()
                    .map(move |a| (role, a))
            })
            .collect();
        let ident = &f.sig.ident;
        let mut role = None;
        for (mark, a) in &marks {
            let mark = *mark;
            if !matches!(a.meta, syn::Meta::Path(_)) {
                cx.error_spanned_by(a, format!("`#[{}]` takes no arguments", mark.symbol()));
            }
            match role {
                None => role = Some(mark),
                Some(first) if first == mark => {
                    cx.error_spanned_by(a, format!("duplicate `#[{}]` attribute", mark.symbol()));
                }
                Some(first) => cx.error_spanned_by(
                    a,
                    format!(
                        "`{ident}` is already a `#[{}]` function; each function of a `#[process_manager]` impl is one of \
                         `#[route]`, `#[handle]` and `#[apply]`: write one function for each",
                        first.symbol()
                    ),
                ),
            }
        }
        if role.is_none() && !in_trait {
            cx.error_spanned_by(
                ident,
                format!(
                    "`{ident}` has no `#[route]`, `#[handle]` or `#[apply]` attribute: every function of a `#[process_manager]` impl is one of them; \
                     if `{ident}` is a helper, move it to another `impl {self_name}` block"
                ),
            );
        }
        roles.push(role);
    }
    roles
}

/// A function the generated impl calls, for the `index`th event type of
/// `INTEREST`, `event` as written in its `#[route]`, checked as `handled`.
struct Called<'m, 'a> {
    method: &'m ProcessMethod<'a>,
    event: &'a syn::Type,
    index: usize,
    handled: syn::Ident,
}

/// `ProcessManager` for the impl block. The state is checked (`Default`,
/// serde, then `Send` and `Sync`, each behind the one before, so a failed
/// check is one error), then each routed event type, as an event handler's;
/// `route`, `handle` and `apply` route a recorded event by its type name to
/// the function for its type. A function whose signature was wrong, or that
/// another already is for its event type, is left out. The registration is
/// submitted only when nothing was wrong.
fn impl_process(ir: &ProcessImpl, name: &str, skip: &[usize], complete: bool) -> TokenStream {
    let krate = krate(ir.args.krate.as_ref());
    let self_ty = ir.self_ty;
    let expanded: Vec<(&ProcessMethod, &syn::Type)> = ir
        .methods
        .iter()
        .enumerate()
        .filter(|(i, m)| !m.stub && !skip.contains(i))
        .filter_map(|(_, m)| m.event.map(|event| (m, event)))
        .collect();
    let routes: Vec<Called> = expanded
        .iter()
        .filter(|(m, _)| m.role == ProcessRole::Route)
        .enumerate()
        .map(|(index, &(method, event))| Called {
            method,
            event,
            index,
            handled: format_ident!("__Handled{}", index),
        })
        .collect();
    // Each `#[handle]` and `#[apply]` goes with its event type's route, by
    // its tokens (`check::process_methods` left out those without one).
    let steps: Vec<Called> = expanded
        .iter()
        .filter(|(m, _)| m.role != ProcessRole::Route)
        .filter_map(|&(method, event)| {
            let key = event.to_token_stream().to_string();
            let route = routes
                .iter()
                .find(|r| r.event.to_token_stream().to_string() == key)?;
            Some(Called {
                method,
                handled: route.handled.clone(),
                ..*route
            })
        })
        .collect();

    let at_self = respan(&krate, self_ty.span());
    let self_check = quote_spanned! {self_ty.span()=>
        const __STATE_OK: bool = #at_self::__private::process_state::<#self_ty>();
        type __State = #krate::__private::Checked<#self_ty, { __STATE_OK }>;
        const __SEND_OK: bool = #at_self::__private::handler_send::<__State>();
        type __Sendable = #krate::__private::Checked<__State, { __SEND_OK }>;
        const __PROCESS_OK: bool = #at_self::__private::handler_sync::<__Sendable>();
    };
    let event_checks = routes
        .iter()
        .map(|r| event_type_check(&krate, r.index, r.event, &r.handled));
    let types: Vec<RoutedType> = routes
        .iter()
        .map(|r| (r.event, &r.handled, &r.method.method.sig.ident))
        .collect();
    let ambiguities = shared_name_checks(&krate, &type_name(self_ty), &types);
    let interest = routes.iter().map(|r| {
        let handled = &r.handled;
        quote!(<#handled as #krate::Event>::TYPES)
    });
    let arms = |role: ProcessRole| -> Vec<TokenStream> {
        routes
            .iter()
            .chain(&steps)
            .filter(|c| c.method.role == role)
            .map(|c| arm(&krate, c))
            .collect()
    };
    let body = ProcessBodies {
        interest: quote!(&[#(#interest),*]),
        route: arms(ProcessRole::Route),
        handle: arms(ProcessRole::Handle),
        apply: arms(ProcessRole::Apply),
    };
    let process = process_impl(&krate, self_ty, &syn::Generics::default(), name, body);
    let registration = complete.then(|| registration(&krate, name, self_ty));
    quote! {
        const _: () = {
            #self_check
            #(#event_checks)*
            #ambiguities

            #process

            #registration
        };
    }
}

/// The `match` arm calling `c`'s function for its event type: decode,
/// build the metadata if it takes it, call, convert what it returns.
fn arm(krate: &TokenStream, c: &Called) -> TokenStream {
    let method = c.method;
    let ident = &method.method.sig.ident;
    let (index, handled) = (c.index, &c.handled);
    let meta = method
        .takes_meta
        .then(|| quote!(let meta = #krate::handler::EventMeta::of(event);));
    let meta_arg = method.takes_meta.then(|| quote!(, &meta));
    let receiver = (method.role != ProcessRole::Route).then(|| quote!(self,));
    let call = quote_spanned!(ident.span()=> Self::#ident(#receiver &decoded #meta_arg));
    // Return types are checked through the returned value, as an event
    // handler's, each at the user's type.
    let checked = |ty: &syn::Type, check: &str| {
        let at = respan(krate, ty.span());
        let check = format_ident!("{}", check, span = ty.span());
        quote_spanned!(ty.span()=> #at::__private::#check(returned))
    };
    let outcome = match (method.role, method.output) {
        (ProcessRole::Route, Some(ty)) => {
            let route = checked(ty, "route_outcome");
            quote! {
                let returned = #call;
                ::core::result::Result::Ok(#route)
            }
        }
        (ProcessRole::Handle, Some(ty)) => {
            let dispatches = match return_shape(ty) {
                // At `T` unless it looks right, as rustc reports the unmet
                // bound of either at the argument.
                ReturnShape::Result { ok, .. } if !is_vec(ok) => checked(ok, "handle_result"),
                ReturnShape::Result { error, .. } => checked(error, "handle_result"),
                _ => checked(ty, "handle_outcome"),
            };
            quote! {
                let returned = #call;
                #dispatches
            }
        }
        _ => quote! {
            #call;
            ::core::result::Result::Ok(())
        },
    };
    // A stored event may read as several (an upcaster split it) or none:
    // the first route that does not ignore it, every dispatch, every apply.
    quote! {
        ::core::option::Option::Some(#index) => {
            let mut combined = #krate::__private::Combine::none();
            for decoded in #krate::handler::HandlerError::decode_all::<#handled>(event)? {
                #meta
                let one = { #outcome }?;
                combined = #krate::__private::Combine::combine(combined, one);
            }
            ::core::result::Result::Ok(combined)
        }
    }
}

/// `Vec<..>`, as written.
fn is_vec(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Vec"))
}

/// What differs between the impl of a declaration and a stand-in.
struct ProcessBodies {
    interest: TokenStream,
    route: Vec<TokenStream>,
    handle: Vec<TokenStream>,
    apply: Vec<TokenStream>,
}

/// `impl ProcessManager`, bound on `__PROCESS_OK`; an event of a type
/// without an arm goes nowhere, dispatches nothing and changes nothing.
fn process_impl(
    krate: &TokenStream,
    self_ty: &syn::Type,
    generics: &syn::Generics,
    name: &str,
    body: ProcessBodies,
) -> TokenStream {
    let mut generics = generics.clone();
    generics
        .make_where_clause()
        .predicates
        .push(syn::parse_quote!([(); __PROCESS_OK as usize]:));
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let routed = |arms: Vec<TokenStream>, otherwise: TokenStream| {
        if arms.is_empty() {
            return quote! {
                let _ = event;
                ::core::result::Result::Ok(#otherwise)
            };
        }
        quote! {
            match #krate::handler::route(
                <Self as #krate::process::ProcessManager>::INTEREST,
                &event.event_type,
                event.event_version,
            ) {
                #(#arms)*
                _ => ::core::result::Result::Ok(#otherwise),
            }
        }
    };
    let interest = body.interest;
    let route = routed(body.route, quote!(#krate::process::Route::Ignore));
    let handle = routed(body.handle, quote!(::std::vec::Vec::new()));
    let apply = routed(body.apply, quote!(()));
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::process::ProcessManager for #self_ty #where_clause {
            const NAME: &'static str = #name;
            const INTEREST: &'static [&'static [#krate::EventType]] = #interest;

            fn route(
                event: &#krate::RecordedEvent,
            ) -> ::core::result::Result<#krate::process::Route, #krate::handler::HandlerError> {
                #route
            }

            fn handle(
                &self,
                event: &#krate::RecordedEvent,
            ) -> ::core::result::Result<::std::vec::Vec<#krate::process::Dispatch>, #krate::handler::HandlerError> {
                #handle
            }

            fn apply(
                &mut self,
                event: &#krate::RecordedEvent,
            ) -> ::core::result::Result<(), #krate::handler::HandlerError> {
                #apply
            }
        }
    }
}

/// `ProcessManager` for a declaration that could not be read (the attribute
/// on a struct, a trait impl, a generic impl), bound on a failed check that
/// carries its first error: the impl exists for uses of the type, and
/// neither it nor they report anything more.
fn stand_in(
    args: &ProcessArgs,
    self_ty: &syn::Type,
    generics: &syn::Generics,
    name: &str,
    errors: &mut Errors,
) -> TokenStream {
    let krate = krate(args.krate.as_ref());
    let failed = errors.take_as_check();
    let body = ProcessBodies {
        interest: quote!(&[]),
        route: Vec::new(),
        handle: Vec::new(),
        apply: Vec::new(),
    };
    let process = process_impl(&krate, self_ty, generics, name, body);
    quote! {
        const _: () = {
            const __PROCESS_OK: bool = #failed;

            #process
        };
    }
}
