//! Procedural macros of [annals](https://docs.rs/annals). Depend on `annals`
//! and use them as `annals::event`, `annals::command` and `annals::aggregate`;
//! their documentation lives there.

mod aggregate;
mod command;
mod event;
mod internals;

use proc_macro::TokenStream;

/// Declares domain events. See `annals::event`.
#[proc_macro_attribute]
pub fn event(args: TokenStream, input: TokenStream) -> TokenStream {
    event::expand(args.into(), input.into()).into()
}

/// Declares a command for one aggregate. See `annals::command`.
#[proc_macro_attribute]
pub fn command(args: TokenStream, input: TokenStream) -> TokenStream {
    command::expand(args.into(), input.into()).into()
}

/// Declares an aggregate (on its state struct) and its command handlers and
/// event fold (on its impl block). See `annals::aggregate`.
#[proc_macro_attribute]
pub fn aggregate(args: TokenStream, input: TokenStream) -> TokenStream {
    aggregate::expand(args.into(), input.into()).into()
}
