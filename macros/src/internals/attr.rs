//! Typed attribute values, parsed from `#[macro(key = value, ...)]`.

use super::ctxt::Ctxt;
use super::symbol::{self, Symbol};
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;

/// One key's value, remembering its key's tokens for later errors.
pub struct Attr<'c, T> {
    cx: &'c Ctxt,
    macro_name: Symbol,
    key: Symbol,
    value: Option<(TokenStream, T)>,
}

impl<'c, T> Attr<'c, T> {
    pub fn none(cx: &'c Ctxt, macro_name: Symbol, key: Symbol) -> Self {
        Self {
            cx,
            macro_name,
            key,
            value: None,
        }
    }

    /// Records the value of `key`; a second one is reported at its key.
    pub fn set(&mut self, key: &syn::Path, value: T) {
        let tokens = key.to_token_stream();
        if self.value.is_some() {
            self.cx.error_spanned_by(
                tokens,
                format!("duplicate `#[{}(..)]` key `{}`", self.macro_name, self.key),
            );
        } else {
            self.value = Some((tokens, value));
        }
    }

    pub fn value_ref(&self) -> Option<&T> {
        self.value.as_ref().map(|(_, v)| v)
    }

    pub fn get(self) -> Option<T> {
        self.value.map(|(_, v)| v)
    }

    pub fn get_with_tokens(self) -> Option<(TokenStream, T)> {
        self.value
    }
}

/// Parses `key = value` pairs. `on_key` has one arm per key it knows and
/// returns `Ok(false)` for any other, which is then reported with the list of
/// valid keys (and a likely intended one); `elsewhere` names keys that are
/// valid on another item, with where they go.
///
/// Returns whether every key parsed: a caller reports a missing required key
/// only then, since an unknown or malformed key is most likely that key.
pub fn parse_keys(
    cx: &Ctxt,
    macro_name: Symbol,
    allowed: &[Symbol],
    elsewhere: &[(Symbol, &str)],
    input: TokenStream,
    mut on_key: impl FnMut(&ParseNestedMeta) -> syn::Result<bool>,
) -> bool {
    let mut clean = true;
    let parser = syn::meta::parser(|meta| {
        if on_key(&meta)? {
            return Ok(());
        }
        clean = false;
        let found = meta.path.to_token_stream().to_string().replace(' ', "");
        let message = if let Some((_, hint)) = elsewhere.iter().find(|(k, _)| meta.path == *k) {
            format!("`{found}` does not go here: {hint}")
        } else if allowed.is_empty() {
            format!("`#[{macro_name}]` takes no arguments here, found `{found}`")
        } else {
            let guess = symbol::closest(&found, allowed)
                .map(|k| format!("did you mean `{k}`? "))
                .unwrap_or_default();
            format!(
                "unknown `#[{macro_name}(..)]` key `{found}`; {guess}expected {}",
                symbol::one_of(allowed)
            )
        };
        cx.error_spanned_by(&meta.path, message);
        // Skip the value so parsing continues with the next key.
        if meta.input.peek(syn::Token![=]) {
            let _: syn::Expr = meta.value()?.parse()?;
        } else if meta.input.peek(syn::token::Paren) {
            meta.parse_nested_meta(|inner| {
                let _ = inner.input.parse::<TokenStream>();
                Ok(())
            })?;
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(input) {
        cx.syn_error(e);
        clean = false;
    }
    clean
}

/// Parses the arguments of a helper attribute such as `#[event(rename = "..")]`.
pub fn parse_attr_keys(
    cx: &Ctxt,
    attr: &syn::Attribute,
    macro_name: Symbol,
    allowed: &[Symbol],
    elsewhere: &[(Symbol, &str)],
    on_key: impl FnMut(&ParseNestedMeta) -> syn::Result<bool>,
) -> bool {
    match &attr.meta {
        syn::Meta::Path(_) => true,
        syn::Meta::List(list) => parse_keys(
            cx,
            macro_name,
            allowed,
            elsewhere,
            list.tokens.clone(),
            on_key,
        ),
        syn::Meta::NameValue(nv) => {
            cx.error_spanned_by(
                nv,
                format!(
                    "expected `#[{macro_name}(key = value, ..)]`, found `#[{macro_name} = ..]`"
                ),
            );
            false
        }
    }
}

pub fn lit_str(meta: &ParseNestedMeta) -> syn::Result<syn::LitStr> {
    let lit: syn::LitStr = meta.value()?.parse()?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new_spanned(&lit, "this name must not be empty"));
    }
    Ok(lit)
}

/// `key = ["a", "b"]`: a bracketed list of non-empty string literals
/// (one bare literal is taken as a list of one); `how` shows the form, for
/// the error.
pub fn lit_strs(meta: &ParseNestedMeta, how: &str) -> syn::Result<Vec<syn::LitStr>> {
    let value = meta.value()?;
    let lits: Vec<syn::LitStr> = if value.peek(syn::token::Bracket) {
        let content;
        syn::bracketed!(content in value);
        let lits =
            syn::punctuated::Punctuated::<syn::LitStr, syn::Token![,]>::parse_terminated(&content)
                .map_err(|e| syn::Error::new(e.span(), how))?;
        lits.into_iter().collect()
    } else if value.peek(syn::LitStr) {
        vec![value.parse()?]
    } else {
        return Err(value.error(how));
    };
    if let Some(empty) = lits.iter().find(|l| l.value().trim().is_empty()) {
        return Err(syn::Error::new_spanned(
            empty,
            "this name must not be empty",
        ));
    }
    Ok(lits)
}

/// `crate = "path"`.
pub fn crate_path(meta: &ParseNestedMeta) -> syn::Result<syn::Path> {
    let lit: syn::LitStr = meta.value()?.parse()?;
    lit.parse::<syn::Path>().map_err(|_| {
        syn::Error::new_spanned(&lit, "expected a path such as `crate = \"::annals\"`")
    })
}

/// `key = Type`.
pub fn ty(meta: &ParseNestedMeta) -> syn::Result<syn::Type> {
    meta.value()?.parse()
}

/// `key = N` with N >= 1; `why` says what the number counts, for the error.
pub fn positive<N>(meta: &ParseNestedMeta, why: &str) -> syn::Result<(syn::LitInt, N)>
where
    N: std::str::FromStr + PartialOrd + From<u8>,
    N::Err: std::fmt::Display,
{
    let lit: syn::LitInt = meta.value()?.parse()?;
    let n: N = lit.base10_parse()?;
    if n < N::from(1) {
        return Err(syn::Error::new_spanned(
            &lit,
            format!("must be 1 or more: {why}"),
        ));
    }
    Ok((lit, n))
}

/// Splits off the helper attributes named `name` from `attrs`, returning them.
pub fn take_attrs(attrs: &mut Vec<syn::Attribute>, name: Symbol) -> Vec<syn::Attribute> {
    let (taken, kept) = std::mem::take(attrs)
        .into_iter()
        .partition(|a| a.path() == name);
    *attrs = kept;
    taken
}

/// The trait names already derived on an item, by last path segment.
pub fn derived(attrs: &[syn::Attribute]) -> Vec<String> {
    let mut names = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let _ = attr.parse_nested_meta(|meta| {
            if let Some(last) = meta.path.segments.last() {
                names.push(last.ident.to_string());
            }
            Ok(())
        });
    }
    names
}
