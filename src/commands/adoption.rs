//! `keyshift adoption`: which consumers use their new credentials. Reads where each vendor
//! records use (through the pair's usage sources), judges every consumer
//! (`engine::adoption`), records a snapshot (history kept) and prints each status with the
//! records behind it. Exit 4 when a consumer is broken; 1 when a source cannot be read.

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::collections::BTreeMap;

use crate::cli::AdoptionArgs;
use crate::context::Ctx;
use crate::engine::adoption::{self, parse_span, Judged, Record, Status, Window};
use crate::engine::rollout;
use crate::errors::{ExitCode, KeyshiftError};
use crate::state::rollout::Snapshot;
use crate::state::StateDb;

pub async fn run(ctx: &Ctx, args: &AdoptionArgs) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, false)?;
    let pair = crate::registry::Live::recorded(ctx, &db, None)?;
    let (old, new) = pair.usage(&args.logs_exports)?;
    let mapping = &pair.mapping;
    let now = pair.judged_now().await;
    let window = window(args, now, own_probes(&db)?)?;
    let plan = db.load_planned()?;
    let inv = db.load_inventory()?;
    let ops = db.operations()?;
    let consumers = pair.consumers(&inv, &plan, &ops)?;
    let source = pair.source()?;
    let off = rollout::switched_off(&ops, &db.waves()?);
    let off_since = rollout::off_since(
        &consumers,
        source.as_ref(),
        &off,
        source.retired_at(mapping),
        now,
    );
    let (judged, notes, sources, requests) =
        adoption::judge_all(&consumers, &off_since, old.as_ref(), new.as_ref(), &window).await?;
    let snapshot = Snapshot {
        id: 0,
        at: now,
        window: window.clone(),
        sources,
        notes,
        requests,
    };
    let id = db.save_snapshot(&snapshot, &judged)?;
    print(ctx, id, &snapshot, &judged);
    Ok(if judged.iter().any(|j| j.status == Status::Broken) {
        ExitCode::Drift
    } else {
        ExitCode::Ok
    })
}

/// The window from `--since` (a date, or a span before now; default 30 days) and the quiet
/// period from `--quiet-for` (default 7 days).
fn window(
    args: &AdoptionArgs,
    now: DateTime<Utc>,
    own: Vec<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<Window> {
    let span = |flag: &str, v: &str| {
        parse_span(v).ok_or_else(|| {
            KeyshiftError::Usage(format!(
                "{flag} {v:?}: write a duration such as 7d, 36h, 90m or 2w{}",
                if flag == "--since" { ", or a date" } else { "" }
            ))
        })
    };
    let from = match args.since.as_deref() {
        None => now - Duration::days(30),
        Some(s) => match crate::mapping::parse_instant(s) {
            Some(t) => t,
            None => now - span("--since", s)?,
        },
    };
    let quiet = match args.quiet_for.as_deref() {
        None => Duration::days(7),
        Some(q) => span("--quiet-for", q)?,
    };
    if from >= now {
        return Err(KeyshiftError::Usage(format!(
            "--since {} is not before now ({}) — the window would be empty",
            from.format("%Y-%m-%d %H:%M UTC"),
            now.format("%Y-%m-%d %H:%M UTC")
        ))
        .into());
    }
    Ok(Window {
        from,
        now,
        quiet_from: now - quiet,
        own,
    })
}

/// When `verify --live` probed (on the judged clock), from its journal events.
fn own_probes(db: &StateDb) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    let mut out = Vec::new();
    for (_, _, _, detail) in db.events(Some("verify"))? {
        let v: serde_json::Value = serde_json::from_str(&detail)?;
        let at = |k: &str| {
            v.get(k)
                .and_then(|t| t.as_str())
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        if let (Some(a), Some(b)) = (at("probed_from"), at("probed_to")) {
            out.push((a, b));
        }
    }
    Ok(out)
}

fn when(r: &Option<Record>) -> String {
    r.as_ref()
        .map(|r| r.at.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".into())
}

fn print(ctx: &Ctx, id: i64, s: &Snapshot, judged: &[Judged]) {
    let p = &ctx.printer;
    let mut counts: BTreeMap<Status, usize> = BTreeMap::new();
    for j in judged {
        *counts.entry(j.status).or_default() += 1;
        p.event(
            "adoption.consumer",
            json!({ "consumer": j.consumer, "workspace": j.workspace, "name": j.name,
                    "status": j.status.as_str(), "last_old": j.last_old.as_ref().map(|r| r.at),
                    "first_new": j.first_new.as_ref().map(|r| r.at),
                    "last_new": j.last_new.as_ref().map(|r| r.at),
                    "refused_since_cutover": j.refused_since_cutover, "source": j.source,
                    "why": j.why, "snapshot": id.to_string() }),
        );
    }
    p.line(format!(
        "adoption at {} (window since {}, quiet period {}): {} consumer(s) — {}",
        s.at.format("%Y-%m-%d %H:%M UTC"),
        s.window.from.format("%Y-%m-%d"),
        adoption::span(s.window.now - s.window.quiet_from),
        judged.len(),
        Status::ALL
            .iter()
            .map(|st| format!("{} {}", counts.get(st).copied().unwrap_or(0), st.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    p.line(format!("  sources: {}", s.sources.join("; ")));
    for n in &s.notes {
        p.line(format!("  note: {n}"));
    }
    // Broken first, then the rest in status order; many idle consumers in one line.
    let mut rows: Vec<&Judged> = judged.iter().collect();
    rows.sort_by_key(|j| (j.status, j.workspace.clone(), j.consumer.clone()));
    let idle = rows.iter().filter(|j| j.status == Status::Idle).count();
    for j in rows
        .iter()
        .filter(|j| j.status != Status::Idle || idle <= 5)
    {
        p.line(format!(
            "  {:<8} {} (workspace {}, consumer {}): last old {}, new {}..{}{} — {}",
            j.status.as_str(),
            j.name,
            j.workspace,
            j.consumer,
            when(&j.last_old),
            when(&j.first_new),
            when(&j.last_new),
            if j.refused_since_cutover > 0 {
                format!(", {} refused since cutover", j.refused_since_cutover)
            } else {
                String::new()
            },
            j.why
        ));
    }
    if idle > 5 {
        p.line(format!(
            "  idle     {idle} consumers with no use of either credential in the window (`keyshift \
             report` lists each, with its last old use)"
        ));
    }
    p.event(
        "adoption.done",
        json!({ "snapshot": id.to_string(), "at": s.at, "consumers": judged.len(),
                "counts": counts.iter().map(|(k, v)| (k.as_str().to_string(), *v)).collect::<BTreeMap<_, _>>(),
                "notes": s.notes, "sources": s.sources, "requests": s.requests }),
    );
    let broken = counts.get(&Status::Broken).copied().unwrap_or(0);
    if broken > 0 {
        p.line(format!(
            "{broken} consumer(s) broken: give them back their old credential with `keyshift \
             cutover --undo --consumer ID`"
        ));
    } else if counts.get(&Status::Moved).copied().unwrap_or(0) > 0 {
        p.line("next: `keyshift cutover --dry-run` shows the wave of moved consumers");
    }
}
