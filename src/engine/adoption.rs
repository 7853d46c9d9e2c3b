//! Adoption: which consumers use their new credentials, judged from where each vendor records
//! credential use. Names no vendor: a pair's consumers come from the registry, and each side's
//! records from a [`UsageSource`] in the vendor's folder.
//!
//! A **consumer** is the finest unit at which a vendor's records tell old traffic from new
//! (a Workato legacy API client; a Bifrost holder of an access profile). Each consumer has an
//! old side (the credentials cutover disables) and a new side (the credentials apply
//! created), each named by [`Ident`]s that its usage source can look up.

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Fut;
pub use crate::model::{Consumer, Ident, Judged, Record, Status, Window};

/// One side of one consumer to look up.
#[derive(Debug, Clone)]
pub struct Want {
    pub idents: Vec<Ident>,
    /// Count refusals at or after this instant (the old side of a disabled or retired
    /// credential); `None`: refusals are not asked for.
    pub refusals_after: Option<DateTime<Utc>>,
    /// Whether the first use matters (the new side's `first_new`).
    pub first_use: bool,
}

/// What the records show of one side of one consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub first_use: Option<Record>,
    pub last_use: Option<Record>,
    /// Refusals at or after [`Want::refusals_after`].
    pub refusals: u64,
    pub last_refusal: Option<Record>,
}

impl Seen {
    /// Fold one use in.
    pub fn used(&mut self, r: Record) {
        if self.first_use.as_ref().is_none_or(|f| r.at < f.at) {
            self.first_use = Some(r.clone());
        }
        if self.last_use.as_ref().is_none_or(|l| r.at > l.at) {
            self.last_use = Some(r);
        }
    }

    /// Fold one refusal in (the caller checked it is inside the asked range).
    pub fn refused(&mut self, r: Record) {
        self.refusals += 1;
        if self.last_refusal.as_ref().is_none_or(|l| r.at > l.at) {
            self.last_refusal = Some(r);
        }
    }
}

/// A usage source's answer for a list of wants, in their order.
#[derive(Debug, Default)]
pub struct Evidence {
    /// Per want: what was seen, or why this source cannot tell.
    pub seen: Vec<Result<Seen, String>>,
    /// What the user should know about the evidence as a whole (a file that ends early, a
    /// window cut to the vendor's retention, dropped log entries).
    pub notes: Vec<String>,
    /// How the source is named in the output.
    pub label: String,
    /// Requests it sent.
    pub requests: u64,
}

/// Where a vendor records credential use. One per vendor, in its folder.
pub trait UsageSource: Send + Sync {
    /// Look up each want within the window.
    fn read<'a>(&'a self, wants: &'a [Want], window: &'a Window) -> Fut<'a, Result<Evidence>>;
}

/// What is known about one consumer before judging.
pub struct Facts<'a> {
    pub consumer: &'a Consumer,
    pub old: &'a Result<Seen, String>,
    pub new: &'a Result<Seen, String>,
    /// Since when its old credentials are refused by design: keyshift disabled them (and
    /// they are still disabled) or the vendor retired them.
    pub off_since: Option<DateTime<Utc>>,
    pub source: String,
}

fn day(r: &Option<Record>) -> String {
    r.as_ref()
        .map(|r| r.at.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "never".into())
}

/// Judge one consumer (the status table: first match wins).
pub fn judge(f: &Facts, w: &Window) -> Judged {
    let c = f.consumer;
    let mut j = Judged {
        consumer: c.id.clone(),
        workspace: c.workspace.clone(),
        name: c.name.clone(),
        status: Status::Idle,
        last_old: None,
        first_new: None,
        last_new: None,
        refused_since_cutover: 0,
        last_refusal: None,
        source: f.source.clone(),
        why: String::new(),
    };
    if let Ok(old) = f.old {
        j.last_old = old.last_use.clone();
        if f.off_since.is_some() {
            j.refused_since_cutover = old.refusals;
            j.last_refusal = old.last_refusal.clone();
        }
    }
    if let Ok(new) = f.new {
        j.first_new = new.first_use.clone();
        j.last_new = new.last_use.clone();
    }
    let blind = c
        .blind
        .clone()
        .or_else(|| {
            f.old
                .as_ref()
                .err()
                .map(|e| format!("old credentials: {e}"))
        })
        .or_else(|| {
            f.new
                .as_ref()
                .err()
                .map(|e| format!("new credentials: {e}"))
        });
    if let Some(why) = blind {
        j.status = Status::Unknown;
        j.why = why;
        return j;
    }
    if j.refused_since_cutover > 0 {
        j.status = Status::Broken;
        j.why = format!(
            "{} refusal(s) of its old credential since it was switched off ({}), the last {} ({})",
            j.refused_since_cutover,
            f.off_since
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
            day(&j.last_refusal),
            j.last_refusal
                .as_ref()
                .map(|r| r.what.as_str())
                .unwrap_or("")
        );
        return j;
    }
    let recent_old = j.last_old.as_ref().filter(|r| r.at >= w.quiet_from);
    let new_use = j.last_new.as_ref().filter(|r| r.at >= w.from);
    let quiet = w.now - w.quiet_from;
    let (status, why) = match (recent_old, new_use) {
        (Some(o), Some(n)) => (
            Status::Moving,
            format!(
                "old credential used {} ({}) and new one {} ({})",
                fmt(o.at),
                o.what,
                fmt(n.at),
                n.what
            ),
        ),
        (Some(o), None) => (
            Status::Waiting,
            format!(
                "old credential used {} ({}); no use of the new one since {}",
                fmt(o.at),
                o.what,
                fmt(w.from)
            ),
        ),
        (None, Some(n)) => (
            Status::Moved,
            format!(
                "new credential used {} ({}); old one quiet for {} (last use: {})",
                fmt(n.at),
                n.what,
                span(quiet),
                j.last_old
                    .as_ref()
                    .map(|r| format!("{} ({})", fmt(r.at), r.what))
                    .unwrap_or_else(|| format!("none since {}", fmt(w.from)))
            ),
        ),
        (None, None) => (
            Status::Idle,
            format!(
                "no use of the old credential for {} and none of the new one since {} (last old \
                 use: {})",
                span(quiet),
                fmt(w.from),
                j.last_old
                    .as_ref()
                    .map(|r| format!("{} ({})", fmt(r.at), r.what))
                    .unwrap_or_else(|| "none in the window".into())
            ),
        ),
    };
    j.status = status;
    j.why = why;
    j
}

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A duration as people say it: `7d`, `36h`, `15m`.
pub fn span(d: Duration) -> String {
    let s = d.num_seconds();
    if s % 86_400 == 0 && s > 0 {
        format!("{}d", s / 86_400)
    } else if s % 3_600 == 0 && s > 0 {
        format!("{}h", s / 3_600)
    } else {
        format!("{}m", s / 60)
    }
}

/// Parse `7d`, `36h`, `90m`, `2w` (a number alone is days).
pub fn parse_span(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "d"));
    let n: i64 = num.parse().ok()?;
    if !(0..=100_000).contains(&n) {
        return None;
    }
    Some(match unit.trim() {
        "d" | "day" | "days" => Duration::days(n),
        "h" | "hour" | "hours" => Duration::hours(n),
        "m" | "min" | "minutes" => Duration::minutes(n),
        "w" | "week" | "weeks" => Duration::weeks(n),
        _ => return None,
    })
}

/// The pair's consumers with both sides filled: the source names them and their old side,
/// the target where their new credentials' use shows (`created`: source marker → the id
/// apply journaled). A client name that appears on both sides, or on the new side of two
/// consumers, cannot be told apart in logs that name clients: those consumers are blind.
pub fn consumers(
    source: &dyn super::Source,
    target: &dyn super::Target,
    inv: &crate::model::Inventory,
    plan: &crate::model::Plan,
    created: &std::collections::HashMap<String, String>,
) -> Result<Vec<Consumer>> {
    use std::collections::HashMap;
    let mut out = source.consumers(inv, plan)?;
    let idents = target.usage_idents(plan, created);
    for c in &mut out {
        for m in &c.creds {
            if let Some(i) = idents.get(m) {
                if !c.new.contains(i) {
                    c.new.push(i.clone());
                }
            }
        }
    }
    let mut owners: HashMap<&Ident, Vec<(usize, &str)>> = HashMap::new();
    for (n, c) in out.iter().enumerate() {
        for i in &c.old {
            owners.entry(i).or_default().push((n, "old"));
        }
        for i in &c.new {
            owners.entry(i).or_default().push((n, "new"));
        }
    }
    let mut blind: Vec<(usize, String)> = Vec::new();
    for (ident, who) in &owners {
        let Ident::Client { workspace, name } = ident else {
            continue;
        };
        if who.len() < 2 {
            continue;
        }
        for (n, _) in who {
            blind.push((
                *n,
                format!(
                    "the client name {name:?} in workspace {workspace} belongs to more than one \
                     credential set (old and new, or two consumers): adoption cannot tell these \
                     apart — give the new clients names of their own in the mapping"
                ),
            ));
        }
    }
    for (n, why) in blind {
        if let Some(c) = out.get_mut(n) {
            c.blind.get_or_insert(why);
        }
    }
    Ok(out)
}

/// Read both sides of every consumer and judge each. `off_since` per consumer: since when
/// its old credentials are refused by design.
pub async fn judge_all(
    consumers: &[Consumer],
    off_since: &[Option<DateTime<Utc>>],
    old: &dyn UsageSource,
    new: &dyn UsageSource,
    window: &Window,
) -> Result<(Vec<Judged>, Vec<String>, Vec<String>, u64)> {
    let old_wants: Vec<Want> = consumers
        .iter()
        .zip(off_since)
        .map(|(c, off)| Want {
            idents: c.old.clone(),
            refusals_after: *off,
            first_use: false,
        })
        .collect();
    let new_wants: Vec<Want> = consumers
        .iter()
        .map(|c| Want {
            idents: c.new.clone(),
            refusals_after: None,
            first_use: true,
        })
        .collect();
    let o = old.read(&old_wants, window).await?;
    let n = new.read(&new_wants, window).await?;
    let source = if o.label == n.label {
        o.label.clone()
    } else {
        format!("old: {}; new: {}", o.label, n.label)
    };
    let no_source = Err::<Seen, String>("no evidence source".into());
    let judged = consumers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            judge(
                &Facts {
                    consumer: c,
                    old: o.seen.get(i).unwrap_or(&no_source),
                    new: n.seen.get(i).unwrap_or(&no_source),
                    off_since: off_since.get(i).copied().flatten(),
                    source: source.clone(),
                },
                window,
            )
        })
        .collect();
    let mut notes = o.notes;
    for note in n.notes {
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    let mut sources = vec![o.label];
    if !sources.contains(&n.label) {
        sources.push(n.label);
    }
    Ok((judged, notes, sources, o.requests + n.requests))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        crate::mapping::parse_instant(s).unwrap()
    }

    fn rec(s: &str) -> Record {
        Record {
            at: at(s),
            what: format!("row {s}"),
        }
    }

    fn consumer() -> Consumer {
        Consumer {
            id: "100".into(),
            workspace: "1".into(),
            name: "Partner".into(),
            client: Some("100".into()),
            profiles: vec!["1".into()],
            creds: vec![],
            old: vec![],
            new: vec![],
            blind: None,
        }
    }

    fn seen(uses: &[&str]) -> Result<Seen, String> {
        let mut s = Seen::default();
        for u in uses {
            s.used(rec(u));
        }
        Ok(s)
    }

    fn window() -> Window {
        Window {
            from: at("2026-01-01"),
            now: at("2026-01-31"),
            quiet_from: at("2026-01-24"),
            own: vec![],
        }
    }

    fn status(old: Result<Seen, String>, new: Result<Seen, String>) -> Judged {
        let c = consumer();
        judge(
            &Facts {
                consumer: &c,
                old: &old,
                new: &new,
                off_since: None,
                source: "test".into(),
            },
            &window(),
        )
    }

    #[test]
    fn the_status_table_first_match_wins() {
        assert_eq!(
            status(seen(&["2026-01-30"]), seen(&["2026-01-29"])).status,
            Status::Moving
        );
        assert_eq!(
            status(seen(&["2026-01-30"]), seen(&[])).status,
            Status::Waiting
        );
        let moved = status(seen(&["2026-01-10"]), seen(&["2026-01-05", "2026-01-29"]));
        assert_eq!(moved.status, Status::Moved);
        assert_eq!(moved.first_new.unwrap().at, at("2026-01-05"));
        assert_eq!(moved.last_old.unwrap().at, at("2026-01-10"));
        assert_eq!(
            status(seen(&["2026-01-10"]), seen(&[])).status,
            Status::Idle
        );
        let unknown = status(Err("no evidence source".into()), seen(&["2026-01-29"]));
        assert_eq!(unknown.status, Status::Unknown);
        assert!(
            unknown.why.contains("no evidence source"),
            "{}",
            unknown.why
        );
    }

    #[test]
    fn refusals_after_switch_off_are_broken_and_win_over_moved() {
        let c = consumer();
        let mut old = Seen::default();
        old.used(rec("2026-01-02"));
        old.refused(rec("2026-01-30"));
        let new = seen(&["2026-01-29"]);
        let j = judge(
            &Facts {
                consumer: &c,
                old: &Ok(old),
                new: &new,
                off_since: Some(at("2026-01-20")),
                source: "test".into(),
            },
            &window(),
        );
        assert_eq!(j.status, Status::Broken);
        assert_eq!(j.refused_since_cutover, 1);
        assert!(j.why.contains("row 2026-01-30"), "{}", j.why);
    }

    #[test]
    fn a_blind_consumer_is_unknown_whatever_the_records() {
        let mut c = consumer();
        c.blind = Some("two legacy clients are named \"Partner\"".into());
        let j = judge(
            &Facts {
                consumer: &c,
                old: &seen(&[]),
                new: &seen(&["2026-01-29"]),
                off_since: None,
                source: "t".into(),
            },
            &window(),
        );
        assert_eq!(j.status, Status::Unknown);
        assert!(j.why.contains("two legacy clients"));
    }

    #[test]
    fn spans_parse_and_print() {
        assert_eq!(parse_span("7d"), Some(Duration::days(7)));
        assert_eq!(parse_span("36h"), Some(Duration::hours(36)));
        assert_eq!(parse_span("2w"), Some(Duration::weeks(2)));
        assert_eq!(parse_span("30"), Some(Duration::days(30)));
        assert_eq!(parse_span("soon"), None);
        assert_eq!(span(Duration::days(7)), "7d");
        assert_eq!(span(Duration::hours(36)), "36h");
    }
}
