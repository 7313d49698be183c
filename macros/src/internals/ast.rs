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
    pub generics: &'a syn::Generics,
    pub shape: EventShape<'a>,
    /// `moved = ["..", ..]`: stored type names now read by another event type.
    pub moved: Vec<syn::LitStr>,
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
    /// `rename_from = ".."`: names this type was stored under before, at
    /// this version.
    pub rename_from: Vec<syn::LitStr>,
    pub payload: Payload<'a>,
}

/// How a variant's data is stored.
pub enum Payload<'a> {
    /// No fields: `{}`.
    Unit,
    /// One wrapped type, stored as its serde form, through the field's own
    /// `#[serde(..)]` attributes.
    Newtype(PayloadField<'a>),
    /// Named fields, stored as a JSON object of them.
    Named(Vec<PayloadField<'a>>),
}

pub struct PayloadField<'a> {
    /// `None` for the newtype form.
    pub ident: Option<&'a syn::Ident>,
    pub ty: &'a syn::Type,
    pub serde: Vec<&'a syn::Attribute>,
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
        let mut moved = Attr::none(cx, EVENT, MOVED);
        let mut rename_from = Attr::none(cx, EVENT, RENAME_FROM);
        let is_struct = matches!(item, syn::Item::Struct(_));
        let allowed: &[Symbol] = if is_struct {
            &[CRATE, RENAME, VERSION, RENAME_FROM, MOVED]
        } else {
            &[CRATE, MOVED]
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
                (
                    RENAME_FROM,
                    "on an enum, each variant is one event type; put `#[event(rename_from = \"..\")]` on the variant",
                ),
            ]
        };
        attr::parse_keys(cx, EVENT, allowed, elsewhere, args, |meta| {
            if meta.path == CRATE {
                krate.set(&meta.path, attr::crate_path(meta)?);
            } else if meta.path == RENAME && is_struct {
                let lit = attr::lit_str(meta)?;
                rename.set(&meta.path, lit);
            } else if meta.path == VERSION && is_struct {
                let (lit, v) = attr::positive::<u32>(meta, VERSION_FROM_1)?;
                version.set(&meta.path, (lit, v));
            } else if meta.path == MOVED {
                moved.set(&meta.path, attr::lit_strs(meta, MOVED_NAMES)?);
            } else if meta.path == RENAME_FROM && is_struct {
                rename_from.set(&meta.path, attr::lit_strs(meta, RENAME_FROM_NAMES)?);
            } else {
                return Ok(false);
            }
            Ok(true)
        });
        let (ident, generics, shape) = match item {
            syn::Item::Enum(e) => {
                no_generics(cx, &e.generics, GENERIC_EVENT);
                if e.variants.is_empty() {
                    cx.error_spanned_by(
                        &e.ident,
                        "an event enum needs at least one variant: each variant is one event type",
                    );
                }
                for a in e.attrs.iter().filter(|a| a.path() == SERDE) {
                    if !only_serde_crate(a) {
                        cx.error_spanned_by(
                            a,
                            "`#[serde(..)]` on an `#[event]` enum would change the enum's serde form but not what is stored: \
                             each variant is stored on its own, as its fields; name a variant's stored type with \
                             `#[event(rename = \"..\")]` on the variant, and put `#[serde(..)]` on the fields",
                        );
                    }
                }
                let variants = e
                    .variants
                    .iter()
                    .zip(variant_attrs)
                    .map(|(v, attrs)| EventVariant::from_variant(cx, v, attrs))
                    .collect();
                (&e.ident, &e.generics, EventShape::Enum(variants))
            }
            syn::Item::Struct(s) => {
                no_generics(cx, &s.generics, GENERIC_EVENT);
                let (name, name_span) = match rename.get() {
                    Some(lit) => (lit.value(), lit.span()),
                    None => (s.ident.to_string(), s.ident.span()),
                };
                let variant = EventVariant {
                    ident: None,
                    name,
                    name_span,
                    version: version.get().map_or(1, |(_, v)| v),
                    rename_from: rename_from.get().unwrap_or_default(),
                    // The struct is stored through its own serde derive.
                    payload: Payload::Unit,
                };
                (&s.ident, &s.generics, EventShape::Struct(variant))
            }
            other => {
                cx.error_spanned_by(
                    item_keyword(other),
                    "`#[event]` goes on an enum of events or on a struct; found neither",
                );
                return None;
            }
        };
        let moved = moved.get().unwrap_or_default();
        let declared: Vec<&str> = match &shape {
            EventShape::Enum(vs) => vs.iter().map(|v| v.name.as_str()).collect(),
            EventShape::Struct(v) => vec![v.name.as_str()],
        };
        for (i, name) in moved.iter().enumerate() {
            let value = name.value();
            if declared.contains(&value.as_str()) {
                cx.error_spanned_by(
                    name,
                    format!("`{value}` is declared here: a moved type is one this event type no longer declares (another `#[event]` type reads it now)"),
                );
            } else if moved[..i].iter().any(|m| m.value() == value) {
                cx.error_spanned_by(name, format!("`{value}` is listed twice"));
            }
        }
        Some(Self {
            krate: krate.get(),
            ident,
            generics,
            shape,
            moved,
        })
    }
}

const RENAME_FROM_NAMES: &str = "`rename_from` lists the names this event type was stored under before: `rename_from = \"FundsWithdrawn\"`";

const MOVED_NAMES: &str = "`moved` lists the stored type names that moved to another event type: `moved = [\"CardLocked\"]`";

const GENERIC_EVENT: &str =
    "event types cannot be generic: each stored event names one concrete type";

impl<'a> EventVariant<'a> {
    fn from_variant(cx: &Ctxt, v: &'a syn::Variant, attrs: &[syn::Attribute]) -> Self {
        let mut rename = Attr::none(cx, EVENT, RENAME);
        let mut version = Attr::none(cx, EVENT, VERSION);
        let mut rename_from = Attr::none(cx, EVENT, RENAME_FROM);
        let elsewhere = [(
            CRATE,
            "`crate = \"..\"` goes on the enum's own `#[event(crate = \"..\")]`",
        )];
        for a in attrs {
            attr::parse_attr_keys(
                cx,
                a,
                EVENT,
                &[RENAME, VERSION, RENAME_FROM],
                &elsewhere,
                |meta| {
                    if meta.path == RENAME {
                        let lit = attr::lit_str(meta)?;
                        rename.set(&meta.path, lit);
                    } else if meta.path == VERSION {
                        let (_, n) = attr::positive::<u32>(meta, VERSION_FROM_1)?;
                        version.set(&meta.path, n);
                    } else if meta.path == RENAME_FROM {
                        rename_from.set(&meta.path, attr::lit_strs(meta, RENAME_FROM_NAMES)?);
                    } else {
                        return Ok(false);
                    }
                    Ok(true)
                },
            );
        }
        for a in v.attrs.iter().filter(|a| a.path() == SERDE) {
            cx.error_spanned_by(
                a,
                format!(
                    "`#[serde(..)]` on an event variant is not applied to what is stored: the variant is stored as its fields, \
                     under its event type name; name the stored type with `#[event(rename = \"..\")]` on `{}`, and put \
                     `#[serde(..)]` on its fields",
                    v.ident
                ),
            );
        }
        if let Some((_, d)) = &v.discriminant {
            cx.error_spanned_by(
                d,
                "event variants cannot have discriminants: an event is stored by its type name, never by a number",
            );
        }
        let payload = match &v.fields {
            syn::Fields::Unit => Payload::Unit,
            syn::Fields::Named(f) => {
                Payload::Named(f.named.iter().map(PayloadField::new).collect())
            }
            syn::Fields::Unnamed(f) if f.unnamed.len() == 1 => {
                Payload::Newtype(PayloadField::new(&f.unnamed[0]))
            }
            syn::Fields::Unnamed(_) => {
                cx.error_spanned_by(
                    &v.fields,
                    format!(
                        "an event variant wraps exactly one type, `{0}(Your{0})`, or names its fields, `{0} {{ amount: u64, .. }}`: the payload is stored as one JSON object",
                        v.ident
                    ),
                );
                Payload::Unit
            }
        };
        let (name, name_span) = match rename.get() {
            Some(lit) => (lit.value(), lit.span()),
            None => (v.ident.to_string(), v.ident.span()),
        };
        Self {
            ident: Some(&v.ident),
            name,
            name_span,
            version: version.get().unwrap_or(1),
            rename_from: rename_from.get().unwrap_or_default(),
            payload,
        }
    }
}

impl<'a> PayloadField<'a> {
    fn new(field: &'a syn::Field) -> Self {
        Self {
            ident: field.ident.as_ref(),
            ty: &field.ty,
            serde: field.attrs.iter().filter(|a| a.path() == SERDE).collect(),
        }
    }
}

/// `#[serde(crate = "..")]` only: where the user's own serde derive finds serde.
fn only_serde_crate(attr: &syn::Attribute) -> bool {
    let mut only_crate = true;
    let parsed = attr.parse_nested_meta(|meta| {
        only_crate &= meta.path == CRATE;
        if meta.input.peek(syn::Token![=]) {
            let _: syn::Expr = meta.value()?.parse()?;
        }
        Ok(())
    });
    parsed.is_ok() && only_crate
}

/// `#[command(aggregate = A)]` on a struct.
pub struct CommandItem<'a> {
    pub krate: Option<syn::Path>,
    pub ident: &'a syn::Ident,
    pub generics: &'a syn::Generics,
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
        let args_tokens = args.clone();
        let clean = attr::parse_keys(cx, COMMAND, &[AGGREGATE, NAME, CRATE], &[], args, |meta| {
            if meta.path == CRATE {
                krate.set(&meta.path, attr::crate_path(meta)?);
            } else if meta.path == NAME {
                let lit = attr::lit_str(meta)?;
                name.set(&meta.path, lit.value());
            } else if meta.path == AGGREGATE {
                let t = attr::ty(meta)?;
                aggregate.set(&meta.path, t);
            } else {
                return Ok(false);
            }
            Ok(true)
        });
        let syn::Item::Struct(s) = item else {
            cx.error_spanned_by(
                item_keyword(item),
                "`#[command]` goes on a struct whose fields are the command's data",
            );
            return None;
        };
        no_generics(
            cx,
            &s.generics,
            "commands cannot be generic: each command type is routed by its name",
        );
        let aggregate = aggregate.get();
        // An unknown or malformed key is most likely a misspelt `aggregate`:
        // that error is the one to read.
        if aggregate.is_none() && clean {
            let message = format!(
                "`#[command]` needs the aggregate it targets: `#[command(aggregate = YourAggregate)]` on `{}`",
                s.ident
            );
            if args_tokens.is_empty() {
                cx.error_spanned_by(&s.ident, message);
            } else {
                cx.error_spanned_by(args_tokens, message);
            }
        }
        let mut id: Option<(syn::Member, &syn::Type)> = None;
        for (index, (field, attrs)) in s.fields.iter().zip(id_attrs).enumerate() {
            for a in attrs {
                if !matches!(a.meta, syn::Meta::Path(_)) {
                    cx.error_spanned_by(a, "`#[id]` takes no arguments");
                }
                if let Some((first, _)) = &id {
                    cx.error_spanned_by(
                        a,
                        format!(
                            "a command has one `#[id]` field, and `{}` already is it; the id names one aggregate instance: \
                             if it is made of several values, make it one type that implements `Display`",
                            member_name(first)
                        ),
                    );
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
                format!("command `{}` has no identity: mark the field naming the target aggregate instance with `#[id]`", s.ident),
            );
        }
        let name = name.get().unwrap_or_else(|| s.ident.to_string());
        Some(Self {
            krate: krate.get(),
            ident: &s.ident,
            generics: &s.generics,
            name,
            aggregate,
            id,
        })
    }
}

fn member_name(member: &syn::Member) -> String {
    match member {
        syn::Member::Named(i) => i.to_string(),
        syn::Member::Unnamed(i) => i.index.to_string(),
    }
}

/// `#[aggregate(events = E)]` on the state struct.
pub struct AggregateStruct<'a> {
    pub krate: Option<syn::Path>,
    pub ident: &'a syn::Ident,
    pub generics: &'a syn::Generics,
    pub name: String,
    pub events: Option<syn::Type>,
    /// The `snapshot_every` key's tokens, for spans, and its value.
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
        let clean = attr::parse_keys(cx, AGGREGATE, &allowed, &[], args, |meta| {
            if meta.path == CRATE {
                krate.set(&meta.path, attr::crate_path(meta)?);
            } else if meta.path == EVENTS {
                let t = attr::ty(meta)?;
                events.set(&meta.path, t);
            } else if meta.path == NAME {
                let lit: syn::LitStr = meta.value()?.parse()?;
                check_aggregate_name(cx, &lit);
                name.set(&meta.path, lit.value());
            } else if meta.path == SNAPSHOT_EVERY {
                let (_, n) =
                    attr::positive::<u64>(meta, "a snapshot is taken every this many events")?;
                every.set(&meta.path, n);
            } else if meta.path == SNAPSHOT_VERSION {
                let (_, n) = attr::positive::<u32>(meta, "snapshot versions count from 1")?;
                sversion.set(&meta.path, n);
            } else {
                return Ok(false);
            }
            Ok(true)
        });
        no_generics(
            cx,
            &s.generics,
            "aggregates cannot be generic: each aggregate names its own streams",
        );
        if let syn::Fields::Unnamed(f) = &s.fields {
            cx.error_spanned_by(
                f,
                format!("`#[aggregate]` goes on a struct with named fields (its state); make `{}` a struct with named fields", s.ident),
            );
        }
        let events = events.get();
        // An unknown or malformed key is most likely a misspelt `events`.
        if events.is_none() && clean {
            cx.error_spanned_by(
                &s.ident,
                format!("`#[aggregate]` on a struct needs its event type: `#[aggregate(events = {}Event)]`", s.ident),
            );
        }
        let sversion = sversion.get_with_tokens();
        if let (Some((key, _)), None) = (&sversion, &every.value_ref()) {
            cx.error_spanned_by(
                key,
                "`snapshot_version` versions the snapshots that `snapshot_every = N` turns on; add `snapshot_every = N`, or remove `snapshot_version`",
            );
        }
        Self {
            krate: krate.get(),
            ident: &s.ident,
            generics: &s.generics,
            name: name.get().unwrap_or_else(|| s.ident.to_string()),
            events,
            snapshot_every: every.get_with_tokens(),
            snapshot_version: sversion.map_or(1, |(_, v)| v),
        }
    }
}

/// An aggregate name is the prefix of its stream names, `"{name}-{id}"`.
fn check_aggregate_name(cx: &Ctxt, lit: &syn::LitStr) {
    let name = lit.value();
    let why = "it is the prefix of every stream name of this aggregate, `\"{name}-{id}\"`";
    let problem = if name.is_empty() {
        Some(format!("an aggregate name cannot be empty: {why}"))
    } else if name.contains('-') {
        Some(format!(
            "an aggregate name cannot contain `-`: {why}, so a `-` lets two aggregates share streams \
             (`Acct` with id `x-R` and `Acct-x` with id `R` would both be `Acct-x-R`); use `_` or `.` instead"
        ))
    } else if name.contains(|c: char| c.is_whitespace() || c == '\0') {
        Some(format!(
            "an aggregate name cannot contain whitespace or NUL: {why}"
        ))
    } else {
        None
    };
    if let Some(message) = problem {
        cx.error_spanned_by(lit, message);
    }
}

fn no_generics(cx: &Ctxt, generics: &syn::Generics, message: &str) {
    if !generics.params.is_empty() {
        cx.error_spanned_by(generics, message);
    }
}

/// `#[aggregate]` on an inherent impl block holding `#[handle]` and `#[apply]` functions.
pub struct AggregateImpl<'a> {
    pub krate: Option<syn::Path>,
    pub self_ty: &'a syn::Type,
    pub generics: &'a syn::Generics,
    /// `impl Trait for ..`: reported; nothing is generated for it.
    pub is_trait_impl: bool,
    pub handlers: Vec<Handler<'a>>,
    pub apply: Option<Apply<'a>>,
}

pub struct Handler<'a> {
    pub method: &'a syn::ImplItemFn,
    pub command: &'a syn::Type,
    pub services: Option<&'a syn::Type>,
    pub output: syn::Type,
    pub is_async: bool,
    /// The signature is wrong (and reported): expand only a stub `Handles` impl,
    /// so the command still has its handler and uses of it add no errors.
    pub stub: bool,
}

/// A handler's output, as far as its tokens tell.
pub enum OutputShape<'a> {
    /// `Result<T, E>`: the events and the domain error, checked one by one.
    Result {
        events: &'a syn::Type,
        error: &'a syn::Type,
    },
    /// Anything else, checked as a whole.
    Other,
}

impl Handler<'_> {
    pub fn output_shape(&self) -> OutputShape<'_> {
        let syn::Type::Path(p) = &self.output else {
            return OutputShape::Other;
        };
        let Some(last) = p.path.segments.last() else {
            return OutputShape::Other;
        };
        if p.qself.is_some() || last.ident != "Result" {
            return OutputShape::Other;
        }
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            return OutputShape::Other;
        };
        match (args.args.len(), args.args.first(), args.args.last()) {
            (
                2,
                Some(syn::GenericArgument::Type(events)),
                Some(syn::GenericArgument::Type(error)),
            ) => OutputShape::Result { events, error },
            _ => OutputShape::Other,
        }
    }
}

pub struct Apply<'a> {
    pub method: &'a syn::ImplItemFn,
    pub event_arg: Option<&'a syn::Ident>,
    /// The signature is wrong (and reported): expand only a stub fold, so the
    /// aggregate is not also reported as having no `#[apply]`.
    pub stub: bool,
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
        attr::parse_keys(cx, AGGREGATE, &[CRATE], &elsewhere, args, |meta| {
            if meta.path == CRATE {
                krate.set(&meta.path, attr::crate_path(meta)?);
            } else {
                return Ok(false);
            }
            Ok(true)
        });
        if let Some((_, path, _)) = &item.trait_ {
            cx.error_spanned_by(path, "`#[aggregate]` goes on the aggregate's inherent impl block (`impl Account { .. }`), not on a trait impl");
        }
        no_generics(
            cx,
            &item.generics,
            "aggregates cannot be generic: each aggregate names its own streams",
        );
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
                        apply = Some(Apply::from_fn(cx, method));
                    }
                }
            }
        }
        if item.trait_.is_none() && roles.iter().all(|r| matches!(r, Role::Plain)) {
            cx.error_spanned_by(
                &item.self_ty,
                "this `#[aggregate]` impl has no `#[handle]` or `#[apply]` function; mark the command handlers with `#[handle]` and the event fold with `#[apply]`",
            );
        }
        Self {
            krate: krate.get(),
            self_ty: &item.self_ty,
            generics: &item.generics,
            is_trait_impl: item.trait_.is_some(),
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
    /// Reports every signature mistake, and then marks the fold a stub.
    fn from_fn(cx: &Ctxt, method: &'a syn::ImplItemFn) -> Self {
        let sig = &method.sig;
        let shape = "an `#[apply]` function looks like `fn apply(&mut self, event: &YourEvents)`";
        let before = cx.error_count();
        if let Some(asyncness) = &sig.asyncness {
            cx.error_spanned_by(
                asyncness,
                "`#[apply]` cannot be async: folding an event is a plain state change; do any waiting in a `#[handle]` function",
            );
        }
        if !sig.generics.params.is_empty() {
            cx.error_spanned_by(&sig.generics, format!("{shape}: it cannot be generic"));
        }
        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(syn::FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_some() => {}
            Some(other) => {
                cx.error_spanned_by(other, format!("{shape}: it takes `&mut self`"));
            }
            None => cx.error_spanned_by(&sig.ident, shape),
        }
        let mut event_arg = None;
        match inputs.next() {
            Some(syn::FnArg::Typed(t)) if matches!(&*t.ty, syn::Type::Reference(r) if r.mutability.is_none()) => {
                if let syn::Pat::Ident(p) = &*t.pat {
                    event_arg = Some(&p.ident);
                }
            }
            Some(other) => cx.error_spanned_by(
                other,
                format!("{shape}: the event is taken by shared reference"),
            ),
            None => {
                if cx.error_count() == before {
                    cx.error_spanned_by(&sig.ident, format!("{shape}: it takes the event"));
                }
            }
        }
        if let Some(extra) = inputs.next() {
            cx.error_spanned_by(
                extra,
                format!("{shape}: it takes only `&mut self` and the event"),
            );
        }
        if let syn::ReturnType::Type(_, ty) = &sig.output {
            cx.error_spanned_by(
                ty,
                "`#[apply]` returns nothing and cannot fail: events are facts that already happened; refuse a command in its `#[handle]` function instead",
            );
        }
        Self {
            method,
            event_arg,
            stub: cx.error_count() != before,
        }
    }
}

/// `#[event_handler(..)]`'s keys.
pub struct HandlerArgs {
    pub krate: Option<syn::Path>,
    /// `name = ".."`, checked.
    pub name: Option<String>,
    pub start_from: Option<StartFrom>,
    pub concurrency: Option<usize>,
}

/// `start_from = origin | now`.
#[derive(Clone, Copy)]
pub enum StartFrom {
    Origin,
    Now,
}

const START_FROM_VALUES: &str = "expected `start_from = origin` (the whole history, the default) or `start_from = now` (only the events recorded after the handler first starts)";

impl HandlerArgs {
    pub fn from_args(cx: &Ctxt, args: TokenStream) -> Self {
        let mut krate = Attr::none(cx, EVENT_HANDLER, CRATE);
        let mut name = Attr::none(cx, EVENT_HANDLER, NAME);
        let mut start_from = Attr::none(cx, EVENT_HANDLER, START_FROM);
        let mut concurrency = Attr::none(cx, EVENT_HANDLER, CONCURRENCY);
        let allowed = [NAME, START_FROM, CONCURRENCY, CRATE];
        attr::parse_keys(cx, EVENT_HANDLER, &allowed, &[], args, |meta| {
            if meta.path == CRATE {
                krate.set(&meta.path, attr::crate_path(meta)?);
            } else if meta.path == NAME {
                let lit: syn::LitStr = meta.value()?.parse()?;
                check_handler_name(cx, &lit);
                name.set(&meta.path, lit.value());
            } else if meta.path == START_FROM {
                let value: syn::Expr = meta.value()?.parse()?;
                let parsed = match &value {
                    syn::Expr::Path(p) if p.path.is_ident("origin") => Some(StartFrom::Origin),
                    syn::Expr::Path(p) if p.path.is_ident("now") => Some(StartFrom::Now),
                    _ => None,
                };
                match parsed {
                    Some(v) => start_from.set(&meta.path, v),
                    None => cx.error_spanned_by(
                        &value,
                        format!(
                            "unknown `start_from` value `{}`; {START_FROM_VALUES}",
                            value.to_token_stream().to_string().replace(' ', "")
                        ),
                    ),
                }
            } else if meta.path == CONCURRENCY {
                let (_, n) = attr::positive::<usize>(
                    meta,
                    "it is how many events the handler handles at once (events of one stream always one after another)",
                )?;
                concurrency.set(&meta.path, n);
            } else {
                return Ok(false);
            }
            Ok(true)
        });
        Self {
            krate: krate.get(),
            name: name.get(),
            start_from: start_from.get(),
            concurrency: concurrency.get(),
        }
    }
}

/// A handler's name keys its checkpoint in every store.
fn check_handler_name(cx: &Ctxt, lit: &syn::LitStr) {
    let name = lit.value();
    let why = "it is the key of the handler's checkpoint in the store";
    let problem = if name.trim().is_empty() {
        Some(format!("an event handler name cannot be empty: {why}"))
    } else if name.contains('\0') {
        Some(format!(
            "an event handler name cannot contain NUL: {why}, and PostgreSQL cannot store NUL in text"
        ))
    } else if name.contains(char::is_control) {
        Some(format!(
            "an event handler name cannot contain control characters (newlines, tabs, ..): {why}, and it appears in logs"
        ))
    } else if name.len() > 1024 {
        Some(format!(
            "an event handler name is at most 1024 bytes, this one is {}: {why}",
            name.len()
        ))
    } else {
        None
    };
    if let Some(message) = problem {
        cx.error_spanned_by(lit, message);
    }
}

/// `#[event_handler]` on an inherent impl block: every function in it is a
/// handler method for one event type.
pub struct HandlerImpl<'a> {
    pub args: HandlerArgs,
    pub self_ty: &'a syn::Type,
    pub generics: &'a syn::Generics,
    /// `impl Trait for ..`: reported; only a stand-in impl is generated.
    pub trait_path: Option<&'a syn::Path>,
    pub methods: Vec<HandlerMethod<'a>>,
}

pub struct HandlerMethod<'a> {
    pub method: &'a syn::ImplItemFn,
    /// The event type taken by reference, when the signature tells it.
    pub event: Option<&'a syn::Type>,
    pub takes_meta: bool,
    pub output: ReturnShape<'a>,
    pub is_async: bool,
    /// The signature is wrong (and reported): the method is left out of the
    /// generated routing, so nothing built on it reports a second error.
    pub stub: bool,
}

/// An event handler method's return type, as far as its tokens tell.
pub enum ReturnShape<'a> {
    /// No return type.
    Unit,
    /// `Result<T, E>`: `T` and `E` are checked one by one.
    Result {
        ok: &'a syn::Type,
        error: &'a syn::Type,
    },
    /// Anything else, checked as a whole.
    Other(&'a syn::Type),
}

const HANDLER_SHAPE: &str = "every function of an `#[event_handler]` impl handles one event type: \
     `fn name(&self, event: &YourEvent)` or `fn name(&self, event: &YourEvent, meta: &EventMeta<'_>)`, \
     optionally `async`, returning `()` or `Result<(), E>`";

impl<'a> HandlerImpl<'a> {
    pub fn from_ast(cx: &Ctxt, args: TokenStream, item: &'a syn::ItemImpl) -> Self {
        let args = HandlerArgs::from_args(cx, args);
        let self_name = type_name(&item.self_ty);
        let trait_path = inherent_concrete_impl(cx, item, EVENT_HANDLER, "handler", "EventHandler");
        let mut methods = Vec::new();
        let mut any_fn = false;
        for member in &item.items {
            if let syn::ImplItem::Fn(f) = member {
                any_fn = true;
                if trait_path.is_none() {
                    methods.push(HandlerMethod::from_fn(cx, f, &self_name));
                }
            }
        }
        if !any_fn && trait_path.is_none() {
            cx.error_spanned_by(
                &item.self_ty,
                format!(
                    "this `#[event_handler]` impl has no handler method; add one per event type `{self_name}` handles: `fn name(&self, event: &YourEvent)`"
                ),
            );
        }
        Self {
            args,
            self_ty: &item.self_ty,
            generics: &item.generics,
            trait_path,
            methods,
        }
    }

    /// The handler's durable name: `name = ".."`, or the type's name as written.
    pub fn name(&self) -> String {
        self.args
            .name
            .clone()
            .unwrap_or_else(|| type_name(self.self_ty))
    }
}

/// Reports `#[macro_name]` on a trait impl (returning its trait) or a
/// generic impl: the macro writes `trait_name` for one concrete type, from
/// an inherent impl block, and the durable name of the `noun` it is keys
/// its checkpoint.
fn inherent_concrete_impl<'a>(
    cx: &Ctxt,
    item: &'a syn::ItemImpl,
    macro_name: Symbol,
    noun: &str,
    trait_name: &str,
) -> Option<&'a syn::Path> {
    let self_name = type_name(&item.self_ty);
    let trait_path = item.trait_.as_ref().map(|(_, path, _)| path);
    if let Some(path) = trait_path {
        cx.error_spanned_by(
            path,
            format!(
                "`#[{macro_name}]` goes on the {noun}'s inherent impl block (`impl {self_name} {{ .. }}`), not on a trait impl: it writes `{trait_name}` for `{self_name}` from the methods of that block"
            ),
        );
    }
    if !item.generics.params.is_empty() {
        let base = self_name.split('<').next().unwrap_or_default();
        cx.error_spanned_by(
            &item.generics,
            format!(
                "`#[{macro_name}]` cannot go on a generic impl: the {noun}'s name keys its checkpoint, so every `{base}<..>` would share one; \
                 write the impl for one concrete type, `impl {base}<..> {{ .. }}` with the type arguments filled in"
            ),
        );
    }
    trait_path
}

impl<'a> HandlerMethod<'a> {
    /// Reports every signature mistake; a method with one is a stub.
    fn from_fn(cx: &Ctxt, method: &'a syn::ImplItemFn, self_name: &str) -> Self {
        let sig = &method.sig;
        let ident = &sig.ident;
        let before = cx.error_count();
        let helper = format!(
            "{HANDLER_SHAPE}; if `{ident}` is a helper, move it to another `impl {self_name}` block"
        );
        if let Some(unsafety) = &sig.unsafety {
            cx.error_spanned_by(
                unsafety,
                "an event handler method cannot be `unsafe`: the generated `handle` calls it for every event of its type",
            );
        }
        if sig.generics.type_params().next().is_some()
            || sig.generics.const_params().next().is_some()
        {
            cx.error_spanned_by(
                &sig.generics,
                "event handler methods cannot be generic: each takes one event type, and the handler's interest set is fixed at compile time",
            );
        }
        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(syn::FnArg::Receiver(r)) => {
                let shared = matches!(&*r.ty, syn::Type::Reference(t) if t.mutability.is_none());
                if !shared {
                    let message = if r.reference.is_some()
                        || matches!(&*r.ty, syn::Type::Reference(_))
                    {
                        "an event handler method takes `&self`, not `&mut self`: the runner handles several events at once (`concurrency`) with one shared handler; keep changing state behind atomics or a `Mutex`"
                    } else {
                        "an event handler method takes `&self`, not `self`: the handler is kept and called for every event"
                    };
                    cx.error_spanned_by(r, message);
                }
            }
            _ => {
                cx.error_spanned_by(ident, format!("`{ident}` does not take `&self`; {helper}"));
                return Self::stub(method);
            }
        }
        let elsewhere =
            format!("whatever else `{ident}` needs belongs in a field of `{self_name}`");
        let EventParams {
            event,
            takes_meta,
            no_event,
        } = event_params(
            cx,
            inputs,
            &format!(
                "the parameter after the event is its metadata, `meta: &EventMeta<'_>`; {elsewhere}"
            ),
            &format!(
                "an event handler method takes `&self`, the event and at most its metadata, `meta: &EventMeta<'_>`; {elsewhere}"
            ),
        );
        if no_event && cx.error_count() == before {
            cx.error_spanned_by(
                ident,
                format!("`{ident}` takes no event after `&self`; {helper}"),
            );
        }
        let output = match &sig.output {
            syn::ReturnType::Default => ReturnShape::Unit,
            syn::ReturnType::Type(_, ty) => return_shape(ty),
        };
        Self {
            method,
            event,
            takes_meta,
            output,
            is_async: sig.asyncness.is_some(),
            stub: cx.error_count() != before,
        }
    }

    fn stub(method: &'a syn::ImplItemFn) -> Self {
        Self {
            method,
            event: None,
            takes_meta: false,
            output: ReturnShape::Unit,
            is_async: false,
            stub: true,
        }
    }
}

/// What a method handling one event type takes after its receiver (if it
/// has one): `event: &E`, then optionally `meta: &EventMeta<'_>`.
pub struct EventParams<'a> {
    /// `E`, when the signature tells it.
    pub event: Option<&'a syn::Type>,
    pub takes_meta: bool,
    /// No event parameter at all: for the caller to report, in the words of
    /// the method's shape.
    pub no_event: bool,
}

/// Reads [`EventParams`] from `inputs`, reporting an event not taken by
/// shared reference, a parameter after the event that is not
/// `&EventMeta` (with `not_meta`) and any more parameters (with `extra`).
pub fn event_params<'a>(
    cx: &Ctxt,
    mut inputs: impl Iterator<Item = &'a syn::FnArg>,
    not_meta: &str,
    extra: &str,
) -> EventParams<'a> {
    let mut event = None;
    let mut no_event = false;
    match inputs.next() {
        Some(syn::FnArg::Typed(t)) => match &*t.ty {
            syn::Type::Reference(r) => {
                if r.mutability.is_some() {
                    cx.error_spanned_by(
                        r,
                        "take the event by shared reference, `event: &YourEvent`: it is a recorded fact, not something to change",
                    );
                }
                event = Some(&*r.elem);
            }
            ty => {
                let ty_name = ty.to_token_stream().to_string().replace(' ', "");
                cx.error_spanned_by(
                    ty,
                    format!("take the event by reference: `event: &{ty_name}`"),
                );
            }
        },
        _ => no_event = true,
    }
    let mut takes_meta = false;
    if let Some(arg) = inputs.next() {
        match arg {
            syn::FnArg::Typed(t) if matches!(&*t.ty, syn::Type::Reference(r) if r.mutability.is_none() && is_event_meta(&r.elem)) =>
            {
                takes_meta = true;
            }
            syn::FnArg::Typed(t) => cx.error_spanned_by(&t.ty, not_meta),
            other => cx.error_spanned_by(other, not_meta),
        }
    }
    let more: Vec<&syn::FnArg> = inputs.collect();
    if !more.is_empty() {
        cx.error_spanned_by(quote::quote!(#(#more),*), extra);
    }
    EventParams {
        event,
        takes_meta,
        no_event,
    }
}

/// `EventMeta`, `EventMeta<'_>`, `annals::EventMeta<'a>`, ...: the type is
/// then checked by the call the generated code makes.
fn is_event_meta(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(p) => {
            p.qself.is_none()
                && p.path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "EventMeta")
        }
        syn::Type::Paren(p) => is_event_meta(&p.elem),
        syn::Type::Group(g) => is_event_meta(&g.elem),
        _ => false,
    }
}

pub fn return_shape(ty: &syn::Type) -> ReturnShape<'_> {
    if let syn::Type::Tuple(t) = ty
        && t.elems.is_empty()
    {
        return ReturnShape::Unit;
    }
    let syn::Type::Path(p) = ty else {
        return ReturnShape::Other(ty);
    };
    let Some(last) = p.path.segments.last() else {
        return ReturnShape::Other(ty);
    };
    if p.qself.is_some() || last.ident != "Result" {
        return ReturnShape::Other(ty);
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return ReturnShape::Other(ty);
    };
    match (args.args.len(), args.args.first(), args.args.last()) {
        (2, Some(syn::GenericArgument::Type(ok)), Some(syn::GenericArgument::Type(error))) => {
            ReturnShape::Result { ok, error }
        }
        _ => ReturnShape::Other(ty),
    }
}

/// A type's name as written, without its path: `Notifier<Smtp>` for
/// `crate::mail::Notifier<Smtp>`.
pub fn type_name(ty: &syn::Type) -> String {
    let tokens = match ty {
        syn::Type::Path(p) if p.qself.is_none() => match p.path.segments.last() {
            Some(last) => last.to_token_stream(),
            None => ty.to_token_stream(),
        },
        _ => ty.to_token_stream(),
    };
    let mut name = tokens.to_string();
    for (spaced, tight) in [
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        (" ::", "::"),
        (":: ", "::"),
        ("& ", "&"),
    ] {
        name = name.replace(spaced, tight);
    }
    name
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

/// `#[process_manager(..)]`'s keys.
pub struct ProcessArgs {
    pub krate: Option<syn::Path>,
    /// `name = ".."`, checked as an event handler's: it keys the checkpoint
    /// too, among the same names.
    pub name: Option<String>,
}

impl ProcessArgs {
    pub fn from_args(cx: &Ctxt, args: TokenStream) -> Self {
        let mut krate = Attr::none(cx, PROCESS_MANAGER, CRATE);
        let mut name = Attr::none(cx, PROCESS_MANAGER, NAME);
        let elsewhere = [
            (
                START_FROM,
                "a process manager always starts at the origin: its instances are built from every event it routes",
            ),
            (
                CONCURRENCY,
                "a process manager handles one event at a time, in log order: its instances span streams, so no other order keeps an instance's events in order",
            ),
        ];
        attr::parse_keys(
            cx,
            PROCESS_MANAGER,
            &[NAME, CRATE],
            &elsewhere,
            args,
            |meta| {
                if meta.path == CRATE {
                    krate.set(&meta.path, attr::crate_path(meta)?);
                } else if meta.path == NAME {
                    let lit: syn::LitStr = meta.value()?.parse()?;
                    check_handler_name(cx, &lit);
                    name.set(&meta.path, lit.value());
                } else {
                    return Ok(false);
                }
                Ok(true)
            },
        );
        Self {
            krate: krate.get(),
            name: name.get(),
        }
    }
}

/// What a function of a `#[process_manager]` impl does, by its attribute.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessRole {
    Route,
    Handle,
    Apply,
}

impl ProcessRole {
    pub const ALL: [Self; 3] = [Self::Route, Self::Handle, Self::Apply];

    pub fn symbol(self) -> Symbol {
        match self {
            Self::Route => ROUTE,
            Self::Handle => HANDLE,
            Self::Apply => APPLY,
        }
    }

    /// "a `#[route]` function".
    pub fn a_fn(self) -> String {
        let article = if self == Self::Apply { "an" } else { "a" };
        format!("{article} `#[{}]` function", self.symbol())
    }

    /// What the function looks like.
    fn shape(self) -> &'static str {
        match self {
            Self::Route => {
                "a `#[route]` function picks the instance an event goes to: `fn name(event: &YourEvent) -> Route`, \
                 optionally with `meta: &EventMeta<'_>` after the event"
            }
            Self::Handle => {
                "a `#[handle]` function returns the commands an instance dispatches for an event: \
                 `fn name(&self, event: &YourEvent) -> Vec<Dispatch>` or `-> Result<Vec<Dispatch>, E>`, \
                 optionally with `meta: &EventMeta<'_>` after the event"
            }
            Self::Apply => {
                "an `#[apply]` function folds an event into the instance's state: `fn name(&mut self, event: &YourEvent)`, \
                 optionally with `meta: &EventMeta<'_>` after the event"
            }
        }
    }
}

/// `#[process_manager]` on an inherent impl block of `#[route]`, `#[handle]`
/// and `#[apply]` functions.
pub struct ProcessImpl<'a> {
    pub args: ProcessArgs,
    pub self_ty: &'a syn::Type,
    pub generics: &'a syn::Generics,
    /// `impl Trait for ..`: reported; only a stand-in impl is generated.
    pub trait_path: Option<&'a syn::Path>,
    pub methods: Vec<ProcessMethod<'a>>,
    /// A function has no role (reported): a missing `#[route]` may be its.
    pub unmarked: bool,
}

pub struct ProcessMethod<'a> {
    pub method: &'a syn::ImplItemFn,
    pub role: ProcessRole,
    /// The event type taken by reference, when the signature tells it.
    pub event: Option<&'a syn::Type>,
    pub takes_meta: bool,
    /// The declared return type (`None` for an `#[apply]`, which has none).
    pub output: Option<&'a syn::Type>,
    /// The signature is wrong (and reported): the function is left out of
    /// the generated impl, though its event type still counts as routed.
    pub stub: bool,
}

impl<'a> ProcessImpl<'a> {
    /// `roles` holds each function's role, in order; `None` for a function
    /// without one (already reported).
    pub fn from_ast(
        cx: &Ctxt,
        args: TokenStream,
        item: &'a syn::ItemImpl,
        roles: &[Option<ProcessRole>],
    ) -> Self {
        let args = ProcessArgs::from_args(cx, args);
        let self_name = type_name(&item.self_ty);
        let trait_path = inherent_concrete_impl(
            cx,
            item,
            PROCESS_MANAGER,
            "process manager",
            "ProcessManager",
        );
        let fns = item.items.iter().filter_map(|i| match i {
            syn::ImplItem::Fn(f) => Some(f),
            _ => None,
        });
        let mut methods = Vec::new();
        if trait_path.is_none() {
            for (method, role) in fns.zip(roles) {
                if let Some(role) = role {
                    methods.push(ProcessMethod::from_fn(cx, method, *role, &self_name));
                }
            }
        }
        let unmarked = roles.iter().any(Option::is_none);
        let routes = methods.iter().any(|m| m.role == ProcessRole::Route);
        if !routes && trait_path.is_none() && !unmarked {
            cx.error_spanned_by(
                &item.self_ty,
                format!(
                    "this `#[process_manager]` impl has no `#[route]` function; add one per event type `{self_name}` wants, \
                     saying which instance each event goes to: `#[route] fn name(event: &YourEvent) -> Route`"
                ),
            );
        }
        Self {
            args,
            self_ty: &item.self_ty,
            generics: &item.generics,
            trait_path,
            methods,
            unmarked,
        }
    }

    /// The durable name: `name = ".."`, or the type's name as written.
    pub fn name(&self) -> String {
        self.args
            .name
            .clone()
            .unwrap_or_else(|| type_name(self.self_ty))
    }
}

impl<'a> ProcessMethod<'a> {
    /// Reports every signature mistake; a function with one is a stub.
    fn from_fn(cx: &Ctxt, method: &'a syn::ImplItemFn, role: ProcessRole, self_name: &str) -> Self {
        let sig = &method.sig;
        let ident = &sig.ident;
        let before = cx.error_count();
        let a_fn = role.a_fn();
        let shape = role.shape();
        if let Some(asyncness) = &sig.asyncness {
            cx.error_spanned_by(
                asyncness,
                "a process manager's functions cannot be `async`: an instance decides from its state and the event alone, \
                 and its commands are dispatched for it; do the waiting in a command's `#[handle]` (with a service) or in an `#[event_handler]`",
            );
        }
        if let Some(unsafety) = &sig.unsafety {
            cx.error_spanned_by(
                unsafety,
                format!("{a_fn} cannot be `unsafe`: the generated `ProcessManager` impl calls it for every event of its type"),
            );
        }
        if sig.generics.type_params().next().is_some()
            || sig.generics.const_params().next().is_some()
        {
            cx.error_spanned_by(
                &sig.generics,
                format!("{a_fn} cannot be generic: it takes one event type, and the process manager's interest set is fixed at compile time"),
            );
        }
        let mut inputs = sig.inputs.iter().peekable();
        let receiver = match inputs.peek() {
            Some(syn::FnArg::Receiver(r)) => {
                inputs.next();
                Some(r)
            }
            _ => None,
        };
        let is_ref = |r: &syn::Receiver, mutable: bool| matches!(&*r.ty, syn::Type::Reference(t) if t.mutability.is_some() == mutable);
        match (role, receiver) {
            (ProcessRole::Route, None) => {}
            (ProcessRole::Route, Some(r)) => cx.error_spanned_by(
                r,
                "a `#[route]` function takes no `self`: it picks the instance an event goes to before that instance's state is loaded, \
                 from the event (and its metadata) alone",
            ),
            (ProcessRole::Handle, Some(r)) if is_ref(r, false) => {}
            (ProcessRole::Handle, Some(r)) if is_ref(r, true) => cx.error_spanned_by(
                r,
                "a `#[handle]` function takes `&self`, not `&mut self`: it decides which commands to dispatch; \
                 the state changes in an `#[apply]` function, once they were dispatched",
            ),
            (ProcessRole::Handle, Some(r)) => cx.error_spanned_by(
                r,
                "a `#[handle]` function takes `&self`, not `self`: the instance's state is kept for its `#[apply]` function, and saved",
            ),
            (ProcessRole::Apply, Some(r)) if is_ref(r, true) => {}
            (ProcessRole::Apply, Some(r)) => cx.error_spanned_by(
                r,
                "an `#[apply]` function takes `&mut self`: it changes the instance's state, which is saved after every event",
            ),
            (_, None) => {
                let receiver = if role == ProcessRole::Handle {
                    "&self"
                } else {
                    "&mut self"
                };
                cx.error_spanned_by(ident, format!("`{ident}` does not take `{receiver}`; {shape}"));
            }
        }
        let (takes, elsewhere) = match role {
            ProcessRole::Route => (
                "the event",
                "it picks the instance from the event alone".to_owned(),
            ),
            ProcessRole::Handle | ProcessRole::Apply => (
                if role == ProcessRole::Handle {
                    "`&self`, the event"
                } else {
                    "`&mut self`, the event"
                },
                format!(
                    "whatever else `{ident}` needs belongs in the instance's state, a field of `{self_name}`"
                ),
            ),
        };
        let EventParams {
            event,
            takes_meta,
            no_event,
        } = event_params(
            cx,
            inputs,
            &format!(
                "the parameter after the event is its metadata, `meta: &EventMeta<'_>`; {elsewhere}"
            ),
            &format!(
                "{a_fn} takes {takes} and at most its metadata, `meta: &EventMeta<'_>`; {elsewhere}"
            ),
        );
        if no_event && cx.error_count() == before {
            cx.error_spanned_by(ident, format!("`{ident}` takes no event; {shape}"));
        }
        let output = match &sig.output {
            syn::ReturnType::Type(_, ty) => Some(&**ty),
            syn::ReturnType::Default => None,
        };
        let unit = output.is_none_or(is_unit);
        match role {
            ProcessRole::Route if unit => cx.error_spanned_by(
                output.map_or_else(|| ident.to_token_stream(), ToTokens::to_token_stream),
                format!(
                    "`{ident}` returns nothing; a `#[route]` function returns where the event goes: \
                     `Route::Start(id)`, `Route::Continue(id)`, `Route::Stop(id)` or `Route::Ignore`"
                ),
            ),
            ProcessRole::Handle if unit => cx.error_spanned_by(
                output.map_or_else(|| ident.to_token_stream(), ToTokens::to_token_stream),
                format!(
                    "`{ident}` returns nothing; a `#[handle]` function returns the commands to dispatch, \
                     `Vec<Dispatch>` (empty for none) or `Result<Vec<Dispatch>, E>`"
                ),
            ),
            ProcessRole::Apply if !unit => cx.error_spanned_by(
                output,
                "an `#[apply]` function returns nothing and cannot fail: it folds an event that already happened into the state; \
                 decide, and fail, in a `#[handle]` function",
            ),
            _ => {}
        }
        Self {
            method,
            role,
            event,
            takes_meta,
            output: output.filter(|_| role != ProcessRole::Apply),
            stub: cx.error_count() != before,
        }
    }
}

/// `()`, as written.
pub fn is_unit(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Tuple(t) if t.elems.is_empty())
}

/// `#[projection(..)]`'s keys.
pub struct ProjectionArgs {
    pub krate: Option<syn::Path>,
    /// `name = ".."`, checked as an event handler's: it keys the checkpoint
    /// and the turn, among the same names.
    pub name: Option<String>,
}

impl ProjectionArgs {
    pub fn from_args(cx: &Ctxt, args: TokenStream) -> Self {
        let mut krate = Attr::none(cx, PROJECTION, CRATE);
        let mut name = Attr::none(cx, PROJECTION, NAME);
        let elsewhere = [
            (
                START_FROM,
                "a projection always starts at the origin: its read model is built from every event it wants, \
                 and `App::rebuild` starts it over from position 0",
            ),
            (
                CONCURRENCY,
                "a projection applies events one batch at a time, in log order, each batch in one transaction with its checkpoint",
            ),
        ];
        attr::parse_keys(cx, PROJECTION, &[NAME, CRATE], &elsewhere, args, |meta| {
            if meta.path == CRATE {
                krate.set(&meta.path, attr::crate_path(meta)?);
            } else if meta.path == NAME {
                let lit: syn::LitStr = meta.value()?.parse()?;
                check_handler_name(cx, &lit);
                name.set(&meta.path, lit.value());
            } else {
                return Ok(false);
            }
            Ok(true)
        });
        Self {
            krate: krate.get(),
            name: name.get(),
        }
    }
}

/// `#[projection]` on an inherent impl block: every function in it projects
/// one event type, except one `#[reset]`.
pub struct ProjectionImpl<'a> {
    pub args: ProjectionArgs,
    pub self_ty: &'a syn::Type,
    pub generics: &'a syn::Generics,
    /// `impl Trait for ..`: reported; only a stand-in impl is generated.
    pub trait_path: Option<&'a syn::Path>,
    pub methods: Vec<ProjectionMethod<'a>>,
    /// The `#[reset]` function; its `event` is `None`.
    pub reset: Option<ProjectionMethod<'a>>,
}

pub struct ProjectionMethod<'a> {
    pub method: &'a syn::ImplItemFn,
    /// `C` of the `tx: &mut C` parameter, when the signature tells it.
    pub connection: Option<&'a syn::Type>,
    /// The event type taken by reference, when the signature tells it.
    pub event: Option<&'a syn::Type>,
    pub takes_meta: bool,
    pub output: ReturnShape<'a>,
    pub is_async: bool,
    /// The signature is wrong (and reported): the method is left out of the
    /// generated impl, though its connection still names the database.
    pub stub: bool,
}

const PROJECTION_SHAPE: &str = "every function of a `#[projection]` impl projects one event type: \
     `async fn name(&self, tx: &mut SqliteConnection, event: &YourEvent)` (or `&mut PgConnection`), \
     optionally with `meta: &EventMeta<'_>` after the event, returning `()` or `Result<(), E>`";

const RESET_SHAPE: &str = "a `#[reset]` function empties the read model before a rebuild: \
     `async fn name(&self, tx: &mut SqliteConnection)` (or `&mut PgConnection`), returning `()` or `Result<(), E>`";

impl<'a> ProjectionImpl<'a> {
    /// `resets` holds, per function in order, whether it carried `#[reset]`.
    pub fn from_ast(
        cx: &Ctxt,
        args: TokenStream,
        item: &'a syn::ItemImpl,
        resets: &[bool],
    ) -> Self {
        let args = ProjectionArgs::from_args(cx, args);
        let self_name = type_name(&item.self_ty);
        let trait_path = inherent_concrete_impl(cx, item, PROJECTION, "projection", "Projection");
        let fns = item.items.iter().filter_map(|i| match i {
            syn::ImplItem::Fn(f) => Some(f),
            _ => None,
        });
        let mut methods = Vec::new();
        let mut reset: Option<ProjectionMethod> = None;
        if trait_path.is_none() {
            for (method, &is_reset) in fns.zip(resets) {
                if !is_reset {
                    methods.push(ProjectionMethod::from_fn(cx, method, &self_name));
                } else if let Some(first) = &reset {
                    cx.error_spanned_by(
                        &method.sig.ident,
                        format!(
                            "a projection has one `#[reset]` function, and `{}` already is it",
                            first.method.sig.ident
                        ),
                    );
                } else {
                    reset = Some(ProjectionMethod::reset_fn(cx, method, &self_name));
                }
            }
            if methods.is_empty() {
                cx.error_spanned_by(
                    &item.self_ty,
                    format!(
                        "this `#[projection]` impl has no projection method; add one per event type `{self_name}` projects: \
                         `async fn name(&self, tx: &mut SqliteConnection, event: &YourEvent)`"
                    ),
                );
            }
        }
        Self {
            args,
            self_ty: &item.self_ty,
            generics: &item.generics,
            trait_path,
            methods,
            reset,
        }
    }

    /// The durable name: `name = ".."`, or the type's name as written.
    pub fn name(&self) -> String {
        self.args
            .name
            .clone()
            .unwrap_or_else(|| type_name(self.self_ty))
    }
}

impl<'a> ProjectionMethod<'a> {
    /// Reports every signature mistake; a method with one is a stub.
    fn from_fn(cx: &Ctxt, method: &'a syn::ImplItemFn, self_name: &str) -> Self {
        let before = cx.error_count();
        let ident = &method.sig.ident;
        let helper = format!(
            "{PROJECTION_SHAPE}; if `{ident}` is a helper, move it to another `impl {self_name}` block"
        );
        let Some((connection, inputs)) = Self::head(cx, method, &helper) else {
            return Self::stub(method, None);
        };
        let elsewhere =
            format!("whatever else `{ident}` needs belongs in a field of `{self_name}`");
        let EventParams {
            event,
            takes_meta,
            no_event,
        } = event_params(
            cx,
            inputs,
            &format!(
                "the parameter after the event is its metadata, `meta: &EventMeta<'_>`; {elsewhere}"
            ),
            &format!(
                "a projection method takes `&self`, the connection, the event and at most its metadata, `meta: &EventMeta<'_>`; {elsewhere}"
            ),
        );
        if no_event && cx.error_count() == before {
            cx.error_spanned_by(
                ident,
                format!("`{ident}` takes no event after the connection; {helper}"),
            );
        }
        Self {
            method,
            connection,
            event,
            takes_meta,
            output: Self::output(method),
            is_async: method.sig.asyncness.is_some(),
            stub: cx.error_count() != before,
        }
    }

    /// The `#[reset]` function: `&self` and the connection.
    fn reset_fn(cx: &Ctxt, method: &'a syn::ImplItemFn, self_name: &str) -> Self {
        let before = cx.error_count();
        let Some((connection, mut inputs)) = Self::head(cx, method, RESET_SHAPE) else {
            return Self::stub(method, None);
        };
        let more: Vec<&syn::FnArg> = inputs.by_ref().collect();
        if !more.is_empty() {
            cx.error_spanned_by(
                quote::quote!(#(#more),*),
                format!(
                    "a `#[reset]` function takes `&self` and the connection only; whatever else it needs belongs in a field of `{self_name}`"
                ),
            );
        }
        Self {
            method,
            connection,
            event: None,
            takes_meta: false,
            output: Self::output(method),
            is_async: method.sig.asyncness.is_some(),
            stub: cx.error_count() != before,
        }
    }

    /// Checks the qualifiers, `&self` and `tx: &mut C`; returns `C` (if
    /// written) and the parameters after it, or `None` without a receiver.
    fn head(
        cx: &Ctxt,
        method: &'a syn::ImplItemFn,
        shape: &str,
    ) -> Option<(Option<&'a syn::Type>, syn::punctuated::Iter<'a, syn::FnArg>)> {
        let sig = &method.sig;
        let ident = &sig.ident;
        if let Some(unsafety) = &sig.unsafety {
            cx.error_spanned_by(
                unsafety,
                "a projection's function cannot be `unsafe`: the generated `Projection` impl calls it for every event of its type",
            );
        }
        if sig.generics.type_params().next().is_some()
            || sig.generics.const_params().next().is_some()
        {
            cx.error_spanned_by(
                &sig.generics,
                "a projection's functions cannot be generic: each takes one event type and one database's connection, \
                 and the projection's interest set is fixed at compile time",
            );
        }
        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(syn::FnArg::Receiver(r)) => {
                let shared = matches!(&*r.ty, syn::Type::Reference(t) if t.mutability.is_none());
                if !shared {
                    cx.error_spanned_by(
                        r,
                        "a projection's function takes `&self`: the projection is kept and called for every batch, \
                         and its state is the read model, written through the connection",
                    );
                }
            }
            _ => {
                cx.error_spanned_by(ident, format!("`{ident}` does not take `&self`; {shape}"));
                return None;
            }
        }
        let connection = match inputs.next() {
            Some(syn::FnArg::Typed(t)) => match &*t.ty {
                syn::Type::Reference(r) if r.mutability.is_some() => Some(&*r.elem),
                other => {
                    cx.error_spanned_by(
                        other,
                        "the parameter after `&self` is the connection of the batch's transaction, \
                         `tx: &mut SqliteConnection` or `tx: &mut PgConnection`; the event comes after it",
                    );
                    None
                }
            },
            _ => {
                cx.error_spanned_by(
                    ident,
                    format!("`{ident}` takes no connection after `&self`; {shape}"),
                );
                None
            }
        };
        Some((connection, inputs))
    }

    fn output(method: &'a syn::ImplItemFn) -> ReturnShape<'a> {
        match &method.sig.output {
            syn::ReturnType::Default => ReturnShape::Unit,
            syn::ReturnType::Type(_, ty) => return_shape(ty),
        }
    }

    fn stub(method: &'a syn::ImplItemFn, connection: Option<&'a syn::Type>) -> Self {
        Self {
            method,
            connection,
            event: None,
            takes_meta: false,
            output: ReturnShape::Unit,
            is_async: false,
            stub: true,
        }
    }
}
