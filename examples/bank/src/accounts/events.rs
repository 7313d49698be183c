use annals::event;

/// What happened to an account.
#[event]
pub enum AccountEvent {
    /// The account was opened.
    AccountOpened {
        /// The owner's name.
        owner: String,
        /// The salted hash of the PIN (never the PIN itself).
        pin_hash: String,
    },
    /// Money was paid in.
    MoneyDeposited {
        /// Amount in cents.
        amount: u64,
    },
    /// Money was paid out.
    MoneyWithdrawn {
        /// Amount in cents.
        amount: u64,
    },
    /// The account was closed.
    AccountClosed,
}
