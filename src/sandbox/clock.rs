//! The sandbox clock and the date formats the emulated vendors speak.
//!
//! The clock starts at a chosen instant (default [`DEFAULT_START`], SD-W18) and advances in real
//! time from there; `POST /_sandbox/clock` re-anchors it. Everything date-dependent in the
//! sandbox — the legacy freeze and sunset, timestamps on created objects, the `Date` header —
//! reads this clock, never the machine clock. Rate-limit windows deliberately use the monotonic
//! machine clock instead, so jumping the sandbox clock does not refill or drain a budget.

use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, Utc};

/// Where the clock starts unless told otherwise (SD-W18).
pub const DEFAULT_START: &str = "2025-11-15T00:00:00Z";

/// A wall clock that starts at an arbitrary instant and then runs in real time.
#[derive(Debug, Clone)]
pub struct SandboxClock {
    anchor: DateTime<Utc>,
    anchored_at: Instant,
}

impl SandboxClock {
    /// A clock that reads `start` now and advances from there.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            anchor: start,
            anchored_at: Instant::now(),
        }
    }

    /// The current sandbox time.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.anchored_at.elapsed())
            .unwrap_or_else(|_| chrono::Duration::zero());
        self.anchor + elapsed
    }

    /// Jump to `t`; the clock keeps running from there.
    pub fn set(&mut self, t: DateTime<Utc>) {
        self.anchor = t;
        self.anchored_at = Instant::now();
    }
}

/// Parse the `--now` option: `None` is the default start, `"system"` the machine clock, anything
/// else a date as [`parse_instant`] reads it.
pub fn parse_start(now: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
    match now.map(str::trim) {
        None | Some("") => parse_instant(DEFAULT_START),
        Some(s) if s.eq_ignore_ascii_case("system") => Ok(Utc::now()),
        Some(s) => parse_instant(s).with_context(|| format!("--now {s:?}")),
    }
}

/// Parse an RFC 3339 instant (any offset) or a bare `YYYY-MM-DD` (midnight UTC).
pub fn parse_instant(s: &str) -> anyhow::Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    bail!("expected an RFC 3339 date-time (2025-11-15T00:00:00Z) or a date (2025-11-15), got {s:?}")
}

/// A timestamp as the Workato sandbox writes it: UTC, milliseconds, `+00:00` (SD-W16).
pub fn wire_time(t: DateTime<Utc>) -> String {
    // Same text as `%Y-%m-%dT%H:%M:%S%.3f+00:00`, without parsing a format string per call
    // (a 100-profile page has 200 timestamps).
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// An HTTP `Date` header value (IMF-fixdate).
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_and_instants() {
        let t = parse_instant("2026-02-01").unwrap();
        assert_eq!(wire_time(t), "2026-02-01T00:00:00.000+00:00");
        let t = parse_instant("2025-12-01T01:00:00+01:00").unwrap();
        assert_eq!(wire_time(t), "2025-12-01T00:00:00.000+00:00");
        assert!(parse_instant("yesterday").is_err());
        assert_eq!(
            wire_time(parse_start(None).unwrap()),
            "2025-11-15T00:00:00.000+00:00"
        );
    }

    #[test]
    fn formats_http_date() {
        let t = parse_instant("2025-11-15T00:00:00Z").unwrap();
        assert_eq!(http_date(t), "Sat, 15 Nov 2025 00:00:00 GMT");
    }

    #[test]
    fn clock_jumps_and_runs() {
        let mut c = SandboxClock::starting_at(parse_instant("2025-11-15").unwrap());
        c.set(parse_instant("2026-07-01").unwrap());
        assert!(c.now() >= parse_instant("2026-07-01").unwrap());
        assert!(c.now() < parse_instant("2026-07-02").unwrap());
    }
}
