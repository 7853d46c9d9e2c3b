//! `keyshift status`: where the run stands, from the state DB alone (no network).

use anyhow::Result;
use serde_json::json;
use std::collections::BTreeMap;

use super::judged_now;
use crate::context::Ctx;
use crate::errors::ExitCode;
use crate::mapping::deadline_stance;
use crate::state::{OpState, StateDb};

pub fn run(ctx: &Ctx) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, false)?;
    let mapping = crate::registry::recorded_mapping(&db)?;
    let plan = db.load_plan()?;
    let ops = db.operations()?;
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for o in &ops {
        *by_state
            .entry(format!("{} {}", o.kind.as_str(), o.state.as_str()))
            .or_default() += 1;
    }
    let open = ops
        .iter()
        .filter(|o| matches!(o.state, OpState::Pending | OpState::Intent))
        .count();
    let api = db.meta("export.api")?.unwrap_or_else(|| "developer".into());
    let limit = crate::registry::pair_of(&mapping).write_limit(&api);
    let per_minute = limit * ctx.rate_scale()?.max(f64::MIN_POSITIVE);
    let eta_minutes = open as f64 / per_minute;
    let now = judged_now(ctx, &db)?;
    let (stance, code) = deadline_stance(now, mapping.deadlines.as_ref());
    let p = &ctx.printer;
    p.line(format!("state: {}", ctx.state_path.display()));
    for (label, key) in [
        ("exported", "export.at"),
        ("planned", "plan.at"),
        ("verified", "verify.at"),
    ] {
        if let Some(at) = db.meta(key)? {
            p.line(format!("  {label:<9} {at}"));
        }
    }
    let words = crate::registry::pair_of(&mapping).words();
    let containers = if words.containers.is_empty() {
        String::new()
    } else {
        format!("{} {}, ", plan.clients.len(), words.containers)
    };
    p.line(format!(
        "plan: {containers}{} {}, {} finding(s) ({} blocker)",
        plan.key_count(),
        words.credentials,
        plan.findings.len(),
        plan.blockers()
    ));
    if by_state.is_empty() {
        p.line("operations: none yet");
    } else {
        p.line("operations:");
        for (what, n) in &by_state {
            p.line(format!("  {n:>6} {what}"));
        }
    }
    if open > 0 {
        p.line(format!(
            "rate budget: {per_minute:.0} requests/min ({api} API); about {:.1} min for the {open} open operation(s)",
            eta_minutes
        ));
    }
    p.line(format!(
        "deadlines (as of {}): {stance}",
        now.format("%Y-%m-%d")
    ));
    let rollout = crate::report::adoption::view(&db)?;
    if let Some(a) = &rollout {
        if a.snapshot > 0 {
            p.line(format!(
                "consumers (adoption at {}): {}",
                a.at,
                crate::report::adoption::counts_line(a)
            ));
            for j in a.consumers.iter().filter(|j| j.status.as_str() == "broken") {
                p.line(format!(
                    "  broken: {} (consumer {}): {}",
                    j.name, j.consumer, j.why
                ));
            }
        }
        for w in &a.waves {
            p.line(format!(
                "  wave {} ({}) at {}: {} consumer(s), {} profile(s)",
                w.n,
                w.kind,
                w.at.format("%Y-%m-%d %H:%M UTC"),
                w.consumers.len(),
                w.profiles.len()
            ));
        }
        p.line(format!("next: {}", a.next));
    }
    p.event(
        "status",
        json!({ "operations": by_state, "open": open, "clients": plan.clients.len(),
                "keys": plan.key_count(), "blockers": plan.blockers(),
                "rate_per_minute": per_minute, "eta_minutes": eta_minutes, "deadline": code,
                "adoption": rollout.as_ref().map(|a| json!({ "counts": a.counts, "next": a.next,
                    "waves": a.waves.len() })) }),
    );
    Ok(ExitCode::Ok)
}
