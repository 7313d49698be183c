//! What each macro writes, checked in as `tests/expand/*.expanded.rs` (workspace path) so a
//! reviewer can read it and a change to it shows up in the diff. Needs
//! `cargo expand` on the PATH. After changing a macro, refresh with
//! `MACROTEST=overwrite cargo test -p annals-tests --test expand` and read the diff.
//!
//! The inputs are only expanded, never type-checked, so each one holds a
//! single macro and names the items the others would provide.

// One call per file, not a glob: the binary (and so `module_path!()` in the
// snapshot) is then named after the file rather than its place in the glob.
#[test]
fn event() {
    macrotest::expand("expand/event.rs");
}

#[test]
fn command() {
    macrotest::expand("expand/command.rs");
}

#[test]
fn aggregate_struct() {
    macrotest::expand("expand/aggregate_struct.rs");
}

#[test]
fn aggregate_impl() {
    macrotest::expand("expand/aggregate_impl.rs");
}
