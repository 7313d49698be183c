//! `#[command(aggregate = A)]`: the target aggregate, the identity field and serde.
//!
//! Whatever is wrong, the `Command` impl is still written (with an error type
//! for an unknown aggregate, a stub identity for a missing `#[id]`), so the
//! command's handler and its dispatch sites add no errors of their own.

use crate::event::add_derives;
use crate::internals::ast::CommandItem;
use crate::internals::ctxt::{Ctxt, Errors};
use crate::internals::symbol::ID;
use crate::internals::{attr, debug_expansion, krate, respan};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut item: syn::Item = match syn::parse2(input) {
        Ok(item) => item,
        Err(e) => return e.into_compile_error(),
    };
    let id_attrs: Vec<Vec<syn::Attribute>> = match &mut item {
        syn::Item::Struct(s) => s
            .fields
            .iter_mut()
            .map(|f| attr::take_attrs(&mut f.attrs, ID))
            .collect(),
        _ => Vec::new(),
    };
    let cx = Ctxt::new();
    let ir = CommandItem::from_ast(&cx, args, &item, &id_attrs);
    let mut errors = cx.check();
    let (generated, krate_path, name) = match &ir {
        Some(ir) => (
            impl_command(ir, &mut errors),
            ir.krate.clone(),
            ir.ident.to_string(),
        ),
        None => (TokenStream::new(), None, String::new()),
    };
    let errors = errors.into_compile_errors();
    let krate = krate(krate_path.as_ref());
    add_derives(&mut item, &krate, &["Clone", "Debug"], true);
    let out = quote! {
        #item
        #errors
        #generated
    };
    debug_expansion("command", &name, &out);
    out
}

fn impl_command(ir: &CommandItem, errors: &mut Errors) -> TokenStream {
    let krate = krate(ir.krate.as_ref());
    let ident = ir.ident;
    let name = &ir.name;
    let (impl_generics, ty_generics, where_clause) = ir.generics.split_for_impl();
    let declared = quote! {
        #[automatically_derived]
        impl #impl_generics #krate::__private::CommandDeclared for #ident #ty_generics #where_clause {
            const OK: bool = __AGGREGATE_OK;
        }
    };
    let aggregate = ir
        .aggregate
        .as_ref()
        .filter(|_| ir.generics.params.is_empty());
    let Some(aggregate) = aggregate else {
        // Reported already (its error is the failed check here); the impls
        // only keep uses of the type quiet, and handlers of the command read
        // the failed check and add nothing.
        let failed = errors.take_as_check();
        let mut generics = ir.generics.clone();
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!([(); __AGGREGATE_OK as usize]:));
        let (_, _, poisoned_where) = generics.split_for_impl();
        return quote! {
            const _: () = {
                const __AGGREGATE_OK: bool = #failed;

                #[automatically_derived]
                impl #impl_generics #krate::Command for #ident #ty_generics #poisoned_where {
                    const NAME: &'static str = #name;
                    type Aggregate = [(); __AGGREGATE_OK as usize];
                    fn aggregate_id(&self) -> &dyn ::core::fmt::Display {
                        ::core::unreachable!()
                    }
                }

                #declared
            };
        };
    };
    // The aggregate is named once (so a misspelt one is one error) and
    // checked once, at the user's token: if it is not an `#[aggregate]` type,
    // or its state failed its own checks, `Self::Aggregate` is an error type
    // and dispatch sites add nothing.
    let aggregate_check = quote_spanned! {aggregate.span()=>
        type __Aggregate = #aggregate;
        const __AGGREGATE_OK: bool = <__Aggregate as #krate::__private::AggregateDeclared>::OK;
    };
    // Spanned at the aggregate, so "but it is implemented for `Loan`" points there.
    let command_for = quote_spanned! {aggregate.span()=>
        #[automatically_derived]
        impl #krate::__private::CommandFor<__Aggregate> for #ident {}
    };
    let id = match &ir.id {
        Some((member, id_ty)) => {
            let krate = respan(&krate, id_ty.span());
            quote_spanned!(id_ty.span()=> #krate::__private::id_display(&self.#member))
        }
        None => quote!(::core::unreachable!()),
    };
    quote! {
        const _: () = {
            #aggregate_check
            #[automatically_derived]
            impl #krate::Command for #ident {
                const NAME: &'static str = #name;
                type Aggregate = #krate::__private::Checked<__Aggregate, { __AGGREGATE_OK }>;
                fn aggregate_id(&self) -> &dyn ::core::fmt::Display {
                    #id
                }
            }

            #command_for
            #declared
        };
    }
}
