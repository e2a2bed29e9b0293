//! When a schedule fires: a cron expression (five fields, or six with seconds first) read
//! in an IANA time zone. Slots are instants; across DST changes they follow croner's rules
//! (those of Vixie cron and the Open Cron Pattern Specification):
//!
//! - spring forward: a fixed time inside the gap (02:30 on the day 02:00 jumps to 03:00)
//!   fires once, at the first instant after the gap, or not at all with `on_dst_gap: skip`;
//!   interval expressions (`*/15 * * * *`) simply have no slots in the hour that does not
//!   exist;
//! - fall back: a fixed time in the repeated hour fires once (the first time); interval
//!   expressions fire in both passes, as real time goes on.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::{Cron, parser::CronParser, parser::Seconds};

/// Longest cron expression accepted.
pub const MAX_CRON_BYTES: usize = 128;

/// What to do with a fixed-time slot that a spring-forward gap swallowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DstGap {
    /// Fire at the first instant after the gap (once).
    Run,
    /// Skip that day's slot.
    Skip,
}

impl FromStr for DstGap {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "run" => Ok(DstGap::Run),
            "skip" => Ok(DstGap::Skip),
            other => Err(format!("{other:?} is not one of run, skip")),
        }
    }
}

/// A field of a timing that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct TimingError {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> TimingError {
    TimingError {
        field,
        reason: reason.into(),
    }
}

/// A parsed cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct Timing {
    cron: Cron,
    tz: Tz,
    gap: DstGap,
}

impl Timing {
    /// Parses `cron` (seconds optional) in `timezone` (an IANA name such as
    /// `Europe/Berlin`), and checks that it has a slot within the next ten years.
    pub fn parse(cron: &str, timezone: &str, gap: DstGap) -> Result<Timing, TimingError> {
        if cron.len() > MAX_CRON_BYTES {
            return Err(invalid(
                "cron",
                format!("at most {MAX_CRON_BYTES} characters"),
            ));
        }
        let tz: Tz = timezone.parse().map_err(|_| {
            invalid(
                "timezone",
                format!("{timezone:?} is not an IANA time zone (such as Europe/Berlin or UTC)"),
            )
        })?;
        let parsed = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(cron)
            .map_err(|e| invalid("cron", format!("{cron:?} is not a cron expression: {e}")))?;
        let timing = Timing {
            cron: parsed,
            tz,
            gap,
        };
        // An expression that never matches (the 30th of February) would make every search
        // run to croner's year limit: refuse it now.
        let now = Utc::now();
        match timing.next_after(now) {
            Some(next) if next - now < chrono::Duration::days(3660) => Ok(timing),
            _ => Err(invalid(
                "cron",
                format!("{cron:?} has no slot in the next ten years"),
            )),
        }
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut cursor = after.with_timezone(&self.tz);
        // A skipped gap slot moves the search on; a handful of tries covers any real zone.
        for _ in 0..64 {
            let next = self.cron.find_next_occurrence(&cursor, false).ok()?;
            if self.gap == DstGap::Skip && !self.cron.is_time_matching(&next).unwrap_or(true) {
                cursor = next;
                continue;
            }
            return Some(next.with_timezone(&Utc));
        }
        None
    }

    /// The next `n` slots after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = after;
        while out.len() < n {
            let Some(next) = self.next_after(cursor) else {
                break;
            };
            out.push(next);
            cursor = next;
        }
        out
    }

    /// The slots in `(after, until]`, oldest first, at most `max`.
    pub fn slots_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        max: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = after;
        while out.len() < max {
            match self.next_after(cursor) {
                Some(next) if next <= until => {
                    out.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        out
    }

    /// The newest slot in `(after, until]`, found backwards from `until` (a search that
    /// costs the same however long ago `after` was).
    pub fn last_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut cursor = until.with_timezone(&self.tz);
        let mut inclusive = true;
        for _ in 0..64 {
            let prev = self
                .cron
                .find_previous_occurrence(&cursor, inclusive)
                .ok()?;
            let utc = prev.with_timezone(&Utc);
            if utc <= after {
                return None;
            }
            if self.gap == DstGap::Skip && !self.cron.is_time_matching(&prev).unwrap_or(true) {
                cursor = prev;
                inclusive = false;
                continue;
            }
            return Some(utc);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;

    fn berlin(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::Europe::Berlin
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_daily_slot_is_at_its_local_time_on_both_sides_of_a_dst_change() {
        let t = Timing::parse("0 9 * * *", "Europe/Berlin", DstGap::Run).unwrap();
        let slots = t.upcoming(utc("2026-03-27T12:00:00Z"), 3);
        // 09:00 CET is 08:00Z; after the change 09:00 CEST is 07:00Z.
        assert_eq!(
            slots,
            vec![
                utc("2026-03-28T08:00:00Z"),
                utc("2026-03-29T07:00:00Z"),
                utc("2026-03-30T07:00:00Z")
            ]
        );
    }

    #[test]
    fn a_slot_in_the_spring_forward_gap_runs_once_or_is_skipped() {
        // 2026-03-29: Berlin jumps from 02:00 to 03:00; 02:30 does not exist.
        let run = Timing::parse("30 2 * * *", "Europe/Berlin", DstGap::Run).unwrap();
        let day = run.slots_between(utc("2026-03-28T12:00:00Z"), utc("2026-03-30T12:00:00Z"), 10);
        assert_eq!(
            day,
            vec![utc("2026-03-29T01:00:00Z"), utc("2026-03-30T00:30:00Z")],
            "once, at 03:00 CEST (the first instant after the gap), then 02:30 CEST"
        );
        let skip = Timing::parse("30 2 * * *", "Europe/Berlin", DstGap::Skip).unwrap();
        let day = skip.slots_between(utc("2026-03-28T12:00:00Z"), utc("2026-03-30T12:00:00Z"), 10);
        assert_eq!(day, vec![utc("2026-03-30T00:30:00Z")], "skipped that day");
        assert_eq!(
            skip.last_between(utc("2026-03-28T12:00:00Z"), utc("2026-03-29T23:00:00Z")),
            None
        );
        assert_eq!(
            run.last_between(utc("2026-03-28T12:00:00Z"), utc("2026-03-29T23:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn a_slot_in_the_repeated_fall_back_hour_runs_once() {
        // 2026-10-25: Berlin goes back from 03:00 to 02:00; 02:30 happens twice.
        let t = Timing::parse("30 2 * * *", "Europe/Berlin", DstGap::Run).unwrap();
        let slots = t.slots_between(utc("2026-10-24T12:00:00Z"), utc("2026-10-26T12:00:00Z"), 10);
        assert_eq!(
            slots,
            vec![utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")],
            "the first 02:30 (CEST) only, then 02:30 CET"
        );
    }

    #[test]
    fn interval_expressions_follow_real_time_across_both_changes() {
        let t = Timing::parse("*/30 * * * *", "Europe/Berlin", DstGap::Run).unwrap();
        // Spring: 01:00..03:30 local around the gap; 02:00 and 02:30 do not exist.
        let spring = t.slots_between(berlin(2026, 3, 29, 1, 0), berlin(2026, 3, 29, 3, 30), 10);
        assert_eq!(spring.len(), 3, "01:30, 03:00, 03:30: {spring:?}");
        // Autumn: the hour 02:00-03:00 is lived twice; every half hour of real time fires.
        let autumn = t.slots_between(utc("2026-10-24T23:00:00Z"), utc("2026-10-25T02:00:00Z"), 10);
        assert_eq!(autumn.len(), 6, "{autumn:?}");
        let mut sorted = autumn.clone();
        sorted.dedup();
        assert_eq!(sorted, autumn, "no instant twice");
    }

    #[test]
    fn seconds_are_optional_and_bad_input_names_its_field() {
        let t = Timing::parse("*/10 * * * * *", "UTC", DstGap::Run).unwrap();
        let slots = t.upcoming(utc("2026-01-01T00:00:00Z"), 2);
        assert_eq!(
            slots,
            vec![utc("2026-01-01T00:00:10Z"), utc("2026-01-01T00:00:20Z")]
        );
        assert_eq!(
            Timing::parse("0 9 * * *", "Mars/Olympus", DstGap::Run)
                .unwrap_err()
                .field,
            "timezone"
        );
        assert_eq!(
            Timing::parse("61 * * * *", "UTC", DstGap::Run)
                .unwrap_err()
                .field,
            "cron"
        );
        let never = Timing::parse("0 0 30 2 *", "UTC", DstGap::Run).unwrap_err();
        assert!(never.reason.contains("no slot"), "{never}");
        assert!(Timing::parse(&"1,".repeat(100), "UTC", DstGap::Run).is_err());
    }

    #[test]
    fn the_last_slot_is_found_backwards_whatever_the_downtime() {
        let t = Timing::parse("* * * * * *", "UTC", DstGap::Run).unwrap();
        let last = t.last_between(utc("2020-01-01T00:00:00Z"), utc("2026-01-01T00:00:00.500Z"));
        assert_eq!(last, Some(utc("2026-01-01T00:00:00Z")));
        assert_eq!(
            t.last_between(utc("2026-01-01T00:00:00Z"), utc("2026-01-01T00:00:00.500Z")),
            None
        );
    }
}
