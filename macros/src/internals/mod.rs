pub mod ast;
pub mod attr;
pub mod check;
pub mod ctxt;
pub mod symbol;

use proc_macro2::TokenStream;
use quote::quote;

/// The path generated code uses to reach the runtime: `::annals` unless `crate = "..."`.
pub fn krate(path: Option<&syn::Path>) -> TokenStream {
    match path {
        Some(p) => quote!(#p),
        None => quote!(::annals),
    }
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
