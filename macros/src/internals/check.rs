//! Rules that span several parts of one declaration.

use super::ast::{
    AggregateImpl, EventItem, EventShape, HandlerImpl, ProcessImpl, ProcessRole, ProjectionImpl,
};
use super::ctxt::Ctxt;
use quote::ToTokens;
use std::collections::HashMap;
use syn::visit::Visit;

/// Two variants of one event type must not share a (name, version).
pub fn event_names_unique(cx: &Ctxt, item: &EventItem) {
    renamed_from_elsewhere(cx, item);
    let EventShape::Enum(variants) = &item.shape else {
        return;
    };
    let mut seen: HashMap<(&str, u32), &syn::Ident> = HashMap::new();
    for v in variants {
        let Some(ident) = v.ident else { continue };
        if let Some(first) = seen.insert((&v.name, v.version), ident) {
            cx.syn_error(syn::Error::new(
                v.name_span,
                format!(
                    "event type name `{}` version {} is already used by variant `{first}`; give this variant another `#[event(rename = \"..\")]`",
                    v.name, v.version
                ),
            ));
        }
    }
}

/// A `rename_from` name is an old name: not one this type declares, moves
/// out, or renames from twice.
fn renamed_from_elsewhere(cx: &Ctxt, item: &EventItem) {
    let variants: Vec<&crate::internals::ast::EventVariant> = match &item.shape {
        EventShape::Enum(vs) => vs.iter().collect(),
        EventShape::Struct(v) => vec![v],
    };
    let mut seen: Vec<String> = Vec::new();
    for v in &variants {
        for old in &v.rename_from {
            let value = old.value();
            if variants.iter().any(|d| d.name == value) {
                cx.error_spanned_by(
                    old,
                    format!("`{value}` is a name this event type declares; `rename_from` names the type's old name, which stored events still carry"),
                );
            } else if item.moved.iter().any(|m| m.value() == value) {
                cx.error_spanned_by(
                    old,
                    format!("`{value}` is listed in `moved` too: a stored type is either read as this event or skipped"),
                );
            } else if seen.contains(&value) {
                cx.error_spanned_by(
                    old,
                    format!(
                        "`{value}` is renamed from twice: each stored name reads as one event type"
                    ),
                );
            }
            seen.push(value);
        }
    }
}

/// One impl block must not hold two handlers for the same command type.
/// (Across impl blocks the generated `impl Handles<C>` makes it a conflict error.)
/// Returns the positions of the second and later handlers, which are not expanded.
pub fn one_handler_per_command(cx: &Ctxt, item: &AggregateImpl) -> Vec<usize> {
    let mut seen: HashMap<String, &syn::Ident> = HashMap::new();
    let mut duplicates = Vec::new();
    for (index, h) in item.handlers.iter().enumerate() {
        let key = h.command.to_token_stream().to_string();
        if let Some(first) = seen.get(&key) {
            duplicates.push(index);
            cx.error_spanned_by(
                h.command,
                format!(
                    "command `{}` already has a handler, `{first}`; an aggregate handles each command in exactly one `#[handle]` function: remove one of them",
                    h.command.to_token_stream().to_string().replace(' ', "")
                ),
            );
        } else {
            seen.insert(key, &h.method.sig.ident);
        }
    }
    duplicates
}

/// One event handler must not take the same event type in two methods, by
/// its tokens. (Two different event types sharing a type name are caught
/// when the generated code is evaluated: see `event_handler::ambiguity_checks`.)
/// Returns the positions of the second and later methods, which are not expanded.
pub fn one_method_per_event_type(cx: &Ctxt, item: &HandlerImpl) -> Vec<usize> {
    let mut seen: HashMap<String, &syn::Ident> = HashMap::new();
    let mut duplicates = Vec::new();
    for (index, m) in item.methods.iter().enumerate() {
        let Some(event) = m.event else { continue };
        let key = event.to_token_stream().to_string();
        if let Some(first) = seen.get(&key) {
            duplicates.push(index);
            cx.error_spanned_by(
                event,
                format!(
                    "event type `{}` already has a handler method, `{first}`; an event handler takes each event type in exactly one method: `match` on its variants there",
                    key.replace(' ', "")
                ),
            );
        } else {
            seen.insert(key, &m.method.sig.ident);
        }
    }
    duplicates
}

/// One projection must not take the same event type in two methods, by its
/// tokens (two types sharing a type name are caught as an event handler's).
/// Returns the positions of the second and later methods, which are not expanded.
pub fn one_projection_method_per_event_type(cx: &Ctxt, item: &ProjectionImpl) -> Vec<usize> {
    let mut seen: HashMap<String, &syn::Ident> = HashMap::new();
    let mut duplicates = Vec::new();
    for (index, m) in item.methods.iter().enumerate() {
        let Some(event) = m.event else { continue };
        let key = event.to_token_stream().to_string();
        if let Some(first) = seen.get(&key) {
            duplicates.push(index);
            cx.error_spanned_by(
                event,
                format!(
                    "event type `{}` already has a projection method, `{first}`; a projection takes each event type in exactly one method: `match` on its variants there",
                    key.replace(' ', "")
                ),
            );
        } else {
            seen.insert(key, &m.method.sig.ident);
        }
    }
    duplicates
}

/// `#[apply]` must not end its `match` on the event with a catch-all arm:
/// a variant added later would be silently ignored instead of failing to compile.
pub fn no_catch_all_in_apply(cx: &Ctxt, item: &AggregateImpl) {
    let Some(apply) = &item.apply else { return };
    let Some(event) = apply.event_arg else { return };
    struct Finder<'c> {
        cx: &'c Ctxt,
        event: &'c syn::Ident,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_expr_match(&mut self, m: &'ast syn::ExprMatch) {
            if scrutinee_is(&m.expr, self.event) {
                for arm in &m.arms {
                    if is_catch_all(&arm.pat) {
                        self.cx.error_spanned_by(
                            &arm.pat,
                            "a catch-all arm in `#[apply]` would silently ignore event variants added later; name every variant, so a new one fails to compile until it is folded",
                        );
                    }
                }
            }
            syn::visit::visit_expr_match(self, m);
        }
    }
    Finder { cx, event }.visit_block(&apply.method.block);
}

fn scrutinee_is(expr: &syn::Expr, event: &syn::Ident) -> bool {
    match expr {
        syn::Expr::Path(p) => p.path.is_ident(event),
        syn::Expr::Unary(u) => scrutinee_is(&u.expr, event),
        syn::Expr::Reference(r) => scrutinee_is(&r.expr, event),
        syn::Expr::Paren(p) => scrutinee_is(&p.expr, event),
        _ => false,
    }
}

fn is_catch_all(pat: &syn::Pat) -> bool {
    match pat {
        syn::Pat::Wild(_) => true,
        syn::Pat::Ident(i) => {
            i.subpat.as_ref().is_none_or(|(_, sub)| is_catch_all(sub))
                && i.ident
                    .to_string()
                    .starts_with(|c: char| c.is_lowercase() || c == '_')
        }
        syn::Pat::Or(o) => o.cases.iter().any(is_catch_all),
        _ => false,
    }
}

/// A process manager has at most one `#[route]`, one `#[handle]` and one
/// `#[apply]` function per event type (by its tokens), and none of the last
/// two for an event type without a `#[route]`: it would never receive those
/// events. Returns the positions of the functions left out of the expansion.
pub fn process_methods(cx: &Ctxt, item: &ProcessImpl) -> Vec<usize> {
    let mut seen: HashMap<(ProcessRole, String), &syn::Ident> = HashMap::new();
    let mut skip = Vec::new();
    for (index, m) in item.methods.iter().enumerate() {
        let Some(event) = m.event else { continue };
        let key = event.to_token_stream().to_string();
        if let Some(first) = seen.get(&(m.role, key.clone())) {
            skip.push(index);
            cx.error_spanned_by(
                event,
                format!(
                    "event type `{}` already has {}, `{first}`; a process manager has one per event type: `match` on its variants there",
                    key.replace(' ', ""),
                    m.role.a_fn()
                ),
            );
        } else {
            seen.insert((m.role, key), &m.method.sig.ident);
        }
    }
    let self_name = super::ast::type_name(item.self_ty);
    for (index, m) in item.methods.iter().enumerate() {
        let Some(event) = m.event else { continue };
        let key = event.to_token_stream().to_string();
        if m.role == ProcessRole::Route || seen.contains_key(&(ProcessRole::Route, key.clone())) {
            continue;
        }
        skip.push(index);
        if item.unmarked {
            // The function meant as its `#[route]` lacks the attribute, and
            // was reported.
            continue;
        }
        let written = key.replace(' ', "");
        cx.error_spanned_by(
            event,
            format!(
                "`{written}` has {}, `{}`, but no `#[route]`, so `{self_name}` never receives its events; \
                 add one saying which instance each goes to: `#[route] fn route_{}(event: &{written}) -> Route`",
                m.role.a_fn(),
                m.method.sig.ident,
                snake_case(&super::ast::type_name(event)),
            ),
        );
    }
    skip
}

/// `teller_event` for `TellerEvent`, for a suggested function name.
fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for c in name
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
    {
        if c.is_uppercase() && !snake.is_empty() {
            snake.push('_');
        }
        snake.extend(c.to_lowercase());
    }
    snake
}
