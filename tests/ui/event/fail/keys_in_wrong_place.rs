// On an enum, `rename` and `version` go on each variant; `crate` goes on the enum.
use annals::prelude::*;

#[event(rename = "Account")]
pub enum AccountEvent {
    #[event(crate = "annals")]
    Opened { owner: String },
}

fn main() {}
