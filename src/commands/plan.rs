//! `keyshift plan`: map the exported inventory into a plan and findings; the dry run.
//!
//! Planning takes no network client at all: it reads the state DB and the mapping, calls the
//! pure engine, and saves the result. It cannot write anywhere remote.

use anyhow::Result;
use serde_json::json;
use std::collections::BTreeMap;

use super::judged_now;
use crate::cli::PlanArgs;
use crate::context::Ctx;
use crate::errors::ExitCode;
use crate::mapping::deadline_stance;
use crate::model::FindingKind;
use crate::secrets::SigningIndex;
use crate::state::StateDb;

pub fn run(ctx: &Ctx, args: &PlanArgs) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, false)?;
    let _lock = super::writer_lock(ctx, "plan")?;
    let mapping = match &args.mapping {
        Some(m) => {
            let m = crate::registry::load_mapping(m)?;
            db.set_meta("mapping.origin", &m.origin)?;
            db.set_meta("mapping.text", &m.text)?;
            m
        }
        None => crate::registry::recorded_mapping(&db)?,
    };
    let inv = db.load_inventory()?;
    let signing = match ctx.signing_secrets()? {
        Some(s) => s.index(&ctx.fingerprint_key()?),
        None => SigningIndex::default(),
    };
    let taken: Vec<String> = serde_json::from_str(
        &db.meta("export.taken_names")?
            .unwrap_or_else(|| "[]".into()),
    )?;
    let plan = crate::registry::pair_of(&mapping).plan(&inv, &mapping, &signing, &taken)?;
    let source_profiles = inv.source_profile_count();
    drop(inv); // the plan is all that is needed from here; keep the peak low at 100,000 profiles
    db.save_plan(&plan)?;
    let fingerprint = db.meta("export.fingerprint")?.unwrap_or_default();
    db.set_meta("plan.fingerprint", &fingerprint)?;
    db.set_meta("plan.at", &crate::state::now())?;

    let mut by_kind: BTreeMap<FindingKind, usize> = BTreeMap::new();
    for f in &plan.findings {
        *by_kind.entry(f.kind).or_default() += 1;
    }
    let blocked_profiles: std::collections::BTreeSet<(&str, &str)> = plan
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Blocker && f.object_kind == "profile")
        .map(|f| (f.workspace.as_str(), f.object_id.as_str()))
        .collect();
    let now = judged_now(ctx, &db)?;
    let (stance, stance_code) = deadline_stance(now, mapping.deadlines.as_ref());
    db.event(
        "plan",
        None,
        &json!({ "clients": plan.clients.len(), "keys": plan.key_count(),
                 "blocked_profiles": blocked_profiles.len(), "findings": plan.findings.len() }),
    )?;

    let p = &ctx.printer;
    let words = crate::registry::pair_of(&mapping).words();
    let containers = if words.containers.is_empty() {
        String::new()
    } else {
        format!("{} {} with ", plan.clients.len(), words.containers)
    };
    p.line(format!(
        "plan (dry run, mapping {}): {source_profiles} access profiles → {containers}{} {}",
        mapping.origin,
        plan.key_count(),
        words.credentials
    ));
    if !by_kind.is_empty() {
        let counts: Vec<String> = by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
        p.line(format!("findings: {}", counts.join(", ")));
    }
    const SHOWN: usize = 10;
    let blockers: Vec<_> = plan
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Blocker)
        .collect();
    for f in blockers.iter().take(SHOWN) {
        p.line(format!("  {f}"));
    }
    if blockers.len() > SHOWN {
        p.line(format!(
            "  … and {} more blocker(s): keyshift report --format md",
            blockers.len() - SHOWN
        ));
    }
    for f in &plan.findings {
        p.event("plan.finding", serde_json::to_value(f)?);
    }
    if !blocked_profiles.is_empty() {
        p.line(format!(
            "{} profile(s) are blocked and wait; everything else is planned",
            blocked_profiles.len()
        ));
    }
    p.line(format!(
        "deadlines (as of {}): {stance}",
        now.format("%Y-%m-%d")
    ));
    p.line("full dry-run report: keyshift report --format md; next: keyshift apply");
    p.event(
        "plan.done",
        json!({
            "clients": plan.clients.len(),
            "keys": plan.key_count(),
            "blocked_profiles": blocked_profiles.len(),
            "findings": by_kind.iter().map(|(k, n)| (k.as_str().to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "deadline": stance_code,
        }),
    );
    Ok(if blocked_profiles.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Blockers
    })
}
