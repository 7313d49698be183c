//! `#[command(aggregate = A)]`: the target aggregate, the identity field and serde.

use crate::event::add_derives;
use crate::internals::ast::CommandItem;
use crate::internals::symbol::ID;
use crate::internals::{attr, ctxt::Ctxt, debug_expansion, krate};
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
    let (generated, krate_path, name) = match CommandItem::from_ast(&cx, args, &item, &id_attrs) {
        Some(ir) => (impl_command(&ir), ir.krate.clone(), ir.ident.to_string()),
        None => (TokenStream::new(), None, String::new()),
    };
    let errors = cx.check().err().map(syn::Error::into_compile_error);
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

/// Emits what it can: with no aggregate there is nothing sound to implement;
/// with no `#[id]` a stub keeps the command usable so handlers add no errors.
fn impl_command(ir: &CommandItem) -> TokenStream {
    let Some(aggregate) = &ir.aggregate else {
        return TokenStream::new();
    };
    let krate = krate(ir.krate.as_ref());
    let ident = ir.ident;
    let name = &ir.name;
    let aggregate_ty = quote_spanned!(aggregate.span()=> type Aggregate = #aggregate;);
    let id = match &ir.id {
        Some((member, id_ty)) => quote_spanned!(id_ty.span()=> &self.#member),
        None => quote!(::core::unreachable!()),
    };
    // Spanned at the aggregate, so "implemented for `Loan`" points there.
    let command_for = quote_spanned! {aggregate.span()=>
        #[automatically_derived]
        impl #krate::__private::CommandFor<#aggregate> for #ident {}
    };
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #krate::Command for #ident {
                const NAME: &'static str = #name;
                #aggregate_ty
                fn aggregate_id(&self) -> &dyn ::core::fmt::Display {
                    #id
                }
            }

            #command_for
        };
    }
}
