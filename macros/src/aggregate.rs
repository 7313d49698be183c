//! `#[aggregate]`: on the state struct, the aggregate's identity and events;
//! on its impl block, the command dispatch table and the event fold.
//!
//! Whatever is wrong, both forms still write the impls the rest of the
//! program relies on (`Aggregate`, `Handles<C>`, the fold), with an error
//! type or a stub body where a piece is missing, so one mistake is one error.

use crate::internals::ast::{AggregateImpl, AggregateStruct, Apply, Handler, OutputShape, Role};
use crate::internals::ctxt::{Ctxt, Errors};
use crate::internals::symbol::{APPLY, HANDLE};
use crate::internals::{attr, check, debug_expansion, krate};
use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: syn::Item = match syn::parse2(input) {
        Ok(item) => item,
        Err(e) => return e.into_compile_error(),
    };
    match item {
        syn::Item::Struct(s) => expand_struct(args, s),
        syn::Item::Impl(i) => expand_impl(args, i),
        syn::Item::Enum(e) => {
            let error = syn::Error::new_spanned(
                e.enum_token,
                format!(
                    "`#[aggregate]` goes on a struct with named fields (the aggregate's state) and on its impl block, not on an enum; \
                     keep `{}` as the events enum with `#[event]`, or wrap its state in a struct",
                    e.ident
                ),
            );
            let error = error.into_compile_error();
            quote!(#e #error)
        }
        other => {
            let error = syn::Error::new_spanned(
                &other,
                "`#[aggregate]` goes on a struct with named fields (the aggregate's state) and on its impl block",
            )
            .into_compile_error();
            quote!(#other #error)
        }
    }
}

fn expand_struct(args: TokenStream, s: syn::ItemStruct) -> TokenStream {
    let cx = Ctxt::new();
    let ir = AggregateStruct::from_ast(&cx, args, &s);
    let mut errors = cx.check();
    let generated = impl_aggregate(&ir, &mut errors);
    let errors = errors.into_compile_errors();
    let out = quote! {
        #s
        #errors
        #generated
    };
    debug_expansion("aggregate", &s.ident.to_string(), &out);
    out
}

/// `impl Aggregate`, and its registration when nothing was wrong. With
/// errors, the impl is still written (with an error type for the events if
/// they are unknown) so handlers, commands and `App` calls add no errors.
fn impl_aggregate(ir: &AggregateStruct, errors: &mut Errors) -> TokenStream {
    let krate = krate(ir.krate.as_ref());
    let ident = ir.ident;
    let name = &ir.name;
    let complete = errors.is_empty();
    if !ir.generics.params.is_empty() {
        // Reported already (its error is the failed check here); the impls
        // only keep uses of the type quiet.
        let failed = errors.take_as_check();
        let (impl_generics, ty_generics, where_clause) = ir.generics.split_for_impl();
        let generics = poisoned(ir.generics);
        let (_, _, poisoned_where) = generics.split_for_impl();
        return quote! {
            const _: () = {
                const __STATE_OK: bool = #failed;

                #[automatically_derived]
                impl #impl_generics #krate::__private::AggregateDeclared for #ident #ty_generics #where_clause {
                    const OK: bool = __STATE_OK;
                }

                #[automatically_derived]
                impl #impl_generics #krate::Aggregate for #ident #ty_generics #poisoned_where {
                    const TYPE: &'static str = #name;
                    type Event = [(); __STATE_OK as usize];
                    fn apply(&mut self, _event: &Self::Event) {}
                }
            };
        };
    }
    // Each thing the rest of the program relies on is checked once, here,
    // at the user's token. A failed check is that one error: the events type
    // becomes an error type, and the bound on the impl mentioning the state
    // check keeps it (and every use of `Self: Aggregate`) quiet.
    let (events_check, event_ty) = match &ir.events {
        Some(events) => (
            quote_spanned! {events.span()=>
                type __Events = #events;
                const __EVENTS_OK: bool = #krate::__private::is_event::<__Events>();
            },
            quote!(#krate::__private::Checked<__Events, { __EVENTS_OK }>),
        ),
        None => (TokenStream::new(), errors.take_as_type()),
    };
    // `Sync` is checked behind `Send`, so an `Rc` in the state is one error.
    let state_check = quote_spanned! {ident.span()=>
        const __DEFAULT_OK: bool = #krate::__private::state_default::<#ident>();
        const __SEND_OK: bool = #krate::__private::state_send::<#ident>();
        type __Sendable = #krate::__private::Checked<#ident, { __SEND_OK }>;
        const __STATE_OK: bool = __DEFAULT_OK & #krate::__private::state_sync::<__Sendable>();
    };
    let (snapshot_check, snapshot) = match &ir.snapshot_every {
        Some((key, every)) => {
            let version = ir.snapshot_version;
            // `Deserialize` is checked behind `Serialize`, so a state with
            // neither is one error; through an alias spanned at the key, so
            // that is where the error points.
            let check = quote_spanned! {key.span()=>
                type __Snapshot = #ident;
                const __SERIALIZE_OK: bool = #krate::__private::snapshot_serialize::<__Snapshot>();
                type __Serializable = #krate::__private::Checked<__Snapshot, { __SERIALIZE_OK }>;
                const __SNAPSHOT_OK: bool = #krate::__private::snapshot_deserialize::<__Serializable>();
            };
            let items = quote! {
                const SNAPSHOT_EVERY: ::core::option::Option<u64> = ::core::option::Option::Some(#every);
                const SNAPSHOT_VERSION: u32 = #version;
                fn snapshot(&self) -> ::core::option::Option<::core::result::Result<#krate::Payload, #krate::__private::serde_json::Error>> {
                    ::core::option::Option::Some(#krate::Payload::from_serialize::<
                        #krate::__private::Checked<Self, { __SNAPSHOT_OK }>,
                    >(self))
                }
                fn restore(state: &#krate::Payload) -> ::core::option::Option<::core::result::Result<Self, #krate::__private::serde_json::Error>> {
                    ::core::option::Option::Some(#krate::__private::serde_json::from_str::<
                        #krate::__private::Checked<Self, { __SNAPSHOT_OK }>,
                    >(state.as_str()))
                }
            };
            (check, items)
        }
        None => (TokenStream::new(), TokenStream::new()),
    };
    let registration = complete.then(|| {
        quote! {
            #krate::__private::inventory::submit! {
                #krate::AggregateRegistration {
                    name: #name,
                    rust_type: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                    event_types: #krate::__private::event_types::<#ident>(),
                }
            }
        }
    });
    // With errors here, the fold is not asked for: its absence would be
    // a second error about a declaration that already has one.
    let apply = if complete {
        // At the state's name, where a missing fold is reported.
        quote_spanned!(ident.span()=> <Self as #krate::__private::ApplyEvents>::apply_event(self, event))
    } else {
        quote!(let _ = event;)
    };
    let aggregate = quote! {
        #[automatically_derived]
        impl #krate::__private::AggregateDeclared for #ident {
            const OK: bool = __STATE_OK;
        }

        #[automatically_derived]
        impl #krate::Aggregate for #ident
        where
            [(); __STATE_OK as usize]:,
        {
            const TYPE: &'static str = #name;
            type Event = #event_ty;
            #snapshot
            fn apply(&mut self, event: &Self::Event) {
                #apply
            }
        }
    };
    quote! {
        const _: () = {
            #events_check
            #state_check
            #snapshot_check
            #aggregate
            #registration
        };
    }
}

/// `generics`, bound on the failed `__STATE_OK` check.
fn poisoned(generics: &syn::Generics) -> syn::Generics {
    let mut generics = generics.clone();
    generics
        .make_where_clause()
        .predicates
        .push(syn::parse_quote!([(); __STATE_OK as usize]:));
    generics
}

fn expand_impl(args: TokenStream, mut item: syn::ItemImpl) -> TokenStream {
    let cx = Ctxt::new();
    // Strip the helper attributes, remembering each function's role.
    let mut roles = Vec::new();
    for member in &mut item.items {
        if let syn::ImplItem::Fn(f) = member {
            let handle = attr::take_attrs(&mut f.attrs, HANDLE);
            let apply = attr::take_attrs(&mut f.attrs, APPLY);
            for a in handle.iter().chain(&apply) {
                if !matches!(a.meta, syn::Meta::Path(_)) {
                    cx.error_spanned_by(
                        a,
                        format!("`#[{}]` takes no arguments", a.path().to_token_stream()),
                    );
                }
            }
            let role = match (handle.first(), apply.first()) {
                (Some(h), Some(_)) => {
                    cx.error_spanned_by(h, "a function is either a `#[handle]` command handler or the `#[apply]` fold, not both");
                    // Still one of them, by its receiver, so neither the
                    // command nor the fold goes missing as well.
                    let folds = matches!(
                        f.sig.inputs.first(),
                        Some(syn::FnArg::Receiver(r)) if r.mutability.is_some()
                    );
                    if folds { Role::Apply } else { Role::Handle }
                }
                (Some(_), None) => Role::Handle,
                (None, Some(_)) => Role::Apply,
                (None, None) => Role::Plain,
            };
            for extra in handle.iter().skip(1).chain(apply.iter().skip(1)) {
                cx.error_spanned_by(
                    extra,
                    format!(
                        "duplicate `#[{}]` attribute",
                        extra.path().to_token_stream()
                    ),
                );
            }
            roles.push(role);
        }
    }
    let ir = AggregateImpl::from_ast(&cx, args, &item, &roles);
    let duplicates = check::one_handler_per_command(&cx, &ir);
    check::no_catch_all_in_apply(&cx, &ir);
    let mut errors = cx.check();
    let generated = impl_dispatch(&ir, &duplicates, &mut errors);
    let errors = errors.into_compile_errors();
    let name = ir.self_ty.to_token_stream().to_string();
    let out = quote! {
        #item
        #errors
        #generated
    };
    debug_expansion("aggregate", &name, &out);
    out
}

/// One `Handles<C>` impl per handler and the fold. A handler or fold with a
/// wrong signature gets a stub, so its command still has a handler and the
/// aggregate still has a fold; JSON routes are registered only when nothing
/// was wrong.
fn impl_dispatch(ir: &AggregateImpl, skip: &[usize], errors: &mut Errors) -> TokenStream {
    if ir.is_trait_impl {
        return TokenStream::new();
    }
    let complete = errors.is_empty();
    let krate = krate(ir.krate.as_ref());
    let self_ty = ir.self_ty;
    let handlers = ir
        .handlers
        .iter()
        .enumerate()
        .filter(|(i, _)| !skip.contains(i))
        .map(|(_, h)| impl_handles(ir, &krate, h, complete));
    let apply = ir.apply.as_ref().map(|a| impl_apply(ir, &krate, a));
    // Whether the state struct is an `#[aggregate]` and passed its checks,
    // read once for the whole block. The impls below are bound on it, and
    // outside them the aggregate is named as `__Aggregate`, an error type if
    // the check failed: a state that failed is reported once, at the struct.
    // For a generic block, its own (reported) error is the failed check.
    let declared = if ir.generics.params.is_empty() {
        quote_spanned! {self_ty.span()=>
            const __AGGREGATE_OK: bool = <#self_ty as #krate::__private::AggregateDeclared>::OK;
            type __Aggregate = #krate::__private::Checked<#self_ty, { __AGGREGATE_OK }>;
        }
    } else {
        let failed = errors.take_as_check();
        quote!(const __AGGREGATE_OK: bool = #failed;)
    };
    quote! {
        const _: () = {
            #declared
            #(#handlers)*
            #apply
        };
    }
}

/// The generics of an impl for the aggregate, bound on the checks it rests
/// on (see `impl_dispatch`): a failed one keeps the impl and its uses quiet.
fn impl_where(ir: &AggregateImpl, checks: &[&str]) -> syn::Generics {
    let mut generics = ir.generics.clone();
    let predicates = &mut generics.make_where_clause().predicates;
    for check in checks {
        let check = syn::Ident::new(check, proc_macro2::Span::call_site());
        predicates.push(syn::parse_quote!([(); #check as usize]:));
    }
    generics
}

fn impl_handles(
    ir: &AggregateImpl,
    krate: &TokenStream,
    h: &Handler,
    complete: bool,
) -> TokenStream {
    let self_ty = ir.self_ty;
    let generic = !ir.generics.params.is_empty();
    let events = if generic {
        quote!(<Self as #krate::Aggregate>::Event)
    } else {
        quote!(<__Aggregate as #krate::Aggregate>::Event)
    };
    let method = &h.method.sig.ident;
    let method_name = method.to_string();
    let command = h.command;
    let output = &h.output;
    let services_ty = match h.services {
        Some(ty) => quote!(#ty),
        None => quote!(()),
    };
    let call_args = match h.services {
        Some(_) => quote!(self, command, services),
        None => quote!(self, command),
    };
    // Errors about the output land on the user's return type, errors about
    // the command on the command type in the signature.
    let output_span = output.span();
    let command_span = command.span();
    let stub = h.stub || generic;
    let output_check = (!stub).then(|| match h.output_shape() {
        OutputShape::Result { events: ok, error } => {
            let ok_check =
                quote_spanned!(ok.span()=> #krate::__private::handler_events::<#ok, #events>());
            let error_check =
                quote_spanned!(error.span()=> #krate::__private::domain_error::<#error>());
            quote!(const __OUTPUT_OK: bool = #ok_check & #error_check;)
        }
        OutputShape::Other => quote_spanned! {output_span=>
            const __OUTPUT_OK: bool = #krate::__private::handler_output::<#output, #events>();
        },
    });
    // Is the command a command (that passed its own checks), and one for
    // this aggregate? Checked once; the `Handles` impl rests on it, so a
    // failure adds nothing there or at dispatch sites.
    // The generated code names the command once, as `__Handled`, so a
    // misspelt one is reported once, like in the handler's signature.
    let handled = if generic {
        quote!(#command)
    } else {
        quote_spanned!(command_span=> __Handled)
    };
    let command_check = (!generic).then(|| {
        quote_spanned! {command_span=>
            type __Handled = #command;
            const __IS_COMMAND: bool = <__Handled as #krate::__private::CommandDeclared>::OK;
            type __Command = #krate::__private::Checked<__Handled, { __IS_COMMAND }>;
            const __COMMAND_OK: bool = #krate::__private::command_for::<__Command, __Aggregate>();
        }
    });
    let converted = quote_spanned!(output_span=> <#output as #krate::__private::Output<#events, { __OUTPUT_OK }>>);
    let error_ty = if stub {
        quote!(::core::convert::Infallible)
    } else {
        quote_spanned!(output_span=> #converted::Error)
    };
    let body = if stub {
        quote_spanned! {output_span=>
            let _ = (self, command, services);
            #krate::__private::ready(::core::result::Result::Ok(::std::vec::Vec::new()))
        }
    } else if h.is_async {
        quote_spanned!(output_span=> async move { #converted::into_result(Self::#method(#call_args).await) })
    } else {
        quote_spanned! {output_span=>
            let _ = &services;
            #krate::__private::ready(#converted::into_result(Self::#method(#call_args)))
        }
    };
    let items = quote_spanned! {output_span=>
        type Error = #error_ty;
        type Services = #services_ty;
        const HANDLER: &'static str = #method_name;

        // Spanned at the user's code, so clippy would lint it as theirs.
        #[allow(clippy::manual_async_fn)]
        fn handle<'__a>(
            &'__a self,
            command: #handled,
            services: &'__a Self::Services,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<::std::vec::Vec<#events>, Self::Error>,
        > + ::core::marker::Send + '__a {
            #body
        }
    };
    let checks: &[&str] = if generic {
        &["__AGGREGATE_OK"]
    } else {
        &["__AGGREGATE_OK", "__COMMAND_OK"]
    };
    let generics = impl_where(ir, checks);
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    // A second handler for the command (in another impl block) conflicts here,
    // at the command type in the handler's signature.
    let handles = quote_spanned! {command_span=>
        #[automatically_derived]
        impl #impl_generics #krate::Handles<#handled> for #self_ty #where_clause {
            #items
        }
    };
    let route = (complete && !stub).then(|| {
        let dispatch_json = quote_spanned! {command_span=>
            <__Command as #krate::__private::Route<__Aggregate, { __COMMAND_OK }>>::DISPATCH_JSON
        };
        quote! {
            #krate::__private::inventory::submit! {
                #krate::CommandRoute {
                    command: <__Command as #krate::Command>::NAME,
                    rust_type: ::core::stringify!(#command),
                    aggregate: <__Aggregate as #krate::Aggregate>::TYPE,
                    handler: #method_name,
                    dispatch_json: #dispatch_json,
                }
            }
        }
    });
    quote! {
        const _: () = {
            #output_check
            #command_check
            #handles
            #route
        };
    }
}

fn impl_apply(ir: &AggregateImpl, krate: &TokenStream, a: &Apply) -> TokenStream {
    let self_ty = ir.self_ty;
    let method = &a.method.sig.ident;
    let stub = a.stub || !ir.generics.params.is_empty();
    let body = if stub {
        quote!(let _ = event;)
    } else {
        quote_spanned!(method.span()=> Self::#method(self, event))
    };
    let generics = impl_where(ir, &["__AGGREGATE_OK"]);
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::__private::ApplyEvents for #self_ty #where_clause {
            fn apply_event(&mut self, event: &<Self as #krate::Aggregate>::Event) {
                #body
            }
        }
    }
}
