//! The rollout in the reports and in `status`: the latest adoption snapshot (consumers by
//! status, broken first, each with the records behind it), the history of snapshots, the
//! waves, and the next command to run. Built from the state DB only.

use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

use crate::engine::adoption::{span, Judged, Status};
use crate::state::rollout::Wave;
use crate::state::StateDb;

#[derive(Debug, Serialize)]
pub struct AdoptionView {
    pub snapshot: i64,
    pub at: String,
    pub window_from: String,
    pub quiet_for: String,
    pub sources: Vec<String>,
    pub notes: Vec<String>,
    pub counts: BTreeMap<String, usize>,
    /// Broken first, then unknown, waiting, moving, moved, idle.
    pub consumers: Vec<Judged>,
    /// Every snapshot, oldest first: when, and consumers by status.
    pub history: Vec<(String, BTreeMap<String, u64>)>,
    pub waves: Vec<Wave>,
    pub next: String,
}

/// The rollout as the state records it; `None` before the first adoption snapshot and wave.
pub fn view(db: &StateDb) -> Result<Option<AdoptionView>> {
    let latest = db.latest_snapshot()?;
    let waves = db.waves()?;
    let Some(s) = latest else {
        if waves.is_empty() {
            return Ok(None);
        }
        return Ok(Some(AdoptionView {
            snapshot: 0,
            at: String::new(),
            window_from: String::new(),
            quiet_for: String::new(),
            sources: Vec::new(),
            notes: Vec::new(),
            counts: BTreeMap::new(),
            consumers: Vec::new(),
            history: Vec::new(),
            waves,
            next: "keyshift adoption — no snapshot yet".into(),
        }));
    };
    let mut consumers = db.snapshot_consumers(s.id)?;
    consumers.sort_by_key(|j| (j.status, j.workspace.clone(), j.consumer.clone()));
    let mut counts = BTreeMap::new();
    for j in &consumers {
        *counts.entry(j.status.as_str().to_string()).or_default() += 1;
    }
    let history = db
        .snapshot_counts()?
        .into_iter()
        .map(|(_, at, c)| {
            let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            (at, c.into_iter().collect())
        })
        .collect();
    let n = |st: Status| counts.get(st.as_str()).copied().unwrap_or(0);
    let next = if let Some(b) = consumers.iter().find(|j| j.status == Status::Broken) {
        format!(
            "keyshift cutover --undo --consumer {} — {} broken consumer(s) lost access",
            b.consumer,
            n(Status::Broken)
        )
    } else if n(Status::Moved) > 0 {
        "keyshift cutover --dry-run — moved consumers can be cut over".into()
    } else if n(Status::Waiting) + n(Status::Moving) > 0 {
        "keyshift handover --per-consumer — tell waiting consumers what to change, then keyshift \
         adoption again"
            .into()
    } else {
        "keyshift adoption — again after consumers have called".into()
    };
    Ok(Some(AdoptionView {
        snapshot: s.id,
        at: s.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        window_from: s
            .window
            .from
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        quiet_for: span(s.window.now - s.window.quiet_from),
        sources: s.sources,
        notes: s.notes,
        counts,
        consumers,
        history,
        waves,
        next,
    }))
}

fn at(r: &Option<crate::engine::adoption::Record>) -> String {
    r.as_ref()
        .map(|r| r.at.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "—".into())
}

/// One line of counts: `2 broken, 1 waiting, …`.
pub fn counts_line(v: &AdoptionView) -> String {
    Status::ALL
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                v.counts.get(s.as_str()).copied().unwrap_or(0),
                s.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Markdown section; `cell` escapes a table cell.
pub fn markdown(v: &AdoptionView, cell: fn(&str) -> String) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "\n## Adoption\n");
    if v.snapshot > 0 {
        let _ = writeln!(
            o,
            "Snapshot {} at {} (window from {}, quiet period {}): {}.\n",
            v.snapshot,
            cell(&v.at),
            cell(&v.window_from),
            v.quiet_for,
            counts_line(v)
        );
        let _ = writeln!(o, "Sources: {}.\n", cell(&v.sources.join("; ")));
        for n in &v.notes {
            let _ = writeln!(o, "- note: {}", cell(n));
        }
        let _ = writeln!(
            o,
            "\n| status | consumer | workspace | name | last old | first new | last new | refused since cutover | why |\n|---|---|---|---|---|---|---|---:|---|"
        );
        for j in &v.consumers {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                j.status.as_str(),
                cell(&j.consumer),
                cell(&j.workspace),
                cell(&j.name),
                at(&j.last_old),
                at(&j.first_new),
                at(&j.last_new),
                j.refused_since_cutover,
                cell(&j.why)
            );
        }
    }
    if !v.waves.is_empty() {
        let _ = writeln!(
            o,
            "\n### Waves\n\n| wave | kind | at | consumers | profiles |\n|---:|---|---|---:|---:|"
        );
        for w in &v.waves {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                w.n,
                w.kind,
                w.at.to_rfc3339(),
                w.consumers.len(),
                w.profiles.len()
            );
        }
    }
    let _ = writeln!(o, "\nNext: `{}`", cell(&v.next));
    o
}

const COLORS: &[(Status, &str)] = &[
    (Status::Broken, "#c62828"),
    (Status::Unknown, "#9e9e9e"),
    (Status::Waiting, "#f9a825"),
    (Status::Moving, "#64b5f6"),
    (Status::Moved, "#2e7d32"),
    (Status::Idle, "#cfd8dc"),
];

/// The HTML section: consumers by status over the snapshots (stacked bars), then the table.
/// `esc` escapes text for HTML.
pub fn html(v: &AdoptionView, esc: fn(&str) -> String) -> String {
    let mut o = String::new();
    o.push_str(r#"<h2 id="adoption">Adoption</h2>"#);
    if !v.history.is_empty() {
        let bar_w = 36.0;
        let gap = 14.0;
        let h = 160.0;
        let max = v
            .history
            .iter()
            .map(|(_, c)| c.values().sum::<u64>())
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let width = 60.0 + v.history.len() as f64 * (bar_w + gap);
        let _ = write!(
            o,
            r#"<figure id="adoption-chart"><figcaption>Consumers by status, per adoption snapshot</figcaption><svg width="{width}" height="{}" role="img">"#,
            h + 40.0
        );
        for (i, (when, counts)) in v.history.iter().enumerate() {
            let x = 40.0 + i as f64 * (bar_w + gap);
            let mut y = h;
            for (st, color) in COLORS {
                let n = counts.get(st.as_str()).copied().unwrap_or(0);
                if n == 0 {
                    continue;
                }
                let bh = n as f64 / max * (h - 10.0);
                y -= bh;
                let _ = write!(
                    o,
                    r#"<rect x="{x}" y="{y:.1}" width="{bar_w}" height="{bh:.1}" fill="{color}" data-snapshot="{i}" data-status="{}" data-value="{n}"><title>{}: {n} {}</title></rect>"#,
                    st.as_str(),
                    esc(when),
                    st.as_str()
                );
            }
            let _ = write!(
                o,
                r#"<text class="lbl" x="{x}" y="{}">{}</text>"#,
                h + 14.0,
                esc(when.get(5..10).unwrap_or(when))
            );
        }
        let mut lx = 40.0;
        for (st, color) in COLORS {
            let _ = write!(
                o,
                r#"<rect x="{lx}" y="{}" width="10" height="10" fill="{color}"/><text class="lbl" x="{}" y="{}">{}</text>"#,
                h + 22.0,
                lx + 13.0,
                h + 31.0,
                st.as_str()
            );
            lx += 70.0;
        }
        o.push_str("</svg></figure>");
    }
    if v.snapshot > 0 {
        let _ = write!(
            o,
            r#"<p>Snapshot {} at {} · window from {} · quiet period {} · {}</p><p>Sources: {}</p>"#,
            v.snapshot,
            esc(&v.at),
            esc(&v.window_from),
            esc(&v.quiet_for),
            esc(&counts_line(v)),
            esc(&v.sources.join("; "))
        );
        for n in &v.notes {
            let _ = write!(o, "<p class=\"meta\">note: {}</p>", esc(n));
        }
        o.push_str(r#"<table id="consumers"><thead><tr><th>status</th><th>consumer</th><th>workspace</th><th>name</th><th>last old</th><th>first new</th><th>last new</th><th>refused since cutover</th><th>why</th></tr></thead><tbody>"#);
        for j in &v.consumers {
            let _ = write!(
                o,
                r#"<tr data-status="{s}"><td>{s}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                esc(&j.consumer),
                esc(&j.workspace),
                esc(&j.name),
                at(&j.last_old),
                at(&j.first_new),
                at(&j.last_new),
                j.refused_since_cutover,
                esc(&j.why),
                s = j.status.as_str()
            );
        }
        o.push_str("</tbody></table>");
    }
    for w in &v.waves {
        let _ = write!(
            o,
            r#"<p class="meta" data-wave="{}">Wave {} ({}) at {}: {} consumer(s), {} profile(s)</p>"#,
            w.n,
            w.n,
            esc(&w.kind),
            esc(&w.at.to_rfc3339()),
            w.consumers.len(),
            w.profiles.len()
        );
    }
    let _ = write!(o, "<p>Next: <code>{}</code></p>", esc(&v.next));
    o
}
