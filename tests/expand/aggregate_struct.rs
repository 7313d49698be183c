use annals::aggregate;

pub enum AccountEvent {}

#[aggregate(events = AccountEvent)]
#[derive(Default)]
pub struct Account {
    balance: u64,
}

fn main() {}
