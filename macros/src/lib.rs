//! Procedural macros of [annals](https://docs.rs/annals). Depend on `annals`
//! and use them as `annals::event`, `annals::command`, `annals::aggregate`,
//! `annals::event_handler`, `annals::process_manager` and
//! `annals::projection` (or through
//! `annals::prelude::*`); this crate is an implementation detail.
//!
//! The examples here are not compiled (a proc-macro crate cannot run its own
//! macros in doctests); the `annals` crate's documentation has runnable ones.
//!
//! Set `ANNALS_MACROS_DEBUG=1` while building to print every expansion to
//! stderr, or run `cargo expand` on your crate.
//!
//! # One mistake, one error
//!
//! Every check below is reported once, at your token, and says what to do.
//! Whatever is wrong, each macro still writes the impls the rest of your
//! program relies on (with an error type or a stub where a piece is
//! missing), so a misspelt key, a missing `#[event]` or a state without
//! `Default` is one error, not one per handler, command and dispatch site.

mod aggregate;
mod command;
mod event;
mod event_handler;
mod internals;
mod process_manager;
mod projection;
mod upcaster;

use proc_macro::TokenStream;

/// Declares domain events: stable type names, versions, serde and a decode table.
///
/// Put it on an enum with one variant per event type, or on a struct that is
/// a single event type.
///
/// ```ignore
/// use annals::prelude::*;
///
/// #[event]
/// pub enum AccountEvent {
///     AccountOpened { owner: String, pin_hash: String },
///     #[event(rename = "Deposited", version = 2)]
///     MoneyDeposited { amount: u64, currency: String },
///     Noted(Note),          // wraps one serde type
///     AccountClosed,        // no payload
/// }
///
/// #[event(rename = "account.audited", version = 3)]
/// pub struct AccountAudited { pub by: String }
/// ```
///
/// # Attribute keys
///
/// On the enum or struct, `#[event(..)]`:
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `crate = "path"` | `"::annals"` | where generated code finds the runtime, if you depend on `annals` under another name |
/// | `rename = "name"` | the struct's name | (struct form only) the stored type name |
/// | `version = N` | `1` | (struct form only) the stored schema version, 1 or more |
///
/// On an enum variant, `#[event(rename = "name", version = N)]` with the
/// same meaning for that variant; the default name is the variant's name.
///
/// # Variants
///
/// A variant has named fields (stored as a JSON object of those fields), no
/// fields (stored as `{}`), or wraps exactly one type (stored as that type's
/// serde form). The type name is stored beside the payload, not in it, so
/// renaming a Rust variant with `rename` keeps old events readable.
///
/// `#[serde(..)]` attributes on fields (named fields, or the one field of a
/// wrapping variant) shape the stored payload. On an enum or a variant they
/// are rejected: each variant is stored on its own, so they would change the
/// enum's own serde form but not what is stored. Name a stored type with
/// `#[event(rename = "..")]` instead. (On the struct form, which is stored
/// through its own serde derive, all of serde's attributes apply.)
///
/// # What it generates
///
/// - `#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]`, skipping
///   any you derive yourself;
/// - `impl annals::Event`: `TYPES` (every (name, version) the type can
///   decode), `event_type()`, `event_version()`, `encode()`, and `decode()`,
///   a `match` from (name, version) to the variant's decoder; an unknown pair
///   is a typed `DecodeError::UnknownType`, never a panic.
///
/// # Checked at compile time
///
/// - unknown keys (with the likely intended one) and duplicate keys; `rename`
///   or `version` on the enum instead of its variants; `crate` on a variant;
/// - two variants with the same (name, version); `version = 0`;
/// - a variant wrapping more than one type; discriminants; an enum with no
///   variant; `#[serde(..)]` on the enum or a variant;
/// - generic event types; `#[event]` on anything but an enum or a struct;
/// - where a type is used as `#[aggregate(events = ..)]`, that it is an
///   `#[event]` type: a missing `#[event]` is one error, at `events = ..`.
#[proc_macro_attribute]
pub fn event(args: TokenStream, input: TokenStream) -> TokenStream {
    event::expand(args.into(), input.into()).into()
}

/// Declares a command: the aggregate it targets and the field naming the
/// aggregate instance.
///
/// ```ignore
/// use annals::prelude::*;
///
/// #[command(aggregate = Account)]
/// pub struct DepositMoney {
///     #[id]
///     pub account_id: AccountId,
///     pub amount: u64,
/// }
///
/// #[command(aggregate = Account, name = "account.close")]
/// pub struct CloseAccount(#[id] pub AccountId);
/// ```
///
/// # Attribute keys
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `aggregate = Type` | required | the aggregate type whose `#[handle]` function decides this command |
/// | `name = "name"` | the struct's name | the command's stable name, used to route JSON commands (`App::dispatch_json`) |
/// | `crate = "path"` | `"::annals"` | where generated code finds the runtime |
///
/// Exactly one field carries `#[id]`: its value, through `Display`, names the
/// aggregate instance, whose stream is `"{aggregate name}-{id}"`. A command
/// can be a tuple struct: `pub struct CloseAccount(#[id] pub AccountId);`.
///
/// # What it generates
///
/// - `#[derive(Clone, Debug, Serialize, Deserialize)]`, skipping any you
///   derive yourself;
/// - `impl annals::Command` (`NAME`, `type Aggregate`, `aggregate_id()`);
/// - hidden marker impls tying the command to its aggregate, which is how
///   `#[aggregate]` rejects a handler in the wrong aggregate.
///
/// # Checked at compile time
///
/// - unknown keys (with the likely intended one) and duplicate keys; a
///   missing `aggregate = ..`;
/// - an `aggregate` that is not an `#[aggregate]` type;
/// - no `#[id]` field, two, or `#[id]` with arguments; an `#[id]` field whose
///   type does not implement `Display`;
/// - generic commands; `#[command]` on anything but a struct.
#[proc_macro_attribute]
pub fn command(args: TokenStream, input: TokenStream) -> TokenStream {
    command::expand(args.into(), input.into()).into()
}

/// Declares an aggregate: on its state struct, its name and events; on its
/// `impl` block, its command handlers (`#[handle]`) and event fold (`#[apply]`).
///
/// ```ignore
/// use annals::prelude::*;
///
/// #[aggregate(events = AccountEvent)]
/// #[derive(Default)]
/// pub struct Account { open: bool, balance: u64 }
///
/// #[aggregate]
/// impl Account {
///     #[handle]
///     fn deposit(&self, cmd: DepositMoney) -> Result<AccountEvent, AccountError> {
///         if !self.open {
///             return Err(AccountError::NotOpen);
///         }
///         Ok(AccountEvent::MoneyDeposited { amount: cmd.amount })
///     }
///
///     #[handle]
///     async fn open(&self, cmd: OpenAccount, pins: &PinHasher) -> AccountEvent {
///         AccountEvent::AccountOpened { owner: cmd.owner, pin_hash: pins.hash(&cmd.pin) }
///     }
///
///     #[apply]
///     fn apply(&mut self, event: &AccountEvent) {
///         match event {
///             AccountEvent::AccountOpened { .. } => self.open = true,
///             AccountEvent::MoneyDeposited { amount } => self.balance += amount,
///         }
///     }
/// }
/// ```
///
/// # On the state struct
///
/// A struct with named fields (or a unit struct) that implements `Default`
/// (the state before the first event) and is `Send + Sync + 'static` (the
/// `App` caches it and shares it between tasks).
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `events = Type` | required | the `#[event]` type this aggregate records and folds |
/// | `name = "name"` | the struct's name | the stable aggregate name, the prefix of its streams (`"{name}-{id}"`); not empty, and without `-` (which would let one aggregate's streams alias another's), NUL or whitespace |
/// | `snapshot_every = N` | no snapshots | store a snapshot of the state every N events, so a cold load replays at most N; the state must implement `Serialize` and `Deserialize` |
/// | `snapshot_version = N` | `1` | the snapshot schema version (needs `snapshot_every`); bump it when the state's shape changes and older snapshots are ignored |
/// | `crate = "path"` | `"::annals"` | where generated code finds the runtime |
///
/// It generates `impl annals::Aggregate` and registers the aggregate with
/// `inventory`, so `App::builder()` finds it without a wiring list.
///
/// # On the impl block
///
/// An inherent `impl` of the state type, taking only `crate = "path"`. Any
/// number of such blocks may exist; exactly one of them has the `#[apply]`
/// function. Functions without either attribute are left as they are.
///
/// A `#[handle]` function decides one command:
///
/// ```text
/// fn name(&self, command: Cmd) -> Output
/// fn name(&self, command: Cmd, services: &Services) -> Output
/// async fn name(&self, command: Cmd, services: &Services) -> Output
/// ```
///
/// - `&self` only: deciding never changes state, folding events does.
/// - The command by value.
/// - At most one services argument, by shared reference: registered on the
///   app with `App::builder().service(value)`; put several services in one
///   struct.
/// - `Output` is one event, `Vec` of events, `Option` of an event, `()` or
///   an array of events; or a `Result` of one of those with a domain error
///   type implementing `std::error::Error`, which `dispatch` returns intact.
///
/// For each handler it generates `impl annals::Handles<Cmd> for State` (so a
/// second handler for the command does not compile, and the command's
/// aggregate is checked by the types) and registers a JSON route for the
/// command with `inventory`.
///
/// The `#[apply]` function, `fn apply(&mut self, event: &Events)`, folds one
/// event into the state. It cannot fail and cannot be `async`. It generates
/// the fold that `annals::Aggregate::apply` calls.
///
/// # Checked at compile time, at your tokens
///
/// On the state struct:
///
/// - unknown keys (with the likely intended one) and duplicate keys; a
///   missing `events = ..`; `snapshot_version` without `snapshot_every`;
///   `snapshot_every = 0`;
/// - an `events` type that is not an `#[event]` type;
/// - a `name` that is empty or contains `-`, NUL or whitespace;
/// - a state that does not implement `Default`, or is not
///   `Send + Sync + 'static`; with `snapshot_every`, a state that does not
///   implement `Serialize` and `Deserialize`;
/// - `#[aggregate]` on an enum, a tuple struct or a generic type.
///
/// On the impl block:
///
/// - a second handler for one command, in the same impl block or another;
/// - a handler for a type that is not a `#[command]`, or for a command whose
///   `aggregate = ..` names another aggregate;
/// - a handler returning another aggregate's events, or a type that is not
///   an event output; a `Result` whose error type is not a
///   `std::error::Error + Send + Sync + 'static`; an `async` handler whose
///   future is not `Send`;
/// - wrong signatures: `&mut self` or `self` in a handler, the command by
///   reference, more than one services argument, generic handlers; an
///   `async`, generic or fallible `#[apply]`, or one with other arguments
///   than `&mut self` and the event by reference;
/// - a missing `#[apply]` function, or two; an event variant the `#[apply]`
///   `match` does not handle (rustc's own non-exhaustive `match` error on
///   your code), and a catch-all arm (`_`, or a binding) in that `match`,
///   which would hide variants added later;
/// - `#[aggregate]` on a trait impl or a generic impl; keys of the struct
///   form on the impl; `#[handle]` or `#[apply]` with arguments, twice, or
///   both on one function.
///
/// A handler or `#[apply]` with a wrong signature is reported once and still
/// counts as the command's handler (or the fold), so code that dispatches
/// the command adds no errors.
///
/// Where your code dispatches a command that no `#[handle]` function takes,
/// `App::dispatch` does not compile: "`Account` has no handler for command
/// `Open`".
#[proc_macro_attribute]
pub fn aggregate(args: TokenStream, input: TokenStream) -> TokenStream {
    aggregate::expand(args.into(), input.into()).into()
}

/// Declares an event handler: code that reacts to recorded events, one
/// method per event type it wants.
///
/// ```ignore
/// use annals::prelude::*;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// #[derive(Default)]
/// pub struct BalanceNotifier { sent: AtomicU64 }
///
/// #[event_handler(name = "balance-notifier", start_from = now, concurrency = 4)]
/// impl BalanceNotifier {
///     async fn on_account(&self, event: &AccountEvent, meta: &EventMeta<'_>) -> Result<(), NotifyError> {
///         if let AccountEvent::MoneyDeposited { amount } = event {
///             mailer::send(meta.stream_id().as_str(), *amount).await?;
///             self.sent.fetch_add(1, Ordering::Relaxed);
///         }
///         Ok(())
///     }
///
///     fn on_teller(&self, event: &TellerEvent) {
///         tracing::info!(?event, "teller event");
///     }
/// }
///
/// // Helpers go in a plain impl block.
/// impl BalanceNotifier {
///     pub fn sent(&self) -> u64 { self.sent.load(Ordering::Relaxed) }
/// }
/// ```
///
/// # Attribute keys
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `name = "name"` | the type's name as written (`"BalanceNotifier"`, `"Welcome<Smtp>"`) | the durable name, the key of the handler's checkpoint: renaming it starts the handler again from `start_from`; not empty, at most 1024 bytes, no NUL or control characters |
/// | `start_from = origin` or `now` | `origin` | where a handler without a checkpoint starts: the whole history, or the events recorded after it first starts |
/// | `concurrency = N` | `1` | how many events it handles at once at most, 1 or more; events of one stream are always handled one after another |
/// | `crate = "path"` | `"::annals"` | where generated code finds the runtime |
///
/// # Methods
///
/// Put it on an inherent `impl` block of the handler type. Every function in
/// that block is a handler method for one event type (an `#[event]` enum or
/// struct, of any aggregate); helpers go in another `impl` block:
///
/// ```text
/// fn name(&self, event: &Events)
/// fn name(&self, event: &Events, meta: &EventMeta<'_>)
/// async fn name(&self, event: &Events) -> Result<(), E>
/// async fn name(&self, event: &Events, meta: &EventMeta<'_>) -> Result<(), E>
/// ```
///
/// - `&self` only: one handler value serves every call, `concurrency` of
///   them at once; keep changing state behind atomics or a `Mutex`.
/// - The event by shared reference; each event type in one method (`match`
///   on its variants there).
/// - Optionally the event's [`EventMeta`](https://docs.rs/annals/latest/annals/handler/struct.EventMeta.html):
///   its position, stream, stream version, correlation and causation ids.
///   Anything else a method needs (a mail client, a pool) is a field of the
///   handler.
/// - Returns `()` or `Result<(), E>` with `E` convertible into
///   `Box<dyn Error + Send + Sync>` (any `std::error::Error + Send + Sync + 'static`).
///   An error reaches the runner as `HandlerError::Failed`, with `E` as its
///   `source()`.
/// - `async` or not; an `async` method's future must be `Send`.
///
/// The impl block is kept as written, so its methods stay callable. The
/// handler type must be `Send + Sync + 'static`. A concrete instance of a
/// generic type is fine (`impl Welcome<Smtp>`); a generic impl is not.
///
/// # What it generates
///
/// - `impl annals::EventHandler`: `NAME`, `START_FROM`, `CONCURRENCY`, and
///   `INTEREST`, each method's `Event::TYPES` in method order; `handle()`
///   routes a recorded event by its type name (`annals::handler::route`),
///   decodes it (a corrupt payload is `HandlerError::Decode`, naming its
///   position), builds its `EventMeta` if the method takes it, calls the
///   method (awaiting it if `async`) and converts its return; an event
///   outside `INTEREST` is `Ok(())` and calls nothing.
/// - A `HandlerRegistration` (name, Rust type, `file:line`) in the `inventory`
///   registry, which lets the runner refuse two handlers with one name.
///
/// # Checked at compile time, at your tokens
///
/// - unknown keys (with the likely intended one) and duplicate keys;
///   `concurrency = 0`; a `start_from` other than `origin` or `now`; a
///   `name` that is empty, has NUL or control characters, or is longer than
///   1024 bytes;
/// - a method taking a type that is not an `#[event]` type; two methods
///   taking one event type; two event types that share an event type name
///   (events are routed by name, so one method would get the other's
///   events: reported when the constants are evaluated, naming the name);
/// - wrong signatures: `&mut self`, `self` or no receiver (a helper or a
///   constructor in the block), no event, the event by value, a third
///   parameter that is not `&EventMeta`, more parameters, generic or
///   `unsafe` methods, a return type other than `()` or `Result<(), E>`, an
///   error type that is not an error;
/// - an `async` method whose future is not `Send` (at the method's name); a
///   handler type that is not `Send + Sync + 'static`;
/// - an impl block without methods; `#[handle]` on a method; the attribute
///   on a struct, an enum, a trait impl or a generic impl.
///
/// Whatever is wrong, the type still implements `EventHandler` (a method
/// with a wrong signature is left out of it), so the code that runs the
/// handler adds no errors. Two `#[event_handler]` blocks for one type are
/// rustc's "conflicting implementations of trait `EventHandler`".
#[proc_macro_attribute]
pub fn event_handler(args: TokenStream, input: TokenStream) -> TokenStream {
    event_handler::expand(args.into(), input.into()).into()
}

/// Declares a process manager: state per instance, routed by events from
/// any aggregates, dispatching commands. Writes
/// [`ProcessManager`](https://docs.rs/annals/latest/annals/process/trait.ProcessManager.html)
/// from one function per step and event type.
///
/// ```ignore
/// use annals::prelude::*;
/// use annals::HandlerError;
///
/// #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
/// pub struct Withdrawal { teller: String, amount: u64 }
///
/// #[process_manager(name = "withdrawal")]
/// impl Withdrawal {
///     #[route]
///     fn route_teller(event: &TellerEvent) -> Route {
///         match event {
///             TellerEvent::WithdrawalRequested { withdrawal, .. } => Route::Start(withdrawal.clone()),
///             TellerEvent::CashDispensed { withdrawal, .. } => Route::Stop(withdrawal.clone()),
///         }
///     }
///
///     #[route]
///     fn route_account(event: &AccountEvent, meta: &EventMeta<'_>) -> Route {
///         match event {
///             AccountEvent::Debited { withdrawal, .. } => Route::Continue(withdrawal.clone()),
///             AccountEvent::Opened { .. } => Route::Ignore,
///         }
///     }
///
///     #[handle]
///     fn on_teller(&self, event: &TellerEvent) -> Result<Vec<Dispatch>, HandlerError> {
///         let TellerEvent::WithdrawalRequested { withdrawal, account, amount } = event else {
///             return Ok(Vec::new());
///         };
///         let debit = Debit { account: account.clone(), amount: *amount, withdrawal: withdrawal.clone() };
///         let expire = Expire { withdrawal: withdrawal.clone() };
///         Ok(vec![Dispatch::command(debit), Dispatch::later(expire, Duration::from_secs(30))?])
///     }
///
///     #[handle]
///     fn on_account(&self, event: &AccountEvent) -> Vec<Dispatch> {
///         match event {
///             AccountEvent::Debited { withdrawal, .. } => vec![Dispatch::command(Dispense {
///                 teller: self.teller.clone(),
///                 withdrawal: withdrawal.clone(),
///                 amount: self.amount,
///             })],
///             AccountEvent::Opened { .. } => Vec::new(),
///         }
///     }
///
///     #[apply]
///     fn apply_teller(&mut self, event: &TellerEvent, meta: &EventMeta<'_>) {
///         if let TellerEvent::WithdrawalRequested { amount, .. } = event {
///             self.teller = meta.stream_id().aggregate_id().unwrap_or_default().to_owned();
///             self.amount = *amount;
///         }
///     }
/// }
///
/// // Run by an app, which dispatches its commands:
/// // App::builder().store(store).process_manager::<Withdrawal>().build()?
/// ```
///
/// # Attribute keys
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `name = "name"` | the type's name as written (`"Withdrawal"`) | the durable name: the key of its checkpoint and part of its instances' streams (`$process-<name>-<id>`), shared with event handlers' names; checked as an `#[event_handler]`'s: not empty, at most 1024 bytes, no NUL or control characters |
/// | `crate = "path"` | `"::annals"` | where generated code finds the runtime |
///
/// `start_from` and `concurrency` are refused: a process manager starts at
/// the origin and handles one event at a time, in log order.
///
/// # Functions
///
/// Put it on an inherent `impl` block of the state type. Every function in
/// that block carries one of three attributes and takes one event type (an
/// `#[event]` enum or struct, of any aggregate), optionally followed by its
/// [`EventMeta`](https://docs.rs/annals/latest/annals/handler/struct.EventMeta.html);
/// helpers go in another `impl` block:
///
/// ```text
/// #[route]  fn name(event: &Events) -> Route
/// #[route]  fn name(event: &Events, meta: &EventMeta<'_>) -> Route
/// #[handle] fn name(&self, event: &Events) -> Vec<Dispatch>
/// #[handle] fn name(&self, event: &Events, meta: &EventMeta<'_>) -> Result<Vec<Dispatch>, E>
/// #[apply]  fn name(&mut self, event: &Events)
/// #[apply]  fn name(&mut self, event: &Events, meta: &EventMeta<'_>)
/// ```
///
/// - `#[route]`, one per event type the process manager wants (their event
///   types, in order, are its `INTEREST`): an associated function, without
///   `self`, since it picks the instance before one is loaded. `Route::Start(id)`
///   starts the instance `id` (from `Default`) or continues it,
///   `Route::Continue(id)` continues a running one, `Route::Stop(id)` ends
///   it after this event, `Route::Ignore` drops the event.
/// - `#[handle]`, at most one per routed event type: the commands the
///   instance dispatches for the event, in order ([`Dispatch::command`],
///   or [`Dispatch::later`] for a timeout). `E` converts into
///   `Box<dyn Error + Send + Sync>` and reaches the runner as
///   `HandlerError::Failed`, except a `HandlerError` itself (from
///   `Dispatch::later(..)?`), which reaches it as it is.
/// - `#[apply]`, at most one per routed event type: folds the event into the
///   state, after its commands were dispatched; the state is then saved.
///   It returns nothing and cannot fail.
/// - An event type without `#[handle]` dispatches nothing; without
///   `#[apply]`, changes nothing.
/// - Not `async`: the runtime's `ProcessManager` is synchronous, since an
///   instance decides from its state and the event alone; waiting belongs
///   in a command's handler (with a service) or an `#[event_handler]`.
///
/// The state must be `Default + Serialize + DeserializeOwned + Send + Sync +
/// 'static`. The impl block is kept as written, so its functions stay
/// callable (and testable without an app). A concrete instance of a
/// generic type is fine (`impl Exchange<Eur>`); a generic impl is not.
///
/// # What it generates
///
/// - `impl annals::process::ProcessManager`: `NAME`; `INTEREST`, each
///   `#[route]`'s `Event::TYPES` in order; `route`, `handle` and `apply`,
///   each finding the recorded event's type name in `INTEREST`, decoding it
///   (a corrupt payload is `HandlerError::Decode`), building its
///   `EventMeta` if the function takes it, and calling the function for
///   that event type, if there is one.
/// - A `HandlerRegistration` of the name in the `inventory` registry, beside
///   the event handlers', so that `App::build` refuses a process manager and
///   a handler (or two process managers) sharing a name.
///
/// Event types are matched to their `#[route]` by the tokens of the type:
/// write an event type the same way in its `#[route]`, `#[handle]` and
/// `#[apply]` (`TellerEvent` in all three, not `crate::TellerEvent` in one).
///
/// # Checked at compile time, at your tokens
///
/// - unknown and duplicate keys, `start_from` and `concurrency`; a `name`
///   an event handler could not have;
/// - a function without one of the three attributes, or with two; an
///   attribute with arguments;
/// - a `#[handle]` or `#[apply]` for an event type without a `#[route]`; two
///   functions of one attribute for one event type; a type that is not an
///   `#[event]` type; two event types that share an event type name;
/// - wrong signatures: a `#[route]` with a receiver, a `#[handle]` without
///   `&self`, an `#[apply]` without `&mut self`; no event, the event by
///   value, a parameter after the event that is not `&EventMeta`, more
///   parameters; `async`, generic or `unsafe` functions;
/// - wrong return types: a `#[route]` not returning `Route`, a `#[handle]`
///   returning neither `Vec<Dispatch>` nor `Result<Vec<Dispatch>, E>` (or an
///   `E` that is not an error), an `#[apply]` returning anything;
/// - a state that is not `Default`, `Serialize` and `Deserialize` (one
///   error, saying what to derive), or not `Send + Sync + 'static`;
/// - an impl block without a `#[route]`; the attribute on a struct, a trait
///   impl or a generic impl.
///
/// Whatever is wrong, the type still implements `ProcessManager` (a function
/// with a wrong signature is left out of it), so the code that runs it adds
/// no errors.
///
/// [`Dispatch::command`]: https://docs.rs/annals/latest/annals/process/struct.Dispatch.html#method.command
/// [`Dispatch::later`]: https://docs.rs/annals/latest/annals/process/struct.Dispatch.html#method.later
#[proc_macro_attribute]
pub fn process_manager(args: TokenStream, input: TokenStream) -> TokenStream {
    process_manager::expand(args.into(), input.into()).into()
}

/// Declares one step of a stored event's upcaster chain: a function from the
/// payload of `from` at `version` to the next shape (by default the same
/// type at `version + 1`; `to = "Name"` renames it, `to_version = N` sets
/// the version it leads to). It takes a struct of the old fields (or
/// `serde_json::Value`) and returns a struct of the new ones (or
/// `serde_json::Value`, or a `Result` of either, whose error reads as a
/// decode error naming the step).
///
/// ```ignore
/// #[upcaster(from = "MoneyDeposited", version = 1)]
/// fn deposited_gains_a_currency(old: DepositedV1) -> DepositedV2 {
///     DepositedV2 { amount: old.amount, currency: "EUR".into() }
/// }
/// ```
///
/// Registered at compile time: every decode of a stored `MoneyDeposited` v1
/// runs it, then the next steps, until the event type declares the result.
/// `annals::upcast` has the whole story and a runnable example.
#[proc_macro_attribute]
pub fn upcaster(args: TokenStream, input: TokenStream) -> TokenStream {
    upcaster::expand(args.into(), input.into()).into()
}

/// Declares a transactional projection: a read model in a SQL table, kept
/// by one method per event type, each taking the connection of the batch's
/// transaction. Writes
/// [`Projection<DB>`](https://docs.rs/annals/latest/annals/projection/trait.Projection.html)
/// for the database of that connection.
///
/// ```ignore
/// use annals::prelude::*;
/// use sqlx::SqliteConnection;
///
/// pub struct Balances;
///
/// #[projection(name = "balances")]
/// impl Balances {
///     async fn on_account(
///         &self,
///         tx: &mut SqliteConnection,
///         event: &AccountEvent,
///         meta: &EventMeta<'_>,
///     ) -> Result<(), sqlx::Error> {
///         let AccountEvent::Deposited { amount } = event else { return Ok(()) };
///         sqlx::query("INSERT INTO balances (account, cents) VALUES (?1, ?2) \
///                      ON CONFLICT (account) DO UPDATE SET cents = cents + excluded.cents")
///             .bind(meta.aggregate_id())
///             .bind(*amount as i64)
///             .execute(&mut *tx)
///             .await?;
///         Ok(())
///     }
///
///     #[reset]
///     async fn clear(&self, tx: &mut SqliteConnection) -> Result<(), sqlx::Error> {
///         sqlx::query("DELETE FROM balances").execute(&mut *tx).await?;
///         Ok(())
///     }
/// }
///
/// // Run by an app, on a pool of the same database:
/// // App::builder().store(store).projection(sqlite_pool, Balances).build()?
/// ```
///
/// The `annals::projection` module documentation has a runnable example.
///
/// # Attribute keys
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `name = "name"` | the type's name as written (`"Balances"`) | the durable name: the key of its checkpoint (in `annals_projection_checkpoints`, in its own database) and of its turn to run, shared with event handlers' names; checked as an `#[event_handler]`'s: not empty, at most 1024 bytes, no NUL or control characters |
/// | `crate = "path"` | `"::annals"` | where generated code finds the runtime |
///
/// `start_from` and `concurrency` are refused: a projection starts at the
/// origin (and a rebuild at position 0) and applies one batch at a time,
/// in log order, each in one transaction with its checkpoint.
///
/// # Methods
///
/// Put it on an inherent `impl` block of the projection type. Every function
/// in that block projects one event type (an `#[event]` enum or struct, of
/// any aggregate), except at most one marked `#[reset]`; helpers go in
/// another `impl` block:
///
/// ```text
/// async fn name(&self, tx: &mut SqliteConnection, event: &Events)
/// async fn name(&self, tx: &mut PgConnection, event: &Events, meta: &EventMeta<'_>) -> Result<(), E>
/// #[reset] async fn name(&self, tx: &mut SqliteConnection) -> Result<(), E>
/// ```
///
/// - `&self` only: the projection's state is its read model, written
///   through `tx`, the connection of the batch's transaction (the events of
///   one batch and the checkpoint commit together; an error rolls them
///   back). Anything else a method needs is a field of the projection.
/// - `tx` is `&mut sqlx::SqliteConnection` or `&mut sqlx::PgConnection`
///   (or an alias of one): it decides the database, `Projection<Sqlite>` or
///   `Projection<Postgres>`, and every function of the block takes the same.
/// - The event by shared reference; each event type in one method (`match`
///   on its variants there). Optionally its
///   [`EventMeta`](https://docs.rs/annals/latest/annals/handler/struct.EventMeta.html)
///   (position, stream and aggregate id, correlation and causation ids).
/// - Returns `()` or `Result<(), E>` with `E` convertible into
///   `Box<dyn Error + Send + Sync>` (`sqlx::Error` is); an error reaches
///   the runner as `HandlerError::Failed`, which applies the projection's
///   error policy.
/// - `async` (or not); the future must be `Send`.
/// - `#[reset]` empties the read model before `App::rebuild` replays it
///   from position 0, in the transaction that resets the checkpoint;
///   without one, a rebuild leaves the tables as they are.
///
/// The projection type must be `Send + Sync + 'static`. A concrete instance
/// of a generic type is fine; a generic impl is not.
///
/// # What it generates
///
/// - `impl annals::projection::Projection<DB>`: `NAME`; `INTEREST`, each
///   method's `Event::TYPES` in method order; `project()` routes a recorded
///   event by its type name, decodes it (a corrupt payload is
///   `HandlerError::Decode`), builds its `EventMeta` if the method takes
///   it, calls the method with the transaction's connection and converts
///   its return; an event outside `INTEREST` writes nothing. `reset()`
///   calls the `#[reset]` function, if there is one.
/// - A `HandlerRegistration` of the name in the `inventory` registry,
///   beside the event handlers', so that `App::build` refuses a projection
///   and a handler (or two projections) sharing a name.
///
/// # Checked at compile time, at your tokens
///
/// - unknown and duplicate keys, `start_from` and `concurrency`; a `name`
///   an event handler could not have;
/// - a method taking a type that is not an `#[event]` type; two methods
///   taking one event type; two event types sharing an event type name;
/// - a connection that is not a sqlx connection a projection can write
///   through (a pool, a `Transaction`, another type); functions taking
///   connections of two databases;
/// - wrong signatures: no `&self` (or `&mut self`, `self`), no connection
///   or one not taken by `&mut`, no event, the event by value, a parameter
///   after the event that is not `&EventMeta`, more parameters, a
///   `#[reset]` taking more than the connection, two `#[reset]`s, generic or
///   `unsafe` functions, a return type other than `()` or `Result<(), E>`;
/// - an `async` method whose future is not `Send` (at the method's name); a
///   projection type that is not `Send + Sync + 'static`;
/// - an impl block without a projection method; `#[handle]` on a method;
///   the attribute on a struct, a trait impl or a generic impl.
///
/// Whatever is wrong, the type still implements `Projection` (a method with
/// a wrong signature is left out of it; a block that names no connection
/// implements it for every database), so the code that runs it adds no
/// errors.
#[proc_macro_attribute]
pub fn projection(args: TokenStream, input: TokenStream) -> TokenStream {
    projection::expand(args.into(), input.into()).into()
}
