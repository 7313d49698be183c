//! `#[projection]`: on an impl block whose methods each take the batch's
//! connection and one event type, the `Projection<DB>` impl (the database
//! from the connection type, interest set, routing, decoding, metadata,
//! reset) and the registration of its name among the event handlers'.
//!
//! The event types' checks, the check that two of them do not share a type
//! name, and the registration are `#[event_handler]`'s.
//!
//! Whatever is wrong, `Projection` is still implemented for the type (a
//! method with a wrong signature is left out of the routing; a declaration
//! that could not be read gets a stand-in impl for every database, bound on
//! a failed check), so code that hands the projection to an app adds no
//! errors.

use crate::event_handler::{
    RoutedType, event_type_check_by, item_head, registration, shared_name_checks,
};
use crate::internals::ast::{
    ProjectionArgs, ProjectionImpl, ProjectionMethod, ReturnShape, is_unit, type_name,
};
use crate::internals::ctxt::{Ctxt, Errors};
use crate::internals::symbol::{EVENT_HANDLER, HANDLE, PROJECTION, RESET};
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
    let args = ProjectionArgs::from_args(&cx, args);
    let target = match &item {
        syn::Item::Struct(s) => Some((&s.ident, &s.generics)),
        syn::Item::Enum(e) => Some((&e.ident, &e.generics)),
        _ => None,
    };
    match target {
        Some((ident, _)) => cx.error_spanned_by(
            ident,
            format!(
                "`#[projection]` goes on the projection's impl block, not on the type: \
                 `#[projection] impl {ident} {{ async fn on_event(&self, tx: &mut SqliteConnection, event: &YourEvent) {{ .. }} }}`"
            ),
        ),
        None => cx.error_spanned_by(
            item_head(&item),
            "`#[projection]` goes on an inherent impl block whose methods each project one event type: \
             `#[projection] impl YourProjection { async fn on_event(&self, tx: &mut SqliteConnection, event: &YourEvent) { .. } }`",
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
    debug_expansion("projection", name.as_deref().unwrap_or_default(), &out);
    out
}

fn expand_impl(args: TokenStream, mut item: syn::ItemImpl) -> TokenStream {
    let cx = Ctxt::new();
    let resets = take_resets(&cx, &mut item);
    let ir = ProjectionImpl::from_ast(&cx, args, &item, &resets);
    let duplicates = check::one_projection_method_per_event_type(&cx, &ir);
    let mut errors = cx.check();
    let name = ir.name();
    let generated = match ir.trait_path {
        // No stand-in for `Projection` itself, whose impl is the user's.
        Some(path)
            if path
                .segments
                .last()
                .is_some_and(|s| s.ident == "Projection") =>
        {
            TokenStream::new()
        }
        Some(_) => stand_in(&ir.args, ir.self_ty, ir.generics, &name, &mut errors),
        None if !ir.generics.params.is_empty() => {
            stand_in(&ir.args, ir.self_ty, ir.generics, &name, &mut errors)
        }
        None => match impl_projection(&ir, &name, &duplicates, errors.is_empty()) {
            Some(generated) => generated,
            // No function named its connection (reported): the database is
            // unknown, so the stand-in serves every one.
            None => stand_in(&ir.args, ir.self_ty, ir.generics, &name, &mut errors),
        },
    };
    let errors = errors.into_compile_errors();
    let out = quote! {
        #item
        #errors
        #generated
    };
    debug_expansion("projection", &type_name(ir.self_ty), &out);
    out
}

/// Takes each function's `#[reset]` off it: whether it had one. Attributes
/// of other macros' methods are reported and taken off too.
fn take_resets(cx: &Ctxt, item: &mut syn::ItemImpl) -> Vec<bool> {
    let mut resets = Vec::new();
    for member in &mut item.items {
        let syn::ImplItem::Fn(f) = member else {
            continue;
        };
        let reset = attr::take_attrs(&mut f.attrs, RESET);
        for a in reset.iter().skip(1) {
            cx.error_spanned_by(a, "duplicate `#[reset]` attribute");
        }
        for a in &reset {
            if !matches!(a.meta, syn::Meta::Path(_)) {
                cx.error_spanned_by(a, "`#[reset]` takes no arguments");
            }
        }
        let foreign = [HANDLE, EVENT_HANDLER, PROJECTION]
            .into_iter()
            .flat_map(|s| attr::take_attrs(&mut f.attrs, s));
        for a in foreign {
            cx.error_spanned_by(
                &a,
                format!(
                    "`#[{}]` does not go on a method of a `#[projection]` impl: every function there projects the event type it takes, \
                     except the one marked `#[reset]`; remove the attribute (and move any helper functions to another impl block)",
                    a.path().to_token_stream()
                ),
            );
        }
        resets.push(!reset.is_empty());
    }
    resets
}

/// `Projection<DB>` for every database, for a declaration that could not be
/// read (the attribute on a struct, a trait impl, a generic impl, no
/// function naming its connection), bound on a failed check that carries
/// its first error: the impl exists for uses of the type on any pool, and
/// neither it nor they report anything more.
fn stand_in(
    args: &ProjectionArgs,
    self_ty: &syn::Type,
    generics: &syn::Generics,
    name: &str,
    errors: &mut Errors,
) -> TokenStream {
    let krate = krate(args.krate.as_ref());
    let failed = errors.take_as_check();
    let mut generics = generics.clone();
    generics
        .params
        .push(syn::parse_quote!(__DB: #krate::projection::ProjectionDatabase));
    generics
        .make_where_clause()
        .predicates
        .push(syn::parse_quote!([(); __PROJECTION_OK as usize]:));
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    quote! {
        const _: () = {
            const __PROJECTION_OK: bool = #failed;

            #[automatically_derived]
            impl #impl_generics #krate::projection::Projection<__DB> for #self_ty #where_clause {
                const NAME: &'static str = #name;
                const INTEREST: &'static [&'static [#krate::EventType]] = &[];

                fn project<'__a>(
                    &'__a self,
                    tx: &'__a mut __DB::Connection,
                    event: &'__a #krate::RecordedEvent,
                ) -> #krate::handler::HandlerFuture<'__a> {
                    let _ = (tx, event);
                    ::std::boxed::Box::pin(#krate::__private::ready(::core::result::Result::Ok(())))
                }
            }
        };
    }
}

/// A method the generated routing calls, with its index in `INTEREST`.
struct Routed<'m, 'a> {
    method: &'m ProjectionMethod<'a>,
    event: &'a syn::Type,
    /// `__Handled{i}`: the event type, once checked.
    handled: syn::Ident,
    /// `__Agreed{j}`: its connection, once checked to be the projection's.
    agreed: syn::Ident,
}

/// `Projection<DB>` for the impl block, `DB` being the database of the
/// first method's connection (`ProjectionConnection::Database`). Each thing
/// it relies on is checked once, at the user's token (the projection is
/// `Send + Sync`; each connection is a sqlx connection, and the first one's
/// type; each event type is an `#[event]`), and what is built on it goes
/// through `Checked`, so a failed check is one error. A method whose
/// signature was wrong, or whose event type another method already takes,
/// is left out. `None` when no function names a connection (an error was
/// reported). The registration is submitted only when nothing was wrong.
fn impl_projection(
    ir: &ProjectionImpl,
    name: &str,
    skip: &[usize],
    complete: bool,
) -> Option<TokenStream> {
    let krate = krate(ir.args.krate.as_ref());
    let self_ty = ir.self_ty;
    let expanded: Vec<&ProjectionMethod> = ir
        .methods
        .iter()
        .enumerate()
        .filter(|(i, m)| !m.stub && !skip.contains(i))
        .map(|(_, m)| m)
        .collect();
    let reset = ir.reset.as_ref().filter(|r| !r.stub);
    // Each connection, in order: the routed methods', then the reset's.
    let connections: Vec<&syn::Type> = expanded
        .iter()
        .copied()
        .chain(reset)
        .filter_map(|m| m.connection)
        .collect();
    let connection_checks = connection_checks(&krate, &connections)?;
    let routed: Vec<Routed> = expanded
        .iter()
        .filter_map(|m| m.event.map(|event| (*m, event)))
        .enumerate()
        .map(|(i, (method, event))| Routed {
            method,
            event,
            handled: format_ident!("__Handled{}", i),
            agreed: format_ident!("__Agreed{}", i),
        })
        .collect();

    // `Sync` is checked behind `Send`, so an `Rc` in the projection is one error.
    let at_self = respan(&krate, self_ty.span());
    let self_check = quote_spanned! {self_ty.span()=>
        const __SEND_OK: bool = #at_self::__private::projection_send::<#self_ty>();
        type __Sendable = #krate::__private::Checked<#self_ty, { __SEND_OK }>;
        const __PROJECTION_OK: bool = #at_self::__private::projection_sync::<__Sendable>();
    };
    let event_checks = routed
        .iter()
        .enumerate()
        .map(|(i, r)| event_type_check_by(&krate, i, r.event, &r.handled, "projected_event"));
    let types: Vec<RoutedType> = routed
        .iter()
        .map(|r| (r.event, &r.handled, &r.method.method.sig.ident))
        .collect();
    let ambiguities = shared_name_checks(&krate, &type_name(self_ty), &types);
    let interest = routed.iter().map(|r| {
        let handled = &r.handled;
        quote!(<#handled as #krate::Event>::TYPES)
    });
    let arms = routed
        .iter()
        .enumerate()
        .map(|(i, r)| route_arm(&krate, i, r));
    let reset = reset.map(|r| {
        let agreed = format_ident!("__Agreed{}", routed.len());
        reset_fn(&krate, r, &agreed)
    });
    let registration = complete.then(|| registration(&krate, name, self_ty));
    Some(quote! {
        const _: () = {
            #self_check
            #connection_checks
            #(#event_checks)*
            #ambiguities

            #[automatically_derived]
            impl #krate::projection::Projection<__Database> for #self_ty
            where
                [(); __PROJECTION_OK as usize]:,
            {
                const NAME: &'static str = #name;
                const INTEREST: &'static [&'static [#krate::EventType]] = &[#(#interest),*];

                fn project<'__a>(
                    &'__a self,
                    tx: &'__a mut __Connection,
                    event: &'__a #krate::RecordedEvent,
                ) -> #krate::handler::HandlerFuture<'__a> {
                    match #krate::handler::route(
                        <Self as #krate::projection::Projection<__Database>>::INTEREST,
                        &event.event_type,
                        event.event_version,
                    ) {
                        #(#arms)*
                        _ => {
                            let _ = tx;
                            ::std::boxed::Box::pin(#krate::__private::ready(::core::result::Result::Ok(())))
                        }
                    }
                }

                #reset
            }

            #registration
        };
    })
}

/// Each connection type named once as `__Conn{j}` and checked at the
/// user's token to be a sqlx connection a projection can write through;
/// the first one is the projection's (`__Connection`, its database
/// `__Database`), and every other is checked to be that one too, as
/// `__Agreed{j}`, which the generated call converts the connection into (so
/// a method on another database is that one error, not also a mismatched
/// argument). `None` without any connection.
fn connection_checks(krate: &TokenStream, connections: &[&syn::Type]) -> Option<TokenStream> {
    if connections.is_empty() {
        return None;
    }
    let mut checks = TokenStream::new();
    for (j, connection) in connections.iter().enumerate() {
        let span = connection.span();
        let alias = format_ident!("__Conn{}", j, span = span);
        let ok = format_ident!("__CONNECTION_OK{}", j);
        // Spanned there: rustc reports an unmet bound of `same_connection`
        // at its type argument.
        let checked = format_ident!("__Connection{}", j, span = span);
        let agreed = format_ident!("__Agreed{}", j);
        let same = format_ident!("__SAME_OK{}", j);
        let at = respan(krate, span);
        checks.extend(quote_spanned! {span=>
            type #alias = #connection;
            const #ok: bool = #at::__private::projection_connection::<#alias>();
            type #checked = #krate::__private::Checked<#alias, { #ok }>;
        });
        if j == 0 {
            // Named when the connection's name tells it: coherence does not
            // see through the associated type, so two blocks of one type
            // on two databases would otherwise conflict.
            let database = match known_database(connection) {
                Some(database) => {
                    let database = format_ident!("{}", database);
                    quote!(#krate::__private::#database)
                }
                None => quote!(<__Connection as #krate::__private::ProjectionConnection>::Database),
            };
            checks.extend(quote! {
                type __Connection = #checked;
                type __Database = #database;
                type #agreed = __Connection;
            });
        } else {
            checks.extend(quote_spanned! {span=>
                const #same: bool = #at::__private::same_connection::<#checked, __Connection>();
                type #agreed = #krate::__private::Checked<#checked, { #same }>;
            });
        }
    }
    Some(checks)
}

/// The database of `SqliteConnection` or `PgConnection` (by the last
/// segment of the path), as `__private` names it; `None` for any other
/// name (an alias), whose database is then its `ProjectionConnection`'s.
fn known_database(connection: &syn::Type) -> Option<&'static str> {
    let p = match connection {
        syn::Type::Path(p) => p,
        // A `$conn:ty` of a `macro_rules!`.
        syn::Type::Group(g) => return known_database(&g.elem),
        syn::Type::Paren(p) => return known_database(&p.elem),
        _ => return None,
    };
    let last = p.path.segments.last()?;
    if p.qself.is_some() || !last.arguments.is_empty() {
        return None;
    }
    match last.ident.to_string().as_str() {
        "SqliteConnection" => Some("Sqlite"),
        "PgConnection" => Some("Postgres"),
        _ => None,
    }
}

/// The method called with the batch's connection, converted into its own
/// connection type (the same, once checked).
fn call(
    krate: &TokenStream,
    method: &ProjectionMethod,
    agreed: &syn::Ident,
    rest: TokenStream,
) -> TokenStream {
    let ident = &method.method.sig.ident;
    let awaited = method.is_async.then(|| quote!(.await));
    let tx = quote!(<#agreed as #krate::__private::SameConnection<__Connection>>::same(tx));
    // Only the path at the method's name: `self` spanned there would not
    // resolve when the impl block comes from a `macro_rules!`.
    let path = quote_spanned!(ident.span()=> Self::#ident);
    quote!(#path(self, #tx #rest) #awaited)
}

/// The method's outcome as `Result<(), BoxError>`; its return type is
/// checked through the returned value, at the user's type, as an event
/// handler method's.
fn outcome(krate: &TokenStream, call: TokenStream, output: &ReturnShape) -> TokenStream {
    match output {
        ReturnShape::Unit => quote! {
            #call;
            ::core::result::Result::<(), #krate::BoxError>::Ok(())
        },
        ReturnShape::Result { ok, error } => {
            let at = if is_unit(ok) { error.span() } else { ok.span() };
            let at_krate = respan(krate, at);
            let check = quote_spanned! {at=>
                #at_krate::__private::result_outcome(returned)
            };
            quote! {
                let returned = #call;
                #check
            }
        }
        ReturnShape::Other(ty) => {
            let at_krate = respan(krate, ty.span());
            let check = quote_spanned! {ty.span()=>
                #at_krate::__private::handler_outcome(returned)
            };
            quote! {
                let returned = #call;
                #check
            }
        }
    }
}

/// The `match` arm routing the `i`th interest entry to its method: decode,
/// call with the connection (awaiting an async method), convert the
/// outcome. Its future is spanned at the method's name, where a future that
/// is not `Send` is reported.
fn route_arm(krate: &TokenStream, i: usize, r: &Routed) -> TokenStream {
    let method = &r.method.method.sig.ident;
    let handled = &r.handled;
    let meta = r
        .method
        .takes_meta
        .then(|| quote!(let meta = #krate::handler::EventMeta::of(event);));
    let meta_arg = r.method.takes_meta.then(|| quote!(, &meta));
    let call = call(krate, r.method, &r.agreed, quote!(, &decoded #meta_arg));
    let outcome = outcome(krate, call, &r.method.output);
    let future = quote! {
        async move {
            // A stored event may read as several (an upcaster split it) or none.
            for decoded in #krate::handler::HandlerError::decode_all::<#handled>(event)? {
                #meta
                let outcome: ::core::result::Result<(), #krate::BoxError> = { #outcome };
                outcome.map_err(#krate::handler::HandlerError::Failed)?;
            }
            ::core::result::Result::Ok(())
        }
    };
    let boxed = quote_spanned!(method.span()=> ::std::boxed::Box::pin(#future));
    quote! {
        ::core::option::Option::Some(#i) => #boxed,
    }
}

/// `reset`, calling the `#[reset]` function.
fn reset_fn(krate: &TokenStream, r: &ProjectionMethod, agreed: &syn::Ident) -> TokenStream {
    let call = call(krate, r, agreed, TokenStream::new());
    let outcome = outcome(krate, call, &r.output);
    let boxed =
        quote_spanned!(r.method.sig.ident.span()=> ::std::boxed::Box::pin(async move { #outcome }));
    quote! {
        fn reset<'__a>(
            &'__a self,
            tx: &'__a mut __Connection,
        ) -> ::core::pin::Pin<::std::boxed::Box<
            dyn ::core::future::Future<Output = ::core::result::Result<(), #krate::BoxError>>
                + ::core::marker::Send
                + '__a,
        >> {
            #boxed
        }
    }
}
