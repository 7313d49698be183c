//! `#[aggregate]`: on the state struct, the aggregate's identity and events;
//! on its impl block, the command dispatch table and the event fold.

use crate::internals::ast::{AggregateImpl, AggregateStruct, Role};
use crate::internals::symbol::{APPLY, HANDLE};
use crate::internals::{attr, check, ctxt::Ctxt, debug_expansion, krate};
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
    let generated = match &ir.events {
        Some(events) if !cx.has_errors() => impl_aggregate(&ir, events),
        _ => TokenStream::new(),
    };
    let errors = cx.check().err().map(syn::Error::into_compile_error);
    let out = quote! {
        #s
        #errors
        #generated
    };
    debug_expansion("aggregate", &s.ident.to_string(), &out);
    out
}

fn impl_aggregate(ir: &AggregateStruct, events: &syn::Type) -> TokenStream {
    let krate = krate(ir.krate.as_ref());
    let ident = ir.ident;
    let name = &ir.name;
    let event_ty = quote_spanned!(events.span()=> type Event = #events;);
    let snapshot = ir.snapshot_every.as_ref().map(|(tokens, every)| {
        let version = ir.snapshot_version;
        let serialize = quote_spanned! {tokens.span()=>
            ::core::option::Option::Some(#krate::Payload::from_serialize(self))
        };
        let deserialize = quote_spanned! {tokens.span()=>
            ::core::option::Option::Some(#krate::__private::serde_json::from_str::<Self>(state.as_str()))
        };
        quote! {
            const SNAPSHOT_EVERY: ::core::option::Option<u64> = ::core::option::Option::Some(#every);
            const SNAPSHOT_VERSION: u32 = #version;
            fn snapshot(&self) -> ::core::option::Option<::core::result::Result<#krate::Payload, #krate::__private::serde_json::Error>> {
                #serialize
            }
            fn restore(state: &#krate::Payload) -> ::core::option::Option<::core::result::Result<Self, #krate::__private::serde_json::Error>> {
                #deserialize
            }
        }
    });
    let impl_span = ident.span();
    quote_spanned! {impl_span=>
        const _: () = {
            #[automatically_derived]
            impl #krate::Aggregate for #ident {
                const TYPE: &'static str = #name;
                #event_ty
                #snapshot
                fn apply(&mut self, event: &Self::Event) {
                    <Self as #krate::__private::ApplyEvents>::apply_event(self, event)
                }
            }

            #krate::__private::inventory::submit! {
                #krate::AggregateRegistration {
                    name: #name,
                    rust_type: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                    event_types: <#events as #krate::Event>::TYPES,
                }
            }
        };
    }
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
                    Role::Plain
                }
                (Some(_), None) => Role::Handle,
                (None, Some(_)) => Role::Apply,
                (None, None) => Role::Plain,
            };
            for extra in handle.iter().skip(1).chain(apply.iter().skip(1)) {
                cx.error_spanned_by(extra, "duplicate attribute");
            }
            roles.push(role);
        }
    }
    let ir = AggregateImpl::from_ast(&cx, args, &item, &roles);
    let duplicates = check::one_handler_per_command(&cx, &ir);
    check::no_catch_all_in_apply(&cx, &ir);
    let generated = impl_dispatch(&ir, &duplicates);
    let errors = cx.check().err().map(syn::Error::into_compile_error);
    let name = ir.self_ty.to_token_stream().to_string();
    let out = quote! {
        #item
        #errors
        #generated
    };
    debug_expansion("aggregate", &name, &out);
    out
}

fn impl_dispatch(ir: &AggregateImpl, skip: &[usize]) -> TokenStream {
    let krate = krate(ir.krate.as_ref());
    let self_ty = ir.self_ty;
    let events = quote!(<#self_ty as #krate::Aggregate>::Event);
    let handlers = ir.handlers.iter().enumerate().filter(|(i, _)| !skip.contains(i)).map(|(_, h)| {
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
        // Type errors about the output land on the user's return type.
        let output_span = output.span();
        let command_span = command.span();
        let into_result = quote_spanned!(output_span=> <#output as #krate::HandlerOutput<#events>>::into_result);
        let body = if h.stub {
            quote_spanned! {output_span=>
                let _ = (self, command, services);
                #krate::__private::ready(::core::result::Result::Ok(::std::vec::Vec::new()))
            }
        } else if h.is_async {
            quote_spanned!(output_span=> async move { #into_result(Self::#method(#call_args).await) })
        } else {
            quote_spanned! {output_span=>
                let _ = &services;
                #krate::__private::ready(#into_result(Self::#method(#call_args)))
            }
        };
        let items = quote_spanned! {output_span=>
            type Error = <#output as #krate::HandlerOutput<#events>>::Error;
            type Services = #services_ty;
            const HANDLER: &'static str = #method_name;

            // Spanned at the user's code, so clippy would lint it as theirs.
            #[allow(clippy::manual_async_fn)]
            fn handle<'__a>(
                &'__a self,
                command: #command,
                services: &'__a Self::Services,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<::std::vec::Vec<#events>, Self::Error>,
            > + ::core::marker::Send + '__a {
                #body
            }
        };
        // A second handler for the command (in another impl block) conflicts here,
        // at the command type in the handler's signature.
        let handles = quote_spanned! {command_span=>
            #[automatically_derived]
            impl #krate::Handles<#command> for #self_ty {
                #items
            }
        };
        // The route's bounds hold exactly when the command targets this
        // aggregate, so a handler in the wrong impl is this one error.
        let route = (!h.stub).then(|| {
            let via = quote_spanned!(command_span=> #krate::__private::dispatch_json_via::<#command, #self_ty>);
            quote! {
                #krate::__private::inventory::submit! {
                    #krate::CommandRoute {
                        command: <#command as #krate::Command>::NAME,
                        rust_type: ::core::stringify!(#command),
                        aggregate: <#self_ty as #krate::Aggregate>::TYPE,
                        handler: #method_name,
                        dispatch_json: #via,
                    }
                }
            }
        });
        quote! {
            #handles

            #route
        }
    });
    let apply = ir.apply.as_ref().map(|a| {
        let method = &a.method.sig.ident;
        let call = quote_spanned!(method.span()=> Self::#method(self, event));
        quote! {
            #[automatically_derived]
            impl #krate::__private::ApplyEvents for #self_ty {
                fn apply_event(&mut self, event: &#events) {
                    #call
                }
            }
        }
    });
    quote! {
        const _: () = {
            #(#handlers)*
            #apply
        };
    }
}
