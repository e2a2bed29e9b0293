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

/// Shortest share of a month elapsed before its spend is projected (about three days):
/// earlier, one busy morning would project a runaway month.
pub const FORECAST_MIN_SHARE: f64 = 0.1;

/// The month-end spend a calendar-month budget (`period` `YYYY-MM`) is heading for at `now`,
/// projected from its burn rate so far: `spent` over the share of the month elapsed.
/// `None` for other periods, outside the month, or too early in it.
pub fn forecast_micro(spent: i64, period: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    use chrono::{Datelike, NaiveDate, TimeZone, Utc};
    if period.len() != 7 {
        return None;
    }
    let first = NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").ok()?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)?
    };
    let start = Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0)?);
    let end = Utc.from_utc_datetime(&next.and_hms_opt(0, 0, 0)?);
    if now < start || now >= end {
        return None;
    }
    let share = (now - start).num_seconds() as f64 / (end - start).num_seconds() as f64;
    if share < FORECAST_MIN_SHARE {
        return None;
    }
    let projected = spent as f64 / share;
    projected.is_finite().then_some(projected.round() as i64)
}

#[cfg(test)]
mod forecast_tests {
    use chrono::{TimeZone, Utc};

    use super::forecast_micro;

    #[test]
    fn a_month_is_projected_from_its_burn_rate() {
        // A third of December (31 days) gone at noon on the 11th (10.5 days): $10 spent
        // projects to $29.52.
        let now = Utc.with_ymd_and_hms(2026, 12, 11, 12, 0, 0).unwrap();
        assert_eq!(forecast_micro(10_000_000, "2026-12", now), Some(29_523_810));
        // Too early in the month, another month, or a day's budget: no projection.
        let early = Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap();
        assert_eq!(forecast_micro(10_000_000, "2026-12", early), None);
        assert_eq!(forecast_micro(10_000_000, "2026-11", now), None);
        assert_eq!(forecast_micro(10_000_000, "2026-12-11", now), None);
        assert_eq!(forecast_micro(10_000_000, "all", now), None);
    }
}
