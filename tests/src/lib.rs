//! Workspace tests of annals.

pub mod conformance;
pub mod contention;
pub mod postgres;

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
