use annals::event;

/// What happened to an account.
///
/// Stored events are never rewritten: when an event's shape changes, its
/// `version` goes up and an upcaster in `upcasters.rs` reads the older
/// shapes stored before (see `docs/evolving-events.md`).
#[event]
pub enum AccountEvent {
    /// The account was opened.
    ///
    /// Version 1 had the owner's name in one `owner` field.
    #[event(version = 2)]
    AccountOpened {
        /// The owner's first name(s); empty for someone known by one name.
        first_name: String,
        /// The owner's last name.
        last_name: String,
        /// The salted hash of the PIN (never the PIN itself).
        pin_hash: String,
    },
    /// Money was paid in.
    ///
    /// Version 1 had no currency: every deposit was in euros.
    #[event(version = 2)]
    MoneyDeposited {
        /// Amount in cents.
        amount: u64,
        /// ISO 4217 code, e.g. `"EUR"`.
        currency: String,
    },
    /// Money was paid out.
    MoneyWithdrawn {
        /// Amount in cents.
        amount: u64,
    },
    /// The account was closed.
    AccountClosed,
    /// A cash withdrawal at a teller passed the PIN and funds checks; the
    /// account was debited in the same step (`MoneyWithdrawn` follows).
    WithdrawalAuthorised {
        /// The withdrawal.
        withdrawal_id: String,
        /// Amount in cents.
        amount: u64,
    },
    /// A cash withdrawal at a teller was declined: wrong PIN, insufficient
    /// funds, or an account that is not open. Nothing was debited.
    ///
    /// Stored as `WithdrawalRefused` until it was renamed. Not stored as
    /// `WithdrawalDeclined`: the teller records an event of that name, and
    /// the withdrawal process, which takes both, routes by stored name.
    #[event(
        rename = "AccountWithdrawalDeclined",
        rename_from = "WithdrawalRefused"
    )]
    WithdrawalDeclined {
        /// The withdrawal.
        withdrawal_id: String,
        /// Why, for the customer.
        reason: String,
    },
}
