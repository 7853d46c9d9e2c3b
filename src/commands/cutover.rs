//! `keyshift cutover`: disable the legacy profiles whose replacement key verified live — only
//! while the source still accepts writes. After the freeze there is nothing to disable: the
//! legacy tokens stop working on their own date. Journaled and resumable.

use anyhow::Result;
use serde_json::json;
use std::collections::HashMap;

use super::judged_now;
use crate::cli::CutoverArgs;
use crate::context::Ctx;
use crate::errors::{ExitCode, KeyshiftError};
use crate::providers::workato::{is_frozen, WorkatoTarget, WsAddr};
use crate::state::{OpKind, OpState, StateDb};

pub fn op_id(source: &str) -> String {
    format!("cutover/{source}")
}

pub async fn run(ctx: &Ctx, args: &CutoverArgs) -> Result<ExitCode> {
    let db = StateDb::open(&ctx.state_path, false)?;
    let _lock = super::writer_lock(ctx, "cutover")?;
    let mapping = db.recorded_mapping()?;
    let now = judged_now(ctx, &db)?;
    let p = &ctx.printer;
    if mapping.pair == crate::mapping::PairKind::BifrostVirtualKeys {
        return bifrost(ctx, args, &db).await;
    }
    let Some(d) = mapping.deadlines.as_ref() else {
        return Err(KeyshiftError::Usage(
            "cutover disables Workato legacy profiles; this mapping has no Workato source".into(),
        )
        .into());
    };
    if let Some(file) = super::source_file(&db)? {
        p.line(format!(
            "nothing to disable: the source of this run is a file ({file}, keyshift export \
             --from), not the legacy API, so keyshift cannot disable legacy profiles. If the \
             legacy API still runs them, disable them in Workato; after the sunset ({}) their \
             tokens no longer work anyway.",
            d.legacy_tokens_invalid.format("%Y-%m-%d")
        ));
        return Ok(ExitCode::Ok);
    }
    if now >= d.legacy_frozen {
        p.line(format!(
            "nothing to disable: legacy clients and profiles are frozen since {} and can no \
             longer be modified; their tokens stop working on their own on {}. Make sure every \
             consumer uses its new key before then (keyshift handover, keyshift verify --live).",
            d.legacy_frozen.format("%Y-%m-%d"),
            d.legacy_tokens_invalid.format("%Y-%m-%d")
        ));
        return Ok(ExitCode::Ok);
    }
    let verdicts = last_live_verdicts(&db)?.ok_or_else(|| {
        KeyshiftError::Usage(
            "cutover acts only on keys proven live — run `keyshift verify --live` first".into(),
        )
    })?;
    let plan = db.load_plan()?;
    let inv = db.load_inventory()?;
    let active: HashMap<(String, i64), bool> = inv
        .profiles
        .iter()
        .map(|p| ((p.workspace.clone(), p.id), p.active))
        .collect();
    let mut chosen = Vec::new();
    let mut skipped = 0usize;
    // Every planned replacement, on either kind of target: (workspace, marker, profile, name).
    let replacements = plan
        .clients
        .iter()
        .flat_map(|c| {
            c.keys.iter().map(|k| {
                (
                    c.workspace.clone(),
                    k.source.clone(),
                    k.profile_id,
                    k.name.clone(),
                )
            })
        })
        .chain(plan.items.iter().filter_map(|i| {
            let id = i.profile_id.parse::<i64>().ok()?;
            Some((i.workspace.clone(), i.source.clone(), id, i.name.clone()))
        }));
    for (ws, source, profile_id, name) in replacements {
        let verdict = verdicts.get(&source).map(String::as_str);
        let eligible =
            verdict == Some("ok") || (args.include_unverifiable && verdict == Some("unverifiable"));
        let was_active = active.get(&(ws.clone(), profile_id)) == Some(&true);
        if eligible && was_active {
            chosen.push((ws, source, profile_id, name));
        } else if was_active {
            skipped += 1;
        }
    }
    for (ws, source, _, _) in &chosen {
        db.ensure_op(&op_id(source), OpKind::DisableProfile, ws, source, None)?;
    }
    let ops: HashMap<String, OpState> = db
        .operations()?
        .into_iter()
        .map(|o| (o.op_id, o.state))
        .collect();
    let todo: Vec<_> = chosen
        .iter()
        .filter(|(_, s, _, _)| ops.get(&op_id(s)) != Some(&OpState::Done))
        .collect();
    if todo.is_empty() {
        p.line(format!(
            "nothing to do: {} legacy profile(s) already disabled; {skipped} active profile(s) \
             wait for a live-verified replacement",
            chosen.len()
        ));
        return Ok(ExitCode::Ok);
    }
    let question = format!(
        "cutover will disable {} legacy access profile(s) whose new keys verified live — their \
         consumers must already use the new keys; {skipped} other active profile(s) stay",
        todo.len()
    );
    if !super::confirm(ctx, args.yes, &question)? {
        p.line("nothing was done");
        return Ok(ExitCode::Ok);
    }
    let conn = ctx.workato(None)?;
    let target = WorkatoTarget::new(conn.clone());
    let (mut done, mut failed, mut frozen) = (0usize, 0usize, false);
    let bar = p.progress(todo.len() as u64, "cutover");
    for (ws, source, profile_id, name) in todo {
        let id = op_id(source);
        db.mark_intent(
            &id,
            json!({ "request": "disable_profile", "profile_id": profile_id }),
        )
        .await?;
        match target
            .disable_profile(&WsAddr::find(&inv.workspaces, ws), *profile_id)
            .await
        {
            Ok(()) => {
                db.mark_done(&id, *profile_id, json!({ "profile_id": profile_id }))
                    .await?;
                done += 1;
            }
            Err(e)
                if is_frozen(&e, now, d.legacy_frozen)
                    || is_frozen(&e, chrono::Utc::now(), d.legacy_frozen) =>
            {
                db.mark_failed(
                    &id,
                    &format!("legacy profile {profile_id} {name:?}: frozen — {e}"),
                )
                .await?;
                frozen = true;
                failed += 1;
                break;
            }
            Err(e) => {
                db.mark_failed(&id, &format!("legacy profile {profile_id} {name:?}: {e}"))
                    .await?;
                failed += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    db.event(
        "cutover",
        None,
        &json!({ "disabled": done, "failed": failed, "frozen": frozen }),
    )?;
    p.line(format!(
        "cutover: disabled {done} legacy profile(s); {failed} failed; {skipped} wait for a \
         live-verified replacement"
    ));
    if frozen {
        p.line(format!(
            "the source refused legacy writes: it is frozen. Nothing more can be disabled; legacy \
             tokens stop working on {}",
            d.legacy_tokens_invalid.format("%Y-%m-%d")
        ));
    }
    p.event(
        "cutover.done",
        json!({ "disabled": done, "failed": failed, "frozen": frozen }),
    );
    Ok(if failed > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
}

/// `source → verdict` from the last `verify --live`.
pub fn last_live_verdicts(db: &StateDb) -> Result<Option<HashMap<String, String>>> {
    for (_, _, _, detail) in db.events(Some("verify"))?.into_iter().rev() {
        let v: serde_json::Value = serde_json::from_str(&detail)?;
        if let Some(items) = v.get("live").and_then(|l| l.as_array()) {
            return Ok(Some(
                items
                    .iter()
                    .filter_map(|r| {
                        Some((
                            r.get("source")?.as_str()?.to_string(),
                            r.get("verdict")?.as_str()?.to_string(),
                        ))
                    })
                    .collect(),
            ));
        }
    }
    Ok(None)
}

/// Bifrost: deactivate (A3) each access profile whose virtual key(s) verified live — all of
/// them, in per-holder mode. Deactivation only retires the profile; existing user copies keep
/// working until an operator revokes them (spec pitfall 10).
async fn bifrost(ctx: &Ctx, args: &CutoverArgs, db: &StateDb) -> Result<ExitCode> {
    let p = &ctx.printer;
    let verdicts = last_live_verdicts(db)?.ok_or_else(|| {
        KeyshiftError::Usage(
            "cutover acts only on keys proven live — run `keyshift verify --live` first".into(),
        )
    })?;
    let plan = db.load_plan()?;
    let inv = db.load_inventory()?;
    let mut by_profile: std::collections::BTreeMap<i64, Vec<&str>> = Default::default();
    for item in &plan.items {
        if let Ok(id) = item.profile_id.parse::<i64>() {
            by_profile.entry(id).or_default().push(
                verdicts
                    .get(&item.source)
                    .map(String::as_str)
                    .unwrap_or("none"),
            );
        }
    }
    let active: std::collections::HashSet<i64> = inv
        .bifrost_profiles
        .iter()
        .filter(|p| p.is_active)
        .map(|p| p.id)
        .collect();
    let ok = |v: &&str| *v == "ok" || (args.include_unverifiable && *v == "unverifiable");
    let chosen: Vec<i64> = by_profile
        .iter()
        .filter(|(id, vs)| active.contains(id) && vs.iter().all(ok))
        .map(|(id, _)| *id)
        .collect();
    let ws = crate::providers::bifrost::WORKSPACE;
    for id in &chosen {
        let source = crate::mapping::bifrost::marker(*id, None);
        db.ensure_op(&op_id(&source), OpKind::DisableProfile, ws, &source, None)?;
    }
    let ops: HashMap<String, OpState> = db
        .operations()?
        .into_iter()
        .map(|o| (o.op_id, o.state))
        .collect();
    let todo: Vec<i64> = chosen
        .iter()
        .copied()
        .filter(|id| {
            ops.get(&op_id(&crate::mapping::bifrost::marker(*id, None))) != Some(&OpState::Done)
        })
        .collect();
    let skipped = active.len().saturating_sub(chosen.len());
    if todo.is_empty() {
        p.line(format!(
            "nothing to do: {} access profile(s) already deactivated; {skipped} wait for live-verified keys",
            chosen.len()
        ));
        return Ok(ExitCode::Ok);
    }
    let question = format!(
        "cutover will deactivate {} Bifrost access profile(s) whose virtual keys verified live",
        todo.len()
    );
    if !super::confirm(ctx, args.yes, &question)? {
        p.line("nothing was done");
        return Ok(ExitCode::Ok);
    }
    let conn = ctx.bifrost(None)?;
    let (mut done, mut failed) = (0, 0);
    for id in todo {
        let op = op_id(&crate::mapping::bifrost::marker(id, None));
        db.mark_intent(
            &op,
            json!({ "request": "deactivate_profile", "profile_id": id }),
        )
        .await?;
        match conn.set_profile_active(id, false).await {
            Ok(()) => {
                db.mark_done(&op, id, json!({ "profile_id": id })).await?;
                done += 1;
            }
            Err(e) => {
                db.mark_failed(&op, &format!("access profile {id}: {e}"))
                    .await?;
                failed += 1;
            }
        }
    }
    db.event(
        "cutover",
        None,
        &json!({ "disabled": done, "failed": failed }),
    )?;
    p.line(format!(
        "cutover: deactivated {done} access profile(s); {failed} failed; {skipped} wait for \
         live-verified keys. Existing user copies keep working until revoked by an operator."
    ));
    Ok(if failed > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
}
