//! Money as integer micro-dollars (1 USD = 1,000,000). Amounts arrive as JSON or YAML
//! numbers; they are rounded once, at the boundary, to whole micro-dollars, which is exact
//! for every amount written with up to six decimals, and all arithmetic after that is on
//! integers.

/// Micro-dollars per dollar.
pub const MICRO: i64 = 1_000_000;

/// The largest amount accepted: a trillion dollars, far inside `i64` micro-dollars.
const MAX_USD: f64 = 1e12;

/// `usd` as micro-dollars, or `None` when it is negative, not finite or absurdly large.
pub fn usd_to_micro(usd: f64) -> Option<i64> {
    if !usd.is_finite() || !(0.0..=MAX_USD).contains(&usd) {
        return None;
    }
    Some((usd * MICRO as f64).round() as i64)
}

/// Micro-dollars as a JSON number of dollars (`50_010_000` → `50.01`).
pub fn micro_to_usd(micro: i64) -> f64 {
    // Dividing the exact integer gives the nearest double to the decimal amount, which
    // prints as the shortest decimal that round-trips: the amount as written.
    micro as f64 / MICRO as f64
}

/// Parses a decimal amount in dollars written as text (`"50"`, `"0.01"`), exactly.
pub fn parse_usd_text(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac_micro: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    whole.checked_mul(MICRO)?.checked_add(frac_micro)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_exactly() {
        for (usd, micro) in [(50.0, 50_000_000), (50.01, 50_010_000), (0.000001, 1)] {
            assert_eq!(usd_to_micro(usd), Some(micro));
            assert_eq!(micro_to_usd(micro), usd);
        }
        assert_eq!(usd_to_micro(-0.01), None);
        assert_eq!(usd_to_micro(f64::NAN), None);
        assert_eq!(parse_usd_text(" 500 "), Some(500_000_000));
        assert_eq!(parse_usd_text("0.5"), Some(500_000));
        assert_eq!(parse_usd_text("1.2345678"), None);
        assert_eq!(parse_usd_text("-1"), None);
    }
}
