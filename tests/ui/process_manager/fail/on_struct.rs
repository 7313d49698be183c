// The attribute on the state struct: one error; code that runs it adds none.
use annals::prelude::*;

#[process_manager]
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Withdrawal {
    amount: u64,
}

fn main() {
    let _ = App::builder().process_manager::<Withdrawal>();
}
