use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use std::cell::RefCell;
use std::fmt::Display;

/// Collects every error of one macro invocation, so the user sees them all at once.
///
/// Must be consumed with [`Ctxt::check`]; dropping it unchecked is a bug in the macro.
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    pub fn new() -> Self {
        Self {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Records an error pointing at `tokens`.
    pub fn error_spanned_by<T: ToTokens, M: Display>(&self, tokens: T, message: M) {
        self.syn_error(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Records `error`, one entry per message if it combines several.
    pub fn syn_error(&self, error: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("Ctxt used after check")
            .extend(error);
    }

    /// How many errors are recorded so far.
    pub fn error_count(&self) -> usize {
        self.errors.borrow().as_ref().map_or(0, Vec::len)
    }

    /// Every error recorded, in order.
    pub fn check(self) -> Errors {
        Errors(self.errors.take().expect("Ctxt checked twice"))
    }
}

/// The errors of one macro invocation; each is emitted exactly once.
pub struct Errors(Vec<syn::Error>);

impl Errors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An error type standing for a type the invocation could not determine
    /// (such as an aggregate's events when `events = ..` is missing), carrying
    /// the first error. Since it is an error type, nothing that uses it
    /// reports an error of its own; the error it carries is not emitted again.
    pub fn take_as_type(&mut self) -> TokenStream {
        let error = self.take_first();
        quote!([(); #error])
    }

    /// Like [`Errors::take_as_type`], a failed check (an erroneous `bool`
    /// expression) carrying the first error, for impl bounds `where [(); CHECK as usize]:`.
    pub fn take_as_check(&mut self) -> TokenStream {
        let error = self.take_first();
        quote!({ #error; false })
    }

    fn take_first(&mut self) -> TokenStream {
        let error = if self.0.is_empty() {
            syn::Error::new(
                Span::call_site(),
                "annals-macros bug: a stand-in was asked for without an error to carry",
            )
        } else {
            self.0.remove(0)
        };
        error.into_compile_error()
    }

    /// The remaining errors as `compile_error!` invocations.
    pub fn into_compile_errors(self) -> TokenStream {
        self.0
            .into_iter()
            .map(syn::Error::into_compile_error)
            .collect()
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !std::thread::panicking() && self.errors.borrow().is_some() {
            panic!("annals-macros bug: Ctxt dropped without check()");
        }
    }
}
