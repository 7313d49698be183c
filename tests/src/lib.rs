//! Workspace tests of annals.

pub mod conformance;
pub mod contention;
pub mod postgres;
pub mod rabbit;

/// A rate for a benchmark table: rounded, with thousands separators (`-`
/// when it is not a finite number).
///
/// ```
/// assert_eq!(annals_tests::fmt_rate(1234567.4), "1,234,567");
/// assert_eq!(annals_tests::fmt_rate(f64::NAN), "-");
/// ```
pub fn fmt_rate(rate: f64) -> String {
    if !rate.is_finite() {
        return "-".into();
    }
    let digits = (rate.round() as u64).to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Runs this test binary again as a child process, running only its ignored
/// test `child` with `env = value` set, and returns the child once it has
/// printed a line containing `marker` (panics if it exits or takes more than
/// 60 s first). The crash tests then kill it where it stands.
pub fn child_at(env: &str, value: &str, marker: &str) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "child", "--ignored", "--nocapture"])
        .env(env, value)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("piped stdout");
    let marker = marker.to_owned();
    let reached = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains(&marker))
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !reached.is_finished() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child never reached its mark");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        reached.join().expect("the reader thread"),
        "the child exited before reaching its mark"
    );
    child
}
