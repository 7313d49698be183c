use super::{
    AccountEvent, CURRENCY, CloseAccount, DepositMoney, OpenAccount, PinHasher, WithdrawAtTeller,
    WithdrawMoney,
};
use annals::aggregate;

/// Why an account command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The account exists already.
    #[error("the account is already open")]
    AlreadyOpen,
    /// No such account has been opened.
    #[error("the account is not open")]
    NotOpen,
    /// The account was closed.
    #[error("the account is closed")]
    Closed,
    /// The owner's last name is blank (a first name may be).
    #[error("the owner's last name must not be empty")]
    EmptyLastName,
    /// The PIN is not 4 to 8 digits.
    #[error("a PIN is 4 to 8 digits")]
    InvalidPin,
    /// Amounts must be positive.
    #[error("the amount must be more than zero")]
    ZeroAmount,
    /// Withdrawing would overdraw the account.
    #[error("insufficient funds: the balance is {balance}, {requested} was requested")]
    InsufficientFunds {
        /// The balance now.
        balance: u64,
        /// The amount asked for.
        requested: u64,
    },
    /// Accounts are kept in [`CURRENCY`] only.
    #[error("deposits are taken in {CURRENCY} only, not {0}")]
    UnsupportedCurrency(String),
    /// The deposit would overflow the balance.
    #[error("the balance would overflow")]
    Overflow,
    /// Closing needs a zero balance.
    #[error("the account still holds {balance}; withdraw it before closing")]
    NonZeroBalance {
        /// The balance now.
        balance: u64,
    },
}

/// Where an account is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccountStatus {
    /// Not opened yet.
    #[default]
    New,
    /// Open for business.
    Open,
    /// Closed for good.
    Closed,
}

/// A bank account's state, folded from its events.
#[aggregate(events = AccountEvent)]
#[derive(Debug, Clone, Default)]
pub struct Account {
    status: AccountStatus,
    first_name: String,
    last_name: String,
    pin_hash: String,
    balance: u64,
}

#[aggregate]
impl Account {
    #[handle]
    async fn open(&self, cmd: OpenAccount, pins: &PinHasher) -> Result<AccountEvent, AccountError> {
        match self.status {
            AccountStatus::New => {}
            AccountStatus::Open | AccountStatus::Closed => return Err(AccountError::AlreadyOpen),
        }
        let (first_name, last_name) = (cmd.first_name.trim(), cmd.last_name.trim());
        if last_name.is_empty() {
            return Err(AccountError::EmptyLastName);
        }
        if !(4..=8).contains(&cmd.pin.len()) || !cmd.pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AccountError::InvalidPin);
        }
        Ok(AccountEvent::AccountOpened {
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
            pin_hash: pins.hash(cmd.account_id, &cmd.pin),
        })
    }

    #[handle]
    fn deposit(&self, cmd: DepositMoney) -> Result<AccountEvent, AccountError> {
        self.ensure_open()?;
        if cmd.amount == 0 {
            return Err(AccountError::ZeroAmount);
        }
        let currency = cmd.currency.unwrap_or_else(|| CURRENCY.to_owned());
        if currency != CURRENCY {
            return Err(AccountError::UnsupportedCurrency(currency));
        }
        self.balance
            .checked_add(cmd.amount)
            .ok_or(AccountError::Overflow)?;
        Ok(AccountEvent::MoneyDeposited {
            amount: cmd.amount,
            currency,
        })
    }

    #[handle]
    fn withdraw(&self, cmd: WithdrawMoney) -> Result<AccountEvent, AccountError> {
        self.ensure_open()?;
        if cmd.amount == 0 {
            return Err(AccountError::ZeroAmount);
        }
        if cmd.amount > self.balance {
            return Err(AccountError::InsufficientFunds {
                balance: self.balance,
                requested: cmd.amount,
            });
        }
        Ok(AccountEvent::MoneyWithdrawn { amount: cmd.amount })
    }

    /// Never an error: a declined withdrawal is an event, so the withdrawal
    /// process (and the teller) learn of it.
    #[handle]
    fn withdraw_at_teller(&self, cmd: WithdrawAtTeller) -> Vec<AccountEvent> {
        let decline = |reason: String| {
            vec![AccountEvent::WithdrawalDeclined {
                withdrawal_id: cmd.withdrawal_id.clone(),
                reason,
            }]
        };
        if let Err(error) = self.ensure_open() {
            return decline(error.to_string());
        }
        if self.pin_hash != cmd.pin_hash {
            return decline("wrong PIN".into());
        }
        if cmd.amount == 0 {
            return decline(AccountError::ZeroAmount.to_string());
        }
        if cmd.amount > self.balance {
            return decline(
                AccountError::InsufficientFunds {
                    balance: self.balance,
                    requested: cmd.amount,
                }
                .to_string(),
            );
        }
        vec![
            AccountEvent::WithdrawalAuthorised {
                withdrawal_id: cmd.withdrawal_id,
                amount: cmd.amount,
            },
            AccountEvent::MoneyWithdrawn { amount: cmd.amount },
        ]
    }

    #[handle]
    fn close(&self, _cmd: CloseAccount) -> Result<AccountEvent, AccountError> {
        self.ensure_open()?;
        if self.balance != 0 {
            return Err(AccountError::NonZeroBalance {
                balance: self.balance,
            });
        }
        Ok(AccountEvent::AccountClosed)
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::AccountOpened {
                first_name,
                last_name,
                pin_hash,
            } => {
                self.status = AccountStatus::Open;
                self.first_name.clone_from(first_name);
                self.last_name.clone_from(last_name);
                self.pin_hash.clone_from(pin_hash);
            }
            // `deposit` records deposits in `CURRENCY` only.
            AccountEvent::MoneyDeposited { amount, .. } => self.balance += amount,
            AccountEvent::MoneyWithdrawn { amount } => self.balance -= amount,
            AccountEvent::AccountClosed => self.status = AccountStatus::Closed,
            AccountEvent::WithdrawalAuthorised { .. } | AccountEvent::WithdrawalDeclined { .. } => {
            }
        }
    }

    fn ensure_open(&self) -> Result<(), AccountError> {
        match self.status {
            AccountStatus::Open => Ok(()),
            AccountStatus::New => Err(AccountError::NotOpen),
            AccountStatus::Closed => Err(AccountError::Closed),
        }
    }

    /// The balance in cents.
    pub fn balance(&self) -> u64 {
        self.balance
    }

    /// Where the account is in its life.
    pub fn status(&self) -> AccountStatus {
        self.status
    }

    /// The owner's first name(s); empty for someone known by one name.
    pub fn first_name(&self) -> &str {
        &self.first_name
    }

    /// The owner's last name.
    pub fn last_name(&self) -> &str {
        &self.last_name
    }

    /// The owner's name in full ([`full_name`](super::full_name)).
    pub fn full_name(&self) -> String {
        super::full_name(&self.first_name, &self.last_name)
    }

    /// The salted PIN hash.
    pub fn pin_hash(&self) -> &str {
        &self.pin_hash
    }
}
