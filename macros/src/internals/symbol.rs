use std::fmt::{self, Display};
use syn::{Ident, Path};

/// An attribute or key name the macros understand.
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct Symbol(pub &'static str);

pub const EVENT: Symbol = Symbol("event");
pub const COMMAND: Symbol = Symbol("command");
pub const AGGREGATE: Symbol = Symbol("aggregate");
pub const EVENT_HANDLER: Symbol = Symbol("event_handler");
pub const HANDLE: Symbol = Symbol("handle");
pub const APPLY: Symbol = Symbol("apply");
pub const ID: Symbol = Symbol("id");
pub const SERDE: Symbol = Symbol("serde");

pub const CRATE: Symbol = Symbol("crate");
pub const EVENTS: Symbol = Symbol("events");
pub const NAME: Symbol = Symbol("name");
pub const RENAME: Symbol = Symbol("rename");
pub const VERSION: Symbol = Symbol("version");
pub const SNAPSHOT_EVERY: Symbol = Symbol("snapshot_every");
pub const SNAPSHOT_VERSION: Symbol = Symbol("snapshot_version");
pub const START_FROM: Symbol = Symbol("start_from");
pub const CONCURRENCY: Symbol = Symbol("concurrency");

pub const PROCESS_MANAGER: Symbol = Symbol("process_manager");

pub const UPCASTER: Symbol = Symbol("upcaster");
pub const FROM: Symbol = Symbol("from");
pub const TO: Symbol = Symbol("to");
pub const TO_VERSION: Symbol = Symbol("to_version");
pub const MOVED: Symbol = Symbol("moved");
pub const RENAME_FROM: Symbol = Symbol("rename_from");
pub const ROUTE: Symbol = Symbol("route");

pub const PROJECTION: Symbol = Symbol("projection");
pub const RESET: Symbol = Symbol("reset");

impl PartialEq<Symbol> for Ident {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl PartialEq<Symbol> for &Ident {
    fn eq(&self, word: &Symbol) -> bool {
        *self == word.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl PartialEq<Symbol> for &Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// "`a`, `b` or `c`", for messages listing valid keys.
pub fn one_of(symbols: &[Symbol]) -> String {
    let quoted: Vec<String> = symbols.iter().map(|s| format!("`{s}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The valid key `found` most likely misspells, if one is close enough.
pub fn closest(found: &str, symbols: &[Symbol]) -> Option<Symbol> {
    symbols
        .iter()
        .map(|s| (edit_distance(found, s.0), *s))
        .filter(|(d, s)| *d <= (s.0.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, s)| s)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
