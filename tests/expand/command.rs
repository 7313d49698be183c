use annals::command;

pub struct Account;

#[command(aggregate = Account)]
pub struct DepositMoney {
    #[id]
    pub account_id: String,
    pub amount: u64,
}

fn main() {}
