//! Misuses of the macros must fail to compile with a message that points at
//! the user's token and names the fix; the `.stderr` files are that text.
//! One mistake is one error: the `cascade_*` cases make a single mistake in a
//! whole aggregate's program (commands, handlers, fold, snapshots, dispatch
//! sites) and their `.stderr` holds exactly one error.
//! Regenerate with `TRYBUILD=overwrite cargo test -p annals-tests --test ui`
//! and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/*/pass/*.rs");
    t.compile_fail("ui/*/fail/*.rs");
}
