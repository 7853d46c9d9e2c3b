//! `[deadlines]`: the source vendor's dates, and where a run stands against them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Deadlines {
    pub legacy_frozen: DateTime<Utc>,
    pub legacy_tokens_invalid: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineSection {
    pub legacy_frozen: String,
    pub legacy_tokens_invalid: String,
}

/// A date (`2025-12-01`, midnight UTC) or an RFC 3339 instant.
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

pub(super) fn parse_deadline(
    key: &str,
    value: &str,
    problems: &mut Vec<String>,
) -> Option<DateTime<Utc>> {
    let parsed = parse_instant(value);
    if parsed.is_none() {
        problems.push(format!(
            "key {key}: {value:?} is not a date — write YYYY-MM-DD or an RFC 3339 instant"
        ));
    }
    parsed
}

/// Where a run stands against the vendor's dates, in one sentence.
pub fn deadline_stance(now: DateTime<Utc>, d: Option<&Deadlines>) -> (String, &'static str) {
    let Some(d) = d else {
        return (
            "the source has no vendor deadline in this mapping".into(),
            "none",
        );
    };
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    let days = |t: DateTime<Utc>| (t - now).num_days();
    if now < d.legacy_frozen {
        (
            format!(
                "{} days until legacy clients and profiles freeze ({}); legacy tokens stop \
                 working on {} — migrate and cut over before the freeze",
                days(d.legacy_frozen),
                fmt(d.legacy_frozen),
                fmt(d.legacy_tokens_invalid)
            ),
            "before_freeze",
        )
    } else if now < d.legacy_tokens_invalid {
        (
            format!(
                "legacy objects are frozen since {} (read-only, cannot be disabled); legacy \
                 tokens stop working in {} days ({}) — consumers must switch to their new keys \
                 before then",
                fmt(d.legacy_frozen),
                days(d.legacy_tokens_invalid),
                fmt(d.legacy_tokens_invalid)
            ),
            "frozen",
        )
    } else {
        (
            format!(
                "legacy tokens stopped working on {}; the legacy API may be gone — consumers \
                 without a new key are already failing",
                fmt(d.legacy_tokens_invalid)
            ),
            "sunset",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_both_ways() {
        assert_eq!(
            parse_instant("2025-12-01").unwrap().to_rfc3339(),
            "2025-12-01T00:00:00+00:00"
        );
        assert!(parse_instant("2025-12-01T10:00:00+02:00").is_some());
        assert!(parse_instant("tomorrow").is_none());
    }
}
