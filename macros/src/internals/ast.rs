//! The macros' intermediate representation: what the user declared, checked
//! for shape, with the original tokens kept for error spans.

use super::attr::{self, Attr};
use super::ctxt::Ctxt;
use super::symbol::*;
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::spanned::Spanned;

const VERSION_FROM_1: &str = "versions count from 1, and an event type starts at `version = 1`";

/// `#[event]` on an enum (one type per variant) or a struct (one type).
pub struct EventItem<'a> {
    pub krate: Option<syn::Path>,
    pub ident: &'a syn::Ident,
    pub shape: EventShape<'a>,
}

pub enum EventShape<'a> {
    Enum(Vec<EventVariant<'a>>),
    Struct(EventVariant<'a>),
}

pub struct EventVariant<'a> {
    /// `None` for the struct form.
    pub ident: Option<&'a syn::Ident>,
    pub name: String,
    pub name_span: Span,
    pub version: u32,
    pub fields: &'a syn::Fields,
}

impl<'a> EventItem<'a> {
    /// Reads the item; the caller strips `#[event(..)]` helper attributes from the
    /// output separately (variant attributes are passed in `variant_attrs`).
    pub fn from_ast(
        cx: &Ctxt,
        args: TokenStream,
        item: &'a syn::Item,
        variant_attrs: &[Vec<syn::Attribute>],
    ) -> Option<Self> {
        let mut krate = Attr::none(cx, EVENT, CRATE);
        let mut rename = Attr::none(cx, EVENT, RENAME);
        let mut version = Attr::none(cx, EVENT, VERSION);
        let is_struct = matches!(item, syn::Item::Struct(_));
        let allowed: &[Symbol] = if is_struct {
            &[CRATE, RENAME, VERSION]
        } else {
            &[CRATE]
        };
        let elsewhere: &[(Symbol, &str)] = if is_struct {
            &[]
        } else {
            &[
                (
                    RENAME,
                    "on an enum, each variant is one event type; put `#[event(rename = \"..\")]` on the variant",
                ),
                (
                    VERSION,
                    "on an enum, each variant is one event type; put `#[event(version = N)]` on the variant",
                ),
            ]
        };
        attr::parse_keys(cx, EVENT, allowed, elsewhere, args, |key, meta| {
            match key.0 {
                "crate" => krate.set(&meta.path, attr::crate_path(meta)?),
                "rename" => {
                    let lit = attr::lit_str(meta)?;
                    rename.set(&lit, lit.clone());
                }
                _ => {
                    let (lit, v) = attr::positive::<u32>(meta, VERSION_FROM_1)?;
                    version.set(&lit, v);
                }
            }
            Ok(())
        });
        let (ident, shape) = match item {
            syn::Item::Enum(e) => {
                if !e.generics.params.is_empty() {
                    cx.error_spanned_by(
                        &e.generics,
                        "event types cannot be generic: each stored event names one concrete type",
                    );
                }
                if e.variants.is_empty() {
                    cx.error_spanned_by(&e.ident, "an event enum needs at least one variant");
                }
                let variants = e
                    .variants
                    .iter()
                    .zip(variant_attrs)
                    .map(|(v, attrs)| EventVariant::from_variant(cx, v, attrs))
                    .collect();
                (&e.ident, EventShape::Enum(variants))
            }
            syn::Item::Struct(s) => {
                if !s.generics.params.is_empty() {
                    cx.error_spanned_by(
                        &s.generics,
                        "event types cannot be generic: each stored event names one concrete type",
                    );
                }
                let (name, name_span) = match rename.get() {
                    Some(lit) => (lit.value(), lit.span()),
                    None => (s.ident.to_string(), s.ident.span()),
                };
                let variant = EventVariant {
                    ident: None,
                    name,
                    name_span,
                    version: version.get().unwrap_or(1),
                    fields: &s.fields,
                };
                (&s.ident, EventShape::Struct(variant))
            }
            other => {
                cx.error_spanned_by(
                    item_keyword(other),
                    "`#[event]` goes on an enum of events or on a struct; found neither",
                );
                return None;
            }
        };
        Some(Self {
            krate: krate.get(),
            ident,
            shape,
        })
    }
}

impl<'a> EventVariant<'a> {
    fn from_variant(cx: &Ctxt, v: &'a syn::Variant, attrs: &[syn::Attribute]) -> Self {
        let mut rename = Attr::none(cx, EVENT, RENAME);
        let mut version = Attr::none(cx, EVENT, VERSION);
        for a in attrs {
            let elsewhere = [(
                CRATE,
                "`crate = \"..\"` goes on the enum's own `#[event(crate = \"..\")]`",
            )];
            attr::parse_attr_keys(cx, a, EVENT, &[RENAME, VERSION], &elsewhere, |key, meta| {
                if key == RENAME {
                    let lit = attr::lit_str(meta)?;
                    rename.set(&lit, lit.clone());
                } else {
                    let (lit, n) = attr::positive::<u32>(meta, VERSION_FROM_1)?;
                    version.set(&lit, n);
                }
                Ok(())
            });
        }
        if let syn::Fields::Unnamed(f) = &v.fields
            && f.unnamed.len() != 1
        {
            cx.error_spanned_by(
                &v.fields,
                format!(
                    "an event variant wraps exactly one type, `{0}(Your{0})`, or names its fields, `{0} {{ amount: u64, .. }}`: the payload is stored as one JSON object",
                    v.ident
                ),
            );
        }
        if let Some((_, d)) = &v.discriminant {
            cx.error_spanned_by(d, "event variants cannot have discriminants");
        }
        let (name, name_span) = match rename.get() {
            Some(lit) => (lit.value(), lit.span()),
            None => (v.ident.to_string(), v.ident.span()),
        };
        Self {
            ident: Some(&v.ident),
            name,
            name_span,
            version: version.get().unwrap_or(1),
            fields: &v.fields,
        }
    }
}

/// `#[command(aggregate = A)]` on a struct.
pub struct CommandItem<'a> {
    pub krate: Option<syn::Path>,
    pub ident: &'a syn::Ident,
    pub name: String,
    pub aggregate: Option<syn::Type>,
    /// The `#[id]` field: its accessor (`account_id` or `0`) and type.
    pub id: Option<(syn::Member, &'a syn::Type)>,
}

impl<'a> CommandItem<'a> {
    pub fn from_ast(
        cx: &Ctxt,
        args: TokenStream,
        item: &'a syn::Item,
        id_attrs: &[Vec<syn::Attribute>],
    ) -> Option<Self> {
        let mut krate = Attr::none(cx, COMMAND, CRATE);
        let mut aggregate = Attr::none(cx, COMMAND, AGGREGATE);
        let mut name = Attr::none(cx, COMMAND, NAME);
        attr::parse_keys(
            cx,
            COMMAND,
            &[AGGREGATE, NAME, CRATE],
            &[],
            args.clone(),
            |key, meta| {
                match key.0 {
                    "crate" => krate.set(&meta.path, attr::crate_path(meta)?),
                    "name" => {
                        let lit = attr::lit_str(meta)?;
                        name.set(&lit, lit.value());
                    }
                    _ => {
                        let t = attr::ty(meta)?;
                        aggregate.set(&meta.path, t);
                    }
                }
                Ok(())
            },
        );
        let syn::Item::Struct(s) = item else {
            cx.error_spanned_by(
                item_keyword(item),
                "`#[command]` goes on a struct whose fields are the command's data",
            );
            return None;
        };
        if !s.generics.params.is_empty() {
            cx.error_spanned_by(
                &s.generics,
                "commands cannot be generic: each command type is routed by its name",
            );
        }
        let aggregate = aggregate.get();
        if aggregate.is_none() {
            let at: TokenStream = if args.is_empty() {
                quote::ToTokens::to_token_stream(&s.ident)
            } else {
                args
            };
            cx.error_spanned_by(
                at,
                format!("`#[command]` needs the aggregate it targets: `#[command(aggregate = YourAggregate)]` on `{}`", s.ident),
            );
        }
        let mut id: Option<(syn::Member, &syn::Type)> = None;
        for (index, (field, attrs)) in s.fields.iter().zip(id_attrs).enumerate() {
            for a in attrs {
                if !matches!(a.meta, syn::Meta::Path(_)) {
                    cx.error_spanned_by(a, "`#[id]` takes no arguments");
                }
                if id.is_some() {
                    cx.error_spanned_by(a, "a command has one `#[id]` field; this is a second one");
                    continue;
                }
                let member = match &field.ident {
                    Some(i) => syn::Member::Named(i.clone()),
                    None => syn::Member::Unnamed(syn::Index {
                        index: index as u32,
                        span: field.span(),
                    }),
                };
                id = Some((member, &field.ty));
            }
        }
        if id.is_none() {
            cx.error_spanned_by(
                &s.ident,
                format!("command `{}` has no identity: mark the field naming the target aggregate with `#[id]`", s.ident),
            );
        }
        let name = name.get().unwrap_or_else(|| s.ident.to_string());
        Some(Self {
            krate: krate.get(),
            ident: &s.ident,
            name,
            aggregate,
            id,
        })
    }
}

/// `#[aggregate(events = E)]` on the state struct.
pub struct AggregateStruct<'a> {
    pub krate: Option<syn::Path>,
    pub ident: &'a syn::Ident,
    pub name: String,
    pub events: Option<syn::Type>,
    pub snapshot_every: Option<(TokenStream, u64)>,
    pub snapshot_version: u32,
}

impl<'a> AggregateStruct<'a> {
    pub fn from_ast(cx: &Ctxt, args: TokenStream, s: &'a syn::ItemStruct) -> Self {
        let mut krate = Attr::none(cx, AGGREGATE, CRATE);
        let mut events = Attr::none(cx, AGGREGATE, EVENTS);
        let mut name = Attr::none(cx, AGGREGATE, NAME);
        let mut every = Attr::none(cx, AGGREGATE, SNAPSHOT_EVERY);
        let mut sversion = Attr::none(cx, AGGREGATE, SNAPSHOT_VERSION);
        let allowed = [EVENTS, NAME, SNAPSHOT_EVERY, SNAPSHOT_VERSION, CRATE];
        attr::parse_keys(cx, AGGREGATE, &allowed, &[], args.clone(), |key, meta| {
            match key.0 {
                "crate" => krate.set(&meta.path, attr::crate_path(meta)?),
                "events" => {
                    let t = attr::ty(meta)?;
                    events.set(&meta.path, t);
                }
                "name" => {
                    let lit = attr::lit_str(meta)?;
                    name.set(&lit, lit.value());
                }
                "snapshot_every" => {
                    let (lit, n) =
                        attr::positive::<u64>(meta, "a snapshot is taken every this many events")?;
                    every.set(&meta.path, (quote::quote!(#lit), n));
                }
                _ => {
                    let (lit, n) = attr::positive::<u32>(meta, "snapshot versions count from 1")?;
                    sversion.set(&lit, n);
                }
            }
            Ok(())
        });
        if !s.generics.params.is_empty() {
            cx.error_spanned_by(
                &s.generics,
                "aggregates cannot be generic: each aggregate names its own stream type",
            );
        }
        if let syn::Fields::Unnamed(f) = &s.fields {
            cx.error_spanned_by(
                f,
                format!("`#[aggregate]` goes on a struct with named fields (its state); make `{}` a struct with named fields", s.ident),
            );
        }
        let events = events.get();
        if events.is_none() {
            cx.error_spanned_by(
                &s.ident,
                format!("`#[aggregate]` on a struct needs its event type: `#[aggregate(events = {}Event)]`", s.ident),
            );
        }
        let sversion = sversion.get_with_tokens();
        if let (Some((tokens, _)), None) = (&sversion, &every.value_ref()) {
            cx.error_spanned_by(tokens, "`snapshot_version` needs `snapshot_every = N` too");
        }
        Self {
            krate: krate.get(),
            ident: &s.ident,
            name: name.get().unwrap_or_else(|| s.ident.to_string()),
            events,
            snapshot_every: every.get(),
            snapshot_version: sversion.map_or(1, |(_, v)| v),
        }
    }
}

/// `#[aggregate]` on an inherent impl block holding `#[handle]` and `#[apply]` functions.
pub struct AggregateImpl<'a> {
    pub krate: Option<syn::Path>,
    pub self_ty: &'a syn::Type,
    pub handlers: Vec<Handler<'a>>,
    pub apply: Option<Apply<'a>>,
}

pub struct Handler<'a> {
    pub method: &'a syn::ImplItemFn,
    pub command: &'a syn::Type,
    pub services: Option<&'a syn::Type>,
    pub output: syn::Type,
    pub is_async: bool,
    /// The signature is wrong (and reported): expand only a stub `Handles` impl.
    pub stub: bool,
}

pub struct Apply<'a> {
    pub method: &'a syn::ImplItemFn,
    pub event_arg: Option<&'a syn::Ident>,
}

/// What kind of function an `#[aggregate]` impl item is.
pub enum Role {
    Handle,
    Apply,
    Plain,
}

impl<'a> AggregateImpl<'a> {
    pub fn from_ast(cx: &Ctxt, args: TokenStream, item: &'a syn::ItemImpl, roles: &[Role]) -> Self {
        let mut krate = Attr::none(cx, AGGREGATE, CRATE);
        let on_struct = "it goes on the aggregate's state struct, `#[aggregate(events = ..)] struct ..`; on the impl block `#[aggregate]` takes only `crate = \"..\"`";
        let elsewhere = [EVENTS, NAME, SNAPSHOT_EVERY, SNAPSHOT_VERSION].map(|k| (k, on_struct));
        attr::parse_keys(cx, AGGREGATE, &[CRATE], &elsewhere, args, |_, meta| {
            krate.set(&meta.path, attr::crate_path(meta)?);
            Ok(())
        });
        if let Some((_, path, _)) = &item.trait_ {
            cx.error_spanned_by(path, "`#[aggregate]` goes on the aggregate's inherent impl block (`impl Account { .. }`), not on a trait impl");
        }
        if !item.generics.params.is_empty() {
            cx.error_spanned_by(&item.generics, "aggregates cannot be generic");
        }
        let mut handlers = Vec::new();
        let mut apply: Option<Apply> = None;
        let fns = item.items.iter().filter_map(|i| match i {
            syn::ImplItem::Fn(f) => Some(f),
            _ => None,
        });
        for (method, role) in fns.zip(roles) {
            match role {
                Role::Plain => {}
                Role::Handle => {
                    if let Some(h) = Handler::from_fn(cx, method) {
                        handlers.push(h);
                    }
                }
                Role::Apply => {
                    if let Some(first) = &apply {
                        cx.error_spanned_by(
                            &method.sig.ident,
                            format!(
                                "an aggregate has one `#[apply]` function; `{}` is already it",
                                first.method.sig.ident
                            ),
                        );
                    } else {
                        apply = Apply::from_fn(cx, method);
                    }
                }
            }
        }
        if handlers.is_empty() && apply.is_none() {
            cx.error_spanned_by(
                &item.self_ty,
                "this `#[aggregate]` impl has no `#[handle]` or `#[apply]` function; mark the command handlers with `#[handle]` and the event fold with `#[apply]`",
            );
        }
        Self {
            krate: krate.get(),
            self_ty: &item.self_ty,
            handlers,
            apply,
        }
    }
}

impl<'a> Handler<'a> {
    /// Reports every signature mistake; still returns the handler (as a stub)
    /// when the command type can be told, so uses of the command elsewhere do
    /// not add errors of their own.
    fn from_fn(cx: &Ctxt, method: &'a syn::ImplItemFn) -> Option<Self> {
        let sig = &method.sig;
        let stub = std::cell::Cell::new(false);
        let fail = |tokens: &dyn quote::ToTokens, message: &str| {
            cx.error_spanned_by(tokens.to_token_stream(), message);
            stub.set(true);
        };
        if !sig.generics.params.is_empty() {
            fail(
                &sig.generics,
                "`#[handle]` functions cannot be generic: each handles one command type",
            );
        }
        let mut inputs = sig.inputs.iter().peekable();
        match inputs.peek() {
            Some(syn::FnArg::Receiver(r)) => {
                if r.reference.is_none() || r.mutability.is_some() {
                    fail(
                        r,
                        "a `#[handle]` function takes `&self`: it decides on the current state, and only `#[apply]` changes it",
                    );
                }
                inputs.next();
            }
            Some(first) => fail(
                first,
                "a `#[handle]` function takes `&self` first: `fn name(&self, command: YourCommand)`",
            ),
            None => fail(
                &sig.ident,
                "a `#[handle]` function takes `&self` and the command: `fn name(&self, command: YourCommand)`",
            ),
        }
        let command = match inputs.next() {
            Some(syn::FnArg::Typed(t)) => match &*t.ty {
                syn::Type::Reference(r) => {
                    fail(
                        r,
                        "take the command by value: `command: YourCommand`, not a reference",
                    );
                    &*r.elem
                }
                ty => ty,
            },
            _ => {
                if !stub.get() {
                    fail(
                        &sig.ident,
                        "a `#[handle]` function takes the command after `&self`: `fn name(&self, command: YourCommand)`",
                    );
                }
                return None;
            }
        };
        let services = match inputs.next() {
            None => None,
            Some(syn::FnArg::Typed(t)) => match &*t.ty {
                syn::Type::Reference(r) if r.mutability.is_none() => Some(&*r.elem),
                other => {
                    fail(
                        other,
                        "the argument after the command is a service, taken by shared reference: `services: &YourServices`",
                    );
                    None
                }
            },
            Some(other) => {
                fail(other, "unexpected argument");
                None
            }
        };
        let extra: Vec<&syn::FnArg> = inputs.collect();
        if !extra.is_empty() {
            fail(
                &quote::quote!(#(#extra),*),
                "a `#[handle]` function takes `&self`, the command and at most one service argument; put several services in one struct",
            );
        }
        let output = match &sig.output {
            syn::ReturnType::Default => syn::parse_quote_spanned!(sig.ident.span()=> ()),
            syn::ReturnType::Type(_, ty) => (**ty).clone(),
        };
        Some(Self {
            method,
            command,
            services,
            output,
            is_async: sig.asyncness.is_some(),
            stub: stub.get(),
        })
    }
}

impl<'a> Apply<'a> {
    fn from_fn(cx: &Ctxt, method: &'a syn::ImplItemFn) -> Option<Self> {
        let sig = &method.sig;
        let shape = "an `#[apply]` function looks like `fn apply(&mut self, event: &YourEvents)`";
        if sig.asyncness.is_some() {
            cx.error_spanned_by(
                sig.asyncness,
                "`#[apply]` cannot be async: folding an event is pure state change",
            );
            return None;
        }
        if !sig.generics.params.is_empty() {
            cx.error_spanned_by(&sig.generics, shape);
            return None;
        }
        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(syn::FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_some() => {}
            Some(other) => {
                cx.error_spanned_by(other, format!("{shape}: it takes `&mut self`"));
                return None;
            }
            None => {
                cx.error_spanned_by(&sig.ident, shape);
                return None;
            }
        }
        let event_arg = match inputs.next() {
            Some(syn::FnArg::Typed(t)) if matches!(&*t.ty, syn::Type::Reference(r) if r.mutability.is_none()) => {
                match &*t.pat {
                    syn::Pat::Ident(p) => Some(&p.ident),
                    _ => None,
                }
            }
            Some(other) => {
                cx.error_spanned_by(
                    other,
                    format!("{shape}: the event is taken by shared reference"),
                );
                return None;
            }
            None => {
                cx.error_spanned_by(&sig.ident, shape);
                return None;
            }
        };
        if let Some(extra) = inputs.next() {
            cx.error_spanned_by(extra, shape);
            return None;
        }
        if let syn::ReturnType::Type(_, ty) = &sig.output {
            cx.error_spanned_by(
                ty,
                "`#[apply]` returns nothing: events are facts and folding them cannot fail",
            );
            return None;
        }
        Some(Self { method, event_arg })
    }
}

fn item_keyword(item: &syn::Item) -> TokenStream {
    match item {
        syn::Item::Enum(e) => e.enum_token.to_token_stream(),
        syn::Item::Struct(s) => s.struct_token.to_token_stream(),
        syn::Item::Union(u) => u.union_token.to_token_stream(),
        syn::Item::Fn(f) => f.sig.fn_token.to_token_stream(),
        syn::Item::Trait(t) => t.trait_token.to_token_stream(),
        syn::Item::Impl(i) => i.impl_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}
