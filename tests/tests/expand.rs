//! What each macro writes, checked in as `tests/expand/*.expanded.rs` (workspace path) so a
//! reviewer can read it and a change to it shows up in the diff. Needs
//! `cargo expand` on the PATH. After changing a macro, refresh with
//! `MACROTEST=overwrite cargo test -p annals-tests --test expand` and read the diff.
//!
//! The inputs are only expanded, never type-checked, so each one holds a
//! single macro and names the items the others would provide.

/// Expands `path` and compares it with its snapshot. Without `cargo expand`
/// installed, a developer's run says so and checks nothing; CI (`CI` set, where
/// `.ci/run` installs it) fails instead, so the snapshots are never skipped there.
fn expand(path: &str) {
    let installed = std::process::Command::new("cargo")
        .args(["expand", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "cargo-expand is required for the expansion tests in CI: cargo install cargo-expand"
        );
        eprintln!("SKIPPED {path}: cargo-expand is not installed (cargo install cargo-expand)");
        return;
    }
    // `file!()` (in `#[event_handler]`'s registration) would otherwise be
    // this checkout's absolute path: remapped, it is the same everywhere.
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace");
    let remap = format!(
        "build.rustflags=['--remap-path-prefix={}/=']",
        workspace.display()
    );
    macrotest::expand_args(path, ["--config", remap.as_str()]);
}

// One call per file, not a glob: the binary (and so `module_path!()` in the
// snapshot) is then named after the file rather than its place in the glob.
#[test]
fn event() {
    expand("expand/event.rs");
}

#[test]
fn command() {
    expand("expand/command.rs");
}

#[test]
fn aggregate_struct() {
    expand("expand/aggregate_struct.rs");
}

#[test]
fn aggregate_impl() {
    expand("expand/aggregate_impl.rs");
}

#[test]
fn event_handler() {
    expand("expand/event_handler.rs");
}

#[test]
fn process_manager() {
    expand("expand/process_manager.rs");
}

#[test]
fn upcaster() {
    expand("expand/upcaster.rs");
}

#[test]
fn projection() {
    expand("expand/projection.rs");
}
