pub mod ast;
pub mod attr;
pub mod check;
pub mod ctxt;
pub mod symbol;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;

/// The path generated code uses to reach the runtime: `::annals` unless `crate = "..."`.
pub fn krate(path: Option<&syn::Path>) -> TokenStream {
    match path {
        Some(p) => quote!(#p),
        None => quote!(::annals),
    }
}

/// `tokens` with every span set to `span`, so that rustc, pointing at an
/// expression made of them, points at the user's token instead of the
/// attribute.
pub fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(g) = &tree {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(&g.stream(), span));
                group.set_span(span);
                tree = TokenTree::Group(group);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// Prints the expansion to stderr when `ANNALS_MACROS_DEBUG` is set.
pub fn debug_expansion(macro_name: &str, item: &str, tokens: &TokenStream) {
    if std::env::var_os("ANNALS_MACROS_DEBUG").is_some_and(|v| !v.is_empty() && v != "0") {
        let text = match syn::parse2::<syn::File>(tokens.clone()) {
            Ok(file) => prettyplease::unparse(&file),
            Err(_) => tokens.to_string(),
        };
        eprintln!("// #[{macro_name}] on `{item}`\n{text}");
    }
}
