//! Misuses of the macros must fail to compile with a message that points at
//! the user's token and names the fix; the `.stderr` files are that text.
//! Regenerate with `TRYBUILD=overwrite cargo test -p annals-tests --test ui`
//! and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/*/pass/*.rs");
    t.compile_fail("ui/*/fail/*.rs");
}
